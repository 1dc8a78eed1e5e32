//! Integer overflow from outside (issue 22): numbers from a request or the
//! config are bounded where they are parsed, and time arithmetic never
//! wraps. Each of the four inputs the issue names is a test here; before
//! the fix a release build answered success and wrapped (the clock did not
//! move, showed 1970 or moved backwards; holds were created already
//! expired), a debug build panicked.

mod common;
use common::*;
use proptest::prelude::*;
use serde_json::{json, Value};
use yilian_core::{Engine, ErrorCode};

const MANUAL: &str = r#"{"clock_start":"2024-10-29T09:00:00+08:00","clock":"manual"}"#;

fn manual() -> Engine {
    Engine::open(MANUAL).unwrap()
}

/// The envelope of `cmd`, which must be a refusal with `code`.
fn refused(e: &Engine, cmd: &str, req: &str, code: &str) -> Value {
    let out: Value = serde_json::from_str(&e.call(cmd, req)).unwrap();
    assert_eq!(out["status"], "error", "{cmd} {req}: {out}");
    assert_eq!(out["code"], code, "{cmd} {req}: {out}");
    assert!(out["message_zh"].as_str().is_some_and(|m| !m.is_empty()), "{out}");
    out
}

fn engine_now(e: &Engine) -> Value {
    ok(e, "engine-info", json!({}))["now"].clone()
}

fn open_refused(config: &str) -> yilian_core::Error {
    match Engine::open(config) {
        Ok(_) => panic!("{config} was accepted"),
        Err(err) => err,
    }
}

/// One exam window on 2024-10-30 and a hold on it: its `hold_expires_at`.
fn hold_expiry(e: &Engine) -> String {
    ok(
        e,
        "sync-schedule",
        json!({"hospital_id": "H001", "schedule_data": [{"device_id": "DEV001", "project_id": "P001", "date": "2024-10-30",
            "available_slots": [{"start_time": "09:00", "end_time": "10:00"}]}]}),
    );
    let held =
        ok(e, "pre-book-slot", json!({"patient_id": "PAT001", "project_id": "P001", "date": "2024-10-30", "time_slot": "09:00-10:00", "device_id": "DEV001"}));
    held["hold_expires_at"].as_str().unwrap().to_string()
}

// ---------------------------------------------------------------- the four inputs of issue 22

