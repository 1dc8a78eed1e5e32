//! Mapping tables in and out (L3): CSV (crate `csv`), .xlsx (read with
//! `calamine`, written with `rust_xlsxwriter`) and a FHIR R4 `ConceptMap`.
//! File content travels in JSON as text (CSV) or base64 (xlsx); a host that
//! prefers files names a `path` instead, relative to `<data_dir>/lab-files/`.

use super::mapping::{self, Kind};
use super::{Call, LabData};
use crate::error::{Error, ErrorCode, Result};
use base64::Engine as _;
use serde_json::{json, Value};

/// Why a row was refused, in English and wholly in Chinese.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reason {
    pub en: String,
    pub zh: String,
}

impl Reason {
    pub fn new(en: impl Into<String>, zh: impl Into<String>) -> Reason {
        Reason { en: en.into(), zh: zh.into() }
    }
}

/// A refused row: its number (as the spreadsheet shows it; for entries sent
/// as JSON, the entry's position from 1), its code, and why.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rejected {
    pub row: usize,
    pub code: String,
    pub why: Reason,
}

impl Rejected {
    pub fn new(row: usize, code: impl Into<String>, why: Reason) -> Rejected {
        Rejected { row, code: code.into(), why }
    }
}

/// One row of a table: column name → text (empty cells absent), and the
/// row's number as the spreadsheet shows it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Row {
    cells: Vec<(String, String)>,
    /// Row number from 1: the spreadsheet's own (header row and blank rows
    /// counted), or the entry's position in a JSON array.
    pub n: usize,
}

impl Row {
    pub fn get(&self, k: &str) -> Option<String> {
        self.cells.iter().find(|(c, _)| c == k).map(|(_, v)| v.trim().to_string()).filter(|v| !v.is_empty())
    }
    pub fn get_any(&self, ks: &[&str]) -> Option<String> {
        ks.iter().find_map(|k| self.get(k))
    }
    /// A JSON object as row `n`: strings and numbers as text, arrays of
    /// strings joined with `;`.
    pub fn from_json(v: &Value, n: usize) -> Option<Row> {
        let m = v.as_object()?;
        let cells = m
            .iter()
            .filter_map(|(k, v)| {
                let s = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    Value::Array(a) => a.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(";"),
                    _ => return None,
                };
                Some((k.clone(), s))
            })
            .collect();
        Some(Row { cells, n })
    }
    fn from_cells(header: &[String], n: usize, cells: impl Iterator<Item = String>) -> Row {
        Row { cells: header.iter().cloned().zip(cells).collect(), n }
    }
}

