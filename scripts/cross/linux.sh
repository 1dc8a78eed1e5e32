#!/usr/bin/env bash
# The shipped Linux C artifacts for the domestic platforms, and their tests:
#
#   scripts/cross/linux.sh OUT_DIR [--no-test] [--full-rust-tests] [--no-loongarch]
#
# 1. x86_64 (also Hygon, Zhaoxin) and aarch64 (Kunpeng, Phytium): libyilian
#    (yilian-ffi, no platform client) linked by zig against glibc
#    $LINUX_GLIBC (default 2.17; see zig.sh), into OUT_DIR/linux-<arch>/:
#      libyilian.so        stripped, soname libyilian.so.0, with a
#                          .gnu_debuglink to
#      libyilian.so.debug  its debug info (objcopy --only-keep-debug)
#      libyilian.a         ffi-c/hide-static.sh: only yl_* global, no debug info
#    x86_64 uses the host's rustup cargo; aarch64 Debian's rustc-web with
#    -Zbuild-std (env.sh), gcc-aarch64-linux-gnu's binutils for strip/ld -r.
# 2. The glibc check: readelf -V on each .so (and on a program zig links
#    against each .a with glibc 2.28's stubs) fails if anything needs a
#    GLIBC_x.y newer than 2.28.
# 3. loongarch64-unknown-linux-gnu (new-world ABI, LP64D; glibc >= 2.36 there):
#    compiles and links, OUT_DIR/linux-loongarch64/{libyilian.so,libyilian.a}
#    (cargo's staticlib as is: bookworm has no loongarch binutils for
#    hide-static.sh). Not run: bookworm's QEMU 7.2 has no LSX, which Rust's
#    target enables (SIGILL; tried once below, the outcome is printed).
# 4. Unless --no-test, under qemu-aarch64-static (on Debian's arm64 glibc, multiarch):
#    the C suite (tests/c, built with aarch64-linux-gnu-gcc against an aarch64
#    build with --features testing,client, which is never shipped) and the
#    Rust suite (release profile, as shipped): by default yilian-core's unit
#    tests and its integration test, and yilian-tests' vectors and durability
#    tests ($RUST_SUBSET names others; the SIGKILL tests re-execute the test
#    binary as a child, which under qemu-user needs qemu registered in
#    binfmt_misc: absent in containers like this one, where they fail with
#    "acknowledged only 0"); --full-rust-tests runs every test of
#    yilian-core and yilian-tests (the workspace's Rust suite but the
#    sandbox and the bindings, which have their own suites).
#
# Times measured here (2 cores shared with another build, cold target dirs):
# x86_64 build 11.5 min, aarch64 build 15 min (std included), the aarch64
# test build (testing,client: the client's dependencies) 8.8 min, the
# shipping steps and checks ~30 s, the smokes 6 s, the aarch64 C suite under
# QEMU 25 s; the Rust subset's test build about as long as the aarch64 build.
# loongarch64: about as long as aarch64 (not measured: see the report in #20).
# Installs what it needs (Debian packages as root, the pinned PyPI tools in a
# venv). Fails loudly on any error.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/zig.sh"
root="$XC_ROOT"

out="" test=1 full_rust=0 loongarch=1
while [ $# -gt 0 ]; do
    case "$1" in
        --no-test) test=0 ;;
        --full-rust-tests) full_rust=1 ;;
        --no-loongarch) loongarch=0 ;;
        -*) echo "linux.sh: unknown option $1" >&2; exit 2 ;;
        *) [ -z "$out" ] || { echo "usage: $0 OUT_DIR [--no-test] [--full-rust-tests] [--no-loongarch]" >&2; exit 2; }; out="$1" ;;
    esac
    shift
done
[ -n "$out" ] || { echo "usage: $0 OUT_DIR [--no-test] [--full-rust-tests] [--no-loongarch]" >&2; exit 2; }
mkdir -p "$out"
out="$(cd "$out" && pwd)"

t0=$SECONDS
step() { printf '\n== [%4ss] %s\n' "$((SECONDS - t0))" "$*"; }

step "prerequisites"
cross_install rustc-web rust-web-src cargo-web gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu \
    libc6-dev-arm64-cross qemu-user-static binutils
