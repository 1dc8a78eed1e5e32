//! #15 items 7 and 13: an exam report travels with its signature, the
//! signer's registered key and what exactly was signed, so the community
//! side verifies it again on its own; `upload-report` is an engine command
//! that checks a document (size, type by its bytes, signature), links it to
//! its exam report or booking, keeps it in the store or under `report_dir`
//! (atomically), with an event and an audit entry, and refuses a bad one
//! with a stable code and nothing kept.
//!
//! `write_upload_vector` (ignored) writes `tests/vectors/33_report_upload.json`
//! from the test key below: `cargo test -p yilian-tests --test report_upload
//! -- --ignored write_upload_vector`.

mod common;
use base64::Engine as _;
use common::ok;
use serde_json::{json, Value};
use yilian_core::crypto::{sm2_public_key, sm2_sign, sm2_verify, sm3_hex};
use yilian_core::{Engine, ErrorCode, Principal, Role};

/// The test issuer's SM2 secret key (H001's radiology department): tests only.
const SK: &str = "8f88cb203c3338fd5d8d0f4bd1da57468c5264fce4467a287b97f8d7f7623b23";
/// Another key, registered by no one.
const OTHER_SK: &str = "3a0e5a5e1f9d1c1b6f0c2c7d8e9f00112233445566778899aabbccddeeff0011";
const PDF: &[u8] = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n% CT chest report\n%%EOF\n";
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR scan";
const JPEG: &[u8] = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00 film";
const GIF: &[u8] = b"GIF89a\x01\x00\x01\x00 not a report type";

fn pk() -> String {
    sm2_public_key(SK).unwrap()
}
fn sign(bytes: &[u8]) -> String {
    sm2_sign(SK, None, bytes).unwrap()
}
fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
fn unb64(s: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(s.as_str().expect("base64 text")).unwrap()
}

fn config(dir: Option<&std::path::Path>, extra: Value) -> String {
    let mut c = json!({"clock_start": "2024-10-29T09:00:00+08:00", "clock": "manual"});
    if let Some(d) = dir {
        c["data_dir"] = json!(d.join("store"));
        c["durable_sync"] = json!("normal");
    }
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c.to_string()
}

fn community(id: &str) -> Principal {
    Principal::new(Role::Community, Some(id), None).unwrap()
}
fn hospital(id: &str) -> Principal {
    Principal::new(Role::Hospital, Some(id), None).unwrap()
}
fn as_(e: &Engine, p: &Principal, cmd: &str, req: Value) -> Result<Value, yilian_core::Error> {
    e.call_value_as(p, cmd, &req.to_string())
}
fn fail(e: &Engine, cmd: &str, req: Value) -> ErrorCode {
    e.call_value(cmd, &req.to_string()).expect_err(cmd).code()
}

/// The referral vectors' catalogue and schedules (tests/vectors/31_exam_booking.json).
fn catalogue_steps() -> Vec<Value> {
    let files = yilian_tests::vector_files();
    let (_, f) = files.iter().find(|(n, _)| n.contains("31_exam_booking")).expect("exam vectors");
    f["cases"][0]["steps"].as_array().unwrap().iter().take(2).cloned().collect()
}

/// The catalogue, the test key registered for H001-D101, exam 1 (one CT item)
/// arranged and paid: booking B000001.
fn setup(e: &Engine) {
    for st in catalogue_steps() {
        ok(e, st["command"].as_str().unwrap(), st["request"].clone());
    }
    ok(e, "exam-signing-key", json!({"institution_id": "H001", "issuer_id": "H001-D101", "public_key": pk()}));
    ok(e, "exam-apply", apply_request());
    ok(
        e,
        "exam-arrange",
        json!({"institution_id": "H001", "exam_id": 1, "item_no": 1, "device_id": "DEV001", "date": "2024-10-30", "time_slot": "09:00-10:00"}),
    );
    ok(e, "exam-payment", json!({"exam_id": 1, "payment_status": "paid"}));
}

fn apply_request() -> Value {
    json!({"institution_id": "C001", "hospital_id": "H001", "patient_id": "PAT001", "ordering_doctor_id": "CDR01",
        "items": [{"project_id": "P001", "method": "平扫", "body_part": "胸部"}]})
}

fn upload_request() -> Value {
    json!({"institution_id": "H001", "exam_id": 1, "item_no": 1, "content_base64": b64(PDF), "file_name": "CT报告.pdf",
        "signature": sign(PDF), "signer_id": "H001-D101", "conclusion": "未见明显异常", "reporter": "RAD01"})
}

/// What a refused call must not have changed: events, audit trail, documents.
fn observe(e: &Engine) -> Vec<Value> {
    let p = Principal::platform();
    let mut out = vec![as_(e, &p, "next-events", json!({"limit": 10000})).unwrap(), as_(e, &p, "exam-view", json!({"exam_id": 1})).unwrap()];
    if let Ok(a) = as_(e, &p, "audit-log", json!({"limit": 1000})) {
        out.push(a);
    }
    for b in ["B000001", "B000002"] {
        out.push(as_(e, &p, "exam-report-document", json!({"booking_id": b})).unwrap_or(Value::Null));
    }
    out
}

