//! Two-way referral (双向转诊), exam applications with report return and remote
//! consultation: each workflow one explicit state machine (see `machine`).
//!
//! Layout: `disease` (R1 catalogue and the direct-referral rule), `outpatient`
//! (R2–R4), `inpatient` (R5), `down` (R6), `query` (R7), `exam` (B1–B4),
//! `document` (report documents: `upload-report`), `consultation` (R8).
//! This file holds the shared state, persistence, the permission rule (S1)
//! and the transaction helpers.
//!
//! A referral never carries a stale slot: it owns a booking id only, and its
//! slot (date, period, doctor, bed) is read from that booking whenever the
//! referral is shown. When the pool ends the booking (cancel-slot, hold
//! expiry, stop-service, bed-cancel) the referral shows the derived state
//! `slot_released` with the booking's reason; when the pool moves it
//! (change-booking, stop-service with `move`) the referral shows the new slot.
//!
//! Lock order: slot lock(s) by index → booking cell(s) by id → this module's lock → outbox. The
//! module's lock is never held while a slot or booking lock is taken.

mod consultation;
mod disease;
mod document;
mod down;
mod exam;
mod inpatient;
pub mod machine;
mod outpatient;
mod query;

pub use outpatient::queue_after_current;

use crate::clock::{format_ms, Millis};
use crate::error::{Error, ErrorCode, Result};
use crate::identity::PatientInfo;
use crate::model::{Booking, Event};
use crate::pool::{Actor, Answer, Claimed, IdemClaim, Pool, Reserve, Slot, SlotState, Txn};
use crate::request::Req;
use crate::store::{Snapshot, Write};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// A step of this module: the acting party is `institution_id`; the steps
/// check which side (community or hospital) may take them (`Who::must_be`).
pub(crate) fn run(
    pool: &Pool,
    referral: &ReferralState,
    chronic: &crate::chronic::ChronicState,
    command: &'static str,
    r: &Req,
    h: fn(&Ctx) -> Result<Value>,
) -> Result<Value> {
    pool.check_open()?;
    h(&Ctx { pool, referral, chronic, r, command })
}

crate::command::command_table! { pub(crate) COMMANDS: fn(&Ctx) -> Result<Value>;
    "referral-disease-add", Change, PLATFORM, INSTITUTION => disease::change;
    "referral-disease-edit", Change, PLATFORM, INSTITUTION => disease::change;
    "referral-disease-delete", Change, PLATFORM, INSTITUTION => disease::change;
    "referral-disease-query", Query, NETWORK, INSTITUTION => disease::query;
    "referral-decision", Query, NETWORK, INSTITUTION => disease::decision_cmd;
    "referral-sources", Query, NETWORK, INSTITUTION => outpatient::sources;
    "outpatient-referral-apply", Change, NETWORK, INSTITUTION => outpatient::apply;
    "outpatient-referral-cancel", Change, NETWORK, INSTITUTION => outpatient::cancel;
    "acceptance-info", Change, NETWORK, INSTITUTION => outpatient::acceptance;
    "treatment-results", Change, NETWORK, INSTITUTION => outpatient::results;
    "referral-slip", Query, NETWORK, INSTITUTION => outpatient::slip;
    "referral-queue-position", Query, NETWORK, INSTITUTION => outpatient::queue_cmd;
    "inpatient-referral-apply", Change, NETWORK, INSTITUTION => inpatient::apply;
    "inpatient-deposit", Change, NETWORK, INSTITUTION => inpatient::deposit;
    "inpatient-bed-reserve", Change, NETWORK, INSTITUTION => inpatient::bed_reserve;
    "inpatient-bed-cancel", Change, NETWORK, INSTITUTION => inpatient::bed_cancel;
    "inpatient-admit", Change, NETWORK, INSTITUTION => inpatient::admit;
    "inpatient-discharge", Change, NETWORK, INSTITUTION => inpatient::discharge;
    "inpatient-referral-cancel", Change, NETWORK, INSTITUTION => inpatient::cancel;
    "admission-details", Query, NETWORK, INSTITUTION => inpatient::admission_details;
    "admission-import", Change, HOSPITAL, INSTITUTION => inpatient::admission_import;
    "referral-network-sync", Change, PLATFORM, INSTITUTION => down::network_sync;
    "community-institutions", Query, NETWORK, INSTITUTION => down::communities;
    "down-referral-apply", Change, NETWORK, INSTITUTION => down::apply;
    "down-referral-cancel", Change, NETWORK, INSTITUTION => down::cancel;
    "down-referral-receive", Change, NETWORK, INSTITUTION => down::receive;
    "down-referral-list", Query, NETWORK, INSTITUTION => down::list;
    "referral-view", Query, NETWORK, INSTITUTION => query::view;
    "referral-query", Query, NETWORK, INSTITUTION => query::query;
    "referral-state-machines", Query, EVERYONE, INSTITUTION => |_| Ok(machine::describe());
    "exam-institutions", Query, NETWORK, INSTITUTION => exam::institutions;
    "exam-project-search", Query, NETWORK, INSTITUTION => exam::project_search;
    "exam-apply", Change, NETWORK, INSTITUTION => exam::apply;
    "exam-arrange", Change, NETWORK, INSTITUTION => exam::arrange;
    "exam-payment", Change, NETWORK, INSTITUTION => exam::payment;
    "exam-cancel", Change, NETWORK, INSTITUTION => exam::cancel;
    "exam-refund", Change, NETWORK, INSTITUTION => exam::refund;
    "exam-signing-key", Change, HOSPITAL, INSTITUTION => exam::signing_key;
    "exam-report", Change, NETWORK, INSTITUTION => exam::report;
    "exam-view", Query, NETWORK, INSTITUTION => exam::view;
    "exam-query", Query, NETWORK, INSTITUTION => exam::query;
    "upload-report", Change, HOSPITAL, INSTITUTION => document::upload;
    "exam-report-document", Query, NETWORK, INSTITUTION => document::read;
    "consultation-apply", Change, NETWORK, INSTITUTION => consultation::apply;
    "consultation-review", Change, NETWORK, INSTITUTION => consultation::review;
    "consultation-cancel", Change, NETWORK, INSTITUTION => consultation::cancel;
    "consultation-complete", Change, NETWORK, INSTITUTION => consultation::complete;
    "consultation-view", Query, NETWORK, INSTITUTION => consultation::view;
    "consultation-query", Query, NETWORK, INSTITUTION => consultation::query;
}

