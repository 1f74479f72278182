package io.dedisk.nbd;

import static io.dedisk.nbd.NbdConstants.*;

import java.io.EOFException;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.SocketChannel;
import java.util.Optional;
import java.util.concurrent.Semaphore;

import io.dedisk.pool.VolumeProvider;

/**
 * One client connection from accept to close: the handshake, then the transmission-phase request loop.
 *
 * Request loop (wire layout in {@link Request}): read a 28-byte header, check the magic (a bad magic means the
 * stream is out of sync: log and hard-disconnect), take the request's in-flight units from the semaphore (blocking
 * here is the back-pressure on a client that pipelines faster than the device serves), read a write's payload
 * (always, even for a write that will be refused, so the stream stays in sync), then start a virtual thread running
 * {@link RequestHandler#handle}, which checks and executes it. Replies go out in completion order.
 *
 * Ending: NBD_CMD_DISC or end of stream stops reading; then the loop waits until every unit is back (all replies
 * sent) and closes. A protocol violation or I/O error closes first (so pending replies fail fast), then waits for
 * running requests, so when this connection's thread ends no request of it is inside the device.
 *
 * Threads: {@link #run} is the connection's reader thread (see {@link NbdServer} for why a platform thread);
 * {@link #shutdownInput} and {@link #abort} are called by the server from another thread.
 */
final class NbdConnection implements Runnable {
    private static final System.Logger LOG = System.getLogger("dedisk.nbd");
    /** In-flight budget per connection: 64 small requests, or 64 MiB of payload and read data. */
    static final int INFLIGHT_UNITS = 64;

    private final SocketChannel channel;
    private final VolumeProvider volumes;
    private final BufferPool pool;
    private final String peer;
    private final Wire wire;
    /** Set by the server before {@link #run} starts; handed to this connection's request handler. */
    io.dedisk.metrics.NbdMetrics metrics = io.dedisk.metrics.NbdMetrics.NOOP;

    NbdConnection(SocketChannel channel, VolumeProvider volumes, BufferPool pool, String peer) {
        this.channel = channel;
        this.volumes = volumes;
        this.pool = pool;
        this.peer = peer;
        this.wire = new Wire(channel);
    }

    @Override
    public void run() {
        LOG.log(Level.INFO, "{0}: connected", peer);
        String outcome;
        try {
            Optional<Session> session = new Handshake(wire, volumes, peer).run();
            outcome = session.isPresent() ? transmit(session.get()) : "negotiation ended without an export";
        } catch (ProtocolViolation e) {
            LOG.log(Level.WARNING, "{0}: protocol error: {1}; closing the connection", peer, e.getMessage());
            outcome = "protocol error";
        } catch (EOFException e) {
            outcome = "client disconnected in the middle of a message (" + e.getMessage() + ")";
        } catch (ClosedChannelException e) {
            outcome = "connection closed";
        } catch (IOException e) {
            outcome = "connection lost: " + e;
        } catch (RuntimeException | Error e) {
            LOG.log(Level.ERROR, peer + ": connection failed on a server bug", e);
            outcome = "server error";
        } finally {
            closeQuietly();
        }
        LOG.log(Level.INFO, "{0}: disconnected: {1}", peer, outcome);
    }

    /** Graceful shutdown from the server: the reader sees end of stream, finishes in-flight requests and closes. */
    void shutdownInput() {
        try {
            channel.shutdownInput();
        } catch (IOException e) {
            closeQuietly();
        }
    }

    /** Hard disconnect from the server. */
    void abort() {
        closeQuietly();
    }

    private String transmit(Session session) throws IOException {
        LOG.log(Level.INFO, "{0}: serving export {1} ({2} bytes, flags 0x{3}, structured replies {4}, "
                + "base:allocation {5})", peer, session.volume().name(), session.size(),
                Integer.toHexString(session.transmissionFlags()), session.structuredReplies(),
                session.baseAllocation());
        Semaphore inflight = new Semaphore(INFLIGHT_UNITS);
        ReplyWriter writer = new ReplyWriter(wire, pool, inflight, session.structuredReplies(), peer);
        RequestHandler handler = new RequestHandler(session, writer, pool, peer);
        handler.metrics = metrics;
        try {
            return readRequests(inflight, handler);
        } catch (IOException | RuntimeException | Error e) {
            closeQuietly();
            throw e;
        } finally {
            inflight.acquireUninterruptibly(INFLIGHT_UNITS);
        }
    }

    private String readRequests(Semaphore inflight, RequestHandler handler) throws IOException {
        ByteBuffer in = wire.input();
        while (wire.await(REQUEST_HEADER_SIZE)) {
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
            int units = request.inflightUnits();
            inflight.acquireUninterruptibly(units);
            ByteBuffer payload = null;
            try {
                if (request.payloadLength() > 0) {
                    payload = pool.acquire((int) request.payloadLength());
                    wire.readFully(payload);
                    payload.position(BufferPool.HEADROOM);
                }
                ByteBuffer data = payload;
                Thread.startVirtualThread(() -> handler.handle(request, data));
            } catch (IOException | RuntimeException | Error e) {
                // The request never reached its thread: give back what it holds, or the final wait never ends.
                if (payload != null) pool.release(payload);
                inflight.release(units);
                throw e;
            }
        }
        return "client closed the connection";
    }

    private void closeQuietly() {
        try {
            channel.close();
        } catch (IOException e) {
            LOG.log(Level.DEBUG, "{0}: close failed: {1}", peer, e.toString());
        }
    }
}
