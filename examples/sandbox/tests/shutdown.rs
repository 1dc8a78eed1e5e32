//! Graceful shutdown under load: requests keep arriving while the server is
//! told to stop. Every booking the server acknowledged (200) is in the store
//! when it is reopened, and nothing else is.

mod common;
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_under_load_keeps_every_acknowledged_booking() {
    let mut s = Server::start(CLOCK, true).await;
    s.ok("sync-catalog", &catalog()).await;
    s.ok("sync-schedule", r#"{"hospital_id": "H001", "schedule_data": [{"device_id": "DEV001", "project_id": "P001", "date": "2024-10-30", "capacity": 10000, "available_slots": [{"start_time": "09:00", "end_time": "10:00"}]}]}"#).await;
    let (tx, mut first_ok) = tokio::sync::mpsc::channel::<()>(64);
    let clients: Vec<_> = (0..16)
        .map(|c| {
            let (client, url, tx) = (s.client.clone(), s.url("/api/v1/book-slot"), tx.clone());
            tokio::spawn(async move {
                let mut acked = Vec::new();
                for i in 0..200 {
                    let body = json!({"patient_id": format!("PAT{c:02}{i:03}"), "project_id": "P001", "date": "2024-10-30", "time_slot": "09:00-10:00", "device_id": "DEV001"});
                    // After the stop, connections are refused or closed: that is the end.
                    let Ok(r) = client.post(&url).json(&body).send().await else { break };
                    let status = r.status().as_u16();
                    let Ok(v) = r.json::<Value>().await else { break };
                    match status {
                        200 => {
                            acked.push(v["data"]["booking_id"].as_str().unwrap().to_string());
                            let _ = tx.try_send(());
                        }
                        503 => break, // ENGINE_CLOSED: the engine closed after the drain
                        _ => panic!("unexpected answer {status}: {v}"),
                    }
                }
                acked
            })
        })
        .collect();
    drop(tx);
    // Stop once bookings are flowing, while requests are in flight.
    tokio::time::timeout(Duration::from_secs(20), first_ok.recv()).await.expect("bookings start").unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    s.begin_stop();
    let mut acked = Vec::new();
    for c in clients {
        acked.extend(tokio::time::timeout(Duration::from_secs(60), c).await.expect("clients end").unwrap());
    }
    let dir = s.stop().await;
    let store = dir.path().join("store");
    assert!(!acked.is_empty());
    assert!(acked.len() < 16 * 200, "the stop happened while requests were still coming");

    // Reopen the store: exactly the acknowledged bookings are there.
    let e = yilian_core::Engine::open(&json!({"data_dir": store, "clock_start": "2024-10-29T09:00:00+08:00"}).to_string()).unwrap();
    for id in &acked {
        let b = e.call_value("booking-info", &json!({"booking_id": id}).to_string()).unwrap();
        assert_eq!(b["status"], "booked", "{id}");
    }
    let slot = e.call_value("slot-info", r#"{"slot_id": "EX-H001-DEV001-20241030-09001000"}"#).unwrap();
    assert_eq!(slot["booked"].as_u64().unwrap() as usize, acked.len(), "no booking was made that the client did not hear about");
    e.check_invariants().unwrap();
    e.close();
    println!("stopped under load: {} bookings acknowledged, all present after reopen", acked.len());
}
