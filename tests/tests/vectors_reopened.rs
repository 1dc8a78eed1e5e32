//! The shared vectors again, on the durable store (SQLite, then PostgreSQL),
//! with the engine closed and reopened before every step: every answer a case expects must come
//! out the same when all the engine knows is what it wrote to disk (S3).
//!
//! Left out: the platform client's cases, `engine-metrics` and the in-memory
//! `audit-log` refusal (see below).
//! The manual clock is a test facility and starts again at `clock_start` on
//! open; the runner moves it forward by what the case had advanced so far.

use serde_json::{json, Value};
use yilian_core::Engine;

struct Reopening {
    config: String,
    engine: Option<Engine>,
    advanced_s: u64,
    _dir: tempfile::TempDir,
}

impl Reopening {
    /// On a new store: a fresh data directory, or with `postgres` a fresh
    /// database on the test cluster.
    fn new(config: &str, postgres: bool) -> Reopening {
        let dir = tempfile::tempdir().unwrap();
        let spec = if postgres { yilian_tests::store::fresh_postgres() } else { dir.path().to_str().unwrap().to_string() };
        let mut cfg: Value = serde_json::from_str(config).unwrap();
        cfg["durable_sync"] = json!("normal");
        Reopening { config: yilian_tests::store::config(&spec, cfg), engine: None, advanced_s: 0, _dir: dir }
    }

    fn call(&mut self, principal: Option<&str>, command: &str, request: &str) -> String {
        if let Some(e) = self.engine.take() {
            e.close();
        }
        let e = Engine::open(&self.config).expect("the store reopens");
        if self.advanced_s > 0 {
            e.call_value("advance-clock", &json!({"seconds": self.advanced_s}).to_string()).expect("clock moves forward again");
        }
        let out = match principal {
            Some(p) => e.call_as_json(p, command, request),
            None => e.call(command, request),
        };
        if command == "advance-clock" && out.contains("\"success\"") {
            let seconds: Value = serde_json::from_str(request).unwrap_or(Value::Null);
            self.advanced_s += seconds["seconds"].as_u64().unwrap_or(0);
        }
        self.engine = Some(e);
        out
    }
}

fn every_vector_reopened(postgres: bool) {
    let mut open = |cfg: &str| -> yilian_tests::Caller {
        let mut r = Reopening::new(cfg, postgres);
        Box::new(move |p: Option<&str>, c: &str, q: &str| r.call(p, c, q))
    };
    // The platform client's cases talk to a network peer, not the store;
    // `engine-metrics` counts calls since the engine opened, as process
    // metrics do (Prometheus counters start at zero on restart).
    // `audit-log` answers only on a durable store: the vectors show the
    // in-memory refusal, which this durable run cannot.
    let keep = |config: &Value, case: &Value| {
        let counts_calls = case["steps"].as_array().is_some_and(|s| s.iter().any(|s| s["command"] == "engine-metrics" || s["command"] == "audit-log"));
        config.get("platform").is_none() && !counts_calls
    };
    let (cases, steps, failures) = yilian_tests::run_all(&mut open, &keep);
    println!("vectors reopened{}: {cases} cases, {steps} steps passed", if postgres { " on PostgreSQL" } else { "" });
    assert!(failures.is_empty(), "{} failing cases:\n{}", failures.len(), failures.join("\n"));
    assert!(cases > 50);
}

#[test]
fn every_vector_passes_with_the_engine_reopened_before_every_step() {
    every_vector_reopened(false);
}

#[test]
fn every_vector_passes_on_postgres_with_the_engine_reopened_before_every_step() {
    every_vector_reopened(true);
}
