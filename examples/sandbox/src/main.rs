//! `yilian-sandbox`: the sandbox platform server for joint testing (联调).

use clap::Parser;
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::time::Duration;
use yilian_core::Engine;
use yilian_core::{Principal, Role};
use yilian_sandbox::net::{self, Lockout, NetOptions, RateLimit};
use yilian_sandbox::seat::{campaign, Seat};
use yilian_sandbox::{demo, describe, reports_dir, serve_with, AppState, Auth, Options, DEFAULT_UPLOAD_LIMIT};

/// mimalloc, not glibc's malloc: a request's allocations are small and
/// short-lived and made on two or more threads at once; under the bench's
/// load glibc's arenas spent about a sixth of the server's time in
/// `_int_malloc`, `_int_free` and `malloc_consolidate` (perf, #21).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "yilian-sandbox", version, about = "yilian sandbox platform server: the source's interfaces over HTTP (/api/v1/<command>)")]
struct Args {
    /// Address to listen on (port 0 picks a free port; the chosen address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Directory of the durable embedded store; reports go to DIR/reports.
    /// Default ./yilian-data, or the config file's data_dir.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The store on PostgreSQL (a libpq conninfo or a postgres:// URL)
    /// instead of a data directory: report documents are then kept in the
    /// database too, unless --data-dir names a directory for them. Several
    /// servers may share one database: one leads, the others stand by
    /// (/healthz answers 503 with "role": "standby") and take over when
    /// the leader stops (its lease: the config's store.lease_seconds, default 10).
    #[arg(long, value_name = "CONNINFO", conflicts_with = "memory")]
    store: Option<String>,
    /// Keep the pool in memory (nothing survives a restart); reports go to a
    /// temporary directory unless --data-dir is given.
    #[arg(long)]
    memory: bool,
    /// Engine configuration JSON file (e.g. {"clock_start":"2024-10-29T09:00:00+08:00"}).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Load the demo network with a week of schedules from today.
    #[arg(long)]
    demo: bool,
    /// With --demo, on a fresh store: a week of bookings, referrals, an exam
    /// application and lab orders, so the console (/console) has something to show.
    #[arg(long, requires = "demo")]
    demo_activity: bool,
    /// Largest report upload in bytes.
    #[arg(long, default_value_t = DEFAULT_UPLOAD_LIMIT)]
    max_upload_bytes: usize,
    /// JSON object of app id → {"secret", "role", "institution_id"}: every
    /// /api request must then carry a valid HMAC-SM3 signature (docs/client.md)
    /// and acts as its app id's principal; a body naming another institution gets 403.
    #[arg(long, value_name = "FILE")]
    keys: Option<PathBuf>,
    /// Without --keys: the one trusted principal every request acts as, e.g.
    /// `platform` (default), `community:C001`, `hospital:H001`, `lab:L001`, `regulator`.
    #[arg(long, value_name = "ROLE[:INSTITUTION]", conflicts_with = "keys")]
    principal: Option<String>,
    /// How far (seconds) a signed request's timestamp may be from this server's wall clock.
    #[arg(long, value_name = "SECS", default_value_t = yilian_core::client::sign::DEFAULT_WINDOW_SECS)]
    signature_window: i64,
    /// TLS: the server's certificate chain (PEM). With --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS: the server's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Mutual TLS: clients must present a certificate chaining to a CA in this PEM file.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
    /// Allow plain HTTP on a non-loopback address (unencrypted; warned at start and in /healthz).
    #[arg(long, conflicts_with = "tls_cert")]
    insecure_http: bool,
    /// Seconds a client has to send a whole request head (also the keep-alive idle timeout).
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    header_timeout: u64,
    /// Seconds a request may take from its head to its answer (a trickled body is cut off: 408).
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    request_timeout: u64,
    /// The same for /api/v1/upload-report.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    upload_timeout: u64,
    /// Most connections served at once (default: min(512, half the open-file limit)).
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,
    /// Extra connections kept for GET /healthz when the cap is reached.
    #[arg(long, value_name = "N", default_value_t = 4)]
    health_reserve: usize,
    /// Requests per second allowed per client IP (token bucket; 0 turns the limit off).
    #[arg(long, value_name = "N", default_value_t = 100.0)]
    rate_limit: f64,
    /// Burst size of the per-client token bucket.
    #[arg(long, value_name = "N", default_value_t = 200.0)]
    rate_burst: f64,
    /// Signature failures from one IP within --lockout-window that lock it out (0: never).
    #[arg(long, value_name = "N", default_value_t = 20)]
    lockout_failures: u32,
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    lockout_window: u64,
    /// How long a locked-out IP is refused (429 CLIENT_LOCKED_OUT).
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    lockout_secs: u64,
    /// Append one Combined Log Format line per request (no bodies, no query strings); reopened on SIGHUP.
    #[arg(long, value_name = "FILE")]
    access_log: Option<PathBuf>,
}

