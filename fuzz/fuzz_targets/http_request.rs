//! The sandbox's request handling: the axum `Router` of `yilian_sandbox`
//! driven in-process (`tower::ServiceExt::oneshot`, a current-thread tokio
//! runtime) with an arbitrary method, path, query string, headers and body.
//! Paths and bodies are drawn from the routes, the engine's commands and the
//! vectors' requests, or are raw bytes.
//!
//! Checked: never a 5xx; every answer but the plain-text and streaming
//! routes (`/metrics`, `/api/v1/events/stream`, `/reports/…`) is a JSON
//! envelope, and so is every error.
//! The target's code is `yilian_fuzz::http_request` (fuzz-harness/), which the ordinary test run also exercises.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: yilian_fuzz::http_request::Input| yilian_fuzz::http_request::run(&input));
