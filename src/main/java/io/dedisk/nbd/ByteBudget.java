package io.dedisk.nbd;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.BooleanSupplier;

import io.dedisk.util.Check;

/**
 * A server-wide budget of bytes (the global in-flight limit of {@link NbdLimits}): connection readers take from it
 * before they allocate a payload piece, a reply buffer or a large input buffer, and give back what they took once
 * that memory is back in the {@link BufferPool}. A reader that finds the budget spent waits (back-pressure on its
 * client through TCP) instead of allocating; it never fails a request for lack of budget.
 *
 * Threads: any thread. The fast path is one CAS; waiters park on a condition that {@link #release} signals.
 * Invariant: 0 ≤ used ≤ capacity at every instant (checked on release).
 */
final class ByteBudget {
    /** Waiters re-check their deadline and cancellation this often even without a release. */
    private static final long POLL_NANOS = TimeUnit.MILLISECONDS.toNanos(50);

    private final long capacity;
    private final AtomicLong used = new AtomicLong();
    private final AtomicInteger waiters = new AtomicInteger();
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition released = lock.newCondition();

    ByteBudget(long capacity) {
        Check.that(capacity > 0, "budget capacity %d", capacity);
        this.capacity = capacity;
    }

    long capacity() {
        return capacity;
    }

    long used() {
        return used.get();
    }

    /** Takes {@code bytes} if they are free now. */
    boolean tryAcquire(long bytes) {
        Check.that(bytes > 0 && bytes <= capacity, "budget request of %d bytes, capacity %d", bytes, capacity);
        while (true) {
            long now = used.get();
            if (now + bytes > capacity) return false;
            if (used.compareAndSet(now, now + bytes)) return true;
        }
    }

    /**
     * Takes {@code bytes}, waiting for other holders to release. Returns false, having taken nothing, once
     * {@code deadlineNanos} (System.nanoTime scale; Long.MAX_VALUE for none) has passed or {@code cancelled} holds.
     */
    boolean acquire(long bytes, long deadlineNanos, BooleanSupplier cancelled) {
        if (tryAcquire(bytes)) return true;
        lock.lock();
        waiters.incrementAndGet();
        try {
            while (!tryAcquire(bytes)) {
                long left = deadlineNanos == Long.MAX_VALUE ? POLL_NANOS : deadlineNanos - System.nanoTime();
                if (left <= 0 || cancelled.getAsBoolean()) return false;
                released.awaitNanos(Math.min(left, POLL_NANOS));
            }
            return true;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        } finally {
            waiters.decrementAndGet();
            lock.unlock();
        }
    }

    void release(long bytes) {
        long after = used.addAndGet(-bytes);
        Check.that(bytes > 0 && after >= 0, "budget release of %d bytes leaves %d used", bytes, after);
        if (waiters.get() > 0) {
            lock.lock();
            try {
                released.signalAll();
            } finally {
                lock.unlock();
            }
        }
    }
}
