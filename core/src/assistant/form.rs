//! `assistant-form`: a quick menu's form, prefilled from the patient record
//! the host supplies, with the choices to pick from.

use super::{diagnoses, hospital_of, institutions, patient, reasons_view, record, Menu, Parts};
use crate::catalog::{CatalogData, Project};
use crate::error::Result;
use crate::model::{Priority, SlotKind};
use crate::pool::Slot;
use crate::request::Req;
use crate::text::SearchKey;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

pub(super) fn form(p: &Parts, r: &Req) -> Result<Value> {
    p.d.pool.check_open()?;
    let menu = Menu::of(r)?;
    let patient_id = r.opt_id("patient_id")?;
    let info = patient(r)?.unwrap_or_default();
    let rec = record(r)?;
    let f = Filters::of(r)?;
    let hospital = match menu {
        Menu::Lab => None,
        _ => hospital_of(p, r)?,
    };
    let mut shown = match info.masked() {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    if let Some(id) = &patient_id {
        shown.insert("patient_id".into(), id.clone().into());
    }
    shown.insert("missing".into(), json!(info.missing()));
    let dx = diagnoses(&rec);
    let mut prefill = Map::new();
    prefill.insert("menu".into(), menu.as_str().into());
    if let Some(id) = &patient_id {
        prefill.insert("patient_id".into(), id.clone().into());
    }
    if !rec.is_empty() {
        prefill.insert("record".into(), Value::Object(rec.clone()));
    }
    let mut choices = Map::new();
    match menu {
        Menu::Lab => {}
        _ => {
            choices.insert("institutions".into(), institutions(p, hospital.as_deref()));
            if let Some(h) = &hospital {
                prefill.insert("hospital_id".into(), h.clone().into());
            }
        }
    }
    let h = hospital.as_deref().unwrap_or("");
    match menu {
        Menu::Registration => {
            let class = if r.opt_bool("referral")?.unwrap_or(false) { Priority::Referral } else { Priority::Normal };
            let (departments, experts) = experts(p, h, &f, class, true);
            choices.insert("departments".into(), departments);
            choices.insert("experts".into(), experts);
            choices.insert("transfer_reasons".into(), reasons_view());
            copy(&f, &mut prefill, &["department_id", "doctor_id", "date", "period"]);
            prefill.insert("slot_id".into(), Value::Null);
            prefill.insert("referral".into(), (class == Priority::Referral).into());
        }
        Menu::Consultation => {
            let (departments, experts) = experts(p, h, &f, Priority::Normal, false);
            choices.insert("departments".into(), departments);
            choices.insert("experts".into(), experts);
            copy(&f, &mut prefill, &["department_id"]);
            prefill.insert("project".into(), Value::Null);
            prefill.insert("purpose".into(), Value::Null);
        }
        Menu::Bed => {
            let date = match f.date.clone() {
                Some(d) => d,
                None => p.d.pool.today().to_string(),
            };
            choices.insert("transfer_reasons".into(), reasons_view());
            choices.insert("wards".into(), wards(p, r, h, &f, &date)?);
            copy(&f, &mut prefill, &["department_id", "doctor_id", "bed_type"]);
            prefill.insert("date".into(), date.into());
            prefill.insert("slot_id".into(), Value::Null);
            prefill.insert("reason_code".into(), Value::Null);
        }
        Menu::Exam => {
            let (categories, projects) = projects(p, h, &f);
            choices.insert("categories".into(), categories);
            choices.insert("projects".into(), projects);
            copy(&f, &mut prefill, &["project_id", "date"]);
            prefill.insert("slot_id".into(), Value::Null);
            prefill.insert("items".into(), json!([]));
        }
        Menu::Lab => {
            let (labs, lab, items) = lab_choices(p, r, &f)?;
            choices.insert("labs".into(), labs);
            choices.insert("items".into(), items);
            if let Some(l) = lab {
                prefill.insert("lab_id".into(), l.into());
            }
            prefill.insert("items".into(), json!([]));
            prefill.insert("panels".into(), json!([]));
            if let Some(d) = dx.first().and_then(|d| d.get("name")).cloned() {
                prefill.insert("diagnosis".into(), d);
            }
        }
    }
    let mut out = Map::new();
    out.insert("menu".into(), menu.as_str().into());
    out.insert("title".into(), menu.title().into());
    if let Some(i) = &r.who.institution_id {
        // The caller is the party of what it sent: it reads its own numbers in full.
        out.insert("institution_id".into(), i.clone().into());
    }
    out.insert("patient".into(), Value::Object(shown));
    out.insert("clinical".into(), json!({"diagnoses": dx, "history": rec.get("history").cloned().unwrap_or(Value::Null)}));
    out.insert("form".into(), Value::Object(prefill));
    out.insert("choices".into(), Value::Object(choices));
    out.insert("submit".into(), "assistant-submit".into());
    Ok(Value::Object(out))
}

/// The search and filters a form narrows its choices with.
struct Filters {
    keyword: Option<String>,
    department_id: Option<String>,
    doctor_id: Option<String>,
    date: Option<String>,
    period: Option<String>,
    title: Option<String>,
    speciality: Option<String>,
    bed_type: Option<String>,
    category: Option<String>,
    device: Option<String>,
    project_id: Option<String>,
    max_minutes: Option<u64>,
    available_only: bool,
    limit: usize,
}

impl Filters {
    fn of(r: &Req) -> Result<Filters> {
        let s = |k: &str| -> Result<Option<String>> { Ok(r.opt_str(k)?.map(|v| v.trim().to_string()).filter(|v| !v.is_empty())) };
        Ok(Filters {
            keyword: s("keyword")?,
            department_id: s("department_id")?,
            doctor_id: s("doctor_id")?,
            date: r.opt_date("date")?.map(|d| d.to_string()),
            period: s("period")?,
            title: s("title")?,
            speciality: s("speciality")?,
            bed_type: s("bed_type")?,
            category: s("category")?.or(s("type")?),
            device: s("device_id")?.or(s("device")?),
            project_id: s("project_id")?,
            max_minutes: r.opt_u64_in("max_duration_minutes", 1, 1440)?,
            available_only: r.opt_bool("available_only")?.unwrap_or(false),
            limit: r.opt_u64("limit")?.unwrap_or(50).clamp(1, 200) as usize,
        })
    }
}

fn copy(f: &Filters, out: &mut Map<String, Value>, keys: &[&str]) {
    for k in keys {
        let v = match *k {
            "department_id" => &f.department_id,
            "doctor_id" => &f.doctor_id,
            "date" => &f.date,
            "period" => &f.period,
            "bed_type" => &f.bed_type,
            "project_id" => &f.project_id,
            _ => &None,
        };
        out.insert((*k).to_string(), v.clone().map(Value::String).unwrap_or(Value::Null));
    }
}

/// Whether `keyword` finds one of `texts` (name, pinyin initials or full pinyin).
fn found(keyword: Option<&str>, texts: &[&str]) -> bool {
    keyword.is_none_or(|k| texts.iter().any(|t| !t.is_empty() && SearchKey::new(t, &[]).rank(k).is_some()))
}

/// One free period of a slot for the class `class`: places left, and the
/// source's 空闲 / 繁忙 / 不可用 (available, tight, unavailable).
fn period_of(p: &Parts, s: &Slot, class: Priority) -> Value {
    let pool = &p.d.pool;
    let st = s.state.lock();
    let a = s.availability(&st, pool.clock.now_ms(), &pool.cfg);
    drop(st);
    let free = if class.uses_quota() { a.remaining } else { a.remaining.saturating_sub(a.reserved_quota) };
    let (status, zh) = if a.closed || free == 0 {
        ("unavailable", "不可用")
    } else if a.tight {
        ("tight", "繁忙")
    } else {
        ("available", "空闲")
    };
    let i = &s.info;
    json!({
        "slot_id": i.slot_id, "date": &*s.date_str, "period": i.period, "time_slot": &*s.time_slot,
        "device_id": i.device_id, "remaining": free, "capacity": a.capacity, "tight": a.tight, "status": status, "status_zh": zh,
    })
}

/// Slots of `kind` at `hospital` still to come and open to booking.
fn upcoming<'a>(p: &Parts, table: &'a crate::pool::SlotTable, hospital: &'a str, kind: SlotKind) -> impl Iterator<Item = &'a std::sync::Arc<Slot>> + 'a {
    let now = p.d.pool.clock.now_ms();
    table.slots.iter().filter(move |s| s.info.kind == kind && s.info.hospital_id == hospital && s.start_ms > now && s.opens_ms <= now)
}

