//! yilian sandbox platform server (联调沙箱): every engine command over HTTP at
//! the source's paths, with the engine's envelopes and fitting status codes,
//! report upload, Prometheus metrics and Server-Sent Events.
//!
//! The binary (`main.rs`) parses flags and calls [`serve`]; tests call
//! [`serve`] on a loopback listener of their own.

pub mod access_log;
mod bare_errors;
pub mod demo;
pub mod metrics;
pub mod net;
pub mod seat;
pub mod signature;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Multipart, Path as UrlPath, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Extension;
use axum::Router;
use futures_util::StreamExt;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, Mutex};
use tokio_util::sync::CancellationToken;
use yilian_core::{Engine, Error, ErrorCode, ErrorFamily, Principal};

pub use metrics::Metrics;

/// JSON bodies above this are refused with 413 before they reach the engine
/// (the engine's own `max_request_bytes` has the same default).
pub const JSON_BODY_LIMIT: usize = 1024 * 1024;
/// Reports are PDFs and images: larger than any JSON request.
pub const DEFAULT_UPLOAD_LIMIT: usize = 16 * 1024 * 1024;
/// After a body passes its limit the rest is read and dropped, up to this
/// much and this long, so the client finishes sending and reads the 413
/// envelope instead of a connection reset.
const LINGER_BYTES: usize = 64 * 1024 * 1024;
const LINGER_TIME: Duration = Duration::from_secs(5);

pub struct Options {
    /// The largest `upload-report` body (multipart); the engine's own
    /// `report_max_bytes` bounds the document itself.
    pub upload_limit: usize,
    /// How often the outbox is polled for SSE subscribers.
    pub event_poll: Duration,
}

pub struct AppState {
    /// The engine requests act through, or none on a standby ([`seat`]).
    pub seat: Arc<seat::Seat>,
    pub metrics: Metrics,
    opts: Options,
    events: broadcast::Sender<Arc<Value>>,
    /// Seqs of the outbox window already broadcast; see [`poll_events`].
    /// The last event seq pushed to subscribers (`None`: nobody listened yet).
    cursor: Mutex<Option<u64>>,
    shutdown: CancellationToken,
    /// Who acts: the verified app id's principal (`--keys`), or one trusted
    /// principal for every request (see [`signature`]).
    pub(crate) auth: Auth,
}

/// How the server knows who is acting.
pub enum Auth {
    /// `--keys`: every `/api` request is signed; its app id is its principal.
    Signed(signature::Keys),
    /// No keys: every request acts as this one principal, stated by the
    /// operator with `--principal` (default: the platform). Said loudly at
    /// start and in `/healthz`.
    Trusted(Principal),
}

impl Auth {
    pub fn view(&self) -> Value {
        match self {
            Auth::Signed(_) => json!({"mode": "signed",
                "note": "each signed request acts as the principal its app id is configured with"}),
            Auth::Trusted(p) => json!({"mode": "trusted", "principal": p.view(),
                "warning": format!("no --keys: every request acts as the single trusted principal {}; anyone who can reach this port acts as it", describe(p))}),
        }
    }
}

/// `platform`, or `community C001`.
pub fn describe(p: &Principal) -> String {
    match &p.institution_id {
        Some(i) => format!("{} {i}", p.role.as_str()),
        None => p.role.as_str().to_string(),
    }
}

impl AppState {
    /// Every request acts as the platform (a trusted joint-testing server).
    pub fn new(engine: Engine, opts: Options) -> Arc<AppState> {
        AppState::with_auth(engine, opts, Auth::Trusted(Principal::platform()))
    }
    /// With `Auth::Signed`, nonces are claimed through
    /// [`signature::nonce_claim`] (the one place that decides where).
    pub fn with_auth(engine: Engine, opts: Options, auth: Auth) -> Arc<AppState> {
        AppState::with_seat(seat::Seat::single(engine), opts, auth)
    }
    /// On a shared store: leading or standing by as `seat` says; run
    /// [`seat::campaign`] beside it.
    pub fn with_seat(seat: seat::Seat, opts: Options, auth: Auth) -> Arc<AppState> {
        let seat = Arc::new(seat);
        let auth = match auth {
            Auth::Signed(k) => {
                let w = k.verifier.window_secs();
                Auth::Signed(k.claiming_nonces_with(signature::nonce_claim(seat.clone(), w)))
            }
            t => t,
        };
        let (events, _) = broadcast::channel(4096);
        Arc::new(AppState { seat, metrics: Metrics::new(), opts, events, cursor: Mutex::new(None), shutdown: CancellationToken::new(), auth })
    }
    /// Cancelled when the server starts shutting down: ends SSE streams and the poller.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }
}

// ------------------------------------------------------------------ envelopes

/// The HTTP status that fits an engine error.
pub fn status_for(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::RequestTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::EngineClosed | ErrorCode::NotLeader => StatusCode::SERVICE_UNAVAILABLE,
        _ => match code.family() {
            ErrorFamily::Input | ErrorFamily::Binding => StatusCode::BAD_REQUEST,
            ErrorFamily::NotFound => StatusCode::NOT_FOUND,
            ErrorFamily::Conflict | ErrorFamily::Idempotency => StatusCode::CONFLICT,
            ErrorFamily::State => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorFamily::Permission => StatusCode::FORBIDDEN,
            ErrorFamily::Storage | ErrorFamily::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        },
    }
}

fn json_response(status: StatusCode, v: &Value) -> Response {
    text_response(status, yilian_core::to_json(v))
}

