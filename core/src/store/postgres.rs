//! The store on PostgreSQL (#17 item 1): `{"store": {"postgres": "<conninfo>"}}`.
//!
//! The same semantics as the embedded store, on one connection of the
//! maintained synchronous client (`postgres`), used by the committer thread
//! and lent to readers between commits:
//! - **Durable before acknowledged.** Each batch of the group commit is one
//!   transaction sent as one simple query (`BEGIN; DELETE …; INSERT …;
//!   COMMIT`): one round trip however many callers it holds. With
//!   `durable_sync` `"full"` (the default) the session runs with
//!   `synchronous_commit = on`, so `COMMIT` returns after the server flushed
//!   its WAL (and, under Patroni with synchronous replication, after the
//!   synchronous standby did); `"normal"` sets it `off` (the server may lose
//!   its last commits if *it* crashes, as SQLite's NORMAL may on power loss).
//! - **One writer per database.** The connection holds a session-level
//!   advisory lock (`pg_try_advisory_lock`) from open to close: a second
//!   engine on the same database gets `STORE_LOCKED`. Commits and reads go
//!   through that same session, so an engine whose session ended (network
//!   cut, server restart) cannot commit: its next commit fails and the store
//!   is poisoned, as on any storage error; reopening recovers the committed
//!   state.
//! - **Rows.** Each table is `(k TEXT COLLATE "C" PRIMARY KEY, body TEXT NOT
//!   NULL)`: keys in byte order, as SQLite compares them, so paging by key
//!   reads the same. Bodies are JSON text, or sealed (SM4-GCM, base64) when
//!   `encryption_key` is set: the database never holds personal data in the
//!   clear.
//! - **Scrub.** Sealing a store written without a key rewrites every table
//!   with `VACUUM FULL`. PostgreSQL's WAL segments, archives and replicas
//!   still hold the plain rows until they are recycled: seal before the
//!   first personal row is written, or rely on the database's own
//!   encryption at rest (openGauss/KingbaseES TDE, disk encryption).
//!
//! SQL used, kept to what PostgreSQL ≥ 9.5, openGauss, KingbaseES and HighGo
//! accept: `CREATE TABLE IF NOT EXISTS`, `COLLATE "C"`, `DELETE … WHERE k IN
//! (…)`, multi-row `INSERT … VALUES`, `SELECT … ORDER BY k LIMIT n`,
//! `max(k)`, `left(body, n)`, `pg_try_advisory_lock`, `VACUUM FULL`, and the
//! settings `synchronous_commit` and `standard_conforming_strings`. No
//! `ON CONFLICT`, no arrays, no procedural code.

use super::{Backend, Op, Table};
use crate::error::{Error, ErrorCode, Result};
use std::collections::HashMap;
use std::fmt::Write as _;

/// The advisory lock key every yilian store takes on its database ("yilian").
const LOCK_KEY: i64 = 0x0000_7969_6c69_616e;

/// How long an opener waits for a lock held by another session.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Rows per `INSERT` or `DELETE` statement, so no one statement is huge.
const ROWS_PER_STATEMENT: usize = 500;

pub(crate) struct PgBackend {
    client: postgres::Client,
}

/// Runs `f` on a thread of its own. The synchronous client drives its
/// connection with a runtime of its own, which may not be entered from a
/// thread already inside an async runtime (an async `main` opening an
/// engine, a reader on a runtime's thread); the committer, a plain thread,
/// calls the client directly. So only opening (sealing a plain store
/// included), reads and closing pay a thread start, where they are rare.
fn outside_runtime<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if std::thread::current().name() == Some(super::COMMITTER_THREAD) {
        return f();
    }
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(r) => r,
        Err(p) => std::panic::resume_unwind(p),
    })
}

fn pg_error(what: &str, e: postgres::Error) -> Error {
    // The server's message names no value of ours (we send none as a
    // parameter it would echo); the conninfo is never part of it.
    Error::storage(format!("PostgreSQL {what}: {e}"))
}

impl PgBackend {
    pub(crate) fn connect(conninfo: &str, sync_full: bool, tables: &[Table]) -> Result<PgBackend> {
        outside_runtime(|| PgBackend::connect_here(conninfo, sync_full, tables))
    }

