//! C1: the register of the region's chronic patients: each registration at
//! one community institution, with its ICD-10 diagnoses, status (a machine
//! as data), responsible community doctor and next follow-up (the earliest
//! open plan, derived, never stale).

use super::disease;
use super::follow::{self, Plan};
use super::machine::{Step, PLAN, REGISTER};
use super::{event, int_id, page_of, put_patient, put_plan, text, Ctx, Inner, Scope};
use crate::clock::{format_ms, Millis};
use crate::error::{Error, ErrorCode, Result};
use crate::identity::PatientInfo;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Diagnosis {
    pub icd10: String,
    /// The disease key of the table (`hypertension`, …).
    pub disease: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Registration {
    pub chronic_id: u64,
    /// The community institution managing the patient.
    pub institution_id: String,
    pub patient_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<PatientInfo>,
    /// The responsible community doctor.
    pub doctor_id: String,
    pub diagnoses: Vec<Diagnosis>,
    pub status: String,
    /// The patient's own periodic interval (days), else the diseases' shortest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_days: Option<u32>,
    pub enrolled_ms: Millis,
    pub updated_ms: Millis,
    #[serde(default)]
    pub history: Vec<Step>,
}

impl Registration {
    /// Days between periodic follow-ups.
    pub(crate) fn interval(&self, s: &super::Settings) -> u32 {
        self.interval_days.unwrap_or_else(|| self.diagnoses.iter().map(|d| s.interval(&d.disease)).min().unwrap_or(90))
    }
    pub(crate) fn codes(&self) -> Vec<String> {
        self.diagnoses.iter().map(|d| d.icd10.clone()).collect()
    }
}

/// `chronic-catalog`: the diseases, measurements and machines as data.
pub(super) fn catalog(c: &Ctx) -> Result<Value> {
    let mut v = disease::describe(&c.chronic.settings.interval_days);
    v["machines"] = super::machine::describe();
    v["plan_kinds"] = follow::describe_kinds(&c.chronic.settings);
    Ok(v)
}

/// The request's `icd10`: one code or a list of up to 10, each known; no repeats.
fn diagnoses(c: &Ctx) -> Result<Option<Vec<Diagnosis>>> {
    let codes: Vec<&str> = match c.r.get("icd10") {
        None => return Ok(None),
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) if !a.is_empty() && a.len() <= 10 => a
            .iter()
            .map(|v| v.as_str().ok_or_else(|| Error::invalid_zh("icd10", "must be a code or a list of codes", "应为一个编码或编码列表")))
            .collect::<Result<_>>()?,
        Some(_) => return Err(Error::invalid_zh("icd10", "must be a code or a list of 1 to 10 codes", "应为一个编码或 1 到 10 个编码的列表")),
    };
    let mut out: Vec<Diagnosis> = Vec::new();
    for code in codes {
        let (icd10, d) = disease::known("icd10", code)?;
        if !out.iter().any(|x| x.icd10 == icd10) {
            out.push(Diagnosis { icd10, disease: d.key.into() });
        }
    }
    Ok(Some(out))
}

fn interval_field(c: &Ctx) -> Result<Option<u32>> {
    Ok(c.r.opt_u64_in("interval_days", 1, 366)?.map(|n| n as u32))
}

/// The first due instant of a periodic plan: `next_follow_up` (a date, not
/// before today), else `interval` days from today; at the day's start.
fn next_due(c: &Ctx, interval: u32, now: Millis) -> Result<Millis> {
    let tz = &c.pool.cfg.tz;
    let today = super::local_date(now, tz);
    match c.r.opt_date("next_follow_up")? {
        Some(d) if d < today => Err(Error::invalid_zh("next_follow_up", "must not be before today", "不能早于今天")),
        Some(d) => Ok(super::day_start(d, tz)),
        None => Ok(super::day_start(today, tz) + i64::from(interval) * super::DAY_MS),
    }
}

