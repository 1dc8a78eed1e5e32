//! #17 item 5: memory bounded by the live window. Bookings of days past the
//! retention window and request ids' answers older than it leave memory and
//! stay in the store: every booking, slot, statistics and audit query
//! answers the same before and after they leave, and after a reopen; a
//! retired booking cannot change; its id is never given again; a retry
//! inside the window gets its first answer.

mod common;
use common::ok;
use serde_json::{json, Value};
use yilian_core::{Engine, ErrorCode};
use yilian_tests::store;

const DAYS: usize = 10; // 2024-10-30 ..= 2024-11-08
const DAY_MS: i64 = 86_400_000;

fn date(d: usize) -> String {
    format!("2024-{}", ["10-30", "10-31", "11-01", "11-02", "11-03", "11-04", "11-05", "11-06", "11-07", "11-08"][d])
}

fn open(spec: &str) -> Engine {
    let cfg = store::config(
        spec,
        json!({"clock_start": "2024-10-29T09:00:00+08:00", "clock": "manual", "durable_sync": "normal", "retention_days": 7, "release": {"enabled": false}}),
    );
    Engine::open(&cfg).unwrap()
}

/// Two devices, three windows a day, capacity 3, over `DAYS` days; slot ids.
fn schedule(e: &Engine) -> Vec<String> {
    let mut data = Vec::new();
    let mut ids = Vec::new();
    for d in 0..DAYS {
        for dev in ["DEV001", "DEV002"] {
            let windows: Vec<Value> = (9..12).map(|h| json!({"start_time": format!("{h:02}:00"), "end_time": format!("{:02}:00", h + 1)})).collect();
            for h in 9..12 {
                ids.push(format!("EX-H001-{dev}-{}-{h:02}00{:02}00", date(d).replace('-', ""), h + 1));
            }
            data.push(json!({"device_id": dev, "project_id": "P001", "date": date(d), "capacity": 3, "available_slots": windows}));
        }
    }
    ok(e, "sync-schedule", json!({"hospital_id": "H001", "schedule_data": data}));
    ids
}

/// One slot on `date` (DEV001, 09:00–10:00, `capacity` places); its id.
fn one_slot(e: &Engine, date: &str, capacity: u32) -> String {
    ok(
        e,
        "sync-schedule",
        json!({"hospital_id": "H001", "schedule_data": [{"device_id": "DEV001", "project_id": "P001", "date": date, "capacity": capacity,
        "available_slots": [{"start_time": "09:00", "end_time": "10:00"}]}]}),
    );
    format!("EX-H001-DEV001-{}-09001000", date.replace('-', ""))
}

/// Bookings of every kind on every slot: booked, paid holds, cancelled,
/// referral-class (quota); their ids.
fn history(e: &Engine, slots: &[String]) -> Vec<String> {
    let mut ids = Vec::new();
    for (i, s) in slots.iter().enumerate() {
        let b = ok(e, "book-slot", json!({"slot_id": s, "patient_id": format!("PA{i:03}"), "clinic_id": "C001", "request_id": format!("book-{i}")}));
        ids.push(b["booking_id"].as_str().unwrap().to_string());
        let h = ok(e, "pre-book-slot", json!({"slot_id": s, "patient_id": format!("PB{i:03}"), "clinic_id": "C002", "request_id": format!("hold-{i}")}));
        let hid = h["booking_id"].as_str().unwrap().to_string();
        if i % 2 == 0 {
            ok(e, "payment-status", json!({"booking_id": hid, "payment_status": "paid", "request_id": format!("pay-{i}")}));
        } else {
            ok(e, "cancel-slot", json!({"booking_id": hid, "request_id": format!("cancel-{i}")}));
        }
        ids.push(hid);
        if i % 3 == 0 {
            let r = ok(e, "book-slot", json!({"slot_id": s, "patient_id": format!("PC{i:03}"), "clinic_id": "C001", "priority": "referral"}));
            ids.push(r["booking_id"].as_str().unwrap().to_string());
        }
    }
    ids
}

