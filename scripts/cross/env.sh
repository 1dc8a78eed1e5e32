# Sourced by the cross-build scripts (scripts/cross/*.sh, scripts/package.sh).
# The toolchain every non-host target is built with, from Debian's packages
# only (no rustup download is reachable here): rustc-web 1.96 with its std
# sources (rust-web-src), so `-Zbuild-std` builds std for any target rustc
# knows (aarch64, loongarch64, x86_64/i686 Windows). See
# ../shared/notes/china.md §4 for how this recipe was found.
#
#   . scripts/cross/env.sh
#   cross_install rustc-web rust-web-src cargo-web gcc-aarch64-linux-gnu ...
#   xcargo build --release -p yilian-ffi --target aarch64-unknown-linux-gnu
#
# xcargo runs Debian's cargo and rustc (/usr/bin) on the workspace with
# RUSTC_BOOTSTRAP=1 and -Zbuild-std=std,panic_unwind (the release profile
# unwinds: a panic is caught at the FFI boundary). Its target directory is
# $XC_TARGET_DIR (default target/cross), apart from the host's.

XC_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
XC_TARGET_DIR="${XC_TARGET_DIR:-$XC_ROOT/target/cross}"

# Installs the named Debian packages that are not installed yet.
cross_install() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing: ${missing[*]}" >&2
    if [ "$(id -u)" -ne 0 ]; then echo "run as root or install: ${missing[*]}" >&2; return 1; fi
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

xcargo() {
    cross_install rustc-web rust-web-src cargo-web || return 1
    RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 \
        CARGO_TARGET_DIR="$XC_TARGET_DIR" \
        /usr/bin/cargo "$1" -Zbuild-std=std,panic_unwind "${@:2}"
}