/// `chronic-enrol`: registers a patient at the acting community institution
/// and plans the first periodic follow-up.
pub(super) fn enrol(c: &Ctx) -> Result<Value> {
    let scope = Scope::of(c)?;
    let institution = scope.acting_community(c)?;
    let patient_id = c.r.id("patient_id")?;
    let doctor = text(c.r, "doctor_id", 64)?.ok_or_else(|| Error::missing("doctor_id"))?;
    let diagnoses = diagnoses(c)?.ok_or_else(|| Error::missing("icd10"))?;
    let patient = crate::request::patient_of(c.r)?;
    let interval_days = interval_field(c)?;
    let interval = interval_days.unwrap_or_else(|| diagnoses.iter().map(|d| c.chronic.settings.interval(&d.disease)).min().unwrap_or(90));
    let due = next_due(c, interval, c.pool.clock.now_ms())?;
    let command = c.command;
    let pool = c.pool;
    pool.idempotent(c.r.request_id()?, command, c.r.fingerprint(command), |claim| {
        pool.locked_txn(claim, &c.chronic.inner, |g, txn, now| {
            if g.open.contains_key(&(institution.clone(), patient_id.clone())) {
                return Err(Error::new(ErrorCode::ChronicAlreadyEnrolled));
            }
            let id = Inner::take_id(&mut g.next_patient);
            let reg = Registration {
                chronic_id: id,
                institution_id: institution.clone(),
                patient_id: patient_id.clone(),
                patient: patient.clone(),
                doctor_id: doctor.clone(),
                diagnoses: diagnoses.clone(),
                status: REGISTER.initial.into(),
                interval_days,
                enrolled_ms: now,
                updated_ms: now,
                history: vec![Step {
                    at_ms: now,
                    from: String::new(),
                    to: REGISTER.initial.into(),
                    via: command.into(),
                    by: Some(institution.clone()),
                    note: None,
                }],
            };
            let plan = follow::periodic(g, &reg, due, command, now);
            put_patient(pool, txn, &reg);
            put_plan(pool, txn, &plan);
            event(
                pool,
                txn,
                "chronic_enrolled",
                &reg.patient_id,
                &reg.institution_id,
                json!({"chronic_id": id, "institution_id": institution, "diseases": reg.diagnoses.iter().map(|d| &d.disease).collect::<Vec<_>>()}),
            );
            follow::planned_event(pool, txn, &plan);
            g.store_patient(reg);
            g.store_plan(plan);
            Ok(view_of(c, g, id, true))
        })
    })
}

