//! R1: the referral disease catalogue (双向转诊病种) and the rule it drives: a
//! re-admitted patient with a catalogue disease is referred directly; any
//! other referral to a ward needs an approved consultation first.

use super::{page_of, paging, put_disease, req_text, step, text, Ctx, Inner, Side, Who};
use crate::error::{Error, ErrorCode, Result};
use crate::text::SearchKey;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Disease {
    pub code: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub updated_ms: i64,
}

impl Disease {
    fn view(&self) -> Value {
        json!({"code": self.code, "name": self.name, "description": self.description})
    }
}

pub(super) fn change(c: &Ctx) -> Result<Value> {
    let who = Who::of(c)?;
    who.must_be(Side::Hospital, c.command)?;
    let code = req_text(c.r, "code", 32)?;
    let name = text(c.r, "name", 100)?;
    let description = text(c.r, "description", 1000)?;
    let command = c.command;
    step(c, None, &mut |pool, g, _, txn, now| {
        let d = match command {
            "referral-disease-add" => {
                if g.diseases.contains_key(&code) {
                    return Err(Error::with(ErrorCode::DiseaseExists, format!("referral disease `{code}` exists"), format!("转诊病种 `{code}` 已存在")));
                }
                let name = name.clone().ok_or_else(|| Error::missing("name"))?;
                let d = Disease { code: code.clone(), name, description: description.clone().unwrap_or_default(), updated_ms: now };
                g.diseases.insert(code.clone(), d.clone());
                put_disease(pool, txn, &d);
                d
            }
            "referral-disease-edit" => {
                let d = g.diseases.get_mut(&code).ok_or_else(not_found)?;
                if name.is_none() && description.is_none() {
                    return Err(Error::missing("name"));
                }
                if let Some(n) = &name {
                    d.name = n.clone();
                }
                if let Some(x) = &description {
                    d.description = x.clone();
                }
                d.updated_ms = now;
                let d = d.clone();
                put_disease(pool, txn, &d);
                d
            }
            _ => {
                let d = g.diseases.remove(&code).ok_or_else(not_found)?;
                super::delete_disease(pool, txn, &code);
                d
            }
        };
        let kind = match command {
            "referral-disease-add" => "referral_disease_added",
            "referral-disease-edit" => "referral_disease_edited",
            _ => "referral_disease_deleted",
        };
        pool.emit(txn, kind, None, None, json!({"code": d.code, "name": d.name}));
        let mut v = d.view();
        v["status"] = (if command == "referral-disease-delete" { "deleted" } else { "saved" }).into();
        Ok(v)
    })
}

fn not_found() -> Error {
    Error::new(ErrorCode::DiseaseNotFound)
}

/// By name (also pinyin initials) or code; paged.
pub(super) fn query(c: &Ctx) -> Result<Value> {
    let keyword = c.r.opt_str("keyword")?.or(c.r.opt_str("name")?);
    let code = c.r.opt_str("code")?;
    let (page, size) = paging(c.r)?;
    let g = c.referral.inner.lock();
    let mut hits: Vec<(u8, &Disease)> = g
        .diseases
        .values()
        .filter(|d| code.is_none_or(|x| d.code.eq_ignore_ascii_case(x)))
        .filter_map(|d| match keyword {
            None => Some((0, d)),
            Some(k) if d.code.to_lowercase().starts_with(&k.to_lowercase()) => Some((0, d)),
            Some(k) => SearchKey::new(&d.name, &[]).rank(k).map(|r| (r, d)),
        })
        .collect();
    hits.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.code.cmp(&b.1.code)));
    let items = hits.into_iter().map(|(_, d)| d.view()).collect();
    Ok(page_of(items, page, size))
}

