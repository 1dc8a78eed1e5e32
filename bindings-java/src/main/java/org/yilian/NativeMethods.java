package org.yilian;

/**
 * The native entry points of libyilian_jni (bindings-java/src/lib.rs). Package
 * private: the public API is {@link Engine}. Handles are {@code Box<Engine>}
 * pointers; every method throws the typed exception on failure. Load the
 * library with {@link NativeLoader#ensureLoaded()} before the first call.
 */
final class NativeMethods {
    private NativeMethods() {}

    static native String libraryVersion();

    static native String coreVersion();

    /** Every error code as {@code numeric:CODE:family}. */
    static native String[] errorCodes();

    static native String[] commands();

    static native String formatBookingId(long bookingId);

    static native long parseBookingId(String bookingId);

    static native long engineOpen(String configJson);

    /** Frees the handle: call once, when no other call can be using it. */
    static native void engineClose(long handle);

    static native String engineCall(long handle, String command, String requestJson);

    static native String engineCallAs(long handle, String principalJson, String command, String requestJson);

    static native int slotHandle(long handle, String slotId);

    /** Returns the booking id; writes the hold's expiry (UTC ms) to {@code out[0]}. */
    static native long hold(long handle, int slot, String patientId, String requestId, String clinicId, String priority, long[] out);

    static native void confirm(long handle, long bookingId, String requestId);

    static native void release(long handle, long bookingId, String requestId);

    /** Writes capacity, booked, held, remaining, reserved quota, waiting, tight, closed to {@code out[0..8]}. */
    static native void availability(long handle, int slot, int[] out);

    static native void checkInvariants(long handle);

    /** The printer's bytes of a specimen label at the default size (TSPL in GBK, ZPL and SVG in UTF-8). */
    static native byte[] specimenLabel(long handle, String barcode, String format);

    /** Compiles a lab translator; returns its {@code Box<LabTranslator>} handle (independent of the engine's). */
    static native long labTranslatorNew(long handle, String institutionId, String labId);

    /**
     * Frees a translator handle: call once, when no other call can be using it.
     * The calls on a translator take its Java {@code owner} only to keep it
     * reachable (and so its cleaner idle) until they return.
     */
    static native void labTranslatorClose(long translator);

    static native int labTranslatorSize(LabTranslator owner, long translator);

    /** The institution code of each lab code, null where unmapped; with {@code strict}, an unmapped code throws {@code LAB_ITEM_UNMAPPED}. */
    static native String[] labTranslate(LabTranslator owner, long translator, String[] codes, boolean strict);

    /** Institution code, institution name, standard code, unit, reference range; null when unmapped. */
    static native String[] labLookup(LabTranslator owner, long translator, String code);

    /** Test hook: translator handles made by {@link #labTranslatorNew} and not yet freed by {@link #labTranslatorClose}. */
    static native long liveLabTranslators();

    /** Benchmark hook: pairs {@code from..from+n} of the Java loop's hold+release, inside Rust with no JNI crossing; returns elapsed ns. */
    static native long benchCoreHoldRelease(long handle, int slots, int from, int n, int patients, int thread);

    /** Benchmark hook: {@code n} availability reads inside Rust, no JNI crossing; returns elapsed ns. */
    static native long benchCoreAvailability(long handle, int slots, int n);
}
