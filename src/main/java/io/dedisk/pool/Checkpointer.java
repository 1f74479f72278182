package io.dedisk.pool;

import io.dedisk.store.Backend;
import io.dedisk.util.Check;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * Incremental checkpoints: the dirty metadata pages, written bottom-up into the log (children first, so each parent
 * records its children's new addresses), then one ROOT record, at which the dedup index's own checkpoint is
 * captured, then — once the index's records and the log up to the root are synced — the manifest that names it.
 * Nothing else: no full image of the pool exists anywhere. Recovery loads the root and replays the bounded log
 * suffix after it. A page version that several snapshots and clones share and the cleaner
 * moves is written once, and every holder records that one copy ({@link MetaPage#relocating}).
 *
 * Segment deletion (the last step of the cleaner's work) happens here, because only a checkpoint knows what the
 * durable roots still need: a segment is deleted once its usage was 0 in both roots the manifest names and it lies
 * wholly before the older one (so neither root, nor a replay from either, reads it), and no reader is inside it
 * (the segment guard).
 *
 * Threads: one checkpoint at a time ({@link #lock}). Writers are never paused for the whole dirty set: the dirty
 * leaves (nearly all of it) are written first in batches of at most {@link #LEAVES_PER_HOLD}, each batch under the
 * pool's metadata write lock (appends are ordered by it), and between batches the lock is let go and handed to
 * whoever is waiting ({@link #handOff}). A leaf written that way is clean at its new address at once (its parent, dirty, records
 * it), so a writer that changes it again simply dirties it again. Then one last hold writes what is dirty now (the
 * interior pages, pages the cleaner moves, leaves dirtied meanwhile) and the root, and captures the dedup index's
 * checkpoint; the index's I/O, the sync, the manifest and the deletions run after it, with writers going on. So a
 * writer waits at most one batch, or the last hold, whose size is what was dirtied during the batches.
 */
final class Checkpointer {
    private static final System.Logger LOG = System.getLogger("dedisk.checkpoint");
    /** Pages per append: bounds one write to ~2 MiB. */
    private static final int PAGES_PER_APPEND = 256;
    /**
     * Leaves written per hold of the metadata write lock before the last hold: ~0.5 MiB, well under a millisecond;
     * fewer in a small cache (a thirty-second of it), whose checkpoints are small too.
     */
    static final int LEAVES_PER_HOLD = 64;
    /** Passes over the dirty leaves before the last hold: the second writes what writers dirtied during the first. */
    private static final int LEAF_PASSES = 2;
    /** How long, at most, a checkpoint waits between batches for the threads queued on the lock to have had it. */
    private static final long HAND_OFF_NANOS = 10_000_000;

    private final Backend backend;
    private final UUID poolId;
    private final io.dedisk.index.DedupIndex index;
    /** The segments that exist (the pool's segment sizes, kept by the log writer); read under the write lock. */
    private final java.util.function.Supplier<java.util.Collection<Long>> segments;
    private final ReentrantReadWriteLock meta;
    private final ReentrantReadWriteLock segmentGuard;
    private final java.util.concurrent.locks.ReentrantLock lock = new java.util.concurrent.locks.ReentrantLock();
    private Manifest manifest;
    /** Segments whose usage was 0 in the newest durable root (candidates for deletion after the next one). */
    private Set<Long> zeroInNewest;
    private long pagesWritten;
    private long pageBytesWritten;
    private long checkpoints;
    private long segmentsDeleted;
    /** Set by {@link #stop}, under {@link #lock}. */
    private boolean stopped;
    /** Runs between batches instead of {@link #handOff} (the simulation schedules its steps there); null: hand off. */
    private volatile Runnable betweenBatches;

    Checkpointer(Backend backend, UUID poolId, io.dedisk.index.DedupIndex index, java.util.function.Supplier<java.util.Collection<Long>> segments,
                 ReentrantReadWriteLock meta, ReentrantReadWriteLock segmentGuard, Manifest manifest, Set<Long> zeroInNewest) {
        this.backend = backend;
        this.segments = segments;
        this.poolId = poolId;
        this.index = index;
        this.meta = meta;
        this.segmentGuard = segmentGuard;
        this.manifest = manifest != null ? manifest : new Manifest(poolId, 1, Manifest.RootRef.NONE, Manifest.RootRef.NONE, false, Manifest.NO_OWNER, 0, 0);
        this.zeroInNewest = zeroInNewest;
    }

    record Stats(long checkpoints, long pagesWritten, long pageBytesWritten, long segmentsDeleted) {}

    synchronized Stats stats() { return new Stats(checkpoints, pagesWritten, pageBytesWritten, segmentsDeleted); }

    void betweenBatches(Runnable step) { betweenBatches = step; }

    /**
     * No checkpoint is written once this returns (the pool is closing: its last checkpoint is done); waits for one in
     * flight, so none runs on, into a log, index or directory that is being closed.
     */
    void stop() {
        lock.lock();
        try {
            stopped = true;
        } finally {
            lock.unlock();
        }
    }

    /** The segment below which the durable roots need nothing: the older root's segment (0 when there is none). */
    synchronized long deletionLimit() {
        return manifest.previous().present() ? MetaPage.segmentOf(manifest.previous().address()) : 0;
    }

    /**
     * Writes a checkpoint of {@code state}. {@code sync} makes the log durable up to a point (the pool's flush).
     * Returns the segments it deleted, or null when the pool cannot be written (read-only).
     */
    Set<Long> checkpoint(PoolState state, LogWriter log, ThrowingRunnable sync, java.util.function.Supplier<String> readOnly) throws IOException {
        lock.lock();
        try {
            if (stopped) return null; // the pool closed: a checkpoint queued before is not written after it
            Manifest.RootRef ref;
            Set<Long> zeroNow;
            if (!writeLeavesInBatches(state, log, readOnly)) return null;
            io.dedisk.index.DedupIndex.PendingCheckpoint indexCheckpoint = null;
            meta.writeLock().lock();
            try {
                if (readOnly.get() != null || log == null) return null;
                long number = state.checkpointNumber + 1;
                // The index's advice up to here becomes durable before the root that replay will start after: names
                // posted later are recomputed by that replay, so a crash loses none. No insert can slip in between
                // (inserts happen under this lock); its I/O runs after the lock, before the sync below.
                indexCheckpoint = captureIndex();
                writeDirtyPages(state.cache.dirtyByLevel(), state, log, number);
                ByteBuffer root = state.root(number).encode();
                LogWriter.Appended a = log.appendAll(List.of(new LogWriter.Pending(root, LogRecord.ROOT, root.position() - LogRecord.HEADER_SIZE)));
                if (a.error() != null) throw a.error();
                ref = new Manifest.RootRef(MetaPage.address(a.segments()[0], a.offsets()[0]), root.limit(), root.getInt(24));
                state.checkpointNumber = number;
                zeroNow = zeroSegments(state, MetaPage.segmentOf(ref.address()));
            } finally {
                meta.writeLock().unlock();
                writeIndex(indexCheckpoint);
            }
            // The manifest may only name a root that is durable, with everything before it.
            sync.run();
            Manifest next = manifest.withRoots(ref, manifest.newest());
            backend.writeManifest(next.encode());
            Set<Long> deletable = new HashSet<>(zeroNow);
            deletable.retainAll(zeroInNewest);
            long limit;
            synchronized (this) {
                manifest = next;
                zeroInNewest = zeroNow;
                checkpoints++;
                limit = deletionLimit();
            }
            long now = System.currentTimeMillis();
            long grace = Ownership.takeoverGraceMillis(backend); // see Manifest
            deletable.removeIf(seq -> seq >= limit || !next.deletable(seq, now, grace));
            deleteSegments(deletable);
            return deletable;
        } finally {
            lock.unlock();
        }
    }

    /** A clean stop of a writer that owns a shared pool: the same roots, the owned flag cleared (see {@link Ownership}). */
    void writeClosedManifest() throws IOException {
        lock.lock();
        try {
            Manifest next = manifest.closed();
            backend.writeManifest(next.encode());
            synchronized (this) { manifest = next; }
        } finally {
            lock.unlock();
        }
    }

    interface ThrowingRunnable {
        void run() throws IOException;
    }

    /** The index's part of the checkpoint, captured under the write lock. A failure loses advice at worst, never data. */
    private io.dedisk.index.DedupIndex.PendingCheckpoint captureIndex() {
        try {
            return index.beginCheckpoint();
        } catch (IOException | RuntimeException e) {
            indexCheckpointFailed(e);
            return null;
        }
    }

    /** Writes what {@link #captureIndex} captured (after the write lock: inserts go on meanwhile). */
    private static void writeIndex(io.dedisk.index.DedupIndex.PendingCheckpoint pending) {
        if (pending == null) return;
        try {
            pending.write();
        } catch (IOException | RuntimeException e) {
            indexCheckpointFailed(e);
        }
    }

    private static void indexCheckpointFailed(Exception e) {
        LOG.log(System.Logger.Level.WARNING, "dedup index checkpoint failed (advice since its last one may be lost in a crash): {0}", e.toString());
    }

    /**
     * Writes the dirty leaves that are only this tree's changes (not pages the cleaner moves, which every holder must
     * switch to in one hold) in batches of {@link #LEAVES_PER_HOLD}, letting writers in between. Returns false when
     * the pool cannot be written (read-only).
     */
    private boolean writeLeavesInBatches(PoolState state, LogWriter log, java.util.function.Supplier<String> readOnly) throws IOException {
        int perHold = (int) Math.max(1, Math.min(LEAVES_PER_HOLD, state.cache.stats().capacityBytes() / MetadataCache.PAGE_COST / 32));
        for (int pass = 0; pass < LEAF_PASSES; pass++) {
            List<MetaPage> leaves = new ArrayList<>();
            meta.writeLock().lock();
            try {
                if (readOnly.get() != null || log == null) return false;
                for (MetaPage p : state.cache.dirtyByLevel()) {
                    if (p.key.level() > 0) break; // sorted by level: the rest are interior pages
                    if (!p.relocating) leaves.add(p);
                }
            } finally { meta.writeLock().unlock(); }
            if (leaves.size() <= perHold) return true; // the last hold writes so few at once
            for (int i = 0; i < leaves.size(); i += perHold) {
                Runnable step = betweenBatches;
                if (step != null) step.run(); else handOff();
                meta.writeLock().lock();
                try {
                    if (readOnly.get() != null) return false;
                    List<MetaPage> batch = new ArrayList<>(perHold);
                    // Meanwhile a writer may have dropped a leaf, deleted its tree or handed it to the cleaner.
                    for (MetaPage p : leaves.subList(i, Math.min(leaves.size(), i + perHold))) {
                        if (p.dirty && !p.relocating && state.cache.holds(p) && state.treeOf(p.key.tree()) != null) batch.add(p);
                    }
                    writeDirtyPages(batch, state, log, state.checkpointNumber + 1);
                } finally { meta.writeLock().unlock(); }
            }
        }
        return true;
    }

    /**
     * Lets the threads queued on the metadata lock have it before the next batch (the lock is not fair: released and
     * taken again at once, it would mostly stay with this thread), waiting {@link #HAND_OFF_NANOS} at most so that a
     * steady stream of writers cannot hold a checkpoint off for ever.
     */
    private void handOff() {
        long deadline = System.nanoTime() + HAND_OFF_NANOS;
        while (meta.hasQueuedThreads() && System.nanoTime() < deadline) java.util.concurrent.locks.LockSupport.parkNanos(20_000);
    }

    /**
     * Writes {@code dirty} (sorted by level, under the write lock) bottom-up. A page only being moved ({@link
     * MetaPage#relocating}) is written once for all the family members holding that version: the others record the
     * same new address, so sharing survives cleaning.
     */
    private void writeDirtyPages(List<MetaPage> dirty, PoolState state, LogWriter log, long generation) throws IOException {
        Check.that(meta.isWriteLockedByCurrentThread(), "pages are written under the metadata write lock");
        Map<Long, long[]> moved = new HashMap<>(); // old address of a relocated version -> {new address, record CRC, record length}
        int i = 0;
        while (i < dirty.size()) {
            // One level at a time: a parent's entries are final only once all its children are written.
            int level = dirty.get(i).key.level();
            int j = i;
            while (j < dirty.size() && dirty.get(j).key.level() == level && j - i < PAGES_PER_APPEND) j++;
            List<MetaPage> batch = new ArrayList<>();
            List<MetaPage> copies = new ArrayList<>(); // relocated versions another member's page writes
            Set<Long> moving = new HashSet<>();
            for (MetaPage p : dirty.subList(i, j)) {
                boolean copy = p.relocating && (moved.containsKey(p.address) || !moving.add(p.address));
                (copy ? copies : batch).add(p);
            }
            List<LogWriter.Pending> records = new ArrayList<>(batch.size());
            for (MetaPage p : batch) {
                ByteBuffer b = p.encode(generation, treeOf(state, p).family.id);
                records.add(new LogWriter.Pending(b, LogRecord.PAGE, b.position() - LogRecord.HEADER_SIZE));
            }
            LogWriter.Appended a = log.appendAll(records);
            long bytes = 0;
            for (int k = 0; k < a.written(); k++) {
                MetaPage p = batch.get(k);
                long address = MetaPage.address(a.segments()[k], a.offsets()[k]);
                ByteBuffer record = records.get(k).buffer();
                int crc = record.getInt(24);
                int length = LogRecord.HEADER_SIZE + record.getInt(8);
                if (p.relocating) moved.put(p.address, new long[] {address, crc, length});
                state.usage.add(a.segments()[k], length);
                bytes += length;
                treeOf(state, p).written(p, address, crc, length);
            }
            for (MetaPage p : copies) {
                long[] to = moved.get(p.address);
                if (to != null) treeOf(state, p).written(p, to[0], (int) to[1], (int) to[2]); // else its writer failed: stays dirty
            }
            if (a.error() != null) throw a.error();
            synchronized (this) {
                pagesWritten += a.written();
                pageBytesWritten += bytes;
            }
            i = j;
        }
        state.cache.evictToCapacity();
    }

    private static PageTree treeOf(PoolState state, MetaPage p) {
        PageTree tree = state.treeOf(p.key.tree());
        Check.that(tree != null, "dirty page %s belongs to a live tree", p.key);
        return tree;
    }

    /** Existing segments before {@code below} that hold nothing live (no directory listing under the write lock). */
    private Set<Long> zeroSegments(PoolState state, long below) {
        Set<Long> out = new HashSet<>();
        for (long seq : segments.get()) if (seq < below && state.usage.live(seq) == 0) out.add(seq);
        return out;
    }

    private void deleteSegments(Set<Long> segments) throws IOException {
        if (segments.isEmpty()) return;
        segmentGuard.writeLock().lock(); // no reader is inside a segment we delete
        try {
            for (long seq : new java.util.TreeSet<>(segments)) {
                backend.deleteSegment(seq);
                synchronized (this) { segmentsDeleted++; }
            }
        } finally { segmentGuard.writeLock().unlock(); }
        LOG.log(System.Logger.Level.DEBUG, "deleted {0} cleaned segments", segments.size());
    }
}
