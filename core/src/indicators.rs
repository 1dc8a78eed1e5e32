//! The monitoring indicators (M1, #19 item 3: the source's 监测指标体系构建,
//! and the exam and lab statistics centres), computed for any period and
//! institution from what the engine recorded: bookings (and those retired
//! to the store), referral, exam and consultation cases with the step
//! history of each, lab orders, specimens, reports and critical values,
//! the upstream hospitals' push and reconciliation record, and the command
//! layer's own counts.
//!
//! Every indicator is one row of [`INDICATORS`]: its id, group, both names,
//! what its numerator and denominator count (served to callers and the
//! docs, `indicator-definitions`), and the function that counts them — or,
//! for an indicator the records cannot support (医疗事故发生率 …), what data
//! it would need. Only counts and durations leave this module: no patient,
//! doctor or person is named, so the regulator reads them all.
//!
//! A period is `[date_from 00:00, date_to + 1 day 00:00)` in the engine's
//! time zone; an object counts in the period its defining instant falls in
//! (a booking by when it was made, a referral by when it was applied, …).
//! An institution filter keeps what that institution did or received (a
//! booking of its patients or on its slots, a case it sent or took).
//!
//! Locks: each count takes one domain's lock at a time (the referral or lab
//! state, a booking shard), never two.

use crate::clock::Millis;
use crate::domains::Domains;
use crate::error::{Error, ErrorCode, Result};
use crate::model::{Booking, BookingStatus, SlotKind};
use crate::principal::Role;
use crate::request::Req;
use chrono::{Duration, NaiveDate, TimeZone};
use serde_json::{json, Value};

/// What one indicator counts in a period.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Measure {
    pub numerator: f64,
    pub denominator: f64,
}

impl Measure {
    fn of(numerator: u64, denominator: u64) -> Measure {
        Measure { numerator: numerator as f64, denominator: denominator as f64 }
    }
    /// The value: the ratio (or mean, for durations), `None` with nothing to count.
    fn value(&self, unit: Unit) -> Option<f64> {
        match unit {
            Unit::Count | Unit::Micros => Some(self.numerator),
            _ if self.denominator == 0.0 => None,
            _ => Some(((self.numerator / self.denominator) * 10_000.0).round() / 10_000.0),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    /// numerator / denominator, 0–1.
    Ratio,
    /// A mean duration: total minutes / how many.
    Minutes,
    /// A count (the numerator; no denominator).
    Count,
    /// A duration in microseconds (the numerator; no denominator).
    Micros,
    /// A mean score from 1 to 5: total / how many.
    Score,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Ratio => "ratio",
            Unit::Minutes => "minutes",
            Unit::Count => "count",
            Unit::Micros => "microseconds",
            Unit::Score => "mean_score_1_5",
        }
    }
}

/// The period, institution and options one computation is for.
pub(crate) struct Ctx<'a> {
    d: &'a Domains,
    from: Millis,
    to: Millis,
    institution: Option<&'a str>,
    /// `within_hours` of the timeliness indicators (default 24).
    within_ms: Millis,
}

impl Ctx<'_> {
    fn in_period(&self, at: Millis) -> bool {
        at >= self.from && at < self.to
    }
    fn concerns(&self, a: &str, b: &str) -> bool {
        self.institution.is_none_or(|i| i == a || i == b)
    }
}

type Count = fn(&Ctx) -> Result<Measure>;

/// One indicator.
pub(crate) struct Indicator {
    pub id: &'static str,
    /// 医疗服务质量, 医疗资源利用效率, 健康管理效果, 信息化建设, or a statistics centre.
    pub group: &'static str,
    pub name: &'static str,
    pub name_zh: &'static str,
    pub unit: Unit,
    pub numerator: &'static str,
    pub denominator: &'static str,
    /// How it is counted; `None`: the records cannot support it.
    count: Option<Count>,
    /// For an unsupported one: the data it would need.
    pub needs: &'static str,
}

const QUALITY: &str = "service_quality";
const RESOURCES: &str = "resource_efficiency";
const HEALTH: &str = "health_management";
const IT: &str = "information_systems";
const EXAMS: &str = "exam_statistics";
const LABS: &str = "lab_statistics";

macro_rules! supported {
    ($id:literal, $group:expr, $name:literal, $zh:literal, $unit:ident, $num:literal, $den:literal, $f:expr) => {
        Indicator { id: $id, group: $group, name: $name, name_zh: $zh, unit: Unit::$unit, numerator: $num, denominator: $den, count: Some($f), needs: "" }
    };
}
macro_rules! unsupported {
    ($id:literal, $group:expr, $name:literal, $zh:literal, $needs:literal) => {
        Indicator { id: $id, group: $group, name: $name, name_zh: $zh, unit: Unit::Ratio, numerator: "", denominator: "", count: None, needs: $needs }
    };
}

