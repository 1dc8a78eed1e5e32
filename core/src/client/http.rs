//! The HTTP transport of the platform client (cargo feature `client`):
//! reqwest's blocking client over rustls.

use super::sign::{encode_query, new_nonce, sign, unix_now};
use super::{is_idempotent, negotiate, not_configured, parse_version, Cache, CacheEntry, PlatformConfig};
use crate::clock::format_ms;
use crate::error::{Error, ErrorCode, Result};
use crate::pool::Pool;
use crate::request::Req;
use crate::store::Write;
use parking_lot::Mutex;
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// Answers larger than this are refused (a platform never sends one; a broken
/// proxy might).
const MAX_ANSWER_BYTES: u64 = 64 * 1024 * 1024;

/// One answer of the platform.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub interface: String,
    /// The negotiated interface version (`None` for unversioned paths before negotiation).
    pub version: Option<u32>,
    /// The envelope's `data`.
    pub data: Value,
    /// `true`: the platform was unreachable and this is the last good answer from the cache.
    pub stale: bool,
    /// Wall-clock Unix milliseconds when `data` was fetched from the platform.
    pub fetched_at_ms: i64,
}

impl Reply {
    /// `{"interface","version","stale","fetched_at","data"}`, the time in `tz`.
    pub fn to_value(&self, tz: &chrono_tz::Tz) -> Value {
        json!({
            "interface": self.interface,
            "version": self.version.map(|v| format!("v{v}")),
            "stale": self.stale,
            "fetched_at": format_ms(self.fetched_at_ms, tz),
            "data": self.data,
        })
    }
}

/// How one attempt failed.
enum Failure {
    /// The platform could not be reached or answered 429/502/503/504: an
    /// idempotent call may be retried, a query may be served from the cache.
    Unreachable(Error),
    /// The platform answered: its error (or a malformed answer) is final.
    Final(Error),
}

/// The typed request of `pre-book-slot` and `book-slot` (the source's fields).
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct SlotRequest {
    pub patient_id: String,
    pub project_id: String,
    pub date: String,
    pub time_slot: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clinic_id: Option<String>,
    /// Makes the booking idempotent, and so retried on transient failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// A client of the platform. `Send + Sync`; share one per process.
pub struct PlatformClient {
    cfg: PlatformConfig,
    http: reqwest::blocking::Client,
    /// `https://host:port` of `base_url`.
    origin: String,
    /// The path prefix of `base_url` (`""` or `/gateway`).
    prefix: String,
    version: Mutex<Option<u32>>,
    cache: Arc<Cache>,
}

impl std::fmt::Debug for PlatformClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlatformClient").field("cfg", &self.cfg).finish_non_exhaustive()
    }
}

impl PlatformClient {
    /// A client with an in-memory cache. Must not be called on a tokio runtime thread.
    pub fn new(cfg: PlatformConfig) -> Result<PlatformClient> {
        PlatformClient::with_cache(cfg, Arc::new(Cache::default()))
    }

    pub(crate) fn with_cache(cfg: PlatformConfig, cache: Arc<Cache>) -> Result<PlatformClient> {
        let mut builder = reqwest::blocking::Client::builder()
            .timeout(Duration::from_millis(cfg.timeout_ms))
            .connect_timeout(Duration::from_millis(cfg.connect_timeout_ms))
            .user_agent(concat!("yilian/", env!("CARGO_PKG_VERSION")))
            .https_only(false);
        // The platform's certificate is always verified: against the public
        // web roots and, with `ca_file`, the operator's own CA.
        if let Some(ca) = &cfg.ca_file {
            let pem = read_pem("ca_file", ca)?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|_| tls_config("ca_file", "holds no PEM certificate", "不含PEM证书"))?;
            if certs.is_empty() {
                return Err(tls_config("ca_file", "holds no PEM certificate", "不含PEM证书"));
            }
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        if let (Some(cert), Some(key)) = (&cfg.client_cert_file, &cfg.client_key_file) {
            let mut pem = read_pem("client_cert_file", cert)?;
            pem.push(b'\n');
            pem.extend(read_pem("client_key_file", key)?);
            let id = reqwest::Identity::from_pem(&pem)
                .map_err(|_| tls_config("client_cert_file", "is not a PEM certificate with its private key", "不是PEM格式的证书及其私钥"))?;
            builder = builder.identity(id);
        }
        let http =
            builder.build().map_err(|e| Error::with(ErrorCode::PlatformUnavailable, format!("cannot start the HTTP client: {e}"), "无法启动HTTP客户端"))?;
        let after_scheme = cfg.base_url.find("://").map(|i| i + 3).unwrap_or(0);
        let split = cfg.base_url[after_scheme..].find('/').map(|i| i + after_scheme).unwrap_or(cfg.base_url.len());
        let origin = cfg.base_url[..split].to_string();
        let prefix = cfg.base_url[split..].to_string();
        Ok(PlatformClient { cfg, http, origin, prefix, version: Mutex::new(None), cache })
    }

