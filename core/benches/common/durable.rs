//! What the durable-booking benches share (`durable_booking` on SQLite,
//! `durable_booking_pg` on PostgreSQL): 64 callers, the schedule of `SLOTS`
//! slots of `CAPACITY` places, the callers' loop with its latencies, and the
//! yilian side (new patients booked with a request id through the typed
//! `Engine::book`) on whichever store a config names.
//! Included by each bench with `#[path = "common/durable.rs"] mod durable;`.

use serde_json::{json, Value};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use yilian_core::{Engine, HoldOptions, SlotHandle};

pub const CALLERS: usize = 64;
pub const SLOTS: usize = 200;
pub const CAPACITY: u32 = 5_000;

pub struct Outcome {
    pub per_sec: f64,
    pub p50_us: f64,
    pub p99_us: f64,
}

/// A count from the environment (`DURABLE_OPS`, `DURABLE_ROUNDS`), or `default`.
pub fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

pub fn percentile(v: &mut [Duration], p: f64) -> f64 {
    v.sort_unstable();
    v[((v.len() as f64 * p) as usize).min(v.len() - 1)].as_secs_f64() * 1e6
}

/// The slot a caller's `i`-th booking goes to (callers spread over every slot).
pub fn slot_of(t: usize, i: usize) -> usize {
    (t * 31 + i) % SLOTS
}

/// Runs `book(thread, i)` from 64 threads for `per_caller` bookings each.
pub fn drive(per_caller: usize, book: Arc<dyn Fn(usize, usize) + Send + Sync>) -> Outcome {
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

/// An engine on the store `store` names (`{"data_dir": …}` or `{"store":
/// {"postgres": …}}`) with the bench's schedule: `SLOTS` one-minute windows
/// of `CAPACITY` places.
pub fn yilian(store: Value) -> (Engine, Vec<SlotHandle>) {
    yilian_on_devices(store, 1)
}

/// [`yilian`] with `devices` × `SLOTS` slots (`SLOTS` windows on each device).
pub fn yilian_on_devices(store: Value, devices: usize) -> (Engine, Vec<SlotHandle>) {
    let mut config = json!({"clock_start": "2024-10-29T09:00:00+08:00"});
    for (k, v) in store.as_object().expect("a store config is a JSON object") {
        config[k] = v.clone();
    }
    let e = Engine::open(&config.to_string()).unwrap();
    let windows: Vec<_> = (0..SLOTS)
        .map(|w| json!({"start_time": format!("{:02}:{:02}", 8 + w / 60, w % 60), "end_time": format!("{:02}:{:02}", 8 + (w + 1) / 60, (w + 1) % 60)}))
        .collect();
    for first in (1..=devices).step_by(50) {
        let rows: Vec<Value> = (first..(first + 50).min(devices + 1))
            .map(|d| json!({"device_id": format!("DEV{d:03}"), "project_id": "P001", "date": "2024-10-30", "capacity": CAPACITY, "available_slots": windows}))
            .collect();
        e.call_value("sync-schedule", &json!({"hospital_id": "H001", "schedule_data": rows}).to_string()).unwrap();
    }
    let handles = (1..=devices)
        .flat_map(|d| (0..SLOTS).map(move |w| (d, w)))
        .map(|(d, w)| e.slot_handle(&format!("EX-H001-DEV{d:03}-20241030-{:02}{:02}{:02}{:02}", 8 + w / 60, w % 60, 8 + (w + 1) / 60, (w + 1) % 60)).unwrap())
        .collect();
    (e, handles)
}

/// yilian's side on the store `store` names: each caller books
/// `per_caller` new patients, each with its request id, through the typed
/// `Engine::book`; the invariants are checked after.
pub fn run_yilian(store: Value, per_caller: usize, round: usize) -> Outcome {
    let (e, handles) = yilian(store);
    let out = book_all(&e, &Arc::new(handles), per_caller, round);
    e.check_invariants().unwrap();
    out
}

/// Each caller books `per_caller` new patients (`round` keeps them apart
/// from other rounds') on `handles`, spread over all of them.
pub fn book_all(e: &Engine, handles: &Arc<Vec<SlotHandle>>, per_caller: usize, round: usize) -> Outcome {
    let (e2, handles) = (e.clone(), handles.clone());
    drive(
        per_caller,
        Arc::new(move |t, i| {
            let patient = format!("P{round}-{t}-{i}");
            let rid = format!("R{round}-{t}-{i}");
            let slot = (t * 31 + i) % handles.len(); // `slot_of` on any number of slots
            e2.book(handles[slot], &patient, &HoldOptions { request_id: Some(&rid), ..Default::default() }).unwrap();
        }),
    )
}

/// yilian's side in `data_dir` mode (SQLite, `synchronous=FULL`), on a fresh temporary directory.
pub fn run_yilian_data_dir(per_caller: usize, round: usize) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    run_yilian(json!({ "data_dir": dir.path() }), per_caller, round)
}
