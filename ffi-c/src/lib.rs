//! C ABI of yilian (医联): `libyilian.so` / `libyilian.a`, header `include/yilian.h`.
//!
//! A thin shell over `yilian-core`: every export converts its arguments,
//! calls the core, converts the result, and runs inside one panic boundary
//! (`boundary::ffi_boundary!`). No domain rule lives here.

#![deny(clippy::unwrap_used, clippy::expect_used)]
// Each export states its pointer rules in C terms (copied into the header);
// a Rust `# Safety` heading would only repeat them.
#![allow(clippy::missing_safety_doc)]

// The boundary turns panics into YL_E_PANIC only if they unwind.
#[cfg(panic = "abort")]
compile_error!("yilian-ffi needs panic = \"unwind\": its C boundary catches panics");

mod boundary;
mod call;
pub mod error;
mod handle;
mod lab;
mod stdcall;
mod strings;
mod text;

use boundary::{ffi_boundary, ffi_code};
use error::with_last;
use std::ffi::CString;
use std::os::raw::{c_char, c_int};
use strings::{arg_str, copy_out, opt_str, out_arg};
use yilian_core::{Engine, Error, ErrorCode, HoldOptions, Priority, SlotHandle};

pub use error::*;
pub use handle::yl_engine;
pub use lab::{yl_lab_entry, yl_lab_translator, yl_lab_translator_free, yl_lab_translator_new, yl_lab_translator_translate, yl_specimen_label};
pub use stdcall::*;

/// A slot resolved once by `yl_slot_handle`, for the typed calls. Valid for
/// the engine that returned it, for as long as that engine is open.
#[allow(non_camel_case_types)]
pub type yl_slot = u32;

/// Priority of a typed hold: an ordinary patient.
pub const YL_PRIORITY_NORMAL: c_int = 0;
/// Priority of a typed hold: a referral (转诊); may use the reserved quota.
pub const YL_PRIORITY_REFERRAL: c_int = 1;
/// Priority of a typed hold: special needs (elderly, disabled, ...).
pub const YL_PRIORITY_SPECIAL_NEEDS: c_int = 2;
/// Priority of a typed hold: critical.
pub const YL_PRIORITY_CRITICAL: c_int = 3;
/// Priority of a typed hold: surgery / urgent.
pub const YL_PRIORITY_SURGERY: c_int = 4;

/// A hold made by `yl_hold`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
#[allow(non_camel_case_types)]
pub struct yl_hold_info {
    /// The booking (`B000042` in the command layer is 42 here).
    pub booking_id: u64,
    /// When the hold lapses unless confirmed: engine time, ms since the Unix epoch (UTC).
    pub expires_ms: i64,
}

/// Places of one slot, filled by `yl_availability`.
/// Always `capacity == booked + held + remaining`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
#[allow(non_camel_case_types)]
pub struct yl_slot_availability {
    pub capacity: u32,
    /// Confirmed bookings.
    pub booked: u32,
    /// Unconfirmed holds (预占), and places set aside for waitlist promotion.
    pub held: u32,
    pub remaining: u32,
    /// Places still kept for referral and urgent priorities.
    pub reserved_quota: u32,
    /// Patients on the waitlist.
    pub waiting: u32,
    /// 号源紧张: few places left. 1 or 0 (a byte, not `bool`: C# and
    /// PowerBuilder marshal it without surprise).
    pub tight: u8,
    /// Service stopped (停诊). 1 or 0, as `tight`.
    pub closed: u8,
}

// ------------------------------------------------------------------ engine

