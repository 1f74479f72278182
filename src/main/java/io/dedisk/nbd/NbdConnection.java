package io.dedisk.nbd;

import static io.dedisk.nbd.NbdConstants.*;

import java.io.EOFException;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.util.Optional;
import java.util.concurrent.Semaphore;

import io.dedisk.pool.VolumeProvider;

/**
 * One client connection from accept to close: the handshake, then the transmission-phase request loop.
 *
 * Request loop (wire layout in {@link Request}): read a 28-byte header, check the magic (a bad magic means the
 * stream is out of sync: log and hard-disconnect), take the request's in-flight units from the connection's
 * semaphore and its reply charge from the server's {@link ByteBudget} (blocking here is the back-pressure on a
 * client that pipelines faster than the device serves, or on all clients when the server's memory budget is
 * spent), read a write's payload piece by piece as it arrives ({@link Payload}: always, even for a write that will
 * be refused, so the stream stays in sync), then start a virtual thread running {@link RequestHandler#handle},
 * which checks and executes it. Replies go out in completion order.
 *
 * Deadlines (enforced by the server's watchdog through {@link #checkDeadlines}, which closes the transport and so
 * unblocks the reader): the handshake must end within {@link NbdLimits#handshakeTimeout}; a write's payload must
 * arrive within {@link NbdLimits#transferNanos} of its length; a connection with nothing in flight that sends no
 * complete request header for {@link NbdLimits#idleTimeout} is closed; so is one that does not read its replies.
 *
 * Ending: NBD_CMD_DISC or end of stream stops reading; then the loop waits until every unit is back (all replies
 * sent) and closes. A protocol violation or I/O error closes first (so pending replies fail fast), then waits for
 * running requests, so when this connection's thread ends no request of it is inside the device and everything it
 * took from the budget is back. Each connection logs at most a connect line, a disconnect line and a rate-limited
 * handful of warnings ({@link RateLimitedLog}).
 *
 * Threads: {@link #run} starts on a virtual thread (a connection in the handshake, or one of many idle ones, costs a
 * parked continuation, not a platform stack). Once an export is open, the request loop moves to a platform thread
 * if one of the server's {@link #PLATFORM_READERS} slots is free (the virtual thread waits for it in join): a
 * platform reader blocks in the kernel directly, without the virtual-thread poller's hand-off on every wake-up,
 * which at queue depth 1 is worth ~35% of 4 KiB IOPS (docs/decisions.md). Either way one thread at a time is the
 * reader; the hand-off is ordered by Thread.start and join. {@link #shutdownInput}, {@link #abort} and
 * {@link #checkDeadlines} are called by the server from other threads and touch only volatile state and the
 * transport.
 */
final class NbdConnection implements Runnable {
    /** In-flight units per connection; a unit is the per-connection in-flight budget / this, e.g. 1 MiB of 64 MiB. */
    static final int INFLIGHT_UNITS = 64;
    /** Connections whose request loop may run on a platform thread at once (server-wide); the rest stay virtual. */
    static final int PLATFORM_READERS = 128;

    private final VolumeProvider volumes;
    private final BufferPool pool;
    private final ByteBudget budget;
    private final NbdLimits limits;
    private final NbdTls tls;
    private final RateLimitedLog serverLog;
    private final RateLimitedLog log;
    private final String peer;
    /** Set by the server before {@link #run} starts; handed to this connection's handshake and request handler. */
    io.dedisk.metrics.NbdMetrics metrics = io.dedisk.metrics.NbdMetrics.NOOP;
    private final Wire wire;
    private final long unitBytes;
    private final Semaphore inflight = new Semaphore(INFLIGHT_UNITS);
    private final Semaphore platformReaders;

    /** What the reader is waiting for under {@link #deadline} ("handshake", "payload"), or null. */
    private volatile String deadlineWhat;
    private volatile long deadline = Long.MAX_VALUE;
    /** Set while the reader waits for a request header: when it started waiting, or Long.MIN_VALUE. */
    private volatile long awaitingHeaderSince = Long.MIN_VALUE;
    private volatile ReplyWriter writer;
    /** Why the watchdog closed the connection, or null. */
    private volatile String expired;

    NbdConnection(Transport transport, VolumeProvider volumes, BufferPool pool, ByteBudget budget, NbdLimits limits,
                  NbdTls tls, Semaphore platformReaders, RateLimitedLog serverLog, String peer) {
        this.platformReaders = platformReaders;
        this.volumes = volumes;
        this.tls = tls;
        this.pool = pool;
        this.budget = budget;
        this.limits = limits;
        this.serverLog = serverLog;
        this.log = serverLog.child(peer);
        this.peer = peer;
        this.wire = new Wire(transport, pool, budget);
        this.unitBytes = Math.max(1, limits.connectionInflightBytes() / INFLIGHT_UNITS);
    }

