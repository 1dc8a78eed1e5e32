//! R5: inpatient referral (住院转诊床位预约): apply with expected date and
//! reason under the disease rule (R1), deposit at the kiosk, the ward
//! reserves a bed (a Bed slot of the pool: reserved → occupied on admission,
//! → available on cancel or discharge, with reason), and `admission-details`
//! for the hospital's admission office.

use super::query::{not_found, referral_step, referral_view, RefFn};
use super::{
    booking_snapshot, effective_status, event, fuse_record, patient_details, put_referral, req_text, reserve_and_attach, text, time_field, Ctx, Inner, Kind,
    Referral, Side, Who,
};
use crate::clock::format_ms;
use crate::error::{Error, ErrorCode, Result};
use crate::model::{BookingStatus, Id, Priority, SlotKind};
use crate::pool::Reserve;
use serde_json::{json, Value};
use std::sync::Arc;

/// `inpatient-referral-apply`: the community doctor applies; the rule decides
/// whether the patient may go straight to a ward.
pub(super) fn apply(c: &Ctx) -> Result<Value> {
    let (clinic, hospital) = super::community_application(c)?;
    let patient_id = c.r.id("patient_id")?;
    let department = req_text(c.r, "department_id", 64)?;
    let expected = c.r.date("expected_date")?;
    let reason = req_text(c.r, "reason", 500)?;
    let disease = text(c.r, "disease_code", 32)?;
    let readmission = c.r.opt_bool("readmission")?.unwrap_or(false);
    let consultation = match c.r.get("consultation_id") {
        Some(_) => Some(super::int_id(c.r, "consultation_id")?),
        None => None,
    };
    let record = fuse_record(c)?;
    let patient = patient_details(c)?;
    let applicant = text(c.r, "applicant_doctor_id", 64)?;
    let command = c.command;
    super::step(c, None, &mut |pool, g, _, txn, now| {
        if let Some(cid) = consultation {
            if !g.consultations.contains_key(&cid) {
                return Err(Error::new(ErrorCode::ConsultationNotFound));
            }
        }
        let decision = super::disease::decide(g, disease.as_deref(), readmission, consultation, &patient_id, Some(&hospital));
        if decision["allowed"] != true {
            let en = decision["reason"].as_str().unwrap_or("a consultation is needed first").to_string();
            let zh = decision["reason_zh"].as_str().unwrap_or("需先发起会诊").to_string();
            return Err(Error::with(ErrorCode::ConsultationRequired, en, zh));
        }
        let id = Inner::take_id(&mut g.next_referral);
        let rf = Referral {
            patient_id: patient_id.clone(),
            patient: patient.clone(),
            clinic_id: clinic.clone(),
            hospital_id: hospital.clone(),
            department_id: Some(department.clone()),
            applicant_doctor_id: applicant.clone(),
            reason: reason.clone(),
            disease_code: disease.clone(),
            record: record.clone(),
            expected_date: Some(expected.to_string()),
            decision: Some(decision.clone()),
            consultation_id: consultation,
            deposit: Some(json!({"status": "unpaid"})),
            ..Referral::applied(id, Kind::Inpatient, command, &clinic, now)
        };
        put_referral(pool, txn, &rf);
        event(
            pool,
            txn,
            "referral_applied",
            &rf.patient_id,
            &rf.clinic_id,
            None,
            json!({"referral_id": id, "kind": "inpatient", "hospital_id": hospital, "department_id": department, "expected_date": expected.to_string(), "decision": decision["decision"]}),
        );
        let v = referral_view(pool, &rf, None);
        g.referrals.insert(id, rf);
        Ok(v)
    })
}

