package io.dedisk.index;

import static io.dedisk.index.IndexState.LOG;

import io.dedisk.DediskException.InvalidRequestException;
import io.dedisk.DediskException.ReadOnlyException;
import io.dedisk.store.Fs;
import io.dedisk.util.Check;
import io.dedisk.util.Sizes;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.lang.System.Logger.Level;
import java.util.UUID;

/**
 * The UDS-style, memory-bounded dedup index (docs/index.md): the facade the pool uses ({@link DedupIndex}). It
 * remembers the most recent records that fit its configured memory, the dedup window, because duplicates show
 * temporal locality.
 *
 * Owns, under the directory it is given (each file's layout is in its class):
 * <ul>
 * <li>{@link IndexHeader} ({@code header}): index id and geometry, written once (here, at the first open);
 * <li>closed chapters ({@link ChapterFile}, {@code chapter-<n>}): records in arrival order, written by
 *     {@link ChapterCloser} when a chapter closes, the oldest deleted when the window is full; rewritten without
 *     the records of dead chunks, or deleted when none is live, by compaction ({@link Compactor},
 *     {@link CompactionInstall});
 * <li>the open chapter checkpoint ({@link OpenChapterFile}, {@code open-<n>}): the open chapter's records as of
 *     the last {@link #checkpoint} ({@link OpenChapterCheckpoint});
 * <li>{@link SaveFile} ({@code save}): the in-memory state at the last clean shutdown ({@link ChapterCloser#save});
 * </ul>
 * and in memory the {@link IndexState} (open chapter, volume index tables, chapter ring, counts) and the caches
 * of {@link ChapterLookup}. The jobs, one file each: {@link ChapterLookup} answers from the closed chapters;
 * {@link OpenChapterCheckpoint} makes the open chapter durable; {@link ChapterCloser} closes and expires chapters
 * and saves; {@link IndexRecovery} loads or rebuilds at open; {@link CompactionInstall} puts compacted chapters in
 * place. This class opens, wires them, and keeps the insert path and the statistics.
 *
 * Answers: a lookup tries the open chapter (exact), then the closed chapters ({@link ChapterLookup}), comparing
 * the full 256-bit name, so a lookup never returns a chunk id posted for another name.
 *
 * Durability: a closed chapter is durable when its insert returns (written atomically); {@link #checkpoint} makes
 * the open chapter's records durable; {@link #save} everything, so the next open loads instead of rebuilding.
 *
 * Read-only ({@link #openReadOnly}): the same, except that no file is created, written, renamed or deleted (the
 * {@link Fs} is wrapped so that any attempt is an invariant violation); insert, checkpoint and save are refused.
 *
 * Threads: one read-write lock ({@link IndexState#lock}). Lookups take the read lock (the caches synchronize
 * inside, briefly); inserts, chapter closes, saves and each rebuilt chapter take the write lock. A checkpoint
 * collects the records under the write lock and writes them holding only the checkpoint lock (taken after the
 * write lock, never before), so lookups and inserts go on during its I/O. The rebuild thread reads files
 * unlocked. A compaction does its I/O under its own lock and installs each chapter under the write lock.
 * entries(), memoryBytes() and diskBytes() take no lock.
 */
public final class UdsIndex implements DedupIndex {
    private final IndexState s;
    private final ChapterLookup lookup;
    private final OpenChapterCheckpoint checkpoint;
    private final ChapterCloser closer;
    private final IndexRecovery recovery;
    private final Compactor compactor;
    /** What the fixed-size structures take: tables, open chapter, ring array (allocated at open, never resized). */
    private final long fixedMemory;

    /** Opens the index in {@code dir}, creating it when absent; refuses a configuration other than its own. */
    public static UdsIndex open(Fs fs, String dir, IndexConfig config) throws IOException {
        return open(fs, dir, Geometry.of(config));
    }