/// Everything a user reads of the history, in one value.
fn reads(e: &Engine, slots: &[String], bookings: &[String], audit_entries: usize) -> Value {
    let infos: Vec<Value> = bookings.iter().map(|b| ok(e, "booking-info", json!({"booking_id": b}))).collect();
    let slot_infos: Vec<Value> = slots.iter().map(|s| ok(e, "slot-info", json!({"slot_id": s}))).collect();
    let by_day: Vec<Value> = (0..DAYS).map(|d| ok(e, "real-time-slots", json!({"project_id": "P001", "date": date(d)}))).collect();
    let stats = ok(e, "slot-statistics", json!({"date_from": date(0), "date_to": date(DAYS - 1)}));
    let audit = ok(e, "audit-log", json!({"limit": 1000}));
    let mut entries = audit["entries"].as_array().unwrap().clone();
    entries.truncate(audit_entries);
    json!({"bookings": infos, "slots": slot_infos, "days": by_day, "stats": stats, "audit": entries})
}

fn audit_len(e: &Engine) -> usize {
    ok(e, "audit-log", json!({"limit": 1000}))["entries"].as_array().unwrap().len()
}

fn a_year_of_history_leaves_memory_and_reads_the_same_after_a_reopen_on(spec: &str) {
    let e = open(spec);
    let slots = schedule(&e);
    let bookings = history(&e, &slots);
    let n_audit = audit_len(&e);
    assert!(n_audit < 1000, "the audit query below reads every entry");
    let before = reads(&e, &slots, &bookings, n_audit);
    // Inside the window nothing leaves.
    assert_eq!(e.retire_history().unwrap(), yilian_core::Retired::default());

    // Twenty days on: every day of the schedule is past the 7-day window.
    e.advance_clock(21 * DAY_MS).unwrap();
    let gone = e.retire_history().unwrap();
    assert_eq!(gone.bookings, bookings.len() as u64, "every booking of the past days left memory");
    assert!(gone.answers >= slots.len() as u64 * 3, "the request ids' answers left memory: {gone:?}");
    e.check_invariants().unwrap();
    assert_eq!(reads(&e, &slots, &bookings, n_audit), before, "the same answers from the store");
    // A retired booking is read, never changed.
    let err = e.call_value("cancel-slot", &json!({"booking_id": bookings[0]}).to_string()).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidState, "{err:?}");
    assert!(err.message_zh().contains("保留期"), "{}", err.message_zh());
    assert_eq!(e.retire_history().unwrap(), yilian_core::Retired::default(), "nothing is retired twice");
    e.close();

    // Reopened: the retired rows are not loaded, and read the same.
    let e = open(spec);
    e.check_invariants().unwrap();
    assert_eq!(reads(&e, &slots, &bookings, n_audit), before, "the same answers after a reopen");
    assert_eq!(e.retire_history().unwrap(), yilian_core::Retired::default());
    // Ids go on after the last retired one, although every booking left memory.
    let slot = one_slot(&e, "2024-11-25", 3);
    let fresh = ok(&e, "book-slot", json!({"slot_id": slot, "patient_id": "PNEW", "clinic_id": "C001"}));
    let last = bookings.iter().map(|b| yilian_core::parse_booking_id(b).unwrap()).max().unwrap();
    assert_eq!(yilian_core::parse_booking_id(fresh["booking_id"].as_str().unwrap()), Some(last + 1), "{fresh}");
    e.close();
}

yilian_tests::on_both_stores!(
    a_year_of_history_leaves_memory_and_reads_the_same_after_a_reopen,
    a_year_of_history_leaves_memory_and_reads_the_same_after_a_reopen_on_postgres,
    a_year_of_history_leaves_memory_and_reads_the_same_after_a_reopen_on
);

