//! Engine configuration, parsed from the JSON the host passes to `Engine::open`.
//! Every key is optional; `{}` is an in-memory engine acting as the platform.

use crate::clock::{parse_rfc3339, Millis, MAX_MS, MIN_MS};
use crate::error::{Error, ErrorCode, Result};
use chrono::NaiveTime;
use serde::Deserialize;
use std::path::PathBuf;

pub(crate) mod platform;
pub(crate) mod upstream;

pub use upstream::UpstreamConfig;

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

/// The engine's timer thread (`due.rs`): what is due runs without a caller.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTimer {
    /// `None`: on with the real clock, off with a manual one.
    pub enabled: Option<bool>,
    /// Real time between passes (a manual clock's advance runs one at once).
    pub every_ms: u64,
}

impl Default for RawTimer {
    fn default() -> Self {
        RawTimer { enabled: None, every_ms: 1000 }
    }
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
    /// A store on a database server instead of `data_dir`: `{"postgres": "<conninfo>"}`.
    pub store: Option<RawStore>,
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
    /// Days a booking stays in memory after its slot's day, and a request
    /// id's answer after it was given (see `pool/retire.rs`).
    pub retention_days: u64,
    pub stop_service_action: StopServiceAction,
    pub group_commit_max: usize,
    pub durable_sync: String,
    pub encryption_key: Option<String>,
    /// The platform client's endpoint and credentials (see `client::PlatformConfig`).
    pub platform: Option<serde_json::Value>,
    /// The font file PDF documents are set in (a TrueType or OpenType font
    /// with Chinese glyphs; `.ttc` collections too).
    pub pdf_font: Option<PathBuf>,
    /// The largest report document `upload-report` takes, in bytes (decoded).
    pub report_max_bytes: usize,
    /// Where `upload-report` keeps documents as files; without it, in the
    /// durable store (or in memory without a `data_dir`).
    pub report_dir: Option<PathBuf>,
    pub timer: RawTimer,
    /// Upstream hospitals whose slots are decided there (`upstream.rs`).
    pub upstream: Option<serde_json::Value>,
    /// Minutes before a booked visit at which its reminders go out (提醒功能).
    pub reminder_minutes: Vec<u64>,
    /// When follow-up plans fall due (checked by the chronic module when the engine opens).
    pub follow_up: Option<serde_json::Value>,
}

/// The `store` object: where the durable store lives when it is not a
/// `data_dir`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    /// A PostgreSQL (or compatible) database: libpq `key=value` conninfo or a
    /// `postgres://` URL.
    pub postgres: Option<String>,
    /// How long the leader's lease on the database lasts unless renewed
    /// (renewed every third of it): a standby takes over at most this long
    /// after a leader stops renewing while its session stays open (paused,
    /// partitioned), at once when the leader's session ends.
    pub lease_seconds: Option<u64>,
}

impl std::fmt::Debug for RawStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The conninfo may carry a password.
        f.debug_struct("RawStore").field("postgres", &self.postgres.as_ref().map(|_| "…")).field("lease_seconds", &self.lease_seconds).finish()
    }
}

/// A database's connection string, never printed (it may carry a password).
#[derive(Clone)]
pub struct Conninfo(pub String);

impl std::fmt::Debug for Conninfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Conninfo(…)")
    }
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            data_dir: None,
            store: None,
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
            retention_days: DEFAULT_RETENTION_DAYS,
            stop_service_action: StopServiceAction::Cancel,
            group_commit_max: 1024,
            durable_sync: "full".into(),
            encryption_key: None,
            platform: None,
            pdf_font: None,
            report_max_bytes: DEFAULT_REPORT_MAX_BYTES,
            report_dir: None,
            timer: RawTimer::default(),
            upstream: None,
            reminder_minutes: Vec::new(),
            follow_up: None,
        }
    }
}

/// The default of `retention_days`.
pub const DEFAULT_RETENTION_DAYS: u64 = 7;

/// The default of `store.lease_seconds`.
pub const DEFAULT_LEASE_SECONDS: u64 = 10;