/// `inpatient-deposit`: the deposit (预交款) paid at the kiosk, or refunded
/// after the referral was cancelled.
pub(super) fn deposit(c: &Ctx) -> Result<Value> {
    let who = Who::of(c)?;
    let id = super::int_id(c.r, "referral_id")?;
    let status = c.r.str("payment_status")?;
    if !matches!(status, "paid" | "refunded") {
        return Err(Error::invalid("payment_status", "expected paid or refunded"));
    }
    let amount = match c.r.get("amount") {
        None => None,
        Some(Value::Number(n)) if n.as_f64().is_some_and(|x| x >= 0.0 && x.is_finite()) => Some(n.clone()),
        Some(_) => return Err(Error::invalid("amount", "must be a non-negative number")),
    };
    let command = c.command;
    let by = who.institution.clone();
    let at = super::now_str(c.pool);
    referral_step(c, &who, id, Kind::Inpatient, &mut |pool, _g, rf, live, txn, now| {
        let paid = rf.deposit.as_ref().and_then(|d| d["status"].as_str()) == Some("paid");
        if status == "paid" {
            rf.go("deposit_paid", command, by.as_deref(), None, now, live.as_deref().map(|l| &*l.b))?;
            rf.deposit = Some(json!({"status": "paid", "amount": amount, "paid_at": at}));
        } else {
            if rf.status != "cancelled" {
                return Err(Error::with(ErrorCode::RefundNotAllowed, "a deposit is refunded after the referral is cancelled", "需先取消住院转诊才能退预交款"));
            }
            if !paid {
                return Err(Error::new(ErrorCode::DepositNotPaid));
            }
            let mut d = rf.deposit.clone().unwrap_or(json!({}));
            d["status"] = "refunded".into();
            d["refunded_at"] = at.clone().into();
            rf.deposit = Some(d);
        }
        event(pool, txn, "referral_deposit", &rf.patient_id, &rf.clinic_id, rf.booking_id, json!({"referral_id": rf.referral_id, "deposit": rf.deposit}));
        Ok(())
    })
}

/// `inpatient-bed-reserve`: the ward nurse reserves a bed for a referral
/// whose deposit is paid (again after a bed was released).
pub(super) fn bed_reserve(c: &Ctx) -> Result<Value> {
    let who = Who::of(c)?;
    who.must_be(Side::Hospital, c.command)?;
    let id = super::int_id(c.r, "referral_id")?;
    let rf = {
        let g = c.referral.inner.lock();
        g.referrals.get(&id).cloned().ok_or_else(not_found)?
    };
    who.check(&rf.clinic_id, &rf.hospital_id)?;
    if rf.kind != Kind::Inpatient {
        return Err(Error::invalid("referral_id", "not an inpatient referral"));
    }
    // Derived without locks: an ended booking never becomes active again.
    let old = booking_snapshot(c.pool, rf.booking_id);
    let from = effective_status(&rf.status, rf.booking_id, old.as_ref(), &super::machine::INPATIENT, c.pool.clock.now_ms());
    if from == "applied" {
        return Err(Error::new(ErrorCode::DepositNotPaid));
    }
    super::machine::INPATIENT.check(&from, "bed_reserved", c.command)?;
    let slot = find_bed(c, &rf)?;
    let reserve = Reserve {
        slot: slot.idx,
        patient_id: Id::new(rf.patient_id.as_str()),
        clinic_id: Some(Id::new(rf.clinic_id.as_str())),
        priority: Priority::Referral,
        hold: false,
        patient: rf.patient.clone(),
        expected_date: rf.expected_date.as_deref().and_then(crate::request::parse_date),
        reason: Some(rf.reason.clone()),
        project_id: None,
        also: None,
    };
    let command = c.command;
    let by = who.institution.clone();
    let (seen_status, seen_booking) = (rf.status.clone(), rf.booking_id);
    let mut attach = |pool: &crate::pool::Pool, g: &mut Inner, live: Option<super::Live<'_>>, txn: &mut crate::pool::Txn, now| -> Result<Value> {
        let live = live.ok_or_else(|| Error::internal("the new booking is not locked"))?;
        let mut rf = g.referrals.get(&id).cloned().ok_or_else(not_found)?;
        if rf.status != seen_status || rf.booking_id != seen_booking {
            return Err(Error::with(
                ErrorCode::ReferralInvalidTransition,
                "the referral changed while the bed was reserved; retry",
                "预约床位期间转诊申请已变更，请重试",
            ));
        }
        rf.go_from(from.clone(), "bed_reserved", command, by.as_deref(), None, now)?;
        rf.booking_id = Some(live.b.id);
        let i = &live.slot.info;
        let admission_id = match rf.admission.as_ref().and_then(|a| a["admission_id"].as_u64()) {
            Some(a) => a,
            None => Inner::take_id(&mut g.next_admission),
        };
        g.admissions.insert(admission_id, id);
        rf.admission = Some(json!({
            "admission_id": admission_id,
            "admission_status": "reserved",
            "admission_date": rf.expected_date,
            "discharge_date": null,
            "attending_doctor_id": i.doctor_id,
            "department_id": i.department_id,
            "bed_number": i.bed_number,
            "bed_type": i.bed_type,
        }));
        if i.doctor_id.is_some() {
            rf.doctor_id = i.doctor_id.clone();
        }
        rf.updated_ms = now;
        put_referral(pool, txn, &rf);
        event(
            pool,
            txn,
            "referral_bed_reserved",
            &rf.patient_id,
            &rf.clinic_id,
            Some(live.b.id),
            json!({"referral_id": id, "admission_id": admission_id, "bed_number": i.bed_number, "department_id": i.department_id, "expected_date": rf.expected_date}),
        );
        let v = referral_view(pool, &rf, Some((&*live.b, live.slot)));
        g.referrals.insert(id, rf);
        Ok(v)
    };
    reserve_and_attach(c, reserve, &mut attach)
}

