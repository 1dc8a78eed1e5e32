//! The isolation sweep over the wire (S1): with `--keys`, the verified app id
//! is the principal. Every change step of the shared vectors is first sent,
//! signed, by the app ids of other institutions (a community centre, a
//! hospital and a lab that are party to nothing); each must answer 403 with
//! a permission error and change nothing (outbox, audit trail, the answers
//! of the queries the case has asked). Then the step runs as the vector says.
//! The in-process sweep over `call_as` is `tests/tests/isolation.rs`; this
//! one proves the wire binds identity the same way.

use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use yilian_core::client::sign::{new_nonce, sign, unix_now};
use yilian_core::Engine;
use yilian_sandbox::{serve, signature, AppState, Auth, Options};
use yilian_tests::isolation::{observe, Rules};

mod common;

/// The intruders' app ids and secrets: one institution of each acting role.
const INTRUDERS: &[(&str, &str, &str)] = &[
    ("ZZ-C-HIS", "community", "secret-of-the-community-intruder"),
    ("ZZ-H-HIS", "hospital", "secret-of-the-hospital-intruder-h"),
    ("ZZ-L-LIS", "lab", "secret-of-the-lab-intruder-0123456"),
];

fn keys() -> signature::Keys {
    let mut v = serde_json::Map::new();
    for (app, role, secret) in INTRUDERS {
        v.insert(app.to_string(), json!({"secret": secret, "role": role, "institution_id": "ZZ-INTRUDER"}));
    }
    signature::parse_keys(&Value::Object(v).to_string(), 300).expect("keys parse")
}

async fn signed_post(http: &reqwest::Client, base: &str, app: &str, secret: &str, cmd: &str, body: &str) -> (u16, Value) {
    let path = format!("/api/v1/{cmd}");
    let s = sign(app, secret, "POST", &path, None, unix_now(), &new_nonce(), body.as_bytes()).unwrap();
    let mut rb = http.post(format!("{base}{path}")).header("Content-Type", "application/json").body(body.to_string());
    for (k, v) in s.headers() {
        rb = rb.header(k, v);
    }
    let r = rb.send().await.unwrap();
    (r.status().as_u16(), r.json().await.expect("every answer is an envelope"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_signed_client_can_make_a_change_of_the_vectors_for_another_institution() {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let (mut tried, mut refused) = (0usize, 0usize);
    let mut failures = Vec::new();
    for (file, v) in yilian_tests::vector_files() {
        for case in v["cases"].as_array().unwrap() {
            let mut config = case.get("config").or(v.get("config")).cloned().unwrap_or_else(|| json!({}));
            let dir = tempfile::tempdir().unwrap();
            config["data_dir"] = dir.path().join("store").to_string_lossy().into_owned().into();
            config["durable_sync"] = "normal".into();
            let Ok(engine) = Engine::open(&config.to_string()) else { continue };
            let opts = Options { upload_limit: 2 * 1024 * 1024, event_poll: Duration::from_millis(50) };
            let state: Arc<AppState> = AppState::with_auth(engine, opts, Auth::Signed(keys()));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let task = tokio::spawn(serve(listener, state.clone(), async move {
                let _ = rx.await;
            }));
            let e = &state.seat.engine().unwrap();
            let rules = Rules::of(e);
            let mut queries: Vec<(String, String)> = Vec::new();
            for (i, step) in case["steps"].as_array().unwrap().iter().enumerate() {
                let command = step["command"].as_str().unwrap();
                let Some(req) = step.get("request").cloned() else {
                    e.call(command, step["request_text"].as_str().unwrap_or("{}"));
                    continue;
                };
                let text = req.to_string();
                let known = rules.acting.contains_key(command);
                if known
                    && !Engine::is_query(command)
                    && step.get("expect_error").is_none()
                    && req.is_object()
                    && step.get("principal").is_none()
                    && rules.swept(command, &req)
                {
                    tried += 1;
                    for (app, _, secret) in INTRUDERS {
                        let before = observe(e, &queries);
                        let (status, answer) = signed_post(&http, &base, app, secret, command, &text).await;
                        let where_ = format!("{file} / {} step {i} {command} as {app}", case["name"]);
                        if status != 403 || answer["status"] != "error" {
                            failures.push(format!("{where_}: HTTP {status} {answer}"));
                        } else {
                            refused += 1;
                            if observe(e, &queries) != before {
                                failures.push(format!("{where_}: the refused call changed what callers see"));
                            }
                        }
                    }
                }
                let out = match step.get("principal") {
                    Some(p) => e.call_as_json(&p.to_string(), command, &text),
                    None => e.call(command, &text),
                };
                if known && Engine::is_query(command) && out.contains("\"status\":\"success\"") && command != "engine-info" && command != "engine-metrics" {
                    queries.push((command.to_string(), text));
                }
            }
            let _ = tx.send(());
            tokio::time::timeout(Duration::from_secs(20), task).await.expect("server stops").unwrap().unwrap();
        }
    }
    println!("isolation sweep over HTTP: {tried} change steps, {refused} signed attempts by other institutions refused with 403");
    assert!(failures.is_empty(), "{} leaks:\n{}", failures.len(), failures.join("\n"));
    assert!(tried > 100, "only {tried} steps swept");
}

/// Signed parties of one slot: its hospital and two community centres.
const PARTIES: &[(&str, &str, &str, &str)] = &[
    ("H001-HIS", "hospital", "H001", "secret-of-H001-HIS-at-least-32-bytes"),
    ("C001-HIS", "community", "C001", "secret-of-C001-HIS-at-least-32-bytes"),
    ("C002-HIS", "community", "C002", "secret-of-C002-HIS-at-least-32-bytes"),
];

fn secret_of(app: &str) -> &'static str {
    PARTIES.iter().find(|p| p.0 == app).map(|p| p.3).unwrap()
}

/// Opens a signed event stream: once its 200 arrives, the server has
/// subscribed it, so every event from then on reaches it.
async fn open_stream(http: &reqwest::Client, base: &str, app: &str) -> reqwest::Response {
    let path = "/api/v1/events/stream";
    let s = sign(app, secret_of(app), "GET", path, None, unix_now(), &new_nonce(), b"").unwrap();
    let mut rb = http.get(format!("{base}{path}"));
    for (k, v) in s.headers() {
        rb = rb.header(k, v);
    }
    let resp = rb.send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200, "{app}");
    resp
}

/// Reads a stream until an event naming `until` has arrived whole; the text read.
async fn read_until(resp: reqwest::Response, until: &str) -> String {
    use futures_util::StreamExt;
    let mut body = resp.bytes_stream();
    let mut text = String::new();
    let done = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(chunk) = body.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            if text.contains(until) && text.ends_with("\n\n") {
                return;
            }
        }
    })
    .await;
    assert!(done.is_ok(), "no event naming {until} within 20 s: {text}");
    text
}

