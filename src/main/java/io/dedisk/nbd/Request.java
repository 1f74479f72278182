package io.dedisk.nbd;

import static io.dedisk.nbd.NbdConstants.*;

import java.nio.ByteBuffer;

/**
 * One transmission-phase request header, and the protocol rules that decide whether it may run at all.
 *
 * Wire layout (28 bytes, big-endian): magic u32 (0x25609513), command flags u16, type u16, cookie u64,
 * offset u64 (unsigned), length u32 (unsigned); NBD_CMD_WRITE is followed by length bytes of data.
 *
 * Threads: parsed on the connection's reader thread, then handed (immutable) to the request's own virtual thread,
 * which checks it. Invariants: {@code length} is in [0, 2^32); {@code offset} keeps the raw 64 bits (negative
 * means ≥ 2^63 and is always out of range).
 */
record Request(int flags, int type, long cookie, long offset, long length) {

    /** Why a request is refused before touching the device: an NBD error value and a message for humans. */
    record Rejection(int error, String message) {}

    /** Parses the header after the magic (which the caller consumed and checked) from {@code in}. */
    static Request parse(ByteBuffer in) {
        int flags = Short.toUnsignedInt(in.getShort());
        int type = Short.toUnsignedInt(in.getShort());
        long cookie = in.getLong();
        long offset = in.getLong();
        long length = Integer.toUnsignedLong(in.getInt());
        return new Request(flags, type, cookie, offset, length);
    }

    /** Bytes of data that follow the header on the wire. */
    long payloadLength() {
        return type == NBD_CMD_WRITE ? length : 0;
    }

    /** Bytes of data a successful reply carries (only reads carry data). */
    long replyDataLength() {
        return type == NBD_CMD_READ ? length : 0;
    }

    /**
     * Share of the connection's in-flight budget ({@link NbdConnection#INFLIGHT_UNITS} units of {@code unitBytes})
     * this request holds from the moment its header is read until its reply has left: one unit per started
     * {@code unitBytes} of payload or read data (reads beyond the maximum payload are refused and cost nothing
     * extra), at least one, at most all of them.
     */
    int inflightUnits(long unitBytes) {
        long bytes = Math.min(Math.max(payloadLength(), replyDataLength()), MAX_PAYLOAD);
        long units = Math.max(1, (bytes + unitBytes - 1) / unitBytes);
        return (int) Math.min(units, NbdConnection.INFLIGHT_UNITS);
    }

    /**
     * Bytes of the server's global budget ({@link ByteBudget}) this request's reply buffer costs, taken by the
     * reader when the header arrives and given back when the reply has left: the read data's buffer for a read the
     * server will serve, the block-status buffer, else one minimum-size buffer (simple or error reply). A write's
     * payload pieces are paid for separately as they arrive ({@link Payload}).
     */
    long replyCharge() {
        if (type == NBD_CMD_READ && length <= MAX_PAYLOAD) return BufferPool.capacityFor((int) length);
        if (type == NBD_CMD_BLOCK_STATUS) return BufferPool.capacityFor(4 + 8 * MAX_BLOCK_STATUS_DESCRIPTORS);
        return BufferPool.capacityFor(0);
    }

    boolean has(int flag) {
        return (flags & flag) != 0;
    }

    /**
     * Applies the spec's rules for this command against what was negotiated. Returns null if the request may run.
     * Order: unknown command, flags not valid for it, missing negotiation, zero length, read-only, range, size.
     */
    Rejection check(Session session) {
        int allowed = switch (type) {
            // NBD_CMD_FLAG_FUA "is valid for all commands, provided NBD_FLAG_SEND_FUA has been negotiated".
            case NBD_CMD_READ -> NBD_CMD_FLAG_FUA | (session.structuredReplies() ? NBD_CMD_FLAG_DF : 0);
            case NBD_CMD_WRITE, NBD_CMD_FLUSH, NBD_CMD_TRIM, NBD_CMD_CACHE -> NBD_CMD_FLAG_FUA;
            case NBD_CMD_WRITE_ZEROES -> NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_FAST_ZERO;
            case NBD_CMD_BLOCK_STATUS -> NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_REQ_ONE;
            default -> -1;
        };
        if (allowed == -1) return new Rejection(NBD_EINVAL, "unknown command type " + type);
        if ((flags & ~allowed) != 0) {
            return new Rejection(NBD_EINVAL, String.format("command flags 0x%x not valid for %s (allowed 0x%x)",
                    flags, commandName(type), allowed));
        }
        if (type == NBD_CMD_FLUSH) {
            return offset == 0 && length == 0 ? null
                    : new Rejection(NBD_EINVAL, "NBD_CMD_FLUSH offset and length must be zero, found offset "
                            + Long.toUnsignedString(offset) + " length " + length);
        }
        if (type == NBD_CMD_BLOCK_STATUS && !session.baseAllocation()) {
            return new Rejection(NBD_EINVAL, "NBD_CMD_BLOCK_STATUS without a metadata context selected by "
                    + "NBD_OPT_SET_META_CONTEXT (which needs NBD_OPT_STRUCTURED_REPLY first)");
        }
        if (length == 0) return new Rejection(NBD_EINVAL, commandName(type) + " with length 0");
        boolean writes = type == NBD_CMD_WRITE || type == NBD_CMD_WRITE_ZEROES || type == NBD_CMD_TRIM;
        if (writes && session.volume().readOnly()) {
            return new Rejection(NBD_EPERM, commandName(type) + " on read-only export " + session.volume().name());
        }
        long size = session.size();
        if (offset < 0 || offset > size || length > size - offset) {
            // Writes beyond the end are "no space" (the spec's SHOULD for WRITE and WRITE_ZEROES), others invalid.
            int error = type == NBD_CMD_WRITE || type == NBD_CMD_WRITE_ZEROES ? NBD_ENOSPC : NBD_EINVAL;
            return new Rejection(error, String.format("%s beyond end of export: offset %s + length %d > size %d",
                    commandName(type), Long.toUnsignedString(offset), length, size));
        }
        if (type == NBD_CMD_READ && length > MAX_PAYLOAD) {
            // Simple replies: a longer read "will fail"; structured replies: "reject ... with NBD_EOVERFLOW".
            return new Rejection(session.structuredReplies() ? NBD_EOVERFLOW : NBD_EINVAL,
                    "NBD_CMD_READ of " + length + " bytes exceeds the maximum payload " + MAX_PAYLOAD);
        }
        return null;
    }

    static String commandName(int type) {
        return switch (type) {
            case NBD_CMD_READ -> "NBD_CMD_READ";
            case NBD_CMD_WRITE -> "NBD_CMD_WRITE";
            case NBD_CMD_DISC -> "NBD_CMD_DISC";
            case NBD_CMD_FLUSH -> "NBD_CMD_FLUSH";
            case NBD_CMD_TRIM -> "NBD_CMD_TRIM";
            case NBD_CMD_CACHE -> "NBD_CMD_CACHE";
            case NBD_CMD_WRITE_ZEROES -> "NBD_CMD_WRITE_ZEROES";
            case NBD_CMD_BLOCK_STATUS -> "NBD_CMD_BLOCK_STATUS";
            default -> "command " + type;
        };
    }
}