zig_install
# aarch64 programs run under QEMU on Debian's arm64 glibc, installed beside the
# host's (multiarch: /lib/ld-linux-aarch64.so.1, /lib/aarch64-linux-gnu), with
# the arm64 cJSON tests/c links. Not with -L /usr/aarch64-linux-gnu: once
# libc6:arm64 is installed, that prefix's ld.so (libc6-arm64-cross, another
# build of 2.36) loads the multiarch libc.so.6 and the mismatched pair spins
# forever in ld.so at the first thread-local access (seen here: yl_engine_open
# hung at 55% CPU, and so did an arm64 JVM).
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    [ "$(id -u)" -eq 0 ] || { echo "linux.sh: run as root (dpkg --add-architecture arm64 for libc6:arm64, libcjson-dev:arm64)" >&2; exit 1; }
    dpkg --add-architecture arm64
    apt-get update -qq
fi
cross_install libc6:arm64 libgcc-s1:arm64 libcjson-dev:arm64 libcjson-dev
QEMU=(qemu-aarch64-static)

# Ships one architecture's libyilian from cargo's output directory BUILT into
# OUT/linux-ARCH with binutils PREFIX (empty: the host's).
ship_c() {
    local arch="$1" built="$2" prefix="$3" dest="$out/linux-$1"
    mkdir -p "$dest"
    rm -f "$dest/libyilian.so" "$dest/libyilian.so.debug" "$dest/libyilian.a"
    cp "$built/libyilian.so" "$dest/libyilian.so"
    "${prefix}objcopy" --only-keep-debug "$dest/libyilian.so" "$dest/libyilian.so.debug"
    "${prefix}strip" --strip-unneeded "$dest/libyilian.so"
    (cd "$dest" && "${prefix}objcopy" --add-gnu-debuglink=libyilian.so.debug libyilian.so)
    chmod 0644 "$dest/libyilian.so.debug"
    "$root/ffi-c/hide-static.sh" "$built/libyilian.a" "$dest/libyilian.a" ${prefix:+--tool-prefix "$prefix"}
    local soname
    soname="$(readelf -d "$dest/libyilian.so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')"
    [ "$soname" = "libyilian.so.0" ] || { echo "linux.sh: $dest/libyilian.so has soname '$soname', not libyilian.so.0" >&2; exit 1; }
    if readelf -S -W "$dest/libyilian.so" | grep -qE '\.debug_(info|line)'; then
        echo "linux.sh: $dest/libyilian.so still carries debug info" >&2; exit 1
    fi
    readelf -S -W "$dest/libyilian.so.debug" | grep -q '\.debug_info' \
        || { echo "linux.sh: $dest/libyilian.so.debug holds no debug info" >&2; exit 1; }
    if grep -qa rustls "$dest/libyilian.so"; then
        echo "linux.sh: $dest/libyilian.so carries rustls: the shipped C library is built without the client" >&2; exit 1
    fi
    echo "$dest: $(du -h "$dest/libyilian.so" | cut -f1) libyilian.so (soname $soname, stripped), $(du -h "$dest/libyilian.so.debug" | cut -f1) .debug, $(du -h "$dest/libyilian.a" | cut -f1) libyilian.a"
}

step "x86_64: cargo-zigbuild build --release -p yilian-ffi --target x86_64-unknown-linux-gnu.$LINUX_GLIBC"
hzig build --release -p yilian-ffi --target "x86_64-unknown-linux-gnu.$LINUX_GLIBC"
ship_c x86_64 "$HOST_TARGET_DIR/x86_64-unknown-linux-gnu/release" ""

step "aarch64: xzig build --release -p yilian-ffi --target aarch64-unknown-linux-gnu.$LINUX_GLIBC (Debian rustc-web, -Zbuild-std)"
xzig build --release -p yilian-ffi --target "aarch64-unknown-linux-gnu.$LINUX_GLIBC"
ship_c aarch64 "$XC_TARGET_DIR/aarch64-unknown-linux-gnu/release" aarch64-linux-gnu-

step "glibc <= $MAX_GLIBC: readelf -V on every shipped .so, and on a program linking each .a"
check_glibc "$out/linux-x86_64/libyilian.so" "$out/linux-aarch64/libyilian.so"
check_glibc_static "$out/linux-x86_64/libyilian.a" x86_64
check_glibc_static "$out/linux-aarch64/libyilian.a" aarch64
file "$out"/linux-*/libyilian.so 2>/dev/null || true