/// A bed by `slot_id` or `bed_number`, else the first free bed of the ward
/// (`department_id`, default the referral's) with the `bed_type` asked for.
fn find_bed(c: &Ctx, rf: &Referral) -> Result<Arc<crate::pool::Slot>> {
    if let Some(sid) = c.r.opt_str("slot_id")? {
        let s = c.pool.slot_by_id(sid)?;
        if s.info.kind != SlotKind::Bed || s.info.hospital_id != rf.hospital_id {
            return Err(Error::invalid("slot_id", "not a bed of the referral's hospital"));
        }
        return Ok(s);
    }
    let dept = c.r.opt_str("department_id")?.or(rf.department_id.as_deref());
    let number = c.r.opt_str("bed_number")?;
    let btype = c.r.opt_str("bed_type")?;
    let table = c.pool.table.load();
    let mut beds: Vec<&Arc<crate::pool::Slot>> = table
        .slots
        .iter()
        .filter(|s| {
            let i = &s.info;
            i.kind == SlotKind::Bed
                && i.hospital_id == rf.hospital_id
                && dept.is_none_or(|d| i.department_id.as_deref() == Some(d))
                && number.is_none_or(|n| i.bed_number.as_deref() == Some(n))
                && btype.is_none_or(|t| i.bed_type.as_deref() == Some(t))
        })
        .collect();
    if beds.is_empty() {
        return Err(Error::with(ErrorCode::SlotNotFound, "no bed of the ward matches the request", "病区没有符合条件的床位"));
    }
    beds.sort_by(|a, b| a.info.slot_id.cmp(&b.info.slot_id));
    let free = beds.iter().find(|s| {
        let st = s.state.lock();
        !st.closed && st.free_for(Priority::Referral) > 0
    });
    // None free: the first one, whose reservation is refused as full.
    Ok(free.copied().unwrap_or(beds[0]).clone())
}

fn bed_step(c: &Ctx, who: &Who, id: u64, f: &mut RefFn<'_>) -> Result<Value> {
    referral_step(c, who, id, Kind::Inpatient, f)
}

