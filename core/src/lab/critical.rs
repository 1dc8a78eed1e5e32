//! Critical values (L9, 危急值): published by the lab one by one or in a
//! batch, acknowledged by the ordering institution with a read-back; an
//! unacknowledged value turns overdue after a per-institution, per-item
//! limit and is escalated to a fallback receiver, then escalated again every
//! limit while it stays unacknowledged (engine clock: checked by the due-work
//! pass (`due.rs`: the timer, `run-due`), on every lab change and by
//! `lab-check-overdue`).

use super::order::{check_side, Side};
use super::translate::value_text;
use super::{code_field, format_id, opt_text, parse_id, text, Call, Ctx, LabData};
use crate::clock::Millis;
use crate::error::{Error, ErrorCode, Result};
use crate::pool::{Pool, Txn};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Minutes before an unacknowledged critical value is overdue, when the
/// institution has set no limit.
pub(crate) const DEFAULT_LIMIT_MINUTES: u32 = 10;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Person {
    pub name: String,
    pub contact: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Limit {
    pub institution_id: String,
    /// The standard sub-item, or `None` for the institution's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    pub minutes: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Person>,
}

impl Limit {
    pub fn key(&self) -> String {
        limit_key(&self.institution_id, self.item.as_deref())
    }
}

fn limit_key(inst: &str, item: Option<&str>) -> String {
    format!("{inst}/{}", item.unwrap_or("*"))
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Ack {
    pub receiver: String,
    pub contact: String,
    pub at_ms: Millis,
    pub readback: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Critical {
    pub id: u64,
    pub barcode: String,
    pub order_id: u64,
    pub institution_id: String,
    pub lab_id: String,
    pub patient_id: String,
    pub std_code: String,
    pub inst_code: String,
    pub inst_name: String,
    pub value: String,
    pub unit: String,
    pub flag: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub publisher: Person,
    pub published_ms: Millis,
    pub deadline_ms: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack: Option<Ack>,
    #[serde(default)]
    pub overdue: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalated_to: Option<Person>,
    /// Times it was escalated: 1 when it turned overdue, one more at each
    /// limit after that while unacknowledged.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub escalations: u32,
    /// When it is escalated next, unless acknowledged first (its key in
    /// `pending_criticals`; before its deadline the key is the deadline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_escalation_ms: Option<Millis>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Critical {
    fn critical_id(&self) -> String {
        format_id("CV", self.id)
    }
    fn key(&self) -> String {
        format!("critical:{:012}", self.id)
    }
    /// Its entry in `pending_criticals` while unacknowledged: when it is
    /// next due (turning overdue, or escalated again); `None` once
    /// acknowledged (or overdue in a store written before repeats).
    pub(crate) fn pending_key(&self) -> Option<(Millis, u64)> {
        match (&self.ack, self.overdue, self.next_escalation_ms) {
            (Some(_), _, _) => None,
            (None, false, _) => Some((self.deadline_ms, self.id)),
            (None, true, next) => next.map(|at| (at, self.id)),
        }
    }
    fn status(&self) -> &'static str {
        match (&self.ack, self.overdue) {
            (Some(_), _) => "acknowledged",
            (None, true) => "overdue",
            (None, false) => "published",
        }
    }
    fn view(&self, tz: &chrono_tz::Tz) -> Value {
        let fmt = |ms| crate::clock::format_ms(ms, tz);
        let mut v = json!({
            "critical_id": self.critical_id(),
            "barcode": self.barcode,
            "order_id": format_id("LO", self.order_id),
            "institution_id": self.institution_id,
            "lab_id": self.lab_id,
            "patient_id": self.patient_id,
            "std_code": self.std_code,
            "inst_code": self.inst_code,
            "inst_name": self.inst_name,
            "value": self.value,
            "unit": self.unit,
            "flag": self.flag,
            "comment": self.comment,
            "publisher": self.publisher.name,
            "publisher_contact": self.publisher.contact,
            "published_at": fmt(self.published_ms),
            "deadline": fmt(self.deadline_ms),
            "status": self.status(),
            "overdue": self.overdue,
            "escalations": self.escalations,
            "next_escalation": self.next_escalation_ms.filter(|_| self.ack.is_none()).map(fmt),
        });
        if let Some(a) = &self.ack {
            v["ack"] = json!({"receiver": a.receiver, "contact": a.contact, "time": fmt(a.at_ms), "readback": a.readback, "comment": a.comment, "late": a.at_ms > self.deadline_ms});
        }
        if let Some(p) = &self.escalated_to {
            v["escalated_to"] = json!({"name": p.name, "contact": p.contact});
        }
        v
    }
}

impl LabData {
    /// The limit for an institution and item: the item's own, else the
    /// institution's default, else `DEFAULT_LIMIT_MINUTES`; the fallback
    /// receiver likewise.
    fn limit_for(&self, inst: &str, item: &str) -> (u32, Option<Person>) {
        let own = self.limits.get(&limit_key(inst, Some(item)));
        let dflt = self.limits.get(&limit_key(inst, None));
        let minutes = own.or(dflt).map(|l| l.minutes).unwrap_or(DEFAULT_LIMIT_MINUTES);
        let fallback = own.and_then(|l| l.fallback.clone()).or_else(|| dflt.and_then(|l| l.fallback.clone()));
        (minutes, fallback)
    }
}

/// `critical-value-publish {publisher, contact, time?, values: [{barcode, item_code, value?, comment?}]}`
/// (or one value's fields at the top level).
pub(crate) fn publish(c: &Call) -> Result<Value> {
    let publisher = Person { name: text(c.r, "publisher")?, contact: text(c.r, "contact")? };
    let at = c.time("time")?;
    let mut wanted = Vec::new();
    let one = [Value::Object(c.r.to_map())];
    let list: &[Value] = match c.r.opt_array("values")? {
        Some(a) => a,
        None => &one,
    };
    if list.is_empty() || list.len() > 200 {
        return Err(Error::invalid("values", "must hold 1 to 200 values"));
    }
    for e in list {
        let r = c.r.sub(e, "values")?;
        wanted.push((code_field(&r, "barcode")?, code_field(&r, "item_code")?, r.get("value").map(value_text), opt_text(&r, "comment")?));
    }
    let acting = c.acting("lab_id")?;
    c.change(|d, ctx| {
        let mut made = Vec::new();
        for (barcode, code, value, comment) in &wanted {
            let sp = d.specimen(barcode)?;
            check_side(d.order(sp.order_id)?, acting.as_deref(), Side::Lab)?;
            let rep = d.reports.get(barcode).and_then(|r| r.current()).ok_or_else(|| Error::new(ErrorCode::LabReportNotFound))?;
            // The lab's own code, a standard code, or the institution's code.
            let std = super::report::resolve(d, &sp.lab_id, code);
            let row = rep.results.iter().find(|r| r.lab_code == *code || Some(&r.std_code) == std.as_ref() || r.inst_code == *code).ok_or_else(|| {
                Error::with(
                    ErrorCode::LabItemNotOrdered,
                    "the specimen's report has no result for a sub-item named in the request",
                    "该样本的报告中没有请求所列小项的结果",
                )
            })?;
            let (minutes, _) = d.limit_for(&sp.institution_id, &row.std_code);
            made.push(Critical {
                id: 0,
                barcode: barcode.clone(),
                order_id: sp.order_id,
                institution_id: sp.institution_id.clone(),
                lab_id: sp.lab_id.clone(),
                patient_id: sp.patient_id.clone(),
                std_code: row.std_code.clone(),
                inst_code: row.inst_code.clone(),
                inst_name: row.inst_name.clone(),
                value: value.clone().unwrap_or_else(|| row.value.clone()),
                unit: row.unit.clone(),
                flag: row.flag.clone(),
                comment: comment.clone(),
                publisher: publisher.clone(),
                published_ms: at,
                // `at` is RFC 3339 (a four-digit year) and `minutes` at most 1440; saturating all the same.
                deadline_ms: at.saturating_add(i64::from(minutes) * 60_000),
                ack: None,
                overdue: false,
                escalated_to: None,
                escalations: 0,
                next_escalation_ms: None,
            });
        }
        let tz = c.pool.cfg.tz;
        let mut out = Vec::new();
        for mut cv in made {
            d.next_critical += 1;
            cv.id = d.next_critical;
            ctx.put(cv.key(), &cv);
            let v = cv.view(&tz);
            ctx.event("critical_value_published", Some(&cv.institution_id), Some(&cv.patient_id), v.clone());
            out.push(v);
            d.pending_criticals.extend(cv.pending_key());
            d.criticals.insert(cv.id, cv);
        }
        Ok(json!({"published": out.len(), "critical_values": out}))
    })
}

fn same_value(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim(), b.trim());
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a.eq_ignore_ascii_case(b),
    }
}

