//! The C entry points, called from Rust as a C host would: `yl_engine_open`,
//! `yl_call`/`yl_call_as` (library-allocated answers), `yl_call_buf` and
//! `yl_call_as_buf` with arbitrary capacities (the too-small-buffer replay
//! included), the typed hot path, the last-error accessors, with NULL
//! arguments and byte strings that are not UTF-8.
//!
//! Checked: every code returned is `YL_OK` or a code of the table; nothing
//! is written past `cap`; a too-small answer leaves an empty string and says
//! how much it needs; the retry with that much gets an answer of exactly
//! that size (the replay); every answer is an envelope; every slot keeps
//! `capacity == booked + held + remaining` (no overbooking).
use crate::{assert_envelope, vectors, Step, Steps, ENGINE_CONFIG};
use arbitrary::{Arbitrary, Result as AResult, Unstructured};
use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int};
use std::ptr::{null, null_mut};
use yilian::*;

const GUARD: u8 = 0xA5;

/// A C string argument: NULL, text from a step, or raw bytes (cut at a NUL).
#[derive(Debug)]
enum CStrArg {
    Null,
    Text(String),
    Bytes(Vec<u8>),
}

impl CStrArg {
    fn decode(u: &mut Unstructured<'_>, text: impl FnOnce() -> String) -> AResult<CStrArg> {
        Ok(match u.arbitrary::<u8>()? % 16 {
            0 => CStrArg::Null,
            1 => {
                let n = u.arbitrary::<u8>()? as usize;
                CStrArg::Bytes(u.bytes(n.min(u.len()))?.to_vec())
            }
            _ => CStrArg::Text(text()),
        })
    }
    fn to_c(&self) -> Option<CString> {
        match self {
            CStrArg::Null => None,
            CStrArg::Text(t) => Some(cstring(t.as_bytes())),
            CStrArg::Bytes(b) => Some(cstring(b)),
        }
    }
}

fn cstring(b: &[u8]) -> CString {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    CString::new(&b[..end]).expect("cut at the first NUL")
}

fn ptr(c: &Option<CString>) -> *const c_char {
    c.as_ref().map_or(null(), |c| c.as_ptr())
}

#[derive(Debug)]
enum Op {
    Call { principal: Option<CStrArg>, command: CStrArg, request: CStrArg, null_out: bool },
    CallBuf { principal: Option<CStrArg>, command: CStrArg, request: CStrArg, cap: u16, null_needed: bool, retry: bool },
    SlotHandle(CStrArg),
    Hold { slot: u32, patient: CStrArg, clinic: CStrArg, priority: c_int, request_id: CStrArg },
    Confirm { booking: u64, request_id: CStrArg },
    Release { booking: u64, request_id: CStrArg },
    Availability(u32),
    LastError { zh: bool, cap: u16 },
    CodeName(c_int),
}

fn small_or_any(u: &mut Unstructured<'_>) -> AResult<u64> {
    let b = u.arbitrary::<u8>()?;
    Ok(if b & 0x80 == 0 { u64::from(b) } else { u.arbitrary::<u64>()? })
}

impl<'a> Arbitrary<'a> for Op {
    fn arbitrary(u: &mut Unstructured<'a>) -> AResult<Self> {
        // The step gives command and request texts the engine understands.
        let tag = u.arbitrary::<u8>()? % 12;
        let step = |u: &mut Unstructured<'_>| -> AResult<(Option<String>, String, String)> {
            let mut one = Unstructured::new(u.bytes(u.len().min(3))?);
            Ok(Steps::arbitrary(&mut one).ok().and_then(|s| s.0.first().map(Step::resolve)).unwrap_or((None, "engine-info".into(), "{}".into())))
        };
        let texts = |u: &mut Unstructured<'_>| -> AResult<(Option<CStrArg>, CStrArg, CStrArg)> {
            let (p, c, r) = step(u)?;
            let principal = match p {
                Some(p) => Some(CStrArg::decode(u, || p)?),
                None => None,
            };
            Ok((principal, CStrArg::decode(u, || c)?, CStrArg::decode(u, || r)?))
        };
        Ok(match tag {
            0 | 1 => {
                let (principal, command, request) = texts(u)?;
                Op::Call { principal, command, request, null_out: u.arbitrary::<u8>()? == 0 }
            }
            2..=4 => {
                let (principal, command, request) = texts(u)?;
                let flags = u.arbitrary::<u8>()?;
                Op::CallBuf { principal, command, request, cap: u.arbitrary::<u16>()? % 4096, null_needed: flags & 1 == 1, retry: flags & 2 == 0 }
            }
            5 => Op::SlotHandle(CStrArg::decode(u, || "EX-H001-DEV001-20241030-09001000".into())?),
            6 => {
                let slot = small_or_any(u)? as u32;
                let v = vectors();
                let pat = format!("PAT{:03}", u.arbitrary::<u8>()? % 8);
                Op::Hold {
                    slot,
                    patient: CStrArg::decode(u, || pat)?,
                    clinic: CStrArg::decode(u, || crate::pick(&v.strings, 0).to_string())?,
                    priority: if u.arbitrary::<u8>()? & 1 == 0 { c_int::from(u.arbitrary::<u8>()? % 6) } else { u.arbitrary::<c_int>()? },
                    request_id: CStrArg::decode(u, || "r1".into())?,
                }
            }
            7 => Op::Confirm { booking: small_or_any(u)?, request_id: CStrArg::decode(u, || "c1".into())? },
            8 => Op::Release { booking: small_or_any(u)?, request_id: CStrArg::decode(u, || "x1".into())? },
            9 => Op::Availability(small_or_any(u)? as u32),
            10 => Op::LastError { zh: u.arbitrary::<bool>()?, cap: u.arbitrary::<u16>()? % 512 },
            _ => Op::CodeName(u.arbitrary::<c_int>()?),
        })
    }
}

