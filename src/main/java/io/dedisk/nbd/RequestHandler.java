package io.dedisk.nbd;

import static io.dedisk.nbd.NbdConstants.*;

import java.lang.System.Logger.Level;
import java.nio.ByteBuffer;
import java.util.List;

import io.dedisk.DediskException;
import io.dedisk.pool.VolumeDevice;
import io.dedisk.util.Check;

/**
 * Runs one request against the {@link VolumeDevice} and hands its reply to the {@link ReplyWriter}; maps everything
 * the device throws to an NBD error value. Builds the NBD_REPLY_TYPE_BLOCK_STATUS payload: context id u32, then
 * descriptors of extent length u32 and base:allocation status u32 (NBD_STATE_HOLE = 1, NBD_STATE_ZERO = 2).
 *
 * Error mapping: InvalidRequestException → NBD_EINVAL, ReadOnlyException → NBD_EPERM, NoSpaceException →
 * NBD_ENOSPC, anything else (CorruptionException, StorageException, other exceptions and java.lang.Error, i.e.
 * bugs) → NBD_EIO, logged on one line with its top frames through the connection's {@link RateLimitedLog} (a
 * client that provokes errors in a loop cannot flood the log). A failure only ever fails its own request.
 *
 * Writes arrive as a {@link Payload} of one or more pieces; a multi-piece write is one device write per piece, and
 * with FUA the pieces are written without it and followed by a device flush (a superset of FUA).
 *
 * Threads: {@link #handle} runs on the request's own virtual thread; the handler itself is immutable and shared by
 * all requests of one connection. Invariant: exactly one reply per request, and every pool buffer it was given or
 * took is either passed on to the writer or released (with its budget charge).
 */
final class RequestHandler {
    /** Bound on device extents one NBD_CMD_BLOCK_STATUS looks at, so tiny extents cannot stall it. */
    private static final int MAX_EXTENTS_EXAMINED = 65536;

    private final Session session;
    private final VolumeDevice device;
    private final ReplyWriter writer;
    private final BufferPool pool;
    private final ByteBudget budget;
    private final RateLimitedLog log;
    /** Set by the connection before the first request starts (thread start publishes it); never changed after. */
    io.dedisk.metrics.NbdMetrics metrics = io.dedisk.metrics.NbdMetrics.NOOP;

    RequestHandler(Session session, ReplyWriter writer, BufferPool pool, ByteBudget budget, RateLimitedLog log) {
        this.session = session;
        this.device = session.volume();
        this.writer = writer;
        this.pool = pool;
        this.budget = budget;
        this.log = log;
    }

    /**
     * Checks the request ({@link Request#check}) and executes it or refuses it. {@code payload} is the write data
     * for NBD_CMD_WRITE, else null; this method releases it.
     */
    void handle(Request request, Payload payload) {
        long started = System.nanoTime();
        int result = 0;
        try {
            Request.Rejection rejection = request.check(session);
            if (rejection == null) {
                execute(request, payload);
            } else {
                result = rejection.error();
                log.log(Level.WARNING, () -> "refused " + Request.commandName(request.type()) + ": "
                        + rejection.message(), null);
                writer.error(request, rejection.error(), rejection.message());
            }
        } catch (Throwable failure) {
            try {
                result = NBD_EIO;
                result = fail(request, failure);
            } catch (Throwable replyFailure) { // e.g. out of memory while building the error reply
                failure.addSuppressed(replyFailure);
                writer.abandon(request, failure);
            }
        } finally {
            if (payload != null) payload.release(pool, budget);
            metrics.requestDone(request.type(), result, System.nanoTime() - started, request.length());
        }
    }

    private void execute(Request request, Payload payload) {
        boolean fua = request.has(NBD_CMD_FLAG_FUA);
        switch (request.type()) {
            case NBD_CMD_READ -> read(request);
            case NBD_CMD_WRITE -> {
                write(request.offset(), payload, fua);
                writer.ok(request);
            }
            case NBD_CMD_FLUSH -> {
                device.flush();
                writer.ok(request);
            }
            case NBD_CMD_TRIM -> {
                device.trim(request.offset(), request.length(), fua);
                writer.ok(request);
            }
            case NBD_CMD_CACHE -> writer.ok(request); // Advisory; dedisk has nothing to prefetch. Range was checked.
            case NBD_CMD_WRITE_ZEROES -> {
                // NBD_CMD_FLAG_FAST_ZERO needs no branch: zeroing is a metadata update in dedisk, always fast.
                device.writeZeroes(request.offset(), request.length(), !request.has(NBD_CMD_FLAG_NO_HOLE), fua);
                writer.ok(request);
            }
            case NBD_CMD_BLOCK_STATUS -> blockStatus(request);
            default -> throw new Check.InvariantViolation("unchecked command reached the handler: " + request);
        }
    }

