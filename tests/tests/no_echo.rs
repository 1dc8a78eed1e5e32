//! S1, issue #16 item 7: errors never echo personal input. Every request of
//! the shared vectors (which cover every registered command) is sent again,
//! just before its real step, with personal data in its string fields: every
//! string field at once set to an 18-digit ID number, a phone number or a
//! Chinese name, and each string field alone set to the ID number. Whatever
//! is refused must say so without the value, in English and in Chinese.

use serde_json::{json, Value};
use std::collections::BTreeSet;
use yilian_core::Engine;

/// What hosts put where an id belongs: an ID number, a mobile, a name.
const PERSONAL: [&str; 3] = ["320583199001011232", "13912345678", "欧阳娜娜"];

/// The request with every string (keys kept) replaced by `with`.
fn all_strings(v: &Value, with: &str) -> Value {
    match v {
        Value::String(_) => json!(with),
        Value::Array(a) => Value::Array(a.iter().map(|x| all_strings(x, with)).collect()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, x)| (k.clone(), all_strings(x, with))).collect()),
        x => x.clone(),
    }
}

/// The JSON pointer of every string in `v`.
fn string_paths(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::String(_) => out.push(at),
        Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| string_paths(x, format!("{at}/{i}"), out)),
        Value::Object(m) => m.iter().for_each(|(k, x)| string_paths(x, format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")), out)),
        _ => {}
    }
}

fn call(e: &Engine, who: &Option<String>, cmd: &str, text: &str) -> String {
    match who {
        Some(p) => e.call_as_json(p, cmd, text),
        None => e.call(cmd, text),
    }
}

type Step = (String, String, Option<Value>, Option<String>);

fn open(config: &Value, steps: &[Step], n: usize) -> Engine {
    let e = Engine::open(&config.to_string()).expect("the vector's config opens");
    for (cmd, text, _, who) in &steps[..n] {
        call(&e, who, cmd, text);
    }
    e
}

/// Runs one case; returns the commands probed and the refusals seen.
fn probe_case(name: &str, config: &Value, case: &Value, failures: &mut Vec<String>) -> (BTreeSet<String>, usize) {
    let steps: Vec<Step> = case["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let cmd = s["command"].as_str().unwrap().to_string();
            let who = s.get("principal").map(Value::to_string);
            match s.get("request_text") {
                Some(t) => (cmd, t.as_str().unwrap().to_string(), None, who),
                None => {
                    let r = s.get("request").cloned().unwrap_or_else(|| json!({}));
                    (cmd, r.to_string(), Some(r), who)
                }
            }
        })
        .collect();
    let mut e = open(config, &steps, 0);
    let (mut probed, mut refused) = (BTreeSet::new(), 0);
    for (i, (cmd, text, req, who)) in steps.iter().enumerate() {
        if let Some(req) = req.as_ref().filter(|_| cmd != "advance-clock") {
            probed.insert(cmd.clone());
            let mut probes: Vec<(String, &str, Value)> = PERSONAL.iter().map(|p| ("every string field".to_string(), *p, all_strings(req, p))).collect();
            let mut paths = Vec::new();
            string_paths(req, String::new(), &mut paths);
            for path in paths {
                let mut r = req.clone();
                *r.pointer_mut(&path).expect("the path just found") = json!(PERSONAL[0]);
                probes.push((path, PERSONAL[0], r));
            }
            for (what, secret, r) in probes {
                let out: Value = serde_json::from_str(&call(&e, who, cmd, &r.to_string())).expect("an envelope");
                if out["status"] == "error" {
                    refused += 1;
                    let (en, zh) = (out["message"].as_str().unwrap_or(""), out["message_zh"].as_str().unwrap_or(""));
                    if en.contains(secret) || zh.contains(secret) {
                        failures.push(format!("{name} step {i} {cmd} ({what} = {secret}): {} / {en} / {zh}", out["code"]));
                    }
                } else {
                    // Accepted: the next probe starts from the case as it was.
                    e = open(config, &steps, i);
                }
            }
        }
        call(&e, who, cmd, text);
    }
    (probed, refused)
}

#[test]
fn no_error_of_any_command_repeats_an_id_number_phone_or_name_sent_in_its_fields() {
    let files = yilian_tests::vector_files();
    let mut skipped = BTreeSet::new();
    let cases: Vec<(String, Value, Value)> = files
        .iter()
        .flat_map(|(name, file)| {
            file["cases"].as_array().unwrap().iter().map(move |case| {
                let config = case.get("config").or(file.get("config")).cloned().unwrap_or_else(|| json!({}));
                (format!("{name} / {}", case["name"].as_str().unwrap_or("?")), config, case.clone())
            })
        })
        .filter(|(_, config, case)| {
            // The platform client's cases call a network peer; its errors have their own tests.
            let peer = config.get("platform").is_some();
            if peer {
                skipped.extend(case["steps"].as_array().unwrap().iter().filter_map(|s| s["command"].as_str().map(str::to_string)));
            }
            !peer
        })
        .collect();
    let results: Vec<(BTreeSet<String>, usize, Vec<String>)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|w| {
                let cases = &cases;
                s.spawn(move || {
                    let (mut probed, mut refused, mut failures) = (BTreeSet::new(), 0, Vec::new());
                    for (name, config, case) in cases.iter().skip(w).step_by(2) {
                        let (p, r) = probe_case(name, config, case, &mut failures);
                        probed.extend(p);
                        refused += r;
                    }
                    (probed, refused, failures)
                })
            })
            .collect();
        workers.into_iter().map(|h| h.join().expect("worker")).collect()
    });
    let probed: BTreeSet<String> = results.iter().flat_map(|r| r.0.iter().cloned()).collect();
    let refused: usize = results.iter().map(|r| r.1).sum();
    let failures: Vec<&String> = results.iter().flat_map(|r| &r.2).collect();
    // Every registered command was probed (but those only a network peer answers).
    let all = Engine::open("{}").unwrap().call_value("engine-info", "{}").unwrap()["commands"].clone();
    let missing: Vec<&str> =
        all.as_array().unwrap().iter().filter_map(Value::as_str).filter(|c| !probed.contains(*c) && !skipped.contains(*c) && *c != "advance-clock").collect();
    assert!(missing.is_empty(), "commands never probed: {missing:?}");
    println!("no echo: {} cases, {} commands probed, {refused} refusals, {} failures", cases.len(), probed.len(), failures.len());
    assert!(refused > 1000, "too few refusals ({refused}) to say anything");
    assert!(
        failures.is_empty(),
        "{} refusals repeat personal data:\n{}",
        failures.len(),
        failures.iter().take(100).map(|s| s.as_str()).collect::<Vec<_>>().join("\n")
    );
}
