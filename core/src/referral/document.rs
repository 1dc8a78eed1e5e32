//! 报告回传接口: `upload-report` and `exam-report-document`.
//!
//! The hospital uploads a report document (PDF, JPEG, PNG or DICOM, as
//! base64 in JSON, the bindings' way) for a booking of its own slots
//! (`booking_id`, the source's field) or for an exam item (`exam_id` +
//! `item_no`; a booking an exam item owns is that item). The document is
//! checked before anything is kept: its size (`report_max_bytes`), its type
//! (sniffed from its first bytes; the name and a declared `content_type`
//! are not trusted), and its SM2 signature over the bytes when one is
//! given (required for an exam item, B3: an unstructured report carries
//! the issuer's electronic signature). For an exam item it is the item's
//! next report revision (the item goes to `reported`, B4's graded push
//! follows). It is kept in the durable store (a row of the lazily read
//! table `report_document_content`, sealed like every row when an
//! `encryption_key` is set), or as a file under the config's `report_dir`,
//! or in memory for an engine without either.
//!
//! A file is named by an opaque random id (`<2 hex>/<32 hex>.<ext>`; no
//! booking id, no file name: the name sent is kept only in the record,
//! a row of the referral table, sealed with the store). With an
//! `encryption_key` its content is sealed with the store's cipher (SM4-GCM,
//! the base64 of the bytes, the associated data `report/<file id>`, so a
//! file swapped for another does not open) and the name ends `.sealed`.
//! It is written to a temporary file, fsynced, renamed, the directory
//! fsynced, before the row that names it is committed; the row records its
//! path and the SM3 of the plain bytes, checked on every read. Files kept
//! before this scheme (`B000001/<sm3>-<random>.pdf`, plain) are still read. Its record is a row of the referral table, in the
//! same transaction as the `report_uploaded` event, the request id's answer
//! and the audit entry. `exam-report-document` reads it back for the
//! hospital and the community institution of the booking or application,
//! checking the bytes against their SM3.

use super::exam::{self, ReportFields, SignerKeyView, SigningKey};
use super::{text, Ctx, Inner, Side, Who};
use crate::clock::{format_ms, Millis};
use crate::error::{Error, ErrorCode, Result};
use crate::model::{format_booking_id, Event};
use crate::pool::{Claimed, Txn};
use crate::store::Write;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::path::{Component, Path};

crate::store::table!(
    /// The bytes of report documents kept in the store (`upload-report`
    /// without `report_dir`): one row each, base64, read when asked for and
    /// never loaded on open.
    pub(crate) CONTENT = "report_document_content", Lazy
);

/// `ED000001`.
pub(crate) fn format_document_id(id: u64) -> String {
    format!("ED{id:06}")
}

/// `ED000001`, `ED1` or the bare number.
fn parse_document_id(s: &str) -> Option<u64> {
    let digits = s.trim().strip_prefix("ED").or_else(|| s.trim().strip_prefix("ed")).unwrap_or(s.trim());
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|n| *n > 0)
}

/// The document types a report may be (the source: PDF and images; the
/// imaging department's DICOM files), told by their first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Pdf,
    Jpeg,
    Png,
    Dicom,
}

