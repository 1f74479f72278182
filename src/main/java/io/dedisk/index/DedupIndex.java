package io.dedisk.index;

import java.io.IOException;

/**
 * The dedup index: block name -> chunk id, as advice. An answer may be stale (the chunk died) or, for lossy
 * indexes, missing; the pool checks that an advised chunk is live before sharing it, so wrong advice costs a
 * missed dedup and nothing else. Chunk ids are never reused by the pool, and after a crash the pool continues
 * ids above {@link #maxChunkId()}, so advice can never name a chunk holding other content.
 *
 * Threads: every method may be called from several threads at once; implementations synchronize internally.
 */
public interface DedupIndex extends AutoCloseable {
    long NONE = -1;

    /** The chunk id last posted for this name, or {@link #NONE}. */
    long lookup(BlockName name);

    /**
     * Posts (name -> chunkId) for a new chunk, or refreshes it after a confirmed hit (it moves to the newest part of
     * the window; an index may skip that while the name's record is still in the newer part).
     */
    void insert(BlockName name, long chunkId);

    /** Entries held now (records that can answer). Cheap: no I/O, no lock. */
    long entries();

    /** Entries the index holds when its window is full (Long.MAX_VALUE when unbounded). */
    long windowEntries();

    /** Memory held by the index, in bytes, caches included (what it really holds, not a configured figure). Cheap. */
    long memoryBytes();

    /**
     * Bytes of the index's files on disk (0 for an index that keeps none): what the pool reports inside its
     * physical bytes. Cheap (no I/O, no lock): kept up to date as the index writes and deletes its files.
     */
    long diskBytes();

    boolean sparse();

    /** The largest chunk id ever posted and possibly still on disk as advice (0 when none). */
    long maxChunkId();

    /** Fraction of a rebuild after a crash still to do, 0 when the index is complete. */
    default double rebuildRemaining() { return 0; }

    /**
     * Makes every insert that returned before this call survive a crash (process kill, or power loss: the data is
     * synced), so that after the next open the index holds all of them, minus what its window evicted. Costs what
     * was posted since the last chapter close at most, nothing when nothing was posted since the last call. The
     * pool calls it at each of its checkpoints, before its own checkpoint becomes durable, and re-inserts, on
     * replay, the names of chunks created after its checkpoint.
     *
     * @throws IOException the records could not be made durable (they stay in memory and the next call retries):
     *     advice at risk, never data
     */
    void checkpoint() throws IOException;

    /**
     * Which chunk ids are dead, as the pool knows it, for compaction. Dead must be for ever: the pool answers only
     * once it is open and recovered, when it hands out no id it has handed out before (ids are never reused) and
     * posts a name only after its chunk is in the chunk table, so an id it calls dead never comes back as a live
     * chunk. Called without any index lock held (it may take the pool's own locks).
     */
    interface DeadChunks {
        boolean dead(long chunkId);

        /** Makes every death {@link #dead} reported so far durable (the pool syncs its log), before advice is dropped for it. */
        void makeDurable() throws IOException;
    }

    /** What compaction gave back: chapters rewritten smaller, chapters deleted (no live record left), records, file bytes. */
    record Compaction(long chaptersRewritten, long chaptersDeleted, long records, long bytes) {
        public static final Compaction NONE = new Compaction(0, 0, 0, 0);

        public Compaction plus(Compaction o) {
            return new Compaction(chaptersRewritten + o.chaptersRewritten, chaptersDeleted + o.chaptersDeleted, records + o.records, bytes + o.bytes);
        }
    }

    /**
     * Drops the advice of dead chunks everywhere: every closed chapter holding any is rewritten without it (or
     * deleted when nothing live is left; it reads every chapter once), and the open chapter forgets it. For
     * {@code dedisk gc}. Lookups and inserts go on meanwhile.
     */
    default Compaction compactAll(DeadChunks dead) throws IOException { return Compaction.NONE; }

    /**
     * A bounded step of background compaction: estimates the dead fraction of a few chapters by sampling and rewrites
     * at most one whose estimate makes it worth it.
     */
    default Compaction compactSome(DeadChunks dead) throws IOException { return Compaction.NONE; }

    /** What compaction gave back since this index was opened (for stats). Cheap. */
    default Compaction compacted() { return Compaction.NONE; }

    /** A {@link #checkpoint} captured but not yet written (see {@link #beginCheckpoint}). */
    interface PendingCheckpoint {
        /** Makes the captured inserts durable; called exactly once, by the thread that began the checkpoint. */
        void write() throws IOException;
    }

    /**
     * {@link #checkpoint} in two steps, so the pool can capture under its metadata write lock (where no insert slips
     * in) and do the I/O after letting its writers go, before its own checkpoint becomes durable. The capture is
     * cheap; until {@link PendingCheckpoint#write} returns, inserts that close a chapter wait for it.
     */
    default PendingCheckpoint beginCheckpoint() throws IOException {
        checkpoint();
        return () -> { };
    }

    /** Saves the index durably so the next open does not rebuild it (clean shutdown). */
    void save() throws IOException;

    @Override
    void close() throws IOException;
}
