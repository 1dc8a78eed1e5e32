//! The objects of the slot pool: slots, bookings, waitlist entries, events.

use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::identity::PatientInfo;
use chrono::{NaiveDate, NaiveTime};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What a stopped service does with its bookings (`stop_service_action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopServiceAction {
    Cancel,
    Move,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotKind {
    /// Outpatient registration (挂号): department, doctor, date, period.
    Registration,
    /// Exam (检查): project, device, date, time window.
    Exam,
    /// Inpatient bed (床位): ward, attending doctor, bed type and number.
    Bed,
}

impl SlotKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SlotKind::Registration => "registration",
            SlotKind::Exam => "exam",
            SlotKind::Bed => "bed",
        }
    }
    pub fn parse(s: &str) -> Result<SlotKind> {
        match s {
            "registration" => Ok(SlotKind::Registration),
            "exam" => Ok(SlotKind::Exam),
            "bed" => Ok(SlotKind::Bed),
            _ => Err(Error::invalid("kind", "expected registration, exam or bed")),
        }
    }
}

/// What a slot is; fixed once the slot exists (capacity lives in its state).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlotInfo {
    pub slot_id: String,
    pub kind: SlotKind,
    pub hospital_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doctor_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    pub date: NaiveDate,
    pub start_time: NaiveTime,
    pub end_time: NaiveTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bed_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bed_type: Option<String>,
}

impl SlotInfo {
    /// "09:00-10:00", the source's `time_slot`.
    pub fn time_slot(&self) -> String {
        format!("{}-{}", self.start_time.format("%H:%M"), self.end_time.format("%H:%M"))
    }

    /// Deterministic id: the same schedule entry always names the same slot.
    pub fn make_id(kind: SlotKind, hospital: &str, resource: &str, date: NaiveDate, start: NaiveTime, end: NaiveTime) -> String {
        match kind {
            SlotKind::Bed => format!("BD-{hospital}-{resource}"),
            _ => format!(
                "{}-{hospital}-{resource}-{}-{}{}",
                if kind == SlotKind::Exam { "EX" } else { "RG" },
                date.format("%Y%m%d"),
                start.format("%H%M"),
                end.format("%H%M")
            ),
        }
    }
}

/// The persisted, mutable part of a slot that is not derived from bookings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SlotRecord {
    #[serde(flatten)]
    pub info: SlotInfo,
    pub capacity: u32,
    #[serde(default)]
    pub reserved_quota: u32,
    #[serde(default)]
    pub closed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_reason: Option<String>,
    /// Set while a closing (stop-service, or the hospital's schedule) still
    /// has bookings to cancel or move: a crash or an error part-way leaves
    /// it here, and the engine's next open (or a retried stop-service)
    /// finishes the job with this action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closing: Option<StopServiceAction>,
    /// Bookings of the slot that left memory past the retention window and
    /// still hold their place (`booked`), and of those the ones that used
    /// the referral quota: counted in the slot as before (`pool/retire.rs`).
    #[serde(default, skip_serializing_if = "Retained::is_empty")]
    pub retired: Retained,
}

/// What a slot still counts of its retired bookings (see `SlotRecord::retired`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retained {
    pub booked: u32,
    pub quota_used: u32,
}

impl Retained {
    pub fn is_empty(&self) -> bool {
        *self == Retained::default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BookingStatus {
    /// A hold (预占) waiting for payment or confirmation; it expires.
    #[serde(rename = "pre-booked")]
    PreBooked,
    /// Confirmed (预约成功). For beds: reserved.
    #[serde(rename = "booked")]
    Booked,
    /// Bed only: the patient was admitted (reserved → occupied).
    #[serde(rename = "occupied")]
    Occupied,
    #[serde(rename = "cancelled")]
    Cancelled,
    #[serde(rename = "expired")]
    Expired,
}

impl BookingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BookingStatus::PreBooked => "pre-booked",
            BookingStatus::Booked => "booked",
            BookingStatus::Occupied => "occupied",
            BookingStatus::Cancelled => "cancelled",
            BookingStatus::Expired => "expired",
        }
    }
    /// Holds a place in its slot.
    pub fn is_active(self) -> bool {
        matches!(self, BookingStatus::PreBooked | BookingStatus::Booked | BookingStatus::Occupied)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Unpaid,
    Paid,
    Refunded,
}

impl PaymentStatus {
    pub fn parse(s: &str) -> Result<PaymentStatus> {
        match s {
            "paid" => Ok(PaymentStatus::Paid),
            "unpaid" => Ok(PaymentStatus::Unpaid),
            "refunded" => Ok(PaymentStatus::Refunded),
            _ => Err(Error::invalid("payment_status", "expected paid, unpaid or refunded")),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Unpaid => "unpaid",
            PaymentStatus::Paid => "paid",
            PaymentStatus::Refunded => "refunded",
        }
    }
}

/// Priority classes (分级推送). Urgent classes rank first and may use the
/// quota a slot reserves for referrals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Normal,
    Referral,
    SpecialNeeds,
    Critical,
    Surgery,
}

impl Priority {
    pub fn parse(s: &str) -> Result<Priority> {
        Ok(match s {
            "normal" => Priority::Normal,
            "referral" => Priority::Referral,
            "special_needs" => Priority::SpecialNeeds,
            "critical" => Priority::Critical,
            "surgery" | "urgent" => Priority::Surgery,
            _ => return Err(Error::invalid("priority", "expected normal, referral, special_needs, critical or surgery")),
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Normal => "normal",
            Priority::Referral => "referral",
            Priority::SpecialNeeds => "special_needs",
            Priority::Critical => "critical",
            Priority::Surgery => "surgery",
        }
    }
    /// May take places from the reserved quota.
    pub fn uses_quota(self) -> bool {
        self != Priority::Normal
    }
    pub fn rank(self) -> u8 {
        self as u8
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SlotMove {
    pub from_slot: String,
    pub to_slot: String,
    pub at_ms: Millis,
    pub reason: String,
}

/// An id kept with every booking and event (a patient's id, the booking
/// institution's): stored inline up to 23 bytes (an ID card number's 18, a
/// hospital's patient number, an institution code),
/// a shared `Arc<str>` beyond, so neither making one nor cloning it into an
/// event or the patient table allocates for the ids a hospital uses. It
/// reads as a `&str` (`Deref`) and is written as a JSON string.
pub type Id = smol_str::SmolStr;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Booking {
    pub id: u64,
    /// The slot's id, kept only where the booking is written out (durable mode):
    /// in memory the slot is `slot_idx`, and no shared count is touched per booking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot_id: Option<Arc<str>>,
    pub patient_id: Id,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clinic_id: Option<Id>,
    pub priority: Priority,
    pub status: BookingStatus,
    pub payment: PaymentStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_expires_ms: Option<Millis>,
    #[serde(default)]
    pub used_quota: bool,
    pub created_ms: Millis,
    pub updated_ms: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<std::borrow::Cow<'static, str>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub moves: Vec<SlotMove>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_date: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The project the request named, when the slot's schedule named none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    /// From the waitlist entry that produced this hold, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waitlist_id: Option<u64>,
    /// Registration only: the visit number (就诊序号) in the doctor's day,
    /// given when the booking was made (a referred patient's by the rule
    /// 后两位, see `pool::visits`). An ended booking keeps it on record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visit_no: Option<u32>,
    /// Beds only: the day the bed was confirmed occupied (记录确认日期).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed_date: Option<NaiveDate>,
    /// The slot's index in the engine's table (not stored: rebuilt on open).
    #[serde(skip)]
    pub slot_idx: u32,
    /// Being retired (past the retention window): its row is on its way to
    /// `bookings_retired` and it leaves memory once that commits. Read as
    /// before meanwhile; never changed (`pool/retire.rs`).
    #[serde(skip)]
    pub retired: bool,
    /// Reached `booked` at some point (directly, or a hold confirmed): a
    /// booking that succeeded, even if cancelled later (the indicators'
    /// booking success rate).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub was_booked: bool,
}

impl Booking {
    /// A hold past its time-to-live. The pool records the expiry lazily, when
    /// it next touches the slot; everything that reads a booking treats a
    /// lapsed hold as expired at once.
    pub fn lapsed(&self, now: Millis) -> bool {
        self.status == BookingStatus::PreBooked && self.hold_expires_ms.is_some_and(|e| e <= now)
    }

    /// Still holds its place: active, and not a lapsed hold.
    pub fn holds_place(&self, now: Millis) -> bool {
        self.status.is_active() && !self.lapsed(now)
    }
}

pub fn format_booking_id(id: u64) -> String {
    tagged_number('B', id).into()
}

/// [`format_booking_id`] on the stack (a view's id).
pub(crate) fn booking_id_text(id: u64) -> crate::short::Short {
    tagged_number('B', id)
}

/// `B000042`: the tag and at least six digits, as `format!("{tag}{n:06}")`
/// writes it, without the formatting machinery (every answer names one).
pub(crate) fn tagged_number(tag: char, n: u64) -> crate::short::Short {
    // The tag, then at most 20 digits.
    let mut text = [b'0'; 21];
    let mut at = text.len();
    let mut rest = n;
    while rest > 0 || at > text.len() - 6 {
        at -= 1;
        text[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    at -= 1;
    // An ASCII tag (B, W) stays on the stack; any other is written as text.
    match u8::try_from(tag).ok().filter(u8::is_ascii) {
        Some(t) => {
            text[at] = t;
            crate::short::Short::ascii(&text[at..]).unwrap_or_else(|| crate::short::Short::new(&format!("{tag}{n:06}")))
        }
        None => crate::short::Short::new(&format!("{tag}{n:06}")),
    }
}

/// Accepts `B000001`, `B001` and `B1` alike, so the source's examples replay.
pub fn parse_booking_id(s: &str) -> Option<u64> {
    let digits = s.strip_prefix('B').or_else(|| s.strip_prefix('b'))?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|n| *n > 0)
}

pub fn format_waitlist_id(id: u64) -> String {
    tagged_number('W', id).into()
}

pub fn parse_waitlist_id(s: &str) -> Option<u64> {
    let digits = s.strip_prefix('W').or_else(|| s.strip_prefix('w'))?;
    digits.parse().ok().filter(|n| *n > 0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitStatus {
    Waiting,
    Promoted,
    Left,
    /// The slot closed (stop-service) while the patient waited.
    Closed,
    /// Passed over at promotion: the patient had an overlapping booking.
    Skipped,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WaitEntry {
    pub id: u64,
    pub slot_id: String,
    pub patient_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clinic_id: Option<String>,
    pub priority: Priority,
    /// Raised automatically after waiting long on a full slot.
    #[serde(default)]
    pub raised: bool,
    pub joined_ms: Millis,
    pub status: WaitStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booking_id: Option<u64>,
}

impl WaitEntry {
    pub fn effective_rank(&self) -> u8 {
        self.priority.rank() + self.raised as u8
    }
}

/// An entry of the outbox (I3): the host drains these and sends SMS or pushes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    pub seq: u64,
    #[serde(rename = "type")]
    pub kind: std::borrow::Cow<'static, str>,
    /// When it happened (UTC ms); rendered in the engine's zone as `at`.
    pub at_ms: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booking_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot_id: Option<Arc<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient_id: Option<Id>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clinic_id: Option<Id>,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub data: serde_json::Value,
    /// One field of `data` kept unbuilt on the hot path; `materialize` moves it
    /// into `data` (before the event is stored or shown).
    #[serde(skip)]
    pub note: Option<EventNote>,
    /// The slot by index while `slot_id` is not filled in yet (hot path: no
    /// shared reference count to touch); `materialize` names it.
    #[serde(skip)]
    pub slot_idx: Option<u32>,
}

/// A key and a text value of an event's data.
pub type EventNote = (&'static str, std::borrow::Cow<'static, str>);

impl Event {
    /// Moves the note into `data`. (The slot is named by the pool's `materialize_event`.)
    pub fn materialize(&mut self) {
        if let Some((k, v)) = self.note.take() {
            if !self.data.is_object() {
                self.data = serde_json::Value::Object(Default::default());
            }
            if let Some(m) = self.data.as_object_mut() {
                m.insert(k.to_string(), serde_json::Value::String(v.into_owned()));
            }
        }
    }
}

/// Patient details kept for display (masked) and for the host's own lookups.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PatientRecord {
    pub patient_id: String,
    #[serde(flatten)]
    pub info: PatientInfo,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booking_ids_roundtrip_and_accept_short_forms() {
        assert_eq!(format_booking_id(1), "B000001");
        assert_eq!(parse_booking_id("B001"), Some(1));
        assert_eq!(parse_booking_id("B000001"), Some(1));
        assert_eq!(parse_booking_id("B0"), None);
        assert_eq!(parse_booking_id("X1"), None);
        assert_eq!(parse_booking_id("B1a"), None);
    }

    #[test]
    fn ids_are_written_as_the_format_macro_writes_them() {
        for n in [0, 1, 9, 10, 99_999, 999_999, 1_000_000, 123_456_789, u64::MAX] {
            assert_eq!(format_booking_id(n), format!("B{n:06}"));
            assert_eq!(format_waitlist_id(n), format!("W{n:06}"));
        }
    }
}
