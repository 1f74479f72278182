package io.dedisk.index;

import static io.dedisk.index.IndexState.LOG;

import io.dedisk.DediskException.CorruptionException;
import io.dedisk.index.DedupIndex.PendingCheckpoint;
import io.dedisk.util.Check;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.util.List;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The checkpoint path of a {@link UdsIndex}: what of the open chapter is in its checkpoint file
 * ({@link OpenChapterFile}, {@code open-<n>}, whose layout is in that class) and how the rest gets there. The first
 * checkpoint in a chapter writes a base of all its records, the next ones append only those posted since; the
 * file is deleted once what it holds is durable elsewhere (the chapter's own file, or a save). At open the file of
 * the open chapter is merged back into the open chapter ({@link #merge}).
 *
 * Threads: {@link #lock} (the checkpoint lock) serializes checkpoints and guards the file's state
 * ({@link #fileChapter}, {@link #fileBytes}, {@link #fileBlocks}); it is taken after the index's write lock, never
 * before. {@link #begin} collects the records under the write lock and returns holding the checkpoint lock alone,
 * so lookups and inserts go on during the I/O. {@link #checkpointed} is guarded by the write lock;
 * {@link #needsBase} is set under either lock and cleared under both.
 *
 * Invariants: the file, when there is one, is the open chapter's ({@code fileChapter} is -1 or {@code openChapter});
 * records [0, checkpointed) of the open chapter are in it with their current ids unless {@code needsBase}.
 */
final class OpenChapterCheckpoint {
    private final IndexState s;
    private final ReentrantLock lock = new ReentrantLock();
    /** The chapter whose checkpoint file is on disk, -1 when none; its size and blocks. Checkpoint lock. */
    private long fileChapter = -1;
    private long fileBytes;
    private int fileBlocks;
    /** Records [0, checkpointed) of the open chapter are in its checkpoint file with their current ids. Write lock. */
    private int checkpointed;
    /** The next checkpoint must write the whole open chapter. */
    private volatile boolean needsBase = true;

    OpenChapterCheckpoint(IndexState s) { this.s = s; }

    /**
     * Merges the open chapter's checkpoint file into the open chapter; returns the largest chunk id it names. A name
     * already there keeps the larger chunk id (ids are never reused: the larger is the newer chunk; both are true
     * advice). A bad block ends the merge (after a crash in the middle of an append, the last block is torn: its
     * records were never acknowledged). The file stays as it is; the next checkpoint replaces it with a base. At
     * open, before anybody else has the index.
     */
    long merge() {
        long chapter = s.openChapter;
        String name = OpenChapterFile.fileName(s.dir, chapter);
        OpenChapter open = s.open;
        fileChapter = chapter;
        needsBase = true;
        long[] merged = {0};
        try {
            fileBytes = s.fileSize(name);
            OpenChapterFile.Read r = OpenChapterFile.read(s.fs, s.dir, s.indexId, chapter, s.geometry, e -> {
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
                merged[0] = Math.max(merged[0], e.chunkId());
            });
            merged[0] = Math.max(merged[0], r.maxChunkId());
            if (r.stop() != null) {
                LOG.log(r.stop().reachesEnd ? Level.INFO : Level.WARNING, "index in {0}: open chapter checkpoint read up to block {1} ({2} records): {3}",
                        s.dir, r.blocks(), r.records(), r.stop().getMessage());
            }
        } catch (CorruptionException | IOException e) {
            LOG.log(Level.WARNING, "index in {0}: open chapter checkpoint not (wholly) usable, its records are lost to dedup: {1}", s.dir, e.getMessage());
        }
        return merged[0];
    }

    /** Record r of the open chapter got a new id: if it was checkpointed, its id there is no longer the newest. Write lock held. */
    void changed(int r) {
        if (r < checkpointed) needsBase = true;
    }

    /** Records were removed from the open chapter (a purge): the next checkpoint writes a base. Write lock held. */
    void rebase() {
        checkpointed = 0;
        needsBase = true;
    }

    /**
     * Captures the records to write under the index's write lock and returns holding the checkpoint lock until
     * {@link PendingCheckpoint#write} has written them (a chapter close waits for that, as for any checkpoint writing).
     * The caller holds no lock, or the write lock (a compaction install).
     */
    PendingCheckpoint begin() {
        s.lock.writeLock().lock();
        try {
            Check.that(!s.closed, "checkpoint on a closed index");
            lock.lock();
        } catch (RuntimeException | Error e) {
            s.lock.writeLock().unlock();
            throw e;
        }
        long chapter;
        boolean base;
        List<byte[]> payloads;
        try {
            chapter = s.openChapter;
            Check.that(fileChapter == -1 || fileChapter == chapter, "checkpoint file of chapter %d while chapter %d is open", fileChapter, chapter);
            base = needsBase || fileChapter != chapter;
            // Nothing left to write as a base (a compaction emptied the open chapter): the old file goes instead.
            if (base && s.open.count() == 0 && fileChapter == chapter) dropFile();
            int from = base ? 0 : checkpointed, to = s.open.count();
            payloads = OpenChapterFile.payloads(s.open, from, to, chapter, s.maxChunkId);
            checkpointed = to;
            needsBase = false;
        } catch (RuntimeException | Error e) {
            lock.unlock();
            throw e;
        } finally {
            s.lock.writeLock().unlock();
        }
        Thread owner = Thread.currentThread();
        return () -> {
            Check.that(Thread.currentThread() == owner && lock.isHeldByCurrentThread(), "index checkpoint written once, by the thread that began it");
            try {
                if (!payloads.isEmpty()) write(chapter, base, payloads);
            } finally {
                lock.unlock();
            }
        };
    }

    /** The checkpoint's I/O, under the checkpoint lock only. On failure the next checkpoint writes a base. */
    private void write(long chapter, boolean base, List<byte[]> payloads) throws IOException {
        String name = OpenChapterFile.fileName(s.dir, chapter);
        long had = fileChapter == chapter ? fileBytes : 0;
        try {
            long size;
            if (base) {
                size = OpenChapterFile.writeBase(s.fs, s.dir, s.indexId, chapter, payloads);
                fileBlocks = payloads.size();
            } else {
                size = OpenChapterFile.append(s.fs, s.dir, chapter, fileBytes, fileBlocks, payloads);
                fileBlocks += payloads.size();
            }
            s.diskBytes.addAndGet(size - had);
            fileChapter = chapter;
            fileBytes = size;
        } catch (IOException | RuntimeException e) {
            needsBase = true;
            try {
                long now = s.fileSize(name); // a failed append may have left part of a block; a failed base, the old file
                s.diskBytes.addAndGet(now - had);
                fileChapter = now > 0 ? chapter : -1;
                fileBytes = now;
            } catch (IOException ignored) {
                // the size stays as last known; the next open counts the files again
            }
            throw e;
        }
    }

    /** Chapter {@code number} closed (its file durable, or lost): its checkpoint file is of no use. Write lock held. */
    void chapterClosed(long number) {
        lock.lock(); // reentrant: dropFile takes it again
        try {
            Check.that(fileChapter == -1 || fileChapter == number, "checkpoint file of chapter %d while closing chapter %d", fileChapter, number);
            dropFile();
        } finally {
            lock.unlock();
        }
    }

    /**
     * Deletes the open chapter's checkpoint file, once what it holds is durable elsewhere (the chapter's own file,
     * or a save); the next checkpoint writes a base. No sync: should the file come back after a machine crash, it
     * holds nothing that is not in the chapter (then it is stale and deleted at open) or the save (then merging it
     * changes nothing: the larger chunk id wins). Write lock held.
     */
    void dropFile() {
        lock.lock();
        try {
            if (fileChapter >= 0) {
                try {
                    s.fs.delete(OpenChapterFile.fileName(s.dir, fileChapter));
                    s.diskBytes.addAndGet(-fileBytes);
                } catch (IOException e) {
                    LOG.log(Level.WARNING, "index checkpoint of chapter {0} could not be deleted (retried at the next open): {1}", fileChapter, e.toString());
                }
            }
            fileChapter = -1;
            fileBytes = 0;
            fileBlocks = 0;
            checkpointed = 0;
            needsBase = true;
        } finally {
            lock.unlock();
        }
    }

    /** Marks the index closed once a checkpoint writing now has finished. Write lock held. */
    void close() {
        lock.lock();
        try {
            s.closed = true;
        } finally {
            lock.unlock();
        }
    }
}
