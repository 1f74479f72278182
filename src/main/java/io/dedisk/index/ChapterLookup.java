package io.dedisk.index;

import static io.dedisk.index.DedupIndex.NONE;
import static io.dedisk.index.IndexState.LOG;

import io.dedisk.DediskException.CorruptionException;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.util.concurrent.atomic.AtomicReferenceArray;

/**
 * The lookup path of a {@link UdsIndex} in its closed chapters: each volume index candidate newest first, reading
 * that chapter's index page and record page through the {@link PageCache} and comparing the full 256-bit name, so
 * a lookup never returns a chunk id posted for another name. In sparse mode a name that is not a hook is also
 * looked for in the chapters of the {@link SparseCache}, and a hook found in a sparse chapter loads that chapter's
 * index into it. A chapter whose pages fail verification or cannot be read is dropped (logged once): its advice is
 * lost, the rest works. Owns the two caches and {@link #recentFinds}; no file of its own (pages: {@link ChapterFile}).
 *
 * Threads: every method runs under the index's lock ({@link IndexState#lock}), read or write, as each says; the
 * caches synchronize inside, briefly. {@link #findsEpoch} changes under the write lock only.
 */
final class ChapterLookup {
    private static final int RECENT_FINDS = 4096;

    private final IndexState s;
    private final PageCache pageCache;
    /** Sparse mode only, else null. */
    private final SparseCache sparseCache;
    /**
     * Where recent lookups found names in closed chapters (chapter, or NONE), so the insert that follows a write's
     * lookup (a confirmed hit's refresh, a new chunk's post) need not probe the volume index and chapter pages again:
     * that second probe was ~10 % of the server's CPU on a VM-image write, under the pool's write lock. Slots are
     * filled under either lock, racily (a slot holds one whole {@link Found} or another); an entry counts only while
     * {@link #findsEpoch} is what it was stamped with. A wrong hint could only cost the volume index a second entry
     * (insert moves the old entry when it finds it, else adds one), never a wrong answer: lookups never read it.
     */
    private final AtomicReferenceArray<Found> recentFinds = new AtomicReferenceArray<>(RECENT_FINDS);
    /** Bumped whenever closed chapters change what they answer (a close, a rebuilt chapter, a compaction). */
    private long findsEpoch;

    /** A lookup's result for the name: the newest closed chapter holding it (or NONE) and the id there, as of {@code epoch}. */
    record Found(BlockName name, long chapter, long id, long epoch) {}

    ChapterLookup(IndexState s) {
        this.s = s;
        this.pageCache = new PageCache(s.geometry.pageCachePages());
        this.sparseCache = s.geometry.sparse() ? new SparseCache(s.geometry.sparseCacheChapters()) : null;
    }

    /** What the caches hold now; lock-free. */
    long cacheBytes() { return pageCache.memoryBytes() + (sparseCache != null ? sparseCache.memoryBytes() : 0); }

    /** Closed chapters answer otherwise from now on: hints noted before are void. Write lock held. */
    void chaptersChanged() { findsEpoch++; }

    /** Chapter {@code number} was rewritten or deleted: its cached chapter index goes. Write lock held. */
    void forgetChapter(long number) {
        if (sparseCache != null) sparseCache.remove(number);
    }

    /** The window moved: cached chapter indexes of expired chapters go. Write lock held. */
    void retainWindow() {
        if (sparseCache != null) sparseCache.retainFrom(s.oldestLive());
    }

    /** The newest closed-chapter record of the name: its chunk id (or NONE), its chapter in where[0]. Under either lock. */
    private long findClosedIn(BlockName name, long[] where) {
        boolean hook = s.hookTable != null && Geometry.isHook(name);
        VolumeIndex table = hook ? s.hookTable : s.fullTable;
        long oc = s.openChapter;
        for (long c = table.newestCandidate(name, oc, Long.MAX_VALUE); c >= 0; c = table.newestCandidate(name, oc, c)) {
            ChapterFile file = s.chapters.get(c);
            if (file == null || file.dropped()) continue;
            long id = search(file, name, null);
            if (id != NONE) {
                if (hook && oc - c > s.geometry.denseChapters()) cacheChapterIndex(file);
                where[0] = c;
                return id;
            }
        }
        if (sparseCache != null && !hook) {
            for (SparseCache.Entry e : sparseCache.chapters()) {
                if (e.chapter.number < s.oldestLive() || e.chapter.dropped()) continue;
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

    /** The name's chunk id in the closed chapters (or NONE), noting the chapter in {@link #recentFinds} for the insert that may follow. Under either lock. */
    long findClosedNoting(BlockName name) {
        long[] where = {NONE};
        long id = findClosedIn(name, where);
        recentFinds.set(slotOf(name), new Found(name, where[0], id, findsEpoch));
        return id;
    }

    /** The name's newest closed record (chapter NONE: none), from {@link #recentFinds} when a lookup noted it this epoch. Write lock held. */
    Found closedRecordOf(BlockName name) {
        Found f = recentFinds.get(slotOf(name));
        if (f != null && f.epoch == findsEpoch && f.name.equals(name)) {
            if (f.chapter == NONE) return f;
            ChapterFile file = s.chapters.get(f.chapter);
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
                for (int i = ChapterPage.firstEntry(ip, key), p; (p = ChapterPage.recordPageAt(ip, i, key)) >= 0; i++) {
                    long id = ChapterPage.findRecord(page(chapter, ChapterFile.KIND_RECORD, p), name);
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
            p = chapter.readPage(s.fs, s.dir, kind, page);
            pageCache.put(key, p);
        }
        return p;
    }

    private void cacheChapterIndex(ChapterFile chapter) {
        if (sparseCache.contains(chapter.number)) return;
        try {
            sparseCache.put(chapter, chapter.readIndexPages(s.fs, s.dir));
        } catch (CorruptionException | IOException e) {
            drop(chapter, e);
        }
    }

    /** Marks a chapter of the ring that failed verification or could not be read as dropped; logs it once. Under either lock. */
    void drop(ChapterFile chapter, Exception e) {
        if (chapter.drop()) {
            // Only chapters of the ring are searched, and none leaves it while a lock is held: count it as gone.
            s.droppedRecords.addAndGet(chapter.records);
            LOG.log(Level.WARNING, "index chapter {0} ({1} records) failed verification or could not be read; its advice is dropped: {2}",
                    chapter.number, chapter.records, e.getMessage());
        }
    }
}
