//! The fuzzing harness (issue 22): what each fuzz target decodes, runs and
//! checks, in a library of its own so that the ordinary test run exercises
//! it (`tests/smoke.rs`: each target over its seeds and bounded mutations)
//! and `fuzz/` (cargo-fuzz) only wraps it. Targets: [`engine_calls`],
//! [`config`], [`c_api`], [`http_request`]; [`seeds`] writes their corpora.
//!
//! Inputs are structure-aware: each target decodes its bytes with
//! [`arbitrary`] into a typed value (a sequence of engine steps, a config
//! object, C calls, an HTTP request). The decoding is written out by hand
//! (not derived) so that [`Encode`] can write the exact bytes that decode to
//! a given value: that is how [`seeds`] turns the shared vectors
//! (`tests/vectors/*.json`) into seed inputs, checking the round trip.
//!
//! Invariants every target checks (a violation panics, which libFuzzer
//! reports as a crash):
//! - every answer of the command layer is an envelope: JSON with `status`
//!   `success` and `data`, or `error` with a known `code`, an English
//!   `message` and a Chinese `message_zh`;
//! - the pool's own consistency check ([`yilian_core::Engine::check_invariants`]:
//!   booked + held ≤ capacity for every slot, counts agree with bookings,
//!   visit numbers unique) holds after every step;
//! - no panic, no arithmetic overflow (overflow checks and debug
//!   assertions are on in the fuzz profile; the smoke run of the ordinary
//!   release test build has them off, as the release profile does).

use arbitrary::{Result as AResult, Unstructured};
use serde_json::{Map, Value};
use std::sync::OnceLock;

pub mod c_api;
pub mod config;
pub mod engine_calls;
pub mod http_request;
pub mod seeds;

/// Decodes `bytes` as libFuzzer's `fuzz_target!` does for a typed input
/// (`arbitrary_take_rest`) and runs `target` on it; undecodable bytes run
/// nothing, as there.
pub fn run_bytes<'a, T: arbitrary::Arbitrary<'a>>(bytes: &'a [u8], target: impl FnOnce(&T)) {
    if let Ok(input) = T::arbitrary_take_rest(Unstructured::new(bytes)) {
        target(&input);
    }
}

/// The config every engine target opens: the vectors' own (a manual clock
/// at a fixed start), in memory.
pub const ENGINE_CONFIG: &str = r#"{"clock":"manual","clock_start":"2024-10-29T09:00:00+08:00"}"#;

/// Most steps one input runs (bounds the time of one execution).
pub const MAX_STEPS: usize = 160;

// ------------------------------------------------------------------ vectors

/// One step of a shared vector: who calls, which command, which request text.
#[derive(Debug, Clone)]
pub struct VectorStep {
    pub principal: Option<String>,
    pub command: String,
    pub request: String,
}

/// Everything the vectors hold, loaded once: their steps (flat, case after
/// case), the cases as ranges of steps, and dictionaries of the keys, strings
/// and principals they use (the structured generators draw from them).
pub struct Vectors {
    pub steps: Vec<VectorStep>,
    pub cases: Vec<std::ops::Range<usize>>,
    pub keys: Vec<String>,
    pub strings: Vec<String>,
    pub principals: Vec<String>,
    pub commands: Vec<String>,
}

fn vectors_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors")
}

