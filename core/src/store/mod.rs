//! The durable embedded store: SQLite (bundled) in WAL mode, written by one
//! group-commit thread.
//!
//! Callers change the in-memory state under their own locks, hand the rows
//! they touched to the committer while still holding those locks (so rows of
//! one slot reach disk in the order they changed), then wait, without locks,
//! until the batch holding their rows has committed. One fsync covers every
//! caller in the batch. If a commit fails the store is poisoned: every waiter
//! and every later call gets `STORAGE_ERROR`, and reopening the directory
//! recovers the last committed state.
//!
//! **One writer per store** (#16 item 5). Two locks guard a data directory,
//! and an opener must win both or gets `STORE_LOCKED`:
//! - `yilian.lock`, held with `flock` until close: it refuses a second engine
//!   at once and is what operators see. Deleting it (or a copy of the
//!   directory tool that does) would let a second opener in on its own.
//! - the database's own exclusivity: the one connection is opened with
//!   `PRAGMA locking_mode=EXCLUSIVE` *before* WAL is first touched, so SQLite
//!   keeps the WAL index in heap memory (no `-shm`) and holds an exclusive
//!   POSIX lock on `yilian.sqlite3` itself from open to close (taken at once
//!   by a `BEGIN EXCLUSIVE` at open). No other connection, in this process or
//!   another, can then read or write the database, whatever happens to the
//!   lock file; the kernel drops the lock when the process dies, so a crash
//!   never leaves the store locked.
//!
//! Because of that, every read after open (`scan_after`, `get`) goes through
//! the same connection as the committer, behind a mutex: the committer holds
//! it for one transaction at a time, a reader for one page of rows. POSIX
//! locks are per process and released when the process closes *any*
//! descriptor of the file, so nothing in the process may open
//! `yilian.sqlite3` by other means while the store is open.
//!
//! **No plaintext left behind** (#16 item 6). The connection runs with
//! `PRAGMA secure_delete=ON` (deleted content is overwritten with zeros).
//! Opening a store written without a key with an `encryption_key` seals
//! every plain row in one transaction, then `VACUUM`s and checkpoints the WAL
//! with `TRUNCATE`, so no freed page and no WAL frame keeps the plain text;
//! a bit of `PRAGMA user_version` records it, so a store sealed before
//! scrubbing existed is scrubbed once on its next keyed open.
//! [`rekey`] re-encrypts every row under a new key the same way.
//!
//! Lock order: a queue or done lock is never held while the connection mutex
//! is taken, and the connection mutex is a leaf (nothing else is locked while
//! it is held). A flusher's hand-off (`with_flusher`) is a leaf too: neither
//! thread takes another lock, nor flushes, while holding it.
//!
//! A backend may make commits durable on a second session
//! ([`Backend::flusher`], PostgreSQL): the committer then hands each batch
//! it committed to a flusher thread, which acknowledges every batch
//! committed before its flush began once that flush returns.

use crate::crypto::{RowCipher, SEALED_PREFIX};
use crate::error::{Error, ErrorCode, Result};
use parking_lot::{Condvar, Mutex};
use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

#[cfg(feature = "postgres")]
mod postgres;
mod sqlite;

pub use sqlite::rekey;

/// One row change of a commit as the database stores it: the key as stored
/// (a keyed hash for personal keys in a sealed store), the body sealed when
/// the store is; `None` deletes.
pub(crate) struct Op<'a> {
    pub table: Table,
    pub key: Cow<'a, str>,
    pub body: Option<Cow<'a, str>>,
    /// A put of a key not in the database (see [`Write::fresh`]): a backend
    /// may insert it without replacing (PostgreSQL does; SQLite's upsert
    /// costs the same either way).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub fresh: bool,
}

/// What a database does for the store; batching, sealing and the audit
/// chain are the store's own, the same on every database. Every method runs
/// on the one connection, behind the store's connection mutex.
pub(crate) trait Backend: Send {
    /// Applies `ops` in one transaction, in order (a later op on a key wins),
    /// durably committed before it returns — or, once [`flusher`](Self::flusher)
    /// gave a flusher, committed (visible, in order) but durable only after
    /// that flusher's next [`Flusher::flush`].
    fn commit(&mut self, ops: &[Op<'_>]) -> Result<()>;
    /// Up to `limit` rows of `table` keyed above `after`, in the bytes' order of keys.
    fn page(&mut self, table: Table, after: &str, limit: usize) -> Result<Vec<(String, String)>>;
    /// One row's body as stored.
    fn get(&mut self, table: Table, key: &str) -> Result<Option<String>>;
    /// Every row of `table` (to load it on open).
    fn all(&mut self, table: Table) -> Result<Vec<(String, String)>>;
    /// The rows of `table` whose body does not begin with `prefix` (plain rows).
    fn not_prefixed(&mut self, table: Table, prefix: &str) -> Result<Vec<(String, String)>>;
    /// The greatest key of `table`.
    fn max_key(&mut self, table: Table) -> Result<Option<String>>;
    /// Which database this is and its version, as the database reports it
    /// (SQLite: the library linked into yilian; PostgreSQL: the server's).
    fn database(&mut self) -> Result<Database>;
    /// Whether every row was sealed and the files then scrubbed.
    fn is_scrubbed(&mut self) -> Result<bool>;
    /// Rewrites the database so no copy of an overwritten or deleted row
    /// stays where the database can remove it, and records that it did.
    fn scrub(&mut self) -> Result<()>;
    /// How often an idle committer calls [`renew`](Self::renew) (a shared
    /// database's lease); `None`: never.
    fn renew_every(&self) -> Option<std::time::Duration> {
        None
    }
    /// Renews this engine's hold on the database; `NOT_LEADER` when it is lost.
    fn renew(&mut self) -> Result<()> {
        Ok(())
    }
    /// The epoch of the lease this engine leads a shared database under.
    fn lease_epoch(&self) -> Option<u64> {
        None
    }
    /// A second session that makes commits durable, so a commit's wait for
    /// the disk overlaps the next commit's execution (PostgreSQL, where the
    /// server runs one session's statements one at a time). Asked once,
    /// when the committer starts; from then on `commit` no longer waits for
    /// the disk. `None` (SQLite, or no durability asked): `commit` is durable.
    fn flusher(&mut self) -> Result<Option<Box<dyn Flusher>>> {
        Ok(None)
    }
}

/// The database under a store: `engine-info` shows it, so a host can see
/// which SQLite yilian runs on (its own, whatever the host links) or which
/// server it talks to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Database {
    /// `sqlite` or `postgres` (any server speaking its protocol).
    pub kind: &'static str,
    pub version: String,
}

/// See [`Backend::flusher`].
pub(crate) trait Flusher: Send {
    /// Returns once every transaction the backend committed before this call
    /// began is durable (on disk, and on a synchronous replica if the
    /// database has one).
    fn flush(&mut self) -> Result<()>;
}

/// The committer's thread name, and the prefix of its flusher's (a
/// PostgreSQL client may block on them directly).
const COMMITTER_THREAD: &str = "yilian-commit";
const FLUSHER_THREAD: &str = "yilian-commit-flush";

/// A backend behind the store's connection mutex; `None` once closed.
type Conn = Arc<Mutex<Option<Box<dyn Backend>>>>;

/// How the store treats a table's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// Keys may be personal (a patient's id): a sealed store keys rows by a
    /// keyed hash, and the audit trail names the table without the key.
    PersonalKeys,
    /// The store's own bookkeeping (counters, cursors): not named in the audit trail.
    Bookkeeping,
    /// Append-only and numbered by the committer in commit order (the audit
    /// trail): never loaded on open, read with [`DurableStore::scan_after`].
    /// The PostgreSQL store keeps its rows uncompressed (`STORAGE EXTERNAL`:
    /// one large row per commit, compressed on every commit otherwise).
    Log,
    /// Large rows read one at a time when asked for (report documents):
    /// never loaded on open, read with [`DurableStore::get`].
    Lazy,
    /// Each key is put at most once (numbered by the domain from a counter
    /// that never goes back, e.g. the outbox's sequence; a row may later be
    /// deleted): a put is an insert, with nothing to replace. The
    /// PostgreSQL store then inserts without deleting first (the `DELETE`
    /// was a fifth of a booking's commit); a put of a key that exists fails
    /// the commit (a unique violation) rather than replace it silently.
    WriteOnce,
    /// Every key is a [`numbered_key`] (20 zero-padded digits of a number
    /// that fits an `i64`). The SQLite store keeps such a table by its
    /// number (`k INTEGER PRIMARY KEY`, the row's own id) instead of a
    /// text key in an index b-tree: rows are appended in key order, a full
    /// page splits off by itself instead of being rebalanced with its
    /// neighbours, and a commit of a dozen bookings rewrites about half
    /// the pages (7.5 WAL frames instead of 15). Keys read back as the
    /// same text. A table a store created before keeps its text keys.
    Numbered,
}

