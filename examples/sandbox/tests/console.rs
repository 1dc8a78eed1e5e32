//! The console (`/console`, #19 item 4) in a real headless browser: Debian's
//! Chromium (`/usr/bin/chromium`; `scripts/test.sh` installs it) loads the
//! page from the sandbox binary running the demo network, runs its script
//! and dumps the DOM it built. Checked as a person would look at it: the
//! page says it is ready, the slot pool's heat map has cells with places
//! taken, the cases in flight are counted, the indicators are drawn as
//! charts with data, the events are listed, and the browser's console
//! logged nothing (no script error, no failed request).

mod common;

use common::process::{sigterm_and_wait, start};
use std::process::Command;

const CHROMIUM: &str = "/usr/bin/chromium";

/// Chromium's headless flags for a machine with no network beyond loopback
/// (background networking would be refused, many times, at every start).
fn chromium(profile: &std::path::Path, extra: &[&str], url: &str) -> (String, String) {
    assert!(std::path::Path::new(CHROMIUM).exists(), "{CHROMIUM} is missing: run scripts/test.sh, which installs Debian's chromium package");
    let out = Command::new(CHROMIUM)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking"])
        .args(["--disable-component-update", "--disable-sync", "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .output()
        .expect("chromium runs");
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

#[test]
fn the_console_shows_the_demo_networks_pool_cases_indicators_and_events_in_a_real_browser() {
    let mut server = start(&["--memory", "--demo", "--demo-activity"]);
    let profile = tempfile::tempdir().unwrap();
    let (dom, log) = chromium(profile.path(), &["--dump-dom"], &format!("{}/console", server.base));

    assert!(dom.contains(r#"data-ready="true""#), "the page never said it was ready: {}", &dom[..dom.len().min(3000)]);
    // The heat map: a cell per department and day, some with places taken ("4/12").
    let cells: Vec<&str> = dom.split(r#"class="cell""#).skip(1).collect();
    assert!(cells.len() >= 50, "{} heat-map cells", cells.len());
    let taken = cells
        .iter()
        .filter_map(|c| c.split('>').nth(1).and_then(|t| t.split('/').next()).and_then(|n| n.trim().parse::<u32>().ok()))
        .filter(|n| *n > 0)
        .count();
    assert!(taken >= 20, "cells with places taken: {taken}");
    // Cases in flight: the demo's referrals and lab orders are counted.
    assert!(dom.contains("转诊 referrals · outpatient") && dom.contains("委托检验 lab orders"), "in-flight panel");
    assert!(count(&dom, r#"class="bar""#) >= 4, "state bars: {}", count(&dom, r#"class="bar""#));
    // Indicators as charts: every supported one has a card; those with data draw a line or points.
    assert!(count(&dom, r#"class="card chart""#) >= 20, "indicator cards: {}", count(&dom, r#"class="card chart""#));
    let success = dom.split(r#"data-indicator="booking_success_rate""#).nth(1).expect("booking success chart");
    let card = &success[..success.find(r#"class="card chart""#).unwrap_or(success.len())];
    assert!(card.contains(r#"class="point""#), "the booking success rate is drawn with data");
    // Live events: the demo's bookings are in the outbox.
    assert!(count(&dom, r#"class="event""#) >= 10, "events listed: {}", count(&dom, r#"class="event""#));
    // Nothing logged to the browser's console: no script error, no failed request.
    let console: Vec<&str> = log.lines().filter(|l| l.contains("CONSOLE")).collect();
    assert!(console.is_empty(), "the browser's console: {console:#?}");
    assert!(sigterm_and_wait(&mut server).success());
}

#[test]
fn the_console_files_are_built_in_and_anything_else_under_it_is_not_found() {
    let mut server = start(&["--memory"]);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let c = reqwest::Client::new();
        for (path, kind) in [("/console", "text/html"), ("/console/console.js", "text/javascript"), ("/console/console.css", "text/css")] {
            let r = c.get(format!("{}{path}", server.base)).send().await.unwrap();
            assert_eq!(r.status(), 200, "{path}");
            assert!(r.headers()["content-type"].to_str().unwrap().starts_with(kind), "{path}");
            assert!(r.headers()["content-security-policy"].to_str().unwrap().contains("default-src 'self'"), "{path}: no CDN, no inline script");
        }
        let r = c.get(format!("{}/console/../../etc/passwd", server.base)).send().await.unwrap();
        assert_eq!(r.status(), 404);
        let r = c.get(format!("{}/console/app.js", server.base)).send().await.unwrap();
        assert_eq!(r.status(), 404);
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["code"], "UNKNOWN_COMMAND", "{v}");
    });
    assert!(sigterm_and_wait(&mut server).success());
}