    pub fn config(&self) -> &PlatformConfig {
        &self.cfg
    }

    /// The version agreed with the platform, once a call has negotiated it.
    pub fn negotiated_version(&self) -> Option<u32> {
        *self.version.lock()
    }

    pub fn cached_entries(&self) -> usize {
        self.cache.len()
    }

    /// Asks the platform which versions it speaks (`GET /api/versions`,
    /// `{"versions":["v1",…]}`; a platform without that path speaks `v1`) and
    /// keeps the highest one both sides speak.
    pub fn negotiate(&self) -> Result<u32> {
        self.negotiate_inner().map_err(|f| match f {
            Failure::Unreachable(e) | Failure::Final(e) => e,
        })
    }

    fn negotiate_inner(&self) -> Result<u32, Failure> {
        if let Some(v) = *self.version.lock() {
            return Ok(v);
        }
        let path = format!("{}/api/versions", self.prefix);
        let theirs = match self.with_retries(true, || self.attempt("GET", &path, None, b"")) {
            Ok((404, _)) => vec![1],
            Ok((_, env)) => {
                let data = envelope_data(env).map_err(Failure::Final)?;
                let list = data.get("versions").and_then(Value::as_array).ok_or_else(|| Failure::Final(bad_answer("`versions` is missing")))?;
                list.iter().filter_map(|v| v.as_str().and_then(parse_version)).collect()
            }
            Err(f) => return Err(f),
        };
        let v = negotiate(&self.cfg.versions, &theirs).map_err(Failure::Final)?;
        *self.version.lock() = Some(v);
        Ok(v)
    }

    /// Runs `f` once, or, when `idempotent`, up to `1 + retries` times while
    /// it fails with `Unreachable`, sleeping `backoff(n)` before retry `n`.
    fn with_retries<T>(&self, idempotent: bool, mut f: impl FnMut() -> Result<T, Failure>) -> Result<T, Failure> {
        let attempts = if idempotent { 1 + self.cfg.retries } else { 1 };
        let mut n = 0;
        loop {
            match f() {
                Err(Failure::Unreachable(_)) if n + 1 < attempts => {
                    std::thread::sleep(Duration::from_millis(self.cfg.backoff(n)));
                    n += 1;
                }
                other => return other,
            }
        }
    }

    /// One signed request: (HTTP status, the answer as JSON).
    fn attempt(&self, method: &str, path: &str, query: Option<&str>, body: &[u8]) -> Result<(u16, Value), Failure> {
        let s = sign(&self.cfg.app_id, &self.cfg.secret, method, path, query, unix_now(), &new_nonce(), body).map_err(Failure::Final)?;
        let url = match query {
            Some(q) if !q.is_empty() => format!("{}{}?{}", self.origin, path, q),
            _ => format!("{}{}", self.origin, path),
        };
        let mut rb = if method == "GET" { self.http.get(&url) } else { self.http.post(&url).header("Content-Type", "application/json").body(body.to_vec()) };
        // The headers include X-YL-Content-SM3, so the server checks the
        // signature before it reads the body.
        for (k, v) in s.headers() {
            rb = rb.header(k, v);
        }
        let resp = rb.send().map_err(transport)?;
        let status = resp.status().as_u16();
        if resp.content_length().is_some_and(|n| n > MAX_ANSWER_BYTES) {
            return Err(Failure::Final(bad_answer("the answer is too large")));
        }
        let bytes = resp.bytes().map_err(transport)?;
        let parsed: Option<Value> = serde_json::from_slice(&bytes).ok().filter(|v: &Value| v.get("status").is_some());
        match (status, parsed) {
            (429 | 502 | 503 | 504, env) => {
                let detail = env.as_ref().and_then(|e| e.get("code")).and_then(Value::as_str).map(|c| format!(" ({c})")).unwrap_or_default();
                Err(Failure::Unreachable(Error::with(
                    ErrorCode::PlatformUnavailable,
                    format!("the platform answered HTTP {status}{detail}"),
                    format!("平台返回 HTTP {status}{detail}"),
                )))
            }
            (404, None) => Ok((404, Value::Null)),
            (_, Some(env)) => Ok((status, env)),
            (_, None) => Err(Failure::Final(bad_answer(&format!("HTTP {status} without a JSON envelope")))),
        }
    }

