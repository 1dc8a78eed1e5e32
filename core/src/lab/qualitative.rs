//! Reading a result against its sub-item's reference (定性/定量结果判读).
//!
//! Chinese LIS systems export qualitative results in many spellings: 阴性,
//! 阴性（-） typed with full-width brackets by a Chinese input method,
//! `Neg`, `(-)`, `－`, `阴性 0.12 S/CO`, `弱阳性(±)`, `++`, `2+`, 未检出,
//! 无反应性 … [`read`] turns a value into a [`Reading`] only when every part of
//! it is understood and all parts agree; anything else is `None`, and the
//! result is marked for review (待复核). A reading is never guessed: a
//! spelling this module does not know, or a negative word beside a positive
//! sign, is reviewed by a person, never reported negative or positive.
//!
//! [`assess`] compares a value with what the standard sub-item declares (its
//! numeric ranges and critical limits, or its qualitative reference such as
//! 阴性) and gives the flag, whether the value is beyond a critical limit,
//! the qualitative reading and whether a person must review it. A notifiable
//! infection (法定传染病) is raised only on a positive or weakly positive
//! reading; an equivocal or unreadable one goes to review instead.

use super::catalog::StdItem;
use serde::Serialize;

/// What a qualitative value says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Reading {
    /// 阴性, 未检出, 无反应性, (-), Neg.
    Negative,
    /// 可疑, 待定, 灰区, ±, 微量: neither; to be retested or reviewed.
    Equivocal,
    /// 弱阳性, 弱反应性.
    WeakPositive,
    /// 阳性, 检出, 有反应性, (+), ++, 3+, Pos.
    Positive,
}

impl Reading {
    pub fn as_str(self) -> &'static str {
        match self {
            Reading::Negative => "negative",
            Reading::Equivocal => "equivocal",
            Reading::WeakPositive => "weak_positive",
            Reading::Positive => "positive",
        }
    }
    pub fn is_positive(self) -> bool {
        matches!(self, Reading::Positive | Reading::WeakPositive)
    }
    /// Two parts of one value (`弱阳性(+)`, `阴性(-)`): the reading both
    /// allow, or `None` when they contradict each other.
    fn combine(self, other: Reading) -> Option<Reading> {
        use Reading::*;
        match (self, other) {
            (a, b) if a == b => Some(a),
            (WeakPositive, Positive) | (Positive, WeakPositive) => Some(WeakPositive),
            (WeakPositive, Equivocal) | (Equivocal, WeakPositive) => Some(WeakPositive),
            _ => None,
        }
    }
}

/// Words, longest first where one starts another (弱阳性 before 阳性, 未检出
/// before 检出, nonreactive before reactive), in the folded form of [`fold`].
const WORDS: &[(&str, Reading)] = &[
    ("可疑阳性", Reading::Equivocal),
    ("无反应性", Reading::Negative),
    ("非反应性", Reading::Negative),
    ("有反应性", Reading::Positive),
    ("弱反应性", Reading::WeakPositive),
    ("弱阳性", Reading::WeakPositive),
    ("无反应", Reading::Negative),
    ("不反应", Reading::Negative),
    ("有反应", Reading::Positive),
    ("反应性", Reading::Positive),
    ("未检出", Reading::Negative),
    ("未检到", Reading::Negative),
    ("阴性", Reading::Negative),
    ("阳性", Reading::Positive),
    ("弱阳", Reading::WeakPositive),
    ("检出", Reading::Positive),
    ("可疑", Reading::Equivocal),
    ("待定", Reading::Equivocal),
    ("灰区", Reading::Equivocal),
    ("微量", Reading::Equivocal),
    ("阴", Reading::Negative),
    ("阳", Reading::Positive),
    ("weaklypositive", Reading::WeakPositive),
    ("weaklyreactive", Reading::WeakPositive),
    ("weakpositive", Reading::WeakPositive),
    ("weakreactive", Reading::WeakPositive),
    ("nonreactive", Reading::Negative),
    ("non-reactive", Reading::Negative),
    ("notdetected", Reading::Negative),
    ("nondetected", Reading::Negative),
    ("indeterminate", Reading::Equivocal),
    ("borderline", Reading::Equivocal),
    ("equivocal", Reading::Equivocal),
    ("greyzone", Reading::Equivocal),
    ("grayzone", Reading::Equivocal),
    ("negative", Reading::Negative),
    ("positive", Reading::Positive),
    ("reactive", Reading::Positive),
    ("detected", Reading::Positive),
    ("trace", Reading::Equivocal),
    ("neg", Reading::Negative),
    ("pos", Reading::Positive),
];

