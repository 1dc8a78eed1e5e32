//! The platform client (yilian-core, feature `client`) against the real
//! sandbox on loopback: signatures, retries, version negotiation, timeouts
//! and the offline cache. The client is blocking, so every call runs on
//! `spawn_blocking` (reqwest's blocking client must not run on a runtime thread).

mod common;

use common::{catalog, CLOCK, PRE_BOOK, SYNC_SCHEDULE};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use yilian_core::client::sign::{new_nonce, sign, unix_now};
use yilian_core::client::{PlatformClient, PlatformConfig};
use yilian_core::{Engine, ErrorCode};
use yilian_sandbox::{router, serve, AppState, Auth, Options};

const APP: &str = "C001-HIS";
const SECRET: &str = "demo-secret-C001-at-least-32-bytes";
const HOSPITAL_APP: &str = "H001-HIS";
const HOSPITAL_SECRET: &str = "demo-secret-H001-at-least-32-bytes";

/// A sandbox with signatures required (keys: APP → SECRET).
struct Signed {
    base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl Signed {
    async fn start() -> Signed {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(CLOCK).unwrap();
        let opts = Options { upload_limit: 1 << 20, event_poll: Duration::from_millis(20) };
        // C001's HIS acts as community centre C001; H001's as the hospital.
        let keys = json!({APP: {"secret": SECRET, "role": "community", "institution_id": "C001"},
                          HOSPITAL_APP: {"secret": HOSPITAL_SECRET, "role": "hospital", "institution_id": "H001"}});
        let keys = yilian_sandbox::signature::parse_keys(&keys.to_string(), 300).unwrap();
        let st = AppState::with_auth(engine, opts, Auth::Signed(keys));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, st, async move {
            let _ = rx.await;
        }));
        Signed { base, stop: Some(tx), task: Some(task), _dir: dir }
    }

    async fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(20), t).await.expect("server stops").unwrap().unwrap();
        }
    }
}

