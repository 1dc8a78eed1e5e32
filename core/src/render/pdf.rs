//! Documents as PDF: A4 pages, the text set in one CJK font that is embedded
//! as a subset (Type0 / CIDFontType2 for TrueType outlines, CIDFontType0
//! with a bare CFF program for PostScript outlines), with a ToUnicode CMap
//! so that every character can be searched and copied out again.
//!
//! The font is a file: the one the engine's config names (`pdf_font`), else
//! the first CJK font found at the usual Debian paths. A document with a
//! character the font has no glyph for is refused (`PDF_FONT_MISSING`),
//! never printed with a blank or a box in its place.

use super::{code128_modules, Document};
use crate::error::{Error, ErrorCode, Result};
use pdf_writer::types::{CidFontType, FontFlags, SystemInfo, TextRenderingMode, UnicodeCmap};
use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref, Str, TextStr};
use std::collections::BTreeMap;
use std::path::Path;

/// Where Debian's CJK font packages put their fonts, in the order tried:
/// fonts-wqy-microhei, fonts-wqy-zenhei, fonts-noto-cjk, fonts-arphic-*,
/// fonts-droid-fallback.
pub const SYSTEM_CJK_FONTS: &[&str] = &[
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/usr/share/fonts/truetype/arphic/ukai.ttc",
    "/usr/share/fonts/truetype/arphic-gbsn00lp/gbsn00lp.ttf",
    "/usr/share/fonts/truetype/arphic-gkai00mp/gkai00mp.ttf",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
];

/// Characters a CJK font for these documents must have (a font found on the
/// system without them is passed over).
const PROBE: &str = "送检单转诊患者";

fn font_error(en: String, zh: String) -> Error {
    Error::with(ErrorCode::PdfFontMissing, en, zh)
}

/// A font file read into memory, with the face chosen in a collection.
pub struct PdfFont {
    data: Vec<u8>,
    index: u32,
    /// Where it came from, for messages (a path: no personal data).
    source: String,
}

impl std::fmt::Debug for PdfFont {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PdfFont({} #{})", self.source, self.index)
    }
}

impl PdfFont {
    /// The configured font (`pdf_font`), else the first usable CJK font of
    /// [`SYSTEM_CJK_FONTS`]. `PDF_FONT_MISSING` when there is none.
    pub fn load(configured: Option<&Path>) -> Result<PdfFont> {
        PdfFont::load_from(configured, SYSTEM_CJK_FONTS)
    }

    /// [`PdfFont::load`] with the system's places given.
    fn load_from(configured: Option<&Path>, system: &[&str]) -> Result<PdfFont> {
        if let Some(p) = configured {
            return PdfFont::from_file(p);
        }
        system.iter().map(Path::new).filter(|p| p.is_file()).find_map(|p| PdfFont::from_file(p).ok()).ok_or_else(|| {
            font_error(
                "no CJK font for PDF output: set the config key `pdf_font` to a TrueType or OpenType font file (.ttf, .otf, .ttc) \
                 with Chinese glyphs, or install one (Debian: fonts-wqy-microhei or fonts-noto-cjk)"
                    .into(),
                "没有可用于输出PDF的中文字体：请在配置项 `pdf_font` 中指定含中文字形的字体文件（`.ttf`、`.otf` 或 `.ttc`），\
                 或安装中文字体（`Debian` 软件包 `fonts-wqy-microhei` 或 `fonts-noto-cjk`）"
                    .into(),
            )
        })
    }

    /// A font file; in a collection, the first face with Chinese glyphs,
    /// a simplified-Chinese face (`… SC`, `… CN`, `… GB`) preferred.
    pub fn from_file(path: &Path) -> Result<PdfFont> {
        let shown = path.display().to_string();
        let data = std::fs::read(path).map_err(|e| {
            font_error(format!("the PDF font `{shown}` cannot be read: {e}"), format!("无法读取用于输出PDF的字体文件 `{shown}`（详情见 `message`）"))
        })?;
        PdfFont::from_bytes(data, shown)
    }

