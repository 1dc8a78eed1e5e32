//! The command registry: every domain's command table, collected once.
//!
//! Each domain declares its commands with `command::command_table!` (name,
//! query or change, roles, acting fields, handler in the domain's own type);
//! here each table is registered with the one line that hands its handlers
//! what they work on. Everything else reads the result: dispatch
//! ([`dispatch`]), the permission rule (`principal::bind_fields`), the audit trail
//! (changes only), metrics, the HTTP method of the sandbox
//! (`Engine::is_query`), `engine-info`, the `access-rules` command and the
//! docs' command tables (checked by a test).
//!
//! Call flow: binding → [`dispatch`] → role check → `principal::bind_fields` (body
//! fields against the principal) → the domain's handler, which sees the bound
//! principal as `Req::who` → the domain's change context → store and outbox →
//! the answer, its patient ids masked for the bound principal
//! (`views::mask_patient_ids`).

use crate::command::{Command, Decl, Kind};
use crate::domains::Domains;
use crate::error::{Error, ErrorCode, Result};
use crate::pool::Pool;
use crate::principal::Principal;
use crate::reply::Data;
use crate::request::{Given, Req};
use serde_json::Value;
use std::borrow::Cow;
use std::sync::LazyLock;

type Run = Box<dyn Fn(&Domains, &Req) -> Result<Data> + Send + Sync>;

/// One registered command: its declaration and how to run it on the domains.
pub(crate) struct Entry {
    pub decl: Decl,
    run: Run,
}

/// Adds a domain's table; `with(domains, name, kind, req, handler)`
/// runs one of its handlers on what it works on. Its answers are `Value`s,
/// or `Data` where a handler writes text (`reply.rs`).
fn register<H: Copy + Send + Sync + 'static, O: Into<Data> + 'static>(
    all: &mut Vec<Entry>,
    table: &'static [Command<H>],
    with: fn(&Domains, &'static str, Kind, &Req, H) -> Result<O>,
) {
    for c in table {
        let (name, kind, h) = (c.decl.name, c.decl.kind, c.handler);
        all.push(Entry { decl: c.decl, run: Box::new(move |d, r| with(d, name, kind, r, h).map(Into::into)) });
    }
}

/// Every command: the slot pool's first, then each domain's, then the engine's own.
static ALL: LazyLock<Vec<Entry>> = LazyLock::new(|| {
    let mut all = Vec::new();
    register(&mut all, crate::commands::COMMANDS, |d, _, _, r, h| h(&d.pool, r));
    register(&mut all, crate::lab::COMMANDS, |d, name, kind, r, h| crate::lab::run(&d.pool, &d.lab, name, kind, r, h));
    register(&mut all, crate::referral::COMMANDS, |d, name, _, r, h| crate::referral::run(&d.pool, &d.referral, &d.chronic, name, r, h));
    register(&mut all, crate::chronic::COMMANDS, |d, name, _, r, h| crate::chronic::run(&d.pool, &d.chronic, name, r, h));
    register(&mut all, crate::client::COMMANDS, |d, _, _, r, h| h(&d.pool, &d.client, r));
    register(&mut all, crate::due::COMMANDS, |d, _, _, r, h| h(d, r));
    register(&mut all, crate::upstream::COMMANDS, |d, _, _, r, h| h(d, r));
    register(&mut all, crate::indicators::COMMANDS, |d, _, _, r, h| h(d, r));
    // The quick menus submit through dispatch: the registry hands them it.
    register(&mut all, crate::assistant::COMMANDS, |d, _, _, r, h| h(&crate::assistant::Parts { d, dispatch }, r));
    register(&mut all, crate::commands::ENGINE, |d, _, _, r, h| {
        h(&crate::commands::EngineParts { pool: &d.pool, monitor: &d.monitor, commands: &DECLS, due_work: crate::due::works() }, r)
    });
    all
});

/// The declarations, in registration order.
static DECLS: LazyLock<Vec<Decl>> = LazyLock::new(|| ALL.iter().map(|e| e.decl).collect());

/// Sorted by the name's hash for a binary search over integers, the name
/// compared once at the end (a plain sorted list also keeps leak checkers
/// quiet: it is reachable from its start, unlike a hash table).
static BY_NAME: LazyLock<Vec<(u64, &'static Entry)>> = LazyLock::new(|| {
    let mut v: Vec<_> = ALL.iter().map(|c| (crate::request::fingerprint(&[c.decl.name.as_bytes()]), c)).collect();
    v.sort_unstable_by_key(|(h, _)| *h);
    v
});

/// The names, in registration order.
pub(crate) static NAMES: LazyLock<Vec<&'static str>> = LazyLock::new(|| ALL.iter().map(|c| c.decl.name).collect());

#[cfg(test)]
fn all() -> &'static [Entry] {
    &ALL
}

pub(crate) fn find(name: &str) -> Option<&'static Entry> {
    let h = crate::request::fingerprint(&[name.as_bytes()]);
    let first = BY_NAME.partition_point(|(k, _)| *k < h);
    // Names that share a hash sit side by side; the name tells them apart.
    BY_NAME[first..].iter().take_while(|(k, _)| *k == h).map(|(_, e)| *e).find(|e| e.decl.name == name)
}

/// Runs one command for `principal`: the role check and the binding of the
/// body's acting fields happen here, once, before any domain code; then a
/// call on an upstream hospital's slot is handed to it (`upstream.rs`).
pub(crate) fn dispatch(d: &Domains, principal: &Principal, command: &str, req: &Value) -> Result<Value> {
    run(d, principal, command, Given::of_value(req), true)?.into_value()
}

