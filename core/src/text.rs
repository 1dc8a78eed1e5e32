//! Searching Chinese names the way HIS users type them: by the name itself,
//! by full pinyin, or by the initials of each syllable (血常规 by "xcg").

use pinyin::ToPinyin;

/// The pinyin initials of a name, lowercase: 血常规 → "xcg". Characters
/// without pinyin (letters, digits) are kept as they are, lowercased.
pub fn pinyin_initials(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (c, p) in name.chars().zip(name.to_pinyin()) {
        match p {
            Some(p) => out.push_str(p.first_letter()),
            None if c.is_ascii_alphanumeric() => out.push(c.to_ascii_lowercase()),
            None => {}
        }
    }
    out
}

/// The full pinyin without tones: 血常规 → "xuechanggui".
pub fn pinyin_full(name: &str) -> String {
    let mut out = String::with_capacity(name.len() * 3);
    for (c, p) in name.chars().zip(name.to_pinyin()) {
        match p {
            Some(p) => out.push_str(p.plain()),
            None if c.is_ascii_alphanumeric() => out.push(c.to_ascii_lowercase()),
            None => {}
        }
    }
    out
}

/// A search key built once per catalogue entry.
#[derive(Debug, Clone, Default)]
pub struct SearchKey {
    name_lower: String,
    initials: String,
    full: String,
    /// Extra initials the catalogue supplies (e.g. the `pinyin` column of
    /// the panel list), for names whose readings the dictionary gets wrong.
    extra: Vec<String>,
}

impl SearchKey {
    pub fn new(name: &str, extra: &[&str]) -> SearchKey {
        SearchKey {
            name_lower: name.to_lowercase(),
            initials: pinyin_initials(name),
            full: pinyin_full(name),
            extra: extra.iter().filter(|e| !e.is_empty()).map(|e| e.to_lowercase()).collect(),
        }
    }

    /// How well `query` matches, best first: `Some(0)` exact name or initials,
    /// `Some(1)` prefix, `Some(2)` substring; `None` no match. Case-insensitive.
    pub fn rank(&self, query: &str) -> Option<u8> {
        let q = query.trim().to_lowercase();
        if q.is_empty() {
            return Some(2);
        }
        let fields = [&self.name_lower, &self.initials, &self.full].into_iter().chain(self.extra.iter());
        let mut best: Option<u8> = None;
        for f in fields {
            let r = if *f == q {
                0
            } else if f.starts_with(&q) {
                1
            } else if f.contains(&q) {
                2
            } else {
                continue;
            };
            best = Some(best.map_or(r, |b: u8| b.min(r)));
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initials_and_full_pinyin() {
        assert_eq!(pinyin_initials("血常规"), "xcg");
        assert_eq!(pinyin_initials("肝功能8项"), "ggn8x");
        assert_eq!(pinyin_full("血常规"), "xuechanggui");
        assert_eq!(pinyin_initials("CT平扫"), "ctps");
    }

    #[test]
    fn ranks_exact_then_prefix_then_substring() {
        let k = SearchKey::new("血常规", &[]);
        assert_eq!(k.rank("xcg"), Some(0));
        assert_eq!(k.rank("XC"), Some(1));
        assert_eq!(k.rank("常规"), Some(2));
        assert_eq!(k.rank("changgui"), Some(2));
        assert_eq!(k.rank("zz"), None);
        let k = SearchKey::new("乙肝两对半", &["ygldb"]);
        assert_eq!(k.rank("ygldb"), Some(0));
    }
}
