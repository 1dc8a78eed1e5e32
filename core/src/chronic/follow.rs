//! C2: follow-up plans (随访计划). Made by the cases' steps ([`on_case`], in
//! the step's own transaction), periodically for registered chronic
//! patients, reminded once when due by the due work ([`remind_due`], event
//! `follow_up_due`), and closed with a recorded outcome (measurements,
//! feedback, satisfaction 1–5) or cancelled.

use super::machine::{Step, CASE_CANCELLED, DUE_WORK, PLAN};
use super::register::Registration;
use super::{disease, event, int_id, page_of, put_plan, text, ChronicState, Ctx, Inner, Scope, Settings, DAY_MS};
use crate::clock::{format_ms, Millis};
use crate::error::{Error, ErrorCode, Result};
use crate::pool::{Pool, Txn};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub(crate) const PERIODIC: &str = "periodic";
const EXAM_BEFORE: &str = "exam_before";
const EXAM_AFTER: &str = "exam_after";
const AFTER_DOWN: &str = "after_down_referral";
const AFTER_DISCHARGE: &str = "after_discharge";
const AFTER_REFERRAL: &str = "after_referral";

/// Every kind of plan: what makes it and when it falls due (`chronic-catalog`).
const KINDS: &[(&str, &str, &str, &str)] = &[
    (PERIODIC, "chronic-enrol, then each follow-up-record of the previous one", "every interval_days of the patient's diseases", "interval_days"),
    (EXAM_BEFORE, "exam-payment (the exam is booked)", "exam_before_hours before the exam starts", "exam_before_hours"),
    (
        EXAM_AFTER,
        "exam-payment (the exam is booked)",
        "exam_after_days after the exam, or after its report (exam-report, upload-report) when that is later",
        "exam_after_days",
    ),
    (AFTER_DOWN, "down-referral-apply", "down_referral_days after the date the patient goes down", "down_referral_days"),
    (AFTER_DISCHARGE, "inpatient-discharge", "discharge_days after the discharge", "discharge_days"),
    (AFTER_REFERRAL, "treatment-results (an up-referral's visit outcome)", "referral_days after the outcome", "referral_days"),
];

pub(crate) fn describe_kinds(s: &Settings) -> Value {
    KINDS
        .iter()
        .map(|(k, by, when, key)| {
            let value = match *key {
                "exam_before_hours" => json!(s.exam_before_hours),
                "exam_after_days" => json!(s.exam_after_days),
                "down_referral_days" => json!(s.down_referral_days),
                "discharge_days" => json!(s.discharge_days),
                "referral_days" => json!(s.referral_days),
                _ => Value::Null,
            };
            json!({"kind": k, "made_by": by, "due": when, "setting": format!("follow_up.{key}"), "value": value})
        })
        .collect()
}

/// The case step that made a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Source {
    /// `exam` or `referral`.
    pub case: String,
    pub id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_no: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Outcome {
    pub at_ms: Millis,
    /// Completed no later than `on_time_days` after the day it fell due.
    pub on_time: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doctor_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default)]
    pub measurements: serde_json::Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub satisfaction: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Plan {
    pub plan_id: u64,
    pub kind: String,
    pub status: String,
    /// The community institution that follows the patient up.
    pub institution_id: String,
    /// The hospital whose case made the plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hospital_id: Option<String>,
    pub patient_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chronic_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    #[serde(default)]
    pub icd10: Vec<String>,
    pub due_ms: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reminded_ms: Option<Millis>,
    /// Health-education items assigned (codes of the catalogue).
    #[serde(default)]
    pub education: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    pub created_ms: Millis,
    pub updated_ms: Millis,
    #[serde(default)]
    pub history: Vec<Step>,
}

struct NewPlan<'a> {
    kind: &'static str,
    institution_id: &'a str,
    hospital_id: Option<&'a str>,
    patient_id: &'a str,
    source: Option<Source>,
    project_id: Option<&'a str>,
    case_code: Option<&'a str>,
    due_ms: Millis,
    via: &'a str,
}

