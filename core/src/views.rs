//! What callers read about slots, bookings and events: typed `Serialize`
//! structs, shared by every command that shows them (the pool's commands,
//! schedules, referrals, exams), and the one rule for "expired".
//!
//! A view borrows from the pool's state while a lock is held and is turned
//! into the answer at once ([`to_value`]); nothing here changes state or
//! takes a lock other than the ones the caller names.
//!
//! Patient identifiers (S1) are masked in one place, [`mask_patient_ids`],
//! which the registry applies to every answer (events included: `next-events`
//! is a command) for the principal the call was bound to, after the handler
//! and outside every lock ([`mask_answer`]). Views themselves always carry
//! the identifier in full; the invariant is that no answer leaves the engine
//! without the walk, or without the proof that the walk would change
//! nothing: a view answered as text (`reply.rs`) is written so only for a
//! principal its [`View::open_to`](crate::reply::View::open_to) admits, by
//! the same rule over the same parties, and a test holds the two to the
//! same output for every kind of principal.
//! Whose identifiers a principal reads in full is
//! `Principal::sees_patient_id`; how a masked one looks is
//! `identity::mask_patient_id`.

use crate::clock::{format_ms, stamp, Millis};
use crate::model::{booking_id_text, format_booking_id, format_waitlist_id, Booking, BookingStatus, Event, SlotInfo, SlotKind};
use crate::pool::{Pool, Slot, SlotState};
use crate::principal::Principal;
use crate::short::Short;
use serde::Serialize;
use serde_json::{json, Value};

/// The one rule for "expired": an unpaid hold past its time-to-live is shown
/// expired at once, before the pool's sweep ends it (availability already
/// stops counting it).
pub(crate) fn shown_status(b: &Booking, now: Millis) -> &'static str {
    if b.lapsed(now) {
        BookingStatus::Expired.as_str()
    } else {
        b.status.as_str()
    }
}

/// Why a booking no longer holds its place, when that is known.
fn released_reason(b: &Booking, status: &str) -> Option<String> {
    match (&b.cancel_reason, status) {
        (Some(r), _) => Some(r.to_string()),
        (None, "expired") => Some("unpaid hold passed its time-to-live".to_string()),
        _ => None,
    }
}

/// The slot's place in the schedule: the fields every view of a slot or of a
/// booking on it carries.
#[derive(Serialize)]
pub(crate) struct Place<'a> {
    pub slot_id: &'a str,
    pub hospital_id: &'a str,
    pub date: &'a str,
    pub time_slot: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub department_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub doctor_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bed_number: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bed_type: Option<&'a str>,
}

impl<'a> Place<'a> {
    pub fn of(slot: &'a Slot) -> Place<'a> {
        let i: &'a SlotInfo = &slot.info;
        Place {
            slot_id: &i.slot_id,
            hospital_id: &i.hospital_id,
            date: &slot.date_str,
            time_slot: &slot.time_slot,
            department_id: i.department_id.as_deref(),
            doctor_id: i.doctor_id.as_deref(),
            period: i.period.as_deref(),
            device_id: i.device_id.as_deref(),
            project_id: i.project_id.as_deref(),
            bed_number: i.bed_number.as_deref(),
            bed_type: i.bed_type.as_deref(),
        }
    }
}

/// A slot with its places (`real-time-slots`, `slot-info`, schedules).
#[derive(Serialize)]
pub(crate) struct SlotView<'a> {
    #[serde(flatten)]
    pub place: Place<'a>,
    pub kind: &'static str,
    pub start_time: String,
    pub end_time: String,
    pub capacity: u32,
    pub booked: u32,
    pub held: u32,
    pub remaining: u32,
    pub reserved_quota: u32,
    pub tight: bool,
    pub status: &'static str,
    pub waiting: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opens_at: Option<String>,
}

