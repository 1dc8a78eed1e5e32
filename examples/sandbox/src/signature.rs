//! Request signatures (I2) on the sandbox: with keys configured (`--keys
//! FILE`), every `/api/…` request and `/metrics` must carry a valid HMAC-SM3
//! signature (`yilian_core::client::sign`, the form in docs/client.md); bad,
//! stale and replayed ones get 401 with the engine's error envelope.
//! `/healthz` and `/reports/…` stay unsigned. Timestamps are checked against
//! this server's wall clock (not the engine clock, which a config may set to
//! replay a past day).
//!
//! Invariants:
//! - The signature is checked from the headers before the body is read: with
//!   `X-YL-Content-SM3` (the body's declared digest) the HMAC is verified
//!   first and the body read afterwards, bounded by the route's limit, and
//!   compared with the declared digest before anything is dispatched; without
//!   it, an unsigned or stale request is refused from the headers and the body
//!   is read bounded by the JSON limit (1 MiB) only, never the upload limit.
//! - An unknown app id is answered exactly like a bad signature.
//! - Every refusal is recorded by [`audit_refusal`] and counts towards the
//!   peer's lockout (`crate::net`); no refusal text holds the caller's app id,
//!   nonce or timestamp.
//! - A keys file with a secret shorter than 32 bytes, or readable by group or
//!   others, is refused at start.

use crate::net::{Peer, Shared};
use crate::{failure, AppState, Auth, JSON_BODY_LIMIT};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use yilian_core::client::sign::{body_matches, body_mismatch, unix_now, NonceClaim, Verifier, HEADER_CONTENT_SM3, MIN_SECRET_BYTES};
use yilian_core::crypto::sm3_hex;
use yilian_core::Principal;
use yilian_core::{Error, ErrorCode};

/// The versions of the interfaces this server speaks, advertised at `GET /api/versions`.
pub const VERSIONS: &[&str] = &["v1"];

/// The verified callers: the signature checker and, for each app id, the
/// principal it acts as.
pub struct Keys {
    pub verifier: Verifier,
    pub principals: HashMap<String, Principal>,
    secrets: HashMap<String, String>,
    window_secs: i64,
}

impl Keys {
    /// The same keys with nonces claimed through `claim` (see [`nonce_claim`]).
    pub fn claiming_nonces_with(self, claim: NonceClaim) -> Keys {
        let verifier = Verifier::with_nonce_store(self.secrets.clone(), self.window_secs, claim);
        Keys { verifier, ..self }
    }
}

/// The one place the server decides how nonces are claimed: in the
/// engine's durable nonce table (`Engine::claim_nonce`), committed before the
/// request proceeds, so a captured request replayed after a restart (or to a
/// standby on the same store) within its window is refused.
/// Claimed through whichever engine leads now (a standby claims nothing:
/// `NOT_LEADER`).
pub fn nonce_claim(seat: Arc<crate::seat::Seat>, window_secs: i64) -> NonceClaim {
    Box::new(move |app, nonce, ts| seat.engine()?.claim_nonce(app, nonce, ts, window_secs))
}

/// Records a refused signature: an entry of the audit trail (`kind:
/// "refusal"`) and the metric. Never given the request's personal data: the
/// app id is the one claimed (sanitised by the engine), the path has no query.
pub fn audit_refusal(st: &AppState, app_id: Option<&str>, path: &str, code: ErrorCode) {
    // A standby has no engine to audit through: the metric still counts it.
    if let Ok(e) = st.seat.engine() {
        e.audit_refusal(app_id, path, code);
    }
    st.metrics.record("signature", std::time::Duration::ZERO, Some(code));
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
            e.get("secret").and_then(|s| s.as_str()).filter(|s| s.len() >= MIN_SECRET_BYTES).ok_or_else(|| {
                format!("app id `{app}`: `secret` must be a string of at least {MIN_SECRET_BYTES} bytes (e.g. 32 random bytes as 64 hex digits)")
            })?;
        let mut who = e.clone();
        who.remove("secret");
        let p = Principal::from_value(&serde_json::Value::Object(who)).map_err(|err| format!("app id `{app}`: {}", err.message()))?;
        secrets.insert(app.clone(), secret.to_string());
        principals.insert(app.clone(), p);
    }
    if secrets.is_empty() {
        return Err("no app id is configured".into());
    }
    Ok(Keys { verifier: Verifier::new(secrets.clone(), window_secs), principals, secrets, window_secs })
}

/// Loads `--keys FILE` (see [`parse_keys`]).
pub fn load_keys(path: &std::path::Path, window_secs: i64) -> Result<Keys, String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(format!(
                "{}: the keys file is readable or writable by group or others (mode {:o}); it holds the secrets: run `chmod 600 {}`",
                path.display(),
                mode & 0o777,
                path.display()
            ));
        }
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse_keys(&text, window_secs).map_err(|e| format!("{}: {e}", path.display()))
}

fn needs_signature(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/") || path == "/metrics"
}