/// `chronic-update`: status (a step of the machine, with `reason`), the
/// responsible doctor, the diagnoses, the interval, the next follow-up date.
/// A registration that ends (transferred, deceased) cancels its open plans;
/// one back in management gets a periodic plan if it has none.
pub(super) fn update(c: &Ctx) -> Result<Value> {
    let scope = Scope::of(c)?;
    let institution = scope.acting_community(c)?;
    let id = int_id(c.r, "chronic_id")?;
    let status = c.r.opt_str("status")?.map(str::to_string);
    // Checked against the table first: a refusal then names only known states, never what was sent.
    if status.as_deref().is_some_and(|s| !REGISTER.states.contains(&s)) {
        return Err(Error::invalid_zh("status", "not a status of the register (see `chronic-catalog`)", "不是慢病登记的状态（见 `chronic-catalog`）"));
    }
    let reason = text(c.r, "reason", 500)?;
    let doctor = text(c.r, "doctor_id", 64)?;
    let diagnoses = diagnoses(c)?;
    let interval_days = interval_field(c)?;
    let redate = c.r.get("next_follow_up").is_some();
    if status.is_none() && doctor.is_none() && diagnoses.is_none() && interval_days.is_none() && !redate {
        return Err(Error::invalid_zh("(request)", "names nothing to change", "没有指明要修改的内容"));
    }
    let command = c.command;
    let pool = c.pool;
    pool.idempotent(c.r.request_id()?, command, c.r.fingerprint(command), |claim| {
        pool.locked_txn(claim, &c.chronic.inner, |g, txn, now| {
            let mut reg =
                g.patients.get(&id).filter(|r| r.institution_id == institution).cloned().ok_or_else(|| Error::new(ErrorCode::ChronicPatientNotFound))?;
            if !REGISTER.is_open(&reg.status) {
                return Err(REGISTER
                    .check(&reg.status, status.as_deref().unwrap_or(&reg.status), command)
                    .err()
                    .unwrap_or_else(|| Error::new(ErrorCode::ChronicInvalidTransition)));
            }
            if let Some(s) = &status {
                REGISTER.step(&mut reg.status, &mut reg.history, s, command, Some(&institution), reason.clone(), now)?;
            }
            if let Some(d) = &doctor {
                reg.doctor_id = d.clone();
            }
            if let Some(d) = &diagnoses {
                reg.diagnoses = d.clone();
            }
            if interval_days.is_some() {
                reg.interval_days = interval_days;
            }
            reg.updated_ms = now;
            let open: Vec<Plan> =
                g.plans.values().filter(|p| p.institution_id == institution && p.patient_id == reg.patient_id && PLAN.is_open(&p.status)).cloned().collect();
            let mut changed = Vec::new();
            if !REGISTER.is_open(&reg.status) {
                for mut p in open {
                    PLAN.step(&mut p.status, &mut p.history, "cancelled", command, Some(&institution), Some(format!("registration {}", reg.status)), now)?;
                    p.updated_ms = now;
                    changed.push(p);
                }
            } else {
                let due = if redate || status.as_deref() == Some("in_management") { Some(next_due(c, reg.interval(&c.chronic.settings), now)?) } else { None };
                match (open.iter().find(|p| p.kind == follow::PERIODIC), due) {
                    (Some(p), Some(due)) if p.status == "planned" => {
                        let mut p = p.clone();
                        p.due_ms = due;
                        p.updated_ms = now;
                        p.history.push(Step {
                            at_ms: now,
                            from: p.status.clone(),
                            to: p.status.clone(),
                            via: command.into(),
                            by: Some(institution.clone()),
                            note: Some("re-dated".into()),
                        });
                        changed.push(p);
                    }
                    (None, Some(due)) => changed.push(follow::periodic(g, &reg, due, command, now)),
                    _ => {}
                }
            }
            put_patient(pool, txn, &reg);
            event(
                pool,
                txn,
                "chronic_updated",
                &reg.patient_id,
                &reg.institution_id,
                json!({"chronic_id": id, "institution_id": institution, "status": reg.status}),
            );
            for p in &changed {
                put_plan(pool, txn, p);
                if p.status == "cancelled" {
                    follow::closed_event(pool, txn, p);
                } else {
                    follow::planned_event(pool, txn, p);
                }
            }
            g.store_patient(reg);
            for p in changed {
                g.store_plan(p);
            }
            Ok(view_of(c, g, id, true))
        })
    })
}

/// A registration as shown: the next follow-up derived from its open plans;
/// with `plans`, the patient's plans at the institution too.
pub(super) fn view_of(c: &Ctx, g: &Inner, id: u64, plans: bool) -> Value {
    let Some(r) = g.patients.get(&id) else { return Value::Null };
    let tz = &c.pool.cfg.tz;
    let mine: Vec<&Plan> = g.plans.values().filter(|p| p.institution_id == r.institution_id && p.patient_id == r.patient_id).collect();
    let next = mine.iter().filter(|p| PLAN.is_open(&p.status)).map(|p| p.due_ms).min();
    let mut v = json!({
        "chronic_id": r.chronic_id,
        "institution_id": r.institution_id,
        "patient_id": r.patient_id,
        "doctor_id": r.doctor_id,
        "diagnoses": r.diagnoses.iter().map(|d| {
            let name_zh = disease::by_key(&d.disease).map(|x| x.name_zh);
            json!({"icd10": d.icd10, "disease": d.disease, "name_zh": name_zh})
        }).collect::<Vec<_>>(),
        "status": r.status,
        "interval_days": r.interval(&c.chronic.settings),
        "next_follow_up": next.map(|ms| super::local_date(ms, tz).to_string()),
        "open_plans": mine.iter().filter(|p| PLAN.is_open(&p.status)).count(),
        "enrolled_at": format_ms(r.enrolled_ms, tz),
        "updated_at": format_ms(r.updated_ms, tz),
        "history": r.history.iter().map(|s| json!({"at": format_ms(s.at_ms, tz), "from": s.from, "to": s.to, "via": s.via, "by": s.by, "note": s.note})).collect::<Vec<_>>(),
    });
    if let Some(p) = &r.patient {
        v["patient"] = p.masked();
    }
    if plans {
        v["plans"] = mine.iter().map(|p| follow::plan_view(c, p)).collect();
    }
    v
}