/// Opens an engine from a JSON config (`"{}"`: in memory; `{"data_dir":"..."}`:
/// durable, recovered as it was). See the README for every key.
///
/// One key belongs to this C library, not to the engine:
/// `"text_encoding": "gbk"` (default `"utf-8"`) makes the JSON calls of the
/// engine (`yl_call`, `yl_call_as`, `yl_call_buf`, `yl_call_as_buf` and their
/// `_std` forms) read every string argument as GBK and answer in GBK; a
/// character GBK cannot encode comes back as a JSON `\uXXXX` escape, and
/// bytes that are not GBK are `YL_E_INVALID_ENCODING` (nothing runs). The
/// last-error messages of those calls come in GBK too (they are per thread:
/// they follow the engine of the call that set them). The config itself, the
/// typed calls and the lab translator stay UTF-8 (docs/windows.md).
///
/// Ownership: `config_json` is borrowed for the call. On success `*out`
/// receives a new handle owned by the caller, to be released with
/// `yl_engine_close`; on failure `*out` is set to NULL (when `out` is not NULL).
///
/// Returns `YL_OK`, `YL_E_NULL_ARGUMENT`, `YL_E_INVALID_UTF8`,
/// `YL_E_INVALID_CONFIG` or a storage code (`YL_E_STORE_LOCKED`, ...).
/// Thread-safe. Sets this thread's last error.
#[no_mangle]
pub unsafe extern "C" fn yl_engine_open(config_json: *const c_char, out: *mut *mut yl_engine) -> c_int {
    let mut encoding = text::TextEncoding::Utf8;
    let code = ffi_code!((|| {
        let out = out_arg(out, "out")?;
        out.write(std::ptr::null_mut());
        let config = arg_str(config_json, "config_json")?;
        let (enc, config) = text::split_config(config)?;
        encoding = enc;
        let engine = Engine::open(&config)?;
        out.write(Box::into_raw(Box::new(yl_engine::new(engine, enc))));
        Ok(())
    })());
    // A GBK caller reads why its engine did not open in GBK.
    error::set_encoding(encoding);
    code
}

/// Flushes and closes the engine and frees the handle. `e == NULL` is a
/// harmless no-op.
///
/// Safe misuse: closing NULL. Unsafe misuse (undefined behaviour, as with
/// `sqlite3_close`): closing the same handle twice, using it after close, or
/// closing it while another thread is still inside a call on it. The handle
/// is freed here, so set your copy to NULL; close once, after every thread
/// has finished with it.
#[no_mangle]
pub unsafe extern "C" fn yl_engine_close(e: *mut yl_engine) {
    ffi_boundary!(on_panic: |_| (), {
        if !e.is_null() {
            // Dropped even if close panics: the handle is freed exactly once.
            let handle = Box::from_raw(e);
            handle.engine.close();
        }
    })
}

/// The library version, `"MAJOR.MINOR.PATCH"`, equal to `YL_VERSION_STRING`
/// of the header it was built with. Static storage: never free it.
/// Thread-safe. Does not touch the last error.
#[no_mangle]
pub extern "C" fn yl_version() -> *const c_char {
    // Cannot panic; inside the boundary all the same, like every export.
    ffi_boundary!(on_panic: |_| c"".as_ptr(), concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast())
}

// ------------------------------------------------------------------ command layer

/// Runs one command of the command layer: the source's interface names
/// (`sync-schedule`, `pre-book-slot`, `book-slot`, `cancel-slot`,
/// `real-time-slots`, ...) with their JSON request.
///
/// `*response_json` receives the envelope, `{"status":"success","data":...}`
/// or `{"status":"error","code":"SLOT_FULL","numeric_code":3001,"message":...,
/// "message_zh":...}`, whenever `response_json` is not NULL: error envelopes
/// included, also for a NULL or non-UTF-8 `e`/`command`/`request_json`.
///
/// Returns `YL_OK` when the envelope is a success, else its `numeric_code`
/// (also `YL_E_NULL_ARGUMENT` with nothing written when `response_json` is NULL).
///
/// Ownership: the inputs are borrowed for the call. The caller owns
/// `*response_json` and must release it with `yl_string_free` (not `free`).
/// Thread-safe: any number of threads may call one engine at once.
/// Sets this thread's last error.
#[no_mangle]
pub unsafe extern "C" fn yl_call(e: *const yl_engine, command: *const c_char, request_json: *const c_char, response_json: *mut *mut c_char) -> c_int {
    ffi_boundary!(on_panic: |err: Error| {
        call::call_panicked(e, response_json, &err);
        err.numeric_code()
    }, call::call(e, None, command, request_json, response_json))
}

/// `yl_call` as a principal the host states (S1): `principal_json` is
/// `{"role": "community", "institution_id": "C001", "operator": "王护士"}`
/// (roles: platform, hospital, community, lab, regulator; every role but
/// platform and regulator names its institution). The request's fields that
/// name the acting party (`clinic_id`, `institution_id`, `lab_id`,
/// `hospital_id` where it means the caller) must name that principal, else
/// the call fails with `YL_E_FORBIDDEN` and changes nothing. `yl_call` acts
/// as the engine's own principal (the config's `role` and `institution_id`).
///
/// Returns, writes and owns exactly as `yl_call`; an invalid principal gives
/// `YL_E_INVALID_FIELD` (or `YL_E_INVALID_JSON`) with its envelope.
/// Thread-safe. Sets this thread's last error.
#[no_mangle]
pub unsafe extern "C" fn yl_call_as(
    e: *const yl_engine,
    principal_json: *const c_char,
    command: *const c_char,
    request_json: *const c_char,
    response_json: *mut *mut c_char,
) -> c_int {
    ffi_boundary!(on_panic: |err: Error| {
        call::call_panicked(e, response_json, &err);
        err.numeric_code()
    }, call::call(e, Some(principal_json), command, request_json, response_json))
}

