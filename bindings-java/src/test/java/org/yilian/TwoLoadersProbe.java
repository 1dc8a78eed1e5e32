package org.yilian;

import java.io.File;
import java.lang.reflect.Method;
import java.net.URL;
import java.net.URLClassLoader;

/**
 * Child-JVM main for {@link NativeLoaderTest}: loads the yilian classes (args:
 * the classes and test-classes directories) in two class loaders of their own,
 * as two web applications would, and in each opens the library and prints
 * {@code loader N: version V from HOW}.
 */
public final class TwoLoadersProbe {
    private TwoLoadersProbe() {}

    public static void main(String[] args) throws Exception {
        URL[] urls = new URL[args.length];
        for (int i = 0; i < args.length; i++) {
            urls[i] = new File(args[i]).toURI().toURL();
        }
        URLClassLoader[] loaders = {new URLClassLoader(urls, null), new URLClassLoader(urls, null)};
        for (int i = 0; i < loaders.length; i++) {
            Class<?> engine = Class.forName("org.yilian.Engine", true, loaders[i]);
            String version = (String) engine.getMethod("version").invoke(null);
            Method from = Class.forName("org.yilian.NativeLoader", true, loaders[i]).getDeclaredMethod("loadedFrom");
            from.setAccessible(true);
            System.out.println("loader " + (i + 1) + ": version " + version + " from " + from.invoke(null));
        }
    }
}
