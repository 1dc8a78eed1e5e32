//! R7: one referral shown (its slot read from the booking it owns) and the
//! referral query by any combination of fields, paged; the step helper every
//! referral transition goes through.

use super::machine::SLOT_RELEASED;
use super::{page_of, paging, put_referral, step, Ctx, Inner, Kind, Live, Referral, Who};
use crate::clock::{format_ms, Millis};
use crate::error::{Error, ErrorCode, Result};
use crate::model::Booking;
use crate::pool::{Pool, Slot, Txn};
use crate::views::{to_value, with_booking, BookingPart, StepView};
use serde::Serialize;
use serde_json::Value;

pub(crate) type RefFn<'f> = dyn FnMut(&Pool, &mut Inner, &mut Referral, Option<&mut Live<'_>>, &mut Txn, Millis) -> Result<()> + 'f;

pub(crate) fn not_found() -> Error {
    Error::new(ErrorCode::ReferralNotFound)
}

pub(crate) fn concurrent() -> Error {
    Error::with(ErrorCode::ReferralInvalidTransition, "the case changed while the step ran; retry", "申请在操作期间已被修改，请重试")
}

/// A step on one referral: permission (S1) and kind checked, its booking
/// locked when it owns one, the change applied to a copy and stored only
/// when the step succeeds.
pub(crate) fn referral_step(c: &Ctx, who: &Who, id: u64, kind: Kind, f: &mut RefFn<'_>) -> Result<Value> {
    let booking = {
        let g = c.referral.inner.lock();
        let rf = g.referrals.get(&id).ok_or_else(not_found)?;
        who.check(&rf.clinic_id, &rf.hospital_id)?;
        if rf.kind != kind {
            return Err(Error::invalid("referral_id", &format!("referral {id} is a {} referral", rf.kind.as_str())));
        }
        rf.booking_id
    };
    step(c, booking, &mut |pool, g, mut live, txn, now| {
        let mut rf = g.referrals.get(&id).cloned().ok_or_else(not_found)?;
        if rf.booking_id != booking {
            return Err(concurrent());
        }
        let from = rf.status.clone();
        f(pool, g, &mut rf, live.as_mut(), txn, now)?;
        rf.updated_ms = now;
        super::follow_referral(c, pool, txn, now, &from, &rf);
        put_referral(pool, txn, &rf);
        let v = referral_view(pool, &rf, live.as_ref().map(|l| (&*l.b, l.slot)));
        g.referrals.insert(id, rf);
        Ok(v)
    })
}

/// A referral as every command shows it.
#[derive(Serialize)]
pub(crate) struct ReferralView<'a> {
    referral_id: u64,
    kind: &'static str,
    status: &'a str,
    patient_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    patient: Option<Value>,
    clinic_id: &'a str,
    hospital_id: &'a str,
    reason: &'a str,
    record: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    department_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    doctor_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    applicant_doctor_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    disease_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expected_date: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cancel_reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    decision: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deposit: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    acceptance: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    admission: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    consultation_id: Option<u64>,
    /// Where the patient goes, while the booking holds its place.
    #[serde(skip_serializing_if = "Option::is_none")]
    slot_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    date: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    time_slot: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    period: Option<&'a str>,
    /// Outpatient: the referred patient's visit number (就诊序号, rule 后两位).
    #[serde(skip_serializing_if = "Option::is_none")]
    visit_no: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bed_number: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bed_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    released_reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    booking: Option<&'a BookingPart<'a>>,
    created_at: String,
    updated_at: String,
    history: Vec<StepView<'a>>,
}