/// Every indicator, in the source's order (its four groups), then the
/// exam and lab statistics centres.
pub(crate) const INDICATORS: &[Indicator] = &[
    supported!("referral_accuracy", QUALITY, "referral accuracy", "基层医疗机构转诊准确率", Ratio,
        "up-referrals applied in the period whose disease code is in the referral-disease catalogue (转诊病种)",
        "up-referrals applied in the period", referral_accuracy),
    supported!("referral_acceptance_timeliness", QUALITY, "referral acceptance timeliness", "转诊接收及时率", Ratio,
        "up-referrals applied in the period that the hospital took on (accepted, deposit paid or bed reserved) within `within_hours` (default 24) of the application",
        "up-referrals applied in the period, less those the applicant cancelled before the hospital took them on", referral_timeliness),
    supported!("referral_acceptance_minutes", QUALITY, "time to accept a referral", "转诊接收平均时长", Minutes,
        "minutes from application to the hospital taking it on, summed over the up-referrals applied in the period and taken on",
        "those up-referrals", referral_acceptance_minutes),
    supported!("booking_success_rate", QUALITY, "booking success rate", "患者预约成功率", Ratio,
        "bookings made in the period that reached `booked` (booked directly, or a hold confirmed), even if cancelled later",
        "bookings made in the period (holds and direct bookings; a request refused outright leaves no booking and is in the interface error rate)", booking_success),
    supported!("cancellation_rate", QUALITY, "cancellation rate", "预约取消率", Ratio,
        "bookings made in the period that reached `booked` and were then cancelled",
        "bookings made in the period that reached `booked`", cancellation_rate),
    unsupported!("no_show_rate", QUALITY, "no-show rate", "爽约率",
        "the hospital's attendance record per booking (签到/到诊): none of the source's interfaces carries it"),
    supported!("patient_satisfaction", QUALITY, "patient satisfaction", "患者就诊满意度", Score,
        "satisfaction scores (1–5) patients gave at follow-ups recorded in the period, summed",
        "scores recorded in the period", satisfaction),
    unsupported!("medical_incident_rate", QUALITY, "medical incident rate", "医疗事故发生率",
        "incident reports (医疗事故) per visit from the hospitals' quality systems; no interface of the source carries them"),
    supported!("consultation_effectiveness", QUALITY, "consultation effectiveness", "远程会诊有效率", Ratio,
        "consultations applied in the period that were completed with an opinion",
        "consultations applied in the period, less those the applicant cancelled", consultation_effectiveness),
    supported!("community_bed_utilisation", RESOURCES, "community bed utilisation", "基层医疗机构床位利用率", Ratio,
        "bed-days of community institutions' beds reserved or occupied on the days of the period",
        "bed-days of those beds on the days of the period (beds × days)", community_beds),
    supported!("device_utilisation", RESOURCES, "exam device utilisation", "检查设备利用率", Ratio,
        "places booked on device (exam) slots of the days of the period",
        "places on those slots (their capacity)", device_utilisation),
    supported!("bed_turnover", RESOURCES, "inpatient bed turnover", "住院周转率", Ratio,
        "inpatient referrals discharged in the period",
        "hospital beds (bed slots of hospitals)", bed_turnover),
    supported!("resource_sharing_rate", RESOURCES, "resource sharing rate", "医疗资源共享率", Ratio,
        "bookings made in the period by one institution for a place of another (a community centre booking the hospital's slot)",
        "bookings made in the period", resource_sharing),
    unsupported!("health_record_rate", HEALTH, "health-record coverage", "居民健康档案建档率",
        "the region's resident population and the health-record register (健康档案), outside this system"),
    supported!("chronic_management_rate", HEALTH, "chronic patients under standard management", "慢病患者规范管理率", Ratio,
        "chronic patients registered who are in management at the end of the period",
        "chronic patients registered by the end of the period and not ended before it began", chronic_management),
    supported!("follow_up_completion_rate", HEALTH, "follow-up completion", "随访完成率", Ratio,
        "follow-ups due in the period that were completed", "follow-ups due in the period, less those cancelled", follow_up_completion),
    supported!("health_education_delivered", HEALTH, "health education delivered", "健康宣教完成量", Count,
        "health-education items recorded as delivered in the period", "", education_delivered),
    unsupported!("health_literacy_rate", HEALTH, "health literacy improvement", "居民健康素养提升率",
        "population health-literacy surveys, outside this system"),
    unsupported!("disease_incidence_trend", HEALTH, "disease incidence trend", "疾病发病率变化趋势",
        "diagnoses of the whole population over time and the population size, outside this system"),
    supported!("interface_error_rate", IT, "system failure rate (interface)", "系统故障率", Ratio,
        "command-layer calls that failed in the system (storage or internal errors) since the engine started",
        "command-layer calls since the engine started (the period does not apply: the counts are the engine's own)", interface_failures),
    supported!("interface_latency_p99", IT, "interface latency (p99)", "接口响应时间（99分位）", Micros,
        "the bound (µs, a histogram bucket's: 1, 2, 5, 10 … 100000) under which 99% of command-layer calls finished since the engine started; 100000 means 100 ms or more", "", interface_latency),
    unsupported!("mean_time_to_repair", IT, "mean time to repair", "平均故障修复时间",
        "outage start and end records from the operators' incident log"),
    supported!("data_error_rate", IT, "data error rate", "数据错误率", Ratio,
        "command-layer calls refused as malformed input (1xxx errors) since the engine started",
        "command-layer calls since the engine started", data_errors),
    supported!("data_update_timeliness", IT, "data update timeliness", "数据更新及时率", Ratio,
        "days an upstream hospital pushed its schedule by the deadline (`upstream.schedule_deadline`)",
        "days the deadline was checked, per upstream hospital (a mirror's record, since it first ran)", update_timeliness),
    supported!("reconciliation_drift_rate", IT, "reconciliation drift", "号源对账差异率", Ratio,
        "slots found drifting from their hospital's count by reconciliation", "slots reconciliation checked (a mirror's record)", drift_rate),
    unsupported!("information_leak_rate", IT, "information leak incidents", "信息泄露事件发生率",
        "security incident reports from the operators; the engine keeps personal data out of logs and errors but cannot observe a leak"),
    unsupported!("vulnerability_fix_rate", IT, "vulnerability fix rate", "安全漏洞修复率",
        "the vulnerability scanner's findings and their fixes, outside this system"),
    supported!("critical_value_ack_timeliness", LABS, "critical values acknowledged in time", "危急值及时确认率", Ratio,
        "critical values published in the period and acknowledged before their deadline",
        "critical values published in the period", critical_in_time),
    supported!("critical_value_ack_minutes", LABS, "time to acknowledge a critical value", "危急值平均确认时长", Minutes,
        "minutes from publication to acknowledgement, summed over the critical values published in the period and acknowledged",
        "those critical values", critical_minutes),
    supported!("lab_orders", LABS, "commissioned test orders", "委托检验申请量", Count,
        "lab orders submitted in the period", "", lab_orders),
    supported!("lab_specimen_rejection_rate", LABS, "specimen rejection rate", "标本拒收率", Ratio,
        "specimens received or rejected by the lab in the period that were rejected",
        "specimens received or rejected by the lab in the period", lab_rejections),
    supported!("lab_turnaround_minutes", LABS, "lab turnaround", "检验报告平均周转时长", Minutes,
        "minutes from the specimen's reception to its final report, summed over the final reports of the period",
        "final reports of the period", lab_turnaround),
    supported!("exam_items", EXAMS, "exam items applied", "检查申请量", Count,
        "exam items applied in the period", "", exam_items),
    supported!("exam_report_rate", EXAMS, "exams reported", "检查报告完成率", Ratio,
        "exam items applied in the period that have a report", "exam items applied in the period, less those cancelled or refunded", exam_reported),
    supported!("exam_report_turnaround_minutes", EXAMS, "exam report turnaround", "检查报告平均周转时长", Minutes,
        "minutes from an exam item's application to its first report, summed over the items applied in the period and reported",
        "those items", exam_turnaround),
];

