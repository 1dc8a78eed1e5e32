//! The `_std` forms of the calls a PowerBuilder, Delphi or VB6-style caller
//! needs to use the JSON API end to end, with the `__stdcall` convention on
//! 32-bit Windows (PowerBuilder's external functions and the national
//! insurance-interface DLLs use it). `extern "system"` is stdcall on i686
//! Windows and the C convention everywhere else, so the forms exist on every
//! platform and the header has one list (`YL_STDCALL` there).
//!
//! Invariant: each form is one line delegating to its C form; no rule lives
//! here. The DLL exports them undecorated (`yl_call_std`, not
//! `_yl_call_std@16`: the linker runs with `--kill-at`, see build.rs), so a
//! caller finds them by the plain name.

use crate::handle::yl_engine;
use std::os::raw::{c_char, c_int};

/// `yl_engine_open` with `YL_STDCALL`.
#[no_mangle]
pub unsafe extern "system" fn yl_engine_open_std(config_json: *const c_char, out: *mut *mut yl_engine) -> c_int {
    crate::yl_engine_open(config_json, out)
}

/// `yl_engine_close` with `YL_STDCALL`.
#[no_mangle]
pub unsafe extern "system" fn yl_engine_close_std(e: *mut yl_engine) {
    crate::yl_engine_close(e)
}

/// `yl_version` with `YL_STDCALL`.
#[no_mangle]
pub extern "system" fn yl_version_std() -> *const c_char {
    crate::yl_version()
}

/// `yl_call` with `YL_STDCALL`.
#[no_mangle]
pub unsafe extern "system" fn yl_call_std(e: *const yl_engine, command: *const c_char, request_json: *const c_char, response_json: *mut *mut c_char) -> c_int {
    crate::yl_call(e, command, request_json, response_json)
}

/// `yl_call_as` with `YL_STDCALL`.
#[no_mangle]
pub unsafe extern "system" fn yl_call_as_std(
    e: *const yl_engine,
    principal_json: *const c_char,
    command: *const c_char,
    request_json: *const c_char,
    response_json: *mut *mut c_char,
) -> c_int {
    crate::yl_call_as(e, principal_json, command, request_json, response_json)
}

/// `yl_call_buf` with `YL_STDCALL`: the form PowerBuilder and Delphi use
/// (the caller's buffer, nothing to free).
#[no_mangle]
pub unsafe extern "system" fn yl_call_buf_std(
    e: *const yl_engine,
    command: *const c_char,
    request_json: *const c_char,
    out: *mut c_char,
    cap: usize,
    needed: *mut usize,
) -> c_int {
    crate::yl_call_buf(e, command, request_json, out, cap, needed)
}

/// `yl_call_as_buf` with `YL_STDCALL`.
#[no_mangle]
pub unsafe extern "system" fn yl_call_as_buf_std(
    e: *const yl_engine,
    principal_json: *const c_char,
    command: *const c_char,
    request_json: *const c_char,
    out: *mut c_char,
    cap: usize,
    needed: *mut usize,
) -> c_int {
    crate::yl_call_as_buf(e, principal_json, command, request_json, out, cap, needed)
}

/// `yl_string_free` with `YL_STDCALL`.
#[no_mangle]
pub unsafe extern "system" fn yl_string_free_std(s: *mut c_char) {
    crate::yl_string_free(s)
}

/// `yl_last_error_code` with `YL_STDCALL`.
#[no_mangle]
pub extern "system" fn yl_last_error_code_std() -> c_int {
    crate::yl_last_error_code()
}

/// `yl_last_error_message` with `YL_STDCALL`.
#[no_mangle]
pub unsafe extern "system" fn yl_last_error_message_std(buf: *mut c_char, cap: usize, needed: *mut usize) -> c_int {
    crate::yl_last_error_message(buf, cap, needed)
}

/// `yl_last_error_message_zh` with `YL_STDCALL`.
#[no_mangle]
pub unsafe extern "system" fn yl_last_error_message_zh_std(buf: *mut c_char, cap: usize, needed: *mut usize) -> c_int {
    crate::yl_last_error_message_zh(buf, cap, needed)
}

/// `yl_code_name` with `YL_STDCALL`.
#[no_mangle]
pub extern "system" fn yl_code_name_std(code: c_int) -> *const c_char {
    crate::yl_code_name(code)
}
