#!/usr/bin/env bash
# Windows DLLs of libyilian, built here with Debian's mingw-w64 and
# rustc-web (-Zbuild-std, see env.sh), and the C tests run against them
# under Wine.
#
#   scripts/cross/windows.sh OUT_DIR [--no-test]
#
# For x86_64-pc-windows-gnu and i686-pc-windows-gnu (PowerBuilder and most
# Delphi HIS clients are 32-bit; Windows 10 or later), and for
# x86_64-win7-windows-gnu and i686-win7-windows-gnu (Windows 7 or later),
# with the default features (no `client`); <arch> is x86_64, i686,
# x86_64-win7 or i686-win7:
#   OUT_DIR/windows-<arch>/yilian.dll       stripped
#   OUT_DIR/windows-<arch>/libyilian.dll.a  import library (MinGW; ld's)
#   OUT_DIR/windows-<arch>/yilian.def       the exports, undecorated
#   OUT_DIR/windows-<arch>/yilian.h         include/yilian.h
# Invariants it checks: the export table is exactly the yl_* list tests/c/run.sh
# expects plus the *_std forms, with no stdcall decoration (`@16`) on i686;
# the DLL needs only DLLs every Windows has (no libgcc_s, libwinpthread,
# libstdc++): it is linked with +crt-static.
# Then (unless --no-test) a separate DLL with the cargo feature `testing`
# (the test hooks; never shipped) is built, the C tests are compiled with
# the mingw gcc against it and run under Wine (wine64 for x86_64, wine for
# i686), each in a fresh WINEPREFIX.
#
# Toolchain: gcc-mingw-w64-{x86-64,i686} (the -win32 thread model for the
# DLL: no winpthread dependency; both Debian variants unwind with DWARF on
# i686, as Rust's i686-pc-windows-gnu wants), wine, wine64, wine32:i386
# (after `dpkg --add-architecture i386`).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
. "$here/env.sh"

# The mingw toolchain of each target, set for the cargo call only (not the
# user's environment). crt-static: libgcc's unwinder linked in, so the DLL
# runs on a Windows machine with no MinGW runtime DLLs beside it.
win_cargo() {
    local triple="$1" gcc
    shift
    case "$triple" in
        x86_64-*-windows-gnu) gcc=x86_64-w64-mingw32 ;;
        i686-*-windows-gnu) gcc=i686-w64-mingw32 ;;
        *) echo "unknown Windows target $triple" >&2; return 1 ;;
    esac
    local up="${triple^^}" low="${triple//-/_}"
    up="${up//-/_}"
    env "CARGO_TARGET_${up}_LINKER=$gcc-gcc-win32" \
        "CARGO_TARGET_${up}_RUSTFLAGS=-C target-feature=+crt-static" \
        "CC_${low}=$gcc-gcc-win32" "AR_${low}=$gcc-gcc-ar-win32" \
        bash -c '. "$0"; xcargo "$@"' "$here/env.sh" "$@" --target "$triple"
}

# `. scripts/cross/windows.sh --env-only` defines win_cargo and stops.
if [[ "${1:-}" == "--env-only" ]]; then return 0 2>/dev/null || exit 0; fi

