//! The standard catalogue (L1, L2): standard sub-items (标准检验小项),
//! standard service resources of type commissioned test (标准服务资源) linked
//! to their sub-items, each lab's own code per project (本地服务资源), the
//! labs' panels (组套) and the tube rules (合管规则).

use super::table_io::{self, invalid, rejected_error, Reason, Rejected, Row};
use super::{check_code, code_field, code_list, opt_text, Call, LabData};
use crate::error::{Error, ErrorCode, Result};
use crate::text::SearchKey;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct StdItem {
    pub code: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abbr: Option<String>,
    pub specimen_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub specimen_note: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workgroup: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ref_low: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ref_high: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ref_text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical_low: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical_high: Option<f64>,
    /// The notifiable infectious disease a positive result shows (法定传染病).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifiable_infection: Option<String>,
}

impl StdItem {
    /// From a JSON entry or a table row (`lab-standard-items.csv` column
    /// names `std_code`, `name_zh` are accepted for `code`, `name`). A
    /// reference range in one cell (`ref_range`, 参考范围: `3.5-9.5`,
    /// `3.5～9.5`, `<5.2`, `≥1.0`) fills the bounds; one that is not a
    /// numeric range (阴性, 男4.3-5.8 女3.8-5.1) is the reference text.
    /// Columns naming a bound or the text themselves take precedence.
    pub fn from_row(row: &Row) -> std::result::Result<StdItem, Reason> {
        let code = row.get_any(&["code", "std_code"]).ok_or_else(|| Reason::new("missing code", "缺少编码"))?;
        let code = check_code("code", &code).map_err(|e| Reason::new(e.message(), "编码须为 1 至 64 个字符，且不含“/”和控制字符"))?;
        let name = row.get_any(&["name", "name_zh", "std_name"]).ok_or_else(|| Reason::new("missing name", "缺少名称"))?;
        if name.chars().count() > 128 {
            return Err(Reason::new("name longer than 128 characters", "名称超过 128 个字符"));
        }
        let specimen_type = row.get("specimen_type").ok_or_else(|| Reason::new("missing specimen_type", "缺少样本类型"))?;
        let num = |k: &str, zh: &str| -> std::result::Result<Option<f64>, Reason> {
            match row.get(k) {
                None => Ok(None),
                Some(s) => number(&s).map(Some).ok_or_else(|| Reason::new(format!("{k} is not a number"), format!("{zh}不是数值"))),
            }
        };
        let (mut ref_low, mut ref_high, mut ref_text) = (num("ref_low", "参考下限")?, num("ref_high", "参考上限")?, row.get("ref_text"));
        if let Some(range) = row.get("ref_range") {
            match numeric_range(&range) {
                Some((low, high)) => {
                    ref_low = ref_low.or(low);
                    ref_high = ref_high.or(high);
                }
                None => ref_text = ref_text.or(Some(range)),
            }
        }
        let item = StdItem {
            code,
            name,
            abbr: row.get("abbr"),
            specimen_type,
            specimen_note: row.get("specimen_note"),
            workgroup: row.get("workgroup"),
            unit: row.get("unit"),
            ref_low,
            ref_high,
            ref_text,
            critical_low: num("critical_low", "危急值下限")?,
            critical_high: num("critical_high", "危急值上限")?,
            notifiable_infection: row.get_any(&["notifiable_infection", "notifiable"]),
        };
        if let (Some(l), Some(h)) = (item.ref_low, item.ref_high) {
            if l > h {
                return Err(Reason::new("ref_low is above ref_high", format!("参考下限 {l} 高于参考上限 {h}")));
            }
        }
        Ok(item)
    }

    /// The reference range as printed: `3.5-9.5`, `<5.2`, or the text.
    pub fn ref_range(&self) -> String {
        match (self.ref_low, self.ref_high, &self.ref_text) {
            (Some(l), Some(h), _) => format!("{l}-{h}"),
            (_, _, Some(t)) => t.clone(),
            (None, Some(h), None) => format!("<{h}"),
            (Some(l), None, None) => format!(">={l}"),
            (None, None, None) => String::new(),
        }
    }

