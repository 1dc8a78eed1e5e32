//! Lab state survives a reopen of the data directory; barcodes stay unique
//! under concurrent printing and across restarts; signed documents.

mod lab_common;

use lab_common::*;
use serde_json::json;
use std::collections::HashSet;
use yilian_core::{Engine, ErrorCode};

fn open(dir: &std::path::Path) -> Engine {
    Engine::open(&json!({"data_dir": dir, "clock_start": "2024-10-29T09:00:00+08:00", "clock": "manual"}).to_string()).unwrap()
}

#[test]
fn everything_is_restored_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (oid, barcodes) = {
        let e = open(dir.path());
        setup(&e);
        ok(&e, "lab-barcode-rule-set", json!({"institution_id": "C001", "prefix": "C1", "date": "YYMMDD", "seq_width": 4}));
        let o = order(&e, json!(["C001-XCG", "C001-GGN"]));
        let oid = o["order_id"].as_str().unwrap().to_string();
        let p = ok(&e, "specimen-print", json!({"order_id": oid, "request_id": "print-1"}));
        let barcodes: Vec<String> = p["specimens"].as_array().unwrap().iter().map(|s| s["barcode"].as_str().unwrap().to_string()).collect();
        assert_eq!(barcodes, ["C12410290001", "C12410290002"]);
        ok(&e, "shipment-create", json!({"institution_id": "C001", "barcodes": barcodes}));
        ok(&e, "specimen-receive", json!({"barcode": barcodes[0], "receiver": "王"}));
        ok(&e, "report-submit", json!({"barcode": barcodes[0], "order_id": oid, "tester": "王", "reviewer": "陈", "results": cbc_results()}));
        ok(&e, "critical-value-publish", json!({"publisher": "陈", "contact": "1", "barcode": barcodes[0], "item_code": "HGB"}));
        e.close();
        (oid, barcodes)
    };
    let e = open(dir.path());
    let info = ok(&e, "lab-order-info", json!({"order_id": oid}));
    assert_eq!(info["status"], "partially_reported");
    assert_eq!(ok(&e, "lab-inst-item-query", json!({"institution_id": "C001", "mapped": true}))["total"], 25);
    let r = ok(&e, "report-info", json!({"barcode": barcodes[0]}));
    assert_eq!(r["reports"][0]["status"], "final");
    assert_eq!(ok(&e, "critical-value-query", json!({"institution_id": "C001"}))["total"], 1);
    // The same request id replays the first answer after the restart.
    let again = ok(&e, "specimen-print", json!({"order_id": oid, "request_id": "print-1"}));
    assert_eq!(again["specimens"][0]["barcode"], barcodes[0].as_str());
    // The sequence goes on where it stopped.
    let o2 = order(&e, json!(["C001-XCG"]));
    let p2 = ok(&e, "specimen-print", json!({"order_id": o2["order_id"]}));
    assert_eq!(p2["specimens"][0]["barcode"], "C12410290003");
    // Every lab change is in the audit trail with its rows.
    let audit = ok(&e, "audit-log", json!({"command": "specimen-print", "limit": 10}));
    let entries = audit["entries"].as_array().unwrap();
    assert!(!entries.is_empty());
    assert!(entries[0].to_string().contains("specimen:C12410290001"), "{}", entries[0]);
    // The overdue check still runs on the restored value.
    ok(&e, "advance-clock", json!({"seconds": 601}));
    assert_eq!(ok(&e, "lab-check-overdue", json!({}))["overdue"], 1);
}

#[test]
fn barcodes_are_unique_under_concurrent_printing_and_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut seen = HashSet::new();
    for round in 0..2 {
        let e = open(dir.path());
        if round == 0 {
            setup(&e);
        }
        let orders: Vec<String> = (0..64).map(|_| order(&e, json!(["C001-XCG", "C001-GGN"]))["order_id"].as_str().unwrap().to_string()).collect();
        let printed: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = orders
                .chunks(8)
                .map(|chunk| {
                    let e = e.clone();
                    s.spawn(move || {
                        let mut out = Vec::new();
                        for oid in chunk {
                            let p = ok(&e, "specimen-print", json!({"order_id": oid}));
                            for sp in p["specimens"].as_array().unwrap() {
                                out.push(sp["barcode"].as_str().unwrap().to_string());
                            }
                        }
                        out
                    })
                })
                .collect();
            handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(printed.len(), 128);
        for b in printed {
            assert!(seen.insert(b.clone()), "barcode {b} printed twice");
        }
        e.close();
    }
    assert_eq!(seen.len(), 256);
}

#[test]
fn signed_documents_are_verified_on_receipt() {
    use base64::Engine as _;
    let e = Engine::open(CFG).unwrap();
    setup(&e);
    let o = order(&e, json!(["C001-XCG"]));
    let oid = o["order_id"].as_str().unwrap();
    let b = ok(&e, "specimen-print", json!({"order_id": oid}))["specimens"][0]["barcode"].as_str().unwrap().to_string();
    ok(&e, "shipment-create", json!({"institution_id": "C001", "barcodes": [b]}));
    ok(&e, "specimen-receive", json!({"barcode": b, "receiver": "王"}));
    let pdf = b"%PDF-1.4\n% yilian test report\n%%EOF\n";
    let (sk, pk) = yilian_core::crypto::sm2_generate();
    let sig = yilian_core::crypto::sm2_sign(&sk, None, pdf).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(pdf);
    let req = json!({"barcode": b, "order_id": oid, "content_base64": b64, "signature": sig});
    assert_eq!(err(&e, "report-upload-document", req.clone()).code(), ErrorCode::LabKeyNotFound);
    ok(&e, "lab-key-register", json!({"lab_id": "H001", "public_key": pk}));
    let mut forged = req.clone();
    forged["content_base64"] = base64::engine::general_purpose::STANDARD.encode(b"%PDF-1.4\n% forged\n%%EOF\n").into();
    assert_eq!(err(&e, "report-upload-document", forged).code(), ErrorCode::LabSignatureInvalid);
    let d = ok(&e, "report-upload-document", req.clone());
    assert_eq!(d["version"], 1);
    assert_eq!(d["signature_verified"], true);
    assert_eq!(d["sm3"], yilian_core::crypto::sm3_hex(pdf));
    let d2 = ok(&e, "report-upload-document", req);
    assert_eq!(d2["corrected"], true);
    let info = ok(&e, "report-info", json!({"order_id": oid, "include_content": true}));
    assert_eq!(info["documents"].as_array().unwrap().len(), 2);
    assert_eq!(info["documents"][0]["content_base64"], b64);
    assert_eq!(err(&e, "lab-key-register", json!({"lab_id": "H001", "public_key": "04abcd"})).code(), ErrorCode::InvalidField);
}
