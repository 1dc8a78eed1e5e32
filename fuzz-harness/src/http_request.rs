//! The sandbox's request handling: the axum `Router` of `yilian_sandbox`
//! driven in-process (`tower::ServiceExt::oneshot`, a current-thread tokio
//! runtime) with an arbitrary method, path, query string, headers and body.
//! Paths and bodies are drawn from the routes, the engine's commands and the
//! vectors' requests, or are raw bytes.
//!
//! Checked: never a 5xx; every answer but the plain-text and streaming
//! routes (`/metrics`, `/api/v1/events/stream`, `/reports/…`) is a JSON
//! envelope, and so is every error.
use crate::{assert_envelope, Step, Steps, ENGINE_CONFIG};
use arbitrary::{Arbitrary, Result as AResult, Unstructured};
use axum::body::Body;
use axum::http::{Method, Request};
use http_body_util::BodyExt;
use serde_json::Value;
use std::sync::OnceLock;
use std::time::Duration;
use tower::ServiceExt;
use yilian_core::Engine;
use yilian_sandbox::{router, AppState, Options, ADMISSION_KEYS, SLOT_KEYS};

const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"];
const FIXED_PATHS: &[&str] = &[
    "/healthz",
    "/metrics",
    "/api/versions",
    "/api/v1/upload-report",
    "/api/appointment-slots",
    "/api/acceptance-info",
    "/api/admission-details",
    "/reports/B000001/x.pdf",
    "/",
    "/api",
    "/api/v1/",
    "/api/v1//x",
    "/api/v1/%E4%B8%AD",
];
const CONTENT_TYPES: &[&str] = &[
    "application/json",
    "application/json; charset=utf-8",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=X",
    "multipart/form-data",
    "application/json; charset=gbk",
    "",
];

#[derive(Debug)]
pub struct Input {
    method: String,
    path: String,
    query: Option<String>,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    /// Requests made before this one (a booking to look up, a slot to fill).
    setup: Vec<Step>,
}

fn bytes_of(u: &mut Unstructured<'_>, max: usize) -> AResult<Vec<u8>> {
    let n = (u.arbitrary::<u16>()? as usize).min(max).min(u.len());
    Ok(u.bytes(n)?.to_vec())
}

impl<'a> Arbitrary<'a> for Input {
    fn arbitrary(u: &mut Unstructured<'a>) -> AResult<Self> {
        let m = u.arbitrary::<u8>()?;
        let method = if m < 250 { METHODS[m as usize % METHODS.len()].to_string() } else { String::from_utf8_lossy(&bytes_of(u, 16)?).into_owned() };
        // The command and request of a vector-like step give the usual shape.
        let step = {
            let mut one = Unstructured::new(u.bytes(u.len().min(3))?);
            Steps::arbitrary(&mut one).ok().and_then(|s| s.0.first().map(Step::resolve))
        };
        let (cmd, req) = step.map(|(_, c, r)| (c, r)).unwrap_or_else(|| ("engine-info".into(), "{}".into()));
        let p = u.arbitrary::<u8>()? % 8;
        let path = match p {
            0..=3 => format!("/api/v1/{cmd}"),
            4 => FIXED_PATHS[u.arbitrary::<u8>()? as usize % FIXED_PATHS.len()].to_string(),
            5 => format!("/api/v1/{cmd}/{}", String::from_utf8_lossy(&bytes_of(u, 32)?)),
            _ => String::from_utf8_lossy(&bytes_of(u, 256)?).into_owned(),
        };
        let query = match u.arbitrary::<u8>()? % 4 {
            0 => None,
            1 => {
                // The request's fields as a query string (how GET queries arrive).
                let v: serde_json::Value = serde_json::from_str(&req).unwrap_or_default();
                let q: Vec<String> = v
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| match v {
                        serde_json::Value::String(s) => format!("{k}={s}"),
                        other => format!("{k}={other}"),
                    })
                    .collect();
                Some(q.join("&"))
            }
            _ => Some(String::from_utf8_lossy(&bytes_of(u, 512)?).into_owned()),
        };
        let mut headers = Vec::new();
        let ct = u.arbitrary::<u8>()?;
        if ct < 240 {
            headers.push(("content-type".to_string(), CONTENT_TYPES[ct as usize % CONTENT_TYPES.len()].as_bytes().to_vec()));
        }
        for _ in 0..u.arbitrary::<u8>()? % 4 {
            let name = [
                "content-type",
                "content-length",
                "x-request-id",
                "accept",
                "x-app-id",
                "x-signature",
                "x-timestamp",
                "x-nonce",
                "transfer-encoding",
                "content-encoding",
            ];
            let n = name[u.arbitrary::<u8>()? as usize % name.len()].to_string();
            headers.push((n, bytes_of(u, 64)?));
        }
        let body = match u.arbitrary::<u8>()? % 4 {
            0 => Vec::new(),
            1 | 2 => req.into_bytes(),
            _ => bytes_of(u, 4096)?,
        };
        let mut setup = Vec::new();
        while !u.is_empty() && setup.len() < 8 {
            let mut one = Unstructured::new(u.bytes(u.len().min(3))?);
            if let Ok(s) = Steps::arbitrary(&mut one) {
                setup.extend(s.0.into_iter().take(1));
            }
        }
        Ok(Input { method, path, query, headers, body, setup })
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime"))
}

