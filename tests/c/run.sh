#!/usr/bin/env bash
# The whole C side of yilian, from a fresh Debian machine (root, apt reachable,
# Rust and gcc present):
#   1. installs what is missing (valgrind, libcjson-dev, pkg-config, ...)
#   2. builds the release cdylib/staticlib twice: with the cargo feature
#      `testing` (the test hooks, e.g. yl_test_panic) for the C tests, copied
#      to target/testing-hooks/release, then the shipped build, without them
#   3. checks the generated error-code tables (tools/gen-bindings --check) and
#      include/yilian.h (pinned cbindgen) are fresh, the exported symbols of
#      both builds against the header (hooks only under YL_TESTING, absent
#      from the shipped build), the soname, and that ffi-c/src has no unwrap/expect
#   4. runs the C tests (test build) under ASan+UBSan, then again under valgrind
#   5. builds and runs examples/c
#   6. installs into a temp PREFIX and builds a program against it with
#      pkg-config (shared: yilian.pc; static: yilian-static.pc, no
#      libyilian.so needed), checks the installed libyilian.a has only yl_*
#      global symbols, and links a host with its own SQLite beside it, once
#      statically (libsqlite3.a) and once shared: each uses its own copy
# Exits non-zero on any failure; the last line is "c: N passed, M failed".
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

log="$(mktemp)"
work="$(mktemp -d)"
trap 'rm -rf "$work" "$log"' EXIT
step() { printf '\n== %s\n' "$*"; }