/// `critical-value-ack {critical_id, receiver, contact, readback, time?, comment?}`.
pub(crate) fn ack(c: &Call) -> Result<Value> {
    let id = parse_id("critical_id", "CV", &c.r.id("critical_id")?)?;
    let receiver = text(c.r, "receiver")?;
    let contact = text(c.r, "contact")?;
    let readback = c.r.get("readback").map(value_text).filter(|s| !s.trim().is_empty()).ok_or_else(|| Error::missing("readback"))?;
    let comment = opt_text(c.r, "comment")?;
    let at = c.time("time")?;
    let acting = c.acting("institution_id")?;
    c.change(|d, ctx| {
        let cv = d.criticals.get(&id).ok_or_else(|| Error::new(ErrorCode::LabCriticalNotFound))?;
        if acting.as_deref().is_some_and(|a| a != cv.institution_id) {
            return Err(super::forbidden());
        }
        if cv.ack.is_some() {
            return Err(Error::new(ErrorCode::LabCriticalAcknowledged));
        }
        if !same_value(&readback, &cv.value) {
            return Err(Error::new(ErrorCode::LabReadbackMismatch));
        }
        let mut cv = cv.clone();
        cv.ack = Some(Ack { receiver, contact, at_ms: at, readback, comment });
        ctx.put(cv.key(), &cv);
        let v = cv.view(&c.pool.cfg.tz);
        ctx.event("critical_value_acknowledged", Some(&cv.institution_id), Some(&cv.patient_id), v.clone());
        if let Some(k) = d.criticals.get(&id).and_then(Critical::pending_key) {
            d.pending_criticals.remove(&k);
        }
        d.criticals.insert(id, cv);
        Ok(v)
    })
}