crate::store::table!(
    /// Referrals, exam applications and consultations.
    pub(crate) TABLE = "referral"
);

pub(crate) use document::CONTENT as DOCUMENT_CONTENT;

/// The largest request `command` takes, when it is larger than the config's
/// `max_request_bytes`: `upload-report` carries a document of up to
/// `report_max_bytes` as base64, plus its fields.
pub(crate) fn request_limit(cfg: &crate::config::Config, command: &str) -> Option<usize> {
    (command == "upload-report").then(|| cfg.max_request_bytes.max(cfg.report_max_bytes.div_ceil(3) * 4 + 64 * 1024))
}

/// The module's in-memory state; every change is also written to its table.
#[derive(Default)]
pub struct ReferralState {
    pub(crate) inner: Mutex<Inner>,
    /// Numbers reservation intents (their keys also carry the time).
    pub(crate) intents: std::sync::atomic::AtomicU64,
}

#[derive(Default)]
pub(crate) struct Inner {
    pub diseases: BTreeMap<String, disease::Disease>,
    pub referrals: BTreeMap<u64, Referral>,
    pub exams: BTreeMap<u64, exam::ExamApp>,
    pub consultations: BTreeMap<u64, consultation::Consultation>,
    pub keys: BTreeMap<String, exam::SigningKey>,
    pub communities: BTreeMap<String, down::Community>,
    /// Report documents (`upload-report`) by id: their records.
    pub documents: BTreeMap<u64, document::Document>,
    /// The bytes (base64) of documents kept in memory (no store, no `report_dir`).
    pub contents: BTreeMap<u64, std::sync::Arc<str>>,
    pub next_document: u64,
    /// admission id → referral id.
    pub admissions: BTreeMap<u64, u64>,
    pub next_referral: u64,
    pub next_exam: u64,
    pub next_consultation: u64,
    pub next_admission: u64,
}

impl Inner {
    fn take_id(counter: &mut u64) -> u64 {
        *counter = (*counter).max(1);
        let id = *counter;
        *counter += 1;
        id
    }
}

// ---------------------------------------------------------------- the referral record

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Kind {
    Outpatient,
    Inpatient,
    Down,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Outpatient => "outpatient",
            Kind::Inpatient => "inpatient",
            Kind::Down => "down",
        }
    }
    pub fn machine(self) -> &'static machine::Machine {
        match self {
            Kind::Outpatient => &machine::OUTPATIENT,
            Kind::Inpatient => &machine::INPATIENT,
            Kind::Down => &machine::DOWN,
        }
    }
}

/// One step of a workflow, kept for the record.
pub(crate) use crate::machine::Step;

/// Up-referral (outpatient, inpatient) and down-referral: one record, one
/// machine per kind.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Referral {
    pub referral_id: u64,
    pub kind: Kind,
    pub status: String,
    pub patient_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<PatientInfo>,
    /// The community institution (applicant of an up-referral, receiver of a down-referral).
    pub clinic_id: String,
    pub hospital_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doctor_id: Option<String>,
    /// The doctor who applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applicant_doctor_id: Option<String>,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disease_code: Option<String>,
    /// The application's record, fused from the host's EMR (R3).
    #[serde(default)]
    pub record: Value,
    /// The booking this referral owns (registration or bed); its slot is read from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booking_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consultation_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deposit: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acceptance: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admission: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
    pub created_ms: Millis,
    pub updated_ms: Millis,
    #[serde(default)]
    pub history: Vec<Step>,
}

impl Referral {
    /// A new case in its machine's first state, applied by `by` through `via`;
    /// callers fill in who and what with struct-update syntax.
    pub fn applied(referral_id: u64, kind: Kind, via: &str, by: &str, now: Millis) -> Referral {
        Referral {
            referral_id,
            kind,
            status: "applied".into(),
            patient_id: String::new(),
            patient: None,
            clinic_id: String::new(),
            hospital_id: String::new(),
            department_id: None,
            doctor_id: None,
            applicant_doctor_id: None,
            reason: String::new(),
            disease_code: None,
            record: Value::Null,
            booking_id: None,
            expected_date: None,
            decision: None,
            consultation_id: None,
            deposit: None,
            acceptance: None,
            outcome: None,
            admission: None,
            cancel_reason: None,
            created_ms: now,
            updated_ms: now,
            history: vec![Step { at_ms: now, from: String::new(), to: "applied".into(), via: via.into(), by: Some(by.to_string()), note: None }],
        }
    }

    /// Checks the transition against the kind's machine, then records it.
    pub fn go(&mut self, to: &str, via: &str, by: Option<&str>, note: Option<String>, now: Millis, live: Option<&Booking>) -> Result<()> {
        let from = effective_status(&self.status, self.booking_id, live, self.kind.machine(), now);
        self.go_from(from, to, via, by, note, now)
    }

