package org.yilian;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Properties;

/**
 * Loads libyilian_jni the way RocksJava does: {@code System.loadLibrary} first
 * (a library installed on {@code java.library.path}), else the copy inside the
 * jar under {@code META-INF/native/<os>-<arch>/}, kept in a per-user cache
 * ({@code -Dyilian.native.dir}, else {@code ~/.cache/yilian/native/<platform>-<sha256>/})
 * so it is extracted once, not at every JVM start: the cached copy is used only
 * if its SHA-256 equals the jar's copy (else it is replaced, by an atomic
 * rename, so JVMs starting at once are safe), and {@code System.load}ed. When
 * the cache is unwritable, or the library is already loaded from it by another
 * class loader, a private temp copy is loaded instead (and deleted once mapped).
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
            tried.add("jar resource " + resource + ": not in the jar (this jar has no library for " + platform + "; it carries "
                    + platformsInJar() + ")");
            throw failed(jarVersion, platform, tried);
        }
        byte[] bytes;
        try {
            bytes = readResource(resource);
        } catch (IOException e) {
            tried.add("reading jar resource " + resource + ": " + e);
            throw failed(jarVersion, platform, tried);
        }
        String sha256 = sha256(bytes);

        // 1. The per-user cache: extracted once, verified before every use.
        Path cacheDir = cacheDir();
        if (cacheDir != null) {
            Path dir = cacheDir.resolve(platform + "-" + sha256);
            Path file = dir.resolve(System.mapLibraryName(LIBRARY));
            String how;
            try {
                how = ensureCached(bytes, sha256, dir, file);
            } catch (IOException e) {
                how = null;
                tried.add("caching " + resource + " in " + dir + ": " + e + " (falling back to a temp file)");
            }
            if (how != null) {
                try {
                    System.load(file.toAbsolutePath().toString());
                    String source = how + " of jar resource " + resource + " at " + file + " (SHA-256 " + sha256 + ")";
                    checkVersion(jarVersion, source);
                    return source;
                } catch (UnsatisfiedLinkError e) {
                    if (e.getMessage() != null && e.getMessage().startsWith("yilian: ")) {
                        throw e;
                    }
                    // e.g. "already loaded in another classloader" (a redeployed web
                    // application whose old class loader is not collected yet), or a
                    // cache on a noexec mount: a private copy of its own still works.
                    tried.add("System.load(\"" + file + "\") from the cache: " + e.getMessage() + noexecHint(e) + " (falling back to a temp file)");
                }
            }
        }

        // 2. A private temp copy, deleted once mapped (the cache is unusable).
        Path file;
        try {
            file = extractTemp(bytes, jarVersion);
        } catch (IOException e) {
            tried.add("extracting " + resource + " to a temp directory under " + System.getProperty("java.io.tmpdir") + ": " + e);
            throw failed(jarVersion, platform, tried);
        }
        try {
            System.load(file.toAbsolutePath().toString());
        } catch (UnsatisfiedLinkError e) {
            tried.add("System.load(\"" + file + "\") extracted from jar resource " + resource + ": " + e.getMessage() + noexecHint(e));
            deleteQuietly(file, true);
            throw failed(jarVersion, platform, tried);
        }
        // The mapping outlives the file on Unix: delete it now so no temp files pile up.
        if (!platform.startsWith("windows")) {
            deleteQuietly(file, true);
        } else {
            file.toFile().deleteOnExit();
        }
        String source = "extraction of jar resource " + resource + " to " + file;
        checkVersion(jarVersion, source);
        return source;
    }

    private static String noexecHint(UnsatisfiedLinkError e) {
        return String.valueOf(e.getMessage()).contains("failed to map segment")
                ? " (the directory is probably mounted noexec: set -D" + DIR_PROPERTY + " to one that allows executables)"
                : "";
    }

    /**
     * The per-user cache directory: {@code -Dyilian.native.dir}, else
     * {@code $XDG_CACHE_HOME/yilian/native} or {@code ~/.cache/yilian/native}
     * ({@code %LOCALAPPDATA%\yilian\native} on Windows,
     * {@code ~/Library/Caches/yilian/native} on macOS); null when there is no home.
     */
    static Path cacheDir() {
        String configured = System.getProperty(DIR_PROPERTY);
        if (configured != null && !configured.isEmpty()) {
            return Paths.get(configured);
        }
        String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
        String home = System.getProperty("user.home");
        if (os.startsWith("windows")) {
            String local = System.getenv("LOCALAPPDATA");
            return local != null && !local.isEmpty() ? Paths.get(local, "yilian", "native") : null;
        }
        if (home == null || home.isEmpty() || home.equals("?")) {
            return null;
        }
        if (os.startsWith("mac") || os.startsWith("darwin")) {
            return Paths.get(home, "Library", "Caches", "yilian", "native");
        }
        String xdg = System.getenv("XDG_CACHE_HOME");
        return xdg != null && xdg.startsWith("/") ? Paths.get(xdg, "yilian", "native") : Paths.get(home, ".cache", "yilian", "native");
    }

    /**
     * Makes {@code file} hold exactly {@code bytes}: an existing copy is used only
     * if its SHA-256 matches; otherwise (missing, truncated, corrupted) a new copy
     * is written to a temp file in the same directory and renamed over it
     * atomically, so a JVM starting at the same time sees either no file, the old
     * file or the whole new one, and a library another JVM has mapped is never
     * overwritten in place. Returns how the copy came about.
     */
    static String ensureCached(byte[] bytes, String sha256, Path dir, Path file) throws IOException {
        if (Files.isRegularFile(file) && Files.size(file) == bytes.length && sha256.equals(sha256(Files.readAllBytes(file)))) {
            return "the verified cached copy";
        }
        boolean existed = Files.exists(file);
        createPrivateDirectories(dir);
        Path tmp = Files.createTempFile(dir, ".extract-", ".tmp");
        try {
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
                ByteBuffer buf = ByteBuffer.wrap(bytes);
                while (buf.hasRemaining()) {
                    ch.write(buf);
                }
                ch.force(true);
            }
            try {
                Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (IOException e) {
                // Windows cannot replace a DLL another process has loaded: if that copy is good, use it.
                if (Files.isRegularFile(file) && sha256.equals(sha256(Files.readAllBytes(file)))) {
                    return "the verified cached copy";
                }
                throw e;
            }
        } finally {
            Files.deleteIfExists(tmp);
        }
        if (!sha256.equals(sha256(Files.readAllBytes(file)))) {
            throw new IOException("the cached copy " + file + " does not match its SHA-256 right after writing it");
        }
        return existed ? "a fresh cached copy (the cached file did not match its SHA-256 and was replaced)" : "a new cached copy";
    }

    /** Creates the directories, private to the user (rwx------) where the file system has POSIX permissions. */
    private static void createPrivateDirectories(Path dir) throws IOException {
        if (Files.isDirectory(dir)) {
            return;
        }
        try {
            Files.createDirectories(dir, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
        } catch (UnsupportedOperationException e) {
            Files.createDirectories(dir);
        }
    }

    private static byte[] readResource(String resource) throws IOException {
        try (InputStream in = NativeLoader.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IOException("resource vanished: " + resource);
            }
            ByteArrayOutputStream out = new ByteArrayOutputStream(1 << 20);
            byte[] buf = new byte[1 << 16];
            for (int n; (n = in.read(buf)) > 0; ) {
                out.write(buf, 0, n);
            }
            return out.toByteArray();
        }
    }

    static String sha256(byte[] bytes) {
        MessageDigest md;
        try {
            md = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every Java platform has SHA-256", e);
        }
        StringBuilder sb = new StringBuilder(64);
        for (byte b : md.digest(bytes)) {
            sb.append(Character.forDigit((b >> 4) & 0xf, 16)).append(Character.forDigit(b & 0xf, 16));
        }
        return sb.toString();
    }

    /** The platform folders this jar carries, for the error on an unsupported platform. */
    private static String platformsInJar() {
        List<String> found = new ArrayList<>();
        for (String p : new String[] {"linux-x86_64", "linux-aarch64", "linux-loongarch64", "windows-x86_64", "windows-x86", "osx-x86_64", "osx-aarch64"}) {
            if (NativeLoader.class.getResource("/META-INF/native/" + p + "/" + System.mapLibraryName(LIBRARY)) != null
                    || NativeLoader.class.getResource("/META-INF/native/" + p + "/lib" + LIBRARY + ".so") != null) {
                found.add(p);
            }
        }
        return found.isEmpty() ? "none" : String.join(", ", found);
    }

    /** A private copy in a fresh temp directory, so concurrent JVMs and class loaders never share it. */
    private static Path extractTemp(byte[] bytes, String version) throws IOException {
        Path dir = Files.createTempDirectory("yilian-native-");
        dir.toFile().deleteOnExit();
        String name = System.mapLibraryName(LIBRARY);
        int dot = name.lastIndexOf('.');
        Path file = Files.createTempFile(dir, name.substring(0, dot) + "-" + version + "-", name.substring(dot));
        try {
            Files.write(file, bytes);
        } catch (IOException e) {
            deleteQuietly(file, true);
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
