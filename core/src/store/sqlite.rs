//! The embedded store's database: SQLite (bundled) in WAL mode, one
//! connection, locked exclusively (see the store's module doc for the
//! one-writer rule and the scrub).

use super::{corrupt_row, row_aad, stored_key, Backend, Flag, Op, Table};
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
        for t in tables {
            conn.execute_batch(&format!("CREATE TABLE IF NOT EXISTS {} (k TEXT PRIMARY KEY, body TEXT NOT NULL) WITHOUT ROWID;", t.name()))?;
        }
        Ok(SqliteBackend { conn, _lock: lock })
    }
}

fn rows(st: &mut rusqlite::Statement<'_>, p: impl rusqlite::Params) -> Result<Vec<(String, String)>> {
    Ok(st.query_map(p, |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?.collect::<rusqlite::Result<_>>()?)
}

impl Backend for SqliteBackend {
    fn commit(&mut self, ops: &[Op<'_>]) -> Result<()> {
        let tx = self.conn.transaction()?;
        for op in ops {
            match &op.body {
                Some(body) => tx.prepare_cached(op.table.upsert_sql())?.execute(params![op.key, body])?,
                None => tx.prepare_cached(op.table.delete_sql())?.execute(params![op.key])?,
            };
        }
        tx.commit()?;
        Ok(())
    }

    fn page(&mut self, table: Table, after: &str, limit: usize) -> Result<Vec<(String, String)>> {
        let sql = format!("SELECT k, body FROM {} WHERE k > ?1 ORDER BY k LIMIT {limit}", table.name());
        let mut st = self.conn.prepare_cached(&sql)?;
        rows(&mut st, params![after])
    }

    fn get(&mut self, table: Table, key: &str) -> Result<Option<String>> {
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
        Ok(self.conn.query_row(&format!("SELECT max(k) FROM {}", table.name()), [], |r| r.get(0))?)
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
        let keys: Vec<String> = tx.prepare(&format!("SELECT k FROM {}", t.name()))?.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        let select = format!("SELECT body FROM {} WHERE k = ?1", t.name());
        for k in keys {
            let body: String = tx.query_row(&select, params![k], |r| r.get(0))?;
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
            tx.execute(t.delete_sql(), params![k])?;
            tx.execute(t.upsert_sql(), params![new_key, new.seal(&row_aad(t, &new_key), &plain)])?;
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
