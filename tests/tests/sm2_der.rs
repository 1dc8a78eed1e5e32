//! SM2 signatures in the DER form of GM/T 0009 (what OpenSSL, GmSSL and
//! BouncyCastle emit) beside the raw r‖s (issue 15, item 3): a lab's signed
//! report document and an imaging department's signed exam report verify in
//! either form; malformed DER is refused before anything is stored.

mod lab_common;

use base64::Engine as _;
use lab_common::*;
use serde_json::{json, Value};
use yilian_core::{Engine, ErrorCode};

/// DER `INTEGER` of a big-endian unsigned value, minimally encoded.
fn der_int(v: &[u8]) -> Vec<u8> {
    let mut v: Vec<u8> = v.iter().copied().skip_while(|b| *b == 0).collect();
    if v.first().is_none_or(|b| b & 0x80 != 0) {
        v.insert(0, 0);
    }
    [vec![0x02, v.len() as u8], v].concat()
}

/// `SEQUENCE { INTEGER r, INTEGER s }` of an r‖s hex signature, as hex.
fn der_hex(rs_hex: &str) -> String {
    let rs = hex_bytes(rs_hex);
    let body = [der_int(&rs[..32]), der_int(&rs[32..])].concat();
    hex_string(&[vec![0x30, body.len() as u8], body].concat())
}

fn hex_bytes(h: &str) -> Vec<u8> {
    (0..h.len()).step_by(2).map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap()).collect()
}

fn hex_string(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Malformed DER variants of a good DER signature (hex).
fn malformed(der: &str) -> Vec<(&'static str, String)> {
    let b = hex_bytes(der);
    vec![
        ("a trailing byte", format!("{der}00")),
        ("a long-form length", hex_string(&[vec![0x30, 0x81, b[1]], b[2..].to_vec()].concat())),
        ("a length one too long", hex_string(&[vec![0x30, b[1] + 1], b[2..].to_vec()].concat())),
        ("a non-minimal r", {
            let r_len = b[3] as usize;
            let r = &b[4..4 + r_len];
            let body = [vec![0x02, r_len as u8 + 1, 0x00], r.to_vec(), b[4 + r_len..].to_vec()].concat();
            hex_string(&[vec![0x30, body.len() as u8], body].concat())
        }),
        ("truncated", der[..der.len() - 2].to_string()),
    ]
}

#[test]
fn a_report_document_signed_in_der_form_is_verified_and_malformed_der_is_refused() {
    let e = Engine::open(CFG).unwrap();
    setup(&e);
    let o = order(&e, json!(["C001-XCG"]));
    let oid = o["order_id"].as_str().unwrap();
    let b = ok(&e, "specimen-print", json!({"order_id": oid}))["specimens"][0]["barcode"].as_str().unwrap().to_string();
    ok(&e, "shipment-create", json!({"institution_id": "C001", "barcodes": [b]}));
    ok(&e, "specimen-receive", json!({"barcode": b, "receiver": "王"}));
    let pdf = b"%PDF-1.4\n% yilian DER test report\n%%EOF\n";
    let (sk, pk) = yilian_core::crypto::sm2_generate();
    ok(&e, "lab-key-register", json!({"lab_id": "H001", "public_key": pk}));
    let rs = yilian_core::crypto::sm2_sign(&sk, None, pdf).unwrap();
    let der = der_hex(&rs);
    let b64 = base64::engine::general_purpose::STANDARD.encode(pdf);
    let req = |sig: &str| json!({"barcode": b, "order_id": oid, "content_base64": b64, "signature": sig});
    for (what, bad) in malformed(&der) {
        let x = err(&e, "report-upload-document", req(&bad));
        assert_eq!(x.code(), ErrorCode::InvalidField, "{what}");
    }
    let forged = json!({"barcode": b, "order_id": oid, "content_base64": base64::engine::general_purpose::STANDARD.encode(b"%PDF forged"), "signature": der});
    assert_eq!(err(&e, "report-upload-document", forged).code(), ErrorCode::LabSignatureInvalid);
    let d = ok(&e, "report-upload-document", req(&der.to_uppercase()));
    assert_eq!((d["version"].as_u64(), &d["signature_verified"]), (Some(1), &json!(true)));
    assert_eq!(d["signature"], der, "kept as sent (lowercase hex), so the institution can verify it again");
    let d2 = ok(&e, "report-upload-document", req(&rs));
    assert_eq!(d2["version"], 2, "the raw r‖s form still verifies");
}

#[test]
fn an_exam_report_signed_in_der_form_is_verified_and_malformed_der_is_refused() {
    // The exam vectors up to the signed PDF report (key H001-D101 registered,
    // the item arranged and paid); its r‖s signature is then sent as DER.
    let files = yilian_tests::vector_files();
    let (_, f) = files.iter().find(|(n, _)| n.contains("31_exam_booking")).expect("exam vectors");
    let case = &f["cases"][0];
    let steps = case["steps"].as_array().unwrap();
    let at = steps
        .iter()
        .position(|s| s["command"] == "exam-report" && s.get("expect").is_some() && s["request"]["format"] == "pdf")
        .expect("the signed PDF report step");
    let e = Engine::open(&f["config"].to_string()).unwrap();
    for (i, s) in steps[..at].iter().enumerate() {
        let r = e.call_value(s["command"].as_str().unwrap(), &s["request"].to_string());
        assert_eq!(r.is_ok(), s.get("expect_error").is_none(), "step {i}: {r:?}");
    }
    let mut req: Value = steps[at]["request"].clone();
    let rs = req["signature"].as_str().unwrap().to_string();
    let der = der_hex(&rs);
    for (what, bad) in malformed(&der) {
        req["signature"] = bad.into();
        let x = e.call_value("exam-report", &req.to_string()).expect_err(what);
        assert_eq!(x.code(), ErrorCode::InvalidField, "{what}");
    }
    req["signature"] = der.clone().into();
    let v = e.call_value("exam-report", &req.to_string()).unwrap();
    let report = &v["items"][0]["reports"][0];
    assert_eq!((&report["revision"], &report["signature_verified"], &report["signer_id"]), (&json!(1), &json!(true), &json!("H001-D101")));
    // A DER signature over other content does not verify.
    req["content_base64"] = "JVBERi0xLjQgcmVwb3J1".into();
    assert_eq!(e.call_value("exam-report", &req.to_string()).unwrap_err().code(), ErrorCode::ExamSignatureInvalid);
}
