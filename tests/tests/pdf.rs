//! Shipment manifests (送检单) and referral slips (转诊单) as PDF through the
//! command layer: the CJK font is embedded (a subset, with a ToUnicode map),
//! poppler's `pdftotext` gets the Chinese text back, the patient stays
//! masked, and a PDF that cannot be set in a font is a stable error, never
//! a page with blanks.
//!
//! These tests need a CJK font (Debian: fonts-wqy-microhei) and poppler-utils
//! (`pdftotext`, `pdffonts`); scripts/test.sh installs both. Without them
//! they fail and say so: nothing is skipped.

mod lab_common;

use base64::Engine as _;
use lab_common::{ok, order, setup, CFG};
use serde_json::{json, Value};
use std::io::Write as _;
use std::process::Command;
use yilian_core::{Engine, ErrorCode};

/// A poppler tool's output for `pdf` (the file is passed after `args`).
fn poppler(tool: &str, args: &[&str], pdf: &[u8]) -> String {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(pdf).unwrap();
    let mut cmd = Command::new(tool);
    cmd.args(args).arg(f.path());
    if tool == "pdftotext" {
        cmd.arg("-");
    }
    let out =
        cmd.output().unwrap_or_else(|e| panic!("{tool} is missing: install poppler-utils (apt-get install poppler-utils), as scripts/test.sh does ({e})"));
    assert!(out.status.success(), "{tool} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The extracted text, spaces removed (poppler guesses them from positions).
fn text_of(pdf: &[u8]) -> String {
    poppler("pdftotext", &["-enc", "UTF-8"], pdf).replace(' ', "")
}

/// The PDF an answer carries, checked for its envelope and an embedded font.
/// `YILIAN_PDF_OUT=<dir>` also writes it there as `<name>.pdf`, to look at.
fn pdf_of(name: &str, answer: &Value) -> Vec<u8> {
    assert_eq!(answer["format"], "pdf");
    assert_eq!(answer["content_type"], "application/pdf");
    assert!(answer.get("content").is_none());
    let pdf = base64::engine::general_purpose::STANDARD.decode(answer["content_base64"].as_str().expect("content_base64")).unwrap();
    if let Some(dir) = std::env::var_os("YILIAN_PDF_OUT") {
        std::fs::write(std::path::Path::new(&dir).join(format!("{name}.pdf")), &pdf).unwrap();
    }
    assert!(pdf.starts_with(b"%PDF-"), "starts with %PDF");
    let has = |s: &str| pdf.windows(s.len()).any(|w| w == s.as_bytes());
    assert!(has("/FontFile2") || has("/FontFile3"), "a font file stream is embedded");
    assert!(has("/ToUnicode"), "a ToUnicode map");
    // pdffonts: every font embedded, a subset, with a Unicode map.
    let fonts = poppler("pdffonts", &[], &pdf);
    let rows: Vec<&str> = fonts.lines().skip(2).collect();
    assert!(!rows.is_empty(), "{fonts}");
    for r in rows {
        let cols: Vec<&str> = r.split_whitespace().collect();
        assert_eq!(cols[cols.len() - 5..cols.len() - 2], ["yes", "yes", "yes"], "emb sub uni: {fonts}");
    }
    pdf
}

/// `message_zh` is Chinese: outside backquoted spans no run of three ASCII
/// letters but acronyms in capitals (PDF), as tests/tests/message_zh.rs has it.
fn assert_chinese(e: &yilian_core::Error) {
    let outside: String = e.message_zh().split('`').step_by(2).collect::<Vec<_>>().join(" ");
    for word in outside.split(|c: char| !c.is_ascii_alphabetic()).filter(|w| w.len() >= 3) {
        assert!(word.chars().all(|c| c.is_ascii_uppercase()), "English {word:?} in message_zh: {}", e.message_zh());
    }
}

fn need_font() {
    if let Err(e) = yilian_core::render::PdfFont::load(None) {
        panic!("these tests need a CJK font: install fonts-wqy-microhei (apt-get install fonts-wqy-microhei), as scripts/test.sh does ({e:?})");
    }
}

/// A shipment of two tubes (血常规, 肝功能) of patient 张三丰; its id.
fn shipment(e: &Engine, sender: &str) -> String {
    setup(e);
    let o = order(e, json!(["C001-XCG", "C001-GGN"]));
    let p = ok(e, "specimen-print", json!({"order_id": o["order_id"]}));
    let b: Vec<Value> = p["specimens"].as_array().unwrap().iter().map(|s| s["barcode"].clone()).collect();
    let sh = ok(e, "shipment-create", json!({"institution_id": "C001", "barcodes": b, "sender": sender, "contact": "0512-57001234"}));
    sh["shipment_id"].as_str().unwrap().to_string()
}

#[test]
fn a_manifest_as_pdf_embeds_its_cjk_font_and_its_text_extracts() {
    need_font();
    let e = Engine::open(CFG).unwrap();
    let shid = shipment(&e, "赵护士");
    let m = ok(&e, "shipment-manifest", json!({"shipment_id": shid, "format": "pdf"}));
    assert_eq!(m["shipment_id"], shid.as_str());
    let pdf = pdf_of("manifest", &m);
    let text = text_of(&pdf);
    for want in ["委托检验送检单", shid.as_str(), "送检机构：C001", "检验机构：H001", "血常规", "肝功能", "全血", "紫头管", "共2管", "赵护士"]
    {
        assert!(text.contains(want), "{want:?} not in the PDF's text:\n{text}");
    }
    // The patient as the text manifest shows them: masked.
    assert!(text.contains("张**") && !text.contains("张三丰"), "{text}");
    // Every tube's barcode, as the text manifest lists them.
    let t = ok(&e, "shipment-manifest", json!({"shipment_id": shid}));
    let barcodes: Vec<&str> = t["content"].as_str().unwrap().lines().filter_map(|l| l.split_whitespace().nth(1)).filter(|w| w.starts_with("24")).collect();
    assert_eq!(barcodes.len(), 2, "{}", t["content"]);
    for b in barcodes {
        assert!(text.contains(b), "{b} not in the PDF's text");
    }
    // The same request gives the same bytes (no dates or random ids inside).
    assert_eq!(m, ok(&e, "shipment-manifest", json!({"shipment_id": shid, "format": "pdf"})));
}

/// The catalogue and schedule the referral vectors start from.
fn referral_setup(e: &Engine) {
    let files = yilian_tests::vector_files();
    let (_, f) = files.iter().find(|(n, _)| n.contains("30_referral_outpatient")).expect("referral vectors");
    for st in f["cases"][0]["steps"].as_array().unwrap().iter().take(2) {
        ok(e, st["command"].as_str().unwrap(), st["request"].clone());
    }
}

#[test]
fn a_referral_slip_as_pdf_embeds_its_cjk_font_and_its_text_extracts() {
    need_font();
    let e = Engine::open(CFG).unwrap();
    referral_setup(&e);
    ok(
        &e,
        "outpatient-referral-apply",
        json!({"institution_id": "C001", "patient_id": "PAT001", "slot_id": "RG-H001-DR001-20241030-08001130", "reason": "胸痛待查，心电图ST段压低",
               "patient": {"name": "张三", "id_number": "11010519491231002X", "phone": "13800138000"}}),
    );
    let s = ok(&e, "referral-slip", json!({"institution_id": "C001", "referral_id": 1, "format": "pdf"}));
    assert_eq!(s["referral_id"], 1);
    assert_eq!(s["status"], "applied");
    let text = text_of(&pdf_of("referral-slip", &s));
    for want in
        ["双向转诊单（门诊上转）", "REF000000001", "转诊原因：胸痛待查，心电图ST段压低", "2024-10-30", "08:00-11:30", "后两位", "张*", "110105********002X"]
    {
        assert!(text.contains(want), "{want:?} not in the PDF's text:\n{text}");
    }
    assert!(!text.contains("张三") && !text.contains("11010519491231002X") && !text.contains("13800138000"), "{text}");
    // Any other format is refused, in both languages.
    let e2 = e.call_value("referral-slip", &json!({"referral_id": 1, "format": "docx"}).to_string()).unwrap_err();
    assert_eq!(e2.code(), ErrorCode::InvalidField);
    assert!(e2.message().contains("expected text, svg or pdf") && e2.message_zh().contains("应为 `text`、`svg` 或 `pdf`"), "{e2:?}");
}

#[test]
fn the_configured_pdf_font_is_the_one_embedded() {
    need_font();
    let found = yilian_core::render::PdfFont::load(None).unwrap();
    let cfg = json!({"clock_start": "2024-10-29T09:00:00+08:00", "clock": "manual", "pdf_font": found.source()}).to_string();
    let e = Engine::open(&cfg).unwrap();
    let shid = shipment(&e, "赵护士");
    let pdf = pdf_of("manifest-configured-font", &ok(&e, "shipment-manifest", json!({"shipment_id": shid, "format": "pdf"})));
    assert!(text_of(&pdf).contains("委托检验送检单"));
    // A configured file that does not exist: the engine does not open.
    let e = Engine::open(&json!({"pdf_font": "/nonexistent/fonts/simsun.ttc"}).to_string()).unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidConfig);
    assert!(e.message().contains("pdf_font") && e.message_zh().contains("`pdf_font`"), "{e:?}");
    assert_chinese(&e);
}

#[test]
fn a_pdf_without_a_usable_font_is_refused_with_pdf_font_missing() {
    need_font();
    // A file that is no font.
    let mut not_a_font = tempfile::NamedTempFile::new().unwrap();
    not_a_font.write_all(b"this is not a font").unwrap();
    let cfg = json!({"clock_start": "2024-10-29T09:00:00+08:00", "clock": "manual", "pdf_font": not_a_font.path()}).to_string();
    let e = Engine::open(&cfg).unwrap();
    let shid = shipment(&e, "赵护士");
    let err = e.call_value("shipment-manifest", &json!({"shipment_id": shid, "format": "pdf"}).to_string()).unwrap_err();
    assert_eq!((err.code(), err.code_str(), err.numeric_code()), (ErrorCode::PdfFontMissing, "PDF_FONT_MISSING", 1009));
    assert!(err.message().contains("Chinese glyphs") && err.message_zh().contains("中文字形"), "{err:?}");
    assert_chinese(&err);
    // Text and SVG need no font and still print.
    assert!(ok(&e, "shipment-manifest", json!({"shipment_id": shid, "format": "svg"}))["content"].as_str().unwrap().starts_with("<svg"));

    // A character the font has no glyph for (𪚥, CJK extension B) is not
    // printed as a blank: refused, naming where it is but not the text.
    let e = Engine::open(CFG).unwrap();
    let rare = "\u{2a6a5}";
    let font = yilian_core::render::PdfFont::load(None).unwrap();
    let shid = shipment(&e, &format!("赵{rare}"));
    let err = e.call_value("shipment-manifest", &json!({"shipment_id": shid, "format": "pdf"}).to_string()).unwrap_err();
    assert_eq!(err.code(), ErrorCode::PdfFontMissing, "{} should lack U+2A6A5: {err:?}", font.source());
    assert!(err.message().contains("送检人") && err.message_zh().contains("送检人"), "{err:?}");
    assert_chinese(&err);
    assert!(!err.message().contains('赵') && !err.message_zh().contains('赵') && !err.message().contains(rare), "{err:?}");
}
