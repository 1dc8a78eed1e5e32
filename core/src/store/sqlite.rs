//! The embedded store's database: SQLite (bundled) in WAL mode, one
//! connection, locked exclusively (see the store's module doc for the
//! one-writer rule and the scrub).
//!
//! A table is `(k TEXT PRIMARY KEY, body TEXT NOT NULL) WITHOUT ROWID`, or,
//! for a [`Flag::Numbered`] table (bookings, the outbox, the request ids'
//! answers, the audit trail), `(k INTEGER PRIMARY KEY, body TEXT NOT
//! NULL)`: the row's own id is the key's number, so the rows a commit adds
//! go at the end of the table's b-tree and a full page splits off alone,
//! where an index b-tree (`WITHOUT ROWID`) rebalanced three pages and their
//! parent on nearly every commit. A commit of 12 bookings then writes 7.5
//! WAL pages instead of 15 (measured on a copy of this layout). Keys go in
//! and come out as the same 20-digit text ([`numbered_key`]); a key that is
//! no such number fails its commit (nothing of it is written). The layout
//! is chosen when a table is created: a store created before keeps its
//! text keys (`is_numbered`).

use super::{corrupt_row, numbered_key, row_aad, stored_key, Backend, Flag, Op, Table};
use crate::crypto::{RowCipher, SEALED_PREFIX};
use crate::error::{Error, ErrorCode, Result};
use rusqlite::{params, Connection, OpenFlags};
use std::fs::File;
use std::path::Path;

/// The connection and the directory's lock file, dropped in this order on
/// close: the database's lock first, then `yilian.lock`.
pub(crate) struct SqliteBackend {
    conn: Connection,
    _lock: File,
    /// The tables this file keeps by number ([`Flag::Numbered`], created so).
    numbered: Vec<&'static str>,
}

impl SqliteBackend {
    pub(crate) fn open(dir: &Path, sync_full: bool, tables: &[Table]) -> Result<SqliteBackend> {
        std::fs::create_dir_all(dir).map_err(|e| Error::storage(format!("cannot create data directory: {e}")))?;
        let lock = lock_dir(dir)?;
        let path = dir.join("yilian.sqlite3");
        let conn = open_exclusive(dir, &path)?;
        conn.pragma_update(None, "synchronous", if sync_full { "FULL" } else { "NORMAL" })?;
        // Checkpoint every 8192 pages (32 MiB of WAL) instead of SQLite's 1000:
        // a booking burst rewrites the same few tail pages commit after commit,
        // and rarer checkpoints copy each of them once (p99 latency halves).
        conn.pragma_update(None, "wal_autocheckpoint", 8192)?;
        let mut numbered = Vec::new();
        for t in tables {
            let layout =
                if t.has(Flag::Numbered) { "(k INTEGER PRIMARY KEY, body TEXT NOT NULL)" } else { "(k TEXT PRIMARY KEY, body TEXT NOT NULL) WITHOUT ROWID" };
            conn.execute_batch(&format!("CREATE TABLE IF NOT EXISTS {} {layout};", t.name()))?;
            if is_numbered(&conn, t.name())? {
                numbered.push(t.name());
            }
        }
        Ok(SqliteBackend { conn, _lock: lock, numbered })
    }

    /// `key` as this file's table stores it: its number in a table kept by
    /// number, else the text.
    fn key<'k>(&self, table: Table, key: &'k str) -> Result<Key<'k>> {
        if !self.numbered.contains(&table.name()) {
            return Ok(Key::Text(key));
        }
        number_of(key).map(Key::Number).ok_or_else(|| {
            // The key is not named: a table's key may be personal elsewhere.
            Error::storage(format!("a key of table {} is not a numbered key; nothing was written", table.name()))
        })
    }
}