    /// As `go`, from a state the caller derived (see `inpatient-bed-reserve`).
    pub fn go_from(&mut self, from: String, to: &str, via: &str, by: Option<&str>, note: Option<String>, now: Millis) -> Result<()> {
        self.kind.machine().take(&mut self.status, &mut self.history, machine::Transition { from, to, via, by, note, now })?;
        self.updated_ms = now;
        Ok(())
    }
}

/// The state a case shows: its recorded one, or `slot_released` when it
/// should hold a place and its booking no longer does.
pub(crate) fn effective_status(status: &str, booking: Option<u64>, live: Option<&Booking>, m: &machine::Machine, now: Millis) -> String {
    if booking.is_some() && m.holds_slot.contains(&status) && !live.is_some_and(|b| b.holds_place(now)) {
        return machine::SLOT_RELEASED.to_string();
    }
    status.to_string()
}

// ---------------------------------------------------------------- persistence

#[derive(Serialize, Deserialize)]
#[serde(tag = "row", rename_all = "snake_case")]
enum Row {
    Disease(disease::Disease),
    Referral(Referral),
    Exam(exam::ExamApp),
    Consultation(consultation::Consultation),
    Key(exam::SigningKey),
    Community(down::Community),
    Intent(Intent),
    Document(document::Document),
}

/// A place about to be reserved for a case, written durably before the
/// reservation and deleted with the attach: a leftover intent on open means
/// the process died in between, and the place it names is given back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Intent {
    pub key: String,
    pub patient_id: String,
    pub slot_id: String,
    pub at_ms: Millis,
}

fn put(pool: &Pool, txn: &mut Txn, key: String, row: &Row) {
    if pool.store.is_some() {
        txn.writes.push(Write::put(crate::referral::TABLE, key, row));
    }
}

pub(crate) fn put_referral(pool: &Pool, txn: &mut Txn, rf: &Referral) {
    put(pool, txn, format!("referral:{:012}", rf.referral_id), &Row::Referral(rf.clone()));
}
pub(crate) fn put_disease(pool: &Pool, txn: &mut Txn, d: &disease::Disease) {
    put(pool, txn, format!("disease:{}", d.code), &Row::Disease(d.clone()));
}
pub(crate) fn delete_disease(pool: &Pool, txn: &mut Txn, code: &str) {
    if pool.store.is_some() {
        txn.writes.push(Write::delete(crate::referral::TABLE, format!("disease:{code}")));
    }
}
pub(crate) fn put_exam(pool: &Pool, txn: &mut Txn, e: &exam::ExamApp) {
    put(pool, txn, format!("exam:{:012}", e.exam_id), &Row::Exam(e.clone()));
}
pub(crate) fn put_consultation(pool: &Pool, txn: &mut Txn, c: &consultation::Consultation) {
    put(pool, txn, format!("consultation:{:012}", c.consultation_id), &Row::Consultation(c.clone()));
}
pub(crate) fn put_key(pool: &Pool, txn: &mut Txn, k: &exam::SigningKey) {
    put(pool, txn, format!("key:{}", k.issuer_id), &Row::Key(k.clone()));
}
pub(crate) fn put_community(pool: &Pool, txn: &mut Txn, c: &down::Community) {
    put(pool, txn, format!("community:{}", c.clinic_id), &Row::Community(c.clone()));
}
pub(crate) fn put_document(pool: &Pool, txn: &mut Txn, d: &document::Document) {
    put(pool, txn, format!("document:{:012}", d.document_id), &Row::Document(d.clone()));
}

/// Rebuilds the state from the store's rows on open.
pub(crate) fn recover(pool: &Pool, referral: &ReferralState, snap: &Snapshot) -> Result<()> {
    let mut intents = Vec::new();
    let mut g = referral.inner.lock();
    for (key, body) in snap.of(crate::referral::TABLE) {
        let row: Row = crate::store::parse_row(TABLE, key, body)?;
        match row {
            Row::Disease(d) => {
                g.diseases.insert(d.code.clone(), d);
            }
            Row::Referral(r) => {
                g.next_referral = g.next_referral.max(r.referral_id + 1);
                if let Some(a) = r.admission.as_ref().and_then(|a| a["admission_id"].as_u64()) {
                    g.next_admission = g.next_admission.max(a + 1);
                    g.admissions.insert(a, r.referral_id);
                }
                g.referrals.insert(r.referral_id, r);
            }
            Row::Exam(e) => {
                g.next_exam = g.next_exam.max(e.exam_id + 1);
                g.exams.insert(e.exam_id, e);
            }
            Row::Consultation(c) => {
                g.next_consultation = g.next_consultation.max(c.consultation_id + 1);
                g.consultations.insert(c.consultation_id, c);
            }
            Row::Key(k) => {
                g.keys.insert(k.issuer_id.clone(), k);
            }
            Row::Community(c) => {
                g.communities.insert(c.clinic_id.clone(), c);
            }
            Row::Intent(i) => intents.push(i),
            Row::Document(d) => {
                g.next_document = g.next_document.max(d.document_id + 1);
                g.documents.insert(d.document_id, d);
            }
        }
    }
    // Reports signed before their views showed the key carry none: the
    // signer's registration (else its hospital's) as it is now.
    let keys = g.keys.clone();
    for e in g.exams.values_mut() {
        for r in e.items.iter_mut().flat_map(|i| i.reports.iter_mut()) {
            if r.signature.is_some() && r.signer_key.is_none() {
                r.signer_key = r.signer_id.as_ref().and_then(|s| keys.get(s)).or_else(|| keys.get(&e.hospital_id)).cloned();
            }
        }
    }
    drop(g);
    for i in intents {
        release_orphans(pool, referral, &i)?;
    }
    Ok(())
}

