package org.yilian;

import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.StampedLock;
import java.util.function.LongConsumer;

/**
 * A native pointer and its guard, for {@link Engine} and {@link LabTranslator}:
 * kept apart from its owner so a leak guard or cleaner can free it after the
 * owner is collected (the free action is a static native method, so it holds
 * no reference to the owner).
 *
 * <p>Native calls hold the read lock for their duration; {@link #closeOnce()}
 * frees under the write lock, so it waits for calls in flight and no call
 * ever sees a freed pointer.
 */
final class NativeHandle {
    final StampedLock lock = new StampedLock();
    final AtomicBoolean closing = new AtomicBoolean();
    /** 0 once freed. Read and written under the write lock to free it. */
    private long ptr;
    private final LongConsumer free;
    private final String closedMessage;

    NativeHandle(long ptr, LongConsumer free, String closedMessage) {
        this.ptr = ptr;
        this.free = free;
        this.closedMessage = closedMessage;
    }

    /**
     * Takes the read lock for one native call. Once closing starts, new calls
     * fail here without touching the lock: StampedLock lets readers barge, so
     * a steady stream of calls would otherwise starve close().
     */
    long enter() {
        if (closing.get()) {
            throw closed();
        }
        return lock.readLock();
    }

    /** The pointer; call between {@link #enter()} and {@code unlockRead}. */
    long ptr() {
        long p = ptr;
        if (p == 0) {
            throw closed();
        }
        return p;
    }

    /**
     * Frees the pointer unless it is freed already. Whoever first holds the
     * write lock (which waits for calls in flight) frees it and zeroes it;
     * everyone else then sees 0. So close(), a cleaner and a leak guard free it
     * exactly once, and no caller, from any thread, returns before it is freed
     * (a closed engine's store is then released).
     */
    void closeOnce() {
        closing.set(true);
        long stamp = lock.writeLock();
        try {
            long p = ptr;
            if (p != 0) {
                ptr = 0;
                free.accept(p);
            }
        } finally {
            lock.unlockWrite(stamp);
        }
    }

    IllegalStateException closed() {
        return new IllegalStateException(closedMessage);
    }
}