/// The default of `report_max_bytes`: 16 MiB, the sandbox's upload limit.
pub const DEFAULT_REPORT_MAX_BYTES: usize = 16 * 1024 * 1024;

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: Option<PathBuf>,
    /// The PostgreSQL store's database (`store.postgres`), instead of `data_dir`.
    pub postgres: Option<Conninfo>,
    /// The leader's lease on the PostgreSQL store (`store.lease_seconds`, default 10 s).
    pub lease_ms: u64,
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
    /// `retention_days`: how long bookings of past days and request ids'
    /// answers stay in memory (durable engines; they stay in the store).
    pub retention_days: u32,
    pub stop_service_action: StopServiceAction,
    pub group_commit_max: usize,
    /// SQLite `synchronous` level: FULL (fsync every commit) or NORMAL.
    pub durable_sync_full: bool,
    /// Seals every row of the durable store with SM4-GCM (S1).
    pub encryption_key: Option<crate::crypto::Sm4Key>,
    /// The platform client's settings (docs/client.md).
    pub platform: Option<platform::PlatformConfig>,
    /// The font PDF documents embed; `None`: a CJK font of the system
    /// (`render::SYSTEM_CJK_FONTS`), found when a PDF is asked for.
    pub pdf_font: Option<PathBuf>,
    /// The largest report document `upload-report` takes (decoded bytes).
    pub report_max_bytes: usize,
    /// Where report documents are kept as files (else in the store).
    pub report_dir: Option<PathBuf>,
    /// Real time between the timer thread's passes; `None`: no thread (the
    /// host calls `run-due`).
    pub timer_every: Option<std::time::Duration>,
    /// `reminder_minutes`, ascending, without repeats.
    pub reminder_minutes: Vec<u32>,
    /// Upstream hospitals (`upstream.rs`).
    pub upstream: Option<UpstreamConfig>,
    /// Config `follow_up` as given (`chronic::Settings` reads it).
    pub follow_up: Option<serde_json::Value>,
    /// The raw JSON, echoed by `engine-info`.
    pub raw: serde_json::Value,
}

fn bad(key: &str, why: &str, why_zh: &str) -> Error {
    Error::with(ErrorCode::InvalidConfig, format!("config `{key}`: {why}"), format!("配置项 `{key}` 无效：{why_zh}"))
}

/// The documented ranges of the config's numbers (README, Configuration).
/// Each is checked where the config is parsed, so the durations below are
/// at most 30 days in milliseconds and any instant of the clock plus one
/// stays far inside `Millis`.
pub mod range {
    use std::ops::RangeInclusive;
    /// `release.days`: up to a year of days open at once.
    pub const RELEASE_DAYS: RangeInclusive<u64> = 1..=366;
    /// `hold_ttl_seconds`: one second to 30 days.
    pub const HOLD_TTL_SECONDS: RangeInclusive<u64> = 1..=2_592_000;
    /// `waitlist_raise_after_minutes`: at once to 30 days.
    pub const WAITLIST_RAISE_AFTER_MINUTES: RangeInclusive<u64> = 0..=43_200;
    /// `tight_remaining`: at most a slot's largest capacity.
    pub const TIGHT_REMAINING: RangeInclusive<u64> = 0..=100_000;
    /// `max_request_bytes`: 1 KiB to 256 MiB.
    pub const MAX_REQUEST_BYTES: RangeInclusive<u64> = 1024..=268_435_456;
    /// `retention_days`: a day to ten years.
    pub const RETENTION_DAYS: RangeInclusive<u64> = 1..=3_650;
    /// `store.lease_seconds`: long enough for a renewal round trip on a slow
    /// link, short enough that a standby takes over within minutes.
    pub const LEASE_SECONDS: RangeInclusive<u64> = 2..=600;
    /// `group_commit_max`.
    pub const GROUP_COMMIT_MAX: RangeInclusive<u64> = 1..=1_000_000;
    /// `timer.every_ms`: ten passes a second to one a minute.
    pub const TIMER_EVERY_MS: RangeInclusive<u64> = 100..=60_000;
    /// Each of `reminder_minutes`: a minute to 30 days before the visit.
    pub const REMINDER_MINUTES: RangeInclusive<u64> = 1..=43_200;
    /// How many reminders a visit may have.
    pub const REMINDERS: usize = 8;
}

/// `n` within `range`, else `INVALID_CONFIG` naming the key and the range.
fn within(key: &str, n: u64, range: std::ops::RangeInclusive<u64>) -> Result<u64> {
    if range.contains(&n) {
        return Ok(n);
    }
    let (lo, hi) = (range.start(), range.end());
    Err(Error::with(
        ErrorCode::InvalidConfig,
        format!("config `{key}`: {n} is outside {lo}..={hi}"),
        format!("配置项 `{key}` 无效：{n} 不在 {lo} 到 {hi} 之间"),
    ))
}