/// The Chinese column headers hospitals write, beside each English column
/// name the tables use. Matched after `header_form`: spaces, required-field
/// stars and case do not matter, full-width forms are half-width, and a
/// bracketed suffix such as `（元）` or `(ml)` may follow.
const HEADER_ALIASES: &[(&str, &[&str])] = &[
    // Mapping tables (机构检验小项/项目对照).
    (
        "inst_code",
        &[
            "机构项目编码",
            "机构项目代码",
            "机构小项编码",
            "机构小项代码",
            "机构检验项目编码",
            "机构检验项目代码",
            "机构检验小项编码",
            "机构检验小项代码",
            "本地项目编码",
            "本地项目代码",
            "本院项目编码",
            "本院项目代码",
            "院内项目编码",
            "院内项目代码",
        ],
    ),
    ("inst_name", &["机构项目名称", "机构小项名称", "机构检验项目名称", "机构检验小项名称", "本地项目名称", "本院项目名称", "院内项目名称"]),
    (
        "std_code",
        &[
            "标准项目编码",
            "标准项目代码",
            "标准小项编码",
            "标准小项代码",
            "标准检验项目编码",
            "标准检验项目代码",
            "标准检验小项编码",
            "标准检验小项代码",
            "标准编码",
            "标准代码",
            "对照编码",
            "对照代码",
            "对照项目编码",
            "对照小项编码",
        ],
    ),
    ("std_name", &["标准项目名称", "标准小项名称", "标准检验项目名称", "标准检验小项名称", "标准名称", "对照名称", "对照项目名称", "对照小项名称"]),
    ("status", &["对照状态", "状态"]),
    // Either table: an entry's own code and name.
    (
        "code",
        &["项目编码", "项目代码", "项目编号", "小项编码", "小项代码", "检验项目编码", "检验项目代码", "检验小项编码", "检验小项代码", "编码", "代码", "编号"],
    ),
    ("name", &["项目名称", "小项名称", "检验项目名称", "检验小项名称", "中文名称", "名称"]),
    ("specimen_type", &["样本类型", "标本类型", "样本种类", "标本种类", "样本", "标本"]),
    ("specimen_note", &["样本说明", "标本说明", "样本备注", "标本备注", "样本要求", "标本要求"]),
    // The standard catalogue (标准检验小项).
    ("abbr", &["英文缩写", "英文简称", "缩写", "简称"]),
    ("workgroup", &["专业组", "检验专业组", "检验组", "工作组"]),
    ("unit", &["单位", "结果单位", "计量单位"]),
    ("ref_range", &["参考范围", "参考值", "参考区间", "参考值范围", "正常值", "正常范围", "正常参考值"]),
    ("ref_low", &["参考下限", "参考值下限", "参考范围下限", "参考区间下限", "正常值下限"]),
    ("ref_high", &["参考上限", "参考值上限", "参考范围上限", "参考区间上限", "正常值上限"]),
    ("ref_text", &["参考范围说明", "参考值说明", "参考说明"]),
    ("critical_low", &["危急值下限", "危急下限", "危急值低值"]),
    ("critical_high", &["危急值上限", "危急上限", "危急值高值"]),
    ("notifiable_infection", &["法定传染病", "法定传染病名称", "传染病", "传染病名称"]),
    // Standard projects (标准服务资源) and tube rules.
    ("items", &["包含小项", "所含小项", "包含检验小项", "包含小项编码", "组成小项", "小项列表"]),
    ("price", &["价格", "单价", "收费标准"]),
    ("pinyin", &["拼音码", "拼音", "拼音首字母", "拼音简码", "助记码", "简拼"]),
    ("container_code", &["容器编码", "容器代码", "试管编码", "试管代码"]),
    ("container_name", &["容器名称", "试管名称", "采集容器", "容器", "试管"]),
    ("additive", &["添加剂", "抗凝剂"]),
    ("cap_colour", &["管帽颜色", "试管颜色", "帽色", "颜色"]),
    ("volume_ml", &["采集量", "采血量", "采样量", "标本量", "容量"]),
];

/// A header as written, in the form aliases are matched in: full-width
/// forms half-width, spaces and stars (必填 markers) dropped, lowercase.
fn header_form(h: &str) -> String {
    h.chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            _ => c,
        })
        .filter(|c| !c.is_whitespace() && *c != '*')
        .flat_map(char::to_lowercase)
        .collect()
}

/// The column name a header stands for: the English name a Chinese header
/// means, else the header itself (trimmed, lowercase).
pub(crate) fn column_key(h: &str) -> String {
    let form = header_form(h);
    let lookup = |f: &str| HEADER_ALIASES.iter().find(|(_, zh)| zh.contains(&f)).map(|(en, _)| en.to_string());
    if let Some(k) = lookup(&form) {
        return k;
    }
    // 价格(元), 采集量(ml), 标准编码(对照): the bracket says the unit or a note.
    if let Some(base) = form.strip_suffix(')').and_then(|f| f.rfind('(').map(|i| &f[..i])).filter(|b| !b.is_empty()) {
        if let Some(k) = lookup(base) {
            return k;
        }
    }
    h.trim().to_lowercase()
}

const MAX_ROWS: usize = 20_000;

fn unreadable(en: impl std::fmt::Display, zh: impl std::fmt::Display) -> Error {
    Error::with(ErrorCode::LabFileUnreadable, format!("the file cannot be read: {en}"), format!("无法读取该文件：{zh}"))
}

fn too_many_rows() -> Error {
    unreadable(format!("more than {MAX_ROWS} rows"), format!("超过 {MAX_ROWS} 行"))
}

/// The field `field` is wrong: English and Chinese detail.
pub(crate) fn invalid(field: &str, en: &str, zh: &str) -> Error {
    Error::with(ErrorCode::InvalidField, format!("field `{field}`: {en}"), format!("字段 `{field}` 无效：{zh}"))
}

