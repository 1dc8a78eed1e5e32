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
 * unreachable. The thread ends once no registration is left and none came
 * for {@link #IDLE_MS}, so an application server that undeploys the jar can
 * unload its classes (a thread that runs forever would keep them); the next
 * registration starts a new one.
 */
final class NativeCleaner {
    private static final ReferenceQueue<Object> QUEUE = new ReferenceQueue<>();
    /** Keeps each registration reachable until it has run or been cleaned. */
    private static final Set<Cleanable> LIVE = ConcurrentHashMap.newKeySet();
    /** Test hook: actions run by the cleaner thread (owners collected without close()). */
    private static final AtomicLong CLEANED_UNCLOSED = new AtomicLong();
    /** How long the thread waits with nothing registered before it ends. */
    static final long IDLE_MS = 1000;
    /** Guarded by the class monitor: whether a cleaner thread is serving. */
    private static boolean started;

    private NativeCleaner() {}

    /** Runs {@code action} once: on {@link Cleanable#clean()}, or after {@code owner} is unreachable. */
    static Cleanable register(Object owner, Runnable action) {
        if (action == null) {
            throw new NullPointerException("action must not be null");
        }
        Cleanable c = new Cleanable(owner, action);
        // Added before the check: a thread ending now either sees it (and
        // stays) or has cleared `started` (and a new one starts here).
        LIVE.add(c);
        start();
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

    /** Test hook: whether the cleaner thread is serving. */
    static synchronized boolean running() {
        return started;
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

    /** Ends the thread if nothing is registered; under the monitor {@link #start()} takes. */
    private static synchronized boolean idleExit() {
        if (!LIVE.isEmpty()) {
            return false;
        }
        started = false;
        return true;
    }

    private static void drain() {
        while (true) {
            try {
                Reference<?> r = QUEUE.remove(IDLE_MS);
                if (r == null) {
                    if (idleExit()) {
                        return;
                    }
                } else if (((Cleanable) r).run()) {
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
