//! The network layer's limits (issue #16 items 1 and 9), on loopback, each
//! case bounded in time: signatures checked before the body, request
//! timeouts, rate limits, lockout, uniform refusals, HTTP-level envelopes and
//! the connection cap.

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};
use yilian_core::client::sign::{new_nonce, sign, unix_now};
use yilian_core::Engine;
use yilian_sandbox::net::{Lockout, NetOptions, RateLimit};
use yilian_sandbox::{serve_with, signature, AppState, Auth, Options};

const CLOCK: &str = r#"{"clock_start":"2024-10-29T09:00:00+08:00"}"#;
const APP: &str = "C001-HIS";
const SECRET: &str = "secret-of-C001-HIS-at-least-32-bytes";

struct Srv {
    addr: std::net::SocketAddr,
    state: Arc<AppState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Srv {
    async fn start(signed: bool, net: NetOptions) -> Srv {
        let engine = Engine::open(CLOCK).unwrap();
        let opts = Options { upload_limit: 16 << 20, event_poll: Duration::from_millis(20) };
        let state = if signed {
            let keys = json!({APP: {"secret": SECRET, "role": "community", "institution_id": "C001"}});
            AppState::with_auth(engine, opts, Auth::Signed(signature::parse_keys(&keys.to_string(), 300).unwrap()))
        } else {
            AppState::new(engine, opts)
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve_with(listener, state.clone(), net, async move {
            let _ = rx.await;
        }));
        Srv { addr, state, stop: Some(tx), task }
    }

    fn url(&self, p: &str) -> String {
        format!("http://{}{p}", self.addr)
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(20), self.task).await.expect("server stops").unwrap().unwrap();
    }
}

/// Network settings with the rate limit and lockout off unless a test sets them.
fn quiet() -> NetOptions {
    NetOptions {
        rate: RateLimit { per_sec: 0.0, burst: 1.0 },
        lockout: Lockout { failures: 0, window: Duration::from_secs(60), lock: Duration::from_secs(300) },
        ..NetOptions::default()
    }
}

/// Sends `head` and then `body_part` on a raw connection and reads what the
/// server answers within `within` (status, body text), off the runtime.
async fn raw_exchange(addr: std::net::SocketAddr, head: String, body_part: Vec<u8>, within: Duration) -> (u16, String, Duration) {
    tokio::task::spawn_blocking(move || {
        let t = Instant::now();
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(within)).unwrap();
        s.write_all(head.as_bytes()).unwrap();
        let _ = s.write_all(&body_part);
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&got);
                    if let Some(i) = text.find("\r\n\r\n") {
                        let len =
                            text[..i].lines().find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ").map(|v| v.trim().parse::<usize>().unwrap()));
                        if len.is_some_and(|n| got.len() >= i + 4 + n) {
                            break;
                        }
                    }
                }
                Err(_) => break,
            }
        }
        let elapsed = t.elapsed();
        let text = String::from_utf8_lossy(&got).into_owned();
        let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
        (status, body, elapsed)
    })
    .await
    .unwrap()
}

