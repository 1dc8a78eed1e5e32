//! The audit trail (S1): every change that reaches the durable store is
//! recorded with who asked (institution, operator), when (the engine's
//! clock), through which command or typed call, under which request id, and
//! which rows it changed — in the same commit as the change itself, so an
//! acknowledged change always has its entry and a lost one never does.
//!
//! The caller's identity travels in a thread-local set by the command layer
//! (and the typed calls) for the duration of one call; `Pool::enqueue`, the
//! one door every durable change goes through, adds the entry. The store's
//! committer numbers entries in the order they reach the disk and writes one
//! row per commit, so a reader paging with `after_seq` sees each entry once.
//! Entries stay in the `audit` table (sealed like every row when an
//! encryption key is set) and are read back with the `audit-log` command.
//!
//! Besides changes, the trail records two things that change nothing:
//! refusals (`Engine::audit_refusal`: a request whose signature was refused,
//! with the app id as claimed — sanitised and truncated —, the interface and
//! the error code) and reads of personal data (`PERSONAL_READS`: who read,
//! through which command, which object ids — never the personal values).
//! These are queued with the committer like a change's entry but nobody
//! waits for them: a crash right after such a query may lose its entry
//! (never a change's), and a query costs no fsync.
//!
//! The chain (tamper evidence): the committer, in commit order, gives each
//! entry `prev_hash` (the hash of the entry before it, [`GENESIS`] for the
//! first) and `hash` = SM3(`prev_hash` hex ‖ the entry's canonical text).
//! The canonical text is the entry exactly as written, without the two hash
//! fields: `{"seq":N,…}` (see [`crate::audit_chain::append_chained`]). `audit-verify` walks the
//! rows in order and reports the first entry whose number, `prev_hash` or
//! `hash` does not follow. Entries written before the chain existed carry no
//! hash: they form an unhashed prefix, and the first hashed entry chains
//! from [`GENESIS`]. Invariants: entry numbers are 1, 2, 3, … with no gap;
//! a row is keyed by the number of its last entry; after the first hashed
//! entry every entry is hashed. What the chain cannot show: an unsealed
//! store rewritten together with every later hash (SM3 is unkeyed), and
//! whole rows cut off the end (sealed rows additionally bind each row to its
//! key with SM4-GCM, so a moved or altered sealed row does not open).
//!
//! Lock order: none of its own; entries are built inside the caller's
//! locks and numbered and chained by the committer's single thread.

use crate::audit_chain::{chained, entry_hash, seq_of, split_row, GENESIS};
use crate::clock::{format_ms, Millis};
use crate::error::{Error, ErrorCode};
use crate::store::{DurableStore, Flag, Write};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;

/// Who is calling, for the current thread's call.
#[derive(Debug, Clone, Default)]
pub(crate) struct Context {
    pub command: String,
    pub institution: Option<String>,
    pub operator: Option<String>,
    pub request_id: Option<String>,
}

thread_local! {
    static CONTEXT: RefCell<Option<Context>> = const { RefCell::new(None) };
}

/// Sets the caller's identity until the guard drops (then restores the
/// outer one, if calls nest).
pub(crate) struct Scope(Option<Context>);

impl Scope {
    pub fn enter(ctx: Context) -> Scope {
        Scope(CONTEXT.with(|c| c.borrow_mut().replace(ctx)))
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        let outer = self.0.take();
        CONTEXT.with(|c| *c.borrow_mut() = outer);
    }
}

/// One entry of the trail.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    /// Numbered by the store as entries are committed: a reader paging with
    /// `after_seq` never misses one committed later with a lower number.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub seq: u64,
    pub at_ms: Millis,
    /// The command, or the typed call (`hold`, `confirm`, `release`), or
    /// `(engine)` for changes the engine makes on its own (hold expiry found
    /// on recovery, promotions).
    pub command: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub institution: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// `table/key` of every row the change wrote or deleted (patient rows
    /// are named by table only: their key is the patient's id).
    #[serde(default)]
    pub changed: Vec<String>,
    /// `refusal` or `read` for entries that change nothing; absent for changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// A refusal's error code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// A refusal's app id as the request claimed it (sanitised, at most 64 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_app_id: Option<String>,
    /// A read's object ids (`booking/B000001`, `referral/…`), at most [`READ_IDS_MAX`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub read: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// An entry as written: `Entry`'s fields, borrowed from the caller's context
