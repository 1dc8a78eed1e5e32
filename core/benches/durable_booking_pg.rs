//! Durable booking on PostgreSQL (issue 17): confirmed bookings per second
//! of yilian on the PostgreSQL store (`{"store": {"postgres": …}}`), 64
//! callers, against the same bookings as PostgreSQL conditional UPDATEs —
//! one transaction per booking, 64 callers each on its own connection (a
//! pool of 64 clients, as a PostgreSQL application runs) — on the same
//! server in the same run, and against yilian's SQLite store (`data_dir`)
//! in the same run. Each round runs the three sides in alternating order,
//! each on a fresh database (or directory), and measures first what the
//! ratios depend on: the server's commit latency (sequential single-row
//! INSERT commits on one connection) and the disk's fsync time (write +
//! fdatasync of an 8 KiB page in the temporary directory).
//!
//! Where the time goes is printed for each PostgreSQL side, from the
//! server's own statistics: transactions committed (yilian: one per group
//! commit), the time the server spent executing them (`pg_stat_database`
//! `active_time`, fsync included), WAL bytes and WAL flushes per booking and
//! the server's mean WAL flush time (`pg_stat_wal`, PostgreSQL ≥ 14; the
//! fresh databases run with `track_wal_io_timing`).
//!
//! `YILIAN_BENCH_POSTGRES`: a superuser conninfo (`bash scripts/pg-cluster.sh
//! start DIR` prints one); `DURABLE_OPS` bookings per caller of the
//! baseline (yilian's sides book 10× as many), `DURABLE_ROUNDS` rounds.

#[path = "common/durable.rs"]
mod durable;

use durable::{drive, run_yilian, run_yilian_data_dir, slot_of, Outcome, CALLERS, CAPACITY, SLOTS};
use postgres::{Client, NoTls, Statement};
use serde_json::json;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ENV: &str = "YILIAN_BENCH_POSTGRES";

/// Sequential commits timed for the server's commit latency, writes timed for the disk's fsync.
const PROBES: usize = 200;

/// The PostgreSQL server the bench runs against, through its superuser conninfo.
struct Server {
    admin: String,
    next_db: AtomicU32,
}

/// The server's counters a side is measured by.
#[derive(Clone, Copy, Default)]
struct Wal {
    bytes: i64,
    syncs: i64,
    sync_ms: f64,
}

/// What the server did for one side.
struct ServerWork {
    /// Transactions committed in the side's database (a handful at setup
    /// included; yilian's flushes excluded, counted in `flushes`).
    commits: i64,
    /// yilian's flusher's transactions (updates of `yilian_meta`, see `store/postgres.rs`).
    flushes: i64,
    /// Time the side's sessions spent executing statements (fsync and lock waits included), summed over sessions.
    active_ms: f64,
    /// Rows inserted, deleted, updated in the side's database.
    rows: [i64; 3],
    wal: Option<Wal>,
}

impl Server {
    fn from_env() -> Server {
        let admin = std::env::var(ENV).unwrap_or_else(|_| {
            panic!(
                "{ENV} is not set: start a throwaway PostgreSQL cluster with `bash scripts/pg-cluster.sh start DIR` \
                 (run as root; it prints a superuser conninfo) and run with {ENV}=\"<that conninfo>\""
            )
        });
        Server { admin, next_db: AtomicU32::new(0) }
    }

    fn connect(&self, conninfo: &str) -> Client {
        Client::connect(conninfo, NoTls).unwrap_or_else(|e| panic!("the PostgreSQL server of {ENV} answers: {e}"))
    }

    fn admin(&self) -> Client {
        self.connect(&self.admin)
    }

    /// A new, empty database; its name and its conninfo.
    fn fresh_db(&self, what: &str) -> (String, String) {
        let name = format!("yl_bench_{}_{}_{what}", std::process::id(), self.next_db.fetch_add(1, Ordering::Relaxed));
        let mut c = self.admin();
        c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        // The server's time spent flushing WAL, counted for this database's sessions.
        if self.wal().is_some() {
            c.batch_execute(&format!("ALTER DATABASE {name} SET track_wal_io_timing = on")).unwrap();
        }
        let conninfo = format!("{} dbname={name}", self.admin);
        (name, conninfo)
    }

