//! Mapping tables (L1–L3): all-or-nothing imports that name every rejected
//! row, CSV/xlsx/FHIR exports that import back, and the one-to-one
//! invariant under random map/unmap/remap/import sequences.

mod lab_common;

use lab_common::*;
use proptest::prelude::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use yilian_core::{Engine, ErrorCode};

fn catalogue() -> Engine {
    let e = Engine::open(CFG).unwrap();
    ok(&e, "lab-std-item-import", json!({"content": data("lab-standard-items.csv")}));
    ok(&e, "lab-resource-import", json!({"content": data("lab-panels.csv")}));
    e
}

#[test]
fn an_import_with_bad_rows_names_each_and_imports_nothing() {
    let e = catalogue();
    let csv = "inst_code,inst_name,specimen_type,maps_to\n\
               A1,白细胞,全血,STD-HEM-001\n\
               A2,红细胞,全血,STD-HEM-001\n\
               A3,,全血,STD-HEM-003\n\
               A4,未知,血清,STD-NOPE\n\
               A1,重复,全血,\n\
               A5,血糖,全血,STD-CHE-020\n\
               A6,血钾,血清,STD-CHE-040\n";
    let x = err(&e, "lab-mapping-import", json!({"institution_id": "C001", "content": csv}));
    assert_eq!(x.code(), ErrorCode::LabImportRejected);
    // Rows by number, never by the values they hold (the dry run names the codes).
    for want in ["row 3: ", "row 4: ", "row 5: ", "row 6: ", "row 7: "] {
        assert!(x.message().contains(want), "{want} not in {}", x.message());
    }
    assert!(!x.message().contains("row 8") && !x.message().contains("A4"));
    assert_eq!(ok(&e, "lab-inst-item-query", json!({"institution_id": "C001"}))["total"], 0);
    let v = ok(&e, "lab-mapping-import", json!({"institution_id": "C001", "content": csv, "validate_only": true}));
    assert_eq!(v["valid"], false);
    assert_eq!(v["rejected"].as_array().unwrap().len(), 5);
    assert_eq!(
        v["rejected"][0],
        json!({"row": 3, "code": "A2", "reason": "standard code STD-HEM-001 is already mapped by row 2", "reason_zh": "标准编码 STD-HEM-001 已由第 2 行对照"})
    );
}

#[test]
fn an_import_may_not_take_a_standard_item_held_by_another_entry() {
    let e = catalogue();
    ok(&e, "lab-mapping-import", json!({"institution_id": "C001", "content": data("community-items-C001.csv")}));
    let x = err(
        &e,
        "lab-mapping-import",
        json!({"institution_id": "C001", "content": "inst_code,inst_name,specimen_type,maps_to\nNEW,白细胞2,全血,STD-HEM-001\n"}),
    );
    assert_eq!(x.code(), ErrorCode::LabImportRejected);
    assert!(x.message().contains("C001-0101"));
    // Moving the mapping inside one file is fine.
    let v = ok(
        &e,
        "lab-mapping-import",
        json!({"institution_id": "C001", "content": "inst_code,inst_name,specimen_type,maps_to\nNEW,白细胞2,全血,STD-HEM-001\nC001-0101,白细胞数,全血,\n"}),
    );
    assert_eq!(v["mapped"], 1);
    let q = ok(&e, "lab-inst-item-query", json!({"institution_id": "C001", "std_code": "STD-HEM-001"}));
    assert_eq!(q["items"].as_array().unwrap().len(), 1);
    assert_eq!(q["items"][0]["code"], "NEW");
}

