//! What is due at a time happens without a caller (P12, #18 item 4): the
//! engine's timer thread, with a manual clock moved by `advance-clock` and
//! no other change made, expires holds, announces the release window,
//! escalates critical values (again while unacknowledged) and sends
//! reminders; `run-due` does the same pass for a host's own scheduler.
//! Events are observed with `next-events` and state with queries, neither
//! of which runs due work.

mod lab_common;

use lab_common::setup;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use yilian_core::Engine;

const START: &str = "2024-10-29T09:00:00+08:00";

fn engine(extra: Value) -> Engine {
    let mut cfg = json!({"clock_start": START, "clock": "manual"});
    for (k, v) in extra.as_object().unwrap() {
        cfg[k] = v.clone();
    }
    Engine::open(&cfg.to_string()).unwrap()
}

/// A manual clock with the timer thread on, a pass every 100 ms.
fn timed(extra: Value) -> Engine {
    let mut extra = extra;
    extra["timer"] = json!({"enabled": true, "every_ms": 100});
    engine(extra)
}

fn ok(e: &Engine, cmd: &str, req: Value) -> Value {
    e.call_value(cmd, &req.to_string()).unwrap_or_else(|err| panic!("{cmd} failed: {err:?}"))
}

/// Every event of `kind` the outbox holds (read without acknowledging).
fn events(e: &Engine, kind: &str) -> Vec<Value> {
    let all = ok(e, "next-events", json!({"limit": 10000}));
    all["events"].as_array().unwrap().iter().filter(|v| v["type"] == kind || v["kind"] == kind).cloned().collect()
}

/// Waits up to 10 s for `f` to hold, polling.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "{what}: not within 10 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn advance(e: &Engine, seconds: u64) {
    ok(e, "advance-clock", json!({"seconds": seconds}));
}

/// One exam slot of `capacity` on `date` 08:00–08:20 at H001: its id.
fn exam_slot(e: &Engine, date: &str, capacity: u32) -> String {
    let data = json!([{"device_id": "DEV001", "project_id": "P001", "date": date, "capacity": capacity, "available_slots": [{"start_time": "08:00", "end_time": "08:20"}]}]);
    ok(e, "sync-schedule", json!({"hospital_id": "H001", "schedule_data": data}));
    format!("EX-H001-DEV001-{}-08000820", date.replace('-', ""))
}

/// A critical value published on a C001 order (limit 5 minutes, a fallback): its id.
fn publish_critical(e: &Engine) -> String {
    setup(e);
    ok(e, "critical-value-limit-set", json!({"institution_id": "C001", "minutes": 5, "fallback_name": "值班主任", "fallback_contact": "0512-57000000"}));
    lab_common::critical_value(e)
}

fn critical_status(e: &Engine, id: &str) -> Value {
    let q = ok(e, "critical-value-query", json!({"institution_id": "C001"}));
    q["critical_values"].as_array().unwrap().iter().find(|v| v["critical_id"] == id).cloned().unwrap()
}

#[test]
fn an_unacknowledged_critical_value_is_escalated_by_the_timer_with_no_other_call() {
    // The defect as reported: without a timer the value waits for the next lab call.
    let e = engine(json!({}));
    let id = publish_critical(&e);
    advance(&e, 301);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(critical_status(&e, &id)["status"], "published", "no timer, no call: nothing escalates it");
    drop(e);

    let e = timed(json!({}));
    let id = publish_critical(&e);
    advance(&e, 301);
    eventually("the value turns overdue", || critical_status(&e, &id)["status"] == "overdue");
    let v = critical_status(&e, &id);
    assert_eq!(v["escalated_to"]["name"], "值班主任");
    assert_eq!(v["escalations"], 1);
    let overdue = events(&e, "critical_value_overdue");
    assert_eq!(overdue.len(), 1);
    assert_eq!(overdue[0]["data"]["critical_id"], id.as_str());

    // Still unacknowledged a limit after its deadline (+10:00): escalated
    // again, then every limit (+15:00), counted from when each was due.
    advance(&e, 300); // +10:01
    eventually("escalated a second time", || events(&e, "critical_value_escalated").len() == 1);
    assert_eq!(critical_status(&e, &id)["escalations"], 2);
    advance(&e, 298); // +14:59
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(events(&e, "critical_value_escalated").len(), 1, "not before its limit has passed again");
    advance(&e, 1); // +15:00
    eventually("escalated a third time", || critical_status(&e, &id)["escalations"] == 3);
    assert_eq!(events(&e, "critical_value_escalated")[1]["data"]["escalations"], 3);

    // Acknowledged: no escalation after it.
    ok(&e, "critical-value-ack", json!({"critical_id": id, "receiver": "李医生", "contact": "13800138000", "readback": "45", "institution_id": "C001"}));
    advance(&e, 3600);
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(critical_status(&e, &id)["escalations"], 3);
    assert_eq!(critical_status(&e, &id)["next_escalation"], Value::Null);
}

