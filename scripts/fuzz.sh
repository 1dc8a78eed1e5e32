#!/usr/bin/env bash
# Builds and runs every fuzz target of fuzz/ (cargo-fuzz, libFuzzer) for
# SECONDS each (default 60), then prints executions and coverage per target.
#
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Installs cargo-fuzz if missing (idempotent). Stable rustc with
# RUSTC_BOOTSTRAP=1 (cargo-fuzz needs -Z flags). The seed corpora are written
# from tests/vectors first (fuzz/corpus/, not committed); crashes land in
# fuzz/artifacts/<target>/ and fail the run. FUZZ_SANITIZER=address adds
# AddressSanitizer (slower; default none: the targets are safe Rust but for
# the C entry points). Overflow checks and debug assertions are on (see
# fuzz/Cargo.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER="${1:-60}"
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(engine_calls config c_api http_request)
SAN="${FUZZ_SANITIZER:-none}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

start=$(date +%s)
cd fuzz
cargo run --release --quiet --example gen_seeds

for t in "${TARGETS[@]}"; do cargo fuzz build -O -s "$SAN" --debug-assertions "$t"; done
built=$(date +%s)
mkdir -p logs
status=0
summary=()
for t in "${TARGETS[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    log="logs/$t.log"
    # -rss_limit_mb: a memory blow-up is a finding; -timeout: so is a hang.
    if ! cargo fuzz run -O -s "$SAN" --debug-assertions "$t" "corpus/$t" -- \
        -max_total_time="$SECONDS_PER" -rss_limit_mb=2048 -timeout=20 -print_final_stats=1 >"$log" 2>&1; then
        echo "fuzz target $t FAILED; see fuzz/$log and fuzz/artifacts/$t/" >&2
        tail -40 "$log" >&2
        status=1
    fi
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    last=$(grep -E '#[0-9]+.*cov: ' "$log" | tail -1)
    cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<<"$last")
    summary+=("$(printf '%-14s execs %-10s exec/s %-7s cov %-7s ft %s' "$t" "$execs" "$rate" "${cov:-?}" "${ft:-?}")")
done
end=$(date +%s)
echo "fuzz summary (${SECONDS_PER}s per target; build $((built - start))s, total $((end - start))s):"
printf '  %s\n' "${summary[@]}"
exit $status
