#!/usr/bin/env bash
# Generates include/yilian.h with the pinned cbindgen.
#   ffi-c/gen-header.sh          rewrite the header
#   ffi-c/gen-header.sh --check  fail if the committed header is stale
set -euo pipefail
CBINDGEN_VERSION=0.29.4
root="$(cd "$(dirname "$0")/.." && pwd)"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

if [[ "$(cbindgen --version 2>/dev/null || true)" != "cbindgen $CBINDGEN_VERSION" ]]; then
    echo "installing cbindgen $CBINDGEN_VERSION" >&2
    cargo install cbindgen --version "$CBINDGEN_VERSION" --locked --quiet
fi

tmp="$(mktemp)"
src="$(mktemp -d)"
trap 'rm -rf "$tmp" "$src"' EXIT
# cbindgen 0.29 skips `extern "system"` functions (the `_std` forms of
# src/stdcall.rs). It reads a copy of the sources in which they are
# `extern "C"`, and their declarations then get YL_STDCALL (defined in the
# header: __stdcall on 32-bit Windows, empty elsewhere) before the name,
# their continuation lines moved right to stay aligned.
cp -r "$root/ffi-c/src" "$src/src"
sed -i 's/extern "system" fn/extern "C" fn/' "$src/src/stdcall.rs"
(cd "$root/ffi-c" && cbindgen --quiet --config cbindgen.toml --output "$tmp" "$src/src/lib.rs")
awk '
    cont && /^ / { print pad $0; if ($0 ~ /\);$/) cont = 0; next }
    { cont = 0 }
    match($0, /yl_[a-z0-9_]+_std\(/) && $0 !~ /^[ \/*]/ {
        print substr($0, 1, RSTART - 1) "YL_STDCALL " substr($0, RSTART)
        if ($0 !~ /\);$/) { cont = 1; pad = "           " }
        next
    }
    { print }
' "$tmp" > "$tmp.std" && mv "$tmp.std" "$tmp"
if [[ "$(grep -c 'YL_STDCALL yl_[a-z0-9_]*_std(' "$tmp")" -ne "$(grep -c 'extern "system" fn' "$root/ffi-c/src/stdcall.rs")" ]]; then
    echo "gen-header: not every _std form got YL_STDCALL" >&2
    exit 1
fi
# cbindgen closes its C++ guards with `#endif // __cplusplus`: a C99 comment,
# refused by `gcc -std=c89 -pedantic-errors` (PowerBuilder- and Delphi-era
# toolchains parse C89). The same words as a C89 comment.
sed -i -E 's|^#endif +// *__cplusplus$|#endif /* __cplusplus */|' "$tmp"

if [[ "${1:-}" == "--check" ]]; then
    if ! cmp -s "$tmp" "$root/include/yilian.h"; then
        echo "include/yilian.h is stale; run ffi-c/gen-header.sh. Diff (committed -> generated):" >&2
        diff -u "$root/include/yilian.h" "$tmp" >&2 || true
        exit 1
    fi
    echo "include/yilian.h is fresh (cbindgen $CBINDGEN_VERSION)"
else
    cp "$tmp" "$root/include/yilian.h"
    echo "wrote include/yilian.h"
fi
