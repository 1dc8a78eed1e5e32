# Sourced by scripts/cross/linux.sh, bindings-python/build-wheels.sh and
# bindings-java/build-jar.sh: Linux builds that run on an old glibc.
#
# The libraries are linked by zig (from PyPI: ziglang, driven by
# cargo-zigbuild) against glibc $LINUX_GLIBC's symbol stubs, so they need
# nothing newer than that, whatever glibc the build machine has (Debian 12:
# 2.36). $LINUX_GLIBC defaults to 2.17, manylinux2014's floor, so the C
# libraries, the jar's natives and the wheels share one floor and one build
# of their dependencies per architecture; every shipped file is then checked
# against MAX_GLIBC (2.28: Kylin V10, UOS V20, openEuler 20.03, RHEL 8).
#
#   . scripts/cross/zig.sh
#   zig_install                                   # the pinned PyPI tools, in $XC_TOOLS_VENV
#   hzig build --release -p yilian-ffi --target x86_64-unknown-linux-gnu.$LINUX_GLIBC
#   xzig build --release -p yilian-ffi --target aarch64-unknown-linux-gnu.$LINUX_GLIBC
#   check_glibc OUT/linux-aarch64/libyilian.so ...
#
# hzig: cargo-zigbuild with the host's (rustup) cargo, for x86_64, into
# $CARGO_TARGET_DIR. xzig: cargo-zigbuild with Debian's cargo and rustc-web
# and -Zbuild-std (env.sh's xcargo, zig as the linker), for every other
# architecture, into $XC_TARGET_DIR.

. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

LINUX_GLIBC="${LINUX_GLIBC:-2.17}"
MAX_GLIBC="${MAX_GLIBC:-2.28}"
XC_TOOLS_VENV="${XC_TOOLS_VENV:-$XC_ROOT/target/release-tools-venv}"
HOST_TARGET_DIR="${CARGO_TARGET_DIR:-$XC_ROOT/target}"

# The release tools pinned in bindings-python/requirements-release.txt
# (ziglang, cargo-zigbuild, maturin, auditwheel), in a venv of their own,
# put first on PATH. About a minute the first time, instant afterwards.
zig_install() {
    local req="$XC_ROOT/bindings-python/requirements-release.txt"
    # The pinned versions already on PATH (e.g. a CI image) are used as they are.
    if [ "$(cargo-zigbuild --version 2>/dev/null)" = "cargo-zigbuild $(pin cargo-zigbuild)" ] \
        && [ "$(maturin --version 2>/dev/null)" = "maturin $(pin maturin)" ] \
        && [ "$(python3 -m ziglang version 2>/dev/null)" = "$(pin ziglang)" ] \
        && command -v auditwheel >/dev/null; then
        return 0
    fi
    if [ ! -x "$XC_TOOLS_VENV/bin/python" ]; then
        cross_install python3-venv || return 1
        python3 -m venv "$XC_TOOLS_VENV" || { echo "zig_install: cannot create $XC_TOOLS_VENV" >&2; return 1; }
    fi
    if ! cmp -s "$req" "$XC_TOOLS_VENV/.installed" 2>/dev/null; then
        "$XC_TOOLS_VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$req" \
            || { echo "zig_install: pip install -r $req failed" >&2; return 1; }
        cp "$req" "$XC_TOOLS_VENV/.installed"
    fi
    export PATH="$XC_TOOLS_VENV/bin:$PATH"
    # cargo-zigbuild finds zig as `python3 -m ziglang` through this venv's python3.
    command -v cargo-zigbuild >/dev/null && python3 -m ziglang version >/dev/null \
        || { echo "zig_install: cargo-zigbuild or ziglang missing from $XC_TOOLS_VENV" >&2; return 1; }
}

# The version requirements-release.txt pins for a package.
pin() { sed -n "s/^$1==//p" "$XC_ROOT/bindings-python/requirements-release.txt"; }

hzig() {
    (cd "$XC_ROOT" && CARGO_TARGET_DIR="$HOST_TARGET_DIR" cargo-zigbuild "$@")
}

# Debian's cargo, rustc and rustdoc first on PATH (maturin and cargo-zigbuild
# spawn `cargo` and `rustc` by name), RUSTC_BOOTSTRAP for -Z flags.
xzig_env() {
    cross_install rustc-web rust-web-src cargo-web || return 1
    local shim="$XC_TARGET_DIR/.debian-toolchain"
    mkdir -p "$shim"
    ln -sf /usr/bin/cargo "$shim/cargo"
    ln -sf /usr/bin/rustc "$shim/rustc"
    ln -sf /usr/bin/rustdoc "$shim/rustdoc"
    XZIG_ENV=(PATH="$shim:$PATH" CARGO=/usr/bin/cargo RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1
        CARGO_TARGET_DIR="$XC_TARGET_DIR")
}

xzig() {
    xzig_env || return 1
    (cd "$XC_ROOT" && env "${XZIG_ENV[@]}" cargo-zigbuild "$1" -Zbuild-std=std,panic_unwind "${@:2}")
}

# The highest GLIBC_x.y version a file needs (readelf -V: its version needs).
glibc_needed() {
    readelf -V -W "$1" | grep -oE 'GLIBC_[0-9]+(\.[0-9]+)+' | sed 's/^GLIBC_//' | sort -uV | tail -n 1
}

# Fails unless every named ELF file (shared library or executable) needs no
# glibc symbol version newer than $MAX_GLIBC; prints each file's highest.
check_glibc() {
    local f v bad=0
    for f in "$@"; do
        [ -f "$f" ] || { echo "check_glibc: $f does not exist" >&2; bad=1; continue; }
        v="$(glibc_needed "$f")"
        if [ -z "$v" ]; then
            echo "glibc: $f needs no versioned glibc symbol"
        elif [ "$(printf '%s\n%s\n' "$v" "$MAX_GLIBC" | sort -V | tail -n 1)" != "$MAX_GLIBC" ]; then
            echo "glibc: $f needs GLIBC_$v, newer than the $MAX_GLIBC allowed; the symbols:" >&2
            readelf --dyn-syms -W "$f" | grep -E "GLIBC_$v" | head -20 >&2
            bad=1
        else
            echo "glibc: $f needs at most GLIBC_$v (<= $MAX_GLIBC)"
        fi
    done
    return $bad
}

# A static library has no version needs of its own (the host's link assigns
# them): link a program that calls it against glibc $MAX_GLIBC's stubs with
# zig (an undefined symbol fails the link: one newer than $MAX_GLIBC), then
# check the program. Args: ARCHIVE ZIG_ARCH (x86_64, aarch64).
check_glibc_static() {
    local archive="$1" arch="$2" work
    work="$(mktemp -d)"
    printf '#include <stdint.h>\nextern const char *yl_version(void);\nint main(void) { return yl_version() == 0; }\n' > "$work/probe.c"
    if ! python3 -m ziglang cc -target "$arch-linux-gnu.$MAX_GLIBC" "$work/probe.c" "$archive" \
        -lpthread -ldl -lm -lrt -lutil -lunwind -o "$work/probe" 2> "$work/err"; then
        echo "check_glibc_static: a program linking $archive against glibc $MAX_GLIBC fails to link:" >&2
        head -20 "$work/err" >&2
        rm -rf "$work"
        return 1
    fi
    check_glibc "$work/probe" | sed "s|$work/probe|a program linking $archive|"
    local rc=${PIPESTATUS[0]}
    rm -rf "$work"
    return "$rc"
}