/// A refusal: recorded (metric, audit, the peer's lockout), answered 401.
fn refuse(st: &AppState, net: Option<&Arc<Shared>>, peer: Option<Peer>, app_id: Option<&str>, path: &str, e: &Error) -> Response {
    // The server's own failure while claiming the nonce (a standby: NOT_LEADER;
    // the store: STORAGE_ERROR) is not the client's: answered as itself (503
    // with Retry-After on a standby), never audited or counted toward a lockout.
    if matches!(e.code().family(), yilian_core::ErrorFamily::Storage | yilian_core::ErrorFamily::Internal) {
        st.metrics.record("signature", std::time::Duration::ZERO, Some(e.code()));
        return failure(e, None);
    }
    audit_refusal(st, app_id, path, e.code());
    if let (Some(net), Some(peer)) = (net, peer) {
        net.signature_failed(peer.0.ip());
    }
    failure(e, Some(StatusCode::UNAUTHORIZED))
}

fn too_large(limit: usize) -> Error {
    Error::with(ErrorCode::RequestTooLarge, format!("request body exceeds the limit of {limit} bytes"), format!("请求体超过上限 {limit} 字节"))
}

/// What the signature covers besides the headers: the body's declared SM3
/// digest (checked before the body is read), or the body itself.
enum Signed {
    Declared(String),
    Body(axum::body::Bytes),
}

/// Verifies a request's signature on a blocking thread, not an async worker:
/// claiming its nonce commits to the durable store and waits for the group
/// commit (an fsync), which must not hold up the connections a runtime
/// thread serves. Returns the verified app id.
async fn verify_off_thread(st: &Arc<AppState>, parts: &axum::http::request::Parts, signed: Signed, now: i64) -> Result<String, Error> {
    let st = st.clone();
    let (method, path, query, headers) = (parts.method.clone(), parts.uri.path().to_string(), parts.uri.query().map(str::to_string), parts.headers.clone());
    let job = tokio::task::spawn_blocking(move || {
        let Auth::Signed(keys) = &st.auth else {
            return Err(Error::with(ErrorCode::Internal, "the server has no keys to verify with", "服务器未配置用于验签的密钥"));
        };
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        match &signed {
            Signed::Declared(d) => keys.verifier.verify_declared(method.as_str(), &path, query.as_deref(), &header, d, now),
            Signed::Body(b) => keys.verifier.verify(method.as_str(), &path, query.as_deref(), &header, b, now),
        }
    });
    job.await.unwrap_or_else(|_| Err(Error::with(ErrorCode::Internal, "the signature check failed unexpectedly", "签名校验意外失败")))
}

/// The verified app id, put in the response's extensions for the access log.
#[derive(Clone)]
pub struct AppId(pub String);

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
    let net = parts.extensions.get::<Arc<Shared>>().cloned();
    let peer = parts.extensions.get::<Peer>().copied();
    let path = parts.uri.path().to_string();
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let now = unix_now();
    // 1. From the headers alone: unsigned and stale requests, and with a
    //    declared body digest the signature itself, are refused here, before
    //    a byte of the body is read.
    if let Err(e) = verifier.precheck(&header, now) {
        return refuse(&st, net.as_ref(), peer, None, &path, &e);
    }
    let declared = header(HEADER_CONTENT_SM3).map(|d| d.trim().to_string());
    let verified = match &declared {
        Some(d) => match verify_off_thread(&st, &parts, Signed::Declared(d.clone()), now).await {
            Ok(app) => Some(app),
            Err(e) => return refuse(&st, net.as_ref(), peer, None, &path, &e),
        },
        None => None,
    };
    // 2. The body, bounded: by the route's limit once the signature verified,
    //    by the JSON limit while it is still unproven.
    let limit = if verified.is_some() && path == "/api/v1/upload-report" { JSON_BODY_LIMIT.max(st.opts.upload_limit) } else { JSON_BODY_LIMIT };
    let declared_len = parts.headers.get(axum::http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared_len.is_some_and(|n| n > limit as u64) {
        st.metrics.record("signature", started.elapsed(), Some(ErrorCode::RequestTooLarge));
        return failure(&too_large(limit), None);
    }
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            st.metrics.record("signature", started.elapsed(), Some(ErrorCode::RequestTooLarge));
            return failure(&too_large(limit), None);
        }
    };
    // 3. The body read is the one signed.
    let app_id = match (verified, &declared) {
        (Some(app), Some(d)) => {
            if !body_matches(d, &sm3_hex(&bytes)) {
                return refuse(&st, net.as_ref(), peer, Some(&app), &path, &body_mismatch());
            }
            app
        }
        _ => match verify_off_thread(&st, &parts, Signed::Body(bytes.clone()), now).await {
            Ok(app) => app,
            Err(e) => return refuse(&st, net.as_ref(), peer, None, &path, &e),
        },
    };
    let Some(p) = keys.principals.get(&app_id) else {
        let e = Error::with(ErrorCode::SignatureInvalid, "the request signature does not verify", "请求签名校验失败");
        return refuse(&st, net.as_ref(), peer, None, &path, &e);
    };
    let mut req = Request::from_parts(parts, Body::from(bytes));
    req.extensions_mut().insert(p.clone());
    let mut resp = next.run(req).await;
    resp.extensions_mut().insert(AppId(app_id));
    resp
}
