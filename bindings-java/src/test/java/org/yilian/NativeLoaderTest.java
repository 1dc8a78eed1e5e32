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
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
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

    @Test
    void extractsToTheConfiguredDirectory(@TempDir Path dir) throws Exception {
        Path target = dir.resolve("native");
        TestSupport.Child c = TestSupport.runJava(Collections.singletonList("-Dyilian.native.dir=" + target), TestSupport.testClasspath(), "org.yilian.LoaderProbe");
        assertEquals(0, c.exit, c.toString());
        assertTrue(c.output.contains("loaded: extraction of jar resource /META-INF/native/"), c.toString());
        assertTrue(c.output.contains(target.toString()), c.toString());
        try (Stream<Path> left = Files.list(target)) {
            assertEquals(Collections.emptyList(), left.collect(Collectors.toList()), "the extracted copy is deleted once mapped");
        }
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

    @Test
    void saysWhenTheExtractionDirectoryIsUnusable(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("a-file");
        Files.write(file, new byte[] {1});
        Path target = file.resolve("native"); // a directory below a regular file cannot exist
        List<String> args = Arrays.asList("-Djava.library.path=" + dir.resolve("empty"), "-Dyilian.native.dir=" + target);
        TestSupport.Child c = TestSupport.runJava(args, TestSupport.testClasspath(), "org.yilian.LoaderProbe");
        assertEquals(3, c.exit, c.toString());
        assertTrue(c.output.contains("1. System.loadLibrary(\"yilian_jni\")"), c.toString());
        assertTrue(c.output.contains("2. extracting /META-INF/native/" + NativeLoader.platform() + "/libyilian_jni.so to -Dyilian.native.dir=" + target), c.toString());
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