/// `critical-value-limit-set {institution_id, item_code?, minutes, fallback_name?, fallback_contact?}`.
pub(crate) fn limit_set(c: &Call) -> Result<Value> {
    let inst = c.owner("institution_id")?;
    let item = match c.r.opt_str("item_code")? {
        Some(s) => Some(super::check_code("item_code", s)?),
        None => None,
    };
    let minutes = c.r.opt_u32("minutes")?.ok_or_else(|| Error::missing("minutes"))?;
    if !(1..=24 * 60).contains(&minutes) {
        return Err(Error::invalid("minutes", "must be 1 to 1440"));
    }
    let fallback = match (opt_text(c.r, "fallback_name")?, opt_text(c.r, "fallback_contact")?) {
        (Some(name), Some(contact)) => Some(Person { name, contact }),
        (None, None) => None,
        _ => return Err(Error::invalid("fallback_contact", "give both fallback_name and fallback_contact")),
    };
    c.change(|d, ctx| {
        if let Some(i) = &item {
            if !d.std_items.contains_key(i) {
                return Err(Error::new(ErrorCode::LabStdItemNotFound));
            }
        }
        let l = Limit { institution_id: inst.clone(), item, minutes, fallback };
        ctx.put(format!("limit:{}", l.key()), &l);
        let v = serde_json::to_value(&l).unwrap_or(Value::Null);
        ctx.event("critical_value_limit_set", Some(&inst), None, v.clone());
        d.limits.insert(l.key(), l);
        Ok(v)
    })
}

