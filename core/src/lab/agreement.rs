//! The service network and its agreements (服务网络管理, 服务协议管理):
//! which lab serves which ordering institution, for which standard
//! projects, from which day to which day. The platform keeps them, as it
//! keeps the standard catalogue: an agreement binds two institutions, and
//! the network they belong to is the platform's. `lab-order-submit` checks
//! every project of an order against them ([`LabData::agreement_for`]);
//! `lab-list` and `lab-item-search` show an institution what it may order.

use super::{code_field, code_list, opt_text, Call, LabData};
use crate::clock::Millis;
use crate::error::{Error, ErrorCode, Result};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Agreement {
    /// The agreement's number (协议编号), as the parties write it.
    pub agreement_id: String,
    pub lab_id: String,
    /// The ordering institution the lab serves.
    pub institution_id: String,
    /// The standard projects covered; `None`: every project the lab offers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<String>>,
    /// First and last day in force, local dates, both included; no last day:
    /// open-ended.
    pub valid_from: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub updated_ms: Millis,
}

impl Agreement {
    pub fn key(&self) -> String {
        format!("agreement:{}", self.agreement_id)
    }
    pub fn in_force(&self, day: NaiveDate) -> bool {
        self.valid_from <= day && self.valid_to.is_none_or(|t| day <= t)
    }
    pub fn covers(&self, project: &str) -> bool {
        self.items.as_ref().is_none_or(|l| l.iter().any(|x| x == project))
    }
    fn view(&self, c: &Call, today: NaiveDate) -> Value {
        json!({
            "agreement_id": self.agreement_id,
            "lab_id": self.lab_id,
            "institution_id": self.institution_id,
            "all_items": self.items.is_none(),
            "items": self.items.clone().unwrap_or_default(),
            "valid_from": self.valid_from.to_string(),
            "valid_to": self.valid_to.map(|d| d.to_string()),
            "name": self.name,
            "in_force": self.in_force(today),
            "updated_at": c.fmt(self.updated_ms),
        })
    }
}

impl LabData {
    /// Whether orders to `lab` are checked against agreements: from the
    /// first agreement the network holds for that lab, whatever its dates
    /// (a network that keeps no agreements for a lab orders as before).
    pub fn under_agreements(&self, lab: &str) -> bool {
        self.agreements.values().any(|a| a.lab_id == lab)
    }

    /// The agreement (the first by number) under which `inst` may order
    /// `project` from `lab` on `day`.
    pub fn agreement_for(&self, inst: &str, lab: &str, project: &str, day: NaiveDate) -> Option<&Agreement> {
        self.agreements.values().find(|a| a.lab_id == lab && a.institution_id == inst && a.in_force(day) && a.covers(project))
    }

    /// Whether `inst` may order `project` from `lab` on `day`: covered by an
    /// agreement, or the lab is under none.
    pub fn may_order(&self, inst: &str, lab: &str, project: &str, day: NaiveDate) -> bool {
        !self.under_agreements(lab) || self.agreement_for(inst, lab, project, day).is_some()
    }

    /// Whether `lab` serves `inst` on `day`: an agreement between them is in
    /// force, or the lab is under none.
    pub fn serves(&self, inst: &str, lab: &str, day: NaiveDate) -> bool {
        !self.under_agreements(lab) || self.agreements.values().any(|a| a.lab_id == lab && a.institution_id == inst && a.in_force(day))
    }
}

/// `LAB_NO_AGREEMENT`, naming the project (a catalogue code the engine
/// knows) and the day; the parties by their fields, never the ids given.
pub(crate) fn no_agreement(project: &str, day: NaiveDate) -> Error {
    Error::with(
        ErrorCode::LabNoAgreement,
        format!("no service agreement in force on {day} lets the ordering institution order project {project} from the lab `lab_id` names"),
        format!("{day} 没有有效的服务协议允许申请机构向 `lab_id` 指明的检验机构申请项目 {project}"),
    )
}

