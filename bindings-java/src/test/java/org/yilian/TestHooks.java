package org.yilian;

/**
 * Native test hooks. They exist only in a libyilian_jni built with the cargo
 * feature {@code testing}, which run-tests.sh builds for this suite (surefire
 * loads it from {@code java.library.path}); the jar ships the default build,
 * without them, and this class is not in the jar.
 */
final class TestHooks {
    private TestHooks() {}

    static {
        NativeLoader.ensureLoaded();
    }

    /** Panics inside the native boundary (mode % 3 == 0: &amp;str, 1: String, 2: non-string payload; mode &gt;= 3: in the hot path's boundary). */
    static native int panicForTest(int mode);
}
