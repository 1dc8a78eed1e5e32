//! Printable output: specimen labels for the label printers Chinese labs use
//! (Zebra ZPL, TSC TSPL) and as SVG, and documents (shipment manifests,
//! referral slips) as plain text, SVG and PDF (`pdf`: a CJK font embedded).
//! Pure functions: bytes in, bytes out (PDF also reads its font file).
//!
//! Every label carries the same Code 128 barcode: the SVG draws the modules
//! computed here, ZPL and TSPL ask the printer for Code 128 of the same text.

use crate::error::{Error, Result};
use barcoders::sym::code128::Code128;
use base64::Engine as _;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

mod pdf;
pub use pdf::{document_pdf, PdfFont, SYSTEM_CJK_FONTS};

/// What one specimen label shows. The caller masks the patient's name as
/// its configuration says (`identity::mask_name`); nothing here unmasks.
#[derive(Debug, Clone, Default)]
pub struct Label<'a> {
    /// The barcode text: printable ASCII, at most 48 characters.
    pub barcode: &'a str,
    pub patient: &'a str,
    /// e.g. "男 45岁".
    pub sex_age: Option<&'a str>,
    /// Specimen type, e.g. 血清.
    pub specimen: &'a str,
    /// Container, e.g. 黄帽促凝管.
    pub container: &'a str,
    /// Names of the items in this tube.
    pub items: &'a [String],
    /// The ordering institution.
    pub institution: &'a str,
    /// When the specimen was taken or the label printed, as printed.
    pub time: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelFormat {
    /// Zebra ZPL II, UTF-8 (`^CI28`) with a TrueType font on the printer.
    Zpl,
    /// TSC TSPL/TSPL2 with Chinese text GBK-encoded for the built-in
    /// simplified Chinese font `TSS24.BF2`.
    Tspl,
    /// SVG, for screens, browsers and PDF printers.
    Svg,
}

impl LabelFormat {
    pub fn parse(s: &str) -> Result<LabelFormat> {
        match s.to_ascii_lowercase().as_str() {
            "zpl" => Ok(LabelFormat::Zpl),
            "tspl" => Ok(LabelFormat::Tspl),
            "svg" => Ok(LabelFormat::Svg),
            _ => Err(Error::invalid("format", "expected zpl, tspl or svg")),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            LabelFormat::Zpl => "zpl",
            LabelFormat::Tspl => "tspl",
            LabelFormat::Svg => "svg",
        }
    }
    /// `true` when the output is not UTF-8 text (TSPL carries GBK bytes).
    pub fn is_binary(self) -> bool {
        self == LabelFormat::Tspl
    }
}

/// The label stock. The default is the common 50 × 30 mm tube label on a
/// 203 dpi printer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelSize {
    pub width_mm: u32,
    pub height_mm: u32,
    pub dpi: u32,
    /// The TrueType font ZPL prints Chinese with; it must be stored on the printer.
    pub zpl_font: String,
}

impl Default for LabelSize {
    fn default() -> Self {
        LabelSize { width_mm: 50, height_mm: 30, dpi: 203, zpl_font: "E:SIMSUN.TTF".into() }
    }
}

impl LabelSize {
    pub fn validated(self) -> Result<LabelSize> {
        if !(20..=120).contains(&self.width_mm) || !(15..=120).contains(&self.height_mm) {
            return Err(Error::invalid("label_size", "width must be 20–120 mm and height 15–120 mm"));
        }
        if ![152, 203, 300, 600].contains(&self.dpi) {
            return Err(Error::invalid("dpi", "expected 152, 203, 300 or 600"));
        }
        if self.zpl_font.is_empty() || !self.zpl_font.is_ascii() || self.zpl_font.contains(['^', '~', ',']) {
            return Err(Error::invalid("zpl_font", "expected a printer font path such as E:SIMSUN.TTF"));
        }
        Ok(self)
    }
    fn dots(&self, mm: f64) -> i64 {
        (mm * self.dpi as f64 / 25.4).round() as i64
    }
}