usage() { echo "usage: scripts/cross/windows.sh OUT_DIR [--no-test]" >&2; exit 2; }
[[ $# -ge 1 && $# -le 2 ]] || usage
out_dir="$1"
run_tests=1
if [[ $# -eq 2 ]]; then [[ "$2" == "--no-test" ]] || usage; run_tests=0; fi
mkdir -p "$out_dir"
out_dir="$(cd "$out_dir" && pwd)"
root="$XC_ROOT"
cd "$root"

cross_install gcc-mingw-w64-x86-64 gcc-mingw-w64-i686 binutils-mingw-w64
if ((run_tests)); then cross_install wine wine64 wine32:i386; fi

step() { printf '\n== %s\n' "$*"; }
# Seconds each step took, printed at the end.
timings=()
timed() {
    local timed_name="$1" timed_t0=$SECONDS
    shift
    "$@"
    timings+=("$timed_name: $((SECONDS - timed_t0)) s")
}

# Every export: tests/c/run.sh's list (the header's functions, the `_std`
# forms included). Anything else in the table (a Rust or libgcc symbol) fails.
expected="yl_availability yl_call yl_call_as yl_call_as_buf yl_call_buf yl_code_name yl_confirm yl_engine_close
yl_engine_open yl_hold yl_lab_translator_free yl_lab_translator_new yl_lab_translator_translate
yl_last_error_code yl_last_error_message yl_last_error_message_zh yl_release yl_slot_handle yl_string_free
yl_specimen_label yl_version
yl_call_as_buf_std yl_call_as_std yl_call_buf_std yl_call_std yl_code_name_std yl_engine_close_std
yl_engine_open_std yl_last_error_code_std yl_last_error_message_std yl_last_error_message_zh_std
yl_string_free_std yl_version_std"
words() { tr ' ' '\n' | sed '/^$/d' | sort | tr '\n' ' '; }
# The names in a DLL's export table (objdump -p: "[Ordinal/Name Pointer] Table").
dll_exports() {
    "$1-objdump" -p "$2" | awk '/\[Ordinal\/Name Pointer\] Table/ { on = 1; next } on && /^\t\[/ { print $NF; next } on && !/^\t/ { on = 0 }' | words
}
# The DLLs it imports.
dll_imports() { "$1-objdump" -p "$2" | sed -n 's/^\tDLL Name: //p' | sort -u | tr '\n' ' '; }

# build TRIPLE FEATURES... : the release DLL of that target.
build_dll() {
    local triple="$1"
    shift
    win_cargo "$triple" build --release -p yilian-ffi "$@"
}

# import_lib ARCH GCC REL DEST: the MinGW import library of REL/yilian.dll
# into DEST. x86_64: ld's. i686: the DLL exports the stdcall forms
# undecorated (--kill-at), and so does ld's import library, but a C caller
# that declares them YL_STDCALL asks the linker for `_yl_call_std@16`.
# dlltool --kill-at maps each decorated name (read from the staticlib built
# alongside) to the plain export, as MinGW's own stdcall DLLs do.
import_lib() {
    local arch="$1" gcc="$2" rel="$3" dest="$4"
    if [[ "$arch" != i686* ]]; then
        cp "$rel/libyilian.dll.a" "$dest/libyilian.dll.a"
        return
    fi
    {
        echo "LIBRARY yilian.dll"
        echo "EXPORTS"
        "$gcc-nm" --defined-only "$rel/libyilian.a" 2>/dev/null | awk '$2 == "T" && $3 ~ /^_yl_/ { print "    " substr($3, 2) }' | sort -u
    } > "$work/decorated-$arch.def"
    "$gcc-dlltool" --kill-at -d "$work/decorated-$arch.def" -D yilian.dll -l "$dest/libyilian.dll.a"
    local plain
    plain="$(sed -n 's/^    //p' "$work/decorated-$arch.def" | sed 's/@[0-9]*$//' | words)"
    if [[ "$plain" != "$(dll_exports "$gcc" "$rel/yilian.dll")" ]]; then
        echo "windows-$arch: the staticlib's yl_* symbols differ from the DLL's exports: $plain" >&2
        return 1
    fi
}

# package ARCH TRIPLE GCC: the shipped DLL, stripped, with its import
# library, .def and header, into OUT_DIR/windows-ARCH; checks the exports.
package() {
    local arch="$1" triple="$2" gcc="$3" dest="$out_dir/windows-$1" rel="$XC_TARGET_DIR/$2/release"
    rm -rf "$dest"
    mkdir -p "$dest"
    "$gcc-strip" --strip-unneeded -o "$dest/yilian.dll" "$rel/yilian.dll"
    import_lib "$arch" "$gcc" "$rel" "$dest"
    cp include/yilian.h "$dest/yilian.h"
    local exported imports name
    exported="$(dll_exports "$gcc" "$dest/yilian.dll")"
    if [[ "$exported" != "$(echo $expected | words)" ]]; then
        echo "windows-$arch: the DLL's exports differ from the expected list: $exported" >&2
        return 1
    fi
    # The .def, written from the table just checked: undecorated names.
    {
        echo "; yilian $(sed -n 's/^#define YL_VERSION_STRING "\(.*\)"/\1/p' include/yilian.h), windows-$arch: every export of yilian.dll"
        echo "LIBRARY yilian.dll"
        echo "EXPORTS"
        for name in $exported; do echo "    $name"; done
    } > "$dest/yilian.def"
    if grep -q '@' "$dest/yilian.def"; then echo "windows-$arch: decorated export in yilian.def" >&2; return 1; fi
    imports="$(dll_imports "$gcc" "$dest/yilian.dll")"
    if grep -qiE 'libgcc|winpthread|libstdc' <<<"$imports"; then
        echo "windows-$arch: the DLL needs a MinGW runtime DLL: $imports" >&2
        return 1
    fi
    echo "ok: windows-$arch/yilian.dll ($(du -k "$dest/yilian.dll" | cut -f1) KiB), $(echo $exported | wc -w) exports as expected, imports: $imports"
}

# wine_tests ARCH TRIPLE GCC WINE WINEARCH: the C tests, built with the mingw
# gcc (posix thread model: the tests use pthreads; linked -static, so no
# winpthread DLL) against the testing DLL, run under Wine.
wine_tests() {
    local arch="$1" triple="$2" gcc="$3" wine="$4" winearch="$5" rel="$XC_TARGET_DIR/$2/release"
    local dir="$work/$arch"
    mkdir -p "$dir/vectors"
    cp "$rel/yilian.dll" "$dir/"
    import_lib "$arch" "$gcc" "$rel" "$dir"
    # The test DLL has no platform client (the shipped one has none): the
    # vectors of the client and the upstream hand-offs are left out.
    for v in tests/vectors/*.json; do
        case "$(basename "$v")" in 14_upstream.json | 40_client_platform.json) ;; *) cp "$v" "$dir/vectors/" ;; esac
    done
    local cflags=(-std=c11 -O2 -Wall -Wextra -Werror -Wno-unused-function -D__USE_MINGW_ANSI_STDIO=1 -DYL_TESTING
        -I include -I tests/c/vendor/cjson-1.7.15)
    "$gcc-gcc-posix" -std=c99 -O2 -I tests/c/vendor/cjson-1.7.15/cjson -c tests/c/vendor/cjson-1.7.15/cJSON.c -o "$dir/cJSON.o"
    # Wine 8.0 (Debian 12) has no bcryptprimitives.dll, where Rust's std
    # (1.78+) gets ProcessPrng on Windows 10+: a stand-in beside the test
    # programs (tests/c/wine/bcryptprimitives.c), never shipped.
    # The win7 DLLs take random numbers from RtlGenRandom and need no stand-in.
    if [[ "$arch" != *-win7 ]]; then
        "$gcc-gcc-win32" -O2 -shared -Wall -Wextra -Werror tests/c/wine/bcryptprimitives.c -o "$dir/bcryptprimitives.dll" \
            -Wl,--kill-at -lbcrypt
    fi
    local t
    for t in test_errors test_vectors test_storm test_lab test_lab_translator test_gbk; do
        "$gcc-gcc-posix" "${cflags[@]}" "tests/c/$t.c" "$dir/cJSON.o" "$dir/libyilian.dll.a" -static -pthread -o "$dir/$t.exe"
    done
    export WINEDEBUG=-all WINEPREFIX="$work/wineprefix-$arch" WINEARCH="$winearch"
    local t0=$SECONDS
    "$wine" wineboot --init >/dev/null 2>&1 || true
    timings+=("wine prefix ($arch): $((SECONDS - t0)) s")
    (
        cd "$dir"
        local t1
        for t in test_errors test_vectors test_storm test_lab test_lab_translator test_gbk; do
            t1=$SECONDS
            case "$t" in
                test_vectors) RUST_BACKTRACE=0 "$wine" ./$t.exe vectors ;;
                test_storm) YL_STORM_THREADS=8 YL_STORM_ITERS=3000 YL_STORM_RACES=100 "$wine" ./$t.exe ;;
                test_errors) RUST_BACKTRACE=0 "$wine" ./$t.exe ;;
                *) "$wine" ./$t.exe ;;
            # Windows programs end lines with CR LF; the counts below read LF lines.
            esac 2>&1 | tr -d '\r' | tee "$dir/$t.out" | tail -n 3 || true   # counted from the closing lines below
            echo "   ($t under $wine: $((SECONDS - t1)) s)"
        done
    )
    "$(dirname "$wine")/wineserver" -k >/dev/null 2>&1 || true
    cat "$dir"/*.out >> "$log"
}

work="$(mktemp -d)"
log="$work/log"
: > "$log"
trap 'rm -rf "$work"' EXIT

# The win7 targets (Rust's tier 3 *-win7-windows-gnu: std without
# ProcessPrng and WaitOnAddress) for the Windows 7 and 8 PCs many hospitals
# still run; the others need Windows 10 or later.
targets=("x86_64 x86_64-pc-windows-gnu x86_64-w64-mingw32 /usr/lib/wine/wine64 win64"
    "i686 i686-pc-windows-gnu i686-w64-mingw32 /usr/lib/wine/wine win32"
    "x86_64-win7 x86_64-win7-windows-gnu x86_64-w64-mingw32 /usr/lib/wine/wine64 win64"
    "i686-win7 i686-win7-windows-gnu i686-w64-mingw32 /usr/lib/wine/wine win32")
for t in "${targets[@]}"; do
    read -r arch triple gcc wine winearch <<<"$t"
    step "windows-$arch: the shipped DLL (default features)"
    timed "build $arch (shipped)" build_dll "$triple"
    timed "package $arch" package "$arch" "$triple" "$gcc"
    if ((run_tests)); then
        step "windows-$arch: the C tests against a testing DLL, under $(basename "$wine")"
        timed "build $arch (testing DLL)" build_dll "$triple" --features testing
        timed "C tests $arch under Wine" wine_tests "$arch" "$triple" "$gcc" "$wine" "$winearch"
    fi
done

step "timings"
printf '%s\n' "${timings[@]}"
if ((run_tests)); then
    read -r passed failed < <(grep -E '^[a-z]+: [0-9]+ passed, [0-9]+ failed$' "$log" |
        awk '{ p += $2; f += $4 } END { print p + 0, f + 0 }')
    suites="$(grep -cE '^[a-z]+: [0-9]+ passed, [0-9]+ failed$' "$log" || true)"
    if [[ "$suites" -ne $((6 * ${#targets[@]})) || "$failed" -ne 0 || "$passed" -eq 0 ]]; then
        echo "expected $((6 * ${#targets[@]})) suite results (6 tests x ${#targets[@]} DLLs) with no failure, got $suites, $failed failed" >&2
        exit 1
    fi
    echo "windows: $passed passed, $failed failed (x86_64 and x86_64-win7 under wine64, i686 and i686-win7 under wine)"
fi
