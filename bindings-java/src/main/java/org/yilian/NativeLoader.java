package org.yilian;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Properties;

/**
 * Loads libyilian_jni the way RocksJava does: {@code System.loadLibrary} first
 * (a library installed on {@code java.library.path}), else the copy inside the
 * jar under {@code META-INF/native/<os>-<arch>/}, extracted to
 * {@code -Dyilian.native.dir} or a fresh temp directory and {@code System.load}ed.
 * Then the library's version must equal the jar's, so a stale library never
 * runs behind a newer jar. Every failure is an {@link UnsatisfiedLinkError}
 * that names the platform, the paths tried and why each failed.
 */
final class NativeLoader {
    static final String LIBRARY = "yilian_jni";
    static final String DIR_PROPERTY = "yilian.native.dir";

    private static final Object LOCK = new Object();
    private static volatile String loadedFrom;
    /** The first failure, repeated to later callers: a JVM cannot unload a library and retry cleanly. */
    private static String failure;

    private NativeLoader() {}

    /** Loads the library once per class loader; throws the same clear error every time it failed. */
    static void ensureLoaded() {
        if (loadedFrom != null) {
            return;
        }
        synchronized (LOCK) {
            if (loadedFrom != null) {
                return;
            }
            if (failure != null) {
                throw new UnsatisfiedLinkError(failure);
            }
            try {
                loadedFrom = load();
            } catch (UnsatisfiedLinkError e) {
                failure = e.getMessage();
                throw e;
            }
        }
    }

    /** How the library was found (for diagnostics), or null before loading. */
    static String loadedFrom() {
        return loadedFrom;
    }

    /** The platform folder name in the jar, e.g. {@code linux-x86_64}. */
    static String platform() {
        String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
        String arch = normalizeArch(System.getProperty("os.arch", ""));
        if (os.startsWith("linux")) {
            // A glibc build does not load on musl (Alpine): name the variant so the error says so.
            return "linux-" + arch + (isMusl(arch) ? "-musl" : "");
        }
        if (os.startsWith("mac") || os.startsWith("darwin")) {
            return "osx-" + arch;
        }
        if (os.startsWith("windows")) {
            return "windows-" + arch;
        }
        return os.replaceAll("[^a-z0-9]+", "") + "-" + arch;
    }

    static String normalizeArch(String arch) {
        String a = arch.toLowerCase(Locale.ROOT);
        if (a.equals("amd64") || a.equals("x86_64") || a.equals("x64")) {
            return "x86_64";
        }
        if (a.equals("aarch64") || a.equals("arm64")) {
            return "aarch64";
        }
        return a.replaceAll("[^a-z0-9_]+", "");
    }

    private static boolean isMusl(String arch) {
        return new File("/lib/ld-musl-" + arch + ".so.1").exists();
    }

    static String jarVersion() {
        Properties p = new Properties();
        try (InputStream in = NativeLoader.class.getResourceAsStream("yilian.properties")) {
            if (in == null) {
                throw new UnsatisfiedLinkError("yilian: org/yilian/yilian.properties is missing from the classpath, so the jar's version is unknown; is the yilian jar intact?");
            }
            p.load(in);
        } catch (IOException e) {
            throw new UnsatisfiedLinkError("yilian: cannot read org/yilian/yilian.properties: " + e);
        }
        String v = p.getProperty("version");
        if (v == null || v.isEmpty() || v.startsWith("${")) {
            throw new UnsatisfiedLinkError("yilian: org/yilian/yilian.properties has no version (was the jar built by Maven?)");
        }
        return v;
    }

    /** The error (or null) for a library reporting {@code libVersion} behind a jar of {@code jarVersion}. */
    static String versionMismatch(String jarVersion, String libVersion, String source) {
        if (jarVersion.equals(libVersion)) {
            return null;
        }
        return "yilian: version mismatch: the jar org.yilian:yilian is " + jarVersion + " but the native library "
                + LIBRARY + " loaded by " + source + " is " + libVersion
                + "; use the library built with this jar (remove a stale lib" + LIBRARY + " from java.library.path, or the stale jar)";
    }

