//! R8: remote consultation (远程会诊): the community applies with a project
//! and the patient's record; the hospital approves (time and experts sent)
//! or rejects with a reason; every step is an event for the applicant.

use super::{fuse_record, page_of, paging, patient_details, put_consultation, req_text, text, time_field, Ctx, Inner, Side, Step, Who};
use crate::clock::{format_ms, Millis};
use crate::error::{Error, ErrorCode, Result};
use crate::identity::PatientInfo;
use crate::pool::Pool;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::machine::CONSULTATION;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Consultation {
    pub consultation_id: u64,
    pub status: String,
    pub clinic_id: String,
    pub hospital_id: String,
    pub patient_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<PatientInfo>,
    pub project: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department_id: Option<String>,
    pub purpose: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applicant_doctor_id: Option<String>,
    #[serde(default)]
    pub record: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_time: Option<String>,
    #[serde(default)]
    pub experts: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opinion: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
    pub created_ms: Millis,
    pub updated_ms: Millis,
    #[serde(default)]
    pub history: Vec<Step>,
}

impl Consultation {
    /// The institution whose principal approved it (the review step's), if
    /// it was approved: only its own hospital's approval opens the route of
    /// R1 (see `disease::decide`).
    pub(crate) fn approved_by(&self) -> Option<&str> {
        self.history.iter().rev().find(|s| s.to == "approved" && s.via == "consultation-review").and_then(|s| s.by.as_deref())
    }

    fn go(&mut self, to: &str, via: &str, by: Option<&str>, note: Option<String>, now: Millis) -> Result<()> {
        let from = self.status.clone();
        CONSULTATION.take(&mut self.status, &mut self.history, super::machine::Transition { from, to, via, by, note, now })?;
        self.updated_ms = now;
        Ok(())
    }
}

fn not_found() -> Error {
    Error::new(ErrorCode::ConsultationNotFound)
}

pub(crate) fn view_of(pool: &Pool, cs: &Consultation) -> Value {
    let tz = &pool.cfg.tz;
    let mut v = json!({
        "consultation_id": cs.consultation_id, "status": cs.status, "clinic_id": cs.clinic_id, "hospital_id": cs.hospital_id,
        "patient_id": cs.patient_id, "project": cs.project, "department_id": cs.department_id, "purpose": cs.purpose,
        "applicant_doctor_id": cs.applicant_doctor_id, "record": cs.record, "review": cs.review,
        "scheduled_time": cs.scheduled_time, "experts": cs.experts, "opinion": cs.opinion,
        "created_at": format_ms(cs.created_ms, tz), "updated_at": format_ms(cs.updated_ms, tz),
        "history": cs.history.iter().map(|s| json!({"at": format_ms(s.at_ms, tz), "from": s.from, "to": s.to, "via": s.via, "note": s.note})).collect::<Vec<_>>(),
    });
    if let Some(p) = &cs.patient {
        v["patient"] = p.masked();
    }
    if let Some(r) = &cs.cancel_reason {
        v["cancel_reason"] = r.clone().into();
    }
    v
}

fn emit(pool: &Pool, txn: &mut crate::pool::Txn, kind: &'static str, cs: &Consultation, extra: Value) {
    let mut d = json!({"consultation_id": cs.consultation_id, "hospital_id": cs.hospital_id, "status": cs.status});
    if let (Some(m), Value::Object(x)) = (d.as_object_mut(), extra) {
        m.extend(x);
    }
    super::event(pool, txn, kind, &cs.patient_id, &cs.clinic_id, None, d);
}

/// `consultation-apply`.
pub(super) fn apply(c: &Ctx) -> Result<Value> {
    let (clinic, hospital) = super::community_application(c)?;
    let patient_id = c.r.id("patient_id")?;
    let project = req_text(c.r, "project", 100)?;
    let purpose = req_text(c.r, "purpose", 1000)?;
    let dept = text(c.r, "department_id", 64)?;
    let applicant = text(c.r, "applicant_doctor_id", 64)?;
    let record = fuse_record(c)?;
    let patient = patient_details(c)?;
    let command = c.command;
    super::step(c, None, &mut |pool, g, _, txn, now| {
        let id = Inner::take_id(&mut g.next_consultation);
        let cs = Consultation {
            consultation_id: id,
            status: "applied".into(),
            clinic_id: clinic.clone(),
            hospital_id: hospital.clone(),
            patient_id: patient_id.clone(),
            patient: patient.clone(),
            project: project.clone(),
            department_id: dept.clone(),
            purpose: purpose.clone(),
            applicant_doctor_id: applicant.clone(),
            record: record.clone(),
            review: None,
            scheduled_time: None,
            experts: Vec::new(),
            opinion: None,
            cancel_reason: None,
            created_ms: now,
            updated_ms: now,
            history: vec![Step { at_ms: now, from: String::new(), to: "applied".into(), via: command.into(), by: Some(clinic.clone()), note: None }],
        };
        put_consultation(pool, txn, &cs);
        emit(pool, txn, "consultation_applied", &cs, json!({"project": cs.project}));
        let v = view_of(pool, &cs);
        g.consultations.insert(id, cs);
        Ok(v)
    })
}

/// A step on one consultation: permission (S1), then `f` on a copy stored on success.
fn cs_step(c: &Ctx, who: &Who, f: &mut dyn FnMut(&Pool, &mut Consultation, &mut crate::pool::Txn, Millis) -> Result<()>) -> Result<Value> {
    let id = super::int_id(c.r, "consultation_id")?;
    {
        let g = c.referral.inner.lock();
        let cs = g.consultations.get(&id).ok_or_else(not_found)?;
        who.check(&cs.clinic_id, &cs.hospital_id)?;
    }
    super::step(c, None, &mut |pool, g, _, txn, now| {
        let mut cs = g.consultations.get(&id).cloned().ok_or_else(not_found)?;
        f(pool, &mut cs, txn, now)?;
        put_consultation(pool, txn, &cs);
        let v = view_of(pool, &cs);
        g.consultations.insert(id, cs);
        Ok(v)
    })
}

