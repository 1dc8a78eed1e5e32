package org.yilian;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Many threads on few slots: no overbooking; close racing with calls; use after close. */
class ConcurrencyTest {
    static final int THREADS = 8;
    static final int SLOTS = 3;
    static final int CAPACITY = 12;

    static void assertConsistent(Availability a) {
        assertTrue(a.getBooked() + a.getHeld() <= a.getCapacity(), "overbooked: " + a);
        assertEquals(a.getCapacity(), a.getBooked() + a.getHeld() + a.getRemaining(), "places do not add up: " + a);
    }

    @Test
    @Timeout(120)
    void stormNeverOverbooks() throws Exception {
        try (Engine engine = TestSupport.openManual()) {
            engine.call("sync-schedule", TestSupport.schedule(CAPACITY, SLOTS));
            SlotHandle[] slots = new SlotHandle[SLOTS];
            for (int s = 0; s < SLOTS; s++) {
                slots[s] = engine.slot(TestSupport.slotId(s));
            }
            // Places we know are taken, per slot: +1 on each successful hold, -1 on each release.
            AtomicIntegerArray taken = new AtomicIntegerArray(SLOTS);
            AtomicInteger holds = new AtomicInteger();
            AtomicInteger full = new AtomicInteger();
            AtomicBoolean done = new AtomicBoolean();
            ConcurrentLinkedQueue<Throwable> failures = new ConcurrentLinkedQueue<>();
            ExecutorService pool = Executors.newFixedThreadPool(THREADS + 1);
            CountDownLatch start = new CountDownLatch(1);
            List<Future<?>> workers = new ArrayList<>();
            for (int t = 0; t < THREADS; t++) {
                final int thread = t;
                workers.add(pool.submit(() -> {
                    start.await();
                    ThreadLocalRandom rnd = ThreadLocalRandom.current();
                    List<long[]> mine = new ArrayList<>(); // {bookingId, slot}
                    for (int i = 0; i < 1500; i++) {
                        int s = rnd.nextInt(SLOTS);
                        // Distinct patients: one patient may hold one booking per slot only.
                        String patient = "T" + thread + "-P" + i;
                        try {
                            long bookingId;
                            if (rnd.nextInt(4) == 0) {
                                String timeSlot = String.format("%02d:00-%02d:00", 9 + s, 10 + s);
                                String data = engine.call("pre-book-slot", TestSupport.preBook(patient, timeSlot));
                                bookingId = Engine.parseBookingId(TestSupport.parse(data).get("booking_id").asText());
                            } else {
                                bookingId = engine.hold(slots[s], patient).getBookingId();
                            }
                            taken.incrementAndGet(s);
                            holds.incrementAndGet();
                            if (rnd.nextBoolean()) {
                                engine.confirm(bookingId);
                            }
                            mine.add(new long[] {bookingId, s});
                        } catch (YilianConflictException e) {
                            if (!e.getCode().equals("SLOT_FULL")) {
                                throw e;
                            }
                            full.incrementAndGet();
                        }
                        if (!mine.isEmpty() && rnd.nextInt(3) == 0) {
                            long[] b = mine.remove(rnd.nextInt(mine.size()));
                            if (rnd.nextBoolean()) {
                                engine.release(b[0]);
                            } else {
                                engine.call("cancel-slot", "{\"booking_id\":\"" + Engine.formatBookingId(b[0]) + "\"}");
                            }
                            taken.decrementAndGet((int) b[1]);
                        }
                    }
                    return null;
                }));
            }
            // A reader checks the sums while the storm runs.
            Future<?> reader = pool.submit(() -> {
                start.await();
                int samples = 0;
                while (!done.get()) {
                    for (SlotHandle s : slots) {
                        assertConsistent(engine.availability(s));
                    }
                    samples++;
                }
                return samples;
            });
            start.countDown();
            for (Future<?> w : workers) {
                try {
                    w.get(100, TimeUnit.SECONDS);
                } catch (Exception e) {
                    failures.add(e);
                }
            }
            done.set(true);
            reader.get(10, TimeUnit.SECONDS);
            pool.shutdown();
            assertTrue(failures.isEmpty(), "worker failures: " + failures);
            for (int s = 0; s < SLOTS; s++) {
                Availability a = engine.availability(slots[s]);
                assertConsistent(a);
                assertEquals(taken.get(s), a.getBooked() + a.getHeld(), "slot " + s + ": " + a);
            }
            assertTrue(full.get() > 0, "the storm never filled a slot: no contention was tested");
            assertTrue(holds.get() > SLOTS * CAPACITY, "too few holds succeeded: " + holds.get());
            engine.checkInvariants();
        }
    }

