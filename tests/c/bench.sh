#!/usr/bin/env bash
# Benchmarks the C ABI (tests/c/bench.c) against a plain C baseline in the
# same process, and the core's own cost of the same loops from Rust
# (ffi-c/benches/core_direct.rs), then prints what the boundary adds.
# Not part of the pass/fail run. Sizes: YL_BENCH_ROUNDS, YL_BENCH_ITERS.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

cargo build --release -p yilian-ffi
make -s -C "$here" build/bench
echo "== C: tests/c/bench.c"
c_out="$("$here/build/bench")"
echo "$c_out" | grep -v '^BENCH'
echo
echo "== Rust: ffi-c/benches/core_direct.rs"
r_out="$(cargo bench -q -p yilian-ffi --bench core_direct 2>/dev/null)"
echo "$r_out" | grep -v '^BENCH'
echo

# key=value pairs of both BENCH lines, then the target of issue 3: a typed
# call costs at most 2x the C baseline call on top of the core's own cost.
eval "$(printf "%s\n%s\n" "$c_out" "$r_out" | grep '^BENCH' | sed 's/^BENCH //' | tr ' ' '\n')"
awk -v cp="$c_pair" -v ca="$c_avail" -v tp="$typed_pair" -v jp="$json_pair" \
    -v kp="$core_pair" -v fp="$ffi_pair" -v ka="$core_avail" -v fa="$ffi_avail" 'BEGIN {
    printf "== what the C boundary adds (Rust process: C ABI - core, interleaved)\n";
    printf "yl_availability:  %+7.1f ns per call; budget 2 x C baseline read (%.1f ns) -> %s\n",
        fa - ka, 2 * ca, (fa - ka <= 2 * ca) ? "within" : "over";
    printf "yl_hold+release:  %+7.1f ns per pair; budget 2 x C baseline pair (%.1f ns) -> %s\n",
        fp - kp, 2 * cp, (fp - kp <= 2 * cp) ? "within" : "over (the core pair varies by microseconds between rounds: see min)";
    printf "JSON layer: a yl_call pre-book+cancel pair costs %.2fx a typed hold+release pair\n", jp / tp;
}'
