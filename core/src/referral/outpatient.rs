//! R2–R4: outpatient up-referral (门诊转诊): drill-down over the slot pool,
//! apply with registration (the booking and the referral stand or fall
//! together), cancel, the referral slip, the queue rule 后两位, acceptance and
//! outcome returned to the community side.

use super::query::{referral_step, referral_view};
use super::{event, fuse_record, patient_details, put_referral, req_text, reserve_and_attach, text, time_field, Ctx, Inner, Kind, Referral, Side, Who};
use crate::error::{Error, ErrorCode, Result};
use crate::model::{Id, Priority, SlotKind};
use crate::pool::Reserve;
use serde_json::{json, Value};
use std::collections::BTreeMap;

// ---------------------------------------------------------------- drill-down

/// `referral-sources`: institution → department → doctor → date → period.
/// Each call returns the next level below the filters given, counting only
/// open, released, future registration slots with places for the referral
/// class (which may use the reserved referral quota).
pub(super) fn sources(c: &Ctx) -> Result<Value> {
    let pool = c.pool;
    let hospital = c.r.opt_str("hospital_id")?;
    let dept = c.r.opt_str("department_id")?;
    let doctor = c.r.opt_str("doctor_id")?;
    let date = c.r.opt_date("date")?;
    let now = pool.clock.now_ms();
    let table = pool.table.load();
    let level = match (hospital, dept, doctor, date) {
        (None, ..) => "institution",
        (Some(_), None, None, _) => "department",
        (Some(_), _, None, _) => "doctor",
        (Some(_), _, Some(_), None) => "date",
        _ => "period",
    };
    // key → (remaining, slots, first row for names)
    let mut groups: BTreeMap<String, (u32, u32, Value)> = BTreeMap::new();
    let mut periods = Vec::new();
    for s in table.slots.iter() {
        let i = &s.info;
        if i.kind != SlotKind::Registration || s.start_ms <= now || s.opens_ms > now {
            continue;
        }
        if !(hospital.is_none_or(|h| i.hospital_id == h)
            && dept.is_none_or(|d| i.department_id.as_deref() == Some(d))
            && doctor.is_none_or(|d| i.doctor_id.as_deref() == Some(d))
            && date.is_none_or(|d| i.date == d))
        {
            continue;
        }
        let (free, closed, capacity) = {
            let st = s.state.lock();
            (st.free_for(Priority::Referral), st.closed, st.capacity)
        };
        if closed {
            continue;
        }
        if level == "period" {
            periods.push(json!({
                "slot_id": i.slot_id, "hospital_id": i.hospital_id, "department_id": i.department_id, "doctor_id": i.doctor_id,
                "date": &*s.date_str, "period": i.period, "time_slot": &*s.time_slot, "time": i.start_time.format("%H:%M").to_string(),
                "remaining": free, "capacity": capacity, "status": if free > 0 { "available" } else { "full" },
            }));
            continue;
        }
        let key = match level {
            "institution" => i.hospital_id.clone(),
            "department" => i.department_id.clone().unwrap_or_default(),
            "doctor" => i.doctor_id.clone().unwrap_or_default(),
            _ => s.date_str.to_string(),
        };
        if key.is_empty() {
            continue;
        }
        let e = groups.entry(key).or_insert((0, 0, json!({"hospital_id": i.hospital_id, "department_id": i.department_id})));
        e.0 += free;
        e.1 += 1;
    }
    if level == "period" {
        return Ok(json!({"level": level, "items": periods}));
    }
    let cat = pool.catalog.data.read();
    let items: Vec<Value> = groups
        .into_iter()
        .map(|(k, (remaining, slots, first))| {
            let mut v = json!({"remaining": remaining, "slots": slots});
            match level {
                "institution" => {
                    v["hospital_id"] = k.clone().into();
                    if let Some(h) = cat.hospitals.get(&k) {
                        v["name"] = h.name.clone().into();
                    }
                }
                "department" => {
                    v["department_id"] = k.clone().into();
                    if let Some(n) = named(&cat, hospital.unwrap_or_default(), "departments", "department_id", &k) {
                        v["name"] = n;
                    }
                }
                "doctor" => {
                    v["doctor_id"] = k.clone().into();
                    v["department_id"] = first["department_id"].clone();
                    if let Some(n) = named(&cat, hospital.unwrap_or_default(), "doctors", "doctor_id", &k) {
                        v["name"] = n;
                    }
                }
                _ => v["date"] = k.into(),
            }
            v
        })
        .collect();
    Ok(json!({"level": level, "items": items}))
}

