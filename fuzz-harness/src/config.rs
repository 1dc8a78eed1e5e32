//! `Engine::open` with an arbitrary config: a JSON object of the config's
//! own keys (and others) with arbitrary values, or raw text. In memory only:
//! paths (`data_dir`, `report_dir`, `pdf_font`) are dropped. The open either
//! fails with a config error (a known code, both messages) or gives an engine
//! that answers a command with an envelope.
use crate::{assert_envelope, Json};
use arbitrary::{Arbitrary, Result as AResult, Unstructured};
use serde_json::{Map, Value};
use yilian_core::Engine;

const KEYS: &[&str] = &[
    "clock",
    "clock_start",
    "institution_id",
    "role",
    "time_zone",
    "release",
    "enabled",
    "time",
    "days",
    "hold_ttl_seconds",
    "tight_remaining",
    "tight_ratio",
    "max_request_bytes",
    "waitlist_raise_after_minutes",
    "retention_days",
    "stop_service_action",
    "group_commit_max",
    "durable_sync",
    "encryption_key",
    "platform",
    "report_max_bytes",
    "base_url",
    "app_id",
    "secret",
    "timeout_ms",
    "connect_timeout_ms",
    "retries",
    "backoff_ms",
    "versions",
    "cache_max_entries",
];

#[derive(Debug)]
pub enum Input {
    Structured(Vec<(u8, Json)>),
    Text(String),
}

impl<'a> Arbitrary<'a> for Input {
    fn arbitrary(u: &mut Unstructured<'a>) -> AResult<Self> {
        if u.arbitrary::<u8>()? % 8 == 0 {
            return Ok(Input::Text(String::from_utf8_lossy(u.bytes(u.len())?).into_owned()));
        }
        let mut kv = Vec::new();
        while !u.is_empty() && kv.len() < 16 {
            kv.push((u.arbitrary::<u8>()?, Json::decode(u, 1)?));
        }
        Ok(Input::Structured(kv))
    }
}

fn nested(key: &str, v: Value) -> Value {
    // `platform` and `release` are objects of their own keys: the generator's
    // objects draw keys from the vectors, so give them the config's too.
    match v {
        Value::Object(_) | Value::Null => v,
        other if key == "platform" => serde_json::json!({"base_url": other}),
        other => other,
    }
}

pub fn run(input: &Input) {
    let text = match input {
        Input::Text(t) => t.clone(),
        Input::Structured(kv) => {
            let mut m = Map::new();
            for (k, v) in kv {
                let key = KEYS[*k as usize % KEYS.len()];
                m.insert(key.to_string(), nested(key, v.to_value()));
            }
            Value::Object(m).to_string()
        }
    };
    // Memory only: a fuzzer must not write or read files by path.
    let text = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(mut m)) => {
            for k in ["data_dir", "report_dir", "pdf_font"] {
                m.remove(k);
            }
            Value::Object(m).to_string()
        }
        Ok(_) => text,
        Err(_) if text.contains("data_dir") || text.contains("report_dir") || text.contains("pdf_font") => return,
        Err(_) => text,
    };
    match Engine::open(&text) {
        Ok(e) => {
            assert_envelope(&e.call("engine-info", "{}"), "engine-info");
            assert_envelope(&e.call("real-time-slots", r#"{"project_id":"P001","date":"2024-10-30"}"#), "real-time-slots");
            e.check_invariants().expect("a fresh engine is consistent");
            e.close();
        }
        Err(err) => {
            let env = err.to_envelope();
            assert_envelope(&env.to_string(), "open");
        }
    }
}