/// The lines of a CSV text as a spreadsheet shows them: each with its row
/// number from 1 (blank lines count) and its bytes without the line break.
/// A line break inside a quoted cell stays in its row; `\r\n`, `\n` and a
/// lone `\r` each end a row. Quotes open only at the start of a cell, as
/// the `csv` crate reads them.
fn csv_lines(b: &[u8]) -> Vec<(usize, &[u8])> {
    #[derive(Clone, Copy)]
    enum S {
        CellStart,
        Cell,
        Quoted,
        QuoteInQuoted,
    }
    let mut out = Vec::new();
    let (mut row, mut start, mut i, mut s) = (1, 0, 0, S::CellStart);
    while i < b.len() {
        let c = b[i];
        match s {
            S::Quoted => {
                if c == b'"' {
                    s = S::QuoteInQuoted
                }
            }
            _ if c == b'\n' || c == b'\r' => {
                out.push((row, &b[start..i]));
                if c == b'\r' && b.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                row += 1;
                start = i + 1;
                s = S::CellStart;
            }
            S::CellStart | S::QuoteInQuoted => {
                s = match c {
                    b'"' => S::Quoted,
                    b',' => S::CellStart,
                    _ => S::Cell,
                }
            }
            S::Cell => {
                if c == b',' {
                    s = S::CellStart
                }
            }
        }
        i += 1;
    }
    if start < b.len() {
        out.push((row, &b[start..]));
    }
    out
}

/// The cells of one CSV line.
fn csv_cells(line: &[u8]) -> Result<Vec<String>> {
    let mut rd = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(line);
    let mut cells = Vec::new();
    for rec in rd.records() {
        let rec = rec.map_err(|e| unreadable(e, "CSV 格式错误"))?;
        cells.extend(rec.iter().map(str::to_string));
    }
    Ok(cells)
}

/// The text of a CSV file: UTF-8 (an optional BOM), else GB18030/GBK, the
/// encoding Excel on a Chinese Windows saves "CSV" in.
fn csv_text(bytes: &[u8]) -> Result<std::borrow::Cow<'_, str>> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF".as_slice()).unwrap_or(bytes);
    if let Ok(s) = std::str::from_utf8(bytes) {
        return Ok(s.into());
    }
    encoding_rs::GB18030.decode_without_bom_handling_and_without_replacement(bytes).ok_or_else(|| {
        unreadable("the text is neither UTF-8 nor GBK; save it as CSV UTF-8", "文件既不是 UTF-8 也不是 GBK 编码的文本，请另存为 UTF-8 编码的 CSV 文件")
    })
}

/// Rows of a CSV file with a header line (UTF-8 with an optional BOM, or
/// GBK): each numbered as a spreadsheet shows it. Blank rows, before the
/// header too, are skipped but counted.
pub(crate) fn parse_csv(bytes: &[u8]) -> Result<Vec<Row>> {
    let text = csv_text(bytes)?;
    let mut header: Option<Vec<String>> = None;
    let mut rows = Vec::new();
    for (n, line) in csv_lines(text.as_bytes()) {
        let cells = csv_cells(line)?;
        if cells.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        match &header {
            None => header = Some(cells.iter().map(|h| column_key(h)).collect()),
            Some(h) => {
                rows.push(Row::from_cells(h, n, cells.into_iter()));
                if rows.len() > MAX_ROWS {
                    return Err(too_many_rows());
                }
            }
        }
    }
    Ok(rows)
}

/// Rows of the first sheet of an .xlsx workbook; the first row that is not
/// blank is the header. Each row keeps the sheet's own row number.
pub(crate) fn parse_xlsx(bytes: &[u8]) -> Result<Vec<Row>> {
    use calamine::Reader;
    let bad = |e: &dyn std::fmt::Display| unreadable(e, "不是有效的 xlsx 工作簿（文件已损坏或不是 xlsx 格式）");
    let mut wb: calamine::Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).map_err(|e| bad(&e))?;
    let range = wb.worksheet_range_at(0).ok_or_else(|| unreadable("the workbook has no sheet", "工作簿中没有工作表"))?.map_err(|e| bad(&e))?;
    // The range starts at the sheet's first used row (0-based).
    let first = range.start().map_or(0, |(r, _)| r as usize);
    let mut header: Option<Vec<String>> = None;
    let mut rows = Vec::new();
    for (i, r) in range.rows().enumerate() {
        let cells: Vec<String> = r.iter().map(|c| c.to_string()).collect();
        if cells.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        match &header {
            None => header = Some(cells.iter().map(|h| column_key(h)).collect()),
            Some(h) => {
                rows.push(Row::from_cells(h, first + i + 1, cells.into_iter()));
                if rows.len() > MAX_ROWS {
                    return Err(too_many_rows());
                }
            }
        }
    }
    Ok(rows)
}

