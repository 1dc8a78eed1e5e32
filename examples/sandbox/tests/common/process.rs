//! The `yilian-sandbox` binary as a child process: started on a loopback
//! port of its own, its address read from its first line, killed on drop.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Proc {
    pub child: Child,
    pub base: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill(); // only if a test failed before its own stop
        let _ = self.child.wait();
    }
}

impl Proc {
    /// The address it listens on, `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// SIGKILL unless it is gone already, and the child reaped (its port
    /// and its store's locks are free).
    pub fn kill_and_reap(&mut self) {
        if self.child.try_wait().unwrap().is_none() {
            self.signal(libc::SIGKILL);
        }
        self.child.wait().unwrap();
    }

    /// Sends `sig` to the child (SIGKILL, SIGSTOP, SIGCONT, SIGTERM).
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, sig) }, 0);
    }
}

/// Starts the binary with `args`, listening on 127.0.0.1:0.
pub fn start(args: &[&str]) -> Proc {
    start_listening("127.0.0.1:0", args)
}

/// Starts the binary with `args`, listening on `listen` (a server restarted
/// on the port it had: `Proc::addr` of the first one).
pub fn start_listening(listen: &str, args: &[&str]) -> Proc {
    let mut child = Command::new(env!("CARGO_BIN_EXE_yilian-sandbox"))
        .args(["--listen", listen])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("binary starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().rsplit(' ').next().unwrap_or_default().to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "first line names the address: {line:?}");
    Proc { child, base }
}

/// SIGTERM, then waits (at most 20 s) for the exit.
pub fn sigterm_and_wait(p: &mut Proc) -> std::process::ExitStatus {
    p.signal(libc::SIGTERM);
    let t = Instant::now();
    loop {
        if let Some(st) = p.child.try_wait().unwrap() {
            return st;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "the server stops within 20 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub async fn post(c: &reqwest::Client, base: &str, cmd: &str, body: Value) -> (u16, Value) {
    let r = c.post(format!("{base}/api/v1/{cmd}")).json(&body).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// `/healthz`: status, whether Retry-After was set, and the body.
pub async fn health(c: &reqwest::Client, base: &str) -> (u16, bool, Value) {
    let r = c.get(format!("{base}/healthz")).send().await.unwrap();
    (r.status().as_u16(), r.headers().get("retry-after").is_some(), r.json::<Value>().await.unwrap())
}

/// Polls `/healthz` until it answers 200 as the leader with a lease epoch of
/// at least `epoch` (0: any); the time it took, and the answer.
pub async fn until_leader(c: &reqwest::Client, base: &str, epoch: u64, within: Duration) -> (Duration, Value) {
    let t = Instant::now();
    loop {
        // A server that is not up yet (or restarting its listener) is not leading.
        let answer = match c.get(format!("{base}/healthz")).send().await {
            Ok(r) => (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null)),
            Err(e) => (0, Value::String(e.to_string())),
        };
        let (st, h) = answer;
        if st == 200 && h["data"]["store"]["lease_epoch"].as_u64().unwrap_or(0) >= epoch {
            return (t.elapsed(), h);
        }
        assert!(t.elapsed() < within, "{base} leads within {within:?}: {h}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
