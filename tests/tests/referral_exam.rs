//! Exam steps on several items of one application are all or nothing: when
//! one named item cannot take the step (its hold expired, it was already
//! cancelled, its slot was stopped) the call fails naming that item and no
//! item, booking, slot or event changes; without it, every item takes the
//! step in one durable transaction with one request-id answer.

mod common;
use common::ok;
use serde_json::{json, Value};
use yilian_core::{Engine, ErrorCode};

/// Three exam windows of DEV001 (project P001), one per item.
const SLOTS: [&str; 3] = ["EX-H001-DEV001-20241030-13001320", "EX-H001-DEV001-20241030-13201340", "EX-H001-DEV001-20241030-13401400"];

fn manual(dir: Option<&std::path::Path>) -> String {
    let mut c = json!({"clock_start": "2024-10-29T09:00:00+08:00", "clock": "manual"});
    if let Some(d) = dir {
        c["data_dir"] = json!(d);
    }
    c.to_string()
}

/// The catalogue of the referral vectors, three exam windows and one
/// application of three CT items (exam 1).
fn setup(e: &Engine) {
    setup_with(e, 2);
    let items: Vec<Value> = ["头颅", "胸部", "腹部"].iter().map(|p| json!({"project_id": "P001", "method": "平扫", "body_part": p})).collect();
    let v =
        ok(e, "exam-apply", json!({"institution_id": "C001", "hospital_id": "H001", "patient_id": "PAT001", "ordering_doctor_id": "CDR01", "items": items}));
    assert_eq!(v["exam_id"], 1);
}

/// The catalogue of the referral vectors and the three exam windows.
fn setup_with(e: &Engine, capacity: u32) {
    let files = yilian_tests::vector_files();
    let (_, f) = files.iter().find(|(n, _)| n.contains("30_referral_outpatient")).expect("referral vectors");
    for st in f["cases"][0]["steps"].as_array().unwrap().iter().take(2) {
        ok(e, st["command"].as_str().unwrap(), st["request"].clone());
    }
    let windows: Vec<Value> =
        SLOTS.iter().map(|s| json!({"start_time": format!("{}:{}", &s[24..26], &s[26..28]), "end_time": format!("{}:{}", &s[28..30], &s[30..32])})).collect();
    ok(
        e,
        "sync-schedule",
        json!({"hospital_id": "H001", "schedule_data": [{"device_id": "DEV001", "project_id": "P001", "date": "2024-10-30", "capacity": capacity, "available_slots": windows}]}),
    );
}

fn arrange(e: &Engine, item: usize) {
    let v = ok(e, "exam-arrange", json!({"institution_id": "H001", "exam_id": 1, "item_no": item, "slot_id": SLOTS[item - 1]}));
    assert_eq!(v["items"][item - 1]["status"], "arranged");
}

fn fail(e: &Engine, cmd: &str, req: Value) -> yilian_core::Error {
    e.call_value(cmd, &req.to_string()).expect_err(cmd)
}

/// The events not yet acknowledged, acknowledged.
fn drain(e: &Engine) -> Vec<Value> {
    let v = ok(e, "next-events", json!({"limit": 10000}));
    ok(e, "next-events", json!({"ack": v["last_seq"].clone(), "limit": 1}));
    v["events"].as_array().cloned().unwrap_or_default()
}

fn kinds(evs: &[Value]) -> Vec<String> {
    let mut k: Vec<String> = evs.iter().map(|v| v["type"].as_str().unwrap().to_string()).collect();
    k.sort();
    k
}