    /// Font bytes (`source` names them in messages).
    pub fn from_bytes(data: Vec<u8>, source: impl Into<String>) -> Result<PdfFont> {
        let source = source.into();
        let faces = ttf_parser::fonts_in_collection(&data).unwrap_or(1);
        let mut first = None;
        for index in 0..faces {
            let Ok(face) = ttf_parser::Face::parse(&data, index) else { continue };
            if !PROBE.chars().all(|c| face.glyph_index(c).is_some()) {
                continue;
            }
            if simplified(&face) {
                first = Some(index);
                break;
            }
            first.get_or_insert(index);
        }
        let Some(index) = first else {
            return Err(font_error(
                format!("the PDF font `{source}` is not a TrueType or OpenType font with Chinese glyphs"),
                format!("用于输出PDF的字体 `{source}` 不是含中文字形的字体文件（`.ttf`、`.otf` 或 `.ttc`）"),
            ));
        };
        Ok(PdfFont { data, index, source })
    }

    /// Where the font came from (its path).
    pub fn source(&self) -> &str {
        &self.source
    }

    fn face(&self) -> Result<ttf_parser::Face<'_>> {
        ttf_parser::Face::parse(&self.data, self.index).map_err(Error::internal)
    }
}

/// A face for simplified Chinese, by its family name.
fn simplified(face: &ttf_parser::Face<'_>) -> bool {
    face.names().into_iter().filter(|n| n.name_id == ttf_parser::name_id::FAMILY).filter_map(|n| n.to_string()).any(|n| {
        let n = n.trim_end();
        n.ends_with(" SC") || n.ends_with(" CN") || n.contains(" GB") || n.contains("Simplified")
    })
}

// ------------------------------------------------------------------ layout

const MM: f32 = 72.0 / 25.4;
const PAGE_W: f32 = 210.0 * MM;
const PAGE_H: f32 = 297.0 * MM;
const MARGIN: f32 = 15.0 * MM;
const TITLE: f32 = 16.0;
const FIELD: f32 = 10.5;
const CELL: f32 = 9.0;
const SMALL: f32 = 8.0;
const FOOTER: f32 = 10.0;
const CELL_PAD: f32 = 1.2 * MM;

/// What is drawn, in points from the page's top-left corner (y down).
enum Op {
    /// `y` is the baseline.
    Text {
        x: f32,
        y: f32,
        size: f32,
        bold: bool,
        text: String,
    },
    Bar {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
    },
    Rule {
        x1: f32,
        x2: f32,
        y: f32,
        width: f32,
    },
}

/// Text as drawn: line breaks and tabs become spaces; other control and
/// invisible format characters are dropped (no font draws them).
fn clean(s: &str) -> String {
    s.chars()
        .filter_map(|c| match c {
            '\n' | '\r' | '\t' | '\u{2028}' | '\u{2029}' => Some(' '),
            c if c.is_control() => None,
            '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{feff}' => None,
            '\u{fe00}'..='\u{fe0f}' | '\u{e0100}'..='\u{e01ef}' => None,
            c => Some(c),
        })
        .collect()
}

struct Metrics<'a> {
    face: ttf_parser::Face<'a>,
    upem: f32,
}

impl Metrics<'_> {
    /// The advance of `c` in em; a character without a glyph has none
    /// (documents are checked for those before they are laid out).
    fn advance(&self, c: char) -> f32 {
        self.face.glyph_index(c).and_then(|g| self.face.glyph_hor_advance(g)).map_or(0.0, |a| a as f32 / self.upem)
    }
    fn width(&self, s: &str, size: f32) -> f32 {
        s.chars().map(|c| self.advance(c)).sum::<f32>() * size
    }
    /// `s` in lines at most `max` points wide. A run of ASCII letters and
    /// digits (a barcode, a number, a word) stays on one line when it fits
    /// on one; Chinese breaks between any two characters.
    fn wrap(&self, s: &str, size: f32, max: f32) -> Vec<String> {
        let mut units: Vec<String> = Vec::new();
        for c in s.chars() {
            let joins = c.is_ascii_graphic() && units.last().is_some_and(|u| u.chars().last().is_some_and(|l| l.is_ascii_graphic()));
            match units.last_mut() {
                Some(u) if joins => u.push(c),
                _ => units.push(c.to_string()),
            }
        }
        let mut lines = Vec::new();
        let mut cur = String::new();
        let mut w = 0.0;
        for u in units {
            let uw = self.width(&u, size);
            if w + uw <= max || cur.is_empty() && uw <= max {
                if !(cur.is_empty() && u == " ") {
                    cur.push_str(&u);
                    w += uw;
                }
                continue;
            }
            if uw <= max {
                lines.push(std::mem::take(&mut cur).trim_end().to_string());
                w = 0.0;
                if u != " " {
                    cur.push_str(&u);
                    w = uw;
                }
                continue;
            }
            // Longer than a line: broken between characters.
            for c in u.chars() {
                let cw = self.advance(c) * size;
                if w + cw > max && !cur.is_empty() {
                    lines.push(std::mem::take(&mut cur));
                    w = 0.0;
                }
                cur.push(c);
                w += cw;
            }
        }
        if !cur.trim_end().is_empty() || lines.is_empty() {
            lines.push(cur.trim_end().to_string());
        }
        lines
    }
}

