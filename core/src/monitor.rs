//! Interface monitoring inside the library (I4): per-command call counts,
//! errors by code and a latency histogram, for hosts that embed the engine
//! and have no HTTP server in front of it. Lock-free counters; read with the
//! `engine-metrics` command (JSON, or Prometheus text).

use crate::error::{ErrorCode, Result};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds of the latency buckets, in microseconds (the last is +Inf).
const BUCKETS_US: [u64; 14] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 100_000];

#[derive(Default)]
struct PerCommand {
    calls: AtomicU64,
    errors: AtomicU64,
    total_ns: AtomicU64,
    /// One count per bucket of `BUCKETS_US`, then one for slower calls.
    buckets: [AtomicU64; BUCKETS_US.len() + 1],
}

/// The command layer's totals (see [`Monitor::totals`]).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Totals {
    pub calls: u64,
    pub system_errors: u64,
    pub input_errors: u64,
    pub p99_us: u64,
}

pub(crate) struct Monitor {
    names: Vec<&'static str>,
    index: HashMap<&'static str, usize, foldhash::fast::RandomState>,
    /// One per command of `names`, then one for unknown commands.
    per: Box<[PerCommand]>,
    /// One per `ErrorCode::ALL`.
    errors: Box<[AtomicU64]>,
}

const UNKNOWN: &str = "(unknown)";