    /**
     * Opens the index in {@code dir} without changing any file: nothing is created, written, renamed or deleted
     * (for {@code dedisk stats} and {@code check} on a stopped pool). A missing index opens empty. It loads or
     * rebuilds like {@link #open} and so allocates the configured memory; insert, checkpoint and save throw
     * {@link ReadOnlyException}. For figures without that memory, see {@link IndexVerifier#verify}.
     */
    public static UdsIndex openReadOnly(Fs fs, String dir, IndexConfig config) throws IOException {
        return openReadOnly(fs, dir, Geometry.of(config));
    }

    /**
     * Verifies the index in {@code dir} without changing it ({@link IndexVerifier#verify}): for {@code dedisk check};
     * a problem found is advice lost, never data lost.
     */
    public static IndexVerifier.Report verify(Fs fs, String dir, IndexConfig config) { return IndexVerifier.verify(fs, dir, config); }

    static UdsIndex open(Fs fs, String dir, Geometry geometry) throws IOException {
        boolean created = !fs.exists(dir);
        fs.mkdirs(dir);
        String name = dir + "/" + IndexHeader.FILE;
        IndexHeader header = existingHeader(fs, dir, geometry);
        if (header == null) {
            header = new IndexHeader(UUID.randomUUID(), geometry, System.currentTimeMillis());
            byte[] bytes = header.encode();
            Check.that(IndexHeader.decode(bytes, name).equals(header), "index header decodes to itself");
            fs.writeAtomically(name, bytes);
            if (created) fs.syncDir(parentOf(dir)); // the directory's own name, so a machine crash keeps it
        }
        UdsIndex index = new UdsIndex(fs, dir, header, false);
        index.recovery.start();
        return index;
    }

    /** The index's header in dir, checked against the configured geometry; null when there is none yet. */
    private static IndexHeader existingHeader(Fs fs, String dir, Geometry geometry) throws IOException {
        String name = dir + "/" + IndexHeader.FILE;
        if (!fs.exists(name)) return null;
        IndexHeader header = IndexHeader.decode(fs.readAll(name), name);
        checkConfig(dir, header, geometry);
        return header;
    }

    static UdsIndex openReadOnly(Fs fs, String dir, Geometry geometry) throws IOException {
        Fs guarded = new ReadOnlyFs(fs);
        IndexHeader header = existingHeader(guarded, dir, geometry);
        if (header == null) header = new IndexHeader(UUID.randomUUID(), geometry, System.currentTimeMillis()); // empty, kept in memory only
        UdsIndex index = new UdsIndex(guarded, dir, header, true);
        index.recovery.start();
        return index;
    }

    /** The configuration must match; the geometry then comes from the header, so a later change of the sizing
     *  formulas never reinterprets an existing index. */
    private static void checkConfig(String dir, IndexHeader header, Geometry geometry) {
        Geometry had = header.geometry();
        if (had.memoryBytes() != geometry.memoryBytes() || had.sparse() != geometry.sparse()) {
            throw new InvalidRequestException("the index in " + dir + " was created as " + had + " and cannot be opened with "
                    + Sizes.format(geometry.memoryBytes()) + (geometry.sparse() ? " sparse" : " dense")
                    + ": open it with the memory and mode it was created with, or delete " + dir + " to start an empty index");
        }
    }

    private static String parentOf(String dir) {
        int slash = dir.lastIndexOf('/');
        return slash < 0 ? "" : dir.substring(0, slash);
    }

    private UdsIndex(Fs fs, String dir, IndexHeader header, boolean readOnly) {
        this.s = new IndexState(fs, dir, header, readOnly);
        this.lookup = new ChapterLookup(s);
        this.checkpoint = new OpenChapterCheckpoint(s);
        this.closer = new ChapterCloser(s, lookup, checkpoint);
        this.recovery = new IndexRecovery(s, lookup, checkpoint);
        this.compactor = new Compactor(new CompactionInstall(s, lookup, checkpoint, recovery), fs, dir, s.indexId);
        long fixed = s.open.memoryBytes() + s.chapters.memoryBytes() - s.chapters.summaryBytes();
        for (VolumeIndex t : s.tables()) fixed += t.memoryBytes();
        this.fixedMemory = fixed;
    }

