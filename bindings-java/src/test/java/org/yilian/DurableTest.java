package org.yilian;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** A durable engine keeps its state across close and reopen; a second opener is refused. */
class DurableTest {
    static String config(Path dir) {
        return "{\"data_dir\":" + TestSupport.JSON.valueToTree(dir.toString()) + ",\"clock_start\":\"2024-10-29T09:00:00+08:00\",\"clock\":\"manual\"}";
    }

    @Test
    void reopenRecoversBookings(@TempDir Path dir) {
        long held;
        try (Engine engine = Engine.open(config(dir))) {
            engine.call("sync-schedule", TestSupport.schedule(3, 1));
            SlotHandle slot = engine.slot(TestSupport.SLOT_0900);
            Hold booked = engine.hold(slot, "PAT001");
            engine.confirm(booked.getBookingId());
            held = engine.hold(slot, "PAT002").getBookingId();
            engine.call("pre-book-slot", TestSupport.preBook("PAT003", "09:00-10:00"));
            engine.release(held);
            assertEquals(new Availability(3, 1, 1, 1, 0, 0, true, false), engine.availability(slot));
        }
        try (Engine engine = Engine.open(config(dir))) {
            SlotHandle slot = engine.slot(TestSupport.SLOT_0900);
            Availability a = engine.availability(slot);
            assertEquals(1, a.getBooked(), a.toString());
            assertEquals(1, a.getHeld(), a.toString());
            JsonNode first = TestSupport.parse(engine.call("booking-info", "{\"booking_id\":\"B000001\"}"));
            assertEquals("booked", first.get("status").asText());
            JsonNode released = TestSupport.parse(engine.call("booking-info", "{\"booking_id\":\"" + Engine.formatBookingId(held) + "\"}"));
            assertEquals("cancelled", released.get("status").asText());
            // Numbering goes on after recovery.
            assertEquals(4, engine.hold(slot, "PAT004").getBookingId());
            engine.checkInvariants();
        }
    }

    @Test
    void secondOpenWhileOpenIsStoreLocked(@TempDir Path dir) {
        try (Engine engine = Engine.open(config(dir))) {
            YilianStorageException e = assertThrows(YilianStorageException.class, () -> Engine.open(config(dir)));
            assertEquals("STORE_LOCKED", e.getCode());
            assertEquals(7002, e.getNumericCode());
            engine.call("engine-info", "{}");
        }
        Engine.open(config(dir)).close(); // released by close
    }

    /**
     * close() from several threads at once: every caller returns only once the
     * engine is closed, so each may reopen the directory at once. (The race
     * this guards, a losing closer overtaking the winner between its claim and
     * its write lock, is rare; the test checks the promise, not the timing.)
     */
    @Test
    @Timeout(120)
    void everyConcurrentCloserReturnsAfterTheStoreIsReleased(@TempDir Path dir) throws Exception {
        String cfg = config(dir);
        for (int round = 0; round < 30; round++) {
            Engine engine = Engine.open(cfg);
            engine.call("sync-schedule", TestSupport.schedule(2, 1));
            java.util.concurrent.CyclicBarrier start = new java.util.concurrent.CyclicBarrier(3);
            java.util.List<Throwable> failures = java.util.Collections.synchronizedList(new java.util.ArrayList<>());
            Object reopen = new Object();
            Thread[] closers = new Thread[3];
            for (int t = 0; t < closers.length; t++) {
                closers[t] = new Thread(() -> {
                    try {
                        start.await();
                        engine.close();
                        synchronized (reopen) {
                            Engine.open(cfg).close();
                        }
                    } catch (Throwable e) {
                        failures.add(e);
                    }
                });
                closers[t].start();
            }
            for (Thread t : closers) {
                t.join();
            }
            assertTrue(failures.isEmpty(), "round " + round + ": " + failures);
        }
    }

    /** An engine dropped without close() is closed by the leak guard once collected, releasing its store. */
    @Test
    @Timeout(60)
    void leakedEngineIsClosedAfterCollection(@TempDir Path dir) throws InterruptedException {
        openAndDrop(config(dir));
        for (int attempt = 0; ; attempt++) {
            System.gc();
            Thread.sleep(50);
            try {
                Engine.open(config(dir)).close(); // open() reaps collected engines first
                return;
            } catch (YilianStorageException e) {
                assertEquals("STORE_LOCKED", e.getCode());
                assertTrue(attempt < 100, "the leaked engine was never closed");
            }
        }
    }

    private static void openAndDrop(String config) {
        Engine engine = Engine.open(config);
        engine.call("sync-schedule", TestSupport.schedule(1, 1));
    }
}