/// Gives back the places a leftover intent reserved that no case owns
/// (bookings of its patient on its slot, class referral, made at or after it).
fn release_orphans(pool: &Pool, referral: &ReferralState, intent: &Intent) -> Result<()> {
    let owned: std::collections::HashSet<u64> = {
        let g = referral.inner.lock();
        g.referrals.values().filter_map(|r| r.booking_id).chain(g.exams.values().flat_map(|e| e.items.iter().filter_map(|i| i.booking_id))).collect()
    };
    let slot = pool.slot_by_id(&intent.slot_id).ok().map(|s| s.idx);
    let mut orphans = Vec::new();
    pool.bookings.for_each(|id, b| {
        if Some(b.slot_idx) == slot
            && b.status.is_active()
            && b.priority == crate::model::Priority::Referral
            && &*b.patient_id == intent.patient_id.as_str()
            && b.created_ms >= intent.at_ms
            && !owned.contains(id)
        {
            orphans.push(*id);
        }
    });
    for id in orphans {
        give_back(pool, id, "the case it was reserved for was not recorded (process ended in between); place returned")?;
    }
    let mut txn = Txn::default();
    txn.writes.push(Write::delete(crate::referral::TABLE, intent.key.clone()));
    let ticket = pool.enqueue(&mut txn);
    pool.settle(ticket, Vec::new())
}

/// Cancels a booking no case owns.
fn give_back(pool: &Pool, id: u64, reason: &'static str) -> Result<()> {
    pool.with_booking(id, &platform_actor(), None, "referral-recovery", 0, &mut |pool, slot, st, b, txn, now| {
        if b.status.is_active() {
            if b.status == crate::model::BookingStatus::Occupied {
                b.status = crate::model::BookingStatus::Booked;
            }
            pool.cancel_locked(slot, st, b, reason.into(), now, txn)?;
        }
        Ok(Answer::Json(Value::Null))
    })
    .map(|_| ())
}

/// Deletes an intent durably; nothing without a store.
fn delete_intent(pool: &Pool, intent: &Intent) -> Result<()> {
    if pool.store.is_none() {
        return Ok(());
    }
    let mut txn = Txn::default();
    txn.writes.push(Write::delete(crate::referral::TABLE, intent.key.clone()));
    let ticket = pool.enqueue(&mut txn);
    pool.settle(ticket, Vec::new())
}

// ---------------------------------------------------------------- dispatch

/// `None` when `command` is not one of this module's.
/// One call: the pool, the request and the command's static name.
pub(crate) struct Ctx<'a> {
    pub pool: &'a Pool,
    /// This module's state (beside the pool, see `domains.rs`).
    pub referral: &'a ReferralState,
    /// The follow-up plans the cases' steps make (C2, [`follow_up`]).
    pub chronic: &'a crate::chronic::ChronicState,
    pub r: &'a Req<'a>,
    pub command: &'static str,
}

// ---------------------------------------------------------------- who is asking (S1)

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// The platform operator: sees and acts on every case.
    Platform,
    Hospital,
    Community,
}

#[derive(Debug, Clone)]
pub(crate) struct Who {
    pub side: Side,
    pub institution: Option<String>,
}

/// A community institution applying to a hospital (an inpatient referral, an
/// exam, a consultation): the applicant's id and the hospital's, checked.
pub(super) fn community_application(c: &Ctx) -> Result<(String, String)> {
    let who = Who::of(c)?;
    who.must_be(Side::Community, c.command)?;
    let clinic = who.clinic_for_new(c)?;
    let hospital = c.r.str("hospital_id")?.to_string();
    if !c.pool.catalog.is_hospital(&hospital) {
        return Err(Error::new(ErrorCode::HospitalNotFound));
    }
    Ok((clinic, hospital))
}

impl Who {
    /// The call's principal (bound by `registry::dispatch`) as a side.
    pub fn of(c: &Ctx) -> Result<Who> {
        use crate::principal::Role;
        let p = c.r.who;
        let side = match p.role {
            Role::Community => Side::Community,
            Role::Hospital => Side::Hospital,
            Role::Platform if p.institution_id.is_none() => Side::Platform,
            // A platform engine configured with an institution acts as that hospital.
            Role::Platform => Side::Hospital,
            Role::Lab | Role::Regulator => return Err(forbidden("a lab or a regulator takes no step of a case", "检验机构或监管部门不能办理转诊、检查或会诊")),
        };
        Ok(Who { side, institution: p.institution_id.clone() })
    }
    /// S1: a community institution sees its own cases, a hospital the cases sent to it.
    pub fn may_see(&self, clinic_id: &str, hospital_id: &str) -> bool {
        match self.side {
            Side::Platform => true,
            Side::Community => self.institution.as_deref() == Some(clinic_id),
            Side::Hospital => self.institution.as_deref() == Some(hospital_id),
        }
    }
    pub fn check(&self, clinic_id: &str, hospital_id: &str) -> Result<()> {
        if self.may_see(clinic_id, hospital_id) {
            Ok(())
        } else {
            Err(forbidden("this institution may act only on its own cases", "本机构只能查看和操作本机构的申请"))
        }
    }
    /// Only this side (or the platform) takes the step.
    pub fn must_be(&self, side: Side, step: &str) -> Result<()> {
        if self.side == side || self.side == Side::Platform {
            Ok(())
        } else {
            let who = if side == Side::Hospital { "the hospital" } else { "the community institution" };
            let zh = if side == Side::Hospital { "上级医院" } else { "基层机构" };
            Err(forbidden_owned(format!("only {who} takes the step `{step}`"), format!("只有{zh}可以执行 `{step}`")))
        }
    }
    /// The community institution a new case belongs to: the request's
    /// `clinic_id`, which a community caller may only set to itself.
    pub fn clinic_for_new(&self, c: &Ctx) -> Result<String> {
        self.party_for_new(c, Side::Community, "clinic_id", "a community institution applies only for itself", "基层机构只能以本机构名义申请")
    }
    /// The hospital of a new case, which a hospital caller may only set to itself.
    pub fn hospital_for_new(&self, c: &Ctx) -> Result<String> {
        self.party_for_new(c, Side::Hospital, "hospital_id", "a hospital refers only its own patients", "上级医院只能以本院名义申请")
    }
    /// The party of `field` in a new case: the caller itself when it is on
    /// `side` (naming another is refused), else the request's field.
    fn party_for_new(&self, c: &Ctx, side: Side, field: &str, en: &'static str, zh: &'static str) -> Result<String> {
        let asked = c.r.opt_str(field)?;
        if self.side != side {
            return asked.map(str::to_string).ok_or_else(|| Error::missing(field));
        }
        let own = self.institution.clone().ok_or_else(|| Error::missing("institution_id"))?;
        if asked.is_some_and(|a| a != own) {
            return Err(forbidden(en, zh));
        }
        Ok(own)
    }
}

