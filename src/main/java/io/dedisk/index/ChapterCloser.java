package io.dedisk.index;

import static io.dedisk.index.IndexState.LOG;

import io.dedisk.util.Check;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.util.List;

/**
 * The write side of a {@link UdsIndex}'s window: closing the full open chapter (its file {@code chapter-<n>},
 * written by {@link ChapterFile#write}, durable when the close returns), indexing its records in the volume index,
 * expiring the chapter that leaves the window (its file deleted), and the save ({@link SaveFile}, {@code save}) of
 * the whole in-memory state at a clean shutdown. A save is of no use once a chapter closes after it (it is then
 * older than the chapters): the close deletes it, as it deletes the closed chapter's checkpoint file.
 *
 * Threads: {@link #close} runs under the index's write lock ({@link IndexState#lock}), {@link #save} takes it; both
 * then take the checkpoint lock ({@link OpenChapterCheckpoint}), so they wait for a checkpoint writing.
 */
final class ChapterCloser {
    private final IndexState s;
    private final ChapterLookup lookup;
    private final OpenChapterCheckpoint checkpoint;

    ChapterCloser(IndexState s, ChapterLookup lookup, OpenChapterCheckpoint checkpoint) {
        this.s = s;
        this.lookup = lookup;
        this.checkpoint = checkpoint;
    }

    /** Writes the full open chapter out, indexes it, and expires the chapter that leaves the window. Write lock held. */
    void close() {
        Check.that(s.lock.isWriteLockedByCurrentThread() && s.open.full(), "a full open chapter is closed under the write lock");
        long number = s.openChapter;
        OpenChapter open = s.open;
        ChapterFile c = null;
        try {
            c = ChapterFile.write(s.fs, s.dir, s.indexId, number, open, s.maxChunkId);
        } catch (IOException e) {
            s.lostChapters++;
            LOG.log(Level.WARNING, "index chapter {0} could not be written; its {1} records are lost to dedup: {2}", number, open.count(), e.toString());
        }
        s.openChapter = number + 1;
        lookup.chaptersChanged();
        s.heldRecords -= open.count();
        if (c != null) {
            s.diskBytes.addAndGet((long) c.filePages() * ChapterFile.PAGE);
            s.chapters.add(c);
            s.heldRecords += c.records;
            for (int r = 0; r < open.count(); r++) {
                BlockName n = open.name(r);
                VolumeIndex t = s.tableFor(n, number);
                long previous = open.previous(r);
                if (previous < 0 || !t.move(n, previous, number, s.openChapter)) t.put(n, number, s.openChapter);
            }
        }
        open.clear();
        forgetStale(number);
        long expired = s.oldestLive() - 1;
        ChapterFile gone = s.chapters.remove(expired);
        if (gone != null) {
            s.heldRecords -= gone.records;
            if (gone.dropped()) s.droppedRecords.addAndGet(-gone.records);
        }
        String expiredName = ChapterFile.fileName(s.dir, expired);
        try {
            // Its size: from its summary, else (a chapter never indexed: lost, or its header was bad) from the file.
            long bytes = gone != null ? (long) gone.filePages() * ChapterFile.PAGE : s.fileSize(expiredName);
            if (bytes > 0) {
                s.fs.delete(expiredName);
                s.diskBytes.addAndGet(-bytes);
            }
        } catch (IOException e) {
            LOG.log(Level.WARNING, "expired index chapter {0} could not be deleted (retried at the next open): {1}", expired, e.toString());
        }
        lookup.retainWindow();
        for (VolumeIndex t : s.tables()) t.sweep(s.openChapter);
    }

    /**
     * After chapter {@code number} closed (its file durable, or lost): its checkpoint file is of no use, nor is a
     * save whose open chapter it was. Deletions need no sync: a file that comes back after a machine crash is
     * recognized as stale at open.
     */
    private void forgetStale(long number) {
        checkpoint.chapterClosed(number);
        if (s.savedOpenChapter >= 0 && number >= s.savedOpenChapter) {
            try {
                s.deleteSave();
            } catch (IOException e) {
                LOG.log(Level.WARNING, "stale index save could not be deleted (retried at the next open): {0}", e.toString());
                s.savedOpenChapter = -1;
            }
        }
    }

    /** Writes the save durably (the caller made sure the volume index is whole); it replaces the checkpoint file. Takes the write lock. */
    void save() throws IOException {
        s.lock.writeLock().lock();
        try {
            Check.that(!s.closed, "save on a closed index");
            List<ChapterFile> live = s.chapters.all().stream().filter(c -> !c.dropped()).toList();
            long bytes = SaveFile.write(s.fs, s.dir, s.indexId, s.openChapter, s.maxChunkId, live, s.open, s.tables());
            s.diskBytes.addAndGet(bytes - s.saveBytes);
            s.saveBytes = bytes;
            s.savedOpenChapter = s.openChapter;
            checkpoint.dropFile(); // the save holds all of it
        } finally {
            s.lock.writeLock().unlock();
        }
    }
}
