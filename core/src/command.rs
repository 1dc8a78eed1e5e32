//! How a domain declares its commands: one row a command, as data.
//!
//! A row says the command's name (the source's interface name), whether it
//! is a query or a change, which roles may call it, which body fields name
//! the acting party, and its handler in the domain's own type:
//!
//! ```text
//! command_table! { pub(crate) COMMANDS: fn(&Call) -> Result<Value>;
//!     "lab-order-create", Change, NETWORK, INSTITUTION => order::create;
//! }
//! ```
//!
//! The registry (`registry.rs`) collects every domain's table and hands each
//! handler what it works on; everything else (dispatch, the permission rule,
//! the audit trail, metrics, the HTTP method, `engine-info`, `access-rules`,
//! the platform client's catalogue, the docs' command tables) reads the
//! declarations. This module sits below the domains and names none of them.

use crate::principal::{Role, Roles};

/// A query never changes state (P4: safe to retry, cache or serve over GET).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Query,
    Change,
}

/// What a command is, without its handler.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Decl {
    pub name: &'static str,
    pub kind: Kind,
    pub roles: Roles,
    /// Body fields that name the acting party for this command.
    pub acting: &'static [&'static str],
    /// Marked `Inline`: the command works in memory and in bounded time —
    /// no network call, no wait but its own commit's, no scan of the store
    /// (it may read one row for a booking that has left memory) — so an async
    /// host may run it on its own threads with `Engine::call_deferred`
    /// and await the commit instead of parking a thread on it.
    pub inline: bool,
}

/// One command, declared once, with its handler of the domain's type `H`.
pub(crate) struct Command<H> {
    pub decl: Decl,
    pub handler: H,
}

/// Declares a command table `$name: &[Command<$h>]`, one row a command:
/// `"name", Query|Change, ROLES, ACTING => handler;` (`ROLES` from
/// [`roles`], `ACTING` from [`acting`]), with `, Inline` after `ACTING` for
/// a command that may run on an async host's own threads ([`Decl::inline`]).
macro_rules! command_table {
    ($vis:vis $table:ident: $h:ty; $($name:literal, $kind:ident, $roles:ident, $acting:ident $(, $inline:ident)? => $handler:expr;)*) => {
        /// This domain's commands, each declared once (see `command.rs`).
        $vis const $table: &[$crate::command::Command<$h>] = &[$($crate::command::Command {
            decl: $crate::command::Decl {
                name: $name,
                kind: $crate::command::Kind::$kind,
                roles: $crate::command::roles::$roles,
                acting: $crate::command::acting::$acting,
                inline: $crate::command::command_table!(@inline $($inline)?),
            },
            handler: $handler,
        }),*];
    };
    (@inline Inline) => { true };
    (@inline) => { false };
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
    /// The community side of the chronic-disease register and its follow-ups.
    pub const COMMUNITY: Roles = Roles::of(&[Platform, Community]);
    /// The chronic-disease centre's statistics: the community centre (its
    /// own), the platform and the regulator (counts only, no personal data).
    pub const CARE_STATS: Roles = Roles::of(&[Platform, Community, Regulator]);
    /// Checking the whole audit trail: the platform and the regulator.
    pub const AUDITORS: Roles = Roles::of(&[Platform, Regulator]);
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
