//! The assistant's quick menus (智能医助快捷菜单, A1): registration (预约挂号),
//! bed (床位预约), exam (检查预约), commissioned test (委托检验) and remote
//! consultation (远程会诊).
//!
//! Each menu is two calls. `assistant-form` returns the form prefilled from
//! the patient record the host supplies (shown masked, with what is left to
//! fill) and the choices to pick from: institutions (the county hospital by
//! default), departments, experts with title, speciality, profile and free
//! periods, beds by ward and type with their live status, exam projects by
//! category, lab projects and panels, the coded transfer reasons — searched
//! by keyword or pinyin initials and narrowed by filters. `assistant-submit`
//! takes the filled form and runs the command that does the work
//! (`book-slot`, `outpatient-referral-apply`, `bed-reserve`, `exam-apply`,
//! `lab-order-submit`, `consultation-apply`) through the engine's own
//! dispatch, so its rules, permission checks, events and audit entry are
//! that command's; it answers the command's result and a notice (number,
//! date, department, expert, visit hints). `patient-history` lists every
//! booking and case of one patient the caller is a party of.
//!
//! This module keeps no state: the forms are computed from the catalogue,
//! the slot pool and the domains' own queries, and the submissions are the
//! domains' commands. It sits above the domains and below the registry,
//! which hands it the dispatcher (`Parts::dispatch`).

mod form;
mod history;
mod submit;

use crate::domains::{Dispatch, Domains};
use crate::error::{Error, Result};
use crate::identity::PatientInfo;
use crate::request::Req;
use serde_json::{json, Map, Value};

crate::command::command_table! { pub(crate) COMMANDS: fn(&Parts, &Req) -> Result<Value>;
    "assistant-form", Query, NETWORK, INSTITUTION => form::form;
    "assistant-submit", Change, NETWORK, INSTITUTION => submit::submit;
    "patient-history", Query, NETWORK, INSTITUTION => history::history;
}

/// What the registry hands this module: the engine's domains and the
/// dispatcher the menus submit through.
pub(crate) struct Parts<'a> {
    pub d: &'a Domains,
    pub dispatch: Dispatch,
}

impl Parts<'_> {
    /// Runs `command` as the call's own principal (its rules, permission
    /// check, audit entry and masking are the command's).
    fn call(&self, r: &Req, command: &str, body: Map<String, Value>) -> Result<Value> {
        (self.dispatch)(self.d, r.who, command, &Value::Object(body))
    }
}

/// The five quick menus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Menu {
    Registration,
    Bed,
    Exam,
    Lab,
    Consultation,
}

impl Menu {
    const ALL: [Menu; 5] = [Menu::Registration, Menu::Bed, Menu::Exam, Menu::Lab, Menu::Consultation];

    pub fn as_str(self) -> &'static str {
        match self {
            Menu::Registration => "registration",
            Menu::Bed => "bed",
            Menu::Exam => "exam",
            Menu::Lab => "lab",
            Menu::Consultation => "consultation",
        }
    }
    pub fn title(self) -> &'static str {
        match self {
            Menu::Registration => "预约挂号",
            Menu::Bed => "床位预约",
            Menu::Exam => "检查预约",
            Menu::Lab => "委托检验",
            Menu::Consultation => "远程会诊",
        }
    }
    fn aliases(self) -> &'static [&'static str] {
        match self {
            Menu::Registration => &["registration", "挂号", "预约挂号"],
            Menu::Bed => &["bed", "床位", "床位预约"],
            Menu::Exam => &["exam", "检查", "检查预约"],
            Menu::Lab => &["lab", "委托检验", "检验"],
            Menu::Consultation => &["consultation", "会诊", "远程会诊"],
        }
    }
    fn of(r: &Req) -> Result<Menu> {
        let m = r.str("menu")?;
        Menu::ALL.into_iter().find(|x| x.aliases().contains(&m.trim())).ok_or_else(|| {
            Error::invalid_zh("menu", "expected registration, bed, exam, lab or consultation", "应为 `registration`、`bed`、`exam`、`lab` 或 `consultation`")
        })
    }
}

/// Coded transfer reasons (转院原因), served to callers as data: the code
/// a form submits, the text recorded with the booking or case, and the
/// priority class a bed reservation takes for it (P8: urgent classes rank
/// first and may use the quota kept for referrals).
pub(crate) const TRANSFER_REASONS: &[(&str, &str, &str, &str)] = &[
    ("urgent_surgery", "急需手术", "needs surgery urgently", "surgery"),
    ("condition_worsened", "疾病加重", "the condition worsened", "critical"),
    ("special_examination", "特殊检查", "needs an examination the institution cannot do", "referral"),
    ("diagnosis_unclear", "诊断不明确", "the diagnosis is unclear", "referral"),
    ("beyond_capability", "超出本机构诊疗能力", "beyond the institution's capability", "referral"),
    ("specialist_treatment", "需专科治疗", "needs specialist treatment", "referral"),
    ("patient_request", "患者或家属要求", "the patient or family asked", "referral"),
    ("other", "其他", "other (the note says why)", "referral"),
];

