//! Durable booking (issue 2, benchmark 2): confirmed bookings per second in
//! `data_dir` mode with 64 concurrent callers, against the baseline that
//! commits each booking in its own SQLite transaction with fsync, same callers.
//! Reports throughput, p50/p99 latency and the ratio; each side runs in
//! alternating rounds in this one process.

use criterion::Criterion;
use rusqlite::{params, Connection};
use serde_json::json;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};
use yilian_core::{Engine, HoldOptions, SlotHandle};

const CALLERS: usize = 64;
const SLOTS: usize = 200;
const CAPACITY: u32 = 5_000;

struct Outcome {
    per_sec: f64,
    p50_us: f64,
    p99_us: f64,
}

fn percentile(v: &mut [Duration], p: f64) -> f64 {
    v.sort_unstable();
    v[((v.len() as f64 * p) as usize).min(v.len() - 1)].as_secs_f64() * 1e6
}

/// Runs `book(thread, i)` from 64 threads for `per_caller` bookings each.
fn drive(per_caller: usize, book: Arc<dyn Fn(usize, usize) + Send + Sync>) -> Outcome {
    let barrier = Arc::new(Barrier::new(CALLERS + 1));
    let threads: Vec<_> = (0..CALLERS)
        .map(|t| {
            let (book, barrier) = (book.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut lat = Vec::with_capacity(per_caller);
                barrier.wait();
                for i in 0..per_caller {
                    let t0 = Instant::now();
                    book(t, i);
                    lat.push(t0.elapsed());
                }
                lat
            })
        })
        .collect();
    barrier.wait();
    let t0 = Instant::now();
    let mut lat: Vec<Duration> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    let secs = t0.elapsed().as_secs_f64();
    Outcome { per_sec: lat.len() as f64 / secs, p50_us: percentile(&mut lat, 0.5), p99_us: percentile(&mut lat, 0.99) }
}

fn yilian(dir: &std::path::Path) -> (Engine, Vec<SlotHandle>) {
    let e = Engine::open(&json!({"data_dir": dir, "clock_start": "2024-10-29T09:00:00+08:00"}).to_string()).unwrap();
    let windows: Vec<_> = (0..SLOTS)
        .map(|w| json!({"start_time": format!("{:02}:{:02}", 8 + w / 60, w % 60), "end_time": format!("{:02}:{:02}", 8 + (w + 1) / 60, (w + 1) % 60)}))
        .collect();
    e.call_value(
        "sync-schedule",
        &json!({"hospital_id": "H001", "schedule_data": [{"device_id": "DEV001", "project_id": "P001", "date": "2024-10-30", "capacity": CAPACITY, "available_slots": windows}]})
            .to_string(),
    )
    .unwrap();
    let handles = (0..SLOTS)
        .map(|w| e.slot_handle(&format!("EX-H001-DEV001-20241030-{:02}{:02}{:02}{:02}", 8 + w / 60, w % 60, 8 + (w + 1) / 60, (w + 1) % 60)).unwrap())
        .collect();
    (e, handles)
}

fn run_yilian(per_caller: usize, round: usize) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let (e, handles) = yilian(dir.path());
    let e2 = e.clone();
    let out = drive(
        per_caller,
        Arc::new(move |t, i| {
            let patient = format!("P{round}-{t}-{i}");
            let rid = format!("R{round}-{t}-{i}");
            e2.book(handles[(t * 31 + i) % SLOTS], &patient, &HoldOptions { request_id: Some(&rid), ..Default::default() }).unwrap();
        }),
    );
    e.check_invariants().unwrap();
    out
}

fn run_baseline(per_caller: usize, round: usize) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let conn = Connection::open(dir.path().join("baseline.sqlite3")).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn.execute_batch(
        "CREATE TABLE slots(id INTEGER PRIMARY KEY, capacity INTEGER, booked INTEGER);
         CREATE TABLE bookings(id INTEGER PRIMARY KEY, slot INTEGER, patient TEXT, request_id TEXT UNIQUE, status TEXT);
         CREATE TABLE events(seq INTEGER PRIMARY KEY, kind TEXT, booking INTEGER);",
    )
    .unwrap();
    for s in 0..SLOTS {
        conn.execute("INSERT INTO slots VALUES (?1, ?2, 0)", params![s as i64, CAPACITY]).unwrap();
    }
    let conn = Arc::new(Mutex::new(conn));
    drive(
        per_caller,
        Arc::new(move |t, i| {
            let mut c = conn.lock().unwrap();
            let tx = c.transaction().unwrap();
            let slot = ((t * 31 + i) % SLOTS) as i64;
            let n = tx.execute("UPDATE slots SET booked = booked + 1 WHERE id = ?1 AND booked < capacity", params![slot]).unwrap();
            assert_eq!(n, 1);
            tx.execute(
                "INSERT INTO bookings(slot, patient, request_id, status) VALUES (?1, ?2, ?3, 'booked')",
                params![slot, format!("P{round}-{t}-{i}"), format!("R{round}-{t}-{i}")],
            )
            .unwrap();
            let id = tx.last_insert_rowid();
            tx.execute("INSERT INTO events(kind, booking) VALUES ('booking_made', ?1)", params![id]).unwrap();
            tx.commit().unwrap();
        }),
    )
}

fn main() {
    let per_caller: usize = std::env::var("DURABLE_OPS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let rounds: usize = std::env::var("DURABLE_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let mut ratios = Vec::new();
    for round in 0..rounds {
        let (y, b) = if round % 2 == 0 {
            let y = run_yilian(per_caller * 10, round);
            (y, run_baseline(per_caller, round))
        } else {
            let b = run_baseline(per_caller, round);
            (run_yilian(per_caller * 10, round), b)
        };
        ratios.push(y.per_sec / b.per_sec);
        println!(
            "round {round}: yilian {:.0} bookings/s (p50 {:.0} us, p99 {:.0} us), baseline {:.0} bookings/s (p50 {:.0} us, p99 {:.0} us), ratio {:.1}x",
            y.per_sec,
            y.p50_us,
            y.p99_us,
            b.per_sec,
            b.p50_us,
            b.p99_us,
            y.per_sec / b.per_sec
        );
    }
    ratios.sort_by(|a, b| a.total_cmp(b));
    println!("durable_booking: median ratio {:.1}x over {rounds} rounds ({CALLERS} callers, synchronous=FULL on both sides)", ratios[ratios.len() / 2]);

    let mut c = Criterion::default().configure_from_args().sample_size(10).measurement_time(Duration::from_secs(5)).warm_up_time(Duration::from_millis(500));
    let mut g = c.benchmark_group("durable_booking_64_callers");
    g.bench_function("yilian_group_commit", |b| {
        b.iter_custom(|iters| {
            let t0 = Instant::now();
            for r in 0..iters {
                run_yilian(50, 100 + r as usize);
            }
            t0.elapsed()
        })
    });
    g.bench_function("sqlite_txn_per_booking", |b| {
        b.iter_custom(|iters| {
            let t0 = Instant::now();
            for r in 0..iters {
                run_baseline(5, 100 + r as usize);
            }
            t0.elapsed()
        })
    });
    g.finish();
    c.final_summary();
}
