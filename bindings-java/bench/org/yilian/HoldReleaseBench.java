package org.yilian;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * ffi_reserve for Java (notes/perf.md §3, §5.4): typed hold + release through
 * JNI against the same logic in pure Java (ConcurrentHashMap + atomics), and
 * the same loop inside Rust with no JNI crossing, interleaved A B C A B C over
 * several rounds in one JVM. Reports medians, the JNI / pure-Java ratio and
 * the binding's own cost per call ((JNI pair - in-Rust pair) / 2).
 *
 * <p>In package org.yilian for the package-private in-Rust loop; run by bench.sh.
 */
public final class HoldReleaseBench {
    static final int SLOTS = 16;
    static final int PATIENTS = 1024;
    static final long TTL_MS = 900_000;

    public static void main(String[] args) throws Exception {
        int ops = args.length > 0 ? Integer.parseInt(args[0]) : 200_000;
        int rounds = args.length > 1 ? Integer.parseInt(args[1]) : 5;
        int batch = Math.min(ops, 10_000);
        System.out.println("yilian " + Engine.version() + ", " + System.getProperty("java.vm.name") + " " + System.getProperty("java.version")
                + ", " + Runtime.getRuntime().availableProcessors() + " cpus; per round and thread " + ops + " hold+release pairs per variant, "
                + "interleaved in batches of " + batch + "; " + rounds + " rounds (+1 warm-up)");
        System.out.println("each hold carries a patient id and a fresh request id (an idempotency record); a pair is 2 calls");
        for (int threads : new int[] {1, 2}) {
            double[][] ns = new double[3][rounds];
            for (int r = -1; r < rounds; r++) { // round -1 warms up the JIT and the allocators
                double[] round = runRound(threads, ops, batch);
                if (r >= 0) {
                    for (int v = 0; v < 3; v++) {
                        ns[v][r] = round[v];
                    }
                }
            }
            double jni = median(ns[0]);
            double java = median(ns[1]);
            double core = median(ns[2]);
            double[] ratios = new double[rounds];
            for (int r = 0; r < rounds; r++) {
                ratios[r] = ns[0][r] / ns[1][r];
            }
            System.out.printf("%d thread(s), agg ns per hold+release pair (median of %d rounds):%n", threads, rounds);
            System.out.printf("  JNI typed (Engine.hold/release)   %8.1f   rounds %s%n", jni, fmt(ns[0]));
            System.out.printf("  pure Java (CHM + atomics)         %8.1f   rounds %s%n", java, fmt(ns[1]));
            System.out.printf("  same loop inside Rust (no JNI)    %8.1f   rounds %s%n", core, fmt(ns[2]));
            System.out.printf("  ratio JNI / pure Java: %.2fx (median of per-round ratios); JNI - Rust per call: %.0f ns%n",
                    median(ratios), (jni - core) / 2);
        }
        // A cheap call shows the fixed cost of crossing: JNI transition, read
        // lock, argument and result copies, the boundary.
        double[][] av = new double[2][rounds];
        for (int r = -1; r < rounds; r++) {
            double[] pair = runAvailability(ops * 5);
            if (r >= 0) {
                av[0][r] = pair[0];
                av[1][r] = pair[1];
            }
        }
        System.out.printf("availability (a read), 1 thread, ns per call (median of %d rounds):%n", rounds);
        System.out.printf("  JNI typed (Engine.availability)   %8.1f   rounds %s%n", median(av[0]), fmt(av[0]));
        System.out.printf("  same loop inside Rust (no JNI)    %8.1f   rounds %s%n", median(av[1]), fmt(av[1]));
        System.out.printf("  fixed binding cost per call: %.0f ns%n", median(av[0]) - median(av[1]));
    }

