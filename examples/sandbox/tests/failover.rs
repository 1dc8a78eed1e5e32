//! Failover of the sandbox binary on the PostgreSQL store, process by process
//! (#17): a leader killed with SIGKILL in the middle of a storm of bookings
//! over HTTP, and a leader stopped with SIGSTOP past its lease and resumed.
//!
//! Clients behave as a load balancer in front of two servers would: a
//! connection error or a 503 sends the same request (same request id) to the
//! other server after a short pause, until a definite answer arrives.

mod common;

use common::process::{health, post, start, until_leader, Proc};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DATE: &str = "2024-10-30";
const DEVICES: usize = 2;
const HOURS: usize = 10; // 08:00–18:00
const CAPACITY: usize = 12;
const SLOTS: usize = DEVICES * HOURS;

fn slot_of(n: usize) -> (String, String) {
    let (d, h) = (n % DEVICES + 1, n / DEVICES % HOURS + 8);
    (format!("DEV{d:03}"), format!("{h:02}:00-{:02}:00", h + 1))
}

/// A config with a short lease, every slot open (no release windows), and
/// the store on `conninfo`; the leader first, then a standby.
fn pair(dir: &tempfile::TempDir, conninfo: &str) -> (Proc, Proc, reqwest::Client) {
    let cfg = dir.path().join("config.json");
    std::fs::write(
        &cfg,
        json!({"clock_start": "2024-10-29T09:00:00+08:00", "release": {"enabled": false}, "store": {"lease_seconds": 2}}).to_string(),
    )
    .unwrap();
    let args = ["--store", conninfo, "--config", cfg.to_str().unwrap(), "--rate-limit", "0"];
    let leader = start(&args);
    let standby = start(&args);
    let c = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    (leader, standby, c)
}

async fn fresh_conninfo() -> String {
    let spec = tokio::task::spawn_blocking(yilian_tests::store::fresh_postgres).await.unwrap();
    spec.strip_prefix("postgres:").unwrap().to_string()
}

/// Publishes the storm's slots: `DEVICES` × `HOURS`, `CAPACITY` places each.
async fn publish(c: &reqwest::Client, base: &str) {
    let rows: Vec<Value> = (1..=DEVICES)
        .map(|d| {
            let windows: Vec<Value> =
                (8..8 + HOURS).map(|h| json!({"start_time": format!("{h:02}:00"), "end_time": format!("{:02}:00", h + 1)})).collect();
            json!({"device_id": format!("DEV{d:03}"), "project_id": "P001", "date": DATE, "capacity": CAPACITY, "available_slots": windows})
        })
        .collect();
    let (st, v) = post(c, base, "sync-schedule", json!({"hospital_id": "H001", "schedule_data": rows})).await;
    assert_eq!(st, 200, "{v}");
}

fn booking(patient: &str, n: usize, request_id: &str) -> Value {
    let (device, window) = slot_of(n);
    json!({"patient_id": patient, "project_id": "P001", "date": DATE, "time_slot": window, "device_id": device,
           "clinic_id": "C001", "request_id": request_id})
}

/// Places booked per slot, as the pool reports them (`real-time-slots`).
async fn booked_per_slot(c: &reqwest::Client, base: &str) -> HashMap<(String, String), u64> {
    let r = c.get(format!("{base}/api/v1/real-time-slots?project_id=P001&date={DATE}")).send().await.unwrap();
    let v: Value = r.json().await.unwrap();
    let slots = v["data"]["slots"].as_array().unwrap_or_else(|| panic!("{v}"));
    slots
        .iter()
        .map(|s| {
            let key = (s["device_id"].as_str().unwrap().to_string(), s["time_slot"].as_str().unwrap().to_string());
            (key, s["booked"].as_u64().unwrap())
        })
        .collect()
}

/// One client's answer for one booking request: the booking id, or the
/// refusal's code.
type Outcome = Result<String, String>;

