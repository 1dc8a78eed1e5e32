//! Bad input, command by command: every request of the shared vectors is sent
//! again with one part broken (a field removed, null, of the wrong type, out
//! of range, unknown, oversized; a nested field of the first list element likewise;
//! the whole request malformed) just before the real step runs. Whatever
//! the engine answers, it must not panic and must answer with a well-formed
//! envelope; a refusal must carry a specific code of the input, not-found,
//! conflict, state, permission or idempotency family, say it in English and
//! Chinese, name no personal data of the request, and change nothing.
//!
//! "Changed nothing" is read from the durable store's audit trail, which gets
//! an entry for every change that reaches the disk (S1), and from the outbox.
//! Changes the clock drives (holds past their time-to-live, critical values
//! past their limit) are made before each probe: they are changes of their
//! own, which any request may trigger.

use serde_json::{json, Value};
use std::panic::{catch_unwind, AssertUnwindSafe};
use yilian_core::Engine;

/// One broken request: what was broken (for the report) and the text sent.
struct Mutation {
    what: String,
    text: String,
}

fn wrong_type(v: &Value) -> Value {
    match v {
        Value::String(_) => json!(12345),
        Value::Number(_) => json!("not a number"),
        Value::Bool(_) => json!("yes"),
        Value::Array(_) => json!({"unexpected": "object"}),
        Value::Object(_) => json!(["unexpected", "list"]),
        Value::Null => json!(true),
    }
}

/// Values beyond what the field's type allows.
fn out_of_range(v: &Value) -> Vec<(&'static str, Value)> {
    match v {
        Value::Number(_) => {
            vec![("negative", json!(-1)), ("fraction", json!(1.5)), ("huge", json!(1e300)), ("past u64", serde_json::from_str("18446744073709551616").unwrap())]
        }
        Value::String(s) => vec![
            ("empty", json!("")),
            ("unknown", json!(format!("{s}9Z"))),
            ("oversized", json!("号".repeat(20_000))),
            ("control characters", json!("\u{0}\u{202e}\u{feff}")),
        ],
        Value::Array(_) => vec![("empty list", json!([]))],
        _ => vec![],
    }
}

/// Each field of `inner` (the request itself or an object inside it) broken
/// in every way, one at a time; `put` writes the broken value into a copy of `req`.
fn field_mutations(req: &Value, inner: &Value, path: &str, put: &dyn Fn(&mut Value, Option<Value>, &str), out: &mut Vec<Mutation>) {
    let Some(obj) = inner.as_object() else { return };
    for (k, v) in obj {
        let mut variants: Vec<(String, Option<Value>)> =
            vec![("removed".into(), None), ("null".into(), Some(Value::Null)), ("wrong type".into(), Some(wrong_type(v)))];
        variants.extend(out_of_range(v).into_iter().map(|(w, x)| (w.to_string(), Some(x))));
        for (what, new) in variants {
            let mut r = req.clone();
            put(&mut r, new, k);
            out.push(Mutation { what: format!("{path}{k}: {what}"), text: r.to_string() });
        }
    }
}

fn mutations(req: &Value) -> Vec<Mutation> {
    let mut out: Vec<Mutation> = [
        ("empty text", String::new()),
        ("null", "null".into()),
        ("a list", "[]".into()),
        ("a number", "42".into()),
        ("truncated", "{\"a\":".into()),
        ("deeply nested", "[".repeat(50_000)),
        ("unknown fields only", json!({"no_such_field": 1}).to_string()),
    ]
    .into_iter()
    .map(|(what, text)| Mutation { what: format!("whole request: {what}"), text })
    .collect();
    let top = |r: &mut Value, new: Option<Value>, k: &str| match new {
        Some(v) => r[k] = v,
        None => {
            r.as_object_mut().unwrap().remove(k);
        }
    };
    field_mutations(req, req, "/", &top, &mut out);
    // One level down: the first element of each list of objects, and each object.
    for (k, v) in req.as_object().into_iter().flatten() {
        let (inner, at) = match v {
            Value::Array(a) if a.first().is_some_and(Value::is_object) => (&a[0], format!("/{k}/0")),
            Value::Object(_) => (v, format!("/{k}")),
            _ => continue,
        };
        let put = |r: &mut Value, new: Option<Value>, f: &str| {
            let o = r.pointer_mut(&at).expect("the nested object");
            match new {
                Some(x) => o[f] = x,
                None => {
                    o.as_object_mut().unwrap().remove(f);
                }
            }
        };
        field_mutations(req, inner, &format!("{at}/"), &put, &mut out);
    }
    out
}

