package io.dedisk.index;

import io.dedisk.DediskException.ReadOnlyException;
import io.dedisk.store.Fs;
import io.dedisk.util.Check;
import java.io.IOException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * The shared in-memory state of one open {@link UdsIndex}, and the read-write lock that guards it: the open
 * chapter, the volume index table(s), the ring of closed chapter summaries, the window position, the counts and
 * the index directory's bookkeeping. The jobs of the index ({@link ChapterLookup}, {@link OpenChapterCheckpoint},
 * {@link ChapterCloser}, {@link IndexRecovery}, {@link CompactionInstall}) each hold this one instance; no file
 * format lives here (each file's layout is in its codec class).
 *
 * Threads and locks, field by field (the lock is {@link #lock}; "write lock" means its write lock):
 * <ul>
 * <li>{@link #open}, the tables, {@link #chapters}, {@link #maxChunkId}, {@link #lostChapters}, {@link #saveBytes},
 *     {@link #savedOpenChapter}, {@link #closed}: read under either lock, changed under the write lock;
 * <li>{@link #openChapter}, {@link #heldRecords}: changed under the write lock, volatile for the rebuild thread's
 *     unlocked early exits and for lock-free stats;
 * <li>{@link #droppedRecords}: changed under either lock (a lookup drops a chapter under the read lock);
 * <li>{@link #diskBytes}: under the write lock, or the checkpoint lock alone while a checkpoint writes: hence atomic;
 * <li>{@link #closing}: set without a lock by close, read by the rebuild thread.
 * </ul>
 * Lock order: the compaction lock, then this lock, then the checkpoint lock ({@link OpenChapterCheckpoint}).
 *
 * Invariants: {@code heldRecords} counts the records of the ring's chapters plus the open chapter's; the ring holds
 * chapters in [{@link #oldestLive}, {@code openChapter}) only; {@code diskBytes} is the sum of the directory's file
 * sizes as this process left them.
 */
final class IndexState {
    static final System.Logger LOG = System.getLogger("dedisk.index");

    final Fs fs;
    final String dir;
    final Geometry geometry;
    final java.util.UUID indexId;
    final boolean readOnly;
    final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
    final OpenChapter open;
    final VolumeIndex fullTable;
    /** The hook table in sparse mode, else null. */
    final VolumeIndex hookTable;
    final ChapterRing chapters;
    volatile long openChapter;
    long maxChunkId;
    /** Chapters whose file could not be written (their records lost to dedup). */
    long lostChapters;
    /** Records of the closed chapters in the ring plus the open chapter's. */
    volatile long heldRecords;
    /** Records of chapters in the ring that were dropped (they no longer answer). */
    final AtomicLong droppedRecords = new AtomicLong();
    /** Bytes of the files in {@code dir}: counted at open, then kept up to date by every write and delete. */
    final AtomicLong diskBytes = new AtomicLong();
    long saveBytes;
    /** The open chapter of the usable save on disk, -1 when there is none. */
    long savedOpenChapter = -1;
    boolean closed;
    volatile boolean closing;

    IndexState(Fs fs, String dir, IndexHeader header, boolean readOnly) {
        this.fs = fs;
        this.dir = dir;
        this.readOnly = readOnly;
        this.geometry = header.geometry();
        this.indexId = header.indexId();
        this.open = new OpenChapter(geometry.chapterRecords());
        this.fullTable = new VolumeIndex(geometry.fullTableEntries(), geometry.denseChapters());
        this.hookTable = geometry.sparse() ? new VolumeIndex(geometry.hookTableEntries(), geometry.closedChapters()) : null;
        this.chapters = new ChapterRing(geometry.chapters());
    }

    /** The volume index tables: the full one, then the hook table when sparse. */
    VolumeIndex[] tables() { return hookTable == null ? new VolumeIndex[] {fullTable} : new VolumeIndex[] {fullTable, hookTable}; }

    /** Oldest closed chapter still in the window (racy read is fine for the rebuild's early exits). */
    long oldestLive() { return openChapter - geometry.closedChapters(); }

    /** The table that holds a name's entries for chapter {@code number}, or null (a non-hook of a sparse chapter). */
    VolumeIndex tableFor(BlockName n, long number) {
        if (hookTable != null && Geometry.isHook(n)) return hookTable;
        return openChapter - number <= geometry.denseChapters() ? fullTable : null;
    }

    /** A file's size, 0 when it does not exist. */
    long fileSize(String name) throws IOException {
        if (!fs.exists(name)) return 0;
        try (Fs.FileHandle h = fs.open(name, false)) {
            return h.size();
        }
    }

    /** Sum of the sizes of the files in the index directory. */
    long filesBytes() throws IOException {
        long total = 0;
        for (String f : fs.list(dir)) total += fileSize(dir + "/" + f);
        return total;
    }

    /** Deletes the save on disk; from then on the next open rebuilds unless a save is written again. Write lock held. */
    void deleteSave() throws IOException {
        Check.that(lock.isWriteLockedByCurrentThread(), "the save is deleted under the index's write lock");
        savedOpenChapter = -1;
        fs.delete(dir + "/" + SaveFile.FILE);
        diskBytes.addAndGet(-saveBytes);
        saveBytes = 0;
    }

    void refuseIfReadOnly(String what) {
        if (readOnly) throw new ReadOnlyException("the index in " + dir + " is open read-only (a stopped pool's stats or check): " + what + " refused");
    }
}