// ------------------------------------------------------------ bookings

/// Every booking made in the period that concerns the institution, with
/// its slot's hospital and kind: those in memory, and those retired to the
/// store when the period reaches back past the retention window.
fn bookings(c: &Ctx, mut f: impl FnMut(&Booking, &str, SlotKind)) -> Result<()> {
    let pool = &c.d.pool;
    let table = pool.table.load();
    let mut seen = std::collections::HashSet::new();
    let mut each = |b: &Booking, slot: Option<&crate::pool::Slot>| {
        let Some(s) = slot else { return };
        if c.in_period(b.created_ms) && c.concerns(b.clinic_id.as_deref().unwrap_or(""), &s.info.hospital_id) && seen.insert(b.id) {
            f(b, &s.info.hospital_id, s.info.kind);
        }
    };
    pool.bookings.for_each(|_, b| each(b, table.slots.get(b.slot_idx as usize).map(|s| &**s)));
    let window = pool.cfg.retention_days as Millis * 86_400_000;
    if let Some(store) = pool.store.as_ref().filter(|_| c.from < pool.clock.now_ms().saturating_sub(window)) {
        store.scan_after(crate::pool::tables::BOOKINGS_RETIRED, "", |row| {
            let b: Booking = crate::store::parse_row(crate::pool::tables::BOOKINGS_RETIRED, &row.key, &row.body)?;
            let slot = b.slot_id.as_deref().and_then(|id| table.by_id.get(id)).and_then(|i| table.slots.get(*i as usize));
            each(&b, slot.map(|s| &**s));
            Ok(true)
        })?;
    }
    Ok(())
}