/// A name from the hospital's catalogue (`departments`, `doctors`), if published.
fn named(cat: &crate::catalog::CatalogData, hospital: &str, list: &str, _key: &str, id: &str) -> Option<Value> {
    let h = cat.hospitals.get(hospital)?;
    let name = match list {
        "departments" => h.department(id).map(|d| d.name.as_str()),
        _ => h.doctor(id).map(|d| d.name.as_str()),
    };
    name.filter(|n| !n.is_empty()).map(|n| Value::String(n.to_string()))
}

// ---------------------------------------------------------------- apply and cancel

/// `outpatient-referral-apply`: the community doctor applies for the slot the
/// drill-down found; the registration is made at once (priority class
/// `referral`, so the referral quota applies) and the referral owns it.
pub(super) fn apply(c: &Ctx) -> Result<Value> {
    let who = Who::of(c)?;
    who.must_be(Side::Community, c.command)?;
    let clinic = who.clinic_for_new(c)?;
    let patient_id = c.r.id("patient_id")?;
    let reason = req_text(c.r, "reason", 500)?;
    let record = fuse_record(c)?;
    let patient = patient_details(c)?;
    let applicant = text(c.r, "applicant_doctor_id", 64)?;
    let disease_code = text(c.r, "disease_code", 32)?;
    let hold = c.r.opt_bool("hold")?.unwrap_or(false);
    let slot = crate::pool::resolve_slot(c.pool, c.r, true)?;
    if slot.info.kind != SlotKind::Registration {
        return Err(Error::invalid("slot_id", "an outpatient referral books a registration slot"));
    }
    let reserve = Reserve {
        slot: slot.idx,
        patient_id: Id::new(patient_id.as_str()),
        clinic_id: Some(Id::new(clinic.as_str())),
        priority: Priority::Referral,
        hold,
        patient: patient.clone(),
        expected_date: None,
        reason: Some(reason.clone()),
        project_id: None,
        also: None,
    };
    let command = c.command;
    reserve_and_attach(c, reserve, &mut |pool, g, live, txn, now| {
        let live = live.ok_or_else(|| Error::internal("the new booking is not locked"))?;
        if !live.b.status.is_active() {
            return Err(Error::new(ErrorCode::ReferralSlotReleased));
        }
        let i = &live.slot.info;
        let id = Inner::take_id(&mut g.next_referral);
        let rf = Referral {
            patient_id: patient_id.clone(),
            patient: patient.clone(),
            clinic_id: clinic.clone(),
            hospital_id: i.hospital_id.clone(),
            department_id: i.department_id.clone(),
            doctor_id: i.doctor_id.clone(),
            applicant_doctor_id: applicant.clone(),
            reason: reason.clone(),
            disease_code: disease_code.clone(),
            record: record.clone(),
            booking_id: Some(live.b.id),
            ..Referral::applied(id, Kind::Outpatient, command, &clinic, now)
        };
        put_referral(pool, txn, &rf);
        event(
            pool,
            txn,
            "referral_applied",
            &rf.patient_id,
            &rf.clinic_id,
            Some(live.b.id),
            json!({"referral_id": id, "kind": "outpatient", "hospital_id": rf.hospital_id, "slot_id": i.slot_id, "date": &*live.slot.date_str, "time_slot": &*live.slot.time_slot, "visit_no": live.b.visit_no}),
        );
        let v = referral_view(pool, &rf, Some((&*live.b, live.slot)));
        g.referrals.insert(id, rf);
        Ok(v)
    })
}