/// A table a domain declares ([`table!`]): each row is a JSON body under a
/// key. The store creates, loads and writes the tables it is opened with and
/// knows nothing else about them.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    name: &'static str,
    upsert_sql: &'static str,
    delete_sql: &'static str,
    flags: &'static [Flag],
}

impl PartialEq for Table {
    fn eq(&self, other: &Table) -> bool {
        std::ptr::eq(self.name, other.name) || self.name == other.name
    }
}
impl Eq for Table {}

impl Table {
    #[doc(hidden)]
    pub const fn declare(name: &'static str, upsert_sql: &'static str, delete_sql: &'static str, flags: &'static [Flag]) -> Table {
        Table { name, upsert_sql, delete_sql, flags }
    }
    pub fn name(self) -> &'static str {
        self.name
    }
    pub fn has(self, flag: Flag) -> bool {
        self.flags.contains(&flag)
    }
    /// SQLite's statements for this table (constants, see [`table!`]).
    pub(crate) fn upsert_sql(self) -> &'static str {
        self.upsert_sql
    }
    pub(crate) fn delete_sql(self) -> &'static str {
        self.delete_sql
    }
}

/// Declares a table: `table!(pub(crate) LAB = "lab");`,
/// `table!(pub(crate) PATIENTS = "patients", PersonalKeys);`. The committer's
/// statements are written once as constants (a statement built per row
/// with `format!` cost the committer as much as binding the row).
macro_rules! table {
    ($(#[$doc:meta])* $vis:vis $id:ident = $name:literal $(, $flag:ident)*) => {
        $(#[$doc])*
        $vis const $id: $crate::store::Table = $crate::store::Table::declare(
            $name,
            concat!("INSERT OR REPLACE INTO ", $name, "(k, body) VALUES (?1, ?2)"),
            concat!("DELETE FROM ", $name, " WHERE k = ?1"),
            &[$($crate::store::Flag::$flag),*],
        );
    };
}
pub(crate) use table;

/// `STORE_CORRUPT`: a row of `table` under `key` does not read back. A row
/// of a table with personal keys is not named (its key may be a patient's id).
pub fn corrupt_row(table: Table, key: &str, why: &str, why_zh: &str) -> Error {
    let key = if table.has(Flag::PersonalKeys) { "(personal key)" } else { key };
    let name = table.name();
    Error::with(ErrorCode::StoreCorrupt, format!("unreadable row {key} in table {name}: {why}"), format!("表 {name} 中的记录 {key} 无法读取：{why_zh}"))
}

/// A row's body as `T`, or [`corrupt_row`].
pub fn parse_row<T: serde::de::DeserializeOwned>(table: Table, key: &str, body: &str) -> Result<T> {
    serde_json::from_str(body).map_err(|e| corrupt_row(table, key, &e.to_string(), &crate::error::json_error_zh(&e)))
}

/// A numeric row key: the number in 20 zero-padded digits, so keys sort as
/// numbers. Written by hand: `format!("{:020}")` costs more than the rest of
/// a small row's key handling.
pub fn numbered_key(n: u64) -> String {
    let mut digits = [b'0'; 20];
    let mut n = n;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    String::from_utf8(digits.to_vec()).unwrap_or_default()
}

/// One row to upsert (`body: Some`) or delete (`body: None`).
#[derive(Debug, Clone)]
pub struct Write {
    pub table: Table,
    pub key: String,
    pub body: Option<String>,
    /// The key was never put before (see [`Write::put_new`]).
    pub fresh: bool,
}

impl Write {
    pub fn put(table: Table, key: impl Into<String>, body: &impl serde::Serialize) -> Write {
        // Serialising our own plain structs cannot fail.
        Write { table, key: key.into(), body: Some(serde_json::to_string(body).unwrap_or_default()), fresh: table.has(Flag::WriteOnce) }
    }
    /// A put of a key never put before (a new booking's id, from a counter
    /// that never goes back): as a put to a [`Flag::WriteOnce`] table, an
    /// insert with nothing to replace.
    pub fn put_new(table: Table, key: impl Into<String>, body: &impl serde::Serialize) -> Write {
        Write { fresh: true, ..Write::put(table, key, body) }
    }
    pub fn delete(table: Table, key: impl Into<String>) -> Write {
        Write { table, key: key.into(), body: None, fresh: false }
    }
}

/// Every row, read back on open.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub rows: Vec<(Table, String, String)>,
    /// Rows read in the clear although a cipher is configured (sealed on open).
    plain: Vec<(Table, String, String)>,
    /// The sequence number the next audit entry takes.
    pub next_audit_seq: u64,
    /// The hash the next audit entry chains from (`audit_chain::GENESIS` when no
    /// entry is hashed yet).
    pub audit_head: String,
    /// The greatest key of each [`Flag::Lazy`] table (its rows are not loaded).
    lazy_max: Vec<(Table, Option<String>)>,
}

impl Snapshot {
    pub fn of(&self, table: Table) -> impl Iterator<Item = (&str, &str)> {
        self.rows.iter().filter(move |r| r.0 == table).map(|r| (r.1.as_str(), r.2.as_str()))
    }
    /// The greatest key of a lazy table (numbered rows: the last number given).
    pub fn lazy_max_key(&self, table: Table) -> Option<&str> {
        self.lazy_max.iter().find(|(t, _)| *t == table).and_then(|(_, k)| k.as_deref())
    }
}

struct Queue {
    writes: Vec<Write>,
    last_ticket: u64,
    /// The number of the batch now filling (the committer takes it whole).
    batch: u64,
    shutdown: bool,
}

struct Done {
    committed: u64,
    failed: Option<Error>,
    /// The committer has exited (close): nothing queued later will reach disk.
    stopped: bool,
    /// Tasks awaiting a [`Durable`], with the ticket each waits for: woken
    /// (outside this lock) by the acknowledgement that covers them, or by a
    /// failure or close.
    wakers: Vec<(u64, std::task::Waker)>,
    /// What runs once a ticket is answered ([`DurableStore::on_durable`]).
    then: Vec<(u64, Then)>,
}

/// Run with a ticket's outcome, on the thread that answered it.
pub type Then = Box<dyn FnOnce(Result<()>) + Send>;

/// What one acknowledgement (or failure, or close) has answered, to be
/// woken and run after the done lock is released.
#[derive(Default)]
struct Answered {
    wakers: Vec<std::task::Waker>,
    then: Vec<(Then, Result<()>)>,
}

impl Answered {
    fn run(self) {
        self.wakers.into_iter().for_each(std::task::Waker::wake);
        for (f, out) in self.then {
            // A panic in a host's continuation must not stop the committer.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(out)));
        }
    }
}

impl Done {
    /// What `committed` (or a failure, or the stop) has answered.
    fn answered(&mut self) -> Answered {
        let mut a = Answered::default();
        if self.wakers.is_empty() && self.then.is_empty() {
            return a;
        }
        let failed = self.failed.is_some() || self.stopped;
        let committed = self.committed;
        self.wakers.retain(|(seq, w)| {
            let done = failed || *seq <= committed;
            if done {
                a.wakers.push(w.clone());
            }
            !done
        });
        let mut kept = Vec::new();
        for (seq, f) in std::mem::take(&mut self.then) {
            match Shared::outcome(self, Ticket { seq, batch: 0 }) {
                Some(out) => a.then.push((f, out)),
                None => kept.push((seq, f)),
            }
        }
        self.then = kept;
        a
    }
}

struct Shared {
    queue: Mutex<Queue>,
    queue_cv: Condvar,
    done: Mutex<Done>,
    /// Waiters sleep on the condvar of their batch's parity: a commit wakes
    /// the callers it made durable, not those already queued for the next one.
    done_cv: [Condvar; 2],
}

impl Shared {
    fn wake_all(&self) {
        self.done_cv.iter().for_each(|cv| {
            cv.notify_all();
        });
        let answered = self.done.lock().answered();
        answered.run();
    }

    /// `Some` once the ticket is answered: durable, or the error it gets.
    fn outcome(d: &Done, ticket: Ticket) -> Option<Result<()>> {
        if d.committed >= ticket.seq {
            return Some(Ok(()));
        }
        if let Some(e) = &d.failed {
            return Some(Err(e.clone()));
        }
        // Queued after close() flushed: the change is not durable, so it is refused.
        d.stopped.then(|| Err(Error::new(ErrorCode::EngineClosed)))
    }
}

/// A ticket's commit as a future (see [`DurableStore::durable`]): ready
/// with `Ok` once the ticket's rows are durable, or with the error that
/// poisoned the store (or `ENGINE_CLOSED`). Needs no runtime: the thread that
/// acknowledges the commit wakes the task.
#[must_use = "a change is acknowledged only once its commit is durable"]
pub struct Durable {
    shared: Arc<Shared>,
    ticket: Ticket,
}

impl std::future::Future for Durable {
    type Output = Result<()>;
    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<()>> {
        let mut d = self.shared.done.lock();
        if let Some(out) = Shared::outcome(&d, self.ticket) {
            return std::task::Poll::Ready(out);
        }
        // Registered under the lock the acknowledgement takes, so no wake is
        // missed; a task polled again before its answer replaces its waker.
        let seq = self.ticket.seq;
        match d.wakers.iter_mut().find(|(s, w)| *s == seq && w.will_wake(cx.waker())) {
            Some(_) => {}
            None => d.wakers.push((seq, cx.waker().clone())),
        }
        std::task::Poll::Pending
    }
}

/// A ticket for rows handed to the committer; `wait` blocks until they are on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Ticket {
    seq: u64,
    batch: u64,
}