    private static String load() {
        String jarVersion = jarVersion();
        String platform = platform();
        List<String> tried = new ArrayList<>();

        String libraryPath = System.getProperty("java.library.path", "");
        try {
            System.loadLibrary(LIBRARY);
            String source = "System.loadLibrary(\"" + LIBRARY + "\") from java.library.path=" + libraryPath;
            checkVersion(jarVersion, source);
            return source;
        } catch (UnsatisfiedLinkError e) {
            if (e.getMessage() != null && e.getMessage().startsWith("yilian: ")) {
                // Loaded, but wrong: a second copy cannot replace it in this JVM.
                throw e;
            }
            tried.add("System.loadLibrary(\"" + LIBRARY + "\") with java.library.path=" + libraryPath + ": " + e.getMessage());
        }

        String resource = "/META-INF/native/" + platform + "/" + System.mapLibraryName(LIBRARY);
        if (NativeLoader.class.getResource(resource) == null) {
            tried.add("jar resource " + resource + ": not in the jar (this jar has no library for " + platform + ")");
            throw failed(jarVersion, platform, tried);
        }
        String configured = System.getProperty(DIR_PROPERTY);
        boolean ownDir = configured == null || configured.isEmpty();
        Path file;
        try {
            file = extract(resource, jarVersion, ownDir ? null : Paths.get(configured));
        } catch (IOException e) {
            tried.add("extracting " + resource + " to " + describeTargetDir() + ": " + e);
            throw failed(jarVersion, platform, tried);
        }
        try {
            System.load(file.toAbsolutePath().toString());
        } catch (UnsatisfiedLinkError e) {
            String hint = "";
            if (String.valueOf(e.getMessage()).contains("failed to map segment")) {
                hint = " (the directory is probably mounted noexec: set -D" + DIR_PROPERTY + " to one that allows executables)";
            }
            tried.add("System.load(\"" + file + "\") extracted from jar resource " + resource + ": " + e.getMessage() + hint);
            deleteQuietly(file, ownDir);
            throw failed(jarVersion, platform, tried);
        }
        // The mapping outlives the file on Unix: delete it now so no temp files pile up.
        if (!platform.startsWith("windows")) {
            deleteQuietly(file, ownDir);
        } else {
            file.toFile().deleteOnExit();
        }
        String source = "extraction of jar resource " + resource + " to " + file;
        checkVersion(jarVersion, source);
        return source;
    }

    private static String describeTargetDir() {
        String dir = System.getProperty(DIR_PROPERTY);
        return dir != null && !dir.isEmpty() ? "-D" + DIR_PROPERTY + "=" + dir : "a temp directory under " + System.getProperty("java.io.tmpdir");
    }

    /** Copies the resource to a file of its own, so concurrent JVMs never overwrite a mapped library. */
    private static Path extract(String resource, String version, Path configuredDir) throws IOException {
        Path dir;
        if (configuredDir == null) {
            dir = Files.createTempDirectory("yilian-native-");
            dir.toFile().deleteOnExit();
        } else {
            dir = configuredDir;
            Files.createDirectories(dir);
        }
        String name = System.mapLibraryName(LIBRARY);
        int dot = name.lastIndexOf('.');
        Path file = Files.createTempFile(dir, name.substring(0, dot) + "-" + version + "-", name.substring(dot));
        try (InputStream in = NativeLoader.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IOException("resource vanished: " + resource);
            }
            Files.copy(in, file, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            deleteQuietly(file, configuredDir == null);
            throw e;
        }
        return file;
    }

    private static void checkVersion(String jarVersion, String source) {
        String libVersion;
        try {
            libVersion = NativeMethods.libraryVersion();
        } catch (UnsatisfiedLinkError e) {
            throw new UnsatisfiedLinkError("yilian: the library loaded by " + source + " has no yilian entry points (" + e.getMessage()
                    + "); it is not a yilian_jni library of version " + jarVersion);
        }
        String mismatch = versionMismatch(jarVersion, libVersion, source);
        if (mismatch != null) {
            throw new UnsatisfiedLinkError(mismatch);
        }
    }

    private static UnsatisfiedLinkError failed(String jarVersion, String platform, List<String> tried) {
        StringBuilder sb = new StringBuilder();
        sb.append("yilian: could not load the native library ").append(LIBRARY)
                .append(" for jar org.yilian:yilian ").append(jarVersion)
                .append(" on platform ").append(platform)
                .append(" (os.name=").append(System.getProperty("os.name"))
                .append(", os.arch=").append(System.getProperty("os.arch")).append("). Tried:");
        for (int i = 0; i < tried.size(); i++) {
            sb.append("\n  ").append(i + 1).append(". ").append(tried.get(i));
        }
        return new UnsatisfiedLinkError(sb.toString());
    }

    /** Deletes the extracted file and, if we created it, its temp directory. */
    private static void deleteQuietly(Path file, boolean ownDir) {
        try {
            Files.deleteIfExists(file);
            Path parent = file.getParent();
            if (ownDir && parent != null) {
                Files.deleteIfExists(parent);
            }
        } catch (IOException ignored) {
            // Best effort: deleteOnExit remains for the temp dir.
        }
    }
}
