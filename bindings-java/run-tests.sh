#!/usr/bin/env bash
# Java bindings, from a fresh machine: builds libyilian_jni (cargo) twice, with
# the cargo feature `testing` (the test hooks of org.yilian.TestHooks) for the
# suite and without for the jar, checks the shipped one exports no test hook,
# runs the JUnit 5 suite under -Xcheck:jni and packages the jar (mvn package),
# fails on any JNI warning, checks the jar (the shipped native library inside,
# Java 8 bytecode), then compiles examples/java/ReleaseDay.java with
# --release 8 and runs it with only the jar on the classpath. Exits non-zero
# on any failure.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
native_dir="$target_dir/release"
# pom.xml's yilian.native.test.dir: the suite loads this build from java.library.path.
test_native_dir="$target_dir/testing-hooks/release"
hook="Java_org_yilian_TestHooks_panicForTest"

echo "== cargo build --release -p yilian-jni --features testing (the suite's library)"
(cd "$root" && cargo build --release -p yilian-jni --features testing)
mkdir -p "$test_native_dir"
cp "$native_dir/libyilian_jni.so" "$test_native_dir/libyilian_jni.so"
echo "== cargo build --release -p yilian-jni (the shipped library)"
(cd "$root" && cargo build --release -p yilian-jni)
test -f "$native_dir/libyilian_jni.so" || { echo "run-tests.sh: $native_dir/libyilian_jni.so was not built" >&2; exit 1; }
nm -D --defined-only "$test_native_dir/libyilian_jni.so" | grep -w "$hook" >/dev/null \
    || { echo "run-tests.sh: the test build lacks $hook" >&2; exit 1; }
if nm -D --defined-only "$native_dir/libyilian_jni.so" | grep -w "$hook"; then
    echo "run-tests.sh: the shipped libyilian_jni.so exports the test hook $hook" >&2
    exit 1
fi

echo "== mvn package (JUnit 5 under -Xcheck:jni, then the jar)"
cd "$here"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# Stale dump files of an earlier run would fail the warning check below.
rm -f target/surefire-reports/*.dumpstream target/surefire-reports/*.dump
# -ntp: no download progress on a fresh ~/.m2; not -q, which would hide Surefire's summary.
set +e
mvn -B -ntp -Dyilian.native.build.dir="$native_dir" -Dyilian.native.test.dir="$test_native_dir" package 2>&1 | tee "$log"
mvn_status=${PIPESTATUS[0]}
set -e
# -Xcheck:jni reports problems on the JVM's own stdout, not as test failures:
# Surefire shows them as a corrupted stream and keeps them in *.dumpstream.
if grep -n -E "WARNING in native method|JNI local refs|WARNING: JNI|Corrupted (STDOUT|channel)" "$log" target/surefire-reports/*.dumpstream 2>/dev/null; then
    echo "run-tests.sh: -Xcheck:jni reported warnings (above)" >&2
    exit 1
fi
if [ "$mvn_status" -ne 0 ]; then
    echo "run-tests.sh: mvn package failed ($mvn_status)" >&2
    exit "$mvn_status"
fi

jar="$(ls target/yilian-*.jar | head -n 1)"
echo "== checking $jar"
jar tf "$jar" | grep -qx "META-INF/native/linux-x86_64/libyilian_jni.so" \
    || { echo "run-tests.sh: $jar lacks META-INF/native/linux-x86_64/libyilian_jni.so" >&2; exit 1; }
javap -v -cp "$jar" org.yilian.Engine | grep -q "major version: 52" \
    || { echo "run-tests.sh: $jar is not Java 8 bytecode" >&2; exit 1; }
! jar tf "$jar" | grep -q "org/yilian/TestHooks" || { echo "run-tests.sh: $jar holds the test class TestHooks" >&2; exit 1; }
unpacked="$(mktemp -d)"
(cd "$unpacked" && jar xf "$here/$jar" META-INF/native/linux-x86_64/libyilian_jni.so)
jar_lib="$unpacked/META-INF/native/linux-x86_64/libyilian_jni.so"
cmp -s "$jar_lib" "$native_dir/libyilian_jni.so" \
    || { rm -rf "$unpacked"; echo "run-tests.sh: the jar's libyilian_jni.so is not the shipped build" >&2; exit 1; }
if nm -D --defined-only "$jar_lib" | grep -w "$hook" >/dev/null; then
    rm -rf "$unpacked"; echo "run-tests.sh: the jar's libyilian_jni.so exports the test hook $hook" >&2; exit 1
fi
rm -rf "$unpacked"
echo "the jar carries the shipped library (no $hook) and no test class"

echo "== examples/java/ReleaseDay.java (javac --release 8, only the jar on the classpath)"
out="$(mktemp -d)"
trap 'rm -f "$log"; rm -rf "$out"' EXIT
javac --release 8 -Xlint:all -cp "$jar" -d "$out" "$root/examples/java/ReleaseDay.java"
java -cp "$jar:$out" ReleaseDay
echo "== run-tests.sh: all passed"