fn text_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"))], body).into_response()
}

/// The success envelope, written without copying `data` into an outer object.
fn success(data: Value) -> Response {
    text_response(StatusCode::OK, yilian_core::envelope_json(Ok(data)))
}

/// An error envelope; `status` overrides the family's status where HTTP has a
/// more precise one (415, 405, 501, 404 for an unknown path).
fn failure(err: &Error, status: Option<StatusCode>) -> Response {
    let mut r = json_response(status.unwrap_or_else(|| status_for(err.code())), &err.to_envelope());
    if err.code() == ErrorCode::NotLeader {
        // A standby (or a deposed leader) may lead in a moment: retry soon.
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    r
}

/// Result of one interface call, recorded in the metrics by [`answer`].
type Outcome = Result<Value, (Error, Option<StatusCode>)>;

fn answer(st: &AppState, interface: &str, started: Instant, out: Outcome) -> Response {
    answer_as(st, interface, started, out, success)
}

/// [`answer`] with the success body made by `ok` (the envelope, or a source shape).
fn answer_as<T>(st: &AppState, interface: &str, started: Instant, out: Result<T, (Error, Option<StatusCode>)>, ok: fn(T) -> Response) -> Response {
    st.metrics.record(interface, started.elapsed(), out.as_ref().err().map(|(e, _)| e.code()));
    match out {
        Ok(v) => ok(v),
        Err((e, s)) => failure(&e, s),
    }
}

fn unknown_path(path: &str) -> Error {
    let p: String = path.chars().take(80).collect();
    Error::with(ErrorCode::UnknownCommand, format!("no interface at `{p}`"), format!("没有该接口：`{p}`"))
}

/// Runs an engine call. A command the engine runs inline (booking,
/// cancelling, paying: `Engine::runs_inline`) is made here on the async
/// worker, and its commit is awaited without a thread: the committer wakes
/// the task. Any other runs off the async workers, where it may block.
async fn engine_call(st: &Arc<AppState>, who: &Principal, command: &str, body: String) -> Result<Value, Error> {
    engine_call_for(st, who, command, body).await
}

/// How an engine call's answer is taken: as a `Value`, or as the JSON text
/// the engine wrote (a booking's answer is never built into a `Value`).
trait Answered: Sized + Send + 'static {
    fn call(engine: &Engine, who: &Principal, command: &str, body: &str) -> Result<Self, Error>;
    fn durable(d: yilian_core::Deferred) -> impl std::future::Future<Output = Result<Self, Error>> + Send;
}

impl Answered for Value {
    fn call(engine: &Engine, who: &Principal, command: &str, body: &str) -> Result<Value, Error> {
        engine.call_value_as(who, command, body)
    }
    fn durable(d: yilian_core::Deferred) -> impl std::future::Future<Output = Result<Value, Error>> + Send {
        d.durable()
    }
}

impl Answered for String {
    fn call(engine: &Engine, who: &Principal, command: &str, body: &str) -> Result<String, Error> {
        engine.call_json_as(who, command, body)
    }
    fn durable(d: yilian_core::Deferred) -> impl std::future::Future<Output = Result<String, Error>> + Send {
        d.durable_json()
    }
}

/// [`engine_call`], the answer taken as `T` says.
async fn engine_call_for<T: Answered>(st: &Arc<AppState>, who: &Principal, command: &str, body: String) -> Result<T, Error> {
    let engine = st.seat.engine()?;
    if engine.runs_inline(command) {
        let deferred = engine.call_deferred(who, command, &body);
        // A request cancelled while it waits (the client went away) drops
        // the wait without blocking; the engine finishes it at the commit.
        return T::durable(deferred).await;
    }
    let cmd = command.to_string();
    let who = who.clone();
    match tokio::task::spawn_blocking(move || T::call(&engine, &who, &cmd, &body)).await {
        Ok(r) => r,
        Err(e) => Err(Error::internal(format!("engine call did not finish: {}", if e.is_panic() { "panic" } else { "cancelled" }))),
    }
}

// ------------------------------------------------------------------ request decoding

/// GET: every query parameter becomes a string field. A repeated key is refused
/// rather than silently picking one of its values.
fn query_object(raw: Option<&str>) -> Result<String, Error> {
    let mut m = Map::new();
    for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = decode_component(k).ok_or_else(|| Error::invalid("(query)", "not valid percent-encoded UTF-8"))?;
        let v = decode_component(v).ok_or_else(|| Error::invalid("(query)", "not valid percent-encoded UTF-8"))?;
        if m.insert(k.clone(), Value::String(v)).is_some() {
            return Err(Error::invalid(&k.chars().take(64).collect::<String>(), "given more than once"));
        }
    }
    Ok(Value::Object(m).to_string())
}

fn decode_component(s: &str) -> Option<String> {
    let plus = s.replace('+', " ");
    percent_encoding::percent_decode_str(&plus).decode_utf8().ok().map(|c| c.into_owned())
}

