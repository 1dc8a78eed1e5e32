//! S3: an acknowledged change survives close and reopen; one process per directory.

mod common;
use common::*;
use serde_json::json;
use yilian_core::{Engine, ErrorCode};

fn cfg(dir: &std::path::Path) -> String {
    json!({"data_dir": dir, "clock_start": "2024-10-29T09:00:00+08:00", "clock": "manual"}).to_string()
}

#[test]
fn reopen_restores_slots_holds_bookings_waitlists_answers_and_events() {
    let dir = tempfile::tempdir().unwrap();
    let slots;
    {
        let e = Engine::open(&cfg(dir.path())).unwrap();
        slots = sync_slots(&e, 1, 2, 1);
        ok(
            &e,
            "sync-catalog",
            json!({"hospital_id": "H001", "projects": [{"project_id": "P001", "project_name": "CT扫描"}], "devices": [{"device_id": "DEV001", "device_name": "CT扫描仪A", "project_id": "P001"}]}),
        );
        ok(
            &e,
            "pre-book-slot",
            json!({"slot_id": slots[0], "patient_id": "PAT001", "clinic_id": "C001", "request_id": "r-1", "patient": {"name": "张三", "id_number": "11010519491231002X", "phone": "13800138000"}}),
        );
        ok(&e, "book-slot", json!({"slot_id": slots[1], "patient_id": "PAT002"}));
        ok(&e, "waitlist-join", json!({"slot_id": slots[1], "patient_id": "PAT003", "priority": "critical"}));
        ok(&e, "next-events", json!({"ack": 1}));
        e.close();
        assert_eq!(e.call_value("slot-info", &json!({"slot_id": slots[0]}).to_string()).unwrap_err().code(), ErrorCode::EngineClosed);
    }
    let e = Engine::open(&cfg(dir.path())).unwrap();
    e.check_invariants().unwrap();
    // Slots and the catalogue.
    assert_eq!(slot_counts(&e, &slots[0]), (1, 0, 1, 0));
    assert_eq!(ok(&e, "device-info", json!({}))[0]["device_name"], "CT扫描仪A");
    // The hold kept its expiry and its masked patient.
    let b1 = ok(&e, "booking-info", json!({"booking_id": "B000001"}));
    assert_eq!(b1["status"], "pre-booked");
    assert_eq!(b1["hold_expires_at"], "2024-10-29T09:15:00+08:00");
    assert_eq!(b1["patient"]["id_number"], "110105********002X");
    // A retry after restart gets the first answer and books nothing.
    let again = ok(
        &e,
        "pre-book-slot",
        json!({"slot_id": slots[0], "patient_id": "PAT001", "clinic_id": "C001", "request_id": "r-1", "patient": {"name": "张三", "id_number": "11010519491231002X", "phone": "13800138000"}}),
    );
    assert_eq!(again["booking_id"], "B000001");
    // Undrained events are still there, numbering continues.
    let ev = ok(&e, "next-events", json!({}));
    assert_eq!(ev["events"][0]["seq"], 2);
    // The waitlist survived: cancelling promotes the waiter.
    ok(&e, "cancel-slot", json!({"booking_id": "B000002"}));
    let b3 = ok(&e, "booking-info", json!({"booking_id": "B000003"}));
    assert_eq!((b3["patient_id"].as_str(), b3["status"].as_str()), (Some("PAT003"), Some("pre-booked")));
    // The hold expires by the clock, across the restart.
    e.advance_clock(16 * 60 * 1000).unwrap();
    ok(&e, "expire-holds", json!({}));
    assert_eq!(ok(&e, "booking-info", json!({"booking_id": "B000001"}))["status"], "expired");
    e.check_invariants().unwrap();
}