pub(crate) fn slot_view<'a>(pool: &Pool, slot: &'a Slot, st: &'a SlotState) -> SlotView<'a> {
    let a = slot.availability(st, pool.clock.now_ms(), &pool.cfg);
    let i = &slot.info;
    SlotView {
        place: Place::of(slot),
        kind: i.kind.as_str(),
        start_time: i.start_time.format("%H:%M").to_string(),
        end_time: i.end_time.format("%H:%M").to_string(),
        capacity: a.capacity,
        booked: a.booked,
        held: a.held,
        remaining: a.remaining,
        reserved_quota: a.reserved_quota,
        tight: a.tight,
        status: if a.closed {
            "closed"
        } else if a.remaining == 0 {
            "full"
        } else {
            "available"
        },
        waiting: a.waiting,
        closed_reason: st.closed_reason.as_deref(),
        opens_at: (slot.opens_ms > i64::MIN).then(|| format_ms(slot.opens_ms, &pool.cfg.tz)),
    }
}

/// A move of a booking to another slot (a stopped service, `change-booking`).
/// Fields in the order of their names, as [`BookingView`]'s.
#[derive(Serialize)]
pub(crate) struct MoveView<'a> {
    pub at: String,
    pub from_slot: &'a str,
    pub reason: &'a str,
    pub to_slot: &'a str,
}

crate::reply::view_struct! {
/// A booking as every command shows it: the slot's place and the booking's
/// own fields.
///
/// Its fields are declared in the order of their names, with the place's
/// inlined (no `flatten`), so its text written straight from the struct
/// (`write_json`, the hot commands' answer) is the very text its `Value`
/// prints; a test holds every field to that. A field that is `None` (or an
/// empty list) is left out (`reply::view_struct!`).
pub(crate) struct BookingView<'a> {
    pub bed_number: Option<&'a str>,
    pub bed_type: Option<&'a str>,
    pub booking_id: Short,
    pub cancel_reason: Option<&'a str>,
    pub changes: Vec<MoveView<'a>>,
    pub clinic_id: Option<&'a str>,
    /// Beds: the day the bed was confirmed occupied.
    pub confirmed_date: Option<String>,
    pub created_at: Short,
    pub date: &'a str,
    pub department_id: Option<&'a str>,
    pub device_id: Option<&'a str>,
    pub doctor_id: Option<&'a str>,
    pub expected_date: Option<String>,
    pub hold_expires_at: Option<Short>,
    pub hospital_id: &'a str,
    pub kind: &'static str,
    pub patient: Option<Value>,
    pub patient_id: &'a str,
    pub payment_status: &'static str,
    pub priority: &'static str,
    /// The project the schedule names, else the one the request named.
    pub project_id: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub slot_id: &'a str,
    pub status: &'static str,
    pub time_slot: &'a str,
    /// Registration: the visit number (就诊序号) in the doctor's day.
    pub visit_no: Option<u32>,
    pub waitlist_id: Option<String>,
}
}

impl crate::reply::View for BookingView<'_> {
    /// Its parties, as the walk finds them ([`PARTY_FIELDS`]): the booking
    /// institution and the slot's hospital. A nested object (`patient`)
    /// only adds parties, so a reader of the top reads it all.
    fn open_to(&self, who: &Principal) -> bool {
        let parties = [self.clinic_id, Some(self.hospital_id)];
        who.sees_patient_id(|i| parties.iter().flatten().any(|p| p.trim() == i))
    }
    fn write_text(&self, out: &mut String) {
        self.write_json(out);
    }
}

pub(crate) fn booking_view<'a>(pool: &Pool, b: &'a Booking, slot: &'a Slot) -> BookingView<'a> {
    let i = &slot.info;
    let tz = &pool.cfg.tz;
    // The period is the slot's, not the booking's: a booking shows none.
    let place = Place::of(slot);
    let status = match (i.kind, shown_status(b, pool.clock.now_ms())) {
        (SlotKind::Bed, "booked") => "reserved",
        (_, s) => s,
    };
    BookingView {
        bed_number: place.bed_number,
        bed_type: place.bed_type,
        booking_id: booking_id_text(b.id),
        cancel_reason: b.cancel_reason.as_deref(),
        changes: b.moves.iter().map(|m| MoveView { from_slot: &m.from_slot, to_slot: &m.to_slot, at: format_ms(m.at_ms, tz), reason: &m.reason }).collect(),
        clinic_id: b.clinic_id.as_deref(),
        confirmed_date: b.confirmed_date.map(|d| d.to_string()),
        created_at: stamp(b.created_ms, tz),
        date: place.date,
        department_id: place.department_id,
        device_id: place.device_id,
        doctor_id: place.doctor_id,
        expected_date: b.expected_date.map(|d| d.to_string()),
        hold_expires_at: b.hold_expires_ms.map(|e| stamp(e, tz)),
        hospital_id: place.hospital_id,
        kind: i.kind.as_str(),
        patient: pool.patient_info.shard(&*b.patient_id).get(&*b.patient_id).map(|info| info.masked()),
        patient_id: &b.patient_id,
        payment_status: b.payment.as_str(),
        priority: b.priority.as_str(),
        project_id: place.project_id.or(b.project_id.as_deref()),
        reason: b.reason.as_deref(),
        slot_id: place.slot_id,
        status,
        time_slot: place.time_slot,
        visit_no: b.visit_no,
        waitlist_id: b.waitlist_id.map(format_waitlist_id),
    }
}

