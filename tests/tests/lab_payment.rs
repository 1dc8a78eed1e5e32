//! Payment before collection and the service network's agreements (#15
//! item 5): the patient pays at the community institution before the
//! specimen is taken, so an unpaid order prints no label unless it says
//! otherwise; a lab under agreements takes orders only from the
//! institutions, for the projects and on the days they cover.

mod lab_common;

use lab_common::*;
use serde_json::{json, Value};
use yilian_core::{Engine, ErrorCode, Principal, Role};

fn kinds(e: &Engine) -> Vec<String> {
    let ev = ok(e, "next-events", json!({"limit": 10000}));
    ev["events"].as_array().unwrap().iter().map(|x| x["type"].as_str().unwrap().to_string()).collect()
}

fn oid(o: &Value) -> String {
    o["order_id"].as_str().unwrap().to_string()
}

/// H001 serves C001 for the blood count only, through October 2024.
fn cbc_agreement(e: &Engine) -> Value {
    ok(
        e,
        "lab-agreement-set",
        json!({"agreement_id": "XY-2024-001", "lab_id": "H001", "institution_id": "C001", "items": ["STD-P-CBC"],
               "valid_from": "2024-10-01", "valid_to": "2024-10-31", "name": "血常规委托检验协议"}),
    )
}

#[test]
fn an_unpaid_order_prints_no_label_and_nothing_changes() {
    let e = Engine::open(CFG).unwrap();
    setup(&e);
    let o = submit(&e, json!(["C001-XCG", "C001-GGN"]));
    assert_eq!((o["payment_status"].as_str(), o["collect_before_payment"].as_bool()), (Some("unpaid"), Some(false)));
    let id = oid(&o);
    let events_before = kinds(&e);
    let x = err(&e, "specimen-print", json!({"order_id": id, "request_id": "print-unpaid"}));
    assert_eq!(x.code(), ErrorCode::LabOrderUnpaid);
    assert!(x.message().contains(&id) && x.message_zh().contains("尚未缴费"), "{x:?}");
    for text in [x.message(), x.message_zh()] {
        assert!(!text.contains("张三丰") && !text.contains("13800138000") && !text.contains("P001"), "{text}");
    }
    // Nothing changed: no tube, no barcode taken, no event, the order as it was.
    let info = ok(&e, "lab-order-info", json!({"order_id": id}));
    assert_eq!(info["status"], "submitted");
    assert_eq!(info["specimens"], json!([]));
    assert!(info["items"].as_array().unwrap().iter().all(|i| i["printed"] == false));
    assert_eq!(ok(&e, "specimen-query", json!({"institution_id": "C001"}))["total"], 0);
    assert_eq!(kinds(&e), events_before);
    // Paid, the same order prints, and its first barcode is the day's first.
    let paid = pay(&e, &id);
    assert_eq!(paid["payment_status"], "paid");
    assert_eq!(paid["receipt_no"], "SF-0001");
    assert!(paid["paid_at"].as_str().unwrap().starts_with("2024-10-29T09:00:00"));
    let p = ok(&e, "specimen-print", json!({"order_id": id}));
    assert_eq!(p["specimens"][0]["barcode"], "241029000001");
}

#[test]
fn a_paid_order_or_one_collected_before_payment_prints() {
    let e = Engine::open(CFG).unwrap();
    setup(&e);
    // Paid first (the source's order of things).
    let paid = order(&e, json!(["C001-XCG"]));
    assert_eq!(ok(&e, "specimen-print", json!({"order_id": oid(&paid)}))["specimens"].as_array().unwrap().len(), 1);
    // An urgent order that says the specimen comes before the fee.
    let urgent = ok(
        &e,
        "lab-order-submit",
        json!({"institution_id": "C001", "lab_id": "H001", "patient_id": "P002", "doctor_id": "D01", "order_type": "urgent",
               "collect_before_payment": true, "items": ["C001-GGN"]}),
    );
    assert_eq!((urgent["payment_status"].as_str(), urgent["collect_before_payment"].as_bool()), (Some("unpaid"), Some(true)));
    let p = ok(&e, "specimen-print", json!({"order_id": oid(&urgent)}));
    assert_eq!(p["specimens"][0]["barcode"], "241029000002");
    // Its fee is recorded afterwards all the same.
    assert_eq!(pay(&e, &oid(&urgent))["status"], "printed");
    let q = ok(&e, "lab-order-query", json!({"institution_id": "C001", "payment_status": "paid"}));
    assert_eq!(q["total"], 2);
    assert_eq!(ok(&e, "lab-order-query", json!({"institution_id": "C001", "payment_status": "unpaid"}))["total"], 0);
    assert_eq!(err(&e, "lab-order-query", json!({"institution_id": "C001", "payment_status": "free"})).code(), ErrorCode::InvalidField);
}