/// Sends `body` to `bases[first]`, and on a connection error or a 503 to
/// the other base, until a definite answer; counts the tries that got none.
async fn book_until_answered(c: &reqwest::Client, bases: &[String; 2], mut first: usize, body: &Value, retries: &AtomicUsize) -> Outcome {
    let t = Instant::now();
    loop {
        assert!(t.elapsed() < Duration::from_secs(60), "an answer within 60 s for {body}");
        match c.post(format!("{}/api/v1/book-slot", bases[first])).json(body).send().await {
            Err(_) => {}
            Ok(r) => {
                let st = r.status().as_u16();
                let v: Value = r.json().await.unwrap();
                match st {
                    200 => return Ok(v["data"]["booking_id"].as_str().unwrap().to_string()),
                    503 => assert_eq!(v["code"], "NOT_LEADER", "{v}"),
                    _ => return Err(v["code"].as_str().unwrap_or_else(|| panic!("{st} {v}")).to_string()),
                }
            }
        }
        retries.fetch_add(1, Ordering::Relaxed);
        first = 1 - first;
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_killed_mid_storm_loses_no_acknowledged_booking_and_overbooks_no_slot() {
    const CLIENTS: usize = 16;
    const EACH: usize = 25; // 400 requests for 240 places
    let dir = tempfile::tempdir().unwrap();
    let conninfo = fresh_conninfo().await;
    let (leader, standby, c) = pair(&dir, &conninfo);
    until_leader(&c, &leader.base, Duration::from_secs(15)).await;
    publish(&c, &leader.base).await;
    let bases = Arc::new([leader.base.clone(), standby.base.clone()]);
    let answered = Arc::new(AtomicUsize::new(0));
    let retries = Arc::new(AtomicUsize::new(0));
    let outcomes = Arc::new(Mutex::new(Vec::<(usize, Outcome)>::new()));
    let mut tasks = Vec::new();
    for k in 0..CLIENTS {
        let (c, bases, answered, retries, outcomes) = (c.clone(), bases.clone(), answered.clone(), retries.clone(), outcomes.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..EACH {
                let n = k * EACH + i;
                let slot = n * 7 % SLOTS;
                let body = booking(&format!("SP{k:02}{i:03}"), slot, &format!("storm-{n}"));
                let out = book_until_answered(&c, &bases, 0, &body, &retries).await;
                outcomes.lock().unwrap().push((slot, out));
                answered.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // Kill the leader once a third of the requests have their answer.
    let t = Instant::now();
    while answered.load(Ordering::Relaxed) < CLIENTS * EACH / 3 {
        assert!(t.elapsed() < Duration::from_secs(60), "the storm makes progress");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    leader.signal(libc::SIGKILL);
    let at_kill = answered.load(Ordering::Relaxed);
    let (took, h) = until_leader(&c, &standby.base, Duration::from_secs(15)).await;
    for t in tasks {
        t.await.unwrap();
    }
    println!(
        "SIGKILL after {at_kill} of {} answers; the standby led after {took:?} ({}); {} tries went unanswered and were sent again",
        CLIENTS * EACH,
        h["data"]["store"],
        retries.load(Ordering::Relaxed)
    );
    drop(leader);

    let outcomes = outcomes.lock().unwrap().clone();
    assert_eq!(outcomes.len(), CLIENTS * EACH);
    // The kill interrupted the storm: requests went unanswered and were sent
    // again, and the storm both booked and filled slots.
    assert!(retries.load(Ordering::Relaxed) >= 1 && at_kill < CLIENTS * EACH, "the kill fell mid-storm");
    assert!(outcomes.iter().any(|(_, o)| o.is_ok()) && outcomes.iter().any(|(_, o)| o.is_err()));
    let mut acked: HashMap<usize, Vec<String>> = HashMap::new();
    for (slot, out) in &outcomes {
        match out {
            Ok(id) => acked.entry(*slot).or_default().push(id.clone()),
            Err(code) => assert_eq!(code, "SLOT_FULL", "the only refusal is a full slot"),
        }
    }
    // Every acknowledged booking is there, on its slot, booked, and once.
    let mut ids: Vec<&String> = acked.values().flatten().collect();
    ids.sort();
    let before = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), before, "no booking id was given to two requests");
    for (slot, list) in &acked {
        let (device, window) = slot_of(*slot);
        for id in list {
            let (st, v) = post(&c, &standby.base, "booking-info", json!({"booking_id": id})).await;
            assert_eq!((st, v["data"]["status"].as_str()), (200, Some("booked")), "{id}: {v}");
            assert_eq!((v["data"]["device_id"].as_str(), v["data"]["time_slot"].as_str()), (Some(device.as_str()), Some(window.as_str())), "{v}");
        }
    }
    // The pool holds exactly the acknowledged bookings, never above capacity,
    // and refused a request only on a slot that is full.
    let pool = booked_per_slot(&c, &standby.base).await;
    for n in 0..SLOTS {
        let key = slot_of(n);
        let booked = pool.get(&key).copied().unwrap_or_else(|| panic!("slot {key:?} is listed"));
        assert!(booked <= CAPACITY as u64, "{key:?} overbooked: {booked}");
        assert_eq!(booked, acked.get(&n).map_or(0, Vec::len) as u64, "{key:?}: the pool and the acknowledgements agree");
        if outcomes.iter().any(|(s, o)| *s == n && o.is_err()) {
            assert_eq!(booked, CAPACITY as u64, "{key:?} refused a request while it had room");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_stopped_past_its_lease_commits_nothing_when_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let conninfo = fresh_conninfo().await;
    let (old, new, c) = pair(&dir, &conninfo);
    let (_, h) = until_leader(&c, &old.base, Duration::from_secs(15)).await;
    let epoch = h["data"]["store"]["lease_epoch"].as_u64().unwrap();
    publish(&c, &old.base).await;
    let (st, v) = post(&c, &old.base, "book-slot", booking("PAT001", 0, "before-stop")).await;
    assert_eq!(st, 200, "{v}");

    old.signal(libc::SIGSTOP);
    let stopped = Instant::now();
    // A booking sent to the stopped leader waits in its socket until it resumes.
    let pending = {
        let (c, base) = (c.clone(), old.base.clone());
        tokio::spawn(async move { post(&c, &base, "book-slot", booking("PAT002", 0, "sent-while-stopped")).await })
    };
    let (took, h) = until_leader(&c, &new.base, Duration::from_secs(15)).await;
    assert_eq!(h["data"]["store"]["lease_epoch"], json!(epoch + 1), "{h}");
    println!("SIGSTOP: the standby led after {:?} (polled for {took:?})", stopped.elapsed());
    let (st, v) = post(&c, &new.base, "book-slot", booking("PAT003", 0, "on-the-new-leader")).await;
    assert_eq!(st, 200, "{v}");

    old.signal(libc::SIGCONT);
    let (st, v) = pending.await.unwrap();
    assert_eq!((st, v["code"].as_str()), (503, Some("NOT_LEADER")), "the resumed leader is fenced: {v}");
    // It stands by, and the new leader keeps working.
    let t = Instant::now();
    loop {
        let (st, _, h) = health(&c, &old.base).await;
        if st == 503 {
            assert_eq!(h["role"], "standby", "{h}");
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "the resumed leader stands by: {h}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pool = booked_per_slot(&c, &new.base).await;
    assert_eq!(pool[&slot_of(0)], 2, "the booking sent to the stopped leader was never committed");
    // Sent again, to the leader, it books for the first time.
    let (st, v) = post(&c, &new.base, "book-slot", booking("PAT002", 0, "sent-while-stopped")).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(booked_per_slot(&c, &new.base).await[&slot_of(0)], 3);
}
