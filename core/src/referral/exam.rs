//! B1–B4: exam booking (检查预约) with report return. The community applies
//! for several exams of one hospital (method and body part each); the
//! hospital arranges time and room (a hold on an exam slot of the pool);
//! payment at the kiosk turns the hold into a reserved slot; a refund needs
//! the doctor's cancellation first; reports come back per item, with
//! revisions, unstructured ones signed (SM2) by the issuer; critical results
//! are pushed at once, routine ones as a notice.

use super::machine::{EXAM_ITEM, SLOT_RELEASED};
use super::{
    booking_snapshot, effective_status, fuse_record, page_of, paging, patient_details, platform_actor, put_exam, put_key, req_text, reserve_and_attach, text,
    Ctx, Inner, Live, Side, Step, Who,
};
use crate::clock::{format_ms, Millis};
use crate::error::{Error, ErrorCode, Result};
use crate::identity::PatientInfo;
use crate::model::{Booking, BookingStatus, Id, PaymentStatus, Priority, SlotKind};
use crate::pool::{Answer, Claimed, IdemClaim, Pool, Reserve, Slot, Txn};
use crate::text::SearchKey;
use crate::views::{to_value, with_booking, BookingPart, StepView};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::Arc;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SigningKey {
    pub issuer_id: String,
    pub public_key: String,
    pub registered_ms: Millis,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Report {
    pub revision: u32,
    pub format: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub findings: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conclusion: Option<String>,
    /// Unstructured content (PDF, image) as sent, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_base64: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_sm3: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    pub signature_verified: bool,
    /// The registration whose key verified `signature`, as it was then
    /// (shown, so a community system can verify the report again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer_key: Option<SigningKey>,
    /// The document (`upload-report`) this revision is, kept outside the row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_id: Option<u64>,
    pub critical: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical_note: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reporter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_reason: Option<String>,
    pub at_ms: Millis,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ExamItem {
    pub item_no: u32,
    pub project_id: String,
    pub project_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_part: Option<String>,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booking_id: Option<u64>,
    #[serde(default)]
    pub paid: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
    #[serde(default)]
    pub reports: Vec<Report>,
    #[serde(default)]
    pub history: Vec<Step>,
}

impl ExamItem {
    fn go_from(&mut self, from: String, to: &str, via: &str, by: Option<&str>, note: Option<String>, now: Millis) -> Result<()> {
        EXAM_ITEM.take(&mut self.status, &mut self.history, super::machine::Transition { from, to, via, by, note, now })
    }
    fn go(&mut self, to: &str, via: &str, by: Option<&str>, note: Option<String>, now: Millis, live: Option<&Booking>) -> Result<()> {
        let from = effective_status(&self.status, self.booking_id, live, &EXAM_ITEM, now);
        self.go_from(from, to, via, by, note, now)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ExamApp {
    pub exam_id: u64,
    pub clinic_id: String,
    pub hospital_id: String,
    pub patient_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<PatientInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordering_doctor_id: Option<String>,
    #[serde(default)]
    pub record: Value,
    pub items: Vec<ExamItem>,
    pub created_ms: Millis,
    pub updated_ms: Millis,
}

fn not_found() -> Error {
    Error::new(ErrorCode::ExamApplicationNotFound)
}

pub(super) fn item_not_found() -> Error {
    Error::new(ErrorCode::ExamItemNotFound)
}

// ---------------------------------------------------------------- B1: institutions and projects

/// `exam-institutions`: the hospitals of the network that publish exam projects.
pub(super) fn institutions(c: &Ctx) -> Result<Value> {
    let cat = c.pool.catalog.data.read();
    let items: Vec<Value> = cat
        .hospitals
        .values()
        .filter_map(|h| {
            let n = cat.projects.values().filter(|p| p.hospital_id.as_deref() == Some(h.hospital_id.as_str())).count();
            (n > 0).then(|| json!({"hospital_id": h.hospital_id, "name": h.name, "projects": n}))
        })
        .collect();
    Ok(json!({"items": items}))
}

fn str_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect()).unwrap_or_default()
}

fn project_view(p: &crate::catalog::Project) -> Value {
    json!({
        "project_id": p.project_id, "project_name": p.project_name, "hospital_id": p.hospital_id,
        "department_id": p.department_id, "department_name": p.department_name, "cost": p.cost,
        "estimated_duration": p.estimated_duration,
        "methods": str_list(p.extra.get("methods")), "body_parts": str_list(p.extra.get("body_parts")),
    })
}

/// `exam-project-search`: fuzzy by name, full pinyin or initials (also the
/// catalogue's `pinyin_initials`), best match first.
pub(super) fn project_search(c: &Ctx) -> Result<Value> {
    let hospital = c.r.opt_str("hospital_id")?;
    let keyword = c.r.opt_str("keyword")?.unwrap_or("");
    let limit = c.r.opt_u64("limit")?.unwrap_or(50).clamp(1, 500) as usize;
    let cat = c.pool.catalog.data.read();
    let mut hits: Vec<(u8, &crate::catalog::Project)> = cat
        .projects
        .values()
        .filter(|p| hospital.is_none_or(|h| p.hospital_id.as_deref() == Some(h)))
        .filter_map(|p| {
            let extra = p.extra.get("pinyin_initials").and_then(Value::as_str).unwrap_or("");
            SearchKey::new(&p.project_name, &[extra]).rank(keyword).map(|r| (r, p))
        })
        .collect();
    hits.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.project_id.cmp(&b.1.project_id)));
    let items: Vec<Value> = hits.into_iter().take(limit).map(|(_, p)| project_view(p)).collect();
    Ok(json!({"items": items}))
}

// ---------------------------------------------------------------- apply