/// The booking part of a case (referral, exam): the slot while the booking
/// holds one, else what ended it.
#[derive(Serialize)]
#[serde(untagged)]
pub(crate) enum BookingPart<'a> {
    Holds {
        booking_id: String,
        booking_status: &'static str,
        payment_status: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        visit_no: Option<u32>,
        #[serde(flatten)]
        place: Place<'a>,
    },
    Ended {
        booking_id: String,
        booking_status: &'static str,
        payment_status: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        released_reason: Option<String>,
    },
    Unknown {
        booking_id: String,
        booking_status: &'static str,
    },
}

impl<'a> BookingPart<'a> {
    /// The slot, while the booking holds one.
    pub fn place(&self) -> Option<&Place<'a>> {
        match self {
            BookingPart::Holds { place, .. } => Some(place),
            _ => None,
        }
    }
    /// The visit number, while the booking holds its place.
    pub fn visit_no(&self) -> Option<u32> {
        match self {
            BookingPart::Holds { visit_no, .. } => *visit_no,
            _ => None,
        }
    }
    pub fn payment_status(&self) -> Option<&'static str> {
        match self {
            BookingPart::Holds { payment_status, .. } | BookingPart::Ended { payment_status, .. } => Some(payment_status),
            BookingPart::Unknown { .. } => None,
        }
    }
    /// Why the place was given up (cancelled, expired), when known.
    pub fn released_reason(&self) -> Option<&str> {
        match self {
            BookingPart::Ended { released_reason, .. } => released_reason.as_deref(),
            _ => None,
        }
    }

    pub fn of(b: &'a Booking, slot: Option<&'a Slot>, now: Millis) -> BookingPart<'a> {
        match slot {
            Some(s) if b.holds_place(now) => BookingPart::Holds {
                booking_id: format_booking_id(b.id),
                booking_status: b.status.as_str(),
                payment_status: b.payment.as_str(),
                visit_no: b.visit_no,
                place: Place::of(s),
            },
            _ => {
                let status = shown_status(b, now);
                BookingPart::Ended {
                    booking_id: format_booking_id(b.id),
                    booking_status: status,
                    payment_status: b.payment.as_str(),
                    released_reason: released_reason(b, status),
                }
            }
        }
    }
}

/// Hands `f` the booking part of a case (`None` when it owns no booking):
/// reads the booking unless it is `live` (call without the case module's lock
/// unless `live` is given or there is no booking).
pub(crate) fn with_booking<R>(pool: &Pool, booking: Option<u64>, live: Option<(&Booking, &Slot)>, f: impl FnOnce(Option<&BookingPart<'_>>) -> R) -> R {
    let Some(id) = booking else { return f(None) };
    let now = pool.clock.now_ms();
    if let Some((b, s)) = live.filter(|(b, _)| b.id == id) {
        return f(Some(&BookingPart::of(b, Some(s), now)));
    }
    match pool.booking_or_retired(id) {
        Ok(b) => {
            let s = pool.slot(b.slot_idx).ok();
            f(Some(&BookingPart::of(&b, s.as_deref(), now)))
        }
        Err(_) => f(Some(&BookingPart::Unknown { booking_id: format_booking_id(id), booking_status: "unknown" })),
    }
}

/// One step of a case's history (referral, exam item, consultation).
#[derive(Serialize)]
pub(crate) struct StepView<'a> {
    pub at: String,
    pub from: &'a str,
    pub to: &'a str,
    pub via: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<&'a str>,
}

