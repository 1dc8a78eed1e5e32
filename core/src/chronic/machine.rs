//! The register's and the follow-up plans' states as data, in the style of
//! `referral/machine.rs`: states, the initial one, transitions `(from, to,
//! via)` where `via` is the command (or the due work, or the case step) that
//! takes the step. Served by `chronic-catalog`; a step not in the table is
//! refused with the machine's own error code.

use crate::clock::Millis;
use crate::error::{Error, ErrorCode, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub(crate) struct Machine {
    pub name: &'static str,
    pub initial: &'static str,
    pub states: &'static [&'static str],
    pub transitions: &'static [(&'static str, &'static str, &'static str)],
    /// States a record does not leave.
    pub terminal: &'static [&'static str],
    pub code: ErrorCode,
}

/// The `via` of the due pass (the DUE row's name).
pub(crate) const DUE_WORK: &str = "follow_ups_due";
/// The `via` of a plan closed because the case that made it was cancelled.
pub(crate) const CASE_CANCELLED: &str = "case-cancelled";

/// A chronic patient's registration at one community institution.
pub(crate) static REGISTER: Machine = Machine {
    name: "chronic_registration",
    initial: "in_management",
    states: &["in_management", "lost_to_follow_up", "transferred", "deceased"],
    transitions: &[
        ("in_management", "lost_to_follow_up", "chronic-update"),
        ("in_management", "transferred", "chronic-update"),
        ("in_management", "deceased", "chronic-update"),
        ("lost_to_follow_up", "in_management", "chronic-update"),
        ("lost_to_follow_up", "transferred", "chronic-update"),
        ("lost_to_follow_up", "deceased", "chronic-update"),
    ],
    terminal: &["transferred", "deceased"],
    code: ErrorCode::ChronicInvalidTransition,
};

/// One follow-up (随访) of a patient: planned, reminded when due, then
/// completed, missed (the patient not reached) or cancelled.
pub(crate) static PLAN: Machine = Machine {
    name: "follow_up_plan",
    initial: "planned",
    states: &["planned", "due", "completed", "missed", "cancelled"],
    transitions: &[
        ("planned", "due", DUE_WORK),
        ("planned", "completed", "follow-up-record"),
        ("due", "completed", "follow-up-record"),
        ("planned", "missed", "follow-up-record"),
        ("due", "missed", "follow-up-record"),
        ("planned", "cancelled", "follow-up-cancel"),
        ("due", "cancelled", "follow-up-cancel"),
        ("planned", "cancelled", "chronic-update"),
        ("due", "cancelled", "chronic-update"),
        ("planned", "cancelled", CASE_CANCELLED),
        ("due", "cancelled", CASE_CANCELLED),
    ],
    terminal: &["completed", "missed", "cancelled"],
    code: ErrorCode::FollowUpInvalidTransition,
};

pub(crate) static ALL: [&Machine; 2] = [&REGISTER, &PLAN];

/// One step taken, kept with the record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Step {
    pub at_ms: Millis,
    pub from: String,
    pub to: String,
    pub via: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Machine {
    pub fn is_open(&self, state: &str) -> bool {
        !self.terminal.contains(&state)
    }

    /// `Ok` when the table has the step; else the machine's error naming the
    /// state and the steps it allows.
    pub fn check(&self, from: &str, to: &str, via: &str) -> Result<()> {
        if self.transitions.iter().any(|(f, t, v)| *f == from && *t == to && *v == via) {
            return Ok(());
        }
        let next: Vec<String> = self.transitions.iter().filter(|(f, _, _)| *f == from).map(|(_, t, v)| format!("`{t}` ({v})")).collect();
        let next_zh: Vec<String> = self.transitions.iter().filter(|(f, _, _)| *f == from).map(|(_, t, v)| format!("`{t}`（`{v}`）")).collect();
        Err(Error::with(
            self.code,
            format!("{} is `{from}`; `{via}` may not make it `{to}` (allowed: {})", self.name, if next.is_empty() { "none".into() } else { next.join(", ") }),
            format!(
                "`{}` 当前状态为 `{from}`，`{via}` 不能将其改为 `{to}`（可改为：{}）",
                self.name,
                if next_zh.is_empty() { "无".into() } else { next_zh.join("、") }
            ),
        ))
    }

    /// Checks the step, records it and moves the status.
    #[allow(clippy::too_many_arguments)]
    pub fn take(&self, status: &mut String, history: &mut Vec<Step>, to: &str, via: &str, by: Option<&str>, note: Option<String>, now: Millis) -> Result<()> {
        self.check(status, to, via)?;
        history.push(Step { at_ms: now, from: status.clone(), to: to.into(), via: via.into(), by: by.map(str::to_string), note });
        *status = to.to_string();
        Ok(())
    }

    /// The state a record with `history` was in just before `at` (`None`: not yet created).
    pub fn state_at<'a>(&self, history: &'a [Step], at: Millis) -> Option<&'a str> {
        history.iter().take_while(|s| s.at_ms < at).last().map(|s| s.to.as_str())
    }
}

/// Both machines as data.
pub(crate) fn describe() -> Value {
    let machines: Vec<Value> = ALL
        .iter()
        .map(|m| {
            json!({
                "name": m.name, "initial": m.initial, "states": m.states, "terminal": m.terminal,
                "transitions": m.transitions.iter().map(|(f, t, v)| json!({"from": f, "to": t, "via": v})).collect::<Vec<_>>(),
                "error_code": m.code.as_str(),
            })
        })
        .collect();
    Value::Array(machines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_transition_names_known_states_and_every_state_is_reachable() {
        for m in ALL {
            assert!(m.states.contains(&m.initial));
            for (f, t, _) in m.transitions {
                assert!(m.states.contains(f) && m.states.contains(t), "{}: {f} -> {t}", m.name);
                assert!(!m.terminal.contains(f), "{}: terminal {f} has a step", m.name);
            }
            for s in m.states {
                assert!(*s == m.initial || m.transitions.iter().any(|(_, t, _)| t == s), "{}: {s} unreachable", m.name);
            }
        }
    }

    #[test]
    fn a_refused_step_names_the_allowed_ones() {
        let e = PLAN.check("completed", "cancelled", "follow-up-cancel").unwrap_err();
        assert_eq!(e.code(), ErrorCode::FollowUpInvalidTransition);
        let e = REGISTER.check("in_management", "in_management", "chronic-update").unwrap_err();
        assert!(e.message().contains("`deceased`"), "{}", e.message());
    }

    #[test]
    fn the_documentation_lists_every_transition() {
        let doc = include_str!("../../../README.md");
        for m in ALL {
            for (f, t, v) in m.transitions {
                let row = format!("| {f} | {t} | {v} |");
                assert!(doc.contains(&row), "README lacks `{row}` of {}", m.name);
            }
        }
    }
}
