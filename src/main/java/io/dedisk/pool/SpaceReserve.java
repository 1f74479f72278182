package io.dedisk.pool;

import io.dedisk.DediskException;
import io.dedisk.DediskException.NoSpaceException;
import io.dedisk.DediskException.StorageException;
import io.dedisk.store.Backend;
import io.dedisk.store.NoSpaceLeftException;
import java.io.IOException;
import java.util.UUID;

/**
 * The pool's space reserve and its no-space mode: fresh data may only use the backend's free space above the
 * reserve (2 segments + half the metadata cache + 4 MiB: what the cleaner needs to move one segment's live data
 * and start the next, a checkpoint's dirty pages, a clean stop), so those can always finish. Below it, writes
 * that need new chunks fail with ENOSPC and {@link #reason} says why; everything else goes on. The free space is
 * looked up at most once per MiB of log while there is room and on every fresh write while there is not, so the
 * mode ends by itself as soon as space comes back.
 *
 * Threads: {@link #checkFresh} and {@link #failure} run under the pool's metadata write lock; {@link #reason}
 * is read from anywhere.
 */
final class SpaceReserve {
    private static final System.Logger LOG = System.getLogger("dedisk.space");
    private static final long CHECK_EVERY = 1 << 20;

    private final Backend backend;
    private final UUID poolId;
    private final long reserve;
    private volatile String reason;
    /** Log position of the last free-space lookup; far in the past forces the next one. */
    private long checkedAt = -CHECK_EVERY;

    SpaceReserve(Backend backend, UUID poolId, long reserveBytes) {
        this.backend = backend;
        this.poolId = poolId;
        this.reserve = reserveBytes;
    }

    long reserveBytes() { return reserve; }

    /** Why fresh writes are refused now, or null. */
    String reason() { return reason; }

    /** Throws NoSpaceException when fresh data would eat into the reserve; {@code logBytes} is the log's position. */
    void checkFresh(long logBytes) {
        if (reason == null && logBytes - checkedAt < CHECK_EVERY) return;
        checkedAt = logBytes;
        long free;
        try {
            free = backend.usableSpace();
        } catch (IOException e) {
            return; // unknown: let the write try, ENOSPC still ends in NoSpaceException
        }
        if (free >= reserve) {
            if (reason != null) LOG.log(System.Logger.Level.INFO, "pool {0}: space is back ({1} bytes free), fresh writes resume", poolId, free);
            reason = null;
            return;
        }
        String why = "the pool's disk has " + free + " bytes free, below the " + reserve + " bytes kept for cleaning, checkpoints and a clean stop";
        if (reason == null) LOG.log(System.Logger.Level.WARNING, "pool {0}: fresh writes refused: {1}", poolId, why);
        reason = why;
        throw new NoSpaceException("no space for new data: " + why, null);
    }

    /** The exception for a failed backend write: ENOSPC puts the pool in no-space mode, anything else is an I/O failure. */
    DediskException failure(String what, IOException e) {
        if (e instanceof NoSpaceLeftException) {
            reason = what + ": the disk is full (" + e.getMessage() + ")";
            checkedAt = -CHECK_EVERY;
            return new NoSpaceException(what + ": the pool's disk is full (" + e.getMessage() + ")", e);
        }
        return new StorageException(what + " failed: " + e, e);
    }
}
