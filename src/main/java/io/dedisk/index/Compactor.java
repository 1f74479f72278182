package io.dedisk.index;

import io.dedisk.DediskException.CorruptionException;
import io.dedisk.index.DedupIndex.Compaction;
import io.dedisk.index.DedupIndex.DeadChunks;
import io.dedisk.store.Fs;
import io.dedisk.util.Check;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Compaction of a {@link UdsIndex}: closed chapters rewritten without the records of dead chunks (docs/index.md,
 * "Compaction"). Advice for a dead chunk is worthless for ever (ids are never reused, {@link DeadChunks}), yet a
 * closed chapter would keep its 40 B record and 8 B index entry until the window turns: after a volume of fresh
 * data is deleted, its names are most of the index's files.
 *
 * One chapter at a time, with no index lock during its I/O:
 * <ol>
 * <li>read the whole file and verify every page ({@link ChapterFile#readAll}); ask {@link DeadChunks} of each record;
 * <li>nothing dead, or not worth it: done. Else encode the survivors (arrival order kept across pages, sorted
 *     within each new page), same chapter number and header max chunk id, verified before it is written
 *     ({@link ChapterFile#encode});
 * <li>make the deaths durable ({@link DeadChunks#makeDurable}), so no advice is dropped for a chunk a crash could
 *     bring back;
 * <li>write {@code chapter-<n>.tmp} and sync it;
 * <li>{@link CompactionInstall#install}, under the index's write lock: rename it over {@code chapter-<n>} (or delete
 *     {@code chapter-<n>} when nothing live is left), and swap the summary, volume index entries, sparse cache and
 *     counts with it, so no lookup ever sees the new file through the old summary or the reverse (pages are cached
 *     per summary: {@link ChapterFile#cacheId});
 * <li>sync the directory.
 * </ol>
 * A crash at any of these leaves chapter n whole, old or new (both valid, both true advice), and at most a
 * {@code .tmp} the next open deletes. A save on disk describes the old summaries, so the first install deletes it
 * and syncs the directory before its rename.
 *
 * Background ({@link #some}): samples {@link #SAMPLE_PAGES} record pages of {@link #SAMPLE_CHAPTERS} chapters per
 * call, round robin, and compacts at most the one chapter with the largest sampled dead fraction, if at least
 * {@link #WORTH} (and the count confirms it). {@code dedisk gc} ({@link #all}) reads every chapter and rewrites each
 * that gets at least one page smaller or loses at least {@link #GC_WORTH} of its records, then removes dead records
 * from the open chapter.
 *
 * Threads: one compaction at a time (its own lock, taken before any index lock); lookups, inserts, chapter closes
 * and checkpoints go on meanwhile. A chapter that closes, expires or is dropped while being compacted is left as
 * it is then (the install sees the ring no longer holds the summary it read).
 */
final class Compactor {
    /** Dead fraction (sampled, then counted) at which the background rewrites a chapter: a quarter of its bytes back for three quarters written. */
    static final double WORTH = 0.25;
    /** Dead fraction at which gc rewrites a chapter that would not get a page smaller (dead advice still costs lookups a page read and a volume index slot). */
    static final double GC_WORTH = 1.0 / 16;
    /** Chapters sampled per background step, and record pages read from each. */
    static final int SAMPLE_CHAPTERS = 16;
    static final int SAMPLE_PAGES = 2;

    private final CompactionInstall index;
    private final Fs fs;
    private final String dir;
    private final UUID indexId;
    private final ReentrantLock lock = new ReentrantLock();
    /** The chapter number the next background step samples first (guarded by lock). */
    private long cursor;
    /** Varies which record pages a chapter's samples read from step to step (guarded by lock). */
    private long samples;
    private volatile Compaction total = Compaction.NONE;

    Compactor(CompactionInstall index, Fs fs, String dir, UUID indexId) {
        this.index = index;
        this.fs = fs;
        this.dir = dir;
        this.indexId = indexId;
    }

    /** What compaction gave back since open. */
    Compaction total() { return total; }

    /** gc: every chapter worth it is rewritten, a chapter with no live record deleted, then the open chapter purged. */
    Compaction all(DeadChunks dead) throws IOException {
        lock.lock();
        try {
            Compaction done = Compaction.NONE;
            for (ChapterFile c : index.compactable()) done = done.plus(chapter(c, dead, true));
            done = done.plus(new Compaction(0, 0, index.purgeOpenChapter(dead), 0));
            total = total.plus(done);
            return done;
        } finally {
            lock.unlock();
        }
    }

    /** One bounded background step (see the class comment). */
    Compaction some(DeadChunks dead) throws IOException {
        lock.lock();
        try {
            List<ChapterFile> live = index.compactable();
            if (live.isEmpty()) return Compaction.NONE;
            int start = 0;
            while (start < live.size() && live.get(start).number < cursor) start++;
            ChapterFile best = null;
            double bestFraction = WORTH;
            int n = Math.min(SAMPLE_CHAPTERS, live.size());
            for (int k = 0; k < n; k++) {
                ChapterFile c = live.get((start + k) % live.size());
                double f = sampledDeadFraction(c, dead);
                if (f >= bestFraction) {
                    best = c;
                    bestFraction = f;
                }
                cursor = c.number + 1;
            }
            samples++;
            Compaction done = best == null ? Compaction.NONE : chapter(best, dead, false);
            total = total.plus(done);
            return done;
        } finally {
            lock.unlock();
        }
    }

    /** Dead fraction of {@link #SAMPLE_PAGES} record pages of the chapter (read past the page cache, so sampling evicts nothing). */
    private double sampledDeadFraction(ChapterFile c, DeadChunks dead) throws IOException {
        int seen = 0, deadSeen = 0;
        for (int s = 0; s < SAMPLE_PAGES && s < c.recordPages; s++) {
            int p = (int) Math.floorMod(samples * 7919 + (long) s * c.recordPages / SAMPLE_PAGES, (long) c.recordPages);
            byte[] page = readOrNull(c, () -> c.readPage(fs, dir, ChapterFile.KIND_RECORD, p));
            if (page == null) return 0;
            int count = ChapterPage.count(page, 0);
            for (int i = 0; i < count; i++) {
                seen++;
                if (dead.dead(ChapterPage.recordWord(page, ChapterFile.PAGE_HEADER + ChapterFile.RECORD_BYTES * i, 4))) deadSeen++;
            }
        }
        return seen == 0 ? 0 : (double) deadSeen / seen;
    }

    /** Compacts one chapter when worth it (see the class comment). */
    private Compaction chapter(ChapterFile c, DeadChunks dead, boolean all) throws IOException {
        byte[] file = readOrNull(c, () -> c.readAll(fs, dir));
        if (file == null) return Compaction.NONE;
        int[] kept = new int[c.records];
        int keptCount = 0;
        List<BlockName> removed = new ArrayList<>();
        Set<Long> keptKeys = new HashSet<>();
        for (int p = 0; p < c.recordPages; p++) {
            for (int i = 0, n = c.recordsIn(file, p); i < n; i++) {
                int off = c.recordOffset(p, i);
                BlockName name = ChapterPage.recordName(file, off);
                if (dead.dead(ChapterPage.recordWord(file, off, 4))) {
                    removed.add(name);
                } else {
                    kept[keptCount++] = off;
                    keptKeys.add(index.entryKey(name));
                }
            }
        }
        Check.that(keptCount + removed.size() == c.records, "chapter %d: %d kept + %d removed records of %d", c.number, keptCount, removed.size(), c.records);
        if (removed.isEmpty()) return Compaction.NONE;
        ChapterFile.Image image = keptCount == 0 ? null : ChapterFile.encode(indexId, c.number, new Kept(file, kept, keptCount), c.maxChunkId);
        long oldBytes = (long) c.filePages() * ChapterFile.PAGE;
        long newBytes = image == null ? 0 : image.bytes().length;
        boolean worth = all ? newBytes < oldBytes || removed.size() >= c.records * GC_WORTH : (double) removed.size() / c.records >= WORTH;
        if (!worth) return Compaction.NONE;
        dead.makeDurable();
        String tmp = ChapterFile.fileName(dir, c.number) + ".tmp";
        if (image != null) writeSynced(tmp, image.bytes());
        if (!index.install(c, image, tmp, removed, keptKeys)) return Compaction.NONE;
        fs.syncDir(dir);
        return new Compaction(image != null ? 1 : 0, image == null ? 1 : 0, removed.size(), oldBytes - newBytes);
    }

    private interface ChapterRead {
        byte[] read() throws IOException;
    }

    /**
     * Bytes of the chapter, verified by {@code read}; null when the chapter is out of compaction's hands: damaged (then
     * dropped, as a lookup would drop it) or expired (its file deleted) since the list was taken.
     */
    private byte[] readOrNull(ChapterFile c, ChapterRead read) throws IOException {
        try {
            return read.read();
        } catch (CorruptionException e) {
            index.dropDamaged(c, e);
            return null;
        } catch (IOException e) {
            if (!index.holds(c)) return null;
            throw e;
        }
    }

    /** Writes and syncs a new file (the first half of {@link Fs#writeAtomically}; the install renames it). */
    private void writeSynced(String tmp, byte[] bytes) throws IOException {
        boolean done = false;
        try (Fs.FileHandle h = fs.open(tmp, true)) {
            h.truncate(0);
            h.write(0, ByteBuffer.wrap(bytes));
            h.sync();
            done = true;
        } finally {
            if (!done) fs.delete(tmp);
        }
    }

    /** The surviving records of a chapter image, in file order (arrival order across its pages). */
    private record Kept(byte[] file, int[] offsets, int count) implements ChapterFile.Records {
        @Override public long word(int r, int w) { return ChapterPage.recordWord(file, offsets[r], w); }
        @Override public long id(int r) { return ChapterPage.recordWord(file, offsets[r], 4); }
    }
}