/// Writes a table as CSV text.
pub(crate) fn write_csv(header: &[&str], rows: &[Vec<String>]) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header).map_err(Error::internal)?;
    for r in rows {
        w.write_record(r).map_err(Error::internal)?;
    }
    let bytes = w.into_inner().map_err(Error::internal)?;
    String::from_utf8(bytes).map_err(Error::internal)
}

/// Writes a table as an .xlsx workbook of one sheet.
///
/// On a thread of its own: rust_xlsxwriter assembles sheets with
/// `std::thread::scope`, which gives the calling thread a std thread handle
/// that lives until the thread ends; a C host's main thread would keep it
/// to exit (valgrind counts it as possibly lost). A thread we spawn frees
/// its own handle when it ends.
pub(crate) fn write_xlsx(sheet: &str, header: &[&str], rows: &[Vec<String>]) -> Result<Vec<u8>> {
    let (sheet, header, rows) = (sheet.to_string(), header.iter().map(|h| h.to_string()).collect::<Vec<_>>(), rows.to_vec());
    std::thread::Builder::new()
        .name("yilian-xlsx".into())
        .spawn(move || {
            let header: Vec<&str> = header.iter().map(String::as_str).collect();
            write_xlsx_here(&sheet, &header, &rows)
        })
        .map_err(Error::internal)?
        .join()
        .map_err(|_| Error::internal("the xlsx writer panicked"))?
}

fn write_xlsx_here(sheet: &str, header: &[&str], rows: &[Vec<String>]) -> Result<Vec<u8>> {
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name(sheet).map_err(Error::internal)?;
    let bold = rust_xlsxwriter::Format::new().set_bold();
    for (c, h) in header.iter().enumerate() {
        ws.write_string_with_format(0, c as u16, *h, &bold).map_err(Error::internal)?;
    }
    for (r, row) in rows.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            ws.write_string(r as u32 + 1, c as u16, v).map_err(Error::internal)?;
        }
    }
    wb.save_to_buffer().map_err(Error::internal)
}

/// The file a request carries: `content` (text), `content_base64`, or `path`;
/// `format` is `csv` or `xlsx` (by default from the path's extension, else
/// csv for text and xlsx for base64).
pub(crate) fn read_table(c: &Call) -> Result<Vec<Row>> {
    let format = c.r.opt_str("format")?.map(str::to_lowercase);
    let (bytes, guessed) = if let Some(t) = c.r.get("content") {
        let t = t.as_str().ok_or_else(|| invalid("content", "must be a string", "应为文本"))?;
        (t.as_bytes().to_vec(), "csv")
    } else if let Some(b) = c.r.get("content_base64") {
        let b = b.as_str().ok_or_else(|| invalid("content_base64", "must be a string", "应为文本"))?;
        (
            base64::engine::general_purpose::STANDARD.decode(b.trim()).map_err(|_| invalid("content_base64", "not valid base64", "不是有效的 base64 编码"))?,
            "xlsx",
        )
    } else if let Some(p) = c.r.opt_str("path")? {
        let bytes = std::fs::read(exchange_path(c, p)?).map_err(|e| unreadable(e.kind(), io_zh(e.kind())))?;
        (bytes, if p.to_lowercase().ends_with(".xlsx") { "xlsx" } else { "csv" })
    } else {
        return Err(Error::missing("content"));
    };
    match format.as_deref().unwrap_or(guessed) {
        "csv" => parse_csv(&bytes),
        "xlsx" => parse_xlsx(&bytes),
        _ => Err(invalid("format", "expected csv or xlsx", "应为 csv 或 xlsx")),
    }
}