#[test]
fn csv_xlsx_and_fhir_exports_round_trip() {
    let e = catalogue();
    ok(&e, "lab-mapping-import", json!({"institution_id": "C001", "content": data("community-items-C001.csv")}));
    let csv = ok(&e, "lab-mapping-export", json!({"institution_id": "C001", "format": "csv"}));
    assert_eq!(csv["rows"], 25);
    let text = csv["content"].as_str().unwrap();
    assert!(text.starts_with("inst_code,inst_name,specimen_type,specimen_note,maps_to,std_name,status\n"));
    assert!(text.contains("C001-0999,同型半胱氨酸,血清,,,,unmapped"));
    let xlsx = ok(&e, "lab-mapping-export", json!({"institution_id": "C001", "format": "xlsx"}));
    let b64 = xlsx["content_base64"].as_str().unwrap();
    // Into another institution, from xlsx, then the CSV of both agree.
    let v = ok(&e, "lab-mapping-import", json!({"institution_id": "C002", "format": "xlsx", "content_base64": b64}));
    assert_eq!(v["imported"], 25);
    assert_eq!(v["mapped"], 24);
    let csv2 = ok(&e, "lab-mapping-export", json!({"institution_id": "C002", "format": "csv"}));
    assert_eq!(csv2["content"], csv["content"]);
    // Files by path need a data directory: they live in <data_dir>/lab-files.
    assert_eq!(err(&e, "lab-mapping-export", json!({"institution_id": "C001", "format": "xlsx", "path": "c001.xlsx"})).code(), ErrorCode::InvalidField);
    let dir = tempfile::tempdir().unwrap();
    let d = Engine::open(&json!({"data_dir": dir.path()}).to_string()).unwrap();
    ok(&d, "lab-std-item-import", json!({"content": data("lab-standard-items.csv")}));
    ok(&d, "lab-mapping-import", json!({"institution_id": "C001", "content": data("community-items-C001.csv")}));
    let w = ok(&d, "lab-mapping-export", json!({"institution_id": "C001", "format": "xlsx", "path": "out/c001.xlsx"}));
    assert!(w["bytes"].as_u64().unwrap() > 1000);
    assert!(dir.path().join("lab-files/out/c001.xlsx").is_file());
    ok(&d, "lab-mapping-import", json!({"institution_id": "C003", "path": "out/c001.xlsx"}));
    assert_eq!(ok(&d, "lab-inst-item-query", json!({"institution_id": "C003", "mapped": false}))["total"], 1);
    for bad in ["../c001.xlsx", "/etc/passwd", "out/../../x.csv"] {
        assert_eq!(err(&d, "lab-mapping-import", json!({"institution_id": "C003", "path": bad})).code(), ErrorCode::InvalidField, "{bad}");
    }
    // FHIR R4 ConceptMap.
    let f = ok(&e, "lab-mapping-export", json!({"institution_id": "C001", "format": "fhir"}));
    let cm = &f["concept_map"];
    assert_eq!(cm["resourceType"], "ConceptMap");
    let el = cm["group"][0]["element"].as_array().unwrap();
    assert_eq!(el.len(), 25);
    let wbc = el.iter().find(|x| x["code"] == "C001-0101").unwrap();
    assert_eq!(wbc["target"][0], json!({"code": "STD-HEM-001", "display": "白细胞计数", "equivalence": "equivalent"}));
    let none = el.iter().find(|x| x["code"] == "C001-0999").unwrap();
    assert_eq!(none["target"][0]["equivalence"], "unmatched");
    // Garbage is a clear error.
    assert_eq!(
        err(&e, "lab-mapping-import", json!({"institution_id": "C001", "content_base64": "AAAA", "format": "xlsx"})).code(),
        ErrorCode::LabFileUnreadable
    );
}

#[test]
fn queries_combine_conditions() {
    let e = catalogue();
    ok(&e, "lab-mapping-import", json!({"institution_id": "C001", "content": data("community-items-C001.csv")}));
    let q = ok(&e, "lab-inst-item-query", json!({"institution_id": "C001", "specimen_type": "血清", "std_name": "转移酶"}));
    assert_eq!(q["total"], 2);
    let q = ok(&e, "lab-inst-item-query", json!({"institution_id": "C001", "name": "xcg"}));
    assert_eq!(q["total"], 0);
    let q = ok(&e, "lab-inst-item-query", json!({"institution_id": "C001", "name": "bxb", "mapped": true}));
    assert_eq!(q["items"][0]["code"], "C001-0101");
    let q = ok(&e, "lab-std-item-query", json!({"specimen_type": "血浆", "name": "凝血"}));
    assert_eq!(q["total"], 3);
}

#[derive(Debug, Clone)]
enum Op {
    Map(usize, usize),
    Unmap(usize),
    Remap(usize, usize),
    Delete(usize),
    Import(Vec<(usize, Option<usize>)>),
}

const STD: [&str; 6] = ["STD-CHE-001", "STD-CHE-002", "STD-CHE-003", "STD-CHE-004", "STD-CHE-005", "STD-CHE-010"];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..8usize, 0..6usize).prop_map(|(a, b)| Op::Map(a, b)),
        (0..8usize).prop_map(Op::Unmap),
        (0..8usize, 0..6usize).prop_map(|(a, b)| Op::Remap(a, b)),
        (0..8usize).prop_map(Op::Delete),
        proptest::collection::vec((0..8usize, proptest::option::of(0..6usize)), 1..5).prop_map(Op::Import),
    ]
}