struct Layout {
    pages: Vec<Vec<Op>>,
    /// The top of the free space on the current page.
    y: f32,
}

impl Layout {
    /// The lowest a line may reach: room is kept for the page number.
    const BOTTOM: f32 = PAGE_H - MARGIN - 6.0 * MM;

    fn page(&mut self) -> &mut Vec<Op> {
        self.pages.last_mut().expect("a page")
    }
    fn new_page(&mut self) {
        self.pages.push(Vec::new());
        self.y = MARGIN;
    }
    /// Starts a new page unless `h` more points fit on this one.
    fn room(&mut self, h: f32) -> bool {
        if self.y + h > Self::BOTTOM && self.y > MARGIN {
            self.new_page();
            return false;
        }
        true
    }
    fn text(&mut self, x: f32, y: f32, size: f32, bold: bool, text: &str) {
        if !text.is_empty() {
            self.page().push(Op::Text { x, y, size, bold, text: text.to_string() });
        }
    }
}

/// The cell texts of a table row, wrapped to the column widths.
fn wrapped_row(m: &Metrics<'_>, cells: &[String], widths: &[f32]) -> Vec<Vec<String>> {
    widths.iter().enumerate().map(|(i, w)| m.wrap(&clean(cells.get(i).map(String::as_str).unwrap_or("")), CELL, w - 2.0 * CELL_PAD)).collect()
}