/// Everything a step could change: the application, every booking it
/// owns, the places of the three slots.
fn snapshot(e: &Engine) -> Value {
    let exam = ok(e, "exam-view", json!({"exam_id": 1}));
    let bookings: Vec<Value> = exam["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["booking"]["booking_id"].as_str())
        .map(|b| ok(e, "booking-info", json!({"booking_id": b})))
        .collect();
    let slots: Vec<Value> = SLOTS.iter().map(|s| ok(e, "slot-info", json!({"slot_id": s}))).collect();
    json!({"exam": exam, "bookings": bookings, "slots": slots})
}

fn statuses(e: &Engine) -> Vec<String> {
    let v = ok(e, "exam-view", json!({"exam_id": 1}));
    v["items"].as_array().unwrap().iter().map(|i| i["status"].as_str().unwrap().to_string()).collect()
}

fn places(e: &Engine, slot: &str) -> (u64, u64) {
    let v = ok(e, "slot-info", json!({"slot_id": slot}));
    (v["booked"].as_u64().unwrap(), v["held"].as_u64().unwrap())
}

#[test]
fn a_payment_with_one_expired_hold_pays_nothing_and_names_the_item() {
    let e = Engine::open(&manual(None)).unwrap();
    setup(&e);
    // Item 2 is arranged first; its hold (15 min) runs out while 1 and 3 are still held.
    arrange(&e, 2);
    ok(&e, "advance-clock", json!({"seconds": 840}));
    arrange(&e, 1);
    arrange(&e, 3);
    ok(&e, "advance-clock", json!({"seconds": 120}));
    // The pool's own expiry (it would also happen lazily inside the call).
    assert_eq!(ok(&e, "expire-holds", json!({}))["expired"], 1);
    drain(&e);
    let before = snapshot(&e);
    assert_eq!(statuses(&e), ["arranged", "slot_released", "arranged"]);

    let err = fail(&e, "exam-payment", json!({"exam_id": 1, "item_nos": [1, 2, 3], "payment_status": "paid", "request_id": "pay-1"}));
    assert_eq!(err.code(), ErrorCode::ExamInvalidTransition);
    assert!(err.message().contains("item 2") && err.message().contains("slot_released"), "{}", err.message());
    assert!(err.message_zh().contains("第 2 项"), "{}", err.message_zh());
    assert_eq!(snapshot(&e), before, "a refused payment changes no item, booking or slot");
    assert!(drain(&e).is_empty(), "a refused payment emits nothing");
    e.check_invariants().unwrap();

    // Without the expired item: both pay, in one answer.
    let req = json!({"exam_id": 1, "item_nos": [1, 3], "payment_status": "paid", "request_id": "pay-2"});
    let paid = ok(&e, "exam-payment", req.clone());
    assert_eq!(statuses(&e), ["paid", "slot_released", "paid"]);
    for i in [0, 2] {
        assert_eq!(paid["items"][i]["status"], "paid");
        assert_eq!(paid["items"][i]["payment_status"], "paid");
        assert_eq!(places(&e, SLOTS[i]), (1, 0));
    }
    assert_eq!(places(&e, SLOTS[1]), (0, 0));
    let evs = drain(&e);
    // Each paid item also plans its before and after follow-ups (C2), in the same commit.
    assert_eq!(
        kinds(&evs),
        [
            "booking_confirmed",
            "booking_confirmed",
            "exam_paid",
            "exam_paid",
            "follow_up_planned",
            "follow_up_planned",
            "follow_up_planned",
            "follow_up_planned"
        ]
    );
    let items: Vec<u64> = evs.iter().filter(|v| v["type"] == "exam_paid").map(|v| v["data"]["item_no"].as_u64().unwrap()).collect();
    assert_eq!(items, [1, 3]);
    // A retry replays the answer and changes nothing; the id with another request is a conflict.
    assert_eq!(ok(&e, "exam-payment", req), paid);
    assert!(drain(&e).is_empty());
    let other = json!({"exam_id": 1, "item_nos": [1], "payment_status": "paid", "request_id": "pay-2"});
    assert_eq!(fail(&e, "exam-payment", other).code(), ErrorCode::IdempotencyConflict);
    e.check_invariants().unwrap();
}

#[test]
fn a_cancellation_with_one_item_already_cancelled_cancels_nothing() {
    let e = Engine::open(&manual(None)).unwrap();
    setup(&e);
    for i in 1..=3 {
        arrange(&e, i);
    }
    ok(&e, "exam-payment", json!({"exam_id": 1, "item_no": 1, "payment_status": "paid"}));
    ok(&e, "exam-cancel", json!({"institution_id": "C001", "exam_id": 1, "item_no": 2, "reason": "改期"}));
    drain(&e);
    let before = snapshot(&e);
    assert_eq!(statuses(&e), ["paid", "cancelled", "arranged"]);
    assert_eq!([places(&e, SLOTS[0]), places(&e, SLOTS[1]), places(&e, SLOTS[2])], [(1, 0), (0, 0), (0, 1)]);

    let err = fail(&e, "exam-cancel", json!({"institution_id": "C001", "exam_id": 1, "item_nos": [1, 2, 3], "reason": "患者无法按时检查"}));
    assert_eq!(err.code(), ErrorCode::ExamInvalidTransition);
    assert!(err.message().contains("item 2") && err.message().contains("cancelled"), "{}", err.message());
    assert_eq!(snapshot(&e), before, "a refused cancellation gives back no place");
    assert!(drain(&e).is_empty());
    e.check_invariants().unwrap();

    let v = ok(&e, "exam-cancel", json!({"institution_id": "C001", "exam_id": 1, "item_nos": [3, 1], "reason": "患者无法按时检查"}));
    assert_eq!(v["status"], "cancelled");
    assert_eq!(statuses(&e), ["cancelled", "cancelled", "cancelled"]);
    for s in SLOTS {
        assert_eq!(places(&e, s), (0, 0));
    }
    let evs = drain(&e);
    // The paid items' follow-ups (C2) end with them.
    assert_eq!(kinds(&evs), ["booking_cancelled", "booking_cancelled", "exam_cancelled", "exam_cancelled", "follow_up_cancelled", "follow_up_cancelled"]);
    let due: Vec<(u64, bool)> =
        evs.iter().filter(|v| v["type"] == "exam_cancelled").map(|v| (v["data"]["item_no"].as_u64().unwrap(), v["data"]["refund_due"] == true)).collect();
    assert_eq!(due, [(3, false), (1, true)]);
    // The paid one is refunded afterwards.
    ok(&e, "exam-refund", json!({"exam_id": 1, "item_no": 1}));
    assert_eq!(statuses(&e)[0], "refunded");
    e.check_invariants().unwrap();
}

#[test]
fn named_items_are_checked_before_anything() {
    let e = Engine::open(&manual(None)).unwrap();
    setup(&e);
    arrange(&e, 1);
    drain(&e);
    let before = snapshot(&e);
    let pay = |items: Value| fail(&e, "exam-payment", json!({"exam_id": 1, "item_nos": items, "payment_status": "paid"}));
    assert_eq!(pay(json!([1, 4])).code(), ErrorCode::ExamItemNotFound);
    assert_eq!(pay(json!([1, 1])).code(), ErrorCode::InvalidField);
    assert_eq!(pay(json!([])).code(), ErrorCode::InvalidField);
    assert_eq!(pay(json!(["1"])).code(), ErrorCode::InvalidField);
    // Item 2 was never arranged.
    let err = pay(json!([1, 2]));
    assert_eq!(err.code(), ErrorCode::ExamInvalidTransition);
    assert!(err.message().contains("item 2"), "{}", err.message());
    let both = json!({"exam_id": 1, "item_no": 1, "item_nos": [1], "payment_status": "paid"});
    assert_eq!(fail(&e, "exam-payment", both).code(), ErrorCode::InvalidField);
    assert_eq!(snapshot(&e), before);
    assert!(drain(&e).is_empty());
}

#[test]
fn a_stopped_slot_fails_the_whole_payment_and_the_outcome_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = manual(Some(dir.path()));
    let (refused, paid);
    {
        let e = Engine::open(&cfg).unwrap();
        setup(&e);
        for i in 1..=3 {
            arrange(&e, i);
        }
        // The hospital stops the third window: item 3's hold is cancelled by the pool.
        ok(
            &e,
            "stop-service",
            json!({"hospital_id": "H001", "device_id": "DEV001", "stop_date": "2024-10-30", "time_slot": "13:40-14:00", "action": "cancel", "reason": "设备检修"}),
        );
        assert_eq!(statuses(&e), ["arranged", "arranged", "slot_released"]);
        drain(&e);
        let before = snapshot(&e);
        let err = fail(&e, "exam-payment", json!({"exam_id": 1, "item_nos": [1, 2, 3], "payment_status": "paid", "request_id": "p-all"}));
        assert_eq!(err.code(), ErrorCode::ExamInvalidTransition);
        assert!(err.message().contains("item 3"), "{}", err.message());
        assert_eq!(snapshot(&e), before);
        assert!(drain(&e).is_empty());
        e.close();
        refused = before;
    }
    {
        // Reopened: exactly the state before the refused call.
        let e = Engine::open(&cfg).unwrap();
        e.check_invariants().unwrap();
        assert_eq!(snapshot(&e), refused);
        paid = ok(&e, "exam-payment", json!({"exam_id": 1, "item_nos": [1, 2], "payment_status": "paid", "request_id": "p-12"}));
        assert_eq!(statuses(&e), ["paid", "paid", "slot_released"]);
        e.close();
    }
    let e = Engine::open(&cfg).unwrap();
    e.check_invariants().unwrap();
    assert_eq!(statuses(&e), ["paid", "paid", "slot_released"]);
    assert_eq!([places(&e, SLOTS[0]), places(&e, SLOTS[1]), places(&e, SLOTS[2])], [(1, 0), (1, 0), (0, 0)]);
    let evs: Vec<Value> = ok(&e, "next-events", json!({"limit": 10000}))["events"].as_array().cloned().unwrap_or_default();
    let planned = ["follow_up_planned", "follow_up_planned", "follow_up_planned", "follow_up_planned"];
    assert_eq!(kinds(&evs), [&["booking_confirmed", "booking_confirmed", "exam_paid", "exam_paid"][..], &planned[..]].concat(), "both items' events, durable");
    // The request id's answer is durable too.
    assert_eq!(ok(&e, "exam-payment", json!({"exam_id": 1, "item_nos": [1, 2], "payment_status": "paid", "request_id": "p-12"})), paid);
    // The paid items are cancelled together, and stay so.
    ok(&e, "exam-cancel", json!({"institution_id": "C001", "exam_id": 1, "reason": "患者出院"}));
    e.close();
    let e = Engine::open(&cfg).unwrap();
    e.check_invariants().unwrap();
    assert_eq!(statuses(&e), ["cancelled", "cancelled", "cancelled"]);
    for s in SLOTS {
        assert_eq!(places(&e, s), (0, 0));
    }
}

