//! Durable booking (issue 2, benchmark 2): confirmed bookings per second in
//! `data_dir` mode with 64 concurrent callers, against the baseline that
//! commits each booking in its own SQLite transaction with fsync, same callers.
//! Reports throughput, p50/p99 latency and the ratio; each side runs in
//! alternating rounds in this one process. Both sides wait for the disk, so
//! each round also measures the disk's fsync (a 4 KiB append and `fdatasync`,
//! in the directory the stores use) and prints it beside the ratio: the
//! baseline's rate is about one booking per fsync, and yilian's rate depends
//! on it much less.

#[path = "common/durable.rs"]
mod durable;

use criterion::Criterion;
use durable::{book_all, drive, run_yilian_data_dir as run_yilian, slot_of, yilian_on_devices, Outcome, CALLERS, CAPACITY, SLOTS};
use rusqlite::{params, Connection};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
            let slot = slot_of(t, i) as i64;
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

/// The median time of a 4 KiB append followed by `fdatasync`, over about
/// half a second, in a fresh file where the benchmark's stores live.
fn fsync_median_us() -> f64 {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let mut f = std::fs::File::create(dir.path().join("fsync-probe")).unwrap();
    let block = [0x5au8; 4096];
    let mut times = Vec::new();
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(500) || times.len() < 20 {
        f.write_all(&block).unwrap();
        let t = Instant::now();
        f.sync_data().unwrap();
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    times[times.len() / 2]
}

/// `DURABLE_CURVE=1` (#21 target 6): yilian's durable bookings on 1×, 10×
/// and 100× the slots (200 a device, on 1, 10 and 100 devices) and on 1×
/// the slots after 10× the measured bookings of history (made first, on
/// the same store), each against the small run, in one process.
fn curve(per_caller: usize) {
    let point = |devices: usize, history: usize| {
        let dir = tempfile::tempdir().unwrap();
        let (e, handles) = yilian_on_devices(serde_json::json!({ "data_dir": dir.path() }), devices);
        let handles = Arc::new(handles);
        for h in 0..history {
            book_all(&e, &handles, per_caller, 1000 + h);
        }
        let out = book_all(&e, &handles, per_caller, 0);
        e.check_invariants().unwrap();
        (devices * SLOTS, out)
    };
    let base = point(1, 0);
    let show = |label: &str, (slots, o): &(usize, Outcome)| {
        println!(
            "durable_curve: {label:<22} {slots:>6} slots  {:>6.0} bookings/s ({:.2}x the small run)  p50 {:.0} us  p99 {:.0} us",
            o.per_sec,
            o.per_sec / base.1.per_sec,
            o.p50_us,
            o.p99_us
        );
    };
    show("1x slots", &base);
    show("1x slots, 10x history", &point(1, 10));
    show("10x slots", &point(10, 0));
    show("100x slots", &point(100, 0));
}

fn main() {
    let per_caller = durable::env_count("DURABLE_OPS", 300);
    let rounds = durable::env_count("DURABLE_ROUNDS", 3);
    if std::env::var("DURABLE_CURVE").is_ok() {
        return curve(per_caller);
    }
    let mut ratios = Vec::new();
    let mut rates = Vec::new();
    let mut fsyncs = Vec::new();
    for round in 0..rounds {
        let (y, b) = if round % 2 == 0 {
            let y = run_yilian(per_caller * 10, round);
            (y, run_baseline(per_caller, round))
        } else {
            let b = run_baseline(per_caller, round);
            (run_yilian(per_caller * 10, round), b)
        };
        let fsync = fsync_median_us();
        ratios.push(y.per_sec / b.per_sec);
        rates.push(y.per_sec);
        fsyncs.push(fsync);
        println!(
            "round {round}: yilian {:.0} bookings/s (p50 {:.0} us, p99 {:.0} us), baseline {:.0} bookings/s (p50 {:.0} us, p99 {:.0} us), ratio {:.1}x, fsync {fsync:.0} us",
            y.per_sec,
            y.p50_us,
            y.p99_us,
            b.per_sec,
            b.p50_us,
            b.p99_us,
            y.per_sec / b.per_sec
        );
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let lowest = rates.iter().copied().fold(f64::INFINITY, f64::min);
    let worst = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    println!(
        "durable_booking: median ratio {:.1}x over {rounds} rounds (lowest {worst:.1}x); yilian median {:.0} bookings/s (lowest {lowest:.0}); the disk's fsync median {:.0} us ({CALLERS} callers, synchronous=FULL on both sides)",
        median(&mut ratios),
        median(&mut rates),
        median(&mut fsyncs)
    );
    println!(
        "durable_booking: target >=10x and >=40,000/s in every round: {}",
        if worst >= 10.0 && lowest >= 40_000.0 { "met" } else { "NOT met" }
    );

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
