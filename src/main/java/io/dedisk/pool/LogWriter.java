package io.dedisk.pool;

import io.dedisk.store.Backend;
import io.dedisk.store.Fs.FileHandle;
import io.dedisk.util.Check;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.UUID;

/**
 * Owns the open (tail) segment of the log and appends records to it. When a record would overflow the segment
 * size, the segment is sealed (SEAL record, fsync) and a new one is started (SEGMENT_HEADER record, directory
 * fsync), so every segment but the last ends with SEAL and is durable.
 *
 * Threads: {@link #appendAll} is called only under the pool's metadata write lock, which orders records and LSNs.
 * {@link #sync} may run concurrently with appends from any thread: it syncs the segment that is current when it
 * starts; a segment sealed meanwhile was synced by the seal.
 *
 * Invariants: {@code nextLsn} is one more than the LSN of the last record written; {@code tailOffset} is where
 * the next record goes and never exceeds the segment size except for a single oversized record.
 *
 * Sync-ahead: every quarter segment (at most 4 MiB) the tail is fsynced in the background, so the data reaches the disk
 * while writes go on and the fsync that seals a segment (under the pool's write lock) or serves a FLUSH finds
 * little left to write. A background fsync that fails is reported like a failed FLUSH.
 */
final class LogWriter implements AutoCloseable {
    private final Backend backend;
    private final UUID poolId;
    private final int segmentSize;
    private final Object syncLock = new Object();
    /** Sync-ahead distance: a quarter segment, at most 4 MiB. */
    private final long syncAhead;
    private final java.util.concurrent.Executor background;
    private final java.util.function.Consumer<IOException> syncFailed;
    /** Told the size of every segment the log writes, each time it grows (the pool's segment sizes). */
    private final SegmentSizes sizes;

    /** Receives (segment, bytes) whenever a segment of the log grows; called under the pool's metadata write lock. */
    interface SegmentSizes {
        void sized(long segment, long bytes);
    }
    private final java.util.concurrent.atomic.AtomicBoolean syncAheadRunning = new java.util.concurrent.atomic.AtomicBoolean();
    private long unsyncedBytes;
    /** See {@link #groupBuffer}; null until the first group of two or more records. */
    private ByteBuffer group;
    private static final int GROUP_BUFFER_MIN = 1 << 20;

    private long segmentSeq;
    /**
     * The tail segment is sealed (its SEAL written and synced) but the next one could not be started yet (e.g. the
     * disk was full): the next append starts it first, and nothing is ever written over the SEAL.
     */
    private boolean sealedAwaitingNext;
    /** The highest segment whose SEAL is written and synced (0: none); read by syncing threads. */
    private volatile long sealedThrough;
    private FileHandle tail;
    private long tailOffset;
    private long nextLsn;
    private long bytesAppended;

    /** Continues the log at (segmentSeq, offset), the end of the last valid record found by replay. */
    LogWriter(Backend backend, UUID poolId, int segmentSize, long segmentSeq, long offset, long nextLsn,
              java.util.concurrent.Executor background, java.util.function.Consumer<IOException> syncFailed, SegmentSizes sizes) throws IOException {
        this.backend = backend;
        this.sizes = sizes;
        this.background = background;
        this.syncFailed = syncFailed;
        this.poolId = poolId;
        this.segmentSize = segmentSize;
        this.syncAhead = Math.min(4 << 20, segmentSize / 4);
        this.nextLsn = nextLsn;
        if (offset == 0) {
            // Replay ended at a SEAL (or before a half-made next segment). After a process crash that SEAL may still
            // be only in the page cache: make it durable before any later segment can be, or a machine crash could
            // leave an unsealed segment followed by another (damage).
            if (segmentSeq > 1 && backend.segments().contains(segmentSeq - 1)) {
                try (FileHandle sealed = backend.openSegment(segmentSeq - 1)) { sealed.sync(); }
            }
            // Started by the first append, so a pool on a full disk still opens (and serves reads).
            this.segmentSeq = segmentSeq - 1;
            this.sealedThrough = segmentSeq - 1;
            this.sealedAwaitingNext = true;
        } else {
            this.segmentSeq = segmentSeq;
            this.tail = backend.openSegment(segmentSeq);
            // Drop whatever torn or unsynced bytes follow the last valid record, so they cannot be mistaken for
            // records once new ones are appended around them.
            tail.truncate(offset);
            tail.sync();
            this.tailOffset = offset;
            sizes.sized(segmentSeq, offset);
        }
    }