    pub fn view(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// A standard service resource of type commissioned test: a project such as
/// 血常规 with its standard sub-items, and each lab's own code for it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Resource {
    pub code: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinyin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<f64>,
    pub items: Vec<String>,
    /// Lab id → the lab's own project code (本地服务资源): the lab offers it.
    #[serde(default)]
    pub local_codes: BTreeMap<String, String>,
}

impl Resource {
    /// From a JSON entry or a table row; the sub-items are separated by
    /// `;` (also `；` and `、`, as Chinese input methods type them).
    pub fn from_row(row: &Row) -> std::result::Result<Resource, Reason> {
        let code = row.get_any(&["code", "panel_code", "std_code"]).ok_or_else(|| Reason::new("missing code", "缺少编码"))?;
        let code = check_code("code", &code).map_err(|e| Reason::new(e.message(), "编码须为 1 至 64 个字符，且不含“/”和控制字符"))?;
        let name = row.get_any(&["name", "name_zh", "std_name"]).ok_or_else(|| Reason::new("missing name", "缺少名称"))?;
        let items: Vec<String> = row
            .get_any(&["items", "sub_items"])
            .ok_or_else(|| Reason::new("missing items", "缺少所含标准小项"))?
            .split([';', '；', '、'])
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if items.is_empty() {
            return Err(Reason::new("a project needs at least one sub-item", "一个项目至少应包含一个标准小项"));
        }
        let price = match row.get_any(&["price", "price_yuan"]) {
            None => None,
            Some(p) => Some(number(&p).filter(|f| *f >= 0.0).ok_or_else(|| Reason::new("price is not a number", format!("价格“{p}”不是有效的非负数值")))?),
        };
        Ok(Resource { code, name, pinyin: row.get_any(&["pinyin", "pinyin_initials"]), price, items, local_codes: BTreeMap::new() })
    }

    pub fn search_key(&self) -> SearchKey {
        let extra: Vec<&str> = self.pinyin.as_deref().into_iter().collect();
        SearchKey::new(&self.name, &extra)
    }

    pub fn view(&self, d: &LabData) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        let items: Vec<Value> = self.items.iter().map(|c| json!({"code": c, "name": d.std_items.get(c).map(|s| s.name.as_str())})).collect();
        v["items"] = items.into();
        v
    }
}

/// A lab's panel (组套): several of its projects ordered together.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Panel {
    pub lab_id: String,
    pub code: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinyin: Option<String>,
    pub resources: Vec<String>,
}

impl Panel {
    pub fn key(&self) -> String {
        panel_key(&self.lab_id, &self.code)
    }
}

pub(crate) fn panel_key(lab: &str, code: &str) -> String {
    format!("{lab}/{code}")
}

/// Which container a specimen type takes for a workgroup (tube-rules.csv).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct TubeRule {
    pub specimen_type: String,
    pub workgroup: String,
    pub container_code: String,
    pub container_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additive: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap_colour: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_ml: Option<f64>,
}

impl TubeRule {
    fn from_row(row: &Row) -> std::result::Result<TubeRule, Reason> {
        let need = |k: &str, zh: &str| row.get(k).ok_or_else(|| Reason::new(format!("missing {k}"), format!("缺少{zh}")));
        Ok(TubeRule {
            specimen_type: need("specimen_type", "样本类型")?,
            workgroup: need("workgroup", "专业组")?,
            container_code: need("container_code", "容器编码")?,
            container_name: row.get_any(&["container_name", "container_zh"]).ok_or_else(|| Reason::new("missing container_name", "缺少容器名称"))?,
            additive: row.get("additive"),
            cap_colour: row.get("cap_colour"),
            volume_ml: match row.get("volume_ml") {
                None => None,
                Some(v) => Some(number(&v).ok_or_else(|| Reason::new("volume_ml is not a number", "采集量不是数值"))?),
            },
        })
    }
}