/// A file named by `path`: relative, inside the engine's exchange folder
/// `<data_dir>/lab-files/`. Commands reach the engine from remote callers
/// too (the sandbox server), so they may not read or write anywhere else.
fn exchange_path(c: &Call, p: &str) -> Result<std::path::PathBuf> {
    use std::path::{Component, Path};
    let dir = c.pool.cfg.data_dir.as_ref().ok_or_else(|| {
        invalid(
            "path",
            "file paths need an engine with a data_dir (files live in <data_dir>/lab-files)",
            "引擎未配置数据目录 data_dir，不能按路径读写文件（文件位于 <data_dir>/lab-files）",
        )
    })?;
    let rel = Path::new(p);
    if p.is_empty() || !rel.components().all(|x| matches!(x, Component::Normal(_))) {
        return Err(invalid(
            "path",
            "must be a relative path inside <data_dir>/lab-files, without `..`",
            "应为 <data_dir>/lab-files 内的相对路径，不得含有“..”",
        ));
    }
    Ok(dir.join("lab-files").join(rel))
}

fn kind_of(c: &Call) -> Result<Kind> {
    match c.r.opt_str("kind")?.unwrap_or("items") {
        "items" | "item" => Ok(Kind::Item),
        "projects" | "project" => Ok(Kind::Project),
        _ => Err(invalid("kind", "expected items or projects", "应为 items（小项）或 projects（项目）")),
    }
}

/// `lab-mapping-import`: every row checked first; any invalid row and
/// nothing is imported (the error lists each rejected row with its reason;
/// `validate_only` returns the same list as data).
pub(crate) fn import(c: &Call) -> Result<Value> {
    let inst = c.owner("institution_id")?;
    let kind = kind_of(c)?;
    let rows = read_table(c)?;
    if rows.is_empty() {
        return Err(unreadable("no rows", "文件中没有数据行"));
    }
    if c.r.opt_bool("validate_only")?.unwrap_or(false) {
        return c.read(|d| {
            let rejected = match mapping::validate(d, &inst, kind, &rows) {
                Ok(_) => Vec::new(),
                Err(r) => r,
            };
            Ok(json!({"valid": rejected.is_empty(), "rows": rows.len(), "rejected": rejected_view(&rejected)}))
        });
    }
    c.change(|d, ctx| {
        let entries = mapping::validate(d, &inst, kind, &rows).map_err(|r| rejected_error(&r))?;
        let n = entries.len();
        let mapped = entries.iter().filter(|e| e.std_code.is_some()).count();
        mapping::apply(d, ctx, &inst, kind, entries);
        ctx.event("lab_mapping_imported", Some(&inst), None, json!({"institution_id": inst, "kind": kind.plural(), "rows": n, "mapped": mapped}));
        Ok(json!({"institution_id": inst, "kind": kind.plural(), "imported": n, "mapped": mapped, "unmapped": n - mapped}))
    })
}

/// What an I/O error kind means, in Chinese.
fn io_zh(kind: std::io::ErrorKind) -> &'static str {
    match kind {
        std::io::ErrorKind::NotFound => "找不到该文件或目录",
        std::io::ErrorKind::PermissionDenied => "没有访问权限",
        std::io::ErrorKind::AlreadyExists => "已存在同名文件",
        _ => "输入输出错误",
    }
}

pub(crate) fn rejected_view(rejected: &[Rejected]) -> Vec<Value> {
    rejected.iter().map(|r| json!({"row": r.row, "code": r.code, "reason": r.why.en, "reason_zh": r.why.zh})).collect()
}

/// The error naming every refused row (the first 200) by its number and
/// reason, in both languages; never the row's values (the answer of a
/// partial import, [`rejected_view`], names the codes to the caller).
pub(crate) fn rejected_error(rejected: &[Rejected]) -> Error {
    const SHOWN: usize = 200;
    let en: Vec<String> = rejected.iter().take(SHOWN).map(|r| format!("row {}: {}", r.row, r.why.en)).collect();
    let zh: Vec<String> = rejected.iter().take(SHOWN).map(|r| format!("第 {} 行：{}", r.row, r.why.zh)).collect();
    let (more, more_zh) = match rejected.len().checked_sub(SHOWN).filter(|m| *m > 0) {
        Some(m) => (format!("; and {m} more"), format!("；另有 {m} 行")),
        None => (String::new(), String::new()),
    };
    Error::with(
        ErrorCode::LabImportRejected,
        format!("{} invalid rows, nothing was imported: {}{more}", rejected.len(), en.join("; ")),
        format!("{} 行无效，未导入任何内容：{}{more_zh}", rejected.len(), zh.join("；")),
    )
}

