//! `assistant-submit`: a filled quick-menu form, run as the command that
//! does the work (through the engine's dispatch, so its rules are that
//! command's), answered with the command's result and a notice.

use super::{diagnoses, hospital_of, pass, patient, reason_of, record, Menu, Parts};
use crate::error::{Error, Result};
use crate::model::SlotKind;
use crate::request::Req;
use serde_json::{json, Map, Value};

/// The fields that locate a slot, passed as sent (`pool::resolve_slot` reads them).
const SLOT_FIELDS: &[&str] = &["slot_id", "date", "department_id", "doctor_id", "period", "time_slot", "time", "device_id", "project_id"];

pub(super) fn submit(p: &Parts, r: &Req) -> Result<Value> {
    p.d.pool.check_open()?;
    let menu = Menu::of(r)?;
    let patient_id = r.id("patient_id")?;
    // Checked here so a bad record is refused before any command runs (each command checks it again).
    patient(r)?;
    let rec = record(r)?;
    let mut body = Map::new();
    body.insert("patient_id".into(), patient_id.into());
    pass(r, &mut body, &["patient"]);
    if let Some(id) = r.request_id()? {
        // One id per submission, in the caller's own space: a retry of the
        // same form answers the command's first answer and does nothing more.
        let h = crate::request::fingerprint(&[menu.as_str().as_bytes(), id.as_bytes()]);
        body.insert("request_id".into(), format!("assistant-{}-{h:016x}", menu.as_str()).into());
    }
    let own = r.who.institution_id.clone();
    let command = match menu {
        Menu::Registration => registration(p, r, &rec, own, &mut body)?,
        Menu::Bed => bed(p, r, &mut body)?,
        Menu::Exam => exam(p, r, &rec, own, &mut body)?,
        Menu::Lab => lab(r, &rec, own, &mut body)?,
        Menu::Consultation => consultation(p, r, &rec, own, &mut body)?,
    };
    let result = p.call(r, command, body)?;
    let notice = super::history::notice(p, menu, command, &result);
    Ok(json!({"menu": menu.as_str(), "title": menu.title(), "command": command, "result": result, "notice": notice}))
}

/// The slot a form names must be of the menu's kind (else `INVALID_FIELD`).
fn slot_kind(p: &Parts, r: &Req, kind: SlotKind, what: (&str, &str)) -> Result<()> {
    if let Some(id) = r.opt_str("slot_id")? {
        let s = p.d.pool.slot_by_id(id)?;
        if s.info.kind != kind {
            return Err(Error::invalid_zh("slot_id", &format!("is not {}", what.0), &format!("不是{}", what.1)));
        }
    }
    Ok(())
}

/// The record for a case (`record`, with `diagnosis` from the first of
/// `diagnoses` when it names none) and the EMR, as sent.
fn clinical(r: &Req, rec: &Map<String, Value>, body: &mut Map<String, Value>) {
    if !rec.is_empty() {
        body.insert("record".into(), Value::Object(rec.clone()));
    }
    pass(r, body, &["emr"]);
    if !rec.contains_key("diagnosis") && r.get("diagnosis").is_none() {
        if let Some(d) = diagnoses(rec).first() {
            body.insert("diagnosis".into(), d["name"].clone());
            if d["code"].is_string() && !rec.contains_key("diagnosis_code") {
                body.insert("diagnosis_code".into(), d["code"].clone());
            }
        }
    }
}

/// 预约挂号: `book-slot` (an expert's registration), or with `referral: true`
/// `outpatient-referral-apply` (the registration made as an up-referral,
/// with its reason and record; 后两位 applies).
fn registration(p: &Parts, r: &Req, rec: &Map<String, Value>, own: Option<String>, body: &mut Map<String, Value>) -> Result<&'static str> {
    slot_kind(p, r, SlotKind::Registration, ("a registration slot", "挂号号源"))?;
    if r.opt_str("slot_id")?.is_none() {
        // Located by doctor/department, date and period or window: the hospital defaults.
        if let Some(h) = hospital_of(p, r)? {
            body.insert("hospital_id".into(), h.into());
        }
        if r.opt_str("doctor_id")?.is_none() && r.opt_str("department_id")?.is_none() {
            return Err(Error::missing("slot_id"));
        }
    }
    pass(r, body, SLOT_FIELDS);
    if r.opt_bool("referral")?.unwrap_or(false) {
        let (text, _, _) = reason_of(r)?.ok_or_else(|| Error::missing("reason_code"))?;
        if let Some(i) = own {
            body.insert("institution_id".into(), i.into());
        }
        body.insert("reason".into(), text.into());
        clinical(r, rec, body);
        pass(r, body, &["applicant_doctor_id", "disease_code", "hold"]);
        return Ok("outpatient-referral-apply");
    }
    pass(r, body, &["priority"]);
    Ok("book-slot")
}