#[test]
fn second_opener_gets_store_locked_and_nothing_breaks() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(&cfg(dir.path())).unwrap();
    let slots = sync_slots(&e, 1, 1, 2);
    let err = Engine::open(&cfg(dir.path())).unwrap_err();
    assert_eq!(err.code(), ErrorCode::StoreLocked);
    ok(&e, "book-slot", json!({"slot_id": slots[0], "patient_id": "PAT001"}));
    drop(e);
    let e = Engine::open(&cfg(dir.path())).unwrap();
    assert_eq!(slot_counts(&e, &slots[0]).1, 1);
}

#[test]
fn hold_expired_while_closed_is_expired_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let real = |d: &std::path::Path, start: &str| json!({"data_dir": d, "clock_start": start}).to_string();
    let slot;
    {
        let e = Engine::open(&real(dir.path(), "2024-10-29T09:00:00+08:00")).unwrap();
        slot = sync_slots(&e, 1, 1, 1)[0].clone();
        ok(&e, "pre-book-slot", json!({"slot_id": slot, "patient_id": "PAT001"}));
    }
    let e = Engine::open(&real(dir.path(), "2024-10-29T10:00:00+08:00")).unwrap();
    assert_eq!(ok(&e, "booking-info", json!({"booking_id": "B000001"}))["status"], "expired");
    assert_eq!(slot_counts(&e, &slot), (1, 0, 0, 1));
    let ev = ok(&e, "next-events", json!({}));
    assert!(ev["events"].as_array().unwrap().iter().any(|x| x["type"] == "hold_expired"));
}

#[test]
fn close_releases_the_directory_and_late_calls_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(&cfg(dir.path())).unwrap();
    let slots = sync_slots(&e, 1, 1, 500);
    // Callers racing with close() either finish durably or get ENGINE_CLOSED; none hangs.
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (e, slot) = (e.clone(), slots[0].clone());
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                for i in 0..200 {
                    match e.call_value("book-slot", &json!({"slot_id": slot, "patient_id": format!("C{t}-{i}")}).to_string()) {
                        Ok(v) => acked.push(v["booking_id"].as_str().unwrap().to_string()),
                        Err(err) => assert_eq!(err.code(), ErrorCode::EngineClosed, "{err:?}"),
                    }
                }
                acked
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(5));
    e.close();
    let acked: Vec<String> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    // The first engine object still exists, yet the directory opens again.
    let again = Engine::open(&cfg(dir.path())).unwrap();
    for id in &acked {
        assert_eq!(ok(&again, "booking-info", json!({"booking_id": id}))["status"], "booked");
    }
    again.check_invariants().unwrap();
    drop(e);
}

#[test]
fn statistics_counters_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let counts = |e: &Engine| {
        let s = ok(e, "slot-statistics", json!({}));
        (s["booking_attempts"].as_u64().unwrap(), s["booking_successes"].as_u64().unwrap(), s["refused_full"].as_u64().unwrap())
    };
    let before;
    {
        let e = Engine::open(&cfg(dir.path())).unwrap();
        let slots = sync_slots(&e, 1, 1, 1);
        ok(&e, "book-slot", json!({"slot_id": slots[0], "patient_id": "PAT001"}));
        assert!(e.call_value("book-slot", &json!({"slot_id": slots[0], "patient_id": "PAT002"}).to_string()).is_err());
        let h = e.slot_handle(&slots[0]).unwrap();
        assert!(e.hold(h, "PAT003", &Default::default()).is_err());
        before = counts(&e);
        assert_eq!(before, (3, 1, 2));
        e.close();
    }
    let e = Engine::open(&cfg(dir.path())).unwrap();
    assert_eq!(counts(&e), before);
    // And they keep counting from there, across a second restart.
    let slots = sync_slots(&e, 1, 1, 1);
    assert!(e.call_value("book-slot", &json!({"slot_id": slots[0], "patient_id": "PAT004"}).to_string()).is_err());
    e.close();
    let e = Engine::open(&cfg(dir.path())).unwrap();
    assert_eq!(counts(&e), (4, 1, 3));
}