impl Kind {
    /// The type of `b` by its signature: `%PDF-` (after at most a UTF-8 BOM
    /// and white space, within the first 1024 bytes), JPEG's SOI marker
    /// `FF D8 FF`, PNG's eight bytes, DICOM Part 10's `DICM` after the
    /// 128-byte preamble. Text with `%PDF-` further in (an HTML page) is not a PDF.
    pub(crate) fn sniff(b: &[u8]) -> Option<Kind> {
        if b.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Kind::Png)
        } else if b.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Kind::Jpeg)
        } else if b.len() >= 132 && &b[128..132] == b"DICM" {
            Some(Kind::Dicom)
        } else if is_pdf(b) {
            Some(Kind::Pdf)
        } else {
            None
        }
    }
    pub(crate) fn mime(self) -> &'static str {
        match self {
            Kind::Pdf => "application/pdf",
            Kind::Jpeg => "image/jpeg",
            Kind::Png => "image/png",
            Kind::Dicom => "application/dicom",
        }
    }
    fn ext(self) -> &'static str {
        match self {
            Kind::Pdf => "pdf",
            Kind::Jpeg => "jpg",
            Kind::Png => "png",
            Kind::Dicom => "dcm",
        }
    }
    /// The report revision's `format`.
    fn format(self) -> &'static str {
        match self {
            Kind::Pdf => "pdf",
            Kind::Jpeg | Kind::Png => "image",
            Kind::Dicom => "dicom",
        }
    }
    /// A declared media type (parameters and case ignored; `image/jpg` is JPEG).
    fn declared(s: &str) -> Option<Kind> {
        let m = s.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match m.as_str() {
            "application/pdf" => Some(Kind::Pdf),
            "image/jpeg" | "image/jpg" | "image/pjpeg" => Some(Kind::Jpeg),
            "image/png" => Some(Kind::Png),
            "application/dicom" => Some(Kind::Dicom),
            _ => None,
        }
    }
}

/// `%PDF-` after at most a UTF-8 BOM and white space, within 1024 bytes.
fn is_pdf(b: &[u8]) -> bool {
    let b = b.strip_prefix(b"\xef\xbb\xbf").unwrap_or(b);
    let start = b.iter().take(1024).position(|c| !c.is_ascii_whitespace() && *c != 0);
    start.is_some_and(|i| b[i..].starts_with(b"%PDF-"))
}

/// Where a document's bytes are.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "in", rename_all = "snake_case")]
pub(crate) enum Stored {
    /// A row of [`CONTENT`] keyed by the document's key.
    Store,
    /// A file under the config's `report_dir`, by its path below it.
    File { path: String },
    /// In the engine's memory (no `data_dir`, no `report_dir`).
    Memory,
}

/// One uploaded document: its record (a row of the referral table).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Document {
    pub document_id: u64,
    pub booking_id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exam_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_no: Option<u32>,
    /// The report revision it is (an exam item's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u32>,
    pub hospital_id: String,
    /// The community institution of the booking or application, who may read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clinic_id: Option<String>,
    pub patient_id: String,
    /// `<n>-<name>`: the n-th document of the booking, the sanitised name sent.
    pub file_name: String,
    pub content_type: String,
    pub size: u64,
    pub sm3: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer_key: Option<SigningKey>,
    pub signature_verified: bool,
    pub stored: Stored,
    pub uploaded_ms: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploaded_by: Option<String>,
}

impl Document {
    fn view(&self, tz: &chrono_tz::Tz) -> Value {
        let stored = match self.stored {
            Stored::Store => "store",
            Stored::File { .. } => "file",
            Stored::Memory => "memory",
        };
        let mut v = json!({
            "document_id": format_document_id(self.document_id),
            "booking_id": format_booking_id(self.booking_id),
            "hospital_id": self.hospital_id,
            "clinic_id": self.clinic_id,
            "file_name": self.file_name,
            "content_type": self.content_type,
            "size": self.size,
            "sm3": self.sm3,
            "signature_verified": self.signature_verified,
            "stored": stored,
            "uploaded_at": format_ms(self.uploaded_ms, tz),
        });
        if let Some(x) = self.exam_id {
            v["exam_id"] = x.into();
        }
        if let Some(x) = self.item_no {
            v["item_no"] = x.into();
        }
        if let Some(x) = self.revision {
            v["revision"] = x.into();
        }
        if let Some(sig) = &self.signature {
            v["signature"] = sig.clone().into();
            v["signer_id"] = self.signer_id.clone().into();
            // The signature covers exactly the document's bytes (their SM3 is `sm3`).
            v["signed"] = json!({"what": "content", "sm3": self.sm3});
            if let Some(k) = &self.signer_key {
                v["signer_key"] = serde_json::to_value(SignerKeyView::of(k, tz)).unwrap_or_default();
            }
        }
        v
    }