    /** The volume index tables: the full one, then the hook table when sparse (tests look inside). */
    VolumeIndex[] tables() { return s.tables(); }

    /**
     * A closed record at most this many chapters old is young: a confirmed hit on it is not posted again. A quarter
     * of the chapters that keep full volume index entries (all closed ones when dense): a name hit again within
     * three quarters of that span of its last re-post never leaves it. Half was measured to lose 1.8 % of in-window
     * duplicates in UdsIndexTest's workload (chains of copies of copies); a quarter loses none (docs/decisions.md).
     */
    private long youngChapters() { return Math.max(1, s.geometry.denseChapters() / 4); }

    @Override
    public long lookup(BlockName name) {
        s.lock.readLock().lock();
        try {
            Check.that(!s.closed, "lookup on a closed index");
            int r = s.open.find(name);
            return r >= 0 ? s.open.id(r) : lookup.findClosedNoting(name);
        } finally {
            s.lock.readLock().unlock();
        }
    }

    @Override
    public void insert(BlockName name, long chunkId) {
        s.refuseIfReadOnly("insert");
        Check.that(chunkId > 0, "chunk id %d is positive", chunkId);
        s.lock.writeLock().lock();
        try {
            Check.that(!s.closed, "insert on a closed index");
            if (chunkId > s.maxChunkId) s.maxChunkId = chunkId;
            int r = s.open.find(name);
            if (r >= 0) {
                if (s.open.id(r) != chunkId) {
                    checkpoint.changed(r);
                    s.open.setId(r, chunkId);
                }
                return;
            }
            // Where the name's record is now, so the chapter close moves its volume index entry instead of adding
            // a second one. After the pool's lookup (a confirmed hit) the pages this reads are in the cache.
            ChapterLookup.Found now = lookup.closedRecordOf(name);
            // A confirmed hit on a record in the newer part of the window: moving it to the newest part would only add
            // a record (48 B on disk) per duplicate; it is posted again once it is older, so advice for a name that
            // keeps being hit survives the window.
            if (now.chapter() != NONE && now.id() == chunkId && s.openChapter - now.chapter() <= youngChapters()) return;
            s.open.add(name, chunkId, now.chapter());
            s.heldRecords++;
            if (s.open.full()) closer.close();
        } finally {
            s.lock.writeLock().unlock();
        }
    }

    /**
     * Records that can answer: those of the window's closed chapters that are indexed and not dropped, plus the
     * open chapter's. A name refreshed into a newer chapter counts once per chapter holding a record of it until
     * the older one expires. Lock-free (two volatile reads), so stats never wait for a chapter close.
     */
    @Override
    public long entries() { return s.heldRecords - s.droppedRecords.get(); }

    /** Bytes of the index's files (header, chapters, save, open chapter checkpoint): lock-free, kept up to date. */
    @Override
    public long diskBytes() { return s.diskBytes.get(); }

    /**
     * Makes every insert that returned before this call durable: chapters closed by then already are, so this
     * writes the open chapter's records to its checkpoint file ({@link OpenChapterFile}), the first time in a
     * chapter as a base of all its records, then appending only those posted since the previous checkpoint.
     * Nothing posted since: no I/O. Lookups and inserts go on while it writes.
     *
     * @throws IOException the records could not be made durable; they stay in memory, and the next checkpoint
     *     writes them all again (advice at risk, never data: the caller logs it and carries on)
     */
    @Override
    public void checkpoint() throws IOException { beginCheckpoint().write(); }