/// Every file under `dir`, relative.
fn files(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

// ------------------------------------------------------------------ item 7

/// What a community system does with the view alone: it trusts nothing the
/// engine says about the signature (`signature_verified` is not read), takes
/// the signed bytes as documented (docs/referral.md, *Verifying a report*),
/// checks them against `signed.sm3`, and verifies the SM2 signature with the
/// registered key shown beside it. `bytes` is the document for `content`.
fn outside_verify(report: &Value, document: Option<&[u8]>) -> bool {
    let signed = &report["signed"];
    let bytes: Vec<u8> = match signed["what"].as_str().unwrap() {
        "structured" => signed["text"].as_str().unwrap().as_bytes().to_vec(),
        "content" => match document {
            Some(b) => b.to_vec(),
            None => unb64(&report["content_base64"]),
        },
        other => panic!("unknown signed kind {other}"),
    };
    if sm3_hex(&bytes) != signed["sm3"].as_str().unwrap() {
        return false;
    }
    let key = &report["signer_key"];
    sm2_verify(key["public_key"].as_str().unwrap(), Some(key["sm2_id"].as_str().unwrap()), &bytes, report["signature"].as_str().unwrap()).unwrap()
}

#[test]
fn the_community_reverifies_every_signed_revision_from_the_view_alone() {
    let e = Engine::open(&config(None, json!({}))).unwrap();
    setup(&e);
    // Revision 1: a signed PDF inline (exam-report); 2: a structured report
    // signed over its JSON text; 3: a document through upload-report, signed
    // in DER form (as OpenSSL, GmSSL and BouncyCastle emit it).
    ok(
        &e,
        "exam-report",
        json!({"institution_id": "H001", "exam_id": 1, "item_no": 1, "format": "pdf", "content_base64": b64(PDF),
        "signature": sign(PDF), "signer_id": "H001-D101"}),
    );
    let text = r#"{"conclusion":"两肺未见实质性病变","findings":"双肺纹理清晰，纵隔居中"}"#;
    ok(
        &e,
        "exam-report",
        json!({"institution_id": "H001", "exam_id": 1, "item_no": 1, "conclusion": " 两肺未见实质性病变 ",
        "findings": "双肺纹理清晰，纵隔居中", "signature": sign(text.as_bytes()), "signer_id": "H001-D101", "revision_reason": "补充所见"}),
    );
    let der = der_of(&sign(PNG));
    let up = ok(
        &e,
        "upload-report",
        json!({"institution_id": "H001", "exam_id": 1, "item_no": 1, "content_base64": b64(PNG),
        "file_name": "胸片.png", "signature": der, "signer_id": "H001-D101"}),
    );
    assert_eq!((up["revision"].as_u64(), up["document_id"].as_str()), (Some(3), Some("ED000001")), "{up}");

    let c001 = community("C001");
    let view = as_(&e, &c001, "exam-view", json!({"exam_id": 1, "with_content": true})).unwrap();
    let reports = view["items"][0]["reports"].as_array().unwrap().clone();
    assert_eq!(reports.len(), 3);
    for r in &reports {
        assert_eq!(r["signer_key"]["public_key"], pk(), "the key as registered: {r}");
        assert_eq!(r["signer_key"]["issuer_id"], "H001-D101");
        assert_eq!(r["signer_key"]["sm2_id"], "1234567812345678");
    }
    // The signature as sent, not normalised.
    assert_eq!(reports[2]["signature"], der);
    assert_eq!(reports[1]["signed"]["text"], text, "the exact text signed, values trimmed");
    assert!(outside_verify(&reports[0], None));
    assert!(outside_verify(&reports[1], None));
    // The uploaded document is fetched by its id, as the community may.
    let doc = as_(&e, &c001, "exam-report-document", json!({"document_id": reports[2]["document_id"]})).unwrap();
    let bytes = unb64(&doc["content_base64"]);
    assert_eq!(bytes, PNG);
    assert!(outside_verify(&reports[2], Some(&bytes)));
    // The document's own view carries the same.
    assert_eq!((doc["signature"].as_str(), doc["signed"]["sm3"].as_str()), (Some(der.as_str()), Some(sm3_hex(PNG).as_str())));
    assert!(outside_verify(&doc, Some(&bytes)));

    // Re-registering the department's key later changes no report's key.
    let (_, newer) = yilian_core::crypto::sm2_generate();
    ok(&e, "exam-signing-key", json!({"institution_id": "H001", "issuer_id": "H001-D101", "public_key": newer}));
    let again = as_(&e, &c001, "exam-view", json!({"exam_id": 1, "with_content": true})).unwrap();
    assert_eq!(again["items"][0]["reports"][0]["signer_key"]["public_key"], pk());
    assert!(outside_verify(&again["items"][0]["reports"][0], None));
}

#[test]
fn a_tampered_report_fails_the_outside_verification() {
    let e = Engine::open(&config(None, json!({}))).unwrap();
    setup(&e);
    ok(
        &e,
        "exam-report",
        json!({"institution_id": "H001", "exam_id": 1, "item_no": 1, "format": "pdf", "content_base64": b64(PDF),
        "signature": sign(PDF), "signer_id": "H001-D101"}),
    );
    let text = r#"{"conclusion":"未见异常","findings":null}"#;
    ok(
        &e,
        "exam-report",
        json!({"institution_id": "H001", "exam_id": 1, "item_no": 1, "conclusion": "未见异常", "signature": sign(text.as_bytes()),
        "signer_id": "H001-D101"}),
    );
    let view = ok(&e, "exam-view", json!({"exam_id": 1, "with_content": true}));
    let [pdf, structured] = [view["items"][0]["reports"][0].clone(), view["items"][0]["reports"][1].clone()];
    assert!(outside_verify(&pdf, None) && outside_verify(&structured, None));

    // One byte of the document changed on the way.
    let mut bytes = unb64(&pdf["content_base64"]);
    bytes[10] ^= 0x01;
    let mut t = pdf.clone();
    t["content_base64"] = b64(&bytes).into();
    assert!(!outside_verify(&t, None), "a changed document fails");
    // The same with its SM3 recomputed: the signature still fails.
    t["signed"]["sm3"] = sm3_hex(&bytes).into();
    assert!(!outside_verify(&t, None), "a changed document with a matching digest fails on the signature");
    // The conclusion changed.
    let mut s = structured.clone();
    let forged = r#"{"conclusion":"阳性","findings":null}"#;
    s["signed"]["text"] = forged.into();
    s["signed"]["sm3"] = sm3_hex(forged.as_bytes()).into();
    assert!(!outside_verify(&s, None), "a changed conclusion fails");
    // Another key claimed as the signer's.
    let mut k = pdf.clone();
    k["signer_key"]["public_key"] = sm2_public_key(OTHER_SK).unwrap().into();
    assert!(!outside_verify(&k, None), "another key fails");
    // A signature by another key over the same bytes.
    let mut o = pdf.clone();
    o["signature"] = sm2_sign(OTHER_SK, None, PDF).unwrap().into();
    assert!(!outside_verify(&o, None));
}

/// The DER form (GM/T 0009) of an `r‖s` signature in hex.
fn der_of(rs_hex: &str) -> String {
    let rs = hex::decode(rs_hex).unwrap();
    let int = |b: &[u8]| {
        let mut v: Vec<u8> = b.iter().copied().skip_while(|x| *x == 0).collect();
        if v.first().is_some_and(|x| x & 0x80 != 0) {
            v.insert(0, 0);
        }
        let mut out = vec![0x02, v.len() as u8];
        out.extend(v);
        out
    };
    let body = [int(&rs[..32]), int(&rs[32..])].concat();
    let mut der = vec![0x30, body.len() as u8];
    der.extend(body);
    hex::encode(der)
}

// ------------------------------------------------------------------ item 13

#[test]
fn a_refused_upload_has_a_stable_code_and_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    let e = Engine::open(&config(Some(dir.path()), json!({"report_dir": reports, "report_max_bytes": 2048}))).unwrap();
    setup(&e);
    // A booking no exam item owns: the source's interface.
    ok(
        &e,
        "pre-book-slot",
        json!({"patient_id": "PAT002", "project_id": "P004", "date": "2024-10-30", "time_slot": "09:00-10:00", "device_id": "DEV004", "clinic_id": "C001"}),
    );
    let before = observe(&e);
    let with = |changes: Value| {
        let mut r = upload_request();
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                r.as_object_mut().unwrap().remove(k);
            } else {
                r[k] = v.clone();
            }
        }
        r
    };
    let big = [PDF, &vec![b' '; 2100][..]].concat();
    let cases: Vec<(&str, Value, ErrorCode)> = vec![
        ("a GIF", with(json!({"content_base64": b64(GIF), "signature": sign(GIF)})), ErrorCode::ReportTypeUnsupported),
        ("an executable named .pdf", with(json!({"content_base64": b64(b"MZ\x90\x00\x03"), "file_name": "报告.pdf"})), ErrorCode::ReportTypeUnsupported),
        (
            "HTML declared as a PDF",
            with(json!({"content_base64": b64(b"<html>%PDF-1.4</html>"), "content_type": "application/pdf"})),
            ErrorCode::ReportTypeUnsupported,
        ),
        ("a PDF declared as a PNG", with(json!({"content_type": "image/png"})), ErrorCode::ReportTypeUnsupported),
        ("larger than report_max_bytes", with(json!({"content_base64": b64(&big), "signature": sign(&big)})), ErrorCode::RequestTooLarge),
        ("empty", with(json!({"content_base64": ""})), ErrorCode::InvalidField),
        ("not base64", with(json!({"content_base64": "%%%"})), ErrorCode::InvalidField),
        ("unsigned, for an exam item", with(json!({"signature": null})), ErrorCode::ExamSignatureMissing),
        ("signed over other bytes", with(json!({"signature": sign(PNG)})), ErrorCode::ExamSignatureInvalid),
        ("signed by an unregistered key", with(json!({"signature": sm2_sign(OTHER_SK, None, PDF).unwrap()})), ErrorCode::ExamSignatureInvalid),
        ("signed by another hospital", with(json!({"signer_id": "H002"})), ErrorCode::ExamSignatureInvalid),
        ("a signature that is no signature", with(json!({"signature": "zz"})), ErrorCode::InvalidField),
        ("an item that does not exist", with(json!({"item_no": 2})), ErrorCode::ExamItemNotFound),
        ("no target", with(json!({"exam_id": null})), ErrorCode::MissingField),
        ("an unknown booking", with(json!({"exam_id": null, "booking_id": "B000042"})), ErrorCode::BookingNotFound),
        (
            "a plain booking with a bad signature",
            with(json!({"exam_id": null, "booking_id": "B000002", "signature": sign(PNG)})),
            ErrorCode::ExamSignatureInvalid,
        ),
    ];
    for (what, req, code) in cases {
        let got = fail(&e, "upload-report", req);
        assert_eq!(got, code, "{what}");
        assert_eq!(observe(&e), before, "{what}: nothing changed");
        assert!(files(&reports).is_empty(), "{what}: no file left: {:?}", files(&reports));
    }
    // Permissions: the community side does not upload; another hospital not for H001's cases.
    for (p, code) in [(community("C001"), ErrorCode::Forbidden), (hospital("H002"), ErrorCode::ReferralForbidden)] {
        let mut req = upload_request();
        req.as_object_mut().unwrap().remove("institution_id");
        assert_eq!(as_(&e, &p, "upload-report", req.clone()).unwrap_err().code(), code, "{p:?}");
        req["exam_id"] = Value::Null;
        req["booking_id"] = "B000002".into();
        req["signature"] = Value::Null;
        assert_eq!(as_(&e, &p, "upload-report", req).unwrap_err().code(), code, "{p:?}, plain booking");
        assert_eq!(observe(&e), before);
    }
    assert!(files(&reports).is_empty());
    // The same request within the limits is kept.
    let up = ok(&e, "upload-report", upload_request());
    assert_eq!(up["stored"], "file");
    assert_eq!(files(&reports).len(), 1);
    e.close();
}