/// Every file of the data directory, concatenated (the database and its WAL).
fn dir_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        all.extend(std::fs::read(entry.unwrap().path()).unwrap_or_default());
    }
    all
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn an_encryption_key_seals_every_row_at_rest() {
    const KEY: &str = "0123456789abcdeffedcba9876543210";
    let dir = tempfile::tempdir().unwrap();
    let with_key =
        |key: &str| json!({"data_dir": dir.path(), "clock_start": "2024-10-29T09:00:00+08:00", "clock": "manual", "encryption_key": key}).to_string();
    let patient = json!({"name": "张三丰", "id_number": "11010519491231002X", "phone": "13800138000"});
    {
        let e = Engine::open(&with_key(KEY)).unwrap();
        let slots = sync_slots(&e, 1, 1, 1);
        ok(&e, "book-slot", json!({"slot_id": slots[0], "patient_id": "PAT001", "patient": patient}));
        // The key is never shown back.
        assert!(!ok(&e, "engine-info", json!({})).to_string().contains(KEY));
        e.close();
    }
    let bytes = dir_bytes(dir.path());
    for secret in ["张三丰", "11010519491231002X", "13800138000", "PAT001"] {
        assert!(!contains(&bytes, secret), "{secret} is stored in the clear");
    }
    // The right key opens it; no key or a wrong key is a clear config error that names no data.
    let e = Engine::open(&with_key(KEY)).unwrap();
    assert_eq!(ok(&e, "booking-info", json!({"booking_id": "B000001"}))["patient"]["name"], "张**");
    e.close();
    let no_key = Engine::open(&cfg(dir.path())).unwrap_err();
    assert_eq!(no_key.code(), ErrorCode::InvalidConfig);
    let wrong = Engine::open(&with_key("00000000000000000000000000000000")).unwrap_err();
    assert_eq!(wrong.code(), ErrorCode::InvalidConfig);
    assert!(!wrong.message().contains("PAT001"));
}

#[test]
fn a_plain_store_keeps_working_once_a_key_is_configured() {
    let dir = tempfile::tempdir().unwrap();
    {
        let e = Engine::open(&cfg(dir.path())).unwrap();
        let slots = sync_slots(&e, 1, 2, 1);
        ok(&e, "book-slot", json!({"slot_id": slots[0], "patient_id": "PAT001", "patient": {"name": "李四", "phone": "13800138000"}}));
        e.close();
    }
    assert!(contains(&dir_bytes(dir.path()), "13800138000"), "stored in the clear without a key");
    let keyed =
        json!({"data_dir": dir.path(), "clock_start": "2024-10-29T09:00:00+08:00", "clock": "manual", "encryption_key": "0123456789abcdeffedcba9876543210"})
            .to_string();
    let e = Engine::open(&keyed).unwrap();
    assert_eq!(ok(&e, "booking-info", json!({"booking_id": "B000001"}))["status"], "booked");
    let slot = ok(&e, "booking-info", json!({"booking_id": "B000001"}))["slot_id"].as_str().unwrap().to_string();
    ok(&e, "cancel-slot", json!({"booking_id": "B000001"}));
    e.close();
    let e = Engine::open(&keyed).unwrap();
    assert_eq!(ok(&e, "booking-info", json!({"booking_id": "B000001"}))["status"], "cancelled");
    assert_eq!(slot_counts(&e, &slot).3, 1, "the place is free again");
    e.close();
    // Opening with the key sealed what was stored in the clear: here the live
    // rows; that no freed page or WAL frame keeps it either (the scrub) is
    // store_security.rs's grep of the whole directory.
    let conn = rusqlite::Connection::open(dir.path().join("yilian.sqlite3")).unwrap();
    for table in ["bookings", "patients", "events", "slots"] {
        let plain: i64 = conn.query_row(&format!("SELECT count(*) FROM {table} WHERE body NOT LIKE 'sm4gcm:%'"), [], |r| r.get(0)).unwrap();
        assert_eq!(plain, 0, "{table} has rows in the clear");
    }
}

