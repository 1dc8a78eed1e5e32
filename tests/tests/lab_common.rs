//! Shared setup of the lab tests: the reference catalogue and mappings.
#![allow(dead_code)]

use serde_json::{json, Value};
use yilian_core::Engine;

pub const CFG: &str = r#"{"clock_start":"2024-10-29T09:00:00+08:00","clock":"manual"}"#;

pub fn data(name: &str) -> String {
    std::fs::read_to_string(format!("{}/data/lab/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

pub fn ok(e: &Engine, cmd: &str, req: Value) -> Value {
    e.call_value(cmd, &req.to_string()).unwrap_or_else(|err| panic!("{cmd} failed: {err:?}"))
}

pub fn err(e: &Engine, cmd: &str, req: Value) -> yilian_core::Error {
    match e.call_value(cmd, &req.to_string()) {
        Ok(v) => panic!("{cmd} should fail, got {v}"),
        Err(x) => x,
    }
}

/// The standard catalogue, H001 offering every project under its own codes,
/// C001's sub-items (the reference file) and projects mapped.
pub fn setup(e: &Engine) {
    setup_via(e, &|cmd, req| ok(e, cmd, req));
}

/// `setup` on any engine, done by the platform (which keeps the network's
/// reference data and may set every institution's tables).
pub fn setup_as_platform(e: &Engine) {
    let p = yilian_core::Principal::platform();
    setup_via(e, &|cmd, req| e.call_value_as(&p, cmd, &req.to_string()).unwrap_or_else(|err| panic!("{cmd} failed: {err:?}")));
}

fn setup_via(e: &Engine, ok: &dyn Fn(&str, Value) -> Value) {
    let _ = e;
    ok("lab-std-item-import", json!({"content": data("lab-standard-items.csv")}));
    ok("lab-resource-import", json!({"content": data("lab-panels.csv")}));
    for (std, local) in [
        ("STD-P-CBC", "LIS-1001"),
        ("STD-P-LFT", "LIS-2001"),
        ("STD-P-RFT", "LIS-2002"),
        ("STD-P-INF", "LIS-3001"),
        ("STD-P-HBA1C", "LIS-1010"),
        ("STD-P-COAG", "LIS-4001"),
        ("STD-P-ELE", "LIS-2005"),
    ] {
        ok("lab-local-code-set", json!({"lab_id": "H001", "resource_code": std, "local_code": local}));
    }
    let v = ok("lab-mapping-import", json!({"institution_id": "C001", "kind": "items", "content": data("community-items-C001.csv")}));
    assert_eq!(v["imported"], 25);
    assert_eq!(v["mapped"], 24);
    ok(
        "lab-inst-project-upsert",
        json!({"institution_id": "C001", "projects": [
            {"code": "C001-XCG", "name": "血常规", "std_code": "STD-P-CBC"},
            {"code": "C001-GGN", "name": "肝功能", "std_code": "STD-P-LFT"},
            {"code": "C001-CRB", "name": "传染病四项", "std_code": "STD-P-INF"},
            {"code": "C001-NX", "name": "凝血四项"}
        ]}),
    );
    ok(
        "lab-inst-item-upsert",
        json!({"institution_id": "C001", "items": [{"code": "C001-0108", "name": "糖化血红蛋白", "specimen_type": "全血", "std_code": "STD-HEM-010"}]}),
    );
    // The lab's own sub-item codes for the blood count.
    ok(
        "lab-inst-item-upsert",
        json!({"institution_id": "H001", "items": [
            {"code": "WBC", "name": "白细胞", "specimen_type": "全血", "std_code": "STD-HEM-001"},
            {"code": "HGB", "name": "血红蛋白", "specimen_type": "全血", "std_code": "STD-HEM-003"}
        ]}),
    );
}

/// C001 orders `items` from H001 for its patient, who pays at C001 (the
/// fee comes before the specimen): the paid order.
pub fn order(e: &Engine, items: Value) -> Value {
    let o = submit(e, items);
    pay(e, o["order_id"].as_str().unwrap())
}

/// C001 orders `items` from H001; nothing is paid yet.
pub fn submit(e: &Engine, items: Value) -> Value {
    ok(
        e,
        "lab-order-submit",
        json!({"institution_id": "C001", "lab_id": "H001", "patient_id": "P001", "patient": {"name": "张三丰", "sex": "男", "age": "45岁", "phone": "13800138000"},
               "doctor_id": "D01", "doctor_name": "李医生", "diagnosis": "发热待查", "items": items}),
    )
}

/// The fee of an order, paid at the ordering institution's window.
pub fn pay(e: &Engine, order_id: &str) -> Value {
    ok(e, "lab-order-payment", json!({"order_id": order_id, "payment_status": "paid", "receipt_no": "SF-0001"}))
}

/// A critical value (HGB) published on a new paid C001 order, its tube
/// printed, shipped to H001, received and reported: its id.
pub fn critical_value(e: &Engine) -> String {
    let o = order(e, json!(["C001-XCG"]));
    let oid = o["order_id"].as_str().unwrap().to_string();
    let p = ok(e, "specimen-print", json!({"order_id": oid}));
    let barcode = p["specimens"][0]["barcode"].as_str().unwrap().to_string();
    ok(e, "shipment-create", json!({"institution_id": "C001", "barcodes": [barcode], "sender": "赵护士"}));
    ok(e, "specimen-receive", json!({"barcode": barcode, "receiver": "王检验", "lab_id": "H001"}));
    ok(e, "report-submit", json!({"barcode": barcode, "order_id": oid, "tester": "王检验", "reviewer": "陈主任", "results": cbc_results()}));
    let cv = ok(e, "critical-value-publish", json!({"publisher": "陈主任", "contact": "0512-57001111", "values": [{"barcode": barcode, "item_code": "HGB"}]}));
    cv["critical_values"][0]["critical_id"].as_str().unwrap().to_string()
}

pub fn cbc_results() -> Value {
    json!([
        {"item_code": "WBC", "value": "6.1"},
        {"item_code": "STD-HEM-002", "value": "4.8"},
        {"item_code": "HGB", "value": "45"},
        {"item_code": "STD-HEM-004", "value": "0.42"},
        {"item_code": "STD-HEM-005", "value": "210"},
        {"item_code": "STD-HEM-006", "value": "60"},
        {"item_code": "STD-HEM-007", "value": "30"}
    ])
}