fn platform(base: &str, extra: Value) -> Value {
    let mut v = json!({"base_url": base, "app_id": APP, "secret": SECRET, "timeout_ms": 5000, "retries": 2, "backoff_ms": 5, "max_backoff_ms": 20});
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

fn client(base: &str, extra: Value) -> Arc<PlatformClient> {
    let cfg = PlatformConfig::parse(&platform(base, extra)).unwrap();
    // Built off the runtime thread too: the blocking client starts its own.
    std::thread::spawn(move || Arc::new(PlatformClient::new(cfg).unwrap())).join().unwrap()
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// Drops a blocking client on a plain thread (never on the runtime).
fn drop_off_runtime<T: Send + 'static>(x: T) {
    std::thread::spawn(move || drop(x)).join().unwrap();
}

fn val(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

/// Publishes the source's catalogue and schedule through a signed client of
/// the hospital (a community centre may not publish a hospital's schedule).
async fn publish(base: &str) {
    let c = client(base, json!({"app_id": HOSPITAL_APP, "secret": HOSPITAL_SECRET}));
    let c2 = c.clone();
    blocking(move || {
        c2.call("sync-catalog", &val(&catalog())).expect("sync-catalog accepted");
        c2.sync_schedule(&val(SYNC_SCHEDULE)).expect("sync-schedule accepted");
    })
    .await;
    drop_off_runtime(c);
}

/// A raw signed request built by hand (to forge stale or replayed ones).
fn raw_signed(http: &reqwest::Client, base: &str, path: &str, body: &str, ts: i64, nonce: &str, secret: &str) -> reqwest::RequestBuilder {
    let s = sign(APP, secret, "POST", path, None, ts, nonce, body.as_bytes()).unwrap();
    let mut rb = http.post(format!("{base}{path}")).header("Content-Type", "application/json").body(body.to_string());
    for (k, v) in s.headers() {
        rb = rb.header(k, v);
    }
    rb
}

async fn status_code(r: reqwest::RequestBuilder) -> (u16, String) {
    let r = r.send().await.unwrap();
    let s = r.status().as_u16();
    let v: Value = r.json().await.expect("an envelope");
    (s, v["code"].as_str().unwrap_or("").to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_calls_are_accepted_and_bad_stale_replayed_ones_rejected() {
    let mut srv = Signed::start().await;
    let c = client(&srv.base, json!({}));
    publish(&srv.base).await;
    let c2 = c.clone();
    let (slots, booked) = blocking(move || {
        let slots = c2.real_time_slots("P001", "2024-10-30", Some("09:00-10:00")).unwrap();
        let req = serde_json::from_str(PRE_BOOK).unwrap();
        let booked = c2.pre_book_slot(&req).unwrap();
        (slots, booked)
    })
    .await;
    assert!(!slots.stale && slots.version == Some(1), "{slots:?}");
    assert_eq!(slots.data["available_slots"], 1, "{:?}", slots.data);
    assert_eq!(booked.data["status"], "pre-booked", "{:?}", booked.data);

    let http = reqwest::Client::new();
    let path = "/api/v1/real-time-slots";
    // Unsigned.
    let r = http.post(format!("{}{path}", srv.base)).header("Content-Type", "application/json").body("{}").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!((v["status"].as_str(), v["code"].as_str(), v["numeric_code"].as_i64()), (Some("error"), Some("SIGNATURE_MISSING"), Some(5301)));
    assert!(v["message_zh"].as_str().is_some_and(|m| !m.is_empty()));
    let q = r#"{"project_id":"P001","date":"2024-10-30"}"#;
    // Wrong secret.
    assert_eq!(status_code(raw_signed(&http, &srv.base, path, q, unix_now(), &new_nonce(), "not-the-secret")).await, (401, "SIGNATURE_INVALID".into()));
    // Body changed after signing.
    let s = sign(APP, SECRET, "POST", path, None, unix_now(), &new_nonce(), q.as_bytes()).unwrap();
    let mut rb = http.post(format!("{}{path}", srv.base)).header("Content-Type", "application/json").body(q.replace("P001", "P002"));
    for (k, v) in s.headers() {
        rb = rb.header(k, v);
    }
    assert_eq!(status_code(rb).await, (401, "SIGNATURE_INVALID".into()));
    // Stale: ten minutes old, outside the ±300 s window.
    assert_eq!(status_code(raw_signed(&http, &srv.base, path, q, unix_now() - 600, &new_nonce(), SECRET)).await, (401, "SIGNATURE_EXPIRED".into()));
    // Replayed: the same signed request twice.
    let nonce = new_nonce();
    let ts = unix_now();
    assert_eq!(status_code(raw_signed(&http, &srv.base, path, q, ts, &nonce, SECRET)).await.0, 200);
    assert_eq!(status_code(raw_signed(&http, &srv.base, path, q, ts, &nonce, SECRET)).await, (401, "NONCE_REPLAYED".into()));
    // The refused requests changed nothing: the one place is still held by the signed pre-booking only.
    let c3 = c.clone();
    let after = blocking(move || c3.booking_info("B001").unwrap()).await;
    assert_eq!(after.data["status"], "pre-booked");
    // A client with the wrong secret gets the server's code back.
    let bad = client(&srv.base, json!({"secret": "wrong-secret-of-at-least-32-bytes"}));
    let bad2 = bad.clone();
    let e = blocking(move || bad2.real_time_slots("P001", "2024-10-30", None).unwrap_err()).await;
    assert_eq!(e.code(), ErrorCode::SignatureInvalid, "{e}");
    // Health stays unsigned; metrics need a signature like /api.
    assert_eq!(http.get(format!("{}/healthz", srv.base)).send().await.unwrap().status().as_u16(), 200);
    assert_eq!(status_code(http.get(format!("{}/metrics", srv.base))).await, (401, "SIGNATURE_MISSING".into()));
    let s = sign(APP, SECRET, "GET", "/metrics", None, unix_now(), &new_nonce(), b"").unwrap();
    let mut rb = http.get(format!("{}/metrics", srv.base));
    for (k, v) in s.headers() {
        rb = rb.header(k, v);
    }
    let m = rb.send().await.unwrap();
    assert_eq!(m.status().as_u16(), 200);
    let text = m.text().await.unwrap();
    assert!(text.lines().any(|l| l.contains("interface=\"signature\"") && l.contains("SIGNATURE_EXPIRED")), "refusals are counted");
    drop_off_runtime((c, bad));
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_requests_work_without_keys() {
    let srv = common::Server::start(CLOCK, false).await;
    let (s, v) = srv.get("real-time-slots", &[("project_id", "P001"), ("date", "2024-10-30")]).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("success")), "{v}");
    let r = srv.client.get(srv.url("/api/versions")).send().await.unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"]["versions"], json!(["v1"]));
    srv.stop().await;
}

/// The sandbox behind a layer that answers 503 (as a load balancer does while
/// the platform restarts) to the next `budget` requests to `/api/v1/…`,
/// counting every request that reaches it.
struct Flaky {
    base: String,
    hits: Arc<AtomicUsize>,
    budget: Arc<AtomicUsize>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl Flaky {
    async fn start() -> Flaky {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(CLOCK).unwrap();
        let opts = Options { upload_limit: 1 << 20, event_poll: Duration::from_millis(20) };
        let st = AppState::new(engine, opts);
        let hits = Arc::new(AtomicUsize::new(0));
        let budget = Arc::new(AtomicUsize::new(0));
        let (h, b) = (hits.clone(), budget.clone());
        let app = router(st).layer(axum::middleware::from_fn(move |req: axum::extract::Request, next: axum::middleware::Next| {
            let (h, b) = (h.clone(), b.clone());
            async move {
                if req.uri().path().starts_with("/api/v1/") {
                    h.fetch_add(1, Ordering::SeqCst);
                    if b.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
                        return axum::response::IntoResponse::into_response((axum::http::StatusCode::SERVICE_UNAVAILABLE, "try later"));
                    }
                }
                next.run(req).await
            }
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await
        });
        Flaky { base, hits, budget, stop: Some(tx), _dir: dir }
    }

    /// Fails the next `n` requests; returns the hit count before them.
    fn fail_next(&self, n: usize) -> usize {
        self.budget.store(n, Ordering::SeqCst);
        self.hits.load(Ordering::SeqCst)
    }

    fn hits_since(&self, before: usize) -> usize {
        self.hits.load(Ordering::SeqCst) - before
    }
}

impl Drop for Flaky {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_calls_are_retried_and_changes_without_request_id_are_not() {
    let f = Flaky::start().await;
    let c = client(&f.base, json!({"retries": 2}));
    publish(&f.base).await;
    let slots = |c: Arc<PlatformClient>| async move { blocking(move || c.real_time_slots("P001", "2024-10-30", Some("09:00-10:00"))).await };

    // A query: two 503s, then the answer on the third attempt.
    let before = f.fail_next(2);
    let r = slots(c.clone()).await.expect("retried until it succeeded");
    assert!(!r.stale);
    assert_eq!(f.hits_since(before), 3);
    assert_eq!(r.data["available_slots"], 1);

    // A change without request_id: one 503, no retry, a clear upstream error,
    // and nothing booked.
    let before = f.fail_next(1);
    let c2 = c.clone();
    let e = blocking(move || c2.pre_book_slot(&serde_json::from_str(PRE_BOOK).unwrap()).unwrap_err()).await;
    assert_eq!(e.code(), ErrorCode::PlatformUnavailable, "{e}");
    assert!(e.message().contains("request_id"), "{e}");
    assert_eq!(f.hits_since(before), 1);
    assert_eq!(slots(c.clone()).await.unwrap().data["available_slots"], 1, "the refused change booked nothing");

    // The same change with a request_id is idempotent: retried, booked once.
    let before = f.fail_next(1);
    let c2 = c.clone();
    let booked = blocking(move || {
        let mut req: yilian_core::client::SlotRequest = serde_json::from_str(PRE_BOOK).unwrap();
        req.request_id = Some("his-req-0001".into());
        c2.pre_book_slot(&req)
    })
    .await
    .expect("retried after the 503");
    assert_eq!(f.hits_since(before), 2);
    assert_eq!(booked.data["status"], "pre-booked");
    assert_eq!(slots(c.clone()).await.unwrap().data["available_slots"], 0);

    // Retries are bounded: 1 + retries attempts, then a clear error.
    let before = f.fail_next(10);
    let c2 = c.clone();
    let e = blocking(move || c2.real_time_slots("P001", "2024-10-31", None).unwrap_err()).await;
    assert_eq!(e.code(), ErrorCode::PlatformUnavailable, "{e}");
    assert!(e.message().contains("after 3 attempts"), "{e}");
    assert_eq!(f.hits_since(before), 3);
    f.fail_next(0);
    drop_off_runtime(c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_negotiation_picks_a_common_version_or_refuses() {
    let mut srv = Signed::start().await;
    let both = client(&srv.base, json!({"versions": ["v1", "v2"]}));
    let only_v2 = client(&srv.base, json!({"versions": ["v2"]}));
    let (b, o) = (both.clone(), only_v2.clone());
    let (v, e, e2) = blocking(move || (b.negotiate(), o.negotiate(), o.real_time_slots("P001", "2024-10-30", None))).await;
    assert_eq!(v.unwrap(), 1, "the sandbox speaks v1 only");
    assert_eq!(both.negotiated_version(), Some(1));
    let e = e.unwrap_err();
    assert_eq!(e.code(), ErrorCode::NoCommonVersion);
    assert!(e.message().contains("[v1]") && e.message().contains("[v2]"), "{e}");
    assert_eq!(e2.unwrap_err().code(), ErrorCode::NoCommonVersion, "a call is refused too");
    drop_off_runtime((both, only_v2));
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_has_a_timeout() {
    // Accepts connections (the kernel's backlog) but never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", silent.local_addr().unwrap());
    let c = client(&base, json!({"timeout_ms": 300, "retries": 0}));
    let c2 = c.clone();
    let e = blocking(move || c2.real_time_slots("P001", "2024-10-30", None).unwrap_err()).await;
    assert_eq!(e.code(), ErrorCode::PlatformTimeout, "{e}");
    drop_off_runtime(c);
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_the_engine_serves_the_last_good_slots_marked_stale_and_refuses_changes() {
    let mut srv = Signed::start().await;
    publish(&srv.base).await;
    // A community engine, durable, with the platform configured.
    let local = tempfile::tempdir().unwrap();
    let cfg = json!({"data_dir": local.path().join("store"), "platform": platform(&srv.base, json!({"retries": 1}))}).to_string();
    let engine = Engine::open(&cfg).unwrap();
    let query = json!({"interface": "real-time-slots", "request": {"project_id": "P001", "date": "2024-10-30", "time_slot": "09:00-10:00"}}).to_string();
    let call = |e: &Engine, cmd: &'static str, req: String| {
        let e = e.clone();
        async move { blocking(move || e.call_value(cmd, &req)).await }
    };
    let fresh = call(&engine, "platform-call", query.clone()).await.unwrap();
    assert_eq!(fresh["stale"], false, "{fresh}");
    assert_eq!(fresh["version"], "v1");
    assert_eq!(fresh["data"]["available_slots"], 1, "{fresh}");
    let info = call(&engine, "platform-info", "{}".into()).await.unwrap();
    assert_eq!((info["negotiated"].as_str(), info["cached_entries"].as_u64()), (Some("v1"), Some(1)), "{info}");
    assert!(!info.to_string().contains(SECRET));

    // The platform goes away mid-test.
    srv.stop().await;
    let stale = call(&engine, "platform-call", query.clone()).await.unwrap();
    assert_eq!(stale["stale"], true, "{stale}");
    assert_eq!(stale["fetched_at"], fresh["fetched_at"]);
    assert_eq!(stale["data"], fresh["data"]);
    // A change fails with a clear upstream-unavailable code.
    let change = json!({"interface": "pre-book-slot", "request": serde_json::from_str::<Value>(PRE_BOOK).unwrap()}).to_string();
    let e = call(&engine, "platform-call", change).await.unwrap_err();
    assert_eq!((e.code(), e.numeric_code()), (ErrorCode::PlatformUnavailable, 7301), "{e}");
    // A query never answered before has nothing to serve.
    let other = json!({"interface": "real-time-slots", "request": {"project_id": "P001", "date": "2024-11-01"}}).to_string();
    let e = call(&engine, "platform-call", other).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::PlatformUnavailable, "{e}");
    assert!(e.message().contains("no cached answer"), "{e}");

    // The cache is durable: a reopened engine still serves it while offline.
    let e2 = engine.clone();
    blocking(move || {
        e2.close();
        drop(e2);
    })
    .await;
    drop_off_runtime(engine);
    let reopened = blocking(move || Engine::open(&cfg).unwrap()).await;
    let again = call(&reopened, "platform-call", query).await.unwrap();
    assert_eq!((again["stale"].as_bool(), &again["data"]), (Some(true), &fresh["data"]), "{again}");
    assert_eq!(again["fetched_at"], fresh["fetched_at"]);
    drop_off_runtime(reopened);
}
