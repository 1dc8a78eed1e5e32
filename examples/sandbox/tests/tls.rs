//! TLS on the sandbox (issue #16 item 3) with certificates made at test time
//! (rcgen): a TLS request succeeds, a plain one to the TLS port fails, mutual
//! TLS refuses a client without a certificate, and the platform client
//! verifies the server's certificate against its configured CA. Plain HTTP
//! on a non-loopback address needs `--insecure-http`.

use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;
use yilian_core::client::{PlatformClient, PlatformConfig};
use yilian_core::{Engine, ErrorCode};
use yilian_sandbox::net::{tls_config, NetOptions};
use yilian_sandbox::{serve_with, AppState, Options};

/// A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files in `dir`.
struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
    /// A second CA that signed nothing here.
    other_ca: PathBuf,
}

fn pki(dir: &Path) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "yilian test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let srv_key = KeyPair::generate().unwrap();
    let srv = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap().signed_by(&srv_key, &ca, &ca_key).unwrap();
    let cli_key = KeyPair::generate().unwrap();
    let mut cli_params = CertificateParams::new(vec!["h001-his.example".to_string()]).unwrap();
    cli_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cli = cli_params.signed_by(&cli_key, &ca, &ca_key).unwrap();
    let other_key = KeyPair::generate().unwrap();
    let mut other_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    other_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let other = other_params.self_signed(&other_key).unwrap();
    let w = |name: &str, text: String| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    Pki {
        ca: w("ca.pem", ca.pem()),
        cert: w("server.pem", srv.pem()),
        key: w("server.key", srv_key.serialize_pem()),
        client_cert: w("client.pem", cli.pem()),
        client_key: w("client.key", cli_key.serialize_pem()),
        other_ca: w("other-ca.pem", other.pem()),
    }
}

struct Srv {
    port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start(pki: &Pki, mutual: bool) -> Srv {
    let engine = Engine::open(r#"{"clock_start":"2024-10-29T09:00:00+08:00"}"#).unwrap();
    let st = AppState::new(engine, Options { upload_limit: 1 << 20, event_poll: Duration::from_millis(20) });
    let tls = tls_config(&pki.cert, &pki.key, mutual.then_some(pki.ca.as_path())).unwrap();
    let net = NetOptions { tls: Some(tls), ..NetOptions::default() };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve_with(listener, st, net, async move {
        let _ = rx.await;
    }));
    Srv { port, stop: Some(tx), task }
}

impl Srv {
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(20), self.task).await.expect("server stops").unwrap().unwrap();
    }
}

fn client(ca: Option<&Path>, identity: Option<(&Path, &Path)>) -> reqwest::Client {
    let mut b = reqwest::Client::builder().timeout(Duration::from_secs(10)).use_rustls_tls();
    if let Some(ca) = ca {
        b = b.add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap());
    }
    if let Some((c, k)) = identity {
        let mut pem = std::fs::read(c).unwrap();
        pem.extend(std::fs::read(k).unwrap());
        b = b.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    b.build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_request_succeeds_and_a_plain_or_unverified_one_fails() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let srv = start(&pki, false).await;
    let r = client(Some(&pki.ca), None).get(format!("https://127.0.0.1:{}/healthz", srv.port)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"]["transport"]["tls"], true, "{v}");
    // Plain HTTP to the TLS port: no answer.
    let plain = client(None, None).get(format!("http://127.0.0.1:{}/healthz", srv.port)).send().await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success(), "a plain request to the TLS port must fail");
    // A client that does not trust the CA refuses the server.
    assert!(client(None, None).get(format!("https://127.0.0.1:{}/healthz", srv.port)).send().await.is_err());
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_refuses_a_client_without_a_certificate_and_accepts_one_the_ca_signed() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let srv = start(&pki, true).await;
    let url = format!("https://127.0.0.1:{}/healthz", srv.port);
    assert!(client(Some(&pki.ca), None).get(&url).send().await.is_err(), "no client certificate: refused");
    let r = client(Some(&pki.ca), Some((&pki.client_cert, &pki.client_key))).get(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    srv.stop().await;
}

/// The core platform client (blocking reqwest over rustls), made and dropped off the runtime.
async fn negotiate(cfg: Value) -> yilian_core::Result<u32> {
    tokio::task::spawn_blocking(move || PlatformClient::new(PlatformConfig::parse(&cfg)?)?.negotiate()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_client_refuses_a_self_signed_server_without_its_ca_and_accepts_it_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let srv = start(&pki, false).await;
    let base = json!({"base_url": format!("https://127.0.0.1:{}", srv.port), "app_id": "C001-HIS",
        "secret": "secret-of-C001-HIS-at-least-32-bytes", "retries": 0, "timeout_ms": 5000});
    let e = negotiate(base.clone()).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::PlatformUnavailable, "{e}");
    let mut wrong = base.clone();
    wrong["ca_file"] = pki.other_ca.to_string_lossy().into_owned().into();
    assert!(negotiate(wrong).await.is_err(), "a CA that did not sign the server does not help");
    let mut with_ca = base.clone();
    with_ca["ca_file"] = pki.ca.to_string_lossy().into_owned().into();
    assert_eq!(negotiate(with_ca).await.unwrap(), 1);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_client_presents_its_certificate_for_mutual_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let srv = start(&pki, true).await;
    let mut cfg = json!({"base_url": format!("https://127.0.0.1:{}", srv.port), "app_id": "C001-HIS",
        "secret": "secret-of-C001-HIS-at-least-32-bytes", "retries": 0, "timeout_ms": 5000,
        "ca_file": pki.ca.to_string_lossy()});
    assert!(negotiate(cfg.clone()).await.is_err(), "without a client certificate the server refuses");
    cfg["client_cert_file"] = pki.client_cert.to_string_lossy().into_owned().into();
    assert_eq!(negotiate(cfg.clone()).await.unwrap_err().code(), ErrorCode::InvalidConfig, "a certificate without its key is refused at parse");
    cfg["client_key_file"] = pki.client_key.to_string_lossy().into_owned().into();
    assert_eq!(negotiate(cfg).await.unwrap(), 1);
    srv.stop().await;
}

#[test]
fn plain_http_on_a_non_loopback_address_needs_insecure_http() {
    use std::io::BufRead;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_yilian-sandbox")).args(["--listen", "0.0.0.0:0", "--memory"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--insecure-http") && err.contains("--tls-cert"), "{err}");
    assert!(out.stdout.is_empty(), "it never announced a listening address");
    // With the flag: it serves, warns, and /healthz says so.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_yilian-sandbox"))
        .args(["--listen", "0.0.0.0:0", "--memory", "--insecure-http"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port = line.trim().rsplit(':').next().unwrap().to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let v: Value = rt.block_on(async { reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await.unwrap().json().await.unwrap() });
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    assert_eq!(v["data"]["transport"]["insecure_http"], true, "{v}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("WARNING: --insecure-http"));
}
