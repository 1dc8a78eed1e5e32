//! The bindings' error-code tables, generated from yilian-core's `ErrorCode`
//! table (`core/src/error.rs`), the one place a code is defined:
//!
//! - `ffi-c/src/error/codes.rs`: the C ABI's `YL_E_*` constants (cbindgen
//!   copies only literals into `include/yilian.h`, so the numbers are written
//!   out here) and the name table of `yl_code_name`;
//! - `bindings-java/src/main/java/org/yilian/ErrorCode.java`: the Java enum
//!   of every code (numeric code, family, English and Chinese message);
//! - `bindings-python/python/yilian/_codes.py`: `ErrorCodeName` and
//!   `ErrorFamilyName` (`Literal` types) and the `ErrorCode` `IntEnum`.
//!
//! `cargo run -p yilian-gen-bindings` rewrites them; with `-- --check` it
//! rewrites nothing and fails, showing the diff, when one is stale. The test
//! `tests/fresh.rs` (so `cargo test --workspace`) and `tests/c/run.sh` check.
//! After a change to the C constants, `ffi-c/gen-header.sh` regenerates the header.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use yilian_core::{ErrorCode, ErrorFamily};

/// The command that rewrites the generated files.
pub const REGENERATE: &str = "cargo run -p yilian-gen-bindings";
/// The command that checks them.
pub const CHECK: &str = "cargo run -p yilian-gen-bindings -- --check";

/// One generated file: its path from the workspace root and its text.
pub struct Output {
    pub path: &'static str,
    pub contents: String,
}

/// Every generated file, as the current core's table gives it.
pub fn outputs() -> Vec<Output> {
    let codes = codes();
    vec![
        Output { path: "ffi-c/src/error/codes.rs", contents: c_codes(&codes) },
        Output { path: "bindings-java/src/main/java/org/yilian/ErrorCode.java", contents: java_error_code(&codes) },
        Output { path: "bindings-python/python/yilian/_codes.py", contents: python_codes(&codes) },
    ]
}

/// The workspace root (this crate is `tools/gen-bindings`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("..")
}

/// A generated file that differs from what is on disk.
pub struct Stale {
    pub path: &'static str,
    /// A line diff, on disk -> generated (or a note that the file is missing).
    pub diff: String,
}

/// The generated files under `root` that are missing or differ.
pub fn stale(root: &Path) -> Vec<Stale> {
    outputs()
        .into_iter()
        .filter_map(|o| match std::fs::read_to_string(root.join(o.path)) {
            Ok(on_disk) if on_disk == o.contents => None,
            Ok(on_disk) => Some(Stale { path: o.path, diff: line_diff(&on_disk, &o.contents) }),
            Err(e) => Some(Stale { path: o.path, diff: format!("cannot read it ({e}); it should hold {} lines\n", o.contents.lines().count()) }),
        })
        .collect()
}

/// Writes the stale files under `root`; returns their paths.
pub fn write(root: &Path) -> io::Result<Vec<&'static str>> {
    let mut written = Vec::new();
    for o in outputs() {
        let path = root.join(o.path);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(o.contents.as_str()) {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&path, &o.contents)?;
            written.push(o.path);
        }
    }
    Ok(written)
}

// ------------------------------------------------------------------ the table

/// One row of the core's table.
struct Code {
    name: &'static str,
    numeric: i32,
    family: ErrorFamily,
    en: &'static str,
    zh: &'static str,
}

/// The core's codes in numeric order, checked to be safe to print as literals.
fn codes() -> Vec<Code> {
    let codes: Vec<Code> = ErrorCode::ALL
        .iter()
        .map(|&c| Code { name: c.as_str(), numeric: c.numeric(), family: c.family(), en: c.default_message(), zh: c.default_message_zh() })
        .collect();
    for c in &codes {
        assert!(
            !c.name.is_empty() && c.name.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'),
            "code name {:?} is not an UPPER_SNAKE identifier",
            c.name
        );
        assert!(c.numeric > 0, "{}: numeric code {} is not positive", c.name, c.numeric);
        assert_eq!(ErrorFamily::from_numeric(c.numeric), Some(c.family), "{}: family is not the thousands digit", c.name);
        for m in [c.en, c.zh] {
            assert!(!m.is_empty() && !m.chars().any(char::is_control), "{}: message {m:?} is empty or has control characters", c.name);
        }
    }
    assert!(codes.windows(2).all(|w| w[0].numeric < w[1].numeric), "ErrorCode::ALL is in numeric order");
    codes
}