    @Override
    public void run() {
        serverLog.log(Level.INFO, peer + ": connected");
        String outcome;
        try {
            deadlineWhat = "handshake";
            deadline = System.nanoTime() + limits.handshakeTimeout().toNanos();
            Handshake handshake = new Handshake(wire, volumes, log, tls);
            handshake.metrics = metrics;
            Optional<Session> session = handshake.run();
            deadline = Long.MAX_VALUE;
            deadlineWhat = null;
            outcome = session.isPresent() ? transmitOnBestThread(session.get(), handshake.security())
                    : "negotiation ended without an export";
            if (wire.transport() instanceof TlsTransport secure) {
                // A soft disconnect over TLS: close_notify first (bounded by the payload deadline).
                deadlineWhat = "TLS close";
                deadline = System.nanoTime() + limits.payloadGrace().toNanos();
                secure.finish();
            }
        } catch (ProtocolViolation e) {
            log.log(Level.WARNING, "protocol error: " + e.getMessage() + "; closing the connection");
            outcome = "protocol error";
        } catch (EOFException e) {
            outcome = "client disconnected in the middle of a message (" + e.getMessage() + ")";
        } catch (ClosedChannelException e) {
            outcome = "connection closed";
        } catch (IOException e) {
            outcome = "connection lost: " + e;
        } catch (OutOfMemoryError e) {
            log.log(Level.WARNING, "out of memory (" + e.getMessage() + "); closing this connection only");
            outcome = "out of memory";
        } catch (RuntimeException | Error e) {
            log.log(Level.ERROR, () -> "connection failed on a server bug", e);
            outcome = "server error";
        } finally {
            wire.close();
            wire.release();
        }
        String why = expired;
        String line = peer + ": disconnected: " + (why != null ? why : outcome);
        serverLog.log(Level.INFO, line);
        log.close(Level.INFO);
    }

    /** Graceful shutdown from the server: the reader sees end of stream, finishes in-flight requests and closes. */
    void shutdownInput() {
        wire.transport().shutdownInput();
    }

    /** Hard disconnect from the server. */
    void abort() {
        wire.close();
    }

    /** Watchdog: closes the connection if one of its deadlines has passed. Any thread. */
    void checkDeadlines(long now) {
        if (expired != null) return;
        long limit = deadline;
        if (limit != Long.MAX_VALUE && now - limit > 0) {
            expire(deadlineWhat + " deadline passed");
            return;
        }
        ReplyWriter replies = writer;
        if (replies == null) return;
        long writing = replies.writeDeadline();
        if (writing != Long.MAX_VALUE && now - writing > 0) {
            expire("client did not read its replies in time");
            return;
        }
        long idle = limits.idleTimeout().toNanos();
        long since = awaitingHeaderSince;
        if (idle > 0 && since != Long.MIN_VALUE && inflight.availablePermits() == INFLIGHT_UNITS) {
            long quietSince = Math.max(since, replies.lastReply());
            if (now - quietSince > idle) expire("idle for more than " + limits.idleTimeout().toMillis() + " ms");
        }
    }

    /** Why the watchdog closed this connection, or null. */
    String expired() {
        return expired;
    }

    private void expire(String why) {
        expired = why;
        wire.close();
    }