/// (the row is built inside the change's locks, so nothing is copied twice).
#[derive(Serialize)]
struct EntryOut<'a> {
    at_ms: Millis,
    command: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    institution: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    operator: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
    changed: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    claimed_app_id: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    read: &'a [String],
}

/// The audit row for a transaction's writes (the store numbers it).
pub(crate) fn row(at_ms: Millis, writes: &[Write]) -> Write {
    let changed = writes
        .iter()
        .filter(|w| !w.table.has(Flag::Bookkeeping))
        .map(|w| {
            if w.table.has(Flag::PersonalKeys) {
                return w.table.name().to_string();
            }
            let name = w.table.name();
            let mut s = String::with_capacity(name.len() + 1 + w.key.len());
            s.push_str(name);
            s.push('/');
            s.push_str(&w.key);
            s
        })
        .collect();
    CONTEXT.with(|c| {
        let c = c.borrow();
        let ctx = c.as_ref();
        let entry = EntryOut {
            at_ms,
            command: ctx.map_or("(engine)", |c| c.command.as_str()),
            institution: ctx.and_then(|c| c.institution.as_deref()),
            operator: ctx.and_then(|c| c.operator.as_deref()),
            request_id: ctx.and_then(|c| c.request_id.as_deref()),
            changed,
            kind: None,
            code: None,
            claimed_app_id: None,
            read: &[],
        };
        Write::put(TABLE, String::new(), &entry)
    })
}

crate::store::table!(
    /// Who changed what, when (S1): append-only, numbered by the committer,
    /// one row per commit keyed by its highest entry number; never loaded on open.
    pub(crate) TABLE = "audit", Log, Numbered
);