/// Departments and experts of `hospital` (catalogue and registration
/// slots), each expert with title, speciality, profile and free periods.
fn experts(p: &Parts, hospital: &str, f: &Filters, class: Priority, with_periods: bool) -> (Value, Value) {
    let table = p.d.pool.table.load();
    // doctor → (department, periods)
    let mut by_doctor: BTreeMap<String, (Option<String>, Vec<Value>)> = BTreeMap::new();
    let mut dept_free: BTreeMap<String, u64> = BTreeMap::new();
    for s in upcoming(p, &table, hospital, SlotKind::Registration) {
        let i = &s.info;
        if f.date.as_deref().is_some_and(|d| *s.date_str != *d) || f.period.as_deref().is_some_and(|x| i.period.as_deref() != Some(x)) {
            continue;
        }
        let per = period_of(p, s, class);
        let free = per["remaining"].as_u64().unwrap_or(0);
        if let Some(d) = &i.department_id {
            *dept_free.entry(d.clone()).or_default() += free;
        }
        if let Some(doc) = &i.doctor_id {
            let e = by_doctor.entry(doc.clone()).or_insert_with(|| (i.department_id.clone(), Vec::new()));
            e.1.push(per);
        }
    }
    let cat = p.d.pool.catalog.data.read();
    let h = cat.hospitals.get(hospital);
    for d in h.map(|h| h.doctors.as_slice()).unwrap_or_default() {
        by_doctor.entry(d.doctor_id.clone()).or_insert_with(|| (d.department_id.clone(), Vec::new()));
    }
    let dept_name = |id: &str| h.and_then(|h| h.department(id)).map(|d| d.name.clone()).unwrap_or_default();
    let mut list = Vec::new();
    for (id, (dept, mut periods)) in by_doctor {
        let doc = h.and_then(|h| h.doctor(&id));
        let dept = doc.and_then(|d| d.department_id.clone()).or(dept);
        let dname = dept.as_deref().map(dept_name).unwrap_or_default();
        let name = doc.map(|d| d.name.as_str()).unwrap_or("");
        let title = doc.and_then(|d| d.title.as_deref()).unwrap_or("");
        let speciality = doc.and_then(|d| d.speciality.as_deref()).unwrap_or("");
        periods.sort_by(|a, b| (a["date"].as_str(), a["time_slot"].as_str()).cmp(&(b["date"].as_str(), b["time_slot"].as_str())));
        let remaining: u64 = periods.iter().filter_map(|v| v["remaining"].as_u64()).sum();
        if f.department_id.as_deref().is_some_and(|d| dept.as_deref() != Some(d))
            || f.doctor_id.as_deref().is_some_and(|d| d != id)
            || f.title.as_deref().is_some_and(|t| title != t)
            || f.speciality.as_deref().is_some_and(|s| !found(Some(s), &[speciality]) && !speciality.contains(s))
            || !found(f.keyword.as_deref(), &[name, &dname, speciality, &id])
            || ((f.available_only || f.date.is_some() || f.period.is_some()) && with_periods && remaining == 0)
        {
            continue;
        }
        let mut v = json!({
            "doctor_id": id, "name": name, "department_id": dept, "department_name": dname,
            "title": doc.and_then(|d| d.title.clone()), "speciality": doc.and_then(|d| d.speciality.clone()),
            "profile": doc.and_then(|d| d.profile.clone()),
        });
        if with_periods {
            v["remaining"] = remaining.into();
            v["periods"] = Value::Array(periods);
        }
        list.push(v);
        if list.len() >= f.limit {
            break;
        }
    }
    // Departments: the catalogue's and those the slots name.
    let mut depts: BTreeMap<String, String> = h.map(|h| h.departments.iter().map(|d| (d.department_id.clone(), d.name.clone())).collect()).unwrap_or_default();
    for d in dept_free.keys() {
        depts.entry(d.clone()).or_insert_with(|| dept_name(d));
    }
    let departments: Vec<Value> = depts
        .into_iter()
        .filter(|(id, name)| {
            f.department_id.as_deref().is_none_or(|d| d == id) && (found(f.keyword.as_deref(), &[name, id]) || list.iter().any(|e| e["department_id"] == **id))
        })
        .map(|(id, name)| {
            let experts = list.iter().filter(|e| e["department_id"] == *id).count();
            let mut v = json!({"department_id": id, "name": name, "experts": experts});
            if with_periods {
                v["remaining"] = dept_free.get(&id).copied().unwrap_or(0).into();
            }
            v
        })
        .collect();
    (Value::Array(departments), Value::Array(list))
}