/// Each signed institution is pushed, and reads with `next-events`, only the
/// events it is a party of — a booking event names its hospital in its data,
/// and the hospital receives it — and none may acknowledge the outbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_institution_is_pushed_and_reads_only_its_own_events_and_cannot_acknowledge_others() {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let mut v = serde_json::Map::new();
    for (app, role, inst, secret) in PARTIES {
        v.insert(app.to_string(), json!({"secret": secret, "role": role, "institution_id": inst}));
    }
    let keys = signature::parse_keys(&Value::Object(v).to_string(), 300).unwrap();
    let engine = Engine::open(r#"{"clock_start":"2024-10-29T09:00:00+08:00"}"#).unwrap();
    let state = AppState::with_auth(engine.clone(), Options { upload_limit: 1 << 20, event_poll: Duration::from_millis(20) }, Auth::Signed(keys));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, state, async move {
        let _ = rx.await;
    }));
    engine.call_value("sync-catalog", &common::catalog()).unwrap();
    let two_places = common::SYNC_SCHEDULE.replace(r#""device_id": "DEV001","#, r#""device_id": "DEV001", "capacity": 2,"#);
    engine.call_value("sync-schedule", &two_places).unwrap();

    // Both centres book the same slot once every stream is open; a stream
    // delivers in order, so one that shows C002's booking has already shown
    // (or left out) C001's.
    let mut streams = Vec::new();
    for app in ["C001-HIS", "C002-HIS", "H001-HIS"] {
        streams.push(open_stream(&http, &base, app).await);
    }
    for who in ["C001", "C002"] {
        let p = yilian_core::Principal::new(yilian_core::Role::Community, Some(who), None).unwrap();
        let req = json!({"patient_id": format!("PAT-{who}"), "project_id": "P001", "date": "2024-10-30", "time_slot": "09:00-10:00", "device_id": "DEV001"});
        engine.call_value_as(&p, "book-slot", &req.to_string()).unwrap();
    }
    let mut seen = Vec::new();
    for (resp, until) in streams.into_iter().zip(["PAT-C001", "PAT-C002", "PAT-C002"]) {
        seen.push(read_until(resp, until).await);
    }
    let (c001, c002, h001) = (&seen[0], &seen[1], &seen[2]);
    assert!(c002.contains("event: booking_made") && !c002.contains("PAT-C001"), "C002 is not pushed C001's booking: {c002}");
    assert!(h001.contains("PAT-C001"), "the slot's hospital (named in the event's data) is pushed both bookings: {h001}");
    assert!(!c001.contains("PAT-C002"), "{c001}");

    // next-events: C002 reads its own booking's events; an ack is refused and drops nothing.
    let (st, mine) = signed_post(&http, &base, "C002-HIS", secret_of("C002-HIS"), "next-events", r#"{"limit": 1000}"#).await;
    assert_eq!(st, 200, "{mine}");
    let text = mine.to_string();
    assert!(text.contains("PAT-C002") && !text.contains("PAT-C001"), "{text}");
    let all = engine.call_value("next-events", r#"{"limit": 1000}"#).unwrap();
    let ack = json!({"ack": all["last_seq"]}).to_string();
    let (st, refused) = signed_post(&http, &base, "C002-HIS", secret_of("C002-HIS"), "next-events", &ack).await;
    assert_eq!((st, refused["code"].as_str()), (403, Some("FORBIDDEN")), "{refused}");
    assert_eq!(engine.call_value("next-events", r#"{"limit": 1000}"#).unwrap()["events"], all["events"], "nothing was dropped");
    let _ = tx.send(());
    tokio::time::timeout(Duration::from_secs(20), task).await.expect("server stops").unwrap().unwrap();
}
