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
trap 'rm -f "$tmp"' EXIT
(cd "$root/ffi-c" && cbindgen --quiet --config cbindgen.toml --crate yilian-ffi --output "$tmp" .)
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
