//! The command registry: every command declared once, by the domain that
//! serves it, as data.
//!
//! A declaration ([`Command`]) says the command's name (the source's
//! interface name), whether it is a query or a change, which roles may call
//! it, which body fields name the acting party, and its handler. Everything
//! else reads it: dispatch (`dispatch`), the permission rule
//! (`principal::bind`), the audit trail (changes only), metrics, the HTTP
//! method of the sandbox (`Engine::is_query`), `engine-info`, the
//! `access-rules` command and the docs' command tables (checked by a test).
//!
//! Call flow: binding → [`dispatch`] → role check → `principal::bind` (body
//! fields against the principal) → the domain's handler, which sees the bound
//! principal as `Req::who` → the domain's change context → store and outbox.

use crate::domains::Domains;
use crate::error::{Error, ErrorCode, Result};
use crate::pool::Pool;
use crate::principal::{Principal, Role, Roles};
use crate::request::Req;
use serde_json::{json, Value};
use std::sync::LazyLock;

/// A query never changes state (P4: safe to retry, cache or serve over GET).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Query,
    Change,
}

pub(crate) type Handler = fn(&Domains, &Req, &Value) -> Result<Value>;

/// One command, declared once.
pub(crate) struct Command {
    pub name: &'static str,
    pub kind: Kind,
    pub roles: Roles,
    /// Body fields that name the acting party for this command.
    pub acting: &'static [&'static str],
    pub handler: Handler,
}

/// Declares a domain's command table, one row a command:
/// `"name", Query|Change, ROLES, ACTING => handler;`. Handlers have the
/// domain's own type `$h`; `$run(domains, name, kind, req, value, handler)`
/// hands each one what it works on.
macro_rules! command_table {
    (handler: $h:ty, run: $run:path; $($name:literal, $kind:ident, $roles:ident, $acting:ident => $handler:expr;)*) => {
        /// This domain's commands, each declared once (see `registry.rs`).
        pub(crate) const COMMANDS: &[$crate::registry::Command] = &[$($crate::registry::Command {
            name: $name,
            kind: $crate::registry::Kind::$kind,
            roles: $crate::registry::roles::$roles,
            acting: $crate::registry::acting::$acting,
            handler: |d, r, v| {
                let h: $h = $handler;
                $run(d, $name, $crate::registry::Kind::$kind, r, v, h)
            },
        }),*];
    };
}
pub(crate) use command_table;

/// Role sets the domains declare with.
pub(crate) mod roles {
    use super::{Role, Roles};
    use Role::*;
    /// Anyone, the regulator included: public reference data and statistics.
    pub const EVERYONE: Roles = Roles::of(&[Platform, Hospital, Community, Lab, Regulator]);
    /// The care parties (no regulator): bookings, cases, orders.
    pub const PARTIES: Roles = Roles::of(&[Platform, Hospital, Community, Lab]);
    /// Booking and referral parties.
    pub const NETWORK: Roles = Roles::of(&[Platform, Hospital, Community]);
    /// The hospital side: its schedules, catalogue, stops.
    pub const HOSPITAL: Roles = Roles::of(&[Platform, Hospital]);
    /// The lab side of a commissioned test (a county hospital's lab is a hospital principal).
    pub const LAB_SIDE: Roles = Roles::of(&[Platform, Hospital, Lab]);
    /// The platform alone: the network's standard catalogue.
    pub const PLATFORM: Roles = Roles::of(&[Platform]);
    /// Statistics and the audit trail: the regulator reads them too.
    pub const READERS: Roles = EVERYONE;
}

/// Acting-field sets the domains declare with.
pub(crate) mod acting {
    /// The booking institution (the pool's `clinic_id`, or `institution_id`).
    pub const BOOKER: &[&str] = &["clinic_id", "institution_id"];
    /// The institution acting (referral, lab ordering side, mappings).
    pub const INSTITUTION: &[&str] = &["institution_id"];
    /// The hospital publishing its schedule or stopping a service.
    pub const HOSPITAL: &[&str] = &["hospital_id", "institution_id"];
    /// The lab receiving and reporting.
    pub const LAB: &[&str] = &["lab_id", "institution_id"];
    pub const NONE: &[&str] = &[];
}

/// Every command, the slot pool's first, then each domain's.
static ALL: LazyLock<Vec<&'static Command>> = LazyLock::new(|| {
    [crate::commands::COMMANDS, crate::lab::COMMANDS, crate::referral::COMMANDS, crate::client::COMMANDS, OWN].iter().flat_map(|c| c.iter()).collect()
});