/// `yl_call_buf` as a principal the host states (see `yl_call_as`). The kept
/// answer of a too-small buffer is replayed only for the same principal,
/// engine, command and request text.
///
/// Ownership: everything is borrowed for the call. Thread-safe.
/// Sets this thread's last error.
#[no_mangle]
pub unsafe extern "C" fn yl_call_as_buf(
    e: *const yl_engine,
    principal_json: *const c_char,
    command: *const c_char,
    request_json: *const c_char,
    out: *mut c_char,
    cap: usize,
    needed: *mut usize,
) -> c_int {
    ffi_boundary!(on_panic: |err: Error| err.numeric_code(), call::call_buf(e, Some(principal_json), command, request_json, out, cap, needed))
}

/// `yl_call` writing into the caller's buffer, for stacks that cannot free
/// library memory (PowerBuilder, Delphi, C#, 医保-style `f(in, out)` DLL callers).
///
/// Writes the NUL-terminated envelope into `out[0..cap]` and returns as
/// `yl_call` does. `*needed` (when `needed` is not NULL) receives the bytes
/// the envelope needs, its NUL included. When `cap` is too small, returns
/// `YL_E_BUFFER_TOO_SMALL` and leaves `out` an empty string (if `cap > 0`).
/// `out` may be NULL only with `cap == 0` (a size query).
///
/// A too-small buffer does NOT undo the command: it has run. Its envelope is
/// kept for this thread, and the next `yl_call_buf` on this thread with the
/// same engine, command and request text returns it without running the
/// command again, so "call, allocate `*needed`, call again" is safe for
/// commands that change state. Any other `yl_call_buf` on this thread drops
/// the kept envelope. 8192 bytes fit typical answers; list queries may need more.
///
/// Ownership: everything is borrowed for the call. Thread-safe.
/// Sets this thread's last error.
#[no_mangle]
pub unsafe extern "C" fn yl_call_buf(
    e: *const yl_engine,
    command: *const c_char,
    request_json: *const c_char,
    out: *mut c_char,
    cap: usize,
    needed: *mut usize,
) -> c_int {
    ffi_boundary!(on_panic: |err: Error| err.numeric_code(), call::call_buf(e, None, command, request_json, out, cap, needed))
}

/// Releases a string returned by `yl_call`. NULL is a no-op. Freeing the
/// same string twice, or a string the library did not return, is undefined
/// behaviour. Thread-safe (any thread may free). Does not touch the last error.
#[no_mangle]
pub unsafe extern "C" fn yl_string_free(s: *mut c_char) {
    ffi_boundary!(on_panic: |_| (), {
        if !s.is_null() {
            drop(CString::from_raw(s));
        }
    })
}

// ------------------------------------------------------------------ errors

/// The code of this thread's most recent call that returns a code (`YL_OK`
/// after a success). Thread-local: other threads' calls do not change it.
#[no_mangle]
pub extern "C" fn yl_last_error_code() -> c_int {
    ffi_boundary!(on_panic: |e: Error| e.numeric_code(), with_last(|l| l.code).unwrap_or(YL_OK))
}

/// Copies the English message of this thread's last error (`""` after a
/// success) into `buf[0..cap]`, NUL-terminated; `*needed` (when not NULL)
/// receives the size needed, NUL included (UTF-8; GBK as for
/// `yl_last_error_message_zh`). Returns `YL_OK`,
/// `YL_E_BUFFER_TOO_SMALL` (`buf` is then an empty string if `cap > 0`), or
/// `YL_E_NULL_ARGUMENT` for `buf == NULL` with `cap > 0`; `buf == NULL` with
/// `cap == 0` is a size query. Does not itself change the last error, so a
/// retry with a bigger buffer reads the same message. Messages never carry
/// personal data. Thread-local; buffers are the caller's.
#[no_mangle]
pub unsafe extern "C" fn yl_last_error_message(buf: *mut c_char, cap: usize, needed: *mut usize) -> c_int {
    ffi_boundary!(on_panic: |e: Error| e.numeric_code(), last_message(false, buf, cap, needed))
}

