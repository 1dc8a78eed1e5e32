#!/usr/bin/env bash
# ffi_reserve for Java (shared/notes/perf.md §5.4): typed hold+release through
# JNI, the same logic in pure Java (ConcurrentHashMap + atomics) and the same
# loop inside Rust, interleaved in one JVM; prints medians, the JNI / pure-Java
# ratio and the binding's cost per call.
#   bindings-java/bench.sh [pairs-per-thread-per-round [rounds]]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
native_dir="${CARGO_TARGET_DIR:-$root/target}/release"

(cd "$root" && cargo build --release -p yilian-jni)
cd "$here"
mvn -B -ntp -q -Dyilian.native.build.dir="$native_dir" -DskipTests package
jar="$(ls target/yilian-*.jar | head -n 1)"
mkdir -p target/bench-classes
javac -Xlint:all -cp "$jar" -d target/bench-classes bench/org/yilian/HoldReleaseBench.java
# The harness sits in package org.yilian (on the classpath, beside the jar) for the package-private in-Rust loops.
java -Xms1g -Xmx4g -cp "$jar:target/bench-classes" org.yilian.HoldReleaseBench "${1:-200000}" "${2:-5}"