/// The direct-referral rule. `consultation`: the patient's approved
/// consultation, if one is named; it opens the route only when the hospital
/// it was sent to approved it itself, and that hospital is `hospital`, the
/// one receiving the referral (when known).
pub(crate) fn decide(g: &Inner, disease_code: Option<&str>, readmission: bool, consultation: Option<u64>, patient_id: &str, hospital: Option<&str>) -> Value {
    let disease = disease_code.and_then(|c| g.diseases.get(c));
    if readmission {
        if let Some(d) = disease {
            return json!({
                "decision": "direct",
                "allowed": true,
                "reason": format!("re-admission with catalogue disease {} ({}): referred directly", d.code, d.name),
                "reason_zh": format!("病种目录内（{} {}）再次住院患者，直接转诊", d.code, d.name),
            });
        }
    }
    // A re-admission with a catalogue disease returned above.
    let (why, why_zh) = match (readmission, disease.is_some()) {
        (true, _) => ("the disease is not in the referral catalogue", "病种不在转诊病种目录内"),
        (false, true) => ("not a re-admission", "非再次住院患者"),
        (false, false) => ("not a re-admission and the disease is not in the referral catalogue", "非再次住院且病种不在目录内"),
    };
    if let Some(cid) = consultation {
        match g.consultations.get(&cid) {
            Some(cs) if cs.status == "approved" || cs.status == "completed" => {
                let refused = |en: String, zh: String| json!({"decision": "consultation_first", "allowed": false, "consultation_id": cid, "reason": format!("{why}; {en}"), "reason_zh": format!("{why_zh}；{zh}")});
                if cs.patient_id != patient_id {
                    return refused(format!("consultation {cid} is for another patient"), format!("会诊 {cid} 不属于该患者"));
                }
                if hospital.is_some_and(|h| h != cs.hospital_id) {
                    return refused(
                        format!("consultation {cid} was held by another hospital than the one receiving the referral"),
                        format!("会诊 {cid} 由其他医院受理，不是本次转入的医院"),
                    );
                }
                if cs.approved_by() != Some(cs.hospital_id.as_str()) {
                    return refused(format!("consultation {cid} was not approved by its hospital itself"), format!("会诊 {cid} 未经受邀医院本院审核通过"));
                }
                return json!({
                    "decision": "after_consultation",
                    "allowed": true,
                    "consultation_id": cid,
                    "approved_by": cs.hospital_id,
                    "reason": format!("{why}; consultation {cid} was approved by {}", cs.hospital_id),
                    "reason_zh": format!("{why_zh}；会诊 {cid} 已由 {} 审核通过", cs.hospital_id),
                });
            }
            Some(cs) => {
                return json!({"decision": "consultation_first", "allowed": false, "consultation_id": cid,
                    "reason": format!("{why}; consultation {cid} is {}, not approved", cs.status), "reason_zh": format!("{why_zh}；会诊 {cid} 尚未审核通过")});
            }
            None => {}
        }
    }
    json!({
        "decision": "consultation_first",
        "allowed": false,
        "reason": format!("{why}: a consultation is needed first"),
        "reason_zh": format!("{why_zh}，需先发起会诊"),
    })
}

/// `referral-decision`: the rule's answer without applying.
pub(super) fn decision_cmd(c: &Ctx) -> Result<Value> {
    let code = c.r.opt_str("disease_code")?;
    let readmission = c.r.opt_bool("readmission")?.unwrap_or(false);
    let consultation = match c.r.get("consultation_id") {
        Some(_) => Some(super::int_id(c.r, "consultation_id")?),
        None => None,
    };
    let patient = c.r.id("patient_id")?;
    // The hospital the referral would go to: the one named, else a hospital caller itself.
    let who = Who::of(c)?;
    let hospital = match c.r.opt_str("hospital_id")? {
        Some(h) => Some(h.to_string()),
        None if who.side == Side::Hospital => who.institution.clone(),
        None => None,
    };
    let g = c.referral.inner.lock();
    if let Some(cid) = consultation {
        if !g.consultations.contains_key(&cid) {
            return Err(Error::new(ErrorCode::ConsultationNotFound));
        }
    }
    Ok(decide(&g, code, readmission, consultation, &patient, hospital.as_deref()))
}
