//! history_scale (#17 item 5): a year of history (365 days × 10,000
//! bookings, each with its request id, its event acknowledged by the host)
//! on the durable store, then the open time and the memory of an engine
//! opened on it — in a fresh process, so nothing of the generating run is
//! counted. Targets: open ≤ 2 s, RSS ≤ 300 MB. With the history kept in
//! memory (before #17) the open was measured at 4.4 s and 877 MB for
//! 300,000 bookings, about 54 s and 10 GB for a year by extrapolation.
//!
//! The simulated clock starts on 2024-01-01 09:00; each day the next day's
//! slots are published (10 devices × 10 hourly windows, 100 places each),
//! 10,000 bookings are made on them by 8 threads through the typed API, the
//! host acknowledges the day's events, the clock moves a day and the
//! retirement pass runs (as the engine's timer runs it every ten minutes).
//!
//!   cargo bench -p yilian-core --bench history_scale                        # SQLite, a year
//!   HISTORY_DAYS=30 cargo bench -p yilian-core --bench history_scale        # a month
//!   YILIAN_BENCH_POSTGRES="host=… user=postgres" cargo bench -p yilian-core --features postgres --bench history_scale
//!   (HISTORY_SQLITE=0 runs PostgreSQL alone)
//!
//! Prints the generation rate, then for the engine opened in a fresh
//! process: open time, RSS and peak RSS after open, the bookings still in
//! memory (the live window), and the time to read a retired booking.

use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Instant;
use yilian_core::{Engine, HoldOptions};

const DEVICES: usize = 10;
const WINDOWS: usize = 10;
const THREADS: usize = 8;
const DAY_MS: i64 = 86_400_000;

fn day(d: usize) -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap() + chrono::Duration::days(d as i64)
}

fn config(store: &Value, start_day: usize) -> String {
    let mut c = json!({"clock_start": format!("{}T09:00:00+08:00", day(start_day)), "clock": "manual", "release": {"enabled": false}, "retention_days": 7});
    for (k, v) in store.as_object().unwrap() {
        c[k] = v.clone();
    }
    c.to_string()
}

fn publish(e: &Engine, d: usize, capacity: usize) -> Vec<yilian_core::SlotHandle> {
    let date = day(d);
    let windows: Vec<Value> = (0..WINDOWS).map(|w| json!({"start_time": format!("{:02}:00", 8 + w), "end_time": format!("{:02}:00", 9 + w)})).collect();
    let rows: Vec<Value> = (1..=DEVICES)
        .map(|dev| json!({"device_id": format!("DEV{dev:03}"), "project_id": "P001", "date": date.to_string(), "capacity": capacity, "available_slots": windows}))
        .collect();
    e.call_value("sync-schedule", &json!({"hospital_id": "H001", "schedule_data": rows}).to_string()).unwrap();
    let compact = date.format("%Y%m%d");
    (1..=DEVICES)
        .flat_map(|dev| (0..WINDOWS).map(move |w| (dev, w)))
        .map(|(dev, w)| e.slot_handle(&format!("EX-H001-DEV{dev:03}-{compact}-{:02}00{:02}00", 8 + w, 9 + w)).unwrap())
        .collect()
}

/// The host takes and acknowledges every pending event.
fn ack_events(e: &Engine) {
    let mut ack: Option<u64> = None;
    loop {
        let mut req = json!({"limit": 10_000});
        if let Some(a) = ack {
            req["ack"] = json!(a);
        }
        let v = e.call_value("next-events", &req.to_string()).unwrap();
        match v["last_seq"].as_u64() {
            Some(last) => ack = Some(last),
            None => return,
        }
    }
}

