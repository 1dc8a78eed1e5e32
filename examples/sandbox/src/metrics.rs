//! I4 interface monitoring: per-interface call counts, errors by code and
//! latency histograms, rendered in the Prometheus text format.
//!
//! The set of interfaces is fixed at start (every engine command plus the
//! HTTP-only routes), so recording is a map lookup and a few relaxed atomic
//! adds: no lock on the request path.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use yilian_core::ErrorCode;

/// Upper bounds (seconds) of the latency buckets; engine calls range from
/// microseconds (refusals) to an fsync (milliseconds).
const BUCKETS: [f64; 13] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

/// Routes that are not engine commands but are counted like them.
pub const EXTRA_INTERFACES: &[&str] =
    &["upload-report", "acceptance-info", "admission-details", "reports", "events-stream", "versions", "signature", "unknown"];

struct Stats {
    calls: AtomicU64,
    /// One counter per `ErrorCode::ALL` entry, plus one for HTTP-level errors
    /// that have no engine code of their own (counted under their code too).
    errors: Vec<AtomicU64>,
    buckets: [AtomicU64; BUCKETS.len()],
    sum_micros: AtomicU64,
}

impl Stats {
    fn new() -> Stats {
        Stats {
            calls: AtomicU64::new(0),
            errors: ErrorCode::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_micros: AtomicU64::new(0),
        }
    }
}

pub struct Metrics {
    by_name: HashMap<&'static str, Stats>,
    /// Insertion order for stable output.
    names: Vec<&'static str>,
    pub events_broadcast: AtomicU64,
    pub sse_clients: AtomicU64,
}

impl Metrics {
    pub fn new() -> Metrics {
        let commands = yilian_core::Engine::commands();
        // An extra interface the engine serves as a command is counted once.
        let names: Vec<&'static str> = commands.iter().copied().chain(EXTRA_INTERFACES.iter().copied().filter(|x| !commands.contains(x))).collect();
        let by_name = names.iter().map(|n| (*n, Stats::new())).collect();
        Metrics { by_name, names, events_broadcast: AtomicU64::new(0), sse_clients: AtomicU64::new(0) }
    }

    /// Maps any name to a counted interface (unknown commands share one label,
    /// so a scanner cannot grow the label set).
    pub fn label(&self, name: &str) -> &'static str {
        self.by_name.get_key_value(name).map(|(k, _)| *k).unwrap_or("unknown")
    }

    pub fn record(&self, interface: &str, elapsed: std::time::Duration, error: Option<ErrorCode>) {
        let s = &self.by_name[self.label(interface)];
        s.calls.fetch_add(1, Relaxed);
        if let Some(code) = error {
            if let Some(i) = ErrorCode::ALL.iter().position(|c| *c == code) {
                s.errors[i].fetch_add(1, Relaxed);
            }
        }
        let secs = elapsed.as_secs_f64();
        // Cumulative buckets are summed at render time; each call lands in one.
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            s.buckets[i].fetch_add(1, Relaxed);
        }
        s.sum_micros.fetch_add(elapsed.as_micros() as u64, Relaxed);
    }

    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        out.push_str("# HELP yilian_requests_total Calls per interface.\n# TYPE yilian_requests_total counter\n");
        for n in &self.names {
            let _ = writeln!(out, "yilian_requests_total{{interface=\"{n}\"}} {}", self.by_name[n].calls.load(Relaxed));
        }
        out.push_str("# HELP yilian_errors_total Error answers per interface and error code.\n# TYPE yilian_errors_total counter\n");
        for n in &self.names {
            let s = &self.by_name[n];
            for (i, c) in ErrorCode::ALL.iter().enumerate() {
                let v = s.errors[i].load(Relaxed);
                if v > 0 {
                    let _ = writeln!(out, "yilian_errors_total{{interface=\"{n}\",code=\"{}\"}} {v}", c.as_str());
                }
            }
        }
        out.push_str(
            "# HELP yilian_request_duration_seconds Latency per interface, as seen by the server.\n# TYPE yilian_request_duration_seconds histogram\n",
        );
        for n in &self.names {
            let s = &self.by_name[n];
            let count = s.calls.load(Relaxed);
            if count == 0 {
                continue;
            }
            let mut cum = 0;
            for (i, b) in BUCKETS.iter().enumerate() {
                cum += s.buckets[i].load(Relaxed);
                let _ = writeln!(out, "yilian_request_duration_seconds_bucket{{interface=\"{n}\",le=\"{b}\"}} {cum}");
            }
            let _ = writeln!(out, "yilian_request_duration_seconds_bucket{{interface=\"{n}\",le=\"+Inf\"}} {count}");
            let _ = writeln!(out, "yilian_request_duration_seconds_sum{{interface=\"{n}\"}} {}", s.sum_micros.load(Relaxed) as f64 / 1e6);
            let _ = writeln!(out, "yilian_request_duration_seconds_count{{interface=\"{n}\"}} {count}");
        }
        out.push_str("# HELP yilian_events_broadcast_total Outbox events pushed to SSE subscribers.\n# TYPE yilian_events_broadcast_total counter\n");
        let _ = writeln!(out, "yilian_events_broadcast_total {}", self.events_broadcast.load(Relaxed));
        out.push_str("# HELP yilian_sse_clients Connected SSE clients.\n# TYPE yilian_sse_clients gauge\n");
        let _ = writeln!(out, "yilian_sse_clients {}", self.sse_clients.load(Relaxed));
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
