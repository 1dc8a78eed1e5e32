//! Engine configuration, parsed from the JSON the host passes to `Engine::open`.
//! Every key is optional; `{}` is an in-memory engine acting as the platform.

use crate::clock::{parse_rfc3339, Millis};
use crate::error::{Error, ErrorCode, Result};
use chrono::NaiveTime;
use serde::Deserialize;
use std::path::PathBuf;

pub(crate) mod platform;

pub use crate::principal::Role;

pub use crate::model::StopServiceAction;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReleasePolicy {
    pub enabled: bool,
    /// Local time of day at which the next `days` open ("08:00").
    pub time: String,
    pub days: u32,
}

impl Default for ReleasePolicy {
    fn default() -> Self {
        ReleasePolicy { enabled: true, time: "08:00".into(), days: 7 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    pub data_dir: Option<PathBuf>,
    pub clock_start: Option<String>,
    pub clock: Option<String>,
    pub institution_id: Option<String>,
    pub role: Role,
    pub time_zone: String,
    pub release: ReleasePolicy,
    pub hold_ttl_seconds: u64,
    pub tight_remaining: u32,
    pub tight_ratio: f64,
    pub max_request_bytes: usize,
    pub waitlist_raise_after_minutes: u64,
    pub stop_service_action: StopServiceAction,
    pub group_commit_max: usize,
    pub durable_sync: String,
    pub encryption_key: Option<String>,
    /// The platform client's endpoint and credentials (see `client::PlatformConfig`).
    pub platform: Option<serde_json::Value>,
    /// The largest report document `upload-report` takes, in bytes (decoded).
    pub report_max_bytes: usize,
    /// Where `upload-report` keeps documents as files; without it, in the
    /// durable store (or in memory without a `data_dir`).
    pub report_dir: Option<PathBuf>,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            data_dir: None,
            clock_start: None,
            clock: None,
            institution_id: None,
            role: Role::Platform,
            time_zone: "Asia/Shanghai".into(),
            release: ReleasePolicy::default(),
            hold_ttl_seconds: 900,
            tight_remaining: 2,
            tight_ratio: 0.2,
            max_request_bytes: 1 << 20,
            waitlist_raise_after_minutes: 30,
            stop_service_action: StopServiceAction::Cancel,
            group_commit_max: 1024,
            durable_sync: "full".into(),
            encryption_key: None,
            platform: None,
            report_max_bytes: DEFAULT_REPORT_MAX_BYTES,
            report_dir: None,
        }
    }
}

/// The default of `report_max_bytes`: 16 MiB, the sandbox's upload limit.
pub const DEFAULT_REPORT_MAX_BYTES: usize = 16 * 1024 * 1024;

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: Option<PathBuf>,
    pub clock_start_ms: Option<Millis>,
    pub manual_clock: bool,
    pub institution_id: Option<String>,
    pub role: Role,
    /// The principal of calls that state none: `role` and `institution_id`.
    pub principal: crate::principal::Principal,
    pub tz: chrono_tz::Tz,
    pub release_enabled: bool,
    pub release_time: NaiveTime,
    pub release_days: u32,
    pub hold_ttl_ms: Millis,
    pub tight_remaining: u32,
    pub tight_ratio: f64,
    pub max_request_bytes: usize,
    pub waitlist_raise_after_ms: Millis,
    pub stop_service_action: StopServiceAction,
    pub group_commit_max: usize,
    /// SQLite `synchronous` level: FULL (fsync every commit) or NORMAL.
    pub durable_sync_full: bool,
    /// Seals every row of the durable store with SM4-GCM (S1).
    pub encryption_key: Option<crate::crypto::Sm4Key>,
    /// The platform client's settings (docs/client.md).
    pub platform: Option<platform::PlatformConfig>,
    /// The largest report document `upload-report` takes (decoded bytes).
    pub report_max_bytes: usize,
    /// Where report documents are kept as files (else in the store).
    pub report_dir: Option<PathBuf>,
    /// The raw JSON, echoed by `engine-info`.
    pub raw: serde_json::Value,
}

fn bad(key: &str, why: &str) -> Error {
    Error::with(ErrorCode::InvalidConfig, format!("config `{key}`: {why}"), format!("配置项 `{key}` 无效：{why}"))
}

