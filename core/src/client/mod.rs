//! The platform client (I2): calls the unified booking platform's interfaces
//! over HTTP for a hospital or community engine, signed (HMAC-SM3), with a
//! timeout per call, retries with exponential backoff for idempotent calls
//! only, interface version negotiation, and a cache of the last good query
//! answers served, marked stale, while the platform is unreachable.
//!
//! Always compiled: the configuration (`platform` in the engine config),
//! request signing and verification ([`sign`], which the sandbox uses), the
//! cache. Only with the cargo feature `client`: the HTTP transport
//! ([`PlatformClient`], reqwest's blocking client over rustls). Without it
//! `platform-call` and `platform-info` answer `CLIENT_NOT_BUILT`.
//!
//! The transport is blocking: never call it on a tokio runtime thread
//! (reqwest's blocking client panics there); async hosts use
//! `spawn_blocking`, as the sandbox does for every engine call.

pub mod sign;

#[cfg(feature = "client")]
mod http;
#[cfg(feature = "client")]
pub use http::{PlatformClient, Reply, SlotRequest};

use crate::error::{Error, ErrorCode, Result};
use crate::request::Req;
use crate::store::Snapshot;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// The module's commands, each declared once (see `command.rs`);
/// `platform-call` may carry a change, so it is one.
pub(crate) type ClientHandler = fn(&crate::pool::Pool, &ClientState, &Req) -> Result<Value>;

crate::command::command_table! { pub(crate) COMMANDS: ClientHandler;
    "platform-call", Change, NETWORK, NONE => |p, c, r| dispatch(p, c, "platform-call", r);
    "platform-info", Query, NETWORK, NONE => |p, c, r| dispatch(p, c, "platform-info", r);
}

/// Every command an engine serves, with its kind: what a platform (an
/// engine behind HTTP) answers to, read from the domains' tables.
fn catalogue() -> &'static [crate::command::Decl] {
    static ALL: std::sync::LazyLock<Vec<crate::command::Decl>> = std::sync::LazyLock::new(|| {
        let mut v: Vec<crate::command::Decl> = Vec::new();
        v.extend(crate::commands::COMMANDS.iter().map(|c| c.decl));
        v.extend(crate::commands::ENGINE.iter().map(|c| c.decl));
        v.extend(crate::lab::COMMANDS.iter().map(|c| c.decl));
        v.extend(crate::referral::COMMANDS.iter().map(|c| c.decl));
        v.extend(COMMANDS.iter().map(|c| c.decl));
        v
    });
    &ALL
}

/// `true` for a query: never changes state, so it is sent as GET, cached
/// and retried.
pub(crate) fn is_query(interface: &str) -> bool {
    catalogue().iter().any(|c| c.name == interface && c.kind == crate::command::Kind::Query)
}

crate::store::table!(
    /// The platform client's last good answers (served stale while offline).
    pub(crate) TABLE = "cache"
);

pub use crate::config::platform::{negotiate, parse_version, PlatformConfig};

/// The interfaces the client may call: every engine command except this module's own.
pub fn interfaces() -> Vec<&'static str> {
    catalogue().iter().map(|c| c.name).filter(|c| !COMMANDS.iter().any(|m| m.decl.name == *c)).collect()
}

/// `true` when a call may be retried: a query, or a change that carries a
/// non-empty `request_id` (the platform replays the first answer for it).
pub fn is_idempotent(interface: &str, request: &Value) -> bool {
    is_query(interface) || request.get("request_id").and_then(Value::as_str).is_some_and(|s| !s.trim().is_empty())
}

// ------------------------------------------------------------------ cache

/// One cached answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CacheEntry {
    pub interface: String,
    /// Wall-clock Unix milliseconds of the successful fetch.
    pub fetched_at_ms: i64,
    pub data: Value,
}

/// The last good answer of each query (interface + request), bounded in entries.
#[derive(Default)]
pub struct Cache {
    map: Mutex<HashMap<String, CacheEntry>>,
}