    fn connect_here(conninfo: &str, sync_full: bool, tables: &[Table]) -> Result<PgBackend> {
        let config: postgres::Config = conninfo.parse().map_err(|e| {
            Error::with(
                ErrorCode::InvalidConfig,
                format!("config `store.postgres`: not a libpq conninfo or postgres:// URL ({e})"),
                "配置项 `store.postgres` 无效：不是 libpq 连接串或 postgres:// 地址",
            )
        })?;
        let mut client = config.connect(postgres::NoTls).map_err(|e| pg_error("connection failed", e))?;
        // A holder that just died (killed, or closed a moment ago) leaves its
        // session, and so the lock, until the server has seen it go: a
        // short wait tells that from an engine that is alive.
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        let locked = loop {
            let locked: bool = client.query_one("SELECT pg_try_advisory_lock($1)", &[&LOCK_KEY]).map_err(|e| pg_error("lock", e))?.get(0);
            if locked || std::time::Instant::now() >= deadline {
                break locked;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        if !locked {
            return Err(Error::with(ErrorCode::StoreLocked, "the PostgreSQL database is in use by another engine", "该 PostgreSQL 数据库正被其他引擎使用"));
        }
        let sync = if sync_full { "on" } else { "off" };
        let mut ddl = format!("SET synchronous_commit = {sync}; SET standard_conforming_strings = on;");
        ddl.push_str("CREATE TABLE IF NOT EXISTS yilian_meta (k TEXT COLLATE \"C\" PRIMARY KEY, v TEXT NOT NULL);");
        for t in tables {
            let _ = write!(ddl, "CREATE TABLE IF NOT EXISTS {} (k TEXT COLLATE \"C\" PRIMARY KEY, body TEXT NOT NULL);", t.name());
        }
        client.batch_execute(&ddl).map_err(|e| pg_error("setup", e))?;
        Ok(PgBackend { client })
    }

    fn rows(&mut self, sql: &str, params: &[&(dyn postgres::types::ToSql + Sync)]) -> Result<Vec<(String, String)>> {
        let client = &mut self.client;
        let rows = outside_runtime(|| client.query(sql, params)).map_err(|e| pg_error("read", e))?;
        Ok(rows.iter().map(|r| (dec(r.get::<_, String>(0)), dec(r.get::<_, String>(1)))).collect())
    }
}

/// Text as PostgreSQL stores it. PostgreSQL text cannot hold NUL, which a
/// caller's id may carry (a JSON string may hold `\u0000`), so NUL is
/// written as SOH `0` and SOH itself as SOH SOH: a bijection that leaves
/// every other string as it is (keys in the same order), so no input can
/// fail a commit and poison the store.
const ESC: char = '\u{1}';

fn enc(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains(['\0', ESC]) {
        return s.into();
    }
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        match c {
            '\0' => {
                out.push(ESC);
                out.push('0');
            }
            ESC => {
                out.push(ESC);
                out.push(ESC);
            }
            c => out.push(c),
        }
    }
    out.into()
}

fn dec(s: String) -> String {
    if !s.contains(ESC) {
        return s;
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (c, c == ESC) {
            (_, true) => match chars.next() {
                Some('0') => out.push('\0'),
                Some(other) => out.push(other),
                None => out.push(ESC),
            },
            (c, false) => out.push(c),
        }
    }
    out
}

/// `s` (encoded) as a standard SQL string literal (`standard_conforming_strings`
/// is on: only `'` is special).
fn literal(out: &mut String, s: &str) {
    out.push('\'');
    for (i, part) in enc(s).split('\'').enumerate() {
        if i > 0 {
            out.push_str("''");
        }
        out.push_str(part);
    }
    out.push('\'');
}

/// The transaction for `ops`: per table, the final state of each key (a
/// later op on a key wins), deleted then inserted.
fn commit_sql(ops: &[Op<'_>]) -> String {
    let mut order: Vec<(Table, &str)> = Vec::new();
    let mut last: HashMap<(&str, &str), Option<&str>> = HashMap::with_capacity(ops.len());
    for op in ops {
        if last.insert((op.table.name(), &op.key), op.body.as_deref()).is_none() {
            order.push((op.table, &op.key));
        }
    }
    // Each table's rows: key and final body (`None`: deleted).
    type Rows<'a> = Vec<(&'a str, Option<&'a str>)>;
    let mut by_table: Vec<(Table, Rows<'_>)> = Vec::new();
    for (t, k) in order {
        let body = last[&(t.name(), k)];
        match by_table.iter_mut().find(|(bt, _)| *bt == t) {
            Some((_, rows)) => rows.push((k, body)),
            None => by_table.push((t, vec![(k, body)])),
        }
    }
    let size: usize = ops.iter().map(|o| o.key.len() + o.body.as_ref().map_or(0, |b| b.len()) + 8).sum();
    let mut sql = String::with_capacity(size * 2 + 64);
    sql.push_str("BEGIN;");
    for (t, rows) in &by_table {
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let _ = write!(sql, "DELETE FROM {} WHERE k IN (", t.name());
            for (i, (k, _)) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push(',');
                }
                literal(&mut sql, k);
            }
            sql.push_str(");");
            let mut first = true;
            for (k, body) in chunk {
                let Some(body) = body else { continue };
                if first {
                    let _ = write!(sql, "INSERT INTO {} (k, body) VALUES ", t.name());
                    first = false;
                } else {
                    sql.push(',');
                }
                sql.push('(');
                literal(&mut sql, k);
                sql.push(',');
                literal(&mut sql, body);
                sql.push(')');
            }
            if !first {
                sql.push(';');
            }
        }
    }
    sql.push_str("COMMIT;");
    sql
}

impl Drop for PgBackend {
    fn drop(&mut self) {
        // Released in the session, before it ends: the next opener (this
        // process reopening, or a standby) finds it free at once.
        let client = &mut self.client;
        let _ = outside_runtime(|| client.execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY]));
    }
}

