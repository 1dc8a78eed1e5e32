#!/usr/bin/env bash
# Builds the release wheel, installs it into bindings-python/.venv-bench and
# runs the benchmarks, each interleaved in one process against its pure-Python
# baseline: the typed hold/release against a dict + Lock pool, and lab report
# translation against a dict comprehension. Not part of the tests.
#
#   bash bindings-python/bench.sh [--rounds 7] [--ops 20000]
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
PYTHON="${PYTHON:-python3}"
BUILD_VENV="$HERE/.venv"
BENCH_VENV="$HERE/.venv-bench"
WHEELS="$HERE/wheels-bench"
PIP_FLAGS=(-q --disable-pip-version-check)

[ -x "$BUILD_VENV/bin/python" ] || "$PYTHON" -m venv "$BUILD_VENV"
"$BUILD_VENV/bin/python" -m pip install "${PIP_FLAGS[@]}" -r "$HERE/requirements-build.txt"
rm -rf "$WHEELS"
(cd "$ROOT" && "$BUILD_VENV/bin/maturin" build --release -m bindings-python/Cargo.toml -o "$WHEELS" -i "$BUILD_VENV/bin/python")
shopt -s nullglob
wheels=("$WHEELS"/yilian-*-abi3-*.whl)
[ "${#wheels[@]}" -eq 1 ] || { echo "expected one wheel in $WHEELS, found ${#wheels[@]}" >&2; exit 1; }

[ -x "$BENCH_VENV/bin/python" ] || "$PYTHON" -m venv "$BENCH_VENV"
"$BENCH_VENV/bin/python" -m pip install "${PIP_FLAGS[@]}" --force-reinstall --no-deps "${wheels[0]}"

SCRATCH="$(mktemp -d)"
trap 'rm -rf "$SCRATCH"' EXIT
cd "$SCRATCH"
# Both benchmarks run; the script fails if either misses its floor.
rc=0
"$BENCH_VENV/bin/python" "$HERE/bench/bench_reserve.py" "$@" || rc=$?
"$BENCH_VENV/bin/python" "$HERE/bench/bench_lab_translate.py" || rc=$?
exit $rc
