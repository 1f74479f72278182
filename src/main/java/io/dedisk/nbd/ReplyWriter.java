package io.dedisk.nbd;

import static io.dedisk.nbd.NbdConstants.*;

import java.io.IOException;
import java.lang.System.Logger.Level;
import java.nio.ByteBuffer;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.ReentrantLock;

import io.dedisk.util.Check;

/**
 * Encodes transmission-phase replies and puts them on the wire, whole, in completion order (out of order with
 * respect to requests, as NBD allows).
 *
 * Wire layouts: simple reply = magic 0x67446698 u32, error u32, cookie u64 (+ read data if error is 0).
 * Structured chunk = magic 0x668e33ef u32, flags u16, type u16, cookie u64, length u32, payload; this server
 * always sends exactly one chunk per request, flagged NBD_REPLY_FLAG_DONE: OFFSET_DATA (offset u64 + data),
 * BLOCK_STATUS (context id u32 + descriptors of length u32, status u32) or ERROR (error u32, message length u16,
 * message). Successful non-read replies are simple replies, which the spec allows even with structured replies.
 *
 * Threads: any request thread calls the send methods. A finished reply is pushed on a lock-free stack; whichever
 * thread gets the write lock takes everything pushed and writes it with one gathering write (flat combining), so
 * under load many replies share a system call and no request thread waits for another's write.
 *
 * Invariants: every reply is one buffer obtained from the {@link BufferPool} (header in its headroom); after it was
 * written, or dropped because the connection broke, the buffer goes back to the pool, the request's in-flight
 * units go back to the connection's semaphore and its reply charge to the server's {@link ByteBudget}. So once all
 * units are back, every reply has left (or was dropped).
 *
 * Deadline: while a gathering write is blocked (the client does not read), {@link #writeDeadline} is when it must
 * have finished ({@link NbdLimits#transferNanos} of its bytes); the server's watchdog closes the connection after.
 */
final class ReplyWriter {
    /** Buffers per gathering write (far below IOV_MAX); there are rarely more replies pending than in-flight units. */
    private static final int BATCH = NbdConnection.INFLIGHT_UNITS;

    /** A reply waiting to be written; {@code next} links the stack (newest first). */
    private static final class Pending {
        final ByteBuffer bytes;
        final int units;
        final long charge;
        Pending next;

        Pending(ByteBuffer bytes, int units, long charge) {
            this.bytes = bytes;
            this.units = units;
            this.charge = charge;
        }
    }

    private final Wire wire;
    private final BufferPool pool;
    private final Semaphore inflight;
    private final long unitBytes;
    private final ByteBudget budget;
    private final NbdLimits limits;
    private final boolean structured;
    private final RateLimitedLog log;
    /** Deadline (System.nanoTime) of the write in progress, or Long.MAX_VALUE when none is. */
    private volatile long writeDeadline = Long.MAX_VALUE;
    /** When the last reply left (System.nanoTime); the idle clock starts there. */
    private volatile long lastReply = System.nanoTime();
    /** Replies finished but not yet taken by a writer, newest first. */
    private final AtomicReference<Pending> pending = new AtomicReference<>();
    private final ReentrantLock lock = new ReentrantLock();
    // Guarded by lock.
    private final ByteBuffer[] buffers = new ByteBuffer[BATCH];
    private final int[] units = new int[BATCH];
    private final long[] charges = new long[BATCH];
    private boolean broken;

    ReplyWriter(Wire wire, BufferPool pool, Semaphore inflight, long unitBytes, ByteBudget budget, NbdLimits limits,
                boolean structured, RateLimitedLog log) {
        this.wire = wire;
        this.pool = pool;
        this.inflight = inflight;
        this.unitBytes = unitBytes;
        this.budget = budget;
        this.limits = limits;
        this.structured = structured;
        this.log = log;
    }

    long writeDeadline() {
        return writeDeadline;
    }

    long lastReply() {
        return lastReply;
    }

    /**
     * Successful NBD_CMD_READ. {@code data} came from the pool and holds the bytes read in
     * [HEADROOM, HEADROOM + request length); ownership passes to the writer.
     */
    void readData(Request request, ByteBuffer data) {
        int length = (int) request.length();
        int start;
        if (structured) {
            start = BufferPool.HEADROOM - STRUCTURED_REPLY_HEADER_SIZE - 8;
            data.position(start);
            structuredHeader(data, request, NBD_REPLY_TYPE_OFFSET_DATA, 8 + length);
            data.putLong(request.offset());
        } else {
            start = BufferPool.HEADROOM - SIMPLE_REPLY_HEADER_SIZE;
            data.position(start);
            simpleHeader(data, request, 0);
        }
        enqueue(request, data.limit(BufferPool.HEADROOM + length).position(start));
    }