    /**
     * One round: fresh engines and a fresh Java pool, then A B C batches in
     * turn until each variant has done {@code ops} pairs per thread, so load
     * from other processes falls on all three alike. Returns agg ns per pair.
     */
    static double[] runRound(int threads, int ops, int batch) throws Exception {
        SlotHandle[] jniSlots = new SlotHandle[SLOTS];
        SlotHandle[] coreSlots = new SlotHandle[SLOTS];
        String[][] patients = patients(threads);
        JavaPool pool = new JavaPool(SLOTS, 100_000);
        double[] total = new double[3];
        try (Engine jniEngine = openEngine(jniSlots); Engine coreEngine = openEngine(coreSlots)) {
            NativeHandle core = coreEngine.handle();
            for (int done = 0; done < ops; done += batch) {
                final int from = done;
                final int n = Math.min(batch, ops - done);
                total[0] += timed(threads, n, t -> {
                    String[] mine = patients[t];
                    String prefix = "jni-" + t + "-";
                    for (int i = from; i < from + n; i++) {
                        Hold h = jniEngine.hold(jniSlots[i % SLOTS], mine[i % PATIENTS], prefix + i, null, null);
                        jniEngine.release(h.getBookingId());
                    }
                }) * n;
                total[1] += timed(threads, n, t -> {
                    String[] mine = patients[t];
                    String prefix = "java-" + t + "-";
                    for (int i = from; i < from + n; i++) {
                        long id = pool.hold(i % SLOTS, mine[i % PATIENTS], prefix + i);
                        pool.release(id);
                    }
                }) * n;
                total[2] += timed(threads, n, t -> {
                    long stamp = core.enter();
                    try {
                        NativeMethods.benchCoreHoldRelease(core.ptr(), SLOTS, from, n, PATIENTS, t);
                    } finally {
                        core.lock.unlockRead(stamp);
                    }
                }) * n;
            }
        }
        return new double[] {total[0] / ops, total[1] / ops, total[2] / ops};
    }

    /** {JNI ns per call, in-Rust ns per call} for n availability reads. */
    static double[] runAvailability(int n) {
        SlotHandle[] slots = new SlotHandle[SLOTS];
        try (Engine engine = openEngine(slots)) {
            long sum = 0;
            long start = System.nanoTime();
            for (int i = 0; i < n; i++) {
                sum += engine.availability(slots[i % SLOTS]).getRemaining();
            }
            double jni = (double) (System.nanoTime() - start) / n;
            if (sum < 0) {
                throw new AssertionError(); // keeps the loop's result alive
            }
            NativeHandle h = engine.handle();
            long stamp = h.enter();
            try {
                return new double[] {jni, (double) NativeMethods.benchCoreAvailability(h.ptr(), SLOTS, n) / n};
            } finally {
                h.lock.unlockRead(stamp);
            }
        }
    }

    static String fmt(double[] xs) {
        StringBuilder sb = new StringBuilder();
        for (double x : xs) {
            sb.append(sb.length() == 0 ? "" : " ").append(String.format("%.0f", x));
        }
        return sb.toString();
    }

    static double median(double[] xs) {
        double[] c = xs.clone();
        Arrays.sort(c);
        return c.length % 2 == 1 ? c[c.length / 2] : (c[c.length / 2 - 1] + c[c.length / 2]) / 2;
    }

    static String schedule() {
        StringBuilder devices = new StringBuilder();
        for (int d = 0; d < SLOTS / 4; d++) {
            devices.append(d == 0 ? "" : ",").append("{\"device_id\":\"DEV00").append(d)
                    .append("\",\"project_id\":\"P001\",\"date\":\"2024-10-30\",\"capacity\":100000,\"available_slots\":[")
                    .append("{\"start_time\":\"09:00\",\"end_time\":\"10:00\"},{\"start_time\":\"10:00\",\"end_time\":\"11:00\"},")
                    .append("{\"start_time\":\"11:00\",\"end_time\":\"12:00\"},{\"start_time\":\"14:00\",\"end_time\":\"15:00\"}]}");
        }
        return "{\"hospital_id\":\"H001\",\"schedule_data\":[" + devices + "]}";
    }

    static Engine openEngine(SlotHandle[] slots) {
        Engine e = Engine.open("{\"clock_start\":\"2024-10-29T09:00:00+08:00\",\"clock\":\"manual\"}");
        e.call("sync-schedule", schedule());
        String[] windows = {"09001000", "10001100", "11001200", "14001500"};
        for (int i = 0; i < SLOTS; i++) {
            slots[i] = e.slot("EX-H001-DEV00" + (i / 4) + "-20241030-" + windows[i % 4]);
        }
        return e;
    }

