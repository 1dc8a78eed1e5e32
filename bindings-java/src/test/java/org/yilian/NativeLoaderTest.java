package org.yilian;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Loading from java.library.path and from the jar, the version handshake, clear failures, and -Xcheck:jni silence. */
class NativeLoaderTest {
    static final String CLASSES = "yilian.test.classes";

    @BeforeAll
    static void load() {
        NativeLoader.ensureLoaded();
    }

    @Test
    void loadedInThisJvm() {
        Engine.version();
        assertNotNull(NativeLoader.loadedFrom());
        assertEquals(NativeLoader.jarVersion(), NativeMethods.libraryVersion());
        assertEquals(NativeMethods.libraryVersion(), NativeMethods.coreVersion());
    }

    @Test
    void versionHandshake() {
        assertNull(NativeLoader.versionMismatch("0.1.0", "0.1.0", "x"));
        String m = NativeLoader.versionMismatch("0.2.0", "0.1.0", "System.loadLibrary");
        assertTrue(m.contains("0.2.0") && m.contains("0.1.0") && m.contains("System.loadLibrary"), m);
    }

    @Test
    void platformNames() {
        assertEquals("x86_64", NativeLoader.normalizeArch("amd64"));
        assertEquals("aarch64", NativeLoader.normalizeArch("arm64"));
        assertEquals("aarch64", NativeLoader.normalizeArch("aarch64"));
        if (System.getProperty("os.name").toLowerCase().startsWith("linux")) {
            assertTrue(NativeLoader.platform().startsWith("linux-"), NativeLoader.platform());
        }
    }

    @Test
    void loadsFromJavaLibraryPathFirst() throws Exception {
        String dir = TestSupport.property("yilian.test.native.build.dir");
        TestSupport.Child c = TestSupport.runJava(Collections.singletonList("-Djava.library.path=" + dir), TestSupport.testClasspath(), "org.yilian.LoaderProbe");
        assertEquals(0, c.exit, c.toString());
        assertTrue(c.output.contains("loaded: System.loadLibrary(\"yilian_jni\")"), c.toString());
    }

    /** Only the jar's copy (nothing on java.library.path), cached in {@code cache}. */
    private static List<String> fromTheJar(Path dir, Path cache) {
        return Arrays.asList("-Djava.library.path=" + dir.resolve("empty"), "-Dyilian.native.dir=" + cache);
    }

    /** The one cached library under {@code cache} (platform-sha256/libyilian_jni.so), failing on anything else there. */
    private static Path cachedLibrary(Path cache) throws IOException {
        try (Stream<Path> all = Files.walk(cache)) {
            List<Path> files = all.filter(Files::isRegularFile).collect(Collectors.toList());
            assertEquals(1, files.size(), "the cache holds exactly the library, no temp file: " + files);
            Path lib = files.get(0);
            assertEquals("libyilian_jni.so", lib.getFileName().toString());
            assertTrue(lib.getParent().getFileName().toString().startsWith(NativeLoader.platform() + "-"), lib.toString());
            return lib;
        }
    }

    @Test
    void theJarsLibraryIsExtractedOnceIntoTheCacheAndASecondStartDoesNotRewriteIt(@TempDir Path dir) throws Exception {
        Path cache = dir.resolve("cache");
        TestSupport.Child first = TestSupport.runJava(fromTheJar(dir, cache), TestSupport.testClasspath(), "org.yilian.LoaderProbe");
        assertEquals(0, first.exit, first.toString());
        assertTrue(first.output.contains("loaded: a new cached copy of jar resource /META-INF/native/" + NativeLoader.platform()), first.toString());
        Path lib = cachedLibrary(cache);
        String sha = NativeLoader.sha256(Files.readAllBytes(lib));
        assertTrue(lib.getParent().getFileName().toString().endsWith("-" + sha), "the cache is keyed by the library's SHA-256");
        Object inode = Files.getAttribute(lib, "unix:ino");
        long modified = Files.getLastModifiedTime(lib).toMillis();

        TestSupport.Child second = TestSupport.runJava(fromTheJar(dir, cache), TestSupport.testClasspath(), "org.yilian.LoaderProbe");
        assertEquals(0, second.exit, second.toString());
        assertTrue(second.output.contains("loaded: the verified cached copy of jar resource"), second.toString());
        assertEquals(lib, cachedLibrary(cache));
        assertEquals(inode, Files.getAttribute(lib, "unix:ino"), "the second start used the same file");
        assertEquals(modified, Files.getLastModifiedTime(lib).toMillis(), "the second start did not rewrite it");
    }