/// A finite number in a cell (full-width digits and signs read as ASCII).
fn number(s: &str) -> Option<f64> {
    super::qualitative::fold(s).replace(' ', "").parse::<f64>().ok().filter(|f| f.is_finite())
}

/// A reference range written in one cell: `3.5-9.5`, `3.5～9.5`, `3.5至9.5`,
/// `-3 - 3` (both bounds), `<5.2`, `≤5.2` (upper), `>1.0`, `≥1.0` (lower).
/// `None` when the cell is not a numeric range (阴性, 男4.3-5.8 女3.8-5.1).
fn numeric_range(s: &str) -> Option<(Option<f64>, Option<f64>)> {
    let t = super::qualitative::fold(s).replace(' ', "");
    for (p, upper) in [("<=", true), ("≤", true), ("<", true), (">=", false), ("≥", false), (">", false)] {
        if let Some(rest) = t.strip_prefix(p) {
            let x = number(rest)?;
            return Some(if upper { (None, Some(x)) } else { (Some(x), None) });
        }
    }
    let t = t.replace(['~', '—', '至', '到'], "-");
    // The dash between the bounds: the first one after the first character
    // whose sides are both numbers (a leading dash is a sign).
    t.char_indices().filter(|(i, c)| *c == '-' && *i > 0).find_map(|(i, _)| Some((Some(number(&t[..i])?), Some(number(&t[i + 1..])?))))
}

/// The tube rules shipped with the library (common practice in Chinese
/// hospital laboratories); `lab-tube-rules-set` replaces them.
pub(crate) fn default_tube_rules() -> Vec<TubeRule> {
    let rows = table_io::parse_csv(include_bytes!("tube-rules.csv")).unwrap_or_default();
    rows.iter().filter_map(|r| TubeRule::from_row(r).ok()).collect()
}

impl LabData {
    pub fn tube_rules(&self) -> std::borrow::Cow<'_, [TubeRule]> {
        match &self.tube_rules {
            Some(r) => std::borrow::Cow::Borrowed(r.as_slice()),
            None => std::borrow::Cow::Owned(default_tube_rules()),
        }
    }

    /// Whether any institution maps to the standard sub-item or any project
    /// links it: why, in English and Chinese.
    fn std_item_in_use(&self, code: &str) -> Option<Reason> {
        if let Some(r) = self.resources.values().find(|r| r.items.iter().any(|i| i == code)) {
            return Some(Reason::new(format!("linked by project {}", r.code), format!("标准项目 {} 包含该小项", r.code)));
        }
        for (inst, t) in &self.inst {
            if t.items.values().any(|e| e.std_code.as_deref() == Some(code)) {
                return Some(Reason::new(format!("mapped by institution {inst}"), format!("机构 {inst} 已对照该小项")));
            }
        }
        None
    }
}

/// The entries of a JSON array as rows numbered from 1.
fn rows_of(c: &Call, field: &str) -> Result<Vec<Row>> {
    let arr = c.r.array(field)?;
    if arr.is_empty() || arr.len() > 5000 {
        return Err(invalid(field, "must hold 1 to 5000 entries", "应有 1 至 5000 条"));
    }
    arr.iter().enumerate().map(|(i, v)| Row::from_json(v, i + 1).ok_or_else(|| invalid(field, "each entry must be an object", "每一条都应为对象"))).collect()
}

fn twice() -> Reason {
    Reason::new("code appears twice", "编码重复出现")
}

fn save_std_items(c: &Call, rows: Vec<Row>) -> Result<Value> {
    c.change(|d, ctx| {
        let mut items = Vec::new();
        let mut rejected = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for row in &rows {
            match StdItem::from_row(row) {
                Ok(it) if !seen.insert(it.code.clone()) => rejected.push(Rejected::new(row.n, it.code, twice())),
                Ok(it) => items.push(it),
                Err(why) => rejected.push(Rejected::new(row.n, row.get_any(&["code", "std_code"]).unwrap_or_default(), why)),
            }
        }
        if !rejected.is_empty() {
            return Err(rejected_error(&rejected));
        }
        let n = items.len();
        let codes: Vec<String> = items.iter().map(|i| i.code.clone()).collect();
        for it in items {
            ctx.put(format!("std:{}", it.code), &it);
            d.std_items.insert(it.code.clone(), it);
        }
        ctx.event("lab_std_items_saved", None, None, json!({"count": n, "codes": codes}));
        Ok(json!({"saved": n}))
    })
}