/// [`dispatch`] with the answer as the handler gave it (text stays text):
/// the engine's command layer.
pub(crate) fn answer(d: &Domains, principal: &Principal, command: &str, req: Result<Given>) -> Result<Data> {
    run(d, principal, command, req, true)
}

/// [`dispatch`] without the hand-off: the mirror's own half of one (its
/// tentative hold, confirmed or released), which must not be handed again.
pub(crate) fn dispatch_here(d: &Domains, principal: &Principal, command: &str, req: &Value) -> Result<Value> {
    run(d, principal, command, Given::of_value(req), false)?.into_value()
}

/// `req` is the request, or why it is none (checked after the command is
/// known, so an unknown command is named first).
fn run(d: &Domains, principal: &Principal, command: &str, req: Result<Given>, route: bool) -> Result<Data> {
    let pool = &d.pool;
    let entry = find(command).ok_or_else(|| unknown_command(command))?;
    let cmd = &entry.decl;
    let mut body = req?;
    if !cmd.roles.contains(principal.role) {
        return Err(crate::principal::forbidden_role(cmd.name, principal.role));
    }
    let as_given = body.req(principal);
    let who = crate::principal::bind_fields(principal, cmd.acting, |k| as_given.acting_text(k), |i| pool.catalog.is_hospital(i))?;
    // Request ids are the caller's own: a principal other than the engine's
    // gets its own id space, so nobody replays, or collides with, another's.
    if let Some(id) = scoped_request_id(pool, principal, &as_given)? {
        body.set_request_id(id);
    }
    // An upstream hospital's slot: the hospital decides (and its own booking
    // ids name the mirror's bookings).
    let mut routed = None;
    if route && pool.cfg.upstream.is_some() {
        let mut m = body.to_map().into_owned();
        routed = crate::upstream::route(d, cmd.name, &who, &mut m)?;
        body = Given::Map(Cow::Owned(m));
    }
    let r = body.req(&who);
    let _audit = pool.store.as_ref().filter(|_| cmd.kind == Kind::Change).map(|_| crate::audit::Scope::enter(crate::commands::audit_context(cmd.name, &r)));
    let mut answer = match routed {
        Some(a) => Data::Value(a),
        None => (entry.run)(d, &r)?,
    };
    if pool.cfg.upstream.is_some() {
        answer = answer.map_value(|a| crate::upstream::after(d, cmd.name, &body.to_map(), a))?;
    }
    // A read of personal data is recorded (who, which command, which
    // objects), queued with the committer without waiting (see `audit.rs`).
    if let Some(store) = &pool.store {
        if cmd.kind == Kind::Query && crate::audit::PERSONAL_READS.contains(&cmd.name) {
            let read = answer.into_value()?;
            let ids = crate::audit::object_ids(&read);
            answer = Data::Value(read);
            let note = crate::audit::Note { kind: "read", code: None, claimed_app_id: None, read: &ids };
            let row = crate::audit::note_row(pool.clock.now_ms(), &crate::commands::audit_context(cmd.name, &r), &note);
            let _ = store.enqueue(vec![row]);
        }
    }
    // S1: what leaves carries in full only the patient ids `who` may read.
    Ok(crate::views::mask_answer(&who, answer))
}

/// The request's `request_id` in the stated principal's id space
/// (`@community:C002/<id>`), when the principal is not the engine's own;
/// `None` when nothing changes (no request id, or the engine's own
/// principal, whose ids stay as they were stored before principals existed).
fn scoped_request_id(pool: &Pool, principal: &Principal, r: &Req) -> Result<Option<String>> {
    let Some(id) = r.request_id()? else { return Ok(None) };
    if id.len() > crate::pool::REQUEST_ID_MAX {
        return Err(Error::invalid("request_id", "must be 1 to 128 characters"));
    }
    if principal == &pool.cfg.principal {
        return Ok(None);
    }
    Ok(Some(match &principal.institution_id {
        Some(i) => format!("@{}:{i}/{id}", principal.role.as_str()),
        None => format!("@{}/{id}", principal.role.as_str()),
    }))
}

/// `UNKNOWN_COMMAND`, naming the nearest known command when one is close.
fn unknown_command(command: &str) -> Error {
    let shown: String = command.chars().take(64).collect();
    let near = NAMES.iter().map(|n| (edit_distance(command, n), *n)).filter(|(d, n)| *d <= (n.len() / 3).max(2)).min();
    match near {
        Some((_, n)) => Error::with(
            ErrorCode::UnknownCommand,
            format!("unknown command `{shown}`; did you mean `{n}`?"),
            format!("未知的接口命令 `{shown}`，是否要调用 `{n}`？"),
        ),
        None => Error::with(ErrorCode::UnknownCommand, format!("unknown command `{shown}`"), format!("未知的接口命令 `{shown}`")),
    }
}

/// Levenshtein distance over chars (names are short).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().take(128).enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for j in 0..b.len() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != b[j])).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_is_declared_once() {
        let mut seen = std::collections::HashSet::new();
        for c in all() {
            assert!(seen.insert(c.decl.name), "{} declared twice", c.decl.name);
            assert!(!c.decl.roles.names().is_empty(), "{} allows no role", c.decl.name);
        }
        assert_eq!(NAMES.len(), BY_NAME.len());
        assert!(all().iter().all(|c| find(c.decl.name).is_some_and(|f| std::ptr::eq(f, c))));
        assert!(find("no-such-command").is_none());
    }

    #[test]
    fn an_unknown_command_names_the_nearest_one() {
        let e = unknown_command("pre-book-slots");
        assert!(e.message().contains("did you mean `pre-book-slot`"), "{}", e.message());
        assert!(e.message_zh().contains("是否要调用 `pre-book-slot`"));
        let e = unknown_command("fly-me-to-the-moon");
        assert!(!e.message().contains("did you mean"));
    }
}
