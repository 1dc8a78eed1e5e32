//! A sequence of commands with requests on one in-memory engine (manual
//! clock): vector steps as they are or edited, generated requests, raw text,
//! clock moves. After every step: the answer is an envelope and the pool's
//! invariants hold (no overbooking, counts agree with bookings).
//! The target's code is `yilian_fuzz::engine_calls` (fuzz-harness/), which the ordinary test run also exercises.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: yilian_fuzz::engine_calls::Input| yilian_fuzz::engine_calls::run(&input));