fn lay_out(d: &Document, m: &Metrics<'_>) -> Result<Vec<Vec<Op>>> {
    let mut l = Layout { pages: vec![Vec::new()], y: MARGIN };
    let content_w = PAGE_W - 2.0 * MARGIN;
    // Title, centred (long titles wrap).
    for line in m.wrap(&clean(&d.title), TITLE, content_w) {
        l.y += TITLE * 1.25;
        let x = (PAGE_W - m.width(&line, TITLE)) / 2.0;
        l.text(x, l.y, TITLE, true, &line);
    }
    l.y += 3.0 * MM;
    // The barcode, right-aligned, its text under it.
    if let Some(b) = &d.barcode {
        let modules = code128_modules(b)?;
        let module = 0.33 * MM;
        let bar_h = 10.0 * MM;
        let x0 = PAGE_W - MARGIN - modules.len() as f32 * module;
        let mut i = 0;
        while i < modules.len() {
            if modules[i] == 1 {
                let start = i;
                while i < modules.len() && modules[i] == 1 {
                    i += 1;
                }
                let bar = Op::Bar { x: x0 + start as f32 * module, y: l.y, w: (i - start) as f32 * module, h: bar_h };
                l.page().push(bar);
            } else {
                i += 1;
            }
        }
        let tx = x0 + (modules.len() as f32 * module - m.width(b, SMALL)) / 2.0;
        l.text(tx, l.y + bar_h + SMALL * 1.2, SMALL, false, b);
        l.y += bar_h + SMALL * 1.6;
    }
    // Fields: `label：value`, the value wrapped beside its label.
    let line_h = FIELD * 1.55;
    for (k, v) in &d.fields {
        let key = format!("{}：", clean(k));
        let kw = m.width(&key, FIELD);
        let lines = m.wrap(&clean(v), FIELD, (content_w - kw).max(content_w / 3.0));
        for (i, line) in lines.iter().enumerate() {
            l.room(line_h);
            l.y += line_h;
            if i == 0 {
                l.text(MARGIN, l.y, FIELD, true, &key);
            }
            l.text(MARGIN + kw, l.y, FIELD, false, line);
        }
    }
    // The table: columns as wide as their text asks, within the page; cells wrap.
    if !d.columns.is_empty() {
        let n = d.columns.len();
        let cap = content_w * 0.45;
        let mut natural: Vec<f32> = d.columns.iter().map(|c| m.width(&clean(c), CELL)).collect();
        for r in &d.rows {
            for (i, cell) in r.iter().take(n).enumerate() {
                natural[i] = natural[i].max(m.width(&clean(cell), CELL).min(cap));
            }
        }
        let natural: Vec<f32> = natural.iter().map(|w| w.max(2.0 * CELL) + 2.0 * CELL_PAD).collect();
        let scale = content_w / natural.iter().sum::<f32>();
        let widths: Vec<f32> = natural.iter().map(|w| w * scale).collect();
        let xs: Vec<f32> = widths
            .iter()
            .scan(MARGIN, |x, w| {
                let here = *x;
                *x += w;
                Some(here)
            })
            .collect();
        let row_line = CELL * 1.45;
        let header = wrapped_row(m, &d.columns, &widths);
        let draw = |l: &mut Layout, cells: &[Vec<String>], bold: bool| {
            let lines = cells.iter().map(Vec::len).max().unwrap_or(1);
            for (i, cell) in cells.iter().enumerate() {
                for (j, line) in cell.iter().enumerate() {
                    l.text(xs[i] + CELL_PAD, l.y + row_line * (j as f32 + 1.0) - CELL * 0.3, CELL, bold, line);
                }
            }
            l.y += row_line * lines as f32 + 1.0;
        };
        let header_h = row_line * header.iter().map(Vec::len).max().unwrap_or(1) as f32 + 2.0;
        let rule = |l: &mut Layout, width: f32| {
            let y = l.y;
            l.page().push(Op::Rule { x1: MARGIN, x2: PAGE_W - MARGIN, y, width });
        };
        l.y += 4.0 * MM;
        l.room(header_h + row_line * 2.0);
        rule(&mut l, 0.8);
        draw(&mut l, &header, true);
        rule(&mut l, 0.5);
        for r in &d.rows {
            let cells = wrapped_row(m, r, &widths);
            let h = row_line * cells.iter().map(Vec::len).max().unwrap_or(1) as f32 + 1.0;
            if !l.room(h) {
                // The header again at the top of the new page.
                rule(&mut l, 0.8);
                draw(&mut l, &header, true);
                rule(&mut l, 0.5);
            }
            draw(&mut l, &cells, false);
        }
        rule(&mut l, 0.8);
    }
    // Footer lines.
    l.y += 3.0 * MM;
    for f in &d.footer {
        for line in m.wrap(&clean(f), FOOTER, content_w) {
            l.room(FOOTER * 1.6);
            l.y += FOOTER * 1.6;
            l.text(MARGIN, l.y, FOOTER, false, &line);
        }
    }
    // Page numbers when there is more than one page.
    let n = l.pages.len();
    if n > 1 {
        for (i, page) in l.pages.iter_mut().enumerate() {
            let text = page_number(i + 1, n);
            let x = (PAGE_W - m.width(&text, SMALL)) / 2.0;
            page.push(Op::Text { x, y: PAGE_H - MARGIN, size: SMALL, bold: false, text });
        }
    }
    Ok(l.pages)
}

fn page_number(i: usize, n: usize) -> String {
    format!("第 {i} 页，共 {n} 页")
}

