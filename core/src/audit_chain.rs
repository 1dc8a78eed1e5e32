//! The audit chain's text format (S1, tamper evidence), below the store
//! that writes it and the audit module that reads it back: each entry is
//! written as `{"seq":N,…,"prev_hash":"<64 hex>","hash":"<64 hex>"}` where
//! `hash` = SM3(`prev_hash` hex ‖ the entry without its two hash fields).
//! A row is a JSON list of entries. The store's committer appends with
//! [`append_chained`] in commit order; `audit::verify` splits rows back with
//! [`split_row`] and [`chained`]. Names nothing of the crate: only text and SM3.

/// What the first hashed entry chains from.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// `,"prev_hash":"<64>","hash":"<64>"}`: what chaining adds to an entry's end.
const CHAIN_SUFFIX_LEN: usize = 14 + 64 + 10 + 64 + 2;

/// SM3(`prev` hex ‖ `canonical`), hex.
pub(crate) fn entry_hash(prev: &str, canonical: &str) -> String {
    entry_hash_hex(prev, canonical).as_str().to_string()
}

/// [`entry_hash`] on the stack: the committer hashes every entry it writes.
fn entry_hash_hex(prev: &str, canonical: &str) -> Hex64 {
    use sm3::Digest;
    let mut h = sm3::Sm3::new();
    h.update(prev.as_bytes());
    h.update(canonical.as_bytes());
    let mut out = Hex64([0; 64]);
    // 32 bytes always fill 64 hex digits: the only error is a wrong length.
    hex::encode_to_slice(h.finalize(), &mut out.0).expect("an SM3 digest is 32 bytes");
    out
}

/// 64 lowercase hex digits.
struct Hex64([u8; 64]);

impl Hex64 {
    fn as_str(&self) -> &str {
        // `hex::encode_to_slice` writes ASCII digits only.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// Appends entry `seq` (its body as serialised, without the opening brace)
/// to `out`, chained to `head`, and moves `head` to its hash. The canonical
/// text hashed is `{"seq":N,` + body: the entry as written, minus the two
/// hash fields added after it. Called by the store's committer only.
pub(crate) fn append_chained(out: &mut String, seq: u64, body: &str, head: &mut String) {
    let start = out.len();
    out.push_str("{\"seq\":");
    out.push_str(itoa::Buffer::new().format(seq));
    out.push(',');
    out.push_str(body);
    let hash = entry_hash_hex(head, &out[start..]);
    out.pop(); // the entry's closing brace: the hash fields go before it
    out.push_str(",\"prev_hash\":\"");
    out.push_str(head);
    out.push_str("\",\"hash\":\"");
    out.push_str(hash.as_str());
    out.push_str("\"}");
    head.clear();
    head.push_str(hash.as_str());
}

/// The hash of a row's last entry, if it is hashed.
pub(crate) fn row_head(row: &str) -> Option<String> {
    let last = split_row(row)?.pop()?;
    chained(last).map(|c| c.hash.to_string())
}

/// A row's entries as written (each `{"seq":…}`). Entries begin with
/// `{"seq":`, which no string value can contain unescaped.
pub(crate) fn split_row(row: &str) -> Option<Vec<&str>> {
    let inner = row.strip_prefix('[')?.strip_suffix(']')?;
    let mut out = Vec::new();
    let mut rest = inner;
    while let Some(i) = rest.get(1..).and_then(|r| r.find("},{\"seq\":")).map(|i| i + 1) {
        out.push(&rest[..=i]);
        rest = &rest[i + 2..];
    }
    if !rest.is_empty() {
        out.push(rest);
    }
    Some(out)
}

/// An entry's chain fields and canonical text.
pub(crate) struct Chained<'a> {
    pub prev: &'a str,
    pub hash: &'a str,
    pub canonical: String,
}

pub(crate) fn chained(entry: &str) -> Option<Chained<'_>> {
    let cut = entry.len().checked_sub(CHAIN_SUFFIX_LEN)?;
    let suffix = entry.get(cut..)?;
    let prev = suffix.strip_prefix(",\"prev_hash\":\"")?.get(..64)?;
    let hash = suffix.get(14 + 64..)?.strip_prefix("\",\"hash\":\"")?.strip_suffix("\"}")?;
    let hex = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    if !hex(prev) || !hex(hash) {
        return None;
    }
    Some(Chained { prev, hash, canonical: format!("{}}}", &entry[..cut]) })
}

/// An entry's number, from its opening `{"seq":N,`.
pub(crate) fn seq_of(entry: &str) -> Option<u64> {
    let rest = entry.strip_prefix("{\"seq\":")?;
    rest[..rest.find(',')?].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chained_row_splits_back_into_its_entries_and_verifies_by_hand() {
        let mut head = GENESIS.to_string();
        let mut row = String::from("[");
        append_chained(&mut row, 1, "\"at_ms\":1,\"command\":\"a},{\\\"seq\\\":9\",\"changed\":[]}", &mut head);
        row.push(',');
        append_chained(&mut row, 2, "\"at_ms\":2,\"command\":\"b\",\"changed\":[\"x/1\"]}", &mut head);
        row.push(']');
        let list = split_row(&row).expect("a row");
        assert_eq!(list.len(), 2, "{row}");
        let parsed: Vec<serde_json::Value> = serde_json::from_str(&row).expect("valid JSON");
        assert_eq!(parsed[1]["prev_hash"], parsed[0]["hash"]);
        assert_eq!(row_head(&row).as_deref(), Some(head.as_str()));
        let first = chained(list[0]).expect("hashed");
        assert_eq!(first.prev, GENESIS);
        assert_eq!(entry_hash(GENESIS, &first.canonical), first.hash);
        assert_eq!(seq_of(list[1]), Some(2));
    }
}