const ITEM_HEADER: [&str; 7] = ["inst_code", "inst_name", "specimen_type", "specimen_note", "maps_to", "std_name", "status"];
const PROJECT_HEADER: [&str; 5] = ["inst_code", "inst_name", "maps_to", "std_name", "status"];

fn export_rows(d: &LabData, inst: &str, kind: Kind) -> Vec<Vec<String>> {
    let Some(t) = d.inst.get(inst) else { return Vec::new() };
    t.entries(kind)
        .values()
        .map(|e| {
            let std_name = e.std_code.as_deref().and_then(|s| mapping::std_name(d, kind, s)).unwrap_or_default();
            let status = if e.std_code.is_some() { "mapped" } else { "unmapped" };
            let mut row = vec![e.code.clone(), e.name.clone()];
            if kind == Kind::Item {
                row.push(e.specimen_type.clone().unwrap_or_default());
                row.push(e.specimen_note.clone().unwrap_or_default());
            }
            row.extend([e.std_code.clone().unwrap_or_default(), std_name, status.to_string()]);
            row
        })
        .collect()
}

/// The mapping as a FHIR R4 ConceptMap (institution codes → standard codes).
fn concept_map(d: &LabData, inst: &str, kind: Kind) -> Value {
    let what = kind.plural();
    let elements: Vec<Value> = d
        .inst
        .get(inst)
        .map(|t| {
            t.entries(kind)
                .values()
                .map(|e| match &e.std_code {
                    Some(s) => json!({"code": e.code, "display": e.name, "target": [{"code": s, "display": mapping::std_name(d, kind, s), "equivalence": "equivalent"}]}),
                    None => json!({"code": e.code, "display": e.name, "target": [{"equivalence": "unmatched"}]}),
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "resourceType": "ConceptMap",
        "id": format!("yilian-lab-{what}-{}", inst.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '-' }).collect::<String>()),
        "name": format!("LabMapping{}", if kind == Kind::Item { "Items" } else { "Projects" }),
        "title": format!("{inst} 检验{}对照", if kind == Kind::Item { "小项" } else { "项目" }),
        "status": "active",
        "sourceUri": format!("urn:yilian:lab:{inst}:{what}"),
        "targetUri": format!("urn:yilian:lab:standard:{what}"),
        "group": [{
            "source": format!("urn:yilian:lab:{inst}:{what}"),
            "target": format!("urn:yilian:lab:standard:{what}"),
            "element": elements,
        }],
    })
}

