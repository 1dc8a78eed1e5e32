//! The `yilian-sandbox` binary itself: flags, --demo, SIGTERM with an open
//! SSE stream, a restart on the same data directory that finds the
//! acknowledged bookings and reports still there, and `--keys` (request
//! signatures on /api only).

mod common;

use common::process::{health, post, sigterm_and_wait, start, until_leader};
use serde_json::{json, Value};
use std::process::Command;
use std::time::Duration;
use yilian_core::client::sign::{new_nonce, sign, unix_now};

const SH: &str = "secret-of-H001-HIS-at-least-32-bytes";
const SA: &str = "secret-of-C001-HIS-at-least-32-bytes";
const SB: &str = "secret-of-C002-HIS-at-least-32-bytes";

/// A keys file only its owner may read (the server refuses any other).
fn write_keys(path: &std::path::Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_sigterm_and_restart_keep_everything() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    demo_sigterm_and_restart(&dir, &["--data-dir", data.to_str().unwrap()]).await;
}

/// The same on the PostgreSQL store (`--store`, reports in the database);
/// then a second server on that database stands by while the first leads,
/// and takes over when the first is killed (#17 item 2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_sigterm_and_restart_keep_everything_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let spec = tokio::task::spawn_blocking(yilian_tests::store::fresh_postgres).await.unwrap();
    let conninfo = spec.strip_prefix("postgres:").unwrap().to_string();
    demo_sigterm_and_restart(&dir, &["--store", &conninfo]).await;
    let cfg = dir.path().join("config.json");
    a_standby_takes_over_from_a_killed_leader(&conninfo, cfg.to_str().unwrap()).await;
}

async fn a_standby_takes_over_from_a_killed_leader(conninfo: &str, cfg: &str) {
    let c = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let leader = start(&["--store", conninfo, "--config", cfg]);
    let standby = start(&["--store", conninfo, "--config", cfg]);
    let (st, _, h) = health(&c, &leader.base).await;
    assert_eq!((st, &h["data"]["store"]["role"]), (200, &json!("leader")), "{h}");
    let epoch = h["data"]["store"]["lease_epoch"].as_u64().unwrap();
    let (st, retry, h) = health(&c, &standby.base).await;
    assert_eq!((st, retry, &h["role"], &h["code"]), (503, true, &json!("standby"), &json!("NOT_LEADER")), "{h}");
    // A change sent to the standby is refused, not lost: 503 with Retry-After.
    let r = c.post(format!("{}/api/v1/engine-info", standby.base)).json(&json!({})).send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string())), (503, Some("1".into())));
    let booking = json!({"patient_id": "PAT009", "project_id": "P001", "date": "2024-10-31", "time_slot": "09:00-10:00",
                         "device_id": "DEV001", "clinic_id": "C001", "request_id": "failover-1"});
    let (st, b) = post(&c, &leader.base, "book-slot", booking.clone()).await;
    assert_eq!(st, 200, "{b}");
    let id = b["data"]["booking_id"].as_str().unwrap().to_string();
    // A correctly signed request to a standby is the server's refusal, not
    // the client's: 503 NOT_LEADER, not 401, and never a lockout (3 failures).
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    write_keys(&keys, &json!({"C001-HIS": {"secret": SA, "role": "community", "institution_id": "C001"}}).to_string());
    let signed_leader = start(&["--store", conninfo, "--config", cfg, "--keys", keys.to_str().unwrap(), "--lockout-failures", "3"]);
    for _ in 0..5 {
        let (st, v) = signed(&c, &signed_leader.base, "C001-HIS", SA, "engine-info", &json!({})).await;
        assert_eq!((st, v["code"].as_str()), (503, Some("NOT_LEADER")), "{v}");
    }
    drop(signed_leader);

    leader.signal(libc::SIGKILL); // no release of the lease
    let (took, h) = until_leader(&c, &standby.base, epoch + 1, Duration::from_secs(15)).await;
    assert_eq!(h["data"]["store"]["lease_epoch"], json!(epoch + 1), "{h}");
    println!("takeover after SIGKILL: {took:?}");
    // The acknowledged booking is there, and its request id still answers it.
    let (st, again) = post(&c, &standby.base, "book-slot", booking).await;
    assert_eq!((st, again["data"]["booking_id"].as_str()), (200, Some(id.as_str())), "{again}");
    let (st, info) = post(&c, &standby.base, "booking-info", json!({"booking_id": id})).await;
    assert_eq!((st, &info["data"]["status"]), (200, &json!("booked")), "{info}");
}