/// 床位预约: `bed-reserve` with the coded transfer reason (its priority
/// class unless `priority` is given), for the day asked (`date`, default today).
fn bed(p: &Parts, r: &Req, body: &mut Map<String, Value>) -> Result<&'static str> {
    slot_kind(p, r, SlotKind::Bed, ("a bed", "床位"))?;
    let (text, _, priority) = reason_of(r)?.ok_or_else(|| Error::missing("reason_code"))?;
    if r.opt_str("slot_id")?.is_none() {
        if let Some(h) = hospital_of(p, r)? {
            body.insert("hospital_id".into(), h.into());
        }
    }
    pass(r, body, &["slot_id", "department_id", "ward_id", "bed_type", "bed_number", "doctor_id", "date", "expected_date"]);
    body.insert("reason".into(), text.into());
    body.insert("priority".into(), r.opt_str("priority")?.unwrap_or(priority).into());
    Ok("bed-reserve")
}

/// 检查预约: a chosen time (`slot_id`, or device, date and window) is booked
/// with `book-slot` for the project; without one, `exam-apply` sends the
/// application (items with method and body part) for the hospital to arrange.
fn exam(p: &Parts, r: &Req, rec: &Map<String, Value>, own: Option<String>, body: &mut Map<String, Value>) -> Result<&'static str> {
    slot_kind(p, r, SlotKind::Exam, ("an exam slot", "检查号源"))?;
    let hospital = hospital_of(p, r)?;
    if r.opt_str("slot_id")?.is_some() || (r.opt_str("device_id")?.is_some() && r.opt_str("time_slot")?.is_some()) {
        let project = r.str("project_id")?;
        let cat = p.d.pool.catalog.data.read();
        let pr = cat.projects.get(project).ok_or_else(|| Error::new(crate::error::ErrorCode::ProjectNotFound))?;
        if hospital.is_some() && pr.hospital_id != hospital {
            return Err(Error::invalid_zh("project_id", "is not offered by the hospital of the form", "不是所选医院的检查项目"));
        }
        drop(cat);
        if r.opt_str("slot_id")?.is_none() {
            if let Some(h) = hospital {
                body.insert("hospital_id".into(), h.into());
            }
        }
        pass(r, body, SLOT_FIELDS);
        pass(r, body, &["priority"]);
        return Ok("book-slot");
    }
    let items = match r.opt_array("items")? {
        Some(list) => Value::Array(list.clone()),
        None => {
            let project = r.opt_str("project_id")?.ok_or_else(|| Error::missing("items"))?;
            let mut it = Map::new();
            it.insert("project_id".into(), project.into());
            pass(r, &mut it, &["method", "body_part"]);
            Value::Array(vec![Value::Object(it)])
        }
    };
    if let Some(i) = own {
        body.insert("institution_id".into(), i.into());
    }
    if let Some(h) = hospital {
        body.insert("hospital_id".into(), h.into());
    }
    body.insert("items".into(), items);
    clinical(r, rec, body);
    pass(r, body, &["ordering_doctor_id"]);
    Ok("exam-apply")
}

/// 委托检验: `lab-order-submit` with the items and panels chosen; the
/// diagnosis defaults to the record's first.
fn lab(r: &Req, rec: &Map<String, Value>, own: Option<String>, body: &mut Map<String, Value>) -> Result<&'static str> {
    if let Some(i) = own {
        body.insert("institution_id".into(), i.into());
    }
    pass(r, body, &["lab_id", "items", "panels", "doctor_id", "doctor_name", "department", "order_type", "collect_before_payment", "diagnosis"]);
    if !body.contains_key("diagnosis") {
        if let Some(d) = diagnoses(rec).first() {
            body.insert("diagnosis".into(), d["name"].clone());
        }
    }
    Ok("lab-order-submit")
}

/// 远程会诊: `consultation-apply` with the project, purpose and record; the
/// experts the doctor would like (`expert_ids`, from the form's experts)
/// travel in the record as `requested_experts`.
fn consultation(p: &Parts, r: &Req, rec: &Map<String, Value>, own: Option<String>, body: &mut Map<String, Value>) -> Result<&'static str> {
    let hospital = hospital_of(p, r)?.ok_or_else(|| Error::missing("hospital_id"))?;
    let mut rec = rec.clone();
    if let Some(list) = r.opt_array("expert_ids")? {
        if list.len() > 10 {
            return Err(Error::invalid_zh("expert_ids", "at most 10 experts", "最多 10 位专家"));
        }
        let cat = p.d.pool.catalog.data.read();
        let h = cat.hospitals.get(&hospital);
        let mut experts = Vec::new();
        for v in list {
            let id = v.as_str().ok_or_else(|| Error::invalid_zh("expert_ids", "must be a list of doctor ids", "必须为医生编号列表"))?;
            let d = h
                .and_then(|h| h.doctor(id))
                .ok_or_else(|| Error::invalid_zh("expert_ids", "names a doctor the hospital's catalogue does not list", "含有上级医院目录中没有的医生"))?;
            experts.push(json!({"doctor_id": d.doctor_id, "name": d.name, "title": d.title}));
        }
        rec.insert("requested_experts".into(), Value::Array(experts));
    }
    if let Some(i) = own {
        body.insert("institution_id".into(), i.into());
    }
    body.insert("hospital_id".into(), hospital.into());
    clinical(r, &rec, body);
    pass(r, body, &["project", "purpose", "department_id", "applicant_doctor_id"]);
    Ok("consultation-apply")
}
