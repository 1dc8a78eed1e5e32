//! `yilian-sandbox`: the sandbox platform server for joint testing (联调).

use clap::Parser;
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::time::Duration;
use yilian_core::Engine;
use yilian_core::{Principal, Role};
use yilian_sandbox::{demo, describe, reports_dir, serve, AppState, Auth, Options, DEFAULT_UPLOAD_LIMIT};

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
    let reports = if args.memory {
        config.remove("data_dir");
        match &data_dir {
            Some(d) => reports_dir(d),
            None => {
                let t = tempfile::tempdir().unwrap_or_else(|e| fail(format!("temporary directory: {e}")));
                let p = t.path().join("reports");
                _tmp_reports = Some(t);
                p
            }
        }
    } else {
        let d = data_dir.unwrap_or_else(|| PathBuf::from("yilian-data"));
        config.insert("data_dir".into(), Value::String(d.to_string_lossy().into_owned()));
        reports_dir(&d)
    };
    // Reports are files under DIR/reports unless the config names its own
    // report_dir; the upload limit bounds the document too unless it names one.
    config.entry("report_dir").or_insert_with(|| Value::String(reports.to_string_lossy().into_owned()));
    config.entry("report_max_bytes").or_insert_with(|| Value::from(args.max_upload_bytes));
    let config_json = Value::Object(config).to_string();
    if args.signature_window <= 0 {
        fail("--signature-window must be positive".into());
    }
    let auth = match (&args.keys, &args.principal) {
        (Some(p), _) => Auth::Signed(yilian_sandbox::signature::load_keys(p, args.signature_window).unwrap_or_else(|e| fail(e))),
        (None, spec) => Auth::Trusted(parse_principal(spec.as_deref().unwrap_or("platform")).unwrap_or_else(|e| fail(e))),
    };
    let engine = Engine::open(&config_json).unwrap_or_else(|e| fail(format!("cannot open the engine: {e}")));
    if args.demo {
        match demo::load(&engine) {
            Ok(v) => eprintln!(
                "yilian-sandbox: demo network loaded: hospital {}, schedules {} .. {}: {} slots created, {} updated",
                v["hospital_id"], v["from"], v["to"], v["sync"]["created"], v["sync"]["updated"]
            ),
            Err(e) => fail(format!("loading the demo network: {e}")),
        }
    }
    let listener = tokio::net::TcpListener::bind(&args.listen).await.unwrap_or_else(|e| fail(format!("cannot listen on {}: {e}", args.listen)));
    let addr = listener.local_addr().unwrap_or_else(|e| fail(format!("local address: {e}")));
    // Tests read this line to find a port chosen with --listen 127.0.0.1:0.
    println!("yilian-sandbox listening on http://{addr}");
    match &auth {
        Auth::Signed(k) => eprintln!(
            "yilian-sandbox: signatures required on /api (window ±{} s, wall clock); {} app ids, each acting as its configured principal",
            args.signature_window,
            k.principals.len()
        ),
        Auth::Trusted(p) => eprintln!(
            "yilian-sandbox: WARNING: no --keys: every request acts as the single trusted principal `{}`; anyone who can reach {addr} acts as it (see /healthz)",
            describe(p)
        ),
    }
    let opts = Options { upload_limit: args.max_upload_bytes, event_poll: Duration::from_millis(50) };
    let st = AppState::with_auth(engine, opts, auth);
    if let Err(e) = serve(listener, st, shutdown_signal()).await {
        fail(format!("server: {e}"));
    }
    eprintln!("yilian-sandbox: stopped");
}
