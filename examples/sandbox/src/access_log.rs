//! The access log (`--access-log FILE`, issue #16 item 8): one line per
//! request in the Combined Log Format,
//!
//! ```text
//! 127.0.0.1 - C001-HIS [05/Dec/2026:14:03:07 +0000] "POST /api/v1/book-slot HTTP/1.1" 200 312 "-" "yilian/0.1"
//! ```
//!
//! with the verified app id in the user field (`-` when none). Invariants:
//! no body is ever logged; a query string (which may carry an ID number or a
//! patient id) is replaced by `?…`, in the request line and in the referer;
//! control characters and quotes in the logged fields are escaped, so a
//! line cannot be forged. The file is opened for appending and reopened on
//! SIGHUP (the binary wires the signal) so logrotate can move it away.
//!
//! Lock order: the file mutex is the only lock, held for one `write` call.

use crate::signature::AppId;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub struct AccessLog {
    path: PathBuf,
    file: Mutex<File>,
}

fn open(path: &Path) -> std::io::Result<File> {
    let mut o = OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o640);
    }
    o.open(path)
}

impl AccessLog {
    pub fn open(path: &Path) -> std::io::Result<Arc<AccessLog>> {
        Ok(Arc::new(AccessLog { path: path.to_path_buf(), file: Mutex::new(open(path)?) }))
    }

    /// Reopens the file by its name (after logrotate moved the old one).
    pub fn reopen(&self) -> std::io::Result<()> {
        let f = open(&self.path)?;
        *self.file.lock().unwrap_or_else(|e| e.into_inner()) = f;
        Ok(())
    }

    fn write_line(&self, line: &str) {
        let mut f = self.file.lock().unwrap_or_else(|e| e.into_inner());
        // A full disk must not fail the request: the line is lost.
        let _ = f.write_all(line.as_bytes());
    }
}

/// `/path` with any query replaced by `?…`.
pub fn redact_target(path: &str, has_query: bool) -> String {
    if has_query {
        format!("{path}?…")
    } else {
        path.to_string()
    }
}

/// Escapes quotes, backslashes and control characters (as `\xNN`).
fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32 & 0xff)),
            c => out.push(c),
        }
    }
    out
}

fn referer(v: &str) -> String {
    match v.split_once('?') {
        Some((base, _)) => format!("{}?…", clean(base)),
        None => clean(v),
    }
}

/// The middleware writing one line per answered request.
pub async fn log(req: Request, next: Next) -> Response {
    let Some(log) = req.extensions().get::<Arc<crate::net::Shared>>().and_then(|n| n.opts.access_log.clone()) else {
        return next.run(req).await;
    };
    let peer = req.extensions().get::<crate::net::Peer>().map(|p| p.0.ip().to_string()).unwrap_or_else(|| "-".into());
    let method = clean(req.method().as_str());
    let target = clean(&redact_target(req.uri().path(), req.uri().query().is_some()));
    let version = format!("{:?}", req.version());
    let (refr, agent) = {
        let h = req.headers();
        let header = |n: axum::http::HeaderName| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
        (
            header(axum::http::header::REFERER).map(|r| referer(&r)).unwrap_or_else(|| "-".into()),
            header(axum::http::header::USER_AGENT).map(|a| clean(&a)).unwrap_or_else(|| "-".into()),
        )
    };
    let resp = next.run(req).await;
    let user = resp.extensions().get::<AppId>().map(|a| clean(&a.0)).unwrap_or_else(|| "-".into());
    let size = resp.headers().get(axum::http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).map(str::to_string).unwrap_or_else(|| "-".into());
    let time = chrono::Utc::now().format("%d/%b/%Y:%H:%M:%S +0000");
    let line = format!("{peer} - {user} [{time}] \"{method} {target} {version}\" {} {size} \"{refr}\" \"{agent}\"\n", resp.status().as_u16());
    log.write_line(&line);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_never_reaches_the_log_and_quotes_cannot_forge_a_line() {
        assert_eq!(redact_target("/api/v1/booking-info", true), "/api/v1/booking-info?…");
        assert_eq!(redact_target("/healthz", false), "/healthz");
        assert_eq!(referer("https://his.example/p?id_number=110101199003071234"), "https://his.example/p?…");
        assert_eq!(clean("a\"b\nc"), "a\\\"b\\x0ac");
    }
}
