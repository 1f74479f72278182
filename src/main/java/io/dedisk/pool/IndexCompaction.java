package io.dedisk.pool;

import io.dedisk.index.DedupIndex;
import java.io.IOException;

/**
 * Runs the dedup index's compaction for the pool ({@code dedisk gc} and the background rounds of {@link
 * Maintenance}) with the pool's definition of a dead chunk.
 *
 * Dead, exactly: the chunk table has handed the id out (id &lt; next id) and holds no live chunk under it. This is
 * asked only of an open pool, after recovery: from then on the table creates only ids it hands out afresh, under the
 * same write lock that applies the WRITE record, and the index is posted a name only after its chunk is created
 * (PoolState.applyWrite), so an id the index holds is either a created chunk (live until its count drops to 0, then
 * dead for ever: ids are never reused) or one whose record never became durable before a crash (never created, and
 * skipped for ever: ChunkTable.skipIdsThrough). Replay, which does create ids below the next id, is over by then.
 * Before advice is dropped the log is synced, so a crash cannot bring back a chunk whose advice is gone.
 *
 * Threads: any; {@link DedupIndex.DeadChunks#dead} takes the metadata read lock per id, and the index calls it with
 * no index lock held (the write path takes the metadata lock, then the index's).
 */
final class IndexCompaction {
    private IndexCompaction() {}

    /** Ids handed out that hold no live chunk (dead or skipped): it grows exactly when there may be advice to drop. */
    static long deadOrSkipped(Pool pool) {
        pool.meta.readLock().lock();
        try {
            return pool.state.chunks.nextId() - pool.state.chunks.liveChunks();
        } finally { pool.meta.readLock().unlock(); }
    }

    /** Everything ({@code all}, for gc) or one bounded background step; nothing on a read-only pool. */
    static DedupIndex.Compaction run(Pool pool, boolean all) throws IOException {
        if (pool.closed() || pool.log == null || pool.readOnlyReason() != null) return DedupIndex.Compaction.NONE;
        DedupIndex.DeadChunks dead = new DedupIndex.DeadChunks() {
            @Override
            public boolean dead(long chunkId) {
                pool.meta.readLock().lock();
                try {
                    return chunkId < pool.state.chunks.nextId() && !pool.state.chunks.isLive(chunkId);
                } finally { pool.meta.readLock().unlock(); }
            }

            @Override
            public void makeDurable() { pool.syncLog(); }
        };
        return all ? pool.index.compactAll(dead) : pool.index.compactSome(dead);
    }
}
