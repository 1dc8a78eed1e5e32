#!/usr/bin/env bash
# The release wheels of `yilian` for the domestic platforms, checked and tested:
#
#   bash bindings-python/build-wheels.sh OUT_DIR [--aarch64-smoke] [--no-build]
#
# --no-build checks and tests the two wheels already in OUT_DIR.
#
# 1. manylinux2014 (manylinux_2_17) abi3 wheels (CPython >= 3.8) for x86_64
#    and aarch64: `maturin build --release --zig --compatibility manylinux2014`
#    (zig from PyPI links against glibc 2.17's stubs). aarch64 is built by
#    Debian's cargo and rustc-web with `-Z build-std` (scripts/cross/zig.sh:
#    the same toolchain as the C libraries); x86_64 by the host's rustup cargo.
# 2. `auditwheel show` on each: it must report the manylinux_2_17 tag; and
#    readelf: the extension needs no glibc symbol newer than 2.28.
# 3. x86_64: installs the wheel into a fresh venv and runs the pytest suite
#    (bindings-python/tests) and examples/python/release_day.py against it,
#    from a scratch directory. The suite's one test of the test hook
#    (_test_panic, only in the test wheel of run-tests.sh) is deselected.
# 4. aarch64: a Debian arm64 CPython 3.11 (apt-get download + dpkg -x into a
#    sysroot; its shared libraries from the arm64 multiarch packages) runs
#    under qemu-aarch64-static with the wheel unpacked on its path, and pytest
#    (pure Python, fetched for that platform): the whole suite (40 s under
#    QEMU here; --aarch64-smoke: only test_api, test_errors, test_vectors)
#    and the example.
# Tools pinned in bindings-python/requirements-release.txt (maturin, ziglang,
# auditwheel), bindings-python/requirements-test.txt (pytest).
# Times measured here (2 shared cores): x86_64 wheel 7.1 min, aarch64 wheel
# 10.2 min (maturin's zig wrapper differs from cargo-zigbuild's, so the C
# dependencies and what depends on them rebuild even after build-jar.sh),
# auditwheel 1 s, the x86_64 venv and suite 20 s, the aarch64 sysroot 20 s
# (first time), the aarch64 suite under QEMU 40 s.
# The wheels build in target directories of their own ($CARGO_TARGET_DIR/wheels,
# $XC_TARGET_DIR/wheels): maturin's zig wrapper is not cargo-zigbuild's, and
# sharing one directory made each rebuild the other's C dependencies and
# everything above them (seen here: 15 min lost after the wheels).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/../scripts/cross/zig.sh"
root="$XC_ROOT"

out="" full=1 build=1
for a in "$@"; do
    case "$a" in
        --aarch64-smoke) full=0 ;;
        --no-build) build=0 ;;
        -*) echo "build-wheels.sh: unknown option $a" >&2; exit 2 ;;
        *) [ -z "$out" ] || { echo "usage: $0 OUT_DIR [--aarch64-smoke] [--no-build]" >&2; exit 2; }; out="$a" ;;
    esac
done
[ -n "$out" ] || { echo "usage: $0 OUT_DIR [--aarch64-smoke] [--no-build]" >&2; exit 2; }
mkdir -p "$out"
out="$(cd "$out" && pwd)"
t0=$SECONDS
step() { printf '\n== [%4ss] %s\n' "$((SECONDS - t0))" "$*"; }
PIP_FLAGS=(-q --disable-pip-version-check)
# The pytest suite's only test that needs the test hook of run-tests.sh's test wheel.
DESELECT=(--deselect tests/test_api.py::test_panic_becomes_internal_error_not_base_exception)  # node id: rootdir bindings-python

step "prerequisites"
cross_install rustc-web rust-web-src cargo-web qemu-user-static binutils python3-venv
zig_install

one_wheel() { # DIR ARCH: the one wheel for ARCH in DIR
    local w=("$1"/yilian-*-cp38-abi3-*"$2".whl)
    [ "${#w[@]}" -eq 1 ] && [ -f "${w[0]}" ] || { echo "build-wheels.sh: expected one $2 abi3 wheel in $1, found: ${w[*]}" >&2; exit 1; }
    echo "${w[0]}"
}
check_wheel() { # WHEEL ARCH
    local w="$1" arch="$2" show so tmp
    show="$(auditwheel show "$w" 2>&1)" || { echo "$show" >&2; echo "build-wheels.sh: auditwheel show $w failed" >&2; exit 1; }
    echo "$show"
    echo "$show" | tr -s ' \n' ' ' | grep -q "\"manylinux_2_17_$arch\"" \
        || { echo "build-wheels.sh: auditwheel does not find $w consistent with manylinux_2_17_$arch" >&2; exit 1; }
    tmp="$(mktemp -d)"
    python3 -m zipfile -e "$w" "$tmp"
    so="$(ls "$tmp"/yilian/_native*.so)"
    check_glibc "$so" | sed "s|$tmp/||"
    if readelf -S -W "$so" | grep -q '\.debug_info'; then echo "build-wheels.sh: $w carries debug info" >&2; exit 1; fi
    rm -rf "$tmp"
}

