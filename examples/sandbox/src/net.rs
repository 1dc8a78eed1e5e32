//! The sandbox's network layer (issue #16 items 1, 3, 9): its own accept
//! loop over hyper, with a header-read timeout, a whole-request timeout, a
//! connection cap with a few slots kept for health probes, per-client rate
//! limits, a lockout after repeated signature failures, optional TLS (rustls
//! over ring, optionally mutual), the JSON envelope on every HTTP-level
//! error, and the access log (`crate::access_log`).
//!
//! Invariants:
//! - At most `max_connections` connections are served at once; beyond them
//!   up to `health_reserve` more are accepted for one `GET /healthz` each
//!   (anything else gets 503), and past those a connection gets an immediate
//!   503 envelope and is closed. The cap stays well under the process's file
//!   limit, so `accept` keeps working.
//! - A connection that has not sent a whole request head within
//!   `header_timeout` is closed; hyper starts that timer whenever it waits
//!   for a head, so it is also the keep-alive idle timeout. A request whose
//!   body and answer take longer than `request_timeout` (`upload_timeout` for
//!   `/api/v1/upload-report`) gets 408 with the envelope (an engine call
//!   already running still completes; its `request_id` makes a retry safe).
//! - Rate limits and lockouts are keyed by the peer's IP address only; the
//!   tables are bounded (`MAX_TRACKED` entries) and pruned as they fill.
//!
//! Lock order: the rate table and the lockout table are separate mutexes,
//! never held together, never held across an await.
//!
//! What hyper answers on its own — a request line or header it cannot parse
//! (400), a head larger than its read buffer (`MAX_HEAD_BYTES`: 431) — it
//! writes as a bare head and closes; `crate::bare_errors` swaps that head
//! for the envelope on the way out. A head that does not arrive in time is
//! closed without an answer.

use crate::access_log::AccessLog;
use crate::{failure, AppState};
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use yilian_core::{Error, ErrorCode};

/// Longest request target (path and query) answered normally; longer gets 414.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Largest sum of header names and values answered normally; larger gets 431.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// hyper's read buffer: a request head must fit in it (hyper answers 431 itself past it).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Most clients tracked by the rate and lockout tables.
const MAX_TRACKED: usize = 100_000;

/// Per-client token bucket: `per_sec` tokens a second, at most `burst`.
/// `per_sec == 0` turns the limit off.
#[derive(Clone, Copy, Debug)]
pub struct RateLimit {
    pub per_sec: f64,
    pub burst: f64,
}

/// `failures` signature refusals from one IP within `window` lock it out for `lock`.
/// `failures == 0` turns the lockout off.
#[derive(Clone, Copy, Debug)]
pub struct Lockout {
    pub failures: u32,
    pub window: Duration,
    pub lock: Duration,
}

/// The network settings (flags of the binary; see the README's sandbox section).
#[derive(Clone)]
pub struct NetOptions {
    pub header_timeout: Duration,
    pub request_timeout: Duration,
    pub upload_timeout: Duration,
    pub max_connections: usize,
    pub health_reserve: usize,
    pub rate: RateLimit,
    pub lockout: Lockout,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Plain HTTP on a non-loopback address was asked for explicitly.
    pub insecure_http: bool,
    pub access_log: Option<Arc<AccessLog>>,
}

/// The default connection cap: min(512, half the file limit).
pub fn default_max_connections() -> usize {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we pass and nothing else.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0;
    let half = if ok && lim.rlim_cur != libc::RLIM_INFINITY { (lim.rlim_cur / 2) as usize } else { 512 };
    half.clamp(8, 512)
}

impl Default for NetOptions {
    fn default() -> Self {
        NetOptions {
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            upload_timeout: Duration::from_secs(120),
            max_connections: default_max_connections(),
            health_reserve: 4,
            rate: RateLimit { per_sec: 100.0, burst: 200.0 },
            lockout: Lockout { failures: 20, window: Duration::from_secs(60), lock: Duration::from_secs(300) },
            tls: None,
            insecure_http: false,
            access_log: None,
        }
    }
}

impl NetOptions {
    /// What `/healthz` says about the transport (nothing sensitive).
    pub fn view(&self) -> serde_json::Value {
        let mut v = serde_json::json!({"tls": self.tls.is_some()});
        if self.tls.is_none() && self.insecure_http {
            v["insecure_http"] = true.into();
            v["warning"] = "plain HTTP on a non-loopback address (--insecure-http): requests and answers travel unencrypted".into();
        }
        v
    }
}

/// The peer's address, in every request's extensions.
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

/// Marks a request served on a reserved (over-the-cap) connection.
#[derive(Clone, Copy)]
struct Reserved;

struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Default)]
struct Failures {
    recent: Vec<Instant>,
    locked_until: Option<Instant>,
}

/// State shared by every connection: in each request's extensions.
pub struct Shared {
    pub opts: NetOptions,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
    failures: Mutex<HashMap<IpAddr, Failures>>,
}

