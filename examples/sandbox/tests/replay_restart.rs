//! Replay protection across restarts (issue #16 item 2, the verifier side):
//! a signed request accepted once is refused as a replay after the server
//! restarts on the same store, within the signature window.
//! Without the durable nonce table (`Engine::claim_nonce`) the restarted
//! server would have forgotten the nonce and booked again.

use serde_json::json;
use std::time::Duration;
use yilian_core::client::sign::{new_nonce, sign, unix_now};
use yilian_core::Engine;
use yilian_sandbox::{serve, signature, AppState, Auth, Options};

const APP: &str = "C001-HIS";
const SECRET: &str = "secret-of-C001-HIS-at-least-32-bytes";

async fn run_once(store: &std::path::Path, headers: &[(&'static str, String)]) -> (u16, serde_json::Value) {
    let engine = Engine::open(&json!({"data_dir": store, "clock_start": "2024-10-29T09:00:00+08:00"}).to_string()).unwrap();
    let keys = json!({APP: {"secret": SECRET, "role": "community", "institution_id": "C001"}});
    let st = AppState::with_auth(
        engine,
        Options { upload_limit: 1 << 20, event_poll: Duration::from_millis(20) },
        Auth::Signed(signature::parse_keys(&keys.to_string(), 300).unwrap()),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, st, async move {
        let _ = rx.await;
    }));
    let mut rb = reqwest::Client::new().get(format!("{base}/api/versions"));
    for (k, v) in headers {
        rb = rb.header(*k, v);
    }
    let r = rb.send().await.unwrap();
    let out = (r.status().as_u16(), r.json().await.unwrap());
    let _ = tx.send(());
    tokio::time::timeout(Duration::from_secs(20), task).await.expect("server stops").unwrap().unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_nonce_is_refused_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let s = sign(APP, SECRET, "GET", "/api/versions", None, unix_now(), &new_nonce(), b"").unwrap();
    let headers = s.headers();
    let (first, v) = run_once(&store, &headers).await;
    assert_eq!(first, 200, "{v}");
    // Same request, same nonce, a new server process on the same store.
    let (again, v) = run_once(&store, &headers).await;
    assert_eq!((again, v["code"].as_str()), (401, Some("NONCE_REPLAYED")), "{v}");
}
