//! Many threads on few slots: never overbooked, and the counts always add up.

mod common;
use common::*;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use yilian_core::{Engine, ErrorCode, HoldOptions};

#[test]
fn typed_storm_never_overbooks() {
    let e = Engine::open(CLOCK).unwrap();
    let slots = sync_slots(&e, 2, 2, 3); // 4 slots × 3 places
    let handles: Vec<_> = slots.iter().map(|s| e.slot_handle(s).unwrap()).collect();
    let held = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (e, handles, held) = (e.clone(), handles.clone(), held.clone());
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                for i in 0..2_000u64 {
                    let h = handles[(i as usize + t) % handles.len()];
                    let patient = format!("P-{t}-{i}");
                    match e.hold(h, &patient, &HoldOptions::default()) {
                        Ok(hold) => {
                            held.fetch_add(1, Ordering::Relaxed);
                            match i % 3 {
                                0 => e.release(hold.booking_id, None).unwrap(),
                                1 => e.confirm(hold.booking_id, None).unwrap(),
                                _ => mine.push(hold.booking_id),
                            }
                        }
                        Err(err) => assert_eq!(err.code(), ErrorCode::SlotFull, "{err:?}"),
                    }
                    let a = e.availability(h).unwrap();
                    assert!(a.booked + a.held <= a.capacity);
                    assert_eq!(a.capacity, a.booked + a.held + a.remaining);
                    if i % 7 == 0 {
                        if let Some(b) = mine.pop() {
                            e.release(b, None).unwrap();
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(held.load(Ordering::Relaxed) > 12);
    e.check_invariants().unwrap();
    for s in &slots {
        let (cap, booked, h, rem) = slot_counts(&e, s);
        assert_eq!(cap, booked + h + rem);
    }
}

#[test]
fn command_storm_with_waitlists_and_changes() {
    let e = Engine::open(CLOCK).unwrap();
    let slots = sync_slots(&e, 1, 3, 2);
    let threads: Vec<_> = (0..6)
        .map(|t| {
            let (e, slots) = (e.clone(), slots.clone());
            std::thread::spawn(move || {
                for i in 0..400usize {
                    let slot = &slots[(i + t) % slots.len()];
                    let patient = format!("Q-{t}-{i}");
                    let r = e.call_value(
                        "pre-book-slot",
                        &json!({"slot_id": slot, "patient_id": patient, "clinic_id": "C001", "request_id": format!("r-{t}-{i}")}).to_string(),
                    );
                    match r {
                        Ok(b) => {
                            let id = b["booking_id"].as_str().unwrap().to_string();
                            let other = &slots[(i + t + 1) % slots.len()];
                            match i % 4 {
                                0 => drop(e.call_value("cancel-slot", &json!({"booking_id": id}).to_string()).unwrap()),
                                1 => drop(e.call_value("payment-status", &json!({"booking_id": id, "payment_status": "paid"}).to_string()).unwrap()),
                                2 => {
                                    // A change either moves or leaves the booking where it was.
                                    if let Err(err) = e.call_value("change-booking", &json!({"booking_id": id, "slot_id": other}).to_string()) {
                                        assert_eq!(err.code(), ErrorCode::SlotFull, "{err:?}");
                                    }
                                }
                                _ => {}
                            }
                        }
                        Err(err) if err.code() == ErrorCode::SlotFull => {
                            let _ = e.call_value("waitlist-join", &json!({"slot_id": slot, "patient_id": patient, "clinic_id": "C001"}).to_string());
                        }
                        Err(err) => panic!("{err:?}"),
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    e.check_invariants().unwrap();
    for s in &slots {
        let (cap, booked, h, rem) = slot_counts(&e, s);
        assert!(booked + h <= cap);
        assert_eq!(cap, booked + h + rem);
    }
}

#[test]
fn same_request_id_from_many_threads_books_once() {
    let e = Engine::open(CLOCK).unwrap();
    let slots = sync_slots(&e, 1, 1, 50);
    let req = json!({"slot_id": slots[0], "patient_id": "PAT001", "request_id": "same"}).to_string();
    let answers: Vec<_> = (0..8)
        .map(|_| {
            let (e, req) = (e.clone(), req.clone());
            std::thread::spawn(move || (0..50).filter_map(|_| e.call_value("pre-book-slot", &req).ok()).collect::<Vec<_>>())
        })
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert!(!answers.is_empty());
    assert!(answers.iter().all(|a| a["booking_id"] == "B000001"));
    let (_, booked, held, _) = slot_counts(&e, &slots[0]);
    assert_eq!(booked + held, 1);
}

/// Issue 15 item 9: referred and other patients booking one doctor's day
/// from many threads, over two windows, cancelling and moving between the
/// windows and to the next day: no two active bookings of a day ever hold
/// the same visit number, and the day's sequence agrees with its bookings.
#[test]
fn referrals_to_one_doctors_day_from_many_threads_never_share_a_visit_number() {
    let e = Engine::open(CLOCK).unwrap();
    ok(
        &e,
        "sync-schedule",
        json!({"hospital_id": "H001", "schedule_data": [
            {"doctor_id": "DR001", "department_id": "D001", "date": "2024-10-30", "capacity": 400,
                "available_slots": [{"start_time": "08:00", "end_time": "10:00"}, {"start_time": "10:00", "end_time": "12:00"}]},
            {"doctor_id": "DR001", "department_id": "D001", "date": "2024-10-31", "capacity": 400,
                "available_slots": [{"start_time": "08:00", "end_time": "10:00"}]}]}),
    );
    let windows = ["RG-H001-DR001-20241030-08001000", "RG-H001-DR001-20241030-10001200"];
    let next_day = "RG-H001-DR001-20241031-08001000";
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let e = e.clone();
            std::thread::spawn(move || {
                let mut referral_numbers = Vec::new();
                for i in 0..120usize {
                    let priority = if (i + t) % 3 == 0 { "referral" } else { "normal" };
                    let req = json!({"slot_id": windows[(i + t) % 2], "patient_id": format!("V-{t}-{i}"), "clinic_id": "C001", "priority": priority});
                    let b = e.call_value("book-slot", &req.to_string()).unwrap();
                    let (id, n) = (b["booking_id"].as_str().unwrap().to_string(), b["visit_no"].as_u64().unwrap());
                    if priority == "referral" {
                        referral_numbers.push(n);
                    }
                    match i % 5 {
                        0 => drop(e.call_value("cancel-slot", &json!({"booking_id": id}).to_string()).unwrap()),
                        1 => drop(e.call_value("change-booking", &json!({"booking_id": id, "slot_id": windows[(i + t + 1) % 2]}).to_string()).unwrap()),
                        2 => drop(e.call_value("change-booking", &json!({"booking_id": id, "slot_id": next_day}).to_string()).unwrap()),
                        _ => {}
                    }
                }
                referral_numbers
            })
        })
        .collect();
    let referral_numbers: Vec<u64> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    // A referral is never first: there is always the place before it.
    assert!(referral_numbers.iter().all(|n| *n >= 2));
    // The invariants hold every day's sequence to its active bookings' numbers.
    e.check_invariants().unwrap();
    for date in ["2024-10-30", "2024-10-31"] {
        let mut numbers = Vec::new();
        for id in 1..=960u64 {
            let b = ok(&e, "booking-info", json!({"booking_id": format!("B{id:06}")}));
            if b["date"] == date && (b["status"] == "booked" || b["status"] == "pre-booked") {
                numbers.push(b["visit_no"].as_u64().unwrap());
            }
        }
        let all = numbers.len();
        numbers.sort_unstable();
        numbers.dedup();
        assert_eq!(numbers.len(), all, "two active bookings of {date} share a visit number");
        assert!(all > 100, "{date}: {all}");
    }
}