    /// Calls one interface; a query's answer is cached, and served stale
    /// while the platform is unreachable.
    pub fn call(&self, interface: &str, request: &Value) -> Result<Reply> {
        self.call_with(interface, request, &|_| {})
    }

    /// `call`, handing cache rows to `persist` (the engine writes them to its store).
    pub(crate) fn call_with(&self, interface: &str, request: &Value, persist: &dyn Fn(Vec<Write>)) -> Result<Reply> {
        check_interface(interface)?;
        let obj = request.as_object().ok_or_else(|| Error::invalid("request", "must be a JSON object"))?;
        let query = super::is_query(interface);
        let idempotent = is_idempotent(interface, request);
        let key = Cache::key(interface, request);
        let outcome = self.fetch(interface, obj, query, idempotent);
        match outcome {
            Ok((version, data)) => {
                let reply = Reply { interface: interface.into(), version, data, stale: false, fetched_at_ms: now_ms() };
                if query && self.cfg.cache {
                    let entry = CacheEntry { interface: interface.into(), fetched_at_ms: reply.fetched_at_ms, data: reply.data.clone() };
                    let evicted = self.cache.put(key.clone(), entry.clone(), self.cfg.cache_max_entries);
                    let mut writes = vec![Write::put(crate::client::TABLE, key, &entry)];
                    writes.extend(evicted.into_iter().map(|k| Write::delete(crate::client::TABLE, k)));
                    persist(writes);
                }
                Ok(reply)
            }
            Err(Failure::Final(e)) => Err(e),
            Err(Failure::Unreachable(e)) => {
                if query && self.cfg.cache {
                    if let Some(hit) = self.cache.get(&key) {
                        return Ok(Reply {
                            interface: interface.into(),
                            version: self.negotiated_version(),
                            data: hit.data,
                            stale: true,
                            fetched_at_ms: hit.fetched_at_ms,
                        });
                    }
                }
                Err(unreachable_error(e, query, idempotent, self.cfg.retries))
            }
        }
    }