/// `inpatient-bed-cancel`: the ward gives the bed back (with reason); the
/// referral waits for another bed.
pub(super) fn bed_cancel(c: &Ctx) -> Result<Value> {
    let who = Who::of(c)?;
    who.must_be(Side::Hospital, c.command)?;
    let id = super::int_id(c.r, "referral_id")?;
    let reason = req_text(c.r, "reason", 500)?;
    let command = c.command;
    let by = who.institution.clone();
    bed_step(c, &who, id, &mut |pool, _g, rf, live, txn, now| {
        rf.go("deposit_paid", command, by.as_deref(), Some(reason.clone()), now, live.as_deref().map(|l| &*l.b))?;
        let l = live.ok_or_else(|| Error::internal("bed booking not locked"))?;
        pool.cancel_locked(l.slot, l.st, l.b, reason.clone().into(), now, txn)?;
        if let Some(a) = rf.admission.as_mut() {
            a["admission_status"] = "bed_released".into();
        }
        event(pool, txn, "referral_bed_released", &rf.patient_id, &rf.clinic_id, rf.booking_id, json!({"referral_id": rf.referral_id, "reason": reason}));
        Ok(())
    })
}

/// `inpatient-admit`: the patient arrived; the bed becomes occupied.
pub(super) fn admit(c: &Ctx) -> Result<Value> {
    let who = Who::of(c)?;
    who.must_be(Side::Hospital, c.command)?;
    let id = referral_of(c)?;
    let date = time_field(c, "admission_date")?;
    let diagnosis = text(c.r, "primary_diagnosis", 500)?;
    let doctor = text(c.r, "attending_doctor_id", 64)?;
    let command = c.command;
    let by = who.institution.clone();
    bed_step(c, &who, id, &mut |pool, _g, rf, live, txn, now| {
        rf.go("admitted", command, by.as_deref(), None, now, live.as_deref().map(|l| &*l.b))?;
        let l = live.ok_or_else(|| Error::internal("bed booking not locked"))?;
        if l.b.status != BookingStatus::Booked {
            return Err(crate::pool::state_error(l.b));
        }
        l.b.status = BookingStatus::Occupied;
        pool.emit(txn, "bed_occupied", Some(l.b), None, json!({"bed_number": l.slot.info.bed_number, "referral_id": rf.referral_id}));
        let mut a = rf.admission.clone().unwrap_or(json!({}));
        a["admission_status"] = "ongoing".into();
        a["admission_date"] = date.clone().unwrap_or_else(|| format_ms(now, &pool.cfg.tz)).into();
        let dx = diagnosis.clone().or_else(|| rf.record.get("diagnosis").and_then(Value::as_str).map(str::to_string));
        a["primary_diagnosis"] = dx.into();
        if let Some(d) = &doctor {
            a["attending_doctor_id"] = d.clone().into();
        }
        rf.admission = Some(a.clone());
        event(pool, txn, "referral_admitted", &rf.patient_id, &rf.clinic_id, rf.booking_id, json!({"referral_id": rf.referral_id, "admission": a}));
        Ok(())
    })
}

/// `inpatient-discharge`: the admission ends and the bed is available again.
pub(super) fn discharge(c: &Ctx) -> Result<Value> {
    let who = Who::of(c)?;
    who.must_be(Side::Hospital, c.command)?;
    let id = referral_of(c)?;
    let date = time_field(c, "discharge_date")?;
    let command = c.command;
    let by = who.institution.clone();
    bed_step(c, &who, id, &mut |pool, _g, rf, live, txn, now| {
        rf.go("discharged", command, by.as_deref(), None, now, live.as_deref().map(|l| &*l.b))?;
        let l = live.ok_or_else(|| Error::internal("bed booking not locked"))?;
        if l.b.status != BookingStatus::Occupied {
            return Err(crate::pool::state_error(l.b));
        }
        // The pool cancels only reserved beds: the occupied one is released as discharged.
        l.b.status = BookingStatus::Booked;
        pool.cancel_locked(l.slot, l.st, l.b, "discharged (出院)".into(), now, txn)?;
        let mut a = rf.admission.clone().unwrap_or(json!({}));
        a["admission_status"] = "discharged".into();
        a["discharge_date"] = date.clone().unwrap_or_else(|| format_ms(now, &pool.cfg.tz)).into();
        rf.admission = Some(a.clone());
        event(pool, txn, "referral_discharged", &rf.patient_id, &rf.clinic_id, rf.booking_id, json!({"referral_id": rf.referral_id, "admission": a}));
        Ok(())
    })
}