/// `exam-apply`: one application, several exams of one hospital, each with
/// method and body part from the project's lists.
pub(super) fn apply(c: &Ctx) -> Result<Value> {
    let (clinic, hospital) = super::community_application(c)?;
    let patient_id = c.r.id("patient_id")?;
    let doctor = text(c.r, "ordering_doctor_id", 64)?;
    let record = fuse_record(c)?;
    let patient = patient_details(c)?;
    let list = c.r.array("items")?;
    if list.is_empty() || list.len() > 20 {
        return Err(Error::invalid("items", "one to 20 exams per application"));
    }
    let mut items = Vec::new();
    {
        let cat = c.pool.catalog.data.read();
        for (n, v) in list.iter().enumerate() {
            let e = c.r.sub(v, "items[]")?;
            let pid = e.str("project_id")?;
            let p = cat.projects.get(pid).ok_or_else(|| Error::new(ErrorCode::ProjectNotFound))?;
            if p.hospital_id.as_deref() != Some(hospital.as_str()) {
                return Err(Error::with(
                    ErrorCode::InvalidExamItem,
                    format!("project {pid} is not offered by the hospital `hospital_id` names"),
                    format!("项目 {pid} 不属于 `hospital_id` 指明的医院"),
                ));
            }
            let method = e.opt_str("method")?.map(str::to_string);
            let part = e.opt_str("body_part")?.map(str::to_string);
            for (field, given, offered) in [("method", &method, str_list(p.extra.get("methods"))), ("body_part", &part, str_list(p.extra.get("body_parts")))] {
                match given {
                    Some(g) if !offered.contains(g) => {
                        return Err(Error::with(
                            ErrorCode::InvalidExamItem,
                            format!("project {pid} offers no such `{field}` (offered: {})", offered.join(", ")),
                            format!("项目 {pid} 没有所填的{}（可选：{}）", if field == "method" { "检查方法" } else { "检查部位" }, offered.join("、")),
                        ))
                    }
                    None if !offered.is_empty() => return Err(Error::missing(&format!("items[{n}].{field}"))),
                    _ => {}
                }
            }
            items.push(ExamItem {
                item_no: n as u32 + 1,
                project_id: pid.to_string(),
                project_name: p.project_name.clone(),
                method,
                body_part: part,
                status: "applied".into(),
                booking_id: None,
                paid: false,
                cancel_reason: None,
                reports: Vec::new(),
                history: Vec::new(),
            });
        }
    }
    let command = c.command;
    super::step(c, None, &mut |pool, g, _, txn, now| {
        let id = Inner::take_id(&mut g.next_exam);
        let mut items = items.clone();
        for it in items.iter_mut() {
            it.history.push(Step { at_ms: now, from: String::new(), to: "applied".into(), via: command.into(), by: Some(clinic.clone()), note: None });
        }
        let e = ExamApp {
            exam_id: id,
            clinic_id: clinic.clone(),
            hospital_id: hospital.clone(),
            patient_id: patient_id.clone(),
            patient: patient.clone(),
            ordering_doctor_id: doctor.clone(),
            record: record.clone(),
            items,
            created_ms: now,
            updated_ms: now,
        };
        put_exam(pool, txn, &e);
        super::event(
            pool,
            txn,
            "exam_applied",
            &e.patient_id,
            &e.clinic_id,
            None,
            json!({"exam_id": id, "hospital_id": hospital, "items": e.items.iter().map(|i| json!({"item_no": i.item_no, "project_id": i.project_id})).collect::<Vec<_>>()}),
        );
        let v = exam_view(pool, &e, &[], false);
        g.exams.insert(id, e);
        Ok(v)
    })
}

// ---------------------------------------------------------------- views

/// The application as shown; `live` are the bookings the caller holds locked
/// (the others are read, so call without the module's lock when one is missing).
pub(crate) fn exam_view(pool: &Pool, e: &ExamApp, live: &[(&Booking, &Slot)], content: bool) -> Value {
    let tz = &pool.cfg.tz;
    let items: Vec<Value> = e
        .items
        .iter()
        .map(|it| {
            with_booking(pool, it.booking_id, live.iter().copied().find(|(b, _)| Some(b.id) == it.booking_id), |booking| {
                let place = booking.and_then(|b| b.place());
                let released = booking.is_some() && EXAM_ITEM.holds_slot.contains(&it.status.as_str()) && place.is_none();
                to_value(&ItemView {
                    item_no: it.item_no,
                    project_id: &it.project_id,
                    project_name: &it.project_name,
                    method: it.method.as_deref(),
                    body_part: it.body_part.as_deref(),
                    status: if released { SLOT_RELEASED } else { &it.status },
                    paid: it.paid,
                    slot_id: place.map(|p| p.slot_id),
                    date: place.map(|p| p.date),
                    time_slot: place.map(|p| p.time_slot),
                    device_id: place.and_then(|p| p.device_id),
                    payment_status: place.and(booking).and_then(|b| b.payment_status()),
                    released_reason: booking.and_then(|b| b.released_reason()),
                    booking,
                    cancel_reason: it.cancel_reason.as_deref(),
                    reports: it.reports.iter().map(|r| ReportView::of(r, tz, content)).collect(),
                    history: super::history_view(&it.history, tz),
                })
            })
        })
        .collect();
    let open = items.iter().filter(|i| !matches!(i["status"].as_str(), Some("reported" | "cancelled" | "refunded"))).count();
    let status = if items.iter().all(|i| matches!(i["status"].as_str(), Some("cancelled" | "refunded"))) {
        "cancelled"
    } else if open == 0 {
        "reported"
    } else {
        "open"
    };
    to_value(&ExamView {
        exam_id: e.exam_id,
        status,
        clinic_id: &e.clinic_id,
        hospital_id: &e.hospital_id,
        patient_id: &e.patient_id,
        patient: e.patient.as_ref().map(|p| p.masked()),
        ordering_doctor_id: e.ordering_doctor_id.as_deref(),
        record: &e.record,
        items,
        created_at: format_ms(e.created_ms, tz),
        updated_at: format_ms(e.updated_ms, tz),
    })
}

/// An exam application as every command shows it.
#[derive(Serialize)]
struct ExamView<'a> {
    exam_id: u64,
    status: &'static str,
    clinic_id: &'a str,
    hospital_id: &'a str,
    patient_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    patient: Option<Value>,
    ordering_doctor_id: Option<&'a str>,
    record: &'a Value,
    items: Vec<Value>,
    created_at: String,
    updated_at: String,
}

