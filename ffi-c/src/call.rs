//! The command layer for C: `yl_call` (library-allocated response) and
//! `yl_call_buf` (caller's buffer, with a replay of a response that did not fit).
//!
//! Every string in and the envelope out are in the engine's text encoding
//! (`text.rs`: UTF-8, or GBK for an engine opened with `"text_encoding":
//! "gbk"`); the core sees UTF-8 only. With no engine (a NULL handle) the
//! error envelope is UTF-8. The thread's last error is marked with the
//! engine's encoding after every call here, so `yl_last_error_message*`
//! read it in the encoding the caller works in.

use crate::error::{finish, set_encoding, set_error};
use crate::handle::{engine_ref, yl_engine};
use crate::strings::{copy_out, into_c_string, null_arg};
use crate::text::{self, TextEncoding};
use std::borrow::Cow;
use std::cell::RefCell;
use std::os::raw::{c_char, c_int};
use yilian_core::Error;

/// Runs one command, as `principal` when the caller states one (else as the
/// engine's own principal): its envelope, in the engine's encoding, and its outcome.
fn run(h: &yl_engine, principal: Option<&str>, command: &str, request: &str) -> (Vec<u8>, Result<(), Error>) {
    // The same envelope as `Engine::call`, keeping the error for the return code.
    let out = match principal {
        None => h.engine.call_json(command, request),
        Some(p) => h.engine.call_json_as_json(p, command, request),
    };
    let envelope = yilian_core::envelope_text(out.as_deref());
    (text::encode(h.encoding, envelope), out.map(drop))
}

/// The arguments of a JSON call, decoded from the engine's encoding.
struct Args<'a> {
    h: &'a yl_engine,
    principal: Option<Cow<'a, str>>,
    command: Cow<'a, str>,
    request: Cow<'a, str>,
}

/// # Safety
/// As `yl_call` (`principal` as `yl_call_as`; NULL for `yl_call`).
unsafe fn args<'a>(e: *const yl_engine, principal: Option<*const c_char>, command: *const c_char, request: *const c_char) -> Result<Args<'a>, Error> {
    let h = engine_ref(e)?;
    let enc = h.encoding;
    Ok(Args {
        h,
        command: text::decode(enc, command, "command")?,
        request: text::decode(enc, request, "request_json")?,
        principal: principal.map(|p| text::decode(enc, p, "principal_json")).transpose()?,
    })
}

/// The encoding of `e`'s answers: UTF-8 when there is no engine to ask.
///
/// # Safety
/// `e` is NULL or a live handle.
unsafe fn encoding_of(e: *const yl_engine) -> TextEncoding {
    engine_ref(e).map(|h| h.encoding).unwrap_or_default()
}

/// An error envelope for the caller of `e`, in its encoding.
///
/// # Safety
/// `e` is NULL or a live handle.
unsafe fn error_envelope(e: *const yl_engine, err: &Error) -> Vec<u8> {
    text::encode(encoding_of(e), yilian_core::to_json(&err.to_envelope()))
}

/// Runs one JSON call, then leaves this thread's last error in the
/// encoding of `e`'s caller, whichever way the call ended.
///
/// # Safety
/// `e` is NULL or a live handle.
unsafe fn in_callers_encoding(e: *const yl_engine, call: impl FnOnce() -> c_int) -> c_int {
    let code = call();
    set_encoding(encoding_of(e));
    code
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
    in_callers_encoding(e, || {
        if response.is_null() {
            return set_error(&null_arg("response_json"));
        }
        *response = std::ptr::null_mut();
        let (envelope, outcome) = match args(e, principal, command, request) {
            Ok(a) => run(a.h, a.principal.as_deref(), &a.command, &a.request),
            Err(err) => (error_envelope(e, &err), Err(err)),
        };
        match into_c_string(envelope) {
            Ok(p) => {
                *response = p;
                finish(outcome)
            }
            Err(err) => set_error(&err),
        }
    })
}

/// After a panic inside `yl_call`: still hand the caller an envelope.
///
/// # Safety
/// As `yl_call`.
pub(crate) unsafe fn call_panicked(e: *const yl_engine, response: *mut *mut c_char, err: &Error) {
    if !response.is_null() && (*response).is_null() {
        if let Ok(p) = into_c_string(error_envelope(e, err)) {
            *response = p;
        }
    }
    set_encoding(encoding_of(e));
}

/// A response that did not fit the caller's buffer. The command already ran,
/// so the next identical `yl_call_buf` on this thread gets this answer
/// instead of running it again (a second `book-slot` would double-book).
struct Pending {
    serial: u64,
    principal: Option<String>,
    command: String,
    request: String,
    /// In the engine's encoding, as delivered.
    envelope: Vec<u8>,
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
    in_callers_encoding(e, || {
        // Whatever happens, a response kept by an earlier call is for this call or for none.
        let pending = take_pending();
        if out.is_null() && cap > 0 {
            // Checked before running: a command must not run when its answer cannot be delivered.
            return set_error(&null_arg("out"));
        }
        let a = match args(e, principal, command, request) {
            Ok(a) => a,
            Err(err) => {
                // Nothing ran: a retry with a bigger buffer gets the same error again.
                return match copy_out(&error_envelope(e, &err), out, cap, needed) {
                    Ok(()) => set_error(&err),
                    Err(too_small) => set_error(&too_small),
                };
            }
        };
        let (h, p, c, r) = (a.h, a.principal.as_deref(), a.command.as_ref(), a.request.as_ref());
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
    })
}
