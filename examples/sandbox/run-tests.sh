#!/usr/bin/env bash
# The sandbox server's suite: unit tests, the source's flow over HTTP on
# loopback, bad input, SSE, the binary (flags, --demo, SIGTERM, restart) and
# the bounded load test. Needs only cargo: reqwest uses rustls, no OpenSSL.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -p yilian-sandbox
# --nocapture shows the load test's throughput and p99 figures.
cargo test --release -p yilian-sandbox -- --nocapture
