//! Commissioned lab testing (委托检验): catalogue and mapping tables, the
//! service network's agreements, orders and their payment, specimens and
//! labels, shipments, reception, reports and critical values.
//!
//! All lab state sits behind one lock (`LabState::data`): lab traffic is a
//! few calls a minute per institution, and one lock makes every multi-object
//! check (one-to-one mappings, barcode sequences, order states) plainly
//! atomic. Each change writes its rows to `crate::lab::TABLE` in the same durable
//! transaction as its events; the hot read path (report translation) uses a
//! compiled `LabTranslator` that holds no lock.

mod agreement;
mod catalog;
pub(crate) mod critical;
mod labels;
mod mapping;
mod order;
mod qualitative;
mod reception;
mod report;
mod shipment;
mod specimen;
mod table_io;
pub mod translate;

use crate::clock::{format_ms, parse_rfc3339, Millis};
use crate::command::Kind;
use crate::error::{Error, ErrorCode, Result};
use crate::model::{Event, Id};
use crate::pool::{Pool, Txn};
use crate::request::Req;
use crate::store::{Snapshot, Write};
use parking_lot::Mutex;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

pub use translate::{LabTranslator, TranslatedResult, TranslatorEntry};

crate::store::table!(
    /// Commissioned lab testing: catalogue, mappings, orders, specimens, reports.
    pub(crate) TABLE = "lab"
);