impl Shared {
    pub fn new(opts: NetOptions) -> Arc<Shared> {
        Arc::new(Shared { opts, buckets: Default::default(), failures: Default::default() })
    }

    /// Takes a token; `Err(seconds to wait)` when the bucket is empty.
    fn take_token(&self, ip: IpAddr) -> Result<(), u64> {
        let RateLimit { per_sec, burst } = self.opts.rate;
        if per_sec <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut map = lock(&self.buckets);
        if map.len() >= MAX_TRACKED && !map.contains_key(&ip) {
            // Full buckets hold nothing worth keeping.
            map.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * per_sec < burst);
        }
        let b = map.entry(ip).or_insert(Bucket { tokens: burst, at: now });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * per_sec).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - b.tokens) / per_sec).ceil().max(1.0) as u64)
        }
    }

    /// Counts one signature refusal from `ip`.
    pub fn signature_failed(&self, ip: IpAddr) {
        let Lockout { failures, window, lock: lock_for } = self.opts.lockout;
        if failures == 0 {
            return;
        }
        let now = Instant::now();
        let mut map = lock(&self.failures);
        if map.len() >= MAX_TRACKED && !map.contains_key(&ip) {
            map.retain(|_, f| f.locked_until.is_some_and(|t| t > now) || f.recent.last().is_some_and(|t| now.duration_since(*t) < window));
        }
        let f = map.entry(ip).or_default();
        f.recent.retain(|t| now.duration_since(*t) < window);
        f.recent.push(now);
        if f.recent.len() >= failures as usize {
            f.locked_until = Some(now + lock_for);
            f.recent.clear();
        }
    }

    /// `Some(seconds left)` while `ip` is locked out.
    fn locked(&self, ip: IpAddr) -> Option<u64> {
        let map = lock(&self.failures);
        let until = map.get(&ip)?.locked_until?;
        let left = until.checked_duration_since(Instant::now())?;
        Some(left.as_secs().max(1))
    }
}

/// A poisoned table is still a valid table (each update is a few plain stores).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn envelope(code: ErrorCode, status: StatusCode, en: String, zh: String) -> Response {
    failure(&Error::with(code, en, zh), Some(status))
}

fn retry_after(mut r: Response, secs: u64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// The outer middleware of every request served by [`serve_with`]: size
/// limits, the reserved-slot rule, lockout, rate limit, then the request
/// timeout around the rest. A router used on its own (without these
/// extensions) passes straight through.
pub async fn guard(req: Request, next: Next) -> Response {
    let Some(net) = req.extensions().get::<Arc<Shared>>().cloned() else {
        return next.run(req).await;
    };
    let peer = req.extensions().get::<Peer>().map(|p| p.0.ip());
    let path = req.uri().path().to_string();
    let health = path == "/healthz";
    if req.extensions().get::<Reserved>().is_some() && !health {
        return busy();
    }
    let target_len = req.uri().path_and_query().map(|p| p.as_str().len()).unwrap_or(0);
    if target_len > MAX_URI_BYTES {
        return envelope(
            ErrorCode::UriTooLong,
            StatusCode::URI_TOO_LONG,
            format!("the request target is longer than {MAX_URI_BYTES} bytes"),
            format!("请求地址超过 {MAX_URI_BYTES} 字节"),
        );
    }
    let header_len: usize = req.headers().iter().map(|(k, v)| k.as_str().len() + v.len()).sum();
    if header_len > MAX_HEADER_BYTES {
        return envelope(
            ErrorCode::HeadersTooLarge,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!("the request headers exceed {MAX_HEADER_BYTES} bytes"),
            format!("请求头超过 {MAX_HEADER_BYTES} 字节"),
        );
    }
    if let (Some(ip), false) = (peer, health) {
        if let Some(left) = net.locked(ip) {
            let r = envelope(
                ErrorCode::ClientLockedOut,
                StatusCode::TOO_MANY_REQUESTS,
                "too many failed signatures from this client; it is locked out for a while".into(),
                "该客户端签名校验失败次数过多，已被暂时锁定".into(),
            );
            return retry_after(r, left);
        }
        if let Err(wait) = net.take_token(ip) {
            let r = envelope(
                ErrorCode::RateLimited,
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many requests from this client; retry after {wait} s"),
                format!("该客户端请求过于频繁，请 {wait} 秒后重试"),
            );
            return retry_after(r, wait);
        }
    }
    let limit = if path == "/api/v1/upload-report" { net.opts.upload_timeout } else { net.opts.request_timeout };
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => {
            let mut r = envelope(
                ErrorCode::RequestTimeout,
                StatusCode::REQUEST_TIMEOUT,
                format!("the request was not received and answered within {} s", limit.as_secs()),
                format!("未能在 {} 秒内收到并处理完整请求", limit.as_secs()),
            );
            r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            r
        }
    }
}

fn busy_error() -> Error {
    Error::with(
        ErrorCode::ConnectionLimit,
        "the server is at its connection limit; only /healthz is answered on this connection, retry shortly",
        "服务器连接数已达上限，此连接只应答健康检查，请稍后重试",
    )
}