#[test]
fn documents_in_report_dir_are_written_atomically_and_read_back_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    let cfg = config(Some(dir.path()), json!({"report_dir": reports}));
    let mut req = upload_request();
    req["request_id"] = "up-1".into();
    {
        let e = Engine::open(&cfg).unwrap();
        setup(&e);
        ok(&e, "next-events", json!({"ack": ok(&e, "next-events", json!({"limit": 10000}))["last_seq"]}));
        let up = ok(&e, "upload-report", req.clone());
        assert_eq!(
            (up["document_id"].as_str(), up["booking_id"].as_str(), up["file_name"].as_str(), up["content_type"].as_str(), up["stored"].as_str()),
            (Some("ED000001"), Some("B000001"), Some("1-CT报告.pdf"), Some("application/pdf"), Some("file"))
        );
        assert_eq!((up["size"].as_u64(), up["sm3"].as_str()), (Some(PDF.len() as u64), Some(sm3_hex(PDF).as_str())));
        assert_eq!(up["exam"]["items"][0]["status"], "reported");
        // A retry replays the answer and writes no second file.
        assert_eq!(ok(&e, "upload-report", req.clone()), up);
        let on_disk = files(&reports);
        assert_eq!(on_disk.len(), 1, "{on_disk:?}");
        // Named by an opaque id (`<2 hex>/<32 hex>.pdf` without a key): no booking, no file name.
        let (shard, name) = on_disk[0].split_once('/').expect("one folder level");
        let id = name.strip_suffix(".pdf").expect("the type's extension");
        assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) && id.starts_with(shard), "{on_disk:?}");
        assert_eq!(std::fs::read(reports.join(&on_disk[0])).unwrap(), PDF);
        // The event and the audit entry of the upload.
        let evs = ok(&e, "next-events", json!({"limit": 100}))["events"].as_array().unwrap().clone();
        let kinds: Vec<&str> = evs.iter().map(|v| v["type"].as_str().unwrap()).collect();
        assert!(kinds.contains(&"report_uploaded") && kinds.contains(&"exam_report_notice"), "{kinds:?}");
        let ev = evs.iter().find(|v| v["type"] == "report_uploaded").unwrap();
        assert_eq!((ev["data"]["document_id"].as_str(), ev["clinic_id"].as_str(), ev["data"]["revision"].as_u64()), (Some("ED000001"), Some("C001"), Some(1)));
        let audit = ok(&e, "audit-log", json!({"command": "upload-report"}));
        let entries = audit["entries"].as_array().or(audit["items"].as_array()).unwrap().clone();
        assert_eq!(entries.len(), 1, "{audit}");
        assert_eq!(entries[0]["institution"], "H001");
        let changed: Vec<&str> = entries[0]["changed"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
        assert!(changed.contains(&"referral/document:000000000001") && changed.contains(&"referral/exam:000000000001"), "{changed:?}");
        e.close();
    }
    let e = Engine::open(&cfg).unwrap();
    let c001 = community("C001");
    let doc = as_(&e, &c001, "exam-report-document", json!({"booking_id": "B001", "file_name": "1-CT报告.pdf"})).unwrap();
    assert_eq!(unb64(&doc["content_base64"]), PDF);
    assert_eq!(as_(&e, &community("C002"), "exam-report-document", json!({"document_id": "ED000001"})).unwrap_err().code(), ErrorCode::ReferralForbidden);
    let listed = as_(&e, &hospital("H001"), "exam-report-document", json!({"exam_id": 1})).unwrap();
    assert_eq!(listed["total"], 1);
    assert!(listed["items"][0].get("content_base64").is_none());
    // A file altered outside the engine is refused, not served.
    let path = reports.join(&files(&reports)[0]);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[9] ^= 0x20;
    std::fs::write(&path, bytes).unwrap();
    assert_eq!(as_(&e, &c001, "exam-report-document", json!({"document_id": "ED000001"})).unwrap_err().code(), ErrorCode::StoreCorrupt);
    e.close();
}

