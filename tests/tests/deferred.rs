//! `Engine::call_deferred` (#21 target 3): a change made in memory on the
//! caller's thread, its answer handed out only once its commit is durable,
//! awaited without a thread. What an async host (the sandbox) relies on.

mod common;

use common::{ok, sync_slots, CLOCK};
use serde_json::{json, Value};
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use yilian_core::{Engine, Principal};

fn open(dir: &std::path::Path) -> Engine {
    let mut cfg: Value = serde_json::from_str(CLOCK).unwrap();
    cfg["data_dir"] = json!(dir);
    Engine::open(&cfg.to_string()).unwrap()
}

/// A durable engine in a fresh directory with `windows` slots of `capacity` on one device.
fn fresh(windows: usize, capacity: u32) -> (tempfile::TempDir, Engine, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let slots = sync_slots(&e, 1, windows, capacity);
    (dir, e, slots)
}

fn book(slot: &str, patient: &str, rid: Option<&str>) -> String {
    let (dev, date, times) = {
        // EX-H001-DEV001-20241030-08000820
        let p: Vec<&str> = slot.split('-').collect();
        (p[2].to_string(), p[3].to_string(), p[4].to_string())
    };
    let d = format!("{}-{}-{}", &date[..4], &date[4..6], &date[6..]);
    let t = format!("{}:{}-{}:{}", &times[..2], &times[2..4], &times[4..6], &times[6..]);
    let mut v = json!({"patient_id": patient, "project_id": "P001", "date": d, "time_slot": t, "device_id": dev});
    if let Some(r) = rid {
        v["request_id"] = json!(r);
    }
    v.to_string()
}

/// A minimal executor: polls `f` on this thread, parking between wakes.
fn block_on<F: Future>(f: F) -> (F::Output, usize) {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    let mut polls = 0;
    loop {
        polls += 1;
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return (v, polls);
        }
        std::thread::park();
    }
}

#[test]
fn a_deferred_booking_is_answered_once_durable_and_is_there_after_a_reopen() {
    let (dir, e, slots) = fresh(1, 5);
    let d = e.call_deferred(e.principal(), "book-slot", &book(&slots[0], "P1", None));
    assert!(!d.is_ready(), "a durable change has a commit to wait for");
    let answer = d.wait().unwrap();
    let id = answer["booking_id"].as_str().unwrap().to_string();
    e.close();
    drop(e);
    let e = open(dir.path());
    let info = ok(&e, "booking-info", json!({"booking_id": id}));
    assert_eq!(info["status"], "booked");
}

#[test]
fn the_awaited_answer_is_the_one_the_blocking_call_gives_and_needs_no_runtime() {
    let (_dir, e, slots) = fresh(2, 5);
    let d = e.call_deferred(e.principal(), "book-slot", &book(&slots[0], "P1", None));
    let (awaited, _polls) = block_on(d.durable());
    let awaited = awaited.unwrap();
    let blocking = e.call_value("book-slot", &book(&slots[1], "P1", None)).unwrap();
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&awaited), keys(&blocking), "the same answer shape either way");
    assert_eq!(awaited["status"], blocking["status"]);
}

#[test]
fn a_retry_while_the_first_answer_waits_for_its_commit_is_in_progress_and_then_replays_it() {
    let (_dir, e, slots) = fresh(1, 5);
    let body = book(&slots[0], "P1", Some("R-1"));
    let first = e.call_deferred(e.principal(), "book-slot", &body);
    // Not answered yet: the retry must not get an answer a failed commit could take back.
    let retry = e.call_value("book-slot", &body).unwrap_err();
    assert_eq!(retry.code().as_str(), "REQUEST_IN_PROGRESS");
    let answer = first.wait().unwrap();
    let replay = e.call_value("book-slot", &body).unwrap();
    assert_eq!(replay, answer, "the retry replays the first answer");
    assert_eq!(common::slot_counts(&e, &slots[0]).1, 1, "booked once");
}

