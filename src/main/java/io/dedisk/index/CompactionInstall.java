package io.dedisk.index;

import io.dedisk.DediskException.CorruptionException;
import io.dedisk.index.DedupIndex.DeadChunks;
import io.dedisk.util.Check;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Set;

/**
 * What the {@link Compactor} asks of a {@link UdsIndex}'s in-memory state, and how a compacted chapter is put in
 * place: the chapters it may rewrite, whether a summary is still current, the swap of a rewritten (or deleted)
 * chapter file {@code chapter-<n>} with its summary, volume index entries, sparse cache and counts, and the purge
 * of dead records from the open chapter. The Compactor does the I/O of reading and writing the chapter files.
 *
 * Threads: the Compactor calls these holding its own lock (taken before any index lock); each method takes the
 * index's lock ({@link IndexState#lock}) itself, read or write as it says, so lookups see the old chapter or the
 * new one, never a mix. {@link #install} checkpoints the open chapter under that write lock (the checkpoint lock
 * is taken after it, as always).
 */
final class CompactionInstall {
    private final IndexState s;
    private final ChapterLookup lookup;
    private final OpenChapterCheckpoint checkpoint;
    private final IndexRecovery recovery;

    CompactionInstall(IndexState s, ChapterLookup lookup, OpenChapterCheckpoint checkpoint, IndexRecovery recovery) {
        this.s = s;
        this.lookup = lookup;
        this.checkpoint = checkpoint;
        this.recovery = recovery;
    }

    /**
     * The chapters compaction may rewrite now, oldest first: none while a rebuild runs (its thread reads chapter files
     * without a lock, and a partial volume index could not have its entries removed) or once closed.
     */
    List<ChapterFile> compactable() {
        s.lock.readLock().lock();
        try {
            if (s.closed || recovery.rebuildIncomplete()) return List.of();
            List<ChapterFile> list = new ArrayList<>(s.chapters.all().stream().filter(c -> !c.dropped()).toList());
            list.sort(Comparator.comparingLong(c -> c.number));
            return list;
        } finally {
            s.lock.readLock().unlock();
        }
    }

    /** Whether this summary is still the ring's for its chapter. */
    boolean holds(ChapterFile c) {
        s.lock.readLock().lock();
        try {
            return s.chapters.get(c.number) == c;
        } finally {
            s.lock.readLock().unlock();
        }
    }

    /** A chapter that failed verification while being compacted is dropped, as a lookup would drop it. */
    void dropDamaged(ChapterFile c, CorruptionException e) { lookup.drop(c, e); }

    /** The volume index bits a name shares with others ({@link VolumeIndex#pairKey}), tagged by the table that holds it. */
    long entryKey(BlockName n) {
        return s.hookTable != null && Geometry.isHook(n) ? s.hookTable.pairKey(n) | Long.MIN_VALUE : s.fullTable.pairKey(n);
    }

    /**
     * Puts a compacted chapter in place of {@code was}: renames {@code tmp} over its file ({@code image} null: deletes
     * the file, nothing live was left) and swaps everything that describes it, under the write lock. Removes the
     * volume index entries of the removed names in that chapter, except those whose bits a kept name of the chapter
     * shares ({@code keptKeys}). A save on disk describes the old summaries: the open chapter is checkpointed, then
     * the save deleted, durably, first. Returns false (and deletes tmp) when the ring no longer holds {@code was} (it
     * expired or was dropped meanwhile) or the index closed.
     */
    boolean install(ChapterFile was, ChapterFile.Image image, String tmp, List<BlockName> removed, Set<Long> keptKeys) throws IOException {
        s.lock.writeLock().lock();
        try {
            if (s.closed || s.chapters.get(was.number) != was || was.dropped()) {
                if (image != null) s.fs.delete(tmp);
                return false;
            }
            if (s.savedOpenChapter >= 0 || s.saveBytes > 0) {
                // The save may be all that holds the open chapter's records (a save replaces the checkpoint file):
                // checkpoint them first (a base, under this write lock: once per save), then delete it durably.
                checkpoint.begin().write();
                s.deleteSave();
                s.fs.syncDir(s.dir);
            }
            String name = ChapterFile.fileName(s.dir, was.number);
            long oldBytes = (long) was.filePages() * ChapterFile.PAGE;
            if (image != null) {
                Check.that(image.summary().number == was.number && image.summary().records < was.records && image.summary().maxChunkId == was.maxChunkId,
                        "chapter %d rewritten smaller with its max chunk id", was.number);
                s.fs.rename(tmp, name);
                s.chapters.replace(was, image.summary());
                s.heldRecords += image.summary().records - was.records;
                s.diskBytes.addAndGet((long) image.bytes().length - oldBytes);
            } else {
                s.fs.delete(name);
                s.chapters.remove(was.number);
                s.heldRecords -= was.records;
                s.diskBytes.addAndGet(-oldBytes);
            }
            lookup.chaptersChanged();
            lookup.forgetChapter(was.number);
            for (BlockName n : removed) {
                VolumeIndex t = s.tableFor(n, was.number);
                if (t != null && !keptKeys.contains(entryKey(n))) t.remove(n, was.number, s.openChapter);
            }
            return true;
        } finally {
            s.lock.writeLock().unlock();
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
        OpenChapter open = s.open;
        s.lock.readLock().lock();
        try {
            if (s.closed) return 0;
            chapter = s.openChapter;
            ids = new long[open.count()];
            for (int r = 0; r < ids.length; r++) ids[r] = open.id(r);
        } finally {
            s.lock.readLock().unlock();
        }
        boolean[] isDead = new boolean[ids.length];
        boolean any = false;
        for (int r = 0; r < ids.length; r++) any |= isDead[r] = dead.dead(ids[r]);
        if (!any) return 0;
        dead.makeDurable();
        s.lock.writeLock().lock();
        try {
            if (s.closed || s.openChapter != chapter) return 0;
            int removed = open.removeIf(r -> r < ids.length && isDead[r] && open.id(r) == ids[r]);
            s.heldRecords -= removed;
            checkpoint.rebase();
            return removed;
        } finally {
            s.lock.writeLock().unlock();
        }
    }
}
