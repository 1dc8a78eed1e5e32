//! 健康宣教: the network's catalogue of health-education items, each
//! assigned by exam project (before or after the exam) or by ICD-10 code
//! (prefix), attached to the plans they fit when the plans are made, and
//! recorded as delivered to a patient.

use super::{event, int_id, put_delivery, put_item, text, Ctx, Inner, Scope};
use crate::clock::{format_ms, Millis};
use crate::error::{Error, ErrorCode, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Item {
    pub code: String,
    pub title: String,
    pub content: String,
    /// Exam projects it is for.
    #[serde(default)]
    pub project_ids: Vec<String>,
    /// ICD-10 codes or prefixes it is for (`I10`, `E11`).
    #[serde(default)]
    pub icd10: Vec<String>,
    /// For exam plans: `before`, `after` or `any`.
    pub stage: String,
    pub updated_ms: Millis,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Delivery {
    pub delivery_id: u64,
    pub institution_id: String,
    pub patient_id: String,
    pub item_code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doctor_id: Option<String>,
    pub at_ms: Millis,
}

/// The items that fit a plan: by its exam project and stage, else by the
/// patient's codes.
pub(crate) fn assigned(g: &Inner, project: Option<&str>, stage: Option<&str>, codes: &[String]) -> Vec<String> {
    g.items
        .values()
        .filter(|i| match (project, stage) {
            (Some(p), Some(s)) => i.project_ids.iter().any(|x| x == p) && (i.stage == "any" || i.stage == s),
            _ => i.icd10.iter().any(|pre| codes.iter().any(|c| c.starts_with(pre.as_str()))),
        })
        .map(|i| i.code.clone())
        .collect()
}

fn str_list(c: &Ctx, k: &str, max_len: usize) -> Result<Vec<String>> {
    match c.r.get(k) {
        None => Ok(Vec::new()),
        Some(Value::Array(a)) if a.len() <= 50 => a
            .iter()
            .map(|v| match v.as_str().map(str::trim) {
                Some(s) if !s.is_empty() && s.len() <= max_len => Ok(s.to_string()),
                _ => Err(Error::invalid_zh(k, "must be a list of short texts", "应为简短文本的列表")),
            })
            .collect(),
        Some(_) => Err(Error::invalid_zh(k, "must be a list of at most 50 texts", "应为最多 50 项的文本列表")),
    }
}

/// `education-item-set`: the platform adds or replaces an item.
pub(super) fn set(c: &Ctx) -> Result<Value> {
    let code = text(c.r, "code", 32)?.ok_or_else(|| Error::missing("code"))?;
    let title = text(c.r, "title", 200)?.ok_or_else(|| Error::missing("title"))?;
    let content = text(c.r, "content", 4000)?.ok_or_else(|| Error::missing("content"))?;
    let project_ids = str_list(c, "project_ids", 64)?;
    let mut icd10 = Vec::new();
    for p in str_list(c, "icd10", 16)? {
        // A prefix of a code the register serves: its head must be one.
        let (code, _) = super::disease::known("icd10", &p)?;
        icd10.push(code);
    }
    if project_ids.is_empty() && icd10.is_empty() {
        return Err(Error::invalid_zh(
            "(request)",
            "an item is for exam projects (`project_ids`) or diseases (`icd10`)",
            "宣教条目须指明检查项目（`project_ids`）或病种编码（`icd10`）",
        ));
    }
    let stage = c.r.opt_str("stage")?.unwrap_or("any");
    if !matches!(stage, "before" | "after" | "any") {
        return Err(Error::invalid("stage", "expected before, after or any"));
    }
    let stage = stage.to_string();
    let pool = c.pool;
    let command = c.command;
    pool.idempotent(c.r.request_id()?, command, c.r.fingerprint(command), |claim| {
        pool.locked_txn(claim, &c.chronic.inner, |g, txn, now| {
            let item = Item {
                code: code.clone(),
                title: title.clone(),
                content: content.clone(),
                project_ids: project_ids.clone(),
                icd10: icd10.clone(),
                stage: stage.clone(),
                updated_ms: now,
            };
            put_item(pool, txn, &item);
            pool.emit(txn, "education_item_set", None, None, json!({"code": item.code}));
            let v = item_view(c, &item);
            g.items.insert(item.code.clone(), item);
            Ok(v)
        })
    })
}

fn item_view(c: &Ctx, i: &Item) -> Value {
    json!({"code": i.code, "title": i.title, "content": i.content, "project_ids": i.project_ids, "icd10": i.icd10, "stage": i.stage, "updated_at": format_ms(i.updated_ms, &c.pool.cfg.tz)})
}

/// `education-items`: the catalogue, or the items for an exam project
/// (`project_id`, `stage`) or an ICD-10 code (`icd10`).
pub(super) fn items(c: &Ctx) -> Result<Value> {
    let project = c.r.opt_str("project_id")?;
    let stage = c.r.opt_str("stage")?;
    if stage.is_some_and(|s| !matches!(s, "before" | "after")) {
        return Err(Error::invalid("stage", "expected before or after"));
    }
    let code = match c.r.opt_str("icd10")? {
        Some(s) => Some(super::disease::known("icd10", s)?.0),
        None => None,
    };
    let g = c.chronic.inner.lock();
    let codes: Vec<String> = code.into_iter().collect();
    let picked: Vec<Value> = g
        .items
        .values()
        .filter(|i| project.is_none_or(|p| i.project_ids.iter().any(|x| x == p)) && stage.is_none_or(|s| i.stage == "any" || i.stage == s))
        .filter(|i| codes.is_empty() || i.icd10.iter().any(|pre| codes[0].starts_with(pre.as_str())))
        .map(|i| item_view(c, i))
        .collect();
    Ok(json!({"items": picked}))
}

pub(crate) fn delivery_view(c: &Ctx, d: &Delivery) -> Value {
    json!({"delivery_id": d.delivery_id, "institution_id": d.institution_id, "patient_id": d.patient_id, "item_code": d.item_code, "plan_id": d.plan_id, "doctor_id": d.doctor_id, "at": format_ms(d.at_ms, &c.pool.cfg.tz)})
}

/// `education-deliver`: an item was delivered to a patient (optionally in
/// a plan of the institution's, which must be the same patient's).
pub(super) fn deliver(c: &Ctx) -> Result<Value> {
    let scope = Scope::of(c)?;
    let institution = scope.acting_community(c)?;
    let patient_id = c.r.id("patient_id")?;
    let code = text(c.r, "item_code", 32)?.ok_or_else(|| Error::missing("item_code"))?;
    let plan_id = match c.r.get("plan_id") {
        Some(_) => Some(int_id(c.r, "plan_id")?),
        None => None,
    };
    let doctor = text(c.r, "doctor_id", 64)?;
    let pool = c.pool;
    let command = c.command;
    pool.idempotent(c.r.request_id()?, command, c.r.fingerprint(command), |claim| {
        pool.locked_txn(claim, &c.chronic.inner, |g, txn, now| {
            if !g.items.contains_key(&code) {
                return Err(Error::new(ErrorCode::EducationItemNotFound));
            }
            if let Some(pid) = plan_id {
                if !g.plans.get(&pid).is_some_and(|p| p.institution_id == institution && p.patient_id == patient_id) {
                    return Err(Error::new(ErrorCode::FollowUpNotFound));
                }
            }
            let id = Inner::take_id(&mut g.next_delivery);
            let d = Delivery {
                delivery_id: id,
                institution_id: institution.clone(),
                patient_id: patient_id.clone(),
                item_code: code.clone(),
                plan_id,
                doctor_id: doctor.clone(),
                at_ms: now,
            };
            put_delivery(pool, txn, &d);
            event(
                pool,
                txn,
                "education_delivered",
                &d.patient_id,
                &d.institution_id,
                json!({"delivery_id": id, "institution_id": institution, "item_code": code, "plan_id": plan_id}),
            );
            let v = delivery_view(c, &d);
            g.deliveries.insert(id, d);
            Ok(v)
        })
    })
}
