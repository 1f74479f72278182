package io.dedisk.nbd;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;

import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLEngineResult;
import javax.net.ssl.SSLEngineResult.HandshakeStatus;
import javax.net.ssl.SSLException;

import io.dedisk.util.Check;

/**
 * TLS over a connection's blocking socket, driven by a JDK {@link SSLEngine} (server mode), after NBD_OPT_STARTTLS.
 *
 * Buffers: {@code netIn} (heap) holds received TLS records not yet decrypted (drain mode: [position, limit)
 * pending), {@code appIn} (heap) decrypted bytes not yet handed out (drain mode); together about 33 KiB per TLS
 * connection. Reads large enough to take a whole record decrypt straight into the caller's buffer. Encrypted
 * output goes through a direct buffer of {@link #OUT_RECORDS} records borrowed from the {@link BufferPool} for one
 * write (paid for in the {@link ByteBudget}; a heap buffer of one record if the budget is spent), so an idle TLS
 * connection holds no output buffer and a large reply leaves in one system call per few records. Encrypting into
 * a direct buffer and sending it from there is ~45% faster than through a heap buffer (measured with AES-128-GCM,
 * JDK 25, docs/decisions.md).
 *
 * Threads: {@link #handshake} and {@link #read} run on the connection's reader thread (which owns netIn and
 * appIn); {@link #write} runs under {@code writeLock} (the handshake thread, then {@link ReplyWriter}), which also
 * guards netOut and every wrap, including the ones the reader must do for post-handshake messages. SSLEngine
 * allows wrap and unwrap to run concurrently. {@link #close} from any thread closes the socket (a hard
 * disconnect: it never blocks); {@link #finish} sends close_notify first.
 */
final class TlsTransport implements Transport {
    private final Transport.Plain plain;
    private final SocketChannel channel;
    private final SSLEngine engine;
    private final Object writeLock = new Object();
    private final ByteBuffer netIn;
    private final ByteBuffer appIn;
    private final BufferPool pool;
    private final ByteBudget budget;
    private final int packet;
    private static final ByteBuffer[] NOTHING = {ByteBuffer.allocate(0)};
    static final int OUT_RECORDS = 3;

    /** {@code early} are bytes the client sent right after STARTTLS that the plain wire had already buffered. */
    TlsTransport(Transport.Plain plain, SSLEngine engine, ByteBuffer early, BufferPool pool, ByteBudget budget) {
        this.plain = plain;
        this.channel = plain.channel();
        this.engine = engine;
        this.pool = pool;
        this.budget = budget;
        this.packet = engine.getSession().getPacketBufferSize();
        this.netIn = ByteBuffer.allocate(Math.max(packet, early.remaining()));
        this.netIn.put(early).flip();
        this.appIn = ByteBuffer.allocate(engine.getSession().getApplicationBufferSize()).limit(0);
    }

    /** Runs the TLS handshake to its end. Reader thread. */
    void handshake() throws IOException {
        engine.beginHandshake();
        while (true) {
            switch (engine.getHandshakeStatus()) {
                case NEED_TASK -> runTasks();
                case NEED_WRAP -> {
                    synchronized (writeLock) {
                        wrapAndSend(NOTHING, 1);
                    }
                }
                case NEED_UNWRAP, NEED_UNWRAP_AGAIN -> {
                    appIn.compact();
                    try {
                        if (unwrap(appIn) < 0) throw new EOFException("client closed during the TLS handshake");
                    } finally {
                        appIn.flip();
                    }
                }
                case FINISHED, NOT_HANDSHAKING -> {
                    return;
                }
            }
        }
    }

    SSLEngine engine() {
        return engine;
    }

    @Override
    public int read(ByteBuffer dst) throws IOException {
        Check.that(dst.hasRemaining(), "TLS read into a full buffer");
        while (true) {
            if (appIn.hasRemaining()) {
                int n = Math.min(appIn.remaining(), dst.remaining());
                dst.put(dst.position(), appIn, appIn.position(), n);
                dst.position(dst.position() + n);
                appIn.position(appIn.position() + n);
                return n;
            }
            int produced;
            if (dst.remaining() >= appIn.capacity()) {
                produced = unwrap(dst);
            } else {
                appIn.clear();
                try {
                    produced = unwrap(appIn);
                } finally {
                    appIn.flip();
                }
            }
            if (produced < 0) return -1;
            if (produced > 0 && !appIn.hasRemaining()) return produced; // went straight into dst
        }
    }

