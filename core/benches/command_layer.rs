//! The command layer (issue 2, benchmark 3): `Engine::call` with the source's
//! `pre-book-slot` JSON next to the typed hold, each followed by its release,
//! in one run. Prints the per-call cost of each and their ratio.

use criterion::{black_box, Criterion};
use serde_json::json;
use std::time::{Duration, Instant};
use yilian_core::{Engine, HoldOptions};

fn engine() -> Engine {
    let e = Engine::open(r#"{"clock_start":"2024-10-29T09:00:00+08:00"}"#).unwrap();
    e.call_value("sync-schedule", &json!({"hospital_id": "H001", "schedule_data": [{"device_id": "DEV001", "project_id": "P001", "date": "2024-10-30", "capacity": 100000, "available_slots": [{"start_time": "09:00", "end_time": "10:00"}]}]}).to_string()).unwrap();
    e
}

fn json_pair(e: &Engine, i: u64) {
    // The source's example request, with a fresh patient per call.
    let req = format!(r#"{{"patient_id":"PAT{i}","project_id":"P001","date":"2024-10-30","time_slot":"09:00-10:00","device_id":"DEV001","clinic_id":"C001"}}"#);
    let out = e.call("pre-book-slot", &req);
    let id = &out[out.find("\"booking_id\":\"").unwrap() + 14..][..7];
    black_box(e.call("cancel-slot", &format!(r#"{{"booking_id":"{id}"}}"#)));
}

fn typed_pair(e: &Engine, slot: yilian_core::SlotHandle, i: u64) {
    let patient = format!("PAT{i}");
    let h = e.hold(slot, &patient, &HoldOptions { clinic_id: Some("C001"), ..Default::default() }).unwrap();
    e.release(h.booking_id, None).unwrap();
}

fn main() {
    let e = engine();
    let slot = e.slot_handle("EX-H001-DEV001-20241030-09001000").unwrap();
    let mut i = 0u64;
    let n = 20_000;
    let mut ratios = Vec::new();
    for round in 0..5 {
        let t0 = Instant::now();
        for _ in 0..n {
            i += 1;
            json_pair(&e, i);
        }
        let j = t0.elapsed().as_nanos() as f64 / n as f64;
        let t0 = Instant::now();
        for _ in 0..n {
            i += 1;
            typed_pair(&e, slot, i);
        }
        let t = t0.elapsed().as_nanos() as f64 / n as f64;
        e.call_value("next-events", r#"{"ack": 18446744073709551615, "limit": 1}"#).unwrap();
        ratios.push(j / t);
        println!("round {round}: call() pre-book+cancel {:.0} ns, typed hold+release {:.0} ns, ratio {:.1}x", j, t, j / t);
    }
    ratios.sort_by(|a, b| a.total_cmp(b));
    println!("command_layer: the JSON command layer costs {:.1}x the typed path (median of 5 rounds)", ratios[2]);

    let mut c = Criterion::default().configure_from_args().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_millis(500));
    let mut g = c.benchmark_group("command_layer");
    g.bench_function("call_pre_book_then_cancel", |b| {
        b.iter(|| {
            i += 1;
            json_pair(&e, i)
        })
    });
    g.bench_function("typed_hold_then_release", |b| {
        b.iter(|| {
            i += 1;
            typed_pair(&e, slot, i)
        })
    });
    g.finish();
    c.final_summary();
}