fn is_json(headers: &HeaderMap) -> Option<bool> {
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    Some(mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json")))
}

/// The body, cut at `limit`: past it the stream drains what the client still
/// sends (bounded by LINGER_*), sets `exceeded` and ends in an error.
fn limit_body(body: Body, limit: usize, exceeded: Arc<AtomicBool>) -> Body {
    let state = (body.into_data_stream(), 0usize, exceeded, false);
    let stream = futures_util::stream::unfold(state, move |(mut inner, mut seen, flag, done)| async move {
        if done {
            return None;
        }
        match inner.next().await {
            None => None,
            Some(Err(e)) => Some((Err(std::io::Error::other(e)), (inner, seen, flag, true))),
            Some(Ok(chunk)) => {
                seen += chunk.len();
                if seen <= limit {
                    return Some((Ok(chunk), (inner, seen, flag, false)));
                }
                flag.store(true, Relaxed);
                let deadline = tokio::time::Instant::now() + LINGER_TIME;
                let mut drained = seen;
                while drained < LINGER_BYTES {
                    match tokio::time::timeout_at(deadline, inner.next()).await {
                        Ok(Some(Ok(c))) => drained += c.len(),
                        _ => break,
                    }
                }
                Some((Err(std::io::Error::other("body exceeds the limit")), (inner, seen, flag, true)))
            }
        }
    });
    Body::from_stream(stream)
}

fn too_large(limit: usize) -> (Error, Option<StatusCode>) {
    let e = Error::with(ErrorCode::RequestTooLarge, format!("request body exceeds the limit of {limit} bytes"), format!("请求体超过上限 {limit} 字节"));
    (e, None)
}

/// A declared length no linger would cover is refused before reading.
fn declared_too_large(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok()).is_some_and(|n| n > LINGER_BYTES as u64)
}

/// POST: a JSON body with `Content-Type: application/json`. An empty body
/// (e.g. `curl -X POST`) is the empty request `{}` whatever its type.
async fn json_body(headers: &HeaderMap, body: Body) -> Result<String, (Error, Option<StatusCode>)> {
    if declared_too_large(headers) {
        return Err(too_large(JSON_BODY_LIMIT));
    }
    let flag = Arc::new(AtomicBool::new(false));
    let bytes = match axum::body::to_bytes(limit_body(body, JSON_BODY_LIMIT, flag.clone()), usize::MAX).await {
        Ok(b) => b,
        Err(_) if flag.load(Relaxed) => return Err(too_large(JSON_BODY_LIMIT)),
        Err(_) => return Err((Error::invalid("(body)", "could not be read"), None)),
    };
    if bytes.is_empty() {
        return Ok("{}".into());
    }
    if is_json(headers) != Some(true) {
        let e = Error::with(ErrorCode::InvalidField, "Content-Type must be application/json", "Content-Type 必须为 application/json");
        return Err((e, Some(StatusCode::UNSUPPORTED_MEDIA_TYPE)));
    }
    String::from_utf8(bytes.to_vec()).map_err(|_| (Error::with(ErrorCode::InvalidJson, "request body is not UTF-8", "请求体不是UTF-8编码"), None))
}

async fn only_get() -> Response {
    method_not_allowed("GET")
}

fn method_not_allowed(allow: &'static str) -> Response {
    let e = Error::with(ErrorCode::InvalidField, format!("method not allowed here; use {allow}"), format!("该接口不支持此请求方法，请使用 {allow}"));
    let mut r = failure(&e, Some(StatusCode::METHOD_NOT_ALLOWED));
    r.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

/// One engine command over HTTP, answered in the engine envelope.
async fn dispatch(st: Arc<AppState>, who: Principal, command: &str, method: Method, headers: HeaderMap, query: Option<String>, body: Body) -> Response {
    dispatch_as(st, who, command, None, method, headers, query, body).await
}

/// One engine command over HTTP; with `shape`, a success answers in the
/// source's own shape for that interface instead of the envelope.
#[allow(clippy::too_many_arguments)]
async fn dispatch_as(
    st: Arc<AppState>,
    who: Principal,
    command: &str,
    shape: Option<SourceShape>,
    method: Method,
    headers: HeaderMap,
    query: Option<String>,
    body: Body,
) -> Response {
    let started = Instant::now();
    // Queries take GET (query string) or POST; changes take POST only, so a
    // prefetching proxy or a crawler following a link can never book or cancel.
    let read_only = Engine::is_query(command);
    let request = match method {
        Method::GET | Method::HEAD if read_only => query_object(query.as_deref()).map_err(|e| (e, None)),
        Method::POST => json_body(&headers, body).await,
        _ => {
            st.metrics.record(command, started.elapsed(), Some(ErrorCode::InvalidField));
            return method_not_allowed(if read_only { "GET, POST" } else { "POST" });
        }
    };
    if shape.is_none() {
        // The envelope: the engine's answer goes out as the text it wrote.
        let out = match request {
            Ok(req) => engine_call_for::<String>(&st, &who, command, req).await.map_err(|e| (e, None)),
            Err(e) => Err(e),
        };
        return answer_as(&st, command, started, out, |text| text_response(StatusCode::OK, yilian_core::envelope_text(Ok(&text))));
    }
    let out = match request {
        Ok(req) => engine_call(&st, &who, command, req).await.map_err(|e| (e, None)),
        Err(e) => Err(e),
    };
    match (shape, out) {
        (Some(shape), Ok(data)) => {
            let out = shape.render(&st, data).await.map_err(|e| (e, None));
            answer_as(&st, command, started, out, bare)
        }
        (_, out) => answer(&st, command, started, out),
    }
}

// ------------------------------------------------------------------ the source's own shapes

/// How the referral chapter's `/api/<name>` interfaces answer a success: in
/// the shape of the source's example answer (接口服务), field for field, with
/// timestamps as the source writes them. The engine's full answer, in its
/// envelope, stays at `/api/v1/<name>`. An error is the engine's error
/// envelope on either path: its top-level `status` and `message` are where
/// the source's own answer has them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SourceShape {
    /// `POST /api/acceptance-info`: `{"status": "success", "message": "接诊信息已成功记录"}`.
    Message,
    /// `GET /api/appointment-slots`: a bare array of `{slot_id, doctor_id,
    /// hospital_id, date, time, status}`.
    Slots,
    /// `GET /api/admission-details`: a bare object of the source's eight
    /// fields, `admission_date` and `discharge_date` as UTC `YYYY-MM-DDTHH:MM:SSZ`.
    Admission,
}

