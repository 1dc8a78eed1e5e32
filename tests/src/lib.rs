//! Shared helpers of the cross-crate tests: the vector loader and matcher
//! (the C, Java and Python runners implement the same rules; see
//! `tests/vectors/README.md`).

use serde_json::Value;
use std::path::{Path, PathBuf};

pub fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors")
}

/// Every vector file, sorted by name.
pub fn vector_files() -> Vec<(String, Value)> {
    let mut files: Vec<_> = std::fs::read_dir(vectors_dir())
        .expect("tests/vectors exists")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("readable vector file");
            let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.file_name().unwrap().to_string_lossy().into_owned(), v)
        })
        .collect()
}

/// `Ok` if `actual` contains `expected` by the rules of the README.
pub fn contains(expected: &Value, actual: &Value, path: &str) -> Result<(), String> {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                let av = a.get(k).ok_or_else(|| format!("{path}.{k}: missing"))?;
                contains(ev, av, &format!("{path}.{k}"))?;
            }
            Ok(())
        }
        (Value::Array(e), Value::Array(a)) => {
            if e.len() != a.len() {
                return Err(format!("{path}: expected {} elements, got {}", e.len(), a.len()));
            }
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                contains(ev, av, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        (Value::Number(e), Value::Number(a)) if e.as_f64() == a.as_f64() => Ok(()),
        (e, a) if e == a => Ok(()),
        (e, a) => Err(format!("{path}: expected {e}, got {a}")),
    }
}

/// A language's `call`: (principal JSON text or none, command, request text)
/// → envelope text. With a principal the runner calls `call_as`.
pub type Caller = Box<dyn FnMut(Option<&str>, &str, &str) -> String>;

/// Runs one case through `call`, which takes (command, request text) and
/// returns the envelope text. Returns the number of steps run.
pub fn run_case(file_config: Option<&Value>, case: &Value, open_and_call: &mut dyn FnMut(&str) -> Caller) -> Result<usize, String> {
    let config = case.get("config").or(file_config).cloned().unwrap_or_else(|| serde_json::json!({}));
    let mut call = open_and_call(&config.to_string());
    let steps = case.get("steps").and_then(Value::as_array).ok_or("case has no steps")?;
    for (i, step) in steps.iter().enumerate() {
        let command = step["command"].as_str().ok_or("step has no command")?;
        let request = match step.get("request_text") {
            Some(t) => t.as_str().ok_or("request_text must be a string")?.to_string(),
            None => step.get("request").cloned().unwrap_or_else(|| serde_json::json!({})).to_string(),
        };
        let principal = step.get("principal").map(Value::to_string);
        let out = call(principal.as_deref(), command, &request);
        let env: Value = serde_json::from_str(&out).map_err(|e| format!("step {i} ({command}): envelope is not JSON: {e}"))?;
        if let Some(err) = step.get("expect_error") {
            if env["status"] != "error" {
                return Err(format!("step {i} ({command}): expected error {err}, got {out}"));
            }
            contains(err, &env, "").map_err(|e| format!("step {i} ({command}): {e}; envelope {out}"))?;
        } else {
            if env["status"] != "success" {
                return Err(format!("step {i} ({command}): expected success, got {out}"));
            }
            if let Some(exp) = step.get("expect") {
                contains(exp, &env["data"], "data").map_err(|e| format!("step {i} ({command}): {e}; envelope {out}"))?;
            }
        }
    }
    Ok(steps.len())
}

/// Runs every case of every vector file that `keep(config, case)` keeps,
/// each through its own `open_and_call`. Returns (cases, steps) passed and
/// the failures, each named by file and case.
pub fn run_all(open_and_call: &mut dyn FnMut(&str) -> Caller, keep: &dyn Fn(&Value, &Value) -> bool) -> (usize, usize, Vec<String>) {
    let files = vector_files();
    assert!(!files.is_empty(), "no vectors found in {}", vectors_dir().display());
    let (mut cases, mut steps, mut failures) = (0, 0, Vec::new());
    for (name, file) in &files {
        for case in file["cases"].as_array().expect("cases array") {
            let config = case.get("config").or(file.get("config")).cloned().unwrap_or_else(|| serde_json::json!({}));
            if !keep(&config, case) {
                continue;
            }
            match run_case(file.get("config"), case, open_and_call) {
                Ok(n) => {
                    cases += 1;
                    steps += n;
                }
                Err(e) => failures.push(format!("{name} / {}: {e}", case["name"])),
            }
        }
    }
    (cases, steps, failures)
}

/// Crash tests (S3): a test runs one `#[ignore]`d test of its own binary as
/// a child process on a data directory named by an environment variable,
/// reads the steps the child acknowledges from its output, and kills it with
/// SIGKILL mid-work; then it reopens the directory and checks what survived.
pub mod crash {
    use std::io::{BufRead, BufReader, Lines};
    use std::process::{Child, ChildStdout, Command, Stdio};

    /// A running child and what it prints.
    pub struct Running {
        child: Child,
        out: Lines<BufReader<ChildStdout>>,
    }

