//! `patient-history`: every booking and case of one patient the caller is a
//! party of; and the notice a submitted menu answers with.

use super::{Menu, Parts};
use crate::error::{Error, Result};
use crate::model::{Booking, SlotKind};
use crate::request::Req;
use serde_json::{json, Map, Value};
use std::collections::HashSet;

/// The kinds `patient-history` lists (and filters by, `kind`).
const KINDS: &[&str] = &["registration", "exam", "bed", "referral", "exam_application", "consultation", "lab_order"];

/// `patient-history {patient_id, kind?}`: registrations, exam and bed
/// bookings of the slot pool, referrals (outpatient, inpatient, down), exam
/// applications, consultations and lab orders of the patient, newest first.
/// Cases come from the domains' own queries (run through dispatch, so their
/// isolation and masking rules apply); bookings of the pool are those the
/// caller booked or that are on its own slots (every one for the platform).
/// A booking a case owns is shown in that case, not again on its own.
pub(super) fn history(p: &Parts, r: &Req) -> Result<Value> {
    p.d.pool.check_open()?;
    let patient_id = r.id("patient_id")?;
    let only = match r.opt_str("kind")? {
        Some(k) if KINDS.contains(&k) => Some(k),
        Some(_) => {
            return Err(Error::invalid_zh(
                "kind",
                "expected registration, exam, bed, referral, exam_application, consultation or lab_order",
                "应为 `registration`、`exam`、`bed`、`referral`、`exam_application`、`consultation` 或 `lab_order`",
            ))
        }
        None => None,
    };
    let wanted = |k: &str| only.is_none_or(|o| o == k);
    let mut items: Vec<Value> = Vec::new();
    let mut owned: HashSet<String> = HashSet::new();
    for (command, kind, id_key) in [
        ("referral-query", "referral", "referral_id"),
        ("exam-query", "exam_application", "exam_id"),
        ("consultation-query", "consultation", "consultation_id"),
    ] {
        let mut page = 1u64;
        loop {
            let mut q = Map::new();
            q.insert("patient_id".into(), patient_id.clone().into());
            q.insert("page".into(), page.into());
            q.insert("page_size".into(), 200.into());
            let ans = p.call(r, command, q)?;
            let list = ans["items"].as_array().cloned().unwrap_or_default();
            for v in &list {
                booking_ids(v, &mut owned);
                if wanted(kind) {
                    items.push(case_item(kind, id_key, v));
                }
            }
            let total = ans["total"].as_u64().unwrap_or(0);
            if list.is_empty() || page.saturating_mul(200) >= total {
                break;
            }
            page += 1;
        }
    }
    if wanted("lab_order") {
        if let Some(i) = &r.who.institution_id {
            let mut q = Map::new();
            q.insert("institution_id".into(), i.clone().into());
            q.insert("patient_id".into(), patient_id.clone().into());
            let ans = p.call(r, "lab-order-query", q)?;
            for v in ans["orders"].as_array().into_iter().flatten() {
                items.push(case_item("lab_order", "order_id", v));
            }
        }
    }
    // The pool's bookings of the patient: copied out first, shown after
    // (no slot is read while a booking's cell is locked).
    let pool = &p.d.pool;
    let mut mine: Vec<Booking> = Vec::new();
    pool.bookings.for_each(|_, b| {
        if *b.patient_id == *patient_id {
            mine.push(b.clone());
        }
    });
    let own = r.who.institution_id.as_deref();
    for b in mine {
        let Ok(slot) = pool.slot(b.slot_idx) else { continue };
        let kind = match slot.info.kind {
            SlotKind::Registration => "registration",
            SlotKind::Exam => "exam",
            SlotKind::Bed => "bed",
        };
        let party = r.who.is_platform() || own.is_some_and(|o| b.clinic_id.as_deref() == Some(o) || slot.info.hospital_id == o);
        let id = crate::model::format_booking_id(b.id);
        if !party || !wanted(kind) || owned.contains(&id) {
            continue;
        }
        let v = crate::views::to_value(&crate::views::booking_view(pool, &b, &slot));
        let mut it = json!({
            "kind": kind, "id": id, "status": v["status"], "created_at": v["created_at"], "hospital_id": v["hospital_id"],
            "clinic_id": v["clinic_id"], "date": v["date"], "time_slot": v["time_slot"], "department_id": v["department_id"],
            "doctor_id": v["doctor_id"],
        });
        it["detail"] = v;
        items.push(it);
    }
    items.sort_by(|a, b| b["created_at"].as_str().cmp(&a["created_at"].as_str()).then_with(|| a["kind"].as_str().cmp(&b["kind"].as_str())));
    let mut counts = Map::new();
    for k in KINDS {
        let n = items.iter().filter(|i| i["kind"] == *k).count();
        if n > 0 {
            counts.insert((*k).into(), n.into());
        }
    }
    let mut out = json!({"patient_id": patient_id, "total": items.len(), "counts": counts, "items": items});
    if let Some(i) = own {
        // The caller asked about its own patient: it reads the id it sent in full.
        out["institution_id"] = i.into();
    }
    Ok(out)
}