/// As `yl_last_error_message`, in Chinese: UTF-8, or GBK when the call that
/// set the last error was a JSON call on (or the open of) a GBK engine.
#[no_mangle]
pub unsafe extern "C" fn yl_last_error_message_zh(buf: *mut c_char, cap: usize, needed: *mut usize) -> c_int {
    ffi_boundary!(on_panic: |e: Error| e.numeric_code(), last_message(true, buf, cap, needed))
}

unsafe fn last_message(zh: bool, buf: *mut c_char, cap: usize, needed: *mut usize) -> c_int {
    let msg = with_last(|l| text::encode(l.encoding, if zh { l.message_zh.clone() } else { l.message.clone() })).unwrap_or_default();
    match copy_out(&msg, buf, cap, needed) {
        Ok(()) => YL_OK,
        Err(e) => e.numeric_code(),
    }
}

/// The name of a code (`3001` → `"SLOT_FULL"`, `0` → `"OK"`), or `"UNKNOWN"`
/// for a number that is not a code. Static storage: never free it, never NULL.
/// Thread-safe. Does not touch the last error.
#[no_mangle]
pub extern "C" fn yl_code_name(code: c_int) -> *const c_char {
    ffi_boundary!(on_panic: |_| c"PANIC".as_ptr(), error::code_name(code).as_ptr())
}

// ------------------------------------------------------------------ typed hot path

/// The typed calls' boundary: `f` on the engine behind `e` (NULL is
/// `YL_E_NULL_ARGUMENT`), as a C code; sets the last error.
unsafe fn engine_code(e: *const yl_engine, f: impl FnOnce(&Engine) -> Result<(), Error>) -> c_int {
    ffi_code!(handle::engine_ref(e).and_then(|h| f(&h.engine)))
}

/// Resolves a slot id (`EX-H001-DEV001-20241030-09001000`, as the command
/// layer shows it) to a `yl_slot` for the typed calls. `*out` is written on
/// success only. Returns `YL_OK`, `YL_E_SLOT_NOT_FOUND`, `YL_E_NULL_ARGUMENT`
/// or `YL_E_INVALID_UTF8`. Inputs borrowed. Thread-safe. Sets the last error.
#[no_mangle]
pub unsafe extern "C" fn yl_slot_handle(e: *const yl_engine, slot_id: *const c_char, out: *mut yl_slot) -> c_int {
    engine_code(e, |engine| {
        let id = arg_str(slot_id, "slot_id")?;
        let out = out_arg(out, "out")?;
        out.write(engine.slot_handle(id)?.0);
        Ok(())
    })
}

/// Holds one place of `slot` for `patient_id` (预占) until `out->expires_ms`;
/// confirm it with `yl_confirm` or give it back with `yl_release`.
/// `clinic_id` and `request_id` may be NULL. `priority` is a `YL_PRIORITY_*`.
/// A `request_id` already used for the same hold returns the first answer
/// again (idempotent retry). `*out` is written on success only.
///
/// Returns `YL_OK`, `YL_E_SLOT_FULL`, `YL_E_DUPLICATE_BOOKING`,
/// `YL_E_PATIENT_OVERLAP`, `YL_E_SLOT_NOT_FOUND` (bad `slot`),
/// `YL_E_INVALID_FIELD` (bad `priority`), `YL_E_MISSING_FIELD` (empty
/// `patient_id`), a binding code, ... Inputs borrowed. Thread-safe: holds
/// from many threads never overbook. Sets the last error.
#[no_mangle]
pub unsafe extern "C" fn yl_hold(
    e: *const yl_engine,
    slot: yl_slot,
    patient_id: *const c_char,
    clinic_id: *const c_char,
    priority: c_int,
    request_id: *const c_char,
    out: *mut yl_hold_info,
) -> c_int {
    engine_code(e, |engine| {
        let patient_id = arg_str(patient_id, "patient_id")?;
        let opts =
            HoldOptions { request_id: opt_str(request_id, "request_id")?, clinic_id: opt_str(clinic_id, "clinic_id")?, priority: Some(priority_of(priority)?) };
        let out = out_arg(out, "out")?;
        let hold = engine.hold(SlotHandle(slot), patient_id, &opts)?;
        out.write(yl_hold_info { booking_id: hold.booking_id, expires_ms: hold.expires_ms });
        Ok(())
    })
}