    /** Runs {@link #transmit} on a platform thread if a slot is free, else right here. */
    private String transmitOnBestThread(Session session, String security) throws IOException {
        if (!platformReaders.tryAcquire()) return transmit(session, security);
        try {
            String[] outcome = new String[1];
            Throwable[] failure = new Throwable[1];
            Thread reader = Thread.ofPlatform().daemon().name("nbd-conn " + peer).start(() -> {
                try {
                    outcome[0] = transmit(session, security);
                } catch (Throwable t) {
                    failure[0] = t;
                }
            });
            boolean interrupted = false;
            while (true) {
                try {
                    reader.join();
                    break;
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
            if (interrupted) Thread.currentThread().interrupt();
            switch (failure[0]) {
                case null -> {
                    return outcome[0];
                }
                case IOException e -> throw e;
                case RuntimeException e -> throw e;
                case Error e -> throw e;
                default -> throw new IOException(failure[0]);
            }
        } finally {
            platformReaders.release();
        }
    }

    private String transmit(Session session, String security) throws IOException {
        serverLog.log(Level.INFO, peer + ": serving export " + session.volume().name() + " (" + session.size()
                + " bytes, flags 0x" + Integer.toHexString(session.transmissionFlags()) + ", structured replies "
                + session.structuredReplies() + ", base:allocation " + session.baseAllocation() + ", " + security
                + ")");
        ReplyWriter replies = new ReplyWriter(wire, pool, inflight, unitBytes, budget, limits,
                session.structuredReplies(), log);
        writer = replies;
        RequestHandler handler = new RequestHandler(session, replies, pool, budget, log);
        handler.metrics = metrics;
        try {
            return readRequests(handler);
        } catch (IOException | RuntimeException | Error e) {
            wire.close();
            throw e;
        } finally {
            awaitingHeaderSince = Long.MIN_VALUE;
            inflight.acquireUninterruptibly(INFLIGHT_UNITS);
        }
    }

    private String readRequests(RequestHandler handler) throws IOException {
        ByteBuffer in = wire.input();
        while (true) {
            wire.idle();
            awaitingHeaderSince = System.nanoTime();
            boolean more = wire.await(REQUEST_HEADER_SIZE);
            awaitingHeaderSince = Long.MIN_VALUE;
            if (!more) return "client closed the connection";
            in = wire.input();
            int magic = in.getInt();
            if (magic != NBD_REQUEST_MAGIC) {
                throw new ProtocolViolation(String.format("request magic 0x%08x, expected NBD_REQUEST_MAGIC 0x%08x",
                        magic, NBD_REQUEST_MAGIC));
            }
            Request request = Request.parse(in);
            if (request.type() == NBD_CMD_DISC) return "NBD_CMD_DISC";
            if (request.payloadLength() > MAX_PAYLOAD) {
                throw new ProtocolViolation("NBD_CMD_WRITE with " + request.payloadLength()
                        + " bytes of data, expected at most the maximum payload " + MAX_PAYLOAD);
            }
            dispatch(request, handler);
        }
    }

    /** Takes the request's budget, reads its payload and starts its thread; on failure gives everything back. */
    private void dispatch(Request request, RequestHandler handler) throws IOException {
        int units = request.inflightUnits(unitBytes);
        inflight.acquireUninterruptibly(units);
        long charge = request.replyCharge();
        boolean charged = false;
        Payload payload = null;
        try {
            charged = budget.acquire(charge, Long.MAX_VALUE, () -> !wire.transport().isOpen());
            if (!charged) throw new ClosedChannelException();
            if (request.payloadLength() > 0) payload = readPayload(request.payloadLength());
            Payload data = payload;
            Thread.startVirtualThread(() -> handler.handle(request, data));
        } catch (IOException | RuntimeException | Error e) {
            // The request never reached its thread: give back what it holds, or the final wait never ends.
            if (payload != null) payload.release(pool, budget);
            if (charged) budget.release(charge);
            inflight.release(units);
            throw e;
        }
    }

    /**
     * Reads {@code length} bytes of write data under the payload deadline, allocating each piece only once the
     * client has sent a byte of it (so a client that stalls holds no more than it delivered, see {@link Payload}).
     */
    private Payload readPayload(long length) throws IOException {
        long start = System.nanoTime();
        deadlineWhat = "payload";
        deadline = start + limits.transferNanos(length);
        Payload payload = new Payload();
        try {
            long received = 0;
            while (received < length) {
                if (!wire.await(1)) throw new EOFException("stream ended after " + received + " of " + length
                        + " payload bytes");
                int size = Payload.nextPieceLength(length, received);
                long charge = BufferPool.capacityFor(size);
                if (!budget.acquire(charge, deadline, () -> !wire.transport().isOpen())) {
                    throw new ClosedChannelException();
                }
                ByteBuffer piece;
                try {
                    piece = pool.acquire(size);
                } catch (OutOfMemoryError e) {
                    budget.release(charge);
                    throw e;
                }
                try {
                    wire.readFully(piece);
                } catch (IOException | RuntimeException | Error e) {
                    pool.release(piece);
                    budget.release(charge);
                    throw e;
                }
                payload.add(piece.position(BufferPool.HEADROOM), charge);
                received += size;
            }
            return payload;
        } catch (IOException | RuntimeException | Error e) {
            payload.release(pool, budget);
            throw e;
        } finally {
            deadline = Long.MAX_VALUE;
            deadlineWhat = null;
        }
    }
}