impl Config {
    pub fn parse(json: &str) -> Result<Config> {
        let json = if json.trim().is_empty() { "{}" } else { json };
        let value: serde_json::Value = serde_json::from_str(json).map_err(|e| {
            Error::with(ErrorCode::InvalidConfig, format!("config is not valid JSON: {e}"), format!("配置不是合法的JSON：{}", crate::error::json_error_zh(&e)))
        })?;
        if !value.is_object() {
            return Err(bad("(root)", "must be a JSON object", "必须是JSON对象"));
        }
        let raw: RawConfig = serde_json::from_value(value.clone()).map_err(|e| {
            let zh = crate::error::reason_zh(&e.to_string()).unwrap_or("配置内容无法识别".into());
            Error::with(ErrorCode::InvalidConfig, format!("config: {e}"), format!("配置无效：{zh}"))
        })?;
        let clock_start_ms =
            match &raw.clock_start {
                None => None,
                Some(s) => Some(parse_rfc3339(s).ok_or_else(|| {
                    bad("clock_start", "expected RFC 3339, e.g. 2024-10-29T09:00:00+08:00", "应为 RFC 3339 时间，如 2024-10-29T09:00:00+08:00")
                })?),
            };
        if clock_start_ms.is_some_and(|ms| !(MIN_MS..=MAX_MS).contains(&ms)) {
            return Err(Error::with(
                ErrorCode::InvalidConfig,
                "config `clock_start`: must be from 1970-01-01T00:00:00Z to 9999-01-01T00:00:00Z",
                "配置项 `clock_start` 无效：须在 `1970-01-01T00:00:00Z` 至 `9999-01-01T00:00:00Z` 之间",
            ));
        }
        let manual_clock = match raw.clock.as_deref() {
            None | Some("real") => false,
            Some("manual") => true,
            Some(_) => return Err(bad("clock", "expected \"real\" or \"manual\"", "应为 \"real\" 或 \"manual\"")),
        };
        let tz: chrono_tz::Tz = raw.time_zone.parse().map_err(|_| bad("time_zone", "unknown IANA zone", "不是已知的 IANA 时区"))?;
        let release_time = NaiveTime::parse_from_str(&raw.release.time, "%H:%M").map_err(|_| bad("release.time", "expected HH:MM", "应为 HH:MM"))?;
        within("release.days", raw.release.days.into(), range::RELEASE_DAYS)?;
        let hold_ttl_seconds = within("hold_ttl_seconds", raw.hold_ttl_seconds, range::HOLD_TTL_SECONDS)?;
        let waitlist_raise_after_minutes = within("waitlist_raise_after_minutes", raw.waitlist_raise_after_minutes, range::WAITLIST_RAISE_AFTER_MINUTES)?;
        let retention_days = within("retention_days", raw.retention_days, range::RETENTION_DAYS)?;
        within("tight_remaining", raw.tight_remaining.into(), range::TIGHT_REMAINING)?;
        if !(0.0..=1.0).contains(&raw.tight_ratio) {
            return Err(bad("tight_ratio", "must be between 0 and 1", "应在 0 到 1 之间"));
        }
        within("max_request_bytes", raw.max_request_bytes as u64, range::MAX_REQUEST_BYTES)?;
        within("group_commit_max", raw.group_commit_max as u64, range::GROUP_COMMIT_MAX)?;
        // Base64 of the largest document must still fit a request of `usize`.
        if raw.report_max_bytes < 1024 || raw.report_max_bytes > 1 << 30 {
            return Err(bad("report_max_bytes", "must be 1024 to 1073741824 (1 GiB)", "应在 1024 到 1073741824（1 GiB）之间"));
        }
        if raw.report_dir.as_ref().is_some_and(|d| d.as_os_str().is_empty()) {
            return Err(bad("report_dir", "must not be empty", "不能为空"));
        }
        let durable_sync_full = match raw.durable_sync.as_str() {
            "full" => true,
            "normal" => false,
            _ => return Err(bad("durable_sync", "expected \"full\" or \"normal\"", "应为 \"full\" 或 \"normal\"")),
        };
        let encryption_key = match &raw.encryption_key {
            None => None,
            Some(k) => Some(
                crate::crypto::Sm4Key::from_hex(k)
                    .ok_or_else(|| bad("encryption_key", "expected 32 hex digits (a 128-bit SM4 key)", "应为32位十六进制数字（128位SM4密钥）"))?,
            ),
        };
        // The engine's principal: who acts when the host states no other (`call_as`).
        let principal = crate::principal::Principal::new(raw.role, raw.institution_id.as_deref(), None)
            .map_err(|_| bad("institution_id", "a hospital, community or lab engine must name its institution", "医院、社区或检验机构的引擎必须指明本机构"))?;
        let platform = raw.platform.as_ref().map(platform::PlatformConfig::parse).transpose()?;
        // Only that it is a file: the font is read when a PDF is asked for.
        if let Some(p) = &raw.pdf_font {
            if !p.is_file() {
                return Err(Error::with(
                    ErrorCode::InvalidConfig,
                    format!("config `pdf_font`: no font file at `{}`", p.display()),
                    format!("配置项 `pdf_font` 无效：字体文件 `{}` 不存在", p.display()),
                ));
            }
        }
        let postgres = match raw.store.as_ref().map(|s| s.postgres.as_deref()) {
            None => None,
            Some(None) => return Err(bad("store", "expected {\"postgres\": \"<conninfo>\"}", "应为 {\"postgres\": \"<连接串>\"}")),
            Some(Some(c)) if c.trim().is_empty() || c.len() > 4096 => {
                return Err(bad(
                    "store.postgres",
                    "expected a libpq conninfo or a postgres:// URL of at most 4096 bytes",
                    "应为不超过 4096 字节的 libpq 连接串或 postgres:// 地址",
                ))
            }
            Some(Some(_)) if raw.data_dir.is_some() => {
                return Err(bad("store.postgres", "names a second store beside `data_dir`: give one of them", "与 `data_dir` 同时指定了两个存储：只能指定其一"))
            }
            Some(Some(_)) if !cfg!(feature = "postgres") => {
                return Err(bad(
                    "store.postgres",
                    "this build has no PostgreSQL store (cargo feature `postgres`)",
                    "本版本未编译 PostgreSQL 存储（编译特性 `postgres`）",
                ))
            }
            Some(Some(c)) => Some(Conninfo(c.to_string())),
        };
        let timer_every = match raw.timer.enabled.unwrap_or(!manual_clock) {
            true => Some(std::time::Duration::from_millis(within("timer.every_ms", raw.timer.every_ms, range::TIMER_EVERY_MS)?)),
            false => None,
        };
        if raw.reminder_minutes.len() > range::REMINDERS {
            return Err(bad("reminder_minutes", "at most 8 reminders", "最多 8 个提醒时点"));
        }
        let mut reminder_minutes = Vec::with_capacity(raw.reminder_minutes.len());
        for m in &raw.reminder_minutes {
            reminder_minutes.push(within("reminder_minutes", *m, range::REMINDER_MINUTES)? as u32);
        }
        reminder_minutes.sort_unstable();
        reminder_minutes.dedup();
        let upstream = match &raw.upstream {
            None => None,
            Some(_) if !cfg!(feature = "client") => {
                return Err(bad("upstream", "this build has no platform client (cargo feature `client`)", "本版本未编译平台客户端（编译特性 `client`）"))
            }
            Some(v) => Some(UpstreamConfig::parse(v, hold_ttl_seconds as Millis * 1000)?),
        };
        let lease_seconds = match raw.store.as_ref().and_then(|s| s.lease_seconds) {
            Some(n) => within("store.lease_seconds", n, range::LEASE_SECONDS)?,
            None => DEFAULT_LEASE_SECONDS,
        };
        Ok(Config {
            data_dir: raw.data_dir,
            postgres,
            lease_ms: lease_seconds * 1000,
            clock_start_ms,
            manual_clock,
            institution_id: raw.institution_id,
            role: raw.role,
            principal,
            tz,
            release_enabled: raw.release.enabled,
            release_time,
            release_days: raw.release.days,
            // Both at most 30 days (`range`): no product here can overflow.
            hold_ttl_ms: hold_ttl_seconds as Millis * 1000,
            tight_remaining: raw.tight_remaining,
            tight_ratio: raw.tight_ratio,
            max_request_bytes: raw.max_request_bytes,
            waitlist_raise_after_ms: waitlist_raise_after_minutes as Millis * 60_000,
            retention_days: retention_days as u32,
            stop_service_action: raw.stop_service_action,
            group_commit_max: raw.group_commit_max,
            durable_sync_full,
            encryption_key,
            platform,
            pdf_font: raw.pdf_font,
            report_max_bytes: raw.report_max_bytes,
            report_dir: raw.report_dir,
            timer_every,
            reminder_minutes,
            upstream,
            follow_up: raw.follow_up,
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
    if let Some(hs) = v.get_mut("upstream").and_then(|u| u.get_mut("hospitals")).and_then(|h| h.as_object_mut()) {
        for link in hs.values_mut() {
            if let Some(k) = link.get_mut("secret") {
                *k = "(set)".into();
            }
        }
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
            r#"{"pdf_font":"/nonexistent/font.ttf"}"#,
        ] {
            let e = Config::parse(bad).unwrap_err();
            assert_eq!(e.code(), ErrorCode::InvalidConfig, "{bad}");
        }
    }
}