/// `outpatient-referral-cancel`: the applicant withdraws; the registration
/// goes back to the pool in the same transaction.
pub(super) fn cancel(c: &Ctx) -> Result<Value> {
    let who = Who::of(c)?;
    who.must_be(Side::Community, c.command)?;
    let id = super::int_id(c.r, "referral_id")?;
    let reason = text(c.r, "reason", 500)?.unwrap_or_else(|| "cancelled by the referring institution".into());
    let command = c.command;
    let by = who.institution.clone();
    referral_step(c, &who, id, Kind::Outpatient, &mut |pool, _g, rf, live, txn, now| {
        rf.go("cancelled", command, by.as_deref(), Some(reason.clone()), now, live.as_deref().map(|l| &*l.b))?;
        if let Some(l) = live {
            if l.b.status.is_active() {
                pool.cancel_locked(l.slot, l.st, l.b, reason.clone().into(), now, txn)?;
            }
        }
        rf.cancel_reason = Some(reason.clone());
        event(
            pool,
            txn,
            "referral_cancelled",
            &rf.patient_id,
            &rf.clinic_id,
            rf.booking_id,
            json!({"referral_id": rf.referral_id, "kind": "outpatient", "reason": reason, "hospital_id": rf.hospital_id}),
        );
        Ok(())
    })
}

// ---------------------------------------------------------------- result return (R4)

/// `acceptance-info` (POST /api/acceptance-info): the hospital received the
/// referred patient; passed on to the community side.
pub(super) fn acceptance(c: &Ctx) -> Result<Value> {
    let who = Who::of(c)?;
    who.must_be(Side::Hospital, c.command)?;
    let id = super::int_id(c.r, "referral_id")?;
    let hospital_name = req_text(c.r, "hospital_name", 100)?;
    let doctor = req_text(c.r, "accept_doctor_id", 64)?;
    let at = time_field(c, "accept_time")?.unwrap_or_else(|| super::now_str(c.pool));
    let command = c.command;
    let by = who.institution.clone();
    let v = referral_step(c, &who, id, Kind::Outpatient, &mut |pool, _g, rf, live, txn, now| {
        rf.go("accepted", command, by.as_deref(), None, now, live.as_deref().map(|l| &*l.b))?;
        let acc = json!({"hospital_name": hospital_name, "accept_doctor_id": doctor, "accept_time": at});
        rf.acceptance = Some(acc.clone());
        event(pool, txn, "referral_accepted", &rf.patient_id, &rf.clinic_id, rf.booking_id, json!({"referral_id": rf.referral_id, "acceptance": acc}));
        Ok(())
    })?;
    Ok(json!({"message": "接诊信息已成功记录", "message_en": "acceptance recorded", "referral_id": id, "status": v["status"], "acceptance": v["acceptance"]}))
}

/// `treatment-results`: after the visit the hospital returns diagnosis,
/// prescription and advice (the source's treatment_results).
pub(super) fn results(c: &Ctx) -> Result<Value> {
    let who = Who::of(c)?;
    who.must_be(Side::Hospital, c.command)?;
    let id = super::int_id(c.r, "referral_id")?;
    let diagnosis = req_text(c.r, "diagnosis", 1000)?;
    let prescription = text(c.r, "prescription", 4000)?;
    let advice = text(c.r, "advice", 4000)?;
    let doctor = text(c.r, "doctor_id", 64)?;
    let at = time_field(c, "treatment_time")?.unwrap_or_else(|| super::now_str(c.pool));
    let command = c.command;
    let by = who.institution.clone();
    referral_step(c, &who, id, Kind::Outpatient, &mut |pool, _g, rf, live, txn, now| {
        rf.go("completed", command, by.as_deref(), None, now, live.as_deref().map(|l| &*l.b))?;
        let out = json!({"diagnosis": diagnosis, "prescription": prescription, "advice": advice, "doctor_id": doctor, "treatment_time": at});
        rf.outcome = Some(out.clone());
        event(pool, txn, "referral_outcome", &rf.patient_id, &rf.clinic_id, rf.booking_id, json!({"referral_id": rf.referral_id, "outcome": out}));
        Ok(())
    })
}

