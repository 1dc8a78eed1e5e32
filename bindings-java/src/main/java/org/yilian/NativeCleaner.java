package org.yilian;

import java.lang.ref.PhantomReference;
import java.lang.ref.Reference;
import java.lang.ref.ReferenceQueue;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Frees native memory of objects that become unreachable without
 * {@code close()}: the Java 8 form of {@code java.lang.ref.Cleaner} (Java 9+,
 * which this jar cannot use: its bytecode is Java 8), with the same shape and
 * the same rules. {@link #register} ties an action to an owner; the action
 * runs exactly once, either when the owner calls {@link Cleanable#clean()}
 * (from {@code close()}) or, after the owner is phantom reachable, on the
 * daemon thread {@code yilian-cleaner}, started on the first registration.
 * The action must not refer to its owner, or the owner never becomes
 * unreachable.
 */
final class NativeCleaner {
    private static final ReferenceQueue<Object> QUEUE = new ReferenceQueue<>();
    /** Keeps each registration reachable until it has run or been cleaned. */
    private static final Set<Cleanable> LIVE = ConcurrentHashMap.newKeySet();
    /** Test hook: actions run by the cleaner thread (owners collected without close()). */
    private static final AtomicLong CLEANED_UNCLOSED = new AtomicLong();
    private static volatile boolean started;

    private NativeCleaner() {}

    /** Runs {@code action} once: on {@link Cleanable#clean()}, or after {@code owner} is unreachable. */
    static Cleanable register(Object owner, Runnable action) {
        if (action == null) {
            throw new NullPointerException("action must not be null");
        }
        Cleanable c = new Cleanable(owner, action);
        LIVE.add(c);
        if (!started) {
            start();
        }
        return c;
    }

    /** Test hook: how many registrations have not run yet. */
    static int registered() {
        return LIVE.size();
    }

    /** Test hook: how many actions the cleaner thread has run. */
    static long cleanedUnclosed() {
        return CLEANED_UNCLOSED.get();
    }

    private static synchronized void start() {
        if (started) {
            return;
        }
        Thread t = new Thread(NativeCleaner::drain, "yilian-cleaner");
        t.setDaemon(true);
        // Holds no application class loader of its own (only this class's).
        t.setContextClassLoader(null);
        t.start();
        started = true;
    }

    private static void drain() {
        while (true) {
            try {
                Reference<?> r = QUEUE.remove();
                if (((Cleanable) r).run()) {
                    CLEANED_UNCLOSED.incrementAndGet();
                }
            } catch (InterruptedException e) {
                // Nobody but the JVM may stop this thread; keep serving.
            } catch (Throwable t) {
                // An action failed (e.g. OutOfMemoryError): the next ones still run.
            }
        }
    }

    /** One registration; {@link #clean()} runs its action now unless it already ran. */
    static final class Cleanable extends PhantomReference<Object> {
        private final Runnable action;

        private Cleanable(Object owner, Runnable action) {
            super(owner, QUEUE);
            this.action = action;
        }

        /** Runs the action now if it has not run; never twice, whichever thread asks. */
        void clean() {
            run();
        }

        private boolean run() {
            // Removal from LIVE is the once-only gate between clean() and the cleaner thread.
            if (!LIVE.remove(this)) {
                return false;
            }
            clear();
            action.run();
            return true;
        }
    }
}
