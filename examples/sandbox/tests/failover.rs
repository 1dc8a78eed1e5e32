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
const CAPACITY: usize = 30;
const SLOTS: usize = DEVICES * HOURS;

fn slot_of(n: usize) -> (String, String) {
    let (d, h) = (n % DEVICES + 1, n / DEVICES % HOURS + 8);
    (format!("DEV{d:03}"), format!("{h:02}:00-{:02}:00", h + 1))
}

/// A config with a short lease, every slot open (no release windows), and
/// the store on `conninfo`; the leader first, then a standby.
fn pair(dir: &tempfile::TempDir, conninfo: &str) -> (Proc, Proc, reqwest::Client) {
    let cfg = dir.path().join("config.json");
    std::fs::write(&cfg, json!({"clock_start": "2024-10-29T09:00:00+08:00", "release": {"enabled": false}, "store": {"lease_seconds": 2}}).to_string())
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

/// On a fresh database: a leader with the storm's slots published, a
/// standby, and the leader's lease epoch.
async fn leading_pair() -> (tempfile::TempDir, Proc, Proc, reqwest::Client, u64) {
    let dir = tempfile::tempdir().unwrap();
    let conninfo = fresh_conninfo().await;
    let (leader, standby, c) = pair(&dir, &conninfo);
    let (_, h) = until_leader(&c, &leader.base, 0, Duration::from_secs(15)).await;
    publish(&c, &leader.base).await;
    let epoch = h["data"]["store"]["lease_epoch"].as_u64().unwrap();
    (dir, leader, standby, c, epoch)
}

/// Publishes the storm's slots: `DEVICES` × `HOURS`, `CAPACITY` places each.
async fn publish(c: &reqwest::Client, base: &str) {
    let rows: Vec<Value> = (1..=DEVICES)
        .map(|d| {
            let windows: Vec<Value> = (8..8 + HOURS).map(|h| json!({"start_time": format!("{h:02}:00"), "end_time": format!("{:02}:00", h + 1)})).collect();
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

/// Sends `body` to `bases[first]`, and on a connection error or a 5xx (a
/// standby's 503, a store that failed under the request) to the other base,
/// until a definite answer; counts the tries that got none. The request id
/// makes each try safe: a booking committed before its answer was lost is
/// answered again, not booked twice.
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
                    500.. => {}
                    _ => return Err(v["code"].as_str().unwrap_or_else(|| panic!("{st} {v}")).to_string()),
                }
            }
        }
        retries.fetch_add(1, Ordering::Relaxed);
        first = 1 - first;
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// What a storm saw: each request's slot, answer and wait (first try to answer).
struct Storm {
    outcomes: Vec<(usize, Outcome, Duration)>,
    /// Tries that got no answer (connection error or 5xx) and were sent again.
    retries: usize,
    /// Requests answered when the kill was sent.
    at_kill: usize,
    /// From the kill until `survivor` led with a new lease epoch.
    takeover: Duration,
    health: Value,
}

const CLIENTS: usize = 16;
const PLACES: usize = SLOTS * CAPACITY;

/// `CLIENTS` clients book new patients over `bases` (the first one first)
/// until told to stop. Once a third of the places are answered, `kill` runs;
/// `survivor` must then lead with a lease epoch of at least `min_epoch`. The storm goes
/// on until 200 more requests are answered after that, and at least 100 more
/// than there are places (so slots fill and refuse), and every request sent
/// has a definite answer.
async fn storm_with_a_kill(c: &reqwest::Client, bases: [String; 2], survivor: &str, min_epoch: u64, kill: impl FnOnce()) -> Storm {
    let bases = Arc::new(bases);
    let answered = Arc::new(AtomicUsize::new(0));
    let retries = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for k in 0..CLIENTS {
        let (c, bases, answered, retries, stop, outcomes) = (c.clone(), bases.clone(), answered.clone(), retries.clone(), stop.clone(), outcomes.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let slot = (k + i * CLIENTS) * 7 % SLOTS;
                let body = booking(&format!("SP{k:02}{i:05}"), slot, &format!("storm-{k}-{i}"));
                let t = Instant::now();
                let out = book_until_answered(&c, &bases, 0, &body, &retries).await;
                outcomes.lock().unwrap().push((slot, out, t.elapsed()));
                answered.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        }));
    }
    let until = |n: usize| {
        let answered = answered.clone();
        async move {
            let t = Instant::now();
            while answered.load(Ordering::Relaxed) < n {
                assert!(t.elapsed() < Duration::from_secs(90), "the storm makes progress");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    until(PLACES / 3).await;
    let at_kill = answered.load(Ordering::Relaxed);
    kill();
    let (takeover, health) = until_leader(c, survivor, min_epoch, Duration::from_secs(90)).await;
    until((answered.load(Ordering::Relaxed) + 200).max(PLACES + 100)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let outcomes = outcomes.lock().unwrap().clone();
    Storm { outcomes, retries: retries.load(Ordering::Relaxed), at_kill, takeover, health }
}

impl Storm {
    fn report(&self, what: &str) {
        let longest = self.outcomes.iter().map(|o| o.2).max().unwrap_or_default();
        println!(
            "{what} after {} of {} answers; a new lease (epoch {}) {:?} after the kill; the longest wait for an answer {longest:?}; {} tries went unanswered and were sent again",
            self.at_kill,
            self.outcomes.len(),
            self.health["data"]["store"]["lease_epoch"],
            self.takeover,
            self.retries
        );
    }

    /// Every acknowledged booking is on `base`'s pool, booked, on its slot and
    /// once; no slot holds more than its capacity or other bookings than the
    /// acknowledged ones; a request was refused only on a full slot.
    async fn check(&self, c: &reqwest::Client, base: &str) {
        assert!(self.retries >= 1 && self.outcomes.len() > PLACES, "the kill fell mid-storm, and the storm asked for more than all places");
        assert!(self.outcomes.iter().any(|o| o.1.is_ok()) && self.outcomes.iter().any(|o| o.1.is_err()), "the storm booked and filled slots");
        let mut acked: HashMap<usize, Vec<String>> = HashMap::new();
        for (slot, out, _) in &self.outcomes {
            match out {
                Ok(id) => acked.entry(*slot).or_default().push(id.clone()),
                Err(code) => assert_eq!(code, "SLOT_FULL", "the only refusal is a full slot"),
            }
        }
        let mut ids: Vec<&String> = acked.values().flatten().collect();
        ids.sort();
        let before = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), before, "no booking id was given to two requests");
        for (slot, list) in &acked {
            let (device, window) = slot_of(*slot);
            for id in list {
                let (st, v) = post(c, base, "booking-info", json!({"booking_id": id})).await;
                assert_eq!((st, v["data"]["status"].as_str()), (200, Some("booked")), "{id}: {v}");
                assert_eq!((v["data"]["device_id"].as_str(), v["data"]["time_slot"].as_str()), (Some(device.as_str()), Some(window.as_str())), "{v}");
            }
        }
        let pool = booked_per_slot(c, base).await;
        for n in 0..SLOTS {
            let key = slot_of(n);
            let booked = pool.get(&key).copied().unwrap_or_else(|| panic!("slot {key:?} is listed"));
            assert!(booked <= CAPACITY as u64, "{key:?} overbooked: {booked}");
            assert_eq!(booked, acked.get(&n).map_or(0, Vec::len) as u64, "{key:?}: the pool and the acknowledgements agree");
            if self.outcomes.iter().any(|(s, o, _)| *s == n && o.is_err()) {
                assert_eq!(booked, CAPACITY as u64, "{key:?} refused a request while it had room");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_killed_mid_storm_loses_no_acknowledged_booking_and_overbooks_no_slot() {
    let (_dir, leader, standby, c, epoch) = leading_pair().await;
    let storm = storm_with_a_kill(&c, [leader.base.clone(), standby.base.clone()], &standby.base, epoch + 1, || leader.signal(libc::SIGKILL)).await;
    storm.report("SIGKILL to the leader");
    storm.check(&c, &standby.base).await;
}

/// Run by scripts/patroni-failover.sh, which starts PostgreSQL under Patroni
/// (two nodes, synchronous replication, etcd) and sets the two variables: a
/// multi-host conninfo with `target_session_attrs=read-write`, and a command
/// that kills the primary's node. One sandbox; its store fails with the
/// primary, and it reopens on the promoted node.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs the Patroni cluster of scripts/patroni-failover.sh"]
async fn a_postgresql_primary_killed_mid_storm_loses_no_acknowledged_booking() {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run scripts/patroni-failover.sh"));
    let (conninfo, kill) = (var("YILIAN_PATRONI_CONNINFO"), var("YILIAN_PATRONI_KILL"));
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.json");
    std::fs::write(&cfg, json!({"clock_start": "2024-10-29T09:00:00+08:00", "release": {"enabled": false}}).to_string()).unwrap();
    let server = start(&["--store", &conninfo, "--config", cfg.to_str().unwrap(), "--rate-limit", "0"]);
    let c = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    let (_, h) = until_leader(&c, &server.base, 0, Duration::from_secs(30)).await;
    publish(&c, &server.base).await;
    let epoch = h["data"]["store"]["lease_epoch"].as_u64().unwrap();
    let storm = storm_with_a_kill(&c, [server.base.clone(), server.base.clone()], &server.base, epoch + 1, || {
        let out = std::process::Command::new(&kill).output().expect("the kill command runs");
        assert!(out.status.success(), "{kill}: {}", String::from_utf8_lossy(&out.stderr));
        print!("{}", String::from_utf8_lossy(&out.stdout));
    })
    .await;
    storm.report("the primary's node killed");
    storm.check(&c, &server.base).await;
}

/// The same storm on the embedded store (SQLite, `--data-dir`): one server,
/// killed with SIGKILL and started again on its port and directory. Its
/// bookings are answered from the async workers once their group commit is
/// durable (`Engine::call_deferred`), so this is the check that no answer
/// goes out before its commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_on_the_embedded_store_killed_mid_storm_and_restarted_loses_no_acknowledged_booking() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.json");
    std::fs::write(&cfg, json!({"clock_start": "2024-10-29T09:00:00+08:00", "release": {"enabled": false}}).to_string()).unwrap();
    let store = dir.path().join("store");
    let args = ["--data-dir", store.to_str().unwrap(), "--config", cfg.to_str().unwrap(), "--rate-limit", "0"];
    let server = Arc::new(Mutex::new(start(&args)));
    let (base, addr) = {
        let s = server.lock().unwrap();
        (s.base.clone(), s.addr().to_string())
    };
    let c = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    publish(&c, &base).await;
    let restarted = server.clone();
    let storm = storm_with_a_kill(&c, [base.clone(), base.clone()], &base, 0, move || {
        let mut s = restarted.lock().unwrap();
        s.kill_and_reap();
        *s = common::process::start_listening(&addr, &args);
    })
    .await;
    storm.report("SIGKILL, then a restart on the same directory");
    storm.check(&c, &base).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_stopped_past_its_lease_commits_nothing_when_resumed() {
    let (_dir, old, new, c, epoch) = leading_pair().await;
    let (st, v) = post(&c, &old.base, "book-slot", booking("PAT001", 0, "before-stop")).await;
    assert_eq!(st, 200, "{v}");

    old.signal(libc::SIGSTOP);
    let stopped = Instant::now();
    // A booking sent to the stopped leader waits in its socket until it resumes.
    let pending = {
        let (c, base) = (c.clone(), old.base.clone());
        tokio::spawn(async move { post(&c, &base, "book-slot", booking("PAT002", 0, "sent-while-stopped")).await })
    };
    let (took, h) = until_leader(&c, &new.base, epoch + 1, Duration::from_secs(15)).await;
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