/// Every 1000th booking as `booking-info` showed it while it was in memory,
/// and the first 200 audit entries as `audit-log` showed them on the first
/// day: the engine opened after the year must answer the same.
fn generate(store: &Value, days: usize, per_day: usize) -> Value {
    let e = Engine::open(&config(store, 0)).unwrap();
    let mut seen = Vec::new();
    let mut audit = Value::Null;
    let capacity = per_day.div_ceil(DEVICES * WINDOWS);
    let t0 = Instant::now();
    let mut handles = publish(&e, 1, capacity);
    for d in 1..=days {
        let slots = Arc::new(handles);
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let (e, slots) = (e.clone(), slots.clone());
                std::thread::spawn(move || {
                    for i in (t..per_day).step_by(THREADS) {
                        let (patient, rid) = (format!("P{d}-{i}"), format!("R{d}-{i}"));
                        e.book(slots[i % slots.len()], &patient, &HoldOptions { request_id: Some(&rid), ..Default::default() }).unwrap();
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        for id in ((d - 1) * per_day + 1..=d * per_day).filter(|id| id % 1000 == 1) {
            seen.push((id, e.booking(id as u64).unwrap()));
        }
        if d == 1 {
            audit = e.call_value("audit-log", r#"{"limit": 200}"#).unwrap()["entries"].clone();
        }
        ack_events(&e);
        e.advance_clock(DAY_MS).unwrap();
        handles = publish(&e, d + 1, capacity);
        e.retire_history().unwrap();
        if d % 30 == 0 || d == days {
            let secs = t0.elapsed().as_secs_f64();
            // The running process keeps an empty cell per retired booking.
            println!(
                "  day {d}: {} bookings in {secs:.0} s ({:.0}/s); this process's RSS {} MB",
                d * per_day,
                (d * per_day) as f64 / secs,
                rss_kb("VmRSS:") / 1024
            );
        }
    }
    e.close();
    json!({"bookings": seen, "audit": audit})
}

fn rss_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)).and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// In the child: opens the engine, reports, reads one retired booking.
fn measure_open(cfg: &str) {
    let t = Instant::now();
    let e = Engine::open(cfg).unwrap();
    let open_s = t.elapsed().as_secs_f64();
    let (rss, hwm) = (rss_kb("VmRSS:"), rss_kb("VmHWM:"));
    // The first booking of the history (none on the empty store).
    let t = Instant::now();
    let read_us = match e.booking(1) {
        Ok(old) => {
            let us = t.elapsed().as_secs_f64() * 1e6;
            assert_eq!(old["status"], "booked", "{old}");
            us
        }
        Err(err) if err.code() == yilian_core::ErrorCode::BookingNotFound => 0.0,
        Err(err) => panic!("{err:?}"),
    };
    let stats = e.call_value("slot-statistics", "{}").unwrap();
    let booked = stats["total"]["booked"].as_u64().unwrap_or(0);
    // What was seen while the history was in memory reads the same now.
    let mut same = 0;
    if let Ok(path) = std::env::var("HISTORY_SEEN") {
        let seen: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        for pair in seen["bookings"].as_array().unwrap() {
            let now = e.booking(pair[0].as_u64().unwrap()).unwrap();
            assert_eq!(now, pair[1], "booking {} reads as it did in memory", pair[0]);
            same += 1;
        }
        let audit = e.call_value("audit-log", r#"{"limit": 200}"#).unwrap()["entries"].clone();
        assert_eq!(audit, seen["audit"], "the first audit entries read the same");
    }
    println!("OPEN {open_s:.3} RSS_KB {rss} HWM_KB {hwm} READ_RETIRED_US {read_us:.0} BOOKED_IN_STATS {booked} SAME {same}");
    e.close();
}

fn child(cfg: &str, seen: Option<&std::path::Path>) -> (f64, u64, u64, f64, u64, u64) {
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.env("HISTORY_OPEN_CONFIG", cfg);
    if let Some(p) = seen {
        cmd.env("HISTORY_SEEN", p);
    }
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with("OPEN ")).unwrap_or_else(|| panic!("the child reports: {text} {}", String::from_utf8_lossy(&out.stderr)));
    let f: Vec<&str> = line.split_whitespace().collect();
    (f[1].parse().unwrap(), f[3].parse().unwrap(), f[5].parse().unwrap(), f[7].parse().unwrap(), f[9].parse().unwrap(), f[11].parse().unwrap())
}

fn run(label: &str, store: Value, fresh: Value, days: usize, per_day: usize) {
    println!("{label}: {days} days × {per_day} bookings, retention 7 days");
    let (open0, rss0, ..) = {
        // An engine with no history, as the floor of the figures below.
        let e = Engine::open(&config(&fresh, 0)).unwrap();
        e.close();
        child(&config(&fresh, days + 1), None)
    };
    let seen = generate(&store, days, per_day);
    let seen_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(seen_file.path(), seen.to_string()).unwrap();
    let (open, rss, hwm, read_us, booked, same) = child(&config(&store, days + 1), Some(seen_file.path()));
    println!(
        "{label}: open {open:.2} s (empty store: {open0:.2} s), RSS after open {} MB (peak {} MB; empty store: {} MB), a retired booking read in {read_us:.0} µs; slot-statistics counts {booked} booked; {same} bookings sampled while in memory and the first 200 audit entries read the same",
        rss / 1024,
        hwm / 1024,
        rss0 / 1024
    );
    println!(
        "{label}: targets open ≤ 2 s: {}; RSS ≤ 300 MB: {}",
        if open <= 2.0 { "met" } else { "NOT met" },
        if rss <= 300 * 1024 { "met" } else { "NOT met" }
    );
}

fn main() {
    if let Ok(cfg) = std::env::var("HISTORY_OPEN_CONFIG") {
        measure_open(&cfg);
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let days: usize = std::env::var("HISTORY_DAYS").ok().and_then(|v| v.parse().ok()).unwrap_or(365);
    let per_day: usize = std::env::var("HISTORY_PER_DAY").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let dir = tempfile::tempdir().unwrap();
    // HISTORY_SQLITE=0 skips the SQLite store (to run PostgreSQL alone).
    if std::env::var("HISTORY_SQLITE").as_deref() != Ok("0") {
        run(
            "SQLite",
            json!({"data_dir": dir.path().join("year"), "durable_sync": "normal"}),
            json!({"data_dir": dir.path().join("empty"), "durable_sync": "normal"}),
            days,
            per_day,
        );
    }
    if let Ok(admin) = std::env::var("YILIAN_BENCH_POSTGRES") {
        on_postgres(&admin, days, per_day);
    }
}

/// The same on fresh databases of the server `admin` names (a superuser conninfo).
#[cfg(feature = "postgres")]
fn on_postgres(admin: &str, days: usize, per_day: usize) {
    let db = |name: &str| {
        let mut c = postgres::Client::connect(admin, postgres::NoTls).unwrap();
        c.batch_execute(&format!("DROP DATABASE IF EXISTS {name}")).unwrap();
        c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        json!({"store": {"postgres": format!("{admin} dbname={name}")}})
    };
    run("PostgreSQL", db("yl_history_year"), db("yl_history_empty"), days, per_day);
}

#[cfg(not(feature = "postgres"))]
fn on_postgres(_: &str, _: usize, _: usize) {
    panic!("YILIAN_BENCH_POSTGRES needs the postgres feature: cargo bench -p yilian-core --features postgres --bench history_scale")
}