fn collect(v: &Value, keys: &mut Vec<String>, strings: &mut Vec<String>) {
    match v {
        Value::String(s) => {
            if s.len() <= 64 && !strings.contains(s) {
                strings.push(s.clone());
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect(x, keys, strings)),
        Value::Object(o) => {
            for (k, x) in o {
                if !keys.contains(k) {
                    keys.push(k.clone());
                }
                collect(x, keys, strings);
            }
        }
        _ => {}
    }
}

/// The shared vectors, read once per process (sorted by file name, so indices
/// are stable between the seed generator and the targets).
pub fn vectors() -> &'static Vectors {
    static V: OnceLock<Vectors> = OnceLock::new();
    V.get_or_init(|| {
        let mut files: Vec<_> = std::fs::read_dir(vectors_dir())
            .expect("tests/vectors is readable")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        let mut out = Vectors { steps: vec![], cases: vec![], keys: vec![], strings: vec![], principals: vec![], commands: vec![] };
        out.commands = yilian_core::Engine::commands().iter().map(|c| c.to_string()).collect();
        for f in files {
            let file: Value = serde_json::from_str(&std::fs::read_to_string(&f).expect("vector readable")).expect("vector is JSON");
            // Cases with a config of their own (a platform client, another
            // clock) would not replay on the fuzz engine: keep the usual one.
            let cfg = file.get("config").cloned().unwrap_or(Value::Null);
            if cfg.get("clock").and_then(Value::as_str) != Some("manual") {
                continue;
            }
            for case in file["cases"].as_array().into_iter().flatten() {
                if case.get("config").is_some() {
                    continue;
                }
                let start = out.steps.len();
                for step in case["steps"].as_array().into_iter().flatten() {
                    let command = step["command"].as_str().unwrap_or_default().to_string();
                    let request = match step.get("request_text").and_then(Value::as_str) {
                        Some(t) => t.to_string(),
                        None => step.get("request").cloned().unwrap_or_else(|| Value::Object(Map::new())).to_string(),
                    };
                    let principal = step.get("principal").map(Value::to_string);
                    if let Some(p) = &principal {
                        if !out.principals.contains(p) {
                            out.principals.push(p.clone());
                        }
                    }
                    if let Some(r) = step.get("request") {
                        collect(r, &mut out.keys, &mut out.strings);
                    }
                    if !out.commands.contains(&command) {
                        out.commands.push(command.clone());
                    }
                    out.steps.push(VectorStep { principal, command, request });
                }
                out.cases.push(start..out.steps.len());
            }
        }
        out
    })
}

// ------------------------------------------------------------------ byte codec

/// Writes bytes that the hand-written `arbitrary` decoders read back as the
/// same value.
pub trait Encode {
    fn encode(&self, out: &mut Vec<u8>);
}

fn u8_of(u: &mut Unstructured<'_>) -> AResult<u8> {
    u.arbitrary::<u8>()
}

fn u16_of(u: &mut Unstructured<'_>) -> AResult<u16> {
    Ok(u16::from(u8_of(u)?) | (u16::from(u8_of(u)?) << 8))
}

fn u64_of(u: &mut Unstructured<'_>) -> AResult<u64> {
    let mut v = 0u64;
    for i in 0..8 {
        v |= u64::from(u8_of(u)?) << (8 * i);
    }
    Ok(v)
}

/// A string: a length byte (up to 255) then that many bytes, lossily UTF-8.
fn str_of(u: &mut Unstructured<'_>) -> AResult<String> {
    let n = u8_of(u)? as usize;
    let b = u.bytes(n.min(u.len()))?;
    Ok(String::from_utf8_lossy(b).into_owned())
}

/// A long string: two length bytes.
fn long_str_of(u: &mut Unstructured<'_>) -> AResult<String> {
    let n = u16_of(u)? as usize;
    let b = u.bytes(n.min(u.len()))?;
    Ok(String::from_utf8_lossy(b).into_owned())
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let b = &s.as_bytes()[..s.len().min(255)];
    out.push(b.len() as u8);
    out.extend_from_slice(b);
}

fn put_long_str(out: &mut Vec<u8>, s: &str) {
    let b = &s.as_bytes()[..s.len().min(65535)];
    put_u16(out, b.len() as u16);
    out.extend_from_slice(b);
}

// ------------------------------------------------------------------ JSON values

/// A JSON value built from the vectors' dictionaries and edge numbers.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    /// An edge or chosen integer (i64 range and beyond via `Big`).
    Int(i64),
    Big(u64),
    Float(u64),
    /// A string the vectors use (dates, ids, slots): index into the dictionary.
    Known(u16),
    Str(String),
    Array(Vec<Json>),
    /// Keys from the vectors' dictionary.
    Object(Vec<(u16, Json)>),
}

const MAX_DEPTH: u32 = 4;

impl Json {
    pub fn decode(u: &mut Unstructured<'_>, depth: u32) -> AResult<Json> {
        let tag = u8_of(u)? % if depth >= MAX_DEPTH { 7 } else { 9 };
        Ok(match tag {
            0 => Json::Null,
            1 => Json::Bool(u8_of(u)? & 1 == 1),
            2 => Json::Int(u64_of(u)? as i64),
            3 => Json::Big(u64_of(u)?),
            4 => Json::Float(u64_of(u)?),
            5 => Json::Known(u16_of(u)?),
            6 => Json::Str(str_of(u)?),
            7 => {
                let n = u8_of(u)? % 5;
                let mut a = Vec::new();
                for _ in 0..n {
                    a.push(Json::decode(u, depth + 1)?);
                }
                Json::Array(a)
            }
            _ => {
                let n = u8_of(u)? % 8;
                let mut o = Vec::new();
                for _ in 0..n {
                    o.push((u16_of(u)?, Json::decode(u, depth + 1)?));
                }
                Json::Object(o)
            }
        })
    }