fn booking_success(c: &Ctx) -> Result<Measure> {
    let (mut made, mut ok) = (0, 0);
    bookings(c, |b, _, _| {
        made += 1;
        ok += b.was_booked as u64;
    })?;
    Ok(Measure::of(ok, made))
}

fn cancellation_rate(c: &Ctx) -> Result<Measure> {
    let (mut booked, mut cancelled) = (0, 0);
    bookings(c, |b, _, _| {
        if b.was_booked {
            booked += 1;
            cancelled += (b.status == BookingStatus::Cancelled) as u64;
        }
    })?;
    Ok(Measure::of(cancelled, booked))
}

fn resource_sharing(c: &Ctx) -> Result<Measure> {
    let (mut all, mut shared) = (0, 0);
    bookings(c, |b, hospital, _| {
        all += 1;
        shared += b.clinic_id.as_deref().is_some_and(|i| i != hospital) as u64;
    })?;
    Ok(Measure::of(shared, all))
}

// ------------------------------------------------------------ slots

/// The local days of the period.
fn days(c: &Ctx) -> (NaiveDate, NaiveDate) {
    let tz = &c.d.pool.cfg.tz;
    let day = |ms: Millis| chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().with_timezone(tz).date_naive();
    (day(c.from), day(c.to - 1))
}

fn device_utilisation(c: &Ctx) -> Result<Measure> {
    let (first, last) = days(c);
    let table = c.d.pool.table.load();
    let now = c.d.pool.clock.now_ms();
    let (mut cap, mut booked) = (0u64, 0u64);
    for s in table.slots.iter().filter(|s| s.info.device_id.is_some() && s.info.date >= first && s.info.date <= last && c.concerns(&s.info.hospital_id, "")) {
        let st = s.state.lock();
        let a = s.availability(&st, now, &c.d.pool.cfg);
        cap += a.capacity as u64;
        booked += a.booked as u64;
    }
    Ok(Measure::of(booked, cap))
}

/// Bed-days of community beds taken (reserved or occupied) over the days of
/// the period, read from bed bookings' lives: a bed booking takes its bed
/// from when it was made until it ended (or now).
fn community_beds(c: &Ctx) -> Result<Measure> {
    let pool = &c.d.pool;
    let table = pool.table.load();
    let cat = pool.catalog.data.read();
    let community = |h: &str| !cat.hospitals.contains_key(h);
    let beds: Vec<u32> =
        table.slots.iter().filter(|s| s.info.kind == SlotKind::Bed && community(&s.info.hospital_id) && c.concerns(&s.info.hospital_id, "")).map(|s| s.idx).collect();
    drop(cat);
    let (first, last) = days(c);
    let n_days = (last - first).num_days() + 1;
    let denominator = beds.len() as u64 * n_days.max(0) as u64;
    let now = pool.clock.now_ms();
    let mut taken_ms: i64 = 0;
    pool.bookings.for_each(|_, b| {
        if !beds.contains(&b.slot_idx) || !b.was_booked {
            return;
        }
        let end = if b.status.is_active() { now } else { b.updated_ms };
        let (s, e) = (b.created_ms.max(c.from), end.min(c.to));
        taken_ms += (e - s).max(0);
    });
    Ok(Measure { numerator: taken_ms as f64 / 86_400_000.0, denominator: denominator as f64 })
}

fn bed_turnover(c: &Ctx) -> Result<Measure> {
    let beds = {
        let table = c.d.pool.table.load();
        let cat = c.d.pool.catalog.data.read();
        table.slots.iter().filter(|s| s.info.kind == SlotKind::Bed && cat.hospitals.contains_key(&s.info.hospital_id) && c.concerns(&s.info.hospital_id, "")).count()
    };
    let r = c.d.referral.inner.lock();
    let discharged = r
        .referrals
        .values()
        .filter(|x| x.kind == crate::referral::Kind::Inpatient && c.concerns(&x.clinic_id, &x.hospital_id))
        .filter(|x| x.history.iter().any(|s| s.to == "discharged" && c.in_period(s.at_ms)))
        .count();
    Ok(Measure::of(discharged as u64, beds as u64))
}