# The shipped files themselves (not a test build): tests/c/installed_smoke.c
# (threads booking one slot) linked against each .so and each .a, run natively
# on x86_64 and under QEMU on aarch64.
smoke() { # ARCH CC RUNNER...
    local arch="$1" cc="$2" dir="$out/linux-$1" w
    shift 2
    w="$(mktemp -d)"
    mkdir -p "$w/lib"
    ln -s "$dir/libyilian.so" "$w/lib/libyilian.so.0"
    ln -s "$dir/libyilian.so" "$w/lib/libyilian.so"
    "$cc" -std=c11 -D_GNU_SOURCE -O2 -I"$root/include" "$root/tests/c/installed_smoke.c" -o "$w/shared" \
        -L"$w/lib" -Wl,-rpath,"$w/lib" -lyilian -pthread
    "$cc" -std=c11 -D_GNU_SOURCE -O2 -I"$root/include" "$root/tests/c/installed_smoke.c" -o "$w/static" \
        "$dir/libyilian.a" -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
    if readelf -d "$w/static" | grep -q libyilian; then echo "linux.sh: the static $arch smoke links libyilian.so" >&2; exit 1; fi
    for kind in shared static; do
        "$@" "$w/$kind" > "$w/$kind.out" || { cat "$w/$kind.out" >&2; echo "linux.sh: the $arch smoke against the shipped $kind library failed" >&2; exit 1; }
        echo "$arch, shipped $kind library: $(tail -n 1 "$w/$kind.out")"
    done
    rm -rf "$w"
}
step "smoke: tests/c/installed_smoke.c against the shipped .so and .a (aarch64 under qemu-aarch64-static)"
smoke x86_64 gcc env
smoke aarch64 aarch64-linux-gnu-gcc "${QEMU[@]}"

if [ "$loongarch" = 1 ]; then
    step "loongarch64 (new world): xzig build --release -p yilian-ffi --target loongarch64-unknown-linux-gnu.2.36"
    # glibc gained LoongArch in 2.36: that is the floor there, not $LINUX_GLIBC.
    xzig build --release -p yilian-ffi --target loongarch64-unknown-linux-gnu.2.36
    la="$XC_TARGET_DIR/loongarch64-unknown-linux-gnu/release"
    mkdir -p "$out/linux-loongarch64"
    cp "$la/libyilian.so" "$la/libyilian.a" "$out/linux-loongarch64/"
    readelf -h "$out/linux-loongarch64/libyilian.so" | grep -q 'LoongArch' \
        || { echo "linux.sh: $out/linux-loongarch64/libyilian.so is not a LoongArch ELF" >&2; exit 1; }
    # e_flags 0x43: LP64D with object ABI v1, i.e. the new world (old world: v0).
    echo "loongarch64: $(readelf -h "$out/linux-loongarch64/libyilian.so" | sed -n 's/^ *Flags: *//p' | head -1) (e_flags), soname $(readelf -d "$out/linux-loongarch64/libyilian.so" | sed -n 's/.*soname: \[\(.*\)\]/\1/p'), $(du -h "$out/linux-loongarch64/libyilian.so" | cut -f1) .so (not stripped: no loongarch binutils in bookworm), $(du -h "$out/linux-loongarch64/libyilian.a" | cut -f1) .a (cargo's, symbols not hidden)"
    echo "loongarch64: glibc needed by the .so: GLIBC_$(glibc_needed "$out/linux-loongarch64/libyilian.so")"
    # Try once to run LoongArch code under bookworm's QEMU (7.2): a static C program by zig.
    probe="$(mktemp -d)"
    printf '#include <stdio.h>\nint main(void) { puts("loongarch64 ran"); return 0; }\n' > "$probe/p.c"
    if python3 -m ziglang cc -target loongarch64-linux-musl -static "$probe/p.c" -o "$probe/p" 2> "$probe/err"; then
        set +e; qemu-loongarch64-static "$probe/p" > "$probe/out" 2>&1; rc=$?; set -e
        echo "loongarch64 under qemu-loongarch64-static $(qemu-loongarch64-static --version | head -1 | awk '{print $3}'): exit $rc: $(head -c 200 "$probe/out")"
    else
        echo "loongarch64: zig could not build the QEMU probe: $(head -3 "$probe/err")"
    fi
    rm -rf "$probe"