crate::command::command_table! { pub(crate) COMMANDS: fn(&Call) -> Result<Value>;
    "lab-std-item-upsert", Change, PLATFORM, NONE => catalog::std_item_upsert;
    "lab-std-item-import", Change, PLATFORM, NONE => catalog::std_item_import;
    "lab-std-item-delete", Change, PLATFORM, NONE => catalog::std_item_delete;
    "lab-std-item-query", Query, EVERYONE, NONE => catalog::std_item_query;
    "lab-resource-upsert", Change, PLATFORM, NONE => catalog::resource_upsert;
    "lab-resource-import", Change, PLATFORM, NONE => catalog::resource_import;
    "lab-resource-delete", Change, PLATFORM, NONE => catalog::resource_delete;
    "lab-resource-query", Query, EVERYONE, NONE => catalog::resource_query;
    "lab-local-code-set", Change, LAB_SIDE, LAB => catalog::local_code_set;
    "lab-panel-upsert", Change, LAB_SIDE, LAB => catalog::panel_upsert;
    "lab-inst-item-upsert", Change, PARTIES, INSTITUTION => |c| mapping::upsert(c, mapping::Kind::Item);
    "lab-inst-item-delete", Change, PARTIES, INSTITUTION => |c| mapping::delete(c, mapping::Kind::Item);
    "lab-inst-item-map", Change, PARTIES, INSTITUTION => |c| mapping::map(c, mapping::Kind::Item);
    "lab-inst-item-unmap", Change, PARTIES, INSTITUTION => |c| mapping::unmap(c, mapping::Kind::Item);
    "lab-inst-item-query", Query, PARTIES, INSTITUTION => |c| mapping::query(c, mapping::Kind::Item);
    "lab-inst-project-upsert", Change, PARTIES, INSTITUTION => |c| mapping::upsert(c, mapping::Kind::Project);
    "lab-inst-project-delete", Change, PARTIES, INSTITUTION => |c| mapping::delete(c, mapping::Kind::Project);
    "lab-inst-project-map", Change, PARTIES, INSTITUTION => |c| mapping::map(c, mapping::Kind::Project);
    "lab-inst-project-unmap", Change, PARTIES, INSTITUTION => |c| mapping::unmap(c, mapping::Kind::Project);
    "lab-inst-project-query", Query, PARTIES, INSTITUTION => |c| mapping::query(c, mapping::Kind::Project);
    "lab-mapping-import", Change, PARTIES, INSTITUTION => table_io::import;
    "lab-mapping-export", Query, PARTIES, INSTITUTION => table_io::export;
    "lab-translate", Query, PARTIES, INSTITUTION => translate::translate_cmd;
    "lab-tube-rules-set", Change, PLATFORM, NONE => catalog::tube_rules_set;
    "lab-tube-rules", Query, EVERYONE, NONE => catalog::tube_rules;
    "lab-barcode-rule-set", Change, NETWORK, INSTITUTION => specimen::barcode_rule_set;
    "lab-key-register", Change, LAB_SIDE, LAB => report::key_register;
    "lab-agreement-set", Change, PLATFORM, NONE => agreement::set;
    "lab-agreement-query", Query, PARTIES, NONE => agreement::query;
    "lab-list", Query, PARTIES, NONE => order::labs;
    "lab-item-search", Query, PARTIES, INSTITUTION => order::search;
    "lab-order-submit", Change, NETWORK, INSTITUTION => order::submit;
    "lab-order-cancel", Change, NETWORK, INSTITUTION => order::cancel;
    "lab-order-payment", Change, NETWORK, INSTITUTION => order::payment;
    "lab-order-info", Query, PARTIES, INSTITUTION => order::info;
    "lab-order-query", Query, PARTIES, INSTITUTION => order::query;
    "specimen-print", Change, NETWORK, INSTITUTION => specimen::print;
    "specimen-reprint", Change, NETWORK, INSTITUTION => specimen::reprint;
    "specimen-label", Query, NETWORK, INSTITUTION => specimen::label;
    "specimen-query", Query, NETWORK, INSTITUTION => specimen::query;
    "specimen-lookup", Query, LAB_SIDE, LAB => reception::lookup;
    "specimen-receive", Change, LAB_SIDE, LAB => reception::receive;
    "specimen-reject", Change, LAB_SIDE, LAB => reception::reject;
    "shipment-create", Change, NETWORK, INSTITUTION => shipment::create;
    "shipment-info", Query, PARTIES, INSTITUTION => shipment::info;
    "shipment-query", Query, NETWORK, INSTITUTION => shipment::query;
    "shipment-manifest", Query, PARTIES, INSTITUTION => shipment::manifest;
    "report-submit", Change, LAB_SIDE, LAB => report::submit;
    "report-upload-document", Change, LAB_SIDE, LAB => report::upload_document;
    "report-info", Query, PARTIES, INSTITUTION => report::info;
    "critical-value-publish", Change, LAB_SIDE, LAB => critical::publish;
    "critical-value-ack", Change, NETWORK, INSTITUTION => critical::ack;
    "critical-value-limit-set", Change, NETWORK, INSTITUTION => critical::limit_set;
    "critical-value-query", Query, PARTIES, INSTITUTION => critical::query;
    "lab-check-overdue", Change, PARTIES, NONE => critical::check_overdue_cmd;
}

/// The module's in-memory state; every change is also written to its table.
#[derive(Default)]
pub struct LabState {
    pub(crate) data: Mutex<LabData>,
}

/// Everything the lab module knows, under one lock.
#[derive(Default)]
pub(crate) struct LabData {
    pub std_items: BTreeMap<String, catalog::StdItem>,
    pub resources: BTreeMap<String, catalog::Resource>,
    pub panels: BTreeMap<String, catalog::Panel>,
    pub tube_rules: Option<Vec<catalog::TubeRule>>,
    /// Per institution: its own sub-items and projects with their mappings.
    pub inst: BTreeMap<String, mapping::InstTables>,
    pub barcode_rules: HashMap<String, specimen::BarcodeRule>,
    /// Last sequence number used per barcode prefix and date part.
    pub barcode_seq: HashMap<String, u64>,
    pub keys: HashMap<String, String>,
    /// The service network's agreements (服务协议), by number.
    pub agreements: BTreeMap<String, agreement::Agreement>,
    pub orders: BTreeMap<u64, order::Order>,
    pub specimens: BTreeMap<String, specimen::Specimen>,
    pub shipments: BTreeMap<u64, shipment::Shipment>,
    pub reports: BTreeMap<String, report::Report>,
    pub documents: BTreeMap<u64, report::Document>,
    pub criticals: BTreeMap<u64, critical::Critical>,
    /// Index: the tubes of each order, in print order.
    pub order_specimens: HashMap<u64, Vec<String>>,
    /// Index: (when due, id) of each unacknowledged critical value (its
    /// deadline, then its next escalation: `Critical::pending_key`), so the
    /// check on every change looks at one entry.
    pub pending_criticals: std::collections::BTreeSet<(Millis, u64)>,
    pub limits: HashMap<String, critical::Limit>,
    pub next_order: u64,
    pub next_shipment: u64,
    pub next_document: u64,
    pub next_critical: u64,
}