impl Cache {
    /// The key: interface, newline, the request as JSON with sorted keys
    /// (serde_json's map is ordered, so equal requests give equal keys).
    pub fn key(interface: &str, request: &Value) -> String {
        format!("{interface}\n{request}")
    }
    pub fn get(&self, key: &str) -> Option<CacheEntry> {
        self.map.lock().get(key).cloned()
    }
    pub fn len(&self) -> usize {
        self.map.lock().len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Stores an entry; returns the keys evicted (the oldest) to stay within `max`.
    pub fn put(&self, key: String, entry: CacheEntry, max: usize) -> Vec<String> {
        let mut m = self.map.lock();
        m.insert(key.clone(), entry);
        let mut evicted = Vec::new();
        while m.len() > max.max(1) {
            let oldest = m.iter().filter(|(k, _)| **k != key).min_by_key(|(_, e)| e.fetched_at_ms).map(|(k, _)| k.clone());
            match oldest {
                Some(k) => {
                    m.remove(&k);
                    evicted.push(k);
                }
                None => break,
            }
        }
        evicted
    }
    fn restore(&self, key: String, entry: CacheEntry) {
        self.map.lock().insert(key, entry);
    }
}

// ------------------------------------------------------------------ links to named engines

/// One client per named link (an upstream hospital), made on first use and
/// kept: each keeps its connections, its negotiated version and its cache.
#[derive(Default)]
pub struct Links {
    #[cfg(feature = "client")]
    map: Mutex<HashMap<String, Arc<PlatformClient>>>,
}

impl Links {
    /// The client of link `name`, made from `cfg` the first time.
    #[cfg(feature = "client")]
    pub(crate) fn get(&self, name: &str, cfg: &PlatformConfig) -> Result<Arc<PlatformClient>> {
        let mut m = self.map.lock();
        if let Some(c) = m.get(name) {
            return Ok(c.clone());
        }
        // Built on a thread of its own (see `upstream::call_hospital`).
        let cfg = cfg.clone();
        let built = std::thread::Builder::new().name("yilian-client-new".into()).spawn(move || PlatformClient::new(cfg));
        let c = match built {
            Ok(h) => Arc::new(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))?),
            Err(e) => return Err(Error::with(ErrorCode::PlatformUnavailable, format!("cannot start a thread for the client: {e}"), "无法启动客户端线程")),
        };
        m.insert(name.to_string(), c.clone());
        Ok(c)
    }
}

#[cfg(feature = "client")]
impl Drop for Links {
    fn drop(&mut self) {
        // As `ClientState`'s: reqwest's blocking client panics when dropped
        // on an async runtime's thread (an engine dropped in an async main).
        let clients: Vec<_> = self.map.get_mut().drain().map(|(_, c)| c).collect();
        if !clients.is_empty() {
            let _ = std::thread::Builder::new().name("yilian-client-drop".into()).spawn(move || drop(clients)).map(|h| h.join());
        }
    }
}

// ------------------------------------------------------------------ engine state and commands

/// The engine's client state: the cache (restored from `crate::client::TABLE` on
/// open) and, with the feature, the HTTP client built on first use.
#[derive(Default)]
pub struct ClientState {
    cache: Arc<Cache>,
    #[cfg(feature = "client")]
    client: Mutex<Option<Arc<PlatformClient>>>,
}

/// Restores the cached answers from the store.
pub(crate) fn recover(client: &ClientState, snap: &Snapshot) -> Result<()> {
    for (k, body) in snap.of(crate::client::TABLE) {
        // A cache row that no longer parses is only a lost cache entry, not a
        // corrupt store: it is skipped (and replaced on the next fetch).
        if let Ok(e) = serde_json::from_str::<CacheEntry>(body) {
            client.cache.restore(k.to_string(), e);
        }
    }
    Ok(())
}

#[cfg(not(feature = "client"))]
fn not_built() -> Error {
    Error::with(
        ErrorCode::ClientNotBuilt,
        "this build of yilian has no platform client: build yilian-core with the cargo feature `client`",
        "本版本未编译平台客户端：请以 cargo 特性 `client` 编译 yilian-core",
    )
}

#[cfg_attr(not(feature = "client"), allow(dead_code))]
fn not_configured() -> Error {
    Error::with(
        ErrorCode::PlatformNotConfigured,
        "no platform is configured: add a `platform` object (base_url, app_id, secret) to the engine config",
        "未配置平台：请在引擎配置中加入 `platform` 对象（base_url、app_id、secret）",
    )
}

