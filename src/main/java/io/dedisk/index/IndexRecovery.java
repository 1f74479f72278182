package io.dedisk.index;

import static io.dedisk.index.IndexState.LOG;

import io.dedisk.DediskException.CorruptionException;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.lang.System.Logger.Level;
import java.util.ArrayList;
import java.util.List;

/**
 * Recovery of a {@link UdsIndex} at open: reads the directory's files (chapters {@code chapter-<n>}, checkpoints
 * {@code open-<n>}, the {@code save}; layouts in {@link ChapterFile}, {@link OpenChapterFile}, {@link SaveFile}) into
 * the {@link IndexState}. It loads the save when it is not older than the chapters; otherwise {@link #start}
 * returns at once and a background thread rebuilds the volume index from the chapter files, newest first (the most
 * useful advice comes back first), while lookups (which may miss) and inserts go on. Either way the checkpoint of
 * the open chapter is merged into it before open returns ({@link OpenChapterCheckpoint#merge}). The max chunk id
 * covers every chunk id that can come back as advice: each chapter header and checkpoint block carries the largest
 * id posted before it was written, and open takes the newest valid ones.
 *
 * Threads: {@link #start} runs before anybody else has the index, with no lock. The rebuild thread reads files
 * with no lock and takes the index's write lock for each chapter it puts in place; it stops early once the index
 * is closing. {@link #rebuildIncomplete} and {@link #rebuildRemaining} are volatile, written by that thread.
 *
 * Invariant: while {@link #rebuildIncomplete}, the volume index is partial and must never be saved as whole, nor
 * have entries removed by compaction.
 */
final class IndexRecovery {
    private final IndexState s;
    private final ChapterLookup lookup;
    private final OpenChapterCheckpoint checkpoint;
    private volatile double rebuildRemaining;
    /** Set while a rebuild has not run to its end. */
    private volatile boolean rebuildIncomplete;
    private Thread rebuilder;

    IndexRecovery(IndexState s, ChapterLookup lookup, OpenChapterCheckpoint checkpoint) {
        this.s = s;
        this.lookup = lookup;
        this.checkpoint = checkpoint;
    }