#[derive(Debug)]
pub struct Input {
    /// Open with the fuzz config (else with these bytes as the config).
    config: Option<Vec<u8>>,
    ops: Vec<Op>,
}

impl<'a> Arbitrary<'a> for Input {
    fn arbitrary(u: &mut Unstructured<'a>) -> AResult<Self> {
        let config = if u.arbitrary::<u8>()? % 16 == 0 {
            let n = u.arbitrary::<u8>()? as usize;
            Some(u.bytes(n.min(u.len()))?.to_vec())
        } else {
            None
        };
        let mut ops = Vec::new();
        while !u.is_empty() && ops.len() < 48 {
            ops.push(Op::arbitrary(u)?);
        }
        Ok(Input { config, ops })
    }
}

fn known(code: c_int) -> bool {
    code == YL_OK || yilian_core::ErrorCode::from_numeric(code).is_some()
}

/// A buffer of `cap` bytes followed by guard bytes that must stay untouched.
fn buffer(cap: usize) -> Vec<u8> {
    vec![GUARD; cap + 16]
}

fn guards_intact(buf: &[u8], cap: usize, what: &str) {
    assert!(buf[cap..].iter().all(|&b| b == GUARD), "{what}: wrote past cap {cap}");
}

/// The text a successful buffer call wrote: NUL-terminated within `cap`.
fn text_in(buf: &[u8], cap: usize, what: &str) -> String {
    let end = buf[..cap].iter().position(|&b| b == 0).unwrap_or_else(|| panic!("{what}: no NUL within cap"));
    String::from_utf8(buf[..end].to_vec()).unwrap_or_else(|_| panic!("{what}: answer is not UTF-8"))
}