#[test]
fn advancing_the_clock_by_the_largest_i64_seconds_is_refused_and_the_clock_stays() {
    let e = manual();
    let (before, shown) = (e.now_ms(), engine_now(&e));
    for secs in ["9223372036854775807", "18446744073709551615", "3153600001"] {
        let out = refused(&e, "advance-clock", &format!(r#"{{"seconds": {secs}}}"#), "INVALID_FIELD");
        assert!(out["message"].as_str().unwrap().contains("`seconds`"), "{out}");
        assert_eq!(e.now_ms(), before, "seconds {secs} moved the clock");
    }
    assert_eq!(engine_now(&e), shown);
    // The top of the documented range still moves it, by exactly that much.
    ok(&e, "advance-clock", json!({"seconds": 3_153_600_000u64}));
    assert_eq!(e.now_ms(), before + 3_153_600_000_000);
}

#[test]
fn advancing_the_clock_past_the_year_9999_is_refused_and_the_clock_stays() {
    let e = manual();
    let before = e.now_ms();
    refused(&e, "advance-clock", r#"{"seconds": 9223371000000000}"#, "INVALID_FIELD");
    assert_eq!(e.now_ms(), before);
    // Within the per-call range, but a run of them would pass the clock's ceiling.
    let mut moved = 0;
    loop {
        let out: Value = serde_json::from_str(&e.call("advance-clock", r#"{"seconds": 3153600000}"#)).unwrap();
        if out["status"] == "error" {
            assert_eq!(out["code"], "INVALID_FIELD", "{out}");
            assert!(out["message"].as_str().unwrap().contains("9999-01-01"), "{out}");
            break;
        }
        moved += 1;
        assert!(moved < 100, "the clock never stopped");
        assert!(out["data"]["now"].as_str().unwrap() > "2024", "the clock wrapped: {out}");
    }
    let at = e.now_ms();
    assert!(at <= yilian_core::clock::MAX_MS && at + 3_153_600_000_000 > yilian_core::clock::MAX_MS, "stopped at {at}");
    assert_eq!(at, before + moved * 3_153_600_000_000, "a refused advance moved the clock");
    assert!(engine_now(&e).as_str().unwrap().starts_with("99"), "{}", engine_now(&e));
    // The Rust API is held to the same ceiling.
    let err = e.advance_clock(i64::MAX).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidField);
    assert_eq!(e.now_ms(), at);
}

#[test]
fn a_hold_time_to_live_beyond_its_range_is_refused_when_the_engine_opens() {
    for ttl in ["9223372036854776", "9223372036854775808", "18446744073709551615", "2592001", "0"] {
        let err = open_refused(&format!(r#"{{"clock":"manual","hold_ttl_seconds": {ttl}}}"#));
        assert_eq!(err.code(), ErrorCode::InvalidConfig, "hold_ttl_seconds {ttl}: {err:?}");
        assert!(err.message().contains("hold_ttl_seconds"), "{err:?}");
    }
    // The top of the range: the hold lasts thirty days, it is not born expired.
    let e = Engine::open(r#"{"clock_start":"2024-10-29T09:00:00+08:00","clock":"manual","hold_ttl_seconds":2592000}"#).unwrap();
    assert_eq!(hold_expiry(&e), "2024-11-28T09:00:00+08:00");
    let slot = ok(&e, "slot-info", json!({"slot_id": "EX-H001-DEV001-20241030-09001000"}));
    assert_eq!((slot["held"].as_u64(), slot["remaining"].as_u64()), (Some(1), Some(0)), "{slot}");
}

#[test]
fn a_waitlist_raise_after_beyond_its_range_is_refused_when_the_engine_opens() {
    for minutes in ["153722867280913", "9223372036854775808", "43201"] {
        let err = open_refused(&format!(r#"{{"waitlist_raise_after_minutes": {minutes}}}"#));
        assert_eq!(err.code(), ErrorCode::InvalidConfig, "waitlist_raise_after_minutes {minutes}: {err:?}");
        assert!(err.message().contains("waitlist_raise_after_minutes"), "{err:?}");
    }
    Engine::open(r#"{"waitlist_raise_after_minutes": 43200}"#).unwrap();
    Engine::open(r#"{"waitlist_raise_after_minutes": 0}"#).unwrap();
}

// ---------------------------------------------------------------- the sweep

#[test]
fn every_number_of_the_config_is_refused_beyond_its_documented_range() {
    for (config, key) in [
        (r#"{"tight_remaining": 100001}"#, "tight_remaining"),
        (r#"{"max_request_bytes": 268435457}"#, "max_request_bytes"),
        (r#"{"max_request_bytes": 1023}"#, "max_request_bytes"),
        (r#"{"group_commit_max": 1000001}"#, "group_commit_max"),
        (r#"{"group_commit_max": 0}"#, "group_commit_max"),
        (r#"{"release": {"days": 367}}"#, "release.days"),
        (r#"{"clock_start": "1969-12-31T23:59:59Z"}"#, "clock_start"),
        (r#"{"clock_start": "9999-06-01T00:00:00Z"}"#, "clock_start"),
    ] {
        let err = open_refused(config);
        assert_eq!(err.code(), ErrorCode::InvalidConfig, "{config}: {err:?}");
        assert!(err.message().contains(key), "{config}: {err:?}");
        // The Chinese message gives the reason in Chinese (values in backquotes).
        let zh = err.message_zh();
        let reason: String = zh.rsplit('：').next().unwrap().split('`').step_by(2).collect();
        assert!(!reason.chars().any(|c| c.is_ascii_alphabetic()), "{config}: {zh}");
    }
    for config in [
        r#"{"tight_remaining": 100000, "max_request_bytes": 268435456, "group_commit_max": 1000000}"#,
        r#"{"clock_start": "1970-01-01T00:00:00Z"}"#,
        r#"{"clock_start": "9999-01-01T00:00:00Z"}"#,
    ] {
        Engine::open(config).unwrap_or_else(|err| panic!("{config}: {err:?}"));
    }
}

#[test]
fn a_schedule_dated_beyond_the_year_9999_is_refused_and_changes_nothing() {
    let e = manual();
    let before = ok(&e, "engine-info", json!({}))["slots"].clone();
    for date in ["+262142-12-31", "-262143-01-01", "+10000-01-01", "0000-01-01", "-0001-06-01"] {
        let req = json!({"hospital_id": "H001", "schedule_data": [{"device_id": "DEV001", "project_id": "P001", "date": date,
            "available_slots": [{"start_time": "09:00", "end_time": "10:00"}]}]});
        let out = refused(&e, "sync-schedule", &req.to_string(), "INVALID_FIELD");
        assert!(out["message"].as_str().unwrap().contains("`date`"), "{date}: {out}");
        let bed = json!({"hospital_id": "H001", "schedule_data": [{"kind": "bed", "department_id": "D001", "date": date, "beds": [{"bed_number": "1"}]}]});
        refused(&e, "sync-schedule", &bed.to_string(), "INVALID_FIELD");
    }
    assert_eq!(ok(&e, "engine-info", json!({}))["slots"], before);
    // The last day of the year 9999 is a date like any other: booked, then
    // moved a week on by a stop-service (release windows off to book it now).
    let e = Engine::open(r#"{"clock_start":"2024-10-29T09:00:00+08:00","clock":"manual","release":{"enabled":false}}"#).unwrap();
    ok(
        &e,
        "sync-schedule",
        json!({"hospital_id": "H001", "schedule_data": [{"device_id": "DEV001", "project_id": "P001", "date": "9999-12-31",
            "available_slots": [{"start_time": "09:00", "end_time": "10:00"}]}]}),
    );
    ok(&e, "book-slot", json!({"patient_id": "PAT001", "slot_id": "EX-H001-DEV001-99991231-09001000"}));
    ok(&e, "stop-service", json!({"hospital_id": "H001", "device_id": "DEV001", "stop_date": "9999-12-31", "action": "move"}));
}

#[test]
fn the_places_of_a_day_are_summed_past_u32_without_wrapping() {
    // 43,000 windows of the largest capacity (100,000) on one day: 4.3 billion places.
    let e = Engine::open(CLOCK).unwrap();
    for d in 0..43 {
        let windows: Vec<Value> = (0..1000)
            .map(|m| json!({"start_time": format!("{:02}:{:02}", m / 60, m % 60), "end_time": format!("{:02}:{:02}", (m + 1) / 60, (m + 1) % 60)}))
            .collect();
        ok(
            &e,
            "sync-schedule",
            json!({"hospital_id": "H001", "schedule_data": [{"device_id": format!("DEV{d:03}"), "project_id": "P001", "date": "2024-10-30",
                "capacity": 100_000, "available_slots": windows}]}),
        );
    }
    let v = ok(&e, "real-time-slots", json!({"date": "2024-10-30", "project_id": "P001"}));
    assert_eq!(v["slots"].as_array().unwrap().len(), 43_000);
    assert_eq!((v["available_slots"].as_u64(), v["capacity"].as_u64()), (Some(4_300_000_000), Some(4_300_000_000)));
}

// ---------------------------------------------------------------- the clock never runs backwards

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    /// Any sequence of advances, huge ones included: each either moves the
    /// clock forward by exactly its seconds or is refused and moves nothing.
    #[test]
    fn no_sequence_of_advances_moves_the_clock_backwards(steps in proptest::collection::vec(prop_oneof![
        3 => 0u64..100_000,
        2 => 0u64..=3_153_600_000,
        1 => 3_153_600_000u64..=u64::MAX,
        1 => Just(i64::MAX as u64),
        1 => Just(9_223_371_000_000_000u64),
        1 => Just(u64::MAX),
    ], 1..40)) {
        let e = manual();
        for secs in steps {
            let before = e.now_ms();
            let out: Value = serde_json::from_str(&e.call("advance-clock", &json!({"seconds": secs}).to_string())).unwrap();
            let after = e.now_ms();
            prop_assert!(after >= before, "seconds {} moved the clock from {} back to {}", secs, before, after);
            if out["status"] == "success" {
                prop_assert_eq!(after - before, secs as i64 * 1000);
            } else {
                prop_assert_eq!(&out["code"], "INVALID_FIELD");
                prop_assert_eq!(after, before);
            }
            prop_assert!(after <= yilian_core::clock::MAX_MS);
        }
    }
}
