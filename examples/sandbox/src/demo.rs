//! `--demo`: the demo network (one county hospital, two community centres)
//! with a week of schedules starting on the engine's today, loaded the way
//! `examples/rust/release_day.rs` loads it (exam windows per available
//! device, morning/afternoon registration periods per doctor, beds per ward),
//! but dated from the engine's clock so the curl lines of the README work on
//! any day.

use serde_json::{json, Value};
use yilian_core::Engine;

pub const NETWORK: &str = include_str!("../../data/demo-network.json");

/// The commissioned-lab reference data of the shared fixtures: the standard
/// catalogue, its panels, and community centre C001's own item list.
const LAB_STANDARD_ITEMS: &str = include_str!("../../../tests/data/lab/lab-standard-items.csv");
const LAB_PANELS: &str = include_str!("../../../tests/data/lab/lab-panels.csv");
const LAB_C001_ITEMS: &str = include_str!("../../../tests/data/lab/community-items-C001.csv");

/// Publishes the catalogue and schedules for today .. today+7 (engine time
/// zone). Idempotent enough to run on every start: `sync-schedule` upserts and
/// `mode: full` only withdraws slots of the listed dates that the push omits.
pub fn load(e: &Engine) -> Result<Value, yilian_core::Error> {
    let net: Value = serde_json::from_str(NETWORK).expect("demo network is JSON");
    let h = &net["hospital"];
    let hid = h["hospital_id"].as_str().unwrap_or("H001");
    e.call_value("sync-catalog", &json!({"hospital_id": hid, "name": h["name"], "projects": h["projects"], "devices": h["devices"]}).to_string())?;
    let info = e.call_value("engine-info", "{}")?;
    // "now" is RFC 3339 in the engine's zone: its first 10 characters are today.
    let today = info["now"].as_str().and_then(|s| s.get(..10)).and_then(parse_date).ok_or_else(|| yilian_core::Error::internal("engine-info has no date"))?;
    let mut schedule = Vec::new();
    for offset in 0..=7 {
        let date = add_days(today, offset);
        for dev in h["devices"].as_array().into_iter().flatten().filter(|d| d["status"] == "available") {
            let windows: Vec<Value> =
                (8..17).filter(|hr| *hr != 12).map(|hr| json!({"start_time": format!("{hr:02}:00"), "end_time": format!("{:02}:00", hr + 1)})).collect();
            let cap = if dev["device_id"] == "DEV001" { 2 } else { 4 };
            schedule.push(json!({"device_id": dev["device_id"], "project_id": dev["project_id"], "date": date, "capacity": cap, "available_slots": windows}));
        }
        for doc in h["doctors"].as_array().into_iter().flatten() {
            schedule.push(json!({"doctor_id": doc["doctor_id"], "department_id": doc["department_id"], "date": date, "capacity": 3, "reserved_quota": 1,
                "available_slots": [{"start_time": "08:00", "end_time": "11:30", "period": "上午"}, {"start_time": "13:30", "end_time": "17:00", "period": "下午"}]}));
        }
    }
    for ward in h["departments"].as_array().into_iter().flatten().filter(|d| d["ward"] == true) {
        let beds: Vec<Value> =
            (1..=ward["beds"].as_u64().unwrap_or(0)).map(|n| json!({"bed_number": format!("{n:02}"), "bed_type": ward["bed_types"][0]})).collect();
        schedule.push(json!({"kind": "bed", "department_id": ward["department_id"], "date": add_days(today, 0), "beds": beds}));
    }
    let synced = e.call_value("sync-schedule", &json!({"hospital_id": hid, "mode": "full", "schedule_data": schedule}).to_string())?;
    // The referral disease catalogue and the community institutions (down-referral targets).
    let mut diseases = 0;
    for d in net["referral_diseases"].as_array().into_iter().flatten() {
        match e.call_value("referral-disease-add", &d.to_string()) {
            Ok(_) => diseases += 1,
            Err(err) if err.code() == yilian_core::ErrorCode::DiseaseExists => {}
            Err(err) => return Err(err),
        }
    }
    e.call_value("referral-network-sync", &json!({"communities": net["community"]}).to_string())?;
    let lab = load_lab(e, hid)?;
    Ok(json!({"hospital_id": hid, "from": add_days(today, 0), "to": add_days(today, 7), "sync": synced, "referral_diseases_added": diseases, "lab": lab}))
}

/// [`load`], then a week of activity on a fresh store (`--demo-activity`).
/// Not part of `--demo` alone: the README's curl lines expect the first
/// booking of a fresh store to be theirs (`B000001`).
pub fn load_with_activity(e: &Engine) -> Result<Value, yilian_core::Error> {
    let mut v = load(e)?;
    let tomorrow = v["from"].as_str().and_then(parse_date).map(|d| add_days(d, 1)).unwrap_or_default();
    v["activity"] = activity(e, v["hospital_id"].as_str().unwrap_or("H001"), &tomorrow)?;
    Ok(v)
}

