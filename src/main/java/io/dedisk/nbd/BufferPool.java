package io.dedisk.nbd;

import java.nio.ByteBuffer;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;

import io.dedisk.util.Check;

/**
 * Server-wide recycling of the direct buffers that carry payloads: write data read from the socket, and whole
 * reply messages (header + data) written to it. Recycling avoids allocating and zeroing direct memory per request.
 *
 * Layout of every buffer: {@link #HEADROOM} spare bytes, then a data area whose size is a power of two between
 * 4 KiB and 32 MiB (its size class). A reply header is written into the tail of the headroom, right in front of the
 * data, so a reply goes out as one contiguous buffer without copying the data.
 *
 * Threads: any thread may acquire and release. Invariants: a buffer is in at most one place at a time (pooled, or
 * owned by exactly one request); the pool keeps at most {@link #MAX_PER_CLASS} buffers per class and at most
 * {@code maxPooledBytes} in all (a quarter of the global in-flight budget by default, so idle memory stays a fixed
 * share of the budget); buffers beyond that are left to the garbage collector. The pool does not limit what is in
 * use: callers pay for every buffer from the server's {@link ByteBudget} first ({@link #capacityFor} is the price).
 */
final class BufferPool {
    /** Room for the largest reply header: structured chunk header (20) + the offset of OFFSET_DATA (8). */
    static final int HEADROOM = 32;
    private static final int MIN_SHIFT = 12;
    private static final int MAX_SHIFT = 25;
    private static final int MAX_PER_CLASS = 256;

    /** Index: size class shift; classes below MIN_SHIFT are never used. */
    private final List<ConcurrentLinkedDeque<ByteBuffer>> free =
            Stream.generate(ConcurrentLinkedDeque<ByteBuffer>::new).limit(MAX_SHIFT + 1).toList();
    private final AtomicIntegerArray pooled = new AtomicIntegerArray(MAX_SHIFT + 1);
    private final AtomicLong pooledBytes = new AtomicLong();
    private final long maxPooledBytes;

    BufferPool(long maxPooledBytes) {
        Check.that(maxPooledBytes >= 0, "pool retention %d", maxPooledBytes);
        this.maxPooledBytes = maxPooledBytes;
    }

    /** Direct memory a buffer for {@code dataLength} bytes occupies (headroom + its size class). */
    static long capacityFor(int dataLength) {
        return HEADROOM + (1L << shiftFor(dataLength));
    }

    /** Bytes of free buffers kept for reuse (for tests). */
    long pooledBytes() {
        return pooledBytes.get();
    }

    /** A buffer with position = {@link #HEADROOM} and limit = HEADROOM + dataLength. dataLength ≤ 32 MiB. */
    ByteBuffer acquire(int dataLength) {
        int shift = shiftFor(dataLength);
        ByteBuffer buffer = free.get(shift).pollFirst();
        if (buffer == null) {
            buffer = ByteBuffer.allocateDirect(HEADROOM + (1 << shift));
        } else {
            pooled.decrementAndGet(shift);
            pooledBytes.addAndGet(-buffer.capacity());
        }
        return buffer.limit(HEADROOM + dataLength).position(HEADROOM);
    }

    /** Gives a buffer obtained from {@link #acquire} back; the caller must not touch it afterwards. */
    void release(ByteBuffer buffer) {
        int dataCapacity = buffer.capacity() - HEADROOM;
        int shift = Integer.numberOfTrailingZeros(dataCapacity);
        Check.that(buffer.isDirect() && Integer.bitCount(dataCapacity) == 1 && shift >= MIN_SHIFT && shift <= MAX_SHIFT,
                "released buffer of capacity %d is not from the pool", buffer.capacity());
        // Reserve first, then undo if over a limit: the counts may overshoot briefly, never the pool itself.
        boolean fits = pooled.incrementAndGet(shift) <= MAX_PER_CLASS;
        fits &= pooledBytes.addAndGet(buffer.capacity()) <= maxPooledBytes;
        if (fits) {
            free.get(shift).offerFirst(buffer.clear());
        } else {
            pooled.decrementAndGet(shift);
            pooledBytes.addAndGet(-buffer.capacity());
        }
    }

    private static int shiftFor(int dataLength) {
        Check.that(dataLength >= 0 && dataLength <= 1 << MAX_SHIFT, "buffer of %d bytes requested", dataLength);
        return Math.max(MIN_SHIFT, 32 - Integer.numberOfLeadingZeros(Math.max(dataLength, 1) - 1));
    }
}
