//! Commissioned lab testing (L1–L9) end to end through the command layer.

mod lab_common;

use lab_common::*;
use serde_json::json;
use yilian_core::{Engine, ErrorCode};

#[test]
fn whole_journey_order_to_critical_value() {
    let e = Engine::open(CFG).unwrap();
    setup(&e);
    // Search by pinyin initials.
    let s = ok(&e, "lab-item-search", json!({"lab_id": "H001", "q": "xcg", "institution_id": "C001"}));
    assert_eq!(s["results"][0]["code"], "STD-P-CBC");
    assert_eq!(s["results"][0]["inst_code"], "C001-XCG");

    let o = order(&e, json!(["C001-XCG", "C001-GGN", "STD-P-HBA1C"]));
    let oid = o["order_id"].as_str().unwrap().to_string();
    assert_eq!(o["status"], "submitted");
    assert_eq!(o["patient"]["name"], "张**");
    assert!(!o.to_string().contains("张三丰"));
    assert_eq!(o["items"][0]["local_code"], "LIS-1001");

    // Merging: CBC (全血/EDTA/临检), LFT (血清/SST/生化), HbA1c (全血/EDTA/生化) → three tubes.
    let p = ok(&e, "specimen-print", json!({"order_id": oid, "format": "zpl"}));
    let sp = p["specimens"].as_array().unwrap();
    assert_eq!(sp.len(), 3);
    assert_eq!(sp[0]["barcode"], "241029000001");
    assert_eq!(sp[0]["container_code"], "EDTA");
    assert_eq!(sp[1]["container_code"], "SST");
    assert_eq!(sp[2]["workgroup"], "生化");
    assert!(sp[0]["label"]["content"].as_str().unwrap().contains("^BC"));
    let barcodes: Vec<String> = sp.iter().map(|s| s["barcode"].as_str().unwrap().to_string()).collect();
    assert_eq!(err(&e, "specimen-print", json!({"order_id": oid})).code(), ErrorCode::LabNothingToPrint);
    let re = ok(&e, "specimen-reprint", json!({"barcode": barcodes[0], "format": "tspl"}));
    assert_eq!(re["barcode"], barcodes[0]);
    assert_eq!(re["print_count"], 2);
    assert!(re["label"]["content_base64"].is_string());

    // Receiving before shipping is refused.
    assert_eq!(err(&e, "specimen-receive", json!({"barcode": barcodes[0], "receiver": "王检验"})).code(), ErrorCode::LabSpecimenState);
    let sh = ok(&e, "shipment-create", json!({"institution_id": "C001", "barcodes": barcodes, "sender": "赵护士"}));
    let shid = sh["shipment_id"].as_str().unwrap().to_string();
    assert_eq!(sh["count"], 3);
    let m = ok(&e, "shipment-manifest", json!({"shipment_id": shid, "format": "text"}));
    assert!(m["content"].as_str().unwrap().contains("委托检验送检单"));
    assert!(!m["content"].as_str().unwrap().contains("张三丰"));
    assert_eq!(ok(&e, "lab-order-info", json!({"order_id": oid}))["status"], "shipped");

    // The lab: look up, receive two, reject one.
    let l = ok(&e, "specimen-lookup", json!({"barcode": barcodes[0], "lab_id": "H001"}));
    assert_eq!(l["order"]["diagnosis"], "发热待查");
    assert_eq!(l["lab_items"][0]["local_code"], "LIS-1001");
    assert_eq!(err(&e, "specimen-receive", json!({"barcode": barcodes[0], "receiver": "王检验", "lab_id": "H002"})).code(), ErrorCode::LabForbidden);
    ok(&e, "specimen-receive", json!({"barcode": barcodes[0], "receiver": "王检验", "lab_id": "H001"}));
    ok(&e, "specimen-receive", json!({"barcode": barcodes[1], "receiver": "王检验"}));
    ok(&e, "specimen-reject", json!({"barcode": barcodes[2], "reason": "溶血", "reject_type": "样本溶血", "registrar": "王检验", "contact": "0512-57001234"}));
    assert_eq!(err(&e, "lab-order-cancel", json!({"order_id": oid})).code(), ErrorCode::LabOrderReceived);
    assert_eq!(
        err(
            &e,
            "report-submit",
            json!({"barcode": barcodes[2], "order_id": oid, "tester": "a", "reviewer": "b", "results": [{"item_code": "STD-HEM-010", "value": "5"}]})
        )
        .code(),
        ErrorCode::LabSpecimenRejected
    );

    // Partial, then complete and corrected.
    let r = ok(
        &e,
        "report-submit",
        json!({"barcode": barcodes[0], "order_id": oid, "tester": "王检验", "reviewer": "陈主任", "results": [{"item_code": "WBC", "value": "6.1"}]}),
    );
    assert_eq!(r["status"], "partial");
    assert_eq!(r["missing"].as_array().unwrap().len(), 6);
    assert_eq!(r["results"][0]["inst_code"], "C001-0101");
    let r = ok(&e, "report-submit", json!({"barcode": barcodes[0], "order_id": oid, "tester": "王检验", "reviewer": "陈主任", "results": cbc_results()}));
    assert_eq!(r["status"], "final");
    assert_eq!(r["corrected"], true);
    assert_eq!(r["revision"], 2);
    assert_eq!(r["critical_candidates"], json!(["C001-0103"]));
    let hist = ok(&e, "report-info", json!({"barcode": barcodes[0], "history": true}));
    assert_eq!(hist["reports"][0]["history"].as_array().unwrap().len(), 2);

    // Critical value: published, overdue after the limit, acknowledged with read-back.
    ok(&e, "critical-value-limit-set", json!({"institution_id": "C001", "minutes": 5, "fallback_name": "值班主任", "fallback_contact": "0512-57000000"}));
    let cv =
        ok(&e, "critical-value-publish", json!({"publisher": "陈主任", "contact": "0512-57001111", "values": [{"barcode": barcodes[0], "item_code": "HGB"}]}));
    let cid = cv["critical_values"][0]["critical_id"].as_str().unwrap().to_string();
    assert_eq!(cv["critical_values"][0]["value"], "45");
    ok(&e, "advance-clock", json!({"seconds": 301}));
    let od = ok(&e, "lab-check-overdue", json!({}));
    assert_eq!(od["critical_ids"], json!([cid.clone()]));
    assert_eq!(ok(&e, "lab-check-overdue", json!({}))["overdue"], 0);
    assert_eq!(
        err(&e, "critical-value-ack", json!({"critical_id": cid, "receiver": "李医生", "contact": "13800138000", "readback": "54"})).code(),
        ErrorCode::LabReadbackMismatch
    );
    let a =
        ok(&e, "critical-value-ack", json!({"critical_id": cid, "receiver": "李医生", "contact": "13800138000", "readback": "45", "institution_id": "C001"}));
    assert_eq!(a["status"], "acknowledged");
    assert_eq!(a["ack"]["late"], true);
    assert_eq!(a["escalated_to"]["name"], "值班主任");
    assert_eq!(
        err(&e, "critical-value-ack", json!({"critical_id": cid, "receiver": "x", "contact": "y", "readback": "45"})).code(),
        ErrorCode::LabCriticalAcknowledged
    );

    // Events of the journey, in order.
    let ev = ok(&e, "next-events", json!({"max": 1000}));
    let kinds: Vec<&str> = ev["events"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    for k in [
        "lab_order_submitted",
        "specimen_printed",
        "specimen_reprinted",
        "shipment_created",
        "specimen_received",
        "specimen_rejected",
        "lab_order_returned",
        "lab_report_ready",
        "critical_value_published",
        "critical_value_overdue",
        "critical_value_acknowledged",
    ] {
        assert!(kinds.contains(&k), "missing event {k}: {kinds:?}");
    }
    assert!(!ev.to_string().contains("张三丰"));
}

#[test]
fn unmapped_items_refuse_the_order_by_name() {
    let e = Engine::open(CFG).unwrap();
    setup(&e);
    let x = err(&e, "lab-order-submit", json!({"institution_id": "C001", "lab_id": "H001", "patient_id": "P1", "doctor_id": "D1", "items": ["C001-NX"]}));
    assert_eq!(x.code(), ErrorCode::LabItemUnmapped);
    assert!(x.message().contains("C001-NX"));
    // A standard project whose sub-items C001 has not mapped.
    let x = err(&e, "lab-order-submit", json!({"institution_id": "C001", "lab_id": "H001", "patient_id": "P1", "doctor_id": "D1", "items": ["STD-P-COAG"]}));
    assert_eq!(x.code(), ErrorCode::LabItemUnmapped);
    assert!(x.message().contains("STD-COA-001"));
    // Not offered by the lab.
    let x = err(&e, "lab-order-submit", json!({"institution_id": "C001", "lab_id": "H001", "patient_id": "P1", "doctor_id": "D1", "items": ["STD-P-UA"]}));
    assert_eq!(x.code(), ErrorCode::LabNotOffered);
    // Nothing was stored by the refusals.
    assert_eq!(ok(&e, "lab-order-query", json!({"institution_id": "C001"}))["total"], 0);
}

#[test]
fn cancel_until_received_and_no_receiving_a_cancelled_order() {
    let e = Engine::open(CFG).unwrap();
    setup(&e);
    let o = order(&e, json!(["C001-XCG"]));
    let oid = o["order_id"].as_str().unwrap();
    let p = ok(&e, "specimen-print", json!({"order_id": oid}));
    let b = p["specimens"][0]["barcode"].as_str().unwrap().to_string();
    ok(&e, "shipment-create", json!({"institution_id": "C001", "barcodes": [b]}));
    assert_eq!(err(&e, "lab-order-cancel", json!({"order_id": oid, "institution_id": "C002"})).code(), ErrorCode::LabForbidden);
    ok(&e, "lab-order-cancel", json!({"order_id": oid, "reason": "患者拒绝"}));
    assert_eq!(err(&e, "specimen-receive", json!({"barcode": b, "receiver": "x"})).code(), ErrorCode::LabOrderCancelled);
    assert_eq!(err(&e, "lab-order-cancel", json!({"order_id": oid})).code(), ErrorCode::LabOrderCancelled);
    let q = ok(&e, "lab-order-query", json!({"institution_id": "C001", "status": "cancelled", "patient_name": "张"}));
    assert_eq!(q["total"], 1);
    assert_eq!(ok(&e, "lab-order-query", json!({"institution_id": "C001", "patient_name": "李"}))["total"], 0);
}

#[test]
fn std_item_delete_is_guarded() {
    let e = Engine::open(CFG).unwrap();
    setup(&e);
    assert_eq!(err(&e, "lab-std-item-delete", json!({"code": "STD-HEM-001"})).code(), ErrorCode::LabInUse);
    ok(&e, "lab-std-item-upsert", json!({"items": [{"code": "STD-X-1", "name": "测试项", "specimen_type": "血清"}]}));
    ok(&e, "lab-inst-item-upsert", json!({"institution_id": "C009", "items": [{"code": "X", "name": "x", "specimen_type": "血清", "std_code": "STD-X-1"}]}));
    assert_eq!(err(&e, "lab-std-item-delete", json!({"code": "STD-X-1"})).code(), ErrorCode::LabInUse);
    ok(&e, "lab-inst-item-unmap", json!({"institution_id": "C009", "code": "X"}));
    ok(&e, "lab-std-item-delete", json!({"code": "STD-X-1"}));
    assert_eq!(err(&e, "lab-std-item-delete", json!({"code": "STD-X-1"})).code(), ErrorCode::LabStdItemNotFound);
}

#[test]
fn an_engine_acting_for_one_institution_acts_only_for_it() {
    // The community centre's own engine holds the network's reference data
    // (catalogue, mappings) but acts on cases only as C001 (S1).
    let e = Engine::open(r#"{"clock_start":"2024-10-29T09:00:00+08:00","clock":"manual","institution_id":"C001","role":"community"}"#).unwrap();
    // The network's reference data is kept by the platform: the centre's own
    // principal may not change the standard catalogue.
    assert_eq!(err(&e, "lab-std-item-import", json!({"content": data("lab-standard-items.csv")})).code(), ErrorCode::Forbidden);
    setup_as_platform(&e);
    let o = ok(&e, "lab-order-submit", json!({"lab_id": "H001", "patient_id": "P1", "doctor_id": "D1", "items": ["C001-XCG"]}));
    assert_eq!(o["institution_id"], "C001");
    let oid = o["order_id"].as_str().unwrap();
    assert_eq!(
        err(&e, "lab-order-submit", json!({"institution_id": "C002", "lab_id": "H001", "patient_id": "P1", "doctor_id": "D1", "items": ["C001-XCG"]})).code(),
        ErrorCode::Forbidden
    );
    ok(&e, "lab-order-payment", json!({"order_id": oid, "payment_status": "paid"}));
    let b = ok(&e, "specimen-print", json!({"order_id": oid}))["specimens"][0]["barcode"].as_str().unwrap().to_string();
    ok(&e, "shipment-create", json!({"barcodes": [b]}));
    // Receiving is the lab's step: this engine is not the lab.
    assert_eq!(err(&e, "specimen-receive", json!({"barcode": b, "receiver": "x"})).code(), ErrorCode::Forbidden);
    assert_eq!(err(&e, "specimen-receive", json!({"barcode": b, "receiver": "x", "lab_id": "H001"})).code(), ErrorCode::Forbidden);
    assert_eq!(ok(&e, "lab-order-query", json!({}))["total"], 1);
}

/// An HIV antibody result typed as Chinese input methods type it (full-width
/// brackets) is negative: no abnormal flag, no notifiable infection, no
/// event. A positive one raises them; one nobody can read goes to review.
#[test]
fn a_full_width_negative_hiv_result_is_never_reported_as_a_notifiable_infection() {
    let e = Engine::open(CFG).unwrap();
    setup(&e);
    let o = order(&e, json!(["C001-CRB"]));
    let oid = o["order_id"].as_str().unwrap().to_string();
    let b = ok(&e, "specimen-print", json!({"order_id": oid}))["specimens"][0]["barcode"].as_str().unwrap().to_string();
    ok(&e, "shipment-create", json!({"institution_id": "C001", "barcodes": [b]}));
    ok(&e, "specimen-receive", json!({"barcode": b, "receiver": "王检验", "lab_id": "H001"}));
    let submit = |hiv: &str, syphilis: &str| {
        ok(
            &e,
            "report-submit",
            json!({"barcode": b, "order_id": oid, "tester": "王检验", "reviewer": "陈主任", "results": [
                {"item_code": "STD-IMM-001", "value": "阴性（－）"},
                {"item_code": "STD-IMM-002", "value": "Neg"},
                {"item_code": "STD-IMM-003", "value": hiv},
                {"item_code": "STD-IMM-004", "value": syphilis}
            ]}),
        )
    };
    let kinds = |e: &Engine| -> Vec<String> {
        let ev = ok(e, "next-events", json!({"limit": 10000}));
        let out = ev["events"].as_array().unwrap().iter().map(|x| x["type"].as_str().unwrap().to_string()).collect();
        if ev["last_seq"].is_u64() {
            ok(e, "next-events", json!({"ack": ev["last_seq"]}));
        }
        out
    };
    kinds(&e);
    let r = submit("阴性（-）", "无反应性");
    assert_eq!(r["abnormal"], json!([]), "{r}");
    assert_eq!(r["notifiable_infections"], json!([]));
    assert_eq!(r["needs_review"], json!([]));
    assert!(r["results"].as_array().unwrap().iter().all(|x| x["flag"] == "N" && x["interpretation"] == "negative"), "{r}");
    let k = kinds(&e);
    assert!(!k.contains(&"lab_notifiable_infection".to_string()) && !k.contains(&"lab_result_needs_review".to_string()), "{k:?}");

    let r = submit("阳性（＋）", "阴性");
    assert_eq!(r["notifiable_infections"][0]["disease"], "艾滋病");
    assert_eq!(r["notifiable_infections"].as_array().unwrap().len(), 1);
    assert!(kinds(&e).contains(&"lab_notifiable_infection".to_string()));

    // Unreadable (NR) and contradictory (阴性(+)): reviewed by a person, never guessed.
    let r = submit("NR", "阴性(+)");
    assert_eq!(r["notifiable_infections"], json!([]));
    assert_eq!(r["needs_review"], json!(["C001-0603", "C001-0604"]));
    assert!(r["results"].as_array().unwrap().iter().filter(|x| x["needs_review"] == true).all(|x| x["flag"] == "R" && x["notifiable_suspected"].is_string()));
    let k = kinds(&e);
    assert!(k.contains(&"lab_result_needs_review".to_string()) && !k.contains(&"lab_notifiable_infection".to_string()), "{k:?}");

    // The lab's own flag contradicting its value goes to review; the value decides the notification.
    let r = ok(
        &e,
        "report-submit",
        json!({"barcode": b, "order_id": oid, "tester": "王检验", "reviewer": "陈主任", "results": [
            {"item_code": "STD-IMM-003", "value": "阴性", "abnormal_flag": "A"}
        ]}),
    );
    assert_eq!(r["notifiable_infections"], json!([]));
    assert_eq!(r["needs_review"], json!(["C001-0603"]));
}
