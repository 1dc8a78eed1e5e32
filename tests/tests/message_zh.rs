//! Chinese messages are wholly Chinese: a sweep of bad input through
//! `Engine::call` for every registered command.
//!
//! The rule, for each error envelope's `message_zh`: take out every
//! backquoted span (`` `…` ``: identifiers, field names, values), every key
//! and every value the request itself carries (echoed back), and every
//! identifier-like token (a run of `[A-Za-z0-9_.:/+-]` holding a digit, `_`
//! or `-`, or written in capitals only: codes such as `STD-HEM-001`,
//! `SLOT_FULL`, `B000001`, acronyms such as JSON and UTF-8). What is left
//! must hold no run of three or more ASCII letters: no serde text ("EOF
//! while parsing", "unknown field", "invalid type"), no English reason
//! ("expected a date YYYY-MM-DD", "must be a string").

use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use yilian_core::Engine;

/// Texts built outside the error table and the request helpers, in modules
/// other work owns: (a piece of the `message_zh`, where it is built and what
/// is wrong). A violation matching one is reported, not failed; any other
/// fails the sweep.
const OWNED_ELSEWHERE: &[(&str, &str)] = &[
    ("请求不是合法的JSON：", "core/src/engine.rs:168-171 formats serde's English into message_zh; map the error with `Error::json(&e)`"),
    ("当前状态为 `", "core/src/referral/machine.rs:133: the machine's name (`consultation`) unquoted, `none` when no step is allowed"),
    ("当前状态为 ", "core/src/pool/mod.rs:1595: the booking status (`occupied`, `booked`) unquoted"),
    ("条码规则无效：", "core/src/lab/specimen.rs:201: the English reason used as the Chinese one"),
    ("advance-clock 需要配置", "core/src/commands.rs:649: the config JSON `{\"clock\":\"manual\"}` unquoted"),
    ("平台无法访问：", "core/src/client/http.rs:354-362 (transport): reqwest's English text in message_zh"),
    ("未配置平台：", "core/src/client/mod.rs:333: base_url、app_id、secret unquoted"),
    ("无法读取该文件：", "core/src/lab/table_io.rs:191: `xlsx`, `Excel` unquoted"),
    ("应为 items（小项）或 projects（项目）", "core/src/lab/table_io.rs:434: values unquoted"),
    ("应为 csv", "core/src/lab/table_io.rs:403,563: values unquoted"),
    ("请先解除对照或指定 remap", "core/src/lab/mapping.rs:333: the field `remap` unquoted"),
];

/// Puts an edited object back where it was found (alone, or first of an array).
type Rewrap = Box<dyn Fn(Map<String, Value>) -> Value>;

/// Every key and value of a request, deepest included.
fn echoed(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::String(s) => {
            out.insert(s.clone());
        }
        Value::Array(a) => a.iter().for_each(|x| echoed(x, out)),
        Value::Object(m) => {
            for (k, x) in m {
                out.insert(k.clone());
                echoed(x, out);
            }
        }
        Value::Number(n) => {
            out.insert(n.to_string());
        }
        Value::Bool(b) => {
            out.insert(b.to_string());
        }
        Value::Null => {}
    }
}

