//! Release day (放号日) on the durable embedded store.
//!
//! The county hospital publishes a week of exam, registration and bed
//! schedules; at 08:00 the pool opens the next seven days; community centres
//! rush for the few CT and expert slots; holds are paid or expire; a waiter is
//! promoted; a device stops for maintenance (停诊) and its bookings move; the
//! store is closed and reopened and every booking is still there.
//!
//! Usage: `release-day [DATA_DIR]` (default `./yilian-data/release-day`; the
//! example's own directory, emptied at the start of each run).

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use yilian_core::{Engine, ErrorCode};

const NETWORK: &str = include_str!("../data/demo-network.json");

fn call(e: &Engine, cmd: &str, req: Value) -> Result<Value, yilian_core::Error> {
    e.call_value(cmd, &req.to_string())
}

fn must(e: &Engine, cmd: &str, req: Value) -> Value {
    call(e, cmd, req).unwrap_or_else(|err| panic!("{cmd}: {err}"))
}

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "yilian-data/release-day".into());
    let _ = std::fs::remove_dir_all(&dir);
    let config = json!({"data_dir": dir, "clock_start": "2024-10-29T07:59:00+08:00", "clock": "manual", "hold_ttl_seconds": 900});
    let net: Value = serde_json::from_str(NETWORK).expect("demo network is JSON");
    let e = Engine::open(&config.to_string()).expect("open the store");
    println!("== yilian {} — release day, durable store in {dir}", Engine::version());

    // 1. The hospital publishes its catalogue and a week of schedules.
    let h = &net["hospital"];
    let hid = h["hospital_id"].as_str().unwrap();
    must(&e, "sync-catalog", json!({"hospital_id": hid, "name": h["name"], "projects": h["projects"], "devices": h["devices"]}));
    let mut schedule = Vec::new();
    for day in 1..=8 {
        let date = format!("2024-11-{:02}", day);
        for dev in h["devices"].as_array().unwrap().iter().filter(|d| d["status"] == "available") {
            let windows: Vec<Value> =
                (8..17).filter(|hr| *hr != 12).map(|hr| json!({"start_time": format!("{hr:02}:00"), "end_time": format!("{:02}:00", hr + 1)})).collect();
            let cap = if dev["device_id"] == "DEV001" { 2 } else { 4 };
            schedule.push(json!({"device_id": dev["device_id"], "project_id": dev["project_id"], "date": date, "capacity": cap, "available_slots": windows}));
        }
        for doc in h["doctors"].as_array().unwrap() {
            schedule.push(json!({"doctor_id": doc["doctor_id"], "department_id": doc["department_id"], "date": date, "capacity": 3, "reserved_quota": 1,
                "available_slots": [{"start_time": "08:00", "end_time": "11:30", "period": "上午"}, {"start_time": "13:30", "end_time": "17:00", "period": "下午"}]}));
        }
    }
    for ward in h["departments"].as_array().unwrap().iter().filter(|d| d["ward"] == true) {
        let beds: Vec<Value> =
            (1..=ward["beds"].as_u64().unwrap()).map(|n| json!({"bed_number": format!("{n:02}"), "bed_type": ward["bed_types"][0]})).collect();
        schedule.push(json!({"kind": "bed", "department_id": ward["department_id"], "date": "2024-10-29", "beds": beds}));
    }
    let synced = must(&e, "sync-schedule", json!({"hospital_id": hid, "mode": "full", "schedule_data": schedule}));
    println!("07:59  schedule synced: {} slots (exam, registration, beds) for 2024-11-01..08", synced["created"]);

    // 2. Before 08:00 the last day of the window is closed to booking.
    let ct = |date: &str, t: &str| json!({"project_id": "P001", "device_id": "DEV001", "date": date, "time_slot": t});
    let early = call(&e, "pre-book-slot", {
        let mut r = ct("2024-11-05", "09:00-10:00");
        r["patient_id"] = "PAT-EARLY".into();
        r
    });
    println!("07:59  pre-book CT on 11-05: {}", early.map(|_| "booked?!".to_string()).unwrap_or_else(|err| err.code_str().to_string()));
    e.advance_clock(60_000).unwrap();
    println!("08:00  release: the pool opens 2024-10-30 .. 2024-11-05");

    // 3. The rush: eight community terminals, 400 patients, most want the morning CT.
    let clinics: Vec<String> = net["community"].as_array().unwrap().iter().map(|c| c["clinic_id"].as_str().unwrap().to_string()).collect();
    let e2 = Arc::new(e.clone());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (e, clinics) = (e2.clone(), clinics.clone());
            std::thread::spawn(move || {
                let mut tally: BTreeMap<String, u32> = BTreeMap::new();
                for i in 0..50 {
                    let day = 1 + (i * 7 + t) % 5;
                    let slot = if i % 3 == 0 { "10:00-11:00" } else { "09:00-10:00" };
                    let mut req = json!({"project_id": "P001", "device_id": "DEV001", "date": format!("2024-11-{day:02}"), "time_slot": slot,
                        "patient_id": format!("PAT{t}{i:03}"), "clinic_id": clinics[(t + i) % clinics.len()], "request_id": format!("rush-{t}-{i}")});
                    if i % 10 == 0 {
                        req["priority"] = "critical".into();
                    }
                    let key = match call(&e, "pre-book-slot", req) {
                        Ok(b) => {
                            // Most pay at the kiosk at once; a few walk away and their hold expires.
                            if i % 4 != 3 {
                                call(&e, "payment-status", json!({"booking_id": b["booking_id"], "payment_status": "paid"})).expect("pay");
                                "held, then paid".to_string()
                            } else {
                                "held, unpaid".to_string()
                            }
                        }
                        Err(err) if err.code() == ErrorCode::SlotFull => {
                            let w =
                                json!({"project_id": "P001", "device_id": "DEV001", "date": format!("2024-11-{day:02}"), "time_slot": slot, "patient_id": format!("PAT{t}{i:03}")});
                            match call(&e, "waitlist-join", w) {
                                Ok(_) => "full → waitlisted".to_string(),
                                Err(err) => format!("full → {}", err.code_str()),
                            }
                        }
                        Err(err) => err.code_str().to_string(),
                    };
                    *tally.entry(key).or_default() += 1;
                }
                tally
            })
        })
        .collect();
    let mut tally: BTreeMap<String, u32> = BTreeMap::new();
    for t in threads {
        for (k, v) in t.join().unwrap() {
            *tally.entry(k).or_default() += v;
        }
    }
    println!("08:00  the rush, 400 requests from 8 terminals:");
    for (k, v) in &tally {
        println!("         {v:>4}  {k}");
    }
    let q = must(&e, "real-time-slots", json!({"project_id": "P001", "date": "2024-11-01", "time_slot": "14:00-15:00"}));
    println!(
        "08:01  CT 11-01 14:00-15:00: {} left{}",
        q["available_slots"],
        q.get("notice").and_then(Value::as_str).map(|n| format!(" — {n}")).unwrap_or_default()
    );

    // 4. Unpaid holds expire after 15 minutes; cancellations promote waiters.
    e.advance_clock(16 * 60_000).unwrap();
    let expired = must(&e, "expire-holds", json!({}));
    println!("08:16  {} unpaid holds expired; their places went to waiters first", expired["expired"]);

    // 5. The CT stops for maintenance on 11-02: bookings move to the nearest free window.
    let stop =
        must(&e, "stop-service", json!({"device_id": "DEV001", "project_id": "P001", "stop_date": "2024-11-02", "action": "move", "reason": "CT维护保养"}));
    println!(
        "09:00  停诊 CT on 11-02: {} slots closed, {} bookings moved, {} cancelled (no window left), {} waiters told",
        stop["closed_slots"],
        stop["moved"].as_array().unwrap().len(),
        stop["cancelled"].as_array().unwrap().len(),
        stop["waitlist_closed"]
    );

    // 6. A referral bed and the day's figures.
    let bed = must(
        &e,
        "bed-reserve",
        json!({"hospital_id": hid, "department_id": "D001", "patient_id": "PAT-BED", "clinic_id": "C001", "expected_date": "2024-11-01", "reason": "冠心病再住院", "priority": "referral"}),
    );
    println!(
        "09:10  bed reserved: ward D001 bed {} for {} ({})",
        bed["bed_number"].as_str().unwrap(),
        bed["patient_id"].as_str().unwrap(),
        bed["status"].as_str().unwrap()
    );
    let stats = must(&e, "slot-statistics", json!({"hospital_ids": [hid], "kind": "exam", "date_from": "2024-11-01", "date_to": "2024-11-05"}));
    println!(
        "09:10  exam pool 11-01..05: capacity {}, booked {}, held {}, remaining {}; booking success rate {}",
        stats["total"]["capacity"], stats["total"]["booked"], stats["total"]["held"], stats["total"]["remaining"], stats["booking_success_rate"]
    );
    let rec = must(&e, "recommend-slots", json!({"patient_id": "PAT-NEW", "project_id": "P003", "preferences": {"weekend": true}, "limit": 3}));
    for r in rec["recommendations"].as_array().unwrap() {
        println!(
            "         recommended MRI {} {} (score {}: {})",
            r["date"].as_str().unwrap(),
            r["time_slot"].as_str().unwrap(),
            r["score"],
            r["reasons"].as_array().unwrap().iter().map(|x| x.as_str().unwrap()).collect::<Vec<_>>().join(", ")
        );
    }
    let mut kinds: BTreeMap<String, u32> = BTreeMap::new();
    let mut ack = None;
    loop {
        let ev = must(&e, "next-events", json!({"ack": ack, "limit": 500}));
        let events = ev["events"].as_array().unwrap();
        if events.is_empty() {
            break;
        }
        for x in events {
            *kinds.entry(x["type"].as_str().unwrap().to_string()).or_default() += 1;
        }
        ack = ev["last_seq"].as_u64();
    }
    println!("09:10  events for the hospital's SMS gateway: {}", kinds.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", "));

    // 7. Close and reopen: everything acknowledged is still there.
    let before = must(&e, "slot-statistics", json!({}))["total"].clone();
    e.check_invariants().expect("invariants");
    e.close();
    let e = Engine::open(&config.to_string()).expect("reopen");
    let after = must(&e, "slot-statistics", json!({}))["total"].clone();
    e.check_invariants().expect("invariants after reopen");
    println!(
        "reopen: booked {} / held {} before, {} / {} after — {}",
        before["booked"],
        before["held"],
        after["booked"],
        after["held"],
        if before["booked"] == after["booked"] && before["held"] == after["held"] { "nothing lost" } else { "MISMATCH" }
    );
    assert_eq!(before["booked"], after["booked"]);
}