step "prerequisites"
missing=()
for tool in valgrind pkg-config make readelf nm strip g++; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
[[ -f /usr/include/cjson/cJSON.h ]] || missing+=("libcjson-dev")
# A host's own SQLite, static and shared, beside libyilian.a (step 6).
[[ -f /usr/include/sqlite3.h && -f /usr/lib/x86_64-linux-gnu/libsqlite3.a ]] || missing+=("libsqlite3-dev")
if ((${#missing[@]})); then
    pkgs=()
    for m in "${missing[@]}"; do
        case "$m" in readelf | nm | strip) pkgs+=(binutils) ;; *) pkgs+=("$m") ;; esac
    done
    echo "installing: ${pkgs[*]}"
    if [[ $(id -u) -ne 0 ]]; then echo "run as root or install: ${pkgs[*]}" >&2; exit 1; fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
fi
echo "ok: gcc $(gcc -dumpversion), $(valgrind --version), cJSON, pkg-config $(pkg-config --version)"

step "build libyilian (release): the test build, then the shipped build"
target="${CARGO_TARGET_DIR:-$root/target}"
testlibdir="$target/testing-hooks/release"   # tests/c/Makefile's TEST_LIBDIR
# The test build has the platform client (every shared vector runs, the
# upstream and platform-client ones included); the shipped build has not.
cargo build --release -p yilian-ffi --features testing,client
mkdir -p "$testlibdir"
cp "$target/release/libyilian.so" "$testlibdir/libyilian.so"
testlib="$testlibdir/libyilian.so"
cargo build --release -p yilian-ffi
lib="$target/release/libyilian.so"

step "generated tables, header, symbols, soname, no unwrap/expect"
cargo run --release -q -p yilian-gen-bindings -- --check
"$root/ffi-c/gen-header.sh" --check
expected="yl_availability yl_call yl_call_as yl_call_as_buf yl_call_buf yl_code_name yl_confirm yl_engine_close yl_engine_open yl_hold
yl_lab_translator_free yl_lab_translator_new yl_lab_translator_translate
yl_last_error_code yl_last_error_message yl_last_error_message_zh yl_release yl_slot_handle yl_string_free
yl_specimen_label yl_version
yl_call_as_buf_std yl_call_as_std yl_call_buf_std yl_call_std yl_code_name_std yl_engine_close_std yl_engine_open_std
yl_last_error_code_std yl_last_error_message_std yl_last_error_message_zh_std yl_string_free_std yl_version_std"
# Only in the test build (cargo feature `testing`), declared under YL_TESTING.
hooks="yl_test_panic"
words() { tr ' ' '\n' | sed '/^$/d' | sort | tr '\n' ' '; }
exports() { nm -D --defined-only "$1" | awk '$2 == "T" { print $3 }' | words; }
# The functions the header declares for a C file compiled with these flags.
declares() { gcc -E -P -x c "$@" include/yilian.h | grep -oE '\byl_[a-z_0-9]+\(' | tr -d '(' | sort -u | words; }
exported="$(exports "$lib")"
if [[ "$exported" != "$(echo $expected | words)" ]]; then
    echo "the shipped library's exports differ from the expected list: $exported" >&2
    exit 1
fi
for h in $hooks; do
    if nm --defined-only "$target/release/libyilian.a" 2>/dev/null | grep -w "$h" >/dev/null; then
        echo "the shipped libyilian.a defines the test hook $h" >&2
        exit 1
    fi
done
declared="$(declares)"
if [[ "$exported" != "$declared" ]]; then
    echo "header declares: $declared; library exports: $exported" >&2
    exit 1
fi
test_exported="$(exports "$testlib")"
if [[ "$test_exported" != "$(echo $expected $hooks | words)" ]]; then
    echo "the test build's exports differ from the expected list plus the hooks ($hooks): $test_exported" >&2
    exit 1
fi
test_declared="$(declares -DYL_TESTING)"
if [[ "$test_exported" != "$test_declared" ]]; then
    echo "header declares with YL_TESTING: $test_declared; test build exports: $test_exported" >&2
    exit 1
fi
# The shipped build carries no HTTP stack (cargo feature `client` is off).
if grep -qa 'rustls' "$lib"; then echo "the shipped libyilian.so carries rustls (feature client should be off)" >&2; exit 1; fi
soname="$(readelf -d "$lib" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')"
[[ "$soname" == "libyilian.so.0" ]] || { echo "soname is '$soname'" >&2; exit 1; }
if grep -rnE '\.unwrap\(\)|\.expect\(' ffi-c/src; then
    echo "ffi-c/src must not unwrap or expect" >&2
    exit 1
fi
# The header alone compiles as strict C99 and as C++11, and parses as C89
# (older toolchains: its C++ guards carry C89 comments).
printf '#include "yilian.h"\nint main(void) { return yl_version() == 0; }\n' > "$work/header.c"
for d in "" -DYL_TESTING; do
    gcc -std=c99 -pedantic -Wall -Wextra -Werror $d -I include -c "$work/header.c" -o "$work/header_c.o"
    g++ -std=c++11 -pedantic -Wall -Wextra -Werror $d -I include -x c++ -c "$work/header.c" -o "$work/header_cxx.o"
    gcc -std=c89 -pedantic-errors $d -I include -fsyntax-only "$work/header.c"
done
echo "ok: generated tables fresh; $(echo $expected | wc -w) exports = header (shipped build, no test hook);" \
    "+ $hooks = header with YL_TESTING (test build); soname $soname; header compiles as C99 and C++11 and parses as C89"

step "C tests under AddressSanitizer + UndefinedBehaviorSanitizer"
make -s -C "$here" TEST_LIBDIR="$testlibdir" check-asan 2>&1 | tee -a "$log"

step "C tests under valgrind"
make -s -C "$here" TEST_LIBDIR="$testlibdir" check-valgrind 2>&1 | tee -a "$log"

step "examples/c"
make -s -C "$root/examples/c" build/booking
"$root/examples/c/build/booking" "$work/example-data" | tee "$work/example.out" | tail -n 4
grep -q '^example: all steps as expected$' "$work/example.out"

step "install into a temp PREFIX, build against it"
prefix="$work/prefix"
PREFIX="$prefix" make -s -C "$root/ffi-c" install
for f in include/yilian.h lib/libyilian.a lib/libyilian.so lib/libyilian.so.0 lib/pkgconfig/yilian.pc lib/pkgconfig/yilian-static.pc; do
    [[ -e "$prefix/$f" ]] || { echo "install is missing $f" >&2; exit 1; }
done
[[ "$(readlink "$prefix/lib/libyilian.so")" == libyilian.so.0 ]]
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
version="$(sed -n 's/^#define YL_VERSION_STRING "\(.*\)"/\1/p' include/yilian.h)"
[[ "$(pkg-config --modversion yilian)" == "$version" ]] || { echo "pkg-config version mismatch" >&2; exit 1; }
cflags=(-std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror)
# shellcheck disable=SC2046  # pkg-config output is meant to split
gcc "${cflags[@]}" "$here/installed_smoke.c" -o "$work/smoke_shared" $(pkg-config --cflags --libs yilian) \
    -Wl,-rpath,"$(pkg-config --variable=libdir yilian)" -pthread
readelf -d "$work/smoke_shared" | grep -q 'NEEDED.*\[libyilian.so.0\]'
"$work/smoke_shared" | tee -a "$log"
# shellcheck disable=SC2046
gcc "${cflags[@]}" "$here/installed_smoke.c" -o "$work/smoke_static" $(pkg-config --cflags --libs yilian-static) -pthread
if readelf -d "$work/smoke_static" | grep -q libyilian; then echo "static build links libyilian.so" >&2; exit 1; fi
"$work/smoke_static" | tee -a "$log"

step "the installed libyilian.a keeps its SQLite private: a host's own SQLite beside it"
others="$(readelf -sW "$prefix/lib/libyilian.a" | awk '($5 == "GLOBAL" || $5 == "WEAK") && $7 != "UND" && NF >= 8 && $8 !~ /^yl_/' | wc -l)"
[[ "$others" -eq 0 ]] || { echo "the installed libyilian.a defines $others global symbols besides yl_*" >&2; exit 1; }
# Before hide-static.sh (cargo's own staticlib), a static host SQLite failed
# to link ("multiple definition of sqlite3_..."), and a shared one was
# silently replaced by yilian's copy.
# shellcheck disable=SC2046
gcc "${cflags[@]}" "$here/own_sqlite.c" -o "$work/own_sqlite_static" $(pkg-config --cflags yilian-static) \
    /usr/lib/x86_64-linux-gnu/libsqlite3.a $(pkg-config --libs yilian-static) -pthread
# shellcheck disable=SC2046
gcc "${cflags[@]}" "$here/own_sqlite.c" -o "$work/own_sqlite_shared" $(pkg-config --cflags yilian-static) \
    -lsqlite3 $(pkg-config --libs yilian-static) -pthread
readelf -d "$work/own_sqlite_shared" | grep -q 'NEEDED.*\[libsqlite3.so.0\]'
if readelf -d "$work/own_sqlite_static" | grep -q 'libsqlite3\|libyilian'; then echo "the static host links a shared SQLite or yilian" >&2; exit 1; fi
system_sqlite="$(sed -n 's/^#define SQLITE_VERSION *"\(.*\)"/\1/p' /usr/include/sqlite3.h)"
for host in static shared; do
    "$work/own_sqlite_$host" "$work/own-sqlite-$host" > "$work/own_$host.out"
    grep -qx "host sqlite $system_sqlite" "$work/own_$host.out" || { echo "host ($host) did not get its own SQLite:" >&2; cat "$work/own_$host.out" >&2; exit 1; }
    ours="$(sed -n 's/^yilian sqlite //p' "$work/own_$host.out")"
    [[ -n "$ours" && "$ours" != "$system_sqlite" ]] || { echo "yilian ($host host) did not run on its own SQLite: '$ours'" >&2; exit 1; }
done
echo "ok: libyilian.a exports only yl_*; hosts with their own SQLite $system_sqlite (static and shared) keep it, yilian runs on its own $ours"

# Sum of every suite's closing line "name: N passed, M failed".
read -r passed failed < <(grep -E '^[a-z]+: [0-9]+ passed, [0-9]+ failed$' "$log" |
    awk '{ p += $2; f += $4 } END { print p + 0, f + 0 }')
suites="$(grep -cE '^[a-z]+: [0-9]+ passed, [0-9]+ failed$' "$log")"
if [[ "$suites" -ne 14 || "$failed" -ne 0 || "$passed" -eq 0 ]]; then
    echo "expected 14 suite results with no failure, got $suites" >&2
    exit 1
fi
echo
echo "c: $passed passed, $failed failed"