fn signed_headers(method: &str, path: &str, body: &[u8], secret: &str, app: &str) -> String {
    let s = sign(app, secret, method, path, None, unix_now(), &new_nonce(), body).unwrap();
    s.headers().iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsigned_15_mib_post_is_refused_while_only_a_small_part_of_its_body_was_sent() {
    let srv = Srv::start(true, quiet()).await;
    let head =
        format!("POST /api/v1/upload-report HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n", 15 * 1024 * 1024);
    // 4 KiB of the declared 15 MiB, then nothing more: the answer still comes.
    let (status, body, took) = raw_exchange(srv.addr, head, vec![b'x'; 4096], Duration::from_secs(10)).await;
    let v: Value = serde_json::from_str(&body).expect("an envelope");
    assert_eq!((status, v["code"].as_str()), (401, Some("SIGNATURE_MISSING")), "{body}");
    assert!(took < Duration::from_secs(8), "refused without waiting for the body ({took:?})");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_badly_signed_15_mib_post_with_a_declared_digest_is_refused_before_its_body() {
    let srv = Srv::start(true, quiet()).await;
    let big = vec![b'y'; 15 * 1024 * 1024];
    // Signed with the wrong secret over the body's real digest.
    let headers = signed_headers("POST", "/api/v1/upload-report", &big, "not-the-secret-not-the-secret-00000", APP);
    let head =
        format!("POST /api/v1/upload-report HTTP/1.1\r\nHost: x\r\n{headers}Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n", big.len());
    let (status, body, took) = raw_exchange(srv.addr, head, big[..4096].to_vec(), Duration::from_secs(10)).await;
    let v: Value = serde_json::from_str(&body).expect("an envelope");
    assert_eq!((status, v["code"].as_str()), (401, Some("SIGNATURE_INVALID")), "{body}");
    assert!(took < Duration::from_secs(8), "refused without waiting for the body ({took:?})");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_other_than_the_signed_one_is_refused_and_nothing_is_dispatched() {
    let srv = Srv::start(true, quiet()).await;
    let http = reqwest::Client::new();
    let catalog = r#"{"hospital_id":"H001","projects":[{"project_id":"P001","name":"CT"}]}"#;
    let other = r#"{"hospital_id":"H001","projects":[{"project_id":"P002","name":"MR"}]}"#;
    let s = sign(APP, SECRET, "POST", "/api/v1/sync-catalog", None, unix_now(), &new_nonce(), catalog.as_bytes()).unwrap();
    let mut rb = http.post(srv.url("/api/v1/sync-catalog")).header("Content-Type", "application/json").body(other);
    for (k, v) in s.headers() {
        rb = rb.header(k, v);
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap();
    assert_eq!((status, v["code"].as_str()), (401, Some("SIGNATURE_INVALID")), "{v}");
    assert!(v["message"].as_str().unwrap().contains("does not match its signed digest"), "{v}");
    // Nothing was dispatched: the command was never called.
    assert!(srv.state.metrics.render().contains("yilian_requests_total{interface=\"sync-catalog\"} 0\n"), "the mismatched body was not dispatched");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_digest_header_a_signed_request_works_and_its_body_is_bounded_by_the_json_limit() {
    let srv = Srv::start(true, quiet()).await;
    let http = reqwest::Client::new();
    let body = b"{}".to_vec();
    let s = sign(APP, SECRET, "POST", "/api/v1/engine-info", None, unix_now(), &new_nonce(), &body).unwrap();
    let mut rb = http.post(srv.url("/api/v1/engine-info")).header("Content-Type", "application/json").body(body);
    for (k, v) in s.headers().into_iter().filter(|(k, _)| *k != "X-YL-Content-SM3") {
        rb = rb.header(k, v);
    }
    let r = rb.send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "an older client without the header still works");
    // 2 MiB to the upload route without the header: its size alone is over
    // the 1 MiB the body may have while unproven, so the 413 comes from the
    // head (a raw connection: a client still writing would see the close).
    let big = vec![b'z'; 2 * 1024 * 1024];
    let headers: String = signed_headers("POST", "/api/v1/upload-report", &big, SECRET, APP)
        .lines()
        .filter(|l| !l.starts_with("X-YL-Content-SM3"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    let head =
        format!("POST /api/v1/upload-report HTTP/1.1\r\nHost: x\r\n{headers}Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n", big.len());
    let (status, body, _) = raw_exchange(srv.addr, head, big[..4096].to_vec(), Duration::from_secs(10)).await;
    let v: Value = serde_json::from_str(&body).expect("an envelope");
    assert_eq!((status, v["code"].as_str()), (413, Some("REQUEST_TOO_LARGE")), "{v}");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_body_is_cut_off_with_a_408_envelope() {
    let srv = Srv::start(false, NetOptions { request_timeout: Duration::from_secs(1), ..quiet() }).await;
    let addr = srv.addr;
    let (status, body, took) = tokio::task::spawn_blocking(move || {
        let t = Instant::now();
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        s.write_all(b"POST /api/v1/engine-info HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n").unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        // One byte every 100 ms: never the whole body.
        while t.elapsed() < Duration::from_secs(10) {
            if s.write_all(b" ").is_err() {
                break;
            }
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    if String::from_utf8_lossy(&got).contains("}") {
                        break;
                    }
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
        let text = String::from_utf8_lossy(&got).into_owned();
        (
            text.split(' ').nth(1).and_then(|c| c.parse::<u16>().ok()).unwrap_or(0),
            text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default(),
            t.elapsed(),
        )
    })
    .await
    .unwrap();
    let v: Value = serde_json::from_str(&body).expect("an envelope");
    assert_eq!((status, v["code"].as_str()), (408, Some("REQUEST_TIMEOUT")), "{body}");
    assert!(took < Duration::from_secs(8), "cut off near the 1 s limit ({took:?})");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_unsigned_body_is_refused_at_once() {
    let srv = Srv::start(true, quiet()).await;
    let head = "POST /api/v1/book-slot HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n".to_string();
    let (status, body, took) = raw_exchange(srv.addr, head, b"{".to_vec(), Duration::from_secs(10)).await;
    assert_eq!(status, 401, "{body}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_over_its_rate_gets_429_with_retry_after_and_health_stays_open() {
    let srv = Srv::start(false, NetOptions { rate: RateLimit { per_sec: 0.2, burst: 3.0 }, ..quiet() }).await;
    let http = reqwest::Client::new();
    for _ in 0..3 {
        assert_eq!(http.get(srv.url("/api/versions")).send().await.unwrap().status().as_u16(), 200);
    }
    let r = http.get(srv.url("/api/versions")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 429);
    let wait: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=5).contains(&wait), "{wait}");
    let v: Value = r.json().await.unwrap();
    assert_eq!((v["status"].as_str(), v["code"].as_str()), (Some("error"), Some("RATE_LIMITED")), "{v}");
    assert!(v["message_zh"].as_str().is_some_and(|m| !m.is_empty()));
    assert_eq!(http.get(srv.url("/healthz")).send().await.unwrap().status().as_u16(), 200, "health probes are not rate limited");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_signature_failures_lock_the_client_out_even_for_a_good_signature() {
    let srv =
        Srv::start(true, NetOptions { lockout: Lockout { failures: 3, window: Duration::from_secs(60), lock: Duration::from_secs(300) }, ..quiet() }).await;
    let http = reqwest::Client::new();
    let get = |secret: &'static str| {
        let s = sign(APP, secret, "GET", "/api/versions", None, unix_now(), &new_nonce(), b"").unwrap();
        let mut rb = http.get(srv.url("/api/versions"));
        for (k, v) in s.headers() {
            rb = rb.header(k, v);
        }
        rb
    };
    assert_eq!(get(SECRET).send().await.unwrap().status().as_u16(), 200);
    for _ in 0..3 {
        assert_eq!(get("a-wrong-secret-a-wrong-secret-000000").send().await.unwrap().status().as_u16(), 401);
    }
    let r = get(SECRET).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 429);
    let wait: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(wait > 200 && wait <= 300, "{wait}");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "CLIENT_LOCKED_OUT", "{v}");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_app_id_is_answered_exactly_like_a_bad_signature() {
    let srv = Srv::start(true, quiet()).await;
    let http = reqwest::Client::new();
    let mut answers = Vec::new();
    for (app, secret) in [("NO-SUCH-APP", SECRET), (APP, "a-wrong-secret-a-wrong-secret-000000")] {
        let s = sign(app, secret, "GET", "/api/versions", None, unix_now(), &new_nonce(), b"").unwrap();
        let mut rb = http.get(srv.url("/api/versions"));
        for (k, v) in s.headers() {
            rb = rb.header(k, v);
        }
        let r = rb.send().await.unwrap();
        answers.push((r.status().as_u16(), r.text().await.unwrap()));
    }
    assert_eq!(answers[0], answers[1]);
    assert!(answers[0].1.contains("SIGNATURE_INVALID") && !answers[0].1.contains("NO-SUCH-APP"), "{answers:?}");
    // A stale request: the window is stated, not how far off the clock is.
    let s = sign(APP, SECRET, "GET", "/api/versions", None, unix_now() - 4321, &new_nonce(), b"").unwrap();
    let mut rb = http.get(srv.url("/api/versions"));
    for (k, v) in s.headers() {
        rb = rb.header(k, v);
    }
    let text = rb.send().await.unwrap().text().await.unwrap();
    assert!(text.contains("SIGNATURE_EXPIRED") && text.contains("300") && !text.contains("432"), "{text}");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_the_event_stream_need_a_signature_and_health_reveals_no_key_count() {
    let srv = Srv::start(true, quiet()).await;
    let http = reqwest::Client::new();
    for p in ["/metrics", "/api/v1/events/stream"] {
        let r = http.get(srv.url(p)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401, "{p}");
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "SIGNATURE_MISSING", "{p}");
    }
    let h: Value = http.get(srv.url("/healthz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(h["data"]["auth"]["mode"], "signed");
    assert!(h["data"]["auth"].get("app_ids").is_none(), "{h}");
    assert_eq!(h["data"]["transport"]["tls"], false, "{h}");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_too_long_uri_and_too_large_headers_get_the_json_envelope() {
    let srv = Srv::start(false, quiet()).await;
    let http = reqwest::Client::new();
    let r = http.get(srv.url(&format!("/api/v1/real-time-slots?x={}", "a".repeat(10_000)))).send().await.unwrap();
    let status = r.status().as_u16();
    let v: Value = r.json().await.expect("an envelope");
    assert_eq!((status, v["code"].as_str()), (414, Some("URI_TOO_LONG")), "{v}");
    let r = http.get(srv.url("/api/versions")).header("X-Padding", "b".repeat(40_000)).send().await.unwrap();
    let status = r.status().as_u16();
    let v: Value = r.json().await.expect("an envelope");
    assert_eq!((status, v["code"].as_str()), (431, Some("HEADERS_TOO_LARGE")), "{v}");
    let r = http.get(srv.url("/no/such/thing")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "error");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_past_the_cap_do_not_keep_health_probes_out() {
    let srv = Srv::start(false, NetOptions { max_connections: 4, health_reserve: 2, header_timeout: Duration::from_secs(30), ..quiet() }).await;
    // Ten idle sockets: four take every slot, two the health reserve, the rest are turned away.
    let idle: Vec<TcpStream> = (0..10).map(|_| TcpStream::connect(srv.addr).unwrap()).collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let t = Instant::now();
    let mut healthy = false;
    while t.elapsed() < Duration::from_secs(15) {
        if let Ok(r) = http.get(srv.url("/healthz")).send().await {
            if r.status().as_u16() == 200 {
                healthy = true;
                break;
            }
            let v: Value = r.json().await.expect("a busy answer is an envelope too");
            assert_eq!(v["status"], "error");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(healthy, "/healthz answered within {:?} while the slots were held", t.elapsed());
    // Anything but /healthz on an over-the-cap connection: 503 with the envelope.
    let r = http.get(srv.url("/api/versions")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "CONNECTION_LIMIT");
    drop(idle);
    srv.stop().await;
}

/// The binary with a low open-file limit: its default cap stays under it, so
/// more idle sockets than the cap leave `accept` working and health answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_low_file_limit_idle_sockets_beyond_the_cap_leave_health_answering() {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_yilian-sandbox"));
    cmd.args(["--listen", "127.0.0.1:0", "--memory", "--header-timeout", "3"]).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::null());
    // SAFETY: setrlimit is async-signal-safe; it only lowers the child's own limit.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit { rlim_cur: 96, rlim_max: 96 };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().rsplit(' ').next().unwrap().to_string();
    let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    // 120 idle sockets: more than the cap (48) and than the whole file limit.
    let idle: Vec<TcpStream> = (0..120).filter_map(|_| TcpStream::connect(addr).ok()).collect();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(3)).build().unwrap();
    let t = Instant::now();
    let mut healthy = false;
    while t.elapsed() < Duration::from_secs(20) {
        if let Ok(r) = http.get(format!("{base}/healthz")).send().await {
            if r.status().as_u16() == 200 {
                healthy = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let took = t.elapsed();
    drop(idle);
    let _ = child.kill();
    let _ = child.wait();
    assert!(healthy, "/healthz never answered ({took:?})");
}

/// Reads until the server closes the connection (`Ok(bytes)`) or `within` passes (`Err`).
fn read_until_closed(s: &mut TcpStream, within: Duration) -> Result<Vec<u8>, Vec<u8>> {
    let t = Instant::now();
    s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while t.elapsed() < within {
        match s.read(&mut buf) {
            Ok(0) => return Ok(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return Ok(got),
        }
    }
    Err(got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_and_an_idle_keep_alive_one_are_closed_after_the_header_timeout() {
    let srv = Srv::start(false, NetOptions { header_timeout: Duration::from_secs(1), ..quiet() }).await;
    let addr = srv.addr;
    tokio::task::spawn_blocking(move || {
        // Connects and sends nothing.
        let mut silent = TcpStream::connect(addr).unwrap();
        let t = Instant::now();
        assert!(read_until_closed(&mut silent, Duration::from_secs(8)).is_ok(), "a silent connection is closed");
        assert!(t.elapsed() >= Duration::from_millis(900), "not before the timeout ({:?})", t.elapsed());
        // Half a request head, never finished.
        let mut slow = TcpStream::connect(addr).unwrap();
        slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").unwrap();
        assert!(read_until_closed(&mut slow, Duration::from_secs(8)).is_ok(), "an unfinished head is cut off");
        // One whole request answered, then idle on keep-alive.
        let mut idle = TcpStream::connect(addr).unwrap();
        idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let got = read_until_closed(&mut idle, Duration::from_secs(8)).expect("the idle keep-alive connection is closed");
        assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"), "the request itself was answered");
    })
    .await
    .unwrap();
    srv.stop().await;
}

/// The status and JSON body of one answer read off a raw connection the server then closes.
fn answer_then_close(s: &mut TcpStream) -> (u16, Value, String) {
    let got = read_until_closed(s, Duration::from_secs(8)).expect("the server closes the connection");
    let text = String::from_utf8_lossy(&got).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no whole head in {text:?}"));
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("not an envelope ({e}): {text:?}"));
    (status, v, head.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heads_hyper_cannot_parse_are_answered_with_the_envelope_even_after_an_earlier_answer() {
    let srv = Srv::start(false, quiet()).await;
    let addr = srv.addr;
    tokio::task::spawn_blocking(move || {
        let cases: [(&[u8], u16, &str); 4] = [
            (b"GARBAGE\x01 / HTTP/1.1\r\n\r\n", 400, "MALFORMED_REQUEST"),
            (b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header Name: 1\r\n\r\n", 400, "MALFORMED_REQUEST"),
            (b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n", 400, "MALFORMED_REQUEST"),
            (b"", 431, "HEADERS_TOO_LARGE"),
        ];
        for (raw, want_status, want_code) in cases {
            let mut s = TcpStream::connect(addr).unwrap();
            if raw.is_empty() {
                // A head past hyper's 64 KiB read buffer, never finished.
                s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").unwrap();
                let line = format!("X-Pad: {}\r\n", "p".repeat(1000));
                for _ in 0..70 {
                    if s.write_all(line.as_bytes()).is_err() {
                        break;
                    }
                }
            } else {
                s.write_all(raw).unwrap();
            }
            let (status, v, head) = answer_then_close(&mut s);
            assert_eq!((status, v["code"].as_str()), (want_status, Some(want_code)), "{v}");
            assert!(head.to_ascii_lowercase().contains("connection: close"), "{head}");
            assert!(v["message_zh"].as_str().is_some_and(|m| !m.is_empty() && !m.is_ascii()), "{v}");
        }
        // A good request answered first on the same connection (keep-alive), then garbage.
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut first = Vec::new();
        let mut buf = [0u8; 4096];
        s.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
        while !String::from_utf8_lossy(&first).contains("\"status\"") || !first.ends_with(b"}") {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "closed before the first answer");
            first.extend_from_slice(&buf[..n]);
        }
        assert!(first.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&first));
        s.write_all(b"NOT HTTP AT ALL\r\n\r\n").unwrap();
        let (status, v, _) = answer_then_close(&mut s);
        assert_eq!((status, v["code"].as_str()), (400, Some("MALFORMED_REQUEST")), "{v}");
    })
    .await
    .unwrap();
    srv.stop().await;
}
