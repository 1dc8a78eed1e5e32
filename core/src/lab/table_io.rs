//! Mapping tables in and out (L3): CSV (crate `csv`), .xlsx (read with
//! `calamine`, written with `rust_xlsxwriter`) and a FHIR R4 `ConceptMap`.
//! File content travels in JSON as text (CSV) or base64 (xlsx); a host that
//! prefers files names a `path` instead, relative to `<data_dir>/lab-files/`.

use super::mapping::{self, Kind};
use super::{Call, LabData};
use crate::error::{Error, ErrorCode, Result};
use base64::Engine as _;
use serde_json::{json, Value};

/// One row of a table: column name → trimmed text (empty cells absent).
#[derive(Debug, Clone, Default)]
pub(crate) struct Row {
    cells: Vec<(String, String)>,
}

impl Row {
    pub fn get(&self, k: &str) -> Option<String> {
        self.cells.iter().find(|(c, _)| c == k).map(|(_, v)| v.trim().to_string()).filter(|v| !v.is_empty())
    }
    pub fn get_any(&self, ks: &[&str]) -> Option<String> {
        ks.iter().find_map(|k| self.get(k))
    }
    /// A JSON object as a row: strings and numbers as text, arrays of
    /// strings joined with `;`.
    pub fn from_json(v: &Value) -> Option<Row> {
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
        Some(Row { cells })
    }
    fn from_cells(header: &[String], cells: impl Iterator<Item = String>) -> Row {
        Row { cells: header.iter().cloned().zip(cells).collect() }
    }
}

const MAX_ROWS: usize = 20_000;

fn unreadable(why: impl std::fmt::Display) -> Error {
    Error::with(ErrorCode::LabFileUnreadable, format!("the file cannot be read: {why}"), format!("无法读取该文件：{why}"))
}

/// Rows of a CSV file with a header line (UTF-8, an optional BOM).
pub(crate) fn parse_csv(bytes: &[u8]) -> Result<Vec<Row>> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF".as_slice()).unwrap_or(bytes);
    let mut rd = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(bytes);
    let header: Vec<String> = rd.headers().map_err(unreadable)?.iter().map(|h| h.trim().to_lowercase()).collect();
    let mut rows = Vec::new();
    for rec in rd.records() {
        let rec = rec.map_err(unreadable)?;
        if rec.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        rows.push(Row::from_cells(&header, rec.iter().map(str::to_string)));
        if rows.len() > MAX_ROWS {
            return Err(unreadable(format!("more than {MAX_ROWS} rows")));
        }
    }
    Ok(rows)
}

/// Rows of the first sheet of an .xlsx workbook; the first row is the header.
pub(crate) fn parse_xlsx(bytes: &[u8]) -> Result<Vec<Row>> {
    use calamine::Reader;
    let mut wb: calamine::Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).map_err(unreadable)?;
    let range = wb.worksheet_range_at(0).ok_or_else(|| unreadable("the workbook has no sheet"))?.map_err(unreadable)?;
    let mut it = range.rows();
    let header: Vec<String> = match it.next() {
        Some(h) => h.iter().map(|c| c.to_string().trim().to_lowercase()).collect(),
        None => return Ok(Vec::new()),
    };
    let mut rows = Vec::new();
    for r in it {
        if r.iter().all(|c| c.to_string().trim().is_empty()) {
            continue;
        }
        rows.push(Row::from_cells(&header, r.iter().map(|c| c.to_string())));
        if rows.len() > MAX_ROWS {
            return Err(unreadable(format!("more than {MAX_ROWS} rows")));
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
        let t = t.as_str().ok_or_else(|| Error::invalid("content", "must be a string"))?;
        (t.as_bytes().to_vec(), "csv")
    } else if let Some(b) = c.r.get("content_base64") {
        let b = b.as_str().ok_or_else(|| Error::invalid("content_base64", "must be a string"))?;
        (base64::engine::general_purpose::STANDARD.decode(b.trim()).map_err(|_| Error::invalid("content_base64", "not valid base64"))?, "xlsx")
    } else if let Some(p) = c.r.opt_str("path")? {
        let bytes = std::fs::read(exchange_path(c, p)?).map_err(|e| unreadable(e.kind()))?;
        (bytes, if p.to_lowercase().ends_with(".xlsx") { "xlsx" } else { "csv" })
    } else {
        return Err(Error::missing("content"));
    };
    match format.as_deref().unwrap_or(guessed) {
        "csv" => parse_csv(&bytes),
        "xlsx" => parse_xlsx(&bytes),
        _ => Err(Error::invalid("format", "expected csv or xlsx")),
    }
}