/// The source's acceptance answer, used if the engine's answer lacks its text.
const ACCEPTANCE_MESSAGE: &str = "接诊信息已成功记录";
/// The keys of one slot of `/api/appointment-slots`, the source's own.
pub const SLOT_KEYS: &[&str] = &["slot_id", "doctor_id", "hospital_id", "date", "time", "status"];
/// The keys of `/api/admission-details`, the source's own.
pub const ADMISSION_KEYS: &[&str] =
    &["admission_id", "patient_id", "hospital_id", "admission_date", "discharge_date", "admission_status", "primary_diagnosis", "attending_doctor_id"];
const ADMISSION_TIMES: &[&str] = &["admission_date", "discharge_date"];

impl SourceShape {
    fn of(name: &str) -> Option<SourceShape> {
        match name {
            "acceptance-info" => Some(SourceShape::Message),
            "appointment-slots" => Some(SourceShape::Slots),
            "admission-details" => Some(SourceShape::Admission),
            _ => None,
        }
    }

    /// The engine's `data` in this shape. An admission's times without an
    /// offset are in the engine's zone, whose offset `engine-info` tells.
    async fn render(self, st: &Arc<AppState>, data: Value) -> Result<Value, Error> {
        match self {
            SourceShape::Message => Ok(json!({"status": "success", "message": data["message"].as_str().unwrap_or(ACCEPTANCE_MESSAGE)})),
            SourceShape::Slots => match data {
                Value::Array(slots) => Ok(Value::Array(slots.iter().map(|s| pick(s, SLOT_KEYS)).collect())),
                _ => Err(Error::internal("appointment-slots did not answer an array")),
            },
            SourceShape::Admission => {
                let offset = engine_offset(st).await?;
                let mut out = pick(&data, ADMISSION_KEYS);
                for k in ADMISSION_TIMES {
                    out[*k] = utc_timestamp(&out[*k], offset);
                }
                Ok(out)
            }
        }
    }
}

/// Exactly these keys of `v` (an absent one is null).
fn pick(v: &Value, keys: &[&str]) -> Value {
    Value::Object(keys.iter().map(|k| (k.to_string(), v.get(*k).cloned().unwrap_or(Value::Null))).collect())
}

/// The engine's UTC offset now, from the `now` of `engine-info` (RFC 3339 in
/// the engine's zone).
async fn engine_offset(st: &Arc<AppState>) -> Result<chrono::FixedOffset, Error> {
    let info = engine_call(st, &Principal::platform(), "engine-info", "{}".into()).await?;
    info["now"]
        .as_str()
        .and_then(|n| chrono::DateTime::parse_from_rfc3339(n).ok())
        .map(|d| *d.offset())
        .ok_or_else(|| Error::internal("engine-info has no RFC 3339 `now`"))
}

/// A stored time in the source's form, `2024-10-28T10:00:00Z`: RFC 3339 with
/// any offset, or a local date-time (`2024-10-28 18:00[:00]`,
/// `2024-10-28T18:00:00`) or date (its midnight) in the engine's zone
/// (`offset`). Null stays null; anything else is passed through unchanged.
fn utc_timestamp(v: &Value, offset: chrono::FixedOffset) -> Value {
    use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
    let Some(s) = v.as_str() else { return v.clone() };
    let s = s.trim();
    let local = || {
        ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
            .or_else(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().map(|d| d.and_time(NaiveTime::MIN)))
            .and_then(|n| n.and_local_timezone(offset).single())
            .map(|d| d.with_timezone(&Utc))
    };
    match DateTime::parse_from_rfc3339(s).ok().map(|d| d.with_timezone(&Utc)).or_else(local) {
        Some(t) => Value::String(t.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
        None => v.clone(),
    }
}

/// A success in a source shape: the value itself, no envelope.
fn bare(v: Value) -> Response {
    json_response(StatusCode::OK, &v)
}

async fn v1_command(
    State(st): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    UrlPath(command): UrlPath<String>,
    method: Method,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Body,
) -> Response {
    if !Engine::commands().contains(&command.as_str()) {
        st.metrics.record("unknown", Duration::ZERO, Some(ErrorCode::UnknownCommand));
        return failure(&unknown_path(&format!("/api/v1/{command}")), Some(StatusCode::NOT_FOUND));
    }
    dispatch(st, who, &command, method, headers, q, body).await
}

/// `/api/<name>` interfaces of the referral chapter: served by the engine
/// command of that name, in the source's shape ([`SourceShape`]), once the
/// engine has one; 501 until then.
async fn api_route(st: Arc<AppState>, who: Principal, name: &'static str, method: Method, headers: HeaderMap, q: Option<String>, body: Body) -> Response {
    if Engine::commands().contains(&name) {
        return dispatch_as(st, who, name, SourceShape::of(name), method, headers, q, body).await;
    }
    let e = Error::with(
        ErrorCode::UnknownCommand,
        format!("`{name}` is not implemented by this engine yet (referral interfaces)"),
        format!("本引擎尚未实现接口 `{name}`（转诊接口）"),
    );
    st.metrics.record(name, Duration::ZERO, Some(ErrorCode::UnknownCommand));
    failure(&e, Some(StatusCode::NOT_IMPLEMENTED))
}

async fn fallback(State(st): State<Arc<AppState>>, req: Request) -> Response {
    st.metrics.record("unknown", Duration::ZERO, Some(ErrorCode::UnknownCommand));
    failure(&unknown_path(req.uri().path()), Some(StatusCode::NOT_FOUND))
}

/// `GET /healthz`: open to anyone, so it tells nothing sensitive: the
/// version, how callers are identified, and the transport.
/// On a shared store it says `"role": "leader"` (200) or `"standby"` (503
/// `NOT_LEADER` with `Retry-After`, so a load balancer's check routes
/// around it); on its own store `"single"`.
async fn healthz(State(st): State<Arc<AppState>>, req: Request) -> Response {
    if st.shutdown.is_cancelled() {
        return failure(&Error::new(ErrorCode::EngineClosed), None);
    }
    let role = st.seat.view();
    let health = st.seat.engine().and_then(|e| e.health());
    if let Err(e) = health {
        // The envelope, with the role a load balancer's operator reads.
        let mut r = failure(&e, None);
        let mut body = e.to_envelope();
        body["role"] = if e.code() == ErrorCode::NotLeader { json!("standby") } else { role["role"].clone() };
        *r.body_mut() = Body::from(body.to_string());
        return r;
    }
    let mut v = json!({"status": "ok", "version": Engine::version(), "auth": st.auth.view(), "store": role});
    if let Some(net) = req.extensions().get::<Arc<net::Shared>>() {
        v["transport"] = net.opts.view();
    }
    success(v)
}

/// `GET /api/versions`: the interface versions this server speaks (the
/// platform client picks the highest one it also speaks).
async fn versions(State(st): State<Arc<AppState>>) -> Response {
    st.metrics.record("versions", Duration::ZERO, None);
    success(json!({"versions": signature::VERSIONS}))
}

async fn metrics_text(State(st): State<Arc<AppState>>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], st.metrics.render()).into_response()
}

