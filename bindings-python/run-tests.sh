#!/usr/bin/env bash
# Builds the abi3 wheel of `yilian` in release mode, installs it into a FRESH
# virtual environment (as a user would), then runs stubtest, the example and
# pytest against that installed wheel. Exits non-zero on any failure.
#
#   bash bindings-python/run-tests.sh          (PYTHON=python3.x to pick the interpreter)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
PYTHON="${PYTHON:-python3}"
BUILD_VENV="$HERE/.venv"        # maturin only; kept between runs
TEST_VENV="$HERE/.venv-test"    # recreated every run: nothing but the wheel and test tools
WHEELS="$HERE/wheels"
PIP_FLAGS=(-q --disable-pip-version-check)

echo "== build venv ($BUILD_VENV)"
[ -x "$BUILD_VENV/bin/python" ] || "$PYTHON" -m venv "$BUILD_VENV"
"$BUILD_VENV/bin/python" -m pip install "${PIP_FLAGS[@]}" -r "$HERE/requirements-build.txt"

echo "== maturin build --release (abi3 wheel)"
rm -rf "$WHEELS"
(cd "$ROOT" && "$BUILD_VENV/bin/maturin" build --release -m bindings-python/Cargo.toml -o "$WHEELS" -i "$BUILD_VENV/bin/python")
shopt -s nullglob
wheels=("$WHEELS"/yilian-*-abi3-*.whl)
if [ "${#wheels[@]}" -ne 1 ]; then
    echo "expected exactly one abi3 wheel in $WHEELS, found ${#wheels[@]}" >&2
    exit 1
fi
echo "wheel: ${wheels[0]##*/}"

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
"$TEST_VENV/bin/python" -m mypy.stubtest yilian

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

echo "== pytest"
YILIAN_EXPECT_INSTALLED=1 "$TEST_VENV/bin/python" -m pytest "$HERE/tests" -p no:cacheprovider -q -rfEs
