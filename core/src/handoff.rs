//! Hand-offs to upstream hospitals, as records (`upstream.rs` does them):
//! each one's row in the store and the engine's indexes of them (by number,
//! by the caller's request id, by local booking, by the hospital's own
//! booking id).
//!
//! Lock order: `UpstreamState::handoffs` may be held while a booking is
//! read from the pool (never the other way round: the pool never names
//! it), and is never held across a change, a store wait or a network call.

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
crate::store::table!(
    /// Decided hand-offs whose booking left memory (`upstream::retire`):
    /// read one at a time, never loaded at open.
    pub(crate) RETIRED = "handoffs_retired", Lazy
);
crate::store::table!(
    /// What the mirror keeps of each upstream hospital (its last schedule
    /// push, the deadlines it was found late for, the last reconciliation),
    /// keyed by hospital id.
    pub(crate) HOSPITALS = "upstream_hospitals"
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
    /// The local booking holding the place meanwhile (or, for a change, the
    /// booking changed); 0 until the tentative hold is made.
    pub booking_id: u64,
    /// The tentative hold's request (with its own request id), kept so a
    /// hand-off resumed after a crash makes, or finds, the same hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<Value>,
    /// The slot the hand-off holds a place on.
    #[serde(default)]
    pub slot_id: String,
    /// A change (a cancellation) of the booking hand-off `of` made, queued
    /// while the hospital was not reached; `None` for a booking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub of: Option<u64>,
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
    /// Left for reconciliation (the deadline passed unanswered, or the
    /// hospital booked what the mirror no longer held).
    #[serde(default)]
    pub flagged: bool,
    /// What reconciliation found and did at the hospital for a flagged
    /// hand-off (`upstream::settle`); it is then no longer flagged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled: Option<Value>,
}

impl Handoff {
    pub(crate) fn key(&self) -> String {
        crate::store::numbered_key(self.id)
    }
    pub(crate) fn handoff_id(&self) -> String {
        format!("HO{:06}", self.id)
    }
    /// The request id of one of the mirror's own steps for this hand-off
    /// (`step`: hold, book, cancel, release, settle): the pool's request ids
    /// make each step happen once, however often a resumed hand-off retries it.
    pub(crate) fn step_id(&self, step: &str) -> String {
        format!("yilian:{}:{step}", self.handoff_id())
    }
    pub(crate) fn view(&self, tz: &chrono_tz::Tz) -> Value {
        json!({
            "handoff_id": self.handoff_id(),
            "hospital_id": self.hospital_id,
            "command": self.command,
            "booking_id": (self.booking_id != 0).then(|| format_booking_id(self.booking_id)),
            "state": self.state.as_str(),
            "attempts": self.attempts,
            "created_at": format_ms(self.created_ms, tz),
            "next_try_at": (self.state == State::Pending).then(|| format_ms(self.next_try_ms, tz)),
            "deadline": format_ms(self.deadline_ms, tz),
            "hospital_booking_id": self.hospital_booking_id,
            "registration_no": self.registration_no,
            "error": self.error,
            "flagged": self.flagged,
            "change_of": self.of.map(|o| format!("HO{o:06}")),
            "settled": self.settled,
        })
    }
}

#[derive(Default)]
pub(crate) struct Handoffs {
    pub by_id: BTreeMap<u64, Handoff>,
    /// Caller's scoped request id → hand-off.
    pub by_request: std::collections::HashMap<String, u64>,
    /// Local booking → the hand-off that made it.
    pub by_booking: std::collections::HashMap<u64, u64>,
    /// Local booking → its change still pending at the hospital.
    pub changes: std::collections::HashMap<u64, u64>,
    /// (hospital, its booking id) → local booking.
    pub by_hospital_booking: std::collections::HashMap<(String, String), u64>,
    /// Hand-offs whose hospital call is under way (one try at a time).
    pub in_flight: std::collections::HashSet<u64>,
    pub next_id: u64,
}

impl Handoffs {
    /// Forgets a hand-off (retired to the store): every index naming it.
    pub(crate) fn forget(&mut self, id: u64) {
        let Some(h) = self.by_id.remove(&id) else { return };
        if let Some(r) = &h.caller_request_id {
            if self.by_request.get(r) == Some(&id) {
                self.by_request.remove(r);
            }
        }
        if self.by_booking.get(&h.booking_id) == Some(&id) {
            self.by_booking.remove(&h.booking_id);
        }
        if self.changes.get(&h.booking_id) == Some(&id) {
            self.changes.remove(&h.booking_id);
        }
        if let Some(hb) = h.hospital_booking_id.filter(|_| h.of.is_none()) {
            self.by_hospital_booking.remove(&(h.hospital_id, hb));
        }
    }

    pub(crate) fn index(&mut self, h: Handoff) {
        if let Some(r) = &h.caller_request_id {
            self.by_request.insert(r.clone(), h.id);
        }
        match h.of {
            None if h.booking_id == 0 => {}
            None => {
                self.by_booking.insert(h.booking_id, h.id);
            }
            Some(_) if h.state == State::Pending => {
                self.changes.insert(h.booking_id, h.id);
            }
            Some(_) => {
                self.changes.remove(&h.booking_id);
            }
        }
        if let Some(hb) = &h.hospital_booking_id {
            self.by_hospital_booking.insert((h.hospital_id.clone(), hb.clone()), h.booking_id);
        }
        self.next_id = self.next_id.max(h.id);
        self.by_id.insert(h.id, h);
    }
}

/// What the mirror keeps of one upstream hospital (its row in `upstream_hospitals`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct HospitalMarks {
    /// When the hospital last pushed its schedule (`sync-schedule`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushed_ms: Option<Millis>,
    /// The last day the push deadline was checked (raised or found met).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_checked: Option<chrono::NaiveDate>,
    /// When reconciliation last reached the hospital.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconciled_ms: Option<Millis>,
    /// Days the push deadline was checked, and of those the days it was
    /// missed (the indicators' data update timeliness).
    #[serde(default)]
    pub days_checked: u32,
    #[serde(default)]
    pub days_late: u32,
    /// Slots reconciliation checked, and of those found drifting.
    #[serde(default)]
    pub slots_checked: u64,
    #[serde(default)]
    pub slots_drifted: u64,
}

/// The engine's hand-offs and what it keeps of each upstream hospital.
#[derive(Default)]
pub struct UpstreamState {
    pub(crate) handoffs: Mutex<Handoffs>,
    /// A leaf too; taken without `handoffs`.
    pub(crate) hospitals: Mutex<BTreeMap<String, HospitalMarks>>,
    /// When the last reconciliation pass began (real time; none yet at open).
    pub(crate) reconciled_at: Mutex<Option<std::time::Instant>>,
}

pub(crate) fn recover(u: &UpstreamState, snap: &Snapshot) -> Result<()> {
    let mut h = u.handoffs.lock();
    for (k, body) in snap.of(TABLE) {
        h.index(crate::store::parse_row::<Handoff>(TABLE, k, body)?);
    }
    // A retired hand-off's number is never given again.
    let retired = snap.lazy_max_key(RETIRED).and_then(|k| k.parse::<u64>().ok()).unwrap_or(0);
    h.next_id = h.next_id.max(retired);
    let mut marks = u.hospitals.lock();
    for (k, body) in snap.of(HOSPITALS) {
        marks.insert(k.to_string(), crate::store::parse_row::<HospitalMarks>(HOSPITALS, k, body)?);
    }
    Ok(())
}