    /**
     * Captures the records to write under the index lock and returns holding the checkpoint lock until {@link
     * PendingCheckpoint#write} has written them (a chapter close waits for that, as for any checkpoint writing).
     */
    @Override
    public PendingCheckpoint beginCheckpoint() {
        s.refuseIfReadOnly("checkpoint");
        return checkpoint.begin();
    }

    @Override
    public long windowEntries() { return s.geometry.windowEntries(); }

    /** Fixed structures plus the chapter summaries and the caches as they are now; lock-free. */
    @Override
    public long memoryBytes() {
        long total = fixedMemory + s.chapters.summaryBytes() + lookup.cacheBytes();
        Check.that(total <= s.geometry.memoryBytes(), "index holds %d bytes, more than its budget %d", total, s.geometry.memoryBytes());
        return total;
    }

    @Override
    public boolean sparse() { return s.geometry.sparse(); }

    @Override
    public long maxChunkId() {
        s.lock.readLock().lock();
        try {
            return s.maxChunkId;
        } finally {
            s.lock.readLock().unlock();
        }
    }

    @Override
    public double rebuildRemaining() { return recovery.rebuildRemaining(); }

    /** Volume index entries dropped for lack of room, and chapters lost to write errors (lost advice, for stats). */
    long lostAdvice() {
        s.lock.readLock().lock();
        try {
            long dropped = s.lostChapters * s.geometry.chapterRecords();
            for (VolumeIndex t : s.tables()) dropped += t.dropped();
            return dropped;
        } finally {
            s.lock.readLock().unlock();
        }
    }

    Geometry geometry() { return s.geometry; }

    /**
     * Saves durably. Waits for a running rebuild first, since a partial volume index must not be saved as whole;
     * if the rebuild died (a bug, logged by its thread), nothing is saved and the next open rebuilds again.
     */
    @Override
    public void save() throws IOException {
        s.refuseIfReadOnly("save");
        recovery.awaitRebuild();
        if (recovery.rebuildIncomplete()) {
            LOG.log(Level.ERROR, "index in {0} not saved: its rebuild did not complete, the next open rebuilds it", s.dir);
            return;
        }
        closer.save();
    }

    @Override
    public Compaction compactAll(DeadChunks dead) throws IOException {
        s.refuseIfReadOnly("compaction");
        return compactor.all(dead);
    }

    @Override
    public Compaction compactSome(DeadChunks dead) throws IOException {
        s.refuseIfReadOnly("compaction");
        return compactor.some(dead);
    }

    @Override
    public Compaction compacted() { return compactor.total(); }

    /** Waits until a background rebuild has run to its end (returns at once when none runs), e.g. in tests. */
    public void awaitRebuild() throws InterruptedIOException { recovery.awaitRebuild(); }

    /**
     * Stops a running rebuild and releases the index; writes nothing (call {@link #save} first at a clean
     * shutdown), so an index dropped without save behaves as after a process kill.
     */
    @Override
    public void close() throws IOException {
        s.closing = true;
        recovery.awaitRebuild();
        s.lock.writeLock().lock();
        try {
            checkpoint.close(); // a checkpoint writing now finishes first
        } finally {
            s.lock.writeLock().unlock();
        }
    }

    @Override
    public String toString() { return "UdsIndex[" + s.dir + ", " + s.geometry + (s.readOnly ? ", read-only" : "") + "]"; }

    /** Whether this index was opened with {@link #openReadOnly}. */
    public boolean readOnly() { return s.readOnly; }

    /** For tests: the chapter numbers currently in the window, oldest first. */
    long[] liveChapters() {
        s.lock.readLock().lock();
        try {
            return s.chapters.all().stream().mapToLong(c -> c.number).sorted().toArray();
        } finally {
            s.lock.readLock().unlock();
        }
    }

    /** For tests and tools: the open chapter's number. */
    long openChapterNumber() {
        s.lock.readLock().lock();
        try {
            return s.openChapter;
        } finally {
            s.lock.readLock().unlock();
        }
    }
}
