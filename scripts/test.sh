#!/usr/bin/env bash
# Every suite of yilian, from a fresh Debian machine (root; Rust, gcc, Java,
# Maven and Python present; apt, crates.io, PyPI and Maven Central reachable).
# Each suite installs what it needs. Exits non-zero if any suite fails.
#
#   rust    cargo test --workspace --release (core units, shared vectors,
#           stress, property model, durability, SIGKILL crash)
#   c       tests/c/run.sh (header check, ASan+UBSan, valgrind, example, install)
#   python  bindings-python/run-tests.sh (abi3 wheel in a fresh venv, stubtest, pytest)
#   java    bindings-java/run-tests.sh (mvn package with -Xcheck:jni, example from the jar)
#
# `scripts/test.sh rust c` runs only the named suites.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
suites=("$@")
[ ${#suites[@]} -eq 0 ] && suites=(rust c python java)

run_suite() {
    case "$1" in
        rust)
            cargo test --workspace --release || return 1
            # The README's first command must keep working.
            local dir; dir="$(mktemp -d)"
            cargo run --release -q -p yilian-examples --bin release-day -- "$dir/store" || return 1
            rm -rf "$dir" ;;
        c) bash tests/c/run.sh ;;
        python) bash bindings-python/run-tests.sh ;;
        java) bash bindings-java/run-tests.sh ;;
        *) echo "unknown suite $1" >&2; return 2 ;;
    esac
}

passed=0
failed=0
failures=()
for s in "${suites[@]}"; do
    printf '\n======== %s ========\n' "$s"
    start=$(date +%s)
    if run_suite "$s"; then
        passed=$((passed + 1))
        printf '======== %s: ok (%ss)\n' "$s" $(( $(date +%s) - start ))
    else
        failed=$((failed + 1))
        failures+=("$s")
        printf '======== %s: FAILED (%ss)\n' "$s" $(( $(date +%s) - start ))
    fi
done
echo
[ $failed -gt 0 ] && echo "failed suites: ${failures[*]}"
echo "suites: $passed passed, $failed failed"
[ $failed -eq 0 ]