pub(crate) fn reasons_view() -> Value {
    Value::Array(TRANSFER_REASONS.iter().map(|(code, zh, en, p)| json!({"code": code, "name": zh, "name_en": en, "priority": p})).collect())
}

/// The reason a form gives: `reason_code` from [`TRANSFER_REASONS`] (its
/// text, and `reason` as a note after it), else `reason` as free text.
/// → (text, code, priority class).
fn reason_of(r: &Req) -> Result<Option<(String, Option<&'static str>, &'static str)>> {
    let note = r.opt_str("reason")?.map(str::trim).filter(|s| !s.is_empty());
    if note.is_some_and(|n| n.chars().count() > 200) {
        return Err(Error::invalid_zh("reason", "at most 200 characters", "不得超过 200 个字符"));
    }
    match r.opt_str("reason_code")? {
        Some(code) => {
            let (c, zh, _, p) = TRANSFER_REASONS.iter().find(|(c, ..)| *c == code.trim()).ok_or_else(|| {
                Error::invalid_zh("reason_code", "not one of the transfer reasons `assistant-form` lists", "不是 `assistant-form` 列出的转院原因")
            })?;
            if *c == "other" && note.is_none() {
                return Err(Error::missing("reason"));
            }
            let text = match note {
                Some(n) => format!("{zh}：{n}"),
                None => zh.to_string(),
            };
            Ok(Some((text, Some(c), p)))
        }
        None => Ok(note.map(|n| (n.to_string(), None, "referral"))),
    }
}

/// The patient record the host supplies (`patient`), checked as every
/// command checks it (ID number, phone, card and record numbers).
fn patient(r: &Req) -> Result<Option<PatientInfo>> {
    crate::request::patient_of(r)
}

/// The clinical part of the record the host supplies (`record`): diagnoses
/// and history, at most 64 KiB; identity fields are not read from it.
fn record(r: &Req) -> Result<Map<String, Value>> {
    match r.get("record") {
        None => Ok(Map::new()),
        Some(Value::Object(m)) => {
            if serde_json::to_string(m).map(|s| s.len()).unwrap_or(0) > 64 * 1024 {
                return Err(Error::invalid_zh("record", "larger than 64 KiB", "超过 64 KiB"));
            }
            if let Some(d) = m.get("diagnoses").filter(|d| !d.is_null()) {
                if !d.is_array() {
                    return Err(Error::invalid_zh("record.diagnoses", "must be a list", "必须为列表"));
                }
            }
            Ok(m.clone())
        }
        Some(_) => Err(Error::invalid_zh("record", "must be an object", "必须为对象")),
    }
}

/// The diagnoses of a record as `{code?, name}` (from `diagnoses`, a list
/// of texts or objects, else `diagnosis` and `diagnosis_code`).
fn diagnoses(rec: &Map<String, Value>) -> Vec<Value> {
    if let Some(list) = rec.get("diagnoses").and_then(Value::as_array) {
        return list
            .iter()
            .filter_map(|d| match d {
                Value::String(s) => Some(json!({"name": s})),
                Value::Object(o) => o.get("name").and_then(Value::as_str).map(|n| json!({"code": o.get("code"), "name": n})),
                _ => None,
            })
            .collect();
    }
    match rec.get("diagnosis").and_then(Value::as_str) {
        Some(n) => vec![json!({"code": rec.get("diagnosis_code"), "name": n})],
        None => Vec::new(),
    }
}

/// The hospital a menu defaults to: the one the request names, else the
/// county hospital — the first upstream hospital of the config that the
/// catalogue knows, else the catalogue's first hospital.
fn hospital_of(p: &Parts, r: &Req) -> Result<Option<String>> {
    if let Some(h) = r.opt_id("hospital_id")? {
        if !p.d.pool.catalog.is_hospital(&h) {
            return Err(Error::new(crate::error::ErrorCode::HospitalNotFound));
        }
        return Ok(Some(h));
    }
    Ok(default_hospital(p))
}

fn default_hospital(p: &Parts) -> Option<String> {
    let cat = p.d.pool.catalog.data.read();
    if let Some(up) = &p.d.pool.cfg.upstream {
        if let Some(h) = up.hospitals.keys().find(|h| cat.hospitals.contains_key(*h)) {
            return Some(h.clone());
        }
    }
    cat.hospitals.keys().next().cloned()
}

/// The institutions a menu offers: the catalogue's hospitals, the default marked.
fn institutions(p: &Parts, chosen: Option<&str>) -> Value {
    let default = default_hospital(p);
    let cat = p.d.pool.catalog.data.read();
    Value::Array(
        cat.hospitals
            .values()
            .map(|h| {
                json!({"hospital_id": h.hospital_id, "name": h.name, "default": default.as_deref() == Some(h.hospital_id.as_str()),
                       "selected": chosen == Some(h.hospital_id.as_str())})
            })
            .collect(),
    )
}

/// Copies the fields `keys` of the request into `out` as sent.
fn pass(r: &Req, out: &mut Map<String, Value>, keys: &[&str]) {
    for k in keys {
        if let Some(v) = r.get(k) {
            out.insert((*k).to_string(), v.clone());
        }
    }
}
