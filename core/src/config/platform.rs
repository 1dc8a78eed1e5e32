//! The `platform` object of the engine config: where the platform client
//! calls, with what credentials, how it retries and caches, which interface
//! versions it speaks (docs/client.md). Parsed with the rest of the config;
//! the client (`client/`) re-exports it.

use crate::error::{Error, ErrorCode, Result};
use serde::Deserialize;
use serde_json::Value;

/// The shortest secret (bytes) either side accepts: 256 bits, SM3's size. A
/// client holding a shorter one would only be refused by every verifier.
pub const MIN_SECRET_BYTES: usize = 32;

/// The `platform` object of the engine config. Every key is documented in docs/client.md.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlatform {
    base_url: String,
    app_id: String,
    secret: String,
    #[serde(default = "d_timeout")]
    timeout_ms: u64,
    #[serde(default)]
    connect_timeout_ms: Option<u64>,
    #[serde(default = "d_retries")]
    retries: u32,
    #[serde(default = "d_backoff")]
    backoff_ms: u64,
    #[serde(default = "d_max_backoff")]
    max_backoff_ms: u64,
    #[serde(default = "d_versions")]
    versions: Vec<String>,
    #[serde(default = "d_true")]
    cache: bool,
    #[serde(default = "d_cache_max")]
    cache_max_entries: usize,
    #[serde(default)]
    ca_file: Option<String>,
    #[serde(default)]
    client_cert_file: Option<String>,
    #[serde(default)]
    client_key_file: Option<String>,
}

fn d_timeout() -> u64 {
    5000
}
fn d_retries() -> u32 {
    2
}
fn d_backoff() -> u64 {
    200
}
fn d_max_backoff() -> u64 {
    5000
}
fn d_versions() -> Vec<String> {
    vec!["v1".into()]
}
fn d_true() -> bool {
    true
}
fn d_cache_max() -> usize {
    10_000
}

/// The validated platform settings.
#[derive(Clone)]
pub struct PlatformConfig {
    /// Scheme, host, port and optional path prefix, without a trailing `/`.
    pub base_url: String,
    pub app_id: String,
    pub secret: String,
    pub timeout_ms: u64,
    pub connect_timeout_ms: u64,
    /// Further attempts after the first, for idempotent calls only.
    pub retries: u32,
    /// Delay before the first retry; it doubles each time up to `max_backoff_ms`.
    pub backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// The interface versions this client speaks, e.g. `["v1"]`.
    pub versions: Vec<u32>,
    pub cache: bool,
    pub cache_max_entries: usize,
    /// PEM file of CA certificates the platform's TLS certificate may chain
    /// to (besides the public web roots): a private or self-signed CA.
    pub ca_file: Option<String>,
    /// PEM client certificate chain and its private key, sent when the
    /// platform asks for one (mutual TLS on hospital links). Both or neither.
    pub client_cert_file: Option<String>,
    pub client_key_file: Option<String>,
}

impl std::fmt::Debug for PlatformConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("PlatformConfig").field("base_url", &self.base_url).field("app_id", &self.app_id).field("secret", &"***").finish_non_exhaustive()
    }
}

fn bad(key: &str, why: &str, why_zh: &str) -> Error {
    Error::with(ErrorCode::InvalidConfig, format!("config `platform.{key}`: {why}"), format!("配置项 `platform.{key}` 无效：{why_zh}"))
}

/// `"v2"` → 2.
pub fn parse_version(s: &str) -> Option<u32> {
    let n = s.strip_prefix('v')?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) || n.len() > 4 {
        return None;
    }
    n.parse().ok().filter(|n| *n > 0)
}