pub(crate) fn forbidden(en: &'static str, zh: &'static str) -> Error {
    Error::with(ErrorCode::ReferralForbidden, en, zh)
}
fn forbidden_owned(en: String, zh: String) -> Error {
    Error::with(ErrorCode::ReferralForbidden, en, zh)
}

/// The pool acts for the module: the module checks permissions itself.
pub(crate) fn platform_actor() -> Actor {
    Actor::platform()
}

// ---------------------------------------------------------------- ids and fields

/// Referral, exam, consultation and admission ids are integers (the source's
/// `referral_id (int)`, `admission_id (int)`); strings of digits are accepted.
pub(crate) fn int_id(r: &Req, k: &str) -> Result<u64> {
    let s = r.id(k)?;
    s.trim().parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| Error::invalid(k, "expected a positive integer id"))
}

/// A free-text field with a length limit (the request helper caps at 256).
pub(crate) fn text(r: &Req, k: &str, max: usize) -> Result<Option<String>> {
    match r.get(k) {
        None => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) if s.chars().count() > max => Err(Error::invalid(k, &format!("longer than {max} characters"))),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
        Some(_) => Err(Error::invalid(k, "must be a string")),
    }
}

pub(crate) fn req_text(r: &Req, k: &str, max: usize) -> Result<String> {
    text(r, k, max)?.ok_or_else(|| Error::missing(k))
}

/// An RFC 3339 time or a local "YYYY-MM-DD HH:MM[:SS]" / date; kept as given
/// after checking it parses.
pub(crate) fn time_field(c: &Ctx, k: &str) -> Result<Option<String>> {
    let Some(s) = c.r.opt_str(k)? else { return Ok(None) };
    let ok = crate::clock::parse_rfc3339(s).is_some()
        || chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").is_ok()
        || chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").is_ok()
        || chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").is_ok()
        || crate::request::parse_date(s).is_some();
    if !ok {
        return Err(Error::invalid(k, "expected a date-time like 2024-10-28T10:00:00+08:00"));
    }
    Ok(Some(s.to_string()))
}

pub(crate) fn now_str(pool: &Pool) -> String {
    format_ms(pool.clock.now_ms(), &pool.cfg.tz)
}

/// The record fields known by name (R3), each text, a list or an object:
/// 主诉, 现病史, 既往史, 过敏史, 诊断, 检查, 用药, 体征, and for a patient
/// going back down 诊疗经过 (`treatment_course`) and 出院小结
/// (`discharge_summary`).
pub(crate) const RECORD_FIELDS: &[&str] = &[
    "chief_complaint",
    "present_illness",
    "history",
    "allergies",
    "diagnosis",
    "diagnosis_code",
    "examinations",
    "medications",
    "vital_signs",
    "treatment_course",
    "discharge_summary",
];

/// Written by the engine from what it was sent, never taken as a field.
const DERIVED_FIELDS: &[&str] = &["emr_record_id", "fused_from_emr", "purpose"];

/// The patient's identity travels in `patient` (stored as given, shown
/// masked), never in the record, which both sides read as it was sent.
const IDENTITY_FIELDS: &[&str] = &[
    "name",
    "id_number",
    "phone",
    "sex",
    "patient_name",
    "id_card",
    "id_no",
    "mobile",
    "telephone",
    "address",
    "insurance_card_no",
    "social_security_no",
    "insurance_card",
    "medical_record_no",
    "record_no",
    "社保卡号",
    "医保卡号",
    "病历号",
    "姓名",
    "性别",
    "身份证号",
    "身份证号码",
    "联系电话",
    "手机号",
    "手机号码",
    "住址",
    "家庭住址",
];

/// An optional object field of the request (`emr`, `record`), at most 64 KiB.
fn object_field(c: &Ctx, k: &str) -> Result<serde_json::Map<String, Value>> {
    let m = match c.r.get(k) {
        None | Some(Value::Null) => return Ok(serde_json::Map::new()),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(Error::invalid(k, "must be an object")),
    };
    if serde_json::to_string(m).map(|s| s.len()).unwrap_or(0) > 64 * 1024 {
        return Err(Error::invalid(k, "larger than 64 KiB"));
    }
    Ok(m.clone())
}