#[test]
fn every_durable_change_is_audited_with_who_and_when() {
    let dir = tempfile::tempdir().unwrap();
    let keyed =
        json!({"data_dir": dir.path(), "clock_start": "2024-10-29T09:00:00+08:00", "clock": "manual", "encryption_key": "0123456789abcdeffedcba9876543210"})
            .to_string();
    {
        let e = Engine::open(&keyed).unwrap();
        let slots = sync_slots(&e, 1, 2, 1);
        ok(&e, "book-slot", json!({"slot_id": slots[0], "patient_id": "PAT001", "clinic_id": "C001", "operator": "op-7", "request_id": "r-1"}));
        // A refusal changes nothing, so it leaves no entry.
        assert!(e.call_value("book-slot", &json!({"slot_id": slots[0], "patient_id": "PAT002", "clinic_id": "C002"}).to_string()).is_err());
        e.advance_clock(60_000).unwrap();
        let h = e.hold(e.slot_handle(&slots[1]).unwrap(), "PAT003", &yilian_core::HoldOptions { clinic_id: Some("C002"), ..Default::default() }).unwrap();
        e.release(h.booking_id, Some("r-2")).unwrap();
        e.close();
    }
    let e = Engine::open(&keyed).unwrap();
    let log = ok(&e, "audit-log", json!({}));
    let entries = log["entries"].as_array().unwrap();
    let commands: Vec<&str> = entries.iter().map(|x| x["command"].as_str().unwrap()).collect();
    assert_eq!(commands, ["sync-schedule", "book-slot", "hold", "release"]);
    let book = &entries[1];
    assert_eq!((book["institution"].as_str(), book["operator"].as_str(), book["request_id"].as_str()), (Some("C001"), Some("op-7"), Some("r-1")));
    assert_eq!(book["at"], "2024-10-29T09:00:00+08:00");
    assert!(book["changed"].as_array().unwrap().iter().any(|c| c == "bookings/00000000000000000001"));
    assert_eq!(entries[2]["at"], "2024-10-29T09:01:00+08:00");
    assert_eq!(entries[3]["request_id"], "r-2");
    // Filters and paging; numbering continues after the restart.
    assert_eq!(ok(&e, "audit-log", json!({"institution_id": "C002"}))["entries"].as_array().unwrap().len(), 1);
    assert_eq!(ok(&e, "audit-log", json!({"command": "book-slot"}))["entries"][0]["seq"], book["seq"]);
    let page = ok(&e, "audit-log", json!({"after_seq": 2, "limit": 1}));
    assert_eq!(page["entries"][0]["seq"], 3);
    assert_eq!(ok(&e, "audit-log", json!({"since": "2024-10-29T09:00:30+08:00"}))["entries"].as_array().unwrap().len(), 2);
    ok(&e, "cancel-slot", json!({"booking_id": "B000001", "clinic_id": "C001"}));
    assert_eq!(ok(&e, "audit-log", json!({"after_seq": 4}))["entries"][0]["seq"], 5);
    e.close();
    // A community engine reads only its own institution's entries.
    let community = json!({"data_dir": dir.path(), "clock_start": "2024-10-29T09:00:00+08:00", "role": "community", "institution_id": "C002",
        "encryption_key": "0123456789abcdeffedcba9876543210"})
    .to_string();
    let e = Engine::open(&community).unwrap();
    let own = ok(&e, "audit-log", json!({"institution_id": "C001"}));
    assert!(own["entries"].as_array().unwrap().iter().all(|x| x["institution"] == "C002"));
    e.close();
    // An in-memory engine keeps no trail, and says so.
    let mem = Engine::open("{}").unwrap();
    assert_eq!(mem.call_value("audit-log", "{}").unwrap_err().code(), ErrorCode::InvalidState);
}