/// `consultation-review`: approve (with time and experts) or reject (with reason).
pub(super) fn review(c: &Ctx) -> Result<Value> {
    let who = Who::of(c)?;
    who.must_be(Side::Hospital, c.command)?;
    // The review is the invited hospital's own decision (上级医院审核): the
    // platform takes it only on that hospital's behalf, naming it.
    if who.side != Side::Hospital {
        return Err(super::forbidden(
            "a consultation is reviewed by the hospital it was sent to; the platform names that hospital in `institution_id`",
            "会诊申请由受邀医院审核；平台代办时须在 `institution_id` 中指明该医院",
        ));
    }
    let decision = c.r.str("decision")?;
    let approve = match decision {
        "approve" | "approved" => true,
        "reject" | "rejected" => false,
        _ => return Err(Error::invalid("decision", "expected approve or reject")),
    };
    let reason = text(c.r, "reason", 1000)?;
    let reviewer = text(c.r, "reviewer", 64)?;
    let (time, experts) = if approve {
        let t = time_field(c, "scheduled_time")?.ok_or_else(|| Error::missing("scheduled_time"))?;
        let list = c.r.array("experts")?;
        if list.is_empty() || list.len() > 20 {
            return Err(Error::invalid("experts", "one to 20 experts"));
        }
        let mut ex = Vec::new();
        for v in list {
            let e = c.r.sub(v, "experts[]")?;
            let id = req_text(&e, "expert_id", 64)?;
            ex.push(json!({"expert_id": id, "name": text(&e, "name", 64)?, "title": text(&e, "title", 64)?, "department_id": text(&e, "department_id", 64)?}));
        }
        (Some(t), ex)
    } else {
        if reason.is_none() {
            return Err(Error::missing("reason"));
        }
        (None, Vec::new())
    };
    let command = c.command;
    let by = who.institution.clone();
    cs_step(c, &who, &mut |pool, cs, txn, now| {
        let to = if approve { "approved" } else { "rejected" };
        cs.go(to, command, by.as_deref(), reason.clone(), now)?;
        cs.review = Some(json!({"decision": to, "reason": reason, "reviewer": reviewer, "by": by, "at": format_ms(now, &pool.cfg.tz)}));
        if approve {
            cs.scheduled_time = time.clone();
            cs.experts = experts.clone();
            emit(pool, txn, "consultation_approved", cs, json!({"scheduled_time": time, "experts": experts}));
        } else {
            emit(pool, txn, "consultation_rejected", cs, json!({"reason": reason}));
        }
        Ok(())
    })
}

/// `consultation-cancel`: either side withdraws before it is held.
pub(super) fn cancel(c: &Ctx) -> Result<Value> {
    let who = Who::of(c)?;
    let reason = req_text(c.r, "reason", 500)?;
    let command = c.command;
    let by = who.institution.clone();
    cs_step(c, &who, &mut |pool, cs, txn, now| {
        cs.go("cancelled", command, by.as_deref(), Some(reason.clone()), now)?;
        cs.cancel_reason = Some(reason.clone());
        emit(pool, txn, "consultation_cancelled", cs, json!({"reason": reason}));
        Ok(())
    })
}

/// `consultation-complete`: the experts' opinion after the consultation.
pub(super) fn complete(c: &Ctx) -> Result<Value> {
    let who = Who::of(c)?;
    who.must_be(Side::Hospital, c.command)?;
    let opinion = req_text(c.r, "opinion", 10_000)?;
    let advice = text(c.r, "advice", 4000)?;
    let command = c.command;
    let by = who.institution.clone();
    cs_step(c, &who, &mut |pool, cs, txn, now| {
        cs.go("completed", command, by.as_deref(), None, now)?;
        let op = json!({"opinion": opinion, "advice": advice, "at": format_ms(now, &pool.cfg.tz)});
        cs.opinion = Some(op.clone());
        emit(pool, txn, "consultation_completed", cs, json!({"opinion": op}));
        Ok(())
    })
}

pub(super) fn view(c: &Ctx) -> Result<Value> {
    let who = Who::of(c)?;
    let id = super::int_id(c.r, "consultation_id")?;
    let g = c.referral.inner.lock();
    let cs = g.consultations.get(&id).ok_or_else(not_found)?;
    who.check(&cs.clinic_id, &cs.hospital_id)?;
    Ok(view_of(c.pool, cs))
}

/// `consultation-query`: by patient, institution, project and status; paged.
pub(super) fn query(c: &Ctx) -> Result<Value> {
    let who = Who::of(c)?;
    let patient = c.r.opt_id("patient_id")?;
    let status = c.r.opt_str("status")?;
    let project = c.r.opt_str("project")?;
    let clinic = c.r.opt_str("clinic_id")?;
    let hospital = c.r.opt_str("hospital_id")?;
    let (page, size) = paging(c.r)?;
    let g = c.referral.inner.lock();
    let items: Vec<Value> = g
        .consultations
        .values()
        .filter(|cs| {
            who.may_see(&cs.clinic_id, &cs.hospital_id)
                && patient.as_deref().is_none_or(|p| cs.patient_id == p)
                && status.is_none_or(|s| cs.status == s)
                && project.is_none_or(|p| cs.project.contains(p))
                && clinic.is_none_or(|x| cs.clinic_id == x)
                && hospital.is_none_or(|x| cs.hospital_id == x)
        })
        .map(|cs| view_of(c.pool, cs))
        .collect();
    Ok(page_of(items, page, size))
}
