//! Request signatures (I2) on the sandbox: with keys configured (`--keys
//! FILE`), every `/api/…` request must carry a valid HMAC-SM3 signature
//! (`yilian_core::client::sign`, the form in docs/client.md); bad, stale and
//! replayed ones get 401 with the engine's error envelope. `/healthz`,
//! `/metrics` and `/reports/…` stay unsigned. Timestamps are checked against
//! this server's wall clock (not the engine clock, which a config may set to
//! replay a past day).

use crate::{failure, AppState, Auth, JSON_BODY_LIMIT};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use yilian_core::client::sign::{unix_now, Verifier};
use yilian_core::Principal;
use yilian_core::{Error, ErrorCode};

/// The versions of the interfaces this server speaks, advertised at `GET /api/versions`.
pub const VERSIONS: &[&str] = &["v1"];

/// The verified callers: the signature checker and, for each app id, the
/// principal it acts as.
pub struct Keys {
    pub verifier: Verifier,
    pub principals: HashMap<String, Principal>,
}

/// Parses a keys file: a JSON object of app id → `{"secret": …, "role": …,
/// "institution_id": …}` (the role and institution the app acts as; see
/// `yilian_core::Principal`). An app id without an identity is refused: a
/// signature proves who signed, and that signer must be someone.
pub fn parse_keys(text: &str, window_secs: i64) -> Result<Keys, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let obj = v.as_object().ok_or("must be a JSON object of app id → {secret, role, institution_id}")?;
    let mut secrets = HashMap::new();
    let mut principals = HashMap::new();
    for (app, entry) in obj {
        if app.is_empty() {
            return Err("an app id must not be empty".into());
        }
        let Some(e) = entry.as_object() else {
            return Err(format!(
                "app id `{app}`: expected {{\"secret\": …, \"role\": …, \"institution_id\": …}} (the institution and role it acts as), not a bare secret"
            ));
        };
        let secret =
            e.get("secret").and_then(|s| s.as_str()).filter(|s| !s.is_empty()).ok_or_else(|| format!("app id `{app}`: `secret` must be a non-empty string"))?;
        let mut who = e.clone();
        who.remove("secret");
        let p = Principal::from_value(&serde_json::Value::Object(who)).map_err(|err| format!("app id `{app}`: {}", err.message()))?;
        secrets.insert(app.clone(), secret.to_string());
        principals.insert(app.clone(), p);
    }
    if secrets.is_empty() {
        return Err("no app id is configured".into());
    }
    Ok(Keys { verifier: Verifier::new(secrets, window_secs), principals })
}

/// Loads `--keys FILE` (see [`parse_keys`]).
pub fn load_keys(path: &std::path::Path, window_secs: i64) -> Result<Keys, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse_keys(&text, window_secs).map_err(|e| format!("{}: {e}", path.display()))
}

fn needs_signature(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}

/// The middleware: passes the request on, its body intact, once it
/// verifies, with the principal it acts as (the verified app id's; without
/// `--keys`, the server's single trusted principal) in its extensions.
pub async fn check(State(st): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let keys = match &st.auth {
        Auth::Trusted(p) => {
            req.extensions_mut().insert(p.clone());
            return next.run(req).await;
        }
        Auth::Signed(keys) => keys,
    };
    if !needs_signature(req.uri().path()) {
        return next.run(req).await;
    }
    let verifier = &keys.verifier;
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
        Ok(app_id) => {
            let Some(p) = keys.principals.get(&app_id) else {
                let e = Error::with(ErrorCode::SignatureInvalid, "this app id acts as no principal", "该应用ID未配置调用身份");
                return failure(&e, Some(StatusCode::UNAUTHORIZED));
            };
            let mut req = Request::from_parts(parts, Body::from(bytes));
            req.extensions_mut().insert(p.clone());
            next.run(req).await
        }
        Err(e) => {
            st.metrics.record("signature", started.elapsed().max(Duration::ZERO), Some(e.code()));
            failure(&e, Some(StatusCode::UNAUTHORIZED))
        }
    }
}