    /**
     * Loads the save, merges the open chapter checkpoint, or starts the rebuild; the caller holds no lock and
     * nobody else has the index yet. When writable, also deletes what is of no use any more: interrupted writes
     * ({@code *.tmp}), expired chapters, checkpoints of other chapters, a save older than the chapters.
     */
    void start() throws IOException {
        List<Long> chapterFiles = new ArrayList<>(), checkpointFiles = new ArrayList<>();
        for (String f : s.fs.list(s.dir)) {
            if (f.endsWith(".tmp")) {
                if (!s.readOnly) s.fs.delete(s.dir + "/" + f); // an interrupted atomic write
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
        String saveName = s.dir + "/" + SaveFile.FILE;
        SaveFile.Loaded saved = null;
        try {
            saved = SaveFile.load(s.fs, s.dir, s.indexId, s.geometry, newest, s.open, s.tables());
            if (saved == null && s.fs.exists(saveName)) {
                LOG.log(Level.INFO, "index in {0}: the save is older than chapter {1}, rebuilding from the chapters", s.dir, newest);
                if (!s.readOnly) s.fs.delete(saveName);
            }
        } catch (CorruptionException | IOException e) {
            LOG.log(Level.WARNING, "ignoring the saved state of the index in {0}, rebuilding from the chapters: {1}", s.dir, e.getMessage());
            for (VolumeIndex t : s.tables()) t.clear();
            s.open.clear();
        }
        // The open chapter is the save's, or follows the newest chapter file, unless a checkpoint names a later
        // one: chapters between were lost to write errors, and the running index had moved past them.
        long base = saved != null ? saved.openChapter() : newest + 1;
        long newestCheckpoint = checkpointFiles.isEmpty() ? -1 : checkpointFiles.getLast();
        s.openChapter = Math.max(base, newestCheckpoint);
        if (saved != null && s.openChapter > base) {
            LOG.log(Level.INFO, "index in {0}: the saved open chapter {1} was lost (its file was never written); chapter {2} follows",
                    s.dir, base, s.openChapter);
            s.open.clear();
        }
        long mergedMaxChunkId = newestCheckpoint == s.openChapter ? checkpoint.merge() : 0;
        long oldestLive = s.oldestLive();
        if (!s.readOnly) {
            for (long n : chapterFiles) if (n < oldestLive) s.fs.delete(ChapterFile.fileName(s.dir, n));
            for (long o : checkpointFiles) if (o != s.openChapter) s.fs.delete(OpenChapterFile.fileName(s.dir, o));
        }
        s.diskBytes.set(s.filesBytes());
        s.saveBytes = s.fileSize(saveName);
        if (saved != null) {
            s.savedOpenChapter = saved.openChapter();
            s.maxChunkId = Math.max(saved.maxChunkId(), mergedMaxChunkId);
            for (ChapterFile c : saved.chapters()) if (c.number >= oldestLive) s.chapters.add(c);
            s.heldRecords = s.chapters.records() + s.open.count();
            return;
        }
        s.heldRecords = s.open.count();
        long[] toRebuild = chapterFiles.stream().filter(n -> n >= oldestLive).mapToLong(Long::longValue).sorted().toArray();
        s.maxChunkId = Math.max(newestValidMaxChunkId(toRebuild), mergedMaxChunkId);
        if (toRebuild.length == 0) return;
        LOG.log(Level.INFO, "index in {0}: no usable save, rebuilding from {1} chapters in the background", s.dir, toRebuild.length);
        rebuildRemaining = 1;
        rebuildIncomplete = true;
        rebuilder = Thread.ofPlatform().name("dedisk-index-rebuild").daemon().start(() -> rebuild(toRebuild));
    }

    /** The max chunk id of the newest chapter with a valid header: it bounds every older chapter's ids too. */
    private long newestValidMaxChunkId(long[] ascending) {
        for (int i = ascending.length - 1; i >= 0; i--) {
            try {
                return ChapterFile.readHeader(s.fs, s.dir, s.indexId, ascending[i]).maxChunkId;
            } catch (CorruptionException | IOException e) {
                LOG.log(Level.WARNING, "index chapter {0} has no valid header: {1}", ascending[i], e.getMessage());
            }
        }
        return 0;
    }

    private void rebuild(long[] ascending) {
        for (int i = ascending.length - 1; i >= 0 && !s.closing; i--) {
            long number = ascending[i];
            try {
                ChapterFile c = ChapterFile.readHeader(s.fs, s.dir, s.indexId, number);
                if (c.records > s.geometry.chapterRecords()) {
                    throw new CorruptionException("chapter " + number + " holds " + c.records + " records, more than the " + s.geometry.chapterRecords() + " of this index");
                }
                byte[] file = c.readAll(s.fs, s.dir);
                s.lock.writeLock().lock();
                try {
                    if (!s.closing && number >= s.oldestLive()) {
                        lookup.chaptersChanged();
                        s.chapters.add(c);
                        s.heldRecords += c.records;
                        c.forEachName(file, n -> {
                            VolumeIndex t = s.tableFor(n, number);
                            if (t != null) t.putReplayed(n, number, s.openChapter);
                        });
                    }
                } finally {
                    s.lock.writeLock().unlock();
                }
            } catch (CorruptionException | IOException e) {
                if (number >= s.oldestLive()) {
                    LOG.log(Level.WARNING, "index chapter {0} cannot be read, its advice is dropped: {1}", number, e.getMessage());
                }
            }
            rebuildRemaining = (double) i / ascending.length;
        }
        if (!s.closing) {
            rebuildIncomplete = false;
            rebuildRemaining = 0;
        }
    }

    /** Waits until a background rebuild has run to its end (returns at once when none runs). */
    void awaitRebuild() throws InterruptedIOException {
        Thread t = rebuilder;
        if (t == null) return;
        try {
            t.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted while waiting for the index rebuild");
        }
    }

    /** Fraction of the chapters still to rebuild, 0 when none. */
    double rebuildRemaining() { return rebuildRemaining; }

    /** Whether a rebuild has not run to its end (the volume index is partial). */
    boolean rebuildIncomplete() { return rebuildIncomplete; }
}
