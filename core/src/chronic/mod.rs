//! The chronic-disease centre (慢病健康管理中心) and follow-up (随访, C1–C2).
//!
//! Layout: `disease` (the ICD-10 table and the measurements, as data),
//! `machine` (the registration's and the plan's states, as data), `register`
//! (`chronic-enrol`, `-update`, `-query`, `-view`), `follow` (follow-up
//! plans: made by the cases' steps through [`on_case`], periodic ones by the
//! register, their reminders by the due work, outcomes recorded),
//! `education` (健康宣教: the catalogue, assigned by exam project or ICD-10
//! code, and deliveries), `stats` (the figures the indicators centre reads).
//!
//! Plans made by events: the referral module calls [`on_case`] inside the
//! very transaction of the step that booked an exam, reported it, cancelled
//! it, referred a patient down, discharged one or returned a visit's
//! outcome — so a plan exists exactly when its case step does (one commit;
//! no outbox reading, which the host's acknowledgements would race).
//!
//! Isolation: a community centre sees and changes only its own patients and
//! plans; a hospital reads the plans its cases made; the platform all; the
//! regulator only `follow-up-stats` (counts) and the catalogues. Patient ids
//! are masked on the way out by the registry like every answer.
//!
//! Lock order: this module's lock is the innermost of all: taken after the
//! referral module's (a case step calls [`on_case`] under it), and it never
//! takes another lock while held.

mod disease;
mod education;
mod follow;
mod machine;
mod register;
mod stats;

pub(crate) use follow::{on_case, remind_due, CaseChange, CaseTrigger};
// The indicators centre (M1) reads these figures for its periods and institutions.
#[allow(unused_imports)]
pub(crate) use stats::{follow_up_stats, FollowUpStats};

use crate::clock::Millis;
use crate::error::{Error, ErrorCode, Result};
use crate::pool::{Pool, Txn};
use crate::principal::Role;
use crate::request::Req;
use crate::store::{Snapshot, Write};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

crate::command::command_table! { pub(crate) COMMANDS: fn(&Ctx) -> Result<Value>;
    "chronic-catalog", Query, EVERYONE, NONE => register::catalog;
    "chronic-enrol", Change, COMMUNITY, INSTITUTION => register::enrol;
    "chronic-update", Change, COMMUNITY, INSTITUTION => register::update;
    "chronic-query", Query, COMMUNITY, INSTITUTION => register::query;
    "chronic-view", Query, COMMUNITY, INSTITUTION => register::view;
    "follow-up-query", Query, NETWORK, INSTITUTION => follow::query;
    "follow-up-view", Query, NETWORK, INSTITUTION => follow::view;
    "follow-up-record", Change, COMMUNITY, INSTITUTION => follow::record;
    "follow-up-cancel", Change, COMMUNITY, INSTITUTION => follow::cancel;
    "education-item-set", Change, PLATFORM, NONE => education::set;
    "education-items", Query, EVERYONE, NONE => education::items;
    "education-deliver", Change, COMMUNITY, INSTITUTION => education::deliver;
    "follow-up-stats", Query, CARE_STATS, NONE => stats::command;
}

crate::store::table!(
    /// Chronic registrations, follow-up plans, health-education items and deliveries.
    pub(crate) TABLE = "chronic"
);

/// One call of this module's commands.
pub(crate) struct Ctx<'a> {
    pub pool: &'a Pool,
    pub chronic: &'a ChronicState,
    pub r: &'a Req<'a>,
    pub command: &'static str,
}

pub(crate) fn run(pool: &Pool, chronic: &ChronicState, command: &'static str, r: &Req, h: fn(&Ctx) -> Result<Value>) -> Result<Value> {
    pool.check_open()?;
    h(&Ctx { pool, chronic, r, command })
}

// ---------------------------------------------------------------- settings