#[test]
fn the_ordering_institution_records_the_payment_and_a_refund_needs_the_order_cancelled() {
    let e = Engine::open(CFG).unwrap();
    setup(&e);
    let id = oid(&submit(&e, json!(["C001-XCG"])));
    let as_ = |role, inst: &str, cmd: &str, req: Value| e.call_value_as(&Principal::new(role, Some(inst), None).unwrap(), cmd, &req.to_string());
    // Another centre, or the lab, may not record it.
    let paid = json!({"order_id": id, "payment_status": "paid"});
    assert_eq!(as_(Role::Community, "C002", "lab-order-payment", paid.clone()).unwrap_err().code(), ErrorCode::LabForbidden);
    assert_eq!(as_(Role::Lab, "H001", "lab-order-payment", paid.clone()).unwrap_err().code(), ErrorCode::Forbidden);
    assert_eq!(err(&e, "lab-order-payment", json!({"order_id": id, "payment_status": "unpaid"})).code(), ErrorCode::InvalidField);
    // Nothing paid, nothing to refund.
    assert_eq!(err(&e, "lab-order-payment", json!({"order_id": id, "payment_status": "refunded"})).code(), ErrorCode::LabPaymentState);
    let first = as_(Role::Community, "C001", "lab-order-payment", json!({"order_id": id, "payment_status": "paid", "request_id": "pay-1"})).unwrap();
    assert_eq!(first["payment_status"], "paid");
    // The same request replays; paying again changes nothing.
    let again = as_(Role::Community, "C001", "lab-order-payment", json!({"order_id": id, "payment_status": "paid", "request_id": "pay-1"})).unwrap();
    assert_eq!(again, first);
    ok(&e, "advance-clock", json!({"seconds": 60}));
    assert_eq!(ok(&e, "lab-order-payment", paid.clone())["paid_at"], first["paid_at"]);
    assert_eq!(kinds(&e).iter().filter(|k| *k == "lab_order_paid").count(), 1);
    // A refund needs the cancellation first; the cancellation says one is due.
    assert_eq!(err(&e, "lab-order-payment", json!({"order_id": id, "payment_status": "refunded"})).code(), ErrorCode::LabPaymentState);
    ok(&e, "lab-order-cancel", json!({"order_id": id, "reason": "患者放弃"}));
    let ev = ok(&e, "next-events", json!({"limit": 10000}));
    let cancelled = ev["events"].as_array().unwrap().iter().find(|x| x["type"] == "lab_order_cancelled").unwrap();
    assert_eq!(cancelled["data"]["refund_due"], true, "{cancelled}");
    let r = ok(&e, "lab-order-payment", json!({"order_id": id, "payment_status": "refunded"}));
    assert_eq!((r["payment_status"].as_str(), r["status"].as_str()), (Some("refunded"), Some("cancelled")));
    assert!(r["refunded_at"].is_string());
    assert_eq!(err(&e, "lab-order-payment", paid).code(), ErrorCode::LabOrderCancelled);
    assert!(!ev.to_string().contains("张三丰"));
}