/// The English left in `zh` by the rule of this file, or `None`.
fn english_left(zh: &str, request_text: &str) -> Option<String> {
    // 1. Backquoted spans.
    let mut s = String::new();
    let mut inside = false;
    for c in zh.chars() {
        if c == '`' {
            inside = !inside;
            s.push(' ');
        } else if !inside {
            s.push(c);
        }
    }
    // 2. What the request carries, longest first.
    let mut carried = BTreeSet::new();
    if let Ok(v) = serde_json::from_str::<Value>(request_text) {
        echoed(&v, &mut carried);
    }
    let mut carried: Vec<String> = carried.into_iter().filter(|c| c.chars().any(|c| c.is_ascii_alphabetic())).collect();
    carried.sort_by_key(|c| std::cmp::Reverse(c.len()));
    for c in &carried {
        s = s.replace(c.as_str(), " ");
    }
    // 3. Identifier-like tokens; then runs of letters.
    let ident = |t: &str| t.chars().any(|c| c.is_ascii_digit() || c == '_' || c == '-') || !t.chars().any(|c| c.is_ascii_lowercase());
    let runs: Vec<String> = s
        .split(|c: char| !(c.is_ascii_alphanumeric() || "_.:/+-".contains(c)))
        .filter(|t| !ident(t))
        .flat_map(|t| t.split(|c: char| !c.is_ascii_alphabetic()))
        .filter(|w| w.len() >= 3)
        .map(str::to_string)
        .collect();
    (!runs.is_empty()).then(|| runs.join(" "))
}

/// Values of the wrong type or form for any field.
fn bad_values() -> Vec<Value> {
    vec![
        json!(true),
        json!(-1),
        json!(1.5),
        json!(18446744073709551615u64),
        json!(""),
        json!("x".repeat(300)),
        json!("2024-13-45"),
        json!("25:99"),
        json!("bogus"),
        json!([]),
        json!([1, "a", null]),
        json!({}),
        json!({"nested": {"deeper": [1]}}),
    ]
}

/// Texts that are not a JSON object, or not JSON at all.
const MALFORMED: &[&str] = &[
    "{",
    "{\"patient_id\": ",
    "{\"patient_id\": \"PAT001\"",
    "{\"patient_id\" \"PAT001\"}",
    "{\"patient_id\": \"PAT001\",}",
    "{\"patient_id\": PAT001}",
    "{\"patient_id\": \"PAT001\"} trailing",
    "[1, 2",
    "nul",
    "\"just a string\"",
    "[]",
    "42",
    "{\"a\": \"\\x\"}",
    "{\"a\": \"\\ud800\"}",
    "{\"a\": 1e999}",
    "{\"a\": \"line\nbreak\"}",
    "{1: 2}",
];

/// Every mutation of `req`: each field (and each field one level down, in
/// objects and in the first object of an array) replaced by each bad value
/// or removed, and an unknown field added.
fn mutations(req: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    let Value::Object(m) = req else { return out };
    let mut extra = m.clone();
    extra.insert("zz_not_a_field".into(), json!(1));
    out.push(Value::Object(extra));
    for (k, v) in m {
        let mut without = m.clone();
        without.remove(k);
        out.push(Value::Object(without));
        for bad in bad_values() {
            let mut changed = m.clone();
            changed.insert(k.clone(), bad);
            out.push(Value::Object(changed));
        }
        let inner: Option<(&Map<String, Value>, Rewrap)> = match v {
            Value::Object(o) => Some((o, Box::new(Value::Object))),
            Value::Array(a) => match a.first() {
                Some(Value::Object(o)) => {
                    let rest: Vec<Value> = a[1..].to_vec();
                    Some((o, Box::new(move |o| Value::Array(std::iter::once(Value::Object(o)).chain(rest.iter().cloned()).collect()))))
                }
                _ => None,
            },
            _ => None,
        };
        if let Some((o, rebuild)) = inner {
            for ik in o.keys() {
                let mut without = o.clone();
                without.remove(ik);
                let mut changed = m.clone();
                changed.insert(k.clone(), rebuild(without));
                out.push(Value::Object(changed));
                for bad in bad_values() {
                    let mut inner_changed = o.clone();
                    inner_changed.insert(ik.clone(), bad);
                    let mut changed = m.clone();
                    changed.insert(k.clone(), rebuild(inner_changed));
                    out.push(Value::Object(changed));
                }
            }
        }
    }
    out
}

struct Sweep {
    calls: usize,
    errors: usize,
    commands: BTreeSet<String>,
    /// message_zh with English left → (command, request) of its first sighting.
    violations: BTreeMap<String, (String, String, String)>,
}

