package org.yilian;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.util.Collections;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Who frees a translator's native table: close() (once, however often it is
 * called) or, for a translator dropped without close(), the cleaner. Counted
 * by the JNI library's own tally of live translator handles. Every other test
 * closes its translators, so only these tests move the tally.
 */
class LabTranslatorCleanerTest {
    private static final Map<String, String> WBC = Collections.singletonMap("WBC", "6.1");
    private Engine engine;

    @BeforeEach
    void open() throws IOException {
        engine = TestSupport.openManual();
        LabTest.setup(engine);
    }

    @AfterEach
    void close() {
        engine.close();
    }

    private static long live() {
        return NativeMethods.liveLabTranslators();
    }

    @Test
    void closeTwiceFreesOnce() {
        long before = live();
        int registered = NativeCleaner.registered();
        LabTranslator t = engine.labTranslator("C001", "H001");
        assertEquals(before + 1, live());
        assertEquals(registered + 1, NativeCleaner.registered());
        t.close();
        assertTrue(t.isClosed());
        assertEquals(before, live());
        // close() took the cleaner's registration: the cleaner will not free it again.
        assertEquals(registered, NativeCleaner.registered());
        t.close();
        assertEquals(before, live());
    }

    @Test
    void useAfterCloseThrowsIllegalState() {
        LabTranslator t = engine.labTranslator("C001", "H001");
        assertEquals("C001-0101", t.translate(WBC).keySet().iterator().next());
        t.close();
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> t.translate(WBC));
        assertTrue(e.getMessage().contains("lab translator is closed"), e.getMessage());
        assertThrows(IllegalStateException.class, () -> t.translate(WBC, false));
        assertThrows(IllegalStateException.class, () -> t.lookup("WBC"));
        assertThrows(IllegalStateException.class, t::size);
        // Plain accessors keep working.
        assertEquals("C001", t.getInstitutionId());
        assertTrue(t.toString().contains("closed"), t.toString());
    }

    /** Makes {@code unclosed} translators that are used and dropped, and {@code closed} that are closed and dropped. */
    private void makeAndDrop(int unclosed, int closed) {
        for (int i = 0; i < unclosed; i++) {
            // Used once through a temporary: the JIT may find it unreachable
            // while translate runs, which must not break the call.
            assertEquals("6.1", engine.labTranslator("C001", "H001").translate(WBC).get("C001-0101"));
        }
        for (int i = 0; i < closed; i++) {
            try (LabTranslator t = engine.labTranslator("C001", null)) {
                assertEquals(1, t.translate(Collections.singletonMap("STD-HEM-001", "1")).size());
            }
        }
    }

    @Test
    void unclosedTranslatorsAreFreedByTheCleaner() throws InterruptedException {
        int n = 200;
        long before = live();
        long cleanedBefore = NativeCleaner.cleanedUnclosed();
        makeAndDrop(n, n);
        assertEquals(before + n, live(), "the closed ones are freed at once, the others are still live");
        // Collected translators are freed on the cleaner thread; give the GC a few rounds.
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (live() > before && System.nanoTime() < deadline) {
            System.gc();
            Thread.sleep(20);
        }
        assertEquals(before, live(), "translators dropped without close() are freed");
        // Exactly the unclosed ones went through the cleaner: the closed ones were
        // deregistered by close() and freed once, never again.
        assertEquals(n, NativeCleaner.cleanedUnclosed() - cleanedBefore);
    }

    private static boolean cleanerThreadAlive() {
        return Thread.getAllStackTraces().keySet().stream().anyMatch(t -> t.getName().equals("yilian-cleaner") && t.isAlive());
    }

    /** Waits up to 30 s (with GC rounds, so dropped translators are cleaned) for {@code done}. */
    private static boolean await(java.util.function.BooleanSupplier done) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!done.getAsBoolean() && System.nanoTime() < deadline) {
            System.gc();
            Thread.sleep(50);
        }
        return done.getAsBoolean();
    }

    /**
     * With nothing left to clean the thread ends (an undeployed jar's classes
     * can then be unloaded), and the next translator starts it again: a
     * translator dropped after that is still freed.
     */
    @Test
    void theCleanerThreadEndsWhenIdleAndComesBack() throws InterruptedException {
        long before = live();
        makeAndDrop(3, 3);
        assertTrue(await(() -> NativeCleaner.registered() == 0), "every translator was closed or collected");
        assertTrue(await(() -> !NativeCleaner.running() && !cleanerThreadAlive()), "the idle cleaner thread ended");
        assertEquals(before, live());
        makeAndDrop(1, 0);
        assertTrue(NativeCleaner.running());
        assertTrue(cleanerThreadAlive());
        assertTrue(await(() -> live() == before), "a translator dropped after the restart is freed");
    }

    @Test
    void closeRacingWithCallsFreesOnceAndAfterThem() throws InterruptedException {
        long before = live();
        LabTranslator t = engine.labTranslator("C001", "H001");
        AtomicReference<Throwable> failure = new AtomicReference<>();
        Thread[] callers = new Thread[4];
        for (int i = 0; i < callers.length; i++) {
            callers[i] = new Thread(() -> {
                try {
                    for (int k = 0; k < 10_000; k++) {
                        if (t.translate(WBC).size() != 1) {
                            throw new AssertionError("a call during close gave a wrong answer");
                        }
                    }
                } catch (IllegalStateException closed) {
                    // Turned away once closing started: the only allowed failure.
                } catch (Throwable other) {
                    failure.compareAndSet(null, other);
                }
            });
            callers[i].start();
        }
        Thread closer = new Thread(t::close);
        closer.start();
        t.close();
        closer.join();
        // Both close() calls returned: the table is already freed.
        assertEquals(before, live());
        for (Thread c : callers) {
            c.join();
        }
        assertNull(failure.get());
        assertEquals(before, live());
    }
}
