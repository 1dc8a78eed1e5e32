//! Lab state survives a reopen of the data directory and a SIGKILL; barcodes
//! stay unique under concurrent printing, across restarts and crashes;
//! signed documents.

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

const CRASH_DIR: &str = "YILIAN_LAB_CRASH_DIR";

fn crash_cfg(dir: &str) -> String {
    json!({"data_dir": dir, "clock_start": "2024-10-29T09:00:00+08:00"}).to_string()
}

/// The child of `killed_mid_journey_reissues_no_acknowledged_barcode`: four
/// threads take orders through printing, shipping, reception and reports on
/// one durable store, printing each step once its call has returned.
#[test]
#[ignore = "run by killed_mid_journey_reissues_no_acknowledged_barcode as a child process"]
fn lab_crash_child() {
    let Ok(dir) = std::env::var(CRASH_DIR) else {
        return;
    };
    let e = Engine::open(&crash_cfg(&dir)).unwrap();
    setup(&e);
    ok(&e, "lab-barcode-rule-set", json!({"institution_id": "C001", "prefix": "C1", "date": "YYMMDD", "seq_width": 6}));
    println!("READY");
    let call = |e: &Engine, cmd: &str, req: serde_json::Value| e.call_value(cmd, &req.to_string()).ok();
    std::thread::scope(|s| {
        for _ in 0..4 {
            let e = &e;
            s.spawn(move || {
                // Bounded, so a child the parent stops waiting for still ends.
                for i in 0..20_000 {
                    let Some(o) = call(
                        e,
                        "lab-order-submit",
                        json!({"institution_id": "C001", "lab_id": "H001", "patient_id": "P001", "patient": {"name": "张三丰", "sex": "男", "age": "45岁"},
                               "doctor_id": "D01", "doctor_name": "李医生", "diagnosis": "发热待查", "items": ["C001-XCG", "C001-GGN"]}),
                    ) else {
                        continue;
                    };
                    let oid = o["order_id"].as_str().unwrap().to_string();
                    println!("ACK ORDER {oid}");
                    if call(e, "lab-order-payment", json!({"order_id": oid, "payment_status": "paid"})).is_none() {
                        continue;
                    }
                    let Some(p) = call(e, "specimen-print", json!({"order_id": oid})) else { continue };
                    let barcodes: Vec<String> = p["specimens"].as_array().unwrap().iter().map(|s| s["barcode"].as_str().unwrap().to_string()).collect();
                    for b in &barcodes {
                        println!("ACK BARCODE {b}");
                    }
                    if i % 2 == 1 || call(e, "shipment-create", json!({"institution_id": "C001", "barcodes": barcodes})).is_none() {
                        continue;
                    }
                    println!("ACK SHIPPED {}", barcodes.join(" "));
                    if call(e, "specimen-receive", json!({"barcode": barcodes[0], "receiver": "王"})).is_none() {
                        continue;
                    }
                    println!("ACK RECEIVED {}", barcodes[0]);
                    let report = json!({"barcode": barcodes[0], "order_id": oid, "tester": "王", "reviewer": "陈", "results": cbc_results()});
                    if call(e, "report-submit", report).is_some() {
                        println!("ACK REPORT {}", barcodes[0]);
                    }
                }
            });
        }
    });
}

/// S3 for the lab: a process printing, shipping, receiving and reporting from
/// four threads is killed with SIGKILL. Reopened, every acknowledged order,
/// specimen, shipment, reception and report is there, and new labels never
/// reuse an acknowledged barcode (a reused barcode would put one patient's
/// results on another's tube).
#[test]
fn killed_mid_journey_reissues_no_acknowledged_barcode() {
    const BARCODES: usize = 400;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_string();
    let mut child = yilian_tests::crash::start("lab_crash_child", CRASH_DIR, &d);
    let (mut orders, mut barcodes, mut shipped, mut received, mut reported) = (Vec::new(), Vec::new(), HashSet::new(), HashSet::new(), Vec::new());
    while let Some(line) = child.line() {
        let Some(rest) = line.strip_prefix("ACK ") else { continue };
        let (what, ids) = rest.split_once(' ').unwrap();
        let ids: Vec<String> = ids.split(' ').map(str::to_string).collect();
        match what {
            "ORDER" => orders.extend(ids),
            "BARCODE" => barcodes.extend(ids),
            "SHIPPED" => shipped.extend(ids),
            "RECEIVED" => received.extend(ids),
            "REPORT" => reported.extend(ids),
            _ => panic!("unexpected line {line}"),
        }
        if barcodes.len() >= BARCODES {
            break;
        }
    }
    child.kill();
    assert!(barcodes.len() >= BARCODES, "the child acknowledged only {} barcodes", barcodes.len());
    assert!(!reported.is_empty(), "no report was acknowledged before the kill");

    let e = Engine::open(&crash_cfg(&d)).unwrap();
    for oid in &orders {
        ok(&e, "lab-order-info", json!({"order_id": oid}));
    }
    let mut seen = HashSet::new();
    for b in &barcodes {
        assert!(seen.insert(b.clone()), "barcode {b} acknowledged twice");
        let sp = ok(&e, "specimen-lookup", json!({"barcode": b}));
        let status = sp["status"].as_str().unwrap();
        if received.contains(b) {
            assert_eq!(status, "received", "{b}: {sp}");
        } else if shipped.contains(b) {
            assert!(status == "shipped" || status == "received", "{b}: {sp}");
        }
    }
    for b in &reported {
        let r = ok(&e, "report-info", json!({"barcode": b}));
        assert_eq!(r["reports"][0]["status"], "final", "{b}: {r}");
    }
    // New labels after the restart continue past every acknowledged one.
    for _ in 0..16 {
        let o = order(&e, json!(["C001-XCG", "C001-GGN"]));
        for sp in ok(&e, "specimen-print", json!({"order_id": o["order_id"]}))["specimens"].as_array().unwrap() {
            let b = sp["barcode"].as_str().unwrap();
            assert!(seen.insert(b.to_string()), "barcode {b} reissued after the crash");
        }
    }
    println!(
        "lab crash: {} orders, {} barcodes, {} shipped, {} received, {} reports acknowledged, all in the reopened store; 32 new barcodes all new",
        orders.len(),
        barcodes.len(),
        shipped.len(),
        received.len(),
        reported.len()
    );
}