impl Config {
    pub fn parse(json: &str) -> Result<Config> {
        let json = if json.trim().is_empty() { "{}" } else { json };
        let value: serde_json::Value = serde_json::from_str(json)
            .map_err(|e| Error::with(ErrorCode::InvalidConfig, format!("config is not valid JSON: {e}"), format!("配置不是合法的JSON：{e}")))?;
        if !value.is_object() {
            return Err(bad("(root)", "must be a JSON object"));
        }
        let raw: RawConfig =
            serde_json::from_value(value.clone()).map_err(|e| Error::with(ErrorCode::InvalidConfig, format!("config: {e}"), format!("配置无效：{e}")))?;
        let clock_start_ms = match &raw.clock_start {
            None => None,
            Some(s) => Some(parse_rfc3339(s).ok_or_else(|| bad("clock_start", "expected RFC 3339, e.g. 2024-10-29T09:00:00+08:00"))?),
        };
        let manual_clock = match raw.clock.as_deref() {
            None | Some("real") => false,
            Some("manual") => true,
            Some(_) => return Err(bad("clock", "expected \"real\" or \"manual\"")),
        };
        let tz: chrono_tz::Tz = raw.time_zone.parse().map_err(|_| bad("time_zone", "unknown IANA zone"))?;
        let release_time = NaiveTime::parse_from_str(&raw.release.time, "%H:%M").map_err(|_| bad("release.time", "expected HH:MM"))?;
        if raw.release.days == 0 || raw.release.days > 366 {
            return Err(bad("release.days", "must be 1..=366"));
        }
        if raw.hold_ttl_seconds == 0 {
            return Err(bad("hold_ttl_seconds", "must be positive"));
        }
        if !(0.0..=1.0).contains(&raw.tight_ratio) {
            return Err(bad("tight_ratio", "must be between 0 and 1"));
        }
        if raw.max_request_bytes < 1024 {
            return Err(bad("max_request_bytes", "must be at least 1024"));
        }
        // Base64 of the largest document must still fit a request of `usize`.
        if raw.report_max_bytes < 1024 || raw.report_max_bytes > 1 << 30 {
            return Err(bad("report_max_bytes", "must be 1024 to 1073741824 (1 GiB)"));
        }
        if raw.report_dir.as_ref().is_some_and(|d| d.as_os_str().is_empty()) {
            return Err(bad("report_dir", "must not be empty"));
        }
        let durable_sync_full = match raw.durable_sync.as_str() {
            "full" => true,
            "normal" => false,
            _ => return Err(bad("durable_sync", "expected \"full\" or \"normal\"")),
        };
        let encryption_key = match &raw.encryption_key {
            None => None,
            Some(k) => Some(crate::crypto::Sm4Key::from_hex(k).ok_or_else(|| bad("encryption_key", "expected 32 hex digits (a 128-bit SM4 key)"))?),
        };
        // The engine's principal: who acts when the host states no other (`call_as`).
        let principal = crate::principal::Principal::new(raw.role, raw.institution_id.as_deref(), None)
            .map_err(|_| bad("institution_id", "a hospital, community or lab engine must name its institution"))?;
        let platform = raw.platform.as_ref().map(platform::PlatformConfig::parse).transpose()?;
        Ok(Config {
            data_dir: raw.data_dir,
            clock_start_ms,
            manual_clock,
            institution_id: raw.institution_id,
            role: raw.role,
            principal,
            tz,
            release_enabled: raw.release.enabled,
            release_time,
            release_days: raw.release.days,
            hold_ttl_ms: raw.hold_ttl_seconds as Millis * 1000,
            tight_remaining: raw.tight_remaining,
            tight_ratio: raw.tight_ratio,
            max_request_bytes: raw.max_request_bytes,
            waitlist_raise_after_ms: raw.waitlist_raise_after_minutes as Millis * 60_000,
            stop_service_action: raw.stop_service_action,
            group_commit_max: raw.group_commit_max.max(1),
            durable_sync_full,
            encryption_key,
            platform,
            report_max_bytes: raw.report_max_bytes,
            report_dir: raw.report_dir,
            raw: redact(value),
        })
    }
}

/// The config as it may be shown: secrets replaced.
fn redact(mut v: serde_json::Value) -> serde_json::Value {
    if let Some(k) = v.get_mut("encryption_key") {
        *k = "(set)".into();
    }
    if let Some(k) = v.get_mut("platform").and_then(|p| p.get_mut("secret")) {
        *k = "(set)".into();
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_is_memory_platform() {
        let c = Config::parse("{}").unwrap();
        assert!(c.data_dir.is_none());
        assert_eq!(c.role, Role::Platform);
        assert_eq!(c.release_days, 7);
        assert_eq!(c.tz, chrono_tz::Asia::Shanghai);
    }

    #[test]
    fn rejects_unknown_keys_and_bad_values() {
        for bad in [
            r#"{"encryption_key":"abc"}"#,
            r#"{"data_dri":"x"}"#,
            r#"{"clock_start":"yesterday"}"#,
            r#"{"time_zone":"Mars/Base"}"#,
            "[]",
            "{",
            r#"{"role":"community"}"#,
        ] {
            let e = Config::parse(bad).unwrap_err();
            assert_eq!(e.code(), ErrorCode::InvalidConfig, "{bad}");
        }
    }
}
