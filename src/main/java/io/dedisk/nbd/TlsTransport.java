package io.dedisk.nbd;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.atomic.AtomicInteger;

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
 * connection. Reads large enough to take a whole record decrypt straight into the caller's buffer. Output records
 * are sealed in a heap scratch buffer (shared stack, one per write in progress) and gathered in a direct buffer of
 * up to {@link #OUT_BYTES} borrowed from the {@link BufferPool} for one write (paid for in the {@link ByteBudget};
 * if the budget is spent each record is sent from the scratch buffer), so an idle TLS connection holds no output
 * buffer and a 256 KiB reply leaves in two system calls. Sealing on the heap is about twice as fast as in a direct
 * buffer with the JDK 25 AES-GCM (docs/decisions.md).
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
    /** Largest direct send buffer a write borrows: 15 full TLS 1.3 records per system call. */
    static final int OUT_BYTES = 256 << 10;
    /**
     * Heap buffers of one packet each that writes seal records into, shared by all connections: a writer takes
     * one for a write and gives it back (at most {@link #MAX_SCRATCH_KEPT} are kept, ~1 MiB of heap); so there are
     * never more than there are writes in progress plus those kept.
     */
    private static final ConcurrentLinkedDeque<ByteBuffer> SCRATCH = new ConcurrentLinkedDeque<>();
    private static final AtomicInteger SCRATCH_KEPT = new AtomicInteger();
    private static final int MAX_SCRATCH_KEPT = 64;
    private static final int MAX_SCRATCH = 64 << 10;

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

    /**
     * Encrypts everything in srcs[0..count) (at least one record, even if empty) and sends it. Holds writeLock.
     *
     * Each record is sealed into a heap scratch buffer of one packet: the JDK's AES-GCM runs its combined AES-NI
     * + CLMUL intrinsic over a heap record in one call, but over a direct buffer only 512 bytes at a time through
     * two copies, so sealing on the heap and copying the record into the direct send buffer is about twice as
     * fast (docs/decisions.md). The sealed records gather in a direct buffer of up to {@link #OUT_BYTES} borrowed
     * from the pool, sized to this write (one system call per {@link #OUT_BYTES}; a 4 KiB reply borrows 32 KiB).
     */
    private void wrapAndSend(ByteBuffer[] srcs, int count) throws IOException {
        long total = 0;
        for (int i = 0; i < count; i++) total += srcs[i].remaining();
        int length = (int) Math.min(OUT_BYTES, total + packet);
        long charge = BufferPool.capacityFor(length);
        ByteBuffer borrowed = budget.tryAcquire(charge) ? pool.acquire(length) : null;
        // The whole size class is paid for; use all of it.
        ByteBuffer netOut = borrowed == null ? null
                : borrowed.clear().slice(BufferPool.HEADROOM, borrowed.capacity() - BufferPool.HEADROOM);
        ByteBuffer scratch = takeScratch(packet);
        try {
            int first = 0;
            do {
                scratch.clear();
                SSLEngineResult result = engine.wrap(srcs, first, count - first, scratch);
                switch (result.getStatus()) {
                    case OK -> { }
                    case CLOSED -> throw new SSLException("TLS session closed");
                    case BUFFER_OVERFLOW -> { // the session's records grew (e.g. after renegotiation)
                        scratch = ByteBuffer.allocate(engine.getSession().getPacketBufferSize());
                        continue;
                    }
                    default -> throw new Check.InvariantViolation("TLS wrap status " + result.getStatus());
                }
                if (result.getHandshakeStatus() == HandshakeStatus.NEED_TASK) runTasks();
                while (first < count && !srcs[first].hasRemaining()) first++;
                scratch.flip();
                if (netOut == null) { // budget spent: one record per system call
                    send(scratch);
                } else {
                    if (netOut.remaining() < scratch.remaining()) {
                        send(netOut.flip());
                        netOut.clear();
                    }
                    netOut.put(scratch);
                }
            } while (first < count);
            if (netOut != null && netOut.position() > 0) send(netOut.flip());
        } finally {
            giveScratch(scratch);
            if (borrowed != null) {
                pool.release(borrowed);
                budget.release(charge);
            }
        }
    }

    private void send(ByteBuffer b) throws IOException {
        while (b.hasRemaining()) channel.write(b);
    }

    /** A heap buffer of at least {@code size} bytes from the shared scratch stack (or a new one). */
    private static ByteBuffer takeScratch(int size) {
        ByteBuffer b = SCRATCH.pollFirst();
        if (b == null) return ByteBuffer.allocate(size);
        SCRATCH_KEPT.decrementAndGet();
        return b.capacity() >= size ? b : ByteBuffer.allocate(size);
    }

    private static void giveScratch(ByteBuffer b) {
        if (b.capacity() > MAX_SCRATCH) return;
        if (SCRATCH_KEPT.incrementAndGet() <= MAX_SCRATCH_KEPT) {
            SCRATCH.offerFirst(b.clear());
        } else {
            SCRATCH_KEPT.decrementAndGet();
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
