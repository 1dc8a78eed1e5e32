//! Every workflow of the module as one explicit state machine: its states and
//! allowed transitions are data (listed by `referral-state-machines` and in
//! docs/referral.md); a step not in the table is refused with the machine's
//! own error code.

use crate::error::{Error, ErrorCode, Result};
use serde_json::{json, Value};

/// A workflow: states, the initial one, transitions `(from, to, via)` where
/// `via` is the command that takes the step (`booking-ended` marks the derived
/// step taken when the pool ends the booking a case owns).
pub struct Machine {
    pub name: &'static str,
    pub initial: &'static str,
    pub states: &'static [&'static str],
    pub transitions: &'static [(&'static str, &'static str, &'static str)],
    /// States in which the case holds a place through its booking: when the
    /// booking ends, the case shows `slot_released` instead.
    pub holds_slot: &'static [&'static str],
    pub code: ErrorCode,
}

/// The derived state of a case whose booking the pool ended.
pub const SLOT_RELEASED: &str = "slot_released";
/// The `via` of derived transitions.
pub const BOOKING_ENDED: &str = "booking-ended";

pub static OUTPATIENT: Machine = Machine {
    name: "outpatient_referral",
    initial: "applied",
    states: &["applied", "accepted", "completed", "cancelled", SLOT_RELEASED],
    transitions: &[
        ("applied", "accepted", "acceptance-info"),
        ("accepted", "completed", "treatment-results"),
        ("applied", "cancelled", "outpatient-referral-cancel"),
        (SLOT_RELEASED, "cancelled", "outpatient-referral-cancel"),
        ("applied", SLOT_RELEASED, BOOKING_ENDED),
        ("accepted", SLOT_RELEASED, BOOKING_ENDED),
    ],
    holds_slot: &["applied", "accepted"],
    code: ErrorCode::ReferralInvalidTransition,
};

pub static INPATIENT: Machine = Machine {
    name: "inpatient_referral",
    initial: "applied",
    states: &["applied", "deposit_paid", "bed_reserved", "admitted", "discharged", "cancelled", SLOT_RELEASED],
    transitions: &[
        ("applied", "deposit_paid", "inpatient-deposit"),
        ("deposit_paid", "bed_reserved", "inpatient-bed-reserve"),
        (SLOT_RELEASED, "bed_reserved", "inpatient-bed-reserve"),
        ("bed_reserved", "deposit_paid", "inpatient-bed-cancel"),
        ("bed_reserved", "admitted", "inpatient-admit"),
        ("bed_reserved", "bed_reserved", "admission-import"),
        ("admitted", "admitted", "admission-import"),
        ("admitted", "discharged", "inpatient-discharge"),
        ("applied", "cancelled", "inpatient-referral-cancel"),
        ("deposit_paid", "cancelled", "inpatient-referral-cancel"),
        ("bed_reserved", "cancelled", "inpatient-referral-cancel"),
        (SLOT_RELEASED, "cancelled", "inpatient-referral-cancel"),
        ("bed_reserved", SLOT_RELEASED, BOOKING_ENDED),
    ],
    holds_slot: &["bed_reserved", "admitted"],
    code: ErrorCode::ReferralInvalidTransition,
};

pub static DOWN: Machine = Machine {
    name: "down_referral",
    initial: "applied",
    states: &["applied", "received", "cancelled"],
    transitions: &[
        ("applied", "received", "down-referral-receive"),
        ("applied", "cancelled", "down-referral-cancel"),
        ("received", "cancelled", "down-referral-cancel"),
    ],
    holds_slot: &[],
    code: ErrorCode::ReferralInvalidTransition,
};

pub static EXAM_ITEM: Machine = Machine {
    name: "exam_item",
    initial: "applied",
    states: &["applied", "arranged", "paid", "reported", "cancelled", "refunded", SLOT_RELEASED],
    transitions: &[
        ("applied", "arranged", "exam-arrange"),
        (SLOT_RELEASED, "arranged", "exam-arrange"),
        ("arranged", "paid", "exam-payment"),
        ("paid", "reported", "exam-report"),
        ("reported", "reported", "exam-report"),
        ("paid", "reported", "upload-report"),
        ("reported", "reported", "upload-report"),
        ("applied", "cancelled", "exam-cancel"),
        ("arranged", "cancelled", "exam-cancel"),
        ("paid", "cancelled", "exam-cancel"),
        (SLOT_RELEASED, "cancelled", "exam-cancel"),
        ("cancelled", "refunded", "exam-refund"),
        ("arranged", SLOT_RELEASED, BOOKING_ENDED),
        ("paid", SLOT_RELEASED, BOOKING_ENDED),
    ],
    holds_slot: &["arranged", "paid"],
    code: ErrorCode::ExamInvalidTransition,
};

