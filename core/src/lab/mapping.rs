//! Institution sub-items and projects and their one-to-one mapping to the
//! standard (L3, 机构检验小项/项目对照): each institution entry maps to at most
//! one standard entry, and each standard entry is mapped at most once per
//! institution. The reverse maps (`item_rev`, `project_rev`) are the
//! invariant's witness: every mapped entry is there, and nothing else.

use super::table_io::{invalid, rejected_error, Reason, Rejected, Row};
use super::{check_code, code_field, opt_text, Call, Ctx, LabData};
use crate::error::{Error, ErrorCode, Result};
use crate::text::SearchKey;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Sub-items (检验小项), mapped to standard sub-items.
    Item,
    /// Projects (检验项目), mapped to standard service resources.
    Project,
}

impl Kind {
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Item => "items",
            Kind::Project => "projects",
        }
    }
    fn key_prefix(self) -> &'static str {
        match self {
            Kind::Item => "item",
            Kind::Project => "project",
        }
    }
    /// What the entry is called in a row's reason: 机构小项 or 机构项目.
    fn entry_zh(self) -> &'static str {
        match self {
            Kind::Item => "机构小项",
            Kind::Project => "机构项目",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct InstEntry {
    pub institution_id: String,
    pub code: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub specimen_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub specimen_note: Option<String>,
    /// The standard sub-item (or standard project) it maps to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub std_code: Option<String>,
}

#[derive(Debug, Default)]
pub(crate) struct InstTables {
    pub items: BTreeMap<String, InstEntry>,
    pub projects: BTreeMap<String, InstEntry>,
    /// Standard sub-item → this institution's sub-item.
    pub item_rev: HashMap<String, String>,
    /// Standard project → this institution's project.
    pub project_rev: HashMap<String, String>,
}

impl InstTables {
    pub fn entries(&self, kind: Kind) -> &BTreeMap<String, InstEntry> {
        match kind {
            Kind::Item => &self.items,
            Kind::Project => &self.projects,
        }
    }
    pub fn rev(&self, kind: Kind) -> &HashMap<String, String> {
        match kind {
            Kind::Item => &self.item_rev,
            Kind::Project => &self.project_rev,
        }
    }
    fn parts(&mut self, kind: Kind) -> (&mut BTreeMap<String, InstEntry>, &mut HashMap<String, String>) {
        match kind {
            Kind::Item => (&mut self.items, &mut self.item_rev),
            Kind::Project => (&mut self.projects, &mut self.project_rev),
        }
    }
    pub fn restore(&mut self, kind: Kind, e: InstEntry) {
        let (entries, rev) = self.parts(kind);
        if let Some(s) = &e.std_code {
            rev.insert(s.clone(), e.code.clone());
        }
        entries.insert(e.code.clone(), e);
    }
    /// Replaces or inserts an entry, keeping the reverse map exact.
    fn set(&mut self, kind: Kind, e: InstEntry) {
        let (entries, rev) = self.parts(kind);
        if let Some(old) = entries.get(&e.code).and_then(|o| o.std_code.clone()) {
            if rev.get(&old) == Some(&e.code) {
                rev.remove(&old);
            }
        }
        if let Some(s) = &e.std_code {
            rev.insert(s.clone(), e.code.clone());
        }
        entries.insert(e.code.clone(), e);
    }
    fn remove(&mut self, kind: Kind, code: &str) -> Option<InstEntry> {
        let (entries, rev) = self.parts(kind);
        let e = entries.remove(code)?;
        if let Some(s) = &e.std_code {
            if rev.get(s).map(String::as_str) == Some(code) {
                rev.remove(s);
            }
        }
        Some(e)
    }
}

pub(crate) fn std_name(d: &LabData, kind: Kind, code: &str) -> Option<String> {
    match kind {
        Kind::Item => d.std_items.get(code).map(|s| s.name.clone()),
        Kind::Project => d.resources.get(code).map(|r| r.name.clone()),
    }
}

fn std_exists(d: &LabData, kind: Kind, code: &str) -> bool {
    std_name(d, kind, code).is_some()
}

fn entry_from_row(inst: &str, kind: Kind, row: &Row) -> std::result::Result<InstEntry, Reason> {
    let what = kind.entry_zh();
    let code = row.get_any(&["inst_code", "code"]).ok_or_else(|| Reason::new("missing inst_code", format!("缺少{what}编码")))?;
    let code = check_code("inst_code", &code).map_err(|e| Reason::new(e.message(), format!("{what}编码须为 1 至 64 个字符，且不含“/”和控制字符")))?;
    let name = row.get_any(&["inst_name", "name"]).ok_or_else(|| Reason::new("missing inst_name", format!("缺少{what}名称")))?;
    if name.chars().count() > 128 {
        return Err(Reason::new("inst_name longer than 128 characters", format!("{what}名称超过 128 个字符")));
    }
    let specimen_type = row.get("specimen_type");
    if kind == Kind::Item && specimen_type.is_none() {
        return Err(Reason::new("missing specimen_type", "缺少样本类型"));
    }
    let std_code = row.get_any(&["maps_to", "std_code"]);
    Ok(InstEntry { institution_id: inst.to_string(), code, name, specimen_type, specimen_note: row.get("specimen_note"), std_code })
}

/// Checks rows as one batch against the state they would produce: every
/// row valid, no code twice, each standard entry mapped at most once in the
/// result. `Err` lists every rejected row (its number as the row carries
/// it, code, reason).
pub(crate) fn validate(d: &LabData, inst: &str, kind: Kind, rows: &[Row]) -> std::result::Result<Vec<InstEntry>, Vec<Rejected>> {
    let mut out = Vec::new();
    let mut rejected = Vec::new();
    let mut codes = HashSet::new();
    let mut claimed: HashMap<String, usize> = HashMap::new();
    let what = kind.entry_zh();
    for row in rows {
        let n = row.n;
        let e = match entry_from_row(inst, kind, row) {
            Ok(e) => e,
            Err(why) => {
                rejected.push(Rejected::new(n, row.get_any(&["inst_code", "code"]).unwrap_or_default(), why));
                continue;
            }
        };
        if !codes.insert(e.code.clone()) {
            rejected.push(Rejected::new(n, e.code, Reason::new("inst_code appears twice in the file", format!("{what}编码在文件中重复出现"))));
            continue;
        }
        if let Some(s) = &e.std_code {
            if !std_exists(d, kind, s) {
                rejected.push(Rejected::new(n, e.code, Reason::new("unknown standard code in `std_code`", "所对照的标准编码不存在")));
                continue;
            }
            if kind == Kind::Item {
                if let (Some(mine), Some(std)) = (&e.specimen_type, d.std_items.get(s)) {
                    if *mine != std.specimen_type {
                        let theirs = &std.specimen_type;
                        rejected.push(Rejected::new(
                            n,
                            e.code,
                            Reason::new(
                                format!("`specimen_type` differs from the standard sub-item's {theirs}"),
                                format!("样本类型与标准小项的样本类型“{theirs}”不一致"),
                            ),
                        ));
                        continue;
                    }
                }
            }
            // From here `s` is a standard code the catalogue holds (and a
            // holder a code of the institution's table): stored values, which
            // a reason may name; an unknown one above is not repeated.
            if let Some(first) = claimed.get(s) {
                rejected.push(Rejected::new(
                    n,
                    e.code,
                    Reason::new(format!("standard code {s} is already mapped by row {first}"), format!("标准编码 {s} 已由第 {first} 行对照")),
                ));
                continue;
            }
            claimed.insert(s.clone(), n);
        }
        out.push(e);
    }
    // Mappings that stay (entries not in the batch) must not collide.
    if let Some(t) = d.inst.get(inst) {
        for e in &out {
            if let Some(s) = &e.std_code {
                if let Some(holder) = t.rev(kind).get(s) {
                    if *holder != e.code && !codes.contains(holder) {
                        let n = claimed.get(s).copied().unwrap_or(0);
                        rejected.push(Rejected::new(
                            n,
                            e.code.clone(),
                            Reason::new(format!("standard code {s} is already mapped by {holder}"), format!("标准编码 {s} 已被本机构 {holder} 对照")),
                        ));
                    }
                }
            }
        }
    }
    if rejected.is_empty() {
        Ok(out)
    } else {
        rejected.sort_by_key(|r| r.row);
        Err(rejected)
    }
}

/// Applies validated entries (from `validate`).
pub(crate) fn apply(d: &mut LabData, ctx: &mut Ctx, inst: &str, kind: Kind, entries: Vec<InstEntry>) {
    let t = d.inst.entry(inst.to_string()).or_default();
    // Old reverse entries first, so a mapping moving inside the batch is
    // not removed after its new holder took it.
    for e in &entries {
        if let Some(old) = t.entries(kind).get(&e.code).and_then(|o| o.std_code.clone()) {
            let (_, rev) = t.parts(kind);
            if rev.get(&old) == Some(&e.code) {
                rev.remove(&old);
            }
        }
    }
    for e in entries {
        ctx.put(format!("{}:{inst}/{}", kind.key_prefix(), e.code), &e);
        t.set(kind, e);
    }
}

fn institution(c: &Call) -> Result<String> {
    c.owner("institution_id")
}

/// `lab-inst-item-upsert` / `lab-inst-project-upsert`: entries with an
/// optional `std_code`, checked like an import (all or nothing).
pub(crate) fn upsert(c: &Call, kind: Kind) -> Result<Value> {
    let inst = institution(c)?;
    let arr = c.r.array(kind.plural())?;
    if arr.is_empty() || arr.len() > 5000 {
        return Err(invalid(kind.plural(), "must hold 1 to 5000 entries", "应有 1 至 5000 条"));
    }
    let rows: Vec<Row> = arr
        .iter()
        .enumerate()
        .map(|(i, v)| Row::from_json(v, i + 1).ok_or_else(|| invalid(kind.plural(), "each entry must be an object", "每一条都应为对象")))
        .collect::<Result<_>>()?;
    c.change(|d, ctx| {
        let entries = validate(d, &inst, kind, &rows).map_err(|r| rejected_error(&r))?;
        let n = entries.len();
        let codes: Vec<String> = entries.iter().map(|e| e.code.clone()).collect();
        apply(d, ctx, &inst, kind, entries);
        ctx.event("lab_mapping_changed", Some(&inst), None, json!({"institution_id": inst, "kind": kind.plural(), "action": "upsert", "codes": codes}));
        Ok(json!({"institution_id": inst, "saved": n}))
    })
}

fn not_found() -> Error {
    Error::new(ErrorCode::LabInstItemNotFound)
}

pub(crate) fn delete(c: &Call, kind: Kind) -> Result<Value> {
    let inst = institution(c)?;
    let code = code_field(c.r, "code")?;
    c.change(|d, ctx| {
        let t = d.inst.get_mut(&inst).ok_or_else(not_found)?;
        let e = t.remove(kind, &code).ok_or_else(not_found)?;
        ctx.delete(format!("{}:{inst}/{code}", kind.key_prefix()));
        ctx.event(
            "lab_mapping_changed",
            Some(&inst),
            None,
            json!({"institution_id": inst, "kind": kind.plural(), "action": "delete", "code": code, "std_code": e.std_code}),
        );
        Ok(json!({"institution_id": inst, "code": code, "deleted": true}))
    })
}

/// Maps an entry to a standard entry. An entry already mapped elsewhere is
/// refused unless `remap` is true (then it moves in one step).
pub(crate) fn map(c: &Call, kind: Kind) -> Result<Value> {
    let inst = institution(c)?;
    let code = code_field(c.r, "code")?;
    let std = code_field(c.r, "std_code")?;
    let remap = c.r.opt_bool("remap")?.unwrap_or(false);
    c.change(|d, ctx| {
        if !std_exists(d, kind, &std) {
            return Err(match kind {
                Kind::Item => Error::new(ErrorCode::LabStdItemNotFound),
                Kind::Project => Error::new(ErrorCode::LabResourceNotFound),
            });
        }
        let std_specimen = d.std_items.get(&std).map(|s| s.specimen_type.clone());
        let t = d.inst.get_mut(&inst).ok_or_else(not_found)?;
        let e = t.entries(kind).get(&code).ok_or_else(not_found)?.clone();
        if e.std_code.as_deref() == Some(std.as_str()) {
            return Ok(json!({"institution_id": inst, "code": code, "std_code": std, "status": "mapped"}));
        }
        if let Some(holder) = t.rev(kind).get(&std) {
            return Err(Error::with(
                ErrorCode::LabAlreadyMapped,
                format!("standard code {std} is already mapped by {holder}"),
                format!("标准编码 {std} 已被本机构 {holder} 对照"),
            ));
        }
        // `code` matched an entry of the institution's table: stored values.
        if let Some(old) = &e.std_code {
            if !remap {
                return Err(Error::with(
                    ErrorCode::LabAlreadyMapped,
                    format!("{code} is mapped to {old}; unmap it first or pass remap"),
                    format!("{code} 已对照 {old}，请先解除对照或指定 remap"),
                ));
            }
        }
        if kind == Kind::Item {
            if let (Some(mine), Some(theirs)) = (&e.specimen_type, &std_specimen) {
                if mine != theirs {
                    return Err(invalid(
                        "std_code",
                        &format!("`specimen_type` differs from the standard sub-item's {theirs}"),
                        &format!("样本类型与标准小项的样本类型“{theirs}”不一致"),
                    ));
                }
            }
        }
        let old = e.std_code.clone();
        let mut e = e;
        e.std_code = Some(std.clone());
        ctx.put(format!("{}:{inst}/{code}", kind.key_prefix()), &e);
        t.set(kind, e);
        ctx.event(
            "lab_mapping_changed",
            Some(&inst),
            None,
            json!({"institution_id": inst, "kind": kind.plural(), "action": "map", "code": code, "std_code": std, "previous": old}),
        );
        Ok(json!({"institution_id": inst, "code": code, "std_code": std, "status": "mapped"}))
    })
}

pub(crate) fn unmap(c: &Call, kind: Kind) -> Result<Value> {
    let inst = institution(c)?;
    let code = code_field(c.r, "code")?;
    c.change(|d, ctx| {
        let t = d.inst.get_mut(&inst).ok_or_else(not_found)?;
        let mut e = t.entries(kind).get(&code).ok_or_else(not_found)?.clone();
        let Some(old) = e.std_code.take() else {
            return Ok(json!({"institution_id": inst, "code": code, "status": "unmapped"}));
        };
        ctx.put(format!("{}:{inst}/{code}", kind.key_prefix()), &e);
        t.set(kind, e);
        ctx.event(
            "lab_mapping_changed",
            Some(&inst),
            None,
            json!({"institution_id": inst, "kind": kind.plural(), "action": "unmap", "code": code, "previous": old}),
        );
        Ok(json!({"institution_id": inst, "code": code, "status": "unmapped", "previous": old}))
    })
}

/// Multi-condition query: code, name (also pinyin initials), specimen type,
/// standard code, standard name and mapping status (`mapped`: true/false).
pub(crate) fn query(c: &Call, kind: Kind) -> Result<Value> {
    let inst = institution(c)?;
    let code = opt_text(c.r, "code")?;
    let name = opt_text(c.r, "name")?;
    let st = opt_text(c.r, "specimen_type")?;
    let std_code = opt_text(c.r, "std_code")?;
    let std_q = opt_text(c.r, "std_name")?;
    let mapped = c.r.opt_bool("mapped")?;
    c.read(|d| {
        let list: Vec<Value> = d
            .inst
            .get(&inst)
            .map(|t| {
                t.entries(kind)
                    .values()
                    .filter(|e| code.as_deref().is_none_or(|q| e.code.to_lowercase().contains(&q.to_lowercase())))
                    .filter(|e| name.as_deref().is_none_or(|q| SearchKey::new(&e.name, &[]).rank(q).is_some()))
                    .filter(|e| st.as_deref().is_none_or(|q| e.specimen_type.as_deref() == Some(q)))
                    .filter(|e| std_code.as_deref().is_none_or(|q| e.std_code.as_deref() == Some(q)))
                    .filter(|e| {
                        std_q
                            .as_deref()
                            .is_none_or(|q| e.std_code.as_deref().and_then(|s| std_name(d, kind, s)).is_some_and(|n| SearchKey::new(&n, &[]).rank(q).is_some()))
                    })
                    .filter(|e| mapped.is_none_or(|m| e.std_code.is_some() == m))
                    .map(|e| {
                        let mut v = serde_json::to_value(e).unwrap_or(Value::Null);
                        v["status"] = if e.std_code.is_some() { "mapped" } else { "unmapped" }.into();
                        if let Some(s) = &e.std_code {
                            v["std_name"] = std_name(d, kind, s).into();
                        }
                        v
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(json!({"institution_id": inst, "total": list.len(), kind.plural(): list}))
    })
}