#[test]
fn a_deferred_call_dropped_unanswered_still_finishes_its_request_id_without_blocking() {
    let (_dir, e, slots) = fresh(1, 5);
    let body = book(&slots[0], "P1", Some("R-2"));
    drop(e.call_deferred(e.principal(), "book-slot", &body));
    // Once the commit is answered the id replays (the committer finished it).
    e.sync().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let replay = loop {
        match e.call_value("book-slot", &body) {
            Err(err) if err.code().as_str() == "REQUEST_IN_PROGRESS" && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(5))
            }
            other => break other.unwrap(),
        }
    };
    assert!(replay["booking_id"].is_string());
    assert_eq!(common::slot_counts(&e, &slots[0]).1, 1, "the retry replayed, it did not book again");
}

#[test]
fn a_refusal_has_nothing_to_wait_for_and_is_answered_at_once() {
    let (_dir, e, slots) = fresh(1, 1);
    e.call_deferred(e.principal(), "book-slot", &book(&slots[0], "P1", None)).wait().unwrap();
    let d = e.call_deferred(e.principal(), "book-slot", &book(&slots[0], "P2", None));
    assert!(d.is_ready());
    assert_eq!(d.wait().unwrap_err().code().as_str(), "SLOT_FULL");
    // In memory there is never a commit to wait for.
    let m = Engine::open(CLOCK).unwrap();
    let slots = sync_slots(&m, 1, 1, 1);
    let d = m.call_deferred(m.principal(), "book-slot", &book(&slots[0], "P1", None));
    assert!(d.is_ready());
    d.wait().unwrap();
}

#[test]
fn a_failed_commit_answers_the_deferred_call_with_the_storage_error_never_success() {
    let (dir, e, slots) = fresh(1, 5);
    e.close();
    drop(e);
    // A trail whose last entry claims the last number the store holds (the
    // audit table is kept by number, an i64): the next commit cannot store
    // its entry and fails.
    let c = rusqlite::Connection::open(dir.path().join("yilian.sqlite3")).unwrap();
    c.execute("INSERT INTO audit(k, body) VALUES (?1, '[]')", [i64::MAX]).unwrap();
    drop(c);
    let e = open(dir.path());
    let d = e.call_deferred(e.principal(), "book-slot", &book(&slots[0], "P1", Some("R-3")));
    let (out, _) = block_on(d.durable());
    assert_eq!(out.unwrap_err().code().as_str(), "STORAGE_ERROR");
}

#[test]
fn only_in_memory_commands_run_inline_and_none_on_an_engine_with_an_upstream_hospital() {
    let e = Engine::open(CLOCK).unwrap();
    for c in ["book-slot", "pre-book-slot", "cancel-slot", "payment-status", "bed-reserve", "waitlist-join"] {
        assert!(e.runs_inline(c), "{c}");
    }
    for c in ["sync-schedule", "real-time-slots", "audit-log", "slot-statistics", "lab-order-create", "no-such-command"] {
        assert!(!e.runs_inline(c), "{c}");
    }
    let link = json!({"base_url": "http://127.0.0.1:9", "app_id": "C001-MIRROR", "secret": "secret-of-the-C001-mirror-at-least-32-bytes"});
    let cfg = json!({"role": "community", "institution_id": "C001", "upstream": {"hospitals": {"H001": link}}});
    let mirror = Engine::open(&cfg.to_string()).unwrap();
    assert!(!mirror.runs_inline("book-slot"), "a mirror hands bookings to the hospital over the network");
}

#[test]
fn a_principal_other_than_the_engines_is_bound_the_same_way_when_deferred() {
    let (_dir, e, slots) = fresh(1, 5);
    let c001 = Principal::from_json(r#"{"role": "community", "institution_id": "C001"}"#).unwrap();
    let mut body: Value = serde_json::from_str(&book(&slots[0], "P1", None)).unwrap();
    body["clinic_id"] = json!("C002");
    let refused = e.call_deferred(&c001, "book-slot", &body.to_string()).wait().unwrap_err();
    assert_eq!(refused.code().as_str(), "FORBIDDEN", "C001 cannot book as C002");
    assert_eq!(common::slot_counts(&e, &slots[0]).1, 0);
}
