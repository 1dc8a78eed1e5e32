//! The command layer for C: `yl_call` (library-allocated response) and
//! `yl_call_buf` (caller's buffer, with a replay of a response that did not fit).

use crate::error::{finish, set_error};
use crate::handle::{engine_ref, yl_engine};
use crate::strings::{arg_str, copy_out, into_c_string, null_arg};
use std::cell::RefCell;
use std::os::raw::{c_char, c_int};
use yilian_core::Error;

/// Runs one command, as `principal` when the caller states one (else as the
/// engine's own principal): its envelope text and its outcome.
fn run(h: &yl_engine, principal: Option<&str>, command: &str, request: &str) -> (String, Result<(), Error>) {
    // The same envelope as `Engine::call`, keeping the error for the return code.
    let out = match principal {
        None => h.engine.call_value(command, request),
        Some(p) => h.engine.call_value_as_json(p, command, request),
    };
    let outcome = out.as_ref().map(|_| ()).map_err(Clone::clone);
    (yilian_core::envelope(out).to_string(), outcome)
}

/// # Safety
/// As `yl_call`.
unsafe fn args<'a>(e: *const yl_engine, command: *const c_char, request: *const c_char) -> Result<(&'a yl_engine, &'a str, &'a str), Error> {
    Ok((engine_ref(e)?, arg_str(command, "command")?, arg_str(request, "request_json")?))
}

/// The principal argument of `yl_call_as`: NULL for `yl_call`.
///
/// # Safety
/// As `yl_call_as`.
unsafe fn principal_arg<'a>(principal: Option<*const c_char>) -> Result<Option<&'a str>, Error> {
    principal.map(|p| arg_str(p, "principal_json")).transpose()
}

/// # Safety
/// As `yl_call` (`principal` as `yl_call_as`).
pub(crate) unsafe fn call(
    e: *const yl_engine,
    principal: Option<*const c_char>,
    command: *const c_char,
    request: *const c_char,
    response: *mut *mut c_char,
) -> c_int {
    if response.is_null() {
        return set_error(&null_arg("response_json"));
    }
    *response = std::ptr::null_mut();
    let (envelope, outcome) = match args(e, command, request).and_then(|a| Ok((a, principal_arg(principal)?))) {
        Ok(((h, c, r), p)) => run(h, p, c, r),
        Err(err) => (err.to_envelope().to_string(), Err(err)),
    };
    match into_c_string(envelope) {
        Ok(p) => {
            *response = p;
            finish(outcome)
        }
        Err(err) => set_error(&err),
    }
}

/// After a panic inside `yl_call`: still hand the caller an envelope.
///
/// # Safety
/// As `yl_call`.
pub(crate) unsafe fn call_panicked(response: *mut *mut c_char, err: &Error) {
    if !response.is_null() && (*response).is_null() {
        if let Ok(p) = into_c_string(err.to_envelope().to_string()) {
            *response = p;
        }
    }
}

/// A response that did not fit the caller's buffer. The command already ran,
/// so the next identical `yl_call_buf` on this thread gets this answer
/// instead of running it again (a second `book-slot` would double-book).
struct Pending {
    serial: u64,
    principal: Option<String>,
    command: String,
    request: String,
    envelope: String,
    outcome: Result<(), Error>,
}

thread_local! {
    static PENDING: RefCell<Option<Pending>> = const { RefCell::new(None) };
}

fn take_pending() -> Option<Pending> {
    PENDING.try_with(|p| p.try_borrow_mut().ok().and_then(|mut p| p.take())).ok().flatten()
}

fn keep_pending(p: Pending) {
    let _ = PENDING.try_with(|slot| {
        if let Ok(mut slot) = slot.try_borrow_mut() {
            *slot = Some(p);
        }
    });
}

/// # Safety
/// As `yl_call_buf`.
pub(crate) unsafe fn call_buf(
    e: *const yl_engine,
    principal: Option<*const c_char>,
    command: *const c_char,
    request: *const c_char,
    out: *mut c_char,
    cap: usize,
    needed: *mut usize,
) -> c_int {
    // Whatever happens, a response kept by an earlier call is for this call or for none.
    let pending = take_pending();
    if out.is_null() && cap > 0 {
        // Checked before running: a command must not run when its answer cannot be delivered.
        return set_error(&null_arg("out"));
    }
    let ((h, c, r), p) = match args(e, command, request).and_then(|a| Ok((a, principal_arg(principal)?))) {
        Ok(a) => a,
        Err(err) => {
            // Nothing ran: a retry with a bigger buffer gets the same error again.
            return match copy_out(&err.to_envelope().to_string(), out, cap, needed) {
                Ok(()) => set_error(&err),
                Err(too_small) => set_error(&too_small),
            };
        }
    };
    let (envelope, outcome) = match pending {
        Some(k) if k.serial == h.serial && k.principal.as_deref() == p && k.command == c && k.request == r => (k.envelope, k.outcome),
        _ => run(h, p, c, r),
    };
    match copy_out(&envelope, out, cap, needed) {
        Ok(()) => finish(outcome),
        Err(too_small) => {
            keep_pending(Pending { serial: h.serial, principal: p.map(str::to_owned), command: c.to_owned(), request: r.to_owned(), envelope, outcome });
            set_error(&too_small)
        }
    }
}