/// The model: institution code → standard code, and the engine's answer must
/// match it after every step (a refused step changes nothing).
fn check(e: &Engine, model: &HashMap<String, Option<String>>) {
    let q = ok(e, "lab-inst-item-query", json!({"institution_id": "CX"}));
    let items = q["items"].as_array().cloned().unwrap_or_default();
    let mut seen = HashMap::new();
    for it in &items {
        if let Some(s) = it["std_code"].as_str() {
            assert!(seen.insert(s.to_string(), it["code"].clone()).is_none(), "standard item {s} mapped twice");
        }
    }
    let engine: HashMap<String, Option<String>> =
        items.iter().map(|it| (it["code"].as_str().unwrap().to_string(), it["std_code"].as_str().map(str::to_string))).collect();
    assert_eq!(&engine, model);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn one_to_one_holds_under_any_sequence(ops in proptest::collection::vec(op(), 1..30)) {
        let e = catalogue();
        let mut model: HashMap<String, Option<String>> = HashMap::new();
        let code = |i: usize| format!("X{i}");
        // Every entry exists first (unmapped).
        let all: Vec<Value> = (0..8).map(|i| json!({"code": code(i), "name": format!("项{i}"), "specimen_type": "血清"})).collect();
        ok(&e, "lab-inst-item-upsert", json!({"institution_id": "CX", "items": all}));
        for i in 0..8 { model.insert(code(i), None); }
        for op in ops {
            let holder = |m: &HashMap<String, Option<String>>, s: &str| m.iter().find(|(_, v)| v.as_deref() == Some(s)).map(|(k, _)| k.clone());
            match op {
                Op::Map(a, b) | Op::Remap(a, b) => {
                    let remap = matches!(op, Op::Remap(..));
                    let r = e.call_value("lab-inst-item-map", &json!({"institution_id": "CX", "code": code(a), "std_code": STD[b], "remap": remap}).to_string());
                    let exists = model.contains_key(&code(a));
                    let cur = model.get(&code(a)).cloned().flatten();
                    let expect_ok = exists && (cur.as_deref() == Some(STD[b]) || (holder(&model, STD[b]).is_none() && (cur.is_none() || remap)));
                    prop_assert_eq!(r.is_ok(), expect_ok, "{:?}", r);
                    if expect_ok { model.insert(code(a), Some(STD[b].to_string())); }
                }
                Op::Unmap(a) => {
                    let r = e.call_value("lab-inst-item-unmap", &json!({"institution_id": "CX", "code": code(a)}).to_string());
                    prop_assert_eq!(r.is_ok(), model.contains_key(&code(a)));
                    if let Some(v) = model.get_mut(&code(a)) { *v = None; }
                }
                Op::Delete(a) => {
                    let r = e.call_value("lab-inst-item-delete", &json!({"institution_id": "CX", "code": code(a)}).to_string());
                    prop_assert_eq!(r.is_ok(), model.remove(&code(a)).is_some());
                }
                Op::Import(rows) => {
                    let mut csv = String::from("inst_code,inst_name,specimen_type,maps_to\n");
                    for (a, b) in &rows { csv.push_str(&format!("{},项{a},血清,{}\n", code(*a), b.map(|b| STD[b]).unwrap_or(""))); }
                    let r = e.call_value("lab-mapping-import", &json!({"institution_id": "CX", "content": csv}).to_string());
                    // Valid iff no code twice and the resulting mapping is one-to-one.
                    let mut next = model.clone();
                    let mut dup = false;
                    let mut codes = std::collections::HashSet::new();
                    for (a, b) in &rows {
                        dup |= !codes.insert(*a);
                        next.insert(code(*a), b.map(|b| STD[b].to_string()));
                    }
                    let mapped: Vec<&String> = next.values().flatten().collect();
                    let unique = mapped.len() == mapped.iter().collect::<std::collections::HashSet<_>>().len();
                    prop_assert_eq!(r.is_ok(), !dup && unique, "{:?} {:?}", rows, r);
                    if r.is_ok() { model = next; }
                }
            }
            check(&e, &model);
        }
    }
}