#[test]
fn documents_in_the_store_are_read_when_asked_survive_a_restart_and_are_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let key = "00112233445566778899aabbccddeeff";
    let cfg = config(Some(dir.path()), json!({"encryption_key": key}));
    // Larger than max_request_bytes (1 MiB): upload-report takes up to report_max_bytes.
    let mut big = b"%PDF-1.7\n".to_vec();
    big.extend((0..1_500_000u32).map(|i| (i % 251) as u8));
    {
        let e = Engine::open(&cfg).unwrap();
        setup(&e);
        ok(
            &e,
            "pre-book-slot",
            json!({"patient_id": "PAT002", "project_id": "P004", "date": "2024-10-30", "time_slot": "09:00-10:00", "device_id": "DEV004", "clinic_id": "C001"}),
        );
        let up = ok(&e, "upload-report", json!({"booking_id": "B002", "content_base64": b64(&big), "file_name": "大报告.pdf"}));
        assert_eq!((up["stored"].as_str(), up["signature_verified"].as_bool(), up["size"].as_u64()), (Some("store"), Some(false), Some(big.len() as u64)));
        // Unsigned is allowed for a booking no exam item owns; a JPEG and a PNG follow as 2- and 3-.
        let j = ok(
            &e,
            "upload-report",
            json!({"institution_id": "H001", "booking_id": "B000002", "content_base64": b64(JPEG), "signature": sign(JPEG), "signer_id": "H001-D101"}),
        );
        assert_eq!(
            (j["file_name"].as_str(), j["signature_verified"].as_bool(), j["content_type"].as_str()),
            (Some("2-report.jpg"), Some(true), Some("image/jpeg"))
        );
        // Any other JSON command keeps its 1 MiB limit.
        let long = json!({"booking_id": "B000002", "note": "x".repeat(1_100_000)}).to_string();
        assert_eq!(e.call_value("booking-info", &long).unwrap_err().code(), ErrorCode::RequestTooLarge);
        e.close();
    }
    // The bytes are sealed like every row: the base64 is nowhere in the file.
    let raw = std::fs::read(dir.path().join("store").join("yilian.sqlite3")).unwrap();
    let needle = &b64(JPEG).into_bytes()[..16];
    assert!(!raw.windows(needle.len()).any(|w| w == needle), "the document's bytes are sealed");
    let e = Engine::open(&cfg).unwrap();
    let doc = as_(&e, &community("C001"), "exam-report-document", json!({"booking_id": "B000002", "file_name": "1-大报告.pdf"})).unwrap();
    assert_eq!(unb64(&doc["content_base64"]), big);
    let list = ok(&e, "exam-report-document", json!({"booking_id": "B000002"}));
    let names: Vec<&str> = list["items"].as_array().unwrap().iter().map(|d| d["file_name"].as_str().unwrap()).collect();
    assert_eq!(names, ["1-大报告.pdf", "2-report.jpg"]);
    assert_eq!(as_(&e, &community("C002"), "exam-report-document", json!({"booking_id": "B000002"})).unwrap()["total"], 0);
    assert_eq!(as_(&e, &hospital("H002"), "exam-report-document", json!({"document_id": "ED000002"})).unwrap_err().code(), ErrorCode::ReferralForbidden);
    e.close();
}