impl Ticket {
    /// The later of two tickets: batches commit in ticket order, so the
    /// later one's commit makes both durable.
    pub fn later(self, other: Ticket) -> Ticket {
        if other.seq > self.seq {
            other
        } else {
            self
        }
    }
}

pub struct DurableStore {
    shared: Arc<Shared>,
    committer: Mutex<Option<JoinHandle<()>>>,
    /// Opens sealed rows read back after open (the audit trail).
    cipher: Option<RowCipher>,
    /// The one connection (see the module doc): the committer's, lent to
    /// readers; taken and closed by `close`, which releases the database's
    /// lock (SQLite: the file and `yilian.lock`; PostgreSQL: the lease).
    conn: Conn,
    /// The lease's epoch on a shared database (PostgreSQL).
    lease_epoch: Option<u64>,
    database: Database,
}

/// A row read back after open: its key and its (opened) body.
pub struct Row {
    pub key: String,
    pub body: String,
}

impl DurableStore {
    /// Opens (creating if needed) the store in `dir` and reads every row.
    /// With a cipher, every row written is sealed with SM4-GCM and every
    /// sealed row read is opened; plain rows (a store that was not encrypted
    /// before) are read as they are and sealed when next written.
    /// `tables` are every domain's (see `domains.rs`); at most one is a [`Flag::Log`].
    pub fn open(dir: &Path, sync_full: bool, batch_max: usize, cipher: Option<RowCipher>, tables: &[Table]) -> Result<(DurableStore, Snapshot)> {
        let backend = sqlite::SqliteBackend::open(dir, sync_full, tables)?;
        DurableStore::open_on(Box::new(backend), batch_max, cipher, tables)
    }

