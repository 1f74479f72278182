package io.dedisk.pool;

import io.dedisk.DediskException.NoSpaceException;
import java.io.IOException;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * When the pool's upkeep runs: checkpoints (due every checkpoint interval of log bytes or when dirty pages pass
 * half the metadata cache, queued on the background executor; every 30 s while the log grows, in the server),
 * cleaning (the {@link Cleaner}, while garbage is above {@link #CLEAN_ABOVE_GARBAGE} of the segments; when the
 * disk is within the reserve, one segment at a time that frees at least a tenth of itself, deleted before the
 * next, so cleaning never eats the reserve it relies on), the dedup index's compaction ({@link IndexCompaction}: a
 * bounded step each round, everything in gc) and `dedisk gc`. The server runs {@link #round} on
 * its maintenance thread, at once again while there is cleaning to do, else every second; the simulation calls
 * {@link #clean} and {@link #checkpoint} as steps and runs the queued tasks itself.
 *
 * Threads: any; the state it reads is the pool's (under its locks); one checkpoint at a time (the Checkpointer).
 */
final class Maintenance {
    private static final System.Logger LOG = System.getLogger("dedisk.maintenance");
    /** Garbage fraction of the segments above which the background cleaner works. */
    static final double CLEAN_ABOVE_GARBAGE = 0.20;
    /** Segments the background cleaner cleans per round before it lets a checkpoint free them. */
    static final int CLEAN_PER_ROUND = 8;
    /** Live fraction below which a segment is worth cleaning when the disk is within the reserve. */
    static final double PRESSED_MAX_UTILISATION = 0.9;
    /** A checkpoint at least this often while anything changed (the server's background work). */
    static final long CHECKPOINT_EVERY_NANOS = 30_000_000_000L;

    private final Pool pool;
    private final Executor background;
    private final AtomicBoolean checkpointScheduled = new AtomicBoolean();
    private volatile long logBytesAtCheckpoint;
    private volatile long lastCheckpointNanos = System.nanoTime();

    Maintenance(Pool pool, Executor background) {
        this.pool = pool;
        this.background = background;
    }

    /** After a change: queue a checkpoint when the log since the last one or the dirty metadata has grown too large. */
    void afterMutation() {
        LogWriter log = pool.log;
        if (log == null) return;
        boolean due = log.bytesAppended() - logBytesAtCheckpoint > pool.superblock().checkpointInterval() || pool.state.cache.overDirtyLimit();
        if (due) checkpointSoon();
    }

    /** Queues a checkpoint on the background executor unless one is queued already. */
    void checkpointSoon() {
        if (checkpointScheduled.compareAndSet(false, true)) {
            background.execute(() -> {
                try {
                    checkpoint();
                } catch (RuntimeException | IOException e) {
                    LOG.log(System.Logger.Level.WARNING, "periodic checkpoint failed (the log still holds everything): " + e, e);
                } finally {
                    checkpointScheduled.set(false);
                }
            });
        }
    }

    void checkpoint() throws IOException {
        LogWriter log = pool.log;
        long at = log == null ? 0 : log.bytesAppended();
        Set<Long> deleted;
        try {
            deleted = pool.checkpointer().checkpoint(pool.state, log, pool::sync, pool::readOnlyReason);
        } catch (IOException e) {
            throw pool.storageFailure("checkpoint", e);
        }
        if (deleted == null) return;
        logBytesAtCheckpoint = at;
        lastCheckpointNanos = System.nanoTime();
        if (deleted.isEmpty()) return;
        pool.meta.writeLock().lock(); // after the deletion let go of the segment guard: meta before guard, always
        try {
            pool.segmentBytes().keySet().removeAll(deleted);
        } finally { pool.meta.writeLock().unlock(); }
    }

    /**
     * Cleans up to {@code maxSegments} segments below the tail as it is now whose live fraction is below {@code
     * maxUtilisation}, best cost-benefit first; returns how many. Only segments that existed when it started are
     * candidates, so the copies it makes are never cleaned again in the same call. The checkpoints that follow
     * make the cleaned segments deletable.
     */
    int clean(int maxSegments, double maxUtilisation) throws IOException {
        long tail;
        pool.meta.readLock().lock();
        try {
            if (pool.log == null || pool.readOnlyReason() != null) return 0;
            tail = pool.log.segmentSeq();
        } finally { pool.meta.readLock().unlock(); }
        int cleaned = 0;
        Set<Long> done = new HashSet<>();
        while (cleaned < maxSegments) {
            List<Cleaner.Candidate> candidates;
            pool.meta.readLock().lock();
            try {
                if (pool.readOnlyReason() != null) break;
                candidates = Cleaner.candidates(pool.segmentBytes().headMap(tail), pool.state.usage, tail, maxUtilisation);
            } finally { pool.meta.readLock().unlock(); }
            candidates.removeIf(c -> done.contains(c.segment()));
            if (candidates.isEmpty()) break;
            long victim = candidates.get(0).segment();
            pool.cleaner().clean(victim, pool.state, pool::appendAndApply);
            done.add(victim);
            cleaned++;
        }
        afterMutation();
        return cleaned;
    }

    /**
     * One round of background upkeep: clean while garbage is above {@link #CLEAN_ABOVE_GARBAGE} of the segments,
     * or whatever holds garbage when fresh writes are refused for space, then checkpoint so cleaned segments are
     * deleted; and checkpoint at least every 30 s while the log grows. Returns whether it cleaned.
     */
    boolean round() throws IOException {
        LogWriter log = pool.log;
        if (pool.closed() || log == null || pool.readOnlyReason() != null) return false;
        long total = 0, live;
        pool.meta.readLock().lock();
        try {
            for (long b : pool.segmentBytes().values()) total += b;
            live = pool.state.usage.totalLive();
        } finally { pool.meta.readLock().unlock(); }
        boolean pressed = pool.noSpaceReason() != null;
        boolean cleaned = false;
        if (pressed) {
            // Within the reserve, which holds about two segments: copy one segment that frees at least a tenth of
            // itself, then let two checkpoints delete it, so every round gives space back before it takes more.
            cleaned = clean(1, PRESSED_MAX_UTILISATION) > 0;
            if (cleaned) checkpoint();
        } else if (total > 4L * pool.superblock().segmentSize() && total - live > CLEAN_ABOVE_GARBAGE * total) {
            cleaned = clean(CLEAN_PER_ROUND, 0.95) > 0;
        }
        boolean changed = log.bytesAppended() != logBytesAtCheckpoint;
        boolean stale = changed && System.nanoTime() - lastCheckpointNanos > CHECKPOINT_EVERY_NANOS;
        if (cleaned || stale || pressed && changed) checkpoint();
        IndexCompaction.run(pool, false); // a bounded step: the index gives back the space of dead chunks' names
        if (pressed) {
            pool.meta.writeLock().lock();
            try {
                pool.checkFreshSpace();
            } catch (NoSpaceException stillFull) {
                // stays in no-space mode until the cleaner or the operator frees space
            } finally { pool.meta.writeLock().unlock(); }
        }
        return cleaned;
    }

    /** Runs {@link #round} on a background thread until the pool closes: at once while it cleans, else every second. */
    void start() {
        Thread.ofVirtual().name("dedisk-maintenance").start(() -> {
            boolean busy = false;
            while (!pool.closed()) {
                try {
                    if (!busy) Thread.sleep(1000);
                    busy = round();
                } catch (InterruptedException e) {
                    return;
                } catch (RuntimeException | IOException e) {
                    busy = false;
                    if (!pool.closed()) LOG.log(System.Logger.Level.WARNING, "background cleaning or checkpoint failed (it will be retried): " + e, e);
                }
            }
        });
    }

    /**
     * Cleans every segment holding garbage, drops the index's advice for dead chunks, then checkpoints twice so the
     * cleaned segments are deleted (and the index's open chapter checkpoint rewritten without the dropped records).
     */
    Pool.GcResult gc() throws IOException {
        long before = segmentTotal();
        int cleaned = clean(Integer.MAX_VALUE, 1.0);
        io.dedisk.index.DedupIndex.Compaction index = IndexCompaction.run(pool, true);
        checkpoint();
        checkpoint();
        return new Pool.GcResult(cleaned, before, segmentTotal(), index);
    }

    private long segmentTotal() {
        pool.meta.readLock().lock();
        try {
            long t = 0;
            for (long b : pool.segmentBytes().values()) t += b;
            return t;
        } finally { pool.meta.readLock().unlock(); }
    }
}