impl Backend for PgBackend {
    fn commit(&mut self, ops: &[Op<'_>]) -> Result<()> {
        let sql = commit_sql(ops);
        let client = &mut self.client;
        outside_runtime(|| match client.batch_execute(&sql) {
            Ok(()) => Ok(()),
            Err(e) => {
                // Leave the session usable for reads; the store is poisoned anyway.
                let _ = client.batch_execute("ROLLBACK");
                Err(pg_error("commit failed", e))
            }
        })
    }

    fn page(&mut self, table: Table, after: &str, limit: usize) -> Result<Vec<(String, String)>> {
        let sql = format!("SELECT k, body FROM {} WHERE k > $1 ORDER BY k LIMIT {limit}", table.name());
        self.rows(&sql, &[&enc(after).as_ref()])
    }

    fn get(&mut self, table: Table, key: &str) -> Result<Option<String>> {
        let sql = format!("SELECT body FROM {} WHERE k = $1", table.name());
        let client = &mut self.client;
        let key = enc(key);
        let row = outside_runtime(|| client.query_opt(&sql, &[&key.as_ref()])).map_err(|e| pg_error("read", e))?;
        Ok(row.map(|r| dec(r.get::<_, String>(0))))
    }

    fn all(&mut self, table: Table) -> Result<Vec<(String, String)>> {
        self.rows(&format!("SELECT k, body FROM {}", table.name()), &[])
    }

    fn not_prefixed(&mut self, table: Table, prefix: &str) -> Result<Vec<(String, String)>> {
        let sql = format!("SELECT k, body FROM {} WHERE left(body, {}) <> $1", table.name(), prefix.chars().count());
        self.rows(&sql, &[&prefix])
    }

    fn max_key(&mut self, table: Table) -> Result<Option<String>> {
        let client = &mut self.client;
        let sql = format!("SELECT max(k) FROM {}", table.name());
        let row = outside_runtime(|| client.query_one(&sql, &[])).map_err(|e| pg_error("read", e))?;
        Ok(row.get::<_, Option<String>>(0).map(dec))
    }

    fn is_scrubbed(&mut self) -> Result<bool> {
        let client = &mut self.client;
        let row = outside_runtime(|| client.query_opt("SELECT v FROM yilian_meta WHERE k = 'scrubbed'", &[])).map_err(|e| pg_error("read", e))?;
        Ok(row.is_some())
    }

    fn scrub(&mut self) -> Result<()> {
        let client = &mut self.client;
        outside_runtime(|| {
            let tables: Vec<String> = client
                .query("SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema()", &[])
                .map_err(|e| pg_error("read", e))?
                .iter()
                .map(|r| r.get(0))
                .collect();
            for t in tables {
                // One statement per query: VACUUM cannot run in a transaction block.
                client.batch_execute(&format!("VACUUM FULL \"{}\"", t.replace('"', "\"\""))).map_err(|e| pg_error("vacuum", e))?;
            }
            client.batch_execute("INSERT INTO yilian_meta (k, v) VALUES ('scrubbed', '1')").map_err(|e| pg_error("scrub", e))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    crate::store::table!(A = "t_a");
    crate::store::table!(B = "t_b");

    #[test]
    fn a_batch_is_one_transaction_with_the_last_state_of_each_key_and_quotes_doubled() {
        let ops = [
            Op { table: A, key: Cow::Borrowed("k1"), body: Some(Cow::Borrowed("{\"n\":\"O'Brien\"}")) },
            Op { table: B, key: Cow::Borrowed("x"), body: None },
            Op { table: A, key: Cow::Borrowed("k1"), body: Some(Cow::Borrowed("{\"n\":2}")) },
            Op { table: A, key: Cow::Borrowed("k2"), body: Some(Cow::Borrowed("'; DROP TABLE t_a; --")) },
        ];
        let sql = commit_sql(&ops);
        assert_eq!(
            sql,
            "BEGIN;DELETE FROM t_a WHERE k IN ('k1','k2');INSERT INTO t_a (k, body) VALUES ('k1','{\"n\":2}'),('k2','''; DROP TABLE t_a; --');\
             DELETE FROM t_b WHERE k IN ('x');COMMIT;"
        );
    }

    #[test]
    fn a_nul_in_a_key_is_stored_and_read_back_as_it_was() {
        for s in ["plain", "a\0b", "\u{1}", "\u{1}0", "\0\u{1}\0", "病人\0甲", ""] {
            assert_eq!(dec(enc(s).into_owned()), s, "{s:?}");
            assert!(!enc(s).contains('\0'));
        }
        assert!(matches!(enc("B000001"), std::borrow::Cow::Borrowed(_)), "an ordinary key is not copied");
        let ops = [Op { table: A, key: Cow::Borrowed("a\0b"), body: Some(Cow::Borrowed("{}")) }];
        assert!(!commit_sql(&ops).contains('\0'));
    }
}