#[test]
fn an_unpaid_hold_expires_and_its_place_returns_by_the_timer_alone() {
    let e = timed(json!({"hold_ttl_seconds": 600}));
    let slot = exam_slot(&e, "2024-10-30", 1);
    let b = ok(&e, "pre-book-slot", json!({"slot_id": slot, "patient_id": "PAT001", "clinic_id": "C001"}));
    let id = b["booking_id"].as_str().unwrap().to_string();
    assert_eq!(ok(&e, "slot-info", json!({"slot_id": slot}))["remaining"], 0);
    advance(&e, 599);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(ok(&e, "booking-info", json!({"booking_id": id}))["status"], "pre-booked");
    assert!(events(&e, "hold_expired").is_empty());
    advance(&e, 1);
    // Reads show a lapsed hold as expired at once; the event is the sweep's.
    eventually("the hold expires", || events(&e, "hold_expired").len() == 1);
    assert_eq!(events(&e, "hold_expired")[0]["booking_id"], id.as_str());
    assert_eq!(ok(&e, "booking-info", json!({"booking_id": id}))["status"], "expired");
    assert_eq!(ok(&e, "slot-info", json!({"slot_id": slot}))["remaining"], 1);
}

#[test]
fn the_release_window_is_announced_once_per_hospital_and_day_when_it_opens() {
    let e = timed(json!({}));
    // Open already (10-29 08:00 opened 11-05): never announced.
    exam_slot(&e, "2024-11-05", 3);
    // Opens 10-30 08:00 (seven days before, config `release`).
    let later = exam_slot(&e, "2024-11-06", 3);
    assert_eq!(
        e.call_value("pre-book-slot", &json!({"slot_id": later, "patient_id": "PAT001", "clinic_id": "C001"}).to_string()).unwrap_err().code().as_str(),
        "SLOT_NOT_RELEASED"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(events(&e, "slots_released").is_empty());
    advance(&e, 23 * 3600 - 1); // 10-30 07:59:59
    std::thread::sleep(Duration::from_millis(300));
    assert!(events(&e, "slots_released").is_empty(), "not before 08:00");
    advance(&e, 1);
    eventually("announced at 08:00", || events(&e, "slots_released").len() == 1);
    let ev = &events(&e, "slots_released")[0];
    assert_eq!(ev["data"]["hospital_id"], "H001");
    assert_eq!(ev["data"]["date"], "2024-11-06");
    assert_eq!(ev["data"]["slots"], 1);
    assert_eq!(ev["data"]["places"], 3);
    assert_eq!(ev["data"]["opened_at"], "2024-10-30T08:00:00+08:00");
    advance(&e, 60);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(events(&e, "slots_released").len(), 1, "announced once");
    ok(&e, "pre-book-slot", json!({"slot_id": later, "patient_id": "PAT001", "clinic_id": "C001"}));
}

#[test]
fn a_booked_visit_is_reminded_at_each_configured_offset_once_and_a_hold_is_not() {
    let e = timed(json!({"reminder_minutes": [60, 1440]}));
    let slot = exam_slot(&e, "2024-10-31", 2); // visit 10-31 08:00
    let booked = ok(&e, "book-slot", json!({"slot_id": slot, "patient_id": "PAT001", "clinic_id": "C001"}));
    ok(&e, "pre-book-slot", json!({"slot_id": slot, "patient_id": "PAT002", "clinic_id": "C001", "request_id": "hold-1"}));
    // The day before, 08:00: the 24-hour reminder.
    advance(&e, 23 * 3600 - 1);
    std::thread::sleep(Duration::from_millis(300));
    assert!(events(&e, "appointment_reminder").is_empty());
    advance(&e, 1);
    eventually("the 24-hour reminder", || events(&e, "appointment_reminder").len() == 1);
    let r = &events(&e, "appointment_reminder")[0];
    assert_eq!(r["booking_id"], booked["booking_id"]);
    assert_eq!(r["data"]["minutes_before"], 1440);
    assert_eq!(r["data"]["visit_at"], "2024-10-31T08:00:00+08:00");
    // The hour before: the second, and no repeat of the first.
    advance(&e, 23 * 3600);
    eventually("the one-hour reminder", || events(&e, "appointment_reminder").len() == 2);
    std::thread::sleep(Duration::from_millis(300));
    let all = events(&e, "appointment_reminder");
    assert_eq!(all.len(), 2);
    assert_eq!(all[1]["data"]["minutes_before"], 60);
}

#[test]
fn run_due_does_the_same_pass_for_a_host_without_the_timer_and_says_what_it_did() {
    let e = engine(json!({"reminder_minutes": [60], "hold_ttl_seconds": 600}));
    assert_eq!(ok(&e, "engine-info", json!({}))["timer"], Value::Null, "a manual clock has no timer unless asked");
    let names: Vec<String> = ok(&e, "engine-info", json!({}))["due_work"].as_array().unwrap().iter().map(|w| w["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(names, ["holds_expired", "handoffs_decided", "upstream_reconciled", "schedule_pushes_missed", "slots_released", "critical_values_escalated", "reminders", "follow_ups_due", "history_retired"]);
    let slot = exam_slot(&e, "2024-10-30", 2);
    ok(&e, "pre-book-slot", json!({"slot_id": slot, "patient_id": "PAT001", "clinic_id": "C001"}));
    ok(&e, "book-slot", json!({"slot_id": slot, "patient_id": "PAT002", "clinic_id": "C001"}));
    advance(&e, 22 * 3600 + 1); // 10-30 07:00:01
    std::thread::sleep(Duration::from_millis(200));
    assert!(events(&e, "hold_expired").is_empty(), "nothing runs by itself without the timer");
    let pass = ok(&e, "run-due", json!({}));
    assert_eq!(pass["holds_expired"], 1);
    assert_eq!(pass["reminders"], 1);
    assert_eq!(pass["now"], "2024-10-30T07:00:01+08:00");
    assert_eq!(pass["failed"], json!([]));
    let again = ok(&e, "run-due", json!({}));
    assert_eq!((again["holds_expired"].as_u64(), again["reminders"].as_u64()), (Some(0), Some(0)), "each thing once");
    // The real clock has the timer by default.
    let real = Engine::open("{}").unwrap();
    assert_eq!(ok(&real, "engine-info", json!({}))["timer"]["every_ms"], 1000);
}

#[test]
fn a_durable_engine_keeps_its_watermarks_so_a_reopen_neither_repeats_nor_skips_a_reminder() {
    let dir = tempfile::tempdir().unwrap();
    let extra = json!({"data_dir": dir.path(), "reminder_minutes": [60]});
    let e = engine(extra.clone());
    let slot = exam_slot(&e, "2024-10-30", 4);
    ok(&e, "book-slot", json!({"slot_id": slot, "patient_id": "PAT001", "clinic_id": "C001"}));
    advance(&e, 22 * 3600 + 1); // 10-30 07:00:01: due
    assert_eq!(ok(&e, "run-due", json!({}))["reminders"], 1);
    drop(e);
    // Reopened at the same instant: nothing again.
    let e = Engine::open(&json!({"clock_start": "2024-10-30T07:00:02+08:00", "clock": "manual", "data_dir": dir.path(), "reminder_minutes": [60]}).to_string())
        .unwrap();
    assert_eq!(ok(&e, "run-due", json!({}))["reminders"], 0);
    assert_eq!(events(&e, "appointment_reminder").len(), 1);
    // A visit booked now for 10-31 08:00, then the engine is down across its
    // reminder's moment: the first pass after the reopen sends it.
    let slot2 = exam_slot(&e, "2024-10-31", 4);
    ok(&e, "book-slot", json!({"slot_id": slot2, "patient_id": "PAT002", "clinic_id": "C001"}));
    drop(e);
    let e = Engine::open(&json!({"clock_start": "2024-10-31T07:30:00+08:00", "clock": "manual", "data_dir": dir.path(), "reminder_minutes": [60]}).to_string())
        .unwrap();
    assert_eq!(ok(&e, "run-due", json!({}))["reminders"], 1);
    assert_eq!(events(&e, "appointment_reminder").len(), 2);
}

#[test]
fn bad_timer_and_reminder_settings_are_refused_with_both_messages() {
    for cfg in [
        json!({"timer": {"every_ms": 10}}),
        json!({"timer": {"enabled": "yes"}}),
        json!({"timer": {"every": 5}}),
        json!({"reminder_minutes": [0]}),
        json!({"reminder_minutes": [60, 43_201]}),
        json!({"reminder_minutes": [1, 2, 3, 4, 5, 6, 7, 8, 9]}),
    ] {
        let e = Engine::open(&cfg.to_string()).err().unwrap_or_else(|| panic!("{cfg} accepted"));
        assert_eq!(e.code().as_str(), "INVALID_CONFIG", "{cfg}");
        assert!(!e.message_zh().is_empty() && e.message_zh().chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)), "{cfg}: {}", e.message_zh());
    }
}
