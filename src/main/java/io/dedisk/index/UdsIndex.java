package io.dedisk.index;

import io.dedisk.DediskException.CorruptionException;
import io.dedisk.DediskException.InvalidRequestException;
import io.dedisk.DediskException.ReadOnlyException;
import io.dedisk.store.Fs;
import io.dedisk.util.Check;
import io.dedisk.util.Sizes;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.lang.System.Logger.Level;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * The UDS-style, memory-bounded dedup index (docs/index.md). It remembers the most recent records that fit its
 * configured memory, the dedup window, because duplicates show temporal locality.
 *
 * Owns, under the directory it is given (each file's layout is in its class):
 * <ul>
 * <li>{@link IndexHeader} ({@code header}): index id and geometry, written once;
 * <li>closed chapters ({@link ChapterFile}, {@code chapter-<n>}): records in arrival order, the oldest deleted when
 *     a chapter closes and the window is full; rewritten without the records of dead chunks, or deleted when none is
 *     live, by compaction ({@link Compactor}: {@link #compactAll}, {@link #compactSome});
 * <li>the open chapter checkpoint ({@link OpenChapterFile}, {@code open-<n>}): the open chapter's records as of
 *     the last {@link #checkpoint}, deleted once chapter n's own file is written or a save holds its records;
 * <li>{@link SaveFile} ({@code save}): the in-memory state at the last clean shutdown, deleted once a chapter
 *     closes after it (it is then older than the chapters and of no use);
 * </ul>
 * and in memory: the {@link OpenChapter}, the {@link VolumeIndex} table(s) (the full table: every name of the
 * newest D closed chapters; in sparse mode also the hook table: hook names of every closed chapter), the
 * {@link ChapterRing} of chapter summaries, the {@link PageCache} and, in sparse mode, the {@link SparseCache}.
 *
 * Answers: a lookup tries the open chapter (exact), then each volume index candidate newest first, reading that
 * chapter's index page and record page and comparing the full 256-bit name, so a lookup never returns a chunk id
 * posted for another name. In sparse mode a name that is not a hook is also looked for in the chapters of the
 * sparse cache, and a hook found in a sparse chapter loads that chapter's index into it. A chapter whose pages
 * fail verification or cannot be read is dropped (logged once): its advice is lost, the rest works.
 *
 * Durability: a closed chapter is durable when its insert returns (written atomically); {@link #checkpoint} makes
 * the open chapter's records durable; {@link #save} everything, so the next open loads instead of rebuilding.
 *
 * Restart: open loads the save when it is not older than the chapters; otherwise it returns at once and a
 * background thread rebuilds the volume index from the chapter files, newest first (the most useful advice comes
 * back first), while lookups (which may miss) and inserts go on. Either way the open chapter checkpoint of the
 * open chapter is merged into the open chapter before open returns. {@link #maxChunkId} covers every chunk id
 * that can come back as advice: each chapter header and checkpoint block carries the largest id posted before it
 * was written, and open takes the newest valid ones.
 *
 * Read-only ({@link #openReadOnly}): the same, except that no file is created, written, renamed or deleted (the
 * {@link Fs} is wrapped so that any attempt is an invariant violation); insert, checkpoint and save are refused.
 *
 * Threads: one read-write lock. Lookups take the read lock (the caches synchronize inside, briefly); inserts,
 * chapter closes, saves and each rebuilt chapter take the write lock. A checkpoint collects the records under the
 * write lock and writes them holding only the checkpoint lock (taken after the write lock, never before), so
 * lookups and inserts go on during its I/O. The rebuild thread reads files unlocked. A compaction does its I/O
 * under its own lock and installs each chapter under the write lock. entries(), memoryBytes() and diskBytes()
 * take no lock.
 */
public final class UdsIndex implements DedupIndex {
    private static final System.Logger LOG = System.getLogger("dedisk.index");

    private final Fs fs;
    private final String dir;
    private final Geometry geometry;
    private final UUID indexId;
    private final boolean readOnly;
    private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
    /** Serializes checkpoints and guards the open chapter checkpoint file's state below; taken after the write lock. */
    private final ReentrantLock checkpointLock = new ReentrantLock();
    private final OpenChapter open;
    private final VolumeIndex fullTable;
    private final VolumeIndex hookTable;
    private final ChapterRing chapters;
    private final PageCache pageCache;
    /**
     * Where recent lookups found names in closed chapters (chapter, or NONE), so the insert that follows a write's
     * lookup (a confirmed hit's refresh, a new chunk's post) need not probe the volume index and chapter pages again:
     * that second probe was ~10 % of the server's CPU on a VM-image write, under the pool's write lock. Slots are
     * filled under either lock, racily (a slot holds one whole {@link Found} or another); an entry counts only while
     * {@link #findsEpoch} is what it was stamped with. A wrong hint could only cost the volume index a second entry
     * (insert moves the old entry when it finds it, else adds one), never a wrong answer: lookups never read it.
     */
    private final java.util.concurrent.atomic.AtomicReferenceArray<Found> recentFinds = new java.util.concurrent.atomic.AtomicReferenceArray<>(RECENT_FINDS);
    private static final int RECENT_FINDS = 4096;
    /** Bumped whenever closed chapters change what they answer (a close, a rebuilt chapter); under the write lock. */
    private long findsEpoch;

    /** A lookup's result for the name: the newest closed chapter holding it (or NONE) and the id there, as of {@code epoch}. */
    private record Found(BlockName name, long chapter, long id, long epoch) {}
    private final SparseCache sparseCache;
    /** Volatile for the rebuild thread's unlocked early-exit checks; changed only under the write lock. */
    private volatile long openChapter;
    private long maxChunkId;
    private long lostChapters;
    /** Records of the closed chapters in the ring plus the open chapter's; changed under the write lock. */
    private volatile long heldRecords;
    /** Records of chapters in the ring that were dropped (they no longer answer); changed under either lock. */
    private final AtomicLong droppedRecords = new AtomicLong();
    /**
     * Bytes of the files in {@code dir}: counted at open, then kept up to date by every write and delete (under the
     * write lock, or the checkpoint lock alone while a checkpoint writes: hence atomic).
     */
    private final AtomicLong diskBytes = new AtomicLong();
    private long saveBytes;
    /** The open chapter of the usable save on disk, -1 when there is none (written under the write lock). */
    private long savedOpenChapter = -1;
    /** The chapter whose open chapter checkpoint file is on disk, -1 when none; its size and blocks. Checkpoint lock. */
    private long checkpointFileChapter = -1;
    private long checkpointFileBytes;
    private int checkpointFileBlocks;
    /** Records [0, checkpointed) of the open chapter are in its checkpoint file with their current ids. Write lock. */
    private int checkpointed;
    /** The next checkpoint must write the whole open chapter (set under either lock, cleared under both). */
    private volatile boolean checkpointNeedsBase = true;
    /** Largest chunk id merged from an open chapter checkpoint at open. */
    private long mergedMaxChunkId;
    /** What the fixed-size structures take: tables, open chapter, ring array (allocated at open, never resized). */
    private final long fixedMemory;
    private boolean closed;
    private volatile boolean closing;
    private volatile double rebuildRemaining;
    /** Set while a rebuild has not run to its end: a partial volume index must never be saved as whole. */
    private volatile boolean rebuildIncomplete;
    private Thread rebuilder;
    private final Compactor compactor;

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
        index.start();
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
        index.start();
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
        this.fs = fs;
        this.dir = dir;
        this.readOnly = readOnly;
        this.geometry = header.geometry();
        this.indexId = header.indexId();
        this.open = new OpenChapter(geometry.chapterRecords());
        this.fullTable = new VolumeIndex(geometry.fullTableEntries(), geometry.denseChapters());
        this.hookTable = geometry.sparse() ? new VolumeIndex(geometry.hookTableEntries(), geometry.closedChapters()) : null;
        this.chapters = new ChapterRing(geometry.chapters());
        this.pageCache = new PageCache(geometry.pageCachePages());
        this.sparseCache = geometry.sparse() ? new SparseCache(geometry.sparseCacheChapters()) : null;
        long fixed = open.memoryBytes() + chapters.memoryBytes() - chapters.summaryBytes();
        for (VolumeIndex t : tables()) fixed += t.memoryBytes();
        this.fixedMemory = fixed;
        this.compactor = new Compactor(this, fs, dir, indexId);
    }

    /** The volume index tables: the full one, then the hook table when sparse (tests look inside). */
    VolumeIndex[] tables() { return hookTable == null ? new VolumeIndex[] {fullTable} : new VolumeIndex[] {fullTable, hookTable}; }

    /**
     * Loads the save, merges the open chapter checkpoint, or starts the rebuild; the caller holds no lock and
     * nobody else has the index yet. When writable, also deletes what is of no use any more: interrupted writes
     * ({@code *.tmp}), expired chapters, checkpoints of other chapters, a save older than the chapters.
     */
    private void start() throws IOException {
        List<Long> chapterFiles = new ArrayList<>(), checkpointFiles = new ArrayList<>();
        for (String f : fs.list(dir)) {
            if (f.endsWith(".tmp")) {
                if (!readOnly) fs.delete(dir + "/" + f); // an interrupted atomic write
                continue;
            }
            long n = ChapterFile.parseFileName(f);
            if (n >= 0) chapterFiles.add(n);
            long o = OpenChapterFile.parseFileName(f);
            if (o >= 0) checkpointFiles.add(o);
        }
        chapterFiles.sort(null);
        checkpointFiles.sort(null);
        long newest = chapterFiles.isEmpty() ? -1 : chapterFiles.getLast();
        String saveName = dir + "/" + SaveFile.FILE;
        SaveFile.Loaded saved = null;
        try {
            saved = SaveFile.load(fs, dir, indexId, geometry, newest, open, tables());
            if (saved == null && fs.exists(saveName)) {
                LOG.log(Level.INFO, "index in {0}: the save is older than chapter {1}, rebuilding from the chapters", dir, newest);
                if (!readOnly) fs.delete(saveName);
            }
        } catch (CorruptionException | IOException e) {
            LOG.log(Level.WARNING, "ignoring the saved state of the index in {0}, rebuilding from the chapters: {1}", dir, e.getMessage());
            for (VolumeIndex t : tables()) t.clear();
            open.clear();
        }
        // The open chapter is the save's, or follows the newest chapter file, unless a checkpoint names a later
        // one: chapters between were lost to write errors, and the running index had moved past them.
        long base = saved != null ? saved.openChapter() : newest + 1;
        long newestCheckpoint = checkpointFiles.isEmpty() ? -1 : checkpointFiles.getLast();
        openChapter = Math.max(base, newestCheckpoint);
        if (saved != null && openChapter > base) {
            LOG.log(Level.INFO, "index in {0}: the saved open chapter {1} was lost (its file was never written); chapter {2} follows",
                    dir, base, openChapter);
            open.clear();
        }
        if (newestCheckpoint == openChapter) mergeCheckpoint();
        long oldestLive = oldestLive();
        if (!readOnly) {
            for (long n : chapterFiles) if (n < oldestLive) fs.delete(ChapterFile.fileName(dir, n));
            for (long o : checkpointFiles) if (o != openChapter) fs.delete(OpenChapterFile.fileName(dir, o));
        }
        diskBytes.set(filesBytes());
        saveBytes = fileSize(saveName);
        if (saved != null) {
            savedOpenChapter = saved.openChapter();
            maxChunkId = Math.max(saved.maxChunkId(), mergedMaxChunkId);
            for (ChapterFile c : saved.chapters()) if (c.number >= oldestLive) chapters.add(c);
            heldRecords = chapters.records() + open.count();
            return;
        }
        heldRecords = open.count();
        long[] toRebuild = chapterFiles.stream().filter(n -> n >= oldestLive).mapToLong(Long::longValue).sorted().toArray();
        maxChunkId = Math.max(newestValidMaxChunkId(toRebuild), mergedMaxChunkId);
        if (toRebuild.length == 0) return;
        LOG.log(Level.INFO, "index in {0}: no usable save, rebuilding from {1} chapters in the background", dir, toRebuild.length);
        rebuildRemaining = 1;
        rebuildIncomplete = true;
        rebuilder = Thread.ofPlatform().name("dedisk-index-rebuild").daemon().start(() -> rebuild(toRebuild));
    }

    /**
     * Merges the open chapter's checkpoint file into the open chapter: a name already there keeps the larger chunk
     * id (ids are never reused: the larger is the newer chunk; both are true advice). A bad block ends the merge
     * (after a crash in the middle of an append, the last block is torn: its records were never acknowledged).
     * The file stays as it is; the next checkpoint replaces it with a base.
     */
    private void mergeCheckpoint() {
        String name = OpenChapterFile.fileName(dir, openChapter);
        checkpointFileChapter = openChapter;
        checkpointNeedsBase = true;
        try {
            checkpointFileBytes = fileSize(name);
            OpenChapterFile.Read r = OpenChapterFile.read(fs, dir, indexId, openChapter, geometry, e -> {
                int at = open.find(e.name());
                if (at >= 0) {
                    if (e.chunkId() > open.id(at)) open.setId(at, e.chunkId());
                } else {
                    // A chapter closes when it holds C records, so its checkpoint names at most C − 1.
                    if (open.count() >= open.capacity - 1) {
                        throw new CorruptionException(name + ": more names than an open chapter holds (" + (open.capacity - 1) + ")");
                    }
                    open.add(e.name(), e.chunkId(), e.previous());
                }
                mergedMaxChunkId = Math.max(mergedMaxChunkId, e.chunkId());
            });
            mergedMaxChunkId = Math.max(mergedMaxChunkId, r.maxChunkId());
            if (r.stop() != null) {
                LOG.log(r.stop().reachesEnd ? Level.INFO : Level.WARNING, "index in {0}: open chapter checkpoint read up to block {1} ({2} records): {3}",
                        dir, r.blocks(), r.records(), r.stop().getMessage());
            }
        } catch (CorruptionException | IOException e) {
            LOG.log(Level.WARNING, "index in {0}: open chapter checkpoint not (wholly) usable, its records are lost to dedup: {1}", dir, e.getMessage());
        }
    }

    /** Sum of the sizes of the files in the index directory. */
    private long filesBytes() throws IOException {
        long total = 0;
        for (String f : fs.list(dir)) total += fileSize(dir + "/" + f);
        return total;
    }

    /** A file's size, 0 when it does not exist. */
    private long fileSize(String name) throws IOException {
        if (!fs.exists(name)) return 0;
        try (Fs.FileHandle h = fs.open(name, false)) {
            return h.size();
        }
    }

    /** The max chunk id of the newest chapter with a valid header: it bounds every older chapter's ids too. */
    private long newestValidMaxChunkId(long[] ascending) {
        for (int i = ascending.length - 1; i >= 0; i--) {
            try {
                return ChapterFile.readHeader(fs, dir, indexId, ascending[i]).maxChunkId;
            } catch (CorruptionException | IOException e) {
                LOG.log(Level.WARNING, "index chapter {0} has no valid header: {1}", ascending[i], e.getMessage());
            }
        }
        return 0;
    }

    private void rebuild(long[] ascending) {
        for (int i = ascending.length - 1; i >= 0 && !closing; i--) {
            long number = ascending[i];
            try {
                ChapterFile c = ChapterFile.readHeader(fs, dir, indexId, number);
                if (c.records > geometry.chapterRecords()) {
                    throw new CorruptionException("chapter " + number + " holds " + c.records + " records, more than the " + geometry.chapterRecords() + " of this index");
                }
                byte[] file = c.readAll(fs, dir);
                lock.writeLock().lock();
                try {
                    if (!closing && number >= oldestLive()) {
                        findsEpoch++;
                        chapters.add(c);
                        heldRecords += c.records;
                        c.forEachName(file, n -> {
                            VolumeIndex t = tableFor(n, number);
                            if (t != null) t.putReplayed(n, number, openChapter);
                        });
                    }
                } finally {
                    lock.writeLock().unlock();
                }
            } catch (CorruptionException | IOException e) {
                if (number >= oldestLive()) {
                    LOG.log(Level.WARNING, "index chapter {0} cannot be read, its advice is dropped: {1}", number, e.getMessage());
                }
            }
            rebuildRemaining = (double) i / ascending.length;
        }
        if (!closing) {
            rebuildIncomplete = false;
            rebuildRemaining = 0;
        }
    }

    /**
     * A closed record at most this many chapters old is young: a confirmed hit on it is not posted again. A quarter
     * of the chapters that keep full volume index entries (all closed ones when dense): a name hit again within
     * three quarters of that span of its last re-post never leaves it. Half was measured to lose 1.8 % of in-window
     * duplicates in UdsIndexTest's workload (chains of copies of copies); a quarter loses none (docs/decisions.md).
     */
    private long youngChapters() { return Math.max(1, geometry.denseChapters() / 4); }

    /** Oldest closed chapter still in the window (racy read is fine for the rebuild's early exits). */
    private long oldestLive() { return openChapter - geometry.closedChapters(); }

    /** The table that holds a name's entries for chapter {@code number}, or null (a non-hook of a sparse chapter). */
    private VolumeIndex tableFor(BlockName n, long number) {
        if (hookTable != null && Geometry.isHook(n)) return hookTable;
        return openChapter - number <= geometry.denseChapters() ? fullTable : null;
    }

    @Override
    public long lookup(BlockName name) {
        lock.readLock().lock();
        try {
            Check.that(!closed, "lookup on a closed index");
            int r = open.find(name);
            return r >= 0 ? open.id(r) : findClosedNoting(name);
        } finally {
            lock.readLock().unlock();
        }
    }

    /** The newest closed-chapter record of the name: its chunk id (or NONE), its chapter in where[0]. Under either lock. */
    private long findClosedIn(BlockName name, long[] where) {
        boolean hook = hookTable != null && Geometry.isHook(name);
        VolumeIndex table = hook ? hookTable : fullTable;
        long oc = openChapter;
        for (long c = table.newestCandidate(name, oc, Long.MAX_VALUE); c >= 0; c = table.newestCandidate(name, oc, c)) {
            ChapterFile file = chapters.get(c);
            if (file == null || file.dropped()) continue;
            long id = search(file, name, null);
            if (id != NONE) {
                if (hook && oc - c > geometry.denseChapters()) cacheChapterIndex(file);
                where[0] = c;
                return id;
            }
        }
        if (sparseCache != null && !hook) {
            for (SparseCache.Entry e : sparseCache.chapters()) {
                if (e.chapter.number < oldestLive() || e.chapter.dropped()) continue;
                long id = search(e.chapter, name, e.indexPages);
                if (id != NONE) {
                    sparseCache.touch(e);
                    where[0] = e.chapter.number;
                    return id;
                }
            }
        }
        return NONE;
    }

    /** {@link #findClosedIn} for the id, noting the chapter in {@link #recentFinds} for the insert that may follow. Under either lock. */
    private long findClosedNoting(BlockName name) {
        long[] where = {NONE};
        long id = findClosedIn(name, where);
        recentFinds.set(slotOf(name), new Found(name, where[0], id, findsEpoch));
        return id;
    }

    /** The name's newest closed record (chapter NONE: none), from {@link #recentFinds} when a lookup noted it this epoch. Write lock held. */
    private Found closedRecordOf(BlockName name) {
        Found f = recentFinds.get(slotOf(name));
        if (f != null && f.epoch == findsEpoch && f.name.equals(name)) {
            if (f.chapter == NONE) return f;
            ChapterFile file = chapters.get(f.chapter);
            if (file != null && !file.dropped()) return f;
        }
        long[] where = {NONE};
        long id = findClosedIn(name, where);
        return new Found(name, where[0], id, findsEpoch);
    }

    private static int slotOf(BlockName name) { return (int) (name.b() & (RECENT_FINDS - 1)); }

    /** The name's chunk id in a closed chapter, or NONE; {@code indexPages} when the chapter index is cached whole. */
    private long search(ChapterFile chapter, BlockName name, byte[][] indexPages) {
        int key = ChapterFile.key(name);
        try {
            for (int q = chapter.firstIndexPage(key); q >= 0 && chapter.indexPageMayHold(q, key); q++) {
                byte[] ip = indexPages != null ? indexPages[q] : page(chapter, ChapterFile.KIND_INDEX, q);
                for (int i = ChapterFile.firstEntry(ip, key), p; (p = ChapterFile.recordPageAt(ip, i, key)) >= 0; i++) {
                    long id = ChapterFile.findRecord(page(chapter, ChapterFile.KIND_RECORD, p), name);
                    if (id != NONE) return id;
                }
            }
        } catch (CorruptionException | IOException e) {
            drop(chapter, e);
        }
        return NONE;
    }

    private byte[] page(ChapterFile chapter, int kind, int page) throws IOException {
        long key = PageCache.key(chapter.cacheId, chapter.filePage(kind, page));
        byte[] p = pageCache.get(key);
        if (p == null) {
            p = chapter.readPage(fs, dir, kind, page);
            pageCache.put(key, p);
        }
        return p;
    }

    private void cacheChapterIndex(ChapterFile chapter) {
        if (sparseCache.contains(chapter.number)) return;
        try {
            sparseCache.put(chapter, chapter.readIndexPages(fs, dir));
        } catch (CorruptionException | IOException e) {
            drop(chapter, e);
        }
    }

    private void drop(ChapterFile chapter, Exception e) {
        if (chapter.drop()) {
            // Only chapters of the ring are searched, and none leaves it while a lock is held: count it as gone.
            droppedRecords.addAndGet(chapter.records);
            LOG.log(Level.WARNING, "index chapter {0} ({1} records) failed verification or could not be read; its advice is dropped: {2}",
                    chapter.number, chapter.records, e.getMessage());
        }
    }

    @Override
    public void insert(BlockName name, long chunkId) {
        refuseIfReadOnly("insert");
        Check.that(chunkId > 0, "chunk id %d is positive", chunkId);
        lock.writeLock().lock();
        try {
            Check.that(!closed, "insert on a closed index");
            if (chunkId > maxChunkId) maxChunkId = chunkId;
            int r = open.find(name);
            if (r >= 0) {
                if (open.id(r) != chunkId) {
                    if (r < checkpointed) checkpointNeedsBase = true; // its checkpointed id is no longer the newest
                    open.setId(r, chunkId);
                }
                return;
            }
            // Where the name's record is now, so the chapter close moves its volume index entry instead of adding
            // a second one. After the pool's lookup (a confirmed hit) the pages this reads are in the cache.
            Found now = closedRecordOf(name);
            // A confirmed hit on a record in the newer part of the window: moving it to the newest part would only add
            // a record (48 B on disk) per duplicate; it is posted again once it is older, so advice for a name that
            // keeps being hit survives the window.
            if (now.chapter != NONE && now.id == chunkId && openChapter - now.chapter <= youngChapters()) return;
            open.add(name, chunkId, now.chapter);
            heldRecords++;
            if (open.full()) closeChapter();
        } finally {
            lock.writeLock().unlock();
        }
    }

    /** Writes the full open chapter out, indexes it, and expires the chapter that leaves the window. Write lock held. */
    private void closeChapter() {
        long number = openChapter;
        ChapterFile c = null;
        try {
            c = ChapterFile.write(fs, dir, indexId, number, open, maxChunkId);
        } catch (IOException e) {
            lostChapters++;
            LOG.log(Level.WARNING, "index chapter {0} could not be written; its {1} records are lost to dedup: {2}", number, open.count(), e.toString());
        }
        openChapter = number + 1;
        findsEpoch++;
        heldRecords -= open.count();
        if (c != null) {
            diskBytes.addAndGet((long) c.filePages() * ChapterFile.PAGE);
            chapters.add(c);
            heldRecords += c.records;
            for (int r = 0; r < open.count(); r++) {
                BlockName n = open.name(r);
                VolumeIndex t = tableFor(n, number);
                long previous = open.previous(r);
                if (previous < 0 || !t.move(n, previous, number, openChapter)) t.put(n, number, openChapter);
            }
        }
        open.clear();
        forgetCheckpoint(number);
        long expired = oldestLive() - 1;
        ChapterFile gone = chapters.remove(expired);
        if (gone != null) {
            heldRecords -= gone.records;
            if (gone.dropped()) droppedRecords.addAndGet(-gone.records);
        }
        String expiredName = ChapterFile.fileName(dir, expired);
        try {
            // Its size: from its summary, else (a chapter never indexed: lost, or its header was bad) from the file.
            long bytes = gone != null ? (long) gone.filePages() * ChapterFile.PAGE : fileSize(expiredName);
            if (bytes > 0) {
                fs.delete(expiredName);
                diskBytes.addAndGet(-bytes);
            }
        } catch (IOException e) {
            LOG.log(Level.WARNING, "expired index chapter {0} could not be deleted (retried at the next open): {1}", expired, e.toString());
        }
        if (sparseCache != null) sparseCache.retainFrom(oldestLive());
        for (VolumeIndex t : tables()) t.sweep(openChapter);
    }

    /**
     * Records that can answer: those of the window's closed chapters that are indexed and not dropped, plus the
     * open chapter's. A name refreshed into a newer chapter counts once per chapter holding a record of it until
     * the older one expires. Lock-free (two volatile reads), so stats never wait for a chapter close.
     */
    @Override
    public long entries() { return heldRecords - droppedRecords.get(); }

    /** Bytes of the index's files (header, chapters, save, open chapter checkpoint): lock-free, kept up to date. */
    @Override
    public long diskBytes() { return diskBytes.get(); }

    /**
     * After chapter {@code number} closed (its file durable, or lost): its checkpoint file is of no use, nor is a
     * save whose open chapter it was. Deletions need no sync: a file that comes back after a machine crash is
     * recognized as stale at open. Write lock held.
     */
    private void forgetCheckpoint(long number) {
        checkpointLock.lock(); // reentrant: dropCheckpointFile takes it again
        try {
            Check.that(checkpointFileChapter == -1 || checkpointFileChapter == number, "checkpoint file of chapter %d while closing chapter %d",
                    checkpointFileChapter, number);
            dropCheckpointFile();
        } finally {
            checkpointLock.unlock();
        }
        if (savedOpenChapter >= 0 && number >= savedOpenChapter) {
            try {
                deleteSave();
            } catch (IOException e) {
                LOG.log(Level.WARNING, "stale index save could not be deleted (retried at the next open): {0}", e.toString());
                savedOpenChapter = -1;
            }
        }
    }

    /** Deletes the save on disk; from then on the next open rebuilds unless a save is written again. Write lock held. */
    private void deleteSave() throws IOException {
        savedOpenChapter = -1;
        fs.delete(dir + "/" + SaveFile.FILE);
        diskBytes.addAndGet(-saveBytes);
        saveBytes = 0;
    }

    /**
     * Deletes the open chapter's checkpoint file, once what it holds is durable elsewhere (the chapter's own file,
     * or a save); the next checkpoint writes a base. No sync: should the file come back after a machine crash, it
     * holds nothing that is not in the chapter (then it is stale and deleted at open) or the save (then merging it
     * changes nothing: the larger chunk id wins). Write lock held.
     */
    private void dropCheckpointFile() {
        checkpointLock.lock();
        try {
            if (checkpointFileChapter >= 0) {
                try {
                    fs.delete(OpenChapterFile.fileName(dir, checkpointFileChapter));
                    diskBytes.addAndGet(-checkpointFileBytes);
                } catch (IOException e) {
                    LOG.log(Level.WARNING, "index checkpoint of chapter {0} could not be deleted (retried at the next open): {1}", checkpointFileChapter, e.toString());
                }
            }
            checkpointFileChapter = -1;
            checkpointFileBytes = 0;
            checkpointFileBlocks = 0;
            checkpointed = 0;
            checkpointNeedsBase = true;
        } finally {
            checkpointLock.unlock();
        }
    }

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
        refuseIfReadOnly("checkpoint");
        lock.writeLock().lock();
        try {
            Check.that(!closed, "checkpoint on a closed index");
            checkpointLock.lock();
        } catch (RuntimeException | Error e) {
            lock.writeLock().unlock();
            throw e;
        }
        long chapter;
        boolean base;
        List<byte[]> payloads;
        try {
            chapter = openChapter;
            Check.that(checkpointFileChapter == -1 || checkpointFileChapter == chapter,
                    "checkpoint file of chapter %d while chapter %d is open", checkpointFileChapter, chapter);
            base = checkpointNeedsBase || checkpointFileChapter != chapter;
            // Nothing left to write as a base (a compaction emptied the open chapter): the old file goes instead.
            if (base && open.count() == 0 && checkpointFileChapter == chapter) dropCheckpointFile();
            int from = base ? 0 : checkpointed, to = open.count();
            payloads = OpenChapterFile.payloads(open, from, to, chapter, maxChunkId);
            checkpointed = to;
            checkpointNeedsBase = false;
        } catch (RuntimeException | Error e) {
            checkpointLock.unlock();
            throw e;
        } finally {
            lock.writeLock().unlock();
        }
        Thread owner = Thread.currentThread();
        return () -> {
            Check.that(Thread.currentThread() == owner && checkpointLock.isHeldByCurrentThread(), "index checkpoint written once, by the thread that began it");
            try {
                if (!payloads.isEmpty()) writeCheckpoint(chapter, base, payloads);
            } finally {
                checkpointLock.unlock();
            }
        };
    }

    /** The checkpoint's I/O, under the checkpoint lock only. On failure the next checkpoint writes a base. */
    private void writeCheckpoint(long chapter, boolean base, List<byte[]> payloads) throws IOException {
        String name = OpenChapterFile.fileName(dir, chapter);
        long had = checkpointFileChapter == chapter ? checkpointFileBytes : 0;
        try {
            long size;
            if (base) {
                size = OpenChapterFile.writeBase(fs, dir, indexId, chapter, payloads);
                checkpointFileBlocks = payloads.size();
            } else {
                size = OpenChapterFile.append(fs, dir, chapter, checkpointFileBytes, checkpointFileBlocks, payloads);
                checkpointFileBlocks += payloads.size();
            }
            diskBytes.addAndGet(size - had);
            checkpointFileChapter = chapter;
            checkpointFileBytes = size;
        } catch (IOException | RuntimeException e) {
            checkpointNeedsBase = true;
            try {
                long now = fileSize(name); // a failed append may have left part of a block; a failed base, the old file
                diskBytes.addAndGet(now - had);
                checkpointFileChapter = now > 0 ? chapter : -1;
                checkpointFileBytes = now;
            } catch (IOException ignored) {
                // the size stays as last known; the next open counts the files again
            }
            throw e;
        }
    }

    private void refuseIfReadOnly(String what) {
        if (readOnly) throw new ReadOnlyException("the index in " + dir + " is open read-only (a stopped pool's stats or check): " + what + " refused");
    }

    @Override
    public long windowEntries() { return geometry.windowEntries(); }

    /** Fixed structures plus the chapter summaries and the caches as they are now; lock-free. */
    @Override
    public long memoryBytes() {
        long total = fixedMemory + chapters.summaryBytes() + pageCache.memoryBytes();
        if (sparseCache != null) total += sparseCache.memoryBytes();
        Check.that(total <= geometry.memoryBytes(), "index holds %d bytes, more than its budget %d", total, geometry.memoryBytes());
        return total;
    }

    @Override
    public boolean sparse() { return geometry.sparse(); }

    @Override
    public long maxChunkId() {
        lock.readLock().lock();
        try {
            return maxChunkId;
        } finally {
            lock.readLock().unlock();
        }
    }

    @Override
    public double rebuildRemaining() { return rebuildRemaining; }

    /** Volume index entries dropped for lack of room, and chapters lost to write errors (lost advice, for stats). */
    long lostAdvice() {
        lock.readLock().lock();
        try {
            long dropped = lostChapters * geometry.chapterRecords();
            for (VolumeIndex t : tables()) dropped += t.dropped();
            return dropped;
        } finally {
            lock.readLock().unlock();
        }
    }

    Geometry geometry() { return geometry; }

    /**
     * Saves durably. Waits for a running rebuild first, since a partial volume index must not be saved as whole;
     * if the rebuild died (a bug, logged by its thread), nothing is saved and the next open rebuilds again.
     */
    @Override
    public void save() throws IOException {
        refuseIfReadOnly("save");
        awaitRebuild();
        if (rebuildIncomplete) {
            LOG.log(Level.ERROR, "index in {0} not saved: its rebuild did not complete, the next open rebuilds it", dir);
            return;
        }
        lock.writeLock().lock();
        try {
            Check.that(!closed, "save on a closed index");
            List<ChapterFile> live = chapters.all().stream().filter(c -> !c.dropped()).toList();
            long bytes = SaveFile.write(fs, dir, indexId, openChapter, maxChunkId, live, open, tables());
            diskBytes.addAndGet(bytes - saveBytes);
            saveBytes = bytes;
            savedOpenChapter = openChapter;
            dropCheckpointFile(); // the save holds all of it
        } finally {
            lock.writeLock().unlock();
        }
    }

    // ---------------------------------------------------------------- compaction (Compactor)

    @Override
    public Compaction compactAll(DeadChunks dead) throws IOException {
        refuseIfReadOnly("compaction");
        return compactor.all(dead);
    }

    @Override
    public Compaction compactSome(DeadChunks dead) throws IOException {
        refuseIfReadOnly("compaction");
        return compactor.some(dead);
    }

    @Override
    public Compaction compacted() { return compactor.total(); }

    /**
     * The chapters compaction may rewrite now, oldest first: none while a rebuild runs (its thread reads chapter files
     * without a lock, and a partial volume index could not have its entries removed) or once closed.
     */
    List<ChapterFile> compactable() {
        lock.readLock().lock();
        try {
            if (closed || rebuildIncomplete) return List.of();
            List<ChapterFile> list = new ArrayList<>(chapters.all().stream().filter(c -> !c.dropped()).toList());
            list.sort(java.util.Comparator.comparingLong(c -> c.number));
            return list;
        } finally {
            lock.readLock().unlock();
        }
    }

    /** Whether this summary is still the ring's for its chapter. */
    boolean holds(ChapterFile c) {
        lock.readLock().lock();
        try {
            return chapters.get(c.number) == c;
        } finally {
            lock.readLock().unlock();
        }
    }

    /** A chapter that failed verification while being compacted is dropped, as a lookup would drop it. */
    void dropDamaged(ChapterFile c, CorruptionException e) { drop(c, e); }

    /** The volume index bits a name shares with others ({@link VolumeIndex#pairKey}), tagged by the table that holds it. */
    long entryKey(BlockName n) {
        return hookTable != null && Geometry.isHook(n) ? hookTable.pairKey(n) | Long.MIN_VALUE : fullTable.pairKey(n);
    }

    /**
     * Puts a compacted chapter in place of {@code was}: renames {@code tmp} over its file ({@code image} null: deletes
     * the file, nothing live was left) and swaps everything that describes it, under the write lock, so lookups see
     * the old chapter or the new one, never a mix. Removes the volume index entries of the removed names in that
     * chapter, except those whose bits a kept name of the chapter shares ({@code keptKeys}). A save on disk
     * describes the old summaries: the open chapter is checkpointed, then the save deleted, durably, first. Returns
     * false (and deletes tmp) when the ring no longer holds {@code was} (it expired or was dropped meanwhile) or the
     * index closed.
     */
    boolean installCompacted(ChapterFile was, ChapterFile.Image image, String tmp, List<BlockName> removed, java.util.Set<Long> keptKeys) throws IOException {
        lock.writeLock().lock();
        try {
            if (closed || chapters.get(was.number) != was || was.dropped()) {
                if (image != null) fs.delete(tmp);
                return false;
            }
            if (savedOpenChapter >= 0 || saveBytes > 0) {
                // The save may be all that holds the open chapter's records (a save replaces the checkpoint file):
                // checkpoint them first (a base, under this write lock: once per save), then delete it durably.
                checkpoint();
                deleteSave();
                fs.syncDir(dir);
            }
            String name = ChapterFile.fileName(dir, was.number);
            long oldBytes = (long) was.filePages() * ChapterFile.PAGE;
            if (image != null) {
                Check.that(image.summary().number == was.number && image.summary().records < was.records && image.summary().maxChunkId == was.maxChunkId,
                        "chapter %d rewritten smaller with its max chunk id", was.number);
                fs.rename(tmp, name);
                chapters.replace(was, image.summary());
                heldRecords += image.summary().records - was.records;
                diskBytes.addAndGet((long) image.bytes().length - oldBytes);
            } else {
                fs.delete(name);
                chapters.remove(was.number);
                heldRecords -= was.records;
                diskBytes.addAndGet(-oldBytes);
            }
            findsEpoch++;
            if (sparseCache != null) sparseCache.remove(was.number);
            for (BlockName n : removed) {
                VolumeIndex t = tableFor(n, was.number);
                if (t != null && !keptKeys.contains(entryKey(n))) t.remove(n, was.number, openChapter);
            }
            return true;
        } finally {
            lock.writeLock().unlock();
        }
    }

    /**
     * Removes the open chapter's records of dead chunks; returns how many. Their ids are read under the read lock and
     * asked of {@code dead} with no index lock held; a record is removed only if its id is still the one asked
     * about (a refresh may have changed it) and the chapter is still open. The next checkpoint writes a base.
     */
    int purgeOpenChapter(DeadChunks dead) throws IOException {
        long chapter;
        long[] ids;
        lock.readLock().lock();
        try {
            if (closed) return 0;
            chapter = openChapter;
            ids = new long[open.count()];
            for (int r = 0; r < ids.length; r++) ids[r] = open.id(r);
        } finally {
            lock.readLock().unlock();
        }
        boolean[] isDead = new boolean[ids.length];
        boolean any = false;
        for (int r = 0; r < ids.length; r++) any |= isDead[r] = dead.dead(ids[r]);
        if (!any) return 0;
        dead.makeDurable();
        lock.writeLock().lock();
        try {
            if (closed || openChapter != chapter) return 0;
            int removed = open.removeIf(r -> r < ids.length && isDead[r] && open.id(r) == ids[r]);
            heldRecords -= removed;
            checkpointed = 0;
            checkpointNeedsBase = true;
            return removed;
        } finally {
            lock.writeLock().unlock();
        }
    }

    /** Waits until a background rebuild has run to its end (returns at once when none runs), e.g. in tests. */
    public void awaitRebuild() throws InterruptedIOException {
        Thread t = rebuilder;
        if (t == null) return;
        try {
            t.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted while waiting for the index rebuild");
        }
    }

    /**
     * Stops a running rebuild and releases the index; writes nothing (call {@link #save} first at a clean
     * shutdown), so an index dropped without save behaves as after a process kill.
     */
    @Override
    public void close() throws IOException {
        closing = true;
        awaitRebuild();
        lock.writeLock().lock();
        try {
            checkpointLock.lock(); // a checkpoint writing now finishes first
            try {
                closed = true;
            } finally {
                checkpointLock.unlock();
            }
        } finally {
            lock.writeLock().unlock();
        }
    }

    @Override
    public String toString() { return "UdsIndex[" + dir + ", " + geometry + (readOnly ? ", read-only" : "") + "]"; }

    /** Whether this index was opened with {@link #openReadOnly}. */
    public boolean readOnly() { return readOnly; }

    /** For tests: the chapter numbers currently in the window, oldest first. */
    long[] liveChapters() {
        lock.readLock().lock();
        try {
            return chapters.all().stream().mapToLong(c -> c.number).sorted().toArray();
        } finally {
            lock.readLock().unlock();
        }
    }

    /** For tests and tools: the open chapter's number. */
    long openChapterNumber() {
        lock.readLock().lock();
        try {
            return openChapter;
        } finally {
            lock.readLock().unlock();
        }
    }
}
