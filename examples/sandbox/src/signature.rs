//! Request signatures (I2) on the sandbox: with keys configured (`--keys
//! FILE`), every `/api/…` request must carry a valid HMAC-SM3 signature
//! (`yilian_core::client::sign`, the form in docs/client.md); bad, stale and
//! replayed ones get 401 with the engine's error envelope. `/healthz`,
//! `/metrics` and `/reports/…` stay unsigned. Timestamps are checked against
//! this server's wall clock (not the engine clock, which a config may set to
//! replay a past day).

use crate::{failure, AppState, JSON_BODY_LIMIT};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;
use std::time::{Duration, Instant};
use yilian_core::client::sign::{unix_now, Verifier};
use yilian_core::{Error, ErrorCode};

/// The versions of the interfaces this server speaks, advertised at `GET /api/versions`.
pub const VERSIONS: &[&str] = &["v1"];

/// Loads `--keys FILE`: a JSON object of app id → secret.
pub fn load_keys(path: &std::path::Path, window_secs: i64) -> Result<Verifier, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let keys = Verifier::parse_keys(&text).map_err(|e| format!("{}: {}", path.display(), e.message()))?;
    Ok(Verifier::new(keys, window_secs))
}

fn needs_signature(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}

/// The middleware: passes the request on, its body intact, once it verifies.
pub async fn check(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let Some(verifier) = st.verifier.as_ref() else {
        return next.run(req).await;
    };
    if !needs_signature(req.uri().path()) {
        return next.run(req).await;
    }
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    // The body is part of what is signed, so it is read here, bounded by the
    // largest body any route takes.
    let limit = JSON_BODY_LIMIT.max(st.opts.upload_limit);
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            let e = Error::with(ErrorCode::RequestTooLarge, format!("request body exceeds the limit of {limit} bytes"), format!("请求体超过上限 {limit} 字节"));
            st.metrics.record("signature", started.elapsed(), Some(e.code()));
            return failure(&e, None);
        }
    };
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    match verifier.verify(parts.method.as_str(), parts.uri.path(), parts.uri.query(), &header, &bytes, unix_now()) {
        Ok(_app_id) => next.run(Request::from_parts(parts, Body::from(bytes))).await,
        Err(e) => {
            st.metrics.record("signature", started.elapsed().max(Duration::ZERO), Some(e.code()));
            failure(&e, Some(StatusCode::UNAUTHORIZED))
        }
    }
}
