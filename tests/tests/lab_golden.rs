//! Label and manifest output of a fixed specimen against the golden files
//! in tests/golden/lab/ (`YILIAN_BLESS=1` rewrites them after a deliberate
//! change; review the diff).

mod lab_common;

use base64::Engine as _;
use lab_common::*;
use serde_json::json;
use yilian_core::Engine;

fn golden(name: &str, got: &[u8]) {
    let path = format!("{}/golden/lab/{name}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var("YILIAN_BLESS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(format!("{}/golden/lab", env!("CARGO_MANIFEST_DIR"))).unwrap();
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read(&path).unwrap_or_else(|_| panic!("missing {path}; run with YILIAN_BLESS=1"));
    assert!(want == got, "{name} differs from the golden file; run with YILIAN_BLESS=1 if the change is wanted");
}

fn fixed() -> (Engine, String, String) {
    let e = Engine::open(CFG).unwrap();
    setup(&e);
    ok(&e, "lab-barcode-rule-set", json!({"institution_id": "C001", "prefix": "C1", "date": "YYMMDD", "seq_width": 5}));
    let o = order(&e, json!(["C001-XCG", "C001-GGN"]));
    let oid = o["order_id"].as_str().unwrap().to_string();
    let p = ok(&e, "specimen-print", json!({"order_id": oid}));
    let b: Vec<String> = p["specimens"].as_array().unwrap().iter().map(|s| s["barcode"].as_str().unwrap().to_string()).collect();
    let sh = ok(&e, "shipment-create", json!({"institution_id": "C001", "barcodes": b, "sender": "赵护士", "contact": "0512-57001234"}));
    (e, b[0].clone(), sh["shipment_id"].as_str().unwrap().to_string())
}

#[test]
fn labels_match_the_golden_files() {
    let (e, barcode, _) = fixed();
    assert_eq!(barcode, "C124102900001");
    let zpl = ok(&e, "specimen-label", json!({"barcode": barcode, "format": "zpl"}));
    let zpl = zpl["label"]["content"].as_str().unwrap();
    assert!(zpl.contains("张**") && !zpl.contains("张三丰"));
    golden("label.zpl", zpl.as_bytes());
    let tspl = ok(&e, "specimen-label", json!({"barcode": barcode, "format": "tspl"}));
    assert_eq!(tspl["label"]["encoding"], "GBK");
    let bytes = base64::engine::general_purpose::STANDARD.decode(tspl["label"]["content_base64"].as_str().unwrap()).unwrap();
    // 血常规 in GBK.
    assert!(bytes.windows(6).any(|w| w == [0xD1, 0xAA, 0xB3, 0xA3, 0xB9, 0xE6]));
    golden("label.tspl", &bytes);
    // The typed call gives the same bytes.
    let typed = e.specimen_label(&barcode, yilian_core::render::LabelFormat::Tspl, &Default::default()).unwrap();
    assert_eq!(typed, bytes);
    assert_eq!(
        e.specimen_label("NOPE", yilian_core::render::LabelFormat::Svg, &Default::default()).unwrap_err().code(),
        yilian_core::ErrorCode::LabSpecimenNotFound
    );
    let svg = ok(&e, "specimen-label", json!({"barcode": barcode, "format": "svg"}));
    golden("label.svg", svg["label"]["content"].as_str().unwrap().as_bytes());
    // A label never counts as a print; a reprint does and keeps the barcode.
    assert_eq!(ok(&e, "specimen-reprint", json!({"barcode": barcode}))["print_count"], 2);
}

#[test]
fn manifests_match_the_golden_files() {
    let (e, _, shid) = fixed();
    let t = ok(&e, "shipment-manifest", json!({"shipment_id": shid, "format": "text"}));
    golden("manifest.txt", t["content"].as_str().unwrap().as_bytes());
    let s = ok(&e, "shipment-manifest", json!({"shipment_id": shid, "format": "svg"}));
    golden("manifest.svg", s["content"].as_str().unwrap().as_bytes());
}