pub(crate) fn query(c: &Call) -> Result<Value> {
    let inst = c.acting_required("institution_id")?;
    let status = opt_text(c.r, "status")?;
    let barcode = opt_text(c.r, "barcode")?;
    c.read(|d| {
        let tz = c.pool.cfg.tz;
        let list: Vec<Value> = d
            .criticals
            .values()
            .filter(|cv| cv.institution_id == inst || cv.lab_id == inst)
            .filter(|cv| status.as_deref().is_none_or(|s| cv.status() == s))
            .filter(|cv| barcode.as_deref().is_none_or(|b| cv.barcode == b))
            .map(|cv| cv.view(&tz))
            .collect();
        Ok(json!({"total": list.len(), "critical_values": list}))
    })
}

/// Escalates every unacknowledged value that is due: past its deadline, it
/// turns overdue with an event naming the fallback receiver
/// (`critical_value_overdue`); each limit after that, while still
/// unacknowledged, it is escalated again (`critical_value_escalated`, with
/// the count). Returns their ids.
fn mark_overdue(d: &mut LabData, ctx: &mut Ctx) -> Vec<String> {
    let now = ctx.now;
    let due: Vec<(Millis, u64)> = d.pending_criticals.iter().take_while(|(at, _)| *at <= now).copied().collect();
    let mut ids = Vec::new();
    for (at, id) in due {
        d.pending_criticals.remove(&(at, id));
        let Some(cv) = d.criticals.get(&id) else { continue };
        let (minutes, fallback) = d.limit_for(&cv.institution_id, &cv.std_code);
        let mut cv = cv.clone();
        let kind = if cv.overdue { "critical_value_escalated" } else { "critical_value_overdue" };
        cv.overdue = true;
        if cv.escalated_to.is_none() {
            cv.escalated_to = fallback;
        }
        cv.escalations = cv.escalations.saturating_add(1);
        // The next one a limit after this one was due (not after `now`: a
        // pass that ran late does not push the next escalation later).
        let next = at.saturating_add(i64::from(minutes.max(1)) * 60_000).max(now.saturating_add(1));
        cv.next_escalation_ms = Some(next);
        ctx.put(cv.key(), &cv);
        let mut data = cv.view(&ctx.pool.cfg.tz);
        data["minutes_overdue"] = (now.saturating_sub(cv.deadline_ms) / 60_000).into();
        ctx.event(kind, Some(&cv.institution_id), Some(&cv.patient_id), data);
        ids.push(cv.critical_id());
        d.pending_criticals.extend(cv.pending_key());
        d.criticals.insert(id, cv);
    }
    ids
}

pub(crate) fn check_overdue(pool: &Pool, lab: &super::LabState) -> Result<Vec<String>> {
    let (ids, ticket) = {
        let mut d = lab.data.lock();
        let now = pool.clock.now_ms();
        if d.pending_criticals.first().is_none_or(|(deadline, _)| *deadline > now) {
            return Ok(Vec::new());
        }
        let mut ctx = Ctx { pool, txn: Txn::default(), now };
        let ids = mark_overdue(&mut d, &mut ctx);
        (ids, pool.enqueue(&mut ctx.txn))
    };
    pool.settle(ticket, Vec::new())?;
    Ok(ids)
}

/// `lab-check-overdue`: what the host runs every minute (like `expire-holds`).
pub(crate) fn check_overdue_cmd(c: &Call) -> Result<Value> {
    let ids = check_overdue(c.pool, c.lab)?;
    Ok(json!({"overdue": ids.len(), "critical_ids": ids}))
}