/// Where in the document a character the font lacks is (a label of the
/// document, never its value: values may be personal data).
fn missing_glyphs(d: &Document, face: &ttf_parser::Face<'_>) -> Vec<(String, usize)> {
    let mut parts: Vec<(String, String)> = vec![("title".into(), d.title.clone())];
    for (k, v) in &d.fields {
        parts.push((format!("field {}", clean(k)), format!("{k}：{v}")));
    }
    for (i, c) in d.columns.iter().enumerate() {
        let cells: String = d.rows.iter().filter_map(|r| r.get(i)).map(String::as_str).collect();
        parts.push((format!("column {}", clean(c)), format!("{c}{cells}")));
    }
    for (i, f) in d.footer.iter().enumerate() {
        parts.push((format!("footer line {}", i + 1), f.clone()));
    }
    parts.push(("barcode".into(), d.barcode.clone().unwrap_or_default()));
    parts.push(("page numbers".into(), page_number(1234567890, 1234567890)));
    let mut out: Vec<(String, usize)> = Vec::new();
    for (where_, text) in parts {
        let mut missing: Vec<char> = clean(&text).chars().filter(|c| face.glyph_index(*c).is_none()).collect();
        missing.sort_unstable();
        missing.dedup();
        if !missing.is_empty() {
            out.push((where_, missing.len()));
        }
    }
    out
}

// ------------------------------------------------------------------ writing

