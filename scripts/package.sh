#!/usr/bin/env bash
# Every release artifact of yilian, into one directory with a checksum list.
#
#   bash scripts/package.sh [OUT_DIR] [--no-test] [--only linux,windows,wheels,jar,source]
#
# OUT_DIR (default dist/) receives:
#   linux-x86_64/, linux-aarch64/   libyilian.so (stripped, soname
#                                   libyilian.so.0), libyilian.so.debug,
#                                   libyilian.a (only yl_* global), linked
#                                   against glibc 2.17; nothing newer than
#                                   GLIBC_2.28 needed (readelf)
#   linux-loongarch64/              compiled and linked only (new-world ABI)
#   windows-x86_64/, windows-i686/  yilian.dll, libyilian.dll.a, yilian.def,
#                                   yilian.h (Windows 10 or later; the i686
#                                   DLL also exports __stdcall forms)
#   windows-x86_64-win7/, windows-i686-win7/   the same for Windows 7 and later
#   python/                         manylinux2014 wheels for x86_64 and aarch64
#   java/                           the jar with linux-x86_64 and linux-aarch64
#                                   natives (stripped), natives/ and debug/
#                                   (their .debug files, not in the jar)
#   source/                         yilian-X.Y.Z.tar.gz (git archive of HEAD)
#   include/yilian.h, LICENSE, CHANGELOG.md, docs/abi.md, docs/windows.md
#   SHA256SUMS                      sha256sum of every file above (check with
#                                   `cd OUT_DIR && sha256sum -c SHA256SUMS`)
#   BUILD-INFO                      commit, toolchains, what was tested, timings
#
# Each step is a script of its own (the commands below), which installs what
# it needs from Debian's packages and PyPI. Unless --no-test, each also runs
# its checks: the aarch64 C and Rust suites under qemu-user, the Windows C
# suite under Wine, the wheels installed and tested (aarch64 under qemu),
# the jar checked. Time on a 2-core machine: see the README's install
# section (about an hour with tests, from a warm cargo registry).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

out=""
test_flag=""
only="linux,windows,wheels,jar,source"
while [ $# -gt 0 ]; do
    case "$1" in
        --no-test) test_flag="--no-test" ;;
        --only) only="$2"; shift ;;
        --only=*) only="${1#--only=}" ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "package.sh: unknown option $1" >&2; exit 2 ;;
        *) [ -z "$out" ] || { echo "package.sh: one OUT_DIR only" >&2; exit 2; }; out="$1" ;;
    esac
    shift
done
out="${out:-$root/dist}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
for step in ${only//,/ }; do
    case "$step" in linux|windows|wheels|jar|source) ;; *) echo "package.sh: unknown step $step" >&2; exit 2 ;; esac
done

version="$(sed -n 's/^#define YL_VERSION_STRING "\(.*\)"/\1/p' include/yilian.h)"
[ -n "$version" ] || { echo "package.sh: no YL_VERSION_STRING in include/yilian.h" >&2; exit 1; }
info="$out/BUILD-INFO"
{
    echo "yilian $version"
    echo "commit $(git rev-parse HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' (with uncommitted changes)')"
    echo "built $(date -u +%FT%TZ) on $(uname -m) $(. /etc/os-release; echo "$PRETTY_NAME")"
    echo "tests: $([ -n "$test_flag" ] && echo 'not run (--no-test)' || echo 'run (see each step)')"
    echo
} >"$info"

step_run() {
    local name="$1"; shift
    local t0; t0=$(date +%s)
    echo "== package.sh: $name: $*"
    "$@"
    local took=$(( $(date +%s) - t0 ))
    echo "== package.sh: $name done in ${took}s"
    echo "$name: $* (${took}s)" >>"$info"
}

source_tarball() {
    mkdir -p "$out/source"
    git archive --format=tar.gz --prefix="yilian-$version/" -o "$out/source/yilian-$version.tar.gz" HEAD
}

# In this order whatever --only names: the jar reuses linux.sh's aarch64
# dependencies. With --no-test the wheels are still installed and tested,
# on aarch64 only the smoke part (--aarch64-smoke), and the jar's aarch64
# native is not loaded by an arm64 JVM under QEMU (--no-aarch64-jvm).
for step in linux jar wheels windows source; do
    [[ ",$only," == *",$step,"* ]] || continue
    case "$step" in
        linux)   step_run linux   bash scripts/cross/linux.sh "$out" $test_flag ;;
        jar)     step_run jar     bash bindings-java/build-jar.sh "$out/java" ${test_flag:+--no-aarch64-jvm} ;;
        wheels)  step_run wheels  bash bindings-python/build-wheels.sh "$out/python" ${test_flag:+--aarch64-smoke} ;;
        windows) step_run windows bash scripts/cross/windows.sh "$out" $test_flag ;;
        source)  step_run source  source_tarball ;;
    esac
done

mkdir -p "$out/include" "$out/docs"
cp include/yilian.h "$out/include/"
cp LICENSE CHANGELOG.md "$out/"
cp docs/abi.md docs/windows.md "$out/docs/"

# The checksum list covers every file in OUT_DIR but itself, with paths
# relative to OUT_DIR, sorted so two runs of the same build compare.
(
    cd "$out"
    find . -type f ! -name SHA256SUMS -printf '%P\n' | LC_ALL=C sort | xargs -d '\n' sha256sum >SHA256SUMS
    sha256sum --quiet -c SHA256SUMS
)
echo "== package.sh: $(wc -l <"$out/SHA256SUMS") files in $out, listed in $out/SHA256SUMS"