/// A new plan (its id taken), in the registration's codes when the patient
/// is registered at the institution, with its education items assigned.
fn new_plan(g: &mut Inner, n: NewPlan<'_>, now: Millis) -> Plan {
    let reg = g.open.get(&(n.institution_id.to_string(), n.patient_id.to_string())).and_then(|id| g.patients.get(id));
    let mut icd10 = reg.map(Registration::codes).unwrap_or_default();
    // The case's own code when it is one the register knows (a referral's
    // disease code may be the referral catalogue's, not ICD-10).
    if let Some(c) = n.case_code.and_then(disease::normalise).filter(|c| disease::disease_of(c).is_some()) {
        if !icd10.contains(&c) {
            icd10.push(c);
        }
    }
    let chronic_id = reg.map(|r| r.chronic_id);
    let stage = match n.kind {
        EXAM_BEFORE => Some("before"),
        EXAM_AFTER => Some("after"),
        _ => None,
    };
    let education = super::education::assigned(g, n.project_id, stage, &icd10);
    let plan_id = Inner::take_id(&mut g.next_plan);
    Plan {
        plan_id,
        kind: n.kind.into(),
        status: PLAN.initial.into(),
        institution_id: n.institution_id.into(),
        hospital_id: n.hospital_id.map(str::to_string),
        patient_id: n.patient_id.into(),
        chronic_id,
        source: n.source,
        project_id: n.project_id.map(str::to_string),
        icd10,
        due_ms: n.due_ms,
        reminded_ms: None,
        education,
        outcome: None,
        created_ms: now,
        updated_ms: now,
        history: vec![Step { at_ms: now, from: String::new(), to: PLAN.initial.into(), via: n.via.into(), by: None, note: None }],
    }
}

/// The periodic plan of a registration, due at `due`.
pub(crate) fn periodic(g: &mut Inner, reg: &Registration, due: Millis, via: &str, now: Millis) -> Plan {
    let n = NewPlan {
        kind: PERIODIC,
        institution_id: &reg.institution_id,
        hospital_id: None,
        patient_id: &reg.patient_id,
        source: None,
        project_id: None,
        case_code: None,
        due_ms: due,
        via,
    };
    let mut p = new_plan(g, n, now);
    // Made with the registration itself: its codes and id, whether stored yet or not.
    p.chronic_id = Some(reg.chronic_id);
    p.icd10 = reg.codes();
    p.education = super::education::assigned(g, None, None, &p.icd10);
    p
}

fn data_of(p: &Plan, tz: &chrono_tz::Tz) -> Value {
    json!({
        "plan_id": p.plan_id, "kind": p.kind, "status": p.status, "institution_id": p.institution_id, "hospital_id": p.hospital_id,
        "chronic_id": p.chronic_id, "due_at": format_ms(p.due_ms, tz), "source": p.source, "education": p.education,
    })
}

pub(crate) fn planned_event(pool: &Pool, txn: &mut Txn, p: &Plan) {
    event(pool, txn, "follow_up_planned", &p.patient_id, &p.institution_id, data_of(p, &pool.cfg.tz));
}

pub(crate) fn closed_event(pool: &Pool, txn: &mut Txn, p: &Plan) {
    let kind = match p.status.as_str() {
        "completed" => "follow_up_completed",
        "missed" => "follow_up_missed",
        _ => "follow_up_cancelled",
    };
    event(pool, txn, kind, &p.patient_id, &p.institution_id, data_of(p, &pool.cfg.tz));
}

// ---------------------------------------------------------------- plans made by cases

/// What a case step did that a follow-up answers.
#[derive(Debug, Clone, Copy)]
pub(crate) enum CaseTrigger {
    /// An exam item was paid: its slot is booked (预约成功), starting then.
    ExamBooked { exam_start_ms: Millis },
    /// An exam item's report came back (first or a revision).
    ExamReported,
    /// The hospital referred the patient down, going on that date.
    DownReferred { date: chrono::NaiveDate },
    /// The patient left the hospital's ward.
    Discharged,
    /// An up-referral's visit outcome came back.
    Outcome,
    /// The exam item or the down-referral was cancelled: its open plans end.
    Cancelled,
}

/// A case step, as the referral module reports it.
pub(crate) struct CaseChange<'a> {
    pub trigger: CaseTrigger,
    /// `exam` or `referral`.
    pub case: &'static str,
    pub case_id: u64,
    pub item_no: Option<u32>,
    pub patient_id: &'a str,
    /// The community institution of the case (it follows the patient up).
    pub clinic_id: &'a str,
    pub hospital_id: &'a str,
    pub project_id: Option<&'a str>,
    pub disease_code: Option<&'a str>,
    /// The command of the step.
    pub via: &'a str,
}