/// The Code 128 modules of `data` (`1` a bar, `0` a space), quiet zones
/// excluded. Digit runs use subset C (two digits per symbol) where that
/// makes the symbol shorter, as a printer's automatic mode does.
pub fn code128_modules(data: &str) -> Result<Vec<u8>> {
    check_barcode(data)?;
    Code128::new(code128_input(data)).map(|c| c.encode()).map_err(|_| Error::invalid("barcode", "cannot be encoded as Code 128"))
}

fn check_barcode(data: &str) -> Result<()> {
    if data.is_empty() || data.len() > 48 || !data.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(Error::invalid("barcode", "must be 1–48 printable ASCII characters"));
    }
    Ok(())
}

/// The `barcoders` input: subset B (`Ɓ`), switching to C (`Ć`) for a trailing
/// run of at least four digits of even length.
fn code128_input(data: &str) -> String {
    let digits = data.bytes().rev().take_while(u8::is_ascii_digit).count();
    let run = digits - digits % 2;
    if run == data.len() {
        return format!("Ć{data}");
    }
    if run >= 4 {
        let (head, tail) = data.split_at(data.len() - run);
        return format!("Ɓ{head}Ć{tail}");
    }
    format!("Ɓ{data}")
}

/// Renders one label. ZPL and SVG are UTF-8 text; TSPL is bytes (GBK).
pub fn render_label(l: &Label<'_>, format: LabelFormat, size: &LabelSize) -> Result<Vec<u8>> {
    check_barcode(l.barcode)?;
    let lines = label_lines(l, size);
    Ok(match format {
        LabelFormat::Zpl => zpl(l, &lines, size).into_bytes(),
        LabelFormat::Tspl => tspl(l, &lines, size),
        LabelFormat::Svg => label_svg(l, &lines, size)?.into_bytes(),
    })
}

/// The text lines under the barcode, each fitted to the label's width.
fn label_lines(l: &Label<'_>, size: &LabelSize) -> Vec<String> {
    // About 2.8 mm per full-width character at the text size used below.
    let cols = ((size.width_mm as f64 - 4.0) / 1.4).floor().max(8.0) as usize;
    let mut who = l.patient.to_string();
    if let Some(sa) = l.sex_age {
        who.push(' ');
        who.push_str(sa);
    }
    let mut lines = vec![fit(&format!("{}  {}", who, l.time), cols), fit(&format!("{} {}", l.specimen, l.container), cols)];
    let items = l.items.join("、");
    let rows_left = ((size.height_mm as f64 - 16.0) / 3.5).floor().max(1.0) as usize;
    lines.extend(wrap(&items, cols, rows_left));
    lines.push(fit(l.institution, cols));
    lines
}

/// Cuts `s` to `cols` display columns (CJK characters count two), marking the cut.
pub fn fit(s: &str, cols: usize) -> String {
    if s.width() <= cols {
        return s.to_string();
    }
    let mut out = String::new();
    let mut w = 0;
    for c in s.chars() {
        let cw = c.width().unwrap_or(0);
        if w + cw + 1 > cols {
            break;
        }
        out.push(c);
        w += cw;
    }
    out.push('…');
    out
}

/// Wraps `s` into at most `max_lines` lines of `cols` columns; the last one
/// is cut with a mark when text remains.
fn wrap(s: &str, cols: usize, max_lines: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    let mut w = 0;
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let cw = chars[i].width().unwrap_or(0);
        if w + cw > cols {
            if lines.len() + 1 == max_lines {
                let rest: String = cur.chars().chain(chars[i..].iter().copied()).collect();
                lines.push(fit(&rest, cols));
                return lines;
            }
            lines.push(std::mem::take(&mut cur));
            w = 0;
        }
        cur.push(chars[i]);
        w += cw;
        i += 1;
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

/// ZPL fields must not contain the command prefixes; `_` is the hex escape
/// character once `^FH` is set.
fn zpl_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '^' => out.push_str("_5E"),
            '~' => out.push_str("_7E"),
            '_' => out.push_str("_5F"),
            c => out.push(c),
        }
    }
    out
}