    /** Where the next record goes: after a SEAL whose successor is not started yet, the start of that successor. */
    long segmentSeq() { return sealedAwaitingNext ? segmentSeq + 1 : segmentSeq; }
    long tailOffset() { return sealedAwaitingNext ? 0 : tailOffset; }
    long nextLsn() { return nextLsn; }
    long bytesAppended() { return bytesAppended; }

    /** A record to append: payload in [HEADER_SIZE, position) of buffer, {@code covered} bytes under the CRC. */
    record Pending(ByteBuffer buffer, int type, int covered) {}

    /** Where appended records went: records [0, written) are in the log at (segments[i], offsets[i]); the rest failed with error. */
    record Appended(long[] segments, long[] offsets, int written, IOException error) {}

    /**
     * Appends records in order, with one write per run of records that fits in the current segment (group
     * commit: the syscall is paid per group, not per record). On a failed write the records from the first one
     * of that write on are not in the log; those before it are.
     */
    Appended appendAll(java.util.List<Pending> records) {
        int n = records.size();
        long[] segments = new long[n];
        long[] offsets = new long[n];
        int i = 0;
        try {
            while (i < n) {
                if (sealedAwaitingNext) startNextSegment();
                if (tailOffset + records.get(i).buffer().position() + LogRecord.HEADER_SIZE > segmentSize && tailOffset > headerRecordSize()) {
                    rotate();
                }
                int j = i;
                long end = tailOffset;
                int bytes = 0;
                while (j < n && (j == i || end + records.get(j).buffer().position() + LogRecord.HEADER_SIZE <= segmentSize)) {
                    Pending r = records.get(j);
                    LogRecord.seal(r.buffer(), r.type(), nextLsn + (j - i), r.covered());
                    segments[j] = segmentSeq;
                    offsets[j] = end;
                    end += r.buffer().limit();
                    bytes += r.buffer().limit();
                    j++;
                }
                ByteBuffer run;
                if (j - i == 1) {
                    run = records.get(i).buffer();
                } else {
                    run = groupBuffer(bytes);
                    for (int k = i; k < j; k++) run.put(records.get(k).buffer().duplicate());
                    run.flip();
                }
                tail.write(tailOffset, run);
                // Only advance after the write succeeded: a failed write leaves the tail where it was and the next
                // append overwrites the partial bytes.
                tailOffset = end;
                sizes.sized(segmentSeq, end);
                nextLsn += j - i;
                bytesAppended += bytes;
                unsyncedBytes += bytes;
                i = j;
                syncAheadIfDue();
            }
            return new Appended(segments, offsets, n, null);
        } catch (IOException e) {
            return new Appended(segments, offsets, i, e);
        }
    }

    /**
     * The one buffer a group's records are gathered in, kept across appends (a fresh 4 MiB heap copy per group was
     * a humongous allocation, and the channel copied it into a temporary direct buffer again). Direct, grown to the
     * largest group seen (GROUP_BYTES plus one record); only the appending thread touches it, and every backend's
     * write copies the bytes before it returns.
     */
    private ByteBuffer groupBuffer(int bytes) {
        if (group == null || group.capacity() < bytes) group = ByteBuffer.allocateDirect(Math.max(bytes, GROUP_BUFFER_MIN));
        return group.clear().limit(bytes);
    }

    private void syncAheadIfDue() {
        if (unsyncedBytes >= syncAhead && syncAheadRunning.compareAndSet(false, true)) {
            unsyncedBytes = 0;
            FileHandle h = tail;
            long seq = segmentSeq;
            background.execute(() -> {
                try {
                    h.sync();
                } catch (java.nio.channels.ClosedChannelException e) {
                    if (sealedThrough < seq) syncFailed.accept(e); // else: sealed meanwhile, which synced it
                } catch (IOException e) {
                    syncFailed.accept(e);
                } finally {
                    syncAheadRunning.set(false);
                }
            });
        }
    }

