package org.yilian;

/**
 * 9xxx: a bug in the library: a caught Rust panic ({@code PANIC}, 9002) or a
 * broken internal invariant ({@code INTERNAL}, 9001).
 *
 * <p>It extends {@link YilianException} (so {@link RuntimeException}), not
 * {@link java.lang.Error}: the panic is caught at the native boundary and the
 * engine stays usable (the core's locks do not poison), so it is a failed call,
 * not a broken JVM. Middleware that wraps calls in {@code catch
 * (YilianException e)} then reports it with its code like any other failure,
 * as the C API (error code 9002) and the Python binding
 * ({@code yilian.InternalError}, a {@code YilianError}) do, instead of letting
 * an {@code Error} kill a worker thread. The name keeps "Error" because it
 * always means a defect to report.
 */
public class YilianInternalError extends YilianException {
    private static final long serialVersionUID = 1L;

    public YilianInternalError(String code, int numericCode, String message, String messageZh) {
        super(code, numericCode, message, messageZh);
    }
}