impl Sweep {
    fn call(&mut self, e: &Engine, principal: Option<&str>, command: &str, request: &str) {
        let out = match principal {
            Some(p) => e.call_as_json(p, command, request),
            None => e.call(command, request),
        };
        self.calls += 1;
        let env: Value = serde_json::from_str(&out).expect("every answer is a JSON envelope");
        if env["status"] != "error" {
            return;
        }
        self.errors += 1;
        self.commands.insert(command.to_string());
        let zh = env["message_zh"].as_str().expect("message_zh is a string");
        assert!(!zh.trim().is_empty(), "{command}: empty message_zh for {request}");
        if let Some(left) = english_left(zh, request) {
            let shown: String = request.chars().take(200).collect();
            self.violations.entry(zh.to_string()).or_insert((command.to_string(), shown, left));
        }
    }

    /// The violations no [`OWNED_ELSEWHERE`] entry explains, and those it does.
    fn split(&self) -> (Vec<String>, Vec<String>) {
        let (mut mine, mut elsewhere) = (Vec::new(), Vec::new());
        for (zh, (c, r, left)) in &self.violations {
            match OWNED_ELSEWHERE.iter().find(|(piece, _)| zh.contains(piece)) {
                Some((_, at)) => elsewhere.push(format!("  {c}: {zh}\n      {at}")),
                None => mine.push(format!("  {c}: {zh}\n      left: {left}\n      request: {r}")),
            }
        }
        (mine, elsewhere)
    }
}

#[test]
fn the_rule_finds_english_and_spares_identifiers_and_echoed_values() {
    let req = r#"{"payment_status": "pending", "date": "tomorrow"}"#;
    assert_eq!(english_left("请求不是合法的JSON：EOF while parsing a value at line 1 column 15", req).as_deref(), Some("while parsing value line column"));
    assert_eq!(
        english_left("字段 `date` 无效：expected a date YYYY-MM-DD", req).as_deref(),
        Some("expected"),
        "`date` is a key of the request; YYYY-MM-DD is a code"
    );
    assert_eq!(english_left("字段 `date` 无效：应为 `YYYY-MM-DD` 格式的日期", req), None);
    assert_eq!(english_left("支付状态 pending 无效，应为 `paid`、`unpaid` 或 `refunded`", req), None, "a value the request sent");
    assert_eq!(english_left("请求不是合法的JSON：第1行第15列", req), None);
    assert_eq!(english_left("号源 SM2 ID，参数不是合法的UTF-8", req), None, "acronyms");
    assert_eq!(english_left("标准编码 STD-P-CBC 已被本机构 XCG 对照", req), None, "codes");
    assert_eq!(english_left("预约 B000001 当前状态为 occupied", req).as_deref(), Some("occupied"), "an English value word");
    assert_eq!(english_left("无法读取该文件：Zip error", req).as_deref(), Some("Zip error"));
}

