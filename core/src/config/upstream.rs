//! The `upstream` object of the engine config: the hospitals whose slots
//! are decided there (`upstream.rs`), each with the platform client's link
//! settings, and how long a hand-off may wait for an answer.

use crate::clock::Millis;
use crate::error::{Error, ErrorCode, Result};
use serde_json::Value;
use std::collections::BTreeMap;

/// The `upstream` object of the engine config, parsed.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// Each upstream hospital's link (the platform client's settings).
    pub hospitals: BTreeMap<String, super::platform::PlatformConfig>,
    /// How long a hand-off may stay undecided before its hold is released.
    pub deadline_ms: Millis,
    /// How often (real time) the engine reconciles with every upstream
    /// hospital (`reconcile-upstream`); `None`: only when called.
    pub reconcile_every: Option<std::time::Duration>,
    /// The local time by which each hospital must have pushed its schedule
    /// that day ("在当天17:00前"); `None`: not watched.
    pub schedule_deadline: Option<chrono::NaiveTime>,
}

/// The default of `upstream.reconcile_every_seconds` (hourly).
pub const DEFAULT_RECONCILE_EVERY_SECONDS: u64 = 3600;

/// The default of `upstream.deadline_seconds`.
pub const DEFAULT_DEADLINE_SECONDS: u64 = 600;

impl UpstreamConfig {
    pub(crate) fn parse(v: &Value, hold_ttl_ms: Millis) -> Result<UpstreamConfig> {
        let bad = |why: &str, zh: &str| Error::with(ErrorCode::InvalidConfig, format!("config `upstream`: {why}"), format!("配置项 `upstream` 无效：{zh}"));
        let o = v.as_object().ok_or_else(|| bad("must be a JSON object", "必须是JSON对象"))?;
        if let Some(k) = o.keys().find(|k| !["hospitals", "deadline_seconds", "reconcile_every_seconds", "schedule_deadline"].contains(&k.as_str())) {
            let k: String = k.chars().take(64).collect();
            return Err(bad(&format!("unknown key `{k}`"), &format!("未知的键 `{k}`")));
        }
        let hs = o
            .get("hospitals")
            .and_then(Value::as_object)
            .ok_or_else(|| bad("`hospitals` must name each hospital's link", "`hospitals` 须列出每家医院的连接"))?;
        if hs.is_empty() {
            return Err(bad("`hospitals` is empty", "`hospitals` 为空"));
        }
        let mut hospitals = BTreeMap::new();
        for (id, link) in hs {
            if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                return Err(bad("a hospital id must be 1–64 letters, digits, `-` or `_`", "医院编号须为 1–64 位字母、数字、`-` 或 `_`"));
            }
            hospitals.insert(id.clone(), super::platform::PlatformConfig::parse(link)?);
        }
        let secs = match o.get("deadline_seconds") {
            None => DEFAULT_DEADLINE_SECONDS.min((hold_ttl_ms / 1000) as u64 / 2).max(1),
            Some(n) => n.as_u64().filter(|n| *n >= 1).ok_or_else(|| bad("`deadline_seconds` must be a positive integer", "`deadline_seconds` 须为正整数"))?,
        };
        // The tentative hold must outlive the hand-off: a hospital's late
        // "yes" must still find it.
        if (secs as Millis) * 1000 >= hold_ttl_ms {
            return Err(bad(
                "`deadline_seconds` must be shorter than `hold_ttl_seconds` (the tentative hold must outlive the hand-off)",
                "`deadline_seconds` 须短于 `hold_ttl_seconds`（暂占须在转交期限之后才到期）",
            ));
        }
        let reconcile_every = match o.get("reconcile_every_seconds") {
            None => Some(DEFAULT_RECONCILE_EVERY_SECONDS),
            Some(Value::Null) => None,
            Some(n) => Some(n.as_u64().filter(|n| (60..=86_400).contains(n)).ok_or_else(|| {
                bad("`reconcile_every_seconds` must be 60–86400 (or null: only when `reconcile-upstream` is called)", "`reconcile_every_seconds` 须为 60–86400（或 `null`：仅在调用 `reconcile-upstream` 时对账）")
            })?),
        }
        .map(std::time::Duration::from_secs);
        let schedule_deadline = match o.get("schedule_deadline") {
            None => chrono::NaiveTime::from_hms_opt(17, 0, 0),
            Some(Value::Null) => None,
            Some(v) => Some(v.as_str().and_then(|s| chrono::NaiveTime::parse_from_str(s, "%H:%M").ok()).ok_or_else(|| {
                bad("`schedule_deadline` must be a local time like \"17:00\" (or null: not watched)", "`schedule_deadline` 须为本地时间，如 \"17:00\"（或 `null`：不监测）")
            })?),
        };
        Ok(UpstreamConfig { hospitals, deadline_ms: secs as Millis * 1000, reconcile_every, schedule_deadline })
    }
}