// ---------------------------------------------------------------- the queue rule 后两位

/// 后两位 in a hospital's live calling queue (the visit number a referral's
/// booking gets when it is made follows the same rule: `pool::visits`).
/// Where a referred patient joins the hospital's queue. `queue` is
/// the calling order, `serving` the index of the patient now being seen:
/// the referred patient is called two places after them (one patient in
/// between), or last if the queue is shorter. Returns the index to insert at.
pub fn queue_after_current(queue_len: usize, serving: Option<usize>) -> usize {
    match serving {
        Some(s) if s < queue_len => (s + 2).min(queue_len),
        // Nobody is being seen yet: the referred patient is called second.
        _ if queue_len == 0 => 0,
        _ => 1.min(queue_len),
    }
}

/// `referral-queue-position`: the hospital's queue with the referred patient
/// placed by the rule.
pub(super) fn queue_cmd(c: &Ctx) -> Result<Value> {
    let queue = c.r.array("queue")?;
    if queue.len() > 10_000 {
        return Err(Error::invalid("queue", "longer than 10000 entries"));
    }
    let ids: Vec<String> = queue
        .iter()
        .map(|v| match v {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            _ => Err(Error::invalid("queue", "entries must be ids (strings or numbers)")),
        })
        .collect::<Result<_>>()?;
    let patient = c.r.id("patient_id")?;
    if ids.contains(&patient) {
        return Err(Error::invalid("patient_id", "the patient is already in the queue"));
    }
    let serving = match (c.r.opt_id("now_serving")?, c.r.opt_u64("serving_index")?) {
        (Some(p), _) => Some(ids.iter().position(|x| *x == p).ok_or_else(|| Error::invalid("now_serving", "not in the queue"))?),
        (None, Some(i)) if usize::try_from(i).is_ok_and(|i| i < ids.len()) => Some(i as usize),
        (None, Some(_)) => return Err(Error::invalid("serving_index", "beyond the queue")),
        (None, None) => None,
    };
    let at = queue_after_current(ids.len(), serving);
    let mut out = ids;
    out.insert(at, patient);
    Ok(json!({"queue": out, "position": at + 1, "ahead": serving.map_or(at, |s| at.saturating_sub(s + 1))}))
}

// ---------------------------------------------------------------- the slip

/// `referral-slip`: the printable referral slip (text, SVG or PDF).
pub(super) fn slip(c: &Ctx) -> Result<Value> {
    let who = Who::of(c)?;
    let id = super::int_id(c.r, "referral_id")?;
    let format = crate::render::DocumentFormat::parse(c.r.opt_str("format")?.unwrap_or("text"))?;
    let rf = {
        let g = c.referral.inner.lock();
        g.referrals.get(&id).cloned().ok_or_else(|| Error::new(ErrorCode::ReferralNotFound))?
    };
    who.check(&rf.clinic_id, &rf.hospital_id)?;
    let v = referral_view(c.pool, &rf, None);
    let doc = super::query::slip_document(c.pool, c.referral, &rf, &v);
    let mut out = crate::render::document_answer(&doc, format, c.pool.cfg.pdf_font.as_deref())?;
    out.insert("referral_id".into(), id.into());
    out.insert("status".into(), v["status"].clone());
    Ok(Value::Object(out))
}
