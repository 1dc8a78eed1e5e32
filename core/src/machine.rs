//! State machines as data, the house style of every workflow (referral,
//! exam, consultation, chronic registration, follow-up plan): a machine's
//! states, its initial one, its transitions `(from, to, via)` where `via`
//! is the command (or due work, or derived step) that takes it, and the
//! error code a refused step gets. One step function records each step in
//! the record's history; one description serves the machines to callers.

use crate::clock::Millis;
use crate::error::{Error, ErrorCode, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// A workflow.
pub struct Machine {
    pub name: &'static str,
    pub initial: &'static str,
    pub states: &'static [&'static str],
    pub transitions: &'static [(&'static str, &'static str, &'static str)],
    /// States a record does not leave.
    pub terminal: &'static [&'static str],
    /// States in which a case holds a place through its booking: when the
    /// booking ends, the case shows `slot_released` instead (referrals).
    pub holds_slot: &'static [&'static str],
    /// `via`s of steps the engine derives, never offered to a caller.
    pub derived: &'static [&'static str],
    pub code: ErrorCode,
}

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

/// One step as a record takes it.
pub(crate) struct Transition<'a> {
    /// The state it starts from (the recorded one, or one derived, see
    /// `referral::effective_status`).
    pub from: String,
    pub to: &'a str,
    /// The command (or work) that takes it.
    pub via: &'a str,
    pub by: Option<&'a str>,
    pub note: Option<String>,
    pub now: Millis,
}

impl Machine {
    pub fn allows(&self, from: &str, to: &str, via: &str) -> bool {
        self.transitions.iter().any(|(f, t, v)| *f == from && *t == to && *v == via)
    }

    pub fn is_open(&self, state: &str) -> bool {
        !self.terminal.contains(&state)
    }

    /// `Ok` when the table has the step; else the machine's error naming the
    /// state and the steps it allows from there.
    pub fn check(&self, from: &str, to: &str, via: &str) -> Result<()> {
        if self.allows(from, to, via) {
            return Ok(());
        }
        let offered = || self.transitions.iter().filter(move |(f, _, v)| *f == from && !self.derived.contains(v));
        let next: Vec<String> = offered().map(|(_, t, v)| format!("`{t}` ({v})")).collect();
        let next_zh: Vec<String> = offered().map(|(_, t, v)| format!("`{t}`（`{v}`）")).collect();
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

    /// The one step function: checks the step against the table, records it
    /// in the history and moves the status.
    pub(crate) fn take(&self, status: &mut String, history: &mut Vec<Step>, t: Transition<'_>) -> Result<()> {
        self.check(&t.from, t.to, t.via)?;
        history.push(Step { at_ms: t.now, from: t.from, to: t.to.to_string(), via: t.via.to_string(), by: t.by.map(str::to_string), note: t.note });
        *status = t.to.to_string();
        Ok(())
    }

    /// [`Machine::take`] from the record's recorded state.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn step(&self, status: &mut String, history: &mut Vec<Step>, to: &str, via: &str, by: Option<&str>, note: Option<String>, now: Millis) -> Result<()> {
        let from = status.clone();
        self.take(status, history, Transition { from, to, via, by, note, now })
    }

    /// The state a record with `history` was in just before `at` (`None`: not yet created).
    pub fn state_at<'a>(&self, history: &'a [Step], at: Millis) -> Option<&'a str> {
        history.iter().take_while(|s| s.at_ms < at).last().map(|s| s.to.as_str())
    }

    /// The machine as data (what `referral-state-machines` and
    /// `chronic-catalog` serve).
    pub fn describe(&self) -> Value {
        json!({
            "name": self.name,
            "initial": self.initial,
            "states": self.states,
            "terminal": self.terminal,
            "transitions": self.transitions.iter().map(|(f, t, v)| json!({"from": f, "to": t, "via": v})).collect::<Vec<_>>(),
            "holds_slot": self.holds_slot,
            "error_code": self.code.as_str(),
        })
    }

    /// Every transition has its row `| from | to | via |` in `doc` (the
    /// document `name`d): the docs are checked against the table.
    #[cfg(test)]
    pub(crate) fn assert_documented(&self, doc: &str, name: &str) {
        for (f, t, v) in self.transitions {
            let row = format!("| {f} | {t} | {v} |");
            assert!(doc.contains(&row), "{name} lacks `{row}` of {}", self.name);
        }
    }

    /// The checks every machine's table must pass (its module's tests call it).
    #[cfg(test)]
    pub(crate) fn assert_well_formed(&self) {
        assert!(self.states.contains(&self.initial), "{}", self.name);
        for (f, t, _) in self.transitions {
            assert!(self.states.contains(f) && self.states.contains(t), "{}: {f} -> {t}", self.name);
            assert!(!self.terminal.contains(f), "{}: terminal {f} has a step", self.name);
        }
        for s in self.states {
            assert!(*s == self.initial || self.transitions.iter().any(|(_, t, _)| t == s), "{}: {s} unreachable", self.name);
        }
        for s in self.holds_slot.iter().chain(self.terminal) {
            assert!(self.states.contains(s), "{}: {s}", self.name);
        }
    }
}