    fn fetch(&self, interface: &str, obj: &Map<String, Value>, query: bool, idempotent: bool) -> Result<(Option<u32>, Value), Failure> {
        // Negotiation is itself a query: retried, and it makes a query fail
        // as "unreachable" (so the cache answers) when the platform is down.
        let version = self.negotiate_inner()?;
        // Every command, the source's unversioned three included, is served
        // with the engine's envelope under the negotiated version; the bare
        // `/api/<name>` forms answer the source's own shapes for other callers.
        let path = format!("{}/api/v{version}/{interface}", self.prefix);
        // Queries whose fields are all strings or numbers go as GET with a
        // query string (the source's form); everything else as a POST body.
        let as_get = query && obj.values().all(|v| v.is_string() || v.is_number());
        let (method, qs, body) = if as_get {
            let pairs: Vec<(String, String)> = obj.iter().map(|(k, v)| (k.clone(), v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))).collect();
            ("GET", Some(encode_query(&pairs)), Vec::new())
        } else {
            ("POST", None, serde_json::to_vec(obj).unwrap_or_default())
        };
        let (_, env) = self.with_retries(idempotent, || self.attempt(method, &path, qs.as_deref(), &body))?;
        let data = envelope_data(env).map_err(Failure::Final)?;
        Ok((Some(version), data))
    }

    // ------------------------------------------------------------ typed calls

    /// 实时号源查询: the slots of a project on a date (optionally one time slot).
    pub fn real_time_slots(&self, project_id: &str, date: &str, time_slot: Option<&str>) -> Result<Reply> {
        let mut q = json!({"project_id": project_id, "date": date});
        if let Some(t) = time_slot {
            q["time_slot"] = t.into();
        }
        self.call("real-time-slots", &q)
    }

    /// 号源预占: holds a place (confirm by `payment-status`).
    pub fn pre_book_slot(&self, req: &SlotRequest) -> Result<Reply> {
        self.call("pre-book-slot", &to_value(req))
    }

    /// 号源预约: books a place at once.
    pub fn book_slot(&self, req: &SlotRequest) -> Result<Reply> {
        self.call("book-slot", &to_value(req))
    }

    /// 预约申请: a booking request the hospital confirms.
    pub fn submit_booking_request(&self, req: &SlotRequest) -> Result<Reply> {
        self.call("submit-booking-request", &to_value(req))
    }

    /// 取消预约.
    pub fn cancel_slot(&self, booking_id: &str, request_id: Option<&str>) -> Result<Reply> {
        self.call("cancel-slot", &with_rid(json!({"booking_id": booking_id}), request_id))
    }

    /// 支付状态同步: `paid`, `unpaid`, `refunded`.
    pub fn payment_status(&self, booking_id: &str, payment_status: &str, request_id: Option<&str>) -> Result<Reply> {
        self.call("payment-status", &with_rid(json!({"booking_id": booking_id, "payment_status": payment_status}), request_id))
    }

    /// 排班同步: the hospital publishes schedules (the source's request shape).
    pub fn sync_schedule(&self, schedule: &Value) -> Result<Reply> {
        self.call("sync-schedule", schedule)
    }

    /// 停诊通知.
    pub fn stop_service(&self, device_id: &str, project_id: &str, stop_date: &str, request_id: Option<&str>) -> Result<Reply> {
        self.call("stop-service", &with_rid(json!({"device_id": device_id, "project_id": project_id, "stop_date": stop_date}), request_id))
    }

    /// 项目信息查询.
    pub fn project_info(&self, project_id: &str) -> Result<Reply> {
        self.call("project-info", &json!({"project_id": project_id}))
    }

    /// 设备信息查询.
    pub fn device_info(&self, device_id: &str) -> Result<Reply> {
        self.call("device-info", &json!({"device_id": device_id}))
    }

    /// 预约详情.
    pub fn booking_info(&self, booking_id: &str) -> Result<Reply> {
        self.call("booking-info", &json!({"booking_id": booking_id}))
    }
}

fn check_interface(interface: &str) -> Result<()> {
    if super::interfaces().contains(&interface) {
        return Ok(());
    }
    let name: String = interface.chars().take(64).collect();
    Err(Error::with(ErrorCode::UnknownInterface, format!("`{name}` is not an interface of the platform"), format!("`{name}` 不是平台接口")))
}

fn to_value(req: &impl Serialize) -> Value {
    serde_json::to_value(req).unwrap_or(Value::Null)
}

fn with_rid(mut v: Value, request_id: Option<&str>) -> Value {
    if let Some(r) = request_id {
        v["request_id"] = r.into();
    }
    v
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A TLS file named in the config that cannot be used (its path is the operator's, not personal data).
fn tls_config(key: &str, why: &str, why_zh: &str) -> Error {
    Error::with(ErrorCode::InvalidConfig, format!("config `platform.{key}`: {why}"), format!("配置项 `platform.{key}` 无效：{why_zh}"))
}

fn read_pem(key: &str, path: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        Error::with(
            ErrorCode::InvalidConfig,
            format!("config `platform.{key}`: cannot read {path}: {e}"),
            format!("配置项 `platform.{key}` 无效：无法读取文件 {path}"),
        )
    })
}

fn bad_answer(why: &str) -> Error {
    // The detail (the platform's own text, in any language) stays in `message`.
    Error::with(ErrorCode::PlatformBadResponse, format!("the platform's answer is not a valid envelope: {why}"), "平台返回的数据不是合法的应答")
}