fn zpl(l: &Label<'_>, lines: &[String], size: &LabelSize) -> String {
    let m = size.dots(2.0);
    let module = if size.dpi >= 300 { 3 } else { 2 };
    let bar_h = size.dots(8.0);
    let text_h = size.dots(3.0);
    let mut out = String::new();
    out.push_str("^XA\n^CI28\n");
    out.push_str(&format!("^PW{}\n^LL{}\n^LH0,0\n", size.dots(size.width_mm as f64), size.dots(size.height_mm as f64)));
    out.push_str(&format!("^CW1,{}\n", size.zpl_font));
    out.push_str(&format!("^FO{m},{m}^BY{module}^BCN,{bar_h},Y,N,N,A^FD{}^FS\n", l.barcode));
    let mut y = m + bar_h + size.dots(4.0);
    for line in lines {
        out.push_str(&format!("^FO{m},{y}^A1N,{text_h},{text_h}^FH^FD{}^FS\n", zpl_text(line)));
        y += text_h + size.dots(0.5);
    }
    out.push_str("^PQ1\n^XZ\n");
    out
}

/// TSPL strings are quoted; a quote inside is written `\["]`.
fn tspl_text(s: &str) -> String {
    s.replace('"', "\\[\"]")
}

fn tspl(l: &Label<'_>, lines: &[String], size: &LabelSize) -> Vec<u8> {
    let m = size.dots(2.0);
    let bar_h = size.dots(8.0);
    let mut out = Vec::new();
    let mut cmd = |s: String| {
        // GBK covers every character of names, items and institutions; the
        // rare character outside it prints as '?' rather than failing the label.
        let (bytes, _, _) = encoding_rs::GBK.encode(&s);
        out.extend_from_slice(&bytes);
        out.extend_from_slice(b"\r\n");
    };
    cmd(format!("SIZE {} mm,{} mm", size.width_mm, size.height_mm));
    cmd("GAP 2 mm,0 mm".into());
    cmd("DIRECTION 1".into());
    cmd("CODEPAGE 936".into());
    cmd("CLS".into());
    cmd(format!("BARCODE {m},{m},\"128\",{bar_h},1,0,2,2,\"{}\"", l.barcode));
    let mut y = m + bar_h + size.dots(4.0);
    for line in lines {
        cmd(format!("TEXT {m},{y},\"TSS24.BF2\",0,1,1,\"{}\"", tspl_text(line)));
        y += 24 + size.dots(0.5);
    }
    cmd("PRINT 1,1".into());
    out
}

pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters are not allowed in XML 1.0 text.
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

const SVG_FONT: &str = "SimSun, 'Noto Sans CJK SC', 'Microsoft YaHei', sans-serif";

/// The barcode as SVG rectangles at (x, y), one rect per bar.
fn svg_bars(data: &str, x: f64, y: f64, module: f64, height: f64) -> Result<String> {
    let modules = code128_modules(data)?;
    let mut out = String::new();
    let mut i = 0;
    while i < modules.len() {
        if modules[i] == 1 {
            let start = i;
            while i < modules.len() && modules[i] == 1 {
                i += 1;
            }
            out.push_str(&format!(
                "<rect x=\"{:.2}\" y=\"{:.2}\" width=\"{:.2}\" height=\"{:.2}\"/>",
                x + start as f64 * module,
                y,
                (i - start) as f64 * module,
                height
            ));
        } else {
            i += 1;
        }
    }
    Ok(out)
}

fn label_svg(l: &Label<'_>, lines: &[String], size: &LabelSize) -> Result<String> {
    let (w, h) = (size.width_mm as f64, size.height_mm as f64);
    let modules = code128_modules(l.barcode)?.len() as f64;
    let module = ((w - 4.0) / modules).min(0.5);
    let bar_h = 8.0;
    let bars = svg_bars(l.barcode, (w - modules * module) / 2.0, 2.0, module, bar_h)?;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}mm\" height=\"{h}mm\" viewBox=\"0 0 {w} {h}\">\n<rect width=\"{w}\" height=\"{h}\" fill=\"#fff\"/>\n<g fill=\"#000\">{bars}</g>\n"
    );
    out.push_str(&format!(
        "<text x=\"{:.2}\" y=\"{:.2}\" font-family=\"monospace\" font-size=\"2.4\" text-anchor=\"middle\">{}</text>\n",
        w / 2.0,
        2.0 + bar_h + 2.4,
        xml_escape(l.barcode)
    ));
    let mut y = 2.0 + bar_h + 2.4 + 3.2;
    for line in lines {
        out.push_str(&format!("<text x=\"2\" y=\"{y:.2}\" font-family=\"{SVG_FONT}\" font-size=\"2.8\">{}</text>\n", xml_escape(line)));
        y += 3.2;
    }
    out.push_str("</svg>\n");
    Ok(out)
}