    /// S1: the hospital and the community institution of the booking or application.
    fn visible_to(&self, who: &Who) -> bool {
        who.may_see(self.clinic_id.as_deref().unwrap_or(""), &self.hospital_id)
    }
}

fn content_key(id: u64) -> String {
    format!("document:{id:012}")
}

/// Keeps the name's letters (any script), digits, `.`, `-`, `_`; everything
/// else becomes `_`. No separators, no leading dot, bounded length: the name
/// is safe in a URL path segment and on any file system.
pub(crate) fn sanitise_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let mut s: String = base.chars().map(|c| if c.is_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' }).collect();
    while s.starts_with('.') {
        s.remove(0);
    }
    if s.chars().count() > 100 {
        // Keep the extension.
        let ext: String = s.rsplit_once('.').map(|(_, e)| e.chars().take(10).collect()).unwrap_or_default();
        s = s.chars().take(80).collect::<String>() + if ext.is_empty() { "" } else { "." } + &ext;
    }
    if s.is_empty() || s.chars().all(|c| c == '_' || c == '.') {
        String::new()
    } else {
        s
    }
}

fn unsupported(en: String, zh: String) -> Error {
    Error::with(ErrorCode::ReportTypeUnsupported, en, zh)
}

fn too_large(size: usize, limit: usize) -> Error {
    Error::with(
        ErrorCode::RequestTooLarge,
        format!("the report document has {size} bytes; the limit (report_max_bytes) is {limit}"),
        format!("报告文件 {size} 字节，超过上限 {limit} 字节（配置项 `report_max_bytes`）"),
    )
}

/// The request's document: `content_base64` decoded, within the limit and not empty.
fn content<'a>(c: &Ctx<'a>) -> Result<(Vec<u8>, &'a str)> {
    let limit = c.pool.cfg.report_max_bytes;
    let b64 = match c.r.get("content_base64") {
        None => return Err(Error::missing("content_base64")),
        Some(Value::String(s)) => s.trim(),
        Some(_) => return Err(Error::invalid_zh("content_base64", "must be a string", "必须为字符串")),
    };
    // Refused before decoding when even its shortest reading is too large.
    let at_least = (b64.len() / 4) * 3;
    if at_least > limit + 3 {
        return Err(too_large(at_least, limit));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| Error::invalid_zh("content_base64", "not valid base64", "不是有效的 `base64` 编码"))?;
    if bytes.is_empty() {
        return Err(Error::invalid_zh("content_base64", "the document is empty", "报告文件为空"));
    }
    if bytes.len() > limit {
        return Err(too_large(bytes.len(), limit));
    }
    Ok((bytes, b64))
}

/// What the document is for.
enum Target {
    /// An exam item's next report revision.
    Exam { e: Box<exam::ExamApp>, item_no: u32, booking: Option<u64> },
    /// A booking of the pool no exam item owns (the source's interface).
    Booking { booking: u64, hospital: String, clinic: Option<String>, patient: String },
}

