//! The core's own cost of the loops that tests/c/bench.c runs through the C
//! ABI (typed hold+release, availability), interleaved in one process with
//! the same loops through the exported `yl_*` functions. The difference is
//! what the C boundary (argument checks, catch_unwind, last error) adds;
//! measured here because two processes on a shared machine differ by more
//! than that. tests/c/bench.sh prints it next to the C baseline.
//!
//! Sizes: YL_BENCH_ROUNDS (7), YL_BENCH_ITERS (20000 pairs per round; the
//! availability loop runs 50x as many), as in bench.c.

use std::hint::black_box;
use std::ptr;
use std::time::Instant;
use yilian::{yl_availability, yl_engine, yl_engine_open, yl_hold, yl_hold_info, yl_release, yl_slot_availability, yl_slot_handle, YL_OK};
use yilian_core::{Engine, HoldOptions, SlotHandle};

/// Acknowledges every queued event.
const DRAIN: &str = r#"{"ack":18446744073709551615,"limit":1}"#;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).filter(|n| *n > 0).unwrap_or(default)
}

fn pairs(engine: &Engine, slot: SlotHandle, n: u64) {
    let opts = HoldOptions::default();
    for _ in 0..n {
        let h = engine.hold(slot, black_box("PAT-BENCH"), &opts).unwrap_or_else(|e| panic!("hold: {e}"));
        engine.release(h.booking_id, None).unwrap_or_else(|e| panic!("release: {e}"));
    }
}

fn reads(engine: &Engine, slot: SlotHandle, n: u64) {
    for _ in 0..n {
        let a = engine.availability(slot).unwrap_or_else(|e| panic!("availability: {e}"));
        black_box(a.remaining);
    }
}

const SYNC: &str = r#"{"hospital_id":"H001","schedule_data":[{"device_id":"DEV001","project_id":"P001","date":"2024-10-30","capacity":1000,"available_slots":[{"start_time":"09:00","end_time":"10:00"}]}]}"#;
const CONFIG: &std::ffi::CStr = c"{\"clock_start\":\"2024-10-29T09:00:00+08:00\"}";

fn ffi_pairs(e: *const yl_engine, slot: u32, n: u64) {
    let mut h = yl_hold_info { booking_id: 0, expires_ms: 0 };
    for _ in 0..n {
        let rc = unsafe { yl_hold(e, slot, black_box(c"PAT-BENCH").as_ptr(), ptr::null(), 0, ptr::null(), &mut h) };
        assert_eq!(rc, YL_OK);
        assert_eq!(unsafe { yl_release(e, h.booking_id, ptr::null()) }, YL_OK);
    }
}

fn ffi_reads(e: *const yl_engine, slot: u32, n: u64) {
    let mut a = yl_slot_availability { capacity: 0, booked: 0, held: 0, remaining: 0, reserved_quota: 0, waiting: 0, tight: 0, closed: 0 };
    for _ in 0..n {
        assert_eq!(unsafe { yl_availability(e, slot, &mut a) }, YL_OK);
        black_box(a.remaining);
    }
}

fn median(v: &mut [f64]) -> (f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (v[v.len() / 2], v[0])
}

fn main() {
    let rounds = env("YL_BENCH_ROUNDS", 7) as usize;
    let iters = env("YL_BENCH_ITERS", 20_000);
    // The same setup twice: an Engine for direct calls, a yl_engine for the C functions.
    let engine = Engine::open(r#"{"clock_start":"2024-10-29T09:00:00+08:00"}"#).unwrap_or_else(|e| panic!("open: {e}"));
    let out = engine.call("sync-schedule", SYNC);
    assert!(out.contains("success"), "{out}");
    let slot = engine.slot_handle("EX-H001-DEV001-20241030-09001000").unwrap_or_else(|e| panic!("slot: {e}"));
    let mut e: *mut yl_engine = ptr::null_mut();
    assert_eq!(unsafe { yl_engine_open(CONFIG.as_ptr(), &mut e) }, YL_OK);
    let ffi_slot = {
        let mut s = 0u32;
        let sync = std::ffi::CString::new(SYNC).unwrap_or_default();
        let mut resp: *mut std::os::raw::c_char = ptr::null_mut();
        assert_eq!(unsafe { yilian::yl_call(e, c"sync-schedule".as_ptr(), sync.as_ptr(), &mut resp) }, YL_OK);
        unsafe { yilian::yl_string_free(resp) };
        assert_eq!(unsafe { yl_slot_handle(e, c"EX-H001-DEV001-20241030-09001000".as_ptr(), &mut s) }, YL_OK);
        s
    };

    pairs(&engine, slot, iters / 10);
    ffi_pairs(e, ffi_slot, iters / 10);
    reads(&engine, slot, iters * 5);
    ffi_reads(e, ffi_slot, iters * 5);
    let (mut cp, mut fp, mut cr, mut fr) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let time = |f: &mut dyn FnMut(), n: u64| {
        let t = Instant::now();
        f();
        t.elapsed().as_nanos() as f64 / n as f64
    };
    let drain = std::ffi::CString::new(DRAIN).unwrap_or_default();
    for round in 0..rounds {
        // Every hold and release queues an event: drain both outboxes before
        // timing, and alternate which side goes first, so neither side pays
        // for the other's frees.
        let _ = engine.call("next-events", DRAIN);
        let mut resp: *mut std::os::raw::c_char = ptr::null_mut();
        unsafe {
            yilian::yl_call(e, c"next-events".as_ptr(), drain.as_ptr(), &mut resp);
            yilian::yl_string_free(resp);
        }
        if round % 2 == 0 {
            cp.push(time(&mut || pairs(&engine, slot, iters), iters));
            fp.push(time(&mut || ffi_pairs(e, ffi_slot, iters), iters));
            cr.push(time(&mut || reads(&engine, slot, iters * 50), iters * 50));
            fr.push(time(&mut || ffi_reads(e, ffi_slot, iters * 50), iters * 50));
        } else {
            fp.push(time(&mut || ffi_pairs(e, ffi_slot, iters), iters));
            cp.push(time(&mut || pairs(&engine, slot, iters), iters));
            fr.push(time(&mut || ffi_reads(e, ffi_slot, iters * 50), iters * 50));
            cr.push(time(&mut || reads(&engine, slot, iters * 50), iters * 50));
        }
    }
    unsafe { yilian::yl_engine_close(e) };
    let ((cpm, cpmin), (fpm, fpmin)) = (median(&mut cp), median(&mut fp));
    let ((crm, crmin), (frm, frmin)) = (median(&mut cr), median(&mut fr));
    println!("{:<38} {:>12} {:>10}", "Rust, one process, interleaved", "median", "min");
    println!("{:<38} {:>12.1} {:>10.1}", "Engine::hold+release (pair, core)", cpm, cpmin);
    println!("{:<38} {:>12.1} {:>10.1}", "yl_hold+yl_release (pair, C ABI)", fpm, fpmin);
    println!("{:<38} {:>12.1} {:>10.1}", "Engine::availability (core)", crm, crmin);
    println!("{:<38} {:>12.1} {:>10.1}", "yl_availability (C ABI)", frm, frmin);
    println!("BENCH core_pair={cpm:.1} ffi_pair={fpm:.1} core_avail={crm:.1} ffi_avail={frm:.1}");
}