/// Sorted by name for a binary search (a plain sorted list also keeps leak
/// checkers quiet: it is reachable from its start, unlike a hash table).
static BY_NAME: LazyLock<Vec<(&'static str, &'static Command)>> = LazyLock::new(|| {
    let mut v: Vec<_> = ALL.iter().map(|c| (c.name, *c)).collect();
    v.sort_unstable_by_key(|(n, _)| *n);
    v
});

/// The names, in declaration order.
pub(crate) static NAMES: LazyLock<Vec<&'static str>> = LazyLock::new(|| ALL.iter().map(|c| c.name).collect());
/// The queries' names.
pub(crate) static QUERY_NAMES: LazyLock<Vec<&'static str>> = LazyLock::new(|| ALL.iter().filter(|c| c.kind == Kind::Query).map(|c| c.name).collect());

/// The registry's own commands.
const OWN: &[Command] = &[
    Command { name: "access-rules", kind: Kind::Query, roles: roles::EVERYONE, acting: acting::NONE, handler: |_, _, _| Ok(access_rules()) },
    Command {
        name: "engine-metrics",
        kind: Kind::Query,
        roles: roles::READERS,
        acting: acting::NONE,
        handler: |d, r, _| crate::monitor::engine_metrics(&d.monitor, r.opt_str("format")?),
    },
];

pub(crate) fn all() -> &'static [&'static Command] {
    &ALL
}

pub(crate) fn find(name: &str) -> Option<&'static Command> {
    BY_NAME.binary_search_by_key(&name, |(n, _)| n).ok().map(|i| BY_NAME[i].1)
}

/// The role table as data: who may call what, and what each role may touch.
pub(crate) fn access_rules() -> Value {
    let commands: Vec<Value> = all()
        .iter()
        .map(|c| {
            json!({
                "command": c.name,
                "kind": if c.kind == Kind::Query { "query" } else { "change" },
                "roles": c.roles.names(),
                "acting_fields": c.acting,
            })
        })
        .collect();
    json!({"roles": crate::principal::roles_view(), "commands": commands})
}

/// Runs one command for `principal`: the role check and the binding of the
/// body's acting fields happen here, once, before any domain code.
pub(crate) fn dispatch(d: &Domains, principal: &Principal, command: &str, req: &Value) -> Result<Value> {
    let pool = &d.pool;
    let cmd = find(command).ok_or_else(|| unknown_command(command))?;
    let obj = req.as_object().ok_or_else(|| Error::invalid("(request)", "must be a JSON object"))?;
    if !cmd.roles.contains(principal.role) {
        return Err(crate::principal::forbidden_role(cmd.name, principal.role));
    }
    let who = crate::principal::bind(principal, cmd.acting, obj, |i| pool.catalog.is_hospital(i))?;
    // Request ids are the caller's own: a principal other than the engine's
    // gets its own id space, so nobody replays, or collides with, another's.
    let scoped = scoped_request(pool, principal, obj)?;
    let (obj, req) = match &scoped {
        Some(v) => (v.as_object().unwrap_or(obj), v),
        None => (obj, req),
    };
    let r = Req { m: obj, who: &who };
    let _audit = pool.store.as_ref().filter(|_| cmd.kind == Kind::Change).map(|_| crate::audit::Scope::enter(crate::commands::audit_context(cmd.name, &r)));
    (cmd.handler)(d, &r, req)
}

/// The request with its `request_id` put in the stated principal's id space
/// (`@community:C002/<id>`), when the principal is not the engine's own; `None`
/// when nothing changes (no request id, or the engine's own principal, whose
/// ids stay as they were stored before principals existed).
fn scoped_request(pool: &Pool, principal: &Principal, obj: &serde_json::Map<String, Value>) -> Result<Option<Value>> {
    let Some(id) = (Req { m: obj, who: principal }).request_id()? else { return Ok(None) };
    if id.len() > crate::pool::REQUEST_ID_MAX {
        return Err(Error::invalid("request_id", "must be 1 to 128 characters"));
    }
    if principal == &pool.cfg.principal {
        return Ok(None);
    }
    let scope = match &principal.institution_id {
        Some(i) => format!("@{}:{i}/", principal.role.as_str()),
        None => format!("@{}/", principal.role.as_str()),
    };
    let mut m = obj.clone();
    m.insert("request_id".into(), Value::String(format!("{scope}{id}")));
    Ok(Some(Value::Object(m)))
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
            assert!(seen.insert(c.name), "{} declared twice", c.name);
            assert!(!c.roles.names().is_empty(), "{} allows no role", c.name);
        }
        assert_eq!(NAMES.len(), BY_NAME.len());
        assert!(all().iter().all(|c| find(c.name).is_some_and(|f| std::ptr::eq(f, *c))));
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
