//! The store on PostgreSQL (#17 item 1): `{"store": {"postgres": "<conninfo>"}}`.
//!
//! The same semantics as the embedded store, on one connection of the
//! maintained synchronous client (`postgres`), used by the committer thread
//! and lent to readers between commits:
//! - **Durable before acknowledged.** Each batch of the group commit is one
//!   transaction sent as one simple query (`BEGIN; DELETE …; INSERT …;
//!   COMMIT`): one round trip however many callers it holds. With
//!   `durable_sync` `"full"` (the default) no caller hears of a batch before
//!   the server flushed it (and, under Patroni with synchronous replication,
//!   before the synchronous standby did) — but the wait for the disk is not
//!   the committer's: it runs with `synchronous_commit = off`, and a second
//!   session, the flusher ([`PgFlusher`]), makes batches durable while the
//!   server executes the next one. `"normal"` has no flusher: a batch is
//!   acknowledged when committed (the server may lose its last commits if
//!   *it* crashes, as SQLite's NORMAL may on power loss).
//! - **Inserts that replace nothing.** A row is written as its final state in
//!   the batch, deleted then inserted; a key the batch puts first as new
//!   (`Op::fresh`: a table declared `WriteOnce`, such as the outbox and the
//!   request ids' answers, or a booking just made) is only inserted.
//! - **One leader per database, fenced** (#17 item 2). Exactly one engine
//!   acts on a database's pool at a time: the one holding the lease, the
//!   row `yilian_lease` (`epoch`, the holder's database session, and
//!   `expires_at` in the server's clock, so the engines' clocks never
//!   matter). An opener takes the lease, raising the epoch, when it has
//!   lapsed or when the session that held it is gone (the holder was
//!   killed, or closed: taken at once); otherwise it waits `LOCK_WAIT` and
//!   gets `STORE_LOCKED` (a standby retries). Every commit checks the
//!   lease's epoch *in the same transaction*: it locks the row for this
//!   epoch, unexpired (`SELECT 1/count(*) FROM (SELECT … FOR UPDATE)`,
//!   which fails the transaction when the row is not this leader's), and a
//!   commit a third of the lease after the last renewal renews it instead
//!   (an `UPDATE` of that row, then the same count); an idle committer
//!   renews it every third of its length. So a leader that
//!   lost the lease — paused past it (SIGSTOP, a long GC-like stall),
//!   partitioned, its session cut — can never commit again: its next commit
//!   or renewal fails, the store is poisoned with `NOT_LEADER`, and every
//!   call is refused. The row lock makes the check exact: a takeover waits
//!   for a commit in flight (which was then the leader's), and a commit
//!   after the takeover sees the new epoch.
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
//! `max(k)`, `left(body, n)`, `SELECT … FOR UPDATE` (in a subquery too),
//! `PREPARE` and `EXECUTE` (the lease's check), `ALTER TABLE … ALTER
//! COLUMN … SET STORAGE EXTERNAL` and `pg_attribute.attstorage` (the audit
//! trail's rows, see `store_log_rows_plain`), `now()`, `interval`
//! literals, `pg_backend_pid()`, `pg_stat_activity` (`pid`,
//! `backend_start`), `extract(epoch FROM …)`, `VACUUM FULL`, and the
//! settings `synchronous_commit` and `standard_conforming_strings`. No
//! `ON CONFLICT`, no arrays, no procedural code.

use super::{Backend, Op, Table};
use crate::error::{Error, ErrorCode, Result};
// The openGauss client when the feature `opengauss` is on (its API is
// rust-postgres's): it answers openGauss's sha256 challenge (#17 item 4).
#[cfg(feature = "opengauss")]
use opengauss as pg;
#[cfg(not(feature = "opengauss"))]
use postgres as pg;
use std::collections::HashMap;
use std::fmt::Write as _;

/// The lease row's key (one pool per database).
const LEASE_ROW: &str = "pool";

/// The `yilian_meta` row a flush writes (see [`PgFlusher`]).
const FLUSH_ROW: &str = "flush";

/// How long an opener waits for a lease held by a live leader before
/// `STORE_LOCKED` (a standby then retries).
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Rows per `INSERT` or `DELETE` statement, so no one statement is huge.
const ROWS_PER_STATEMENT: usize = 500;