/// An event as the host reads it: ids rendered, time in the engine's zone, and
/// a booking event's slot details (kept out of the outbox to keep it small).
pub(crate) fn event_view(pool: &Pool, e: &Event) -> Value {
    let mut v = if e.note.is_some() || e.slot_idx.is_some() {
        let mut e = e.clone();
        pool.materialize_event(&mut e);
        serde_json::to_value(&e)
    } else {
        serde_json::to_value(e)
    }
    .unwrap_or(Value::Null);
    if let Some(m) = v.as_object_mut() {
        m.remove("at_ms");
        m.insert("at".into(), format_ms(e.at_ms, &pool.cfg.tz).into());
        if let Some(b) = e.booking_id {
            m.insert("booking_id".into(), format_booking_id(b).into());
            let slot = match e.slot_idx {
                Some(idx) => pool.slot(idx).ok(),
                None => e.slot_id.as_deref().and_then(|s| pool.slot_by_id(s).ok()),
            };
            if let Some(slot) = slot {
                let data = m.entry("data").or_insert_with(|| json!({}));
                if let Some(d) = data.as_object_mut() {
                    d.entry("kind").or_insert(slot.info.kind.as_str().into());
                    d.entry("date").or_insert((*slot.date_str).into());
                    d.entry("time_slot").or_insert((*slot.time_slot).into());
                    d.entry("hospital_id").or_insert(slot.info.hospital_id.clone().into());
                }
            }
        }
    }
    v
}

/// Fields that name a party of the record they are in: the booking (or
/// ordering) institution, the hospital, the institution, the lab.
const PARTY_FIELDS: [&str; 4] = ["clinic_id", "hospital_id", "institution_id", "lab_id"];

/// Whether `who` may read an event (its view, [`event_view`]): the platform
/// every one; an institution the events it is a party of — an event naming
/// it in its [`PARTY_FIELDS`] or those of its `data` (a booking event's
/// hospital is added from its slot). The regulator reads statistics, not
/// events. The one rule for `next-events` and the sandbox's event stream.
pub fn event_visible_to(who: &Principal, ev: &Value) -> bool {
    if who.is_platform() {
        return true;
    }
    let Some(own) = who.institution_id.as_deref() else { return false };
    if who.role == crate::principal::Role::Regulator {
        return false;
    }
    let names =
        |o: Option<&serde_json::Map<String, Value>>| o.is_some_and(|m| PARTY_FIELDS.iter().any(|k| m.get(*k).and_then(party_text).as_deref() == Some(own)));
    names(ev.as_object()) || names(ev.get("data").and_then(Value::as_object))
}

/// Masks, in an answer or event for `who`, every `patient_id` of a record
/// `who` is not a party of (`Principal::sees_patient_id`). A record's parties
/// are the [`PARTY_FIELDS`] of its own object, of its `data` (an event's
/// details) and of the objects it is nested in (a waitlist entry in its
/// slot, a step in its case). The platform's answers are left as they are.
pub(crate) fn mask_patient_ids(who: &Principal, v: &mut Value) {
    if who.sees_every_patient_id() {
        return;
    }
    let mut parties = Vec::new();
    walk(who, v, &mut parties);
}

/// The fields that identify a patient to an institution and follow the
/// `patient_id` rule: the patient id and the medical record number (病历号).
const PATIENT_NUMBERS: [&str; 2] = ["patient_id", "medical_record_no"];

fn party_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn walk(who: &Principal, v: &mut Value, parties: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            let outer = parties.len();
            let data = m.get("data").and_then(Value::as_object);
            for k in PARTY_FIELDS {
                parties.extend(m.get(k).and_then(party_text));
                parties.extend(data.and_then(|d| d.get(k)).and_then(party_text));
            }
            for key in PATIENT_NUMBERS {
                if let Some(id) = m.get_mut(key) {
                    if !who.sees_patient_id(|i| parties.iter().any(|p| p == i)) {
                        if let Some(text) = party_text(id) {
                            *id = crate::identity::mask_patient_id(&text).into();
                        }
                    }
                }
            }
            for (k, child) in m.iter_mut() {
                if !PATIENT_NUMBERS.contains(&k.as_str()) {
                    walk(who, child, parties);
                }
            }
            parties.truncate(outer);
        }
        Value::Array(a) => a.iter_mut().for_each(|x| walk(who, x, parties)),
        _ => {}
    }
}

