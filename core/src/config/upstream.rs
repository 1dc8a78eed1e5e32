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
}

/// The default of `upstream.deadline_seconds`.
pub const DEFAULT_DEADLINE_SECONDS: u64 = 600;

impl UpstreamConfig {
    pub(crate) fn parse(v: &Value, hold_ttl_ms: Millis) -> Result<UpstreamConfig> {
        let bad = |why: &str, zh: &str| Error::with(ErrorCode::InvalidConfig, format!("config `upstream`: {why}"), format!("配置项 `upstream` 无效：{zh}"));
        let o = v.as_object().ok_or_else(|| bad("must be a JSON object", "必须是JSON对象"))?;
        if let Some(k) = o.keys().find(|k| !["hospitals", "deadline_seconds"].contains(&k.as_str())) {
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
        Ok(UpstreamConfig { hospitals, deadline_ms: secs as Millis * 1000 })
    }
}