/// Whether the table `name` is kept by number (`k INTEGER PRIMARY KEY`): so
/// created by this version for a [`Flag::Numbered`] table; a store created
/// before keeps its text keys.
fn is_numbered(conn: &Connection, name: &str) -> Result<bool> {
    let sql: String = conn.query_row("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?1", params![name], |r| r.get(0))?;
    Ok(sql.contains("k INTEGER PRIMARY KEY"))
}

/// Whether `key` has a [`numbered_key`]'s form: 20 ASCII digits.
fn is_numbered_form(key: &str) -> bool {
    key.len() == 20 && key.bytes().all(|b| b.is_ascii_digit())
}

/// The number a [`numbered_key`] stands for (at most `i64::MAX`), or `None`.
fn number_of(key: &str) -> Option<i64> {
    if !is_numbered_form(key) {
        return None;
    }
    key.parse::<u64>().ok().and_then(|n| i64::try_from(n).ok())
}

/// A row's key as bound to a statement.
enum Key<'k> {
    Number(i64),
    Text(&'k str),
}

impl rusqlite::ToSql for Key<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Key::Number(n) => n.to_sql(),
            Key::Text(t) => t.to_sql(),
        }
    }
}

/// A row's key as read: a number (a table kept by number) is written back
/// as the [`numbered_key`] it was stored from.
fn key_of(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<String> {
    match r.get_ref(i)? {
        rusqlite::types::ValueRef::Integer(n) => Ok(numbered_key(n as u64)),
        _ => r.get(i),
    }
}

fn rows(st: &mut rusqlite::Statement<'_>, p: impl rusqlite::Params) -> Result<Vec<(String, String)>> {
    Ok(st.query_map(p, |r| Ok((key_of(r, 0)?, r.get::<_, String>(1)?)))?.collect::<rusqlite::Result<_>>()?)
}

impl Backend for SqliteBackend {
    fn commit(&mut self, ops: &[Op<'_>]) -> Result<()> {
        let keys = ops.iter().map(|op| self.key(op.table, &op.key)).collect::<Result<Vec<_>>>()?;
        let tx = self.conn.transaction()?;
        for (op, key) in ops.iter().zip(&keys) {
            match &op.body {
                Some(body) => tx.prepare_cached(op.table.upsert_sql())?.execute(params![key, body])?,
                None => tx.prepare_cached(op.table.delete_sql())?.execute(params![key])?,
            };
        }
        tx.commit()?;
        Ok(())
    }

    fn page(&mut self, table: Table, after: &str, limit: usize) -> Result<Vec<(String, String)>> {
        let after = match self.key(table, after) {
            Ok(k) => k,
            // Before every numbered key.
            Err(_) if after.is_empty() => Key::Number(-1),
            // A numbered key past the largest an `i64` holds: nothing is after it.
            Err(_) if is_numbered_form(after) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let sql = format!("SELECT k, body FROM {} WHERE k > ?1 ORDER BY k LIMIT {limit}", table.name());
        let mut st = self.conn.prepare_cached(&sql)?;
        rows(&mut st, params![after])
    }

    fn get(&mut self, table: Table, key: &str) -> Result<Option<String>> {
        // A key that is no number is in no table kept by number.
        let Ok(key) = self.key(table, key) else { return Ok(None) };
        let sql = format!("SELECT body FROM {} WHERE k = ?1", table.name());
        match self.conn.query_row(&sql, params![key], |r| r.get::<_, String>(0)) {
            Ok(b) => Ok(Some(b)),
            Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn all(&mut self, table: Table) -> Result<Vec<(String, String)>> {
        rows(&mut self.conn.prepare(&format!("SELECT k, body FROM {}", table.name()))?, [])
    }

    fn not_prefixed(&mut self, table: Table, prefix: &str) -> Result<Vec<(String, String)>> {
        let sql = format!("SELECT k, body FROM {} WHERE substr(body, 1, {}) != ?1", table.name(), prefix.chars().count());
        rows(&mut self.conn.prepare(&sql)?, params![prefix])
    }

    fn max_key(&mut self, table: Table) -> Result<Option<String>> {
        Ok(self.conn.query_row(&format!("SELECT max(k) FROM {}", table.name()), [], |r| match r.get_ref(0)? {
            rusqlite::types::ValueRef::Null => Ok(None),
            _ => key_of(r, 0).map(Some),
        })?)
    }

    fn database(&mut self) -> Result<super::Database> {
        // The SQLite compiled into yilian (rusqlite's bundled copy): its
        // symbols are private to libyilian.a and libyilian.so, so a host
        // linking another SQLite never swaps it for this one.
        Ok(super::Database { kind: "sqlite", version: rusqlite::version().to_string() })
    }

    fn is_scrubbed(&mut self) -> Result<bool> {
        is_scrubbed(&self.conn)
    }

    fn scrub(&mut self) -> Result<()> {
        scrub(&self.conn)?;
        mark_scrubbed(&self.conn)
    }
}

/// Opens the database holding its own exclusive lock (see the module doc):
/// `STORE_LOCKED` at once if any other connection holds it, in this process
/// or another. WAL mode, `secure_delete` on.
fn open_exclusive(dir: &Path, path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE)?;
    // No waiting: a holder keeps the lock until it closes.
    conn.busy_timeout(std::time::Duration::ZERO)?;
    let locked = |e: rusqlite::Error| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => store_locked(dir),
        _ => Error::from(e),
    };
    // Set before WAL is first touched: SQLite then keeps the WAL index in
    // heap memory and never gives the lock on the file up until close.
    conn.pragma_update(None, "locking_mode", "EXCLUSIVE").map_err(locked)?;
    conn.pragma_update(None, "journal_mode", "WAL").map_err(locked)?;
    // Take the exclusive lock now, not at the first write.
    conn.execute_batch("BEGIN EXCLUSIVE; COMMIT;").map_err(locked)?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    Ok(conn)
}

/// The bit of `PRAGMA user_version` that says every row was sealed and the
/// file then scrubbed ([`scrub`]): set after the scrub, so a crash before it
/// only repeats the scrub.
const SCRUBBED: i64 = 1;

fn is_scrubbed(conn: &Connection) -> Result<bool> {
    let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    Ok(v & SCRUBBED != 0)
}

fn mark_scrubbed(conn: &Connection) -> Result<()> {
    let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    conn.pragma_update(None, "user_version", v | SCRUBBED)?;
    Ok(())
}

/// Rebuilds the database file without free pages and empties the WAL, so
/// no copy of a row just overwritten or deleted stays in any file.
fn scrub(conn: &Connection) -> Result<()> {
    conn.execute_batch("VACUUM;")?;
    let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
    if busy != 0 {
        return Err(Error::storage("the WAL could not be checkpointed after sealing"));
    }
    Ok(())
}

/// Re-encrypts every row of the store in `dir` under `new` (#16 item 6):
/// rows sealed under `old` are opened and sealed again, plain rows are
/// sealed, rows with personal keys are keyed again by `new`'s keyed hash
/// (`plain_key` reads the plain key back from such a row's body). One
/// transaction: a crash leaves the store wholly under the old key or wholly
/// under the new. Then the file is vacuumed and the WAL truncated, so no
/// row under the old key stays in any file. The directory must not be open
/// (`STORE_LOCKED` otherwise). Returns the number of rows rewritten.
pub fn rekey(dir: &Path, old: &RowCipher, new: &RowCipher, tables: &[Table], plain_key: &dyn Fn(Table, &str) -> Option<String>) -> Result<u64> {
    let path = dir.join("yilian.sqlite3");
    if !path.is_file() {
        return Err(Error::with(
            ErrorCode::InvalidConfig,
            format!("no store in data directory {}", dir.display()),
            format!("数据目录 {} 中没有数据库", dir.display()),
        ));
    }
    let _lock = lock_dir(dir)?;
    let mut conn = open_exclusive(dir, &path)?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    let tx = conn.transaction()?;
    let mut rewritten = 0u64;
    for t in tables.iter().copied() {
        let exists: i64 = tx.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1", params![t.name()], |r| r.get(0))?;
        if exists == 0 {
            continue;
        }
        // Keys first, then one body at a time: report documents may be large.
        // Keys as stored (a number in a table kept by number), and as text.
        let keys: Vec<(rusqlite::types::Value, String)> =
            tx.prepare(&format!("SELECT k FROM {}", t.name()))?.query_map([], |r| Ok((r.get(0)?, key_of(r, 0)?)))?.collect::<rusqlite::Result<_>>()?;
        let select = format!("SELECT body FROM {} WHERE k = ?1", t.name());
        for (stored, k) in keys {
            let body: String = tx.query_row(&select, params![stored], |r| r.get(0))?;
            let (key, plain) = if body.starts_with(SEALED_PREFIX) {
                let plain = old.open(&row_aad(t, &k), &body).ok_or_else(|| {
                    Error::with(
                        ErrorCode::InvalidConfig,
                        format!("a row of table {} does not open with the old key (wrong key, or the row was altered); nothing was changed", t.name()),
                        format!("表 {} 中有记录无法用旧密钥解密（密钥错误或记录被篡改）；未做任何更改", t.name()),
                    )
                })?;
                let key = if t.has(Flag::PersonalKeys) {
                    plain_key(t, &plain).ok_or_else(|| corrupt_row(t, &k, "its key is not in its body", "记录内容中没有其键"))?
                } else {
                    k.clone()
                };
                (key, plain)
            } else {
                (k.clone(), body)
            };
            let new_key = stored_key(t, &key, Some(new));
            tx.execute(t.delete_sql(), params![stored])?;
            // A table kept by number has no personal keys: its key is unchanged.
            let new_stored = match stored {
                rusqlite::types::Value::Integer(_) => stored,
                _ => rusqlite::types::Value::Text(new_key.to_string()),
            };
            tx.execute(t.upsert_sql(), params![new_stored, new.seal(&row_aad(t, &new_key), &plain)])?;
            rewritten += 1;
        }
    }
    tx.commit()?;
    scrub(&conn)?;
    mark_scrubbed(&conn)?;
    Ok(rewritten)
}

fn store_locked(dir: &Path) -> Error {
    Error::with(
        ErrorCode::StoreLocked,
        format!("data directory {} is in use by another engine or process", dir.display()),
        format!("数据目录 {} 正被其他引擎或进程使用", dir.display()),
    )
}

/// One process per data directory: a second opener gets `STORE_LOCKED`.
#[cfg(unix)]
fn lock_dir(dir: &Path) -> Result<File> {
    use std::os::unix::io::AsRawFd;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("yilian.lock"))
        .map_err(|e| Error::storage(format!("cannot create lock file: {e}")))?;
    // SAFETY: a valid, open file descriptor.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        return Err(store_locked(dir));
    }
    Ok(f)
}

#[cfg(not(unix))]
fn lock_dir(dir: &Path) -> Result<File> {
    // Windows: an exclusive share mode gives the same one-opener rule.
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("yilian.lock"))
        .map_err(|e| Error::with(ErrorCode::StoreLocked, format!("data directory is in use: {e}"), "数据目录正被其他程序使用"))
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::store::table!(NUMBERED = "t_numbered", Numbered);
    crate::store::table!(TEXT = "t_text");

    fn put<'a>(table: Table, key: &'a str, body: &'a str) -> Op<'a> {
        Op { table, key: key.into(), body: Some(body.into()), fresh: false }
    }

    fn layout(b: &SqliteBackend, name: &str) -> String {
        b.conn.query_row("SELECT sql FROM sqlite_master WHERE name = ?1", params![name], |r| r.get(0)).unwrap()
    }

    #[test]
    fn a_numbered_table_is_kept_by_number_and_reads_back_the_keys_it_was_given_in_number_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = SqliteBackend::open(dir.path(), false, &[NUMBERED, TEXT]).unwrap();
        assert!(layout(&b, "t_numbered").contains("k INTEGER PRIMARY KEY"));
        assert!(layout(&b, "t_text").contains("WITHOUT ROWID"));
        let top = numbered_key(i64::MAX as u64);
        let keys = [numbered_key(10), numbered_key(0), top.clone(), numbered_key(2)];
        b.commit(&keys.iter().map(|k| put(NUMBERED, k, "{}")).collect::<Vec<_>>()).unwrap();
        b.commit(&[put(NUMBERED, &numbered_key(2), "{\"n\":2}"), Op { table: NUMBERED, key: numbered_key(10).into(), body: None, fresh: false }]).unwrap();
        let all: Vec<String> = b.page(NUMBERED, "", 10).unwrap().into_iter().map(|(k, _)| k).collect();
        assert_eq!(all, vec![numbered_key(0), numbered_key(2), top.clone()], "in number order, the deleted one gone");
        assert_eq!(b.page(NUMBERED, &numbered_key(0), 1).unwrap(), vec![(numbered_key(2), "{\"n\":2}".to_string())]);
        assert_eq!(b.page(NUMBERED, &top, 10).unwrap(), vec![]);
        assert_eq!(b.page(NUMBERED, &numbered_key(u64::MAX), 10).unwrap(), vec![], "past every number an i64 holds");
        assert_eq!(b.get(NUMBERED, &numbered_key(2)).unwrap().as_deref(), Some("{\"n\":2}"));
        assert_eq!(b.get(NUMBERED, "2").unwrap(), None, "only the 20-digit key names the row");
        assert_eq!(b.get(NUMBERED, "r-1").unwrap(), None);
        assert_eq!(b.max_key(NUMBERED).unwrap(), Some(top));
        assert_eq!(b.max_key(TEXT).unwrap(), None);
        let mut every = b.all(NUMBERED).unwrap();
        every.sort();
        assert_eq!(every.len(), 3);
        assert_eq!(every[0].0, numbered_key(0));
    }

    #[test]
    fn a_key_that_is_no_number_fails_a_commit_to_a_numbered_table_and_writes_nothing_of_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = SqliteBackend::open(dir.path(), false, &[NUMBERED, TEXT]).unwrap();
        for bad in ["r-1", "2", &numbered_key(i64::MAX as u64 + 1)] {
            let err = b.commit(&[put(TEXT, "a", "{}"), put(NUMBERED, bad, "{}")]).unwrap_err();
            assert_eq!(err.code(), ErrorCode::StorageError, "{err}");
            assert!(!err.to_string().contains(bad), "the key is not echoed: {err}");
        }
        assert_eq!(b.get(TEXT, "a").unwrap(), None, "nothing of the batch was written");
        assert_eq!(b.page(NUMBERED, "", 10).unwrap(), vec![]);
    }

    #[test]
    fn a_table_a_store_created_before_with_text_keys_keeps_them() {
        let dir = tempfile::tempdir().unwrap();
        {
            let c = Connection::open(dir.path().join("yilian.sqlite3")).unwrap();
            c.execute_batch("CREATE TABLE t_numbered (k TEXT PRIMARY KEY, body TEXT NOT NULL) WITHOUT ROWID;").unwrap();
        }
        let mut b = SqliteBackend::open(dir.path(), false, &[NUMBERED]).unwrap();
        assert!(layout(&b, "t_numbered").contains("WITHOUT ROWID"));
        b.commit(&[put(NUMBERED, "r-legacy", "{}"), put(NUMBERED, &numbered_key(1), "{}")]).unwrap();
        let keys: Vec<String> = b.page(NUMBERED, "", 10).unwrap().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, vec![numbered_key(1), "r-legacy".to_string()]);
        assert_eq!(b.max_key(NUMBERED).unwrap().as_deref(), Some("r-legacy"));
    }
}
