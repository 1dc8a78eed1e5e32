package org.yilian;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A compiled translation from the codes a lab reports in (standard sub-item
 * codes, and the lab's own sub-item codes when made with a lab id) to one
 * institution's sub-item codes. Made by {@link Engine#labTranslator}; a
 * snapshot of the mapping at that moment.
 *
 * <pre>{@code
 * try (LabTranslator t = engine.labTranslator("C001", "H001")) {
 *     Map<String, String> mine = t.translate(results, false); // {institution code: value}
 * }
 * }</pre>
 *
 * <p>Owns a native table: close it once done (try-with-resources). It holds no
 * lock of the engine's and outlives the engine's close. Thread-safe, like
 * {@link Engine}: calls hold a read lock on the handle and {@link #close()}
 * frees it under the write lock, exactly once; {@code close()} may be called
 * any number of times from any thread, and any other call after it throws
 * {@link IllegalStateException}.
 *
 * <p>A translator that becomes unreachable without {@code close()} is not
 * leaked: a cleaner (the Java 8 form of {@code java.lang.ref.Cleaner}, on the
 * daemon thread {@code yilian-cleaner}) frees its table some time after the
 * garbage collector finds it. That is a backstop, not a schedule: close
 * translators you are done with, so their memory goes back at once.
 */
public final class LabTranslator implements AutoCloseable {
    private final NativeHandle handle;
    /** Frees {@link #handle} once this translator is unreachable; {@code close()} does it first. */
    private final NativeCleaner.Cleanable cleanable;
    private final String institutionId;
    private final String labId;

    LabTranslator(long ptr, String institutionId, String labId) {
        this.handle = new NativeHandle(ptr, NativeMethods::labTranslatorClose, "the lab translator is closed");
        // The action is the handle's own method: it holds the handle, never this translator.
        this.cleanable = NativeCleaner.register(this, handle::closeOnce);
        this.institutionId = institutionId;
        this.labId = labId;
    }

    /**
     * Translates results {@code {lab code: value}} into {@code {institution
     * sub-item code: value}}, in the input's iteration order; values pass
     * through unchanged. Strict: the same as {@code translate(results, true)}.
     *
     * @throws YilianConflictException {@code LAB_ITEM_UNMAPPED} for a code the institution has not mapped
     */
    public Map<String, String> translate(Map<String, String> results) {
        return translate(results, true);
    }

    /**
     * Translates results {@code {lab code: value}} into {@code {institution
     * sub-item code: value}}, in the input's iteration order; values pass
     * through unchanged (null included). Returns a new unmodifiable map.
     *
     * @param strict true: a code the institution has not mapped throws
     *               {@link YilianConflictException} ({@code LAB_ITEM_UNMAPPED});
     *               false: it is left out
     * @throws NullPointerException if {@code results} or one of its codes is null
     */
    public Map<String, String> translate(Map<String, String> results, boolean strict) {
        if (results == null) {
            throw new NullPointerException("results must not be null");
        }
        List<String> values = new ArrayList<>(results.size());
        String[] codes = new String[results.size()];
        int n = 0;
        for (Map.Entry<String, String> e : results.entrySet()) {
            codes[n++] = e.getKey();
            values.add(e.getValue());
        }
        String[] inst;
        long stamp = handle.enter();
        try {
            inst = NativeMethods.labTranslate(this, handle.ptr(), codes, strict);
        } finally {
            handle.lock.unlockRead(stamp);
        }
        Map<String, String> out = new LinkedHashMap<>();
        for (int i = 0; i < n; i++) {
            if (inst[i] != null) {
                out.put(inst[i], values.get(i));
            }
        }
        return Collections.unmodifiableMap(out);
    }

    /**
     * The institution's sub-item for one lab code, or null when the
     * institution has not mapped it.
     *
     * @throws NullPointerException if {@code code} is null
     */
    public Entry lookup(String code) {
        String[] row;
        long stamp = handle.enter();
        try {
            row = NativeMethods.labLookup(this, handle.ptr(), code);
        } finally {
            handle.lock.unlockRead(stamp);
        }
        return row == null ? null : new Entry(row[0], row[1], row[2], row[3], row[4]);
    }

    /** How many codes {@link #translate} understands (lab codes and standard codes). */
    public int size() {
        long stamp = handle.enter();
        try {
            return NativeMethods.labTranslatorSize(this, handle.ptr());
        } finally {
            handle.lock.unlockRead(stamp);
        }
    }

    /** The institution whose sub-items results are translated into. */
    public String getInstitutionId() {
        return institutionId;
    }

    /** The lab whose own codes are understood, or null for standard codes only. */
    public String getLabId() {
        return labId;
    }

    /** Whether {@link #close()} was called. */
    public boolean isClosed() {
        return handle.closing.get();
    }

    /**
     * Frees the native table, waiting for calls in flight on other threads.
     * Idempotent and thread-safe: the table is freed exactly once, and every
     * call, from any thread, returns only once it is freed.
     */
    @Override
    public void close() {
        // Runs handle.closeOnce() now unless the cleaner already has; the
        // second closeOnce() makes a racing caller wait until the table is freed.
        cleanable.clean();
        handle.closeOnce();
    }

    @Override
    public String toString() {
        return "LabTranslator[institutionId=" + institutionId + ", labId=" + labId + ", " + (isClosed() ? "closed" : "open") + "]";
    }

    /*
     * Each native call takes this translator as its first argument, unused by
     * the native side: the JVM keeps a native method's arguments reachable
     * until it returns (Java 8 has no Reference.reachabilityFence). Otherwise
     * the JIT could treat a translator as unreachable once it has read
     * `handle`, e.g. in engine.labTranslator(...).translate(m), and the
     * cleaner would close the handle before the call took its read lock.
     */

    /** One institution sub-item a lab code translates to. Immutable. */
    public static final class Entry {
        private final String instCode;
        private final String instName;
        private final String stdCode;
        private final String unit;
        private final String refRange;

        Entry(String instCode, String instName, String stdCode, String unit, String refRange) {
            this.instCode = instCode;
            this.instName = instName;
            this.stdCode = stdCode;
            this.unit = unit;
            this.refRange = refRange;
        }

        /** The institution's own sub-item code. */
        public String getInstCode() {
            return instCode;
        }

        /** The institution's own sub-item name. */
        public String getInstName() {
            return instName;
        }

        /** The standard sub-item code. */
        public String getStdCode() {
            return stdCode;
        }

        /** The standard sub-item's unit; empty when it has none. */
        public String getUnit() {
            return unit;
        }

        /** The standard sub-item's reference range, e.g. {@code "1-9"}; empty when it has none. */
        public String getRefRange() {
            return refRange;
        }

        @Override
        public boolean equals(Object o) {
            if (!(o instanceof Entry)) {
                return false;
            }
            Entry e = (Entry) o;
            return instCode.equals(e.instCode) && instName.equals(e.instName) && stdCode.equals(e.stdCode) && unit.equals(e.unit)
                    && refRange.equals(e.refRange);
        }

        @Override
        public int hashCode() {
            return java.util.Objects.hash(instCode, instName, stdCode, unit, refRange);
        }

        @Override
        public String toString() {
            return "Entry[instCode=" + instCode + ", instName=" + instName + ", stdCode=" + stdCode + ", unit=" + unit + ", refRange=" + refRange
                    + "]";
        }
    }
}
