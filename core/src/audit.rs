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
    pub changed: Vec<String>,
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
        };
        Write::put(TABLE, String::new(), &entry)
    })
}

crate::store::table!(
    /// Who changed what, when (S1): append-only, numbered by the committer,
    /// one row per commit keyed by its highest entry number; never loaded on open.
    pub(crate) TABLE = "audit", Log
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
    pub limit: usize,
}

impl Filter {
    pub fn matches(&self, e: &Entry) -> bool {
        self.since_ms.is_none_or(|t| e.at_ms >= t)
            && self.until_ms.is_none_or(|t| e.at_ms < t)
            && self.institution.as_deref().is_none_or(|i| e.institution.as_deref() == Some(i))
            && self.command.as_deref().is_none_or(|c| e.command == c)
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