/// A file named by `path`: relative, inside the engine's exchange folder
/// `<data_dir>/lab-files/`. Commands reach the engine from remote callers
/// too (the sandbox server), so they may not read or write anywhere else.
fn exchange_path(c: &Call, p: &str) -> Result<std::path::PathBuf> {
    use std::path::{Component, Path};
    let dir =
        c.pool.cfg.data_dir.as_ref().ok_or_else(|| Error::invalid("path", "file paths need an engine with a data_dir (files live in <data_dir>/lab-files)"))?;
    let rel = Path::new(p);
    if p.is_empty() || !rel.components().all(|x| matches!(x, Component::Normal(_))) {
        return Err(Error::invalid("path", "must be a relative path inside <data_dir>/lab-files, without `..`"));
    }
    Ok(dir.join("lab-files").join(rel))
}

fn kind_of(c: &Call) -> Result<Kind> {
    match c.r.opt_str("kind")?.unwrap_or("items") {
        "items" | "item" => Ok(Kind::Item),
        "projects" | "project" => Ok(Kind::Project),
        _ => Err(Error::invalid("kind", "expected items or projects")),
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
        return Err(unreadable("no rows"));
    }
    if c.r.opt_bool("validate_only")?.unwrap_or(false) {
        return c.read(|d| {
            let rejected = match mapping::validate(d, &inst, kind, &rows, 2) {
                Ok(_) => Vec::new(),
                Err(r) => r,
            };
            Ok(json!({"valid": rejected.is_empty(), "rows": rows.len(), "rejected": rejected_view(&rejected)}))
        });
    }
    c.change(|d, ctx| {
        let entries = mapping::validate(d, &inst, kind, &rows, 2).map_err(|r| rejected_error(&r))?;
        let n = entries.len();
        let mapped = entries.iter().filter(|e| e.std_code.is_some()).count();
        mapping::apply(d, ctx, &inst, kind, entries);
        ctx.event("lab_mapping_imported", Some(&inst), None, json!({"institution_id": inst, "kind": kind.plural(), "rows": n, "mapped": mapped}));
        Ok(json!({"institution_id": inst, "kind": kind.plural(), "imported": n, "mapped": mapped, "unmapped": n - mapped}))
    })
}

pub(crate) fn rejected_view(rejected: &[(usize, String, String)]) -> Vec<Value> {
    rejected.iter().map(|(n, code, why)| json!({"row": n, "code": code, "reason": why})).collect()
}

pub(crate) fn rejected_error(rejected: &[(usize, String, String)]) -> Error {
    let list: Vec<String> = rejected.iter().take(200).map(|(n, code, why)| format!("row {n} ({code}): {why}")).collect();
    let more = if rejected.len() > 200 { format!("; and {} more", rejected.len() - 200) } else { String::new() };
    Error::with(
        ErrorCode::LabImportRejected,
        format!("{} invalid rows, nothing was imported: {}{more}", rejected.len(), list.join("; ")),
        format!("{} 行无效，未导入任何内容：{}{more}", rejected.len(), list.join("；")),
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
        _ => return Err(Error::invalid("format", "expected csv, xlsx or fhir")),
    };
    if let Some(p) = path {
        let full = exchange_path(c, p)?;
        if let Some(dir) = full.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::with(ErrorCode::StorageError, format!("cannot create the folder: {}", e.kind()), format!("无法创建目录：{}", e.kind())))?;
        }
        std::fs::write(&full, &bytes)
            .map_err(|e| Error::with(ErrorCode::StorageError, format!("cannot write the file: {}", e.kind()), format!("无法写入文件：{}", e.kind())))?;
        return Ok(json!({"format": format, "path": p, "bytes": bytes.len(), "rows": rows.len()}));
    }
    Ok(match format.as_str() {
        "csv" => json!({"format": "csv", "rows": rows.len(), "content": String::from_utf8_lossy(&bytes)}),
        "xlsx" => json!({"format": "xlsx", "rows": rows.len(), "content_base64": base64::engine::general_purpose::STANDARD.encode(&bytes)}),
        _ => json!({"format": "fhir", "rows": rows.len(), "concept_map": cm}),
    })
}
