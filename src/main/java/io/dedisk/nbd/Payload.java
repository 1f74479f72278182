package io.dedisk.nbd;

import java.nio.ByteBuffer;
import java.util.Arrays;

import io.dedisk.util.Check;

/**
 * The data of one NBD_CMD_WRITE, as pool buffers ("pieces") allocated only as the client's bytes arrive: the first
 * piece holds up to {@link #FIRST_PIECE} bytes and every next one as many bytes as were already received, so the
 * memory a write holds is at most max(FIRST_PIECE, 2 × bytes received) (plus size-class rounding), whatever length
 * its header declared. A client that declares 32 MiB and sends nothing holds nothing but its header.
 *
 * Layout: piece i covers request bytes [start(i), start(i) + length(i)), contiguous and in order; each piece's data
 * is its [position, limit) once complete. Each piece was paid for in the {@link ByteBudget} with
 * {@link BufferPool#capacityFor} of its length.
 *
 * Threads: filled by the connection's reader thread, then handed (with happens-before through thread start) to the
 * request's thread, which writes it to the device and calls {@link #release} exactly once.
 */
final class Payload {
    static final int FIRST_PIECE = 256 << 10;

    private ByteBuffer[] pieces = new ByteBuffer[4];
    private long[] charges = new long[4];
    private int count;
    private long bytes;
    private boolean released;

    /** Length of the next piece for a payload of {@code total} bytes of which {@code received} are in. */
    static int nextPieceLength(long total, long received) {
        Check.that(received >= 0 && received < total, "payload piece after %d of %d bytes", received, total);
        return (int) Math.min(total - received, Math.max(FIRST_PIECE, received));
    }

    /** Adds a complete piece (data in [position, limit)) that cost {@code charge} bytes of budget. */
    void add(ByteBuffer piece, long charge) {
        Check.that(!released, "piece added to a released payload");
        if (count == pieces.length) {
            pieces = Arrays.copyOf(pieces, count * 2);
            charges = Arrays.copyOf(charges, count * 2);
        }
        pieces[count] = piece;
        charges[count] = charge;
        count++;
        bytes += piece.remaining();
    }

    int pieces() {
        return count;
    }

    ByteBuffer piece(int i) {
        Check.that(i >= 0 && i < count, "piece %d of %d", i, count);
        return pieces[i];
    }

    /** Bytes of data in all complete pieces. */
    long bytes() {
        return bytes;
    }

    /** Gives every piece back to the pool and its charge back to the budget. Idempotent. */
    void release(BufferPool pool, ByteBudget budget) {
        if (released) return;
        released = true;
        for (int i = 0; i < count; i++) {
            pool.release(pieces[i]);
            budget.release(charges[i]);
            pieces[i] = null;
        }
    }
}
