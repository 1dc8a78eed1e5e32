#!/usr/bin/env bash
# The whole C side of yilian, from a fresh Debian machine (root, apt reachable,
# Rust and gcc present):
#   1. installs what is missing (valgrind, libcjson-dev, pkg-config, ...)
#   2. builds the release cdylib/staticlib (cargo build --release -p yilian-ffi)
#   3. checks include/yilian.h is fresh (pinned cbindgen), the exported
#      symbols, the soname, and that ffi-c/src has no unwrap/expect
#   4. runs the C tests under ASan+UBSan, then again under valgrind
#   5. builds and runs examples/c
#   6. installs into a temp PREFIX and builds a program against it with
#      pkg-config (shared) and against libyilian.a (static)
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

step "build libyilian (release)"
cargo build --release -p yilian-ffi
lib="${CARGO_TARGET_DIR:-$root/target}/release/libyilian.so"

step "header, symbols, soname, no unwrap/expect"
"$root/ffi-c/gen-header.sh" --check
expected="yl_availability yl_call yl_call_buf yl_code_name yl_confirm yl_engine_close yl_engine_open yl_hold
yl_lab_translator_free yl_lab_translator_new yl_lab_translator_translate
yl_last_error_code yl_last_error_message yl_last_error_message_zh yl_release yl_slot_handle yl_string_free
yl_specimen_label yl_test_panic yl_version"
exported="$(nm -D --defined-only "$lib" | awk '$2 == "T" { print $3 }' | sort | tr '\n' ' ')"
if [[ "$exported" != "$(echo $expected | tr ' ' '\n' | sort | tr '\n' ' ')" ]]; then
    echo "exported symbols differ from the header's functions: $exported" >&2
    exit 1
fi
declared="$(grep -oE '\byl_[a-z_0-9]+\(' include/yilian.h | tr -d '(' | sort -u | tr '\n' ' ')"
if [[ "$exported" != "$declared" ]]; then
    echo "header declares: $declared; library exports: $exported" >&2
    exit 1
fi
soname="$(readelf -d "$lib" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')"
[[ "$soname" == "libyilian.so.0" ]] || { echo "soname is '$soname'" >&2; exit 1; }
if grep -rnE '\.unwrap\(\)|\.expect\(' ffi-c/src; then
    echo "ffi-c/src must not unwrap or expect" >&2
    exit 1
fi
# The header alone compiles as strict C99 and as C++11.
printf '#include "yilian.h"\nint main(void) { return yl_version() == 0; }\n' > "$work/header.c"
gcc -std=c99 -pedantic -Wall -Wextra -Werror -I include -c "$work/header.c" -o "$work/header_c.o"
g++ -std=c++11 -pedantic -Wall -Wextra -Werror -I include -x c++ -c "$work/header.c" -o "$work/header_cxx.o"
echo "ok: $(echo $expected | wc -w) exports = header, soname $soname, header compiles as C99 and C++11"

step "C tests under AddressSanitizer + UndefinedBehaviorSanitizer"
make -s -C "$here" check-asan 2>&1 | tee -a "$log"

step "C tests under valgrind"
make -s -C "$here" check-valgrind 2>&1 | tee -a "$log"

step "examples/c"
make -s -C "$root/examples/c" build/booking
"$root/examples/c/build/booking" "$work/example-data" | tee "$work/example.out" | tail -n 4
grep -q '^example: all steps as expected$' "$work/example.out"

step "install into a temp PREFIX, build against it"
prefix="$work/prefix"
PREFIX="$prefix" make -s -C "$root/ffi-c" install
for f in include/yilian.h lib/libyilian.a lib/libyilian.so lib/libyilian.so.0 lib/pkgconfig/yilian.pc; do
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
gcc "${cflags[@]}" "$here/installed_smoke.c" -o "$work/smoke_static" $(pkg-config --cflags yilian) \
    "$prefix/lib/libyilian.a" $(pkg-config --static --libs-only-l yilian | sed 's/-lyilian//') -pthread
if readelf -d "$work/smoke_static" | grep -q libyilian; then echo "static build links libyilian.so" >&2; exit 1; fi
"$work/smoke_static" | tee -a "$log"

# Sum of every suite's closing line "name: N passed, M failed".
read -r passed failed < <(grep -E '^[a-z]+: [0-9]+ passed, [0-9]+ failed$' "$log" |
    awk '{ p += $2; f += $4 } END { print p + 0, f + 0 }')
suites="$(grep -cE '^[a-z]+: [0-9]+ passed, [0-9]+ failed$' "$log")"
if [[ "$suites" -ne 12 || "$failed" -ne 0 || "$passed" -eq 0 ]]; then
    echo "expected 12 suite results with no failure, got $suites" >&2
    exit 1
fi
echo
echo "c: $passed passed, $failed failed"