fn record_text(field: &str, v: &Value) -> Result<()> {
    if v.is_string() || v.is_array() || v.is_object() {
        Ok(())
    } else {
        Err(Error::invalid(field, "must be text, a list or an object"))
    }
}

/// A field name the record keeps as sent: 1 to 64 characters, no control characters.
fn extra_name_ok(k: &str) -> bool {
    let n = k.chars().count();
    (1..=64).contains(&n) && !k.chars().any(char::is_control)
}

/// R3: the application's record, fused from what the host sends: the
/// request's own known fields win, then its `record` object, then the EMR
/// (`emr`). Every other field of `record` and `emr` is kept as sent (诊疗经过,
/// 出院小结, a hospital's own headings, `diagnoses` with every diagnosis), so
/// nothing clinical is dropped; the patient's identity is never copied into
/// the record (an identity field inside `record` is refused: it goes in
/// `patient`), and the fields the engine writes itself cannot be sent.
pub(crate) fn fuse_record(c: &Ctx) -> Result<Value> {
    let emr = object_field(c, "emr")?;
    let sent = object_field(c, "record")?;
    let mut rec = serde_json::Map::new();
    for k in RECORD_FIELDS {
        if let Some(v) = c.r.get(k) {
            record_text(k, v)?;
            rec.insert((*k).into(), v.clone());
        } else if let Some(v) = sent.get(*k).filter(|v| !v.is_null()) {
            record_text(&format!("record.{k}"), v)?;
            rec.insert((*k).into(), v.clone());
        } else if let Some(v) = emr.get(*k).filter(|v| !v.is_null()) {
            rec.insert((*k).into(), v.clone());
        }
    }
    // Common EMR shapes: diagnoses as a list of {code, name}.
    if !rec.contains_key("diagnosis") {
        if let Some(d) = emr.get("diagnoses").and_then(Value::as_array).and_then(|a| a.first()) {
            if let Some(n) = d.get("name").and_then(Value::as_str).or(d.as_str()) {
                rec.insert("diagnosis".into(), n.into());
            }
            if let Some(code) = d.get("code").and_then(Value::as_str) {
                rec.entry("diagnosis_code").or_insert(code.into());
            }
        }
    }
    // Fields beyond the known ones: kept as sent, `record` before `emr`
    // (each object is at most 64 KiB, which bounds them).
    for (k, v) in &sent {
        if RECORD_FIELDS.contains(&k.as_str()) || v.is_null() {
            continue;
        }
        if !extra_name_ok(k) {
            return Err(Error::invalid_zh(
                "record",
                "field names must be 1 to 64 characters without control characters",
                "字段名须为1至64个字符，且不含控制字符",
            ));
        }
        if DERIVED_FIELDS.contains(&k.as_str()) {
            return Err(Error::invalid_zh(&format!("record.{k}"), "is written by the engine, not sent", "由系统生成，不能提交"));
        }
        if IDENTITY_FIELDS.contains(&k.as_str()) {
            return Err(Error::invalid_zh(
                &format!("record.{k}"),
                "the patient's identity goes in `patient` (shown masked), not in the record",
                "患者身份信息应放在 `patient` 中（脱敏显示），不能放在病历中",
            ));
        }
        rec.insert(k.clone(), v.clone());
    }
    for (k, v) in &emr {
        let k = k.as_str();
        // Read above (known fields, `record_id`), or the patient's identity (read into `patient`).
        if RECORD_FIELDS.contains(&k) || DERIVED_FIELDS.contains(&k) || IDENTITY_FIELDS.contains(&k) || k == "record_id" || k == "emr_id" || v.is_null() {
            continue;
        }
        if !extra_name_ok(k) {
            return Err(Error::invalid_zh("emr", "field names must be 1 to 64 characters without control characters", "字段名须为1至64个字符，且不含控制字符"));
        }
        rec.entry(k).or_insert_with(|| v.clone());
    }
    if let Some(src) = emr.get("record_id").or(emr.get("emr_id")) {
        rec.insert("emr_record_id".into(), src.clone());
    }
    rec.insert("fused_from_emr".into(), (!emr.is_empty()).into());
    Ok(Value::Object(rec))
}

/// The patient details: the request's `patient`, else the EMR's (`name`, `sex`, `id_number`, `phone`).
pub(crate) fn patient_details(c: &Ctx) -> Result<Option<PatientInfo>> {
    if let Some(p) = crate::request::patient_of(c.r)? {
        return Ok(Some(p));
    }
    let Some(Value::Object(emr)) = c.r.get("emr") else { return Ok(None) };
    let pick = |k: &str| emr.get(k).and_then(Value::as_str).map(str::to_string);
    let info = PatientInfo {
        name: pick("name"),
        id_number: pick("id_number"),
        phone: pick("phone"),
        sex: pick("sex"),
        insurance_card_no: pick("insurance_card_no").or_else(|| pick("social_security_no")),
        medical_record_no: pick("medical_record_no").or_else(|| pick("record_no")),
    };
    if info == PatientInfo::default() {
        return Ok(None);
    }
    info.validated().map(Some)
}

// ---------------------------------------------------------------- follow-up plans (C2)

/// The follow-up plans of a case step (检查前后随访, after a referral or a
/// discharge), made in the step's own transaction: called after the step's
/// checks, once nothing can fail, so plans exist exactly when the step does.
pub(crate) fn follow_up(c: &Ctx, pool: &Pool, txn: &mut Txn, now: Millis, change: crate::chronic::CaseChange<'_>) {
    crate::chronic::on_case(c.chronic, pool, txn, now, change);
}

