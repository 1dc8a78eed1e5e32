#!/usr/bin/env bash
# Checks a release jar of org.yilian:yilian (the one `mvn -Pdist package`
# makes, e.g. through bindings-java/build-jar.sh); fails loudly on the first
# problem, in a second or two:
#   - META-INF/native/linux-x86_64/libyilian_jni.so and
#     META-INF/native/linux-aarch64/libyilian_jni.so are both inside, each an
#     ELF shared library of its architecture,
#   - stripped (no .debug_* section: the debug info ships beside the jar) and
#     without the test hook (Java_org_yilian_TestHooks_panicForTest),
#   - needing no glibc symbol newer than 2.28 (readelf -V),
#   - every class is Java 8 bytecode (class file major version <= 52), and
#     no test class (TestHooks) or .debug file is in the jar.
#
#   bash bindings-java/check-jar.sh target/yilian-0.1.0.jar
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
[ $# -eq 1 ] && [ -f "$1" ] || { echo "usage: $0 JAR (an existing file)" >&2; exit 2; }
jar="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
MAX_GLIBC="${MAX_GLIBC:-2.28}"
fail() { echo "check-jar.sh: $jar: $*" >&2; exit 1; }
glibc_needed() { readelf -V -W "$1" | grep -oE 'GLIBC_[0-9]+(\.[0-9]+)+' | sed 's/^GLIBC_//' | sort -uV | tail -n 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 -m zipfile -e "$jar" "$work/x" || fail "cannot unpack it"

for p in linux-x86_64:X86-64 linux-aarch64:AArch64; do
    platform="${p%%:*}" machine="${p#*:}"
    lib="$work/x/META-INF/native/$platform/libyilian_jni.so"
    [ -f "$lib" ] || fail "lacks META-INF/native/$platform/libyilian_jni.so"
    readelf -h "$lib" | grep -q 'Type: *DYN' || fail "$platform/libyilian_jni.so is not an ELF shared library"
    readelf -h "$lib" | grep -q "Machine:.*$machine" || fail "$platform/libyilian_jni.so is not $machine: $(readelf -h "$lib" | sed -n 's/^ *Machine: *//p')"
    if readelf -S -W "$lib" | grep -qE '\.debug_[a-z]+'; then
        fail "$platform/libyilian_jni.so is not stripped (it has $(readelf -S -W "$lib" | grep -oE '\.debug_[a-z]+' | sort -u | tr '\n' ' '))"
    fi
    if readelf --dyn-syms -W "$lib" | grep -w Java_org_yilian_TestHooks_panicForTest >/dev/null; then
        fail "$platform/libyilian_jni.so exports the test hook Java_org_yilian_TestHooks_panicForTest"
    fi
    readelf --dyn-syms -W "$lib" | grep -w Java_org_yilian_NativeMethods_libraryVersion >/dev/null \
        || fail "$platform/libyilian_jni.so does not export Java_org_yilian_NativeMethods_libraryVersion"
    v="$(glibc_needed "$lib")"
    [ -n "$v" ] || fail "$platform/libyilian_jni.so has no GLIBC version needs (not a glibc build?)"
    [ "$(printf '%s\n%s\n' "$v" "$MAX_GLIBC" | sort -V | tail -n 1)" = "$MAX_GLIBC" ] \
        || fail "$platform/libyilian_jni.so needs GLIBC_$v, newer than $MAX_GLIBC"
    echo "ok: $platform/libyilian_jni.so: $machine, stripped, $(du -h "$lib" | cut -f1), needs at most GLIBC_$v, no test hook"
done

python3 - "$work/x" <<'EOF' || fail "has classes newer than Java 8 (above)"
import pathlib, struct, sys
bad, n = [], 0
for c in pathlib.Path(sys.argv[1]).rglob("*.class"):
    n += 1
    magic, _minor, major = struct.unpack(">IHH", c.read_bytes()[:8])
    if magic != 0xCAFEBABE or major > 52:
        bad.append(f"{c.relative_to(sys.argv[1])}: major version {major}")
print("\n".join(bad), file=sys.stderr) if bad else print(f"ok: {n} classes, all Java 8 bytecode (major <= 52)")
sys.exit(1 if bad or n == 0 else 0)
EOF
[ ! -e "$work/x/org/yilian/TestHooks.class" ] || fail "holds the test class org/yilian/TestHooks"
if find "$work/x" -name '*.debug' | grep -q .; then fail "holds .debug files (they ship beside the jar)"; fi
echo "check-jar.sh: $jar is fine"