    private void write(long offset, Payload payload, boolean fua) {
        Check.that(payload.bytes() == (int) payload.bytes() && payload.bytes() > 0, "write payload of %d bytes",
                payload.bytes());
        if (payload.pieces() == 1) {
            device.write(offset, payload.piece(0), fua);
            return;
        }
        long position = offset;
        for (int i = 0; i < payload.pieces(); i++) {
            ByteBuffer piece = payload.piece(i);
            int length = piece.remaining();
            device.write(position, piece, false);
            position += length;
        }
        Check.that(position - offset == payload.bytes(), "pieces wrote %d of %d bytes", position - offset,
                payload.bytes());
        if (fua) device.flush();
    }

    private void read(Request request) {
        ByteBuffer data = pool.acquire((int) request.length());
        try {
            device.read(request.offset(), data);
            Check.that(!data.hasRemaining(), "device read left %d of %d bytes unfilled", data.remaining(),
                    request.length());
        } catch (Throwable failure) {
            pool.release(data);
            throw failure;
        }
        writer.readData(request, data);
    }

    /**
     * base:allocation descriptors for [offset, offset + length): asks the device repeatedly, merges adjacent extents
     * with equal status, stops at the end of the range, at {@link NbdConstants#MAX_BLOCK_STATUS_DESCRIPTORS}
     * descriptors (one with NBD_CMD_FLAG_REQ_ONE) or after {@link #MAX_EXTENTS_EXAMINED} device extents.
     */
    private void blockStatus(Request request) {
        int maxDescriptors = request.has(NBD_CMD_FLAG_REQ_ONE) ? 1 : MAX_BLOCK_STATUS_DESCRIPTORS;
        ByteBuffer out = pool.acquire(4 + 8 * maxDescriptors);
        try {
            out.putInt(BASE_ALLOCATION_ID);
            long position = request.offset();
            long end = position + request.length();
            int descriptors = 0;
            int examined = 0;
            int lastStatus = -1;
            long lastLength = 0;
            scan:
            while (position < end && examined < MAX_EXTENTS_EXAMINED) {
                List<VolumeDevice.Extent> extents = device.blockStatus(position, end - position);
                Check.that(!extents.isEmpty(), "blockStatus(%d, %d) returned no extent", position, end - position);
                for (VolumeDevice.Extent extent : extents) {
                    Check.that(extent.length() > 0 && extent.length() <= end - position,
                            "blockStatus extent of %d bytes at %d outside [1, %d]", extent.length(), position,
                            end - position);
                    int status = (extent.hole() ? NBD_STATE_HOLE : 0) | (extent.zero() ? NBD_STATE_ZERO : 0);
                    if (status == lastStatus) {
                        lastLength += extent.length(); // ≤ request length < 2^32: fits the u32 field.
                        out.putInt(out.position() - 8, (int) lastLength);
                    } else {
                        if (descriptors == maxDescriptors) break scan;
                        out.putInt((int) extent.length()).putInt(status);
                        descriptors++;
                        lastStatus = status;
                        lastLength = extent.length();
                    }
                    position += extent.length();
                    examined++;
                }
            }
        } catch (Throwable failure) {
            pool.release(out);
            throw failure;
        }
        writer.blockStatus(request, out);
    }

    private int fail(Request request, Throwable failure) {
        int error = switch (failure) {
            case DediskException.InvalidRequestException e -> NBD_EINVAL;
            case DediskException.ReadOnlyException e -> NBD_EPERM;
            case DediskException.NoSpaceException e -> NBD_ENOSPC;
            default -> NBD_EIO;
        };
        String message;
        if (error == NBD_EIO) {
            log.log(Level.ERROR, () -> Request.commandName(request.type()) + " at offset "
                    + Long.toUnsignedString(request.offset()) + " length " + request.length() + " failed", failure);
            message = failure instanceof DediskException
                    ? "I/O error: " + failure.getMessage()
                    : "internal server error (" + failure.getClass().getSimpleName() + "), see the server log";
        } else {
            log.log(Level.INFO, () -> Request.commandName(request.type()) + " refused by the volume: "
                    + failure.getMessage(), null);
            message = failure.getMessage();
        }
        writer.error(request, error, message == null ? failure.getClass().getSimpleName() : message);
        return error;
    }
}