/// Every family, by its thousands digit.
fn families() -> Vec<(i32, ErrorFamily)> {
    (1..100).filter_map(|d| ErrorFamily::from_numeric(d * 1000).map(|f| (d, f))).collect()
}

/// `not_found` -> `not found`.
fn family_words(f: ErrorFamily) -> String {
    f.name().replace('_', " ")
}

fn family_digit(f: ErrorFamily) -> i32 {
    families().into_iter().find(|(_, g)| *g == f).map(|(d, _)| d).unwrap_or_else(|| panic!("family {} has no digit", f.name()))
}

// ------------------------------------------------------------------ C

/// C-only remarks added to a code's comment in the header.
const C_NOTES: &[(&str, &str)] = &[
    ("REQUEST_TOO_LARGE", "The limit is the engine's `max_request_bytes` (default 1 MiB)."),
    ("SLOT_NOT_FOUND", "Also a bad `yl_slot` handle."),
    ("NULL_ARGUMENT", "Also a NULL engine handle."),
    ("BUFFER_TOO_SMALL", "`*needed` says how big the buffer must be."),
    ("PANIC", "Caught at the C boundary: it never unwinds into the caller, and the library stays usable."),
];

fn c_codes(codes: &[Code]) -> String {
    for (name, _) in C_NOTES {
        assert!(codes.iter().any(|c| c.name == *name), "C_NOTES names {name}, which is not a code");
    }
    let mut s = String::new();
    s.push_str(&generated_banner("//"));
    s.push_str(
        "\n//! The C ABI's return codes: `YL_OK` and one `YL_E_*` per yilian-core error code,\n\
         //! with the core's number (never renumbered), in numeric order.\n\
         \n\
         use std::ffi::CStr;\n\
         use std::os::raw::c_int;\n\
         \n\
         /// Success.\n\
         pub const YL_OK: c_int = 0;\n",
    );
    for c in codes {
        let note = C_NOTES.iter().find(|(n, _)| *n == c.name).map(|(_, note)| format!(" {note}")).unwrap_or_default();
        let _ = writeln!(s, "/// {}xxx {}: {} / {}.{note}", family_digit(c.family), family_words(c.family), c.en, c.zh);
        let _ = writeln!(s, "pub const YL_E_{}: c_int = {};", c.name, c.numeric);
    }
    s.push_str("\n/// Every code with its name, for `yl_code_name`.\npub(crate) const CODE_NAMES: &[(c_int, &CStr)] = &[\n    (YL_OK, c\"OK\"),\n");
    for c in codes {
        let _ = writeln!(s, "    (YL_E_{0}, c\"{0}\"),", c.name);
    }
    s.push_str("];\n");
    s
}

// ------------------------------------------------------------------ Java

/// The Java exception class thrown for a family (exhaustive: a new family
/// fails to compile here until it has a class).
fn java_exception(f: ErrorFamily) -> &'static str {
    match f {
        ErrorFamily::Input => "YilianInputException",
        ErrorFamily::NotFound => "YilianNotFoundException",
        ErrorFamily::Conflict => "YilianConflictException",
        ErrorFamily::State => "YilianStateException",
        ErrorFamily::Permission => "YilianPermissionException",
        ErrorFamily::Idempotency => "YilianIdempotencyException",
        ErrorFamily::Storage => "YilianStorageException",
        ErrorFamily::Binding => "YilianBindingException",
        ErrorFamily::Internal => "YilianInternalError",
    }
}

/// A Java string literal. `codes()` has ruled out control characters, which
/// Java's early `\u` processing would make awkward.
fn java_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Text for a Javadoc comment: HTML-escaped, `code spans` as `{@code ...}`.
fn javadoc(s: &str) -> String {
    let escaped = s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('@', "&#64;").replace("*/", "*&#47;");
    let mut out = String::new();
    for (i, part) in escaped.split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "{{@code {part}}}");
        } else {
            out.push_str(part);
        }
    }
    out
}

