package io.dedisk.pool;

import io.dedisk.util.Check;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Recycled heap arrays of one write batch ({@link WritePipeline#BATCH_BLOCKS} blocks, 256 KiB), into which a write
 * that arrives in a direct buffer (NBD payloads) is copied so it can be named and compressed. Without recycling,
 * each such copy was a fresh 256 KiB–1 MiB array: in G1 with 1 MiB regions the larger ones are humongous
 * allocations, and at VM-image write rates they made a large share of the server's GC pauses (docs/decisions.md,
 * "Write path allocation").
 *
 * Threads: any thread may take and give back. Invariants: an array is either free here or held by exactly one
 * writer; at most {@link #MAX_FREE} arrays are kept (16 MiB of heap, enough for nbdcopy's 64 requests in flight), more are left to the garbage collector. Safe
 * to reuse once {@link Pool#writeBlocks} has returned: the pipeline copies every body it stores into its record.
 */
final class BatchArrays {
    static final int BYTES = WritePipeline.BATCH_BLOCKS * Pool.BLOCK_SIZE;
    static final int MAX_FREE = 64;

    private final ConcurrentLinkedQueue<byte[]> free = new ConcurrentLinkedQueue<>();
    private final AtomicInteger freeCount = new AtomicInteger();

    /** An array of {@link #BYTES} bytes; its content is whatever the last writer left. */
    byte[] take() {
        byte[] a = free.poll();
        if (a == null) return new byte[BYTES];
        freeCount.decrementAndGet();
        return a;
    }

    /** Gives an array from {@link #take} back; the caller must not touch it afterwards. */
    void giveBack(byte[] a) {
        Check.that(a.length == BYTES, "array of %d bytes given back, expected %d", a.length, BYTES);
        if (freeCount.incrementAndGet() <= MAX_FREE) {
            free.offer(a);
        } else {
            freeCount.decrementAndGet();
        }
    }

    /** Arrays kept for reuse (for tests). */
    int freeCount() { return freeCount.get(); }
}
