//! #16 item 4: a report document is personal data. With `--keys` it is
//! served only on a signed request (`GET /api/v1/reports/<document_id>`)
//! to a principal that may read its booking (the engine's rule for
//! `exam-report-document`); the old unsigned link is gone (410); on disk
//! the file has an opaque name and, with an `encryption_key`, sealed
//! content: neither the patient's name, ID number nor the PDF's bytes.

use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;
use yilian_core::client::sign::{new_nonce, sign, unix_now};
use yilian_core::{Engine, Principal, Role};
use yilian_sandbox::{serve, AppState, Auth, Options};

const NAME: &str = "张三";
const ID_NUMBER: &str = "110101199001011234";
const KEYS: &[(&str, &str, &str, &str)] = &[
    ("C001-HIS", "secret-of-C001-HIS-at-least-32-bytes", "community", "C001"),
    ("C002-HIS", "secret-of-C002-HIS-at-least-32-bytes", "community", "C002"),
    ("H001-HIS", "secret-of-H001-HIS-at-least-32-bytes", "hospital", "H001"),
];

fn pdf() -> Vec<u8> {
    format!("%PDF-1.4\n% CT chest report\n% patient {NAME} {ID_NUMBER}\n%%EOF\n").into_bytes()
}

struct Signed {
    base: String,
    engine: Engine,
    dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Signed {
    async fn start() -> Signed {
        let dir = tempfile::tempdir().unwrap();
        let cfg = json!({"clock_start": "2024-10-29T09:00:00+08:00", "clock": "manual", "data_dir": dir.path().join("store"),
            "report_dir": dir.path().join("reports"), "encryption_key": "0123456789abcdeffedcba9876543210", "durable_sync": "normal"});
        let engine = Engine::open(&cfg.to_string()).unwrap();
        let mut keys = serde_json::Map::new();
        for (app, secret, role, inst) in KEYS {
            keys.insert(app.to_string(), json!({"secret": secret, "role": role, "institution_id": inst}));
        }
        let keys = yilian_sandbox::signature::parse_keys(&Value::Object(keys).to_string(), 300).unwrap();
        let opts = Options { upload_limit: 1 << 20, event_poll: Duration::from_millis(20) };
        let st = AppState::with_auth(engine.clone(), opts, Auth::Signed(keys));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, st, async move {
            let _ = rx.await;
        }));
        Signed { base, engine, dir, stop: Some(tx), task: Some(task) }
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(20), t).await.expect("server stops").unwrap().unwrap();
        }
    }

    /// A GET signed as `app` (None: unsigned): status and body bytes.
    async fn get(&self, app: Option<&str>, path: &str) -> (u16, Vec<u8>) {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        let mut rb = http.get(format!("{}{path}", self.base));
        if let Some(app) = app {
            let secret = KEYS.iter().find(|k| k.0 == app).unwrap().1;
            let s = sign(app, secret, "GET", path, None, unix_now(), &new_nonce(), b"").unwrap();
            for (k, v) in s.headers() {
                rb = rb.header(k, v);
            }
        }
        let r = rb.send().await.unwrap();
        (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
    }
}

fn ok(e: &Engine, p: &Principal, cmd: &str, req: Value) -> Value {
    e.call_value_as(p, cmd, &req.to_string()).unwrap_or_else(|err| panic!("{cmd}: {err:?}"))
}

/// A booking of C001's patient on H001's device, and H001's report for it
/// named after the patient (as hospitals name them): ED000001.
fn upload(e: &Engine) -> Value {
    let platform = Principal::platform();
    let file: Value = serde_json::from_str(include_str!("../../../tests/vectors/31_exam_booking.json")).unwrap();
    for st in file["cases"][0]["steps"].as_array().unwrap().iter().take(2) {
        ok(e, &platform, st["command"].as_str().unwrap(), st["request"].clone());
    }
    let c001 = Principal::new(Role::Community, Some("C001"), None).unwrap();
    ok(e, &c001, "book-slot", json!({"patient_id": ID_NUMBER, "project_id": "P001", "date": "2024-10-30", "time_slot": "09:00-10:00", "device_id": "DEV001"}));
    use base64::Engine as _;
    let h001 = Principal::new(Role::Hospital, Some("H001"), None).unwrap();
    ok(
        e,
        &h001,
        "upload-report",
        json!({"booking_id": "B000001", "content_base64": base64::engine::general_purpose::STANDARD.encode(pdf()),
            "file_name": format!("{NAME}_{ID_NUMBER}_CT报告.pdf")}),
    )
}

/// Every file under `dir`: (path relative to it, content).
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.strip_prefix(dir).unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_is_served_only_signed_and_only_to_the_parties_of_its_booking() {
    let s = Signed::start().await;
    let e = s.engine.clone();
    let up = tokio::task::spawn_blocking(move || upload(&e)).await.unwrap();
    assert_eq!(up["document_id"], "ED000001", "{up}");
    let path = "/api/v1/reports/ED000001";

    // Unsigned: refused before anything is read.
    let (st, body) = s.get(None, path).await;
    assert_eq!(st, 401, "{}", String::from_utf8_lossy(&body));
    assert!(!contains(&body, b"%PDF"));
    // Another institution, signed: refused, no bytes.
    let (st, body) = s.get(Some("C002-HIS"), path).await;
    assert!(st == 403 || st == 404, "{st} {}", String::from_utf8_lossy(&body));
    assert!(!contains(&body, b"%PDF") && !contains(&body, ID_NUMBER.as_bytes()));
    // The booking's community centre and hospital, signed: the document.
    for app in ["C001-HIS", "H001-HIS"] {
        let (st, body) = s.get(Some(app), path).await;
        assert_eq!((st, body.clone()), (200, pdf()), "{app}: {}", String::from_utf8_lossy(&body));
    }
    // The old link names the booking and the file name: gone, whoever asks.
    let (st, body) = s.get(None, &format!("/reports/B000001/1-{NAME}_{ID_NUMBER}_CT报告.pdf")).await;
    assert_eq!(st, 410);
    let v: Value = serde_json::from_slice(&body).expect("an error envelope");
    assert_eq!(v["status"], "error", "{v}");
    assert!(!contains(&body, b"%PDF"));

    // On disk: an opaque name, sealed content.
    let on_disk = files(&s.dir.path().join("reports"));
    assert_eq!(on_disk.len(), 1, "{:?}", on_disk.iter().map(|f| &f.0).collect::<Vec<_>>());
    let (name, content) = &on_disk[0];
    for leak in ["B000001", "B001", NAME, ID_NUMBER, "CT报告", ".pdf"] {
        assert!(!name.contains(leak), "{name} names {leak}");
    }
    assert!(!contains(content, NAME.as_bytes()) && !contains(content, ID_NUMBER.as_bytes()), "the file holds the patient");
    assert!(!contains(content, b"%PDF") && !contains(content, &pdf()[..24]), "the file holds the plain document");
    // Nor does the rest of the data directory name the patient in the clear.
    for (n, c) in files(&s.dir.path().join("store")).iter().filter(|(n, _)| n.contains("sqlite3")) {
        assert!(!contains(c, ID_NUMBER.as_bytes()) && !contains(c, NAME.as_bytes()), "{n}");
    }
    s.stop().await;
}