/// Config `follow_up`: when the plans fall due.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Settings {
    /// Days between periodic follow-ups, per disease key (`chronic-catalog`).
    pub interval_days: BTreeMap<String, u32>,
    /// The pre-exam follow-up falls due this many hours before the exam.
    pub exam_before_hours: u32,
    /// The post-exam follow-up: days after the exam (or after its report, if later).
    pub exam_after_days: u32,
    /// After a down-referral: days after the date the patient goes down.
    pub down_referral_days: u32,
    /// After a discharge from the hospital.
    pub discharge_days: u32,
    /// After an up-referral's visit outcome came back.
    pub referral_days: u32,
    /// A follow-up completed this many days after it fell due still counts as on time.
    pub on_time_days: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            interval_days: BTreeMap::new(),
            exam_before_hours: 24,
            exam_after_days: 3,
            down_referral_days: 3,
            discharge_days: 7,
            referral_days: 7,
            on_time_days: 7,
        }
    }
}

impl Settings {
    /// The config's `follow_up` object, checked: known diseases, intervals of
    /// 1 to 366 days, offsets up to 90 days (2160 hours).
    pub(crate) fn parse(raw: Option<&Value>) -> Result<Settings> {
        let bad = |key: &str, en: &str, zh: &str| {
            Error::with(ErrorCode::InvalidConfig, format!("config `follow_up.{key}`: {en}"), format!("配置项 `follow_up.{key}` 无效：{zh}"))
        };
        let Some(v) = raw else { return Ok(Settings::default()) };
        let s: Settings = serde_json::from_value(v.clone()).map_err(|e| {
            Error::with(ErrorCode::InvalidConfig, format!("config `follow_up`: {e}"), format!("配置项 `follow_up` 无效：{}", crate::error::json_error_zh(&e)))
        })?;
        for (k, d) in &s.interval_days {
            if disease::by_key(k).is_none() {
                return Err(bad(
                    "interval_days",
                    "names a disease the register does not serve (see `chronic-catalog`)",
                    "包含慢病登记未管理的病种（见 `chronic-catalog`）",
                ));
            }
            if !(1..=366).contains(d) {
                return Err(bad("interval_days", "each interval is 1 to 366 days", "随访间隔应为 1 到 366 天"));
            }
        }
        for (k, n, hi) in [
            ("exam_before_hours", s.exam_before_hours, 2160),
            ("exam_after_days", s.exam_after_days, 90),
            ("down_referral_days", s.down_referral_days, 90),
            ("discharge_days", s.discharge_days, 90),
            ("referral_days", s.referral_days, 90),
            ("on_time_days", s.on_time_days, 90),
        ] {
            if n > hi {
                return Err(bad(k, &format!("at most {hi}"), &format!("不能超过 {hi}")));
            }
        }
        Ok(s)
    }

    /// The periodic interval of a disease.
    pub(crate) fn interval(&self, key: &str) -> u32 {
        self.interval_days.get(key).copied().or_else(|| disease::by_key(key).map(|d| d.interval_days)).unwrap_or(90)
    }
}

// ---------------------------------------------------------------- state

pub(crate) struct ChronicState {
    pub(crate) inner: Mutex<Inner>,
    pub(crate) settings: Settings,
}

impl ChronicState {
    pub(crate) fn new(settings: Settings) -> ChronicState {
        ChronicState { inner: Mutex::new(Inner::default()), settings }
    }
}

#[derive(Default)]
pub(crate) struct Inner {
    pub patients: BTreeMap<u64, register::Registration>,
    /// (institution, patient id) → the open registration's id.
    pub open: BTreeMap<(String, String), u64>,
    pub plans: BTreeMap<u64, follow::Plan>,
    /// Plans not reminded yet, by due time: what the due pass reads.
    pub pending: BTreeSet<(Millis, u64)>,
    pub items: BTreeMap<String, education::Item>,
    pub deliveries: BTreeMap<u64, education::Delivery>,
    pub next_patient: u64,
    pub next_plan: u64,
    pub next_delivery: u64,
}