/// One exam item: its arrangement while the booking holds it, its reports.
#[derive(Serialize)]
struct ItemView<'a> {
    item_no: u32,
    project_id: &'a str,
    project_name: &'a str,
    method: Option<&'a str>,
    body_part: Option<&'a str>,
    status: &'a str,
    paid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    slot_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    date: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    time_slot: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    device_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payment_status: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    released_reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    booking: Option<&'a BookingPart<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cancel_reason: Option<&'a str>,
    reports: Vec<ReportView<'a>>,
    history: Vec<StepView<'a>>,
}

/// One revision of an item's report. A signed one travels with its
/// signature as sent, the signer's registered key and what exactly was
/// signed (`signed`), so the receiving side can verify it again with its own
/// SM2 implementation (docs/referral.md, *Verifying a report*).
#[derive(Serialize)]
struct ReportView<'a> {
    revision: u32,
    format: &'a str,
    findings: Option<&'a str>,
    conclusion: Option<&'a str>,
    signer_id: Option<&'a str>,
    signature_verified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    signature: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signer_key: Option<SignerKeyView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signed: Option<SignedView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    document_id: Option<String>,
    critical: bool,
    reporter: Option<&'a str>,
    reviewer: Option<&'a str>,
    at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    report_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_sm3: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    critical_note: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    revision_reason: Option<&'a str>,
    /// Only when asked for (`with_content`): it may be large.
    #[serde(skip_serializing_if = "Option::is_none")]
    content_base64: Option<&'a str>,
}

/// The key a signature was verified with: the issuer's registration.
#[derive(Serialize)]
pub(super) struct SignerKeyView<'a> {
    /// Whose registration (the signer's, or its hospital's when the
    /// department registered none).
    issuer_id: &'a str,
    /// SEC1 hex (`04‖x‖y`), as registered with `exam-signing-key`.
    public_key: &'a str,
    /// The SM2 distinguishing identifier (GM/T 0009's default).
    sm2_id: &'static str,
    registered_at: String,
}

