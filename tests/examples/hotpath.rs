use std::time::Instant;
use yilian_core::{Engine, HoldOptions};
fn main() {
    let e = Engine::open(r#"{"clock_start":"2024-10-29T09:00:00+08:00"}"#).unwrap();
    e.call_value("sync-schedule", r#"{"hospital_id":"H001","schedule_data":[{"device_id":"DEV001","project_id":"P001","date":"2024-10-30","capacity":1,"available_slots":[{"start_time":"09:00","end_time":"10:00"},{"start_time":"10:00","end_time":"11:00"}]}]}"#).unwrap();
    e.call_value("sync-schedule", r#"{"hospital_id":"H001","schedule_data":[{"device_id":"DEV002","project_id":"P001","date":"2024-10-30","capacity":50000,"available_slots":[{"start_time":"09:00","end_time":"10:00"}]}]}"#).unwrap();
    let full = e.slot_handle("EX-H001-DEV001-20241030-09001000").unwrap();
    let big = e.slot_handle("EX-H001-DEV002-20241030-09001000").unwrap();
    e.hold(full, "X", &HoldOptions::default()).unwrap();
    let n = 200_000;
    let ids: Vec<String> = (0..n).map(|i| format!("req-{i}")).collect();
    let t = Instant::now();
    for id in &ids {
        let _ = e.hold(full, id, &HoldOptions { request_id: Some(id), ..Default::default() });
    }
    println!("refusal: {:.0} ns", t.elapsed().as_nanos() as f64 / n as f64);
    let n2 = 40_000;
    let t = Instant::now();
    let mut bs = Vec::new();
    for id in &ids[..n2] {
        bs.push(e.hold(big, id, &HoldOptions { request_id: Some(id), ..Default::default() }).unwrap().booking_id);
    }
    println!("hold success: {:.0} ns", t.elapsed().as_nanos() as f64 / n2 as f64);
    let t = Instant::now();
    for b in &bs {
        e.confirm(*b, None).unwrap();
    }
    println!("confirm: {:.0} ns", t.elapsed().as_nanos() as f64 / n2 as f64);
    let t = Instant::now();
    for b in &bs {
        e.release(*b, None).unwrap();
    }
    println!("release: {:.0} ns", t.elapsed().as_nanos() as f64 / n2 as f64);
    let t = Instant::now();
    for _ in 0..n2 {
        e.availability(big).unwrap();
    }
    println!("availability: {:.0} ns", t.elapsed().as_nanos() as f64 / n2 as f64);
}