/// The plans a referral's step makes or ends, from its state before (`from`)
/// and after: a down-referral cancelled ends its plans, a discharge and an
/// up-referral's outcome each make one (`down-referral-apply` makes its own).
pub(crate) fn follow_referral(c: &Ctx, pool: &Pool, txn: &mut Txn, now: Millis, from: &str, rf: &Referral) {
    use crate::chronic::CaseTrigger as T;
    if from == rf.status {
        return;
    }
    let trigger = match (rf.kind, rf.status.as_str()) {
        (Kind::Down, "cancelled") => T::Cancelled,
        (Kind::Inpatient, "discharged") => T::Discharged,
        (Kind::Outpatient, "completed") => T::Outcome,
        _ => return,
    };
    follow_up(c, pool, txn, now, rf.change(trigger, c.command));
}

impl Referral {
    /// This case's step as the chronic-disease centre reads it (`chronic::on_case`).
    pub(crate) fn change<'a>(&'a self, trigger: crate::chronic::CaseTrigger, via: &'a str) -> crate::chronic::CaseChange<'a> {
        crate::chronic::CaseChange {
            trigger,
            case: "referral",
            case_id: self.referral_id,
            item_no: None,
            patient_id: &self.patient_id,
            clinic_id: &self.clinic_id,
            hospital_id: &self.hospital_id,
            project_id: None,
            disease_code: self.disease_code.as_deref(),
            via,
        }
    }
}

// ---------------------------------------------------------------- events

/// A case's event: patient and community institution named so the host can route it.
pub(crate) fn event(pool: &Pool, txn: &mut Txn, kind: &'static str, patient_id: &str, clinic_id: &str, booking: Option<u64>, data: Value) {
    let ev = Event {
        seq: 0,
        kind: std::borrow::Cow::Borrowed(kind),
        at_ms: pool.clock.now_ms(),
        booking_id: booking,
        slot_id: None,
        patient_id: Some(patient_id.into()),
        clinic_id: Some(clinic_id.into()),
        data,
        note: None,
        slot_idx: None,
    };
    pool.push_event(txn, ev);
}

// ---------------------------------------------------------------- transactions

/// What a step sees of the booking it owns, locked.
pub(crate) struct Live<'a> {
    pub slot: &'a Slot,
    pub st: &'a mut SlotState,
    pub b: &'a mut Booking,
}

pub(crate) type StepFn<'f> = dyn FnMut(&Pool, &mut Inner, Option<Live<'_>>, &mut Txn, Millis) -> Result<Value> + 'f;

/// Runs a change under the request id's claim. With `booking`, the booking's
/// slot is locked first and the step sees it live; the module's lock is
/// taken last. The step checks before it changes anything.
pub(crate) fn step(c: &Ctx, booking: Option<u64>, f: &mut StepFn<'_>) -> Result<Value> {
    let pool = c.pool;
    pool.idempotent(c.r.request_id()?, c.command, c.r.fingerprint(c.command), |claim| run_step(pool, c.referral, claim, booking, f))
}

pub(crate) fn finish(pool: &Pool, claim: Option<IdemClaim<'_>>, r: Result<Answer>) -> Result<Value> {
    pool.settle_claim(claim, r).map(Answer::into_value)
}

/// One transaction: the rows and events of the step, the request id's answer,
/// durable before it returns.
pub(crate) fn run_step(pool: &Pool, referral: &ReferralState, claim: &Option<IdemClaim<'_>>, booking: Option<u64>, f: &mut StepFn<'_>) -> Result<Answer> {
    match booking {
        None => pool.locked_txn(claim, &referral.inner, |g, txn, now| f(pool, g, None, txn, now)),
        // Through `with_bookings`, so a step that fails after changing the
        // booking puts it back and publishes none of its events.
        Some(id) => pool.with_bookings(&[id], &platform_actor(), &mut |pool, locked, txn, now| {
            let (slot, st, b) = locked.get_mut(id).ok_or_else(|| Error::internal("the case's booking is not locked"))?;
            let mut g = referral.inner.lock();
            let v = f(pool, &mut g, Some(Live { slot, st, b }), txn, now)?;
            let answer = Answer::Json(v);
            pool.record_answer(claim, &answer, txn);
            Ok(answer)
        }),
    }
}

/// Books a place for a case and attaches it in a second transaction; if the
/// attach fails the place is given back, so a failed case never holds a slot
/// and a case never exists without its slot. The reservation commits an
/// intent row with it, which the attach deletes: one left over on open names
/// a place to give back. The request id is claimed here and its answer
/// written with the attach.
pub(crate) fn reserve_and_attach(c: &Ctx, mut reserve: Reserve, attach: &mut StepFn<'_>) -> Result<Value> {
    let pool = c.pool;
    let claim = match pool.claim(c.r.request_id()?, c.command, c.r.fingerprint(c.command))? {
        Claimed::Replay(a) => return Ok(a.into_value()),
        Claimed::Fresh(cl) => cl,
    };
    let intent = Intent {
        key: format!("intent:{:016}-{}", pool.clock.now_ms(), c.referral.intents.fetch_add(1, std::sync::atomic::Ordering::Relaxed)),
        patient_id: reserve.patient_id.to_string(),
        slot_id: pool.slot(reserve.slot).map(|s| s.info.slot_id.clone()).unwrap_or_default(),
        at_ms: pool.clock.now_ms(),
    };
    reserve.also = pool.store.is_some().then(|| Write::put(crate::referral::TABLE, intent.key.clone(), &Row::Intent(intent.clone())));
    let booked = std::cell::Cell::new(0u64);
    let made = pool.reserve(reserve, None, c.command, 0, &|b, _| {
        booked.set(b.id);
        Answer::Json(Value::Null)
    });
    if let Err(e) = made {
        return finish(pool, claim, Err(e));
    }
    let id = booked.get();
    let mut with_intent = |pool: &Pool, g: &mut Inner, live: Option<Live<'_>>, txn: &mut Txn, now: Millis| -> Result<Value> {
        let v = attach(pool, g, live, txn, now)?;
        if pool.store.is_some() {
            txn.writes.push(Write::delete(crate::referral::TABLE, intent.key.clone()));
        }
        Ok(v)
    };
    match run_step(pool, c.referral, &claim, Some(id), &mut with_intent) {
        Ok(a) => finish(pool, claim, Ok(a)),
        Err(e) => {
            // Give the place back: nothing refers to it.
            if give_back(pool, id, "the case it was made for failed; place returned").is_ok() {
                let _ = delete_intent(pool, &intent);
            }
            finish(pool, claim, Err(e))
        }
    }
}