/// `--principal ROLE[:INSTITUTION]`.
fn parse_principal(spec: &str) -> Result<Principal, String> {
    let (role, inst) = match spec.split_once(':') {
        Some((r, i)) => (r, Some(i)),
        None => (spec, None),
    };
    let role =
        Role::parse(role.trim()).ok_or_else(|| format!("--principal: unknown role `{role}`; expected platform, hospital, community, lab or regulator"))?;
    Principal::new(role, inst, None).map_err(|e| format!("--principal: {}", e.message()))
}

fn fail(msg: String) -> ! {
    eprintln!("yilian-sandbox: {msg}");
    std::process::exit(2);
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    eprintln!("yilian-sandbox: shutting down: finishing in-flight requests, then closing the store");
}

/// `--demo`: loads the demo network into a newly opened engine (again on
/// a standby that takes over: loading it twice changes nothing).
fn load_demo(engine: &Engine) -> Result<Value, yilian_core::Error> {
    report_demo(demo::load(engine)?)
}

/// `--demo --demo-activity`.
fn load_demo_with_activity(engine: &Engine) -> Result<Value, yilian_core::Error> {
    let v = report_demo(demo::load_with_activity(engine)?)?;
    eprintln!("yilian-sandbox: demo activity: {}", v["activity"]);
    Ok(v)
}