if [ "$build" = 1 ]; then
    wheels_x86="$out/.x86_64" wheels_arm="$out/.aarch64"
    step "x86_64: maturin build --release --zig --compatibility manylinux2014 --target x86_64-unknown-linux-gnu"
    rm -rf "$wheels_x86"
    (cd "$root" && CARGO_TARGET_DIR="$HOST_TARGET_DIR/wheels" maturin build --release --zig --compatibility manylinux2014 \
        --target x86_64-unknown-linux-gnu -m bindings-python/Cargo.toml -o "$wheels_x86")
    wx="$(one_wheel "$wheels_x86" x86_64)"

    step "aarch64: maturin build --release --zig --compatibility manylinux2014 --target aarch64-unknown-linux-gnu -Z build-std (Debian rustc-web)"
    rm -rf "$wheels_arm"
    xzig_env
    (cd "$root" && env "${XZIG_ENV[@]}" CARGO_TARGET_DIR="$XC_TARGET_DIR/wheels" maturin build --release --zig --compatibility manylinux2014 \
        --target aarch64-unknown-linux-gnu -Z build-std=std,panic_unwind -m bindings-python/Cargo.toml -o "$wheels_arm")
    wa="$(one_wheel "$wheels_arm" aarch64)"
    mv -f "$wx" "$wa" "$out/"
    rm -rf "$wheels_x86" "$wheels_arm"
    wx="$out/${wx##*/}" wa="$out/${wa##*/}"
else
    wx="$(one_wheel "$out" x86_64)" wa="$(one_wheel "$out" aarch64)"
fi

step "auditwheel show (must be manylinux_2_17) and the glibc check"
check_wheel "$wx" x86_64
check_wheel "$wa" aarch64

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
step "x86_64: a fresh venv with the wheel, then pytest and the example"
python3 -m venv "$scratch/venv"
"$scratch/venv/bin/python" -m pip install "${PIP_FLAGS[@]}" "$(grep -E '^pytest==' "$here/requirements-test.txt")" "$wx"
# From a scratch directory, as run-tests.sh: only the installed wheel can be imported.
(cd "$scratch" && YILIAN_EXPECT_INSTALLED=1 "$scratch/venv/bin/python" -m pytest "$here/tests" -p no:cacheprovider -q "${DESELECT[@]}")
(cd "$scratch" && "$scratch/venv/bin/python" "$root/examples/python/release_day.py" | tail -n 1)

step "aarch64: Debian's arm64 CPython 3.11 in a sysroot, run by qemu-aarch64-static"
# Shared libraries the interpreter needs, as arm64 multiarch packages (beside the host's).
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    [ "$(id -u)" -eq 0 ] || { echo "build-wheels.sh: run as root (dpkg --add-architecture arm64)" >&2; exit 1; }
    dpkg --add-architecture arm64
    apt-get update -qq
fi
cross_install libc6:arm64 libbz2-1.0:arm64 libcrypt1:arm64 libexpat1:arm64 libffi8:arm64 liblzma5:arm64 \
    libncursesw6:arm64 libreadline8:arm64 libsqlite3-0:arm64 libssl3:arm64 libtinfo6:arm64 libuuid1:arm64 zlib1g:arm64
sysroot="$XC_TARGET_DIR/arm64-python-sysroot"
if [ ! -x "$sysroot/usr/bin/python3.11" ]; then
    debs="$(mktemp -d)"
    (cd "$debs" && apt-get download -q python3.11-minimal:arm64 libpython3.11-minimal:arm64 libpython3.11-stdlib:arm64)
    mkdir -p "$sysroot"
    for d in "$debs"/*.deb; do dpkg -x "$d" "$sysroot"; done
    rm -rf "$debs"
fi
apy=(qemu-aarch64-static "$sysroot/usr/bin/python3.11")
"${apy[@]}" -c 'import platform, sys; print("python", sys.version.split()[0], platform.machine())'
site="$scratch/arm64-site"
python3 -m pip install "${PIP_FLAGS[@]}" --target "$site" --only-binary=:all: --platform manylinux2014_aarch64 \
    --python-version 3.11 --implementation cp "$(grep -E '^pytest==' "$here/requirements-test.txt")"
python3 -m zipfile -e "$wa" "$site"
(cd "$scratch" && PYTHONPATH="$site" "${apy[@]}" -c 'import platform, yilian; print("yilian", yilian.__version__, "on", platform.machine(), "from", yilian.__file__)')
if [ "$full" = 1 ]; then
    tests=("$here/tests")
else
    tests=("$here/tests/test_api.py" "$here/tests/test_errors.py" "$here/tests/test_vectors.py")
fi
step "aarch64: pytest ${tests[*]##*/} under QEMU"
(cd "$scratch" && PYTHONPATH="$site" "${apy[@]}" -m pytest "${tests[@]}" -p no:cacheprovider -q "${DESELECT[@]}")
(cd "$scratch" && PYTHONPATH="$site" "${apy[@]}" "$root/examples/python/release_day.py" | tail -n 1)

step "done: $(cd "$out" && ls yilian-*.whl | tr '\n' ' ')"
(cd "$out" && sha256sum yilian-*.whl)