/// The one place plans are made from cases: called by the referral module
/// inside the transaction of the step (`txn`), after the step's checks, so
/// the plans commit with it. It never fails.
pub(crate) fn on_case(chronic: &ChronicState, pool: &Pool, txn: &mut Txn, now: Millis, ch: CaseChange<'_>) {
    let s = &chronic.settings;
    let mut g = chronic.inner.lock();
    let source = Source { case: ch.case.into(), id: ch.case_id, item_no: ch.item_no };
    let open_of = |g: &Inner, kind: Option<&str>| -> Vec<Plan> {
        g.plans.values().filter(|p| p.source.as_ref() == Some(&source) && PLAN.is_open(&p.status) && kind.is_none_or(|k| p.kind == k)).cloned().collect()
    };
    let mk = |kind: &'static str, due_ms: Millis| NewPlan {
        kind,
        institution_id: ch.clinic_id,
        hospital_id: Some(ch.hospital_id),
        patient_id: ch.patient_id,
        source: Some(source.clone()),
        project_id: ch.project_id,
        case_code: ch.disease_code,
        due_ms: due_ms.max(now),
        via: ch.via,
    };
    let mut made: Vec<Plan> = Vec::new();
    let mut changed: Vec<Plan> = Vec::new();
    match ch.trigger {
        CaseTrigger::ExamBooked { exam_start_ms } => {
            let before = exam_start_ms - i64::from(s.exam_before_hours) * 3_600_000;
            let after = exam_start_ms + i64::from(s.exam_after_days) * DAY_MS;
            for (kind, due) in [(EXAM_BEFORE, before), (EXAM_AFTER, after)] {
                match open_of(&g, Some(kind)).into_iter().next() {
                    // Booked again (a new arrangement after a released one): re-dated.
                    Some(mut p) if p.status == "planned" => {
                        p.due_ms = due.max(now);
                        p.updated_ms = now;
                        changed.push(p);
                    }
                    Some(_) => {}
                    None => made.push(new_plan(&mut g, mk(kind, due), now)),
                }
            }
        }
        CaseTrigger::ExamReported => {
            let due = now + i64::from(s.exam_after_days) * DAY_MS;
            for mut p in open_of(&g, Some(EXAM_AFTER)) {
                if p.status == "planned" && p.due_ms < due {
                    p.due_ms = due;
                    p.updated_ms = now;
                    p.history.push(Step {
                        at_ms: now,
                        from: p.status.clone(),
                        to: p.status.clone(),
                        via: ch.via.into(),
                        by: None,
                        note: Some("re-dated after the report".into()),
                    });
                    changed.push(p);
                }
            }
        }
        CaseTrigger::DownReferred { date } => {
            let due = super::day_start(date, &pool.cfg.tz) + i64::from(s.down_referral_days) * DAY_MS;
            made.push(new_plan(&mut g, mk(AFTER_DOWN, due), now));
        }
        CaseTrigger::Discharged => made.push(new_plan(&mut g, mk(AFTER_DISCHARGE, now + i64::from(s.discharge_days) * DAY_MS), now)),
        CaseTrigger::Outcome => made.push(new_plan(&mut g, mk(AFTER_REFERRAL, now + i64::from(s.referral_days) * DAY_MS), now)),
        CaseTrigger::Cancelled => {
            for mut p in open_of(&g, None) {
                // Open plans are `planned` or `due`: the machine allows both.
                if PLAN.step(&mut p.status, &mut p.history, "cancelled", CASE_CANCELLED, None, Some(ch.via.to_string()), now).is_ok() {
                    p.updated_ms = now;
                    changed.push(p);
                }
            }
        }
    }
    for p in made.into_iter().chain(changed) {
        put_plan(pool, txn, &p);
        if p.status == "cancelled" {
            closed_event(pool, txn, &p);
        } else {
            planned_event(pool, txn, &p);
        }
        g.store_plan(p);
    }
}

// ---------------------------------------------------------------- reminders (the due work)

/// `follow_ups_due`: every plan whose due time has come is reminded once:
/// it turns `due` and event `follow_up_due` goes out, in one commit with the
/// plan's row, so a restart neither repeats a reminder (the row says `due`)
/// nor skips one (a plan still `planned` is found again, however late).
pub(crate) fn remind_due(pool: &Pool, chronic: &ChronicState, now: Millis) -> Result<u64> {
    let mut txn = Txn::default();
    let (n, ticket) = {
        let mut g = chronic.inner.lock();
        let due: Vec<u64> = g.pending.range(..=(now, u64::MAX)).map(|(_, id)| *id).collect();
        if due.is_empty() {
            return Ok(0);
        }
        let tz = &pool.cfg.tz;
        for id in &due {
            let Some(mut p) = g.plans.get(id).cloned() else { continue };
            PLAN.step(&mut p.status, &mut p.history, "due", DUE_WORK, None, None, now)?;
            p.reminded_ms = Some(now);
            p.updated_ms = now;
            put_plan(pool, &mut txn, &p);
            let mut data = data_of(&p, tz);
            data["doctor_id"] = p.chronic_id.and_then(|c| g.patients.get(&c)).map(|r| r.doctor_id.clone()).into();
            event(pool, &mut txn, "follow_up_due", &p.patient_id, &p.institution_id, data);
            g.store_plan(p);
        }
        (due.len() as u64, pool.enqueue(&mut txn))
    };
    pool.settle(ticket, Vec::new())?;
    Ok(n)
}