#[test]
fn audit_paging_sees_every_concurrent_change_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(&cfg(dir.path())).unwrap();
    let slots = sync_slots(&e, 1, 8, 50);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (e, slot) = (e.clone(), slots[t].clone());
            std::thread::spawn(move || {
                for i in 0..25 {
                    ok(&e, "book-slot", json!({"slot_id": slot, "patient_id": format!("P{t}-{i}"), "clinic_id": format!("C{t}")}));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // Page through in small pages, as a reader would while changes go on.
    let (mut after, mut seen) = (0u64, Vec::new());
    loop {
        let page = ok(&e, "audit-log", json!({"after_seq": after, "limit": 7}));
        let entries = page["entries"].as_array().unwrap();
        if entries.is_empty() {
            break;
        }
        for x in entries {
            let seq = x["seq"].as_u64().unwrap();
            assert!(seq > after, "numbers rise page after page");
            after = seq;
            seen.push(x["command"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(seen.iter().filter(|c| *c == "book-slot").count(), 200);
    assert_eq!(seen.len(), 201, "the schedule sync and every booking, each once");
}

#[test]
fn answers_are_numbered_rows_and_survive_restarts_old_rows_included() {
    let dir = tempfile::tempdir().unwrap();
    // A store from before: its answers' table has text keys, which it keeps.
    {
        let conn = rusqlite::Connection::open(dir.path().join("yilian.sqlite3")).unwrap();
        conn.execute_batch("CREATE TABLE idempotency (k TEXT PRIMARY KEY, body TEXT NOT NULL) WITHOUT ROWID;").unwrap();
    }
    let hold = |e: &Engine, slot: &str, patient: &str, rid: &str| {
        ok(e, "pre-book-slot", json!({"slot_id": slot, "patient_id": patient, "clinic_id": "C001", "request_id": rid}))["booking_id"].clone()
    };
    let slots;
    {
        let e = Engine::open(&cfg(dir.path())).unwrap();
        slots = sync_slots(&e, 1, 4, 1);
        assert_eq!(hold(&e, &slots[0], "PAT001", "r-first"), "B000001");
        e.close();
    }
    // A store written before rows were numbered keyed its answer by the request id.
    {
        let conn = rusqlite::Connection::open(dir.path().join("yilian.sqlite3")).unwrap();
        let keys: Vec<String> = conn.prepare("SELECT k FROM idempotency").unwrap().query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
        assert_eq!(keys, vec![format!("{:020}", 1)], "rows are keyed by number, never by the request id");
        conn.execute(
            "INSERT INTO idempotency(k, body) VALUES ('r-legacy', ?1)",
            [json!({"command": "pre-book-slot", "fingerprint": 7, "answer": {"booking_id": "B000099"}, "at_ms": 0}).to_string()],
        )
        .unwrap();
    }
    for round in 0..2 {
        let e = Engine::open(&cfg(dir.path())).unwrap();
        // Retries after each restart get their first answers and book nothing.
        assert_eq!(hold(&e, &slots[0], "PAT001", "r-first"), "B000001");
        let legacy = e.call_value("pre-book-slot", &json!({"slot_id": slots[1], "patient_id": "PAT009", "request_id": "r-legacy"}).to_string());
        assert_eq!(legacy.unwrap_err().code(), ErrorCode::IdempotencyConflict, "the legacy row still claims its request id");
        // A new answer after a restart takes the next number, not an old one.
        let rid = format!("r-after-{round}");
        assert_eq!(hold(&e, &slots[2 + round], "PAT002", &rid), json!(format!("B{:06}", 2 + round)));
        e.close();
    }
    let conn = rusqlite::Connection::open(dir.path().join("yilian.sqlite3")).unwrap();
    let n: i64 = conn.query_row("SELECT COUNT(*) FROM idempotency WHERE k GLOB '0*'", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 3);
}

/// P7 across a crash: a cancellation reached the disk but the promotion it
/// owed its slot's first waiter did not (the store is edited to that state:
/// the booking's row says cancelled, the waiter's row still waiting). The
/// next open hands the place to the waiter, with its event.
#[test]
fn a_place_freed_just_before_a_crash_goes_to_the_waiter_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let slot = {
        let e = Engine::open(&cfg(dir.path())).unwrap();
        let slot = sync_slots(&e, 1, 1, 1).remove(0);
        assert_eq!(ok(&e, "book-slot", json!({"slot_id": slot, "patient_id": "PAT001"}))["booking_id"], "B000001");
        assert_eq!(ok(&e, "waitlist-join", json!({"slot_id": slot, "patient_id": "PAT002"}))["waitlist_id"], "W000001");
        e.close();
        slot
    };
    {
        let conn = rusqlite::Connection::open(dir.path().join("yilian.sqlite3")).unwrap();
        let n = conn.execute("UPDATE bookings SET body = json_set(body, '$.status', 'cancelled') WHERE k = printf('%020d', 1)", []).unwrap();
        assert_eq!(n, 1);
    }
    let e = Engine::open(&cfg(dir.path())).unwrap();
    e.check_invariants().unwrap();
    let si = ok(&e, "slot-info", json!({"slot_id": slot}));
    assert_eq!((si["held"].as_u64(), si["remaining"].as_u64(), si["waitlist"].as_array().map(Vec::len)), (Some(1), Some(0), Some(0)), "{si}");
    let events = ok(&e, "next-events", json!({"limit": 100}));
    let promoted: Vec<&serde_json::Value> = events["events"].as_array().unwrap().iter().filter(|ev| ev["type"] == "waitlist_promoted").collect();
    assert_eq!(promoted.len(), 1, "{events}");
    assert_eq!(promoted[0]["data"]["waitlist_id"], "W000001");
    assert_eq!(promoted[0]["patient_id"], "PAT002");
}

/// An expiry a refused call swept is committed with nobody waiting; after
/// `Engine::sync` it is durable and in the audit trail, and a sync on an
/// in-memory engine or a closed one answers at once.
#[test]
fn sync_returns_once_an_expiry_nobody_waited_for_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(&json!({"data_dir": dir.path(), "clock": "manual", "clock_start": "2024-10-29T09:00:00+08:00", "hold_ttl_seconds": 60}).to_string())
        .unwrap();
    let slot = sync_slots(&e, 1, 1, 2)[0].clone();
    let b = ok(&e, "pre-book-slot", json!({"slot_id": slot, "patient_id": "PAT001"}))["booking_id"].as_str().unwrap().to_string();
    ok(&e, "advance-clock", json!({"seconds": 61}));
    // The confirmation is refused; the hold's expiry it swept is its own change.
    let err = e.call_value("book-slot", &json!({"booking_id": b}).to_string()).unwrap_err();
    assert_eq!(err.code(), ErrorCode::HoldExpired);
    e.sync().unwrap();
    let log = ok(&e, "audit-log", json!({"limit": 100}));
    let expired = log["entries"].as_array().unwrap().iter().filter(|x| x["command"] == "book-slot" && x["changed"].to_string().contains("bookings/")).count();
    assert_eq!(expired, 1, "{log}");
    e.close();
    assert_eq!(e.sync().unwrap_err().code(), ErrorCode::EngineClosed);
    let m = Engine::open(&json!({}).to_string()).unwrap();
    m.sync().unwrap();
}

#[test]
fn engine_info_names_the_sqlite_yilian_runs_on_and_none_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(&cfg(dir.path())).unwrap();
    let info = ok(&e, "engine-info", json!({}));
    assert_eq!(info["store"]["database"], "sqlite", "{info}");
    // The SQLite compiled into yilian, not whatever else the process links.
    assert_eq!(info["store"]["version"], rusqlite::version(), "{info}");
    let memory = Engine::open(r#"{"clock_start": "2024-10-29T09:00:00+08:00", "clock": "manual"}"#).unwrap();
    assert!(ok(&memory, "engine-info", json!({}))["store"].is_null());
}
