//! `yilian-sandbox --keys FILE`: the flag itself, on the real binary.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use yilian_core::client::sign::{new_nonce, sign, unix_now};

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(args: &[&str]) -> (Proc, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_yilian-sandbox"))
        .args(["--listen", "127.0.0.1:0", "--memory"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("binary starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().rsplit(' ').next().unwrap_or_default().to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "{line:?}");
    (Proc(child), base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_flag_requires_signatures_on_api_only() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    std::fs::write(&keys, r#"{"C001-HIS": "demo-secret-C001"}"#).unwrap();
    let (_p, base) = start(&["--keys", keys.to_str().unwrap(), "--signature-window", "60"]);
    let http = reqwest::Client::new();
    let r = http.get(format!("{base}/api/versions")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "SIGNATURE_MISSING");
    assert_eq!(http.get(format!("{base}/healthz")).send().await.unwrap().status().as_u16(), 200);
    // Signed, within the 60 s window: accepted.
    let s = sign("C001-HIS", "demo-secret-C001", "GET", "/api/versions", None, unix_now(), &new_nonce(), b"").unwrap();
    let mut rb = http.get(format!("{base}/api/versions"));
    for (k, v) in s.headers() {
        rb = rb.header(k, v);
    }
    let v: Value = rb.send().await.unwrap().json().await.unwrap();
    assert_eq!(v["data"]["versions"], serde_json::json!(["v1"]), "{v}");
    // 90 s old: outside the window given on the command line.
    let s = sign("C001-HIS", "demo-secret-C001", "GET", "/api/versions", None, unix_now() - 90, &new_nonce(), b"").unwrap();
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
    std::fs::write(&keys, r#"{"C001-HIS": ""}"#).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_yilian-sandbox"))
        .args(["--listen", "127.0.0.1:0", "--memory", "--keys", keys.to_str().unwrap()])
        .output()
        .expect("binary runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("non-empty"), "{err}");
    assert!(out.stdout.is_empty(), "it never listened");
}