fn transport(e: reqwest::Error) -> Failure {
    // reqwest's text names the URL (no personal data: ids travel in bodies or
    // in the query, which `without_url` drops).
    let e = e.without_url();
    if e.is_timeout() {
        Failure::Unreachable(Error::with(ErrorCode::PlatformTimeout, format!("the platform did not answer in time: {e}"), "平台响应超时"))
    } else {
        Failure::Unreachable(Error::with(ErrorCode::PlatformUnavailable, format!("the platform is unreachable: {e}"), "平台无法访问（网络不通或平台未运行）"))
    }
}

/// The envelope's `data`, or its error with the platform's own code.
fn envelope_data(env: Value) -> Result<Value> {
    match env.get("status").and_then(Value::as_str) {
        Some("success") => Ok(env.get("data").cloned().unwrap_or(Value::Null)),
        Some("error") => {
            let text = |k: &str| env.get(k).and_then(Value::as_str).unwrap_or("").chars().take(500).collect::<String>();
            match env.get("code").and_then(Value::as_str).and_then(ErrorCode::from_str_code) {
                Some(code) => Err(Error::with(code, text("message"), text("message_zh"))),
                None => Err(bad_answer(&format!(
                    "unknown error code `{}`: {}",
                    env.get("code").and_then(Value::as_str).unwrap_or("").chars().take(64).collect::<String>(),
                    text("message")
                ))),
            }
        }
        _ => Err(bad_answer("`status` is neither success nor error")),
    }
}

fn unreachable_error(e: Error, query: bool, idempotent: bool, retries: u32) -> Error {
    let tried = if idempotent { format!("after {} attempts", retries + 1) } else { "after 1 attempt".to_string() };
    let tried_zh = if idempotent { format!("共尝试 {} 次", retries + 1) } else { "仅尝试 1 次".to_string() };
    let (en, zh) = if query {
        (format!("{} ({tried}; no cached answer for this query)", e.message()), format!("{}（{tried_zh}；本查询没有缓存的应答）", e.message_zh()))
    } else if idempotent {
        (format!("{} ({tried}; resend with the same request_id later)", e.message()), format!("{}（{tried_zh}；请稍后以相同 request_id 重发）", e.message_zh()))
    } else {
        (
            format!("{} ({tried}; a change without request_id is not retried and may or may not have been applied: send it with a request_id so it can be retried safely)", e.message()),
            format!("{}（{tried_zh}；不带 request_id 的变更不会重试，可能已生效也可能未生效：请带 request_id 发送以便安全重试）", e.message_zh()),
        )
    };
    Error::with(e.code(), en, zh)
}

// ------------------------------------------------------------------ engine commands

fn client_of(pool: &Pool, state: &super::ClientState) -> Result<Arc<PlatformClient>> {
    let cfg = pool.cfg.platform.as_ref().ok_or_else(not_configured)?;
    let mut slot = state.client.lock();
    if let Some(c) = slot.as_ref() {
        return Ok(c.clone());
    }
    let c = Arc::new(PlatformClient::with_cache(cfg.clone(), state.cache.clone())?);
    *slot = Some(c.clone());
    Ok(c)
}

/// `platform-call {interface, request}`: the platform's answer, marked stale
/// when it comes from the cache.
pub(super) fn platform_call(pool: &Pool, state: &super::ClientState, r: &Req) -> Result<Value> {
    if pool.cfg.platform.is_none() {
        return Err(not_configured());
    }
    let interface = r.str("interface")?;
    let empty = Value::Object(Map::new());
    let request = r.get("request").unwrap_or(&empty);
    // Refused before the HTTP client is even built.
    check_interface(interface)?;
    if !request.is_object() {
        return Err(Error::invalid("request", "must be a JSON object"));
    }
    let client = client_of(pool, state)?;
    let persist = |writes: Vec<Write>| {
        if let Some(store) = &pool.store {
            // The cache is not an acknowledged change: no need to wait for the
            // fsync; close() flushes what is queued.
            let _ = store.enqueue(writes);
        }
    };
    Ok(client.call_with(interface, request, &persist)?.to_value(&pool.cfg.tz))
}