impl<'a> SignerKeyView<'a> {
    pub(super) fn of(k: &'a SigningKey, tz: &chrono_tz::Tz) -> SignerKeyView<'a> {
        SignerKeyView {
            issuer_id: &k.issuer_id,
            public_key: &k.public_key,
            sm2_id: crate::crypto::DEFAULT_SM2_ID,
            registered_at: format_ms(k.registered_ms, tz),
        }
    }
}

/// What a signature covers: the document's bytes (`content`: the decoded
/// `content_base64`, or the `upload-report` document), or for a structured
/// report the UTF-8 bytes of `text`. `sm3` is the SM3 of those bytes.
#[derive(Serialize)]
struct SignedView {
    what: &'static str,
    sm3: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
}

/// The text a structured report's signature covers: `{"conclusion":…,"findings":…}`,
/// keys in that order, no spaces, an absent one `null`, the values as stored
/// (trimmed), non-ASCII characters as themselves (UTF-8).
pub(crate) fn structured_message(conclusion: Option<&str>, findings: Option<&str>) -> String {
    json!({"conclusion": conclusion, "findings": findings}).to_string()
}

impl<'a> ReportView<'a> {
    fn of(r: &'a Report, tz: &chrono_tz::Tz, content: bool) -> ReportView<'a> {
        let signed = r.signature.as_ref().map(|_| match r.format.as_str() {
            "structured" => {
                let text = structured_message(r.conclusion.as_deref(), r.findings.as_deref());
                SignedView { what: "structured", sm3: crate::crypto::sm3_hex(text.as_bytes()), text: Some(text) }
            }
            _ => SignedView { what: "content", sm3: r.content_sm3.clone().unwrap_or_default(), text: None },
        });
        ReportView {
            revision: r.revision,
            format: &r.format,
            findings: r.findings.as_deref(),
            conclusion: r.conclusion.as_deref(),
            signer_id: r.signer_id.as_deref(),
            signature_verified: r.signature_verified,
            signature: r.signature.as_deref(),
            signer_key: r.signer_key.as_ref().filter(|_| r.signature.is_some()).map(|k| SignerKeyView::of(k, tz)),
            signed,
            document_id: r.document_id.map(super::document::format_document_id),
            critical: r.critical,
            reporter: r.reporter.as_deref(),
            reviewer: r.reviewer.as_deref(),
            at: format_ms(r.at_ms, tz),
            report_url: r.report_url.as_deref(),
            content_sm3: r.content_sm3.as_deref(),
            critical_note: r.critical_note.as_deref(),
            revision_reason: r.revision_reason.as_deref(),
            content_base64: r.content_base64.as_deref().filter(|_| content),
        }
    }
}

pub(super) fn load(c: &Ctx, who: &Who, id: u64) -> Result<ExamApp> {
    let e = {
        let g = c.referral.inner.lock();
        g.exams.get(&id).cloned().ok_or_else(not_found)?
    };
    who.check(&e.clinic_id, &e.hospital_id)?;
    Ok(e)
}

pub(super) fn view(c: &Ctx) -> Result<Value> {
    let who = Who::of(c)?;
    let e = load(c, &who, super::int_id(c.r, "exam_id")?)?;
    Ok(exam_view(c.pool, &e, &[], c.r.opt_bool("with_content")?.unwrap_or(false)))
}

/// `exam-query`: by patient, institution, project and status; the caller's own (S1); paged.
pub(super) fn query(c: &Ctx) -> Result<Value> {
    let who = Who::of(c)?;
    let patient = c.r.opt_id("patient_id")?;
    let clinic = c.r.opt_str("clinic_id")?;
    let hospital = c.r.opt_str("hospital_id")?;
    let project = c.r.opt_str("project_id")?;
    let status = c.r.opt_str("status")?;
    let (page, size) = paging(c.r)?;
    let picked: Vec<ExamApp> = {
        let g = c.referral.inner.lock();
        g.exams
            .values()
            .filter(|e| {
                who.may_see(&e.clinic_id, &e.hospital_id)
                    && patient.as_deref().is_none_or(|p| e.patient_id == p)
                    && clinic.is_none_or(|x| e.clinic_id == x)
                    && hospital.is_none_or(|x| e.hospital_id == x)
                    && project.is_none_or(|x| e.items.iter().any(|i| i.project_id == x))
            })
            .cloned()
            .collect()
    };
    let items = picked.iter().map(|e| exam_view(c.pool, e, &[], false)).filter(|v| status.is_none_or(|s| v["status"] == s)).collect();
    Ok(page_of(items, page, size))
}

// ---------------------------------------------------------------- steps on items

/// A step's check of one item, before anything changes: the item, its
/// booking (locked) and the time.
pub(super) type ItemCheck<'f> = dyn FnMut(&ExamApp, &ExamItem, Option<&Booking>, Millis) -> Result<()> + 'f;

/// A step's change of one item, with its booking locked and the module's
/// state at hand; it fails only where its check would have.
pub(super) type ItemFn<'f> = dyn FnMut(&Pool, &mut Inner, &ExamApp, &mut ExamItem, Option<&mut Live<'_>>, &mut Txn, Millis) -> Result<()> + 'f;

/// The error of one item of a step, naming the item.
fn of_item(item_no: u32, e: Error) -> Error {
    Error::with(e.code(), format!("item {item_no}: {}", e.message()), format!("第 {item_no} 项：{}", e.message_zh()))
}

/// Runs a step on the named items all or nothing: the bookings of every item
/// of the application are locked (slots by index, then bookings, see
/// `Pool::with_bookings`), `check` passes every named item first, then `f`
/// changes each of them; one transaction carries the rows, the events of
/// every item and the request id's answer. A refusal names the item and
/// changes nothing.
fn item_steps(c: &Ctx, who: &Who, id: u64, items: &[u32], check: &mut ItemCheck<'_>, f: &mut ItemFn<'_>) -> Result<Value> {
    let pool = c.pool;
    let claim = match pool.claim(c.r.request_id()?, c.command, c.r.fingerprint(c.command))? {
        Claimed::Replay(a) => return Ok(a.into_value()),
        Claimed::Fresh(cl) => cl,
    };
    let result = item_steps_claimed(c, who, id, items, check, f, &mut |v| v, &claim);
    super::finish(pool, claim, result)
}

/// [`item_steps`] under a request id the caller claimed (`upload-report`
/// stores its document between the claim and the step), answering
/// `answer(application as shown)`.
#[allow(clippy::too_many_arguments)]
pub(super) fn item_steps_claimed(
    c: &Ctx,
    who: &Who,
    id: u64,
    items: &[u32],
    check: &mut ItemCheck<'_>,
    f: &mut ItemFn<'_>,
    answer: &mut dyn FnMut(Value) -> Value,
    claim: &Option<IdemClaim<'_>>,
) -> Result<Answer> {
    let pool = c.pool;
    let mut result = Err(Error::internal("exam step not run"));
    // An item given another booking between the read and the locks (a new
    // arrangement) makes it start over with the new bookings.
    for _ in 0..8 {
        let seen: Vec<(u32, Option<u64>)> = {
            let g = c.referral.inner.lock();
            let e = g.exams.get(&id).ok_or_else(not_found);
            match e {
                Ok(e) => e.items.iter().map(|i| (i.item_no, i.booking_id)).collect(),
                Err(err) => return Err(err),
            }
        };
        let ids: Vec<u64> = seen.iter().filter_map(|(_, b)| *b).collect();
        let mut stale = false;
        result = pool.with_bookings(&ids, &platform_actor(), &mut |pool, locked, txn, now| {
            let mut g = c.referral.inner.lock();
            let mut e = g.exams.get(&id).cloned().ok_or_else(not_found)?;
            who.check(&e.clinic_id, &e.hospital_id)?;
            if e.items.iter().map(|i| (i.item_no, i.booking_id)).ne(seen.iter().copied()) {
                stale = true;
                return Err(Error::with(
                    ErrorCode::ExamInvalidTransition,
                    "the application changed while the step ran; retry",
                    "检查申请在操作期间已变更，请重试",
                ));
            }
            // Every named item first: one refusal and nothing changes.
            let mut picked = Vec::with_capacity(items.len());
            for &n in items {
                let pos = e.items.iter().position(|i| i.item_no == n).ok_or_else(item_not_found)?;
                let it = &e.items[pos];
                let live = it.booking_id.and_then(|b| locked.get(b)).map(|(b, _)| b);
                if it.booking_id.is_some() && live.is_none() {
                    return Err(of_item(n, Error::internal("the item's booking is not locked")));
                }
                check(&e, it, live, now).map_err(|err| of_item(n, err))?;
                picked.push(pos);
            }
            let before: Vec<(usize, String)> = picked.iter().map(|&pos| (pos, e.items[pos].status.clone())).collect();
            for pos in picked {
                let mut it = e.items[pos].clone();
                let mut live = it.booking_id.and_then(|b| locked.get_mut(b)).map(|(slot, st, b)| Live { slot, st, b });
                f(pool, &mut g, &e, &mut it, live.as_mut(), txn, now).map_err(|err| of_item(it.item_no, err))?;
                e.items[pos] = it;
            }
            // Every item's step stands: the follow-ups it calls for (C2).
            for (pos, was) in before {
                follow_exam_item(c, pool, txn, now, &e, pos, &was, |b| locked.get(b).map(|(_, s)| s.start_ms));
            }
            e.updated_ms = now;
            put_exam(pool, txn, &e);
            let v = exam_view(pool, &e, &locked.all(), false);
            g.exams.insert(id, e);
            let answer = Answer::Json(answer(v));
            pool.record_answer(claim, &answer, txn);
            Ok(answer)
        });
        if !stale {
            break;
        }
    }
    result
}

/// The follow-up plans of an exam item's step (检查前后随访): booked (paid)
/// makes the before and after plans, a report re-dates the after plan, a
/// cancellation ends them. `start` reads the item's locked booking's start.
#[allow(clippy::too_many_arguments)]
fn follow_exam_item(c: &Ctx, pool: &Pool, txn: &mut Txn, now: Millis, e: &ExamApp, pos: usize, was: &str, start: impl Fn(u64) -> Option<Millis>) {
    use crate::chronic::CaseTrigger as T;
    let it = &e.items[pos];
    let trigger = match it.status.as_str() {
        "paid" if was != "paid" => match it.booking_id.and_then(&start) {
            Some(exam_start_ms) => T::ExamBooked { exam_start_ms },
            None => return,
        },
        "reported" => T::ExamReported,
        "cancelled" if was != "cancelled" => T::Cancelled,
        _ => return,
    };
    let change = crate::chronic::CaseChange {
        trigger,
        case: "exam",
        case_id: e.exam_id,
        item_no: Some(it.item_no),
        patient_id: &e.patient_id,
        clinic_id: &e.clinic_id,
        hospital_id: &e.hospital_id,
        project_id: Some(&it.project_id),
        disease_code: e.record.get("diagnosis_code").and_then(Value::as_str),
        via: c.command,
    };
    super::follow_up(c, pool, txn, now, change);
}

/// The items a step applies to: `item_no` (one), `item_nos` (a list, taken
/// all or nothing), else every item whose effective state allows the step.
fn pick_items(c: &Ctx, e: &ExamApp, to: &str) -> Result<Vec<u32>> {
    let named = match (c.r.get("item_no"), c.r.get("item_nos")) {
        (Some(_), Some(_)) => return Err(Error::invalid("item_nos", "give item_no or item_nos, not both")),
        (Some(_), None) => Some(vec![c.r.opt_u32("item_no")?.unwrap_or(0)]),
        (None, Some(_)) => {
            let list = c.r.array("item_nos")?;
            if list.is_empty() || list.len() > 20 {
                return Err(Error::invalid("item_nos", "one to 20 item numbers"));
            }
            let mut out: Vec<u32> = Vec::with_capacity(list.len());
            for v in list {
                let n = v.as_u64().and_then(|n| u32::try_from(n).ok()).ok_or_else(|| Error::invalid("item_nos", "expected a list of item numbers"))?;
                if out.contains(&n) {
                    return Err(Error::invalid("item_nos", "an item is named twice"));
                }
                out.push(n);
            }
            Some(out)
        }
        (None, None) => None,
    };
    if let Some(list) = named {
        if list.iter().any(|n| !e.items.iter().any(|i| i.item_no == *n)) {
            return Err(item_not_found());
        }
        return Ok(list);
    }
    let picked: Vec<u32> = e
        .items
        .iter()
        .filter(|i| {
            let b = booking_snapshot(c.pool, i.booking_id);
            EXAM_ITEM.allows(&effective_status(&i.status, i.booking_id, b.as_ref(), &EXAM_ITEM, c.pool.clock.now_ms()), to, c.command)
        })
        .map(|i| i.item_no)
        .collect();
    if picked.is_empty() {
        return Err(Error::with(
            ErrorCode::ExamInvalidTransition,
            format!("no item of application {} allows `{}`", e.exam_id, c.command),
            format!("检查申请 {} 中没有可执行 `{}` 的项目", e.exam_id, c.command),
        ));
    }
    Ok(picked)
}

// ---------------------------------------------------------------- B2: arrangement, payment, cancel, refund

/// `exam-arrange`: the hospital arranges time and room for one item: a hold
/// on the exam slot (priority referral) until the patient pays.
pub(super) fn arrange(c: &Ctx) -> Result<Value> {
    let who = Who::of(c)?;
    who.must_be(Side::Hospital, c.command)?;
    let id = super::int_id(c.r, "exam_id")?;
    let item_no = c.r.opt_u32("item_no")?.ok_or_else(|| Error::missing("item_no"))?;
    let e = load(c, &who, id)?;
    let it = e.items.iter().find(|i| i.item_no == item_no).ok_or_else(item_not_found)?.clone();
    let old = booking_snapshot(c.pool, it.booking_id);
    let from = effective_status(&it.status, it.booking_id, old.as_ref(), &EXAM_ITEM, c.pool.clock.now_ms());
    EXAM_ITEM.check(&from, "arranged", c.command)?;
    let slot = crate::pool::resolve_slot(c.pool, c.r, true)?;
    if slot.info.kind != SlotKind::Exam || slot.info.hospital_id != e.hospital_id {
        return Err(Error::invalid("slot_id", "not an exam slot of the application's hospital"));
    }
    let slot_project = slot.info.project_id.clone().or_else(|| slot.info.device_id.as_deref().and_then(|d| c.pool.catalog.device_project(d)));
    if slot_project.as_deref().is_some_and(|p| p != it.project_id) {
        return Err(Error::with(
            ErrorCode::ProjectMismatch,
            format!("slot {} is not for project {}", slot.info.slot_id, it.project_id),
            format!("号源 {} 不属于项目 {}", slot.info.slot_id, it.project_id),
        ));
    }
    let reserve = Reserve {
        slot: slot.idx,
        patient_id: Id::new(e.patient_id.as_str()),
        clinic_id: Some(Id::new(e.clinic_id.as_str())),
        priority: Priority::Referral,
        hold: true,
        patient: e.patient.clone(),
        expected_date: None,
        reason: Some(format!("exam {id} item {item_no}")),
        project_id: Some(it.project_id.clone()),
        also: None,
    };
    let command = c.command;
    let by = who.institution.clone();
    let (seen_status, seen_booking) = (it.status.clone(), it.booking_id);
    // The other items' bookings, read now: the answer shows them, and no
    // booking may be read while the module's lock is held (lock order).
    let seen: Vec<(u32, Option<u64>)> = e.items.iter().map(|i| (i.item_no, i.booking_id)).collect();
    let others: Vec<(Booking, Arc<Slot>)> = e
        .items
        .iter()
        .filter(|i| i.item_no != item_no)
        .filter_map(|i| booking_snapshot(c.pool, i.booking_id))
        .filter_map(|b| c.pool.slot(b.slot_idx).ok().map(|s| (b, s)))
        .collect();
    reserve_and_attach(c, reserve, &mut |pool, g, live, txn, now| {
        let live = live.ok_or_else(|| Error::internal("the new booking is not locked"))?;
        let mut e = g.exams.get(&id).cloned().ok_or_else(not_found)?;
        let others_changed = e.items.iter().map(|i| (i.item_no, i.booking_id)).zip(&seen).any(|(now, was)| now.0 != item_no && now != *was);
        let pos = e.items.iter().position(|i| i.item_no == item_no).ok_or_else(item_not_found)?;
        let it = &mut e.items[pos];
        if it.status != seen_status || it.booking_id != seen_booking || others_changed {
            return Err(Error::with(ErrorCode::ExamInvalidTransition, "the item changed while it was arranged; retry", "安排期间检查项目已变更，请重试"));
        }
        it.go_from(from.clone(), "arranged", command, by.as_deref(), None, now)?;
        it.booking_id = Some(live.b.id);
        let i = &live.slot.info;
        let data = json!({
            "exam_id": id, "item_no": item_no, "project_id": it.project_id, "date": &*live.slot.date_str, "time_slot": &*live.slot.time_slot,
            "device_id": i.device_id, "pay_before": live.b.hold_expires_ms.map(|x| format_ms(x, &pool.cfg.tz)),
        });
        e.updated_ms = now;
        put_exam(pool, txn, &e);
        super::event(pool, txn, "exam_arranged", &e.patient_id, &e.clinic_id, Some(live.b.id), data);
        let mut shown: Vec<(&Booking, &Slot)> = others.iter().map(|(b, s)| (b, &**s)).collect();
        shown.push((&*live.b, live.slot));
        let v = exam_view(pool, &e, &shown, false);
        g.exams.insert(id, e);
        Ok(v)
    })
}

/// `exam-payment`: paid at the kiosk: the arranged hold becomes a reserved
/// slot (`item_no`, the items of `item_nos`, or every arranged item), for
/// every item or none.
pub(super) fn payment(c: &Ctx) -> Result<Value> {
    let who = Who::of(c)?;
    let id = super::int_id(c.r, "exam_id")?;
    if c.r.str("payment_status")? != "paid" {
        return Err(Error::invalid("payment_status", "expected paid (refunds go through exam-refund)"));
    }
    let e = load(c, &who, id)?;
    let items = pick_items(c, &e, "paid")?;
    let command = c.command;
    let by = who.institution.clone();
    let check = &mut |_: &ExamApp, it: &ExamItem, b: Option<&Booking>, now: Millis| {
        // An arranged item's hold still holds its place, so it can be confirmed.
        EXAM_ITEM.check(&effective_status(&it.status, it.booking_id, b, &EXAM_ITEM, now), "paid", command)
    };
    item_steps(c, &who, id, &items, check, &mut |pool, _, e, it, live, txn, now| {
        it.go("paid", command, by.as_deref(), None, now, live.as_deref().map(|l| &*l.b))?;
        let l = live.ok_or_else(|| Error::internal("exam booking not locked"))?;
        pool.confirm_locked(l.slot, l.st, l.b, now, txn, command)?;
        l.b.payment = PaymentStatus::Paid;
        it.paid = true;
        super::event(
            pool,
            txn,
            "exam_paid",
            &e.patient_id,
            &e.clinic_id,
            Some(l.b.id),
            json!({"exam_id": e.exam_id, "item_no": it.item_no, "date": &*l.slot.date_str, "time_slot": &*l.slot.time_slot, "device_id": l.slot.info.device_id}),
        );
        Ok(())
    })
}

/// `exam-cancel`: the doctor cancels items (`item_no`, `item_nos`, or all
/// open ones, every one or none) before the exam; the slots go back to the pool.
pub(super) fn cancel(c: &Ctx) -> Result<Value> {
    let who = Who::of(c)?;
    let id = super::int_id(c.r, "exam_id")?;
    let reason = text(c.r, "reason", 500)?.unwrap_or_else(|| "cancelled by the doctor".into());
    let e = load(c, &who, id)?;
    let items = pick_items(c, &e, "cancelled")?;
    let command = c.command;
    let by = who.institution.clone();
    let check = &mut |_: &ExamApp, it: &ExamItem, b: Option<&Booking>, now: Millis| {
        EXAM_ITEM.check(&effective_status(&it.status, it.booking_id, b, &EXAM_ITEM, now), "cancelled", command)?;
        if b.is_some_and(|b| b.status == BookingStatus::Occupied) {
            return Err(Error::with(ErrorCode::InvalidState, "the exam is under way", "检查正在进行，不能取消"));
        }
        Ok(())
    };
    item_steps(c, &who, id, &items, check, &mut |pool, _, e, it, live, txn, now| {
        it.go("cancelled", command, by.as_deref(), Some(reason.clone()), now, live.as_deref().map(|l| &*l.b))?;
        if let Some(l) = live {
            if l.b.status.is_active() {
                pool.cancel_locked(l.slot, l.st, l.b, reason.clone().into(), now, txn)?;
            }
        }
        it.cancel_reason = Some(reason.clone());
        super::event(
            pool,
            txn,
            "exam_cancelled",
            &e.patient_id,
            &e.clinic_id,
            it.booking_id,
            json!({"exam_id": e.exam_id, "item_no": it.item_no, "reason": reason, "refund_due": it.paid}),
        );
        Ok(())
    })
}

/// `exam-refund`: after the doctor's cancellation, the paid fee is refunded.
pub(super) fn refund(c: &Ctx) -> Result<Value> {
    let who = Who::of(c)?;
    let id = super::int_id(c.r, "exam_id")?;
    let item_no = c.r.opt_u32("item_no")?.ok_or_else(|| Error::missing("item_no"))?;
    let command = c.command;
    let by = who.institution.clone();
    let check = &mut |_: &ExamApp, it: &ExamItem, b: Option<&Booking>, now: Millis| {
        let from = effective_status(&it.status, it.booking_id, b, &EXAM_ITEM, now);
        if matches!(from.as_str(), "arranged" | "paid" | SLOT_RELEASED) {
            return Err(Error::new(ErrorCode::ExamRefundNeedsCancel));
        }
        if !it.paid {
            return Err(Error::with(ErrorCode::ExamInvalidTransition, "nothing was paid for this item", "该检查项目未缴费，无需退费"));
        }
        EXAM_ITEM.check(&from, "refunded", command)
    };
    item_steps(c, &who, id, &[item_no], check, &mut |pool, _, e, it, live, txn, now| {
        it.go("refunded", command, by.as_deref(), None, now, live.as_deref().map(|l| &*l.b))?;
        if let Some(l) = live {
            if l.b.payment == PaymentStatus::Paid && !l.b.status.is_active() {
                l.b.payment = PaymentStatus::Refunded;
                pool.emit(txn, "payment_changed", Some(l.b), None, json!({"payment_status": "refunded", "via": command}));
            }
        }
        super::event(pool, txn, "exam_refunded", &e.patient_id, &e.clinic_id, it.booking_id, json!({"exam_id": e.exam_id, "item_no": it.item_no}));
        Ok(())
    })
}

// ---------------------------------------------------------------- B3/B4: reports

/// `exam-signing-key`: registers the SM2 public key of an issuer (the
/// hospital or one of its departments) for report signatures.
pub(super) fn signing_key(c: &Ctx) -> Result<Value> {
    let who = Who::of(c)?;
    who.must_be(Side::Hospital, c.command)?;
    let issuer = req_text(c.r, "issuer_id", 64)?;
    let key = c.r.str("public_key")?.trim().to_lowercase();
    // A well-formed key verifies (false) a well-formed signature; a bad key errors.
    match crate::crypto::sm2_verify(&key, None, b"", &"0".repeat(128)) {
        Err(e) if e.message().contains("public_key") => return Err(Error::new(ErrorCode::InvalidSigningKey)),
        _ => {}
    }
    if let (Side::Hospital, Some(own)) = (who.side, &who.institution) {
        if issuer != *own && !issuer.starts_with(&format!("{own}-")) && !issuer.starts_with(&format!("{own}/")) {
            return Err(super::forbidden(
                "a hospital registers keys for itself or its departments (`H001`, `H001-D101`)",
                "医院只能登记本院或本院科室的签章公钥",
            ));
        }
    }
    super::step(c, None, &mut |pool, g, _, txn, now| {
        let k = SigningKey { issuer_id: issuer.clone(), public_key: key.clone(), registered_ms: now };
        g.keys.insert(issuer.clone(), k.clone());
        put_key(pool, txn, &k);
        pool.emit(txn, "signing_key_registered", None, None, json!({"issuer_id": issuer}));
        Ok(json!({"issuer_id": issuer, "public_key": key, "status": "registered"}))
    })
}

/// What a report revision carries beside its content (B3, B4).
#[derive(Debug, Clone)]
pub(super) struct ReportFields {
    pub findings: Option<String>,
    pub conclusion: Option<String>,
    pub report_url: Option<String>,
    pub critical: bool,
    pub critical_note: Option<String>,
    pub reporter: Option<String>,
    pub reviewer: Option<String>,
    pub revision_reason: Option<String>,
}

impl ReportFields {
    pub(super) fn parse(r: &crate::request::Req) -> Result<ReportFields> {
        Ok(ReportFields {
            findings: text(r, "findings", 20_000)?,
            conclusion: text(r, "conclusion", 5_000)?,
            report_url: r.opt_str("report_url")?.map(str::to_string),
            critical: r.opt_bool("critical")?.unwrap_or(false),
            critical_note: text(r, "critical_note", 1000)?,
            reporter: text(r, "reporter", 64)?,
            reviewer: text(r, "reviewer", 64)?,
            revision_reason: text(r, "revision_reason", 500)?,
        })
    }

