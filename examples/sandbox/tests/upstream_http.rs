//! The hospital decides (#18 items 1–2): a hospital-role sandbox is the
//! authority over its slots; a community engine mirrors them with the
//! hospital configured upstream. The source's flow over HTTP on loopback
//! (schedule push, pre-book decided by the hospital, payment, the
//! hospital's own payment push, cancel), then the faults: the hospital
//! refusing, down, slow past the timeout, silent past the deadline, and a
//! caller's retry. The mirror's engine is blocking (it calls the hospital
//! with reqwest's blocking client), so each of its calls runs on
//! `spawn_blocking`.

mod common;

use serde_json::{json, Value};
use std::time::Duration;
use yilian_core::{Engine, Principal, Role};
use yilian_sandbox::{serve, AppState, Auth, Options};

const MIRROR_APP: &str = "C001-MIRROR";
const MIRROR_SECRET: &str = "secret-of-the-C001-mirror-at-least-32-bytes";
const DAY: &str = "2024-10-30";
const SLOT: &str = "EX-H001-DEV001-20241030-09001000";
const SLOT2: &str = "EX-H001-DEV001-20241030-14001500";

/// The hospital's sandbox (role hospital H001), signatures required: the
/// mirror's app acts at the hospital as community centre C001.
struct Hospital {
    base: String,
    engine: Engine,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Hospital {
    async fn start_on(listener: tokio::net::TcpListener, engine: Engine) -> Hospital {
        let base = format!("http://{}", listener.local_addr().unwrap());
        let keys = json!({MIRROR_APP: {"secret": MIRROR_SECRET, "role": "community", "institution_id": "C001"}});
        let keys = yilian_sandbox::signature::parse_keys(&keys.to_string(), 300).unwrap();
        let opts = Options { upload_limit: 1 << 20, event_poll: Duration::from_millis(20) };
        let st = AppState::with_auth(engine.clone(), opts, Auth::Signed(keys));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, st, async move {
            let _ = rx.await;
        }));
        Hospital { base, engine, stop: Some(tx), task: Some(task) }
    }

    async fn start() -> Hospital {
        Hospital::start_on(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(), hospital_engine()).await
    }

    async fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(20), t).await.expect("server stops").unwrap().unwrap();
        }
    }

    /// The hospital's own view of a slot: (booked, held, remaining).
    fn counts(&self, slot: &str) -> (u64, u64, u64) {
        let v = self.engine.call_value("slot-info", &json!({"slot_id": slot}).to_string()).unwrap();
        (v["booked"].as_u64().unwrap(), v["held"].as_u64().unwrap(), v["remaining"].as_u64().unwrap())
    }
}

/// The hospital's engine (in memory), not served yet.
fn hospital_engine() -> Engine {
    Engine::open(&json!({"clock_start": "2024-10-29T09:00:00+08:00", "role": "hospital", "institution_id": "H001"}).to_string()).unwrap()
}

/// The hospital down: its engine with a schedule of `capacity` places, not
/// served, and a port that is closed for now; the mirror with it upstream at
/// that port (`deadline_seconds`), the schedule pushed to it.
async fn hospital_down(deadline_seconds: u64, capacity: u32) -> (std::net::SocketAddr, Engine, Engine) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let engine = hospital_engine();
    let m = mirror(&format!("http://{addr}"), json!({}), deadline_seconds);
    publish(&engine, &m, capacity);
    (addr, engine, m)
}

fn schedule(capacity: u32) -> Value {
    json!({"hospital_id": "H001", "schedule_data": [{"device_id": "DEV001", "project_id": "P001", "date": DAY, "capacity": capacity,
        "available_slots": [{"start_time": "09:00", "end_time": "10:00"}, {"start_time": "14:00", "end_time": "15:00"}]}]})
}