    /// Opens (creating its tables if needed) the store in the PostgreSQL
    /// database `conninfo` names (libpq key=value or URL), with the same
    /// semantics as [`open`](Self::open): see `postgres.rs`.
    /// The engine leads the database while it holds its lease (`lease_ms`
    /// long, renewed by the committer); `STORE_LOCKED` while another engine
    /// holds it.
    #[cfg(feature = "postgres")]
    pub fn open_postgres(
        conninfo: &str,
        sync_full: bool,
        lease_ms: u64,
        batch_max: usize,
        cipher: Option<RowCipher>,
        tables: &[Table],
    ) -> Result<(DurableStore, Snapshot)> {
        let backend = postgres::PgBackend::connect(conninfo, sync_full, lease_ms, tables)?;
        DurableStore::open_on(Box::new(backend), batch_max, cipher, tables)
    }

    fn open_on(mut backend: Box<dyn Backend>, batch_max: usize, cipher: Option<RowCipher>, tables: &[Table]) -> Result<(DurableStore, Snapshot)> {
        let snapshot = read_all(&mut *backend, cipher.as_ref(), tables)?;
        if let Some(c) = &cipher {
            let sealing = !snapshot.plain.is_empty();
            if sealing {
                seal_plain_rows(&mut *backend, &snapshot, c)?;
            }
            // A store sealed before scrubbing existed (or by a run that died
            // before it) is scrubbed once on its next keyed open.
            if sealing || !backend.is_scrubbed()? {
                backend.scrub()?;
            }
        }
        let (lease_epoch, renew_every) = (backend.lease_epoch(), backend.renew_every());
        let database = backend.database()?;
        let flusher = backend.flusher()?;
        let conn: Conn = Arc::new(Mutex::new(Some(backend)));
        let cipher_for_commits = cipher.clone();
        let next_audit_seq = snapshot.next_audit_seq;
        let audit_head = snapshot.audit_head.clone();
        let log = tables.iter().copied().find(|t| t.has(Flag::Log));
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue { writes: Vec::new(), last_ticket: 0, batch: 0, shutdown: false }),
            queue_cv: Condvar::new(),
            done: Mutex::new(Done { committed: 0, failed: None, stopped: false, wakers: Vec::new(), then: Vec::new() }),
            done_cv: [Condvar::new(), Condvar::new()],
        });
        let (s2, s2b) = (shared.clone(), shared.clone());
        let c2 = conn.clone();
        let committer = std::thread::Builder::new()
            .name(COMMITTER_THREAD.into())
            .spawn(move || {
                let c = Committer { cipher: cipher_for_commits, next_audit_seq, audit_head, log };
                match flusher {
                    None => commit_loop(c2, s2, batch_max, c, renew_every, &mut |ticket, batch| acknowledge(&s2b, ticket, Some(batch))),
                    Some(f) => with_flusher(f, &s2b, |to_flush| commit_loop(c2, s2, batch_max, c, renew_every, to_flush)),
                }
            })
            .map_err(|e| Error::storage(format!("cannot start committer: {e}")))?;
        Ok((DurableStore { shared, committer: Mutex::new(Some(committer)), cipher, conn, lease_epoch, database }, snapshot))
    }

    /// Rows of `table` keyed above `after_key`, in key order, in pages of
    /// 512, handed to `f` until it answers `false`. Read through the store's
    /// connection, one page at a time between commits (the connection is
    /// not held while `f` runs); sealed rows are opened.
    pub fn scan_after(&self, table: Table, after_key: &str, mut f: impl FnMut(Row) -> Result<bool>) -> Result<()> {
        self.pages(table, after_key, |key, body| {
            let body = match &self.cipher {
                Some(c) if body.starts_with(SEALED_PREFIX) => {
                    c.open(&row_aad(table, &key), &body).ok_or_else(|| Error::storage(format!("a row of table {} does not open", table.name())))?
                }
                _ => body,
            };
            f(Row { key, body })
        })
    }

    /// Every row of `table` in key order, its body opened when sealed, or
    /// `None` when it does not open (wrong key, altered or moved): for the
    /// audit trail's check, which reports such a row instead of failing.
    pub fn scan_checked(&self, table: Table, mut f: impl FnMut(&str, Option<String>) -> Result<bool>) -> Result<()> {
        self.pages(table, "", |key, body| {
            let body = match &self.cipher {
                Some(c) if body.starts_with(SEALED_PREFIX) => c.open(&row_aad(table, &key), &body),
                _ if body.starts_with(SEALED_PREFIX) => None,
                _ => Some(body),
            };
            f(&key, body)
        })
    }

    /// Rows of `table` keyed above `after`, as stored, in pages of 512 read
    /// through the store's own connection (a SQLite database is locked
    /// exclusively, and a second descriptor of the file would drop that
    /// lock); the connection is not held while `f` runs. Stops when `f`
    /// answers `false`.
    fn pages(&self, table: Table, after: &str, mut f: impl FnMut(String, String) -> Result<bool>) -> Result<()> {
        let mut cursor = after.to_string();
        loop {
            let rows = self.read(|b| b.page(table, &cursor, 512))?;
            let Some(last) = rows.last().map(|r| r.0.clone()) else { return Ok(()) };
            for (key, body) in rows {
                if !f(key, body)? {
                    return Ok(());
                }
            }
            cursor = last;
        }
    }

    /// The body of one row of a [`Flag::Lazy`] table (any table works), as
    /// committed: read through the store's connection, opened when sealed.
    pub fn get(&self, table: Table, key: &str) -> Result<Option<String>> {
        let stored = stored_key(table, key, self.cipher.as_ref());
        match (self.read(|b| b.get(table, &stored))?, &self.cipher) {
            (Some(b), Some(c)) if b.starts_with(SEALED_PREFIX) => {
                c.open(&row_aad(table, &stored), &b).map(Some).ok_or_else(|| Error::storage(format!("a row of table {} does not open", table.name())))
            }
            (b, _) => Ok(b),
        }
    }

    /// Runs one read on the connection (between commits). Refused once the
    /// store is closed.
    fn read<R>(&self, f: impl FnOnce(&mut dyn Backend) -> Result<R>) -> Result<R> {
        match self.conn.lock().as_mut() {
            Some(b) => f(&mut **b),
            None => Err(Error::new(ErrorCode::EngineClosed)),
        }
    }

    /// Hands rows to the committer. Call while holding the locks that ordered the change.
    pub fn enqueue(&self, writes: Vec<Write>) -> Ticket {
        let mut q = self.shared.queue.lock();
        q.writes.extend(writes);
        q.last_ticket += 1;
        let t = Ticket { seq: q.last_ticket, batch: q.batch };
        drop(q);
        self.shared.queue_cv.notify_one();
        t
    }

    /// Blocks until the ticket's rows are committed (fsynced with `synchronous=FULL`).
    pub fn wait(&self, ticket: Ticket) -> Result<()> {
        let mut d = self.shared.done.lock();
        loop {
            if let Some(out) = Shared::outcome(&d, ticket) {
                return out;
            }
            self.shared.done_cv[(ticket.batch % 2) as usize].wait(&mut d);
        }
    }

    /// [`wait`](Self::wait) as a future, for a host on an async runtime: the
    /// task sleeps instead of a thread (the committer's acknowledgement wakes it).
    pub fn durable(&self, ticket: Ticket) -> Durable {
        Durable { shared: self.shared.clone(), ticket }
    }

    /// Runs `then` with the ticket's outcome once it is answered — at once
    /// on this thread if it already is, else on the thread that answers it
    /// (the committer's, after the commit; a failure's; close's). Never
    /// blocks. `then` must be short and must not wait on the store.
    pub fn on_durable(&self, ticket: Ticket, then: Then) {
        let mut d = self.shared.done.lock();
        match Shared::outcome(&d, ticket) {
            Some(out) => {
                drop(d);
                then(out);
            }
            None => d.then.push((ticket.seq, then)),
        }
    }

    /// The epoch of the lease under which this engine leads a shared
    /// database (PostgreSQL); `None` on SQLite.
    pub fn lease_epoch(&self) -> Option<u64> {
        self.lease_epoch
    }

    /// The database under this store (see [`Database`]).
    pub fn database(&self) -> &Database {
        &self.database
    }

    /// `Err` once a commit has failed (`NOT_LEADER` when the lease was
    /// lost): the engine then refuses every call.
    pub fn health(&self) -> Result<()> {
        match &self.shared.done.lock().failed {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Flushes what is queued, stops the committer, closes the database and
    /// releases the directory, so the same process may open it again at once.
    pub fn close(&self) {
        self.shared.queue.lock().shutdown = true;
        self.shared.queue_cv.notify_all();
        if let Some(h) = self.committer.lock().take() {
            let _ = h.join();
        }
        let mut d = self.shared.done.lock();
        d.stopped = true;
        drop(d);
        self.shared.wake_all();
        // Closing the connection releases the database's lock (SQLite: and
        // checkpoints the WAL, then drops the lock file).
        self.conn.lock().take();
    }
}

impl Drop for DurableStore {
    fn drop(&mut self) {
        self.close();
    }
}

/// Records a failed commit or renewal: every waiter and every later call gets `e`.
fn fail(shared: &Shared, e: Error) {
    shared.done.lock().failed = Some(e);
    shared.wake_all();
}

/// What the committer carries from batch to batch: the sealing key, and
/// the audit trail's next number and the hash it chains from.
struct Committer {
    cipher: Option<RowCipher>,
    next_audit_seq: u64,
    audit_head: String,
    log: Option<Table>,
}

/// Marks every ticket up to `ticket` durable and wakes their waiters: those
/// of `batch` when the tickets are all of it, everyone otherwise.
fn acknowledge(shared: &Shared, ticket: u64, batch: Option<u64>) {
    let answered = {
        let mut d = shared.done.lock();
        d.committed = ticket;
        d.answered()
    };
    answered.run();
    match batch {
        Some(b) => {
            shared.done_cv[(b % 2) as usize].notify_all();
        }
        None => shared.done_cv.iter().for_each(|cv| {
            cv.notify_all();
        }),
    }
}

/// Takes every queued change as one batch, commits it, and hands its last
/// ticket (and batch number) to `committed`; renews an idle lease. Stops on
/// shutdown once the queue is empty, or at the first failure (its own or
/// the flusher's).
fn commit_loop(
    conn: Conn,
    shared: Arc<Shared>,
    batch_max: usize,
    mut c: Committer,
    renew_every: Option<std::time::Duration>,
    committed: &mut dyn FnMut(u64, u64),
) {
    // Every commit renews a lease; an idle committer renews it when this is due.
    let next_renewal = || renew_every.map(|d| std::time::Instant::now() + d);
    let mut renew_at = next_renewal();
    loop {
        let (writes, ticket, batch, shutdown) = {
            let mut q = shared.queue.lock();
            while q.writes.is_empty() && !q.shutdown {
                match renew_at {
                    Some(at) if std::time::Instant::now() >= at => break,
                    Some(at) => {
                        shared.queue_cv.wait_until(&mut q, at);
                    }
                    None => shared.queue_cv.wait(&mut q),
                }
            }
            if q.writes.is_empty() && !q.shutdown {
                drop(q);
                if shared.done.lock().failed.is_some() {
                    return;
                }
                let renewed = match conn.lock().as_mut() {
                    Some(b) => crate::panic::catch(|| b.renew()),
                    None => Err(Error::storage("the store is closed")),
                };
                if let Err(e) = renewed {
                    return fail(&shared, e);
                }
                renew_at = next_renewal();
                continue;
            }
            let _ = batch_max; // batches take everything queued; the bound is the callers' count
            q.batch += 1;
            (std::mem::take(&mut q.writes), q.last_ticket, q.batch - 1, q.shutdown)
        };
        if shared.done.lock().failed.is_some() {
            // The flusher failed: nothing more may reach the database (its
            // waiters, and these, have their answer).
            return;
        }
        if !writes.is_empty() {
            let result = match conn.lock().as_mut() {
                // A panic here (a bug) must not kill the committer and leave
                // every waiter blocked: it fails the batch like a storage error.
                Some(b) => crate::panic::catch(|| apply(&mut **b, &writes, &mut c)),
                None => Err(Error::storage("the store is closed")),
            };
            if let Err(e) = result {
                // Nothing of the batch was written, and nothing more will be.
                return fail(&shared, e);
            }
            renew_at = next_renewal();
        }
        committed(ticket, batch);
        if shutdown && shared.queue.lock().writes.is_empty() {
            return;
        }
    }
}

/// Batches committed but not yet flushed: the last one's ticket, and
/// whether the committer has stopped.
struct Unflushed {
    ticket: u64,
    stopped: bool,
}

/// Runs `commit` (the committer's loop) with a flusher thread beside it
/// (see [`Backend::flusher`]): each batch committed is acknowledged once a
/// flush that began after its commit returned, so one flush covers every
/// batch committed while the one before it ran. The flusher ends after the
/// committer, with a last flush of what it left.
fn with_flusher(mut flusher: Box<dyn Flusher>, shared: &Arc<Shared>, commit: impl FnOnce(&mut dyn FnMut(u64, u64))) {
    let pending = Arc::new((Mutex::new(Unflushed { ticket: 0, stopped: false }), Condvar::new()));
    let (p2, s2) = (pending.clone(), shared.clone());
    let thread = std::thread::Builder::new().name(FLUSHER_THREAD.into()).spawn(move || {
        let (unflushed, cv) = &*p2;
        let mut durable = 0;
        loop {
            let ticket = {
                let mut u = unflushed.lock();
                while u.ticket == durable && !u.stopped {
                    cv.wait(&mut u);
                }
                if u.ticket == durable {
                    return;
                }
                u.ticket
            };
            if let Err(e) = crate::panic::catch(|| flusher.flush()) {
                return fail(&s2, e);
            }
            durable = ticket;
            acknowledge(&s2, ticket, None);
        }
    });
    let thread = match thread {
        Ok(t) => t,
        Err(e) => return fail(shared, Error::storage(format!("cannot start the flusher: {e}"))),
    };
    commit(&mut |ticket, _batch| {
        pending.0.lock().ticket = ticket;
        pending.1.notify_one();
    });
    pending.0.lock().stopped = true;
    pending.1.notify_one();
    let _ = thread.join();
}

/// What a sealed row is bound to: its table and key.
pub(crate) fn row_aad(table: Table, key: &str) -> Vec<u8> {
    format!("{}/{key}", table.name()).into_bytes()
}

/// The key a row is stored under. A patient's row is keyed by the patient's
/// id, which may be personal; sealed stores key it by a keyed hash instead
/// (recovery reads the id from the sealed body).
pub(crate) fn stored_key<'a>(table: Table, key: &'a str, cipher: Option<&RowCipher>) -> Cow<'a, str> {
    match cipher {
        Some(c) if table.has(Flag::PersonalKeys) => format!("h:{}", c.key_hash(key)).into(),
        _ => key.into(),
    }
}