/// Every `slot_id` in an answer.
fn slot_ids(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(id)) = m.get("slot_id") {
                out.push(id.clone());
            }
            m.values().for_each(|x| slot_ids(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| slot_ids(x, out)),
        _ => {}
    }
}

/// A week of activity on a fresh store, so the console (`/console`) and the
/// indicators have something to show: the two community centres' bookings
/// on the doctors' and three devices' slots (a pattern, some cancelled,
/// some held), two referrals, an exam application and commissioned tests on
/// their way to the lab. DEV001 (the README's curl lines) is left alone. Run
/// only while the store has no booking and no lab order, so a restart adds
/// nothing; the patients are invented (`DEMO…`).
fn activity(e: &Engine, hid: &str, tomorrow: &str) -> Result<Value, yilian_core::Error> {
    let stats = e.call_value("slot-statistics", &json!({"hospital_id": hid}).to_string())?;
    let counts = e.call_value("case-counts", "{}")?;
    let taken = stats["total"]["booked"].as_u64().unwrap_or(0) + stats["total"]["held"].as_u64().unwrap_or(0);
    if taken > 0 || counts["lab_orders"].as_object().is_some_and(|m| !m.is_empty()) {
        return Ok(json!({"skipped": "the store already has activity"}));
    }
    let mut slots = Vec::new();
    slot_ids(&e.call_value("appointment-slots", &json!({"hospital_id": hid}).to_string())?, &mut slots);
    for dev in ["DEV003", "DEV004", "DEV005"] {
        slot_ids(&e.call_value("device-schedule", &json!({"device_id": dev}).to_string())?, &mut slots);
    }
    slots.sort();
    slots.dedup();
    let (mut booked, mut held, mut cancelled, mut n) = (0, 0, 0, 0u32);
    for (i, slot) in slots.iter().enumerate() {
        for k in 0..(i * 7 % 4) {
            n += 1;
            let clinic = if (i + k) % 3 == 0 { "C002" } else { "C001" };
            let body = json!({"slot_id": slot, "patient_id": format!("DEMO{n:04}"), "clinic_id": clinic});
            let cmd = if n % 9 == 0 { "pre-book-slot" } else { "book-slot" };
            let Ok(b) = e.call_value(cmd, &body.to_string()) else { continue };
            if cmd == "pre-book-slot" {
                held += 1;
            } else if n % 7 == 0 {
                e.call_value("cancel-slot", &json!({"booking_id": b["booking_id"], "reason": "患者改期"}).to_string())?;
                cancelled += 1;
            } else {
                booked += 1;
            }
        }
    }
    let patient = |name: &str| json!({"name": name, "sex": "男"});
    let emr = json!({"chief_complaint": "胸闷气短两周", "diagnoses": [{"code": "I25", "name": "慢性缺血性心脏病"}], "history": "高血压十年"});
    let mut referrals = 0;
    for (p, doctor) in [("DEMO9001", "DR001"), ("DEMO9002", "DR003")] {
        let r = json!({"institution_id": "C001", "patient_id": p, "reason": "胸痛待查，社区无法进一步诊治", "patient": patient("示例患者"), "emr": emr,
            "hospital_id": hid, "doctor_id": doctor, "date": tomorrow, "period": "下午", "disease_code": "I25", "applicant_doctor_id": "CDR01"});
        if e.call_value("outpatient-referral-apply", &r.to_string()).is_ok() {
            referrals += 1;
        }
    }
    let exam = json!({"institution_id": "C001", "hospital_id": hid, "patient_id": "DEMO9003", "ordering_doctor_id": "CDR01", "patient": patient("示例患者"),
        "items": [{"project_id": "P003", "method": "平扫", "body_part": "腰椎"}, {"project_id": "P004", "method": "正位", "body_part": "胸部"}]});
    e.call_value("exam-apply", &exam.to_string())?;
    let mut orders = 0;
    for (i, p) in ["DEMO9004", "DEMO9005", "DEMO9006"].iter().enumerate() {
        let o = json!({"institution_id": "C001", "lab_id": hid, "patient_id": p, "patient": patient("示例患者"), "doctor_id": "CDR01", "diagnosis": "体检",
            "items": [{"code": "C001-XCG"}]});
        let o = e.call_value("lab-order-submit", &o.to_string())?;
        orders += 1;
        if i == 0 {
            continue;
        }
        let pay = json!({"order_id": o["order_id"], "payment_status": "paid", "receipt_no": format!("DEMO-SF-{i}")});
        e.call_value("lab-order-payment", &pay.to_string())?;
        let printed = e.call_value("specimen-print", &json!({"order_id": o["order_id"]}).to_string())?;
        if i == 2 {
            let barcode = &printed["specimens"][0]["barcode"];
            e.call_value("shipment-create", &json!({"institution_id": "C001", "barcodes": [barcode], "sender": "赵护士"}).to_string())?;
        }
    }
    Ok(json!({"booked": booked, "held": held, "cancelled": cancelled, "referrals": referrals, "exam_applications": 1, "lab_orders": orders}))
}

