//! Short texts a view writes many of (timestamps, booking ids), kept on the
//! stack: a booking's answer carries three, and a `String` each was an
//! allocation and a free per answer (callgrind, `command_layer`).

use serde::{Serialize, Serializer};

/// A text of up to [`Short::CAP`] bytes inline, or a `String` beyond that.
#[derive(Clone)]
pub struct Short(Repr);

/// Invariant: `Inline`'s first `len` bytes are UTF-8, as only [`Short::new`]
/// (from a `str`) and [`Short::ascii`] (checked ASCII) fill them.
#[derive(Clone)]
enum Repr {
    Inline { len: u8, buf: [u8; Short::CAP] },
    Heap(String),
}

impl Short {
    pub const CAP: usize = 32;

    pub fn new(s: &str) -> Short {
        match s.len() {
            n if n <= Short::CAP => {
                let mut buf = [0; Short::CAP];
                buf[..n].copy_from_slice(s.as_bytes());
                Short(Repr::Inline { len: n as u8, buf })
            }
            _ => Short(Repr::Heap(s.to_string())),
        }
    }

    /// ASCII bytes written by the caller (digits, signs, separators); any
    /// byte that is not ASCII is refused (`None`), so the text stays a `str`.
#[inline]
    pub fn ascii(b: &[u8]) -> Option<Short> {
        (b.is_ascii() && b.len() <= Short::CAP).then(|| {
            let mut buf = [0; Short::CAP];
            buf[..b.len()].copy_from_slice(b);
            Short(Repr::Inline { len: b.len() as u8, buf })
        })
    }

#[inline]
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Inline { len, buf } => {
                let bytes = &buf[..(*len as usize).min(Short::CAP)];
                // SAFETY: `Repr`'s invariant: these bytes came from a `str`
                // or were checked to be ASCII, and `len` ends where they end.
                // (Checking them again cost more than the allocation this
                // type saves: every view reads each of its texts once.)
                unsafe { std::str::from_utf8_unchecked(bytes) }
            }
            Repr::Heap(s) => s,
        }
    }

    /// Whether the text is held inline (no allocation).
    pub fn is_inline(&self) -> bool {
        matches!(self.0, Repr::Inline { .. })
    }
}

impl std::ops::Deref for Short {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Display for Short {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self)
    }
}

impl std::fmt::Debug for Short {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq for Short {
    fn eq(&self, other: &Short) -> bool {
        self.as_str() == other.as_str()
    }
}

impl From<&str> for Short {
    fn from(s: &str) -> Short {
        Short::new(s)
    }
}

impl From<Short> for String {
    fn from(s: Short) -> String {
        match s.0 {
            Repr::Heap(s) => s,
            Repr::Inline { .. } => s.as_str().to_string(),
        }
    }
}

/// As the string it holds.
impl Serialize for Short {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_text_reads_back_as_given_inline_or_not() {
        for s in ["", "B000001", "2024-10-30T09:00:00+08:00", "号源 \"x\"", &"x".repeat(32), &"y".repeat(33)] {
            let t = Short::new(s);
            assert_eq!(t.as_str(), s);
            assert_eq!(t.is_inline(), s.len() <= Short::CAP);
            assert_eq!(serde_json::to_string(&t).unwrap(), serde_json::to_string(s).unwrap());
            assert_eq!(String::from(t), s);
        }
        assert_eq!(Short::ascii(b"W000007").unwrap().as_str(), "W000007");
        assert!(Short::ascii("号".as_bytes()).is_none());
        assert!(Short::ascii(&[b'1'; 33]).is_none());
    }
}