/// Entries after `filter.after_seq`, oldest first, up to `filter.limit`.
pub(crate) fn read(store: &DurableStore, filter: &Filter) -> crate::error::Result<Vec<Entry>> {
    let mut out = Vec::new();
    // A row holds the entries of one commit and is keyed by the highest:
    // rows keyed above `after_seq` hold every entry after it.
    store.scan_after(TABLE, &crate::store::numbered_key(filter.after_seq), |row| {
        let mut entries: Vec<Entry> = serde_json::from_str(&row.body).map_err(|e| Error::storage(format!("unreadable audit row: {e}")))?;
        entries.sort_by_key(|e| e.seq);
        for e in entries {
            if e.seq > filter.after_seq && filter.matches(&e) {
                out.push(e);
                if out.len() >= filter.limit {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    })?;
    Ok(out)
}

/// What `audit-log` asks for.
#[derive(Debug, Default)]
pub struct Filter {
    pub after_seq: u64,
    pub since_ms: Option<Millis>,
    pub until_ms: Option<Millis>,
    pub institution: Option<String>,
    pub command: Option<String>,
    /// `None`: changes only (what `audit-log` answers unless asked);
    /// `Some("read")`, `Some("refusal")`; `Some("all")` for every entry.
    pub kind: Option<String>,
    pub limit: usize,
}

impl Filter {
    pub fn matches(&self, e: &Entry) -> bool {
        self.since_ms.is_none_or(|t| e.at_ms >= t)
            && self.until_ms.is_none_or(|t| e.at_ms < t)
            && self.institution.as_deref().is_none_or(|i| e.institution.as_deref() == Some(i))
            && self.command.as_deref().is_none_or(|c| e.command == c)
            && match self.kind.as_deref() {
                None => e.kind.is_none(),
                Some("all") => true,
                Some(k) => e.kind.as_deref() == Some(k),
            }
    }
}

pub(crate) fn view(e: &Entry, tz: &chrono_tz::Tz) -> serde_json::Value {
    let mut v = serde_json::to_value(e).unwrap_or_default();
    if let Some(m) = v.as_object_mut() {
        m.remove("at_ms");
        m.insert("at".into(), format_ms(e.at_ms, tz).into());
    }
    v
}

pub(crate) fn needs_store() -> Error {
    Error::with(
        ErrorCode::InvalidState,
        "the audit trail is kept by the durable store: open the engine with a data_dir",
        "审计记录保存在持久化存储中：请以 data_dir 打开引擎",
    )
}

// ---------------------------------------------------------------- entries that change nothing

/// The most object ids one read entry names (a long list names its first ones).
pub const READ_IDS_MAX: usize = 64;

/// The commands whose answers carry patients' identity (names, ID numbers,
/// phones, addresses): each successful call is recorded as a read entry.
pub(crate) const PERSONAL_READS: &[&str] = &[
    "patient-history",
    "booking-info",
    "admission-details",
    "referral-view",
    "referral-query",
    "referral-slip",
    "down-referral-list",
    "exam-view",
    "exam-query",
    "exam-report-document",
    "consultation-view",
    "consultation-query",
    "lab-order-info",
    "lab-order-query",
    "specimen-label",
    "specimen-query",
    "specimen-lookup",
    "shipment-manifest",
    "report-info",
    "critical-value-query",
];

/// The answer fields that name objects (never persons): a read entry lists
/// their values. `patient_id` is not among them (it may be an ID number).
const OBJECT_ID_FIELDS: &[(&str, &str)] = &[
    ("booking_id", "booking"),
    ("referral_id", "referral"),
    ("exam_id", "exam"),
    ("document_id", "document"),
    ("consultation_id", "consultation"),
    ("order_id", "lab_order"),
    ("specimen_id", "specimen"),
    ("shipment_id", "shipment"),
    ("report_id", "lab_report"),
];

/// The object ids an answer discloses, in the order found, each once, at
/// most [`READ_IDS_MAX`]: values of [`OBJECT_ID_FIELDS`] at any depth.
pub(crate) fn object_ids(answer: &serde_json::Value) -> Vec<String> {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        if out.len() >= READ_IDS_MAX {
            return;
        }
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    if let Some((_, kind)) = OBJECT_ID_FIELDS.iter().find(|(f, _)| f == k) {
                        let id = match x {
                            serde_json::Value::String(s) => Some(sanitise(s, 40)),
                            serde_json::Value::Number(n) => Some(n.to_string()),
                            _ => None,
                        };
                        if let Some(id) = id.filter(|i| !i.is_empty()) {
                            let named = format!("{kind}/{id}");
                            if !out.contains(&named) && out.len() < READ_IDS_MAX {
                                out.push(named);
                            }
                        }
                    }
                    walk(x, out);
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(answer, &mut out);
    out
}

/// ASCII letters, digits and `-_./:@` kept, anything else `_`, at most `max`
/// characters: a claimed id or a path may carry anything, a name included.
pub(crate) fn sanitise(s: &str, max: usize) -> String {
    s.chars().take(max).map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ':' | '@') { c } else { '_' }).collect()
}

/// A read or refusal entry's fields besides the caller's.
pub(crate) struct Note<'a> {
    pub kind: &'a str,
    pub code: Option<&'a str>,
    pub claimed_app_id: Option<&'a str>,
    pub read: &'a [String],
}

/// The row of an entry that changes nothing (a read, a refusal), for `ctx`.
pub(crate) fn note_row(at_ms: Millis, ctx: &Context, note: &Note<'_>) -> Write {
    let entry = EntryOut {
        at_ms,
        command: ctx.command.as_str(),
        institution: ctx.institution.as_deref(),
        operator: ctx.operator.as_deref(),
        request_id: ctx.request_id.as_deref(),
        changed: Vec::new(),
        kind: Some(note.kind),
        code: note.code,
        claimed_app_id: note.claimed_app_id,
        read: note.read,
    };
    Write::put(TABLE, String::new(), &entry)
}