/// Seals, in one transaction, the plain rows of a store that was not
/// encrypted before its key was configured.
fn seal_plain_rows(b: &mut dyn Backend, snap: &Snapshot, cipher: &RowCipher) -> Result<()> {
    let mut ops = Vec::with_capacity(snap.plain.len() * 2);
    for (t, k, body) in &snap.plain {
        let key = stored_key(*t, k, Some(cipher));
        let sealed = cipher.seal(&row_aad(*t, &key), body);
        ops.push(Op { table: *t, key: Cow::Borrowed(k.as_str()), body: None, fresh: false });
        ops.push(Op { table: *t, key, body: Some(Cow::Owned(sealed)), fresh: false });
    }
    b.commit(&ops)
}

fn apply(b: &mut dyn Backend, writes: &[Write], c: &mut Committer) -> Result<()> {
    let (cipher, log) = (c.cipher.as_ref(), c.log);
    let (next_audit_seq, audit_head) = (&mut c.next_audit_seq, &mut c.audit_head);
    // The audit entries of every change in this commit go into one row (one
    // insert per commit instead of one per change). They are numbered here,
    // in commit order, and the row is keyed by its last number, so a reader
    // paging by number sees every entry once and in order. Each entry is
    // chained to the one before it (`audit_chain::append_chained`), in this order.
    let mut audit = String::new();
    let mut ops = Vec::with_capacity(writes.len() + 1);
    for w in writes {
        if w.table.has(Flag::Log) {
            if let Some(body) = w.body.as_deref().and_then(|b| b.strip_prefix('{')) {
                audit.push(if audit.is_empty() { '[' } else { ',' });
                crate::audit_chain::append_chained(&mut audit, *next_audit_seq, body, audit_head);
                // Only a tampered trail gets here (2^64 entries): fail, never wrap.
                *next_audit_seq = next_audit_seq.checked_add(1).ok_or_else(|| Error::storage("the audit trail's numbering is exhausted"))?;
            }
            continue;
        }
        let key = stored_key(w.table, &w.key, cipher);
        let body = match (&w.body, cipher) {
            (Some(body), Some(c)) => Some(Cow::Owned(c.seal(&row_aad(w.table, &key), body))),
            (Some(body), None) => Some(Cow::Borrowed(body.as_str())),
            (None, _) => None,
        };
        ops.push(Op { table: w.table, key, body, fresh: w.fresh });
    }
    if let (false, Some(log)) = (audit.is_empty(), log) {
        audit.push(']');
        let key = numbered_key(*next_audit_seq - 1);
        let body = match cipher {
            Some(c) => c.seal(&row_aad(log, &key), &audit),
            None => audit,
        };
        // Numbered here, past every row of the trail: always a new key.
        ops.push(Op { table: log, key: Cow::Owned(key), body: Some(Cow::Owned(body)), fresh: true });
    }
    b.commit(&ops)
}