impl PlatformConfig {
    pub fn parse(v: &Value) -> Result<PlatformConfig> {
        if !v.is_object() {
            return Err(bad("(object)", "must be a JSON object", "必须是JSON对象"));
        }
        let raw: RawPlatform = serde_json::from_value(v.clone()).map_err(|e| {
            // serde names the key, never the values, so the secret cannot leak here.
            let zh = crate::error::reason_zh(&e.to_string()).unwrap_or("内容无法识别".into());
            Error::with(ErrorCode::InvalidConfig, format!("config `platform`: {e}"), format!("配置项 `platform` 无效：{zh}"))
        })?;
        let base = raw.base_url.trim().trim_end_matches('/').to_string();
        let lower = base.to_ascii_lowercase();
        let rest = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://"));
        match rest {
            Some(r) if !r.is_empty() && !r.starts_with('/') && !base.contains(['?', '#', ' ']) => {}
            _ => {
                return Err(bad(
                    "base_url",
                    "expected http(s)://host[:port][/prefix] without query or fragment",
                    "应为 http(s)://主机[:端口][/前缀]，不带查询串或片段",
                ))
            }
        }
        let app_ok =
            !raw.app_id.is_empty() && raw.app_id.len() <= 64 && raw.app_id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !app_ok {
            return Err(bad("app_id", "1 to 64 characters of A-Z a-z 0-9 - _ .", "应为1到64个字符，只含 A-Z a-z 0-9 - _ ."));
        }
        if raw.secret.len() < MIN_SECRET_BYTES {
            return Err(bad(
                "secret",
                &format!("must have at least {MIN_SECRET_BYTES} bytes (e.g. 32 random bytes as 64 hex digits)"),
                &format!("至少 {MIN_SECRET_BYTES} 字节（例如 32 个随机字节写成 64 位十六进制）"),
            ));
        }
        if raw.timeout_ms == 0 || raw.timeout_ms > 600_000 {
            return Err(bad("timeout_ms", "must be 1..=600000", "应在 1 到 600000 之间"));
        }
        let connect_timeout_ms = raw.connect_timeout_ms.unwrap_or(raw.timeout_ms.min(3000));
        if connect_timeout_ms == 0 || connect_timeout_ms > 600_000 {
            return Err(bad("connect_timeout_ms", "must be 1..=600000", "应在 1 到 600000 之间"));
        }
        if raw.retries > 10 {
            return Err(bad("retries", "must be 0..=10", "应在 0 到 10 之间"));
        }
        if raw.backoff_ms > 60_000 || raw.max_backoff_ms > 600_000 || raw.max_backoff_ms < raw.backoff_ms {
            return Err(bad(
                "backoff_ms",
                "backoff_ms must be 0..=60000 and max_backoff_ms between it and 600000",
                "backoff_ms 应在 0 到 60000 之间，max_backoff_ms 应不小于它且不超过 600000",
            ));
        }
        let mut versions = Vec::new();
        for s in &raw.versions {
            versions.push(parse_version(s).ok_or_else(|| bad("versions", "each version is \"v<N>\", e.g. \"v1\"", "每个版本应形如 \"v<N>\"，如 \"v1\""))?);
        }
        versions.sort_unstable();
        versions.dedup();
        if versions.is_empty() {
            return Err(bad("versions", "name at least one version", "至少列出一个版本"));
        }
        if raw.cache_max_entries == 0 || raw.cache_max_entries > 1_000_000 {
            return Err(bad("cache_max_entries", "must be 1..=1000000", "应在 1 到 1000000 之间"));
        }
        let path = |key: &str, v: Option<String>| -> Result<Option<String>> {
            match v {
                Some(p) if p.trim().is_empty() => Err(bad(key, "must name a PEM file", "应为PEM文件路径")),
                other => Ok(other),
            }
        };
        let ca_file = path("ca_file", raw.ca_file)?;
        let client_cert_file = path("client_cert_file", raw.client_cert_file)?;
        let client_key_file = path("client_key_file", raw.client_key_file)?;
        if client_cert_file.is_some() != client_key_file.is_some() {
            return Err(bad("client_cert_file", "client_cert_file and client_key_file go together", "client_cert_file 与 client_key_file 须同时配置"));
        }
        Ok(PlatformConfig {
            ca_file,
            client_cert_file,
            client_key_file,
            base_url: base,
            app_id: raw.app_id,
            secret: raw.secret,
            timeout_ms: raw.timeout_ms,
            connect_timeout_ms,
            retries: raw.retries,
            backoff_ms: raw.backoff_ms,
            max_backoff_ms: raw.max_backoff_ms,
            versions,
            cache: raw.cache,
            cache_max_entries: raw.cache_max_entries,
        })
    }

    /// The delay before retry number `n` (0 = the first retry): `backoff_ms · 2ⁿ`, capped.
    pub fn backoff(&self, n: u32) -> u64 {
        self.backoff_ms.saturating_mul(1u64 << n.min(30)).min(self.max_backoff_ms)
    }
}

/// The highest version both sides speak; `NO_COMMON_VERSION` when none.
pub fn negotiate(ours: &[u32], theirs: &[u32]) -> Result<u32> {
    ours.iter().copied().filter(|v| theirs.contains(v)).max().ok_or_else(|| {
        let o: Vec<String> = ours.iter().map(|v| format!("v{v}")).collect();
        let t: Vec<String> = theirs.iter().map(|v| format!("v{v}")).collect();
        Error::with(
            ErrorCode::NoCommonVersion,
            format!("the platform speaks [{}], this client [{}]: no common interface version", t.join(", "), o.join(", ")),
            format!("平台支持 [{}]，客户端支持 [{}]：没有共同的接口版本", t.join(", "), o.join(", ")),
        )
    })
}