/// Wards of `hospital` with their doctors and beds, each bed's live status
/// on `date` from `bed-slots` (有床位 / 无床位 per ward and bed type).
fn wards(p: &Parts, r: &Req, hospital: &str, f: &Filters, date: &str) -> Result<Value> {
    let mut q = Map::new();
    q.insert("hospital_id".into(), hospital.into());
    q.insert("date".into(), date.into());
    q.insert("all".into(), true.into());
    for (k, v) in [("department_id", &f.department_id), ("bed_type", &f.bed_type), ("doctor_id", &f.doctor_id)] {
        if let Some(v) = v {
            q.insert(k.into(), v.clone().into());
        }
    }
    let beds = if hospital.is_empty() { json!({"beds": []}) } else { p.call(r, "bed-slots", q)? };
    let cat = p.d.pool.catalog.data.read();
    let h = cat.hospitals.get(hospital);
    // ward → beds
    let mut by_ward: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for b in beds["beds"].as_array().into_iter().flatten() {
        if let Some(w) = b["department_id"].as_str() {
            by_ward.entry(w.to_string()).or_default().push(json!({
                "slot_id": b["slot_id"], "bed_number": b["bed_number"], "bed_type": b["bed_type"], "doctor_id": b["doctor_id"],
                "status": b["status"], "free": b["free"],
            }));
        }
    }
    let has = |free: usize| if free > 0 { "有床位" } else { "无床位" };
    let mut out = Vec::new();
    for (ward, beds) in by_ward {
        let name = h.and_then(|h| h.department(&ward)).map(|d| d.name.clone()).unwrap_or_default();
        let mut doctor_ids: Vec<String> = beds.iter().filter_map(|b| b["doctor_id"].as_str().map(str::to_string)).collect();
        doctor_ids
            .extend(h.into_iter().flat_map(|h| h.doctors.iter()).filter(|d| d.department_id.as_deref() == Some(ward.as_str())).map(|d| d.doctor_id.clone()));
        doctor_ids.sort();
        doctor_ids.dedup();
        let doctors: Vec<Value> = doctor_ids.iter().map(|id| doctor_card(h, id)).collect();
        let doctor_texts: Vec<String> =
            doctors.iter().flat_map(|d| [d["name"].as_str().unwrap_or("").to_string(), d["speciality"].as_str().unwrap_or("").to_string()]).collect();
        let mut texts: Vec<&str> = vec![&name, &ward];
        texts.extend(doctor_texts.iter().map(String::as_str));
        if !found(f.keyword.as_deref(), &texts) {
            continue;
        }
        let mut types: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for b in &beds {
            let e = types.entry(b["bed_type"].as_str().unwrap_or("").to_string()).or_default();
            e.1 += 1;
            if b["free"] == true {
                e.0 += 1;
            }
        }
        let free: usize = types.values().map(|t| t.0).sum();
        if f.available_only && free == 0 {
            continue;
        }
        let bed_types: Vec<Value> =
            types.into_iter().map(|(t, (free, total))| json!({"bed_type": t, "free": free, "total": total, "status": has(free)})).collect();
        out.push(json!({
            "department_id": ward, "name": name, "free": free, "total": beds.len(), "status": has(free),
            "bed_types": bed_types, "doctors": doctors, "beds": beds,
        }));
    }
    Ok(Value::Array(out))
}