// ---------------------------------------------------------------- commands

/// A plan as shown.
pub(crate) fn plan_view(c: &Ctx, p: &Plan) -> Value {
    let tz = &c.pool.cfg.tz;
    let g_items = |code: &String| json!({"code": code});
    json!({
        "plan_id": p.plan_id,
        "kind": p.kind,
        "status": p.status,
        "institution_id": p.institution_id,
        "hospital_id": p.hospital_id,
        "patient_id": p.patient_id,
        "chronic_id": p.chronic_id,
        "source": p.source,
        "project_id": p.project_id,
        "icd10": p.icd10,
        "due_at": format_ms(p.due_ms, tz),
        "due_date": super::local_date(p.due_ms, tz).to_string(),
        "reminded_at": p.reminded_ms.map(|m| format_ms(m, tz)),
        "education": p.education.iter().map(g_items).collect::<Vec<_>>(),
        "outcome": p.outcome.as_ref().map(|o| json!({
            "at": format_ms(o.at_ms, tz), "on_time": o.on_time, "doctor_id": o.doctor_id, "method": o.method,
            "measurements": o.measurements, "feedback": o.feedback, "satisfaction": o.satisfaction, "note": o.note,
        })),
        "history": p.history.iter().map(|s| json!({"at": format_ms(s.at_ms, tz), "from": s.from, "to": s.to, "via": s.via, "by": s.by, "note": s.note})).collect::<Vec<_>>(),
    })
}

/// The plan `plan_id` as the caller may see it, else not found.
fn visible<'g>(g: &'g Inner, scope: &Scope, id: u64) -> Result<&'g Plan> {
    g.plans.get(&id).filter(|p| scope.sees(&p.institution_id, p.hospital_id.as_deref())).ok_or_else(|| Error::new(ErrorCode::FollowUpNotFound))
}

/// `follow-up-view`: one plan.
pub(super) fn view(c: &Ctx) -> Result<Value> {
    let scope = Scope::of(c)?;
    let id = int_id(c.r, "plan_id")?;
    let g = c.chronic.inner.lock();
    let p = visible(&g, &scope, id)?;
    Ok(plan_view(c, p))
}

/// `follow-up-query`: the plans the caller may see, by status, kind,
/// patient, registration, or due date (`due_from`, `due_to`, inclusive).
pub(super) fn query(c: &Ctx) -> Result<Value> {
    let scope = Scope::of(c)?;
    let status = c.r.opt_str("status")?;
    if status.is_some_and(|s| !PLAN.states.contains(&s)) {
        return Err(Error::invalid_zh("status", "not a state of a follow-up plan (see `chronic-catalog`)", "不是随访计划的状态（见 `chronic-catalog`）"));
    }
    let kind = c.r.opt_str("kind")?;
    if kind.is_some_and(|k| !KINDS.iter().any(|(x, ..)| *x == k)) {
        return Err(Error::invalid_zh("kind", "not a kind of follow-up plan (see `chronic-catalog`)", "不是随访计划的类型（见 `chronic-catalog`）"));
    }
    let patient = c.r.opt_id("patient_id")?;
    let chronic_id = c.r.opt_u64("chronic_id")?;
    let (from, to) = (c.r.opt_date("due_from")?, c.r.opt_date("due_to")?);
    let tz = &c.pool.cfg.tz;
    let g = c.chronic.inner.lock();
    let items: Vec<Value> = g
        .plans
        .values()
        .filter(|p| scope.sees(&p.institution_id, p.hospital_id.as_deref()))
        .filter(|p| status.is_none_or(|s| s == p.status) && kind.is_none_or(|k| k == p.kind))
        .filter(|p| patient.as_deref().is_none_or(|x| x == p.patient_id) && chronic_id.is_none_or(|x| Some(x) == p.chronic_id))
        .filter(|p| {
            let d = super::local_date(p.due_ms, tz);
            from.is_none_or(|f| d >= f) && to.is_none_or(|t| d <= t)
        })
        .map(|p| plan_view(c, p))
        .collect();
    page_of(c.r, items)
}

const METHODS: &[&str] = &["phone", "clinic", "home", "online"];

