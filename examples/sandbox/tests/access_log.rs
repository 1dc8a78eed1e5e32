//! The access log (`--access-log`, issue #16 item 8): one Combined Log
//! Format line per request, the app id as the user, never a query string or
//! a body; reopened on SIGHUP so logrotate can move it away.

use std::io::BufRead;
use std::time::{Duration, Instant};
use yilian_core::client::sign::{new_nonce, sign, unix_now};

const ID_NUMBER: &str = "11010519491231002X";
const SECRET: &str = "secret-of-C001-HIS-at-least-32-bytes";

struct Proc {
    child: std::process::Child,
    base: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(args: &[&str]) -> Proc {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_yilian-sandbox"))
        .args(["--listen", "127.0.0.1:0", "--memory"])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().rsplit(' ').next().unwrap().to_string();
    Proc { child, base }
}

/// Waits (bounded) until `path` holds a line containing `needle`.
fn wait_for_line(path: &std::path::Path, needle: &str) -> String {
    let t = Instant::now();
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if let Some(l) = text.lines().find(|l| l.contains(needle)) {
            return l.to_string();
        }
        assert!(t.elapsed() < Duration::from_secs(10), "no line with {needle:?} in {}: {text}", path.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_appears_in_the_access_log_with_its_app_id_and_without_its_query() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let keys = dir.path().join("keys.json");
    std::fs::write(&keys, serde_json::json!({"C001-HIS": {"secret": SECRET, "role": "community", "institution_id": "C001"}}).to_string()).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let p = start(&["--keys", keys.to_str().unwrap(), "--access-log", log.to_str().unwrap()]);
    let http = reqwest::Client::new();
    // A query holding an ID number, signed: the path is logged, the query is not.
    let query = format!("id_number={ID_NUMBER}&date=2024-10-30");
    let s = sign("C001-HIS", SECRET, "GET", "/api/v1/real-time-slots", Some(&query), unix_now(), &new_nonce(), b"").unwrap();
    let mut rb = http
        .get(format!("{}/api/v1/real-time-slots?{query}", p.base))
        .header("User-Agent", "his-test/1.0")
        .header("Referer", format!("https://his.example/p?id={ID_NUMBER}"));
    for (k, v) in s.headers() {
        rb = rb.header(k, v);
    }
    let status = rb.send().await.unwrap().status().as_u16();
    let line = wait_for_line(&log, "/api/v1/real-time-slots");
    // 127.0.0.1 - C001-HIS [05/Dec/2026:14:03:07 +0000] "GET /api/v1/real-time-slots?… HTTP/1.1" 400 123 "https://his.example/p?…" "his-test/1.0"
    assert!(line.starts_with("127.0.0.1 - C001-HIS ["), "{line}");
    assert!(line.contains(&format!("\"GET /api/v1/real-time-slots?… HTTP/1.1\" {status} ")), "{line}");
    assert!(line.ends_with("\"https://his.example/p?…\" \"his-test/1.0\""), "{line}");
    // An unsigned request: no verified app id.
    http.get(format!("{}/api/versions", p.base)).send().await.unwrap();
    let line = wait_for_line(&log, "/api/versions");
    assert!(line.starts_with("127.0.0.1 - - [") && line.contains("\" 401 "), "{line}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains(ID_NUMBER) && !text.contains("2024-10-30"), "no query string reaches the log: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_log_is_reopened_on_sighup_after_a_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let p = start(&["--access-log", log.to_str().unwrap()]);
    let http = reqwest::Client::new();
    http.get(format!("{}/healthz?probe=1", p.base)).send().await.unwrap();
    wait_for_line(&log, "/healthz?…");
    // logrotate: move the file away, then SIGHUP.
    let rotated = dir.path().join("access.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(p.child.id() as i32, libc::SIGHUP) }, 0);
    let t = Instant::now();
    while !log.exists() {
        assert!(t.elapsed() < Duration::from_secs(10), "the log is reopened under its name");
        std::thread::sleep(Duration::from_millis(20));
    }
    http.get(format!("{}/api/versions", p.base)).send().await.unwrap();
    wait_for_line(&log, "/api/versions");
    assert!(!std::fs::read_to_string(&rotated).unwrap().contains("/api/versions"), "new lines go to the new file");
    assert!(p.child.id() > 0, "the server kept running through SIGHUP");
    assert_eq!(http.get(format!("{}/healthz", p.base)).send().await.unwrap().status().as_u16(), 200);
}