    /**
     * Successful NBD_CMD_BLOCK_STATUS. {@code payload} came from the pool and holds the context id and descriptors
     * in [HEADROOM, position); ownership passes to the writer.
     */
    void blockStatus(Request request, ByteBuffer payload) {
        int end = payload.position();
        int start = BufferPool.HEADROOM - STRUCTURED_REPLY_HEADER_SIZE;
        payload.position(start);
        structuredHeader(payload, request, NBD_REPLY_TYPE_BLOCK_STATUS, end - BufferPool.HEADROOM);
        enqueue(request, payload.limit(end).position(start));
    }

    /** Success without data. */
    void ok(Request request) {
        ByteBuffer reply = pool.acquire(0);
        int start = BufferPool.HEADROOM - SIMPLE_REPLY_HEADER_SIZE;
        simpleHeader(reply.position(start), request, 0);
        enqueue(request, reply.flip().position(start));
    }

    /** Failure: a structured NBD_REPLY_TYPE_ERROR chunk with the message, or a simple reply with the error value. */
    void error(Request request, int error, String why) {
        Check.that(error != 0, "error reply without an error value");
        if (!structured) {
            ByteBuffer reply = pool.acquire(0);
            int start = BufferPool.HEADROOM - SIMPLE_REPLY_HEADER_SIZE;
            simpleHeader(reply.position(start), request, error);
            enqueue(request, reply.flip().position(start));
            return;
        }
        byte[] text = message(why);
        ByteBuffer reply = pool.acquire(6 + text.length);
        int start = BufferPool.HEADROOM - STRUCTURED_REPLY_HEADER_SIZE;
        structuredHeader(reply.position(start), request, NBD_REPLY_TYPE_ERROR, 6 + text.length);
        reply.putInt(error).putShort((short) text.length).put(text);
        enqueue(request, reply.flip().position(start));
    }

    /**
     * Last resort when no reply can be built for a request: the client would wait for it forever, so the
     * connection is dropped (hard disconnect) and the request's in-flight units are returned.
     */
    void abandon(Request request, Throwable failure) {
        log.log(Level.ERROR, () -> "cannot reply to " + request + "; dropping the connection", failure);
        wire.close();
        budget.release(request.replyCharge());
        inflight.release(request.inflightUnits(unitBytes));
    }

    private static void simpleHeader(ByteBuffer b, Request request, int error) {
        b.putInt(NBD_SIMPLE_REPLY_MAGIC).putInt(error).putLong(request.cookie());
    }

    private static void structuredHeader(ByteBuffer b, Request request, int type, int length) {
        b.putInt(NBD_STRUCTURED_REPLY_MAGIC).putShort((short) NBD_REPLY_FLAG_DONE).putShort((short) type)
                .putLong(request.cookie()).putInt(length);
    }

    private void enqueue(Request request, ByteBuffer reply) {
        Pending node = new Pending(reply, request.inflightUnits(unitBytes), request.replyCharge());
        Pending top;
        do {
            top = pending.get();
            node.next = top;
        } while (!pending.compareAndSet(top, node));
        // Flat combining: keep writing while replies are pending and nobody else is writing. A reply pushed while
        // the current writer is releasing the lock is seen by that writer's next loop test, so none is stranded.
        while (pending.get() != null && lock.tryLock()) {
            try {
                drain();
            } finally {
                lock.unlock();
            }
        }
    }

    /** Writes every pending reply, oldest first, in gathering writes of up to {@link #BATCH} buffers. */
    private void drain() {
        Pending oldest = null;
        for (Pending p = pending.getAndSet(null); p != null; ) { // reverse the stack into completion order
            Pending next = p.next;
            p.next = oldest;
            oldest = p;
            p = next;
        }
        while (oldest != null) {
            int n = 0;
            for (; oldest != null && n < BATCH; oldest = oldest.next, n++) {
                buffers[n] = oldest.bytes;
                units[n] = oldest.units;
                charges[n] = oldest.charge;
            }
            write(n);
        }
    }

    private void write(int n) {
        if (!broken) {
            long bytes = 0;
            for (int i = 0; i < n; i++) bytes += buffers[i].remaining();
            writeDeadline = System.nanoTime() + limits.transferNanos(bytes);
            try {
                wire.writeFully(buffers, n);
                lastReply = System.nanoTime();
            } catch (IOException e) {
                broken = true;
                log.log(Level.INFO, "cannot send replies (" + e + "); dropping the connection");
                wire.close();
            } finally {
                writeDeadline = Long.MAX_VALUE;
            }
        }
        for (int i = 0; i < n; i++) {
            pool.release(buffers[i]);
            buffers[i] = null;
            budget.release(charges[i]);
            inflight.release(units[i]);
        }
    }
}
