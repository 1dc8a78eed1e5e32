package org.yilian;

/**
 * Child-JVM main for {@link NativeLoaderTest}: loads the library and prints
 * how ({@code loaded: ...}), or the loader's error twice ({@code ULE: ...},
 * then {@code again: ...}: a failed load must fail the same way later).
 */
public final class LoaderProbe {
    private LoaderProbe() {}

    public static void main(String[] args) {
        try {
            String v = Engine.version();
            System.out.println("loaded: " + NativeLoader.loadedFrom());
            System.out.println("version: " + v);
        } catch (UnsatisfiedLinkError e) {
            System.out.println("ULE: " + e.getMessage());
            try {
                Engine.open("{}");
            } catch (UnsatisfiedLinkError again) {
                System.out.println("again: " + again.getMessage());
            }
            System.exit(3);
        }
    }
}