    fn drop_db(&self, name: &str) {
        if let Err(e) = self.admin().batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")) {
            eprintln!("warning: database {name} not dropped: {e}");
        }
    }

    /// Waits until no session is left on `db` (their statistics are reported as they end).
    fn wait_sessions_gone(&self, db: &str) {
        let mut c = self.admin();
        let deadline = Instant::now() + Duration::from_secs(10);
        while c.query_one("SELECT count(*) FROM pg_stat_activity WHERE datname = $1", &[&db]).unwrap().get::<_, i64>(0) > 0 {
            assert!(Instant::now() < deadline, "sessions on {db} did not end");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The cluster's WAL counters (`pg_stat_wal`, PostgreSQL ≥ 14).
    fn wal(&self) -> Option<Wal> {
        let row = self.admin().query_opt("SELECT wal_bytes::bigint, wal_sync, wal_sync_time FROM pg_stat_wal", &[]).ok()??;
        Some(Wal { bytes: row.get(0), syncs: row.get(1), sync_ms: row.get(2) })
    }

    /// What the server did for `db` since `wal_before` (its sessions gone).
    fn work(&self, db: &str, wal_before: Option<Wal>) -> ServerWork {
        self.wait_sessions_gone(db);
        let row = self
            .admin()
            .query_one("SELECT xact_commit, active_time, tup_inserted, tup_deleted, tup_updated FROM pg_stat_database WHERE datname = $1", &[&db])
            .unwrap();
        let wal = match (wal_before, self.wal()) {
            (Some(a), Some(b)) => Some(Wal { bytes: b.bytes - a.bytes, syncs: b.syncs - a.syncs, sync_ms: b.sync_ms - a.sync_ms }),
            _ => None,
        };
        let flushes: i64 = self
            .connect(&format!("{} dbname={db}", self.admin))
            .query_one("SELECT coalesce(sum(n_tup_upd), 0)::bigint FROM pg_stat_user_tables WHERE relname = 'yilian_meta'", &[])
            .unwrap()
            .get(0);
        let commits: i64 = row.get(0);
        ServerWork { commits: commits - flushes, flushes, active_ms: row.get(1), rows: [row.get(2), row.get(3), row.get(4)], wal }
    }

    fn settings(&self) -> String {
        let mut c = self.admin();
        let show = |c: &mut Client, s: &str| c.query_one(&*format!("SHOW {s}"), &[]).map(|r| r.get::<_, String>(0)).unwrap_or_else(|_| "?".into());
        let version = show(&mut c, "server_version");
        let max_conn: usize = show(&mut c, "max_connections").parse().unwrap_or(0);
        let reserved: usize = show(&mut c, "superuser_reserved_connections").parse().unwrap_or(3);
        // The pool's callers, the setup and admin sessions, the reserved slots.
        assert!(
            max_conn >= CALLERS + reserved + 4,
            "the server allows {max_conn} connections; the baseline's pool needs {CALLERS} plus a few: restart it with `-c max_connections=200` \
             (scripts/pg-cluster.sh does)"
        );
        format!(
            "PostgreSQL {version}, max_connections {max_conn}, fsync {}, synchronous_commit {}, wal_sync_method {}, commit_delay {}",
            show(&mut c, "fsync"),
            show(&mut c, "synchronous_commit"),
            show(&mut c, "wal_sync_method"),
            show(&mut c, "commit_delay")
        )
    }

    /// The mean time, in ms, of a single-row INSERT committed on its own
    /// (`synchronous_commit` on), `PROBES` in sequence on one connection.
    fn commit_latency_ms(&self) -> f64 {
        let (db, conninfo) = self.fresh_db("probe");
        let mut c = self.connect(&conninfo);
        c.batch_execute("SET synchronous_commit = on; CREATE TABLE probe(id BIGSERIAL PRIMARY KEY, v INTEGER)").unwrap();
        let ins = c.prepare("INSERT INTO probe(v) VALUES ($1)").unwrap();
        c.execute(&ins, &[&-1i32]).unwrap();
        let t0 = Instant::now();
        for i in 0..PROBES as i32 {
            c.execute(&ins, &[&i]).unwrap();
        }
        let ms = t0.elapsed().as_secs_f64() * 1e3 / PROBES as f64;
        drop(c);
        self.drop_db(&db);
        ms
    }
}

/// The mean time, in ms, of writing an 8 KiB page into a preallocated file
/// in the temporary directory and `fdatasync`ing it (as the server flushes
/// its WAL), `PROBES` in sequence; with `busy`, while a thread per CPU spins
/// (a virtual machine may see a flush's completion late when its CPUs are
/// idle: that one waits for it then, not when the callers keep them busy).
fn fsync_ms(busy: bool) -> f64 {
    use std::os::unix::fs::FileExt;
    use std::sync::atomic::AtomicBool;
    let dir = tempfile::tempdir().unwrap();
    let f = std::fs::File::create(dir.path().join("fsync-probe")).unwrap();
    let page = [0x5au8; 8192];
    f.write_all_at(&vec![0u8; 8192 * PROBES], 0).unwrap();
    f.sync_all().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let cpus = if busy { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { 0 };
    let spinners: Vec<_> = (0..cpus)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        })
        .collect();
    let t0 = Instant::now();
    for i in 0..PROBES {
        f.write_all_at(&page, (i * page.len()) as u64).unwrap();
        f.sync_data().unwrap();
    }
    let ms = t0.elapsed().as_secs_f64() * 1e3 / PROBES as f64;
    stop.store(true, Ordering::Relaxed);
    spinners.into_iter().for_each(|t| t.join().unwrap());
    ms
}