fn target(c: &Ctx, who: &Who) -> Result<Target> {
    let exam_id = if c.r.get("exam_id").is_some() { Some(super::int_id(c.r, "exam_id")?) } else { None };
    let booking = if c.r.get("booking_id").is_some() { Some(c.r.booking_id()?) } else { None };
    if let Some(id) = exam_id {
        let item_no = c.r.opt_u32("item_no")?.ok_or_else(|| Error::missing("item_no"))?;
        let e = exam::load(c, who, id)?;
        let it = e.items.iter().find(|i| i.item_no == item_no).ok_or_else(exam::item_not_found)?;
        if booking.is_some() && booking != it.booking_id {
            return Err(Error::invalid_zh("booking_id", "is not the booking of that exam item", "不是该检查项目的预约"));
        }
        let booking = it.booking_id;
        return Ok(Target::Exam { e: Box::new(e), item_no, booking });
    }
    let id = booking.ok_or_else(|| Error::missing("booking_id"))?;
    let b = c.pool.booking_or_retired(id)?;
    let owner = {
        let g = c.referral.inner.lock();
        g.exams.values().find_map(|e| e.items.iter().find(|i| i.booking_id == Some(id)).map(|i| (e.clone(), i.item_no)))
    };
    if let Some((e, item_no)) = owner {
        who.check(&e.clinic_id, &e.hospital_id)?;
        return Ok(Target::Exam { e: Box::new(e), item_no, booking: Some(id) });
    }
    let slot = c.pool.slot(b.slot_idx)?;
    let hospital = slot.info.hospital_id.clone();
    if who.side == Side::Hospital && who.institution.as_deref() != Some(hospital.as_str()) {
        return Err(super::forbidden("a hospital uploads reports only for bookings of its own slots", "医院只能为本院号源的预约上传报告"));
    }
    Ok(Target::Booking { booking: id, hospital, clinic: b.clinic_id.as_deref().map(str::to_string), patient: b.patient_id.to_string() })
}

/// What a sealed report file's content is bound to: its opaque id.
fn file_aad(file_id: &str) -> Vec<u8> {
    format!("report/{file_id}").into_bytes()
}

/// The file id of a stored path: its name without the extension.
fn file_id_of(path: &str) -> &str {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.split('.').next().unwrap_or(name)
}

/// Writes the bytes to a new file under `dir`, named by a random id
/// (`<first 2 hex>/<32 hex>.<ext>`, `.sealed` when `cipher` seals it): a
/// temporary file written and fsynced, renamed to its name, then the
/// directories fsynced, so the file is whole and durable before its row is
/// committed. Answers its path below `dir`. Nothing in the path says whose
/// report it is.
fn write_file(dir: &Path, kind: Kind, bytes: &[u8], cipher: Option<&crate::crypto::RowCipher>) -> Result<String> {
    use std::io::Write as _;
    let io = |e: std::io::Error| Error::storage(format!("report_dir: {e}"));
    let mut token = [0u8; 16];
    getrandom::fill(&mut token).map_err(|e| Error::storage(format!("random source: {e}")))?;
    let id = hex::encode(token);
    let sub = id[..2].to_string();
    let folder = dir.join(&sub);
    std::fs::create_dir_all(&folder).map_err(io)?;
    let (name, sealed) = match cipher {
        Some(c) => (format!("{id}.sealed"), Some(c.seal(&file_aad(&id), &base64::engine::general_purpose::STANDARD.encode(bytes)))),
        None => (format!("{id}.{}", kind.ext()), None),
    };
    let content = sealed.as_ref().map_or(bytes, |s| s.as_bytes());
    let tmp = folder.join(format!(".{name}.tmp"));
    let written = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(content)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, folder.join(&name))?;
        sync_dir(&folder)?;
        sync_dir(dir)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        let _ = std::fs::remove_file(folder.join(&name));
        return Err(io(e));
    }
    Ok(format!("{sub}/{name}"))
}

/// The plain bytes of a report file's content: opened when sealed.
fn open_file(c: &Ctx, path: &str, content: Vec<u8>) -> Result<Vec<u8>> {
    if !content.starts_with(crate::crypto::SEALED_PREFIX.as_bytes()) {
        return Ok(content);
    }
    let key = c.pool.cfg.encryption_key.as_ref().ok_or_else(|| {
        Error::with(ErrorCode::InvalidConfig, "the report file is encrypted: configure the encryption_key", "报告文件已加密：请配置 encryption_key")
    })?;
    let cipher = crate::crypto::RowCipher::new(key);
    let text = std::str::from_utf8(&content).ok();
    let b64 = text.and_then(|t| cipher.open(&file_aad(file_id_of(path)), t)).ok_or_else(|| {
        Error::with(
            ErrorCode::StoreCorrupt,
            "the report file does not open with the configured encryption_key (wrong key, or the file was altered or swapped)",
            "报告文件无法用所配置的 encryption_key 解密（密钥错误，或文件被修改或替换）",
        )
    })?;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| Error::with(ErrorCode::StoreCorrupt, "the report file's sealed content is not base64", "报告文件解密后的内容不是 base64 编码"))
}