/// The referral as every command shows it. Reads its booking unless `live`
/// is it: call without the module's lock unless `live` is given or the
/// referral owns no booking.
pub(crate) fn referral_view(pool: &Pool, rf: &Referral, live: Option<(&Booking, &Slot)>) -> Value {
    with_booking(pool, rf.booking_id, live, |booking| {
        let place = booking.and_then(|b| b.place());
        let released = booking.is_some() && rf.kind.machine().holds_slot.contains(&rf.status.as_str()) && place.is_none();
        let tz = &pool.cfg.tz;
        to_value(&ReferralView {
            referral_id: rf.referral_id,
            kind: rf.kind.as_str(),
            status: if released { SLOT_RELEASED } else { &rf.status },
            patient_id: &rf.patient_id,
            patient: rf.patient.as_ref().map(|p| p.masked()),
            clinic_id: &rf.clinic_id,
            hospital_id: &rf.hospital_id,
            reason: &rf.reason,
            record: &rf.record,
            // The booked slot's department and doctor, while it holds one.
            department_id: place.and_then(|p| p.department_id).or(rf.department_id.as_deref()),
            doctor_id: place.and_then(|p| p.doctor_id).or(rf.doctor_id.as_deref()),
            applicant_doctor_id: rf.applicant_doctor_id.as_deref(),
            disease_code: rf.disease_code.as_deref(),
            expected_date: rf.expected_date.as_deref(),
            cancel_reason: rf.cancel_reason.as_deref(),
            decision: rf.decision.as_ref(),
            deposit: rf.deposit.as_ref(),
            acceptance: rf.acceptance.as_ref(),
            outcome: rf.outcome.as_ref(),
            admission: rf.admission.as_ref(),
            consultation_id: rf.consultation_id,
            slot_id: place.map(|p| p.slot_id),
            date: place.map(|p| p.date),
            time_slot: place.map(|p| p.time_slot),
            period: place.and_then(|p| p.period),
            visit_no: booking.and_then(|b| b.visit_no()),
            bed_number: place.and_then(|p| p.bed_number),
            bed_type: place.and_then(|p| p.bed_type),
            released_reason: booking.filter(|_| released).and_then(|b| b.released_reason()),
            booking,
            created_at: format_ms(rf.created_ms, tz),
            updated_at: format_ms(rf.updated_ms, tz),
            history: super::history_view(&rf.history, tz),
        })
    })
}

/// `referral-view`: one referral, if the caller may see it.
pub(super) fn view(c: &Ctx) -> Result<Value> {
    let who = Who::of(c)?;
    let id = super::int_id(c.r, "referral_id")?;
    let rf = {
        let g = c.referral.inner.lock();
        g.referrals.get(&id).cloned().ok_or_else(not_found)?
    };
    who.check(&rf.clinic_id, &rf.hospital_id)?;
    Ok(referral_view(c.pool, &rf, None))
}

/// `referral-query`: by any combination of kind, status, patient, both
/// institutions, department, doctor, disease, creation dates and a keyword in
/// the reason; only the caller's own cases (S1); paged, oldest first.
pub(super) fn query(c: &Ctx) -> Result<Value> {
    let who = Who::of(c)?;
    list(c, &who, None)
}

pub(super) fn list(c: &Ctx, who: &Who, force_kind: Option<Kind>) -> Result<Value> {
    let r = c.r;
    let kind = match (force_kind, r.opt_str("kind")?) {
        (Some(k), _) => Some(k),
        (None, None) => None,
        (None, Some("outpatient")) => Some(Kind::Outpatient),
        (None, Some("inpatient")) => Some(Kind::Inpatient),
        (None, Some("down")) => Some(Kind::Down),
        (None, Some(_)) => return Err(Error::invalid("kind", "expected outpatient, inpatient or down")),
    };
    let status = r.opt_str("status")?;
    let patient = r.opt_id("patient_id")?;
    let clinic = r.opt_str("clinic_id")?;
    let hospital = r.opt_str("hospital_id")?;
    let dept = r.opt_str("department_id")?;
    let doctor = r.opt_str("doctor_id")?;
    let disease = r.opt_str("disease_code")?;
    let keyword = r.opt_str("keyword")?;
    let from = r.opt_date("from")?;
    let to = r.opt_date("to")?;
    let (page, size) = paging(r)?;
    let tz = c.pool.cfg.tz;
    let day = |ms: Millis| crate::request::parse_date(&format_ms(ms, &tz)[..10]);
    let picked: Vec<Referral> = {
        let g = c.referral.inner.lock();
        g.referrals
            .values()
            .filter(|rf| {
                who.may_see(&rf.clinic_id, &rf.hospital_id)
                    && kind.is_none_or(|k| rf.kind == k)
                    && patient.as_deref().is_none_or(|p| rf.patient_id == p)
                    && clinic.is_none_or(|x| rf.clinic_id == x)
                    && hospital.is_none_or(|x| rf.hospital_id == x)
                    && dept.is_none_or(|x| rf.department_id.as_deref() == Some(x))
                    && doctor.is_none_or(|x| rf.doctor_id.as_deref() == Some(x))
                    && disease.is_none_or(|x| rf.disease_code.as_deref() == Some(x))
                    && keyword.is_none_or(|k| rf.reason.contains(k))
                    && from.is_none_or(|f| day(rf.created_ms).is_some_and(|d| d >= f))
                    && to.is_none_or(|t| day(rf.created_ms).is_some_and(|d| d <= t))
            })
            .cloned()
            .collect()
    };
    // Views read bookings: built after the module's lock is released.
    let items: Vec<Value> = picked.iter().map(|rf| referral_view(c.pool, rf, None)).filter(|v| status.is_none_or(|s| v["status"] == s)).collect();
    Ok(page_of(items, page, size))
}