/// The hospital's lab offers the standard panels under its own codes and
/// C001's items and projects are mapped, so a community centre can order
/// commissioned tests at once (`lab-order-submit`). Imports upsert, so a
/// restart on the same store loads the same state again.
fn load_lab(e: &Engine, lab_id: &str) -> Result<Value, yilian_core::Error> {
    let items = e.call_value("lab-std-item-import", &json!({"content": LAB_STANDARD_ITEMS}).to_string())?;
    e.call_value("lab-resource-import", &json!({"content": LAB_PANELS}).to_string())?;
    let panels = [
        ("STD-P-CBC", "LIS-1001"),
        ("STD-P-LFT", "LIS-2001"),
        ("STD-P-RFT", "LIS-2002"),
        ("STD-P-INF", "LIS-3001"),
        ("STD-P-HBA1C", "LIS-1010"),
        ("STD-P-COAG", "LIS-4001"),
        ("STD-P-ELE", "LIS-2005"),
    ];
    for (std, local) in panels {
        e.call_value("lab-local-code-set", &json!({"lab_id": lab_id, "resource_code": std, "local_code": local}).to_string())?;
    }
    let mapped = e.call_value("lab-mapping-import", &json!({"institution_id": "C001", "kind": "items", "content": LAB_C001_ITEMS}).to_string())?;
    e.call_value(
        "lab-inst-project-upsert",
        &json!({"institution_id": "C001", "projects": [
            {"code": "C001-XCG", "name": "血常规", "std_code": "STD-P-CBC"},
            {"code": "C001-GGN", "name": "肝功能", "std_code": "STD-P-LFT"},
            {"code": "C001-CRB", "name": "传染病四项", "std_code": "STD-P-INF"}
        ]})
        .to_string(),
    )?;
    Ok(json!({"lab_id": lab_id, "standard_items": items["imported"], "panels": panels.len(), "C001_items_mapped": mapped["mapped"]}))
}

/// (year, month, day) from "YYYY-MM-DD"; the sandbox does not need chrono for one date.
fn parse_date(s: &str) -> Option<(i64, u32, u32)> {
    let mut it = s.split('-');
    let y = it.next()?.parse().ok()?;
    let m = it.next()?.parse().ok()?;
    let d = it.next()?.parse().ok()?;
    (1..=12).contains(&m).then_some((y, m, d))
}

/// Civil date arithmetic via days since the epoch (Howard Hinnant's algorithm).
fn add_days((y, m, d): (i64, u32, u32), n: i64) -> String {
    let (y2, m2) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 as i64 + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468 + n;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_roll_over_months_and_leap_years() {
        assert_eq!(add_days((2024, 10, 29), 0), "2024-10-29");
        assert_eq!(add_days((2024, 10, 29), 7), "2024-11-05");
        assert_eq!(add_days((2024, 2, 27), 2), "2024-02-29");
        assert_eq!(add_days((2023, 2, 27), 2), "2023-03-01");
        assert_eq!(add_days((2024, 12, 30), 3), "2025-01-02");
    }
}

#[cfg(test)]
mod load_tests {
    use super::*;

    #[test]
    fn the_demo_loads_twice_on_one_store_and_a_centre_can_order_lab_tests() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = json!({"data_dir": dir.path()}).to_string();
        for round in 0..2 {
            let e = Engine::open(&cfg).unwrap();
            let out = load_with_activity(&e).unwrap();
            assert_eq!(out["lab"]["C001_items_mapped"], 24, "{out}");
            // A week of activity on the fresh store; nothing more on a restart.
            match round {
                0 => assert!(out["activity"]["booked"].as_u64().unwrap() > 20 && out["activity"]["lab_orders"] == 3, "{out}"),
                _ => assert!(out["activity"]["skipped"].is_string(), "{out}"),
            }
            e.close();
        }
        let e = Engine::open(&cfg).unwrap();
        let search = e.call_value("lab-item-search", &json!({"institution_id": "C001", "lab_id": "H001", "query": "xcg"}).to_string()).unwrap();
        assert!(search.to_string().contains("血常规"), "{search}");
        let order = e
            .call_value(
                "lab-order-submit",
                &json!({"institution_id": "C001", "lab_id": "H001", "patient_id": "P001", "patient": {"name": "张三", "sex": "男"},
                        "doctor_id": "D01", "diagnosis": "体检", "items": [{"code": "C001-XCG"}]})
                .to_string(),
            )
            .unwrap();
        assert_eq!(order["status"], "submitted");
    }
}
