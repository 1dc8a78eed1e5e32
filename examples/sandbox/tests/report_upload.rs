//! 报告回传 over multipart for an exam item: the sandbox hands the file to
//! the engine's `upload-report` (its checks, storage, event), answers
//! `report_url` and serves the document back through `exam-report-document`;
//! a refused file is the engine's error with nothing kept.

mod common;
use common::*;
use serde_json::{json, Value};

const MANUAL: &str = r#"{"clock_start":"2024-10-29T09:00:00+08:00","clock":"manual"}"#;

async fn upload(s: &Server, form: reqwest::multipart::Form) -> (u16, Value) {
    let r = s.client.post(s.url("/api/v1/upload-report")).multipart(form).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exam_items_signed_document_over_multipart() {
    let s = Server::start(MANUAL, true).await;
    let file: Value = serde_json::from_str(include_str!("../../../tests/vectors/31_exam_booking.json")).unwrap();
    for st in file["cases"][0]["steps"].as_array().unwrap().iter().take(2) {
        s.ok(st["command"].as_str().unwrap(), &st["request"].to_string()).await;
    }
    let (sk, pk) = yilian_core::crypto::sm2_generate();
    s.ok("exam-signing-key", &json!({"institution_id": "H001", "issuer_id": "H001-D101", "public_key": pk}).to_string()).await;
    s.ok(
        "exam-apply",
        &json!({"institution_id": "C001", "hospital_id": "H001", "patient_id": "PAT001", "items": [{"project_id": "P001", "method": "平扫", "body_part": "胸部"}]})
            .to_string(),
    )
    .await;
    s.ok("exam-arrange", r#"{"institution_id": "H001", "exam_id": 1, "item_no": 1, "device_id": "DEV001", "date": "2024-10-30", "time_slot": "09:00-10:00"}"#)
        .await;
    s.ok("exam-payment", r#"{"exam_id": 1, "payment_status": "paid"}"#).await;

    let pdf = b"%PDF-1.7\n% CT chest, signed\n%%EOF\n".to_vec();
    let sig = yilian_core::crypto::sm2_sign(&sk, None, &pdf).unwrap();
    let form = |bytes: Vec<u8>, name: &str, sig: Option<&str>| {
        let mut f = reqwest::multipart::Form::new()
            .text("exam_id", "1")
            .text("item_no", "1")
            .text("signer_id", "H001-D101")
            .text("conclusion", "未见明显异常")
            .part("file", reqwest::multipart::Part::bytes(bytes).file_name(name.to_string()));
        if let Some(sig) = sig {
            f = f.text("signature", sig.to_string());
        }
        f
    };
    // Refused by the engine: a GIF named .pdf, an unsigned report of an exam item, a forged signature.
    let (st, v) = upload(&s, form(b"GIF89a\x01\x00".to_vec(), "报告.pdf", Some(&sig))).await;
    assert_error(&(st, v), 400, "REPORT_TYPE_UNSUPPORTED");
    let (st, v) = upload(&s, form(pdf.clone(), "报告.pdf", None)).await;
    assert_error(&(st, v), 400, "EXAM_SIGNATURE_MISSING");
    let mut forged = pdf.clone();
    forged[12] ^= 1;
    let (st, v) = upload(&s, form(forged, "报告.pdf", Some(&sig))).await;
    assert_error(&(st, v), 403, "EXAM_SIGNATURE_INVALID");
    let (st, v) = s.get("exam-report-document", &[("exam_id", "1")]).await;
    assert_eq!((st, v["data"]["total"].as_u64()), (200, Some(0)), "nothing kept: {v}");

    let (st, v) = upload(&s, form(pdf.clone(), "CT 报告.pdf", Some(&sig))).await;
    assert_eq!(st, 200, "{v}");
    let d = &v["data"];
    assert_eq!(
        (d["booking_id"].as_str(), d["file_name"].as_str(), d["revision"].as_u64(), d["signature_verified"].as_bool()),
        (Some("B000001"), Some("1-CT_报告.pdf"), Some(1), Some(true))
    );
    assert_eq!(d["exam"]["items"][0]["status"], "reported");
    let url = d["report_url"].as_str().unwrap().to_string();
    // The link names the document only: no booking, no file name.
    assert_eq!(url, format!("{}/api/v1/reports/ED000001", s.base));
    let got = s.client.get(&url).send().await.unwrap();
    assert_eq!((got.status().as_u16(), got.headers()["content-type"].to_str().unwrap()), (200, "application/pdf"));
    assert_eq!(got.bytes().await.unwrap().to_vec(), pdf);
    // The community side sees the signature, the key and what was signed.
    let (_, v) = s.get("exam-view", &[("exam_id", "1")]).await;
    let r = &v["data"]["items"][0]["reports"][0];
    assert_eq!((r["signature"].as_str(), r["signer_key"]["public_key"].as_str()), (Some(sig.as_str()), Some(pk.as_str())));
    assert_eq!(r["signed"]["sm3"], yilian_core::crypto::sm3_hex(&pdf));
    let evs = s.ok("next-events", r#"{"limit": 1000}"#).await;
    assert!(evs["events"].as_array().unwrap().iter().any(|e| e["type"] == "report_uploaded"), "{evs}");
    s.stop().await;
}