/// `lab-agreement-set {agreement_id, lab_id, institution_id, items?,
/// valid_from, valid_to?, name?}`: creates or replaces an agreement.
/// Agreements are never deleted (orders name the one they were placed
/// under); one ends by its `valid_to`.
pub(crate) fn set(c: &Call) -> Result<Value> {
    let id = code_field(c.r, "agreement_id")?;
    let lab = code_field(c.r, "lab_id")?;
    let inst = code_field(c.r, "institution_id")?;
    if lab == inst {
        return Err(Error::invalid_zh("institution_id", "must differ from lab_id", "不能与 `lab_id` 相同"));
    }
    let items = match c.r.get("items") {
        None => None,
        Some(_) => {
            let mut l = code_list(c.r, "items")?;
            if l.is_empty() {
                return Err(Error::invalid_zh(
                    "items",
                    "must name at least one standard project; leave it out to cover every project",
                    "须至少列出一个标准项目；覆盖全部项目时请省略该字段",
                ));
            }
            l.sort();
            l.dedup();
            Some(l)
        }
    };
    let valid_from = c.r.date("valid_from")?;
    let valid_to = c.r.opt_date("valid_to")?;
    if valid_to.is_some_and(|t| t < valid_from) {
        return Err(Error::invalid_zh("valid_to", "must not be before valid_from", "不能早于 `valid_from`"));
    }
    let name = opt_text(c.r, "name")?;
    c.change(|d, ctx| {
        if items.iter().flatten().any(|code| !d.resources.contains_key(code)) {
            return Err(Error::new(ErrorCode::LabResourceNotFound));
        }
        let a = Agreement { agreement_id: id.clone(), lab_id: lab, institution_id: inst, items, valid_from, valid_to, name, updated_ms: ctx.now };
        let created = !d.agreements.contains_key(&id);
        ctx.put(a.key(), &a);
        ctx.event(
            "lab_agreement_set",
            Some(&a.institution_id),
            None,
            json!({"agreement_id": a.agreement_id, "lab_id": a.lab_id, "valid_from": a.valid_from.to_string(),
                   "valid_to": a.valid_to.map(|d| d.to_string()), "created": created}),
        );
        let mut v = a.view(c, c.local_date(ctx.now));
        v["created"] = created.into();
        d.agreements.insert(id, a);
        Ok(v)
    })
}

/// `lab-agreement-query {lab_id?, institution_id?, item?, date?}`: the
/// agreements, by party, by a standard project they cover and in force on
/// a date. An institution sees those it is party to; the platform every one.
pub(crate) fn query(c: &Call) -> Result<Value> {
    let lab = opt_text(c.r, "lab_id")?;
    let inst = opt_text(c.r, "institution_id")?;
    let item = opt_text(c.r, "item")?;
    let date = c.r.opt_date("date")?;
    let own = c.r.who.institution_id.clone();
    let today = c.local_date(c.pool.clock.now_ms());
    c.read(|d| {
        let list: Vec<Value> = d
            .agreements
            .values()
            .filter(|a| own.as_deref().is_none_or(|o| a.lab_id == o || a.institution_id == o))
            .filter(|a| lab.as_deref().is_none_or(|l| a.lab_id == l))
            .filter(|a| inst.as_deref().is_none_or(|i| a.institution_id == i))
            .filter(|a| item.as_deref().is_none_or(|i| a.covers(i)))
            .filter(|a| date.is_none_or(|day| a.in_force(day)))
            .map(|a| a.view(c, today))
            .collect();
        Ok(json!({"total": list.len(), "agreements": list}))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn an_agreement_is_in_force_from_its_first_to_its_last_day_and_covers_its_projects() {
        let mut a = Agreement {
            agreement_id: "XY-1".into(),
            lab_id: "H001".into(),
            institution_id: "C001".into(),
            items: Some(vec!["STD-P-CBC".into()]),
            valid_from: day("2024-10-01"),
            valid_to: Some(day("2024-10-31")),
            name: None,
            updated_ms: 0,
        };
        assert!(!a.in_force(day("2024-09-30")));
        assert!(a.in_force(day("2024-10-01")) && a.in_force(day("2024-10-31")));
        assert!(!a.in_force(day("2024-11-01")));
        assert!(a.covers("STD-P-CBC") && !a.covers("STD-P-LFT"));
        a.items = None;
        a.valid_to = None;
        assert!(a.covers("STD-P-LFT") && a.in_force(day("2099-01-01")));
    }
}