    /**
     * Makes every record appended before this call durable. The tail may be rotated while this runs: a handle that
     * was closed meanwhile belongs to a segment that was sealed, and sealing synced it, so that is success. Any other
     * closed handle is a real failure.
     */
    void sync() throws IOException {
        FileHandle h;
        long seq;
        synchronized (syncLock) { h = tail; seq = segmentSeq; }
        if (h == null) return; // nothing appended since open: everything before is sealed and synced
        try {
            h.sync();
        } catch (java.nio.channels.ClosedChannelException e) {
            if (sealedThrough < seq) throw e;
        }
    }

    private static int headerRecordSize() { return LogRecord.HEADER_SIZE + 24; }

    /**
     * Seals the tail and starts the next segment. Once the SEAL is written and synced it is part of the log: the
     * state advances past it before the next segment is created, so a failure there (ENOSPC) is retried by
     * {@link #startNextSegment} and never by writing over the SEAL.
     */
    private void rotate() throws IOException {
        seal();
        startNextSegment();
    }

    /**
     * Seals the tail now, before it is full, and returns the highest sealed segment (0: none). A bucket pool does
     * this so a segment can upload: on FLUSH with --sync-to-backend, after a checkpoint, at a clean close (segments
     * then vary in size). Without {@code evenIfEmpty} a tail holding nothing but its header is left open; with it
     * (the fence a new owner writes at open) such a tail, or a new one, is sealed too. The next append starts the
     * next segment. Called under the pool's metadata write lock (or before anyone else sees the pool).
     */
    long sealNow(boolean evenIfEmpty) throws IOException {
        if (sealedAwaitingNext) {
            if (!evenIfEmpty) return segmentSeq;
            startNextSegment();
        } else if (!evenIfEmpty && tailOffset == headerRecordSize()) {
            return segmentSeq - 1;
        }
        seal();
        return segmentSeq;
    }

    /** Writes and syncs the tail's SEAL; the next segment is started later (by the next append, or by rotate). */
    private void seal() throws IOException {
        ByteBuffer seal = LogRecord.newBuffer(8);
        seal.putLong(segmentSeq + 1);
        LogRecord.seal(seal, LogRecord.SEAL, nextLsn);
        tail.write(tailOffset, seal);
        tail.sync();
        sealedThrough = segmentSeq;
        backend.sealed(segmentSeq);
        tailOffset += seal.limit();
        sizes.sized(segmentSeq, tailOffset);
        nextLsn++;
        bytesAppended += seal.limit();
        sealedAwaitingNext = true;
    }

    private void startNextSegment() throws IOException {
        FileHandle old = tail;
        startSegment(segmentSeq + 1);
        sealedAwaitingNext = false;
        if (old != null) old.close();
    }

    /** Creates segment seq holding only its header record. A half-made one (failed write) is redone from scratch. */
    private void startSegment(long seq) throws IOException {
        FileHandle h = backend.createSegment(seq);
        try {
            ByteBuffer header = LogRecord.newBuffer(24).order(ByteOrder.LITTLE_ENDIAN);
            header.putLong(poolId.getMostSignificantBits()).putLong(poolId.getLeastSignificantBits()).putLong(seq);
            Check.that(header.position() == headerRecordSize(), "segment header record size");
            LogRecord.seal(header, LogRecord.SEGMENT_HEADER, nextLsn);
            h.write(0, header);
            h.sync();
        } catch (IOException | RuntimeException e) {
            h.close();
            throw e;
        }
        synchronized (syncLock) {
            tail = h;
            segmentSeq = seq;
        }
        tailOffset = headerRecordSize();
        sizes.sized(seq, tailOffset);
        unsyncedBytes = 0;
        nextLsn++;
        bytesAppended += headerRecordSize();
    }

    @Override
    public void close() throws IOException {
        if (tail == null) return;
        tail.sync();
        tail.close();
    }
}