fn busy() -> Response {
    let mut r = failure(&busy_error(), Some(StatusCode::SERVICE_UNAVAILABLE));
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// A whole 503 answer written straight onto a connection past every slot.
fn busy_bytes() -> Vec<u8> {
    let body = busy_error().to_envelope().to_string();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json; charset=utf-8\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Loads `--tls-cert`, `--tls-key` and, for mutual TLS, `--tls-client-ca` (PEM).
pub fn tls_config(cert: &std::path::Path, key: &std::path::Path, client_ca: Option<&std::path::Path>) -> Result<Arc<rustls::ServerConfig>, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("--tls-cert {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("--tls-cert {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("--tls-cert {}: no PEM certificate in the file", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("--tls-key {}: no usable PEM private key: {e}", key.display()))?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions().map_err(|e| format!("TLS: {e}"))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(ca).map_err(|e| format!("--tls-client-ca {}: {e}", ca.display()))? {
                let c = c.map_err(|e| format!("--tls-client-ca {}: {e}", ca.display()))?;
                roots.add(c).map_err(|e| format!("--tls-client-ca {}: {e}", ca.display()))?;
            }
            if roots.is_empty() {
                return Err(format!("--tls-client-ca {}: no PEM certificate in the file", ca.display()));
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| format!("--tls-client-ca {}: {e}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut cfg = builder.with_single_cert(chain, key).map_err(|e| format!("--tls-cert/--tls-key: {e}"))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Whether plain HTTP may listen on `addr` without `--insecure-http`.
pub fn plain_http_allowed(addr: &SocketAddr, insecure_http: bool) -> bool {
    addr.ip().is_loopback() || insecure_http
}

/// Serves `app` on `listener` until `stop` is cancelled, then stops
/// accepting, lets every connection finish its in-flight request and waits
/// for them (SSE streams end with the state's shutdown token).
pub(crate) async fn accept_loop(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    net: Arc<Shared>,
    st: Arc<AppState>,
    stop: tokio_util::sync::CancellationToken,
) {
    let tracker = tokio_util::task::TaskTracker::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(net.opts.max_connections.max(1)));
    let reserve = Arc::new(tokio::sync::Semaphore::new(net.opts.health_reserve));
    let acceptor = net.opts.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    let active = Arc::new(AtomicUsize::new(0));
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            r = listener.accept() => r,
        };
        let (tcp, peer) = match accepted {
            Ok(c) => c,
            Err(_) => {
                // Out of file descriptors or a connection reset before accept:
                // back off a little instead of spinning.
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let (permit, reserved) = match slots.clone().try_acquire_owned() {
            Ok(p) => (p, false),
            Err(_) => match reserve.clone().try_acquire_owned() {
                Ok(p) => (p, true),
                Err(_) => {
                    // Past every slot: a quick 503 (plain HTTP) or a close.
                    if acceptor.is_none() {
                        tracker.spawn(async move {
                            let mut tcp = tcp;
                            let _ = tokio::time::timeout(Duration::from_secs(1), tcp.write_all(&busy_bytes())).await;
                            let _ = tcp.shutdown().await;
                        });
                    }
                    continue;
                }
            },
        };
        let (app, net, st, stop, acceptor, active) = (app.clone(), net.clone(), st.clone(), stop.clone(), acceptor.clone(), active.clone());
        tracker.spawn(async move {
            let _permit = permit;
            active.fetch_add(1, Ordering::Relaxed);
            let header_timeout = if reserved { net.opts.header_timeout.min(Duration::from_secs(2)) } else { net.opts.header_timeout };
            match acceptor {
                None => serve_conn(tcp, peer, reserved, header_timeout, app, net, stop).await,
                Some(acc) => {
                    // The handshake is bounded like a request head.
                    if let Ok(Ok(tls)) = tokio::time::timeout(header_timeout, acc.accept(tcp)).await {
                        serve_conn(tls, peer, reserved, header_timeout, app, net, stop).await;
                    }
                }
            }
            active.fetch_sub(1, Ordering::Relaxed);
            let _ = st;
        });
    }
    drop(listener);
    tracker.close();
    tracker.wait().await;
}

async fn serve_conn<IO>(
    io: IO,
    peer: SocketAddr,
    reserved: bool,
    header_timeout: Duration,
    app: axum::Router,
    net: Arc<Shared>,
    stop: tokio_util::sync::CancellationToken,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use tower::ServiceExt;
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(Peer(peer));
        req.extensions_mut().insert(net.clone());
        if reserved {
            req.extensions_mut().insert(Reserved);
        }
        app.clone().oneshot(req.map(axum::body::Body::new))
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(header_timeout).max_buf_size(MAX_HEAD_BYTES).keep_alive(!reserved);
    let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(crate::bare_errors::Enveloped::new(io)), svc);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = stop.cancelled() => {}
    }
    // Shutting down: finish the request in flight, take no new one.
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}