#[test]
fn an_engine_in_memory_keeps_documents_in_memory() {
    let e = Engine::open(&config(None, json!({}))).unwrap();
    setup(&e);
    let up = ok(
        &e,
        "upload-report",
        json!({"institution_id": "H001", "booking_id": "B000001", "content_base64": b64(PDF), "signature": sign(PDF), "signer_id": "H001-D101"}),
    );
    assert_eq!(
        (up["stored"].as_str(), up["exam_id"].as_u64(), up["item_no"].as_u64()),
        (Some("memory"), Some(1), Some(1)),
        "a booking an exam item owns is that item"
    );
    let doc = ok(&e, "exam-report-document", json!({"document_id": up["document_id"]}));
    assert_eq!(unb64(&doc["content_base64"]), PDF);
    assert!(ok(&e, "exam-report-document", json!({"document_id": "ED000001", "with_content": false})).get("content_base64").is_none());
    assert_eq!(fail(&e, "exam-report-document", json!({"document_id": "ED000009"})), ErrorCode::ReportDocumentNotFound);
    assert_eq!(fail(&e, "exam-report-document", json!({"booking_id": "B000001", "file_name": "9-x.pdf"})), ErrorCode::ReportDocumentNotFound);
}

// ------------------------------------------------------------------ the shared vector

