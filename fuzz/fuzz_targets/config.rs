//! `Engine::open` with an arbitrary config: a JSON object of the config's
//! own keys (and others) with arbitrary values, or raw text. In memory only:
//! paths (`data_dir`, `report_dir`, `pdf_font`) are dropped. The open either
//! fails with a config error (a known code, both messages) or gives an engine
//! that answers a command with an envelope.
//! The target's code is `yilian_fuzz::config` (fuzz-harness/), which the ordinary test run also exercises.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: yilian_fuzz::config::Input| yilian_fuzz::config::run(&input));