/// Makes a rename or a new entry in `dir` durable (a no-op where directories
/// cannot be opened, e.g. Windows, whose renames are durable with the file).
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// A stored path, below `report_dir` and nowhere else.
fn file_path(c: &Ctx, path: &str) -> Result<std::path::PathBuf> {
    let dir = c.pool.cfg.report_dir.as_ref().ok_or_else(|| {
        Error::with(
            ErrorCode::StorageError,
            "the document is a file under report_dir, and the config names no report_dir",
            "该报告文件保存在 `report_dir` 目录中，但配置中没有 `report_dir`",
        )
    })?;
    let rel = Path::new(path);
    if !rel.components().all(|p| matches!(p, Component::Normal(_))) {
        return Err(Error::with(ErrorCode::StoreCorrupt, "a document's stored path leaves report_dir", "报告文件的存储路径超出 `report_dir`"));
    }
    Ok(dir.join(rel))
}

/// The document's bytes, checked against its SM3.
fn bytes_of(c: &Ctx, d: &Document) -> Result<Vec<u8>> {
    let missing = || Error::with(ErrorCode::StoreCorrupt, "the document's bytes are missing", "报告文件内容缺失");
    let bytes = match &d.stored {
        Stored::File { path } => {
            let content = std::fs::read(file_path(c, path)?).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => missing(),
                _ => Error::storage(format!("report_dir: {e}")),
            })?;
            open_file(c, path, content)?
        }
        Stored::Store | Stored::Memory => {
            let b64: String = match (&d.stored, &c.pool.store) {
                (Stored::Store, Some(store)) => {
                    let body = store.get(CONTENT, &content_key(d.document_id))?.ok_or_else(missing)?;
                    serde_json::from_str(&body).map_err(|_| missing())?
                }
                _ => c.referral.inner.lock().contents.get(&d.document_id).map(|s| s.to_string()).ok_or_else(missing)?,
            };
            base64::engine::general_purpose::STANDARD.decode(b64).map_err(|_| missing())?
        }
    };
    if crate::crypto::sm3_hex(&bytes) != d.sm3 {
        return Err(Error::with(ErrorCode::StoreCorrupt, "the document's bytes do not match their SM3", "报告文件内容与其 SM3 摘要不符"));
    }
    Ok(bytes)
}

/// What the upload knows before the transaction.
struct Upload<'a> {
    kind: Kind,
    name: String,
    size: u64,
    sm3: String,
    b64: &'a str,
    signature: Option<String>,
    signed: Option<(String, SigningKey)>,
    stored: Stored,
    by: Option<String>,
}