/// Rebuilds the state from the store's rows on open.
pub(crate) fn recover(lab: &LabState, snap: &Snapshot) -> Result<()> {
    let mut d = lab.data.lock();
    for (key, body) in snap.of(crate::lab::TABLE) {
        let kind = key.split_once(':').map(|(k, _)| k).unwrap_or(key);
        let bad = |e: serde_json::Error| crate::store::corrupt_row(TABLE, key, &e.to_string(), &crate::error::json_error_zh(&e));
        match kind {
            "std" => {
                let v: catalog::StdItem = serde_json::from_str(body).map_err(bad)?;
                d.std_items.insert(v.code.clone(), v);
            }
            "res" => {
                let v: catalog::Resource = serde_json::from_str(body).map_err(bad)?;
                d.resources.insert(v.code.clone(), v);
            }
            "panel" => {
                let v: catalog::Panel = serde_json::from_str(body).map_err(bad)?;
                d.panels.insert(v.key(), v);
            }
            "tubes" => d.tube_rules = Some(serde_json::from_str(body).map_err(bad)?),
            "item" | "project" => {
                let v: mapping::InstEntry = serde_json::from_str(body).map_err(bad)?;
                let kind = if kind == "item" { mapping::Kind::Item } else { mapping::Kind::Project };
                d.inst.entry(v.institution_id.clone()).or_default().restore(kind, v);
            }
            "rule" => {
                let v: specimen::BarcodeRule = serde_json::from_str(body).map_err(bad)?;
                d.barcode_rules.insert(v.institution_id.clone(), v);
            }
            "seq" => {
                let n: u64 = serde_json::from_str(body).map_err(bad)?;
                d.barcode_seq.insert(key["seq:".len()..].to_string(), n);
            }
            "key" => {
                let v: String = serde_json::from_str(body).map_err(bad)?;
                d.keys.insert(key["key:".len()..].to_string(), v);
            }
            "agreement" => {
                let v: agreement::Agreement = serde_json::from_str(body).map_err(bad)?;
                d.agreements.insert(v.agreement_id.clone(), v);
            }
            "order" => {
                let v: order::Order = serde_json::from_str(body).map_err(bad)?;
                d.next_order = d.next_order.max(v.id);
                d.orders.insert(v.id, v);
            }
            "specimen" => {
                let v: specimen::Specimen = serde_json::from_str(body).map_err(bad)?;
                d.order_specimens.entry(v.order_id).or_default().push(v.barcode.clone());
                d.specimens.insert(v.barcode.clone(), v);
            }
            "shipment" => {
                let v: shipment::Shipment = serde_json::from_str(body).map_err(bad)?;
                d.next_shipment = d.next_shipment.max(v.id);
                d.shipments.insert(v.id, v);
            }
            "report" => {
                let v: report::Report = serde_json::from_str(body).map_err(bad)?;
                d.reports.insert(v.barcode.clone(), v);
            }
            "doc" => {
                let v: report::Document = serde_json::from_str(body).map_err(bad)?;
                d.next_document = d.next_document.max(v.id);
                d.documents.insert(v.id, v);
            }
            "critical" => {
                let v: critical::Critical = serde_json::from_str(body).map_err(bad)?;
                d.next_critical = d.next_critical.max(v.id);
                d.pending_criticals.extend(v.pending_key());
                d.criticals.insert(v.id, v);
            }
            "limit" => {
                let v: critical::Limit = serde_json::from_str(body).map_err(bad)?;
                d.limits.insert(v.key(), v);
            }
            _ => {
                return Err(crate::store::corrupt_row(TABLE, key, "unknown kind of row", "未知的记录类型"));
            }
        }
    }
    let LabData { order_specimens, specimens, .. } = &mut *d;
    for list in order_specimens.values_mut() {
        list.sort_by_key(|b| (specimens.get(b).map(|s| s.printed_ms).unwrap_or(0), b.clone()));
    }
    Ok(())
}