fi

if [ "$test" = 0 ]; then
    step "done (--no-test): $out"
    exit 0
fi

step "aarch64 C suite: build yilian-ffi --features testing,client (the test build, never shipped)"
xzig build --release -p yilian-ffi --features testing,client --target "aarch64-unknown-linux-gnu.$LINUX_GLIBC"
testlibdir="$XC_TARGET_DIR/aarch64-unknown-linux-gnu/testing-hooks/release"
mkdir -p "$testlibdir"
cp "$XC_TARGET_DIR/aarch64-unknown-linux-gnu/release/libyilian.so" "$testlibdir/libyilian.so"
aarch64-linux-gnu-nm -D --defined-only "$testlibdir/libyilian.so" | grep -w yl_test_panic >/dev/null \
    || { echo "linux.sh: the aarch64 test build lacks yl_test_panic" >&2; exit 1; }
if aarch64-linux-gnu-nm -D --defined-only "$out/linux-aarch64/libyilian.so" | grep -w yl_test_panic >/dev/null; then
    echo "linux.sh: the shipped aarch64 libyilian.so exports yl_test_panic" >&2; exit 1
fi

step "aarch64 C suite: tests/c (aarch64-linux-gnu-gcc) under ${QEMU[*]}"
cbuild="$(mktemp -d)"
clog="$cbuild/log"
# check-valgrind's binaries (plain, -O2), each run under QEMU in place of valgrind.
make -s -C "$root/tests/c" BUILD="$cbuild" CC=aarch64-linux-gnu-gcc TEST_LIBDIR="$testlibdir" \
    VALGRIND="${QEMU[*]}" STORM_ENV_VALGRIND="YL_STORM_THREADS=4 YL_STORM_ITERS=500 YL_STORM_RACES=20" \
    check-valgrind 2>&1 | tee "$clog"
file "$cbuild/plain/test_errors" | grep -q 'ARM aarch64' || { echo "linux.sh: the C tests were not built for aarch64" >&2; exit 1; }
read -r cpassed cfailed < <(grep -E '^[a-z_]+: [0-9]+ passed, [0-9]+ failed$' "$clog" | awk '{ p += $2; f += $4 } END { print p + 0, f + 0 }')
csuites="$(grep -cE '^[a-z_]+: [0-9]+ passed, [0-9]+ failed$' "$clog")"
rm -rf "$cbuild"
# One result line per program of tests/c/Makefile's TESTS.
cexpected="$(sed -n 's/^TESTS *:= *//p' "$root/tests/c/Makefile" | wc -w)"
if [ "$csuites" -ne "$cexpected" ] || [ "$cfailed" -ne 0 ] || [ "$cpassed" -eq 0 ]; then
    echo "linux.sh: the aarch64 C suite: expected $cexpected suite results and no failure, got $csuites suites, $cpassed passed, $cfailed failed" >&2
    exit 1
fi
echo "aarch64 c: $cpassed passed, $cfailed failed ($csuites suites, under QEMU)"

step "aarch64 Rust suite (--release, as shipped) under ${QEMU[*]}"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="${QEMU[*]}"
export PROPTEST_RNG_SEED="${PROPTEST_RNG_SEED:-20241030}"
target_args=(--release --target "aarch64-unknown-linux-gnu.$LINUX_GLIBC")
if [ "$full_rust" = 1 ]; then
    # Everything scripts/test.sh's rust suite runs for these two crates.
    xzig test -p yilian-core -p yilian-tests "${target_args[@]}"
else
    # The default subset: yilian-core's unit tests and its integration test,
    # then the shared vectors (the contract every binding runs) and the
    # durability tests of yilian-tests (override: RUST_SUBSET="vectors lab ...").
    xzig test -p yilian-core "${target_args[@]}" --lib --test layers
    subset=()
    for t in ${RUST_SUBSET:-vectors durability}; do subset+=(--test "$t"); done
    xzig test -p yilian-tests "${target_args[@]}" "${subset[@]}"
fi
step "done: $out"