// ------------------------------------------------------------------ reports

/// Stored names keep `-`, `.`, `_` readable in the URL; anything else
/// (CJK letters of a Chinese file name) is percent-encoded.
const URL_NAME: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_');

/// The form fields passed on to `upload-report` as they are (besides `file`).
const UPLOAD_FIELDS: &[&str] = &[
    "booking_id",
    "exam_id",
    "item_no",
    "file_name",
    "content_type",
    "signature",
    "signer_id",
    "conclusion",
    "findings",
    "report_url",
    "critical",
    "critical_note",
    "reporter",
    "reviewer",
    "revision_reason",
    "institution_id",
    "request_id",
];

fn multipart_error(exceeded: &AtomicBool, limit: usize) -> impl Fn(axum::extract::multipart::MultipartError) -> (Error, Option<StatusCode>) + '_ {
    move |_| {
        if exceeded.load(Relaxed) {
            too_large(limit)
        } else {
            (Error::invalid("(multipart)", "malformed multipart/form-data body"), None)
        }
    }
}

async fn upload_report(State(st): State<Arc<AppState>>, Extension(who): Extension<Principal>, headers: HeaderMap, req: Request) -> Response {
    // A JSON body is the engine command as every binding calls it
    // (`content_base64`); a form is the source's multipart upload.
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if ct.to_ascii_lowercase().starts_with("application/json") {
        let (parts, body) = req.into_parts();
        return dispatch(st, who, "upload-report", parts.method, headers, None, body).await;
    }
    let started = Instant::now();
    let out = upload_inner(&st, &who, &headers, req).await;
    answer(&st, "upload-report", started, out)
}