/// Units that may follow the number a qualitative immunoassay prints beside
/// its reading (`阴性 0.12 S/CO`); the number itself never decides.
const UNITS: &[&str] = &["s/co", "coi", "iu/ml", "miu/ml", "ng/ml", "u/ml", "au/ml", "pei-u/ml", "index", "cutoff"];

/// Full-width forms to half-width, the dashes and pluses of CJK fonts to
/// ASCII, brackets of every kind to round ones; runs of spaces one space,
/// letters lowered, a closing full stop dropped.
pub(crate) fn fold(value: &str) -> String {
    let mut s: String = value
        .chars()
        .map(|c| {
            let c = match c {
                '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
                '\u{3000}' => ' ',
                _ => c,
            };
            let c = match c {
                '\u{2212}' | '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' | '\u{FE63}' => '-',
                '\u{FE62}' => '+',
                '【' | '〔' | '〖' | '[' | '{' => '(',
                '】' | '〕' | '〗' | ']' | '}' => ')',
                _ => c,
            };
            if c.is_whitespace() {
                ' '
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    s = s.split(' ').filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ");
    s = s.replace("+/-", "±").replace("+-", "±").replace("-/+", "±");
    while s.ends_with('。') || s.ends_with('.') {
        s.pop();
    }
    s
}

/// The length in bytes of `word` at the start of `s`, spaces inside it
/// allowed (`阴 性`, `not detected`, `Weakly Reactive`).
fn word_len(s: &str, word: &str) -> Option<usize> {
    let mut it = s.char_indices().peekable();
    for w in word.chars() {
        while matches!(it.peek(), Some((_, ' '))) && w != ' ' {
            it.next();
        }
        match it.next() {
            Some((_, c)) if c == w => {}
            _ => return None,
        }
    }
    Some(it.peek().map(|(i, _)| *i).unwrap_or(s.len()))
}

/// A number with an optional comparator (`<0.5`, `≥1.0`, `0.12`), at the start of `s`:
/// its length in bytes.
fn number_len(s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = 0;
    for cmp in ["<=", ">=", "≤", "≥", "<", ">"] {
        if s.starts_with(cmp) {
            i = cmp.len();
            break;
        }
    }
    let digits_from = i;
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
        i += 1;
    }
    if i == digits_from || !s[digits_from..i].chars().any(|c| c.is_ascii_digit()) {
        return 0;
    }
    i
}

/// The reading of a qualitative value, or `None` when any part of it is not
/// understood, when its parts contradict each other, or when it holds no
/// qualitative part at all (a bare number).
pub(crate) fn read(value: &str) -> Option<Reading> {
    let s = fold(value);
    let mut rest = s.as_str();
    let mut reading: Option<Reading> = None;
    let mut take = |r: Reading| -> bool {
        match reading {
            None => {
                reading = Some(r);
                true
            }
            Some(prev) => match prev.combine(r) {
                Some(c) => {
                    reading = Some(c);
                    true
                }
                None => false,
            },
        }
    };
    while !rest.is_empty() {
        // Separators between parts.
        if let Some(r) = [" ", "(", ")", ",", "，", ";", "；", ":", "：", "、", "/"].iter().find_map(|p| rest.strip_prefix(p)) {
            rest = r;
            continue;
        }
        if let Some((n, r)) = WORDS.iter().find_map(|(w, r)| word_len(rest, w).map(|n| (n, r))) {
            if !take(*r) {
                return None;
            }
            rest = &rest[n..];
            continue;
        }
        if let Some(r) = rest.strip_prefix('±') {
            if !take(Reading::Equivocal) {
                return None;
            }
            rest = r;
            continue;
        }
        // Signs: `-`, `+`, `++`, `+++`, `++++`; a run of minus signs is one.
        if rest.starts_with('-') || rest.starts_with('+') {
            let sign = rest.as_bytes()[0];
            let n = rest.bytes().take_while(|&c| c == sign).count();
            // `-0.5` is a number, not a sign.
            if sign == b'-' && rest[n..].starts_with(|c: char| c.is_ascii_digit()) {
                return None;
            }
            if sign == b'+' && n > 4 {
                return None;
            }
            if !take(if sign == b'-' { Reading::Negative } else { Reading::Positive }) {
                return None;
            }
            rest = &rest[n..];
            continue;
        }
        // A number: a grade (`1+` … `4+`) or a value beside the reading.
        let n = number_len(rest);
        if n > 0 {
            let (num, after) = rest.split_at(n);
            if let Some(r) = after.strip_prefix('+') {
                if !matches!(num, "1" | "2" | "3" | "4") || !take(Reading::Positive) {
                    return None;
                }
                rest = r;
                continue;
            }
            rest = after;
            if let Some(n) = UNITS.iter().find_map(|u| word_len(rest.trim_start(), u)) {
                rest = &rest.trim_start()[n..];
            }
            continue;
        }
        return None;
    }
    reading
}

/// The flag of a value against its standard sub-item.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Assessment {
    /// N normal, H high, L low, HH/LL beyond the critical limits, A abnormal
    /// (qualitative), R needs review (待复核): the value could not be read
    /// against the sub-item's reference.
    pub flag: &'static str,
    pub critical: bool,
    /// The qualitative reading, for a sub-item with a qualitative reference.
    pub reading: Option<Reading>,
    pub review: bool,
}

impl Assessment {
    fn of(flag: &'static str, critical: bool, reading: Option<Reading>, review: bool) -> Assessment {
        Assessment { flag, critical, reading, review }
    }
    fn review() -> Assessment {
        Assessment::of("R", false, None, true)
    }
}

/// The reference a sub-item declares for qualitative values: its text read
/// as a qualitative value (阴性, 阴性(-)), or negative for a notifiable
/// infection's marker with no text (a notifiable infection is found by a
/// positive result).
fn qualitative_reference(item: &StdItem) -> Option<Reading> {
    item.ref_text
        .as_deref()
        .and_then(read)
        .or_else(|| (item.notifiable_infection.is_some() && item.ref_low.is_none() && item.ref_high.is_none()).then_some(Reading::Negative))
}

/// A numeric value after folding (`４.５`, `< 0.5`): its comparator and number.
fn numeric(value: &str) -> Option<(&'static str, f64)> {
    let s = fold(value).replace(' ', "");
    let (cmp, num) = ["<=", ">=", "≤", "≥", "<", ">"]
        .iter()
        .find_map(|c| s.strip_prefix(c).map(|r| (*c, r)))
        .map(|(c, r)| (if c.starts_with('<') || c == "≤" { "<" } else { ">" }, r))
        .unwrap_or(("", s.as_str()));
    // `+1` and `-` are signs of a qualitative value, not numbers.
    if num.starts_with('+') {
        return None;
    }
    num.parse::<f64>().ok().filter(|x| x.is_finite()).map(|x| (cmp, x))
}

/// The flag of `value` against the ranges and critical limits or the
/// qualitative reference of `item`. Never a guess: a value that cannot be
/// read against a reference the item declares is flagged `R` for review.
pub(crate) fn assess(item: &StdItem, value: &str) -> Assessment {
    let ranged = item.ref_low.is_some() || item.ref_high.is_some() || item.critical_low.is_some() || item.critical_high.is_some();
    if ranged {
        if let Some((cmp, x)) = numeric(value) {
            return against_ranges(item, cmp, x);
        }
    }
    if let Some(reference) = qualitative_reference(item) {
        return match read(value) {
            Some(r) if r == reference => Assessment::of("N", false, Some(r), false),
            Some(Reading::Equivocal) => Assessment::of("A", false, Some(Reading::Equivocal), true),
            Some(r) => Assessment::of("A", false, Some(r), false),
            None => Assessment::review(),
        };
    }
    if ranged || item.ref_text.is_some() {
        // Not a number on a numeric item (溶血, +), or a reference text that
        // is neither qualitative nor a range (见报告): nothing to compare.
        return Assessment::review();
    }
    // No reference at all: nothing to be abnormal against.
    Assessment::of("N", false, None, false)
}

/// A number against the ranges and critical limits; `<x` and `>x` (censored
/// values) have a flag only when every value on that side of x has the same.
fn against_ranges(item: &StdItem, cmp: &str, x: f64) -> Assessment {
    let band = |x: f64| -> (&'static str, bool) {
        if item.critical_low.is_some_and(|l| x < l) {
            ("LL", true)
        } else if item.critical_high.is_some_and(|h| x > h) {
            ("HH", true)
        } else if item.ref_low.is_some_and(|l| x < l) {
            ("L", false)
        } else if item.ref_high.is_some_and(|h| x > h) {
            ("H", false)
        } else {
            ("N", false)
        }
    };
    let step = x.abs().max(1.0) * 1e-9;
    let (near, far) = match cmp {
        "" => return Assessment::of(band(x).0, band(x).1, None, false),
        "<" => (band(x - step), band(f64::NEG_INFINITY)),
        _ => (band(x + step), band(f64::INFINITY)),
    };
    // The bands are intervals in order, so the two ends agreeing means every
    // value between them has the same flag.
    if near == far {
        Assessment::of(near.0, near.1, None, false)
    } else {
        Assessment::review()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn item(low: Option<f64>, high: Option<f64>, cl: Option<f64>, ch: Option<f64>, text: Option<&str>, notifiable: Option<&str>) -> StdItem {
        StdItem {
            code: "S".into(),
            name: "n".into(),
            abbr: None,
            specimen_type: "血清".into(),
            specimen_note: None,
            workgroup: None,
            unit: None,
            ref_low: low,
            ref_high: high,
            ref_text: text.map(str::to_string),
            critical_low: cl,
            critical_high: ch,
            notifiable_infection: notifiable.map(str::to_string),
        }
    }

    /// Spellings seen in Chinese LIS exports, with what they say.
    const SPELLINGS: &[(&str, Option<Reading>)] = {
        use Reading::*;
        &[
            ("阴性", Some(Negative)),
            ("阴性(-)", Some(Negative)),
            ("阴性（-）", Some(Negative)),
            ("阴性（－）", Some(Negative)),
            ("阴性 (-)", Some(Negative)),
            ("阴性　（－）", Some(Negative)),
            (" 阴性 ", Some(Negative)),
            ("阴性。", Some(Negative)),
            ("阴 性", Some(Negative)),
            ("阴", Some(Negative)),
            ("(-)", Some(Negative)),
            ("（-）", Some(Negative)),
            ("（－）", Some(Negative)),
            ("-", Some(Negative)),
            ("－", Some(Negative)),
            ("−", Some(Negative)),
            ("--", Some(Negative)),
            ("【阴性】", Some(Negative)),
            ("[-]", Some(Negative)),
            ("未检出", Some(Negative)),
            ("未检出(-)", Some(Negative)),
            ("无反应性", Some(Negative)),
            ("无反应", Some(Negative)),
            ("非反应性", Some(Negative)),
            ("Neg", Some(Negative)),
            ("NEG", Some(Negative)),
            ("neg.", Some(Negative)),
            ("Negative", Some(Negative)),
            ("NEGATIVE", Some(Negative)),
            ("Negative(-)", Some(Negative)),
            ("Non-Reactive", Some(Negative)),
            ("NONREACTIVE", Some(Negative)),
            ("Not Detected", Some(Negative)),
            ("ＮＥＧ", Some(Negative)),
            ("阴性 0.12 S/CO", Some(Negative)),
            ("0.08 阴性", Some(Negative)),
            ("阴性(0.35 COI)", Some(Negative)),
            ("<0.05 阴性", Some(Negative)),
            ("阴性/0.21", Some(Negative)),
            ("阳性", Some(Positive)),
            ("阳性(+)", Some(Positive)),
            ("阳性（＋）", Some(Positive)),
            ("阳", Some(Positive)),
            ("(+)", Some(Positive)),
            ("（+）", Some(Positive)),
            ("+", Some(Positive)),
            ("＋", Some(Positive)),
            ("++", Some(Positive)),
            ("+++", Some(Positive)),
            ("++++", Some(Positive)),
            ("1+", Some(Positive)),
            ("3+", Some(Positive)),
            ("阳性(++)", Some(Positive)),
            ("检出", Some(Positive)),
            ("有反应性", Some(Positive)),
            ("反应性", Some(Positive)),
            ("Pos", Some(Positive)),
            ("POSITIVE", Some(Positive)),
            ("Positive(+)", Some(Positive)),
            ("Reactive", Some(Positive)),
            ("阳性 12.6 S/CO", Some(Positive)),
            ("阳性 >250 IU/mL", Some(Positive)),
            ("弱阳性", Some(WeakPositive)),
            ("弱阳性(+)", Some(WeakPositive)),
            ("弱阳性（±）", Some(WeakPositive)),
            ("弱阳", Some(WeakPositive)),
            ("弱反应性", Some(WeakPositive)),
            ("Weakly Reactive", Some(WeakPositive)),
            ("可疑", Some(Equivocal)),
            ("可疑(±)", Some(Equivocal)),
            ("可疑阳性", Some(Equivocal)),
            ("±", Some(Equivocal)),
            ("(±)", Some(Equivocal)),
            ("+/-", Some(Equivocal)),
            ("+-", Some(Equivocal)),
            ("灰区", Some(Equivocal)),
            ("待定", Some(Equivocal)),
            ("微量", Some(Equivocal)),
            ("Equivocal", Some(Equivocal)),
            ("Indeterminate", Some(Equivocal)),
            // Not understood, or contradicting itself: never guessed.
            ("阴性(+)", None),
            ("阳性(-)", None),
            ("阴性 阳性", None),
            ("+-+", None),
            ("阴性，建议复查", None),
            ("待复查", None),
            ("见报告", None),
            ("溶血", None),
            ("NR", None),
            ("N", None),
            ("0.12", None),
            ("0.12 S/CO", None),
            ("-0.5", None),
            ("5+", None),
            ("+++++", None),
            ("", None),
            ("   ", None),
            ("?", None),
            ("阴性?", None),
            ("ok", None),
        ]
    };

    #[test]
    fn every_spelling_seen_in_lis_exports_reads_as_it_says() {
        assert!(SPELLINGS.len() >= 60);
        for (value, want) in SPELLINGS {
            assert_eq!(read(value), *want, "{value:?}");
        }
    }

    #[test]
    fn a_full_width_negative_on_a_notifiable_item_is_normal_and_never_notifiable() {
        let hiv = item(None, None, None, None, Some("阴性"), Some("艾滋病"));
        for v in ["阴性（-）", "阴性（－）", "（－）", "无反应性", "Neg"] {
            let a = assess(&hiv, v);
            assert_eq!((a.flag, a.reading, a.review), ("N", Some(Reading::Negative), false), "{v}");
        }
        let a = assess(&hiv, "阳性（＋）");
        assert_eq!((a.flag, a.reading, a.review), ("A", Some(Reading::Positive), false));
        let a = assess(&hiv, "可疑");
        assert_eq!((a.flag, a.reading, a.review), ("A", Some(Reading::Equivocal), true));
        for v in ["NR", "0.35", "阴性(+)", "请复查"] {
            assert_eq!(assess(&hiv, v), Assessment::review(), "{v}");
        }
        // A notifiable marker without a reference text is negative-normal.
        let bare = item(None, None, None, None, None, Some("梅毒"));
        assert_eq!(assess(&bare, "阴性").flag, "N");
        assert_eq!(assess(&bare, "+").flag, "A");
    }

    #[test]
    fn numbers_follow_the_ranges_and_critical_limits() {
        let k = item(Some(3.5), Some(5.3), Some(2.8), Some(6.2), None, None);
        let f = |v| {
            let a = assess(&k, v);
            (a.flag, a.critical)
        };
        assert_eq!(f("4.0"), ("N", false));
        assert_eq!(f("3.0"), ("L", false));
        assert_eq!(f("5.9"), ("H", false));
        assert_eq!(f(" 2.1 "), ("LL", true));
        assert_eq!(f("7"), ("HH", true));
        assert_eq!(f("６.２"), ("H", false));
        assert_eq!(f("3.5"), ("N", false));
        // Censored values: known only when the whole side agrees.
        assert_eq!(f("<2.0"), ("LL", true));
        assert_eq!(f(">8"), ("HH", true));
        assert_eq!(f("<4.0"), ("R", false));
        assert_eq!(f(">5.0"), ("R", false));
        // Not a number on a numeric item: reviewed, not called normal.
        assert_eq!(f("溶血"), ("R", false));
        assert_eq!(f("+"), ("R", false));
        let tg = item(None, Some(1.7), None, None, Some("<1.7"), None);
        assert_eq!(assess(&tg, "<0.5").flag, "N");
        assert_eq!(assess(&tg, "2.1").flag, "H");
        // No reference at all: nothing to be abnormal against.
        assert_eq!(assess(&item(None, None, None, None, None, None), "anything").flag, "N");
        assert_eq!(assess(&item(None, None, None, None, Some("见报告"), None), "12").flag, "R");
    }

    fn full_width(s: &str) -> String {
        s.chars().map(|c| if ('!'..='~').contains(&c) { char::from_u32(c as u32 + 0xFEE0).unwrap() } else { c }).collect()
    }

    proptest! {
        /// No spelling of a negative, however typed, raises a notifiable
        /// infection or is read as anything but negative.
        #[test]
        fn no_negative_spelling_is_ever_notifiable(
            word in prop::sample::select(vec!["阴性", "阴", "未检出", "无反应性", "无反应", "非反应性", "neg", "negative", "non-reactive", "nonreactive", "not detected", ""]),
            sign in prop::sample::select(vec!["", "-", "(-)", "（-）", "（－）", "[-]", "【-】", "--", "−"]),
            number in prop::option::of((0u32..100, prop::sample::select(vec!["", " S/CO", " COI", "s/co"]))),
            upper in any::<bool>(),
            wide in any::<bool>(),
            pad in prop::sample::select(vec!["", " ", "　", "  ", "\t"]),
            number_first in any::<bool>(),
        ) {
            prop_assume!(!word.is_empty() || !sign.is_empty());
            let mut v = format!("{pad}{word}{pad}{sign}{pad}");
            if let Some((n, unit)) = number {
                let num = format!("0.{n:02}{unit}");
                v = if number_first { format!("{num} {v}") } else { format!("{v} {num}") };
            }
            if upper { v = v.to_uppercase(); }
            if wide { v = full_width(&v); }
            prop_assert_eq!(read(&v), Some(Reading::Negative), "{:?}", v);
            for it in [item(None, None, None, None, Some("阴性"), Some("艾滋病")), item(None, None, None, None, None, Some("梅毒"))] {
                let a = assess(&it, &v);
                prop_assert_eq!(a.flag, "N");
                prop_assert!(!a.review);
            }
        }

        /// Any text at all: a reading is either one the value's parts all
        /// state, or none; never a panic.
        #[test]
        fn any_text_reads_without_panicking(s in "\\PC{0,24}") {
            let _ = read(&s);
            let _ = assess(&item(Some(1.0), Some(2.0), Some(0.5), Some(3.0), None, None), &s);
        }
    }
}