/// Runs one of this module's commands (the registry calls it).
pub(crate) fn run(pool: &Pool, lab: &LabState, command: &'static str, kind: Kind, r: &Req, handler: fn(&Call) -> Result<Value>) -> Result<Value> {
    pool.check_open()?;
    if kind == Kind::Change && command != "lab-check-overdue" {
        // Overdue critical values are found on every change as well as by the
        // host's periodic `lab-check-overdue` (the engine clock drives both).
        critical::check_overdue(pool, lab)?;
    }
    handler(&Call { pool, lab, command, r })
}

/// One command call: the pool, the command's name and its request.
pub(crate) struct Call<'a> {
    pub pool: &'a Pool,
    /// This module's state (beside the pool, see `domains.rs`).
    pub lab: &'a LabState,
    pub command: &'static str,
    pub r: &'a Req<'a>,
}

impl Call<'_> {
    /// Runs a change under the lab lock with request-id idempotency: `f`
    /// checks everything before it changes anything, writes rows and events
    /// through the context, and its answer is durable before it returns.
    pub fn change(&self, f: impl FnOnce(&mut LabData, &mut Ctx) -> Result<Value>) -> Result<Value> {
        let pool = self.pool;
        pool.idempotent(self.r.request_id()?, self.command, self.r.fingerprint(self.command), |claim| {
            pool.locked_txn(claim, &self.lab.data, |d, txn, now| {
                let mut ctx = Ctx { pool, txn: std::mem::take(txn), now };
                let v = f(d, &mut ctx);
                *txn = ctx.txn;
                v
            })
        })
    }

    /// Runs a query under the lab lock.
    pub fn read<T>(&self, f: impl FnOnce(&LabData) -> Result<T>) -> Result<T> {
        f(&self.lab.data.lock())
    }

    /// The institution acting: the call's principal (bound by
    /// `registry::dispatch`, which refused a `field` naming another), or,
    /// for the platform acting for nobody in particular, none.
    pub fn acting(&self, field: &str) -> Result<Option<String>> {
        let _ = field;
        Ok(self.r.who.institution_id.clone())
    }

    /// The institution a piece of reference data belongs to (mappings,
    /// rules, keys, limits): the principal's own; the platform names it in
    /// `field`.
    pub fn owner(&self, field: &str) -> Result<String> {
        match &self.r.who.institution_id {
            Some(own) => Ok(own.clone()),
            None => code_field(self.r, field),
        }
    }

    /// Like `acting`, but the field is required when the engine has no institution.
    pub fn acting_required(&self, field: &str) -> Result<String> {
        self.acting(field)?.ok_or_else(|| Error::missing(field))
    }

    /// A time field (RFC 3339), or now.
    pub fn time(&self, field: &str) -> Result<Millis> {
        match self.r.opt_str(field)? {
            None => Ok(self.pool.clock.now_ms()),
            Some(s) => parse_rfc3339(s).ok_or_else(|| Error::invalid(field, "expected a time like 2024-10-29T09:00:00+08:00")),
        }
    }

    pub fn fmt(&self, ms: Millis) -> String {
        format_ms(ms, &self.pool.cfg.tz)
    }

    /// A local date (YYYY-MM-DD) for a time.
    pub fn local_date(&self, ms: Millis) -> chrono::NaiveDate {
        local_date(ms, &self.pool.cfg.tz)
    }
}

