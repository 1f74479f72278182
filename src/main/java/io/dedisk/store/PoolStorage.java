package io.dedisk.store;

import java.io.IOException;
import java.util.UUID;

/**
 * Where a pool lives (DESIGN.md §4): its shared part — the superblock, the manifest and the segments, reached
 * through a {@link Backend} — and its local part, an {@link Fs} holding the dedup index and the CLI's lock and
 * control files (and, for a bucket, the write-back and read cache). A directory pool keeps both in one directory
 * ({@link DirectoryStorage}); a bucket pool keeps the shared part in the bucket and the local part in a cache
 * directory chosen by the pool id ({@link ObjectStorage}), which is why the local part is only known once the
 * superblock has been read.
 *
 * Threads: used by the opening thread only.
 */
public interface PoolStorage {
    /** The superblock's bytes, or null when there is no pool here. */
    byte[] readSuperblock() throws IOException;

    /** Stores the superblock of a new pool; refused (InvalidRequestException) when the place is not empty. */
    void create(byte[] superblock) throws IOException;

    /**
     * Opens the storage of pool {@code poolId}. Read-only (`check`, offline `stats`): nothing shared or local is
     * written, created or deleted.
     */
    Opened open(UUID poolId, boolean readOnly) throws IOException;

    /** The opened storage: the backend the pool's log and manifest go through, and the local files. */
    record Opened(Backend backend, Fs local) {}
}
