package io.dedisk.nbd;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;

import javax.net.ssl.SSLEngine;

import io.dedisk.util.Check;

/**
 * The byte stream of one connection: buffered big-endian reads from the client and whole-buffer writes to it, over
 * a {@link Transport} (plain, or TLS once NBD_OPT_STARTTLS succeeded; {@link #upgrade} swaps it).
 *
 * Reading: an idle connection holds only a {@link #SMALL_INPUT}-byte direct buffer, enough for a few request
 * headers. When a read fills it (the client is pipelining), the wire borrows a {@link #LARGE_INPUT}-byte buffer
 * from the {@link BufferPool}, paid for from the server's {@link ByteBudget} (if the budget is spent it simply
 * keeps reading through the small one), and gives it back at {@link #idle} once every buffered byte is consumed.
 * Large payloads bypass both and are read straight into the caller's buffer.
 * Writing: gathering writes of whole messages.
 *
 * Threads: the read side is touched only by the connection's reader thread (handshake, then request loop). The
 * write side is used by the handshake thread alone, then only by {@link ReplyWriter} under its lock.
 *
 * Invariants: {@code in} is always in "drain" mode: [position, limit) are received bytes not yet consumed; {@code in}
 * is the small buffer exactly when no large buffer is borrowed; a borrowed buffer's charge is in the budget.
 */
final class Wire {
    static final int SMALL_INPUT = 512;
    static final int LARGE_INPUT = 128 << 10;
    private static final long LARGE_CHARGE = BufferPool.capacityFor(LARGE_INPUT);

    private volatile Transport transport;
    private final BufferPool pool;
    private final ByteBudget budget;
    private final ByteBuffer small = ByteBuffer.allocateDirect(SMALL_INPUT).limit(0);
    /** The borrowed pool buffer (whose slice is {@code in}), or null. */
    private ByteBuffer large;
    private ByteBuffer in = small;

    Wire(Transport transport, BufferPool pool, ByteBudget budget) {
        this.transport = transport;
        this.pool = pool;
        this.budget = budget;
    }

    Transport transport() {
        return transport;
    }

    /**
     * Switches to TLS (after NBD_OPT_STARTTLS was acknowledged) and runs the TLS handshake. Bytes already buffered
     * are the start of the client's TLS handshake and go to the TLS transport. Reader thread, plain transport only.
     */
    TlsTransport startTls(SSLEngine engine) throws IOException {
        Check.that(transport instanceof Transport.Plain, "TLS started twice");
        ByteBuffer early = ByteBuffer.allocate(in.remaining());
        early.put(in).flip();
        TlsTransport tls = new TlsTransport((Transport.Plain) transport, engine, early, pool, budget);
        transport = tls;
        tls.handshake();
        return tls;
    }

    /** Bytes received but not consumed yet. */
    int buffered() {
        return in.remaining();
    }

    /**
     * Waits until {@code n} bytes (n ≤ {@link #SMALL_INPUT}) can be consumed from the input buffer.
     * Returns false on end of stream before any of them arrived (a clean close at a message boundary);
     * throws {@link EOFException} if the stream ends part way.
     */
    boolean await(int n) throws IOException {
        Check.that(n <= SMALL_INPUT, "await %d bytes exceeds the small input buffer", n);
        if (in.remaining() >= n) return true;
        in.compact();
        try {
            while (in.position() < n) {
                if (transport.read(in) < 0) {
                    if (in.position() == 0) return false;
                    throw new EOFException("stream ended after " + in.position() + " of " + n + " bytes");
                }
            }
        } finally {
            in.flip();
        }
        if (large == null && in.limit() == in.capacity()) borrowLarge();
        return true;
    }

    /** Gives the large buffer back if nothing is left in it: called before waiting for the next message. */
    void idle() {
        if (large != null && !in.hasRemaining()) {
            pool.release(large);
            budget.release(LARGE_CHARGE);
            large = null;
            in = small.clear().limit(0);
        }
    }

    /** Releases what the wire borrowed; the connection is over. Reader thread. */
    void release() {
        if (large != null) {
            pool.release(large);
            budget.release(LARGE_CHARGE);
            large = null;
            in = small.clear().limit(0);
        }
    }

    private void borrowLarge() {
        if (!budget.tryAcquire(LARGE_CHARGE)) return;
        ByteBuffer borrowed;
        try {
            borrowed = pool.acquire(LARGE_INPUT);
        } catch (OutOfMemoryError e) {
            budget.release(LARGE_CHARGE); // keep going on the small buffer
            return;
        }
        ByteBuffer view = borrowed.slice(BufferPool.HEADROOM, LARGE_INPUT);
        view.put(in).flip();
        large = borrowed;
        in = view;
        small.clear().limit(0);
    }

    /** Like {@link #await} but end of stream anywhere is an {@link EOFException}. */
    private void require(int n) throws IOException {
        if (!await(n)) throw new EOFException("stream ended, expected " + n + " more bytes");
    }

    int readInt() throws IOException {
        require(4);
        return in.getInt();
    }

    long readLong() throws IOException {
        require(8);
        return in.getLong();
    }

    /** The input buffer, for parsing a message already made available by {@link #await}. Reader thread only. */
    ByteBuffer input() {
        return in;
    }

    /** Fills {@code dst} completely from the stream (buffered bytes first). */
    void readFully(ByteBuffer dst) throws IOException {
        while (dst.hasRemaining()) {
            if (in.hasRemaining()) {
                int n = Math.min(in.remaining(), dst.remaining());
                dst.put(dst.position(), in, in.position(), n);
                dst.position(dst.position() + n);
                in.position(in.position() + n);
            } else if (dst.isDirect() && dst.remaining() >= in.capacity() / 2) {
                if (transport.read(dst) < 0) {
                    throw new EOFException("stream ended, expected " + dst.remaining() + " more bytes");
                }
            } else {
                require(1);
            }
        }
    }

    byte[] readBytes(int n) throws IOException {
        byte[] bytes = new byte[n];
        readFully(ByteBuffer.wrap(bytes));
        return bytes;
    }

    /** Consumes and drops {@code n} bytes. */
    void skip(long n) throws IOException {
        while (n > 0) {
            require(1);
            int step = (int) Math.min(n, in.remaining());
            in.position(in.position() + step);
            n -= step;
        }
    }

    /** Writes {@code count} buffers starting at {@code srcs[0]} completely. Callers serialise writes. */
    void writeFully(ByteBuffer[] srcs, int count) throws IOException {
        transport.write(srcs, count);
    }

    void writeFully(ByteBuffer src) throws IOException {
        transport.write(new ByteBuffer[] {src}, 1);
    }

    void close() {
        transport.close();
    }
}