    /// The value, keys and strings resolved through the vectors' dictionaries.
    pub fn to_value(&self) -> Value {
        let v = vectors();
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Int(i) => Value::from(*i),
            Json::Big(b) => Value::from(*b),
            Json::Float(f) => serde_json::Number::from_f64(f64::from_bits(*f)).map(Value::Number).unwrap_or(Value::Null),
            Json::Known(i) => Value::String(pick(&v.strings, *i).to_string()),
            Json::Str(s) => Value::String(s.clone()),
            Json::Array(a) => Value::Array(a.iter().map(Json::to_value).collect()),
            Json::Object(o) => Value::Object(o.iter().map(|(k, x)| (pick(&v.keys, *k).to_string(), x.to_value())).collect()),
        }
    }
}

impl Encode for Json {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Json::Null => out.push(0),
            Json::Bool(b) => out.extend_from_slice(&[1, *b as u8]),
            Json::Int(i) => {
                out.push(2);
                out.extend_from_slice(&i.to_le_bytes());
            }
            Json::Big(b) => {
                out.push(3);
                out.extend_from_slice(&b.to_le_bytes());
            }
            Json::Float(f) => {
                out.push(4);
                out.extend_from_slice(&f.to_le_bytes());
            }
            Json::Known(i) => {
                out.push(5);
                put_u16(out, *i);
            }
            Json::Str(s) => {
                out.push(6);
                put_str(out, s);
            }
            Json::Array(a) => {
                out.push(7);
                out.push(a.len() as u8);
                a.iter().for_each(|x| x.encode(out));
            }
            Json::Object(o) => {
                out.push(8);
                out.push(o.len() as u8);
                for (k, x) in o {
                    put_u16(out, *k);
                    x.encode(out);
                }
            }
        }
    }
}

/// `list[i mod len]` (the empty string for an empty list).
pub fn pick(list: &[String], i: u16) -> &str {
    if list.is_empty() {
        ""
    } else {
        &list[i as usize % list.len()]
    }
}

// ------------------------------------------------------------------ engine steps

/// One change to a vector request: set (or remove) a key, at the top level or
/// in the first object found one level down (a schedule's first entry, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct Edit {
    pub key: u16,
    pub nested: bool,
    /// `None` removes the key.
    pub value: Option<Json>,
}

/// One step of an `engine_calls` input.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// A vector step as it is (its principal, command and request).
    Vector(u16),
    /// A vector step with its request edited.
    Edited { base: u16, edits: Vec<Edit> },
    /// A command (index into the known commands) with a generated request,
    /// as a principal from the vectors (0: the engine's own).
    Call { command: u16, principal: u8, request: Json },
    /// Any command name, any request text (mostly not JSON).
    Raw { command: String, request: String },
    /// Moves the manual clock (seconds; holds expire, waitlists move).
    Clock(u32),
}

impl Step {
    fn decode(u: &mut Unstructured<'_>) -> AResult<Step> {
        Ok(match u8_of(u)? % 8 {
            0..=2 => Step::Vector(u16_of(u)?),
            3 | 4 => {
                let base = u16_of(u)?;
                let n = u8_of(u)? % 5;
                let mut edits = Vec::new();
                for _ in 0..n {
                    let key = u16_of(u)?;
                    let flags = u8_of(u)?;
                    let value = if flags & 2 == 2 { None } else { Some(Json::decode(u, 1)?) };
                    edits.push(Edit { key, nested: flags & 1 == 1, value });
                }
                Step::Edited { base, edits }
            }
            5 => Step::Call { command: u16_of(u)?, principal: u8_of(u)?, request: Json::decode(u, 0)? },
            6 => Step::Raw { command: str_of(u)?, request: long_str_of(u)? },
            _ => Step::Clock(u16_of(u)? as u32 * 60 + u8_of(u)? as u32),
        })
    }