    @Test
    void aCorruptedCachedLibraryIsReplacedBeforeUse(@TempDir Path dir) throws Exception {
        Path cache = dir.resolve("cache");
        assertEquals(0, TestSupport.runJava(fromTheJar(dir, cache), TestSupport.testClasspath(), "org.yilian.LoaderProbe").exit);
        Path lib = cachedLibrary(cache);
        byte[] good = Files.readAllBytes(lib);
        byte[] bad = good.clone();
        bad[bad.length / 2] ^= 0x5a; // same size, one byte off: only the hash can tell
        Files.write(lib, bad);

        TestSupport.Child c = TestSupport.runJava(fromTheJar(dir, cache), TestSupport.testClasspath(), "org.yilian.LoaderProbe");
        assertEquals(0, c.exit, c.toString());
        assertTrue(c.output.contains("loaded: a fresh cached copy (the cached file did not match its SHA-256 and was replaced)"), c.toString());
        assertTrue(Arrays.equals(good, Files.readAllBytes(cachedLibrary(cache))), "the cache holds the jar's library again");

        Files.write(lib, Arrays.copyOf(good, 4096)); // truncated, as by a full disk
        c = TestSupport.runJava(fromTheJar(dir, cache), TestSupport.testClasspath(), "org.yilian.LoaderProbe");
        assertEquals(0, c.exit, c.toString());
        assertTrue(c.output.contains("was replaced"), c.toString());
        assertTrue(Arrays.equals(good, Files.readAllBytes(cachedLibrary(cache))));
    }

    @Test
    void jvmsStartingAtOnceShareTheCacheSafely(@TempDir Path dir) throws Exception {
        Path cache = dir.resolve("cache");
        int jvms = 4;
        ExecutorService pool = Executors.newFixedThreadPool(jvms);
        try {
            List<Future<TestSupport.Child>> children = new ArrayList<>();
            for (int i = 0; i < jvms; i++) {
                children.add(pool.submit(() -> TestSupport.runJava(fromTheJar(dir, cache), TestSupport.testClasspath(), "org.yilian.LoaderProbe")));
            }
            for (Future<TestSupport.Child> f : children) {
                TestSupport.Child c = f.get();
                assertEquals(0, c.exit, c.toString());
                assertTrue(c.output.contains("cached copy of jar resource"), c.toString());
            }
        } finally {
            pool.shutdownNow();
        }
        Path lib = cachedLibrary(cache);
        assertTrue(lib.getParent().getFileName().toString().endsWith("-" + NativeLoader.sha256(Files.readAllBytes(lib))));
    }

    @Test
    void twoClassLoadersInOneJvmEachLoadTheLibrary(@TempDir Path dir) throws Exception {
        Path cache = dir.resolve("cache");
        TestSupport.Child c = TestSupport.runJava(fromTheJar(dir, cache), TestSupport.property("yilian.test.test-classes"),
                "org.yilian.TwoLoadersProbe", TestSupport.property(CLASSES), TestSupport.property("yilian.test.test-classes"));
        assertEquals(0, c.exit, c.toString());
        assertTrue(c.output.contains("loader 1: version " + NativeLoader.jarVersion() + " from a new cached copy"), c.toString());
        // The same file cannot be loaded by a second class loader: it gets a private copy.
        assertTrue(c.output.contains("loader 2: version " + NativeLoader.jarVersion() + " from extraction of jar resource"), c.toString());
        cachedLibrary(cache);
    }