/// `inpatient-referral-cancel`: either side withdraws before admission; a
/// reserved bed becomes available with the reason.
pub(super) fn cancel(c: &Ctx) -> Result<Value> {
    let who = Who::of(c)?;
    let id = super::int_id(c.r, "referral_id")?;
    let reason = req_text(c.r, "reason", 500)?;
    let command = c.command;
    let by = who.institution.clone();
    bed_step(c, &who, id, &mut |pool, _g, rf, live, txn, now| {
        rf.go("cancelled", command, by.as_deref(), Some(reason.clone()), now, live.as_deref().map(|l| &*l.b))?;
        if let Some(l) = live {
            if l.b.status == BookingStatus::PreBooked || l.b.status == BookingStatus::Booked {
                pool.cancel_locked(l.slot, l.st, l.b, reason.clone().into(), now, txn)?;
            }
        }
        rf.cancel_reason = Some(reason.clone());
        if let Some(a) = rf.admission.as_mut() {
            a["admission_status"] = "cancelled".into();
        }
        if let Some(d) = rf.deposit.as_mut() {
            if d["status"] == "paid" {
                d["refund_due"] = true.into();
            }
        }
        event(
            pool,
            txn,
            "referral_cancelled",
            &rf.patient_id,
            &rf.clinic_id,
            rf.booking_id,
            json!({"referral_id": rf.referral_id, "kind": "inpatient", "reason": reason}),
        );
        Ok(())
    })
}

/// `referral_id`, or the `admission_id` of one.
fn referral_of(c: &Ctx) -> Result<u64> {
    if c.r.get("referral_id").is_some() {
        return super::int_id(c.r, "referral_id");
    }
    let a = super::int_id(c.r, "admission_id")?;
    let g = c.referral.inner.lock();
    g.admissions.get(&a).copied().ok_or_else(|| Error::new(ErrorCode::AdmissionNotFound))
}

/// `admission-details` (GET /api/admission-details): the admission record of
/// a referred patient, in the source's shape, with the referral's record.
pub(super) fn admission_details(c: &Ctx) -> Result<Value> {
    let who = Who::of(c)?;
    let a = super::int_id(c.r, "admission_id")?;
    let patient = c.r.opt_id("patient_id")?;
    let rf = {
        let g = c.referral.inner.lock();
        let id = g.admissions.get(&a).copied().ok_or_else(|| Error::new(ErrorCode::AdmissionNotFound))?;
        g.referrals.get(&id).cloned().ok_or_else(not_found)?
    };
    who.check(&rf.clinic_id, &rf.hospital_id)?;
    if patient.as_deref().is_some_and(|p| p != rf.patient_id) {
        return Err(another_patient());
    }
    let v = referral_view(c.pool, &rf, None);
    let mut out = admission_of(a, &rf, &v);
    if let Some(p) = v.get("patient") {
        out["patient"] = p.clone();
    }
    Ok(out)
}

fn another_patient() -> Error {
    super::forbidden("the admission belongs to another patient", "该住院记录不属于此患者")
}

/// The admission record in the source's shape (`admission_id` …
/// `attending_doctor_id`) with the ward, bed and referral beside it; `v` is
/// the referral's view (its status derived from the booking).
fn admission_of(a: u64, rf: &Referral, v: &Value) -> Value {
    let adm = rf.admission.clone().unwrap_or(json!({}));
    let status = match (v["status"].as_str(), adm["admission_status"].as_str()) {
        (Some(super::machine::SLOT_RELEASED), _) => "bed_released",
        (_, Some(s)) => s,
        _ => "reserved",
    };
    json!({
        "admission_id": a,
        "patient_id": rf.patient_id,
        "hospital_id": rf.hospital_id,
        "admission_date": adm["admission_date"],
        "discharge_date": adm["discharge_date"],
        "admission_status": status,
        "primary_diagnosis": adm.get("primary_diagnosis").cloned().filter(|d| !d.is_null()).or_else(|| rf.record.get("diagnosis").cloned()).unwrap_or(Value::Null),
        "attending_doctor_id": adm["attending_doctor_id"],
        "department_id": adm["department_id"],
        "bed_number": adm["bed_number"],
        "referral_id": rf.referral_id,
        "clinic_id": rf.clinic_id,
        "expected_date": rf.expected_date,
        "reason": rf.reason,
        "record": rf.record,
        "referral_status": v["status"],
    })
}

