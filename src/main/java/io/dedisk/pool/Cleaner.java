package io.dedisk.pool;

import io.dedisk.store.Backend;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * The segment cleaner (LFS): picks sealed segments by cost-benefit, (1 - u) * age / (1 + u) with u the live
 * fraction and age the distance from the log tail (Rosenblum and Ousterhout), copies their live chunk bodies to
 * the tail in RELOCATE records (chunk ids stay, so block maps are untouched) and marks their live metadata pages
 * dirty, so the next checkpoint writes them elsewhere. The victim is then all garbage; the checkpointer deletes it
 * once two durable roots no longer need it.
 *
 * Liveness without a reverse map: a chunk body at (victim, offset) is live if the chunk table still places a live
 * chunk there; a page record is live if a tree of the family its header names still uses that address. The victim is read outside any lock;
 * relocation runs under the metadata write lock in batches, so foreground writes interleave (the throttle).
 *
 * Threads: one cleaning at a time (the pool's cleaner thread, `dedisk gc`, or the simulation's scheduler).
 */
final class Cleaner {
    /** Bytes of bodies moved per lock hold. */
    private static final int BATCH_BYTES = 1 << 20;

    private final Backend backend;
    private final UUID poolId;
    private final ReentrantReadWriteLock meta;
    private final ReentrantReadWriteLock segmentGuard;
    private long segmentsCleaned;
    private long bytesMoved;
    private long pagesRewritten;

    Cleaner(Backend backend, UUID poolId, ReentrantReadWriteLock meta, ReentrantReadWriteLock segmentGuard) {
        this.backend = backend;
        this.poolId = poolId;
        this.meta = meta;
        this.segmentGuard = segmentGuard;
    }

    record Stats(long segmentsCleaned, long bytesMoved, long pagesRewritten) {}

    synchronized Stats stats() { return new Stats(segmentsCleaned, bytesMoved, pagesRewritten); }

    /** A candidate victim: a sealed segment, its size and live bytes. */
    record Candidate(long segment, long bytes, long live, double score) {}

    /**
     * Victims in cost-benefit order: sealed segments below {@code tail} with live bytes (empty ones need no
     * cleaning, only deletion) and a live fraction below {@code maxUtilisation}.
     */
    static List<Candidate> candidates(Map<Long, Long> segmentBytes, UsageTable usage, long tail, double maxUtilisation) {
        List<Candidate> out = new ArrayList<>();
        for (var e : segmentBytes.entrySet()) {
            long seq = e.getKey();
            long bytes = e.getValue();
            long live = usage.live(seq);
            if (seq >= tail || bytes <= 0 || live == 0) continue;
            double u = Math.min(1.0, (double) live / bytes);
            if (u >= maxUtilisation) continue;
            double age = tail - seq;
            out.add(new Candidate(seq, bytes, live, (1 - u) * age / (1 + u)));
        }
        out.sort((a, b) -> Double.compare(b.score(), a.score()));
        return out;
    }

    /** Something found in a victim that may still be live. */
    private record Body(long chunkId, int offset, int length, int crc) {}

    /**
     * Cleans one segment: relocates what is live in it through {@code append} (which appends and applies a record
     * under the write lock, as every mutation does). Returns the bytes moved.
     */
    long clean(long victim, PoolState state, Appender append) throws IOException {
        byte[] data;
        segmentGuard.readLock().lock(); // a reader like any other: the victim cannot be deleted under it
        try {
            ByteBuffer buf = ByteBuffer.allocate((int) backend.segmentBytes(victim));
            backend.read(victim, 0, buf);
            data = buf.array();
        } finally { segmentGuard.readLock().unlock(); }
        List<Body> bodies = new ArrayList<>();
        List<long[]> pages = new ArrayList<>(); // {tree, level, index, address}
        LogReader.walk(data, 0, LogReader.ANY_LSN, victim, poolId, r -> {
            int base = (int) r.payloadOffset();
            switch (r.type()) {
                case LogRecord.WRITE -> {
                    for (WriteRecord.Entry e : WriteRecord.parse(r.payload(), r.covered()).entries()) {
                        if (e.kind() == WriteRecord.KIND_NEW) bodies.add(new Body(e.chunkId(), base + e.bodyPosition(), e.length(), e.crc()));
                    }
                }
                case LogRecord.RELOCATE -> {
                    for (RelocateRecord.Entry e : RelocateRecord.parse(r.payload(), r.covered()).entries()) {
                        bodies.add(new Body(e.chunkId(), base + e.bodyPosition(), e.length(), e.crc()));
                    }
                }
                case LogRecord.PAGE -> {
                    ByteBuffer p = r.payload();
                    // The page names its family, not the member that wrote it (which may be gone): any member may hold it.
                    pages.add(new long[] {p.getInt(4), p.get(1) & 0xff, p.getLong(8), MetaPage.address(victim, base - LogRecord.HEADER_SIZE)});
                }
                default -> { }
            }
            return true;
        });
        long moved = 0;
        int i = 0;
        while (i < bodies.size()) {
            List<Body> batch = new ArrayList<>();
            int bytes = 0;
            while (i < bodies.size() && bytes < BATCH_BYTES && batch.size() < RelocateRecord.MAX_ENTRIES) {
                batch.add(bodies.get(i));
                bytes += bodies.get(i).length();
                i++;
            }
            moved += relocate(victim, batch, data, state, append);
        }
        meta.writeLock().lock();
        try {
            for (long[] pg : pages) {
                // Every member holding the version moves it, and the checkpoint writes one copy for all of them; a
                // member whose page there is already its own changed copy writes that anyway.
                boolean live = false;
                for (PageTree tree : state.family((int) pg[0])) {
                    if (tree.hold((int) pg[1], pg[2], pg[3]) != Family.Hold.VERSION) continue;
                    tree.rewrite((int) pg[1], pg[2]);
                    live = true;
                }
                if (live) synchronized (this) { pagesRewritten++; }
            }
        } finally { meta.writeLock().unlock(); }
        synchronized (this) {
            segmentsCleaned++;
            bytesMoved += moved;
        }
        return moved;
    }

    /** Appends and applies one record under the metadata write lock; the cleaner's only way to change state. */
    interface Appender {
        void appendAndApply(ByteBuffer record, int type, int covered);
    }

    private long relocate(long victim, List<Body> batch, byte[] data, PoolState state, Appender append) {
        meta.writeLock().lock();
        try {
            List<Body> live = new ArrayList<>();
            int bodyBytes = 0;
            for (Body b : batch) {
                if (!state.chunks.isLive(b.chunkId())) continue;
                ChunkTable.Location loc = state.chunks.location(b.chunkId());
                if (loc.segment() != victim || loc.offset() != b.offset()) continue;
                live.add(b);
                bodyBytes += b.length();
            }
            if (live.isEmpty()) return 0;
            int covered = 4 + live.size() * RelocateRecord.ENTRY_BYTES;
            ByteBuffer rec = LogRecord.newBuffer(covered + bodyBytes);
            rec.putInt(live.size());
            for (Body b : live) rec.putLong(b.chunkId()).putShort((short) b.length()).putInt(b.crc());
            // Bodies are copied as stored: a body that rotted in the victim keeps its CRC mismatch (reads stay EIO).
            for (Body b : live) rec.put(data, b.offset(), b.length());
            append.appendAndApply(rec, LogRecord.RELOCATE, covered);
            return bodyBytes;
        } finally { meta.writeLock().unlock(); }
    }
}