    /// Starts `test` of the current test binary as a child with `var=dir`.
    pub fn start(test: &str, var: &str, dir: &str) -> Running {
        let mut child = Command::new(std::env::current_exe().expect("the test binary"))
            .args(["--ignored", "--exact", test, "--nocapture", "--test-threads=1"])
            .env(var, dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the child starts");
        let out = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        Running { child, out }
    }

    impl Running {
        /// The child's next line of output, `None` once it has ended. The
        /// harness's `test <name> ... ` is taken off the line it precedes.
        pub fn line(&mut self) -> Option<String> {
            let line = self.out.next()?.expect("the child's output is text");
            Some(match line.strip_prefix("test ").and_then(|l| l.split_once(" ... ")) {
                Some((_, rest)) => rest.to_string(),
                None => line,
            })
        }

        /// SIGKILL (what `Child::kill` sends on Unix): no destructor, flush
        /// or close runs in the child.
        pub fn kill(mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The isolation sweep's rules (S1), shared by the in-process sweep
/// (`tests/tests/isolation.rs`) and the one over the wire
/// (`examples/sandbox/tests/isolation_http.rs`).
pub mod isolation {
    use serde_json::Value;
    use std::collections::HashMap;
    use yilian_core::{Engine, Principal};

    /// Fields that name an existing object a change acts on.
    pub const OBJECT_FIELDS: &[&str] = &[
        "booking_id",
        "reservation_id",
        "waitlist_id",
        "referral_id",
        "admission_id",
        "exam_id",
        "consultation_id",
        "order_id",
        "barcode",
        "barcodes",
        "shipment_id",
        "critical_id",
    ];

    /// Each command's acting fields and roles, as `access-rules` serves them.
    pub struct Rules {
        pub acting: HashMap<String, Vec<String>>,
        pub roles: HashMap<String, Vec<String>>,
    }

    impl Rules {
        pub fn of(e: &Engine) -> Rules {
            let v = e.call_value_as(&Principal::platform(), "access-rules", "{}").unwrap();
            let (mut acting, mut roles) = (HashMap::new(), HashMap::new());
            for c in v["commands"].as_array().unwrap() {
                let name = c["command"].as_str().unwrap().to_string();
                let list = |k: &str| c[k].as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect::<Vec<_>>();
                acting.insert(name.clone(), list("acting_fields"));
                roles.insert(name, list("roles"));
            }
            Rules { acting, roles }
        }

        /// Whether another institution is tried on this step: it names an
        /// acting party or an existing object, or a community centre may not
        /// call it. A step that does neither acts as whoever calls it.
        pub fn swept(&self, command: &str, req: &Value) -> bool {
            let named = self.acting[command].iter().any(|k| req.get(k).is_some_and(|v| v.is_string() || v.is_number()));
            let community_allowed = self.roles[command].iter().any(|r| r == "community");
            named || !community_allowed || OBJECT_FIELDS.iter().any(|k| req.get(*k).is_some())
        }
    }

    /// What a caller can see: the outbox, the audit trail and the answers of
    /// the queries asked so far. Changes the clock drives (hold expiry,
    /// overdue critical values) are made first: any call may trigger them,
    /// and they are nobody's act. Read after `Engine::sync`: an expiry a
    /// refused earlier call swept is committed with nobody waiting
    /// (`Pool::sweep`), so the audit trail could show it a moment later (seen
    /// in CI: a payment refused as expired, its expiry's entry appearing
    /// between the isolation sweep's two looks).
    pub fn observe(e: &Engine, queries: &[(String, String)]) -> Vec<String> {
        let _ = e.sync();
        look(e, queries)
    }

    fn look(e: &Engine, queries: &[(String, String)]) -> Vec<String> {
        let p = Principal::platform();
        e.call_as(&p, "expire-holds", "{}");
        e.call_as(&p, "lab-check-overdue", "{}");
        let mut out = vec![e.call_as(&p, "next-events", r#"{"limit":10000}"#), e.call_as(&p, "audit-log", r#"{"limit":1000}"#)];
        for (c, r) in queries {
            out.push(e.call_as(&p, c, r));
        }
        out
    }
}

/// Two tests of one body `fn(spec: &str)`: `$sqlite` on a temporary data
/// directory, `$postgres` on a fresh database of the test cluster.
#[macro_export]
macro_rules! on_both_stores {
    ($sqlite:ident, $postgres:ident, $body:ident) => {
        #[test]
        fn $sqlite() {
            let dir = tempfile::tempdir().unwrap();
            $body(dir.path().to_str().unwrap());
        }

        #[test]
        fn $postgres() {
            $body(&$crate::store::fresh_postgres());
        }
    };
}

/// Stores for tests that run on more than one: a spec is a data directory's
/// path, or `postgres:` and a conninfo (the PostgreSQL store).
pub mod store {
    use serde_json::{json, Value};

    /// The variable scripts/test.sh sets to its throwaway PostgreSQL cluster's
    /// conninfo (superuser, Unix socket).
    pub const POSTGRES_VAR: &str = "YILIAN_TEST_POSTGRES";

    /// `config` with the store `spec` names.
    pub fn config(spec: &str, mut config: Value) -> String {
        match spec.strip_prefix("postgres:") {
            Some(conninfo) => config["store"] = json!({ "postgres": conninfo }),
            None => config["data_dir"] = json!(spec),
        }
        config.to_string()
    }

    /// The throwaway cluster's conninfo. Fails the test without one: a test
    /// on PostgreSQL that cannot reach it must not pass silently.
    pub fn postgres_admin() -> String {
        std::env::var(POSTGRES_VAR).unwrap_or_else(|_| {
            panic!("{POSTGRES_VAR} is not set: run scripts/test.sh, which starts a throwaway PostgreSQL cluster, or set it to a superuser conninfo")
        })
    }

    /// A new, empty database on the throwaway cluster, as a store spec.
    pub fn fresh_postgres() -> String {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let admin = postgres_admin();
        let name = format!(
            "yl_{}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos()
        );
        let mut c = postgres::Client::connect(&admin, postgres::NoTls).expect("the test cluster answers");
        c.batch_execute(&format!("CREATE DATABASE {name}")).expect("a database is created");
        format!("postgres:{admin} dbname={name}")
    }
}