/// yilian on the PostgreSQL store, on a fresh database.
fn run_yilian_pg(server: &Server, per_caller: usize, round: usize) -> (Outcome, ServerWork) {
    let (db, conninfo) = server.fresh_db("yilian");
    let wal = server.wal();
    let out = run_yilian(json!({"store": {"postgres": conninfo}}), per_caller, round);
    let work = server.work(&db, wal);
    server.drop_db(&db);
    (out, work)
}

/// One caller's connection of the baseline's pool, its statements prepared.
struct Caller {
    client: Client,
    take: Statement,
    book: Statement,
    event: Statement,
}

/// The baseline: each booking one transaction (`synchronous_commit` on) —
/// the slot's conditional UPDATE, the booking's row, its event's row — from
/// 64 callers, each on its own connection.
fn run_baseline(server: &Server, per_caller: usize, round: usize) -> (Outcome, ServerWork) {
    let (db, conninfo) = server.fresh_db("baseline");
    let mut setup = server.connect(&conninfo);
    setup
        .batch_execute(&format!(
            "CREATE TABLE slots(id INTEGER PRIMARY KEY, capacity INTEGER NOT NULL, booked INTEGER NOT NULL);
             CREATE TABLE bookings(id BIGSERIAL PRIMARY KEY, slot INTEGER NOT NULL, patient TEXT NOT NULL, request_id TEXT UNIQUE, status TEXT NOT NULL);
             CREATE TABLE events(seq BIGSERIAL PRIMARY KEY, kind TEXT NOT NULL, booking BIGINT NOT NULL);
             INSERT INTO slots SELECT s, {CAPACITY}, 0 FROM generate_series(0, {}) s;",
            SLOTS - 1
        ))
        .unwrap();
    let pool: Vec<Mutex<Caller>> = (0..CALLERS)
        .map(|_| {
            let mut client = server.connect(&conninfo);
            client.batch_execute("SET synchronous_commit = on").unwrap();
            let take = client.prepare("UPDATE slots SET booked = booked + 1 WHERE id = $1 AND booked < capacity").unwrap();
            let book = client.prepare("INSERT INTO bookings(slot, patient, request_id, status) VALUES ($1, $2, $3, 'booked') RETURNING id").unwrap();
            let event = client.prepare("INSERT INTO events(kind, booking) VALUES ('booking_made', $1)").unwrap();
            Mutex::new(Caller { client, take, book, event })
        })
        .collect();
    let wal = server.wal();
    let pool = Arc::new(pool);
    let callers = pool.clone();
    let out = drive(
        per_caller,
        Arc::new(move |t, i| {
            let mut guard = callers[t].lock().unwrap();
            let Caller { client, take, book, event } = &mut *guard;
            let mut tx = client.transaction().unwrap();
            let slot = slot_of(t, i) as i32;
            assert_eq!(tx.execute(&*take, &[&slot]).unwrap(), 1);
            let id: i64 = tx.query_one(&*book, &[&slot, &format!("P{round}-{t}-{i}"), &format!("R{round}-{t}-{i}")]).unwrap().get(0);
            tx.execute(&*event, &[&id]).unwrap();
            tx.commit().unwrap();
        }),
    );
    let n = (CALLERS * per_caller) as i64;
    let row = setup.query_one("SELECT sum(booked)::bigint, (SELECT count(*) FROM bookings), (SELECT count(*) FROM events) FROM slots", &[]).unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1), row.get::<_, i64>(2)), (n, n, n), "every booking counted once");
    drop(setup);
    drop(pool);
    let work = server.work(&db, wal);
    server.drop_db(&db);
    (out, work)
}