fn step(command: &str, request: Value, expect: Value) -> Value {
    json!({"command": command, "request": request, "expect": expect})
}
fn step_err(command: &str, request: Value, code: &str) -> Value {
    json!({"command": command, "request": request, "expect_error": {"code": code}})
}
fn step_as(principal: Value, command: &str, request: Value, expect: Value) -> Value {
    let mut s = if expect.get("code").is_some() && expect.as_object().unwrap().len() == 1 {
        json!({"command": command, "request": request, "expect_error": expect})
    } else {
        step(command, request, expect)
    };
    s["principal"] = principal;
    s
}

fn upload_vector() -> Value {
    let pre_book =
        json!({"patient_id": "PAT002", "project_id": "P004", "date": "2024-10-30", "time_slot": "09:00-10:00", "device_id": "DEV004", "clinic_id": "C001"});
    let mut steps = catalogue_steps();
    steps.extend([
        step("exam-signing-key", json!({"institution_id": "H001", "issuer_id": "H001-D101", "public_key": pk()}), json!({"status": "registered"})),
        step("exam-apply", apply_request(), json!({"exam_id": 1})),
        step("exam-arrange", json!({"institution_id": "H001", "exam_id": 1, "item_no": 1, "device_id": "DEV001", "date": "2024-10-30", "time_slot": "09:00-10:00"}), json!({"items": [{"status": "arranged"}]})),
        step_err("upload-report", upload_request(), "EXAM_INVALID_TRANSITION"),
        step("exam-payment", json!({"exam_id": 1, "payment_status": "paid"}), json!({"items": [{"status": "paid"}]})),
        step_err("upload-report", json!({"institution_id": "H001", "exam_id": 1, "item_no": 1, "content_base64": b64(GIF), "signature": sign(GIF), "signer_id": "H001-D101"}), "REPORT_TYPE_UNSUPPORTED"),
        step_err("upload-report", json!({"institution_id": "H001", "exam_id": 1, "item_no": 1, "content_base64": b64(PDF), "content_type": "image/png", "signature": sign(PDF), "signer_id": "H001-D101"}), "REPORT_TYPE_UNSUPPORTED"),
        step_err("upload-report", json!({"institution_id": "H001", "exam_id": 1, "item_no": 1, "content_base64": b64(PDF)}), "EXAM_SIGNATURE_MISSING"),
        step_err("upload-report", json!({"institution_id": "H001", "exam_id": 1, "item_no": 1, "content_base64": b64(PDF), "signature": sign(PNG), "signer_id": "H001-D101"}), "EXAM_SIGNATURE_INVALID"),
        step_as(json!({"role": "community", "institution_id": "C001"}), "upload-report", json!({"exam_id": 1, "item_no": 1, "content_base64": b64(PDF), "signature": sign(PDF), "signer_id": "H001-D101"}), json!({"code": "FORBIDDEN"})),
        step("exam-report-document", json!({"exam_id": 1}), json!({"total": 0})),
        step(
            "upload-report",
            upload_request(),
            json!({"document_id": "ED000001", "booking_id": "B000001", "exam_id": 1, "item_no": 1, "revision": 1, "file_name": "1-CT报告.pdf",
                "content_type": "application/pdf", "size": PDF.len(), "sm3": sm3_hex(PDF), "signature_verified": true, "signer_id": "H001-D101",
                "exam": {"items": [{"status": "reported", "reports": [{"revision": 1, "format": "pdf", "document_id": "ED000001", "conclusion": "未见明显异常"}]}]}}),
        ),
        step_as(
            json!({"role": "community", "institution_id": "C001"}),
            "exam-view",
            json!({"exam_id": 1}),
            json!({"items": [{"reports": [{"signature": sign(PDF), "signer_id": "H001-D101", "signature_verified": true,
                "signer_key": {"issuer_id": "H001-D101", "public_key": pk(), "sm2_id": "1234567812345678"},
                "signed": {"what": "content", "sm3": sm3_hex(PDF)}, "content_sm3": sm3_hex(PDF), "document_id": "ED000001"}]}]}),
        ),
        step_as(
            json!({"role": "community", "institution_id": "C001"}),
            "exam-report-document",
            json!({"document_id": "ED000001"}),
            json!({"file_name": "1-CT报告.pdf", "content_base64": b64(PDF), "sm3": sm3_hex(PDF), "signer_key": {"public_key": pk()}}),
        ),
        step_as(json!({"role": "community", "institution_id": "C002"}), "exam-report-document", json!({"document_id": "ED000001"}), json!({"code": "REFERRAL_FORBIDDEN"})),
        step("pre-book-slot", pre_book, json!({"booking_id": "B000002"})),
        step(
            "upload-report",
            json!({"booking_id": "B002", "content_base64": b64(PNG), "file_name": "../scan.png"}),
            json!({"document_id": "ED000002", "booking_id": "B000002", "file_name": "1-scan.png", "content_type": "image/png", "signature_verified": false}),
        ),
        step(
            "upload-report",
            json!({"booking_id": "B000002", "content_base64": b64(JPEG), "content_type": "image/jpg", "signature": sign(JPEG), "signer_id": "H001-D101"}),
            json!({"document_id": "ED000003", "file_name": "2-report.jpg", "content_type": "image/jpeg", "signature_verified": true}),
        ),
        step("exam-report-document", json!({"booking_id": "B000002", "file_name": "1-scan.png"}), json!({"content_base64": b64(PNG), "content_type": "image/png"})),
        step("exam-report-document", json!({"booking_id": "B000002"}), json!({"total": 2, "items": [{"file_name": "1-scan.png"}, {"file_name": "2-report.jpg"}]})),
        step_err("exam-report-document", json!({"document_id": "ED000009"}), "REPORT_DOCUMENT_NOT_FOUND"),
    ]);
    let mut big = PDF.to_vec();
    big.resize(1100, b' ');
    let mut limit_steps = catalogue_steps();
    limit_steps.extend([
        step(
            "pre-book-slot",
            json!({"patient_id": "PAT002", "project_id": "P004", "date": "2024-10-30", "time_slot": "09:00-10:00", "device_id": "DEV004", "clinic_id": "C001"}),
            json!({"booking_id": "B000001"}),
        ),
        step_err("upload-report", json!({"booking_id": "B000001", "content_base64": b64(&big)}), "REQUEST_TOO_LARGE"),
        step("exam-report-document", json!({"booking_id": "B000001"}), json!({"total": 0})),
        step("upload-report", json!({"booking_id": "B000001", "content_base64": b64(&big[..1024])}), json!({"document_id": "ED000001", "size": 1024})),
    ]);
    json!({
        "description": "#15 items 7 and 13: upload-report checks a report document (type by its first bytes, size against report_max_bytes, SM2 signature; required for an exam item), links it to its exam report revision or booking and keeps it; exam-view shows each signature with the signer's registered key and what was signed; exam-report-document reads documents back for the hospital and the applying community only.",
        "config": {"clock_start": "2024-10-29T09:00:00+08:00", "clock": "manual"},
        "cases": [
            {"name": "an exam item's signed document and a booking's documents: refusals first, then kept, viewed, read back", "steps": steps},
            {"name": "report_max_bytes: one byte over is refused and nothing is kept", "config": {"clock_start": "2024-10-29T09:00:00+08:00", "clock": "manual", "report_max_bytes": 1024}, "steps": limit_steps},
        ]
    })
}

