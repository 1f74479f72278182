package io.dedisk.pool;

import io.dedisk.DediskException.NoSpaceException;
import io.dedisk.index.DedupIndex;
import java.io.IOException;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * When the pool's upkeep runs: checkpoints (due every checkpoint interval of log bytes or when dirty pages pass
 * half the metadata cache, queued on the background executor; every 30 s while the log grows, in the server),
 * cleaning (the {@link Cleaner}), the dedup index's compaction ({@link IndexCompaction}: a bounded step each round,
 * everything in gc) and `dedisk gc`.
 *
 * The background cleaner is a controller on the garbage fraction of the segments (cleaned segments not yet
 * deleted count as garbage, as they do in `du`): above {@link #TARGET_GARBAGE} a round cleans as many victims as
 * it takes to bring the garbage one segment below the target, at most {@link #MAX_PER_ROUND}, then checkpoints
 * twice so those victims are deleted at once (the first root stops needing them, the second lets the manifest's
 * older root stop too); below the target it only looks again {@link #IDLE_NANOS} later. So the space held by
 * cleaned-but-kept segments is bounded by one round, and the cleaner's work follows the foreground's garbage, not
 * a timer. When the writes outrun it (garbage above {@link #HOLD_WRITES_ABOVE} after a round that gave space
 * back), writers of data wait for the next round ({@link #admitWrite}): the foreground's throttle. When the disk is
 * within the reserve: one segment at a time that frees at least a tenth of itself, deleted before the next, so
 * cleaning never eats the reserve it relies on. The server runs {@link #round} on its maintenance thread; the
 * simulation calls {@link #round}, {@link #clean} and {@link #checkpoint} as steps and runs the queued tasks itself
 * (no thread runs there, so no writer ever waits).
 *
 * Threads: any; the state it reads is the pool's (under its locks); one checkpoint at a time (the Checkpointer);
 * {@link #admitWrite} from writers holding no lock.
 */
final class Maintenance {
    private static final System.Logger LOG = System.getLogger("dedisk.maintenance");
    /**
     * Garbage fraction of the segments the background cleaner keeps (docs/decisions.md, "the cleaner as a
     * controller": uniform random overwrites of a 1 GiB volume end at du <= 1.35 GiB with it).
     */
    static final double TARGET_GARBAGE = 0.20;
    /**
     * Most victims per round: bounds the cleaned-but-not-deleted segments, and a round's two checkpoints (each
     * rewriting most of the dirty metadata under random writes) are paid for this many (docs/decisions.md).
     */
    static final int MAX_PER_ROUND = 8;
    /** How long the maintenance thread waits before looking again when there is nothing to clean. */
    static final long IDLE_NANOS = 100_000_000L;
    /**
     * Garbage fraction above which writers of data wait for a cleaning round that ends below it (at most
     * {@link #HOLD_MILLIS} each): when clients write faster than the cleaner can follow (a burst of large writes),
     * the pool's size stays bounded instead of the garbage running ahead.
     */
    static final double HOLD_WRITES_ABOVE = TARGET_GARBAGE + 0.02;
    /** Longest a write waits for a cleaning round; bounds the latency the hold adds (a round may find nothing to do). */
    static final long HOLD_MILLIS = 200;
    /** Live fraction below which a segment is worth cleaning when the disk is within the reserve. */
    static final double PRESSED_MAX_UTILISATION = 0.9;
    /**
     * Live fraction from which a segment is not cleaned, by the background rounds nor by `dedisk gc`: moving 95 % of
     * a segment to free 5 % of it writes 19 bytes per byte given back. A gc that cleaned every segment holding any
     * garbage rewrote a freshly imported pool whole (174 MiB moved to free nothing: its segments held ~1 % each, the
     * map pages later checkpoints replaced) and left it larger (docs/decisions.md, "dedisk gc").
     */
    static final double WORTH_MOVING_BELOW = 0.95;
    /** Most cleaning passes of one `dedisk gc` (each followed by two checkpoints; a pass that cleans nothing ends it). */
    static final int GC_PASSES = 4;
    /** A checkpoint at least this often while anything changed (the server's background work). */
    static final long CHECKPOINT_EVERY_NANOS = 30_000_000_000L;

    private final Pool pool;
    /** Chunk ids dead or skipped when a background compaction step last found nothing to do. */
    private long deadAtIndexStep = -1;
    /** Whether the last background compaction step failed (so its failure is logged once, not every round). */
    private boolean indexCompactionFailing;
    private final Executor background;
    private final AtomicBoolean checkpointScheduled = new AtomicBoolean();
    private volatile long logBytesAtCheckpoint;
    private volatile long lastCheckpointNanos = System.nanoTime();
    /** The maintenance thread runs (the server): only then do writers wait for it. */
    private volatile boolean running;
    /** Writers wait for a round that ends below the hold line (set at the end of the maintenance thread's rounds). */
    private volatile boolean holdWrites;
    private final Object roundEnded = new Object();

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
    int clean(int maxSegments, double maxUtilisation) throws IOException { return clean(maxSegments, maxUtilisation, Long.MAX_VALUE); }

    /** As {@link #clean(int, double)}, stopping once the victims cleaned held {@code bytesToFree} of garbage. */
    private int clean(int maxSegments, double maxUtilisation, long bytesToFree) throws IOException {
        long tail;
        pool.meta.readLock().lock();
        try {
            if (pool.log == null || pool.readOnlyReason() != null) return 0;
            tail = pool.log.segmentSeq();
        } finally { pool.meta.readLock().unlock(); }
        int cleaned = 0;
        long freed = 0;
        Set<Long> done = new HashSet<>();
        while (cleaned < maxSegments && freed < bytesToFree) {
            List<Cleaner.Candidate> candidates;
            pool.meta.readLock().lock();
            try {
                if (pool.readOnlyReason() != null) break;
                candidates = Cleaner.candidates(pool.segmentBytes().headMap(tail), pool.state.usage, tail, maxUtilisation);
            } finally { pool.meta.readLock().unlock(); }
            candidates.removeIf(c -> done.contains(c.segment()));
            if (candidates.isEmpty()) break;
            Cleaner.Candidate victim = candidates.get(0);
            pool.cleaner().clean(victim.segment(), pool.state, pool::appendAndApply);
            freed += victim.bytes() - victim.live();
            done.add(victim.segment());
            cleaned++;
        }
        afterMutation();
        return cleaned;
    }

    /**
     * One round of background upkeep: above {@link #TARGET_GARBAGE}, clean what brings the garbage one segment below
     * it (at most {@link #MAX_PER_ROUND} victims), or, when fresh writes are refused for space, one segment that
     * frees a tenth of itself; then two checkpoints, so what was cleaned is deleted now; and a checkpoint at least
     * every 30 s while the log grows. Returns whether it cleaned (then the next round runs at once).
     */
    boolean round() throws IOException {
        LogWriter log = pool.log;
        if (pool.closed() || log == null || pool.readOnlyReason() != null) return false;
        long[] before = segmentsAndLive();
        boolean pressed = pool.noSpaceReason() != null;
        long excess = before[0] - before[1] - (long) (TARGET_GARBAGE * before[0]);
        long deletedBefore = pool.checkpointer().stats().segmentsDeleted();
        boolean cleaned = false;
        if (pressed) {
            // Within the reserve, which holds about two segments: copy one segment that frees at least a tenth of
            // itself, deleted by the two checkpoints below, so every round gives space back before it takes more.
            cleaned = clean(1, PRESSED_MAX_UTILISATION) > 0;
        } else if (before[0] > 4L * pool.superblock().segmentSize() && excess > 0) {
            // One segment of garbage below the target as well: a round's checkpoints are paid for several victims,
            // not one each time the garbage creeps over the line.
            cleaned = clean(MAX_PER_ROUND, WORTH_MOVING_BELOW, excess + pool.superblock().segmentSize()) > 0;
        }
        if (cleaned) {
            checkpoint(); // the victims' usage is 0 in the newest root ...
            checkpoint(); // ... and in the older one the manifest keeps: this one deletes them
        } else if (log.bytesAppended() != logBytesAtCheckpoint && (pressed || System.nanoTime() - lastCheckpointNanos > CHECKPOINT_EVERY_NANOS)) {
            checkpoint();
        }
        if (!pressed) compactIndexStep(); // a rewritten chapter needs room beside the old one: not within the reserve
        // Writers wait only for rounds that give space back (after a bucket pool's takeover, deletion waits out a
        // grace period), and not while fresh writes fail with ENOSPC anyway.
        boolean gaveBack = pool.checkpointer().stats().segmentsDeleted() > deletedBefore;
        holdWrites = running && cleaned && gaveBack && !pressed && overHoldLimit(segmentsAndLive());
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

    /**
     * A bounded step of the index's compaction, while chunks die or the last step found work (not every 100 ms of an
     * idle pool: a step samples pages and asks the chunk table thousands of times). A failure (a full disk, an I/O
     * error) costs advice only: it is logged when it starts and when it ends, and never stops the round, whose
     * remaining work (leaving no-space mode) must go on.
     */
    private void compactIndexStep() {
        long deadOrSkipped = IndexCompaction.deadOrSkipped(pool);
        if (deadOrSkipped == deadAtIndexStep) return;
        try {
            DedupIndex.Compaction step = IndexCompaction.run(pool, false);
            if (step.chaptersRewritten() + step.chaptersDeleted() == 0) deadAtIndexStep = deadOrSkipped;
            if (indexCompactionFailing) LOG.log(System.Logger.Level.INFO, "the dedup index's compaction works again");
            indexCompactionFailing = false;
        } catch (IOException | RuntimeException e) {
            deadAtIndexStep = deadOrSkipped; // tried again once more chunks die, not every round
            if (!indexCompactionFailing) LOG.log(System.Logger.Level.WARNING, "the dedup index's compaction failed (its files keep dead chunks' names; no data is at risk): " + e, e);
            indexCompactionFailing = true;
        }
    }

    /** {segment bytes, live bytes}, as the usage table and the log writer know them now. */
    private long[] segmentsAndLive() {
        pool.meta.readLock().lock();
        try {
            long total = 0;
            for (long b : pool.segmentBytes().values()) total += b;
            return new long[] {total, pool.state.usage.totalLive()};
        } finally { pool.meta.readLock().unlock(); }
    }

    private static boolean overHoldLimit(long[] segmentsAndLive) {
        return segmentsAndLive[0] - segmentsAndLive[1] > HOLD_WRITES_ABOVE * segmentsAndLive[0];
    }

    /**
     * Called by a writer of data before it takes any lock: while the garbage is above {@link #HOLD_WRITES_ABOVE} and
     * the cleaner's rounds make progress, waits for a round that ends below it (at most {@link #HOLD_MILLIS}).
     */
    void admitWrite() {
        if (!holdWrites) return;
        long deadline = System.nanoTime() + HOLD_MILLIS * 1_000_000L;
        synchronized (roundEnded) {
            try {
                for (long left; holdWrites && (left = deadline - System.nanoTime()) > 0; ) {
                    roundEnded.wait(Math.max(1, left / 1_000_000L));
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    private void roundEnded() {
        synchronized (roundEnded) { roundEnded.notifyAll(); }
    }

    /** Runs {@link #round} on a background thread until the pool closes: at once while garbage is above the target. */
    void start() {
        running = true;
        Thread.ofVirtual().name("dedisk-maintenance").start(() -> {
            boolean busy = false;
            try {
                while (!pool.closed()) {
                    try {
                        if (!busy) Thread.sleep(java.time.Duration.ofNanos(IDLE_NANOS));
                        busy = round();
                    } catch (InterruptedException e) {
                        return;
                    } catch (RuntimeException | IOException e) {
                        busy = false;
                        holdWrites = false;
                        if (!pool.closed()) LOG.log(System.Logger.Level.WARNING, "background cleaning or checkpoint failed (it will be retried): " + e, e);
                    } finally {
                        roundEnded();
                    }
                }
            } finally {
                running = false;
                holdWrites = false;
                roundEnded();
            }
        });
    }

    /**
     * Cleans every segment worth it (live below {@link #WORTH_MOVING_BELOW}), drops the index's advice for dead
     * chunks, then checkpoints twice so the cleaned segments are deleted (and the index's open chapter checkpoint
     * rewritten without the dropped records); again while a pass cleans something, at most {@link #GC_PASSES}
     * passes. The result says how much of the segments is still not live.
     */
    Pool.GcResult gc() throws IOException {
        long before = segmentTotal();
        int cleaned = clean(Integer.MAX_VALUE, WORTH_MOVING_BELOW);
        DedupIndex.Compaction index = IndexCompaction.run(pool, true);
        checkpoint();
        checkpoint();
        // A pass's checkpoints can push more segments below the cut (the page versions they replace): measured after
        // 10 written clones were deleted, a second pass cleaned one more segment, 9 MB. Passes go on while they clean.
        for (int pass = 1; pass < GC_PASSES; pass++) {
            int more = clean(Integer.MAX_VALUE, WORTH_MOVING_BELOW);
            if (more == 0) break;
            cleaned += more;
            checkpoint();
            checkpoint();
        }
        long[] after = segmentsAndLive();
        return new Pool.GcResult(cleaned, before, after[0], after[0] - after[1], index);
    }

    private long segmentTotal() { return segmentsAndLive()[0]; }
}