/// `POST /api/v1/upload-report` (报告回传接口), multipart `booking_id` (or
/// `exam_id` + `item_no`) and `file`, plus any field of the engine command:
/// the body is read up to `--max-upload-bytes` and handed to the engine's
/// `upload-report` (one implementation: checks, storage, event, audit);
/// the answer adds `report_url`, served by `GET /api/v1/reports/<document_id>`.
async fn upload_inner(st: &Arc<AppState>, who: &Principal, headers: &HeaderMap, req: Request) -> Outcome {
    use axum::extract::FromRequest;
    use base64::Engine as _;
    if req.method() != Method::POST {
        return Err((
            Error::with(ErrorCode::InvalidField, "upload-report takes POST multipart/form-data", "上传报告须使用 POST multipart/form-data"),
            Some(StatusCode::METHOD_NOT_ALLOWED),
        ));
    }
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !ct.to_ascii_lowercase().starts_with("multipart/form-data") {
        let e = Error::with(
            ErrorCode::InvalidField,
            "Content-Type must be multipart/form-data, or application/json for the engine command",
            "Content-Type 必须为 multipart/form-data（引擎命令形式则为 application/json）",
        );
        return Err((e, Some(StatusCode::UNSUPPORTED_MEDIA_TYPE)));
    }
    let limit = st.opts.upload_limit;
    if declared_too_large(headers) {
        return Err(too_large(limit));
    }
    let exceeded = Arc::new(AtomicBool::new(false));
    let (parts, body) = req.into_parts();
    let req = Request::from_parts(parts, limit_body(body, limit, exceeded.clone()));
    let merr = multipart_error(&exceeded, limit);
    let mut mp =
        Multipart::from_request(req, &()).await.map_err(|_| (Error::invalid("(multipart)", "missing or bad boundary"), Some(StatusCode::BAD_REQUEST)))?;
    let mut fields = Map::new();
    // The file is held in memory: the body limit bounds it (16 MiB by default).
    let mut file: Option<(Vec<u8>, Option<String>)> = None;
    while let Some(mut field) = mp.next_field().await.map_err(&merr)? {
        let name = field.name().unwrap_or("").to_string();
        if name == "file" {
            let file_name = field.file_name().map(str::to_string);
            let mut bytes = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(&merr)? {
                bytes.extend_from_slice(&chunk);
            }
            file = Some((bytes, file_name));
        } else if UPLOAD_FIELDS.contains(&name.as_str()) {
            let text = field.text().await.map_err(&merr)?.trim().to_string();
            if !text.is_empty() {
                let v = match (name.as_str(), text.as_str()) {
                    ("critical", "true") => Value::Bool(true),
                    ("critical", "false") => Value::Bool(false),
                    _ => Value::String(text),
                };
                fields.insert(name, v);
            }
        } // other fields (e.g. a description) are ignored
    }
    if !fields.contains_key("booking_id") && !fields.contains_key("exam_id") {
        return Err((Error::missing("booking_id"), None));
    }
    let (bytes, file_name) = file.ok_or_else(|| (Error::missing("file"), None))?;
    if bytes.is_empty() {
        return Err((Error::invalid("file", "is empty"), None));
    }
    if let Some(n) = file_name {
        fields.entry("file_name").or_insert(Value::String(n));
    }
    fields.insert("content_base64".into(), Value::String(base64::engine::general_purpose::STANDARD.encode(&bytes)));
    drop(bytes);
    let mut out = engine_call(st, who, "upload-report", Value::Object(fields).to_string()).await.map_err(|e| (e, None))?;
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| h.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '-' | '[' | ']')))
        .unwrap_or("localhost");
    // The document id only: the URL carries neither the booking nor the file name.
    let id = out["document_id"].as_str().unwrap_or("");
    let url = format!("http://{host}/api/v1/reports/{}", percent_encoding::utf8_percent_encode(id, URL_NAME));
    out["report_url"] = Value::String(url);
    Ok(out)
}

/// `GET /api/v1/reports/<document_id>`: the document through the engine's
/// `exam-report-document` for the caller's principal (its permission rule:
/// the hospital and the community institution of the booking or
/// application; its SM3 check; its read entry in the audit trail), served
/// with the type the engine found in its bytes. Under `/api/`, so with
/// `--keys` the request is signed like every command (an unsigned one gets
/// 401 before anything is read); another institution gets 403 and no bytes.
async fn serve_report(State(st): State<Arc<AppState>>, Extension(who): Extension<Principal>, UrlPath(id): UrlPath<String>) -> Response {
    use base64::Engine as _;
    let started = Instant::now();
    let out = engine_call(&st, &who, "exam-report-document", json!({"document_id": id}).to_string()).await;
    let doc = out.and_then(|v| {
        let bytes = v["content_base64"].as_str().and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok());
        let ct = v["content_type"].as_str().and_then(|c| HeaderValue::from_str(c).ok());
        bytes.zip(ct).ok_or_else(|| Error::internal("exam-report-document answered no content"))
    });
    match doc {
        Ok((bytes, ct)) => {
            st.metrics.record("reports", started.elapsed(), None);
            (
                [
                    (header::CONTENT_TYPE, ct),
                    (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
                    // Personal data: never kept by a shared cache.
                    (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                ],
                bytes,
            )
                .into_response()
        }
        Err(e) => {
            st.metrics.record("reports", started.elapsed(), Some(e.code()));
            // An id that names no report (a malformed one included) is not found.
            let status = match e.family() {
                ErrorFamily::Input | ErrorFamily::NotFound => StatusCode::NOT_FOUND,
                _ => status_for(e.code()),
            };
            failure(&e, Some(status))
        }
    }
}

/// `GET /reports/<booking>/<file_name>`, the old unsigned link (it named the
/// booking and the file name, and served anyone): gone. 410 with an error
/// envelope pointing at `/api/v1/reports/<document_id>`; nothing is read.
async fn report_link_gone(State(st): State<Arc<AppState>>) -> Response {
    let e = Error::with(
        ErrorCode::ReportDocumentNotFound,
        "report links /reports/<booking>/<file> are withdrawn: read GET /api/v1/reports/<document_id> (signed with --keys)",
        "报告链接 /reports/<预约号>/<文件名> 已停用：请使用 GET /api/v1/reports/<报告文件编号>（启用 --keys 时须签名）",
    );
    st.metrics.record("reports", Duration::ZERO, Some(e.code()));
    failure(&e, Some(StatusCode::GONE))
}

// ------------------------------------------------------------------ events (SSE)

/// Pushes the events above `cursor` to the subscribers (`broadcast: false`
/// only moves the cursor to the newest event: a first subscriber gets events
/// from its connection on). The engine numbers and files each event under
/// the locks `next-events` takes, so no lower number can appear after a
/// higher one was seen, and a cursor never skips an event. Clients still
/// acknowledge with `/api/v1/next-events`.
async fn poll_events(st: &Arc<AppState>, cursor: &mut Option<u64>, broadcast: bool) -> Result<(), Error> {
    loop {
        // The server's own poller reads the whole outbox; each subscriber is
        // sent only what its principal may see (`yilian_core::event_visible_to`).
        let page = engine_call(st, &Principal::platform(), "next-events", json!({"limit": 10_000, "after": cursor.unwrap_or(0)}).to_string()).await?;
        let events = page["events"].as_array().cloned().unwrap_or_default();
        let full = events.len() == 10_000;
        for ev in events {
            let Some(seq) = ev["seq"].as_u64() else { continue };
            *cursor = Some(seq);
            if broadcast {
                // No receiver is not an error: the next subscriber starts later.
                let _ = st.events.send(Arc::new(ev));
                st.metrics.events_broadcast.fetch_add(1, Relaxed);
            }
        }
        if cursor.is_none() {
            *cursor = Some(0);
        }
        if !full {
            return Ok(());
        }
    }
}

/// Background task: polls while someone listens; stops at shutdown.
pub async fn event_poller(st: Arc<AppState>) {
    let token = st.shutdown.clone();
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(st.opts.event_poll) => {}
        }
        if st.events.receiver_count() == 0 {
            continue;
        }
        let mut cursor = st.cursor.lock().await;
        // A closed engine ends the loop through the shutdown token; other
        // errors are retried on the next tick.
        let _ = poll_events(&st, &mut cursor, true).await;
    }
}