pub(crate) fn std_item_upsert(c: &Call) -> Result<Value> {
    let rows = rows_of(c, "items")?;
    save_std_items(c, rows)
}

pub(crate) fn std_item_import(c: &Call) -> Result<Value> {
    save_std_items(c, table_io::read_table(c)?)
}

pub(crate) fn std_item_delete(c: &Call) -> Result<Value> {
    let code = code_field(c.r, "code")?;
    c.change(|d, ctx| {
        if !d.std_items.contains_key(&code) {
            return Err(Error::new(ErrorCode::LabStdItemNotFound));
        }
        if let Some(why) = d.std_item_in_use(&code) {
            return Err(Error::with(
                ErrorCode::LabInUse,
                format!("standard sub-item {code} is {}", why.en),
                format!("标准检验小项 {code} 仍有对照或关联（{}），不能删除", why.zh),
            ));
        }
        d.std_items.remove(&code);
        ctx.delete(format!("std:{code}"));
        ctx.event("lab_std_item_deleted", None, None, json!({"code": code}));
        Ok(json!({"code": code, "deleted": true}))
    })
}

pub(crate) fn std_item_query(c: &Call) -> Result<Value> {
    let code = opt_text(c.r, "code")?;
    let name = opt_text(c.r, "name")?;
    let st = opt_text(c.r, "specimen_type")?;
    c.read(|d| {
        let items: Vec<Value> = d
            .std_items
            .values()
            .filter(|i| code.as_deref().is_none_or(|q| i.code.to_lowercase().contains(&q.to_lowercase())))
            .filter(|i| name.as_deref().is_none_or(|q| SearchKey::new(&i.name, &[i.abbr.as_deref().unwrap_or("")]).rank(q).is_some()))
            .filter(|i| st.as_deref().is_none_or(|q| i.specimen_type == q))
            .map(StdItem::view)
            .collect();
        Ok(json!({"total": items.len(), "items": items}))
    })
}

fn save_resources(c: &Call, rows: Vec<Row>) -> Result<Value> {
    c.change(|d, ctx| {
        let mut out = Vec::new();
        let mut rejected = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for row in &rows {
            let n = row.n;
            match Resource::from_row(row) {
                Ok(r) if !seen.insert(r.code.clone()) => rejected.push(Rejected::new(n, r.code, twice())),
                Ok(r) => match r.items.iter().find(|s| !d.std_items.contains_key(*s)) {
                    Some(_) => rejected.push(Rejected::new(
                        n,
                        r.code.clone(),
                        Reason::new("a standard sub-item in `items` does not exist", "所含的标准检验小项有不存在的"),
                    )),
                    None => out.push(r),
                },
                Err(why) => rejected.push(Rejected::new(n, row.get_any(&["code", "panel_code", "std_code"]).unwrap_or_default(), why)),
            }
        }
        if !rejected.is_empty() {
            return Err(rejected_error(&rejected));
        }
        let n = out.len();
        let codes: Vec<String> = out.iter().map(|r| r.code.clone()).collect();
        for mut r in out {
            // The labs' own codes stay when a project is edited.
            if let Some(old) = d.resources.get(&r.code) {
                r.local_codes = old.local_codes.clone();
            }
            ctx.put(format!("res:{}", r.code), &r);
            d.resources.insert(r.code.clone(), r);
        }
        ctx.event("lab_resources_saved", None, None, json!({"count": n, "codes": codes}));
        Ok(json!({"saved": n}))
    })
}

pub(crate) fn resource_upsert(c: &Call) -> Result<Value> {
    let rows = rows_of(c, "resources")?;
    save_resources(c, rows)
}