#[test]
#[ignore = "writes tests/vectors/33_report_upload.json"]
fn write_upload_vector() {
    let path = yilian_tests::vectors_dir().join("33_report_upload.json");
    std::fs::write(&path, serde_json::to_string_pretty(&upload_vector()).unwrap() + "\n").unwrap();
}

#[test]
fn the_shared_vector_is_signed_by_the_test_key() {
    // SM2 signatures are randomised, so the file is not compared with a fresh
    // build: its signatures must verify with the test key, and its steps
    // must be the generator's in everything else.
    let files = yilian_tests::vector_files();
    let (_, file) = files.iter().find(|(n, _)| n == "33_report_upload.json").expect("33_report_upload.json");
    let fresh = upload_vector();
    let strip = |v: &Value| -> Value {
        let mut t = v.to_string();
        for s in signatures(v) {
            t = t.replace(&s, "SIG");
        }
        serde_json::from_str(&t).unwrap()
    };
    assert_eq!(strip(file), strip(&fresh), "regenerate with --ignored write_upload_vector");
    let mut verified = 0;
    for case in file["cases"].as_array().unwrap() {
        for st in case["steps"].as_array().unwrap() {
            let r = &st["request"];
            if let (Some(sig), Some(content)) = (r["signature"].as_str(), r["content_base64"].as_str()) {
                let bytes = base64::engine::general_purpose::STANDARD.decode(content).unwrap();
                let good = sm2_verify(&pk(), None, &bytes, sig).unwrap();
                assert_eq!(good, st.get("expect_error").is_none_or(|x| x["code"] != "EXAM_SIGNATURE_INVALID"), "{st}");
                verified += 1;
            }
        }
    }
    assert!(verified >= 6);
}