/// The community mirror with H001 upstream at `base`; no timer (the test
/// runs `run-due` itself).
fn mirror(base: &str, link: Value, deadline_seconds: u64) -> Engine {
    let mut l = json!({"base_url": base, "app_id": MIRROR_APP, "secret": MIRROR_SECRET, "timeout_ms": 3000, "retries": 0});
    for (k, v) in link.as_object().unwrap() {
        l[k] = v.clone();
    }
    let cfg = json!({"clock_start": "2024-10-29T09:00:00+08:00", "role": "community", "institution_id": "C001", "timer": {"enabled": false},
        "upstream": {"hospitals": {"H001": l}, "deadline_seconds": deadline_seconds}});
    Engine::open(&cfg.to_string()).unwrap()
}

/// Publishes the schedule at the hospital and pushes it to the mirror, as the hospital does (被动调用).
fn publish(h: &Engine, m: &Engine, capacity: u32) {
    h.call_value("sync-schedule", &schedule(capacity).to_string()).unwrap();
    let hospital = Principal::new(Role::Hospital, Some("H001"), None).unwrap();
    m.call_value_as(&hospital, "sync-schedule", &schedule(capacity).to_string()).unwrap();
}

async fn on_mirror(m: &Engine, cmd: &'static str, body: Value) -> Result<Value, yilian_core::Error> {
    let m = m.clone();
    tokio::task::spawn_blocking(move || m.call_value(cmd, &body.to_string())).await.unwrap()
}