unsafe fn run_calls(input: &Input) {
    let config = match &input.config {
        Some(b) => cstring(b),
        None => CString::new(ENGINE_CONFIG).expect("no NUL"),
    };
    let mut e: *mut yl_engine = null_mut();
    let rc = yl_engine_open(config.as_ptr(), &mut e);
    assert!(known(rc), "open: unknown code {rc}");
    if rc != YL_OK {
        assert!(e.is_null(), "a failed open leaves *out NULL");
        return;
    }
    assert!(!e.is_null());
    for (i, op) in input.ops.iter().enumerate() {
        let what = format!("op {i}");
        match op {
            Op::Call { principal, command, request, null_out } => {
                let (p, c, r) = (principal.as_ref().map(CStrArg::to_c), command.to_c(), request.to_c());
                let mut out: *mut c_char = null_mut();
                let out_ptr = if *null_out { null_mut() } else { &mut out as *mut _ };
                let rc = match &p {
                    Some(p) => yl_call_as(e, ptr(p), ptr(&c), ptr(&r), out_ptr),
                    None => yl_call(e, ptr(&c), ptr(&r), out_ptr),
                };
                assert!(known(rc), "{what}: unknown code {rc}");
                if *null_out {
                    assert_ne!(rc, YL_OK, "{what}: NULL response_json accepted");
                } else {
                    assert!(!out.is_null(), "{what}: no envelope (code {rc})");
                    let text = CStr::from_ptr(out).to_str().expect("envelope is UTF-8").to_string();
                    yl_string_free(out);
                    assert_envelope(&text, &what);
                }
            }
            Op::CallBuf { principal, command, request, cap, null_needed, retry } => {
                let (p, c, r) = (principal.as_ref().map(CStrArg::to_c), command.to_c(), request.to_c());
                let call = |buf: *mut c_char, cap: usize, needed: *mut usize| match &p {
                    Some(p) => yl_call_as_buf(e, ptr(p), ptr(&c), ptr(&r), buf, cap, needed),
                    None => yl_call_buf(e, ptr(&c), ptr(&r), buf, cap, needed),
                };
                let cap = *cap as usize;
                let mut buf = buffer(cap);
                let mut needed = usize::MAX;
                let np = if *null_needed { null_mut() } else { &mut needed as *mut usize };
                let rc = call(buf.as_mut_ptr().cast(), cap, np);
                assert!(known(rc), "{what}: unknown code {rc}");
                guards_intact(&buf, cap, &what);
                if rc == YL_E_BUFFER_TOO_SMALL {
                    if cap > 0 {
                        assert_eq!(buf[0], 0, "{what}: a too-small buffer is left an empty string");
                    }
                    if !*null_needed {
                        assert!(needed > cap, "{what}: too small, yet needs {needed} ≤ cap {cap}");
                        if *retry {
                            // The replay: the same call with the size asked for gets
                            // the kept answer, of exactly that size.
                            let mut big = buffer(needed);
                            let mut again = 0usize;
                            let rc2 = call(big.as_mut_ptr().cast(), needed, &mut again);
                            assert!(known(rc2), "{what}: unknown code {rc2} on retry");
                            assert_ne!(rc2, YL_E_BUFFER_TOO_SMALL, "{what}: retry with the size asked for is still too small");
                            guards_intact(&big, needed, &what);
                            assert_eq!(again, needed, "{what}: the retry's answer differs in size from the kept one");
                            assert_envelope(&text_in(&big, needed, &what), &what);
                        }
                    }
                } else if cap > 0 && rc != YL_E_NULL_ARGUMENT {
                    let text = text_in(&buf, cap, &what);
                    if !*null_needed {
                        assert_eq!(needed, text.len() + 1, "{what}: needed is the answer's size, NUL included");
                    }
                    assert_envelope(&text, &what);
                }
            }
            Op::SlotHandle(id) => {
                let id = id.to_c();
                let mut slot: yl_slot = u32::MAX;
                let rc = yl_slot_handle(e, ptr(&id), &mut slot);
                assert!(known(rc), "{what}: unknown code {rc}");
            }
            Op::Hold { slot, patient, clinic, priority, request_id } => {
                let (pa, cl, ri) = (patient.to_c(), clinic.to_c(), request_id.to_c());
                let mut out = yl_hold_info { booking_id: 0, expires_ms: 0 };
                let rc = yl_hold(e, *slot, ptr(&pa), ptr(&cl), *priority, ptr(&ri), &mut out);
                assert!(known(rc), "{what}: unknown code {rc}");
            }
            Op::Confirm { booking, request_id } => {
                let ri = request_id.to_c();
                let rc = yl_confirm(e, *booking, ptr(&ri));
                assert!(known(rc), "{what}: unknown code {rc}");
            }
            Op::Release { booking, request_id } => {
                let ri = request_id.to_c();
                let rc = yl_release(e, *booking, ptr(&ri));
                assert!(known(rc), "{what}: unknown code {rc}");
            }
            Op::Availability(slot) => check_slot(e, *slot, &what),
            Op::LastError { zh, cap } => {
                let cap = *cap as usize;
                let mut buf = buffer(cap);
                let mut needed = 0usize;
                let rc = if *zh {
                    yl_last_error_message_zh(buf.as_mut_ptr().cast(), cap, &mut needed)
                } else {
                    yl_last_error_message(buf.as_mut_ptr().cast(), cap, &mut needed)
                };
                assert!(rc == YL_OK || rc == YL_E_BUFFER_TOO_SMALL, "{what}: last message code {rc}");
                guards_intact(&buf, cap, &what);
                if rc == YL_OK {
                    assert_eq!(text_in(&buf, cap, &what).len() + 1, needed);
                }
                let _ = yl_last_error_code();
            }
            Op::CodeName(code) => {
                let name = yl_code_name(*code);
                assert!(!name.is_null());
                let _ = CStr::from_ptr(name).to_str().expect("code names are ASCII");
            }
        }
    }
    // No slot is overbooked, whatever ran.
    for slot in 0..64 {
        check_slot(e, slot, "end");
    }
    yl_engine_close(e);
}

unsafe fn check_slot(e: *const yl_engine, slot: u32, what: &str) {
    let mut a = std::mem::MaybeUninit::<yl_slot_availability>::zeroed();
    let rc = yl_availability(e, slot, a.as_mut_ptr());
    assert!(known(rc), "{what}: unknown code {rc}");
    if rc == YL_OK {
        let a = a.assume_init();
        assert!(a.booked + a.held <= a.capacity, "{what}: slot {slot} overbooked: {a:?}");
        assert_eq!(a.capacity, a.booked + a.held + a.remaining, "{what}: slot {slot}: {a:?}");
    }
}

/// Runs the input's calls through the C entry points.
pub fn run(input: &Input) {
    // SAFETY: every pointer handed to the C functions is valid or NULL, as
    // a C host's would be; buffers are as long as the capacity stated.
    unsafe { run_calls(input) }
}