/// A printable document: a title, labelled fields, a table and footer lines
/// (a shipment manifest, a referral slip).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Document {
    pub title: String,
    pub fields: Vec<(String, String)>,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub footer: Vec<String>,
    /// Printed as a Code 128 barcode at the top (e.g. the shipment number).
    pub barcode: Option<String>,
}

/// The formats a document prints in (`format` of `shipment-manifest` and
/// `referral-slip`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentFormat {
    /// UTF-8 text with aligned columns.
    Text,
    /// An SVG page (UTF-8); the viewer supplies the font.
    Svg,
    /// PDF on A4 with its CJK font embedded (bytes: base64 in JSON).
    Pdf,
}

impl DocumentFormat {
    pub fn parse(s: &str) -> Result<DocumentFormat> {
        match s {
            "text" => Ok(DocumentFormat::Text),
            "svg" => Ok(DocumentFormat::Svg),
            "pdf" => Ok(DocumentFormat::Pdf),
            _ => Err(Error::invalid("format", "expected text, svg or pdf")),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentFormat::Text => "text",
            DocumentFormat::Svg => "svg",
            DocumentFormat::Pdf => "pdf",
        }
    }
}

/// A document as an answer carries it: `{format, content}` for text and
/// SVG; `{format, content_type: "application/pdf", content_base64}` for PDF,
/// set in `pdf_font` (the config key), else in a CJK font of the system.
pub fn document_answer(d: &Document, format: DocumentFormat, pdf_font: Option<&std::path::Path>) -> Result<serde_json::Map<String, serde_json::Value>> {
    let mut out = serde_json::Map::new();
    out.insert("format".into(), format.as_str().into());
    match format {
        DocumentFormat::Text => {
            out.insert("content".into(), document_text(d).into());
        }
        DocumentFormat::Svg => {
            out.insert("content".into(), document_svg(d)?.into());
        }
        DocumentFormat::Pdf => {
            let bytes = document_pdf(d, &PdfFont::load(pdf_font)?)?;
            out.insert("content_type".into(), "application/pdf".into());
            out.insert("content_base64".into(), base64::engine::general_purpose::STANDARD.encode(bytes).into());
        }
    }
    Ok(out)
}

/// Pads `s` with spaces to `cols` display columns.
fn pad(s: &str, cols: usize) -> String {
    let mut out = s.to_string();
    for _ in s.width()..cols {
        out.push(' ');
    }
    out
}

/// The document as plain text with aligned columns (CJK characters count
/// two columns), for terminals, dot-matrix printers and logs of what was sent.
pub fn document_text(d: &Document) -> String {
    let mut out = String::new();
    out.push_str(&d.title);
    out.push('\n');
    out.push_str(&"=".repeat(d.title.width().max(8)));
    out.push('\n');
    if let Some(b) = &d.barcode {
        out.push_str(&format!("[{b}]\n"));
    }
    let label_w = d.fields.iter().map(|(k, _)| k.width()).max().unwrap_or(0);
    for (k, v) in &d.fields {
        out.push_str(&format!("{}：{}\n", pad(k, label_w), v));
    }
    if !d.columns.is_empty() {
        let n = d.columns.len();
        let mut widths: Vec<usize> = d.columns.iter().map(|c| c.width()).collect();
        for r in &d.rows {
            for (i, cell) in r.iter().take(n).enumerate() {
                widths[i] = widths[i].max(cell.width());
            }
        }
        out.push('\n');
        let line = |cells: &[String]| {
            let mut s = String::new();
            for (i, width) in widths.iter().enumerate() {
                let cell = cells.get(i).map(String::as_str).unwrap_or("");
                if i + 1 == n {
                    s.push_str(cell);
                } else {
                    s.push_str(&pad(cell, *width));
                    s.push_str("  ");
                }
            }
            s.trim_end().to_string() + "\n"
        };
        out.push_str(&line(&d.columns));
        out.push_str(&"-".repeat(widths.iter().sum::<usize>() + 2 * (n - 1)));
        out.push('\n');
        for r in &d.rows {
            out.push_str(&line(r));
        }
    }
    if !d.footer.is_empty() {
        out.push('\n');
        for f in &d.footer {
            out.push_str(f);
            out.push('\n');
        }
    }
    out
}