/// The document as a PDF on A4 pages with `font` embedded (subset).
pub fn document_pdf(d: &Document, font: &PdfFont) -> Result<Vec<u8>> {
    let face = font.face()?;
    let missing = missing_glyphs(d, &face);
    if !missing.is_empty() {
        let total: usize = missing.iter().map(|(_, n)| n).sum();
        let en: Vec<String> = missing.iter().map(|(w, n)| format!("{w} ({n})")).collect();
        let zh: Vec<String> = missing.iter().map(|(w, n)| format!("{}（{n}个）", where_zh(w))).collect();
        return Err(font_error(
            format!(
                "the PDF font `{}` has no glyph for {total} character(s) of the document, in: {}; set the config key `pdf_font` to a font that has them",
                font.source,
                en.join(", ")
            ),
            format!(
                "用于输出PDF的字体 `{}` 缺少文档中 {total} 个字符的字形，位于：{}；请在配置项 `pdf_font` 中指定包含这些字符的字体",
                font.source,
                zh.join("、")
            ),
        ));
    }
    let upem = face.units_per_em() as f32;
    let m = Metrics { face, upem };
    let pages = lay_out(d, &m)?;
    let face = &m.face;

    // The glyphs used, renumbered for the subset; the subset's glyph ids
    // are the CIDs the content streams show (Identity-H).
    let mut remapper = subsetter::GlyphRemapper::new();
    let mut to_unicode: BTreeMap<u16, char> = BTreeMap::new();
    let mut encode = |s: &str| -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(s.len() * 2);
        for c in s.chars() {
            let g = face.glyph_index(c).ok_or_else(|| Error::internal("a character without a glyph passed the check"))?;
            let cid = remapper.remap(g.0);
            to_unicode.entry(cid).or_insert(c);
            out.extend_from_slice(&cid.to_be_bytes());
        }
        Ok(out)
    };
    let mut streams = Vec::with_capacity(pages.len());
    for ops in &pages {
        let mut c = Content::new();
        c.set_fill_gray(0.0).set_stroke_gray(0.0);
        for op in ops {
            match op {
                Op::Bar { x, y, w, h } => {
                    c.rect(*x, PAGE_H - y - h, *w, *h).fill_nonzero();
                }
                Op::Rule { x1, x2, y, width } => {
                    c.set_line_width(*width).move_to(*x1, PAGE_H - y).line_to(*x2, PAGE_H - y).stroke();
                }
                Op::Text { x, y, size, bold, text } => {
                    let bytes = encode(text)?;
                    c.begin_text();
                    if *bold {
                        // Bold drawn by stroking the outline too: one font suffices.
                        c.set_text_rendering_mode(TextRenderingMode::FillStroke).set_line_width(size * 0.03);
                    }
                    c.set_font(Name(b"F1"), *size).set_text_matrix([1.0, 0.0, 0.0, 1.0, *x, PAGE_H - y]).show(Str(&bytes));
                    if *bold {
                        c.set_text_rendering_mode(TextRenderingMode::Fill);
                    }
                    c.end_text();
                }
            }
        }
        streams.push(deflate(&c.finish()));
    }

    let subset = subsetter::subset(&font.data, font.index, &remapper)
        .map_err(|e| font_error(format!("the PDF font `{}` cannot be subset: {e}", font.source), format!("用于输出PDF的字体 `{}` 无法取子集", font.source)))?;
    // CFF outlines go in as the bare CFF program (FontFile3/CIDFontType0C).
    let cff = match face.raw_face().table(ttf_parser::Tag::from_bytes(b"CFF ")) {
        None => None,
        Some(_) => Some(
            ttf_parser::RawFace::parse(&subset, 0)
                .ok()
                .and_then(|r| r.table(ttf_parser::Tag::from_bytes(b"CFF ")))
                .map(<[u8]>::to_vec)
                .ok_or_else(|| Error::internal("the CFF subset has no CFF table"))?,
        ),
    };

    let mut alloc = Ref::new(1);
    let catalog = alloc.bump();
    let tree = alloc.bump();
    let info = alloc.bump();
    let type0 = alloc.bump();
    let cid_font = alloc.bump();
    let descriptor = alloc.bump();
    let font_file = alloc.bump();
    let cmap = alloc.bump();
    let page_ids: Vec<(Ref, Ref)> = pages.iter().map(|_| (alloc.bump(), alloc.bump())).collect();

    let mut pdf = Pdf::new();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree).kids(page_ids.iter().map(|(p, _)| *p)).count(page_ids.len() as i32);
    pdf.document_info(info).title(TextStr(&clean(&d.title))).producer(TextStr(concat!("yilian ", env!("CARGO_PKG_VERSION"))));
    for ((page, content), stream) in page_ids.iter().zip(&streams) {
        let mut p = pdf.page(*page);
        p.parent(tree).media_box(Rect::new(0.0, 0.0, PAGE_W, PAGE_H)).contents(*content);
        p.resources().fonts().pair(Name(b"F1"), type0);
        p.finish();
        pdf.stream(*content, stream).filter(Filter::FlateDecode);
    }

    let base = base_font_name(face, &remapper);
    let base = Name(base.as_bytes());
    let system = SystemInfo { registry: Str(b"Adobe"), ordering: Str(b"Identity"), supplement: 0 };
    pdf.type0_font(type0).base_font(base).encoding_predefined(Name(b"Identity-H")).descendant_font(cid_font).to_unicode(cmap);
    let units = |v: f32| v * 1000.0 / upem;
    let widths: Vec<f32> = remapper.remapped_gids().map(|g| units(face.glyph_hor_advance(ttf_parser::GlyphId(g)).unwrap_or(0) as f32)).collect();
    {
        let mut f = pdf.cid_font(cid_font);
        f.subtype(if cff.is_some() { CidFontType::Type0 } else { CidFontType::Type2 }).base_font(base).system_info(system).font_descriptor(descriptor);
        f.default_width(units(face.glyph_hor_advance(ttf_parser::GlyphId(0)).unwrap_or(0) as f32));
        f.widths().consecutive(0, widths);
        if cff.is_none() {
            f.cid_to_gid_map_predefined(Name(b"Identity"));
        }
    }
    let bbox = face.global_bounding_box();
    let ascent = units(face.ascender() as f32);
    {
        let mut fd = pdf.font_descriptor(descriptor);
        fd.name(base)
            .flags(FontFlags::SYMBOLIC)
            .bbox(Rect::new(units(bbox.x_min as f32), units(bbox.y_min as f32), units(bbox.x_max as f32), units(bbox.y_max as f32)))
            .italic_angle(face.italic_angle())
            .ascent(ascent)
            .descent(units(face.descender() as f32))
            .cap_height(face.capital_height().map_or(ascent, |h| units(h as f32)))
            .stem_v(80.0);
        if cff.is_some() {
            fd.font_file3(font_file);
        } else {
            fd.font_file2(font_file);
        }
    }
    match &cff {
        Some(program) => {
            let packed = deflate(program);
            pdf.stream(font_file, &packed).filter(Filter::FlateDecode).pair(Name(b"Subtype"), Name(b"CIDFontType0C"));
        }
        None => {
            let packed = deflate(&subset);
            pdf.stream(font_file, &packed).filter(Filter::FlateDecode).pair(Name(b"Length1"), subset.len() as i32);
        }
    }
    let mut unicode = UnicodeCmap::new(Name(b"Custom"), system);
    for (cid, c) in &to_unicode {
        unicode.pair(*cid, *c);
    }
    let unicode = unicode.finish();
    pdf.cmap(cmap, &unicode).name(Name(b"Custom")).system_info(system);
    Ok(pdf.finish())
}

