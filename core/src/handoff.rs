//! Hand-offs to upstream hospitals, as records (`upstream.rs` does them):
//! each one's row in the store and the engine's indexes of them (by number,
//! by the caller's request id, by local booking, by the hospital's own
//! booking id).
//!
//! Lock order: `UpstreamState::handoffs` is a leaf, never held across a
//! pool call or a network call.

use crate::clock::{format_ms, Millis};
use crate::error::Result;
use crate::model::format_booking_id;
use crate::store::Snapshot;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

crate::store::table!(
    /// Hand-offs to upstream hospitals, keyed by number.
    pub(crate) TABLE = "handoffs"
);

/// Where a hand-off stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum State {
    /// Not answered yet: tried again by the due-work pass.
    Pending,
    /// The hospital accepted it.
    Accepted,
    /// The hospital refused it: the hold was released.
    Refused,
    /// The deadline passed unanswered: the hold was released, the case flagged.
    Failed,
}

impl State {
    /// The state as Chinese messages name it.
    pub(crate) fn as_zh(self) -> &'static str {
        match self {
            State::Pending => "待医院应答",
            State::Accepted => "医院已受理",
            State::Refused => "医院已拒绝",
            State::Failed => "转交已超时",
        }
    }
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Accepted => "accepted",
            State::Refused => "refused",
            State::Failed => "failed",
        }
    }
}

/// One hand-off (its row in `handoffs`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Handoff {
    pub id: u64,
    pub hospital_id: String,
    /// The interface called at the hospital.
    pub command: String,
    /// The body sent (the caller's, with the hand-off's request id).
    pub request: Value,
    /// The local booking holding the place meanwhile.
    pub booking_id: u64,
    /// The caller's own (scoped) request id: its retry gets this hand-off's answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_request_id: Option<String>,
    pub state: State,
    pub attempts: u32,
    pub created_ms: Millis,
    pub next_try_ms: Millis,
    pub deadline_ms: Millis,
    /// The hospital's booking id and registration number, once accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hospital_booking_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_no: Option<Value>,
    /// The hospital's refusal, or the last failure to reach it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    /// Left for reconciliation (the deadline passed unanswered).
    #[serde(default)]
    pub flagged: bool,
}

impl Handoff {
    pub(crate) fn key(&self) -> String {
        crate::store::numbered_key(self.id)
    }
    pub(crate) fn handoff_id(&self) -> String {
        format!("HO{:06}", self.id)
    }
    pub(crate) fn view(&self, tz: &chrono_tz::Tz) -> Value {
        json!({
            "handoff_id": self.handoff_id(),
            "hospital_id": self.hospital_id,
            "command": self.command,
            "booking_id": format_booking_id(self.booking_id),
            "state": self.state.as_str(),
            "attempts": self.attempts,
            "created_at": format_ms(self.created_ms, tz),
            "next_try_at": (self.state == State::Pending).then(|| format_ms(self.next_try_ms, tz)),
            "deadline": format_ms(self.deadline_ms, tz),
            "hospital_booking_id": self.hospital_booking_id,
            "registration_no": self.registration_no,
            "error": self.error,
            "flagged": self.flagged,
        })
    }
}

#[derive(Default)]
pub(crate) struct Handoffs {
    pub by_id: BTreeMap<u64, Handoff>,
    /// Caller's scoped request id → hand-off.
    pub by_request: std::collections::HashMap<String, u64>,
    /// Local booking → hand-off.
    pub by_booking: std::collections::HashMap<u64, u64>,
    /// (hospital, its booking id) → local booking.
    pub by_hospital_booking: std::collections::HashMap<(String, String), u64>,
    /// Hand-offs whose hospital call is under way (one try at a time).
    pub in_flight: std::collections::HashSet<u64>,
    pub next_id: u64,
}

impl Handoffs {
    pub(crate) fn index(&mut self, h: Handoff) {
        if let Some(r) = &h.caller_request_id {
            self.by_request.insert(r.clone(), h.id);
        }
        self.by_booking.insert(h.booking_id, h.id);
        if let Some(hb) = &h.hospital_booking_id {
            self.by_hospital_booking.insert((h.hospital_id.clone(), hb.clone()), h.booking_id);
        }
        self.next_id = self.next_id.max(h.id);
        self.by_id.insert(h.id, h);
    }
}

/// The engine's hand-offs.
#[derive(Default)]
pub struct UpstreamState {
    pub(crate) handoffs: Mutex<Handoffs>,
}

pub(crate) fn recover(u: &UpstreamState, snap: &Snapshot) -> Result<()> {
    let mut h = u.handoffs.lock();
    for (k, body) in snap.of(TABLE) {
        h.index(crate::store::parse_row::<Handoff>(TABLE, k, body)?);
    }
    Ok(())
}