/// `n` applications of two items, item 1 arranged on the first window and
/// item 2 on the second (windows of `capacity`); item 1's booking ids.
fn two_item_applications(e: &Engine, n: u64, capacity: u32) -> Vec<String> {
    setup_with(e, capacity);
    let mut first = Vec::new();
    for n in 1..=n {
        let items =
            [json!({"project_id": "P001", "method": "平扫", "body_part": "头颅"}), json!({"project_id": "P001", "method": "平扫", "body_part": "胸部"})];
        ok(e, "exam-apply", json!({"institution_id": "C001", "hospital_id": "H001", "patient_id": format!("PAT{n:03}"), "items": items}));
        let v = ok(e, "exam-arrange", json!({"institution_id": "H001", "exam_id": n, "item_no": 1, "slot_id": SLOTS[0]}));
        first.push(v["items"][0]["booking"]["booking_id"].as_str().unwrap().to_string());
        ok(e, "exam-arrange", json!({"institution_id": "H001", "exam_id": n, "item_no": 2, "slot_id": SLOTS[1]}));
    }
    first
}

/// Payments and cancellations of two-item applications race with the pool
/// moving the bookings between slots (change-booking): no call deadlocks,
/// every application ends with both items in the same state, and every
/// item shows the slot its own booking holds.
#[test]
fn multi_item_steps_race_with_bookings_moving_slot() {
    const N: u64 = 24;
    let e = Engine::open(&manual(None)).unwrap();
    let first = two_item_applications(&e, N, 60);
    let moved = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        // Item 1 of every application goes back and forth between the first and third window.
        s.spawn(|| {
            for round in 0..4 {
                for b in &first {
                    let to = SLOTS[if round % 2 == 0 { 2 } else { 0 }];
                    if e.call_value("change-booking", &json!({"booking_id": b, "slot_id": to}).to_string()).is_ok() {
                        moved.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
        });
        s.spawn(|| {
            for n in 1..=N {
                let _ = e.call_value("exam-payment", &json!({"exam_id": n, "item_nos": [1, 2], "payment_status": "paid"}).to_string());
            }
        });
        s.spawn(|| {
            for n in (1..=N).rev().step_by(3) {
                let _ = e.call_value("exam-cancel", &json!({"institution_id": "C001", "exam_id": n, "item_nos": [2, 1], "reason": "改期"}).to_string());
            }
        });
    });
    assert!(moved.into_inner() > 0, "change-booking moved no exam booking");
    e.check_invariants().unwrap();
    for n in 1..=N {
        let v = ok(&e, "exam-view", json!({"exam_id": n}));
        let items = v["items"].as_array().unwrap();
        assert_eq!(items[0]["status"], items[1]["status"], "all or nothing: {v}");
        assert_eq!(items[0]["paid"], items[1]["paid"], "{v}");
        for it in items {
            let bk = ok(&e, "booking-info", json!({"booking_id": it["booking"]["booking_id"]}));
            match it["status"].as_str().unwrap() {
                "paid" | "arranged" => {
                    assert_eq!(bk["status"], if it["status"] == "paid" { "booked" } else { "pre-booked" }, "{it}");
                    assert_eq!(bk["slot_id"], it["slot_id"], "{it}");
                }
                "cancelled" => assert_eq!(bk["status"], "cancelled", "{it}"),
                other => panic!("unexpected {other}: {it}"),
            }
        }
    }
}

/// The pool cancels item 2's bookings (`cancel-slot`) and the hospital
/// arranges the item again, while payments, cancellations and slot moves run
/// on the same applications: no call deadlocks, every item that shows a slot
/// holds it through its own booking for its patient, an item that should
/// hold a place and shows none is `slot_released`, and no referral-class
/// booking is left holding a place that no item owns.
#[test]
fn rearrangements_race_with_payments_cancellations_and_moves() {
    const N: u64 = 60;
    let e = Engine::open(&manual(None)).unwrap();
    let first = two_item_applications(&e, N, 200);
    let rearranged = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        s.spawn(|| {
            for round in 0..6 {
                for b in &first {
                    let to = SLOTS[if round % 2 == 0 { 2 } else { 0 }];
                    let _ = e.call_value("change-booking", &json!({"booking_id": b, "slot_id": to}).to_string());
                }
            }
        });
        // Item 2: its booking cancelled by the pool, then arranged again (on the other window).
        s.spawn(|| {
            for round in 0..6 {
                for n in 1..=N {
                    let Ok(v) = e.call_value("exam-view", &json!({"exam_id": n}).to_string()) else { continue };
                    if let Some(b) = v["items"][1]["booking"]["booking_id"].as_str() {
                        let _ = e.call_value("cancel-slot", &json!({"booking_id": b}).to_string());
                    }
                    let to = SLOTS[if round % 2 == 0 { 2 } else { 1 }];
                    let req = json!({"institution_id": "H001", "exam_id": n, "item_no": 2, "slot_id": to});
                    if e.call_value("exam-arrange", &req.to_string()).is_ok() {
                        rearranged.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
        });
        s.spawn(|| {
            for n in 1..=N {
                let _ = e.call_value("exam-payment", &json!({"exam_id": n, "payment_status": "paid"}).to_string());
            }
        });
        s.spawn(|| {
            for n in (1..=N).rev().step_by(4) {
                let _ = e.call_value("exam-cancel", &json!({"institution_id": "C001", "exam_id": n, "reason": "改期"}).to_string());
            }
        });
    });
    assert!(rearranged.into_inner() > 0, "no item was arranged again");
    e.check_invariants().unwrap();
    let mut owned = std::collections::HashSet::new();
    for n in 1..=N {
        let v = ok(&e, "exam-view", json!({"exam_id": n}));
        for it in v["items"].as_array().unwrap() {
            let status = it["status"].as_str().unwrap();
            match it.get("slot_id").and_then(Value::as_str) {
                Some(slot) => {
                    let b = it["booking"]["booking_id"].as_str().unwrap();
                    owned.insert(b.to_string());
                    let bk = ok(&e, "booking-info", json!({"booking_id": b}));
                    assert_eq!(bk["slot_id"], slot, "{it}\n{bk}");
                    assert_eq!(bk["patient_id"], v["patient_id"], "{it}\n{bk}");
                    let want = if status == "paid" { "booked" } else { "pre-booked" };
                    assert!(matches!(status, "arranged" | "paid") && bk["status"] == want, "{it}\n{bk}");
                }
                None => assert!(!matches!(status, "arranged" | "paid"), "an item holding a place shows no slot: {it}"),
            }
        }
    }
    for n in 1.. {
        let Ok(bk) = e.call_value("booking-info", &json!({"booking_id": format!("B{n:06}")}).to_string()) else { break };
        if matches!(bk["status"].as_str(), Some("booked" | "pre-booked")) {
            assert!(owned.contains(bk["booking_id"].as_str().unwrap()), "a place no item owns: {bk}");
        }
    }
}
