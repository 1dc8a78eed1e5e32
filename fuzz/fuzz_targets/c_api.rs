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
//! The target's code is `yilian_fuzz::c_api` (fuzz-harness/), which the ordinary test run also exercises.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: yilian_fuzz::c_api::Input| yilian_fuzz::c_api::run(&input));