/// `platform-info`: the configured platform (never the secret), the
/// negotiated version, the cache size; `{"negotiate": true}` asks the platform.
pub(super) fn platform_info(pool: &Pool, state: &super::ClientState, r: &Req) -> Result<Value> {
    let interfaces = super::interfaces();
    let Some(cfg) = pool.cfg.platform.as_ref() else {
        return Ok(json!({"built": true, "configured": false, "interfaces": interfaces, "cached_entries": state.cache.len()}));
    };
    let negotiated = if r.opt_bool("negotiate")?.unwrap_or(false) {
        Some(client_of(pool, state)?.negotiate()?)
    } else {
        state.client.lock().as_ref().and_then(|c| c.negotiated_version())
    };
    Ok(json!({
        "built": true,
        "configured": true,
        "base_url": cfg.base_url,
        "app_id": cfg.app_id,
        "versions": cfg.versions.iter().map(|v| format!("v{v}")).collect::<Vec<_>>(),
        "negotiated": negotiated.map(|v| format!("v{v}")),
        "timeout_ms": cfg.timeout_ms,
        "connect_timeout_ms": cfg.connect_timeout_ms,
        "retries": cfg.retries,
        "backoff_ms": cfg.backoff_ms,
        "max_backoff_ms": cfg.max_backoff_ms,
        "cache": cfg.cache,
        "cached_entries": state.cache.len(),
        "interfaces": interfaces,
    }))
}

impl Drop for super::ClientState {
    fn drop(&mut self) {
        // reqwest's blocking client panics when dropped on an async runtime
        // thread (an engine dropped at the end of an async main): drop it on
        // a plain thread of its own.
        if let Some(c) = self.client.get_mut().take() {
            let _ = std::thread::Builder::new().name("yilian-client-drop".into()).spawn(move || drop(c)).map(|h| h.join());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_errors_keep_their_code() {
        let e = envelope_data(json!({"status": "error", "code": "SLOT_FULL", "message": "full", "message_zh": "满"})).unwrap_err();
        assert_eq!((e.code(), e.message(), e.message_zh()), (ErrorCode::SlotFull, "full", "满"));
        let e = envelope_data(json!({"status": "error", "code": "NEW_CODE"})).unwrap_err();
        assert_eq!(e.code(), ErrorCode::PlatformBadResponse);
        assert_eq!(envelope_data(json!({"status": "success", "data": {"a": 1}})).unwrap(), json!({"a": 1}));
        assert_eq!(envelope_data(json!({"status": "odd"})).unwrap_err().code(), ErrorCode::PlatformBadResponse);
    }

    #[test]
    fn unreachable_messages_say_what_to_do() {
        let base = Error::new(ErrorCode::PlatformUnavailable);
        assert!(unreachable_error(base.clone(), false, false, 3).message().contains("request_id"));
        assert!(unreachable_error(base.clone(), true, true, 3).message().contains("after 4 attempts"));
        assert_eq!(unreachable_error(base, true, true, 3).code(), ErrorCode::PlatformUnavailable);
    }

    #[test]
    fn base_url_prefix_is_kept() {
        let cfg =
            PlatformConfig::parse(&json!({"base_url": "https://p.example:8443/gw/", "app_id": "A", "secret": "demo-secret-C001-at-least-32-bytes"})).unwrap();
        let c = PlatformClient::new(cfg).unwrap();
        assert_eq!((c.origin.as_str(), c.prefix.as_str()), ("https://p.example:8443", "/gw"));
    }

    #[test]
    fn unreachable_platform_fails_clearly_and_unknown_interfaces_are_refused() {
        // Port 9 on loopback (discard) is closed on test machines: connection refused.
        let cfg = PlatformConfig::parse(
            &json!({"base_url": "http://127.0.0.1:9", "app_id": "A", "secret": "demo-secret-C001-at-least-32-bytes", "retries": 1, "backoff_ms": 1}),
        )
        .unwrap();
        let c = PlatformClient::new(cfg).unwrap();
        let e = c.call("book-slot", &json!({"patient_id": "P"})).unwrap_err();
        assert_eq!(e.code(), ErrorCode::PlatformUnavailable, "{e}");
        assert!(e.message().contains("request_id"), "{e}");
        assert_eq!(c.call("no-such-interface", &json!({})).unwrap_err().code(), ErrorCode::UnknownInterface);
        assert_eq!(c.call("platform-call", &json!({})).unwrap_err().code(), ErrorCode::UnknownInterface);
        assert_eq!(c.call("real-time-slots", &json!([])).unwrap_err().code(), ErrorCode::InvalidField);
    }
}