impl Upload<'_> {
    /// The record, numbered and named under the module's lock, and kept:
    /// its row, its bytes (store or memory), its event.
    fn keep(&self, pool: &crate::pool::Pool, g: &mut Inner, txn: &mut Txn, now: Millis, id: u64, of: Of<'_>) -> Document {
        let n = g.documents.values().filter(|d| d.booking_id == of.booking).count() + 1;
        let doc = Document {
            document_id: id,
            booking_id: of.booking,
            exam_id: of.exam,
            item_no: of.item_no,
            revision: of.revision,
            hospital_id: of.hospital.to_string(),
            clinic_id: of.clinic.map(str::to_string),
            patient_id: of.patient.to_string(),
            file_name: format!("{n}-{}", self.name),
            content_type: self.kind.mime().into(),
            size: self.size,
            sm3: self.sm3.clone(),
            signature: self.signature.clone(),
            signer_id: self.signed.as_ref().map(|s| s.0.clone()),
            signer_key: self.signed.as_ref().map(|s| s.1.clone()),
            signature_verified: self.signed.is_some(),
            stored: self.stored.clone(),
            uploaded_ms: now,
            uploaded_by: self.by.clone(),
        };
        match doc.stored {
            Stored::Store => txn.writes.push(Write::put(CONTENT, content_key(id), &self.b64)),
            Stored::Memory => {
                g.contents.insert(id, std::sync::Arc::from(self.b64));
            }
            Stored::File { .. } => {}
        }
        super::put_document(pool, txn, &doc);
        let data = json!({
            "document_id": format_document_id(id), "booking_id": format_booking_id(doc.booking_id), "exam_id": doc.exam_id, "item_no": doc.item_no,
            "revision": doc.revision, "hospital_id": doc.hospital_id, "file_name": doc.file_name, "content_type": doc.content_type,
            "size": doc.size, "sm3": doc.sm3, "signature_verified": doc.signature_verified, "signer_id": doc.signer_id,
        });
        pool.push_event(
            txn,
            Event {
                seq: 0,
                kind: std::borrow::Cow::Borrowed("report_uploaded"),
                at_ms: now,
                booking_id: Some(doc.booking_id),
                slot_id: None,
                patient_id: Some(doc.patient_id.as_str().into()),
                clinic_id: doc.clinic_id.as_deref().map(Into::into),
                data,
                note: None,
                slot_idx: None,
            },
        );
        g.documents.insert(id, doc.clone());
        doc
    }
}

/// Whose document it is.
struct Of<'a> {
    booking: u64,
    exam: Option<u64>,
    item_no: Option<u32>,
    revision: Option<u32>,
    hospital: &'a str,
    clinic: Option<&'a str>,
    patient: &'a str,
}