pub(crate) struct PgBackend {
    client: pg::Client,
    /// The connection's settings, for the flusher's session.
    config: pg::Config,
    /// Whether a commit must be durable (`durable_sync` `"full"`).
    sync_full: bool,
    /// The lease's epoch this engine holds.
    epoch: i64,
    /// The lease's length.
    lease_ms: u64,
    /// `BEGIN` and the fence: renews the lease for this epoch and fails
    /// the transaction (division by zero) when it is not ours any more.
    fence: String,
    /// `BEGIN` and the fence without the renewal: locks the lease row of
    /// this epoch and fails the transaction when it is not ours any more.
    check: String,
    /// When a commit renews the lease again (a third of it after the last).
    renew_at: std::time::Instant,
}

/// Runs `f` on a thread of its own. The synchronous client drives its
/// connection with a runtime of its own, which may not be entered from a
/// thread already inside an async runtime (an async `main` opening an
/// engine, a reader on a runtime's thread); the committer, a plain thread,
/// calls the client directly. So only opening (sealing a plain store
/// included), reads and closing pay a thread start, where they are rare.
fn outside_runtime<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if std::thread::current().name().is_some_and(|n| n.starts_with(super::COMMITTER_THREAD)) {
        return f();
    }
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(r) => r,
        Err(p) => std::panic::resume_unwind(p),
    })
}

fn pg_error(what: &str, e: pg::Error) -> Error {
    // The server's message names no value of ours (we send none as a
    // parameter it would echo); the conninfo is never part of it.
    Error::storage(format!("PostgreSQL {what}: {e}"))
}

/// A commit or renewal that failed: `NOT_LEADER` when the fence did.
fn commit_error(what: &str, e: pg::Error, epoch: i64) -> Error {
    if e.code() == Some(&pg::error::SqlState::DIVISION_BY_ZERO) {
        return Error::with(
            ErrorCode::NotLeader,
            format!("this engine lost its lease on the PostgreSQL store (epoch {epoch}): another engine leads now; nothing more is committed here"),
            format!("本引擎已失去 PostgreSQL 存储的租约（第 {epoch} 任）：已由其他引擎主导，本引擎不再提交任何变更"),
        );
    }
    pg_error(what, e)
}

/// The lease row of `epoch`, unexpired.
fn ours(epoch: i64) -> String {
    format!("k = '{LEASE_ROW}' AND epoch = {epoch} AND expires_at > now()")
}

/// The name the check is prepared under in the committer's session.
const CHECK: &str = "yilian_check";

/// Locks the lease row of `epoch` and fails the transaction (division by
/// zero) when it is not ours any more.
fn check_sql(epoch: i64) -> String {
    format!("SELECT 1/count(*) FROM (SELECT epoch FROM yilian_lease WHERE {} FOR UPDATE) ours", ours(epoch))
}

/// `BEGIN`, then the lease renewed and checked for `epoch`; and `BEGIN`,
/// then the lease row locked and checked (see the module doc) by the
/// statement [`check_sql`] prepared as [`CHECK`].
fn fence_sql(epoch: i64, lease_ms: u64) -> (String, String) {
    let ours = ours(epoch);
    (
        format!(
            "BEGIN;UPDATE yilian_lease SET expires_at = now() + interval '{lease_ms} milliseconds' WHERE {ours};\
             SELECT 1/count(*) FROM yilian_lease WHERE {ours};"
        ),
        format!("BEGIN;EXECUTE {CHECK};"),
    )
}

/// Stores the rows of `Log` tables uncompressed (`STORAGE EXTERNAL`). A
/// batch's audit entries are one row, about 10 KB for 25 bookings and mostly
/// hashes: the server compressed it (pglz, to a third) on every commit, and
/// stored uncompressed the server spent a tenth less on a batch, at 250 more
/// bytes of WAL and table per booking (`durable_booking_pg`). Set once, when
/// the column is not so yet (a new store, or one written before): the
/// `ALTER` waits for the table's lock, which a leader's commit holds briefly.
fn store_log_rows_plain(client: &mut pg::Client, tables: &[Table]) -> Result<()> {
    for t in tables.iter().filter(|t| t.has(super::Flag::Log)) {
        let plain: bool = client
            .query_one("SELECT attstorage = 'e' FROM pg_attribute WHERE attrelid = $1::text::regclass AND attname = 'body'", &[&t.name()])
            .map_err(|e| pg_error("setup", e))?
            .get(0);
        if !plain {
            client.batch_execute(&format!("ALTER TABLE {} ALTER COLUMN body SET STORAGE EXTERNAL", t.name())).map_err(|e| pg_error("setup", e))?;
        }
    }
    Ok(())
}