/// An expert's card: name, title, speciality, profile (as the catalogue has them).
fn doctor_card(h: Option<&crate::catalog::Hospital>, id: &str) -> Value {
    let d = h.and_then(|h| h.doctor(id));
    json!({
        "doctor_id": id, "name": d.map(|d| d.name.as_str()).unwrap_or(""), "title": d.and_then(|d| d.title.clone()),
        "speciality": d.and_then(|d| d.speciality.clone()), "profile": d.and_then(|d| d.profile.clone()),
    })
}

/// An exam project's category: the catalogue's `category` (常规检查, 影像检查,
/// 实验室检查 …), else its department's name.
fn category(pr: &Project) -> String {
    pr.extra.get("category").and_then(Value::as_str).map(str::to_string).or_else(|| pr.department_name.clone()).unwrap_or_else(|| "其他".into())
}

/// A duration as hospitals write it (`30`, `30分钟`, `30 min`, `1小时`, `1.5h`) in minutes.
pub(super) fn minutes(text: &str) -> Option<u64> {
    let t = text.trim();
    let end = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let n: f64 = t[..end].parse().ok()?;
    let unit = t[end..].trim().to_lowercase();
    let m = if unit.starts_with('小') || unit.starts_with('h') { n * 60.0 } else { n };
    (0.0..1e9).contains(&m).then_some(m.round() as u64)
}