#[test]
fn every_command_answers_bad_fields_in_chinese() {
    let mut sweep = Sweep { calls: 0, errors: 0, commands: BTreeSet::new(), violations: BTreeMap::new() };
    let mut base: BTreeMap<String, Value> = BTreeMap::new();
    // The shared vectors give each command a request that works in context:
    // before each step runs, every mutation of its request is sent.
    for (_, file) in yilian_tests::vector_files() {
        for case in file["cases"].as_array().unwrap() {
            let config = case.get("config").or(file.get("config")).cloned().unwrap_or_else(|| json!({}));
            let Ok(e) = Engine::open(&config.to_string()) else { continue };
            for step in case["steps"].as_array().unwrap() {
                let command = step["command"].as_str().unwrap();
                let principal = step.get("principal").map(Value::to_string);
                if let Some(req) = step.get("request") {
                    base.entry(command.to_string()).or_insert_with(|| req.clone());
                    for m in mutations(req) {
                        sweep.call(&e, principal.as_deref(), command, &m.to_string());
                    }
                }
                let text = match step.get("request_text") {
                    Some(t) => t.as_str().unwrap().to_string(),
                    None => step.get("request").cloned().unwrap_or_else(|| json!({})).to_string(),
                };
                sweep.call(&e, principal.as_deref(), command, &text);
            }
            e.close();
        }
    }
    // Every registered command, on a fresh engine: an empty request, its
    // vector request mutated, and every field any vector sends, bad.
    let fields: BTreeSet<String> = base.values().filter_map(Value::as_object).flat_map(|m| m.keys().cloned()).collect();
    let e = Engine::open(r#"{"clock_start":"2024-10-29T09:00:00+08:00","clock":"manual"}"#).unwrap();
    for command in Engine::commands() {
        sweep.call(&e, None, command, "{}");
        if let Some(req) = base.get(*command) {
            for m in mutations(req) {
                sweep.call(&e, None, command, &m.to_string());
            }
        }
        for bad in bad_values() {
            let all: Map<String, Value> = fields.iter().map(|f| (f.clone(), bad.clone())).collect();
            sweep.call(&e, None, command, &Value::Object(all).to_string());
            for f in &fields {
                sweep.call(&e, None, command, &json!({ f: bad }).to_string());
            }
        }
    }
    println!("{} calls, {} errors, {} commands answered an error", sweep.calls, sweep.errors, sweep.commands.len());
    let missed: Vec<&&str> = Engine::commands().iter().filter(|c| !sweep.commands.contains(**c)).collect();
    assert!(missed.is_empty(), "commands never driven to an error: {missed:?}");
    let (mine, elsewhere) = sweep.split();
    println!("{} message_zh texts built elsewhere still hold English:\n{}", elsewhere.len(), elsewhere.join("\n"));
    assert!(mine.is_empty(), "{} message_zh texts hold English:\n{}", mine.len(), mine.join("\n"));
}

#[test]
fn serde_json_errors_become_wholly_chinese_with_their_position() {
    for text in MALFORMED {
        let Err(e) = serde_json::from_str::<Value>(text) else { continue };
        let err = yilian_core::Error::from(e);
        assert_eq!(err.code(), yilian_core::ErrorCode::InvalidJson);
        assert!(err.message().starts_with("request is not valid JSON: "), "{}", err.message());
        assert_eq!(english_left(err.message_zh(), text), None, "{text:?}: {}", err.message_zh());
        assert!(err.message_zh().contains('行') && err.message_zh().contains('列'), "{text:?}: {}", err.message_zh());
    }
    let e = serde_json::from_str::<Value>("{\"patient_id\": ").unwrap_err();
    assert_eq!(yilian_core::Error::json(&e).message_zh(), "请求不是合法的JSON：值未结束即到达末尾（第1行第15列）");
}

#[test]
fn malformed_json_is_described_in_chinese_through_the_engine() {
    let e = Engine::open("{}").unwrap();
    let mut sweep = Sweep { calls: 0, errors: 0, commands: BTreeSet::new(), violations: BTreeMap::new() };
    for command in Engine::commands() {
        for text in MALFORMED {
            sweep.call(&e, None, command, text);
        }
    }
    assert_eq!(sweep.errors, sweep.calls, "malformed input never succeeds");
    let all: Vec<String> = sweep.violations.iter().map(|(zh, (c, r, left))| format!("  {c}: {zh}\n      left: {left}\n      request: {r}")).collect();
    assert!(all.is_empty(), "{} message_zh texts hold English:\n{}", all.len(), all.join("\n"));
    // The position is kept, in Chinese.
    let env: Value = serde_json::from_str(&e.call("book-slot", "{\"patient_id\": ")).unwrap();
    assert_eq!(env["code"], "INVALID_JSON");
    assert!(env["message_zh"].as_str().unwrap().contains("第1行第15列"), "{env}");
}