    @Test
    void useAfterClose() {
        Engine engine = TestSupport.openManual();
        engine.call("sync-schedule", TestSupport.schedule(2, 1));
        SlotHandle slot = engine.slot(TestSupport.SLOT_0900);
        Hold h = engine.hold(slot, "PAT001");
        engine.close();
        assertTrue(engine.isClosed());
        assertEquals("Engine[closed]", engine.toString());
        assertThrows(IllegalStateException.class, () -> engine.call("slot-info", "{}"));
        assertThrows(IllegalStateException.class, () -> engine.slot(TestSupport.SLOT_0900));
        assertThrows(IllegalStateException.class, () -> engine.hold(slot, "PAT002"));
        assertThrows(IllegalStateException.class, () -> engine.confirm(h.getBookingId()));
        assertThrows(IllegalStateException.class, () -> engine.release(h.getBookingId()));
        assertThrows(IllegalStateException.class, () -> engine.availability(slot));
        assertThrows(IllegalStateException.class, engine::checkInvariants);
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> engine.call(null, null));
        assertTrue(e.getMessage().contains("closed"), e.getMessage());
        engine.close(); // idempotent
    }

    @Test
    void closeFromAnotherThread() throws Exception {
        Engine engine = TestSupport.openManual();
        Thread t = new Thread(engine::close);
        t.start();
        t.join();
        assertThrows(IllegalStateException.class, () -> engine.call("engine-info", "{}"));
    }

    /**
     * Threads call while another closes: each call either completes or throws
     * IllegalStateException; none touches freed memory (which would crash the
     * JVM or throw something else). Repeated to vary the interleaving.
     */
    @Test
    @Timeout(120)
    void concurrentCloseWhileOthersCall() throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(6);
        AtomicInteger completed = new AtomicInteger();
        try {
            for (int round = 0; round < 25; round++) {
                Engine engine = TestSupport.openManual();
                engine.call("sync-schedule", TestSupport.schedule(1000, 1));
                SlotHandle slot = engine.slot(TestSupport.SLOT_0900);
                CountDownLatch running = new CountDownLatch(4);
                List<Future<String>> callers = new ArrayList<>();
                for (int t = 0; t < 4; t++) {
                    final int thread = t;
                    callers.add(pool.submit(() -> {
                        running.countDown();
                        for (int i = 0; ; i++) {
                            try {
                                switch (i % 4) {
                                    case 0:
                                        engine.release(engine.hold(slot, "R" + thread + "-" + i).getBookingId());
                                        break;
                                    case 1:
                                        engine.call("slot-info", "{\"slot_id\":\"" + TestSupport.SLOT_0900 + "\"}");
                                        break;
                                    case 2:
                                        assertConsistent(engine.availability(slot));
                                        break;
                                    default:
                                        engine.slot(TestSupport.SLOT_0900);
                                }
                                completed.incrementAndGet();
                            } catch (IllegalStateException closed) {
                                return closed.getMessage();
                            }
                        }
                    }));
                }
                running.await();
                Thread.sleep(round % 5);
                // Two closers at once: exactly one frees, both return once it is done.
                long start = System.nanoTime();
                Future<?> closer = pool.submit(engine::close);
                engine.close();
                closer.get(10, TimeUnit.SECONDS);
                long ms = (System.nanoTime() - start) / 1_000_000;
                // Calls in flight last microseconds: a slow close means callers starve it.
                assertTrue(ms < 5_000, "close took " + ms + " ms while others called");
                for (Future<String> c : callers) {
                    assertTrue(c.get(10, TimeUnit.SECONDS).contains("closed"));
                }
                assertTrue(engine.isClosed());
            }
            assertTrue(completed.get() > 0, "no call ever ran alongside close");
        } finally {
            pool.shutdownNow();
        }
    }
}