fn priority_of(p: c_int) -> Result<Priority, Error> {
    Ok(match p {
        YL_PRIORITY_NORMAL => Priority::Normal,
        YL_PRIORITY_REFERRAL => Priority::Referral,
        YL_PRIORITY_SPECIAL_NEEDS => Priority::SpecialNeeds,
        YL_PRIORITY_CRITICAL => Priority::Critical,
        YL_PRIORITY_SURGERY => Priority::Surgery,
        _ => {
            return Err(Error::with(
                ErrorCode::InvalidField,
                format!("priority {p} is not a YL_PRIORITY_* value"),
                format!("优先级 {p} 不是 YL_PRIORITY_* 取值"),
            ))
        }
    })
}

/// Confirms a hold: the booking is kept until cancelled. `request_id` may be
/// NULL. Returns `YL_OK`, `YL_E_BOOKING_NOT_FOUND`, `YL_E_HOLD_EXPIRED`,
/// `YL_E_INVALID_STATE`, ... Inputs borrowed. Thread-safe. Sets the last error.
#[no_mangle]
pub unsafe extern "C" fn yl_confirm(e: *const yl_engine, booking_id: u64, request_id: *const c_char) -> c_int {
    on_booking(e, booking_id, request_id, Engine::confirm)
}

/// Releases a hold or cancels a booking; the place returns to the pool (or
/// to the first waiter). `request_id` may be NULL. Returns `YL_OK`,
/// `YL_E_BOOKING_NOT_FOUND`, `YL_E_ALREADY_CANCELLED`, ... Inputs borrowed.
/// Thread-safe. Sets the last error.
#[no_mangle]
pub unsafe extern "C" fn yl_release(e: *const yl_engine, booking_id: u64, request_id: *const c_char) -> c_int {
    on_booking(e, booking_id, request_id, Engine::release)
}

/// `yl_confirm` and `yl_release`: `op` on one booking, with an optional request id.
unsafe fn on_booking(e: *const yl_engine, booking_id: u64, request_id: *const c_char, op: fn(&Engine, u64, Option<&str>) -> Result<(), Error>) -> c_int {
    engine_code(e, |engine| op(engine, booking_id, opt_str(request_id, "request_id")?))
}

/// Fills `*out` with the places of `slot` now (changes nothing). Written on
/// success only. Returns `YL_OK`, `YL_E_SLOT_NOT_FOUND` (bad `slot`) or
/// `YL_E_NULL_ARGUMENT`. Thread-safe. Sets the last error.
#[no_mangle]
pub unsafe extern "C" fn yl_availability(e: *const yl_engine, slot: yl_slot, out: *mut yl_slot_availability) -> c_int {
    engine_code(e, |engine| {
        let out = out_arg(out, "out")?;
        let a = engine.availability(SlotHandle(slot))?;
        out.write(yl_slot_availability {
            capacity: a.capacity,
            booked: a.booked,
            held: a.held,
            remaining: a.remaining,
            reserved_quota: a.reserved_quota,
            waiting: a.waiting,
            tight: u8::from(a.tight),
            closed: u8::from(a.closed),
        });
        Ok(())
    })
}

/// FOR TESTS ONLY, and only in a library built with the cargo feature
/// `testing` (declared when compiling with `-DYL_TESTING`; shipped builds do
/// not export it): panics inside the boundary, to prove that a panic becomes
/// `YL_E_PANIC` (with the last error set) instead of unwinding into C.
/// Always returns `YL_E_PANIC`; the library stays usable afterwards.
/// Rust's panic hook prints the panic to stderr.
#[cfg(feature = "testing")]
#[no_mangle]
pub extern "C" fn yl_test_panic() -> c_int {
    test_panic()
}

#[cfg(any(test, feature = "testing"))]
fn test_panic() -> c_int {
    ffi_code!(deliberate_panic())
}

#[cfg(any(test, feature = "testing"))]
fn deliberate_panic() -> Result<(), Error> {
    panic!("yl_test_panic: a deliberate panic to test the C boundary")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn version_is_the_core_version() {
        let v = unsafe { CStr::from_ptr(yl_version()) };
        assert_eq!(v.to_str().ok(), Some(yilian_core::VERSION));
    }

    #[test]
    fn panic_becomes_a_code() {
        assert_eq!(test_panic(), YL_E_PANIC);
        assert_eq!(yl_last_error_code(), YL_E_PANIC);
        assert_eq!(set_error(&Error::new(ErrorCode::SlotFull)), YL_E_SLOT_FULL);
        assert_eq!(finish(Ok(())), YL_OK);
        assert_eq!(yl_last_error_code(), YL_OK);
    }
}