/// `ABCDEF+PostScriptName`: the subset tag is drawn from the glyphs kept,
/// so one document always gives the same bytes.
fn base_font_name(face: &ttf_parser::Face<'_>, remapper: &subsetter::GlyphRemapper) -> String {
    let ps =
        face.names().into_iter().filter(|n| n.name_id == ttf_parser::name_id::POST_SCRIPT_NAME).find_map(|n| n.to_string()).unwrap_or_else(|| "CJKFont".into());
    let ps: String = ps.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(100).collect();
    // FNV-1a over the kept glyph ids.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for g in remapper.remapped_gids() {
        for b in g.to_be_bytes() {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
    let tag: String = (0..6).map(|i| (b'A' + ((h >> (i * 5)) % 26) as u8) as char).collect();
    format!("{tag}+{}", if ps.is_empty() { "CJKFont" } else { &ps })
}

fn deflate(data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut e = flate2::write::ZlibEncoder::new(Vec::with_capacity(data.len() / 2), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = e.write_all(data);
    e.finish().unwrap_or_default()
}

/// The Chinese of a place named by [`missing_glyphs`].
fn where_zh(w: &str) -> String {
    if let Some(k) = w.strip_prefix("field ") {
        return format!("字段 `{k}`");
    }
    if let Some(c) = w.strip_prefix("column ") {
        return format!("表格列 `{c}`");
    }
    if let Some(i) = w.strip_prefix("footer line ") {
        return format!("页脚第{i}行");
    }
    match w {
        "title" => "标题".into(),
        "barcode" => "条码".into(),
        "page numbers" => "页码".into(),
        other => format!("`{other}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn font() -> PdfFont {
        PdfFont::load(None).unwrap_or_else(|e| {
            panic!("these tests need a CJK font: install fonts-wqy-microhei (apt-get install fonts-wqy-microhei), as scripts/test.sh does ({e:?})")
        })
    }

    /// The text poppler's pdftotext extracts; fails (never skips) without it.
    fn pdftotext(pdf: &[u8]) -> String {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(pdf).unwrap();
        let out = std::process::Command::new("pdftotext")
            .args(["-enc", "UTF-8"])
            .arg(f.path())
            .arg("-")
            .output()
            .unwrap_or_else(|e| panic!("pdftotext is missing: install poppler-utils (apt-get install poppler-utils), as scripts/test.sh does ({e})"));
        assert!(out.status.success(), "pdftotext failed: {}", String::from_utf8_lossy(&out.stderr));
        // Spaces between words are poppler's guess from glyph positions: compared without them.
        String::from_utf8(out.stdout).unwrap().replace(' ', "")
    }

    fn doc(rows: usize) -> Document {
        Document {
            title: "委托检验送检单".into(),
            fields: vec![
                ("送检单号".into(), "SH000001".into()),
                ("送检机构".into(), "城关社区卫生服务中心".into()),
                ("备注".into(), "很长的备注：".to_string() + &"样本须冷藏运输，".repeat(12) + "C0012410300001"),
            ],
            columns: vec!["序号".into(), "条码号".into(), "检验项目".into()],
            rows: (1..=rows).map(|i| vec![i.to_string(), format!("C{i:012}"), format!("血常规、肝功能{i}")]).collect(),
            footer: vec![format!("共 {rows} 管")],
            barcode: Some("SH000001".into()),
        }
    }

    #[test]
    fn a_document_as_pdf_embeds_a_subset_font_and_its_text_extracts() {
        let pdf = document_pdf(&doc(3), &font()).unwrap();
        assert!(pdf.starts_with(b"%PDF-"));
        let has = |s: &str| pdf.windows(s.len()).any(|w| w == s.as_bytes());
        assert!(has("/FontFile2") || has("/FontFile3"), "an embedded font file");
        assert!(has("/ToUnicode") && has("/Identity-H") && has("/Type0"));
        // A subset: far smaller than the font file.
        assert!(pdf.len() < 200_000, "{} bytes", pdf.len());
        let text = pdftotext(&pdf);
        for want in ["委托检验送检单", "SH000001", "城关社区卫生服务中心", "血常规、肝功能3", "C000000000002", "共3管", "C0012410300001"]
        {
            assert!(text.contains(want), "{want} not in {text}");
        }
        // The same document gives the same bytes.
        assert_eq!(document_pdf(&doc(3), &font()).unwrap(), pdf);
    }

    #[test]
    fn long_tables_go_on_to_further_pages_with_page_numbers() {
        let pdf = document_pdf(&doc(120), &font()).unwrap();
        let text = pdftotext(&pdf);
        let pages = text.matches('\u{c}').count();
        assert!(pages >= 3, "{pages} pages");
        assert!(text.contains(&format!("第1页，共{pages}页")) && text.contains(&format!("第{pages}页，共{pages}页")), "{text}");
        for i in [1, 60, 120] {
            assert!(text.contains(&format!("C{i:012}")), "row {i}");
        }
        // The header is repeated on every page.
        assert_eq!(text.matches("检验项目").count(), pages);
    }

    #[test]
    fn a_character_the_font_lacks_is_refused_without_echoing_the_text() {
        let f = font();
        // 𪚥 (U+2A6A5, CJK extension B): beyond the BMP fonts.
        let rare = '\u{2a6a5}';
        if f.face().unwrap().glyph_index(rare).is_some() {
            panic!("the font {} has {rare:?}: pick another character for this test", f.source());
        }
        let mut d = doc(1);
        d.fields.push(("送检人".into(), format!("赵{rare}")));
        let e = document_pdf(&d, &f).unwrap_err();
        assert_eq!(e.code(), ErrorCode::PdfFontMissing);
        assert!(e.message().contains("field 送检人 (1)"), "{}", e.message());
        assert!(e.message_zh().contains("字段 `送检人`（1个）"), "{}", e.message_zh());
        assert!(!e.message().contains('赵') && !e.message_zh().contains('赵') && !e.message().contains(rare));
    }

    #[test]
    fn no_font_anywhere_is_a_clear_stable_error() {
        let e = PdfFont::load_from(None, &[]).unwrap_err();
        assert_eq!(e.code(), ErrorCode::PdfFontMissing);
        assert!(e.message().contains("pdf_font") && e.message().contains("fonts-wqy-microhei"), "{}", e.message());
        assert!(e.message_zh().contains("中文字体") && e.message_zh().contains("`pdf_font`"), "{}", e.message_zh());
        // Chinese only outside backquotes (acronyms such as PDF aside).
        let outside: String = e.message_zh().split('`').step_by(2).collect();
        assert!(!outside.split(|c: char| !c.is_ascii_alphabetic()).any(|w| w.len() >= 3 && w.chars().any(|c| c.is_ascii_lowercase())), "{}", e.message_zh());
        let e = PdfFont::from_bytes(b"not a font".to_vec(), "/tmp/x.ttf").unwrap_err();
        assert_eq!(e.code(), ErrorCode::PdfFontMissing);
        let e = PdfFont::from_file(Path::new("/nonexistent/font.ttc")).unwrap_err();
        assert_eq!(e.code(), ErrorCode::PdfFontMissing);
    }

    #[test]
    fn wrapping_keeps_ascii_runs_whole_and_breaks_chinese_anywhere() {
        let f = font();
        let m = Metrics { face: f.face().unwrap(), upem: f.face().unwrap().units_per_em() as f32 };
        let w = m.width("检验检验检验检验检验", 10.0);
        let lines = m.wrap("检验检验检验检验检验检验 C0012410300001 检验", 10.0, w);
        assert!(lines.iter().any(|l| l == "C0012410300001" || l.ends_with("C0012410300001") || l.starts_with("C0012410300001")), "{lines:?}");
        assert!(lines.iter().all(|l| m.width(l, 10.0) <= w + 0.01 || !l.contains(' ')), "{lines:?}");
        assert_eq!(m.wrap("", 10.0, w), vec![String::new()]);
    }
}