fn dispatch(pool: &crate::pool::Pool, client: &ClientState, command: &str, r: &Req) -> Result<Value> {
    #[cfg(feature = "client")]
    {
        match command {
            "platform-info" => http::platform_info(pool, client, r),
            _ => http::platform_call(pool, client, r),
        }
    }
    #[cfg(not(feature = "client"))]
    {
        let _ = (pool, client, command, r);
        Err(not_built())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg(extra: Value) -> Result<PlatformConfig> {
        let mut v = json!({"base_url": "http://127.0.0.1:8080/", "app_id": "C001-HIS", "secret": "demo-secret-C001-at-least-32-bytes"});
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        PlatformConfig::parse(&v)
    }

    #[test]
    fn config_defaults_and_validation() {
        let c = cfg(json!({})).unwrap();
        assert_eq!(c.base_url, "http://127.0.0.1:8080");
        assert_eq!((c.timeout_ms, c.connect_timeout_ms, c.retries, c.backoff_ms, c.versions.clone()), (5000, 3000, 2, 200, vec![1]));
        assert!(!format!("{c:?}").contains("demo-secret"));
        for bad in [
            json!({"base_url": "ftp://x"}),
            json!({"base_url": "http://"}),
            json!({"base_url": "http://h/?q=1"}),
            json!({"app_id": ""}),
            json!({"app_id": "有中文"}),
            json!({"secret": "short"}),
            json!({"secret": "thirty-one-bytes-is-too-short!!"}),
            json!({"timeout_ms": 0}),
            json!({"retries": 11}),
            json!({"versions": []}),
            json!({"versions": ["1"]}),
            json!({"versions": ["v0"]}),
            json!({"backoff_ms": 100, "max_backoff_ms": 10}),
            json!({"unknown_key": 1}),
            json!({"cache_max_entries": 0}),
        ] {
            let e = cfg(bad.clone()).unwrap_err();
            assert_eq!(e.code(), ErrorCode::InvalidConfig, "{bad}");
            assert!(!e.message().contains("demo-secret"), "{e}");
        }
        assert_eq!(PlatformConfig::parse(&json!("x")).unwrap_err().code(), ErrorCode::InvalidConfig);
        let e = PlatformConfig::parse(&json!({"base_url": "http://h"})).unwrap_err();
        assert!(e.message().contains("app_id"), "{e}");
    }

    #[test]
    fn engine_config_carries_the_platform() {
        let c = crate::config::Config::parse(r#"{"platform":{"base_url":"https://p.example","app_id":"A","secret":"demo-secret-C001-at-least-32-bytes"}}"#)
            .unwrap();
        assert_eq!(c.platform.unwrap().base_url, "https://p.example");
        let e = crate::config::Config::parse(r#"{"platform":{"base_url":"https://p.example","app_id":"A"}}"#).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidConfig);
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let c = cfg(json!({"backoff_ms": 100, "max_backoff_ms": 1000})).unwrap();
        assert_eq!((0..6).map(|n| c.backoff(n)).collect::<Vec<_>>(), vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(c.backoff(200), 1000);
    }

    #[test]
    fn negotiation_picks_the_highest_common_version() {
        assert_eq!(negotiate(&[1, 2, 3], &[1, 3, 4]).unwrap(), 3);
        assert_eq!(negotiate(&[1], &[1]).unwrap(), 1);
        let e = negotiate(&[2], &[1]).unwrap_err();
        assert_eq!(e.code(), ErrorCode::NoCommonVersion);
        assert!(e.message().contains("[v1]") && e.message().contains("[v2]"), "{e}");
        assert_eq!(parse_version("v12"), Some(12));
        for bad in ["1", "v", "v0", "v1.1", "V1", "v-1"] {
            assert_eq!(parse_version(bad), None, "{bad}");
        }
    }

    #[test]
    fn idempotency_of_calls() {
        assert!(is_idempotent("real-time-slots", &json!({})));
        assert!(!is_idempotent("pre-book-slot", &json!({"patient_id": "P"})));
        assert!(!is_idempotent("pre-book-slot", &json!({"request_id": " "})));
        assert!(is_idempotent("pre-book-slot", &json!({"request_id": "r-1"})));
        assert!(interfaces().contains(&"book-slot") && !interfaces().contains(&"platform-call"));
    }

    #[test]
    fn cache_keys_are_canonical_and_eviction_drops_the_oldest() {
        let a: Value = serde_json::from_str(r#"{"date":"2024-10-30","project_id":"P001"}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"project_id":"P001","date":"2024-10-30"}"#).unwrap();
        assert_eq!(Cache::key("real-time-slots", &a), Cache::key("real-time-slots", &b));
        let c = Cache::default();
        let e = |t| CacheEntry { interface: "x".into(), fetched_at_ms: t, data: json!(t) };
        assert!(c.put("k1".into(), e(1), 2).is_empty());
        assert!(c.put("k2".into(), e(2), 2).is_empty());
        assert_eq!(c.put("k3".into(), e(3), 2), vec!["k1".to_string()]);
        assert_eq!(c.len(), 2);
        assert_eq!(c.get("k3").unwrap().data, json!(3));
    }
}

#[cfg(test)]
mod command_tests {
    use crate::Engine;

    #[cfg(not(feature = "client"))]
    #[test]
    fn without_the_feature_the_commands_say_so() {
        let e = Engine::open("{}").unwrap();
        for cmd in ["platform-info", "platform-call"] {
            assert!(e.call(cmd, "{}").contains("\"CLIENT_NOT_BUILT\""), "{cmd}");
        }
    }

    #[cfg(feature = "client")]
    #[test]
    fn unconfigured_platform_is_reported_and_refused() {
        let e = Engine::open("{}").unwrap();
        let info = e.call_value("platform-info", "{}").unwrap();
        assert_eq!((info["built"].as_bool(), info["configured"].as_bool()), (Some(true), Some(false)));
        let err = e.call_value("platform-call", r#"{"interface":"real-time-slots","request":{}}"#).unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::PlatformNotConfigured);
    }

    #[cfg(feature = "client")]
    #[test]
    fn info_never_shows_the_secret() {
        let e = Engine::open(r#"{"platform":{"base_url":"http://127.0.0.1:9","app_id":"A","secret":"very-secret-key-of-at-least-32-bytes"}}"#).unwrap();
        let info = e.call("platform-info", "{}");
        assert!(info.contains("\"configured\":true") && !info.contains("very-secret-key"), "{info}");
        let err = e.call_value("platform-call", r#"{"interface":"real-time-slots","request":[]}"#).unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::InvalidField);
        let err = e.call_value("platform-call", r#"{"request":{}}"#).unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::MissingField);
    }
}