/// `chronic-query`: the caller's registrations by status, disease, code,
/// doctor, patient, or next follow-up on or before a date.
pub(super) fn query(c: &Ctx) -> Result<Value> {
    let scope = Scope::of(c)?;
    if matches!(scope, Scope::Hospital(_)) {
        return Err(super::forbidden());
    }
    let status = c.r.opt_str("status")?;
    if status.is_some_and(|s| !REGISTER.states.contains(&s)) {
        return Err(Error::invalid_zh("status", "not a status of the register (see `chronic-catalog`)", "不是慢病登记的状态（见 `chronic-catalog`）"));
    }
    let disease_key = c.r.opt_str("disease")?;
    if disease_key.is_some_and(|d| disease::by_key(d).is_none()) {
        return Err(Error::invalid_zh("disease", "not a disease of the register (see `chronic-catalog`)", "不是慢病登记的病种（见 `chronic-catalog`）"));
    }
    let code = c.r.opt_str("icd10")?.map(str::to_ascii_uppercase);
    let doctor = c.r.opt_str("doctor_id")?;
    let patient = c.r.opt_id("patient_id")?;
    let before = c.r.opt_date("follow_up_before")?;
    let filter_inst = c.r.opt_str("institution_id")?;
    let g = c.chronic.inner.lock();
    let mut items = Vec::new();
    for r in g.patients.values() {
        if !scope.sees(&r.institution_id, None) || filter_inst.is_some_and(|i| i != r.institution_id) {
            continue;
        }
        if status.is_some_and(|s| s != r.status)
            || disease_key.is_some_and(|d| !r.diagnoses.iter().any(|x| x.disease == d))
            || code.as_deref().is_some_and(|k| !r.diagnoses.iter().any(|x| x.icd10.starts_with(k)))
            || doctor.is_some_and(|d| d != r.doctor_id)
            || patient.as_deref().is_some_and(|p| p != r.patient_id)
        {
            continue;
        }
        let v = view_of(c, &g, r.chronic_id, false);
        if let Some(b) = before {
            let next = v["next_follow_up"].as_str().and_then(crate::request::parse_date);
            if next.is_none_or(|n| n > b) {
                continue;
            }
        }
        items.push(v);
    }
    page_of(c.r, items)
}

/// `chronic-view`: one registration with the patient's plans.
pub(super) fn view(c: &Ctx) -> Result<Value> {
    let scope = Scope::of(c)?;
    let id = int_id(c.r, "chronic_id")?;
    let g = c.chronic.inner.lock();
    let r = g.patients.get(&id).ok_or_else(|| Error::new(ErrorCode::ChronicPatientNotFound))?;
    if matches!(scope, Scope::Hospital(_)) || !scope.sees(&r.institution_id, None) {
        return Err(Error::new(ErrorCode::ChronicPatientNotFound));
    }
    let mut v = view_of(c, &g, id, true);
    v["education_delivered"] = g
        .deliveries
        .values()
        .filter(|d| d.institution_id == r.institution_id && d.patient_id == r.patient_id)
        .map(|d| super::education::delivery_view(c, d))
        .collect();
    Ok(v)
}