/// Every `booking_id` a case's view names (its own, its items').
fn booking_ids(v: &Value, out: &mut HashSet<String>) {
    match v {
        Value::Object(m) => {
            if let Some(id) = m.get("booking_id").and_then(Value::as_str) {
                out.insert(id.to_string());
            }
            m.values().for_each(|x| booking_ids(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| booking_ids(x, out)),
        _ => {}
    }
}

/// A case as one line of the history, its view as `detail`.
fn case_item(kind: &str, id_key: &str, v: &Value) -> Value {
    let place = v.get("booking").filter(|b| b.is_object()).unwrap_or(v);
    json!({
        "kind": kind, "sub_kind": v.get("kind"), "id": v[id_key], "status": v["status"], "created_at": v["created_at"],
        "hospital_id": v.get("hospital_id").or(v.get("lab_id")), "clinic_id": v.get("clinic_id").or(v.get("institution_id")),
        "date": place.get("date"), "time_slot": place.get("time_slot"), "department_id": place.get("department_id").or(v.get("department_id")),
        "doctor_id": place.get("doctor_id"), "detail": v,
    })
}

/// The notice a submitted menu answers with (预约成功通知): the number, the
/// date and time, hospital, department, expert, place, and visit hints
/// (就诊提示) built from the booking and the catalogue.
pub(super) fn notice(p: &Parts, menu: Menu, command: &str, result: &Value) -> Value {
    let place = if result.get("slot_id").is_some() { result } else { result.get("booking").filter(|b| b.is_object()).unwrap_or(&Value::Null) };
    let (number, number_kind) = ["booking_id", "referral_id", "exam_id", "order_id", "consultation_id"]
        .iter()
        .find_map(|k| result.get(*k).filter(|v| !v.is_null()).map(|v| (v.clone(), *k)))
        .unwrap_or((Value::Null, ""));
    let hospital_id = place.get("hospital_id").or(result.get("hospital_id")).and_then(Value::as_str).unwrap_or("").to_string();
    let dept_id = place.get("department_id").or(result.get("department_id")).and_then(Value::as_str).map(str::to_string);
    let doctor_id = place.get("doctor_id").and_then(Value::as_str).map(str::to_string);
    let date = place.get("date").and_then(Value::as_str).map(str::to_string);
    let time_slot = place.get("time_slot").and_then(Value::as_str).map(str::to_string);
    let visit_no = result.get("visit_no").or(place.get("visit_no")).and_then(Value::as_u64);
    let slot = place.get("slot_id").and_then(Value::as_str).and_then(|s| p.d.pool.slot_by_id(s).ok());
    let period = slot.as_ref().and_then(|s| s.info.period.clone());
    let cat = p.d.pool.catalog.data.read();
    let h = cat.hospitals.get(&hospital_id);
    let hospital_name = h.map(|h| h.name.clone()).unwrap_or_default();
    let dept = dept_id.as_deref().and_then(|d| h.and_then(|h| h.department(d)));
    let dept_name = dept.map(|d| d.name.clone()).unwrap_or_default();
    let doctor = doctor_id.as_deref().and_then(|d| h.and_then(|h| h.doctor(d)));
    let project = place.get("project_id").and_then(Value::as_str).and_then(|id| cat.projects.get(id));
    let device = place.get("device_id").and_then(Value::as_str).and_then(|id| cat.devices.get(id));
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    let location = text(project.and_then(|p| p.extra.get("location")))
        .or_else(|| text(device.and_then(|d| d.extra.get("location"))))
        .or_else(|| text(dept.and_then(|d| d.extra.get("location"))));
    let at = format!("{}{}", hospital_name, if dept_name.is_empty() { String::new() } else { dept_name.clone() });
    let when = match (&date, &time_slot) {
        (Some(d), Some(t)) if t != "00:00-00:00" => format!("{d} {t}"),
        (Some(d), _) => d.clone(),
        _ => String::new(),
    };
    let mut hints: Vec<String> = Vec::new();
    let status = result.get("status").and_then(Value::as_str).unwrap_or("");
    match (menu, command) {
        (Menu::Registration, _) => {
            hints.push(format!("请于{when}{}到{at}就诊", period.as_deref().map(|p| format!("（{p}）")).unwrap_or_default()));
            if let Some(n) = visit_no {
                hints.push(format!("就诊序号：{n}"));
            }
            hints.push("请携带身份证和社保卡，提前到分诊台签到".into());
        }
        (Menu::Bed, _) => {
            let bed = place.get("bed_number").and_then(Value::as_str).map(|b| format!("，床位号 {b}")).unwrap_or_default();
            hints.push(format!("请于{when}到{at}办理入院{bed}"));
            hints.push("请携带身份证、社保卡及本机构病历资料".into());
        }
        (Menu::Exam, "book-slot") => {
            let dev = device.map(|d| format!("（设备：{}）", d.device_name)).unwrap_or_default();
            hints.push(format!("请于{when}到{}检查{dev}", location.clone().unwrap_or_else(|| at.clone())));
            if let Some(pre) = text(project.and_then(|p| p.extra.get("precautions").or(p.extra.get("notes")))) {
                hints.push(format!("注意事项：{pre}"));
            }
        }
        (Menu::Exam, _) => hints.push("检查申请已提交，上级医院安排检查时间和检查室后将通知医生和患者".into()),
        (Menu::Lab, _) => {
            let before = result.get("collect_before_payment").and_then(Value::as_bool).unwrap_or(false);
            hints.push(if before {
                "可先打印样本条码并采样，缴费后送检".into()
            } else {
                "请缴费后打印样本条码并采样送检".into()
            });
        }
        (Menu::Consultation, _) => hints.push("会诊申请已提交，上级医院审核通过后将以消息通知会诊时间和参与专家".into()),
    }
    if result.get("booking_status").or(result.get("status")).and_then(Value::as_str) == Some("pre-booked") {
        if let Some(t) = result.get("hold_expires_at").and_then(Value::as_str) {
            hints.push(format!("请于 {t} 前缴费，逾期预约自动取消"));
        }
    }
    // What the hospital publishes for its patients (visit_hints) is added as sent.
    for extra in [h.map(|h| &h.extra), dept.map(|d| &d.extra)].into_iter().flatten() {
        match extra.get("visit_hints") {
            Some(Value::String(s)) => hints.push(s.clone()),
            Some(Value::Array(a)) => hints.extend(a.iter().filter_map(Value::as_str).map(str::to_string)),
            _ => {}
        }
    }
    json!({
        "number": number, "number_kind": number_kind, "visit_no": visit_no, "status": status,
        "date": date, "time_slot": time_slot, "period": period,
        "hospital_id": if hospital_id.is_empty() { Value::Null } else { hospital_id.clone().into() }, "hospital_name": hospital_name,
        "department_id": dept_id, "department_name": dept_name,
        "expert": doctor.map(|d| json!({"doctor_id": d.doctor_id, "name": d.name, "title": d.title})),
        "bed_number": place.get("bed_number"), "device_name": device.map(|d| d.device_name.clone()),
        "project_name": project.map(|p| p.project_name.clone()), "location": location,
        "hints": hints,
    })
}