/// The document as an A4-wide SVG page (210 mm; as tall as its rows need).
pub fn document_svg(d: &Document) -> Result<String> {
    const W: f64 = 210.0;
    const M: f64 = 15.0;
    const LINE: f64 = 6.0;
    let mut body = String::new();
    let mut y = M + 6.0;
    body.push_str(&format!(
        "<text x=\"{:.1}\" y=\"{y:.1}\" font-family=\"{SVG_FONT}\" font-size=\"6\" text-anchor=\"middle\" font-weight=\"bold\">{}</text>\n",
        W / 2.0,
        xml_escape(&d.title)
    ));
    y += 4.0;
    if let Some(b) = &d.barcode {
        let module = 0.33;
        let modules = code128_modules(b)?.len() as f64;
        let x = W - M - modules * module;
        let bars = svg_bars(b, x, y, module, 10.0)?;
        body.push_str(&format!("<g fill=\"#000\">{bars}</g>\n"));
        body.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" font-family=\"monospace\" font-size=\"3\" text-anchor=\"middle\">{}</text>\n",
            x + modules * module / 2.0,
            y + 13.5,
            xml_escape(b)
        ));
        y += 16.0;
    }
    y += 2.0;
    for (k, v) in &d.fields {
        y += LINE;
        body.push_str(&format!(
            "<text x=\"{M}\" y=\"{y:.1}\" font-family=\"{SVG_FONT}\" font-size=\"3.8\"><tspan font-weight=\"bold\">{}：</tspan>{}</text>\n",
            xml_escape(k),
            xml_escape(v)
        ));
    }
    if !d.columns.is_empty() {
        let n = d.columns.len();
        // Column widths in proportion to their longest cell, within the page.
        let mut widths: Vec<usize> = d.columns.iter().map(|c| c.width().max(4)).collect();
        for r in &d.rows {
            for (i, cell) in r.iter().take(n).enumerate() {
                widths[i] = widths[i].max(cell.width().min(40));
            }
        }
        let total: usize = widths.iter().sum();
        let scale = (W - 2.0 * M) / total as f64;
        let font = (scale * 1.9).clamp(2.2, 3.6);
        let xs: Vec<f64> = widths
            .iter()
            .scan(M, |x, w| {
                let here = *x;
                *x += *w as f64 * scale;
                Some(here)
            })
            .collect();
        y += LINE * 1.5;
        let row = |cells: &[String], y: f64, bold: bool| {
            let mut s = String::new();
            for (i, x) in xs.iter().enumerate() {
                let cols = (widths[i] as f64 * scale / (font * 0.5)).floor().max(2.0) as usize;
                let cell = fit(cells.get(i).map(String::as_str).unwrap_or(""), cols);
                s.push_str(&format!(
                    "<text x=\"{:.1}\" y=\"{y:.1}\" font-family=\"{SVG_FONT}\" font-size=\"{font:.2}\"{}>{}</text>",
                    x + 1.0,
                    if bold { " font-weight=\"bold\"" } else { "" },
                    xml_escape(&cell)
                ));
            }
            s.push('\n');
            s
        };
        body.push_str(&row(&d.columns, y, true));
        body.push_str(&format!("<line x1=\"{M}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#000\" stroke-width=\"0.3\"/>\n", y + 1.5, W - M, y + 1.5));
        for r in &d.rows {
            y += LINE;
            body.push_str(&row(r, y, false));
        }
        body.push_str(&format!("<line x1=\"{M}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#000\" stroke-width=\"0.3\"/>\n", y + 2.0, W - M, y + 2.0));
    }
    y += LINE;
    for f in &d.footer {
        y += LINE;
        body.push_str(&format!("<text x=\"{M}\" y=\"{y:.1}\" font-family=\"{SVG_FONT}\" font-size=\"3.5\">{}</text>\n", xml_escape(f)));
    }
    let h = (y + M).max(99.0).ceil();
    Ok(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}mm\" height=\"{h}mm\" viewBox=\"0 0 {W} {h}\">\n<rect width=\"{W}\" height=\"{h}\" fill=\"#fff\"/>\n{body}</svg>\n"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(items: &[String]) -> Label<'_> {
        Label {
            barcode: "C0012410300001",
            patient: "张*",
            sex_age: Some("男 45岁"),
            specimen: "血清",
            container: "黄帽促凝管",
            items,
            institution: "城关社区卫生服务中心",
            time: "2024-10-30 09:12",
        }
    }

    /// Decodes Code 128 modules back to text (subsets B and C), so the test
    /// checks the symbol itself rather than trusting the encoder.
    fn decode(modules: &[u8]) -> String {
        // The bar/space widths of each symbol value (ISO/IEC 15417 table 1).
        const PATTERNS: [&str; 107] = [
            "212222", "222122", "222221", "121223", "121322", "131222", "122213", "122312", "132212", "221213", "221312", "231212", "112232", "122132",
            "122231", "113222", "123122", "123221", "223211", "221132", "221231", "213212", "223112", "312131", "311222", "321122", "321221", "312212",
            "322112", "322211", "212123", "212321", "232121", "111323", "131123", "131321", "112313", "132113", "132311", "211313", "231113", "231311",
            "112133", "112331", "132131", "113123", "113321", "133121", "313121", "211331", "231131", "213113", "213311", "213131", "311123", "311321",
            "331121", "312113", "312311", "332111", "314111", "221411", "431111", "111224", "111422", "121124", "121421", "141122", "141221", "112214",
            "112412", "122114", "122411", "142112", "142211", "241211", "221114", "413111", "241112", "134111", "111242", "121142", "121241", "114212",
            "124112", "124211", "411212", "421112", "421211", "212141", "214121", "412121", "111143", "111341", "131141", "114113", "114311", "411113",
            "411311", "113141", "114131", "311141", "411131", "211412", "211214", "211232", "2331112",
        ];
        let mut widths = Vec::new();
        let mut i = 0;
        while i < modules.len() {
            let start = i;
            while i < modules.len() && modules[i] == modules[start] {
                i += 1;
            }
            widths.push((b'0' + (i - start) as u8) as char);
        }
        let symbols: Vec<usize> = widths
            .chunks(6)
            .take_while(|c| c.len() == 6)
            .map(|c| PATTERNS.iter().position(|p| p[..6] == c.iter().collect::<String>()).expect("a valid symbol"))
            .collect();
        assert_eq!(symbols.last(), Some(&106), "stop symbol");
        let (data, check) = (&symbols[..symbols.len() - 2], symbols[symbols.len() - 2]);
        let sum: usize = data.iter().enumerate().map(|(i, v)| if i == 0 { *v } else { v * i }).sum();
        assert_eq!(sum % 103, check, "check symbol");
        let mut out = String::new();
        let mut set_c = data[0] == 105;
        for v in &data[1..] {
            match (*v, set_c) {
                (99, _) => set_c = true,
                (100, true) => set_c = false,
                (v, true) => out.push_str(&format!("{v:02}")),
                (v, false) => out.push((v as u8 + 32) as char),
            }
        }
        out
    }

    #[test]
    fn code128_round_trips_and_uses_subset_c_for_digit_runs() {
        for s in ["C0012410300001", "24103000012345", "A-1", "1234567", "LAB 2024/10"] {
            assert_eq!(decode(&code128_modules(s).unwrap()), s);
        }
        // Subset C: 14 digits take 7 symbols instead of 14.
        assert!(code128_modules("24103000012345").unwrap().len() < code128_modules("A4103000012345").unwrap().len());
        assert!(code128_modules("").is_err());
        assert!(code128_modules("血常规").is_err());
        assert!(code128_modules(&"1".repeat(49)).is_err());
    }

    #[test]
    fn tspl_encodes_chinese_as_gbk() {
        let items = vec!["血常规".to_string(), "肝功能".to_string()];
        let out = render_label(&label(&items), LabelFormat::Tspl, &LabelSize::default()).unwrap();
        let (gbk_name, _, _) = encoding_rs::GBK.encode("张*");
        assert!(out.windows(gbk_name.len()).any(|w| w == &gbk_name[..]));
        assert!(std::str::from_utf8(&out).is_err(), "GBK, not UTF-8");
        let (text, _, had_errors) = encoding_rs::GBK.decode(&out);
        assert!(!had_errors);
        assert!(text.contains("BARCODE 16,16,\"128\",64,1,0,2,2,\"C0012410300001\""));
        assert!(text.contains("血常规、肝功能"));
        assert!(text.starts_with("SIZE 50 mm,30 mm\r\n") && text.ends_with("PRINT 1,1\r\n"));
    }

    #[test]
    fn zpl_escapes_field_text_and_sets_utf8() {
        let items = vec!["A^B~C_D".to_string()];
        let out = String::from_utf8(render_label(&label(&items), LabelFormat::Zpl, &LabelSize::default()).unwrap()).unwrap();
        assert!(out.starts_with("^XA\n^CI28\n") && out.ends_with("^XZ\n"));
        assert!(out.contains("^BCN,64,Y,N,N,A^FDC0012410300001^FS"));
        assert!(out.contains("A_5EB_7EC_5FD"));
        assert!(out.contains("张* 男 45岁"));
    }

    #[test]
    fn svg_draws_the_same_barcode_and_escapes_text() {
        let items = vec!["<script>".to_string()];
        let out = String::from_utf8(render_label(&label(&items), LabelFormat::Svg, &LabelSize::default()).unwrap()).unwrap();
        assert!(out.contains("&lt;script&gt;") && !out.contains("<script>"));
        let bars = out.matches("<rect x=").count();
        let modules = code128_modules("C0012410300001").unwrap();
        let runs = modules.windows(2).filter(|w| w[0] == 0 && w[1] == 1).count() + 1;
        assert_eq!(bars, runs);
    }

    #[test]
    fn long_item_lists_are_cut_to_the_label() {
        let items: Vec<String> = (0..40).map(|i| format!("项目{i}")).collect();
        let lines = label_lines(&label(&items), &LabelSize::default());
        assert!(lines.iter().all(|l| l.width() <= 34));
        assert!(lines.iter().any(|l| l.ends_with('…')));
    }

    #[test]
    fn bad_sizes_and_barcodes_are_refused() {
        assert!(LabelSize { width_mm: 5, ..Default::default() }.validated().is_err());
        assert!(LabelSize { zpl_font: "E:X^XZ".into(), ..Default::default() }.validated().is_err());
        assert!(LabelFormat::parse("pdf").is_err());
        let items = vec![];
        let mut l = label(&items);
        l.barcode = "条码";
        assert!(render_label(&l, LabelFormat::Zpl, &LabelSize::default()).is_err());
    }

    #[test]
    fn documents_align_cjk_columns() {
        let d = Document {
            title: "送检单".into(),
            fields: vec![("送检单号".into(), "S20241030001".into()), ("机构".into(), "城关社区".into())],
            columns: vec!["条码".into(), "患者".into(), "项目".into()],
            rows: vec![vec!["C001".into(), "张*".into(), "血常规".into()], vec!["C002".into(), "欧阳*".into(), "肝功能".into()]],
            footer: vec!["共 2 管".into()],
            barcode: Some("S20241030001".into()),
        };
        let text = document_text(&d);
        let lines: Vec<&str> = text.lines().collect();
        let col = |l: &str| l[..l.find("血常规").or(l.find("肝功能")).unwrap()].width();
        let rows: Vec<&&str> = lines.iter().filter(|l| l.contains("血常规") || l.contains("肝功能")).collect();
        assert_eq!(col(rows[0]), col(rows[1]));
        assert!(text.contains("送检单号：S20241030001"));
        let svg = document_svg(&d).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("欧阳*") && svg.contains("共 2 管"));
        assert!(document_svg(&Document { barcode: Some("条码".into()), ..d }).is_err());
    }
}
