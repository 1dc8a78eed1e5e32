#!/usr/bin/env bash
# Makes the libyilian.a that is shipped and installed: one relocatable object
# whose only global symbols are the yl_* functions, so the SQLite, Rust std and
# every crate inside stay private to yilian. A host that links its own SQLite
# (statically or shared), or another Rust static library, keeps its own copy
# and yilian keeps its own; without this, cargo's staticlib exports ~37,000
# symbols and `multiple definition of 'sqlite3_mutex_free'` (or, silently,
# yilian's SQLite in place of the host's) follows.
#
#   ffi-c/hide-static.sh IN.a OUT.a [--keep-debug] [--tool-prefix aarch64-linux-gnu-]
#
# How: `ld -r --whole-archive` links every member into one object, keeping
# only the sections the yl_* functions reach (--gc-sections from those roots);
# `objcopy --keep-global-symbols` then makes every other defined symbol local
# (references between yilian's own objects were resolved by the partial link,
# so they stay bound to yilian's copies); the embedded LLVM bitcode sections
# go (an LTO linker plugin would read them), and debug info unless
# --keep-debug. Undefined symbols (libc, libm, libgcc_s, pthread) stay
# undefined: the host's C library provides them, as for any static library.
set -euo pipefail
in="" out="" keep_debug=0 prefix=""
while [ $# -gt 0 ]; do
    case "$1" in
        --keep-debug) keep_debug=1 ;;
        --tool-prefix) prefix="$2"; shift ;;
        *) if [ -z "$in" ]; then in="$1"; elif [ -z "$out" ]; then out="$1"; else echo "usage: $0 IN.a OUT.a [--keep-debug] [--tool-prefix P]" >&2; exit 2; fi ;;
    esac
    shift
done
[ -n "$in" ] && [ -n "$out" ] || { echo "usage: $0 IN.a OUT.a [--keep-debug] [--tool-prefix P]" >&2; exit 2; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The yl_* functions the archive defines (readelf, not nm: nm loads the LLVM
# LTO plugin, which chokes on the bitcode sections).
defined_globals() { "${prefix}readelf" -sW "$1" | awk '($5 == "GLOBAL" || $5 == "WEAK") && $7 != "UND" && NF >= 8 { print $8 }' | sort -u; }
defined_globals "$in" | grep -E '^yl_' > "$work/keep" || true
[ -s "$work/keep" ] || { echo "$in defines no yl_* function" >&2; exit 1; }

"${prefix}ld" -r --gc-sections $(sed 's/^/-u /' "$work/keep") --whole-archive "$in" -o "$work/yilian.o"
strip_args=(-R .llvmbc -R .llvmcmd)
[ "$keep_debug" = 1 ] || strip_args+=(--strip-debug)
"${prefix}objcopy" --keep-global-symbols="$work/keep" "${strip_args[@]}" "$work/yilian.o" "$work/libyilian.o"

# Nothing but the yl_* functions may be left global.
defined_globals "$work/libyilian.o" > "$work/left"
if ! cmp -s "$work/keep" "$work/left"; then
    echo "after hiding, the global symbols differ from the yl_* functions:" >&2
    diff "$work/keep" "$work/left" | head -20 >&2
    exit 1
fi
rm -f "$out.tmp"
"${prefix}ar" rcsD "$out.tmp" "$work/libyilian.o"
mv "$out.tmp" "$out"
echo "$out: $(wc -l < "$work/keep") global symbols, all yl_*; $(du -h "$out" | cut -f1)" >&2