impl Inner {
    fn take_id(counter: &mut u64) -> u64 {
        *counter = (*counter).max(1);
        let id = *counter;
        *counter += 1;
        id
    }

    /// Puts a plan in memory with its due index.
    pub(crate) fn store_plan(&mut self, p: follow::Plan) {
        if let Some(old) = self.plans.get(&p.plan_id) {
            self.pending.remove(&(old.due_ms, old.plan_id));
        }
        if p.status == "planned" {
            self.pending.insert((p.due_ms, p.plan_id));
        }
        self.plans.insert(p.plan_id, p);
    }

    pub(crate) fn store_patient(&mut self, r: register::Registration) {
        let key = (r.institution_id.clone(), r.patient_id.clone());
        if machine::REGISTER.is_open(&r.status) {
            self.open.insert(key, r.chronic_id);
        } else if self.open.get(&key) == Some(&r.chronic_id) {
            self.open.remove(&key);
        }
        self.patients.insert(r.chronic_id, r);
    }
}

// ---------------------------------------------------------------- persistence

#[derive(Serialize, Deserialize)]
#[serde(tag = "row", rename_all = "snake_case")]
enum Row {
    Patient(register::Registration),
    Plan(follow::Plan),
    Item(education::Item),
    Delivery(education::Delivery),
}

fn put(pool: &Pool, txn: &mut Txn, key: String, row: &Row) {
    if pool.store.is_some() {
        txn.writes.push(Write::put(TABLE, key, row));
    }
}
pub(crate) fn put_patient(pool: &Pool, txn: &mut Txn, r: &register::Registration) {
    put(pool, txn, format!("patient:{:012}", r.chronic_id), &Row::Patient(r.clone()));
}
pub(crate) fn put_plan(pool: &Pool, txn: &mut Txn, p: &follow::Plan) {
    put(pool, txn, format!("plan:{:012}", p.plan_id), &Row::Plan(p.clone()));
}
pub(crate) fn put_item(pool: &Pool, txn: &mut Txn, i: &education::Item) {
    put(pool, txn, format!("item:{}", i.code), &Row::Item(i.clone()));
}
pub(crate) fn put_delivery(pool: &Pool, txn: &mut Txn, d: &education::Delivery) {
    put(pool, txn, format!("delivery:{:012}", d.delivery_id), &Row::Delivery(d.clone()));
}