/// This session's identity as `pg_stat_activity` shows it: its pid and its
/// start in microseconds (a pid is reused; a pid with its start is not).
const THIS_SESSION: &str = "SELECT pid::bigint, (extract(epoch FROM backend_start) * 1000000)::bigint FROM pg_stat_activity WHERE pid = pg_backend_pid()";

/// Takes the lease for this session, raising its epoch, when it is free:
/// lapsed, released, or held by a session that no longer exists. Waits up to
/// `LOCK_WAIT` for a live holder's lease, then `STORE_LOCKED`.
fn acquire(client: &mut pg::Client, lease_ms: u64) -> Result<i64> {
    let read = |e| pg_error("lease", e);
    let me = client.query_one(THIS_SESSION, &[]).map_err(read)?;
    let (my_pid, my_start): (i64, Option<i64>) = (me.get(0), me.get(1));
    let holder = format!("yilian {} pid {}", env!("CARGO_PKG_VERSION"), std::process::id());
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        let mut tx = client.transaction().map_err(read)?;
        let row = tx
            .query_one(&*format!("SELECT epoch, session_pid, session_start, expires_at <= now() FROM yilian_lease WHERE k = '{LEASE_ROW}' FOR UPDATE"), &[])
            .map_err(read)?;
        let (epoch, pid, start, lapsed): (i64, i64, i64, bool) = (row.get(0), row.get(1), row.get(2), row.get(3));
        // A session whose start is hidden (another user's, without
        // pg_read_all_stats) is matched by its pid alone.
        let alive = !lapsed
            && pid != 0
            && tx
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid::bigint = $1 \
                     AND (backend_start IS NULL OR (extract(epoch FROM backend_start) * 1000000)::bigint = $2)",
                    &[&pid, &start],
                )
                .map_err(read)?
                .get::<_, i64>(0)
                > 0;
        if !alive {
            let next = epoch.checked_add(1).ok_or_else(|| Error::storage("the lease's epoch is exhausted"))?;
            tx.execute(
                &*format!(
                    "UPDATE yilian_lease SET epoch = $1, holder = $2, session_pid = $3, session_start = $4, \
                     expires_at = now() + interval '{lease_ms} milliseconds' WHERE k = '{LEASE_ROW}'"
                ),
                &[&next, &holder, &my_pid, &my_start.unwrap_or(0)],
            )
            .map_err(read)?;
            tx.commit().map_err(read)?;
            return Ok(next);
        }
        drop(tx); // rolls back: the row's lock is released while we wait
        if std::time::Instant::now() >= deadline {
            return Err(Error::with(
                ErrorCode::StoreLocked,
                format!("the PostgreSQL store is led by another engine (lease epoch {epoch}); this one may wait as its standby"),
                format!("该 PostgreSQL 存储正由其他引擎主导（租约第 {epoch} 任）；本引擎可作为备用引擎等待接管"),
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

impl PgBackend {
    pub(crate) fn connect(conninfo: &str, sync_full: bool, lease_ms: u64, tables: &[Table]) -> Result<PgBackend> {
        outside_runtime(|| PgBackend::connect_here(conninfo, sync_full, lease_ms, tables))
    }

    fn connect_here(conninfo: &str, sync_full: bool, lease_ms: u64, tables: &[Table]) -> Result<PgBackend> {
        let config: pg::Config = conninfo.parse().map_err(|e| {
            Error::with(
                ErrorCode::InvalidConfig,
                format!("config `store.postgres`: not a libpq conninfo or postgres:// URL ({e})"),
                "配置项 `store.postgres` 无效：不是 libpq 连接串或 postgres:// 地址",
            )
        })?;
        let mut client = config.connect(pg::NoTls).map_err(|e| pg_error("connection failed", e))?;
        // Durable while opening (the lease taken, plain rows sealed); the
        // committer's session then leaves the wait for the disk to its
        // flusher (`flusher`).
        let sync = if sync_full { "on" } else { "off" };
        let mut ddl = format!("SET synchronous_commit = {sync}; SET standard_conforming_strings = on;");
        ddl.push_str("CREATE TABLE IF NOT EXISTS yilian_meta (k TEXT COLLATE \"C\" PRIMARY KEY, v TEXT NOT NULL);");
        ddl.push_str(
            "CREATE TABLE IF NOT EXISTS yilian_lease (k TEXT PRIMARY KEY, epoch BIGINT NOT NULL, holder TEXT NOT NULL, \
             session_pid BIGINT NOT NULL, session_start BIGINT NOT NULL, expires_at TIMESTAMP WITH TIME ZONE NOT NULL);",
        );
        let _ = write!(
            ddl,
            "INSERT INTO yilian_lease (k, epoch, holder, session_pid, session_start, expires_at) \
             SELECT '{LEASE_ROW}', 0, '', 0, 0, now() WHERE NOT EXISTS (SELECT 1 FROM yilian_lease WHERE k = '{LEASE_ROW}');"
        );
        let _ = write!(ddl, "INSERT INTO yilian_meta (k, v) SELECT '{FLUSH_ROW}', '0' WHERE NOT EXISTS (SELECT 1 FROM yilian_meta WHERE k = '{FLUSH_ROW}');");
        for t in tables {
            let _ = write!(ddl, "CREATE TABLE IF NOT EXISTS {} (k TEXT COLLATE \"C\" PRIMARY KEY, body TEXT NOT NULL);", t.name());
        }
        // Two engines starting at once may race on the same `CREATE TABLE
        // IF NOT EXISTS` (a unique violation in the catalog) or the lease
        // row's insert: the loser runs it again and finds them made.
        let mut tries = 0;
        while let Err(e) = client.batch_execute(&ddl) {
            tries += 1;
            if tries == 3 {
                return Err(pg_error("setup", e));
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        store_log_rows_plain(&mut client, tables)?;
        let epoch = acquire(&mut client, lease_ms)?;
        let (fence, check) = fence_sql(epoch, lease_ms);
        // The check is planned once for the session: planning it took the
        // server about 50 µs of every batch (a twentieth of it).
        client.batch_execute(&format!("PREPARE {CHECK} AS {}", check_sql(epoch))).map_err(|e| pg_error("setup", e))?;
        let renew_at = std::time::Instant::now();
        Ok(PgBackend { client, config, sync_full, epoch, lease_ms, fence, check, renew_at })
    }

    /// One fenced transaction (`fence` … `COMMIT`) as one simple query.
    fn run_fenced(&mut self, sql: &str) -> Result<()> {
        let (client, epoch) = (&mut self.client, self.epoch);
        outside_runtime(|| match client.batch_execute(sql) {
            Ok(()) => Ok(()),
            Err(e) => {
                // Leave the session usable for reads; the store is poisoned anyway.
                let _ = client.batch_execute("ROLLBACK");
                Err(commit_error("commit failed", e, epoch))
            }
        })
    }

    fn rows(&mut self, sql: &str, params: &[&(dyn pg::types::ToSql + Sync)]) -> Result<Vec<(String, String)>> {
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
/// later op on a key wins), deleted then inserted — or only inserted when
/// the key's first op in the batch is a fresh put (`Op::fresh`: the key is
/// not in the database, so there is nothing to delete).
fn commit_sql(fence: &str, ops: &[Op<'_>]) -> String {
    // Per key: its final body, and whether it was absent before the batch.
    let mut order: Vec<(Table, &str)> = Vec::new();
    let mut last: HashMap<(&str, &str), (Option<&str>, bool)> = HashMap::with_capacity(ops.len());
    for op in ops {
        let body = op.body.as_deref();
        match last.entry((op.table.name(), &op.key)) {
            std::collections::hash_map::Entry::Occupied(mut e) => e.get_mut().0 = body,
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert((body, op.fresh && body.is_some()));
                order.push((op.table, &op.key));
            }
        }
    }
    // Each table's rows: key, final body (`None`: deleted), absent before.
    type Rows<'a> = Vec<(&'a str, Option<&'a str>, bool)>;
    let mut by_table: Vec<(Table, Rows<'_>)> = Vec::new();
    for (t, k) in order {
        let (body, absent) = last[&(t.name(), k)];
        match by_table.iter_mut().find(|(bt, _)| *bt == t) {
            Some((_, rows)) => rows.push((k, body, absent)),
            None => by_table.push((t, vec![(k, body, absent)])),
        }
    }
    let size: usize = ops.iter().map(|o| o.key.len() + o.body.as_ref().map_or(0, |b| b.len()) + 8).sum();
    let mut sql = String::with_capacity(size * 2 + fence.len() + 16);
    sql.push_str(fence);
    for (t, rows) in &by_table {
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let mut first = true;
            for (k, _, _) in chunk.iter().filter(|(_, _, absent)| !absent) {
                if first {
                    let _ = write!(sql, "DELETE FROM {} WHERE k IN (", t.name());
                    first = false;
                } else {
                    sql.push(',');
                }
                literal(&mut sql, k);
            }
            if !first {
                sql.push_str(");");
            }
            let mut first = true;
            for (k, body, _) in chunk {
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

/// The committer's second session (see `Backend::flusher`). The
/// committer's own session runs with `synchronous_commit = off`: its
/// `COMMIT` returns once the transaction is committed and visible, before
/// the server flushed its WAL, so the server executes the next batch while
/// the last one is written. A flush is a transaction of this session that
/// writes one row (`yilian_meta` `flush`) with `synchronous_commit = on`:
/// its `COMMIT` returns after the server flushed the WAL up to its own
/// commit record (and, with synchronous replication, after the synchronous
/// standby did), which every commit that returned before it began precedes.
/// The store acknowledges a batch only after such a flush. A server that
/// crashes in between loses only batches no caller was told of; an engine
/// that takes over flushes them with its own first commit if they survived.
/// Fencing is unchanged: each batch renews and checks the lease in its own
/// transaction, on the committer's session (the flush touches no lease row,
/// so it never waits for a batch, nor a batch for it).
struct PgFlusher {
    client: pg::Client,
}

impl super::Flusher for PgFlusher {
    fn flush(&mut self) -> Result<()> {
        let client = &mut self.client;
        let sql = format!("UPDATE yilian_meta SET v = '1' WHERE k = '{FLUSH_ROW}'");
        outside_runtime(|| client.batch_execute(&sql)).map_err(|e| pg_error("flush failed", e))
    }
}

impl Drop for PgBackend {
    fn drop(&mut self) {
        // Released in the session, before it ends: the next opener (this
        // process reopening, or a standby) takes it at once. Only this
        // epoch's: a deposed leader releases nothing.
        let client = &mut self.client;
        let sql = format!("UPDATE yilian_lease SET session_pid = 0, expires_at = now() WHERE k = '{LEASE_ROW}' AND epoch = {}", self.epoch);
        let _ = outside_runtime(|| client.batch_execute(&sql));
    }
}

impl Backend for PgBackend {
    fn commit(&mut self, ops: &[Op<'_>]) -> Result<()> {
        let now = std::time::Instant::now();
        let renew = now >= self.renew_at;
        let sql = commit_sql(if renew { &self.fence } else { &self.check }, ops);
        self.run_fenced(&sql)?;
        if renew {
            self.renew_at = now + std::time::Duration::from_millis(self.lease_ms / 3);
        }
        Ok(())
    }

    fn renew_every(&self) -> Option<std::time::Duration> {
        Some(std::time::Duration::from_millis(self.lease_ms / 3))
    }

    fn renew(&mut self) -> Result<()> {
        let now = std::time::Instant::now();
        let sql = format!("{}COMMIT;", self.fence);
        self.run_fenced(&sql)?;
        self.renew_at = now + std::time::Duration::from_millis(self.lease_ms / 3);
        Ok(())
    }

    fn lease_epoch(&self) -> Option<u64> {
        u64::try_from(self.epoch).ok()
    }

    fn flusher(&mut self) -> Result<Option<Box<dyn super::Flusher>>> {
        if !self.sync_full {
            return Ok(None);
        }
        let (config, client) = (&self.config, &mut self.client);
        outside_runtime(|| {
            let mut flush = config.connect(pg::NoTls).map_err(|e| pg_error("connection failed", e))?;
            flush.batch_execute("SET synchronous_commit = on").map_err(|e| pg_error("setup", e))?;
            client.batch_execute("SET synchronous_commit = off").map_err(|e| pg_error("setup", e))?;
            Ok(Some(Box::new(PgFlusher { client: flush }) as Box<dyn super::Flusher>))
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
        let row = outside_runtime(|| client.query_opt(&*sql, &[&key.as_ref()])).map_err(|e| pg_error("read", e))?;
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
        let row = outside_runtime(|| client.query_one(&*sql, &[])).map_err(|e| pg_error("read", e))?;
        Ok(row.get::<_, Option<String>>(0).map(dec))
    }

    fn database(&mut self) -> Result<super::Database> {
        let client = &mut self.client;
        let row = outside_runtime(|| client.query_one("SELECT current_setting('server_version')", &[])).map_err(|e| pg_error("read", e))?;
        Ok(super::Database { kind: "postgres", version: row.get(0) })
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
            Op { table: A, key: Cow::Borrowed("k1"), body: Some(Cow::Borrowed("{\"n\":\"O'Brien\"}")), fresh: false },
            Op { table: B, key: Cow::Borrowed("x"), body: None, fresh: false },
            Op { table: A, key: Cow::Borrowed("k1"), body: Some(Cow::Borrowed("{\"n\":2}")), fresh: false },
            Op { table: A, key: Cow::Borrowed("k2"), body: Some(Cow::Borrowed("'; DROP TABLE t_a; --")), fresh: false },
        ];
        let sql = commit_sql("BEGIN;", &ops);
        assert_eq!(
            sql,
            "BEGIN;DELETE FROM t_a WHERE k IN ('k1','k2');INSERT INTO t_a (k, body) VALUES ('k1','{\"n\":2}'),('k2','''; DROP TABLE t_a; --');\
             DELETE FROM t_b WHERE k IN ('x');COMMIT;"
        );
    }

    #[test]
    fn a_key_first_put_fresh_in_a_batch_is_inserted_without_a_delete_and_any_other_is_replaced() {
        let op = |table, key: &'static str, body: Option<&'static str>, fresh| Op { table, key: Cow::Borrowed(key), body: body.map(Cow::Borrowed), fresh };
        let ops = [
            op(A, "new", Some("1"), true),
            op(A, "new", Some("2"), false), // changed again in the same batch: still absent before it
            op(A, "old", Some("3"), false),
            op(A, "gone", Some("4"), true),
            op(A, "gone", None, false), // made and deleted in one batch: nothing to write
            op(B, "resealed", None, false),
            op(B, "resealed", Some("5"), true), // a fresh put after a delete replaces
        ];
        assert_eq!(
            commit_sql("BEGIN;", &ops),
            "BEGIN;DELETE FROM t_a WHERE k IN ('old');INSERT INTO t_a (k, body) VALUES ('new','2'),('old','3');\
             DELETE FROM t_b WHERE k IN ('resealed');INSERT INTO t_b (k, body) VALUES ('resealed','5');COMMIT;"
        );
    }

    #[test]
    fn a_nul_in_a_key_is_stored_and_read_back_as_it_was() {
        for s in ["plain", "a\0b", "\u{1}", "\u{1}0", "\0\u{1}\0", "病人\0甲", ""] {
            assert_eq!(dec(enc(s).into_owned()), s, "{s:?}");
            assert!(!enc(s).contains('\0'));
        }
        assert!(matches!(enc("B000001"), std::borrow::Cow::Borrowed(_)), "an ordinary key is not copied");
        let ops = [Op { table: A, key: Cow::Borrowed("a\0b"), body: Some(Cow::Borrowed("{}")), fresh: false }];
        assert!(!commit_sql("BEGIN;", &ops).contains('\0'));
    }
}
