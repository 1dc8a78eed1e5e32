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
            let e = &state.engine;
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