impl Monitor {
    pub fn new(commands: &[&'static str]) -> Monitor {
        let names: Vec<&'static str> = commands.to_vec();
        let index = names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        let per = (0..=names.len()).map(|_| PerCommand::default()).collect();
        let errors = ErrorCode::ALL.iter().map(|_| AtomicU64::new(0)).collect();
        Monitor { names, index, per, errors }
    }

    /// Counts one call of the command layer.
    pub fn record(&self, command: &str, took: Duration, error: Option<ErrorCode>) {
        let i = self.index.get(command).copied().unwrap_or(self.names.len());
        let c = &self.per[i];
        c.calls.fetch_add(1, Relaxed);
        let ns = took.as_nanos().min(u64::MAX as u128) as u64;
        c.total_ns.fetch_add(ns, Relaxed);
        let us = ns / 1_000;
        let b = BUCKETS_US.iter().position(|ub| us < *ub).unwrap_or(BUCKETS_US.len());
        c.buckets[b].fetch_add(1, Relaxed);
        if let Some(code) = error {
            c.errors.fetch_add(1, Relaxed);
            if let Some(k) = ErrorCode::ALL.iter().position(|x| *x == code) {
                self.errors[k].fetch_add(1, Relaxed);
            }
        }
    }

    fn rows(&self) -> impl Iterator<Item = (&'static str, &PerCommand)> {
        self.names.iter().copied().chain(std::iter::once(UNKNOWN)).zip(self.per.iter()).filter(|(_, c)| c.calls.load(Relaxed) > 0)
    }

    /// The bucket bound (µs) under which `q` of the calls fell.
    fn quantile_us(c: &PerCommand, q: f64) -> Option<u64> {
        let counts: Vec<u64> = c.buckets.iter().map(|b| b.load(Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let want = (total as f64 * q).ceil() as u64;
        let mut seen = 0;
        for (i, n) in counts.iter().enumerate() {
            seen += n;
            if seen >= want {
                return BUCKETS_US.get(i).copied().or(Some(u64::MAX));
            }
        }
        None
    }

    /// Every command together: calls, calls failed in the system (storage
    /// or internal errors), calls refused as malformed input, and the bound
    /// (µs) under which 99% of calls finished (the indicators, `indicators.rs`).
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        let mut buckets = [0u64; BUCKETS_US.len() + 1];
        for c in self.per.iter() {
            t.calls += c.calls.load(Relaxed);
            for (b, n) in buckets.iter_mut().zip(c.buckets.iter()) {
                *b += n.load(Relaxed);
            }
        }
        for (code, n) in ErrorCode::ALL.iter().zip(self.errors.iter()) {
            match code.family() {
                crate::error::ErrorFamily::Storage | crate::error::ErrorFamily::Internal => t.system_errors += n.load(Relaxed),
                crate::error::ErrorFamily::Input => t.input_errors += n.load(Relaxed),
                _ => {}
            }
        }
        let total: u64 = buckets.iter().sum();
        let want = (total as f64 * 0.99).ceil() as u64;
        let mut seen = 0;
        for (i, n) in buckets.iter().enumerate() {
            seen += n;
            if total > 0 && seen >= want {
                t.p99_us = BUCKETS_US.get(i).copied().unwrap_or(BUCKETS_US[BUCKETS_US.len() - 1]);
                break;
            }
        }
        t
    }

    pub fn to_json(&self) -> Value {
        let commands: Vec<Value> = self
            .rows()
            .map(|(name, c)| {
                let calls = c.calls.load(Relaxed);
                json!({
                    "command": name,
                    "calls": calls,
                    "errors": c.errors.load(Relaxed),
                    "mean_us": c.total_ns.load(Relaxed) as f64 / calls as f64 / 1_000.0,
                    // Bucket bounds: "at most this many µs"; null beyond the last bound.
                    "p50_us_at_most": Self::quantile_us(c, 0.5).filter(|v| *v != u64::MAX),
                    "p99_us_at_most": Self::quantile_us(c, 0.99).filter(|v| *v != u64::MAX),
                })
            })
            .collect();
        let errors: serde_json::Map<String, Value> = ErrorCode::ALL
            .iter()
            .zip(self.errors.iter())
            .filter(|(_, n)| n.load(Relaxed) > 0)
            .map(|(code, n)| (code.as_str().to_string(), json!(n.load(Relaxed))))
            .collect();
        json!({"commands": commands, "errors": errors})
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn to_prometheus(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(out, "# HELP yilian_engine_calls_total Command-layer calls by command.\n# TYPE yilian_engine_calls_total counter");
        for (name, c) in self.rows() {
            let _ = writeln!(out, "yilian_engine_calls_total{{command=\"{name}\"}} {}", c.calls.load(Relaxed));
        }
        let _ =
            writeln!(out, "# HELP yilian_engine_call_errors_total Command-layer calls that returned an error.\n# TYPE yilian_engine_call_errors_total counter");
        for (name, c) in self.rows() {
            let _ = writeln!(out, "yilian_engine_call_errors_total{{command=\"{name}\"}} {}", c.errors.load(Relaxed));
        }
        let _ = writeln!(out, "# HELP yilian_engine_errors_total Errors by stable code.\n# TYPE yilian_engine_errors_total counter");
        for (code, n) in ErrorCode::ALL.iter().zip(self.errors.iter()) {
            let n = n.load(Relaxed);
            if n > 0 {
                let _ = writeln!(out, "yilian_engine_errors_total{{code=\"{}\"}} {n}", code.as_str());
            }
        }
        let _ = writeln!(out, "# HELP yilian_engine_call_seconds Command-layer latency.\n# TYPE yilian_engine_call_seconds histogram");
        for (name, c) in self.rows() {
            let mut acc = 0;
            for (i, ub) in BUCKETS_US.iter().enumerate() {
                acc += c.buckets[i].load(Relaxed);
                let _ = writeln!(out, "yilian_engine_call_seconds_bucket{{command=\"{name}\",le=\"{}\"}} {acc}", *ub as f64 / 1e6);
            }
            acc += c.buckets[BUCKETS_US.len()].load(Relaxed);
            let _ = writeln!(out, "yilian_engine_call_seconds_bucket{{command=\"{name}\",le=\"+Inf\"}} {acc}");
            let _ = writeln!(out, "yilian_engine_call_seconds_sum{{command=\"{name}\"}} {}", c.total_ns.load(Relaxed) as f64 / 1e9);
            let _ = writeln!(out, "yilian_engine_call_seconds_count{{command=\"{name}\"}} {}", c.calls.load(Relaxed));
        }
        out
    }
}

/// `engine-metrics {format?: "json"|"prometheus"}`.
pub(crate) fn engine_metrics(m: &Monitor, format: Option<&str>) -> Result<Value> {
    match format.unwrap_or("json") {
        "json" => Ok(m.to_json()),
        "prometheus" => Ok(json!({"content_type": "text/plain; version=0.0.4", "text": m.to_prometheus()})),
        _ => Err(crate::error::Error::invalid("format", "expected json or prometheus")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_calls_errors_and_latency_buckets() {
        let m = Monitor::new(&["book-slot", "cancel-slot"]);
        m.record("book-slot", Duration::from_micros(3), None);
        m.record("book-slot", Duration::from_micros(700), Some(ErrorCode::SlotFull));
        m.record("nope", Duration::from_nanos(10), Some(ErrorCode::UnknownCommand));
        let j = m.to_json();
        let cmds = j["commands"].as_array().unwrap();
        assert_eq!(cmds.len(), 2, "only commands that were called: {j}");
        assert_eq!(cmds[0]["command"], "book-slot");
        assert_eq!(cmds[0]["calls"], 2);
        assert_eq!(cmds[0]["errors"], 1);
        assert_eq!(cmds[0]["p50_us_at_most"], 5);
        assert_eq!(cmds[0]["p99_us_at_most"], 1000);
        assert_eq!(cmds[1]["command"], "(unknown)");
        assert_eq!(j["errors"]["SLOT_FULL"], 1);
        assert_eq!(j["errors"]["UNKNOWN_COMMAND"], 1);
        let text = m.to_prometheus();
        assert!(text.contains("yilian_engine_calls_total{command=\"book-slot\"} 2"));
        assert!(text.contains("yilian_engine_call_seconds_bucket{command=\"book-slot\",le=\"0.000005\"} 1"));
        assert!(text.contains("yilian_engine_call_seconds_bucket{command=\"book-slot\",le=\"+Inf\"} 2"));
        assert!(text.contains("yilian_engine_errors_total{code=\"SLOT_FULL\"} 1"));
        assert!(engine_metrics(&m, Some("xml")).is_err());
    }
}