pub fn run(input: &Input) {
    let Ok(method) = Method::from_bytes(input.method.as_bytes()) else { return };
    let uri = match &input.query {
        Some(q) => format!("{}?{q}", input.path),
        None => input.path.clone(),
    };
    let mut req = Request::builder().method(method).uri(uri.as_str());
    for (k, v) in &input.headers {
        req = req.header(k.as_str(), v.as_slice());
    }
    // What the HTTP parser would have refused never reaches the router.
    let Ok(req) = req.body(Body::from(input.body.clone())) else { return };

    let engine = Engine::open(ENGINE_CONFIG).expect("the fuzz config opens");
    for step in &input.setup {
        let (p, c, r) = step.resolve();
        match p {
            Some(p) => engine.call_as_json(&p, &c, &r),
            None => engine.call(&c, &r),
        };
    }
    let st = AppState::new(engine.clone(), Options { upload_limit: 1 << 20, event_poll: Duration::from_millis(50) });
    let app = router(st);
    runtime().block_on(async move {
        let resp = tokio::time::timeout(Duration::from_secs(10), app.oneshot(req)).await.expect("answered within 10 s").expect("infallible");
        let status = resp.status();
        assert!(!status.is_server_error(), "{} {uri}: status {status}", input.method);
        let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        if ct.starts_with("text/event-stream") {
            // The event stream never ends: its head is what there is to check.
            return;
        }
        let body = tokio::time::timeout(Duration::from_secs(10), resp.into_body().collect()).await.expect("body within 10 s").expect("body").to_bytes();
        let plain = input.path.starts_with("/metrics") || input.path.starts_with("/reports/") || input.method == "HEAD";
        if !plain || !status.is_success() {
            if input.method == "HEAD" && body.is_empty() {
                return;
            }
            let text = std::str::from_utf8(&body).unwrap_or_else(|_| panic!("{} {uri}: status {status}, body not UTF-8", input.method));
            let what = format!("{} {uri} ({status})", input.method);
            match source_shape(&input.path) {
                // The source's own interfaces answer success in the source's
                // shapes (README: a bare array, a bare object, a top-level
                // message); their errors are envelopes like every other.
                Some(shape) if status.is_success() => assert_source_shape(shape, text, &what),
                _ => {
                    assert_envelope(text, &what);
                }
            }
        }
    });
    engine.close();
}

/// The routes that answer success in the source's own shapes, not the envelope.
#[derive(Clone, Copy, Debug)]
enum Shape {
    Slots,
    Admission,
    Message,
}

fn source_shape(path: &str) -> Option<Shape> {
    match path.split('?').next().unwrap_or(path) {
        "/api/appointment-slots" => Some(Shape::Slots),
        "/api/admission-details" => Some(Shape::Admission),
        "/api/acceptance-info" => Some(Shape::Message),
        _ => None,
    }
}

/// A success in the source's shape: exactly the source's keys.
fn assert_source_shape(shape: Shape, text: &str, what: &str) {
    let v: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{what}: answer is not JSON ({e}): {text}"));
    let keys_are = |o: &Value, keys: &[&str]| o.as_object().is_some_and(|m| m.len() == keys.len() && keys.iter().all(|k| m.contains_key(*k)));
    match shape {
        Shape::Slots => {
            let slots = v.as_array().unwrap_or_else(|| panic!("{what}: not a bare array: {text}"));
            assert!(slots.iter().all(|s| keys_are(s, SLOT_KEYS)), "{what}: a slot without exactly the source's keys: {text}");
        }
        Shape::Admission => assert!(keys_are(&v, ADMISSION_KEYS), "{what}: not the source's admission object: {text}"),
        Shape::Message => {
            assert_eq!(v["status"], "success", "{what}: {text}");
            assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: no message: {text}");
        }
    }
}

#[cfg(test)]
mod tests {
    /// Found by the first hour of `cargo fuzz` (2026-12-06): a `POST
    /// /api/appointment-slots` answered 200 with `[]`, the source's bare
    /// array, which the harness took for a missing envelope.
    #[test]
    fn a_source_shaped_success_is_checked_as_the_source_s_shape_not_as_an_envelope() {
        let bytes = include_bytes!("../regressions/http_request-appointment-slots-bare-array");
        crate::run_bytes(bytes, super::run);
    }
}