fn a_retry_inside_the_window_gets_its_first_answer_and_after_it_is_a_new_request_on(spec: &str) {
    let e = open(spec);
    let slot = one_slot(&e, "2024-12-30", 3);
    let body = json!({"slot_id": slot, "patient_id": "PAT001", "clinic_id": "C001", "request_id": "r-1"}).to_string();
    let first = e.call_value("book-slot", &body).unwrap();
    e.advance_clock(6 * DAY_MS).unwrap();
    assert_eq!(e.retire_history().unwrap().answers, 0);
    assert_eq!(e.call_value("book-slot", &body).unwrap(), first, "inside the window: the first answer");
    e.close();
    // A manual clock starts again at `clock_start` on each open.
    let e = open(spec);
    e.advance_clock(6 * DAY_MS).unwrap();
    assert_eq!(e.call_value("book-slot", &body).unwrap(), first, "inside the window, reopened: the first answer");
    e.advance_clock(2 * DAY_MS).unwrap();
    assert_eq!(e.retire_history().unwrap(), yilian_core::Retired { bookings: 0, answers: 1, handoffs: 0 }, "the booking's day is still ahead");
    // Past the window the id is new: the patient already holds that time, so
    // it is refused as a second booking, not answered as the first.
    let again = e.call_value("book-slot", &body).unwrap_err();
    assert_eq!(again.code(), ErrorCode::DuplicateBooking, "{again:?}");
    assert_eq!(ok(&e, "booking-info", json!({"booking_id": first["booking_id"]}))["status"], "booked");
    e.close();
}

yilian_tests::on_both_stores!(
    a_retry_inside_the_window_gets_its_first_answer_and_after_it_is_a_new_request,
    a_retry_inside_the_window_gets_its_first_answer_and_after_it_is_a_new_request_on_postgres,
    a_retry_inside_the_window_gets_its_first_answer_and_after_it_is_a_new_request_on
);

/// Every change races the pass that retires its booking: each either
/// happens (and is what the store keeps) or is refused as retired, and the
/// slots count exactly the bookings left holding their place.
fn retiring_while_cancelling_loses_no_change_and_keeps_counts_exact_on(spec: &str) {
    let e = open(spec);
    let slots = schedule(&e);
    let mut bookings = Vec::new();
    for (i, s) in slots.iter().enumerate() {
        for k in 0..3 {
            let b = ok(&e, "book-slot", json!({"slot_id": s, "patient_id": format!("P{i:03}-{k}"), "clinic_id": "C001"}));
            bookings.push((s.clone(), b["booking_id"].as_str().unwrap().to_string()));
        }
    }
    e.advance_clock(21 * DAY_MS).unwrap();
    let go = std::sync::Arc::new(std::sync::Barrier::new(2));
    let canceller = {
        let (e, bookings, go) = (e.clone(), bookings.clone(), go.clone());
        std::thread::spawn(move || {
            go.wait();
            // From both ends, so the pass (slot by slot, in index order) meets it midway.
            let order = (0..bookings.len()).map(|i| if i % 2 == 0 { i / 2 } else { bookings.len() - 1 - i / 2 });
            order
                .map(|i| {
                    let r = e.call_value("cancel-slot", &json!({"booking_id": bookings[i].1}).to_string());
                    (i, r.map(|_| ()).map_err(|err| err.code()))
                })
                .collect::<Vec<_>>()
        })
    };
    go.wait();
    let retired = e.retire_history().unwrap();
    let outcomes = canceller.join().unwrap();
    let cancelled = outcomes.iter().filter(|o| o.1.is_ok()).count();
    eprintln!("RACE {cancelled} of {} cancelled before their booking was retired", outcomes.len());
    let retired = retired.bookings + e.retire_history().unwrap().bookings;
    assert_eq!(retired, bookings.len() as u64, "every booking of the past days left memory once");
    let mut booked_per_slot = std::collections::HashMap::<&str, u64>::new();
    for (i, outcome) in &outcomes {
        let (slot, id) = &bookings[*i];
        let status = ok(&e, "booking-info", json!({"booking_id": id}))["status"].clone();
        match outcome {
            Ok(()) => assert_eq!(status, "cancelled", "{id}: the cancellation stands"),
            Err(ErrorCode::InvalidState) => {
                assert_eq!(status, "booked", "{id}: refused as retired, still booked");
                *booked_per_slot.entry(slot).or_default() += 1;
            }
            Err(code) => panic!("{id}: {code:?}"),
        }
    }
    let counts = |e: &Engine| -> Vec<u64> { slots.iter().map(|s| ok(e, "slot-info", json!({"slot_id": s}))["booked"].as_u64().unwrap()).collect() };
    let expected: Vec<u64> = slots.iter().map(|s| booked_per_slot.get(s.as_str()).copied().unwrap_or(0)).collect();
    assert_eq!(counts(&e), expected);
    e.check_invariants().unwrap();
    e.close();
    let e = open(spec);
    e.check_invariants().unwrap();
    assert_eq!(counts(&e), expected, "the same counts after a reopen");
    e.close();
}