pub(crate) use crate::reply::to_value;

/// A command's answer as `who` may read it (S1): a `Value` is walked
/// ([`mask_patient_ids`]); text was checked for `who` when it was written
/// (`reply.rs`, `View::open_to`).
pub(crate) fn mask_answer(who: &Principal, answer: crate::reply::Data) -> crate::reply::Data {
    match answer {
        crate::reply::Data::Value(mut v) => {
            mask_patient_ids(who, &mut v);
            crate::reply::Data::Value(v)
        }
        text => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::Answer;
    use crate::principal::Role;

    fn printed(a: Answer, who: &Principal) -> String {
        mask_answer(who, a.into_data()).into_text()
    }

    fn walked(view: &BookingView<'_>, who: &Principal) -> String {
        let mut v = to_value(view);
        mask_patient_ids(who, &mut v);
        v.to_string()
    }

    fn every_field<'a>(patient: Option<Value>) -> BookingView<'a> {
        BookingView {
            bed_number: Some("12"),
            bed_type: Some("standard"),
            booking_id: "B000042".into(),
            cancel_reason: Some("moved"),
            changes: vec![MoveView { at: "2024-10-30T09:00:00+08:00".into(), from_slot: "S1", reason: "stopped", to_slot: "S2" }],
            clinic_id: Some("C001"),
            confirmed_date: Some("2024-10-30".into()),
            created_at: "2024-10-29T09:00:00+08:00".into(),
            date: "2024-10-30",
            department_id: Some("D01"),
            device_id: Some("DEV001"),
            doctor_id: Some("DR01"),
            expected_date: Some("2024-10-31".into()),
            hold_expires_at: Some("2024-10-29T09:15:00+08:00".into()),
            hospital_id: "H001",
            kind: "exam",
            patient,
            patient_id: "330102199001011234",
            payment_status: "unpaid",
            priority: "normal",
            project_id: Some("P001"),
            reason: Some("follow-up"),
            slot_id: "EX-H001-DEV001-20241030-09001000",
            status: "pre_booked",
            time_slot: "09:00-10:00",
            visit_no: Some(3),
            waitlist_id: Some("W000001".into()),
        }
    }

    #[test]
    fn a_booking_written_as_text_is_the_text_of_its_value() {
        let view = every_field(Some(serde_json::json!({"name": "王*", "medical_record_no": "MR0012345", "phone": "138****5678"})));
        assert_eq!(crate::reply::Data::text(&view), to_value(&view).to_string());
        assert_eq!(crate::reply::Data::view_text(&view), to_value(&view).to_string());
        let bare = BookingView { changes: Vec::new(), patient: None, clinic_id: None, visit_no: None, ..every_field(None) };
        assert_eq!(crate::reply::Data::text(&bare), to_value(&bare).to_string());
        assert_eq!(crate::reply::Data::view_text(&bare), to_value(&bare).to_string());
    }

    #[test]
    fn a_booking_answered_as_text_is_masked_exactly_as_the_walk_masks_it() {
        let view = every_field(Some(serde_json::json!({"name": "王*", "medical_record_no": "MR0012345"})));
        let p = |role, inst: Option<&str>| Principal::new(role, inst, None).unwrap();
        let readers = [
            p(Role::Platform, None),
            p(Role::Platform, Some("C001")),
            p(Role::Community, Some("C001")),
            p(Role::Community, Some("C002")),
            p(Role::Hospital, Some("H001")),
            p(Role::Hospital, Some("H002")),
            p(Role::Lab, Some("L001")),
            p(Role::Regulator, None),
        ];
        let mut masked = 0;
        for who in &readers {
            let answer = Answer::view(&view, who);
            let text = matches!(answer, Answer::Text(_));
            assert_eq!(printed(answer, who), walked(&view, who), "{who:?}");
            if !text {
                masked += 1;
                assert!(!walked(&view, who).contains("330102199001011234"), "{who:?}");
            }
        }
        // The readers who are not parties got the walked `Value`.
        assert_eq!(masked, 4);
    }
}