// ------------------------------------------------------------ referrals

/// The states in which the hospital has taken an up-referral on.
const TAKEN: &[&str] = &["accepted", "deposit_paid", "bed_reserved", "admitted", "completed", "discharged"];

/// Up-referrals applied in the period, with when the hospital took each on.
fn up_referrals(c: &Ctx) -> Vec<(Millis, Option<Millis>, bool, Option<String>)> {
    let r = c.d.referral.inner.lock();
    r.referrals
        .values()
        .filter(|x| x.kind != crate::referral::Kind::Down && c.in_period(x.created_ms) && c.concerns(&x.clinic_id, &x.hospital_id))
        .map(|x| {
            let taken = x.history.iter().find(|s| TAKEN.contains(&s.to.as_str())).map(|s| s.at_ms);
            let withdrawn = taken.is_none() && x.status == "cancelled";
            (x.created_ms, taken, withdrawn, x.disease_code.clone())
        })
        .collect()
}

fn referral_accuracy(c: &Ctx) -> Result<Measure> {
    let all = up_referrals(c);
    let r = c.d.referral.inner.lock();
    let listed = all.iter().filter(|(_, _, _, code)| code.as_ref().is_some_and(|k| r.diseases.contains_key(k))).count();
    Ok(Measure::of(listed as u64, all.len() as u64))
}

fn referral_timeliness(c: &Ctx) -> Result<Measure> {
    let all = up_referrals(c);
    let counted: Vec<_> = all.iter().filter(|(_, _, withdrawn, _)| !withdrawn).collect();
    let in_time = counted.iter().filter(|(at, taken, _, _)| taken.is_some_and(|t| t - at <= c.within_ms)).count();
    Ok(Measure::of(in_time as u64, counted.len() as u64))
}

fn referral_acceptance_minutes(c: &Ctx) -> Result<Measure> {
    let taken: Vec<Millis> = up_referrals(c).iter().filter_map(|(at, taken, _, _)| taken.map(|t| t - at)).collect();
    Ok(Measure { numerator: taken.iter().sum::<Millis>() as f64 / 60_000.0, denominator: taken.len() as f64 })
}

fn consultation_effectiveness(c: &Ctx) -> Result<Measure> {
    let r = c.d.referral.inner.lock();
    let (mut counted, mut done) = (0, 0);
    for x in r.consultations.values().filter(|x| c.in_period(x.created_ms) && c.concerns(&x.clinic_id, &x.hospital_id)) {
        let withdrawn = x.status == "cancelled" && !x.history.iter().any(|s| s.to == "approved" || s.to == "rejected");
        if !withdrawn {
            counted += 1;
            done += (x.status == "completed") as u64;
        }
    }
    Ok(Measure::of(done, counted))
}

// ------------------------------------------------------------ exams

/// Exam items applied in the period: (applied at, first report at, withdrawn).
fn exam_item_lives(c: &Ctx) -> Vec<(Millis, Option<Millis>, bool)> {
    let r = c.d.referral.inner.lock();
    r.exams
        .values()
        .filter(|x| c.in_period(x.created_ms) && c.concerns(&x.clinic_id, &x.hospital_id))
        .flat_map(|x| x.items.iter().map(move |i| (x.created_ms, i)))
        .map(|(at, i)| {
            let reported = i.history.iter().find(|s| s.to == "reported").map(|s| s.at_ms);
            (at, reported, reported.is_none() && (i.status == "cancelled" || i.status == "refunded"))
        })
        .collect()
}

fn exam_items(c: &Ctx) -> Result<Measure> {
    Ok(Measure::of(exam_item_lives(c).len() as u64, 0))
}

fn exam_reported(c: &Ctx) -> Result<Measure> {
    let all = exam_item_lives(c);
    let counted: Vec<_> = all.iter().filter(|x| !x.2).collect();
    Ok(Measure::of(counted.iter().filter(|x| x.1.is_some()).count() as u64, counted.len() as u64))
}

fn exam_turnaround(c: &Ctx) -> Result<Measure> {
    let took: Vec<Millis> = exam_item_lives(c).iter().filter_map(|(at, rep, _)| rep.map(|r| r - at)).collect();
    Ok(Measure { numerator: took.iter().sum::<Millis>() as f64 / 60_000.0, denominator: took.len() as f64 })
}

// ------------------------------------------------------------ lab