fn sse_event(ev: &Value) -> SseEvent {
    SseEvent::default().event(ev["type"].as_str().unwrap_or("event")).id(ev["seq"].as_u64().map(|s| s.to_string()).unwrap_or_default()).data(ev.to_string())
}

/// The console's files (`/console`, #19 item 4), built into the binary: a
/// page that reads the engine through this server's own API as whoever
/// the caller is (with `--keys` every call must be signed, so a browser
/// needs a signing proxy), and draws the slot pool, the cases in flight,
/// the indicators and the events with plain DOM and SVG: no CDN.
const CONSOLE: &[(&str, &str, &str)] = &[
    ("index.html", "text/html; charset=utf-8", include_str!("../console/index.html")),
    ("console.js", "text/javascript; charset=utf-8", include_str!("../console/console.js")),
    ("console.css", "text/css; charset=utf-8", include_str!("../console/console.css")),
];

async fn console_asset(file: &str) -> Response {
    match CONSOLE.iter().find(|(name, _, _)| *name == file) {
        Some((_, kind, body)) => (
            [
                (header::CONTENT_TYPE, *kind),
                (header::CACHE_CONTROL, "no-store"),
                (header::CONTENT_SECURITY_POLICY, "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            *body,
        )
            .into_response(),
        None => failure(&unknown_path(&format!("/console/{}", file.chars().take(64).collect::<String>())), Some(StatusCode::NOT_FOUND)),
    }
}

async fn console_asset_named(file: String) -> Response {
    console_asset(&file).await
}

/// `GET /api/v1/events/stream`: every outbox event from the connection on, as
/// `event: <type>`, `id: <seq>`, `data: <event JSON>`. A client reconnecting
/// with `Last-Event-ID: N` first gets the still-unacknowledged events after N.
/// A subscriber is sent the events its principal may read: the engine's one
/// rule (`yilian_core::event_visible_to`), the same `next-events` applies.
async fn events_stream(State(st): State<Arc<AppState>>, Extension(who): Extension<Principal>, headers: HeaderMap) -> Response {
    let last_id: Option<u64> = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok());
    let (rx, replay) = {
        let mut cursor = st.cursor.lock().await;
        if st.events.receiver_count() == 0 {
            // Nobody was listening, so the cursor is stale: move it to the
            // newest event before subscribing, under the poller's lock.
            if let Err(e) = poll_events(&st, &mut cursor, false).await {
                return failure(&e, None);
            }
        }
        let rx = st.events.subscribe();
        // Taken after subscribing: an event may come both ways; the live
        // stream skips those already replayed.
        let replay: Vec<Value> = match last_id {
            None => Vec::new(),
            Some(n) => match engine_call(&st, &Principal::platform(), "next-events", json!({"limit": 10_000, "after": n}).to_string()).await {
                Ok(page) => page["events"].as_array().cloned().unwrap_or_default().into_iter().filter(|ev| yilian_core::event_visible_to(&who, ev)).collect(),
                Err(e) => return failure(&e, None),
            },
        };
        (rx, replay)
    };
    st.metrics.record("events-stream", Duration::ZERO, None);
    let replayed: BTreeSet<u64> = replay.iter().filter_map(|e| e["seq"].as_u64()).collect();
    let guard = ClientGauge::new(st.clone());
    let token = st.shutdown.clone();
    let live = tokio_stream::wrappers::BroadcastStream::new(rx).filter_map(move |item| {
        let _ = &guard; // counted while the stream lives
        let out = match item {
            Ok(ev) if ev["seq"].as_u64().is_some_and(|s| replayed.contains(&s)) => None,
            Ok(ev) if !yilian_core::event_visible_to(&who, &ev) => None,
            Ok(ev) => Some(sse_event(&ev)),
            // A slow client missed events: say so; next-events has them all.
            Err(tokio_stream::wrappers::errors::BroadcastStreamRecvError::Lagged(n)) => {
                Some(SseEvent::default().event("lagged").data(json!({"missed": n}).to_string()))
            }
        };
        std::future::ready(out)
    });
    let stream = futures_util::stream::iter(replay.into_iter().map(|ev| sse_event(&ev)))
        .chain(live)
        .map(Ok::<_, std::convert::Infallible>)
        .take_until(async move { token.cancelled().await });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response()
}

struct ClientGauge(Arc<AppState>);
impl ClientGauge {
    fn new(st: Arc<AppState>) -> ClientGauge {
        st.metrics.sse_clients.fetch_add(1, Relaxed);
        ClientGauge(st)
    }
}
impl Drop for ClientGauge {
    fn drop(&mut self) {
        self.0.metrics.sse_clients.fetch_sub(1, Relaxed);
    }
}

// ------------------------------------------------------------------ router and server

pub fn router(st: Arc<AppState>) -> Router {
    Router::new()
        .route("/console", get(|| console_asset("index.html")).fallback(only_get))
        .route("/console/{file}", get(|UrlPath(file): UrlPath<String>| console_asset_named(file)).fallback(only_get))
        .route("/healthz", get(healthz).fallback(only_get))
        .route("/metrics", get(metrics_text).fallback(only_get))
        .route("/api/versions", get(versions).fallback(only_get))
        .route("/api/v1/events/stream", get(events_stream).fallback(only_get))
        .route("/api/v1/upload-report", any(upload_report).layer(DefaultBodyLimit::disable()))
        .route("/api/v1/{command}", any(v1_command))
        .route(
            "/api/appointment-slots",
            any(|State(st): State<Arc<AppState>>, Extension(who): Extension<Principal>, m: Method, h: HeaderMap, RawQuery(q): RawQuery, b: Body| {
                api_route(st, who, "appointment-slots", m, h, q, b)
            }),
        )
        .route(
            "/api/acceptance-info",
            any(|State(st): State<Arc<AppState>>, Extension(who): Extension<Principal>, m: Method, h: HeaderMap, RawQuery(q): RawQuery, b: Body| {
                api_route(st, who, "acceptance-info", m, h, q, b)
            }),
        )
        .route(
            "/api/admission-details",
            any(|State(st): State<Arc<AppState>>, Extension(who): Extension<Principal>, m: Method, h: HeaderMap, RawQuery(q): RawQuery, b: Body| {
                api_route(st, who, "admission-details", m, h, q, b)
            }),
        )
        .route("/api/v1/reports/{id}", get(serve_report).fallback(only_get))
        .route("/reports/{booking}/{file}", get(report_link_gone).fallback(only_get))
        .fallback(fallback)
        .layer(axum::middleware::from_fn_with_state(st.clone(), signature::check))
        .with_state(st)
}

/// Serves until `shutdown` resolves, then stops accepting, lets in-flight
/// requests finish, ends SSE streams, and closes the engine (acknowledged
/// changes are already durable: `close` only flushes and releases the lock).
///
/// The network defaults of [`net::NetOptions::default`] except the
/// per-client rate limit, which is off: an embedder (and the load tests)
/// drive every request from one address. The binary uses [`serve_with`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    st: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut net = net::NetOptions::default();
    net.rate.per_sec = 0.0;
    serve_with(listener, st, net, shutdown).await
}