    /// (principal JSON, command, request text) of this step.
    pub fn resolve(&self) -> (Option<String>, String, String) {
        let v = vectors();
        match self {
            Step::Vector(i) => {
                let s = &v.steps[*i as usize % v.steps.len()];
                (s.principal.clone(), s.command.clone(), s.request.clone())
            }
            Step::Edited { base, edits } => {
                let s = &v.steps[*base as usize % v.steps.len()];
                let mut req: Value = serde_json::from_str(&s.request).unwrap_or_else(|_| Value::Object(Map::new()));
                for e in edits {
                    let key = pick(&v.keys, e.key).to_string();
                    let target = if e.nested { first_nested(&mut req) } else { req.as_object_mut() };
                    if let Some(o) = target {
                        match &e.value {
                            Some(x) => {
                                o.insert(key, x.to_value());
                            }
                            None => {
                                o.remove(&key);
                            }
                        }
                    }
                }
                (s.principal.clone(), s.command.clone(), req.to_string())
            }
            Step::Call { command, principal, request } => {
                let p = if *principal == 0 || v.principals.is_empty() { None } else { Some(pick(&v.principals, *principal as u16 - 1).to_string()) };
                (p, pick(&v.commands, *command).to_string(), request.to_value().to_string())
            }
            Step::Raw { command, request } => (None, command.clone(), request.clone()),
            Step::Clock(s) => (None, "advance-clock".into(), format!("{{\"seconds\":{s}}}")),
        }
    }
}

fn first_nested(v: &mut Value) -> Option<&mut Map<String, Value>> {
    let o = v.as_object_mut()?;
    for (_, x) in o.iter_mut() {
        match x {
            Value::Object(m) => return Some(m),
            Value::Array(a) => {
                if let Some(Value::Object(m)) = a.first_mut() {
                    return Some(m);
                }
            }
            _ => {}
        }
    }
    None
}

impl Encode for Step {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Step::Vector(i) => {
                out.push(0);
                put_u16(out, *i);
            }
            Step::Edited { base, edits } => {
                out.push(3);
                put_u16(out, *base);
                out.push(edits.len() as u8);
                for e in edits {
                    put_u16(out, e.key);
                    out.push(e.nested as u8 | if e.value.is_none() { 2 } else { 0 });
                    if let Some(x) = &e.value {
                        x.encode(out);
                    }
                }
            }
            Step::Call { command, principal, request } => {
                out.push(5);
                put_u16(out, *command);
                out.push(*principal);
                request.encode(out);
            }
            Step::Raw { command, request } => {
                out.push(6);
                put_str(out, command);
                put_long_str(out, request);
            }
            Step::Clock(s) => {
                out.push(7);
                put_u16(out, (s / 60) as u16);
                out.push((s % 60) as u8);
            }
        }
    }
}

/// An `engine_calls` input: steps until the bytes run out (at most [`MAX_STEPS`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Steps(pub Vec<Step>);

impl<'a> arbitrary::Arbitrary<'a> for Steps {
    fn arbitrary(u: &mut Unstructured<'a>) -> AResult<Self> {
        let mut steps = Vec::new();
        while !u.is_empty() && steps.len() < MAX_STEPS {
            steps.push(Step::decode(u)?);
        }
        Ok(Steps(steps))
    }
}

impl Encode for Steps {
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.iter().for_each(|s| s.encode(out));
    }
}

// ------------------------------------------------------------------ invariants

/// Panics unless `text` is an envelope: `{"status":"success","data":…}` or
/// `{"status":"error","code":…,"message":…,"message_zh":…}` with a code the
/// error table knows. Returns the parsed envelope.
pub fn assert_envelope(text: &str, what: &str) -> Value {
    let v: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{what}: answer is not JSON ({e}): {text}"));
    match v.get("status").and_then(Value::as_str) {
        Some("success") => assert!(v.get("data").is_some(), "{what}: success without data: {text}"),
        Some("error") => {
            let code = v.get("code").and_then(Value::as_str).unwrap_or_else(|| panic!("{what}: error without code: {text}"));
            assert!(yilian_core::ErrorCode::from_str_code(code).is_some(), "{what}: unknown error code {code}: {text}");
            assert!(v.get("message").and_then(Value::as_str).is_some_and(|m| !m.is_empty()), "{what}: error without message: {text}");
            assert!(v.get("message_zh").and_then(Value::as_str).is_some_and(|m| !m.is_empty()), "{what}: error without message_zh: {text}");
            assert!(code != "INTERNAL" && code != "PANIC", "{what}: internal error: {text}");
        }
        _ => panic!("{what}: no status: {text}"),
    }
    v
}