fn java_error_code(codes: &[Code]) -> String {
    let mut s = generated_banner("//");
    s.push_str(
        r#"package org.yilian;

import java.util.HashMap;
import java.util.Map;

/**
 * Every error code of the yilian library, generated from the core's table:
 * the stable string code ({@link #name()}, e.g. {@code SLOT_FULL}), the stable
 * numeric code (3001, never renumbered), the {@link Family} and the generic
 * English and Chinese messages. A {@link YilianException} carries the code it
 * was thrown for ({@link YilianException#getErrorCode()}); its class is the
 * family's.
 */
public enum ErrorCode {
"#,
    );
    for (i, c) in codes.iter().enumerate() {
        let family = c.family.name().to_uppercase();
        let end = if i + 1 == codes.len() { ';' } else { ',' };
        let _ = writeln!(s, "    /** {} {}: {} / {}. */", c.numeric, family_words(c.family), javadoc(c.en), javadoc(c.zh));
        let _ = writeln!(s, "    {}({}, Family.{family}, {}, {}){end}", c.name, c.numeric, java_str(c.en), java_str(c.zh));
    }
    s.push_str(
        r#"
    /** The error families: the thousands digit of the numeric code. Each has its exception class. */
    public enum Family {
"#,
    );
    let families = families();
    for (i, (digit, f)) in families.iter().enumerate() {
        let end = if i + 1 == families.len() { ';' } else { ',' };
        let _ = writeln!(s, "        /** {digit}xxx: thrown as {{@link {}}}. */", java_exception(*f));
        let _ = writeln!(s, "        {}({digit}, {}){end}", f.name().to_uppercase(), java_str(f.name()));
    }
    s.push_str(
        r#"
        private final int digit;
        private final String coreName;

        Family(int digit, String coreName) {
            this.digit = digit;
            this.coreName = coreName;
        }

        /** The thousands digit of the family's numeric codes, e.g. 3 for {@link #CONFLICT}. */
        public int getDigit() {
            return digit;
        }

        /** The core's name of the family, e.g. {@code "not_found"}. */
        public String getCoreName() {
            return coreName;
        }

        /** The family of a numeric code, or null for a family this jar does not know. */
        public static Family fromNumeric(int numericCode) {
            int digit = numericCode / 1000;
            for (Family f : values()) {
                if (f.digit == digit) {
                    return f;
                }
            }
            return null;
        }
    }

    private static final Map<Integer, ErrorCode> BY_NUMERIC = new HashMap<>();
    private static final Map<String, ErrorCode> BY_NAME = new HashMap<>();

    static {
        for (ErrorCode c : values()) {
            BY_NUMERIC.put(c.numericCode, c);
            BY_NAME.put(c.name(), c);
        }
    }

    private final int numericCode;
    private final Family family;
    private final String message;
    private final String messageZh;

    ErrorCode(int numericCode, Family family, String message, String messageZh) {
        this.numericCode = numericCode;
        this.family = family;
        this.message = message;
        this.messageZh = messageZh;
    }

    /** The stable numeric code, e.g. 3001. */
    public int getNumericCode() {
        return numericCode;
    }

    public Family getFamily() {
        return family;
    }

    /** The generic English message (an exception's message may add detail). */
    public String getMessage() {
        return message;
    }

    /** The generic Chinese message (an exception's message may add detail). */
    public String getMessageZh() {
        return messageZh;
    }

    /** The code of a numeric code, or null when this jar does not know it. */
    public static ErrorCode fromNumeric(int numericCode) {
        return BY_NUMERIC.get(numericCode);
    }

    /** The code of a string code ({@code "SLOT_FULL"}), or null when this jar does not know it (unlike {@link #valueOf}, which throws). */
    public static ErrorCode fromName(String name) {
        return name == null ? null : BY_NAME.get(name);
    }
}
"#,
    );
    s
}

// ------------------------------------------------------------------ Python