fn str_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect()).unwrap_or_default()
}

/// Exam projects of `hospital` by category, searched and filtered (type,
/// duration, device), each with its devices and free periods.
fn projects(p: &Parts, hospital: &str, f: &Filters) -> (Value, Value) {
    let table = p.d.pool.table.load();
    let mut periods: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut slot_devices: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in upcoming(p, &table, hospital, SlotKind::Exam) {
        let Some(pid) = &s.info.project_id else { continue };
        if let Some(d) = &s.info.device_id {
            let e = slot_devices.entry(pid.clone()).or_default();
            if !e.contains(d) {
                e.push(d.clone());
            }
        }
        if f.date.as_deref().is_some_and(|d| *s.date_str != *d) {
            continue;
        }
        periods.entry(pid.clone()).or_default().push(period_of(p, s, Priority::Normal));
    }
    let cat: &CatalogData = &p.d.pool.catalog.data.read();
    let mut cats: BTreeMap<String, usize> = BTreeMap::new();
    let mut hits: Vec<(u8, Value)> = Vec::new();
    for pr in cat.projects.values().filter(|pr| pr.hospital_id.as_deref() == Some(hospital)) {
        let c = category(pr);
        let mins = pr.estimated_duration.as_deref().and_then(minutes);
        let mut devices: Vec<Value> = cat
            .devices
            .values()
            .filter(|d| d.project_id.as_deref() == Some(pr.project_id.as_str()))
            .map(|d| json!({"device_id": d.device_id, "device_name": d.device_name, "status": d.status}))
            .collect();
        for d in slot_devices.get(&pr.project_id).into_iter().flatten() {
            if !devices.iter().any(|x| x["device_id"] == **d) {
                let name = cat.devices.get(d).map(|x| x.device_name.clone()).unwrap_or_default();
                devices.push(json!({"device_id": d, "device_name": name}));
            }
        }
        let extra = pr.extra.get("pinyin_initials").and_then(Value::as_str).unwrap_or("");
        let rank = match f.keyword.as_deref() {
            None => Some(2),
            Some(k) => SearchKey::new(&pr.project_name, &[extra]).rank(k),
        };
        let Some(rank) = rank else { continue };
        if f.category.as_deref().is_some_and(|x| x != c)
            || f.project_id.as_deref().is_some_and(|x| x != pr.project_id)
            || f.max_minutes.is_some_and(|m| mins.is_none_or(|d| d > m))
            || f.device.as_deref().is_some_and(|x| !devices.iter().any(|d| d["device_id"] == x || d["device_name"].as_str().is_some_and(|n| n.contains(x))))
        {
            continue;
        }
        let mut free: Vec<Value> = periods.get(&pr.project_id).cloned().unwrap_or_default();
        if let Some(x) = f.device.as_deref() {
            let ids: Vec<&Value> =
                devices.iter().filter(|d| d["device_id"] == x || d["device_name"].as_str().is_some_and(|n| n.contains(x))).map(|d| &d["device_id"]).collect();
            free.retain(|v| ids.contains(&&v["device_id"]));
        }
        free.sort_by(|a, b| (a["date"].as_str(), a["time_slot"].as_str()).cmp(&(b["date"].as_str(), b["time_slot"].as_str())));
        if f.available_only && !free.iter().any(|v| v["remaining"].as_u64().unwrap_or(0) > 0) {
            continue;
        }
        *cats.entry(c.clone()).or_default() += 1;
        hits.push((
            rank,
            json!({
                "project_id": pr.project_id, "project_name": pr.project_name, "category": c,
                "department_id": pr.department_id, "department_name": pr.department_name, "cost": pr.cost,
                "estimated_duration": pr.estimated_duration, "duration_minutes": mins,
                "methods": str_list(pr.extra.get("methods")), "body_parts": str_list(pr.extra.get("body_parts")),
                "purpose": pr.extra.get("purpose"), "precautions": pr.extra.get("precautions").or(pr.extra.get("notes")),
                "report_time": pr.extra.get("report_time"), "location": pr.extra.get("location"),
                "devices": devices, "periods": free,
            }),
        ));
    }
    hits.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1["project_id"].as_str().cmp(&b.1["project_id"].as_str())));
    let projects: Vec<Value> = hits.into_iter().take(f.limit).map(|(_, v)| v).collect();
    let categories: Vec<Value> = cats.into_iter().map(|(c, n)| json!({"category": c, "projects": n})).collect();
    (Value::Array(categories), Value::Array(projects))
}