fn report_demo(v: Value) -> Result<Value, yilian_core::Error> {
    eprintln!(
        "yilian-sandbox: demo network loaded: hospital {}, schedules {} .. {}: {} slots created, {} updated",
        v["hospital_id"], v["from"], v["to"], v["sync"]["created"], v["sync"]["updated"]
    );
    Ok(v)
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let mut config: Map<String, Value> = match &args.config {
        None => Map::new(),
        Some(p) => {
            let text = std::fs::read_to_string(p).unwrap_or_else(|e| fail(format!("cannot read {}: {e}", p.display())));
            match serde_json::from_str(&text) {
                Ok(Value::Object(m)) => m,
                _ => fail(format!("{} is not a JSON object", p.display())),
            }
        }
    };
    // The flag wins over the config file's data_dir; --memory drops both.
    let data_dir: Option<PathBuf> = args.data_dir.clone().or_else(|| config.get("data_dir").and_then(Value::as_str).map(PathBuf::from));
    let mut _tmp_reports: Option<tempfile::TempDir> = None; // removed at exit
    if let Some(pg) = &args.store {
        // Beside the config file's other store settings (`lease_seconds`).
        let store = config.entry("store").or_insert_with(|| Value::Object(Map::new()));
        match store.as_object_mut() {
            Some(m) => {
                m.insert("postgres".into(), Value::String(pg.clone()));
            }
            None => fail("the config's `store` is not an object".into()),
        }
    }
    let on_postgres = config.contains_key("store");
    let reports = if on_postgres {
        config.remove("data_dir");
        args.data_dir.as_deref().map(reports_dir)
    } else if args.memory {
        config.remove("data_dir");
        match &data_dir {
            Some(d) => Some(reports_dir(d)),
            None => {
                let t = tempfile::tempdir().unwrap_or_else(|e| fail(format!("temporary directory: {e}")));
                let p = t.path().join("reports");
                _tmp_reports = Some(t);
                Some(p)
            }
        }
    } else {
        let d = data_dir.unwrap_or_else(|| PathBuf::from("yilian-data"));
        config.insert("data_dir".into(), Value::String(d.to_string_lossy().into_owned()));
        Some(reports_dir(&d))
    };
    // Reports are files under DIR/reports unless the config names its own
    // report_dir (on PostgreSQL without --data-dir: in the database); the
    // upload limit bounds the document too unless the config names one.
    if let Some(reports) = reports {
        config.entry("report_dir").or_insert_with(|| Value::String(reports.to_string_lossy().into_owned()));
    }
    config.entry("report_max_bytes").or_insert_with(|| Value::from(args.max_upload_bytes));
    // What is due runs on the server's own timer (`run-due` in the docs),
    // a manual clock included (each `advance-clock` runs a pass at once),
    // unless the config says otherwise.
    config.entry("timer").or_insert_with(|| serde_json::json!({"enabled": true}));
    let config_json = Value::Object(config).to_string();
    if args.signature_window <= 0 {
        fail("--signature-window must be positive".into());
    }
    let auth = match (&args.keys, &args.principal) {
        (Some(p), _) => Auth::Signed(yilian_sandbox::signature::load_keys(p, args.signature_window).unwrap_or_else(|e| fail(e))),
        (None, spec) => Auth::Trusted(parse_principal(spec.as_deref().unwrap_or("platform")).unwrap_or_else(|e| fail(e))),
    };
    // On a shared store a server finding another one leading starts as its
    // standby (seat.rs); any other failure to open is fatal at start.
    let engine = match Engine::open(&config_json) {
        Ok(e) => Some(e),
        Err(e) if on_postgres && e.code() == yilian_core::ErrorCode::StoreLocked => {
            eprintln!("yilian-sandbox: standby: {}", e.message());
            None
        }
        Err(e) => fail(format!("cannot open the engine: {e}")),
    };
    let demo_loader: Option<yilian_sandbox::seat::OnLead> = match (args.demo, args.demo_activity) {
        (true, true) => Some(load_demo_with_activity),
        (true, false) => Some(load_demo),
        _ => None,
    };
    if let (Some(engine), Some(load)) = (&engine, demo_loader) {
        load(engine).unwrap_or_else(|e| fail(format!("loading the demo network: {e}")));
    }
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(c), Some(k)) => Some(net::tls_config(c, k, args.tls_client_ca.as_deref()).unwrap_or_else(|e| fail(e))),
        _ => None,
    };
    let access_log =
        args.access_log.as_ref().map(|p| yilian_sandbox::access_log::AccessLog::open(p).unwrap_or_else(|e| fail(format!("--access-log {}: {e}", p.display()))));
    if args.header_timeout == 0 || args.request_timeout == 0 || args.upload_timeout == 0 {
        fail("--header-timeout, --request-timeout and --upload-timeout must be positive".into());
    }
    if !(args.rate_limit >= 0.0 && args.rate_burst >= 1.0) {
        fail("--rate-limit must be ≥ 0 and --rate-burst ≥ 1".into());
    }
    let listener = tokio::net::TcpListener::bind(&args.listen).await.unwrap_or_else(|e| fail(format!("cannot listen on {}: {e}", args.listen)));
    let addr = listener.local_addr().unwrap_or_else(|e| fail(format!("local address: {e}")));
    if tls.is_none() && !net::plain_http_allowed(&addr, args.insecure_http) {
        fail(format!(
            "refusing plain HTTP on the non-loopback address {addr}: give --tls-cert and --tls-key, or --insecure-http to accept unencrypted traffic"
        ));
    }
    if let Some(log) = access_log.clone() {
        // Installed before the address is announced, so a SIGHUP never kills the server.
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).unwrap_or_else(|e| fail(format!("SIGHUP handler: {e}")));
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                if let Err(e) = log.reopen() {
                    eprintln!("yilian-sandbox: cannot reopen the access log: {e}");
                }
            }
        });
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    // Tests read this line to find a port chosen with --listen 127.0.0.1:0.
    println!("yilian-sandbox listening on {scheme}://{addr}");
    match (&tls, args.insecure_http) {
        (Some(_), _) => eprintln!("yilian-sandbox: TLS on{}", if args.tls_client_ca.is_some() { ", client certificates required (mutual TLS)" } else { "" }),
        (None, true) => eprintln!("yilian-sandbox: WARNING: --insecure-http: plain HTTP on {addr}; requests, answers and signatures travel unencrypted"),
        (None, false) => eprintln!("yilian-sandbox: note: plain HTTP on the loopback address {addr} (use --tls-cert/--tls-key for anything else)"),
    }
    match &auth {
        Auth::Signed(k) => eprintln!(
            "yilian-sandbox: signatures required on /api and /metrics (window ±{} s, wall clock); {} app ids, each acting as its configured principal",
            args.signature_window,
            k.principals.len()
        ),
        Auth::Trusted(p) => eprintln!(
            "yilian-sandbox: WARNING: no --keys: every request acts as the single trusted principal `{}`; anyone who can reach {addr} acts as it (see /healthz)",
            describe(p)
        ),
    }
    let net = NetOptions {
        header_timeout: Duration::from_secs(args.header_timeout),
        request_timeout: Duration::from_secs(args.request_timeout),
        upload_timeout: Duration::from_secs(args.upload_timeout),
        max_connections: args.max_connections.unwrap_or_else(net::default_max_connections).max(1),
        health_reserve: args.health_reserve,
        rate: RateLimit { per_sec: args.rate_limit, burst: args.rate_burst },
        lockout: Lockout {
            failures: args.lockout_failures,
            window: Duration::from_secs(args.lockout_window.max(1)),
            lock: Duration::from_secs(args.lockout_secs),
        },
        tls,
        insecure_http: args.insecure_http,
        access_log,
    };
    let opts = Options { upload_limit: args.max_upload_bytes, event_poll: Duration::from_millis(50) };
    let st = match engine {
        Some(e) if !on_postgres => AppState::with_auth(e, opts, auth),
        e => {
            let st = AppState::with_seat(Seat::shared(e), opts, auth);
            tokio::spawn(campaign(st.clone(), config_json, demo_loader));
            st
        }
    };
    if let Err(e) = serve_with(listener, st, net, shutdown_signal()).await {
        fail(format!("server: {e}"));
    }
    eprintln!("yilian-sandbox: stopped");
}