/// A case's history as callers read it.
pub(crate) fn history_view<'a>(history: &'a [Step], tz: &chrono_tz::Tz) -> Vec<crate::views::StepView<'a>> {
    history
        .iter()
        .map(|s| crate::views::StepView { at: format_ms(s.at_ms, tz), from: &s.from, to: &s.to, via: &s.via, by: s.by.as_deref(), note: s.note.as_deref() })
        .collect()
}

/// The booking's current status without holding any other lock.
pub(crate) fn booking_snapshot(pool: &Pool, id: Option<u64>) -> Option<Booking> {
    id.and_then(|i| pool.booking_or_retired(i).ok())
}

/// Paging of list answers: `page` from 1, `page_size` 1..=200 (default 20).
pub(crate) fn paging(r: &Req) -> Result<(usize, usize)> {
    // Past usize (a 32-bit target) a page is past every list, never wrapped onto one.
    let page = usize::try_from(r.opt_u64("page")?.unwrap_or(1).max(1)).unwrap_or(usize::MAX);
    let size = r.opt_u64("page_size")?.unwrap_or(20);
    if size == 0 || size > 200 {
        return Err(Error::invalid("page_size", "must be 1 to 200"));
    }
    Ok((page, size as usize))
}

pub(crate) fn page_of(items: Vec<Value>, page: usize, size: usize) -> Value {
    let total = items.len();
    let items: Vec<Value> = items.into_iter().skip((page - 1).saturating_mul(size)).take(size).collect();
    json!({"total": total, "page": page, "page_size": size, "items": items})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Engine;

    fn cfg(dir: &std::path::Path) -> String {
        json!({"data_dir": dir, "clock_start": "2024-10-29T09:00:00+08:00", "clock": "manual"}).to_string()
    }

    const SLOT: &str = "RG-H001-DR001-20241030-08001130";

    fn setup(e: &Engine) {
        e.call_value(
            "sync-schedule",
            &json!({"hospital_id": "H001", "schedule_data": [{"doctor_id": "DR001", "department_id": "D001", "date": "2024-10-30", "capacity": 2,
                "available_slots": [{"start_time": "08:00", "end_time": "11:30", "period": "上午"}]}]})
            .to_string(),
        )
        .unwrap();
    }

    #[test]
    fn a_place_reserved_for_a_case_never_recorded_is_given_back_on_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let e = Engine::open(&cfg(dir.path())).unwrap();
            setup(&e);
            // What `outpatient-referral-apply` does before a crash between its
            // two commits: the reservation with its intent; no case.
            let pool = &e.d.pool;
            let slot = pool.slot_by_id(SLOT).unwrap();
            let intent = Intent { key: "intent:0000000000000001-0".into(), patient_id: "PAT001".into(), slot_id: SLOT.into(), at_ms: pool.clock.now_ms() };
            let reserve = Reserve {
                slot: slot.idx,
                patient_id: "PAT001".into(),
                clinic_id: Some("C001".into()),
                priority: crate::model::Priority::Referral,
                hold: false,
                patient: None,
                expected_date: None,
                reason: Some("胸痛".into()),
                project_id: None,
                also: Some(Write::put(crate::referral::TABLE, intent.key.clone(), &Row::Intent(intent.clone()))),
            };
            pool.reserve(reserve, None, "outpatient-referral-apply", 0, &|_, _| Answer::Json(Value::Null)).unwrap();
            // A completed apply of another patient leaves no intent behind.
            let done = e
                .call_value(
                    "outpatient-referral-apply",
                    &json!({"institution_id": "C001", "patient_id": "PAT002", "slot_id": SLOT, "reason": "复诊"}).to_string(),
                )
                .unwrap();
            assert_eq!(done["referral_id"], 1);
            e.close();
        }
        let e = Engine::open(&cfg(dir.path())).unwrap();
        e.check_invariants().unwrap();
        let orphan = e.call_value("booking-info", r#"{"booking_id": "B000001"}"#).unwrap();
        assert_eq!(orphan["status"], "cancelled", "{orphan}");
        let kept = e.call_value("booking-info", r#"{"booking_id": "B000002"}"#).unwrap();
        assert_eq!(kept["status"], "booked");
        assert_eq!(e.call_value("referral-view", r#"{"referral_id": 1}"#).unwrap()["status"], "applied");
        let slot = e.call_value("slot-info", &json!({"slot_id": SLOT}).to_string()).unwrap();
        assert_eq!(slot["booked"], 1);
        // The intent is gone: a second open changes nothing more.
        e.close();
        let e = Engine::open(&cfg(dir.path())).unwrap();
        assert_eq!(e.call_value("slot-info", &json!({"slot_id": SLOT}).to_string()).unwrap()["booked"], 1);
        assert!(e.d.pool.store.as_ref().is_some());
    }
}
