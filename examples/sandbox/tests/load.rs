//! Load on loopback, bounded in count and time: 32 concurrent clients send
//! 2,000 pre-book requests for 4 slots of 5 places each (distinct patients).
//! Exactly 20 succeed, every other answer is SLOT_FULL, slot-info shows no
//! overbooking; throughput and p99 are printed next to the same flow run
//! directly in-process on an identical durable engine.

mod common;
use common::*;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CLIENTS: usize = 32;
const REQUESTS: usize = 2_000;
const WINDOWS: [&str; 4] = ["09:00-10:00", "10:00-11:00", "14:00-15:00", "15:00-16:00"];
const CAPACITY: u64 = 5;

fn schedule() -> String {
    let slots: Vec<Value> = WINDOWS.iter().map(|w| json!({"start_time": &w[..5], "end_time": &w[6..], "capacity": CAPACITY})).collect();
    json!({"hospital_id": "H001", "schedule_data": [{"device_id": "DEV001", "project_id": "P001", "date": "2024-10-30", "available_slots": slots}]}).to_string()
}

fn request(i: usize) -> String {
    json!({"patient_id": format!("PAT{i:05}"), "project_id": "P001", "date": "2024-10-30", "time_slot": WINDOWS[i % WINDOWS.len()],
        "device_id": "DEV001", "clinic_id": "C001", "request_id": format!("load-{i}")})
    .to_string()
}

struct Figures {
    ok: usize,
    full: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
}

fn figures(mut lat: Vec<Duration>, ok: usize, full: usize, elapsed: Duration) -> Figures {
    lat.sort();
    let at = |q: f64| lat[((lat.len() as f64 * q).ceil() as usize).clamp(1, lat.len()) - 1];
    Figures { ok, full, elapsed, p50: at(0.50), p99: at(0.99) }
}

fn print(label: &str, f: &Figures) {
    println!(
        "{label:<12} {REQUESTS} requests, {CLIENTS} clients: {:>8.0} req/s, p50 {:>7.3} ms, p99 {:>7.3} ms ({} booked, {} SLOT_FULL, {:.2} s)",
        REQUESTS as f64 / f.elapsed.as_secs_f64(),
        f.p50.as_secs_f64() * 1e3,
        f.p99.as_secs_f64() * 1e3,
        f.ok,
        f.full,
        f.elapsed.as_secs_f64()
    );
}

async fn over_http() -> Figures {
    let s = Server::start(CLOCK, true).await;
    s.ok("sync-catalog", &catalog()).await;
    s.ok("sync-schedule", &schedule()).await;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (next, client, url) = (next.clone(), s.client.clone(), s.url("/api/v1/pre-book-slot"));
            tokio::spawn(async move {
                let (mut lat, mut ok, mut full) = (Vec::new(), 0, 0);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= REQUESTS {
                        return (lat, ok, full);
                    }
                    let t = Instant::now();
                    let r = client.post(&url).header("Content-Type", "application/json").body(request(i)).send().await.unwrap();
                    let status = r.status().as_u16();
                    let v: Value = r.json().await.unwrap();
                    lat.push(t.elapsed());
                    match (status, v["code"].as_str()) {
                        (200, _) => ok += 1,
                        (409, Some("SLOT_FULL")) => full += 1,
                        other => panic!("unexpected answer {other:?}: {v}"),
                    }
                }
            })
        })
        .collect();
    let (mut lat, mut ok, mut full) = (Vec::new(), 0, 0);
    for t in tasks {
        let (l, o, f) = tokio::time::timeout(Duration::from_secs(120), t).await.expect("load finishes within 120 s").unwrap();
        lat.extend(l);
        ok += o;
        full += f;
    }
    let elapsed = started.elapsed();
    // No overbooking, checked through the interface the platform would use.
    let mut booked = 0;
    for w in WINDOWS {
        let slot = format!("EX-H001-DEV001-20241030-{}", w.replace([':', '-'], ""));
        let (st, v) = s.get("slot-info", &[("slot_id", &slot)]).await;
        assert_eq!(st, 200, "{v}");
        let d = &v["data"];
        assert_eq!(d["capacity"], CAPACITY);
        assert!(d["booked"].as_u64().unwrap() + d["held"].as_u64().unwrap() <= CAPACITY, "overbooked: {d}");
        assert_eq!(d["remaining"], 0, "{d}");
        booked += d["booked"].as_u64().unwrap() + d["held"].as_u64().unwrap();
    }
    assert_eq!(booked as usize, ok, "every success holds a place, no more");
    let m = s.client.get(s.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(m.contains(&format!("yilian_requests_total{{interface=\"pre-book-slot\"}} {REQUESTS}")), "metrics count every call");
    s.stop().await;
    figures(lat, ok, full, elapsed)
}

fn in_process() -> Figures {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg: Value = serde_json::from_str(CLOCK).unwrap();
    cfg["data_dir"] = dir.path().to_string_lossy().into_owned().into();
    let e = yilian_core::Engine::open(&cfg.to_string()).unwrap();
    e.call_value("sync-catalog", &catalog()).unwrap();
    e.call_value("sync-schedule", &schedule()).unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (e, next) = (e.clone(), next.clone());
            std::thread::spawn(move || {
                let (mut lat, mut ok, mut full) = (Vec::new(), 0, 0);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= REQUESTS {
                        return (lat, ok, full);
                    }
                    let t = Instant::now();
                    let r = e.call_value("pre-book-slot", &request(i));
                    lat.push(t.elapsed());
                    match r {
                        Ok(_) => ok += 1,
                        Err(err) if err.code() == yilian_core::ErrorCode::SlotFull => full += 1,
                        Err(err) => panic!("unexpected {err}"),
                    }
                }
            })
        })
        .collect();
    let (mut lat, mut ok, mut full) = (Vec::new(), 0, 0);
    for t in threads {
        let (l, o, f) = t.join().unwrap();
        lat.extend(l);
        ok += o;
        full += f;
    }
    let elapsed = started.elapsed();
    e.close();
    figures(lat, ok, full, elapsed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_clients_few_slots_no_overbooking() {
    let places = WINDOWS.len() * CAPACITY as usize;
    let http = over_http().await;
    let direct = tokio::task::spawn_blocking(in_process).await.unwrap();
    println!();
    print("over HTTP", &http);
    print("in-process", &direct);
    println!("HTTP/in-process throughput ratio {:.3}", direct.elapsed.as_secs_f64() / http.elapsed.as_secs_f64());
    for f in [&http, &direct] {
        assert_eq!(f.ok, places, "every place is taken exactly once");
        assert_eq!(f.ok + f.full, REQUESTS);
    }
}