/// The median of `f` over the rounds.
fn median(rounds: &[Round], f: impl Fn(&Round) -> f64) -> f64 {
    let mut v: Vec<f64> = rounds.iter().map(f).collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// One round's figures: the server's commit latency and the disk's fsync
/// time (ms, alone and with the CPUs busy), each side's bookings per second.
struct Round {
    commit_ms: f64,
    fsync_ms: f64,
    fsync_busy_ms: f64,
    pg: f64,
    baseline: f64,
    sqlite: f64,
}

fn rate(o: &Outcome) -> String {
    format!("{:.0}/s (p50 {:.2} ms, p99 {:.2} ms)", o.per_sec, o.p50_us / 1e3, o.p99_us / 1e3)
}

/// What the server did for a side of `bookings` bookings that ran `secs`:
/// for yilian (`batches`), its commits (one per group commit) and what each
/// cost the server; for the baseline, its sessions' time per booking (summed
/// over the 64 sessions, row-lock waits included). Then, for both, rows and
/// WAL per booking, and the WAL flushes (the server's own group commit joins
/// concurrent commits into one flush; the count includes the WAL writer's,
/// the time only the side's sessions').
fn where_time_goes(w: &ServerWork, bookings: f64, secs: f64, batches: bool) -> String {
    let commits = w.commits.max(1) as f64;
    let per = if batches { commits } else { bookings };
    let flushing = w.wal.map_or(String::new(), |wal| format!(" ({:.2} ms flushing WAL)", wal.sync_ms / per));
    let mut s = if batches {
        format!(
            "{} commits of {:.1} bookings, one every {:.2} ms, of which the server was busy {:.2} ms{flushing}, the flusher's {} transactions' time included",
            w.commits,
            bookings / commits,
            secs * 1e3 / commits,
            w.active_ms / commits,
            w.flushes
        )
    } else {
        format!("sessions busy on the server {:.2} ms per booking{flushing}", w.active_ms / bookings)
    };
    s += &format!(
        "; rows per booking {:.2} inserted, {:.2} deleted, {:.2} updated",
        w.rows[0] as f64 / bookings,
        w.rows[1] as f64 / bookings,
        w.rows[2] as f64 / bookings
    );
    if let Some(wal) = w.wal {
        s +=
            &format!("; WAL {:.0} B per booking, {} flushes ({:.1} bookings each)", wal.bytes as f64 / bookings, wal.syncs, bookings / wal.syncs.max(1) as f64);
    }
    s
}

fn main() {
    let server = Server::from_env();
    let per_caller = durable::env_count("DURABLE_OPS", 300);
    let rounds = durable::env_count("DURABLE_ROUNDS", 3);
    let yilian_per_caller = per_caller * 10;
    println!("{}", server.settings());
    println!(
        "{CALLERS} callers, {SLOTS} slots; per round: yilian {} bookings on each store, the baseline {}",
        CALLERS * yilian_per_caller,
        CALLERS * per_caller
    );
    let mut done = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let (commit_ms, fsync_ms, fsync_busy_ms) = (server.commit_latency_ms(), fsync_ms(false), fsync_ms(true));
        // The three sides in turn, the order reversed every other round.
        let ((y, yw), (b, bw), s) = if round % 2 == 0 {
            let y = run_yilian_pg(&server, yilian_per_caller, round);
            let b = run_baseline(&server, per_caller, round);
            (y, b, run_yilian_data_dir(yilian_per_caller, round))
        } else {
            let s = run_yilian_data_dir(yilian_per_caller, round);
            let b = run_baseline(&server, per_caller, round);
            (run_yilian_pg(&server, yilian_per_caller, round), b, s)
        };
        println!(
            "round {round}: commit {commit_ms:.2} ms, fsync {fsync_ms:.2} ms ({fsync_busy_ms:.2} ms with the CPUs busy); \
             yilian-PG {}, baseline-PG {}, yilian-SQLite {}; yilian-PG/baseline-PG {:.2}x, yilian-PG/yilian-SQLite {:.2}x",
            rate(&y),
            rate(&b),
            rate(&s),
            y.per_sec / b.per_sec,
            y.per_sec / s.per_sec
        );
        let (yn, bn) = ((CALLERS * yilian_per_caller) as f64, (CALLERS * per_caller) as f64);
        println!("  yilian-PG:   {}", where_time_goes(&yw, yn, yn / y.per_sec, true));
        println!("  baseline-PG: {}", where_time_goes(&bw, bn, bn / b.per_sec, false));
        done.push(Round { commit_ms, fsync_ms, fsync_busy_ms, pg: y.per_sec, baseline: b.per_sec, sqlite: s.per_sec });
    }
    let (vs_base, vs_lite) = (median(&done, |r| r.pg / r.baseline), median(&done, |r| r.pg / r.sqlite));
    println!(
        "durable_booking_pg: medians over {rounds} rounds ({CALLERS} callers, synchronous_commit=on, SQLite synchronous=FULL): \
         yilian-PG {:.0}/s, baseline-PG {:.0}/s, yilian-SQLite {:.0}/s; yilian-PG/baseline-PG {vs_base:.2}x (target >= 10x: {}), \
         yilian-PG/yilian-SQLite {vs_lite:.2}x (target >= 0.5x, within 2x: {}); commit {:.2} ms, fsync {:.2} ms ({:.2} ms with the CPUs busy)",
        median(&done, |r| r.pg),
        median(&done, |r| r.baseline),
        median(&done, |r| r.sqlite),
        if vs_base >= 10.0 { "met" } else { "not met" },
        if vs_lite >= 0.5 { "met" } else { "not met" },
        median(&done, |r| r.commit_ms),
        median(&done, |r| r.fsync_ms),
        median(&done, |r| r.fsync_busy_ms)
    );
}
