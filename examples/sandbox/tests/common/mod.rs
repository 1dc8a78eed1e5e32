//! A sandbox server on a loopback port of its own (127.0.0.1:0), in-process,
//! reached over real HTTP with reqwest.
#![allow(dead_code)] // each test file uses a different part

use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use yilian_core::Engine;
use yilian_sandbox::{serve, AppState, Options};

pub const CLOCK: &str = r#"{"clock_start":"2024-10-29T09:00:00+08:00"}"#;

pub struct Server {
    pub base: String,
    pub state: Arc<AppState>,
    pub client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    pub dir: tempfile::TempDir,
}

impl Server {
    /// `config` is the engine config; `durable` puts the store in the temp dir.
    pub async fn start(config: &str, durable: bool) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg: Value = serde_json::from_str(config).unwrap();
        if durable {
            cfg["data_dir"] = dir.path().join("store").to_string_lossy().into_owned().into();
        }
        let engine = Engine::open(&cfg.to_string()).expect("engine opens");
        let opts = Options { upload_limit: 2 * 1024 * 1024, event_poll: Duration::from_millis(20) };
        let state = AppState::new(engine, opts);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, state.clone(), async move {
            let _ = rx.await;
        }));
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        Server { base, state, client, stop: Some(tx), task: Some(task), dir }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// POST a JSON body to `/api/v1/<cmd>`: (HTTP status, envelope).
    pub async fn post(&self, cmd: &str, body: &str) -> (u16, Value) {
        let r = self.client.post(self.url(&format!("/api/v1/{cmd}"))).header("Content-Type", "application/json").body(body.to_string()).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.expect("every answer is a JSON envelope"))
    }

    /// GET `/api/v1/<cmd>?<query>`.
    pub async fn get(&self, cmd: &str, query: &[(&str, &str)]) -> (u16, Value) {
        let r = self.client.get(self.url(&format!("/api/v1/{cmd}"))).query(query).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.expect("every answer is a JSON envelope"))
    }

    /// POST that must succeed; returns `data`.
    pub async fn ok(&self, cmd: &str, body: &str) -> Value {
        let (s, v) = self.post(cmd, body).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("success")), "{cmd}: {v}");
        v["data"].clone()
    }

    /// Starts the graceful stop without waiting for it.
    pub fn begin_stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }

    /// Graceful stop: in-flight requests finish, then the engine closes.
    /// Returns the temporary directory (store and reports) for a reopen.
    pub async fn stop(mut self) -> tempfile::TempDir {
        self.begin_stop();
        let task = self.task.take().unwrap();
        tokio::time::timeout(Duration::from_secs(20), task).await.expect("server stops within 20 s").unwrap().unwrap();
        assert!(self.state.seat.engine().is_err(), "the engine is taken out and closed");
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
    }
}

/// An error envelope with this code and HTTP status.
pub fn assert_error(got: &(u16, Value), status: u16, code: &str) {
    let (s, v) = got;
    assert_eq!(*s, status, "{v}");
    assert_eq!(v["status"], "error", "{v}");
    assert_eq!(v["code"], code, "{v}");
    assert!(v["numeric_code"].as_i64().is_some() && v["message"].is_string() && v["message_zh"].is_string(), "{v}");
}

// The source's example requests, verbatim.
pub const SYNC_SCHEDULE: &str = r#"{"hospital_id": "H001", "schedule_data": [{"device_id": "DEV001", "date": "2024-10-30", "available_slots": [{"start_time": "09:00", "end_time": "10:00"}, {"start_time": "14:00", "end_time": "15:00"}]}]}"#;
pub const PRE_BOOK: &str =
    r#"{"patient_id": "PAT001", "project_id": "P001", "date": "2024-10-30", "time_slot": "09:00-10:00", "device_id": "DEV001", "clinic_id": "C001"}"#;
pub const SUBMIT_BOOKING: &str = PRE_BOOK; // 预约申请接口 has the same fields
pub const BOOK_SLOT: &str = r#"{"project_id": "P001", "date": "2024-10-30", "time_slot": "09:00-10:00", "patient_id": "PAT001", "device_id": "DEV001"}"#;
pub const PAY: &str = r#"{"booking_id": "B001", "payment_status": "paid"}"#;
pub const CANCEL: &str = r#"{"booking_id": "B001"}"#;
pub const STOP_SERVICE: &str = r#"{"device_id": "DEV001", "project_id": "P001", "stop_date": "2024-10-30"}"#;
pub const REAL_TIME_SLOTS: &[(&str, &str)] = &[("project_id", "P001"), ("date", "2024-10-30"), ("time_slot", "09:00-10:00")];

/// The catalogue of the source's project-info and device-info examples,
/// published by the hospital so project queries resolve.
pub fn catalog() -> String {
    json!({"hospital_id": "H001", "name": "昆山市中西医结合医院",
        "projects": [
            {"project_id": "P001", "project_name": "CT扫描", "department_id": "D001", "department_name": "放射科", "cost": 500, "estimated_duration": "30分钟"},
            {"project_id": "P002", "project_name": "血液检查", "department_id": "D002", "department_name": "检验科", "cost": 200, "estimated_duration": "15分钟"}],
        "devices": [
            {"device_id": "DEV001", "device_name": "CT扫描仪A", "project_id": "P001", "status": "available"},
            {"device_id": "DEV002", "device_name": "血液分析仪A", "project_id": "P002", "status": "maintenance"}]})
    .to_string()
}
pub mod process;