yilian_tests::on_both_stores!(
    retiring_while_cancelling_loses_no_change_and_keeps_counts_exact,
    retiring_while_cancelling_loses_no_change_and_keeps_counts_exact_on_postgres,
    retiring_while_cancelling_loses_no_change_and_keeps_counts_exact_on
);

/// On a sealed store (`encryption_key`) the retired rows are sealed like
/// every row — no patient id in the clear in `bookings_retired` — and read
/// back the same, before and after a reopen.
#[test]
fn a_sealed_store_retires_sealed_rows_and_reads_them_back() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = json!({"data_dir": dir.path(), "clock_start": "2024-10-29T09:00:00+08:00", "clock": "manual", "durable_sync": "normal",
                     "release": {"enabled": false}, "encryption_key": "0123456789abcdeffedcba9876543210"})
    .to_string();
    let e = Engine::open(&cfg).unwrap();
    let slot = one_slot(&e, "2024-10-30", 3);
    let b = ok(&e, "book-slot", json!({"slot_id": slot, "patient_id": "SEALED-PATIENT-7", "clinic_id": "C001", "request_id": "sealed-1"}));
    let before = ok(&e, "booking-info", json!({"booking_id": b["booking_id"]}));
    e.advance_clock(9 * DAY_MS).unwrap();
    assert_eq!(e.retire_history().unwrap(), yilian_core::Retired { bookings: 1, answers: 1, handoffs: 0 });
    assert_eq!(ok(&e, "booking-info", json!({"booking_id": b["booking_id"]})), before);
    e.close();
    let conn = rusqlite::Connection::open(dir.path().join("yilian.sqlite3")).unwrap();
    for table in ["bookings_retired", "idempotency_retired"] {
        let bodies: Vec<String> =
            conn.prepare(&format!("SELECT body FROM {table}")).unwrap().query_map([], |r| r.get(0)).unwrap().collect::<rusqlite::Result<_>>().unwrap();
        assert_eq!(bodies.len(), 1, "{table}");
        assert!(bodies.iter().all(|b| !b.contains("SEALED-PATIENT-7") && !b.contains("sealed-1")), "{table} is sealed: {bodies:?}");
    }
    let left: i64 = conn.query_row("SELECT count(*) FROM bookings", [], |r| r.get(0)).unwrap();
    assert_eq!(left, 0, "the booking left the loaded table");
    drop(conn);
    let e = Engine::open(&cfg).unwrap();
    e.advance_clock(9 * DAY_MS).unwrap();
    assert_eq!(ok(&e, "booking-info", json!({"booking_id": b["booking_id"]})), before, "read back after a reopen");
    e.close();
}

/// More bookings than one batch of the pass (4096): all leave memory, in
/// batches, and the slots still count them all after a reopen.
#[test]
fn a_pass_over_more_than_a_batch_retires_every_booking() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().to_str().unwrap();
    let e = open(spec);
    let slot = e.slot_handle(&one_slot(&e, "2024-10-30", 6000)).unwrap();
    for i in 0..6000 {
        e.book(slot, &format!("P{i:05}"), &yilian_core::HoldOptions::default()).unwrap();
    }
    e.advance_clock(9 * DAY_MS).unwrap();
    assert_eq!(e.retire_history().unwrap().bookings, 6000);
    e.check_invariants().unwrap();
    assert_eq!(e.availability(slot).unwrap().booked, 6000);
    e.close();
    let e = open(spec);
    e.check_invariants().unwrap();
    assert_eq!(e.availability(e.slot_handle("EX-H001-DEV001-20241030-09001000").unwrap()).unwrap().booked, 6000);
    assert_eq!(ok(&e, "booking-info", json!({"booking_id": "B5999"}))["status"], "booked");
}