async fn demo_sigterm_and_restart(dir: &tempfile::TempDir, store: &[&str]) {
    let cfg = dir.path().join("config.json");
    std::fs::write(&cfg, r#"{"clock_start":"2024-10-29T09:00:00+08:00"}"#).unwrap();
    let mut args = store.to_vec();
    args.extend(["--config", cfg.to_str().unwrap(), "--demo"]);
    let c = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();

    let mut p = start(&args);
    let h: Value = c.get(format!("{}/healthz", p.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(h["data"]["status"], "ok");
    // The demo network: a week from the engine's today (2024-10-29 here).
    let q: Value =
        c.get(format!("{}/api/v1/real-time-slots?project_id=P001&date=2024-10-30&time_slot=09:00-10:00", p.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(q["data"]["available_slots"], 2, "{q}");
    let docs: Value =
        c.get(format!("{}/api/appointment-slots?hospital_id=H001&doctor_id=DR003&date=2024-11-05", p.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(docs.as_array().map(Vec::len), Some(2), "{docs}"); // the source's bare array
    let (st, b) = post(
        &c,
        &p.base,
        "book-slot",
        json!({"patient_id": "PAT001", "project_id": "P001", "date": "2024-10-30", "time_slot": "09:00-10:00", "device_id": "DEV001", "clinic_id": "C001"}),
    )
    .await;
    assert_eq!(st, 200, "{b}");
    let form = reqwest::multipart::Form::new()
        .text("booking_id", "B000001")
        .part("file", reqwest::multipart::Part::bytes(vec![0xffu8, 0xd8, 0xff, 0xe0, 1, 2, 3]).file_name("胸片.jpg"));
    let up: Value = c.post(format!("{}/api/v1/upload-report", p.base)).multipart(form).send().await.unwrap().json().await.unwrap();
    let url = up["data"]["report_url"].as_str().expect("report_url").to_string();

    // An open SSE stream must not keep the server from stopping.
    let sse = c.get(format!("{}/api/v1/events/stream", p.base)).send().await.unwrap();
    assert_eq!(sse.status().as_u16(), 200);
    let st = tokio::task::spawn_blocking(move || {
        let st = sigterm_and_wait(&mut p);
        (st, p)
    })
    .await
    .unwrap();
    assert!(st.0.success(), "clean exit on SIGTERM: {:?}", st.0);
    drop(sse);

    // Restart on the same store (the lock was released): nothing lost.
    let p = start(&args);
    let (st, info) = post(&c, &p.base, "booking-info", json!({"booking_id": "B001"})).await;
    assert_eq!((st, info["data"]["status"].as_str()), (200, Some("booked")), "{info}");
    let url = url.replace(&url[..url.find("/api/v1/reports/").unwrap()], &p.base);
    let r = c.get(&url).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    assert_eq!(r.bytes().await.unwrap().to_vec(), vec![0xffu8, 0xd8, 0xff, 0xe0, 1, 2, 3]);
    // --demo on restart re-publishes the schedule without touching bookings.
    let q: Value =
        c.get(format!("{}/api/v1/real-time-slots?project_id=P001&date=2024-10-30&time_slot=09:00-10:00", p.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(q["data"]["available_slots"], 1, "{q}");
}

#[test]
fn bad_flags_and_busy_store_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.json");
    std::fs::write(&cfg, r#"{"no_such_key": 1}"#).unwrap();
    let out =
        Command::new(env!("CARGO_BIN_EXE_yilian-sandbox")).args(["--memory", "--config", cfg.to_str().unwrap(), "--listen", "127.0.0.1:0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("INVALID_CONFIG"), "{}", String::from_utf8_lossy(&out.stderr));
    // A second server on a store in use is refused (STORE_LOCKED), the first keeps serving.
    let data = dir.path().join("d");
    let _first = start(&["--data-dir", data.to_str().unwrap()]);
    let out = Command::new(env!("CARGO_BIN_EXE_yilian-sandbox")).args(["--data-dir", data.to_str().unwrap(), "--listen", "127.0.0.1:0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("STORE_LOCKED"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_flag_requires_signatures_on_api_only() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    write_keys(&keys, r#"{"C001-HIS": {"secret": "demo-secret-C001-at-least-32-bytes", "role": "community", "institution_id": "C001"}}"#);
    let p = start(&["--memory", "--keys", keys.to_str().unwrap(), "--signature-window", "60"]);
    let base = &p.base;
    let http = reqwest::Client::new();
    let r = http.get(format!("{base}/api/versions")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "SIGNATURE_MISSING");
    assert_eq!(http.get(format!("{base}/healthz")).send().await.unwrap().status().as_u16(), 200);
    // Signed, within the 60 s window: accepted.
    let s = sign("C001-HIS", "demo-secret-C001-at-least-32-bytes", "GET", "/api/versions", None, unix_now(), &new_nonce(), b"").unwrap();
    let mut rb = http.get(format!("{base}/api/versions"));
    for (k, v) in s.headers() {
        rb = rb.header(k, v);
    }
    let v: Value = rb.send().await.unwrap().json().await.unwrap();
    assert_eq!(v["data"]["versions"], serde_json::json!(["v1"]), "{v}");
    // 90 s old: outside the window given on the command line.
    let s = sign("C001-HIS", "demo-secret-C001-at-least-32-bytes", "GET", "/api/versions", None, unix_now() - 90, &new_nonce(), b"").unwrap();
    let mut rb = http.get(format!("{base}/api/versions"));
    for (k, v) in s.headers() {
        rb = rb.header(k, v);
    }
    let r = rb.send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "SIGNATURE_EXPIRED");
}

#[test]
fn a_bad_keys_file_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    // An empty secret, a bare secret without an identity (it would let the
    // signer claim any institution), an identity that names no institution.
    for (body, says) in [
        (r#"{"C001-HIS": {"secret": "", "role": "community", "institution_id": "C001"}}"#, "at least 32 bytes"),
        (r#"{"C001-HIS": {"secret": "thirty-one-bytes-is-too-short!!", "role": "community", "institution_id": "C001"}}"#, "at least 32 bytes"),
        (r#"{"C001-HIS": "demo-secret-C001-at-least-32-bytes"}"#, "not a bare secret"),
        (r#"{"C001-HIS": {"secret": "a-secret-of-at-least-thirty-two-bytes", "role": "community"}}"#, "must name its institution"),
    ] {
        write_keys(&keys, body);
        let out = Command::new(env!("CARGO_BIN_EXE_yilian-sandbox"))
            .args(["--listen", "127.0.0.1:0", "--memory", "--keys", keys.to_str().unwrap()])
            .output()
            .expect("binary runs");
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{err}");
        assert!(out.stdout.is_empty(), "it never listened");
    }
}

#[test]
fn a_keys_file_others_can_read_stops_the_start() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    write_keys(&keys, r#"{"C001-HIS": {"secret": "demo-secret-C001-at-least-32-bytes", "role": "community", "institution_id": "C001"}}"#);
    for mode in [0o644, 0o640, 0o604, 0o660] {
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(mode)).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_yilian-sandbox"))
            .args(["--listen", "127.0.0.1:0", "--memory", "--keys", keys.to_str().unwrap()])
            .output()
            .expect("binary runs");
        assert_eq!(out.status.code(), Some(2), "mode {mode:o}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("readable or writable by group or others") && err.contains("chmod 600"), "{err}");
        assert!(out.stdout.is_empty(), "it never listened");
    }
}

/// A signed request from `app`.
async fn signed(http: &reqwest::Client, base: &str, app: &str, secret: &str, cmd: &str, body: &Value) -> (u16, Value) {
    let path = format!("/api/v1/{cmd}");
    let text = body.to_string();
    let s = sign(app, secret, "POST", &path, None, unix_now(), &new_nonce(), text.as_bytes()).unwrap();
    let mut rb = http.post(format!("{base}{path}")).header("Content-Type", "application/json").body(text);
    for (k, v) in s.headers() {
        rb = rb.header(k, v);
    }
    let r = rb.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// With `--keys`, the verified app id is the principal: centre B's signed
/// client can neither claim to be A nor touch A's booking, and nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_client_acts_only_as_its_own_institution() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    write_keys(
        &keys,
        &serde_json::json!({
            "H001-HIS": {"secret": SH, "role": "hospital", "institution_id": "H001"},
            "C001-HIS": {"secret": SA, "role": "community", "institution_id": "C001"},
            "C002-HIS": {"secret": SB, "role": "community", "institution_id": "C002"},
        })
        .to_string(),
    );
    let p = start(&["--memory", "--demo", "--keys", keys.to_str().unwrap()]);
    let (base, http) = (&p.base, reqwest::Client::new());
    let health: Value = http.get(format!("{base}/healthz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["data"]["auth"]["mode"], "signed", "{health}");
    let date = chrono::Utc::now().with_timezone(&chrono_tz::Asia::Shanghai).date_naive().succ_opt().unwrap().to_string();
    let book = serde_json::json!({"patient_id": "PAT001", "project_id": "P001", "date": date, "time_slot": "09:00-10:00", "device_id": "DEV001"});
    // B claiming to be A in the body: 403, nothing booked.
    let mut claim = book.clone();
    claim["clinic_id"] = "C001".into();
    let (st, v) = signed(&http, base, "C002-HIS", SB, "pre-book-slot", &claim).await;
    assert_eq!((st, v["code"].as_str()), (403, Some("FORBIDDEN")), "{v}");
    let (st, v) = signed(&http, base, "C001-HIS", SA, "pre-book-slot", &book).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["data"]["clinic_id"], "C001");
    let id = v["data"]["booking_id"].as_str().unwrap().to_string();
    for body in [serde_json::json!({"booking_id": id}), serde_json::json!({"booking_id": id, "institution_id": "C002"})] {
        let (st, v) = signed(&http, base, "C002-HIS", SB, "cancel-slot", &body).await;
        assert_eq!(st, 403, "{v}");
        let (st, _) = signed(&http, base, "C002-HIS", SB, "booking-info", &serde_json::json!({"booking_id": id})).await;
        assert_eq!(st, 403);
    }
    // A community centre may not publish a hospital's schedule; the hospital may see the booking.
    let (st, v) = signed(&http, base, "C002-HIS", SB, "stop-service", &serde_json::json!({"device_id": "DEV001", "stop_date": date})).await;
    assert_eq!((st, v["code"].as_str()), (403, Some("FORBIDDEN")), "{v}");
    let (st, v) = signed(&http, base, "H001-HIS", SH, "booking-info", &serde_json::json!({"booking_id": id})).await;
    assert_eq!((st, v["data"]["status"].as_str()), (200, Some("pre-booked")), "{v}");
    let (st, v) = signed(&http, base, "C001-HIS", SA, "cancel-slot", &serde_json::json!({"booking_id": id})).await;
    assert_eq!((st, v["data"]["status"].as_str()), (200, Some("cancelled")), "{v}");
}

/// Without `--keys` the server says loudly who every request acts as.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_keys_every_request_is_the_one_stated_principal() {
    let p = start(&["--memory", "--principal", "community:C001"]);
    let http = reqwest::Client::new();
    let health: Value = http.get(format!("{}/healthz", p.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["data"]["auth"]["mode"], "trusted");
    assert_eq!(health["data"]["auth"]["principal"]["institution_id"], "C001");
    assert!(health["data"]["auth"]["warning"].as_str().unwrap().contains("community C001"));
    let (st, v) = post(&http, &p.base, "cancel-slot", serde_json::json!({"booking_id": "B000001", "clinic_id": "C002"})).await;
    assert_eq!((st, v["code"].as_str()), (403, Some("FORBIDDEN")), "{v}");
    let out = Command::new(env!("CARGO_BIN_EXE_yilian-sandbox")).args(["--memory", "--principal", "community"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