/// A Python string literal (`codes()` has ruled out control characters).
fn py_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn python_codes(codes: &[Code]) -> String {
    let mut s = generated_banner("#");
    s.push_str(
        r#""""The error codes of yilian, generated from the core's table.

``ErrorCodeName`` is the type of ``YilianError.code`` (a ``Literal`` of every
string code), ``ErrorFamilyName`` that of the family names, and ``ErrorCode``
an ``IntEnum`` of every code: ``ErrorCode.SLOT_FULL == 3001``,
``ErrorCode[err.code]`` and ``ErrorCode(err.numeric_code)`` look one up, and
``.family``, ``.message`` and ``.message_zh`` describe it.
"""

import enum
from typing import Dict, Literal, Tuple
"#,
    );
    s.push_str("\n__all__ = [\"ErrorCode\", \"ErrorCodeName\", \"ErrorFamilyName\"]\n\nErrorCodeName = Literal[\n");
    for c in codes {
        let _ = writeln!(s, "    {},", py_str(c.name));
    }
    s.push_str("]\n\"\"\"A stable string code, e.g. ``\"SLOT_FULL\"``: the type of ``YilianError.code``.\"\"\"\n\nErrorFamilyName = Literal[\n");
    for (_, f) in families() {
        let _ = writeln!(s, "    {},", py_str(f.name()));
    }
    s.push_str(
        r#"]
"""An error family, e.g. ``"conflict"``: the thousands digit of the numeric code."""


class ErrorCode(enum.IntEnum):
    """Every error code by its stable numeric code (never renumbered); the
    member's name is the stable string code."""

"#,
    );
    for c in codes {
        let _ = writeln!(s, "    {} = {}", c.name, c.numeric);
        let _ = writeln!(s, "    \"\"{}\"\"", py_str(&format!("{} / {}", c.en, c.zh)));
    }
    s.push_str(
        r#"
    @property
    def family(self) -> ErrorFamilyName:
        """The family, e.g. ``"conflict"``: each has its exception class."""
        return _INFO[self.value][0]

    @property
    def message(self) -> str:
        """The generic English message (an error's ``.message`` may add detail)."""
        return _INFO[self.value][1]

    @property
    def message_zh(self) -> str:
        """The generic Chinese message (an error's ``.message_zh`` may add detail)."""
        return _INFO[self.value][2]


_INFO: Dict[int, Tuple[ErrorFamilyName, str, str]] = {
"#,
    );
    for c in codes {
        let _ = writeln!(s, "    {}: ({}, {}, {}),", c.numeric, py_str(c.family.name()), py_str(c.en), py_str(c.zh));
    }
    s.push_str("}\n");
    s
}

// ------------------------------------------------------------------ shared

fn generated_banner(comment: &str) -> String {
    format!(
        "{comment} @generated by tools/gen-bindings from yilian-core's ErrorCode table (core/src/error.rs). Do not edit.\n\
         {comment} Regenerate: {REGENERATE}; check: {CHECK} (the rust and C suites run the check).\n"
    )
}

/// A line diff of `old` -> `new`: changed lines with two lines of context,
/// `-` for lines only in `old`, `+` for lines only in `new`, numbered as in `old`.
pub fn line_diff(old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    // Longest common subsequence, by suffix lengths.
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    // (marker, old line number, text)
    let mut rows: Vec<(char, usize, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            rows.push((' ', i + 1, a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            rows.push(('-', i + 1, a[i]));
            i += 1;
        } else {
            rows.push(('+', i + 1, b[j]));
            j += 1;
        }
    }
    let near_change = |k: usize| rows[k.saturating_sub(2)..(k + 3).min(rows.len())].iter().any(|r| r.0 != ' ');
    let mut out = String::new();
    let mut skipped = false;
    for (k, (mark, line, text)) in rows.iter().enumerate() {
        if near_change(k) {
            if skipped || (k > 0 && out.is_empty()) {
                let _ = writeln!(out, "@@ line {line} @@");
            }
            skipped = false;
            let _ = writeln!(out, "{mark}{text}");
        } else {
            skipped = true;
        }
    }
    if old.ends_with('\n') != new.ends_with('\n') {
        out.push_str("(the final newline differs)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_shows_changed_lines_with_context() {
        let d = line_diff("a\nb\nc\nd\ne\nf\ng\n", "a\nb\nc\nD\ne\nf\ng\n");
        assert_eq!(d, "@@ line 2 @@\n b\n c\n-d\n+D\n e\n f\n");
        assert_eq!(line_diff("x\n", "x\n"), "");
        assert_eq!(line_diff("", "x\n"), "+x\n(the final newline differs)\n");
    }

    #[test]
    fn every_core_code_is_in_every_output() {
        let outputs = outputs();
        for c in ErrorCode::ALL {
            let c_line = format!("pub const YL_E_{}: c_int = {};", c.as_str(), c.numeric());
            assert!(outputs[0].contents.contains(&c_line), "{c_line}");
            assert!(outputs[1].contents.contains(&format!("    {}({}, Family.", c.as_str(), c.numeric())), "{}", c.as_str());
            assert!(outputs[2].contents.contains(&format!("    {} = {}\n", c.as_str(), c.numeric())), "{}", c.as_str());
        }
    }
}