/// `upload-report`: see the module's documentation.
pub(super) fn upload(c: &Ctx) -> Result<Value> {
    let who = Who::of(c)?;
    who.must_be(Side::Hospital, c.command)?;
    // The document first: nothing about it is trusted but its bytes.
    let (bytes, b64) = content(c)?;
    let kind = Kind::sniff(&bytes).ok_or_else(|| {
        unsupported(
            "the report document is not a PDF, JPEG, PNG or DICOM file (told by its first bytes)".into(),
            "报告文件不是PDF、JPEG、PNG或DICOM格式（按文件头判断）".into(),
        )
    })?;
    if let Some(declared) = c.r.opt_str("content_type")? {
        if Kind::declared(declared) != Some(kind) {
            return Err(unsupported(
                format!("`content_type` is not what the document is ({})", kind.mime()),
                format!("声明的 `content_type` 与文件实际格式 `{}` 不符", kind.mime()),
            ));
        }
    }
    let given = text(c.r, "file_name", 1000)?.map(|n| sanitise_name(&n)).filter(|n| !n.is_empty());
    let name = given.unwrap_or_else(|| format!("report.{}", kind.ext()));
    let signature = c.r.opt_str("signature")?.map(|s| s.trim().to_string());
    let signer = c.r.opt_str("signer_id")?.map(str::to_string);
    let fields = ReportFields::parse(c.r)?;
    let target = target(c, &who)?;
    let (hospital, booking) = match &target {
        Target::Exam { e, item_no, booking } => {
            exam::check_reportable(c, e, *item_no)?;
            if signature.is_none() {
                return Err(Error::new(ErrorCode::ExamSignatureMissing));
            }
            (e.hospital_id.clone(), booking.ok_or_else(|| Error::internal("a reportable exam item has no booking"))?)
        }
        Target::Booking { hospital, booking, .. } => (hospital.clone(), *booking),
    };
    let signed = match &signature {
        Some(sig) => Some(exam::verify_signature(c, &hospital, signer.as_deref(), &bytes, sig)?),
        None => None,
    };
    let sm3 = crate::crypto::sm3_hex(&bytes);
    let pool = c.pool;
    let claim = match pool.claim(c.r.request_id()?, c.command, c.r.fingerprint(c.command))? {
        Claimed::Replay(a) => return Ok(a.into_value()),
        Claimed::Fresh(cl) => cl,
    };
    // Checked: now the bytes are placed, before the record that names them.
    let stored = match (&pool.cfg.report_dir, &pool.store) {
        (Some(dir), _) => match write_file(dir, kind, &bytes, pool.cfg.encryption_key.as_ref().map(crate::crypto::RowCipher::new).as_ref()) {
            Ok(path) => Stored::File { path },
            Err(e) => return super::finish(pool, claim, Err(e)),
        },
        (None, Some(_)) => Stored::Store,
        (None, None) => Stored::Memory,
    };
    let size = bytes.len() as u64;
    drop(bytes);
    let up = Upload { kind, name, size, sm3, b64, signature, signed, stored, by: who.institution.clone() };
    let command = c.command;
    let result = match &target {
        Target::Exam { e, item_no, .. } => {
            let shown = std::cell::RefCell::new(Value::Null);
            let mut step = |pool: &crate::pool::Pool,
                            g: &mut Inner,
                            e: &exam::ExamApp,
                            it: &mut exam::ExamItem,
                            live: Option<&mut super::Live<'_>>,
                            txn: &mut Txn,
                            now: Millis|
             -> Result<()> {
                let id = Inner::take_id(&mut g.next_document);
                let mut rep = fields.revision(up.kind.format(), now);
                rep.content_sm3 = Some(up.sm3.clone());
                rep.document_id = Some(id);
                if let (Some(sig), Some((issuer, key))) = (&up.signature, &up.signed) {
                    rep.signature = Some(sig.clone());
                    rep.signer_id = Some(issuer.clone());
                    rep.signer_key = Some(key.clone());
                    rep.signature_verified = true;
                }
                let revision = exam::add_revision(pool, txn, e, it, live, rep, command, up.by.as_deref(), now)?;
                let of = Of {
                    booking,
                    exam: Some(e.exam_id),
                    item_no: Some(it.item_no),
                    revision: Some(revision),
                    hospital: &e.hospital_id,
                    clinic: Some(&e.clinic_id),
                    patient: &e.patient_id,
                };
                let doc = up.keep(pool, g, txn, now, id, of);
                *shown.borrow_mut() = doc.view(&pool.cfg.tz);
                Ok(())
            };
            let mut answer = |exam_view: Value| {
                let mut v = shown.take();
                v["exam"] = exam_view;
                v
            };
            exam::item_steps_claimed(c, &who, e.exam_id, &[*item_no], &mut exam::report_check(command), &mut step, &mut answer, &claim)
        }
        Target::Booking { booking, hospital, clinic, patient } => super::run_step(pool, c.referral, &claim, None, &mut |pool, g, _, txn, now| {
            let of = Of { booking: *booking, exam: None, item_no: None, revision: None, hospital, clinic: clinic.as_deref(), patient };
            let id = Inner::take_id(&mut g.next_document);
            Ok(up.keep(pool, g, txn, now, id, of).view(&pool.cfg.tz))
        }),
    };
    if let (Err(_), Stored::File { path }) = (&result, &up.stored) {
        // Nothing names the file: it goes.
        if let Ok(p) = file_path(c, path) {
            let _ = std::fs::remove_file(p);
        }
    }
    super::finish(pool, claim, result)
}