fn critical_in_time(c: &Ctx) -> Result<Measure> {
    let lab = c.d.lab.data.lock();
    let (mut all, mut in_time) = (0, 0);
    for v in lab.criticals.values().filter(|v| c.in_period(v.published_ms) && c.concerns(&v.institution_id, &v.lab_id)) {
        all += 1;
        in_time += v.ack.as_ref().is_some_and(|a| a.at_ms <= v.deadline_ms) as u64;
    }
    Ok(Measure::of(in_time, all))
}

fn critical_minutes(c: &Ctx) -> Result<Measure> {
    let lab = c.d.lab.data.lock();
    let took: Vec<Millis> = lab
        .criticals
        .values()
        .filter(|v| c.in_period(v.published_ms) && c.concerns(&v.institution_id, &v.lab_id))
        .filter_map(|v| v.ack.as_ref().map(|a| a.at_ms - v.published_ms))
        .collect();
    Ok(Measure { numerator: took.iter().sum::<Millis>() as f64 / 60_000.0, denominator: took.len() as f64 })
}

fn lab_orders(c: &Ctx) -> Result<Measure> {
    let lab = c.d.lab.data.lock();
    let n = lab.orders.values().filter(|o| c.in_period(o.created_ms) && c.concerns(&o.institution_id, &o.lab_id)).count();
    Ok(Measure::of(n as u64, 0))
}

fn lab_rejections(c: &Ctx) -> Result<Measure> {
    let lab = c.d.lab.data.lock();
    let (mut seen, mut rejected) = (0, 0);
    for s in lab.specimens.values().filter(|s| c.concerns(&s.institution_id, &s.lab_id)) {
        match (&s.received, &s.rejection) {
            (_, Some(r)) if c.in_period(r.at_ms) => {
                seen += 1;
                rejected += 1;
            }
            (Some(r), None) if c.in_period(r.at_ms) => seen += 1,
            _ => {}
        }
    }
    Ok(Measure::of(rejected, seen))
}

fn lab_turnaround(c: &Ctx) -> Result<Measure> {
    let lab = c.d.lab.data.lock();
    let took: Vec<Millis> = lab
        .reports
        .values()
        .filter(|r| c.concerns(&r.institution_id, &r.lab_id))
        .filter_map(|r| r.revisions.iter().find(|v| v.complete))
        .filter(|v| c.in_period(v.report_ms))
        .map(|v| (v.report_ms - v.received_ms).max(0))
        .collect();
    Ok(Measure { numerator: took.iter().sum::<Millis>() as f64 / 60_000.0, denominator: took.len() as f64 })
}

// ------------------------------------------------------------ chronic disease and follow-up

fn follow_ups(c: &Ctx) -> crate::chronic::FollowUpStats {
    crate::chronic::follow_up_stats(&c.d.chronic, c.from, c.to, c.institution)
}

fn satisfaction(c: &Ctx) -> Result<Measure> {
    let s = follow_ups(c);
    Ok(Measure::of(s.satisfaction_sum, s.satisfaction_count))
}

fn chronic_management(c: &Ctx) -> Result<Measure> {
    let s = follow_ups(c);
    Ok(Measure::of(s.in_management, s.registered))
}

fn follow_up_completion(c: &Ctx) -> Result<Measure> {
    let s = follow_ups(c);
    Ok(Measure::of(s.completed, s.due))
}

fn education_delivered(c: &Ctx) -> Result<Measure> {
    Ok(Measure::of(follow_ups(c).education_delivered, 0))
}

// ------------------------------------------------------------ the engine's own record

fn interface_failures(c: &Ctx) -> Result<Measure> {
    let t = c.d.monitor.totals();
    Ok(Measure::of(t.system_errors, t.calls))
}

fn data_errors(c: &Ctx) -> Result<Measure> {
    let t = c.d.monitor.totals();
    Ok(Measure::of(t.input_errors, t.calls))
}

fn interface_latency(c: &Ctx) -> Result<Measure> {
    Ok(Measure::of(c.d.monitor.totals().p99_us, 0))
}

fn update_timeliness(c: &Ctx) -> Result<Measure> {
    let marks = c.d.upstream.hospitals.lock();
    let (mut checked, mut late) = (0, 0);
    for (_, m) in marks.iter().filter(|(h, _)| c.concerns(h, "")) {
        checked += m.days_checked as u64;
        late += m.days_late as u64;
    }
    Ok(Measure::of(checked - late.min(checked), checked))
}

fn drift_rate(c: &Ctx) -> Result<Measure> {
    let marks = c.d.upstream.hospitals.lock();
    let (mut checked, mut drifted) = (0, 0);
    for (_, m) in marks.iter().filter(|(h, _)| c.concerns(h, "")) {
        checked += m.slots_checked;
        drifted += m.slots_drifted;
    }
    Ok(Measure::of(drifted, checked))
}

// ------------------------------------------------------------ commands