/// [`serve`] with explicit network settings (timeouts, connection cap, rate
/// limit, lockout, TLS, access log; see [`net`]).
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    st: Arc<AppState>,
    net: net::NetOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let poller = tokio::spawn(event_poller(st.clone()));
    let token = st.shutdown.clone();
    let app = router(st.clone()).layer(axum::middleware::from_fn(net::guard)).layer(axum::middleware::from_fn(access_log::log));
    let shared = net::Shared::new(net);
    let stop = CancellationToken::new();
    let stopper = stop.clone();
    let watcher = tokio::spawn(async move {
        shutdown.await;
        stopper.cancel();
        // SSE streams never end on their own: end them so the drain finishes.
        token.cancel();
    });
    net::accept_loop(listener, app, shared, st.clone(), stop).await;
    watcher.abort();
    st.shutdown.cancel();
    let _ = poller.await;
    if let Some(engine) = st.seat.take() {
        let _ = tokio::task::spawn_blocking(move || engine.close()).await;
    }
    Ok(())
}

/// Where the binary points the engine's `report_dir`: `<data_dir>/reports`.
pub fn reports_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("reports")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_time_becomes_the_sources_utc_form_whatever_its_spelling() {
        let cst = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
        for (stored, utc) in [
            ("2024-10-28T18:00:00+08:00", "2024-10-28T10:00:00Z"),
            ("2024-10-28T10:00:00Z", "2024-10-28T10:00:00Z"),
            ("2024-10-28T05:30:00-04:30", "2024-10-28T10:00:00Z"),
            ("2024-10-28 18:00:00", "2024-10-28T10:00:00Z"),
            ("2024-10-28 18:00", "2024-10-28T10:00:00Z"),
            ("2024-10-28T18:00:00", "2024-10-28T10:00:00Z"),
            ("2024-10-29", "2024-10-28T16:00:00Z"),
        ] {
            assert_eq!(utc_timestamp(&json!(stored), cst), json!(utc), "{stored}");
        }
        assert_eq!(utc_timestamp(&Value::Null, cst), Value::Null);
        assert_eq!(utc_timestamp(&json!("下周一"), cst), json!("下周一"), "not a time: left as it is");
    }

    #[test]
    fn pick_keeps_exactly_the_sources_keys() {
        let v = json!({"status": "full", "slot_id": "S1", "remaining": 0, "period": "上午"});
        let got = pick(&v, SLOT_KEYS);
        let mut keys: Vec<&str> = got.as_object().unwrap().keys().map(String::as_str).collect();
        let mut want = SLOT_KEYS.to_vec();
        keys.sort_unstable();
        want.sort_unstable();
        assert_eq!(keys, want);
        assert_eq!((got["status"].as_str(), got["doctor_id"].is_null()), (Some("full"), true));
    }
}