    /**
     * Decrypts at least one record into {@code dst} (fill mode), reading from the socket as needed; handles
     * post-handshake messages. Returns the bytes produced (maybe 0 after a handshake message), -1 at end of stream.
     */
    private int unwrap(ByteBuffer dst) throws IOException {
        while (true) {
            SSLEngineResult result = engine.unwrap(netIn, dst);
            switch (result.getStatus()) {
                case OK -> {
                    HandshakeStatus hs = result.getHandshakeStatus();
                    if (hs == HandshakeStatus.NEED_TASK) runTasks();
                    if (engine.getHandshakeStatus() == HandshakeStatus.NEED_WRAP) {
                        synchronized (writeLock) {
                            wrapAndSend(NOTHING, 1);
                        }
                    }
                    if (result.bytesProduced() > 0 || result.bytesConsumed() > 0) return result.bytesProduced();
                }
                case BUFFER_UNDERFLOW -> {
                    if (fill() < 0) return -1;
                }
                case BUFFER_OVERFLOW -> throw new Check.InvariantViolation("TLS unwrap overflow into " + dst.remaining()
                        + " bytes, application buffer " + engine.getSession().getApplicationBufferSize());
                case CLOSED -> {
                    return -1;
                }
            }
        }
    }

    /** Reads more TLS bytes into netIn. */
    private int fill() throws IOException {
        netIn.compact();
        try {
            if (!netIn.hasRemaining()) {
                throw new SSLException("TLS record larger than " + netIn.capacity() + " bytes");
            }
            return channel.read(netIn);
        } finally {
            netIn.flip();
        }
    }

    private void runTasks() {
        Runnable task;
        while ((task = engine.getDelegatedTask()) != null) task.run();
    }

    @Override
    public void write(ByteBuffer[] srcs, int count) throws IOException {
        synchronized (writeLock) {
            wrapAndSend(srcs, count);
        }
    }

    /** Encrypts everything in srcs[0..count) (at least one record, even if empty) and sends it. Holds writeLock. */
    private void wrapAndSend(ByteBuffer[] srcs, int count) throws IOException {
        int length = OUT_RECORDS * packet;
        long charge = BufferPool.capacityFor(length);
        ByteBuffer borrowed = budget.tryAcquire(charge) ? pool.acquire(length) : null;
        ByteBuffer netOut = borrowed != null ? borrowed.slice(BufferPool.HEADROOM, length) : ByteBuffer.allocate(packet);
        try {
            int first = 0;
            do {
                netOut.clear();
                // Fill the output buffer with as many records as fit, then send them with one write.
                do {
                    SSLEngineResult result = engine.wrap(srcs, first, count - first, netOut);
                    if (result.getStatus() == SSLEngineResult.Status.CLOSED) {
                        throw new SSLException("TLS session closed");
                    }
                    Check.that(result.getStatus() == SSLEngineResult.Status.OK, "TLS wrap status %s",
                            result.getStatus());
                    if (result.getHandshakeStatus() == HandshakeStatus.NEED_TASK) runTasks();
                    while (first < count && !srcs[first].hasRemaining()) first++;
                } while (first < count && netOut.remaining() >= packet);
                netOut.flip();
                while (netOut.hasRemaining()) channel.write(netOut);
            } while (first < count);
        } finally {
            if (borrowed != null) {
                pool.release(borrowed);
                budget.release(charge);
            }
        }
    }

    /** Graceful end: close_notify, then close the socket. Best effort. */
    void finish() {
        try {
            engine.closeOutbound();
            synchronized (writeLock) {
                ByteBuffer netOut = ByteBuffer.allocate(packet);
                engine.wrap(NOTHING, netOut);
                netOut.flip();
                while (netOut.hasRemaining() && channel.write(netOut) > 0) {
                    // loop until sent
                }
            }
        } catch (IOException | RuntimeException e) {
            // The peer is gone; nothing more to say.
        } finally {
            close();
        }
    }

    @Override
    public void shutdownInput() {
        plain.shutdownInput();
    }

    @Override
    public void close() {
        plain.close();
    }

    @Override
    public boolean isOpen() {
        return plain.isOpen();
    }
}