pub(crate) fn resource_import(c: &Call) -> Result<Value> {
    save_resources(c, table_io::read_table(c)?)
}

pub(crate) fn resource_delete(c: &Call) -> Result<Value> {
    let code = code_field(c.r, "code")?;
    c.change(|d, ctx| {
        if !d.resources.contains_key(&code) {
            return Err(Error::new(ErrorCode::LabResourceNotFound));
        }
        let mapped = d.inst.iter().find(|(_, t)| t.projects.values().any(|e| e.std_code.as_deref() == Some(code.as_str()))).map(|(i, _)| i.clone());
        let in_panel = d.panels.values().find(|p| p.resources.contains(&code)).map(|p| p.code.clone());
        let why = mapped
            .map(|i| Reason::new(format!("mapped by institution {i}"), format!("机构 {i} 已对照该项目")))
            .or(in_panel.map(|p| Reason::new(format!("in panel {p}"), format!("组套 {p} 包含该项目"))));
        if let Some(why) = why {
            return Err(Error::with(
                ErrorCode::LabInUse,
                format!("project {code} is {}", why.en),
                format!("检验项目 {code} 仍有对照或组套关联（{}），不能删除", why.zh),
            ));
        }
        d.resources.remove(&code);
        ctx.delete(format!("res:{code}"));
        ctx.event("lab_resource_deleted", None, None, json!({"code": code}));
        Ok(json!({"code": code, "deleted": true}))
    })
}

pub(crate) fn resource_query(c: &Call) -> Result<Value> {
    let code = opt_text(c.r, "code")?;
    let name = opt_text(c.r, "name")?;
    let lab = opt_text(c.r, "lab_id")?;
    let item = opt_text(c.r, "item_code")?;
    c.read(|d| {
        let list: Vec<Value> = d
            .resources
            .values()
            .filter(|r| code.as_deref().is_none_or(|q| r.code == q))
            .filter(|r| name.as_deref().is_none_or(|q| r.search_key().rank(q).is_some()))
            .filter(|r| lab.as_deref().is_none_or(|l| r.local_codes.contains_key(l)))
            .filter(|r| item.as_deref().is_none_or(|i| r.items.iter().any(|x| x == i)))
            .map(|r| r.view(d))
            .collect();
        Ok(json!({"total": list.len(), "resources": list}))
    })
}

/// The lab's own code for a standard project (本地服务资源): used to turn
/// the order's projects into the lab's codes and back. Setting it also
/// places the project in the network as offered by that lab.
pub(crate) fn local_code_set(c: &Call) -> Result<Value> {
    let lab = c.owner("lab_id")?;
    let code = code_field(c.r, "resource_code")?;
    let local = match c.r.opt_str("local_code")? {
        Some(s) => Some(check_code("local_code", s)?),
        None => None,
    };
    c.change(|d, ctx| {
        let res = d.resources.get(&code).ok_or_else(|| Error::new(ErrorCode::LabResourceNotFound))?;
        if let Some(l) = &local {
            if let Some(other) = d.resources.values().find(|r| r.code != code && r.local_codes.get(&lab) == Some(l)) {
                return Err(Error::with(
                    ErrorCode::LabAlreadyMapped,
                    format!("the lab's code {l} already stands for project {}", other.code),
                    format!("本机构编码 {l} 已对应项目 {}", other.code),
                ));
            }
        }
        let mut res = res.clone();
        match &local {
            Some(l) => res.local_codes.insert(lab.clone(), l.clone()),
            None => res.local_codes.remove(&lab),
        };
        ctx.put(format!("res:{code}"), &res);
        d.resources.insert(code.clone(), res);
        ctx.event("lab_local_code_set", Some(&lab), None, json!({"lab_id": lab, "resource_code": code, "local_code": local}));
        Ok(json!({"lab_id": lab, "resource_code": code, "local_code": local}))
    })
}