fn period(d: &Domains, r: &Req) -> Result<(Millis, Millis, NaiveDate, NaiveDate)> {
    let tz = &d.pool.cfg.tz;
    let today = chrono::DateTime::from_timestamp_millis(d.pool.clock.now_ms()).unwrap_or_default().with_timezone(tz).date_naive();
    let from = r.opt_date("date_from")?.unwrap_or(today);
    let to = r.opt_date("date_to")?.unwrap_or(from);
    if to < from {
        return Err(Error::invalid_zh("date_to", "must not be before date_from", "不得早于 `date_from`"));
    }
    if (to - from).num_days() > 3660 {
        return Err(Error::invalid_zh("date_to", "the period may be at most 10 years", "统计期间最长10年"));
    }
    let ms = |day: NaiveDate| tz.from_local_datetime(&day.and_time(chrono::NaiveTime::MIN)).earliest().map(|t| t.timestamp_millis()).unwrap_or(0);
    Ok((ms(from), ms(to + Duration::days(1)), from, to))
}

/// The institution the caller may see: its own (an institution principal),
/// or the one it names (the platform, the regulator), or all.
fn institution<'a>(r: &'a Req) -> Result<Option<&'a str>> {
    let named = r.opt_str("institution_id")?;
    match r.who.role {
        Role::Platform | Role::Regulator => Ok(named),
        _ => {
            let own = r.who.institution_id.as_deref();
            if named.is_some() && named != own {
                return Err(Error::with(
                    ErrorCode::Forbidden,
                    "an institution reads its own indicators only",
                    "机构只能查看本机构的指标",
                ));
            }
            Ok(own)
        }
    }
}

/// A count as an integer, anything else to three decimals (bed-days, minutes).
fn number(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        Value::from(x as i64)
    } else {
        Value::from((x * 1000.0).round() / 1000.0)
    }
}

/// One indicator's answer for a period.
fn answer(ind: &Indicator, c: &Ctx) -> Result<Value> {
    let mut v = json!({"id": ind.id, "group": ind.group, "name": ind.name, "name_zh": ind.name_zh, "unit": ind.unit.as_str()});
    match ind.count {
        None => {
            v["supported"] = false.into();
            v["needs"] = ind.needs.into();
        }
        Some(f) => {
            let m = f(c)?;
            v["supported"] = true.into();
            v["numerator"] = number(m.numerator);
            if !matches!(ind.unit, Unit::Count | Unit::Micros) {
                v["denominator"] = number(m.denominator);
            }
            v["value"] = m.value(ind.unit).into();
        }
    }
    Ok(v)
}

/// `indicators`: every indicator (or those of `ids`, or of `group`) for the
/// period `date_from`–`date_to` (inclusive; default today) and institution;
/// `"series": "day"` adds each supported one day by day (for charts, at
/// most 400 days).
fn indicators(d: &Domains, r: &Req) -> Result<Value> {
    d.pool.check_open()?;
    let (from, to, first, last) = period(d, r)?;
    let inst = institution(r)?;
    let within_hours = r.opt_u64_in("within_hours", 1, 24 * 30)?.unwrap_or(24);
    let ids: Option<Vec<&str>> = match r.opt_array("ids")? {
        None => None,
        Some(a) => Some(a.iter().map(|v| v.as_str().ok_or_else(|| Error::invalid("ids", "must be an array of indicator ids"))).collect::<Result<_>>()?),
    };
    // Errors name the position, never the value sent (it may be anything, even personal data).
    if let Some(i) = ids.iter().flatten().position(|i| !INDICATORS.iter().any(|x| x.id == *i)) {
        return Err(Error::invalid_zh(
            "ids",
            &format!("ids[{i}] is not an indicator id (see indicator-definitions)"),
            &format!("`ids[{i}]` 不是指标编号（见 `indicator-definitions`）"),
        ));
    }
    let group = r.opt_str("group")?;
    if group.is_some_and(|g| !INDICATORS.iter().any(|x| x.group == g)) {
        return Err(Error::invalid_zh("group", "is not an indicator group (see indicator-definitions)", "不是指标分组（见 `indicator-definitions`）"));
    }
    let series = match r.opt_str("series")? {
        None => false,
        Some("day") => true,
        Some(_) => return Err(Error::invalid_zh("series", "expected `day`", "应为 `day`")),
    };
    if series && (last - first).num_days() >= 400 {
        return Err(Error::invalid_zh("series", "a day-by-day series covers at most 400 days", "按日序列最多400天"));
    }
    let chosen: Vec<&Indicator> =
        INDICATORS.iter().filter(|x| ids.as_ref().is_none_or(|ids| ids.contains(&x.id)) && group.is_none_or(|g| x.group == g)).collect();
    let within_ms = within_hours as Millis * 3_600_000;
    let ctx = Ctx { d, from, to, institution: inst, within_ms };
    let mut out = Vec::new();
    for ind in &chosen {
        let mut v = answer(ind, &ctx)?;
        if series && ind.count.is_some() {
            let mut points = Vec::new();
            let mut day = first;
            while day <= last {
                let (f, t, _, _) = period_of(d, day)?;
                let one = Ctx { d, from: f, to: t, institution: inst, within_ms };
                let m = answer(ind, &one)?;
                points.push(json!({"date": day.to_string(), "value": m["value"], "numerator": m["numerator"], "denominator": m.get("denominator")}));
                day += Duration::days(1);
            }
            v["series"] = points.into();
        }
        out.push(v);
    }
    Ok(json!({"date_from": first.to_string(), "date_to": last.to_string(), "institution_id": inst, "within_hours": within_hours, "indicators": out}))
}