    static String[][] patients(int threads) {
        String[][] p = new String[threads][PATIENTS];
        for (int t = 0; t < threads; t++) {
            for (int i = 0; i < PATIENTS; i++) {
                p[t][i] = "T" + t + "-PAT" + i;
            }
        }
        return p;
    }

    interface Body {
        void run(int thread) throws Exception;
    }

    /** Runs {@code body} on {@code threads} threads started together; returns agg ns per pair. */
    static double timed(int threads, int ops, Body body) throws Exception {
        CountDownLatch ready = new CountDownLatch(threads);
        CountDownLatch go = new CountDownLatch(1);
        List<Thread> ts = new ArrayList<>();
        List<Throwable> errors = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            final int thread = t;
            Thread th = new Thread(() -> {
                ready.countDown();
                try {
                    go.await();
                    body.run(thread);
                } catch (Throwable e) {
                    synchronized (errors) {
                        errors.add(e);
                    }
                }
            });
            th.start();
            ts.add(th);
        }
        ready.await();
        long start = System.nanoTime();
        go.countDown();
        for (Thread th : ts) {
            th.join();
        }
        long elapsed = System.nanoTime() - start;
        if (!errors.isEmpty()) {
            throw new RuntimeException("benchmark thread failed", errors.get(0));
        }
        return (double) elapsed / ((long) ops * threads);
    }

    /**
     * The baseline: the hold rules of the core in plain Java. A place is a CAS
     * on the slot's counter; one booking per patient per slot; each booking
     * keeps its patient and expiry and stays in the map (as the core keeps
     * history); a request id replays the first answer.
     */
    static final class JavaPool {
        static final class Slot {
            final int capacity;
            final AtomicInteger taken = new AtomicInteger();
            final ConcurrentHashMap<String, Long> patients = new ConcurrentHashMap<>();

            Slot(int capacity) {
                this.capacity = capacity;
            }
        }

        static final class Booking {
            final long id;
            final int slot;
            final String patient;
            final long expiresMs;
            final AtomicInteger status = new AtomicInteger(); // 0 held, 2 released

            Booking(long id, int slot, String patient, long expiresMs) {
                this.id = id;
                this.slot = slot;
                this.patient = patient;
                this.expiresMs = expiresMs;
            }
        }

        final Slot[] slots;
        final AtomicLong nextId = new AtomicLong(1);
        final ConcurrentHashMap<Long, Booking> bookings = new ConcurrentHashMap<>();
        final ConcurrentHashMap<String, Long> idempotency = new ConcurrentHashMap<>();
        volatile long nowMs = 1730163600000L; // a manual clock, as the engine's

        JavaPool(int slots, int capacity) {
            this.slots = new Slot[slots];
            for (int i = 0; i < slots; i++) {
                this.slots[i] = new Slot(capacity);
            }
        }

        long hold(int slot, String patient, String requestId) {
            if (requestId != null) {
                Long prior = idempotency.get(requestId);
                if (prior != null) {
                    return prior;
                }
            }
            Slot s = slots[slot];
            if (s.patients.putIfAbsent(patient, 0L) != null) {
                throw new IllegalStateException("DUPLICATE_BOOKING");
            }
            for (;;) {
                int taken = s.taken.get();
                if (taken >= s.capacity) {
                    s.patients.remove(patient, 0L);
                    throw new IllegalStateException("SLOT_FULL");
                }
                if (s.taken.compareAndSet(taken, taken + 1)) {
                    break;
                }
            }
            long id = nextId.getAndIncrement();
            bookings.put(id, new Booking(id, slot, patient, nowMs + TTL_MS));
            s.patients.put(patient, id);
            if (requestId != null) {
                idempotency.put(requestId, id);
            }
            return id;
        }

        void release(long id) {
            Booking b = bookings.get(id);
            if (b == null) {
                throw new IllegalStateException("BOOKING_NOT_FOUND");
            }
            if (!b.status.compareAndSet(0, 2)) {
                throw new IllegalStateException("ALREADY_CANCELLED");
            }
            Slot s = slots[b.slot];
            s.patients.remove(b.patient, id);
            s.taken.decrementAndGet();
        }
    }
}