pub(crate) fn panel_upsert(c: &Call) -> Result<Value> {
    let lab = c.owner("lab_id")?;
    let code = code_field(c.r, "code")?;
    let name = super::text(c.r, "name")?;
    let pinyin = opt_text(c.r, "pinyin")?;
    let resources = code_list(c.r, "resources")?;
    if resources.is_empty() {
        return Err(invalid("resources", "a panel needs at least one project", "组套至少应包含一个项目"));
    }
    c.change(|d, ctx| {
        for rc in &resources {
            let res = d.resources.get(rc).ok_or_else(|| Error::new(ErrorCode::LabResourceNotFound))?;
            if !res.local_codes.contains_key(&lab) {
                return Err(not_offered(rc));
            }
        }
        let p = Panel { lab_id: lab.clone(), code: code.clone(), name, pinyin, resources };
        ctx.put(format!("panel:{}", p.key()), &p);
        ctx.event("lab_panel_saved", Some(&lab), None, json!({"lab_id": lab, "code": code}));
        let v = serde_json::to_value(&p).unwrap_or(Value::Null);
        d.panels.insert(p.key(), p);
        Ok(v)
    })
}

/// `LAB_NOT_OFFERED`, naming the project (a catalogue code the engine
/// knows), never the lab id the request gave.
pub(crate) fn not_offered(code: &str) -> Error {
    Error::with(ErrorCode::LabNotOffered, format!("the lab `lab_id` names does not offer project {code}"), format!("`lab_id` 指明的检验机构未投放项目 {code}"))
}

pub(crate) fn tube_rules_set(c: &Call) -> Result<Value> {
    let rows = rows_of(c, "rules")?;
    let mut rules = Vec::new();
    let mut rejected = Vec::new();
    for row in &rows {
        match TubeRule::from_row(row) {
            Ok(r) if rules.iter().any(|o: &TubeRule| o.specimen_type == r.specimen_type && o.workgroup == r.workgroup) => {
                rejected.push(Rejected::new(row.n, r.specimen_type, Reason::new("specimen type and workgroup appear twice", "样本类型与专业组的组合重复出现")))
            }
            Ok(r) => rules.push(r),
            Err(why) => rejected.push(Rejected::new(row.n, row.get("specimen_type").unwrap_or_default(), why)),
        }
    }
    if !rejected.is_empty() {
        return Err(rejected_error(&rejected));
    }
    c.change(|d, ctx| {
        ctx.put("tubes:".to_string(), &rules);
        ctx.event("lab_tube_rules_set", None, None, json!({"count": rules.len()}));
        let n = rules.len();
        d.tube_rules = Some(rules);
        Ok(json!({"saved": n}))
    })
}

pub(crate) fn tube_rules(c: &Call) -> Result<Value> {
    c.read(|d| Ok(json!({"rules": d.tube_rules().iter().map(|r| serde_json::to_value(r).unwrap_or(Value::Null)).collect::<Vec<_>>()})))
}

#[cfg(test)]
mod tests {
    use super::numeric_range;

    #[test]
    fn a_reference_range_in_one_cell_reads_as_its_bounds_or_stays_text() {
        for (cell, want) in [
            ("3.5-9.5", Some((Some(3.5), Some(9.5)))),
            ("3.5 ～ 9.5", Some((Some(3.5), Some(9.5)))),
            ("3.5~9.5", Some((Some(3.5), Some(9.5)))),
            ("3.5—9.5", Some((Some(3.5), Some(9.5)))),
            ("0至6.8", Some((Some(0.0), Some(6.8)))),
            ("-3 - 3", Some((Some(-3.0), Some(3.0)))),
            ("－3－3", Some((Some(-3.0), Some(3.0)))),
            ("<5.2", Some((None, Some(5.2)))),
            ("＜5.2", Some((None, Some(5.2)))),
            ("≤5.2", Some((None, Some(5.2)))),
            ("≥1.0", Some((Some(1.0), None))),
            (">=1", Some((Some(1.0), None))),
            ("阴性", None),
            ("男4.3-5.8 女3.8-5.1", None),
            ("5", None),
            ("<阴性", None),
            ("见报告", None),
        ] {
            assert_eq!(numeric_range(cell), want, "{cell}");
        }
    }
}