pub static CONSULTATION: Machine = Machine {
    name: "consultation",
    initial: "applied",
    states: &["applied", "approved", "rejected", "completed", "cancelled"],
    transitions: &[
        ("applied", "approved", "consultation-review"),
        ("applied", "rejected", "consultation-review"),
        ("applied", "cancelled", "consultation-cancel"),
        ("approved", "cancelled", "consultation-cancel"),
        ("approved", "completed", "consultation-complete"),
    ],
    holds_slot: &[],
    code: ErrorCode::ConsultationInvalidTransition,
};

pub static ALL: [&Machine; 5] = [&OUTPATIENT, &INPATIENT, &DOWN, &EXAM_ITEM, &CONSULTATION];

impl Machine {
    pub fn allows(&self, from: &str, to: &str, via: &str) -> bool {
        self.transitions.iter().any(|(f, t, v)| *f == from && *t == to && *v == via)
    }

    /// `Ok` when the table has the step; else the machine's error, naming
    /// the state and the steps it allows.
    pub fn check(&self, from: &str, to: &str, via: &str) -> Result<()> {
        if self.allows(from, to, via) {
            return Ok(());
        }
        let next: Vec<&str> = self.transitions.iter().filter(|(f, _, v)| *f == from && *v != BOOKING_ENDED).map(|(_, _, v)| *v).collect();
        let allowed = if next.is_empty() { "none".to_string() } else { next.join(", ") };
        Err(Error::with(
            self.code,
            format!("{} is `{from}`; `{via}` is not allowed (allowed: {allowed})", self.name),
            format!("{} 当前状态为 `{from}`，不允许 `{via}`（可执行：{allowed}）", self.name),
        ))
    }
}

/// One step of a workflow, as a case, an exam item or a consultation takes it.
pub(crate) struct Transition<'a> {
    /// The state it starts from (the recorded one, or one derived from the
    /// booking, see `effective_status`).
    pub from: String,
    pub to: &'a str,
    /// The command that takes it.
    pub via: &'a str,
    pub by: Option<&'a str>,
    pub note: Option<String>,
    pub now: crate::clock::Millis,
}

impl Machine {
    /// The one step function of every workflow: checks the step against the
    /// table, records it in the history and moves the status.
    pub(crate) fn take(&self, status: &mut String, history: &mut Vec<super::Step>, t: Transition<'_>) -> Result<()> {
        self.check(&t.from, t.to, t.via)?;
        history.push(super::Step { at_ms: t.now, from: t.from, to: t.to.to_string(), via: t.via.to_string(), by: t.by.map(str::to_string), note: t.note });
        *status = t.to.to_string();
        Ok(())
    }
}

/// `referral-state-machines`: every machine as data.
pub fn describe() -> Value {
    let machines: Vec<Value> = ALL
        .iter()
        .map(|m| {
            json!({
                "name": m.name,
                "initial": m.initial,
                "states": m.states,
                "transitions": m.transitions.iter().map(|(f, t, v)| json!({"from": f, "to": t, "via": v})).collect::<Vec<_>>(),
                "holds_slot": m.holds_slot,
                "error_code": m.code.as_str(),
            })
        })
        .collect();
    json!({"machines": machines})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_transition_names_known_states_and_every_state_is_reachable() {
        for m in ALL {
            assert!(m.states.contains(&m.initial), "{}", m.name);
            for (f, t, _) in m.transitions {
                assert!(m.states.contains(f) && m.states.contains(t), "{}: {f} -> {t}", m.name);
            }
            for s in m.states {
                assert!(*s == m.initial || m.transitions.iter().any(|(_, t, _)| t == s), "{}: {s} unreachable", m.name);
            }
            for s in m.holds_slot {
                assert!(m.states.contains(s));
            }
        }
    }

    #[test]
    fn refusals_use_the_machine_code_and_name_the_allowed_steps() {
        let e = OUTPATIENT.check("completed", "cancelled", "outpatient-referral-cancel").unwrap_err();
        assert_eq!(e.code(), ErrorCode::ReferralInvalidTransition);
        let e = EXAM_ITEM.check("applied", "refunded", "exam-refund").unwrap_err();
        assert_eq!(e.code(), ErrorCode::ExamInvalidTransition);
        assert!(e.message().contains("exam-arrange"));
        assert!(CONSULTATION.check("applied", "approved", "consultation-review").is_ok());
    }

    #[test]
    fn the_documentation_lists_every_transition() {
        let doc = include_str!("../../../docs/referral.md");
        for m in ALL {
            for (f, t, v) in m.transitions {
                let row = format!("| {f} | {t} | {v} |");
                assert!(doc.contains(&row), "docs/referral.md lacks `{row}` of {}", m.name);
            }
        }
    }
}
