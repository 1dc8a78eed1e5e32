#![allow(dead_code)]
use serde_json::{json, Value};
use yilian_core::Engine;

pub const CLOCK: &str = r#"{"clock_start":"2024-10-29T09:00:00+08:00"}"#;

pub fn ok(e: &Engine, cmd: &str, req: Value) -> Value {
    e.call_value(cmd, &req.to_string()).unwrap_or_else(|err| panic!("{cmd} failed: {err:?}"))
}

/// `n` exam slots of `capacity` on DEV001..: slot ids returned in order.
pub fn sync_slots(e: &Engine, devices: usize, windows: usize, capacity: u32) -> Vec<String> {
    let mut data = Vec::new();
    let mut ids = Vec::new();
    for d in 0..devices {
        let dev = format!("DEV{:03}", d + 1);
        let mut slots = Vec::new();
        for w in 0..windows {
            let (s, e2) = (8 * 60 + w * 20, 8 * 60 + w * 20 + 20);
            let start = format!("{:02}:{:02}", s / 60, s % 60);
            let end = format!("{:02}:{:02}", e2 / 60, e2 % 60);
            ids.push(format!("EX-H001-{dev}-20241030-{}{}", start.replace(':', ""), end.replace(':', "")));
            slots.push(json!({"start_time": start, "end_time": end}));
        }
        data.push(json!({"device_id": dev, "project_id": "P001", "date": "2024-10-30", "capacity": capacity, "available_slots": slots}));
    }
    ok(e, "sync-schedule", json!({"hospital_id": "H001", "schedule_data": data}));
    ids
}

pub fn slot_counts(e: &Engine, slot_id: &str) -> (u64, u64, u64, u64) {
    let v = ok(e, "slot-info", json!({"slot_id": slot_id}));
    (v["capacity"].as_u64().unwrap(), v["booked"].as_u64().unwrap(), v["held"].as_u64().unwrap(), v["remaining"].as_u64().unwrap())
}