fn events_of(e: &Engine, kind: &str) -> Vec<Value> {
    let v = e.call_value("next-events", r#"{"limit": 1000}"#).unwrap();
    v["events"].as_array().unwrap().iter().filter(|x| x["type"] == kind).cloned().collect()
}

fn remaining(e: &Engine, slot: &str) -> u64 {
    e.call_value("slot-info", &json!({"slot_id": slot}).to_string()).unwrap()["remaining"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_booking_on_the_hospitals_slot_is_decided_by_the_hospital_and_its_ids_are_kept() {
    let mut h = Hospital::start().await;
    let m = mirror(&h.base, json!({}), 300);
    publish(&h.engine, &m, 2);
    // The community side's real-time query is answered from the mirror.
    let rt = m.call_value("real-time-schedule", &json!({"hospital_id": "H001", "date": DAY}).to_string()).unwrap();
    assert_eq!(rt[0]["available_slots"].as_array().unwrap().len(), 2, "{rt}");

    // Pre-book on the mirror: the hospital holds the place and answers with its ids.
    let v = on_mirror(&m, "pre-book-slot", json!({"slot_id": SLOT, "patient_id": "PAT001", "request_id": "c-1"})).await.unwrap();
    assert_eq!(v["status"], "pre-booked", "{v}");
    assert_eq!(v["handoff"]["state"], "accepted");
    let local = v["booking_id"].as_str().unwrap().to_string();
    let theirs = v["hospital_booking_id"].as_str().expect("the hospital's booking id").to_string();
    assert_eq!(h.counts(SLOT), (0, 1, 1), "held at the hospital");
    assert_eq!(remaining(&m, SLOT), 1, "and on the mirror: it never oversells");
    let at_hospital = h.engine.call_value("booking-info", &json!({"booking_id": theirs}).to_string()).unwrap();
    assert_eq!((at_hospital["patient_id"].as_str(), at_hospital["clinic_id"].as_str()), (Some("PAT001"), Some("C001")));

    // The caller's retry gets the same answer and books nothing more, at either end.
    let again = on_mirror(&m, "pre-book-slot", json!({"slot_id": SLOT, "patient_id": "PAT001", "request_id": "c-1"})).await.unwrap();
    assert_eq!((again["booking_id"].as_str(), again["hospital_booking_id"].as_str()), (Some(local.as_str()), Some(theirs.as_str())));
    assert_eq!(h.counts(SLOT), (0, 1, 1));

    // The hospital's id is accepted wherever a booking id is.
    let info = on_mirror(&m, "booking-info", json!({"hospital_booking_id": theirs})).await.unwrap();
    assert_eq!(info["booking_id"], local.as_str());
    assert_eq!(info["hospital_booking_id"], theirs.as_str());

    // The patient pays at the hospital's window: the hospital records it and
    // pushes it to the mirror in its own ids (被动调用: sync-payment-status).
    h.engine.call_value("payment-status", &json!({"booking_id": theirs, "payment_status": "paid"}).to_string()).unwrap();
    let hospital = Principal::new(Role::Hospital, Some("H001"), None).unwrap();
    let pushed = m.call_value_as(&hospital, "sync-payment-status", &json!({"booking_id": theirs, "payment_status": "paid"}).to_string()).unwrap();
    assert_eq!((pushed["booking_id"].as_str(), pushed["status"].as_str()), (Some(local.as_str()), Some("booked")), "{pushed}");
    assert_eq!(h.counts(SLOT), (1, 0, 1));
    // The hospital's rules hold on the mirror too: no refund before a cancellation.
    let refused = m.call_value_as(&hospital, "sync-payment-status", &json!({"booking_id": theirs, "payment_status": "refunded"}).to_string());
    assert_eq!(refused.unwrap_err().code().as_str(), "REFUND_NOT_ALLOWED");

    // A second patient pays through the mirror: the hospital first, then the mirror.
    let v2 = on_mirror(&m, "pre-book-slot", json!({"slot_id": SLOT2, "patient_id": "PAT002", "request_id": "c-4"})).await.unwrap();
    let local2 = v2["booking_id"].as_str().unwrap().to_string();
    let paid = on_mirror(&m, "payment-status", json!({"booking_id": local2, "payment_status": "paid", "request_id": "c-5"})).await.unwrap();
    assert_eq!(paid["status"], "booked", "{paid}");
    assert_eq!(h.counts(SLOT2), (1, 0, 1));

    // The community side's cancel notice (预约平台取消通知, 主动调用): cancelled
    // at the hospital, then locally; both places come back.
    let c = on_mirror(&m, "notify-cancel-booking", json!({"booking_id": local, "request_id": "c-3"})).await.unwrap();
    assert_eq!(c["status"], "cancelled");
    assert_eq!(h.counts(SLOT), (0, 0, 2));
    assert_eq!(remaining(&m, SLOT), 2);
    assert_eq!(h.engine.call_value("booking-info", &json!({"booking_id": theirs}).to_string()).unwrap()["status"], "cancelled");
    assert_eq!(events_of(&m, "handoff_accepted").len(), 2);

    // The hospital stops the device for the day and pushes it (被动调用:
    // stop-service): the mirror closes the slots, and the patient's booking
    // hears of it with the hospital's ids.
    let stop = json!({"hospital_id": "H001", "device_id": "DEV001", "stop_date": DAY, "reason": "设备检修", "action": "cancel"});
    h.engine.call_value("stop-service", &stop.to_string()).unwrap();
    m.call_value_as(&hospital, "stop-service", &stop.to_string()).unwrap();
    let info2 = m.call_value("booking-info", &json!({"booking_id": local2}).to_string()).unwrap();
    assert_eq!(info2["status"], "cancelled", "{info2}");
    let theirs2 = v2["hospital_booking_id"].as_str().unwrap();
    assert_eq!(h.engine.call_value("booking-info", &json!({"booking_id": theirs2}).to_string()).unwrap()["status"], "cancelled");
    let told: Vec<Value> = events_of(&m, "booking_cancelled").into_iter().filter(|e| e["booking_id"] == local2.as_str()).collect();
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!((told[0]["patient_id"].as_str(), told[0]["hospital_booking_id"].as_str()), (Some("PAT002"), Some(theirs2)), "{}", told[0]);
    assert_eq!(m.call_value("real-time-schedule", &json!({"hospital_id": "H001", "date": DAY}).to_string()).unwrap(), json!([]), "nothing left to book that day");
    drop_off_runtime(m);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hospitals_refusal_reaches_the_caller_with_its_code_and_the_hold_is_released() {
    let mut h = Hospital::start().await;
    let m = mirror(&h.base, json!({}), 300);
    publish(&h.engine, &m, 1);
    // The hospital's last place went at its own window; the mirror does not know yet.
    h.engine.call_value("book-slot", &json!({"slot_id": SLOT, "patient_id": "WALKIN"}).to_string()).unwrap();
    assert_eq!(remaining(&m, SLOT), 1);
    let e = on_mirror(&m, "book-slot", json!({"slot_id": SLOT, "patient_id": "PAT001"})).await.unwrap_err();
    assert_eq!(e.code().as_str(), "SLOT_FULL", "{e:?}");
    assert!(!e.message_zh().is_empty());
    assert_eq!(remaining(&m, SLOT), 1, "the tentative hold was released");
    assert_eq!(h.counts(SLOT), (1, 0, 0), "nothing more at the hospital");
    assert_eq!(events_of(&m, "handoff_refused").len(), 1);
    drop_off_runtime(m);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_hospital_leaves_the_caller_pending_until_a_retry_reaches_it() {
    let (addr, engine, m) = hospital_down(300, 2).await;
    let v = on_mirror(&m, "book-slot", json!({"slot_id": SLOT, "patient_id": "PAT001", "request_id": "c-9"})).await.unwrap();
    assert_eq!(v["status"], "pending", "{v}");
    let hid = v["handoff"]["handoff_id"].as_str().unwrap().to_string();
    assert_eq!(v["handoff"]["error"]["code"], "PLATFORM_UNAVAILABLE");
    assert_eq!(remaining(&m, SLOT), 1, "the place is held while the hospital is asked");
    let info = on_mirror(&m, "handoff-info", json!({"handoff_id": hid})).await.unwrap();
    assert_eq!(info["state"], "pending");
    // Nothing due yet (backing off): the pass leaves it.
    assert_eq!(on_mirror(&m, "run-due", json!({})).await.unwrap()["handoffs_decided"], 0);

    // The hospital comes up on its port; the next due try reaches it.
    let mut h = Hospital::start_on(tokio::net::TcpListener::bind(addr).await.unwrap(), engine).await;
    tokio::time::sleep(Duration::from_millis(1100)).await; // past the first backoff (1 s)
    assert_eq!(on_mirror(&m, "run-due", json!({})).await.unwrap()["handoffs_decided"], 1);
    assert_eq!(h.counts(SLOT), (1, 0, 1), "booked at the hospital, once");
    let ev = events_of(&m, "handoff_accepted");
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["patient_id"], "PAT001", "the patient's booking is told");
    // The caller's retry learns the outcome.
    let done = on_mirror(&m, "book-slot", json!({"slot_id": SLOT, "patient_id": "PAT001", "request_id": "c-9"})).await.unwrap();
    assert_eq!(done["status"], "booked", "{done}");
    assert!(done["hospital_booking_id"].is_string());
    drop_off_runtime(m);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hospital_slow_past_the_timeout_then_silent_past_the_deadline_releases_the_hold_and_flags_the_case() {
    // A server that accepts and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    // Connections are kept open unanswered; the thread ends with the process.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in silent.incoming() {
            held.push(c);
        }
    });
    let engine = Engine::open(&json!({"clock_start": "2024-10-29T09:00:00+08:00", "role": "hospital", "institution_id": "H001"}).to_string()).unwrap();
    let m = mirror(&format!("http://{addr}"), json!({"timeout_ms": 300, "connect_timeout_ms": 300}), 1);
    publish(&engine, &m, 2);
    let t = std::time::Instant::now();
    let v = on_mirror(&m, "pre-book-slot", json!({"slot_id": SLOT2, "patient_id": "PAT002"})).await.unwrap();
    assert!(t.elapsed() < Duration::from_secs(3), "bounded by the link's timeout: {:?}", t.elapsed());
    assert_eq!(v["status"], "pending");
    assert_eq!(v["handoff"]["error"]["code"], "PLATFORM_TIMEOUT", "{v}");
    assert_eq!(remaining(&m, SLOT2), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await; // past the 1 s deadline
    assert_eq!(on_mirror(&m, "run-due", json!({})).await.unwrap()["handoffs_decided"], 1);
    assert_eq!(remaining(&m, SLOT2), 2, "the hold is released");
    let failed = events_of(&m, "handoff_failed");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["patient_id"], "PAT002", "the patient is told");
    let flagged = on_mirror(&m, "handoff-info", json!({"state": "flagged"})).await.unwrap();
    assert_eq!(flagged["total"], 1, "left for reconciliation");
    drop_off_runtime(m);
}

fn drop_off_runtime<T: Send + 'static>(x: T) {
    std::thread::spawn(move || drop(x)).join().unwrap();
}

#[test]
fn the_upstream_config_is_checked_and_its_secrets_never_shown() {
    let link = json!({"base_url": "http://127.0.0.1:9", "app_id": MIRROR_APP, "secret": MIRROR_SECRET});
    let e = Engine::open(&json!({"upstream": {"hospitals": {"H001": link}}}).to_string()).unwrap();
    let info = e.call("engine-info", "{}");
    assert!(!info.contains(MIRROR_SECRET), "{info}");
    for bad in [
        json!({"hospitals": {}}),
        json!({"hospitals": {"H001": link}, "deadline_seconds": 0}),
        json!({"hospitals": {"H001": link}, "deadline_seconds": 900}), // not shorter than the hold's 900 s
        json!({"hospitals": {"H 1": link}}),
        json!({"hospitals": {"H001": {"base_url": "http://h", "app_id": "A", "secret": "short"}}}),
        json!({"hospitals": {"H001": link}, "retry": 1}),
        json!({"hospitals": {"H001": link}, "reconcile_every_seconds": 5}),
        json!({"hospitals": {"H001": link}, "schedule_deadline": "5pm"}),
        json!([]),
    ] {
        let err = Engine::open(&json!({"upstream": bad}).to_string()).err().unwrap_or_else(|| panic!("{bad} accepted"));
        assert_eq!(err.code().as_str(), "INVALID_CONFIG", "{bad}");
        assert!(!err.message().contains(MIRROR_SECRET) && !err.message_zh().contains(MIRROR_SECRET));
        assert!(err.message_zh().chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)), "{}", err.message_zh());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancellation_while_the_hospital_is_down_is_queued_and_applied_once_it_answers() {
    // The hospital's durable store: it stops (its engine closed) and starts again on it.
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        let cfg = json!({"clock_start": "2024-10-29T09:00:00+08:00", "role": "hospital", "institution_id": "H001", "data_dir": dir.path()});
        Engine::open(&cfg.to_string()).unwrap()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut h = Hospital::start_on(listener, open()).await;
    let m = mirror(&h.base, json!({}), 300);
    publish(&h.engine, &m, 2);
    let v = on_mirror(&m, "book-slot", json!({"slot_id": SLOT, "patient_id": "PAT001"})).await.unwrap();
    let (local, theirs) = (v["booking_id"].as_str().unwrap().to_string(), v["hospital_booking_id"].as_str().unwrap().to_string());
    assert_eq!(h.counts(SLOT), (1, 0, 1));

    // The hospital goes down; the patient cancels on the mirror.
    h.stop().await;
    let c = on_mirror(&m, "cancel-slot", json!({"booking_id": local, "request_id": "c-cancel"})).await.unwrap();
    assert_eq!(c["status"], "pending", "{c}");
    assert_eq!(c["handoff"]["command"], "cancel-slot");
    assert_eq!(c["handoff"]["change_of"], v["handoff"]["handoff_id"]);
    let booking = || m.call_value("booking-info", &json!({"booking_id": local}).to_string()).unwrap();
    assert_eq!(booking()["status"], "booked", "the booking stands until the hospital agrees");
    // The caller's retry, and a second cancellation, learn the same pending change; a payment waits for it.
    let again = on_mirror(&m, "cancel-slot", json!({"booking_id": local, "request_id": "c-cancel"})).await.unwrap();
    assert_eq!(again["handoff"]["handoff_id"], c["handoff"]["handoff_id"]);
    let other = on_mirror(&m, "notify-cancel-booking", json!({"booking_id": local})).await.unwrap();
    assert_eq!(other["handoff"]["handoff_id"], c["handoff"]["handoff_id"]);
    let paid = on_mirror(&m, "payment-status", json!({"booking_id": local, "payment_status": "paid"})).await.unwrap_err();
    assert_eq!(paid.code().as_str(), "INVALID_STATE");

    // The hospital comes back; the next due try cancels there, then here.
    let mut h = Hospital::start_on(tokio::net::TcpListener::bind(addr).await.unwrap(), open()).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let pass = on_mirror(&m, "run-due", json!({})).await.unwrap();
    let info = on_mirror(&m, "handoff-info", json!({"handoff_id": c["handoff"]["handoff_id"]})).await.unwrap();
    assert_eq!(pass["handoffs_decided"], 1, "{pass} {info}");
    assert_eq!(h.engine.call_value("booking-info", &json!({"booking_id": theirs}).to_string()).unwrap()["status"], "cancelled");
    assert_eq!(booking()["status"], "cancelled");
    assert_eq!((h.counts(SLOT), remaining(&m, SLOT)), ((0, 0, 2), 2));
    let done = on_mirror(&m, "cancel-slot", json!({"booking_id": local, "request_id": "c-cancel"})).await.unwrap();
    assert_eq!(done["status"], "cancelled", "{done}");
    drop_off_runtime(m);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_repairs_the_mirror_to_the_hospitals_counts_and_undoes_a_booking_the_mirror_gave_up() {
    let (addr, engine, m) = hospital_down(1, 3).await;

    // The hospital is down: the hand-off waits. Its request did reach the
    // hospital (the answer was lost): the hospital holds a place for it.
    let v = on_mirror(&m, "pre-book-slot", json!({"slot_id": SLOT, "patient_id": "PAT001"})).await.unwrap();
    assert_eq!(v["status"], "pending");
    let as_mirror = Principal::new(Role::Community, Some("C001"), None).unwrap();
    let mut lost = v["handoff"].clone();
    lost["request_id"] = v["handoff"]["handoff_id"].clone();
    let theirs = engine
        .call_value_as(&as_mirror, "pre-book-slot", &json!({"slot_id": SLOT, "patient_id": "PAT001", "request_id": lost["request_id"]}).to_string())
        .unwrap()["booking_id"]
        .as_str()
        .unwrap()
        .to_string();
    // Meanwhile two places go at the hospital's own window.
    for p in ["WALKIN1", "WALKIN2"] {
        engine.call_value("book-slot", &json!({"slot_id": SLOT2, "patient_id": p}).to_string()).unwrap();
    }
    // Past the deadline, unanswered: the mirror releases its hold and flags the case.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let pass = on_mirror(&m, "run-due", json!({})).await.unwrap();
    assert_eq!(pass["handoffs_decided"], 1, "{pass}");
    assert_eq!(pass["upstream_reconciled"], 0, "the hospital is not reached: {pass}");
    assert_eq!(remaining(&m, SLOT), 3);

    let mut h = Hospital::start_on(tokio::net::TcpListener::bind(addr).await.unwrap(), engine).await;
    assert_eq!(h.counts(SLOT), (0, 1, 2), "the hospital holds a place the mirror gave up");
    let r = on_mirror(&m, "reconcile-upstream", json!({})).await.unwrap();
    let r = &r["hospitals"][0];
    assert_eq!(r["reached"], true, "{r}");
    // The walk-ins: the mirror now offers what the hospital has left.
    let drift: Vec<&Value> = r["drift"].as_array().unwrap().iter().filter(|d| d["slot_id"] == SLOT2).collect();
    assert_eq!(drift.len(), 1, "{r}");
    assert_eq!((drift[0]["hospital"]["remaining"].as_u64(), drift[0]["mirror"]["remaining"].as_u64()), (Some(1), Some(3)));
    assert_eq!(remaining(&m, SLOT2), 1);
    // The lost booking is cancelled at the hospital, and the case settled.
    assert_eq!(r["settled"][0]["settled"]["outcome"], "cancelled_at_hospital", "{r}");
    assert_eq!(r["settled"][0]["settled"]["hospital_booking_id"], theirs.as_str());
    assert_eq!(r["still_flagged"], 0);
    assert_eq!(h.counts(SLOT), (0, 0, 3));
    assert_eq!(remaining(&m, SLOT), 3, "both ends agree");
    assert_eq!(on_mirror(&m, "handoff-info", json!({"state": "flagged"})).await.unwrap()["total"], 0);
    assert_eq!(events_of(&m, "handoff_settled").len(), 1);
    assert_eq!(events_of(&m, "reconciliation").len(), 1);
    // Run again: nothing left to repair.
    let again = on_mirror(&m, "reconcile-upstream", json!({"hospital_id": "H001"})).await.unwrap();
    assert_eq!(again["hospitals"][0]["drift"].as_array().unwrap().len(), 0, "{again}");
    let e = on_mirror(&m, "reconcile-upstream", json!({"hospital_id": "H009"})).await.unwrap_err();
    assert_eq!(e.code().as_str(), "INVALID_FIELD");
    drop_off_runtime(m);
    h.stop().await;
}

#[test]
fn a_hospital_that_has_not_pushed_its_schedule_by_the_deadline_raises_one_event_a_day() {
    let link = json!({"base_url": "http://127.0.0.1:9", "app_id": MIRROR_APP, "secret": MIRROR_SECRET, "timeout_ms": 300, "retries": 0});
    let open = || {
        Engine::open(
            &json!({"clock": "manual", "clock_start": "2024-10-29T09:00:00+08:00", "role": "community", "institution_id": "C001", "timer": {"enabled": false},
                "upstream": {"hospitals": {"H001": link, "H002": link}, "deadline_seconds": 60, "reconcile_every_seconds": null}})
            .to_string(),
        )
        .unwrap()
    };
    let m = open();
    // H001 pushes its schedule in the morning; H002 does not.
    let hospital = Principal::new(Role::Hospital, Some("H001"), None).unwrap();
    m.call_value_as(&hospital, "sync-schedule", &schedule(2).to_string()).unwrap();
    let pass = |n: u64| {
        m.call_value("advance-clock", &json!({"seconds": n}).to_string()).unwrap();
        m.call_value("run-due", "{}").unwrap()["schedule_pushes_missed"].as_u64().unwrap()
    };
    assert_eq!(pass(7 * 3600 + 59 * 60), 0, "16:59: not yet due");
    assert_eq!(pass(120), 1, "17:01: H002 is late");
    assert_eq!(pass(3600), 0, "raised once a day");
    let ev = events_of(&m, "schedule_push_missing");
    assert_eq!(ev.len(), 1);
    assert_eq!((ev[0]["data"]["hospital_id"].as_str(), ev[0]["data"]["date"].as_str()), (Some("H002"), Some("2024-10-29")), "{}", ev[0]);
    assert!(ev[0]["data"]["last_push_at"].is_null());
    // The next day nobody pushes: both are late.
    assert_eq!(pass(24 * 3600), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hospital_answering_twice_changes_the_mirror_once() {
    let (addr, engine, m) = hospital_down(300, 2).await;
    // The hand-off's first request reached the hospital, its answer did not.
    let v = on_mirror(&m, "book-slot", json!({"slot_id": SLOT, "patient_id": "PAT001", "request_id": "c-1"})).await.unwrap();
    assert_eq!(v["status"], "pending");
    let as_mirror = Principal::new(Role::Community, Some("C001"), None).unwrap();
    let first = engine
        .call_value_as(&as_mirror, "book-slot", &json!({"slot_id": SLOT, "patient_id": "PAT001", "request_id": v["handoff"]["handoff_id"]}).to_string())
        .unwrap();
    // The retry gets the hospital's first answer again: one booking there, applied once here.
    let mut h = Hospital::start_on(tokio::net::TcpListener::bind(addr).await.unwrap(), engine).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(on_mirror(&m, "run-due", json!({})).await.unwrap()["handoffs_decided"], 1);
    let done = on_mirror(&m, "book-slot", json!({"slot_id": SLOT, "patient_id": "PAT001", "request_id": "c-1"})).await.unwrap();
    assert_eq!((done["status"].as_str(), done["hospital_booking_id"].as_str()), (Some("booked"), first["booking_id"].as_str()), "{done}");
    assert_eq!(h.counts(SLOT), (1, 0, 1));
    assert_eq!(remaining(&m, SLOT), 1);
    // The hospital pushes the same payment twice (its retry): one change, one answer.
    let hospital = Principal::new(Role::Hospital, Some("H001"), None).unwrap();
    let push = json!({"booking_id": first["booking_id"], "payment_status": "paid", "request_id": "h-pay-1"}).to_string();
    let a = m.call_value_as(&hospital, "sync-payment-status", &push).unwrap();
    let b = m.call_value_as(&hospital, "sync-payment-status", &push).unwrap();
    assert_eq!(a, b);
    assert_eq!(events_of(&m, "payment_changed").len(), 1);
    assert_eq!(events_of(&m, "handoff_accepted").len(), 1);
    drop_off_runtime(m);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decided_hand_off_leaves_memory_with_its_booking_and_stays_readable_and_its_number_is_never_given_again() {
    let mut h = Hospital::start().await;
    let dir = tempfile::tempdir().unwrap();
    let link = json!({"base_url": h.base, "app_id": MIRROR_APP, "secret": MIRROR_SECRET, "timeout_ms": 3000, "retries": 0});
    let cfg = json!({"clock": "manual", "clock_start": "2024-10-29T09:00:00+08:00", "role": "community", "institution_id": "C001", "timer": {"enabled": false},
        "data_dir": dir.path(), "retention_days": 1, "upstream": {"hospitals": {"H001": link}, "deadline_seconds": 300, "reconcile_every_seconds": null}});
    let m = Engine::open(&cfg.to_string()).unwrap();
    publish(&h.engine, &m, 2);
    let v = on_mirror(&m, "book-slot", json!({"slot_id": SLOT, "patient_id": "PAT001", "request_id": "c-1"})).await.unwrap();
    assert_eq!(v["handoff"]["handoff_id"], "HO000001");
    // The visit's day (10-30) is over by more than the window.
    m.call_value("advance-clock", &json!({"seconds": 3 * 86_400}).to_string()).unwrap();
    let retired = m.retire_history().unwrap();
    assert_eq!((retired.bookings, retired.handoffs), (1, 1), "{retired:?}");
    assert_eq!(on_mirror(&m, "handoff-info", json!({"state": "accepted"})).await.unwrap()["total"], 0, "out of memory");
    let info = on_mirror(&m, "handoff-info", json!({"handoff_id": "HO000001"})).await.unwrap();
    assert_eq!((info["state"].as_str(), info["hospital_booking_id"].as_str()), (Some("accepted"), v["hospital_booking_id"].as_str()), "read from the store");
    // Reopened: not loaded again, and the next hand-off is HO000002.
    drop_off_runtime(m);
    let m = Engine::open(&cfg.to_string()).unwrap();
    assert_eq!(on_mirror(&m, "handoff-info", json!({"state": "accepted"})).await.unwrap()["total"], 0);
    let day = "2024-11-05";
    let later = json!({"hospital_id": "H001", "schedule_data": [{"device_id": "DEV001", "project_id": "P001", "date": day, "capacity": 1,
        "available_slots": [{"start_time": "09:00", "end_time": "10:00"}]}]});
    h.engine.call_value("sync-schedule", &later.to_string()).unwrap();
    let hospital = Principal::new(Role::Hospital, Some("H001"), None).unwrap();
    m.call_value_as(&hospital, "sync-schedule", &later.to_string()).unwrap();
    let w = on_mirror(&m, "book-slot", json!({"slot_id": "EX-H001-DEV001-20241105-09001000", "patient_id": "PAT002"})).await.unwrap();
    assert_eq!(w["handoff"]["handoff_id"], "HO000002", "{w}");
    drop_off_runtime(m);
    h.stop().await;
}