    /// A revision of `format` with these fields; the caller fills in content and signature.
    pub(super) fn revision(&self, format: &str, now: Millis) -> Report {
        Report {
            revision: 0,
            format: format.to_string(),
            findings: self.findings.clone(),
            conclusion: self.conclusion.clone(),
            content_base64: None,
            content_sm3: None,
            report_url: self.report_url.clone(),
            signer_id: None,
            signature: None,
            signature_verified: false,
            signer_key: None,
            document_id: None,
            critical: self.critical,
            critical_note: self.critical_note.clone(),
            reporter: self.reporter.clone(),
            reviewer: self.reviewer.clone(),
            revision_reason: self.revision_reason.clone(),
            at_ms: now,
        }
    }
}

/// Checks an SM2 signature of a report of `hospital` over `msg`: the signer
/// (`signer`, else the hospital) must be the hospital or one of its
/// departments (`H001-D101`, `H001/D101`), and the key is the signer's
/// registration (`exam-signing-key`), else the hospital's. Answers the
/// signer's id and the registration that verified it.
pub(super) fn verify_signature(c: &Ctx, hospital: &str, signer: Option<&str>, msg: &[u8], signature: &str) -> Result<(String, SigningKey)> {
    let issuer = signer.unwrap_or(hospital).to_string();
    if issuer != hospital && !issuer.starts_with(&format!("{hospital}-")) && !issuer.starts_with(&format!("{hospital}/")) {
        return Err(Error::with(
            ErrorCode::ExamSignatureInvalid,
            "the signer is not the application's hospital or one of its departments",
            "签章机构不是申请的上级医院或其科室",
        ));
    }
    let key = {
        let g = c.referral.inner.lock();
        g.keys.get(&issuer).or_else(|| g.keys.get(hospital)).cloned()
    };
    let key = key.ok_or_else(|| Error::new(ErrorCode::SigningKeyNotFound))?;
    if !crate::crypto::sm2_verify(&key.public_key, None, msg, signature)? {
        return Err(Error::new(ErrorCode::ExamSignatureInvalid));
    }
    Ok((issuer, key))
}

/// Whether the item's effective state lets it take a report now (checked
/// again under the locks by the step).
pub(super) fn check_reportable(c: &Ctx, e: &ExamApp, item_no: u32) -> Result<()> {
    let it = e.items.iter().find(|i| i.item_no == item_no).ok_or_else(item_not_found)?;
    let b = booking_snapshot(c.pool, it.booking_id);
    EXAM_ITEM
        .check(&effective_status(&it.status, it.booking_id, b.as_ref(), &EXAM_ITEM, c.pool.clock.now_ms()), "reported", c.command)
        .map_err(|err| of_item(item_no, err))
}

/// The check of a report step on one item.
pub(super) fn report_check(command: &'static str) -> impl FnMut(&ExamApp, &ExamItem, Option<&Booking>, Millis) -> Result<()> {
    move |_: &ExamApp, it: &ExamItem, b: Option<&Booking>, now: Millis| {
        EXAM_ITEM.check(&effective_status(&it.status, it.booking_id, b, &EXAM_ITEM, now), "reported", command)
    }
}

/// Records `rep` as the item's next revision (the item goes to `reported`)
/// and pushes it (B4): a critical result at once to the ordering doctor and
/// the patient, a routine one as a notice (a revision as `exam_report_revised`).
/// Answers the revision's number.
#[allow(clippy::too_many_arguments)]
pub(super) fn add_revision(
    pool: &Pool,
    txn: &mut Txn,
    e: &ExamApp,
    it: &mut ExamItem,
    live: Option<&mut Live<'_>>,
    mut rep: Report,
    command: &str,
    by: Option<&str>,
    now: Millis,
) -> Result<u32> {
    let revision = it.reports.len() as u32 + 1;
    it.go("reported", command, by, None, now, live.as_deref().map(|l| &*l.b))?;
    rep.revision = revision;
    let (critical, critical_note) = (rep.critical, rep.critical_note.clone());
    let base = json!({"exam_id": e.exam_id, "item_no": it.item_no, "project_id": it.project_id, "revision": revision, "conclusion": rep.conclusion,
        "document_id": rep.document_id.map(super::document::format_document_id)});
    it.reports.push(rep);
    if critical {
        for audience in ["doctor", "patient"] {
            let mut d = base.clone();
            d["audience"] = audience.into();
            d["urgency"] = "immediate".into();
            d["ordering_doctor_id"] = e.ordering_doctor_id.clone().into();
            d["critical_note"] = critical_note.clone().into();
            super::event(pool, txn, "exam_critical_result", &e.patient_id, &e.clinic_id, it.booking_id, d);
        }
    } else {
        let mut d = base;
        d["audience"] = "doctor".into();
        d["urgency"] = "notice".into();
        d["ordering_doctor_id"] = e.ordering_doctor_id.clone().into();
        let kind = if revision > 1 { "exam_report_revised" } else { "exam_report_notice" };
        super::event(pool, txn, kind, &e.patient_id, &e.clinic_id, it.booking_id, d);
    }
    Ok(revision)
}

/// `exam-report`: the report of one item, matched by application and item;
/// a second upload is a revision (history kept). Unstructured reports must be
/// signed: SM2 over the decoded content bytes with the issuer's registered
/// key; structured ones may be, over [`structured_message`]. Documents too
/// large for a JSON report go through `upload-report` (`document.rs`).
pub(super) fn report(c: &Ctx) -> Result<Value> {
    let who = Who::of(c)?;
    who.must_be(Side::Hospital, c.command)?;
    let id = super::int_id(c.r, "exam_id")?;
    let item_no = c.r.opt_u32("item_no")?.ok_or_else(|| Error::missing("item_no"))?;
    let format = c.r.opt_str("format")?.unwrap_or("structured").to_string();
    if !matches!(format.as_str(), "structured" | "pdf" | "image") {
        return Err(Error::invalid("format", "expected structured, pdf or image"));
    }
    let fields = ReportFields::parse(c.r)?;
    let content = match c.r.get("content_base64") {
        None => None,
        Some(Value::String(s)) => Some(base64::engine::general_purpose::STANDARD.decode(s.trim()).map_err(|_| Error::invalid("content_base64", "not base64"))?),
        Some(_) => return Err(Error::invalid("content_base64", "must be a string")),
    };
    let signature = c.r.opt_str("signature")?.map(str::to_string);
    let signer = c.r.opt_str("signer_id")?.map(str::to_string);
    let (msg, unstructured) = if format == "structured" {
        if fields.findings.is_none() && fields.conclusion.is_none() {
            return Err(Error::missing("conclusion"));
        }
        (structured_message(fields.conclusion.as_deref(), fields.findings.as_deref()).into_bytes(), false)
    } else {
        (content.clone().ok_or_else(|| Error::missing("content_base64"))?, true)
    };
    if unstructured && signature.is_none() {
        return Err(Error::new(ErrorCode::ExamSignatureMissing));
    }
    let e = load(c, &who, id)?;
    let signed = match &signature {
        Some(sig) => Some(verify_signature(c, &e.hospital_id, signer.as_deref(), &msg, sig)?),
        None => None,
    };
    let content_sm3 = content.as_ref().map(|b| crate::crypto::sm3_hex(b));
    let content_b64 = if unstructured { c.r.get("content_base64").and_then(Value::as_str).map(|s| s.trim().to_string()) } else { None };
    let command = c.command;
    let by = who.institution.clone();
    item_steps(c, &who, id, &[item_no], &mut report_check(command), &mut |pool, _, e, it, live, txn, now| {
        let mut rep = fields.revision(&format, now);
        rep.content_base64 = content_b64.clone();
        rep.content_sm3 = content_sm3.clone();
        if let (Some(sig), Some((issuer, key))) = (&signature, &signed) {
            rep.signature = Some(sig.clone());
            rep.signer_id = Some(issuer.clone());
            rep.signer_key = Some(key.clone());
            rep.signature_verified = true;
        }
        add_revision(pool, txn, e, it, live, rep, command, by.as_deref(), now).map(|_| ())
    })
}
