#!/usr/bin/env bash
# The release jar of org.yilian:yilian with its natives for linux-x86_64 and
# linux-aarch64, checked:
#
#   bash bindings-java/build-jar.sh OUT_DIR [--no-aarch64-jvm]
#
# 1. libyilian_jni (yilian-jni, without the test hooks) for x86_64 and aarch64,
#    linked by zig against glibc $LINUX_GLIBC (scripts/cross/zig.sh, as
#    scripts/cross/linux.sh builds the C libraries: the host's rustup cargo for
#    x86_64, Debian's rustc-web with -Zbuild-std for aarch64); stripped into
#    OUT_DIR/natives/<platform>/libyilian_jni.so, with a .gnu_debuglink to the
#    debug info, shipped beside the jar: OUT_DIR/debug/<platform>/libyilian_jni.so.debug.
# 2. mvn -Pdist package (tests skipped: run-tests.sh runs the JUnit suite on the
#    test build) with -Dyilian.natives.dir=OUT_DIR/natives: the pom fails in
#    validate when either native is missing. OUT_DIR/yilian-<version>.jar.
# 3. bindings-java/check-jar.sh on it (both natives, stripped, glibc <= 2.28,
#    Java 8 bytecode), then examples/java/ReleaseDay.java run with only the jar
#    on the classpath: its x86_64 native extracted into a fresh cache, twice
#    (the second start uses the cached copy).
# 4. Unless --no-aarch64-jvm: Debian's arm64 OpenJDK 17 (apt-get download +
#    dpkg -x; its shared libraries from the arm64 multiarch packages) runs the
#    example with the jar under qemu-aarch64-static: the jar's linux-aarch64
#    native picked (os.arch aarch64), cached and loaded by a real aarch64 JVM.
# Times measured here (2 shared cores): the x86_64 native 8.2 min and the
# aarch64 one 8.8 min after linux.sh's builds of the same target (the
# client's dependencies are new; cold, add the 11-15 min of linux.sh's),
# mvn -Pdist 23 s, check-jar.sh 1 s, the example 1 s per start, the arm64
# JVM under QEMU 8 s (plus a 43 MB download the first time).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/../scripts/cross/zig.sh"
root="$XC_ROOT"

out="" arm_jvm=1
for a in "$@"; do
    case "$a" in
        --no-aarch64-jvm) arm_jvm=0 ;;
        -*) echo "build-jar.sh: unknown option $a" >&2; exit 2 ;;
        *) [ -z "$out" ] || { echo "usage: $0 OUT_DIR [--no-aarch64-jvm]" >&2; exit 2; }; out="$a" ;;
    esac
done
[ -n "$out" ] || { echo "usage: $0 OUT_DIR [--no-aarch64-jvm]" >&2; exit 2; }
mkdir -p "$out"
out="$(cd "$out" && pwd)"
t0=$SECONDS
step() { printf '\n== [%4ss] %s\n' "$((SECONDS - t0))" "$*"; }
hook="Java_org_yilian_TestHooks_panicForTest"

step "prerequisites"
cross_install rustc-web rust-web-src cargo-web gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu \
    libc6-dev-arm64-cross qemu-user-static binutils maven openjdk-17-jdk-headless
zig_install

# Ships one platform's libyilian_jni from cargo's output directory BUILT with binutils PREFIX.
ship_jni() {
    local platform="$1" built="$2" prefix="$3"
    local dest="$out/natives/$platform" dbg="$out/debug/$platform"
    mkdir -p "$dest" "$dbg"
    rm -f "$dest/libyilian_jni.so" "$dbg/libyilian_jni.so.debug"
    [ -f "$built/libyilian_jni.so" ] || { echo "build-jar.sh: $built/libyilian_jni.so was not built" >&2; exit 1; }
    cp "$built/libyilian_jni.so" "$dest/libyilian_jni.so"
    "${prefix}objcopy" --only-keep-debug "$dest/libyilian_jni.so" "$dbg/libyilian_jni.so.debug"
    "${prefix}strip" --strip-unneeded "$dest/libyilian_jni.so"
    (cd "$dest" && "${prefix}objcopy" --add-gnu-debuglink="$dbg/libyilian_jni.so.debug" libyilian_jni.so)
    chmod 0644 "$dbg/libyilian_jni.so.debug"
    if readelf --dyn-syms -W "$dest/libyilian_jni.so" | grep -w "$hook" >/dev/null; then
        echo "build-jar.sh: the $platform libyilian_jni.so exports the test hook $hook" >&2; exit 1
    fi
    check_glibc "$dest/libyilian_jni.so"
    echo "$platform: $(du -h "$dest/libyilian_jni.so" | cut -f1) stripped, debug info $(du -h "$dbg/libyilian_jni.so.debug" | cut -f1) beside the jar"
}

