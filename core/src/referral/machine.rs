//! Every workflow of the module as one explicit state machine: its states and
//! allowed transitions are data (listed by `referral-state-machines` and in
//! docs/referral.md); a step not in the table is refused with the machine's
//! own error code.

use crate::error::ErrorCode;
use serde_json::{json, Value};

pub use crate::machine::Machine;
pub(crate) use crate::machine::Transition;

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
    terminal: &[],
    derived: &[BOOKING_ENDED],
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
    terminal: &[],
    derived: &[BOOKING_ENDED],
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
    terminal: &[],
    derived: &[BOOKING_ENDED],
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
    terminal: &[],
    derived: &[BOOKING_ENDED],
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
    terminal: &[],
    derived: &[BOOKING_ENDED],
    code: ErrorCode::ConsultationInvalidTransition,
};

pub static ALL: [&Machine; 5] = [&OUTPATIENT, &INPATIENT, &DOWN, &EXAM_ITEM, &CONSULTATION];

/// `referral-state-machines`: every machine as data.
pub fn describe() -> Value {
    json!({"machines": ALL.iter().map(|m| m.describe()).collect::<Vec<_>>()})
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
            m.assert_documented(doc, "docs/referral.md");
        }
    }
}