/// The printable referral slip (转诊单): masked patient, both institutions,
/// the booked session, reason and diagnosis, the steps so far; the barcode
/// carries the referral number for the hospital's scanner.
pub(crate) fn slip_document(pool: &Pool, referral: &super::ReferralState, rf: &Referral, v: &Value) -> crate::render::Document {
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let clinic_name = referral.inner.lock().communities.get(&rf.clinic_id).map(|c| c.name.clone()).unwrap_or_else(|| rf.clinic_id.clone());
    let hospital_name =
        pool.catalog.data.read().hospitals.get(&rf.hospital_id).map(|h| h.name.clone()).filter(|n| !n.is_empty()).unwrap_or_else(|| rf.hospital_id.clone());
    let patient = v.get("patient");
    let p = |k: &str| patient.and_then(|x| x.get(k)).and_then(Value::as_str).unwrap_or("").to_string();
    let title = match rf.kind {
        Kind::Outpatient => "双向转诊单（门诊上转）",
        Kind::Inpatient => "双向转诊单（住院上转）",
        Kind::Down => "双向转诊单（下转）",
    };
    let (from, to) = if rf.kind == Kind::Down { (hospital_name.clone(), clinic_name.clone()) } else { (clinic_name.clone(), hospital_name.clone()) };
    let mut fields = vec![
        ("转诊单号".to_string(), rf.referral_id.to_string()),
        ("患者姓名".to_string(), p("name")),
        ("性别".to_string(), p("sex")),
        ("身份证号".to_string(), p("id_number")),
        ("转出机构".to_string(), from),
        ("转入机构".to_string(), to),
    ];
    for (label, key) in
        [("科室", "department_id"), ("医生", "doctor_id"), ("就诊日期", "date"), ("时段", "period"), ("时间", "time_slot"), ("床位号", "bed_number")]
    {
        let x = s(key);
        if !x.is_empty() {
            fields.push((label.to_string(), x));
        }
    }
    if let Some(n) = v.get("visit_no").and_then(Value::as_u64) {
        fields.push(("就诊序号".to_string(), format!("{n}号")));
    }
    if let Some(d) = rf.expected_date.as_ref().filter(|_| rf.kind != Kind::Outpatient) {
        fields.push(("预计日期".to_string(), d.clone()));
    }
    fields.push(("转诊原因".to_string(), rf.reason.clone()));
    if let Some(d) = rf.record.get("diagnosis").and_then(Value::as_str) {
        fields.push(("初步诊断".to_string(), d.to_string()));
    }
    // What the hospital sends down with the patient.
    for (label, key) in [("诊疗经过", "treatment_course"), ("出院小结", "discharge_summary")] {
        if let Some(t) = rf.record.get(key).and_then(Value::as_str) {
            fields.push((label.to_string(), t.to_string()));
        }
    }
    fields.push(("状态".to_string(), s("status")));
    let tz = &pool.cfg.tz;
    let rows = rf.history.iter().map(|h| vec![format_ms(h.at_ms, tz), h.to.clone(), h.via.clone()]).collect();
    let mut footer = Vec::new();
    if rf.kind == Kind::Outpatient {
        footer.push("请携带本转诊单于预约时段前往上级医院就诊，无需再次挂号，可直接缴费看诊。".to_string());
        footer.push("转诊病人就诊序号为当前患者后两位。".to_string());
    }
    footer.push(format!("打印时间：{}", format_ms(pool.clock.now_ms(), tz)));
    crate::render::Document {
        title: title.to_string(),
        fields,
        columns: vec!["时间".into(), "状态".into(), "操作".into()],
        rows,
        footer,
        barcode: Some(format!("REF{:09}", rf.referral_id)),
    }
}