/// `admission-import` (住院处一键带入): when the referred patient arrives,
/// the admission desk of the hospital the referral is addressed to takes
/// the patient's details into its HIS in one call: name, sex, ID number and
/// phone unmasked, with the admission record, ward, bed, diagnosis, the
/// fused record and the deposit. Only that hospital's own principal gets
/// them (the platform on its behalf names it in `institution_id`); the
/// community side, another hospital, a lab and the regulator are refused,
/// and every other answer keeps the details masked.
///
/// A change, not a query: reading personal data unmasked is recorded. The
/// import is a step of the referral (`bed_reserved` or `admitted` to itself,
/// in its history with the hospital) and is counted on its admission
/// (`imported_at`, `imported_by`, `import_count`), with an
/// `admission_imported` event (ids only); being a change, it gets an entry
/// in the audit trail with the institution, operator, time and request id.
/// A retry with the same request id answers the first answer again and
/// records nothing more (it is the same read).
pub(super) fn admission_import(c: &Ctx) -> Result<Value> {
    let who = Who::of(c)?;
    if who.side != Side::Hospital {
        return Err(super::forbidden(
            "only the admission desk of the hospital the referral is addressed to imports the patient's details",
            "只有转入医院的住院处可以一键带入患者信息",
        ));
    }
    let id = referral_of(c)?;
    let patient = c.r.opt_id("patient_id")?;
    let booking = {
        let g = c.referral.inner.lock();
        let rf = g.referrals.get(&id).ok_or_else(not_found)?;
        who.check(&rf.clinic_id, &rf.hospital_id)?;
        if rf.kind != Kind::Inpatient {
            return Err(Error::invalid("referral_id", "not an inpatient referral"));
        }
        if patient.as_deref().is_some_and(|p| p != rf.patient_id) {
            return Err(another_patient());
        }
        rf.booking_id
    };
    let command = c.command;
    let by = who.institution.clone();
    super::step(c, booking, &mut |pool, g, live, txn, now| {
        let mut rf = g.referrals.get(&id).cloned().ok_or_else(not_found)?;
        if rf.booking_id != booking {
            return Err(super::query::concurrent());
        }
        let stays = rf.status.clone();
        rf.go(&stays, command, by.as_deref(), None, now, live.as_ref().map(|l| &*l.b))?;
        let mut adm = rf.admission.clone().unwrap_or(json!({}));
        let a = adm["admission_id"].as_u64().ok_or_else(|| Error::internal("a reserved bed without an admission id"))?;
        let count = adm["import_count"].as_u64().unwrap_or(0) + 1;
        adm["imported_at"] = format_ms(now, &pool.cfg.tz).into();
        adm["imported_by"] = by.clone().into();
        adm["import_count"] = count.into();
        rf.admission = Some(adm);
        rf.updated_ms = now;
        put_referral(pool, txn, &rf);
        event(
            pool,
            txn,
            "admission_imported",
            &rf.patient_id,
            &rf.clinic_id,
            rf.booking_id,
            json!({"referral_id": id, "admission_id": a, "hospital_id": rf.hospital_id, "imported_by": by, "import_count": count}),
        );
        let v = referral_view(pool, &rf, live.as_ref().map(|l| (&*l.b, l.slot)));
        let mut out = admission_of(a, &rf, &v);
        // Unmasked, for this hospital's admission desk only.
        out["patient"] = rf.patient.as_ref().map_or(Value::Null, |p| serde_json::to_value(p).unwrap_or(Value::Null));
        for k in ["disease_code", "applicant_doctor_id", "deposit", "bed_type", "admission"] {
            out[k] = v.get(k).cloned().unwrap_or(Value::Null);
        }
        g.referrals.insert(id, rf);
        Ok(out)
    })
}