/// `lab-mapping-export`: `format` csv (text), xlsx (base64) or fhir (a
/// ConceptMap); with `path` the file is written there instead.
pub(crate) fn export(c: &Call) -> Result<Value> {
    let inst = c.owner("institution_id")?;
    let kind = kind_of(c)?;
    let format = c.r.opt_str("format")?.unwrap_or("csv").to_lowercase();
    let path = c.r.opt_str("path")?;
    let header: &[&str] = if kind == Kind::Item { &ITEM_HEADER } else { &PROJECT_HEADER };
    let (rows, cm) = c.read(|d| Ok((export_rows(d, &inst, kind), (format == "fhir").then(|| concept_map(d, &inst, kind)))))?;
    let bytes = match format.as_str() {
        "csv" => write_csv(header, &rows)?.into_bytes(),
        "xlsx" => write_xlsx(if kind == Kind::Item { "items" } else { "projects" }, header, &rows)?,
        "fhir" => serde_json::to_vec_pretty(&cm).map_err(Error::internal)?,
        _ => return Err(invalid("format", "expected csv, xlsx or fhir", "应为 csv、xlsx 或 fhir")),
    };
    if let Some(p) = path {
        let full = exchange_path(c, p)?;
        if let Some(dir) = full.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                Error::with(ErrorCode::StorageError, format!("cannot create the folder: {}", e.kind()), format!("无法创建目录：{}", io_zh(e.kind())))
            })?;
        }
        std::fs::write(&full, &bytes)
            .map_err(|e| Error::with(ErrorCode::StorageError, format!("cannot write the file: {}", e.kind()), format!("无法写入文件：{}", io_zh(e.kind()))))?;
        return Ok(json!({"format": format, "path": p, "bytes": bytes.len(), "rows": rows.len()}));
    }
    Ok(match format.as_str() {
        "csv" => json!({"format": "csv", "rows": rows.len(), "content": String::from_utf8_lossy(&bytes)}),
        "xlsx" => json!({"format": "xlsx", "rows": rows.len(), "content_base64": base64::engine::general_purpose::STANDARD.encode(&bytes)}),
        _ => json!({"format": "fhir", "rows": rows.len(), "concept_map": cm}),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbers(rows: &[Row]) -> Vec<(usize, Option<String>)> {
        rows.iter().map(|r| (r.n, r.get("inst_code"))).collect()
    }

    #[test]
    fn xlsx_rows_keep_the_sheets_own_numbers_past_blank_rows_and_a_header_that_is_not_on_top() {
        let mut wb = rust_xlsxwriter::Workbook::new();
        let ws = wb.add_worksheet();
        // Row 1 empty, the header on row 2 (Chinese), data on rows 3 and 6, rows 4-5 blank.
        for (c, h) in ["机构项目编码", "机构项目名称", "样本类型"].iter().enumerate() {
            ws.write_string(1, c as u16, *h).unwrap();
        }
        ws.write_string(2, 0, "A1").unwrap();
        ws.write_string(2, 1, "白细胞").unwrap();
        ws.write_string(3, 1, " ").unwrap();
        ws.write_string(5, 0, "A2").unwrap();
        let rows = parse_xlsx(&wb.save_to_buffer().unwrap()).unwrap();
        assert_eq!(numbers(&rows), vec![(3, Some("A1".into())), (6, Some("A2".into()))]);
        assert_eq!(rows[0].get("inst_name").as_deref(), Some("白细胞"));
    }

    #[test]
    fn csv_rows_are_counted_like_a_spreadsheet_counts_them() {
        let text = "inst_code,inst_name\r\rA1,\"a\r\nb\"\r\n\r\nA2,\"say \"\"hi\"\"\"\nA3,5\"\n\nA4,x";
        let rows = parse_csv(text.as_bytes()).unwrap();
        // Old Mac line ends (\r) count; the quoted line break does not.
        assert_eq!(numbers(&rows), vec![(3, Some("A1".into())), (5, Some("A2".into())), (6, Some("A3".into())), (8, Some("A4".into()))]);
        assert_eq!(rows[0].get("inst_name").as_deref(), Some("a\r\nb"));
        assert_eq!(rows[1].get("inst_name").as_deref(), Some("say \"hi\""));
        // A quote inside a cell that did not open with one is a plain character (5" = five inches).
        assert_eq!(rows[2].get("inst_name").as_deref(), Some("5\""));
        assert!(parse_csv(b"\n\n").unwrap().is_empty());
    }

    #[test]
    fn chinese_headers_name_the_english_columns() {
        for (h, want) in [
            ("机构项目编码", "inst_code"),
            (" 机构小项代码* ", "inst_code"),
            ("项目代码", "code"),
            ("项目编码", "code"),
            ("标准项目编码", "std_code"),
            ("标准编码（对照）", "std_code"),
            ("标准项目名称", "std_name"),
            ("标本类型", "specimen_type"),
            ("单位", "unit"),
            ("参考范围", "ref_range"),
            ("价格（元）", "price"),
            ("采血量(ml)", "volume_ml"),
            ("Inst_Code", "inst_code"),
            ("备注", "备注"),
        ] {
            assert_eq!(column_key(h), want, "{h}");
        }
        // Each Chinese header stands for one column only.
        let mut seen = std::collections::HashSet::new();
        for (_, zh) in HEADER_ALIASES {
            for h in *zh {
                assert!(seen.insert(*h), "{h} twice");
                assert_eq!(header_form(h), *h, "{h} is written in its matched form");
            }
        }
    }
}