/// Personal data the request carries: a refusal must not repeat it.
fn personal(v: &Value, key: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => m.iter().for_each(|(k, x)| personal(x, k, out)),
        Value::Array(a) => a.iter().for_each(|x| personal(x, key, out)),
        Value::String(s) if s.chars().count() >= 3 && ["id_number", "phone", "patient_id", "patient_name", "id_card", "mobile"].contains(&key) => {
            out.push(s.clone())
        }
        _ => {}
    }
}

struct Probe {
    audit_seq: u64,
}

impl Probe {
    /// Changes recorded since the last look (and the probe moves past them).
    fn changes(&mut self, e: &Engine) -> Vec<Value> {
        let mut all = Vec::new();
        loop {
            let v = e.call_value("audit-log", &json!({"after_seq": self.audit_seq, "limit": 1000}).to_string()).expect("audit-log reads");
            let entries = v["entries"].as_array().cloned().unwrap_or_default();
            if entries.is_empty() {
                return all;
            }
            self.audit_seq = v["last_seq"].as_u64().expect("last_seq");
            all.extend(entries);
        }
    }
}

fn pending_events(e: &Engine) -> u64 {
    let v = e.call_value("next-events", r#"{"limit": 1}"#).expect("next-events reads");
    v["pending"].as_u64().unwrap_or(0) + v["events"].as_array().map_or(0, |a| a.len() as u64)
}

struct Run {
    config: String,
    dir: tempfile::TempDir,
    e: Engine,
    probe: Probe,
}

impl Run {
    fn open(config: &Value) -> Run {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config.clone();
        cfg["data_dir"] = json!(dir.path());
        cfg["durable_sync"] = json!("normal");
        let config = cfg.to_string();
        let e = Engine::open(&config).expect("vector config opens durably");
        Run { config, dir, e, probe: Probe { audit_seq: 0 } }
    }

    /// A fresh store with the case's first `n` steps replayed.
    fn reopen(&mut self, steps: &[(String, String, Option<String>)], n: usize) {
        let config: Value = serde_json::from_str(&self.config).unwrap();
        let mut fresh = Run::open(&config);
        for (cmd, text, who) in &steps[..n] {
            call(&fresh.e, who, cmd, text);
        }
        fresh.probe.changes(&fresh.e);
        *self = fresh;
    }
}

/// A step as the vector states it: as its principal, if it names one.
fn call(e: &Engine, who: &Option<String>, cmd: &str, text: &str) -> String {
    match who {
        Some(p) => e.call_as_json(p, cmd, text),
        None => e.call(cmd, text),
    }
}

/// Runs one case with every step's mutations before it; returns (mutations, refusals) and any failures.
fn run_case(name: &str, config: &Value, case: &Value, failures: &mut Vec<String>) -> (usize, usize) {
    let steps: Vec<(String, String, Option<Value>, Option<String>)> = case["steps"]
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
    let plain: Vec<(String, String, Option<String>)> = steps.iter().map(|(c, t, _, w)| (c.clone(), t.clone(), w.clone())).collect();
    let mut run = Run::open(config);
    let (mut tried, mut refused) = (0, 0);
    for (i, (cmd, text, req, who)) in steps.iter().enumerate() {
        if let Some(req) = req.as_ref().filter(|_| cmd != "platform-call" && cmd != "advance-clock") {
            let mut secrets = Vec::new();
            personal(req, "", &mut secrets);
            for m in mutations(req) {
                tried += 1;
                // Changes the clock makes (hold expiry, overdue critical values) happen first.
                let _ = run.e.call_value("expire-holds", "{}");
                let _ = run.e.call_value("lab-check-overdue", "{}");
                run.probe.changes(&run.e);
                let events = pending_events(&run.e);
                let where_ = format!("{name} step {i} {cmd} ({})", m.what);
                let out = match catch_unwind(AssertUnwindSafe(|| call(&run.e, who, cmd, &m.text))) {
                    Ok(out) => out,
                    Err(_) => {
                        failures.push(format!("{where_}: panicked"));
                        run.reopen(&plain, i);
                        continue;
                    }
                };
                let env: Value = match serde_json::from_str(&out) {
                    Ok(v) => v,
                    Err(err) => {
                        failures.push(format!("{where_}: envelope is not JSON ({err})"));
                        continue;
                    }
                };
                match env["status"].as_str() {
                    Some("success") => {
                        // Accepted (an optional field, a value the command tolerates): start over clean.
                        run.reopen(&plain, i);
                        continue;
                    }
                    Some("error") => refused += 1,
                    _ => {
                        failures.push(format!("{where_}: no status in {out}"));
                        continue;
                    }
                }
                let family = env["numeric_code"].as_i64().unwrap_or(0) / 1000;
                let (en, zh) = (env["message"].as_str().unwrap_or(""), env["message_zh"].as_str().unwrap_or(""));
                if !(1..=6).contains(&family) || env["code"].as_str().is_none_or(str::is_empty) {
                    failures.push(format!("{where_}: not a specific code: {out}"));
                }
                if en.is_empty() || zh.is_empty() || !zh.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)) {
                    failures.push(format!("{where_}: English and Chinese messages expected: {out}"));
                }
                if let Some(s) = secrets.iter().find(|s| en.contains(s.as_str()) || zh.contains(s.as_str())) {
                    failures.push(format!("{where_}: the message repeats personal data ({} chars)", s.chars().count()));
                }
                let changed = run.probe.changes(&run.e);
                if !changed.is_empty() || pending_events(&run.e) != events {
                    failures.push(format!("{where_}: refused ({}) but changed the store: {changed:?}", env["code"]));
                    run.reopen(&plain, i);
                }
            }
        }
        call(&run.e, who, cmd, text);
    }
    drop(run.dir);
    (tried, refused)
}