/// `follow-up-record`: the follow-up took place (`result: completed`, the
/// default) or the patient could not be reached (`missed`): who, how,
/// measurements, feedback and satisfaction (1–5). A periodic plan is
/// followed by the next one, `interval_days` after today, while the
/// registration is open.
pub(super) fn record(c: &Ctx) -> Result<Value> {
    let scope = Scope::of(c)?;
    let institution = scope.acting_community(c)?;
    let id = int_id(c.r, "plan_id")?;
    let result = c.r.opt_str("result")?.unwrap_or("completed");
    if !matches!(result, "completed" | "missed") {
        return Err(Error::invalid("result", "expected completed or missed"));
    }
    let method = c.r.opt_str("method")?;
    if method.is_some_and(|m| !METHODS.contains(&m)) {
        return Err(Error::invalid("method", "expected phone, clinic, home or online"));
    }
    let measurements = disease::measurements(c.r.get("measurements"))?;
    let satisfaction = c.r.opt_u64_in("satisfaction", 1, 5)?.map(|n| n as u8);
    if result == "missed" && (!measurements.is_empty() || satisfaction.is_some()) {
        return Err(Error::invalid_zh("result", "a missed follow-up records no measurements or satisfaction", "未随访到的记录不能填写测量值或满意度"));
    }
    let outcome = Outcome {
        at_ms: 0,
        on_time: false,
        doctor_id: text(c.r, "doctor_id", 64)?,
        method: method.map(str::to_string),
        measurements,
        feedback: text(c.r, "feedback", 1000)?,
        satisfaction,
        note: text(c.r, "note", 500)?,
    };
    let command = c.command;
    let pool = c.pool;
    let on_time_days = i64::from(c.chronic.settings.on_time_days);
    pool.idempotent(c.r.request_id()?, command, c.r.fingerprint(command), |claim| {
        pool.locked_txn(claim, &c.chronic.inner, |g, txn, now| {
            let mut p = g.plans.get(&id).filter(|p| p.institution_id == institution).cloned().ok_or_else(|| Error::new(ErrorCode::FollowUpNotFound))?;
            PLAN.step(&mut p.status, &mut p.history, result, command, Some(&institution), None, now)?;
            let tz = &pool.cfg.tz;
            let due_day_end = super::day_start(super::local_date(p.due_ms, tz), tz) + (on_time_days + 1) * DAY_MS;
            p.outcome = Some(Outcome { at_ms: now, on_time: result == "completed" && now < due_day_end, ..outcome.clone() });
            p.updated_ms = now;
            let next = match (
                p.kind == PERIODIC,
                p.chronic_id.and_then(|cid| g.patients.get(&cid)).filter(|r| super::machine::REGISTER.is_open(&r.status)).cloned(),
            ) {
                (true, Some(reg)) => {
                    let due = super::day_start(super::local_date(now, tz), tz) + i64::from(reg.interval(&c.chronic.settings)) * DAY_MS;
                    Some(periodic(g, &reg, due, command, now))
                }
                _ => None,
            };
            put_plan(pool, txn, &p);
            closed_event(pool, txn, &p);
            if let Some(n) = &next {
                put_plan(pool, txn, n);
                planned_event(pool, txn, n);
            }
            let mut v = plan_view(c, &p);
            v["next_plan"] = next.as_ref().map(|n| plan_view(c, n)).unwrap_or(Value::Null);
            g.store_plan(p);
            if let Some(n) = next {
                g.store_plan(n);
            }
            Ok(v)
        })
    })
}

/// `follow-up-cancel`: the community centre drops a plan (with `reason`).
pub(super) fn cancel(c: &Ctx) -> Result<Value> {
    let scope = Scope::of(c)?;
    let institution = scope.acting_community(c)?;
    let id = int_id(c.r, "plan_id")?;
    let reason = text(c.r, "reason", 500)?;
    let command = c.command;
    let pool = c.pool;
    pool.idempotent(c.r.request_id()?, command, c.r.fingerprint(command), |claim| {
        pool.locked_txn(claim, &c.chronic.inner, |g, txn, now| {
            let mut p = g.plans.get(&id).filter(|p| p.institution_id == institution).cloned().ok_or_else(|| Error::new(ErrorCode::FollowUpNotFound))?;
            PLAN.step(&mut p.status, &mut p.history, "cancelled", command, Some(&institution), reason.clone(), now)?;
            p.updated_ms = now;
            put_plan(pool, txn, &p);
            closed_event(pool, txn, &p);
            let v = plan_view(c, &p);
            g.store_plan(p);
            Ok(v)
        })
    })
}
