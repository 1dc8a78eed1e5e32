//! The register's and the follow-up plans' states as data, in the style of
//! `referral/machine.rs`: states, the initial one, transitions `(from, to,
//! via)` where `via` is the command (or the due work, or the case step) that
//! takes the step (`crate::machine`). Served by `chronic-catalog`; a step
//! not in the table is refused with the machine's own error code.

use crate::error::ErrorCode;
use serde_json::Value;

pub(crate) use crate::machine::{Machine, Step};

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
    holds_slot: &[],
    derived: &[],
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
    holds_slot: &[],
    derived: &[],
    code: ErrorCode::FollowUpInvalidTransition,
};

pub(crate) static ALL: [&Machine; 2] = [&REGISTER, &PLAN];

/// Both machines as data.
pub(crate) fn describe() -> Value {
    Value::Array(ALL.iter().map(|m| m.describe()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_transition_names_known_states_and_every_state_is_reachable() {
        for m in ALL {
            m.assert_well_formed();
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
            m.assert_documented(doc, "README.md");
        }
    }
}