    @Test
    void fallsBackToATempCopyWhenTheCacheIsUnwritable(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("a-file");
        Files.write(file, new byte[] {1});
        Path cache = file.resolve("cache"); // a directory below a regular file cannot exist
        TestSupport.Child c = TestSupport.runJava(fromTheJar(dir, cache), TestSupport.testClasspath(), "org.yilian.LoaderProbe");
        assertEquals(0, c.exit, c.toString());
        assertTrue(c.output.contains("loaded: extraction of jar resource /META-INF/native/" + NativeLoader.platform()), c.toString());
    }

    @Test
    void refusesALibraryOfAnotherVersion(@TempDir Path dir) throws Exception {
        // A yilian.properties earlier on the classpath stands for a jar of another version.
        Path props = dir.resolve("org/yilian/yilian.properties");
        Files.createDirectories(props.getParent());
        Files.write(props, "version=0.0.0-stale\n".getBytes(StandardCharsets.UTF_8));
        String cp = dir + File.pathSeparator + TestSupport.testClasspath();
        TestSupport.Child c = TestSupport.runJava(Collections.<String>emptyList(), cp, "org.yilian.LoaderProbe");
        assertEquals(3, c.exit, c.toString());
        String lib = NativeMethods.libraryVersion();
        assertTrue(c.output.contains("ULE: yilian: version mismatch: the jar org.yilian:yilian is 0.0.0-stale but the native library yilian_jni"), c.toString());
        assertTrue(c.output.contains(" is " + lib + ";"), c.toString());
        assertTrue(c.output.contains("again: yilian: version mismatch"), c.toString());
    }

    @Test
    void saysWhatItTriedWhenNoLibraryIsFound(@TempDir Path dir) throws Exception {
        // The classes without META-INF/native, and nothing on java.library.path.
        Path classes = Paths.get(TestSupport.property(CLASSES));
        Path copy = dir.resolve("classes");
        copyTree(classes.resolve("org"), copy.resolve("org"));
        String cp = copy + File.pathSeparator + TestSupport.property("yilian.test.test-classes");
        TestSupport.Child c = TestSupport.runJava(Collections.singletonList("-Djava.library.path=" + dir.resolve("empty")), cp, "org.yilian.LoaderProbe");
        assertEquals(3, c.exit, c.toString());
        String out = c.output;
        assertTrue(out.contains("ULE: yilian: could not load the native library yilian_jni for jar org.yilian:yilian " + NativeLoader.jarVersion()), out);
        assertTrue(out.contains("on platform " + NativeLoader.platform()), out);
        assertTrue(out.contains("1. System.loadLibrary(\"yilian_jni\") with java.library.path=" + dir.resolve("empty")), out);
        assertTrue(out.contains("2. jar resource /META-INF/native/" + NativeLoader.platform() + "/libyilian_jni.so: not in the jar"), out);
        assertTrue(out.contains("again: yilian: could not load"), out);
    }

    /** Every native method, in a child JVM under -Xcheck:jni: its output must hold no warning. */
    @Test
    void noJniWarnings() throws Exception {
        // The test build (java.library.path): JniSmoke also calls the test hooks.
        List<String> args = Arrays.asList("-Xcheck:jni", "-Djava.library.path=" + TestSupport.property("yilian.test.native.build.dir"));
        TestSupport.Child c = TestSupport.runJava(args, TestSupport.testClasspath() + File.pathSeparator + System.getProperty("java.class.path"), "org.yilian.JniSmoke");
        assertEquals(0, c.exit, c.toString());
        assertTrue(c.output.contains("smoke ok"), c.toString());
        assertFalse(c.output.contains("WARNING"), "-Xcheck:jni warned:\n" + c.output);
    }

    private static void copyTree(Path from, Path to) throws IOException {
        try (Stream<Path> all = Files.walk(from)) {
            for (Path p : (Iterable<Path>) all::iterator) {
                Path dest = to.resolve(from.relativize(p).toString());
                if (Files.isDirectory(p)) {
                    Files.createDirectories(dest);
                } else {
                    Files.copy(p, dest);
                }
            }
        }
    }
}
