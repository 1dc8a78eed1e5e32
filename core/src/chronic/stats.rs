//! The figures the chronic-disease centre gives the indicators centre (M1):
//! follow-ups due, completed, on time; satisfaction; patients registered and
//! under management; health education delivered. Counts only: no patient.

use super::machine::{PLAN, REGISTER};
use super::{ChronicState, Ctx, Scope};
use crate::clock::{format_ms, Millis};
use crate::error::{Error, Result};
use crate::principal::Role;
use serde::Serialize;
use std::collections::BTreeMap;

/// One disease's registrations in the period.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct DiseaseCount {
    pub registered: u64,
    pub in_management: u64,
}

/// Follow-up and register figures for `[from, to)` and one community
/// institution or all. Definitions (README, "Chronic-disease centre"):
/// - `due`: plans due in the period, less those cancelled;
/// - `completed` / `completed_on_time` / `missed`: of those, how they ended
///   (on time: by the end of the `on_time_days`-th day after the due day);
/// - `satisfaction_*`: satisfaction given with outcomes recorded in the period;
/// - `registered`: registrations enrolled before `to` and not ended
///   (transferred, deceased) before `from`; `in_management`: those in
///   management at `to`;
/// - `education_delivered`: deliveries recorded in the period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct FollowUpStats {
    pub due: u64,
    pub completed: u64,
    pub completed_on_time: u64,
    pub missed: u64,
    pub completion_rate: Option<f64>,
    pub on_time_rate: Option<f64>,
    pub satisfaction_count: u64,
    /// The scores' sum (the indicators' exact mean).
    #[serde(skip)]
    pub satisfaction_sum: u64,
    pub satisfaction_mean: Option<f64>,
    pub registered: u64,
    pub in_management: u64,
    pub management_rate: Option<f64>,
    pub education_delivered: u64,
    pub by_disease: BTreeMap<String, DiseaseCount>,
}

fn rate(n: u64, d: u64) -> Option<f64> {
    (d > 0).then(|| (n as f64 / d as f64 * 10_000.0).round() / 10_000.0)
}

/// The figures for `[from, to)` (UTC ms) and `institution` (a community
/// centre's id) or every institution. Read under this module's lock only.
pub(crate) fn follow_up_stats(chronic: &ChronicState, from: Millis, to: Millis, institution: Option<&str>) -> FollowUpStats {
    let g = chronic.inner.lock();
    let mine = |i: &str| institution.is_none_or(|x| x == i);
    let (mut due, mut completed, mut on_time, mut missed) = (0, 0, 0, 0);
    let (mut sat_n, mut sat_sum) = (0u64, 0u64);
    for p in g.plans.values().filter(|p| mine(&p.institution_id)) {
        if (from..to).contains(&p.due_ms) && p.status != "cancelled" {
            due += 1;
            match p.status.as_str() {
                "completed" => {
                    completed += 1;
                    on_time += u64::from(p.outcome.as_ref().is_some_and(|o| o.on_time));
                }
                "missed" => missed += 1,
                _ => {}
            }
        }
        if let Some(o) = p.outcome.as_ref().filter(|o| (from..to).contains(&o.at_ms)) {
            if let Some(s) = o.satisfaction {
                sat_n += 1;
                sat_sum += u64::from(s);
            }
        }
    }
    let (mut registered, mut managed) = (0, 0);
    let mut by_disease: BTreeMap<String, DiseaseCount> = BTreeMap::new();
    for r in g.patients.values().filter(|r| mine(&r.institution_id) && r.enrolled_ms < to) {
        let before_from = REGISTER.state_at(&r.history, from);
        if before_from.is_some_and(|s| !REGISTER.is_open(s)) {
            continue;
        }
        let in_mgmt = REGISTER.state_at(&r.history, to) == Some("in_management");
        registered += 1;
        managed += u64::from(in_mgmt);
        let mut seen = Vec::new();
        for d in &r.diagnoses {
            if seen.contains(&&d.disease) {
                continue;
            }
            seen.push(&d.disease);
            let e = by_disease.entry(d.disease.clone()).or_default();
            e.registered += 1;
            e.in_management += u64::from(in_mgmt);
        }
    }
    let delivered = g.deliveries.values().filter(|d| mine(&d.institution_id) && (from..to).contains(&d.at_ms)).count() as u64;
    debug_assert!(PLAN.states.contains(&"missed"));
    FollowUpStats {
        due,
        completed,
        completed_on_time: on_time,
        missed,
        completion_rate: rate(completed, due),
        on_time_rate: rate(on_time, due),
        satisfaction_count: sat_n,
        satisfaction_sum: sat_sum,
        satisfaction_mean: (sat_n > 0).then(|| (sat_sum as f64 / sat_n as f64 * 100.0).round() / 100.0),
        registered,
        in_management: managed,
        management_rate: rate(managed, registered),
        education_delivered: delivered,
        by_disease,
    }
}

/// `follow-up-stats`: `from` and `to` (dates, `to` excluded), optional
/// `institution_id`; a community centre gets its own figures only.
pub(super) fn command(c: &Ctx) -> Result<Value> {
    let asked = c.r.opt_str("institution_id")?;
    let institution = match c.r.who.role {
        Role::Regulator => asked.map(str::to_string),
        _ => match Scope::of(c)? {
            Scope::All => asked.map(str::to_string),
            Scope::Community(own) if asked.is_none_or(|a| a == own) => Some(own),
            _ => return Err(super::forbidden()),
        },
    };
    let from = c.r.date("from")?;
    let to = c.r.date("to")?;
    if to <= from {
        return Err(Error::invalid_zh("to", "must be after `from`", "必须晚于 `from`"));
    }
    let tz = &c.pool.cfg.tz;
    let (f, t) = (super::day_start(from, tz), super::day_start(to, tz));
    let s = follow_up_stats(c.chronic, f, t, institution.as_deref());
    let mut v = crate::views::to_value(&s);
    v["from"] = format_ms(f, tz).into();
    v["to"] = format_ms(t, tz).into();
    v["institution_id"] = institution.into();
    Ok(v)
}

use serde_json::Value;