fn read_all(b: &mut dyn Backend, cipher: Option<&RowCipher>, tables: &[Table]) -> Result<Snapshot> {
    // A log only grows: it is read on demand (`scan_after`), never loaded.
    // Its rows are keyed by their highest entry number.
    let mut snap = Snapshot { next_audit_seq: 1, ..Snapshot::default() };
    if let Some(log) = tables.iter().find(|t| t.has(Flag::Log)) {
        let last = b.max_key(*log)?;
        snap.next_audit_seq = last.as_deref().and_then(|k| k.parse::<u64>().ok()).unwrap_or(0).saturating_add(1);
        // The chain goes on from the last entry's hash. A last row that does
        // not read (or predates the chain) starts it afresh; `audit-verify`
        // reports the break.
        let body = match &last {
            Some(k) => b.get(*log, k).ok().flatten(),
            None => None,
        };
        let body = match (body, cipher, &last) {
            (Some(b), Some(c), Some(k)) if b.starts_with(SEALED_PREFIX) => c.open(&row_aad(*log, k), &b),
            (b, _, _) => b,
        };
        snap.audit_head = body.as_deref().and_then(crate::audit_chain::row_head).unwrap_or_else(|| crate::audit_chain::GENESIS.to_string());
    }
    // A lazy table is read by key when asked, a log on demand; only their
    // plain rows are read here, when a cipher is configured, to be sealed on
    // open like every row.
    for t in tables.iter().copied().filter(|t| (t.has(Flag::Lazy) || t.has(Flag::Log)) && cipher.is_some()) {
        for (k, body) in b.not_prefixed(t, SEALED_PREFIX)? {
            snap.plain.push((t, k, body));
        }
    }
    for t in tables.iter().copied().filter(|t| t.has(Flag::Lazy)) {
        snap.lazy_max.push((t, b.max_key(t)?));
    }
    for t in tables.iter().copied().filter(|t| !t.has(Flag::Log) && !t.has(Flag::Lazy)) {
        for (k, mut body) in b.all(t)? {
            if body.starts_with(SEALED_PREFIX) {
                let Some(c) = cipher else {
                    return Err(Error::with(
                        ErrorCode::InvalidConfig,
                        "the data directory is encrypted: configure its encryption_key",
                        "数据目录已加密：请配置 encryption_key",
                    ));
                };
                // The key is not named: a row's key may be a patient's id.
                body = c.open(&row_aad(t, &k), &body).ok_or_else(|| {
                    Error::with(
                        ErrorCode::InvalidConfig,
                        format!("a row of table {} does not open with the configured encryption_key (wrong key, or the row was altered)", t.name()),
                        format!("表 {} 中有记录无法用所配置的 encryption_key 解密（密钥错误或记录被篡改）", t.name()),
                    )
                })?;
            } else if cipher.is_some() {
                snap.plain.push((t, k.clone(), body.clone()));
            }
            snap.rows.push((t, k, body));
        }
    }
    Ok(snap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::{params, Connection};

    table!(ROWS = "t_rows");
    table!(LOG = "t_log", Log);

    /// A backend whose commits are counted and whose flushes wait for the
    /// test's go-ahead (or fail when it says so).
    struct Gated {
        commits: Arc<std::sync::atomic::AtomicUsize>,
        gate: Option<std::sync::mpsc::Receiver<bool>>,
    }
    struct GatedFlusher(std::sync::mpsc::Receiver<bool>);
    impl Flusher for GatedFlusher {
        fn flush(&mut self) -> Result<()> {
            match self.0.recv() {
                Ok(true) => Ok(()),
                _ => Err(Error::storage("the flush failed")),
            }
        }
    }
    impl Backend for Gated {
        fn commit(&mut self, _: &[Op<'_>]) -> Result<()> {
            self.commits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        }
        fn page(&mut self, _: Table, _: &str, _: usize) -> Result<Vec<(String, String)>> {
            Ok(Vec::new())
        }
        fn get(&mut self, _: Table, _: &str) -> Result<Option<String>> {
            Ok(None)
        }
        fn all(&mut self, _: Table) -> Result<Vec<(String, String)>> {
            Ok(Vec::new())
        }
        fn not_prefixed(&mut self, _: Table, _: &str) -> Result<Vec<(String, String)>> {
            Ok(Vec::new())
        }
        fn max_key(&mut self, _: Table) -> Result<Option<String>> {
            Ok(None)
        }
        fn database(&mut self) -> Result<Database> {
            Ok(Database { kind: "gated", version: String::new() })
        }
        fn is_scrubbed(&mut self) -> Result<bool> {
            Ok(true)
        }
        fn scrub(&mut self) -> Result<()> {
            Ok(())
        }
        fn flusher(&mut self) -> Result<Option<Box<dyn Flusher>>> {
            Ok(self.gate.take().map(|g| Box::new(GatedFlusher(g)) as Box<dyn Flusher>))
        }
    }

    fn gated() -> (DurableStore, Arc<std::sync::atomic::AtomicUsize>, std::sync::mpsc::Sender<bool>) {
        let (go, gate) = std::sync::mpsc::channel();
        let commits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let b = Gated { commits: commits.clone(), gate: Some(gate) };
        let (s, _) = DurableStore::open_on(Box::new(b), 64, None, &[ROWS]).unwrap();
        (s, commits, go)
    }

    #[test]
    fn a_committed_batch_is_acknowledged_only_after_a_flush_that_began_after_it() {
        let (s, commits, go) = gated();
        let s = Arc::new(s);
        let t = s.enqueue(vec![Write::put(ROWS, "a", &1)]);
        let (tx, rx) = std::sync::mpsc::channel();
        let s2 = s.clone();
        std::thread::spawn(move || tx.send(s2.wait(t)).unwrap());
        // Committed, but not durable yet: the caller still waits.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while commits.load(std::sync::atomic::Ordering::SeqCst) == 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(commits.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(rx.recv_timeout(std::time::Duration::from_millis(200)).is_err(), "acknowledged before its flush");
        // The next batch commits while the first one's flush is still running.
        let t2 = s.enqueue(vec![Write::put(ROWS, "b", &2)]);
        while commits.load(std::sync::atomic::Ordering::SeqCst) < 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(commits.load(std::sync::atomic::Ordering::SeqCst), 2, "a flush in progress does not hold the next commit back");
        go.send(true).unwrap();
        rx.recv_timeout(std::time::Duration::from_secs(10)).expect("answered after the flush").unwrap();
        // The second batch committed after the first flush began: it needs its own.
        go.send(true).unwrap();
        s.wait(t2).unwrap();
        s.close();
    }

    /// Polls `f` once with a waker that counts its wakes.
    fn poll_once<F: std::future::Future + Unpin>(f: &mut F, wakes: &Arc<std::sync::atomic::AtomicUsize>) -> std::task::Poll<F::Output> {
        struct Count(Arc<std::sync::atomic::AtomicUsize>);
        impl std::task::Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let waker = std::task::Waker::from(Arc::new(Count(wakes.clone())));
        std::pin::Pin::new(f).poll(&mut std::task::Context::from_waker(&waker))
    }

    fn until(what: &str, f: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !f() {
            assert!(std::time::Instant::now() < deadline, "{what}");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// A gated store with one row queued, awaited by a task polled once.
    #[allow(clippy::type_complexity)]
    fn awaited() -> (DurableStore, Arc<std::sync::atomic::AtomicUsize>, std::sync::mpsc::Sender<bool>, Ticket, Durable, Arc<std::sync::atomic::AtomicUsize>) {
        let (s, commits, go) = gated();
        let wakes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let t = s.enqueue(vec![Write::put(ROWS, "a", &1)]);
        let mut f = s.durable(t);
        assert!(poll_once(&mut f, &wakes).is_pending());
        (s, commits, go, t, f, wakes)
    }

    #[test]
    fn an_awaited_commit_is_ready_only_after_its_flush_and_its_task_is_woken_once() {
        let (s, commits, go, t, mut f, wakes) = awaited();
        until("committed", || commits.load(std::sync::atomic::Ordering::SeqCst) == 1);
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(poll_once(&mut f, &wakes).is_pending(), "committed but not flushed: not durable");
        assert_eq!(wakes.load(std::sync::atomic::Ordering::SeqCst), 0, "not woken before the flush");
        go.send(true).unwrap();
        until("woken by the acknowledgement", || wakes.load(std::sync::atomic::Ordering::SeqCst) >= 1);
        assert!(matches!(poll_once(&mut f, &wakes), std::task::Poll::Ready(Ok(()))));
        // A later ticket's continuation runs after its own flush, not before.
        let t2 = s.enqueue(vec![Write::put(ROWS, "b", &2)]);
        let (tx, rx) = std::sync::mpsc::channel();
        s.on_durable(t2, Box::new(move |r| tx.send(r.is_ok()).unwrap()));
        assert!(rx.recv_timeout(std::time::Duration::from_millis(100)).is_err(), "ran before its flush");
        go.send(true).unwrap();
        assert!(rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap());
        // An answered ticket's continuation runs at once, on the caller's thread.
        let (tx, rx) = std::sync::mpsc::channel();
        s.on_durable(t, Box::new(move |r| tx.send(r.is_ok()).unwrap()));
        assert!(rx.try_recv().unwrap());
        s.close();
    }

    #[test]
    fn a_failed_flush_answers_awaiting_tasks_and_continuations_with_the_error() {
        let (s, _commits, go, t, mut f, wakes) = awaited();
        let (tx, rx) = std::sync::mpsc::channel();
        s.on_durable(t, Box::new(move |r| tx.send(r.map_err(|e| e.code())).unwrap()));
        go.send(false).unwrap();
        assert_eq!(rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap(), Err(ErrorCode::StorageError));
        until("woken by the failure", || wakes.load(std::sync::atomic::Ordering::SeqCst) >= 1);
        match poll_once(&mut f, &wakes) {
            std::task::Poll::Ready(Err(e)) => assert_eq!(e.code(), ErrorCode::StorageError),
            other => panic!("expected the storage error, got {:?}", other.map(|r| r.map_err(|e| e.code()))),
        }
        s.close();
    }

    #[test]
    fn a_failed_flush_fails_its_waiters_and_nothing_more_is_committed() {
        let (s, commits, go) = gated();
        let t = s.enqueue(vec![Write::put(ROWS, "a", &1)]);
        go.send(false).unwrap();
        assert_eq!(s.wait(t).unwrap_err().code(), ErrorCode::StorageError);
        assert!(s.health().is_err());
        let before = commits.load(std::sync::atomic::Ordering::SeqCst);
        let t = s.enqueue(vec![Write::put(ROWS, "b", &2)]);
        assert!(s.wait(t).is_err(), "a change after the failure is refused");
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(commits.load(std::sync::atomic::Ordering::SeqCst), before, "the committer stopped with the flusher");
        s.close();
    }

    #[test]
    fn an_audit_number_at_its_limit_fails_the_commit_and_poisons_the_store_instead_of_hanging_or_wrapping() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = DurableStore::open(dir.path(), false, 64, None, &[ROWS, LOG]).unwrap();
        s.close();
        drop(s);
        // A trail whose last row claims the last number there is (tampered).
        let c = Connection::open(dir.path().join("yilian.sqlite3")).unwrap();
        c.execute("INSERT INTO t_log(k, body) VALUES (?1, '[]')", params![numbered_key(u64::MAX)]).unwrap();
        drop(c);
        let (s, _) = DurableStore::open(dir.path(), false, 64, None, &[ROWS, LOG]).unwrap();
        let s = Arc::new(s);
        let t = s.enqueue(vec![Write::put(ROWS, "a", &serde_json::json!({"n": 1})), Write::put(LOG, "", &serde_json::json!({"what": "x"}))]);
        let (tx, rx) = std::sync::mpsc::channel();
        let s2 = s.clone();
        std::thread::spawn(move || tx.send(s2.wait(t)).unwrap());
        let got = rx.recv_timeout(std::time::Duration::from_secs(20)).expect("the waiter is answered, not left blocked");
        assert_eq!(got.unwrap_err().code(), ErrorCode::StorageError);
        assert!(s.health().is_err(), "the store refuses everything after a failed commit");
        s.close();
        drop(s);
        let (_, snap) = DurableStore::open(dir.path(), false, 64, None, &[ROWS, LOG]).unwrap();
        assert_eq!(snap.of(ROWS).count(), 0, "nothing of the failed batch was written");
    }

    #[test]
    fn numbered_keys_are_twenty_digits_like_format() {
        for n in [0, 1, 9, 10, 12_345, 99_999_999_999, u64::MAX] {
            assert_eq!(numbered_key(n), format!("{n:020}"));
        }
    }
}
