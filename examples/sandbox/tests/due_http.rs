//! The sandbox runs what is due by itself (#18 item 4): a hold left unpaid
//! on a server with a manual clock expires when the clock passes its
//! time-to-live, with no call but `advance-clock` — the server's config
//! asked for no timer, and the server turns it on.

mod common;

use common::process::{post, sigterm_and_wait, start};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_expires_an_unpaid_hold_on_its_own_when_the_clock_passes_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.json");
    std::fs::write(&cfg, json!({"clock_start": "2024-10-29T09:00:00+08:00", "clock": "manual", "hold_ttl_seconds": 600}).to_string()).unwrap();
    let mut p = start(&["--memory", "--config", cfg.to_str().unwrap()]);
    let c = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let data = json!([{"device_id": "DEV001", "project_id": "P001", "date": "2024-10-30", "capacity": 1, "available_slots": [{"start_time": "08:00", "end_time": "08:20"}]}]);
    assert_eq!(post(&c, &p.base, "sync-schedule", json!({"hospital_id": "H001", "schedule_data": data})).await.0, 200);
    let (st, held) =
        post(&c, &p.base, "pre-book-slot", json!({"slot_id": "EX-H001-DEV001-20241030-08000820", "patient_id": "PAT001", "clinic_id": "C001"})).await;
    assert_eq!(st, 200, "{held}");
    let (_, info) = post(&c, &p.base, "engine-info", json!({})).await;
    assert_eq!(info["data"]["timer"]["every_ms"], 1000, "the server runs the timer: {info}");
    assert_eq!(post(&c, &p.base, "advance-clock", json!({"seconds": 601})).await.0, 200);
    let expired = |evs: &Value| evs["data"]["events"].as_array().unwrap().iter().any(|e| e["type"] == "hold_expired");
    let t = Instant::now();
    loop {
        let (_, evs) = post(&c, &p.base, "next-events", json!({"limit": 100})).await;
        if expired(&evs) {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "no hold_expired within 10 s: {evs}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(sigterm_and_wait(&mut p).success());
}
