package io.dedisk.nbd;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;

import io.dedisk.util.Check;

/**
 * The byte stream of one connection: buffered big-endian reads from the client and whole-buffer writes to it.
 *
 * Reading: bytes arrive into a direct buffer of {@link #INPUT_BUFFER} bytes so that one system call can bring in
 * many small pipelined requests; large payloads bypass it and are read straight into the caller's buffer.
 * Writing: gathering writes of whole messages, looping until every byte is out.
 *
 * Threads: the read side is touched only by the connection's reader thread (handshake, then request loop). The
 * write side is used by the handshake thread alone, then only by {@link ReplyWriter} under its lock.
 *
 * Invariant: {@code in} is always in "drain" mode: [position, limit) are received bytes not yet consumed.
 */
final class Wire {
    static final int INPUT_BUFFER = 128 << 10;

    private final SocketChannel channel;
    private final ByteBuffer in = ByteBuffer.allocateDirect(INPUT_BUFFER).limit(0);

    Wire(SocketChannel channel) {
        this.channel = channel;
    }

    SocketChannel channel() {
        return channel;
    }

    /**
     * Waits until {@code n} bytes (n ≤ {@link #INPUT_BUFFER}) can be consumed from the input buffer.
     * Returns false on end of stream before any of them arrived (a clean close at a message boundary);
     * throws {@link EOFException} if the stream ends part way.
     */
    boolean await(int n) throws IOException {
        Check.that(n <= INPUT_BUFFER, "await %d bytes exceeds input buffer", n);
        if (in.remaining() >= n) return true;
        in.compact();
        try {
            while (in.position() < n) {
                if (channel.read(in) < 0) {
                    if (in.position() == 0) return false;
                    throw new EOFException("stream ended after " + in.position() + " of " + n + " bytes");
                }
            }
        } finally {
            in.flip();
        }
        return true;
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
            } else if (dst.remaining() >= INPUT_BUFFER / 2) {
                if (channel.read(dst) < 0) {
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
        int first = 0;
        while (first < count) {
            channel.write(srcs, first, count - first);
            while (first < count && !srcs[first].hasRemaining()) first++;
        }
    }

    void writeFully(ByteBuffer src) throws IOException {
        while (src.hasRemaining()) channel.write(src);
    }
}
