//! Translating a 50-sub-item structured lab report into the ordering
//! institution's sub-items (issue 7, L8): the compiled `LabTranslator`
//! (target: under 1 µs per report), next to a plain `HashMap<String, …>`
//! translation that clones the institution's code and name into owned
//! strings per result (what a host would write by hand) and to the command
//! layer's `lab-translate` (JSON in and out), all in the same run.

use criterion::{black_box, Criterion};
use serde_json::json;
use std::collections::HashMap;
use yilian_core::Engine;

const N: usize = 50;

fn engine() -> Engine {
    let e = Engine::open(r#"{"clock_start":"2024-10-29T09:00:00+08:00"}"#).unwrap();
    let items: Vec<_> = (0..N)
        .map(|i| json!({"code": format!("STD-B-{i:03}"), "name": format!("小项{i}"), "specimen_type": "血清", "unit": "mmol/L", "ref_low": 1, "ref_high": 9}))
        .collect();
    e.call_value("lab-std-item-upsert", &json!({"items": items}).to_string()).unwrap();
    let inst: Vec<_> = (0..N)
        .map(|i| json!({"code": format!("C001-{i:04}"), "name": format!("本院小项{i}"), "specimen_type": "血清", "std_code": format!("STD-B-{i:03}")}))
        .collect();
    e.call_value("lab-inst-item-upsert", &json!({"institution_id": "C001", "items": inst}).to_string()).unwrap();
    let lab: Vec<_> = (0..N)
        .map(|i| json!({"code": format!("L{i:03}"), "name": format!("检验小项{i}"), "specimen_type": "血清", "std_code": format!("STD-B-{i:03}")}))
        .collect();
    e.call_value("lab-inst-item-upsert", &json!({"institution_id": "H001", "items": lab}).to_string()).unwrap();
    e
}

fn main() {
    let e = engine();
    let tr = e.lab_translator("C001", Some("H001")).unwrap();
    let codes: Vec<String> = (0..N).map(|i| format!("L{i:03}")).collect();
    let values: Vec<String> = (0..N).map(|i| format!("{}.{}", i % 9 + 1, i % 10)).collect();
    let report: Vec<(&str, &str)> = codes.iter().zip(&values).map(|(c, v)| (c.as_str(), v.as_str())).collect();
    let mut out = Vec::with_capacity(N);
    assert_eq!(tr.translate(&report, &mut out), 0);

    // The hand-written baseline: a std HashMap from lab code to the
    // institution's (code, name), owned strings out.
    let naive: HashMap<String, (String, String)> =
        tr.codes().filter(|(c, _)| c.starts_with('L')).map(|(c, e)| (c.to_string(), (e.inst_code.to_string(), e.inst_name.to_string()))).collect();
    let json_req = json!({"institution_id": "C001", "lab_id": "H001", "results": codes.iter().zip(&values).map(|(c, v)| (c.clone(), json!(v))).collect::<serde_json::Map<_, _>>()}).to_string();

    let mut c =
        Criterion::default().configure_from_args().warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(2));
    c.bench_function("lab_translate/compiled_50", |b| {
        b.iter(|| {
            black_box(tr.translate(black_box(&report), &mut out));
        })
    });
    c.bench_function("lab_translate/hashmap_owned_50", |b| {
        b.iter(|| {
            let v: Vec<(String, String, String)> = black_box(&report)
                .iter()
                .filter_map(|(code, value)| naive.get(*code).map(|(ic, name)| (ic.clone(), name.clone(), value.to_string())))
                .collect();
            black_box(v)
        })
    });
    c.bench_function("lab_translate/command_layer_50", |b| b.iter(|| black_box(e.call("lab-translate", black_box(&json_req)))));
    c.final_summary();

    // Ratios from a plain timing loop in the same run (criterion prints the
    // absolute figures above).
    let time = |f: &mut dyn FnMut()| {
        let n = 20_000;
        let t = std::time::Instant::now();
        for _ in 0..n {
            f();
        }
        t.elapsed().as_nanos() as f64 / n as f64
    };
    let compiled = time(&mut || {
        black_box(tr.translate(black_box(&report), &mut out));
    });
    let hashmap = time(&mut || {
        let v: Vec<(String, String, String)> =
            report.iter().filter_map(|(code, value)| naive.get(*code).map(|(ic, name)| (ic.clone(), name.clone(), value.to_string()))).collect();
        black_box(v);
    });
    let command = time(&mut || {
        black_box(e.call("lab-translate", &json_req));
    });
    println!(
        "lab_translate: compiled {compiled:.0} ns/report ({N} sub-items); hashmap+owned {:.1}x slower; command layer {:.1}x slower",
        hashmap / compiled,
        command / compiled
    );
}