/// What `audit-verify` found.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Verdict {
    pub ok: bool,
    /// Entries read (the unhashed prefix included).
    pub entries: u64,
    /// Entries written before the chain existed, at the start of the trail.
    pub unhashed_prefix: u64,
    pub first_broken: Option<Broken>,
    /// The hash of the last entry that follows (the chain's head), when hashed.
    pub head: Option<String>,
}

/// The first entry that does not follow: its number and why.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Broken {
    pub seq: u64,
    /// `unreadable_row`, `malformed`, `missing`, `misfiled`, `unhashed`, `prev_hash_mismatch` or `hash_mismatch`.
    pub reason: &'static str,
    pub message: &'static str,
    pub message_zh: &'static str,
}

fn broken(seq: u64, reason: &'static str) -> Broken {
    let (message, message_zh) = match reason {
        "unreadable_row" => {
            ("the row holding this entry does not open: altered, moved, or sealed under another key", "该条目所在记录无法解密：已被修改、移动或以其他密钥加密")
        }
        "malformed" => ("the row holding this entry is not a list of entries", "该条目所在记录不是审计条目列表"),
        "missing" => ("this entry is missing: entries after it exist", "该条目缺失：其后的条目仍在"),
        "misfiled" => ("this entry's row is filed under another number", "该条目所在记录的编号与内容不符"),
        "unhashed" => ("this entry has no hash although earlier entries do", "该条目没有哈希，而其前的条目有"),
        "prev_hash_mismatch" => ("this entry's prev_hash is not the hash of the entry before it", "该条目的 prev_hash 与前一条目的哈希不符"),
        _ => ("this entry's hash does not match its content", "该条目的哈希与其内容不符"),
    };
    Broken { seq, reason, message, message_zh }
}

/// Walks the whole trail and checks its chain (see the module's documentation).
pub(crate) fn verify(store: &DurableStore) -> crate::error::Result<Verdict> {
    let mut head = GENESIS.to_string();
    let mut hashed = false;
    let (mut expected, mut unhashed, mut entries) = (1u64, 0u64, 0u64);
    let mut first_broken = None;
    store.scan_checked(TABLE, |key, body| {
        let Some(body) = body else {
            first_broken = Some(broken(expected, "unreadable_row"));
            return Ok(false);
        };
        let Some(list) = split_row(&body) else {
            first_broken = Some(broken(expected, "malformed"));
            return Ok(false);
        };
        let row_first = expected;
        let mut last_seq = None;
        for raw in list {
            let Some(seq) = seq_of(raw) else {
                first_broken = Some(broken(expected, "malformed"));
                return Ok(false);
            };
            if seq != expected {
                first_broken = Some(broken(expected, if seq > expected { "missing" } else { "misfiled" }));
                return Ok(false);
            }
            match chained(raw) {
                None if hashed => {
                    first_broken = Some(broken(seq, "unhashed"));
                    return Ok(false);
                }
                None => unhashed += 1,
                Some(c) => {
                    hashed = true;
                    if c.prev != head {
                        first_broken = Some(broken(seq, "prev_hash_mismatch"));
                        return Ok(false);
                    }
                    if entry_hash(&head, &c.canonical) != c.hash {
                        first_broken = Some(broken(seq, "hash_mismatch"));
                        return Ok(false);
                    }
                    head = c.hash.to_string();
                }
            }
            entries += 1;
            expected += 1;
            last_seq = Some(seq);
        }
        if last_seq.map(crate::store::numbered_key).as_deref() != Some(key) {
            first_broken = Some(broken(row_first, "misfiled"));
            return Ok(false);
        }
        Ok(true)
    })?;
    Ok(Verdict { ok: first_broken.is_none(), entries, unhashed_prefix: unhashed, first_broken, head: hashed.then_some(head) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_ids_name_objects_and_never_patients() {
        let v = serde_json::json!({"booking_id": "B000001", "patient_id": "110101199001011234", "name": "张三",
            "items": [{"referral_id": "R1", "phone": "13800000000"}, {"booking_id": "B000001"}]});
        assert_eq!(object_ids(&v), vec!["booking/B000001".to_string(), "referral/R1".to_string()]);
    }
}