fn period_of(d: &Domains, day: NaiveDate) -> Result<(Millis, Millis, NaiveDate, NaiveDate)> {
    let m = serde_json::Map::from_iter([("date_from".to_string(), Value::from(day.to_string()))]);
    let who = crate::principal::Principal::platform();
    period(d, &Req::new(&m, &who))
}

/// `indicator-definitions`: every indicator with what it counts, or what an
/// unsupported one would need.
fn definitions() -> Value {
    let list: Vec<Value> = INDICATORS
        .iter()
        .map(|x| {
            json!({"id": x.id, "group": x.group, "name": x.name, "name_zh": x.name_zh, "unit": x.unit.as_str(), "supported": x.count.is_some(),
                "numerator": (!x.numerator.is_empty()).then_some(x.numerator), "denominator": (!x.denominator.is_empty()).then_some(x.denominator),
                "needs": (!x.needs.is_empty()).then_some(x.needs)})
        })
        .collect();
    json!({"total": list.len(), "indicators": list})
}

/// `case-counts`: how many cases stand in each state now — referrals by
/// kind, exam items, consultations, lab orders and specimens — for the
/// network or one institution (the console's "in flight" view; counts only).
fn case_counts(d: &Domains, r: &Req) -> Result<Value> {
    d.pool.check_open()?;
    let inst = institution(r)?;
    let concerns = |a: &str, b: &str| inst.is_none_or(|i| i == a || i == b);
    fn bump(m: &mut serde_json::Map<String, Value>, k: &str) {
        let n = m.get(k).and_then(Value::as_u64).unwrap_or(0);
        m.insert(k.to_string(), (n + 1).into());
    }
    let name = |v: Value| v.as_str().unwrap_or("").to_string();
    let (mut referrals, mut exams, mut consultations) = (serde_json::Map::new(), serde_json::Map::new(), serde_json::Map::new());
    {
        let rf = d.referral.inner.lock();
        for x in rf.referrals.values().filter(|x| concerns(&x.clinic_id, &x.hospital_id)) {
            let kind = name(serde_json::to_value(x.kind).unwrap_or_default());
            let e = referrals.entry(kind).or_insert_with(|| json!({}));
            if let Some(m) = e.as_object_mut() {
                bump(m, &x.status);
            }
        }
        for x in rf.exams.values().filter(|x| concerns(&x.clinic_id, &x.hospital_id)) {
            x.items.iter().for_each(|i| bump(&mut exams, &i.status));
        }
        for x in rf.consultations.values().filter(|x| concerns(&x.clinic_id, &x.hospital_id)) {
            bump(&mut consultations, &x.status);
        }
    }
    let (mut orders, mut specimens) = (serde_json::Map::new(), serde_json::Map::new());
    {
        let lab = d.lab.data.lock();
        for o in lab.orders.values().filter(|o| concerns(&o.institution_id, &o.lab_id)) {
            bump(&mut orders, &name(serde_json::to_value(o.status).unwrap_or_default()));
        }
        for s in lab.specimens.values().filter(|s| concerns(&s.institution_id, &s.lab_id)) {
            bump(&mut specimens, &name(serde_json::to_value(s.status).unwrap_or_default()));
        }
    }
    Ok(json!({"institution_id": inst, "referrals": referrals, "exam_items": exams, "consultations": consultations, "lab_orders": orders, "specimens": specimens}))
}

crate::command::command_table! { pub(crate) COMMANDS: fn(&Domains, &Req) -> Result<Value>;
    "indicators", Query, READERS, NONE => indicators;
    "case-counts", Query, READERS, NONE => case_counts;
    "indicator-definitions", Query, EVERYONE, NONE => |_, _| Ok(definitions());
}
