//! The tool end to end: keys from the environment or standard input, never argv.

use std::io::Write;
use std::process::{Command, Stdio};

const OLD: &str = "0123456789abcdeffedcba9876543210";
const NEW: &str = "8f1c2e4a6b0d9e7f5a3c1b2d4e6f8091";

fn store(dir: &std::path::Path, key: &str) -> String {
    serde_json::json!({"data_dir": dir, "encryption_key": key}).to_string()
}

#[test]
fn the_tool_rekeys_a_stopped_store_with_keys_from_stdin_or_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let e = yilian_core::Engine::open(&store(dir.path(), OLD)).unwrap();
    assert!(e.claim_nonce("APP", "n-1", e.now_ms() / 1000, 600).unwrap());
    e.close();
    let bin = env!("CARGO_BIN_EXE_yilian-rekey");
    let mut child = Command::new(bin).arg(dir.path()).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    write!(child.stdin.take().unwrap(), "{OLD}\n{NEW}\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("rekeyed"));
    // The old key no longer opens it; the new one does, with what it held.
    assert!(yilian_core::Engine::open(&store(dir.path(), OLD)).is_err());
    let e = yilian_core::Engine::open(&store(dir.path(), NEW)).unwrap();
    assert!(!e.claim_nonce("APP", "n-1", e.now_ms() / 1000, 600).unwrap());
    e.close();
    // Back again through the environment; a wrong key is refused with status 1.
    let wrong = Command::new(bin).arg(dir.path()).env("YILIAN_OLD_KEY", OLD).env("YILIAN_NEW_KEY", NEW).output().unwrap();
    assert_eq!(wrong.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("INVALID_CONFIG"));
    let back = Command::new(bin).arg(dir.path()).env("YILIAN_OLD_KEY", NEW).env("YILIAN_NEW_KEY", OLD).output().unwrap();
    assert!(back.status.success());
    yilian_core::Engine::open(&store(dir.path(), OLD)).unwrap().close();
    assert_eq!(Command::new(bin).output().unwrap().status.code(), Some(2), "usage");
}