/// Every 128-hex-digit string in `v` (the signatures).
fn signatures(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) if s.len() == 128 && s.bytes().all(|b| b.is_ascii_hexdigit()) => out.push(s.clone()),
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            Value::Object(m) => m.values().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    walk(v, &mut out);
    out
}

/// An SM2 public key (SEC1 hex) as a PEM SubjectPublicKeyInfo (id-ecPublicKey, curve SM2).
fn spki_pem(public_hex: &str) -> String {
    let point = hex::decode(public_hex).unwrap();
    // SEQUENCE { SEQUENCE { OID 1.2.840.10045.2.1, OID 1.2.156.10197.1.301 }, BIT STRING 00 ‖ point }
    let alg = hex::decode("301306072a8648ce3d020106082a811ccf5501822d").unwrap();
    let mut bits = vec![0x03, (point.len() + 1) as u8, 0x00];
    bits.extend(&point);
    let body = [alg, bits].concat();
    let mut der = vec![0x30, body.len() as u8];
    der.extend(body);
    let b = base64::engine::general_purpose::STANDARD.encode(der);
    format!("-----BEGIN PUBLIC KEY-----\n{b}\n-----END PUBLIC KEY-----\n")
}

#[test]
fn openssl_verifies_a_report_from_the_view_alone() {
    // Another SM2 implementation than the engine's: OpenSSL 3's command line,
    // given only what the view shows (the key, the signed bytes, the signature in DER).
    if std::process::Command::new("openssl").arg("version").output().is_err() {
        eprintln!("SKIPPED: no `openssl` on this machine");
        return;
    }
    let e = Engine::open(&config(None, json!({}))).unwrap();
    setup(&e);
    let text = r#"{"conclusion":"未见异常","findings":"肝胆胰脾未见异常"}"#;
    ok(
        &e,
        "exam-report",
        json!({"institution_id": "H001", "exam_id": 1, "item_no": 1, "conclusion": "未见异常", "findings": "肝胆胰脾未见异常",
        "signature": sign(text.as_bytes()), "signer_id": "H001-D101"}),
    );
    ok(&e, "upload-report", upload_request());
    let view = as_(&e, &community("C001"), "exam-view", json!({"exam_id": 1})).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let verify = |r: &Value, bytes: &[u8]| -> bool {
        std::fs::write(dir.path().join("pk.pem"), spki_pem(r["signer_key"]["public_key"].as_str().unwrap())).unwrap();
        std::fs::write(dir.path().join("data"), bytes).unwrap();
        let sig = r["signature"].as_str().unwrap();
        let der = if sig.len() == 128 { der_of(sig) } else { sig.to_string() };
        std::fs::write(dir.path().join("sig"), hex::decode(der).unwrap()).unwrap();
        let out = std::process::Command::new("openssl")
            .current_dir(dir.path())
            .args(["pkeyutl", "-verify", "-pubin", "-inkey", "pk.pem", "-rawin", "-digest", "sm3", "-in", "data", "-sigfile", "sig"])
            .args(["-pkeyopt", &format!("distid:{}", r["signer_key"]["sm2_id"].as_str().unwrap())])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).contains("Signature Verified Successfully")
    };
    let reports = view["items"][0]["reports"].as_array().unwrap();
    assert!(verify(&reports[0], reports[0]["signed"]["text"].as_str().unwrap().as_bytes()), "structured");
    let doc = as_(&e, &community("C001"), "exam-report-document", json!({"document_id": reports[1]["document_id"]})).unwrap();
    let bytes = unb64(&doc["content_base64"]);
    assert!(verify(&reports[1], &bytes), "uploaded PDF");
    let mut changed = bytes.clone();
    changed[0] ^= 1;
    assert!(!verify(&reports[1], &changed), "OpenSSL refuses a changed document");
}