/// `exam-report-document`: one document with its bytes (`document_id`, or
/// `booking_id` + `file_name`; `with_content: false` leaves the bytes out),
/// or the documents of a booking (`booking_id`) or an exam application
/// (`exam_id`, `item_no`) without their bytes. The hospital and the
/// community institution of the booking or application read them (S1).
pub(super) fn read(c: &Ctx) -> Result<Value> {
    let who = Who::of(c)?;
    let tz = &c.pool.cfg.tz;
    let one = if let Some(s) = c.r.opt_id("document_id")? {
        let id = parse_document_id(&s)
            .ok_or_else(|| Error::invalid_zh("document_id", "expected a document id like ED000001", "应为形如 `ED000001` 的报告文件编号"))?;
        let g = c.referral.inner.lock();
        Some(g.documents.get(&id).cloned().ok_or_else(|| Error::new(ErrorCode::ReportDocumentNotFound))?)
    } else if let Some(name) = text(c.r, "file_name", 1000)? {
        let booking = c.r.booking_id()?;
        let g = c.referral.inner.lock();
        let found = g.documents.values().find(|d| d.booking_id == booking && d.file_name == name).cloned();
        Some(found.ok_or_else(|| Error::new(ErrorCode::ReportDocumentNotFound))?)
    } else {
        None
    };
    if let Some(d) = one {
        if !d.visible_to(&who) {
            return Err(super::forbidden("this institution may read only the reports of its own cases", "本机构只能查看本机构申请的报告"));
        }
        let mut v = d.view(tz);
        if c.r.opt_bool("with_content")?.unwrap_or(true) {
            v["content_base64"] = base64::engine::general_purpose::STANDARD.encode(bytes_of(c, &d)?).into();
        }
        return Ok(v);
    }
    let docs: Vec<Document> = if c.r.get("exam_id").is_some() {
        let id = super::int_id(c.r, "exam_id")?;
        let item = c.r.opt_u32("item_no")?;
        exam::load(c, &who, id)?;
        let g = c.referral.inner.lock();
        g.documents.values().filter(|d| d.exam_id == Some(id) && item.is_none_or(|n| d.item_no == Some(n))).cloned().collect()
    } else if c.r.get("booking_id").is_some() {
        let id = c.r.booking_id()?;
        c.pool.booking_or_retired(id)?;
        let g = c.referral.inner.lock();
        g.documents.values().filter(|d| d.booking_id == id && d.visible_to(&who)).cloned().collect()
    } else {
        return Err(Error::missing("document_id"));
    };
    let items: Vec<Value> = docs.iter().map(|d| d.view(tz)).collect();
    Ok(json!({"total": items.len(), "items": items}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_told_by_their_first_bytes() {
        let mut dicom = vec![0u8; 128];
        dicom.extend_from_slice(b"DICM\x02\x00");
        for (bytes, kind) in [
            (b"%PDF-1.7\n".to_vec(), Some(Kind::Pdf)),
            (b"\xef\xbb\xbf\r\n%PDF-1.4".to_vec(), Some(Kind::Pdf)),
            (b"\x89PNG\r\n\x1a\n....".to_vec(), Some(Kind::Png)),
            (vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10], Some(Kind::Jpeg)),
            (dicom, Some(Kind::Dicom)),
            (b"<html>%PDF".to_vec(), None),
            (b"GIF89a".to_vec(), None),
            (b"PK\x03\x04".to_vec(), None),
            (vec![0u8; 132], None),
            (b"MZ\x90\x00 report.pdf".to_vec(), None),
        ] {
            assert_eq!(Kind::sniff(&bytes), kind, "{bytes:?}");
        }
        let mut late = vec![b' '; 1030];
        late.extend_from_slice(b"%PDF-1.4");
        assert_eq!(Kind::sniff(&late), None, "the header must start within 1024 bytes");
    }

    #[test]
    fn names_never_leave_their_folder() {
        assert_eq!(sanitise_name("../../etc/passwd"), "passwd");
        assert_eq!(sanitise_name("CT报告 2024.pdf"), "CT报告_2024.pdf");
        assert_eq!(sanitise_name("..\\..\\x.png"), "x.png");
        assert_eq!(sanitise_name("...hidden"), "hidden");
        assert_eq!(sanitise_name("///"), "");
        assert!(sanitise_name(&"长".repeat(300)).chars().count() <= 100);
    }

    #[test]
    fn document_ids_round_trip() {
        assert_eq!(format_document_id(7), "ED000007");
        for s in ["ED000007", "ED7", "7", " ed7 "] {
            assert_eq!(parse_document_id(s), Some(7), "{s}");
        }
        for s in ["", "ED", "EDx", "0", "-1", "B000001"] {
            assert_eq!(parse_document_id(s), None, "{s}");
        }
    }
}