#[test]
fn an_order_outside_its_agreement_dates_items_or_institution_is_refused() {
    let e = Engine::open(CFG).unwrap();
    setup(&e);
    // H002 offers the blood count too, and is under no agreement: orders to it are not checked.
    ok(&e, "lab-local-code-set", json!({"lab_id": "H002", "resource_code": "STD-P-CBC", "local_code": "H2-CBC"}));
    let a = cbc_agreement(&e);
    assert_eq!((a["created"].as_bool(), a["in_force"].as_bool(), a["all_items"].as_bool()), (Some(true), Some(true), Some(false)));
    // In force, covered: the order names its agreement.
    let o = order(&e, json!(["C001-XCG"]));
    assert_eq!(o["items"][0]["agreement_id"], "XY-2024-001");
    // A project the agreement does not cover.
    let x = err(&e, "lab-order-submit", json!({"institution_id": "C001", "lab_id": "H001", "patient_id": "P1", "doctor_id": "D1", "items": ["C001-GGN"]}));
    assert_eq!(x.code(), ErrorCode::LabNoAgreement);
    assert!(x.message().contains("STD-P-LFT") && x.message().contains("2024-10-29"), "{}", x.message());
    // A panel holding one uncovered project is refused whole.
    ok(&e, "lab-panel-upsert", json!({"lab_id": "H001", "code": "PK-1", "name": "体检套餐", "resources": ["STD-P-CBC", "STD-P-LFT"]}));
    let x = err(&e, "lab-order-submit", json!({"institution_id": "C001", "lab_id": "H001", "patient_id": "P1", "doctor_id": "D1", "panels": ["PK-1"]}));
    assert_eq!(x.code(), ErrorCode::LabNoAgreement);
    // An institution the agreement does not name (refused before its mappings are looked at).
    let x = err(&e, "lab-order-submit", json!({"institution_id": "C002", "lab_id": "H001", "patient_id": "P1", "doctor_id": "D1", "items": ["STD-P-CBC"]}));
    assert_eq!(x.code(), ErrorCode::LabNoAgreement);
    // The lab without agreements still takes C001's order.
    ok(&e, "lab-order-submit", json!({"institution_id": "C001", "lab_id": "H002", "patient_id": "P1", "doctor_id": "D1", "items": ["C001-XCG"]}));
    // What C001 may order from H001 today.
    let s = ok(&e, "lab-item-search", json!({"lab_id": "H001", "q": "", "institution_id": "C001"}));
    let codes: Vec<&str> = s["results"].as_array().unwrap().iter().map(|r| r["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["STD-P-CBC"]);
    let labs = |inst: &str| -> Vec<String> {
        ok(&e, "lab-list", json!({"institution_id": inst}))["labs"].as_array().unwrap().iter().map(|l| l["lab_id"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(labs("C001"), ["H001", "H002"]);
    assert_eq!(labs("C002"), ["H002"]);
    // After the last day, the blood count is refused too.
    ok(&e, "advance-clock", json!({"seconds": 3 * 86400}));
    let x = err(&e, "lab-order-submit", json!({"institution_id": "C001", "lab_id": "H001", "patient_id": "P1", "doctor_id": "D1", "items": ["C001-XCG"]}));
    assert_eq!(x.code(), ErrorCode::LabNoAgreement);
    assert!(x.message().contains("2024-11-01"), "{}", x.message());
    assert_eq!(labs("C001"), ["H002"]);
    // A new agreement from November, for every project, takes orders again.
    let b = ok(&e, "lab-agreement-set", json!({"agreement_id": "XY-2024-002", "lab_id": "H001", "institution_id": "C001", "valid_from": "2024-11-01"}));
    assert_eq!((b["all_items"].as_bool(), b["valid_to"].is_null()), (Some(true), true));
    let o = order(&e, json!(["C001-XCG", "C001-GGN"]));
    assert_eq!(o["items"][1]["agreement_id"], "XY-2024-002");
    // Nothing refused was stored: two orders to H001, one to H002.
    assert_eq!(ok(&e, "lab-order-query", json!({"institution_id": "C001"}))["total"], 3);
}

#[test]
fn agreements_are_the_platforms_to_set_and_each_party_sees_its_own() {
    let e = Engine::open(CFG).unwrap();
    setup(&e);
    cbc_agreement(&e);
    ok(&e, "lab-agreement-set", json!({"agreement_id": "XY-C2", "lab_id": "H001", "institution_id": "C002", "valid_from": "2024-01-01"}));
    let as_ = |role, inst: &str, cmd: &str, req: Value| e.call_value_as(&Principal::new(role, Some(inst), None).unwrap(), cmd, &req.to_string());
    let set = json!({"agreement_id": "XY-9", "lab_id": "H001", "institution_id": "C001", "valid_from": "2024-01-01"});
    for (role, inst) in [(Role::Community, "C001"), (Role::Lab, "H001"), (Role::Hospital, "H001")] {
        assert_eq!(as_(role, inst, "lab-agreement-set", set.clone()).unwrap_err().code(), ErrorCode::Forbidden);
    }
    let ids = |v: Value| -> Vec<String> { v["agreements"].as_array().unwrap().iter().map(|a| a["agreement_id"].as_str().unwrap().to_string()).collect() };
    assert_eq!(ids(as_(Role::Community, "C001", "lab-agreement-query", json!({})).unwrap()), ["XY-2024-001"]);
    assert_eq!(ids(as_(Role::Community, "C001", "lab-agreement-query", json!({"institution_id": "C002"})).unwrap()), Vec::<String>::new());
    assert_eq!(ids(as_(Role::Lab, "H001", "lab-agreement-query", json!({})).unwrap()), ["XY-2024-001", "XY-C2"]);
    assert_eq!(ids(ok(&e, "lab-agreement-query", json!({"item": "STD-P-LFT"}))), ["XY-C2"]);
    assert_eq!(ids(ok(&e, "lab-agreement-query", json!({"date": "2024-11-15"}))), ["XY-C2"]);
    // Bad agreements are refused and nothing is stored.
    for (req, code) in [
        (
            json!({"agreement_id": "X", "lab_id": "H001", "institution_id": "C001", "valid_from": "2024-10-01", "valid_to": "2024-09-30"}),
            ErrorCode::InvalidField,
        ),
        (json!({"agreement_id": "X", "lab_id": "H001", "institution_id": "C001", "valid_from": "2024-10-01", "items": []}), ErrorCode::InvalidField),
        (json!({"agreement_id": "X", "lab_id": "H001", "institution_id": "H001", "valid_from": "2024-10-01"}), ErrorCode::InvalidField),
        (
            json!({"agreement_id": "X", "lab_id": "H001", "institution_id": "C001", "valid_from": "2024-10-01", "items": ["STD-P-NONE"]}),
            ErrorCode::LabResourceNotFound,
        ),
        (json!({"agreement_id": "X", "lab_id": "H001", "institution_id": "C001"}), ErrorCode::MissingField),
    ] {
        assert_eq!(err(&e, "lab-agreement-set", req.clone()).code(), code, "{req}");
    }
    assert_eq!(ok(&e, "lab-agreement-query", json!({}))["total"], 2);
}

#[test]
fn agreements_and_payments_survive_reopening_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let open = || Engine::open(&json!({"data_dir": dir.path(), "clock_start": "2024-10-29T09:00:00+08:00", "clock": "manual"}).to_string()).unwrap();
    let (paid, unpaid) = {
        let e = open();
        setup(&e);
        cbc_agreement(&e);
        let paid = oid(&order(&e, json!(["C001-XCG"])));
        let unpaid = oid(&submit(&e, json!(["C001-XCG"])));
        e.close();
        (paid, unpaid)
    };
    let e = open();
    let a = ok(&e, "lab-agreement-query", json!({"lab_id": "H001"}));
    assert_eq!(a["total"], 1);
    assert_eq!(a["agreements"][0]["items"], json!(["STD-P-CBC"]));
    assert_eq!(a["agreements"][0]["valid_to"], "2024-10-31");
    // Still enforced after the reopen.
    let x = err(&e, "lab-order-submit", json!({"institution_id": "C001", "lab_id": "H001", "patient_id": "P1", "doctor_id": "D1", "items": ["C001-GGN"]}));
    assert_eq!(x.code(), ErrorCode::LabNoAgreement);
    let info = ok(&e, "lab-order-info", json!({"order_id": paid}));
    assert_eq!((info["payment_status"].as_str(), info["receipt_no"].as_str()), (Some("paid"), Some("SF-0001")));
    assert_eq!(info["items"][0]["agreement_id"], "XY-2024-001");
    ok(&e, "specimen-print", json!({"order_id": paid}));
    assert_eq!(err(&e, "specimen-print", json!({"order_id": unpaid})).code(), ErrorCode::LabOrderUnpaid);
    pay(&e, &unpaid);
    e.close();
    let e = open();
    assert_eq!(ok(&e, "lab-order-info", json!({"order_id": unpaid}))["payment_status"], "paid");
    ok(&e, "specimen-print", json!({"order_id": unpaid}));
}