/// The labs serving the caller (`lab-list`) and, for the chosen one
/// (`lab_id`, else the first), its projects and panels (`lab-item-search`,
/// name or pinyin initials).
fn lab_choices(p: &Parts, r: &Req, f: &Filters) -> Result<(Value, Option<String>, Value)> {
    let mut q = Map::new();
    if let Some(i) = &r.who.institution_id {
        q.insert("institution_id".into(), i.clone().into());
    }
    let labs = p.call(r, "lab-list", q.clone())?;
    let list = labs["labs"].clone();
    let lab = match r.opt_str("lab_id")? {
        Some(l) => Some(l.to_string()),
        None => list.as_array().and_then(|a| a.first()).and_then(|l| l["lab_id"].as_str()).map(str::to_string),
    };
    let Some(lab_id) = lab.clone() else { return Ok((list, None, json!([]))) };
    q.insert("lab_id".into(), lab_id.into());
    if let Some(k) = &f.keyword {
        q.insert("q".into(), k.clone().into());
    }
    let found = p.call(r, "lab-item-search", q)?;
    let kind = r.opt_str("item_type")?;
    let items: Vec<Value> = found["results"].as_array().into_iter().flatten().filter(|v| kind.is_none_or(|k| v["type"] == k)).take(f.limit).cloned().collect();
    Ok((list, lab, Value::Array(items)))
}