pub(crate) fn local_date(ms: Millis, tz: &chrono_tz::Tz) -> chrono::NaiveDate {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| t.with_timezone(tz).date_naive()).unwrap_or_default()
}

/// A change in progress: its durable writes and its events.
pub(crate) struct Ctx<'a> {
    pub pool: &'a Pool,
    pub txn: Txn,
    pub now: Millis,
}

impl Ctx<'_> {
    pub fn put(&mut self, key: String, body: &impl serde::Serialize) {
        if self.pool.store.is_some() {
            self.txn.writes.push(Write::put(crate::lab::TABLE, key, body));
        }
    }
    pub fn delete(&mut self, key: String) {
        if self.pool.store.is_some() {
            self.txn.writes.push(Write::delete(crate::lab::TABLE, key));
        }
    }
    /// An event for the host; `clinic` is the institution it concerns.
    pub fn event(&mut self, kind: &'static str, clinic: Option<&str>, patient: Option<&str>, data: Value) {
        let ev = Event {
            seq: 0,
            kind: std::borrow::Cow::Borrowed(kind),
            at_ms: self.now,
            booking_id: None,
            slot_id: None,
            patient_id: patient.map(Id::new),
            clinic_id: clinic.map(Id::new),
            data,
            note: None,
            slot_idx: None,
        };
        self.pool.push_event(&mut self.txn, ev);
    }
}

pub(crate) fn forbidden() -> Error {
    Error::new(ErrorCode::LabForbidden)
}

/// A code or id as the catalogue keeps it: 1–64 characters, no control
/// characters and no `/` (it separates parts of stored keys).
pub(crate) fn check_code(field: &str, s: &str) -> Result<String> {
    let t = s.trim();
    if t.is_empty() {
        return Err(Error::missing(field));
    }
    if t.chars().count() > 64 || t.chars().any(|c| c.is_control() || c == '/') {
        return Err(Error::invalid(field, "must be 1 to 64 characters without `/` or control characters"));
    }
    Ok(t.to_string())
}

pub(crate) fn code_field(r: &Req, field: &str) -> Result<String> {
    match r.get(field) {
        Some(Value::Number(n)) => check_code(field, &n.to_string()),
        _ => check_code(field, r.str(field)?),
    }
}

pub(crate) fn opt_text(r: &Req, field: &str) -> Result<Option<String>> {
    Ok(r.opt_str(field)?.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()))
}

pub(crate) fn text(r: &Req, field: &str) -> Result<String> {
    opt_text(r, field)?.ok_or_else(|| Error::missing(field))
}

/// A list of codes: a JSON array of strings.
pub(crate) fn code_list(r: &Req, field: &str) -> Result<Vec<String>> {
    let arr = r.array(field)?;
    if arr.len() > 1000 {
        return Err(Error::invalid(field, "at most 1000 entries"));
    }
    arr.iter()
        .map(|v| match v {
            Value::String(s) => check_code(field, s),
            Value::Object(m) => match m.get("code") {
                Some(Value::String(s)) => check_code(field, s),
                _ => Err(Error::invalid(field, "each entry must be a code or {\"code\": …}")),
            },
            _ => Err(Error::invalid(field, "each entry must be a code")),
        })
        .collect()
}

pub(crate) fn format_id(prefix: &str, n: u64) -> String {
    format!("{prefix}{n:06}")
}

pub(crate) fn parse_id(field: &str, prefix: &str, s: &str) -> Result<u64> {
    s.strip_prefix(prefix)
        .and_then(|n| n.parse::<u64>().ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| Error::invalid(field, &format!("expected an id like {prefix}000001")))
}