#[test]
fn every_command_refuses_broken_requests_cleanly_and_changes_nothing() {
    let files = yilian_tests::vector_files();
    assert!(!files.is_empty());
    // The cases split over two threads (one per core in CI).
    let cases: Vec<(String, Value, Value)> = files
        .iter()
        .flat_map(|(name, file)| {
            file["cases"].as_array().unwrap().iter().map(move |case| {
                let config = case.get("config").or(file.get("config")).cloned().unwrap_or_else(|| json!({}));
                (format!("{name} / {}", case["name"].as_str().unwrap_or("?")), config, case.clone())
            })
        })
        // The platform client's cases call a network peer; they have their own tests.
        .filter(|(_, config, _)| config.get("platform").is_none())
        .collect();
    // Per worker: (broken requests tried, refused, failures).
    type Tally = (usize, usize, Vec<String>);
    let results: Vec<Tally> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|w| {
                let cases = &cases;
                s.spawn(move || {
                    let (mut tried, mut refused, mut failures) = (0, 0, Vec::new());
                    for (name, config, case) in cases.iter().skip(w).step_by(2) {
                        let (t, r) = run_case(name, config, case, &mut failures);
                        tried += t;
                        refused += r;
                    }
                    (tried, refused, failures)
                })
            })
            .collect();
        workers.into_iter().map(|h| h.join().expect("worker")).collect()
    });
    let tried: usize = results.iter().map(|r| r.0).sum();
    let refused: usize = results.iter().map(|r| r.1).sum();
    let failures: Vec<&String> = results.iter().flat_map(|r| &r.2).collect();
    println!("bad input: {} cases, {tried} broken requests, {refused} refused, {} failures", cases.len(), failures.len());
    assert!(tried > 1000 && refused > tried / 3, "too few broken requests were tried ({tried}) or refused ({refused})");
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.iter().take(200).map(|s| s.as_str()).collect::<Vec<_>>().join("\n"));
}
