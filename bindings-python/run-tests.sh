#!/usr/bin/env bash
# Builds the abi3 wheel of `yilian` in release mode, installs it into a FRESH
# virtual environment (as a user would), then runs stubtest, the example and a
# check that it has no test hook against that installed wheel; then replaces
# it with the test wheel (the same, built with the cargo feature `testing`,
# whose test hooks such as yilian._native._test_panic the suite uses) and
# runs pytest. Exits non-zero on any failure.
#
#   bash bindings-python/run-tests.sh          (PYTHON=python3.x to pick the interpreter)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
PYTHON="${PYTHON:-python3}"
BUILD_VENV="$HERE/.venv"        # maturin only; kept between runs
TEST_VENV="$HERE/.venv-test"    # recreated every run: nothing but the wheel and test tools
WHEELS="$HERE/wheels"               # the shipped wheel
TEST_WHEELS="$HERE/wheels-testing"  # the test wheel (cargo feature `testing`)
PIP_FLAGS=(-q --disable-pip-version-check)

echo "== build venv ($BUILD_VENV)"
[ -x "$BUILD_VENV/bin/python" ] || "$PYTHON" -m venv "$BUILD_VENV"
"$BUILD_VENV/bin/python" -m pip install "${PIP_FLAGS[@]}" -r "$HERE/requirements-build.txt"

echo "== maturin build --release --features testing (the test wheel)"
rm -rf "$TEST_WHEELS"
(cd "$ROOT" && "$BUILD_VENV/bin/maturin" build --release --features testing -m bindings-python/Cargo.toml -o "$TEST_WHEELS" -i "$BUILD_VENV/bin/python")
echo "== maturin build --release (the shipped abi3 wheel)"
rm -rf "$WHEELS"
(cd "$ROOT" && "$BUILD_VENV/bin/maturin" build --release -m bindings-python/Cargo.toml -o "$WHEELS" -i "$BUILD_VENV/bin/python")
shopt -s nullglob
wheels=("$WHEELS"/yilian-*-abi3-*.whl)
test_wheels=("$TEST_WHEELS"/yilian-*-abi3-*.whl)
if [ "${#wheels[@]}" -ne 1 ] || [ "${#test_wheels[@]}" -ne 1 ]; then
    echo "expected exactly one abi3 wheel in each of $WHEELS and $TEST_WHEELS, found ${#wheels[@]} and ${#test_wheels[@]}" >&2
    exit 1
fi
echo "wheel: ${wheels[0]##*/} (test wheel: ${test_wheels[0]})"

echo "== fresh test venv ($TEST_VENV)"
rm -rf "$TEST_VENV"
"$PYTHON" -m venv "$TEST_VENV"
"$TEST_VENV/bin/python" -m pip install "${PIP_FLAGS[@]}" -r "$HERE/requirements-test.txt" "${wheels[0]}"

# Run from a scratch directory so that only the installed wheel can be imported.
SCRATCH="$(mktemp -d)"
trap 'rm -rf "$SCRATCH"' EXIT
cd "$SCRATCH"

echo "== import check"
"$TEST_VENV/bin/python" -c 'import yilian, sys; print("yilian", yilian.__version__, "from", yilian.__file__); sys.exit(0 if "site-packages" in yilian.__file__ else 1)'

echo "== stubtest"
"$TEST_VENV/bin/python" -m mypy.stubtest yilian --allowlist "$HERE/stubtest-allowlist.txt"

echo "== example: examples/python/release_day.py"
"$TEST_VENV/bin/python" "$ROOT/examples/python/release_day.py"

# The wheel is abi3 (cp38-abi3): one build for every CPython from 3.8 on. Smoke
# it (install + the example) on the oldest and newest interpreters present;
# ABI3_PYTHONS overrides the list, e.g. ABI3_PYTHONS="/usr/bin/python3.12".
if [ -z "${ABI3_PYTHONS+set}" ] && command -v pyenv >/dev/null 2>&1; then
    ABI3_PYTHONS="$(ls -d "$(pyenv root)"/versions/3.8.*/bin/python "$(pyenv root)"/versions/3.13.*/bin/python 2>/dev/null | tr '\n' ' ')"
fi
for py in ${ABI3_PYTHONS:-}; do
    echo "== abi3 smoke on $("$py" --version 2>&1)"
    rm -rf "$SCRATCH/abi3-venv"
    "$py" -m venv "$SCRATCH/abi3-venv"
    "$SCRATCH/abi3-venv/bin/python" -m pip install "${PIP_FLAGS[@]}" "${wheels[0]}"
    "$SCRATCH/abi3-venv/bin/python" "$ROOT/examples/python/release_day.py" > "$SCRATCH/abi3.out"
    tail -1 "$SCRATCH/abi3.out"
done

echo "== the shipped wheel has no test hook"
"$TEST_VENV/bin/python" -c 'import sys, yilian._native as n; hooks = [h for h in ("_test_panic",) if hasattr(n, h)]; print("test hooks:", hooks or "none"); sys.exit(1 if hooks else 0)'

echo "== pytest (the test wheel)"
"$TEST_VENV/bin/python" -m pip install "${PIP_FLAGS[@]}" --force-reinstall --no-deps "${test_wheels[0]}"
"$TEST_VENV/bin/python" -c 'import yilian._native as n; assert hasattr(n, "_test_panic"), "the test wheel lacks its test hooks"'
YILIAN_EXPECT_INSTALLED=1 "$TEST_VENV/bin/python" -m pytest "$HERE/tests" -p no:cacheprovider -q -rfEs
