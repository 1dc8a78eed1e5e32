package org.yilian;

import java.lang.ref.PhantomReference;
import java.lang.ref.Reference;
import java.lang.ref.ReferenceQueue;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A yilian engine (医联): the shared slot pool and everything hanging off it.
 * Open one per process from a JSON config, share it between threads, close it
 * once (try-with-resources).
 *
 * <pre>{@code
 * try (Engine engine = Engine.open("{\"data_dir\":\"/var/lib/yilian\"}")) {
 *     engine.call("sync-schedule", scheduleJson);
 *     SlotHandle slot = engine.slot("EX-H001-DEV001-20241030-09001000");
 *     Hold hold = engine.hold(slot, "PAT001");
 *     engine.confirm(hold.getBookingId());
 * }
 * }</pre>
 *
 * <p>Two layers: {@link #call(String, String)} takes the source's interface
 * names and JSON shapes ({@code pre-book-slot}, {@code book-slot}, ...) and
 * returns the {@code data} JSON text; the typed hot path ({@link #hold},
 * {@link #confirm}, {@link #release}, {@link #availability}) skips JSON.
 * Failures throw {@link YilianException} subclasses; a null argument throws
 * {@link NullPointerException}; any call after {@link #close()} throws
 * {@link IllegalStateException}.
 *
 * <p>Thread-safe. Native calls hold a read lock on the handle; {@code close()}
 * first turns new calls away, then takes the write lock (waiting for calls in
 * flight) before freeing it, so a close racing with calls on other threads
 * never frees memory in use.
 */
public final class Engine implements AutoCloseable {
    private final NativeHandle handle;
    private final LeakGuard leakGuard;

    private Engine(long ptr) {
        this.handle = new NativeHandle(ptr, NativeMethods::engineClose, "the yilian engine is closed");
        this.leakGuard = new LeakGuard(this, handle);
    }

    /**
     * Opens an engine. {@code "{}"}: in memory. {@code {"data_dir": "..."}}: the
     * durable store in that directory, recovered as it was left. See the README
     * for every key (clock, institution, role, hold time-to-live, ...).
     *
     * @throws YilianInputException for a bad config ({@code INVALID_CONFIG})
     * @throws YilianStorageException if the store cannot be opened ({@code STORE_LOCKED} while another engine has it)
     * @throws UnsatisfiedLinkError if the native library cannot be loaded (the message says what was tried)
     */
    public static Engine open(String configJson) {
        NativeLoader.ensureLoaded();
        LeakGuard.reap();
        return new Engine(NativeMethods.engineOpen(configJson));
    }

    /** The library's version (yilian-core's), e.g. {@code 0.1.0}; equals the jar's. */
    public static String version() {
        NativeLoader.ensureLoaded();
        return NativeMethods.coreVersion();
    }

    /** The command names {@link #call} understands. */
    public static List<String> commands() {
        NativeLoader.ensureLoaded();
        return Collections.unmodifiableList(Arrays.asList(NativeMethods.commands()));
    }

    /** The command layer's text of a booking id: 1 → {@code "B000001"}. */
    public static String formatBookingId(long bookingId) {
        NativeLoader.ensureLoaded();
        return NativeMethods.formatBookingId(bookingId);
    }

    /** The typed id of a command-layer booking id: {@code "B000001"} → 1. */
    public static long parseBookingId(String bookingId) {
        NativeLoader.ensureLoaded();
        return NativeMethods.parseBookingId(bookingId);
    }

    /**
     * Calls a command with a JSON request and returns the {@code data} of the
     * success envelope as JSON text.
     *
     * @throws YilianException (its family's subclass) when the envelope is an error
     */
    public String call(String command, String requestJson) {
        long stamp = handle.enter();
        try {
            return NativeMethods.engineCall(handle.ptr(), command, requestJson);
        } finally {
            handle.lock.unlockRead(stamp);
        }
    }

    /**
     * Calls a command as a principal the host states (S1), e.g.
     * {@code {"role":"community","institution_id":"C001","operator":"王护士"}}
     * (roles: platform, hospital, community, lab, regulator). Request fields
     * that name the acting party ({@code clinic_id}, {@code institution_id},
     * {@code lab_id}, {@code hospital_id} where it means the caller) must name
     * that principal, else {@link YilianPermissionException} ({@code FORBIDDEN})
     * and nothing changes. {@link #call(String, String)} acts as the engine's
     * own principal (the config's {@code role} and {@code institution_id}).
     *
     * @throws YilianException (its family's subclass) when the envelope is an error
     */
    public String callAs(String principalJson, String command, String requestJson) {
        long stamp = handle.enter();
        try {
            return NativeMethods.engineCallAs(handle.ptr(), principalJson, command, requestJson);
        } finally {
            handle.lock.unlockRead(stamp);
        }
    }

    /** Resolves a slot id once, for the typed hot path. */
    public SlotHandle slot(String slotId) {
        long stamp = handle.enter();
        try {
            int index = NativeMethods.slotHandle(handle.ptr(), slotId);
            return new SlotHandle(this, index, slotId);
        } finally {
            handle.lock.unlockRead(stamp);
        }
    }

    /** Holds one place for a patient (预占) until the hold's time-to-live passes. */
    public Hold hold(SlotHandle slot, String patientId) {
        return hold(slot, patientId, null, null, null);
    }

    /**
     * Holds one place for a patient.
     *
     * @param requestId optional idempotency key: repeating it returns the first answer
     * @param clinicId  optional acting clinic
     * @param priority  optional: {@code normal} (default), {@code referral}, {@code special_needs}, {@code critical}, {@code surgery}
     * @throws YilianConflictException {@code SLOT_FULL}, {@code DUPLICATE_BOOKING}, ...
     */
    public Hold hold(SlotHandle slot, String patientId, String requestId, String clinicId, String priority) {
        int index = own(slot);
        long[] out = new long[1];
        long stamp = handle.enter();
        try {
            long bookingId = NativeMethods.hold(handle.ptr(), index, patientId, requestId, clinicId, priority, out);
            return new Hold(bookingId, out[0]);
        } finally {
            handle.lock.unlockRead(stamp);
        }
    }

    /** Confirms a hold; the booking is then kept until cancelled. */
    public void confirm(long bookingId) {
        confirm(bookingId, null);
    }

    /** Confirms a hold, idempotently under {@code requestId} (may be null). */
    public void confirm(long bookingId, String requestId) {
        onBooking(NativeMethods::confirm, bookingId, requestId);
    }

    /** Releases a hold or cancels a booking; the place returns to the pool (or the first waiter). */
    public void release(long bookingId) {
        release(bookingId, null);
    }

    /** Releases a hold or cancels a booking, idempotently under {@code requestId} (may be null). */
    public void release(long bookingId, String requestId) {
        onBooking(NativeMethods::release, bookingId, requestId);
    }

    /** The places of one slot now; never changes state. */
    public Availability availability(SlotHandle slot) {
        int index = own(slot);
        int[] out = new int[8];
        long stamp = handle.enter();
        try {
            NativeMethods.availability(handle.ptr(), index, out);
        } finally {
            handle.lock.unlockRead(stamp);
        }
        return new Availability(out[0], out[1], out[2], out[3], out[4], out[5], out[6] != 0, out[7] != 0);
    }

    /**
     * The printer's bytes of one specimen tube's label at the default size
     * (50 × 30 mm): {@code "tspl"} is GBK-encoded, {@code "zpl"} and
     * {@code "svg"} are UTF-8. The patient's name is masked. Never counts as a
     * print.
     *
     * @param barcode the specimen's barcode (from {@code specimen-print})
     * @param format  {@code "zpl"}, {@code "tspl"} or {@code "svg"}
     * @throws YilianNotFoundException {@code LAB_SPECIMEN_NOT_FOUND} for an unknown barcode
     * @throws YilianInputException {@code INVALID_FIELD} for an unknown format
     * @throws YilianPermissionException {@code LAB_FORBIDDEN} for another institution's tube
     */
    public byte[] specimenLabel(String barcode, String format) {
        long stamp = handle.enter();
        try {
            return NativeMethods.specimenLabel(handle.ptr(), barcode, format);
        } finally {
            handle.lock.unlockRead(stamp);
        }
    }

    /**
     * Compiles the translation of lab results into {@code institutionId}'s
     * sub-items (委托检验报告): standard sub-item codes, and the lab's own codes
     * when {@code labId} is given. A snapshot of the mapping now: make another
     * after the mapping changes. The translator owns native memory of its
     * own: close it (try-with-resources); one dropped unclosed is freed by a
     * cleaner after the garbage collector finds it. It stays usable after
     * this engine is closed.
     *
     * @param labId the lab whose own codes are understood, or null for standard codes only
     * @throws YilianNotFoundException {@code LAB_INST_ITEM_NOT_FOUND} when the institution has no sub-items
     */
    public LabTranslator labTranslator(String institutionId, String labId) {
        long stamp = handle.enter();
        long ptr;
        try {
            ptr = NativeMethods.labTranslatorNew(handle.ptr(), institutionId, labId);
        } finally {
            handle.lock.unlockRead(stamp);
        }
        return new LabTranslator(ptr, institutionId, labId);
    }

    /** Checks the pool's invariants (tests call it after storms). @throws YilianInternalError if one is broken */
    public void checkInvariants() {
        long stamp = handle.enter();
        try {
            NativeMethods.checkInvariants(handle.ptr());
        } finally {
            handle.lock.unlockRead(stamp);
        }
    }

    /** Whether {@link #close()} was called. */
    public boolean isClosed() {
        return handle.closing.get();
    }

    /**
     * Flushes and closes the engine and frees its native memory. The first call
     * does it (waiting for calls in flight on other threads); later calls,
     * from any thread, wait until it is done and return.
     */
    @Override
    public void close() {
        leakGuard.forget();
        handle.closeOnce();
    }

    @Override
    public String toString() {
        return "Engine[" + (isClosed() ? "closed" : "open") + "]";
    }

    /** Package-private for the benchmark: the handle is only valid under {@code lock}'s read lock. */
    NativeHandle handle() {
        return handle;
    }

    /** {@code NativeMethods.confirm} or {@code release}. */
    private interface BookingCall {
        void call(long ptr, long bookingId, String requestId);
    }

    /** Runs a call on one booking under the read lock; a method reference captures nothing, so this allocates nothing. */
    private void onBooking(BookingCall call, long bookingId, String requestId) {
        long stamp = handle.enter();
        try {
            call.call(handle.ptr(), bookingId, requestId);
        } finally {
            handle.lock.unlockRead(stamp);
        }
    }

    private int own(SlotHandle slot) {
        if (slot == null) {
            throw new NullPointerException("slot must not be null");
        }
        if (slot.owner != this) {
            throw new IllegalArgumentException("slot handle " + slot.getSlotId() + " belongs to another engine");
        }
        return slot.index;
    }

    /**
     * Backstop for engines dropped without {@code close()} (Java 8 has no
     * Cleaner): each {@link #open} closes the handles of collected engines, on
     * the caller's thread, so a durable store's lock is released eventually.
     */
    static final class LeakGuard extends PhantomReference<Engine> {
        private static final ReferenceQueue<Engine> QUEUE = new ReferenceQueue<>();
        /** Keeps the guards themselves reachable until their engine is closed or collected. */
        private static final Set<LeakGuard> LIVE = ConcurrentHashMap.newKeySet();

        private final NativeHandle handle;

        LeakGuard(Engine engine, NativeHandle handle) {
            super(engine, QUEUE);
            this.handle = handle;
            LIVE.add(this);
        }

        void forget() {
            if (LIVE.remove(this)) {
                clear();
            }
        }

        /** Closes the handles of engines collected without close(); returns how many. */
        static int reap() {
            int n = 0;
            for (Reference<? extends Engine> r; (r = QUEUE.poll()) != null; ) {
                LeakGuard g = (LeakGuard) r;
                if (LIVE.remove(g)) {
                    g.handle.closeOnce();
                    n++;
                }
            }
            return n;
        }
    }
}