step "x86_64: cargo-zigbuild build --release -p yilian-jni --target x86_64-unknown-linux-gnu.$LINUX_GLIBC"
hzig build --release -p yilian-jni --target "x86_64-unknown-linux-gnu.$LINUX_GLIBC"
ship_jni linux-x86_64 "$HOST_TARGET_DIR/x86_64-unknown-linux-gnu/release" ""

step "aarch64: xzig build --release -p yilian-jni --target aarch64-unknown-linux-gnu.$LINUX_GLIBC (Debian rustc-web, -Zbuild-std)"
xzig build --release -p yilian-jni --target "aarch64-unknown-linux-gnu.$LINUX_GLIBC"
ship_jni linux-aarch64 "$XC_TARGET_DIR/aarch64-unknown-linux-gnu/release" aarch64-linux-gnu-

step "mvn -Pdist package (both natives required)"
(cd "$here" && mvn -B -ntp -q -Pdist -Dyilian.natives.dir="$out/natives" -DskipTests clean package)
version="$(sed -n 's:^  <version>\(.*\)</version>:\1:p' "$here/pom.xml" | head -n 1)"
cp "$here/target/yilian-$version.jar" "$out/yilian-$version.jar"
jar="$out/yilian-$version.jar"

step "check-jar.sh $jar"
bash "$here/check-jar.sh" "$jar"

step "examples/java/ReleaseDay.java with only the jar (x86_64 native from the jar, cached)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
javac --release 8 -cp "$jar" -d "$work/classes" "$root/examples/java/ReleaseDay.java"
for run in 1 2; do
    java -Dyilian.native.dir="$work/cache" -cp "$jar:$work/classes" ReleaseDay > "$work/out.$run"
    tail -n 1 "$work/out.$run"
done
find "$work/cache" -type f | grep -q 'linux-x86_64-[0-9a-f]\{64\}/libyilian_jni.so$' \
    || { echo "build-jar.sh: the native was not cached under $work/cache" >&2; find "$work/cache" >&2; exit 1; }

if [ "$arm_jvm" = 1 ]; then
    step "aarch64 JVM (Debian's arm64 OpenJDK 17 under qemu-aarch64-static) runs ReleaseDay with the jar"
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        [ "$(id -u)" -eq 0 ] || { echo "build-jar.sh: run as root (dpkg --add-architecture arm64)" >&2; exit 1; }
        dpkg --add-architecture arm64
        apt-get update -qq
    fi
    cross_install libc6:arm64 libgcc-s1:arm64 libstdc++6:arm64 zlib1g:arm64
    jdk="$XC_TARGET_DIR/arm64-jre-sysroot"
    if [ ! -x "$jdk/usr/lib/jvm/java-17-openjdk-arm64/bin/java" ]; then
        debs="$(mktemp -d)"
        (cd "$debs" && apt-get download -q openjdk-17-jre-headless:arm64)
        mkdir -p "$jdk"
        for d in "$debs"/*.deb; do dpkg -x "$d" "$jdk"; done
        rm -rf "$debs"
    fi
    ajava=(qemu-aarch64-static "$jdk/usr/lib/jvm/java-17-openjdk-arm64/bin/java")
    # Not -L /usr/aarch64-linux-gnu: see scripts/cross/linux.sh (mismatched ld.so).
    "${ajava[@]}" -XshowSettings:properties -version 2>&1 | grep -E 'os.arch|java.version ' || true
    "${ajava[@]}" -Dyilian.native.dir="$work/arm-cache" -cp "$jar:$work/classes" ReleaseDay > "$work/out.arm"
    tail -n 1 "$work/out.arm"
    find "$work/arm-cache" -type f | grep -q 'linux-aarch64-[0-9a-f]\{64\}/libyilian_jni.so$' \
        || { echo "build-jar.sh: the aarch64 JVM did not load the jar's linux-aarch64 native" >&2; exit 1; }
fi

step "done"
(cd "$out" && sha256sum "yilian-$version.jar" debug/*/libyilian_jni.so.debug)