/// Rebuilds the state from the store's rows on open.
pub(crate) fn recover(chronic: &ChronicState, snap: &Snapshot) -> Result<()> {
    let mut g = chronic.inner.lock();
    for (key, body) in snap.of(TABLE) {
        match crate::store::parse_row::<Row>(TABLE, key, body)? {
            Row::Patient(r) => {
                g.next_patient = g.next_patient.max(r.chronic_id + 1);
                g.store_patient(r);
            }
            Row::Plan(p) => {
                g.next_plan = g.next_plan.max(p.plan_id + 1);
                g.store_plan(p);
            }
            Row::Item(i) => {
                g.items.insert(i.code.clone(), i);
            }
            Row::Delivery(d) => {
                g.next_delivery = g.next_delivery.max(d.delivery_id + 1);
                g.deliveries.insert(d.delivery_id, d);
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- who is asking

/// What the caller may see of this module's records.
pub(crate) enum Scope {
    /// The platform: everything.
    All,
    /// A community centre: its own patients and plans.
    Community(String),
    /// A hospital: the plans its cases made (read only).
    Hospital(String),
}

impl Scope {
    pub(crate) fn of(c: &Ctx) -> Result<Scope> {
        let p = c.r.who;
        match (p.role, p.institution_id.clone()) {
            (Role::Platform, None) => Ok(Scope::All),
            (Role::Community, Some(i)) => Ok(Scope::Community(i)),
            (Role::Hospital | Role::Platform, Some(i)) => Ok(Scope::Hospital(i)),
            _ => Err(forbidden()),
        }
    }
    /// May see a record of community `institution` (and, for a plan, of `hospital`).
    pub(crate) fn sees(&self, institution: &str, hospital: Option<&str>) -> bool {
        match self {
            Scope::All => true,
            Scope::Community(i) => i == institution,
            Scope::Hospital(h) => hospital == Some(h.as_str()),
        }
    }
    /// The community institution a change acts for: the caller's own, or
    /// the request's `institution_id` for the platform.
    pub(crate) fn acting_community(&self, c: &Ctx) -> Result<String> {
        match self {
            Scope::Community(i) => Ok(i.clone()),
            Scope::All => Ok(c.r.id("institution_id")?),
            Scope::Hospital(_) => Err(forbidden()),
        }
    }
}

pub(crate) fn forbidden() -> Error {
    Error::with(ErrorCode::Forbidden, "this institution may act only on its own chronic patients and follow-ups", "本机构只能查看和操作本机构的慢病患者和随访")
}

// ---------------------------------------------------------------- shared helpers

/// A free-text field of at most `max` characters (trimmed; empty is absent).
pub(crate) fn text(r: &Req, k: &str, max: usize) -> Result<Option<String>> {
    match r.get(k) {
        None => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) if s.chars().count() > max => Err(Error::invalid_zh(k, &format!("longer than {max} characters"), &format!("超过 {max} 个字符"))),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
        Some(_) => Err(Error::invalid_zh(k, "must be a string", "必须为字符串")),
    }
}

/// A positive integer id (a number or a string of digits).
pub(crate) fn int_id(r: &Req, k: &str) -> Result<u64> {
    let s = r.id(k)?;
    s.trim().parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| Error::invalid_zh(k, "expected a positive integer id", "应为正整数编号"))
}

/// The local midnight starting `date` (the engine's time zone), in ms.
pub(crate) fn day_start(date: chrono::NaiveDate, tz: &chrono_tz::Tz) -> Millis {
    use chrono::TimeZone;
    let naive = date.and_time(chrono::NaiveTime::MIN);
    tz.from_local_datetime(&naive).earliest().map(|t| t.timestamp_millis()).unwrap_or_else(|| naive.and_utc().timestamp_millis())
}

/// The local date of an instant.
pub(crate) fn local_date(ms: Millis, tz: &chrono_tz::Tz) -> chrono::NaiveDate {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().with_timezone(tz).date_naive()
}

pub(crate) const DAY_MS: Millis = 86_400_000;

/// An event of this module: the patient and the community institution
/// named (the host routes it; the institution reads it), the hospital in
/// `data` when a case made the plan.
pub(crate) fn event(pool: &Pool, txn: &mut Txn, kind: &'static str, patient_id: &str, institution_id: &str, data: Value) {
    let ev = crate::model::Event {
        seq: 0,
        kind: std::borrow::Cow::Borrowed(kind),
        at_ms: pool.clock.now_ms(),
        booking_id: None,
        slot_id: None,
        patient_id: Some(patient_id.into()),
        clinic_id: Some(institution_id.into()),
        data,
        note: None,
        slot_idx: None,
    };
    pool.push_event(txn, ev);
}

/// Paging of list answers: `page` from 1, `page_size` 1..=200 (default 20).
pub(crate) fn page_of(r: &Req, items: Vec<Value>) -> Result<Value> {
    let page = usize::try_from(r.opt_u64("page")?.unwrap_or(1).max(1)).unwrap_or(usize::MAX);
    let size = r.opt_u64("page_size")?.unwrap_or(20);
    if size == 0 || size > 200 {
        return Err(Error::invalid_zh("page_size", "must be 1 to 200", "应为 1 到 200"));
    }
    let total = items.len();
    let items: Vec<Value> = items.into_iter().skip((page - 1).saturating_mul(size as usize)).take(size as usize).collect();
    Ok(serde_json::json!({"total": total, "page": page, "page_size": size, "items": items}))
}
