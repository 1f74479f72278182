package io.dedisk.pool;

import io.dedisk.util.Check;

/**
 * The chunk table: chunk id -> where the chunk's stored body is (segment, offset, length, codec), the CRC32C of
 * that stored body (the checksum lives in the reference, so a misdirected or stale read is caught) and its
 * reference count. Chunk ids are handed out in increasing order and never reused, so a stale dedup advice
 * pointing at a dead chunk is recognised as stale rather than aliasing another block.
 *
 * Memory: 20 bytes per chunk id (ids of dead chunks keep their slot until garbage collection compacts them),
 * in pages of 64 Ki ids allocated on demand.
 *
 * Threads: guarded by the pool's metadata lock. Invariants: a live chunk has meta != 0; a chunk's refcount equals
 * the number of block-map entries that reference it (re-derived by `dedisk check`); liveBytes/deadBytes sum the
 * stored lengths of live and dead (not yet reclaimed) chunks.
 */
final class ChunkTable {
    private static final int PAGE_SHIFT = 16;
    private static final int PAGE_SIZE = 1 << PAGE_SHIFT;

    private long[][] locations = new long[16][]; // segment << 32 | offset
    private int[][] metas = new int[16][];       // 1 << 31 | codec << 16 | stored length; 0 = no live chunk
    private int[][] crcs = new int[16][];
    private int[][] refs = new int[16][];
    private long nextId = BlockMap.FIRST_CHUNK_ID;
    private long live;
    private long liveBytes;
    private long deadBytes;

    /** Where a chunk is and how to check and decode it. */
    record Location(long chunkId, long segment, int offset, int length, int codec, int crc) {}

    long nextId() { return nextId; }

    long allocateId() { return nextId++; }

    long liveChunks() { return live; }
    long liveBytes() { return liveBytes; }
    long deadBytes() { return deadBytes; }

    /** Ids up to maxId may still be named by dedup advice from before a crash: never hand them out again. */
    void skipIdsThrough(long maxId) {
        if (maxId >= nextId) nextId = maxId + 1;
    }

    void restoreCounters(long nextId, long deadBytes) {
        Check.that(nextId >= this.nextId, "next chunk id %d not below %d", nextId, this.nextId);
        this.nextId = nextId;
        this.deadBytes = deadBytes;
    }

    private void ensurePage(int p) {
        if (p >= metas.length) {
            int n = Math.max(p + 1, metas.length * 2);
            locations = java.util.Arrays.copyOf(locations, n);
            metas = java.util.Arrays.copyOf(metas, n);
            crcs = java.util.Arrays.copyOf(crcs, n);
            refs = java.util.Arrays.copyOf(refs, n);
        }
        if (metas[p] == null) {
            locations[p] = new long[PAGE_SIZE];
            metas[p] = new int[PAGE_SIZE];
            crcs[p] = new int[PAGE_SIZE];
            refs[p] = new int[PAGE_SIZE];
        }
    }

    /** Records a new chunk with no references yet (the write that created it adds the first). */
    void create(long id, long segment, int offset, int length, int codec, int crc) {
        Check.that(id >= BlockMap.FIRST_CHUNK_ID && !isLive(id), "chunk %d created once", id);
        Check.that(length > 0 && length <= Pool.BLOCK_SIZE && codec >= 0 && codec < 256, "chunk %d length %d codec %d", id, length, codec);
        int p = (int) (id >>> PAGE_SHIFT);
        int i = (int) (id & (PAGE_SIZE - 1));
        ensurePage(p);
        locations[p][i] = segment << 32 | (offset & 0xffffffffL);
        metas[p][i] = 1 << 31 | codec << 16 | length;
        crcs[p][i] = crc;
        refs[p][i] = 0;
        if (id >= nextId) nextId = id + 1;
        live++;
        liveBytes += length;
    }

    boolean isLive(long id) {
        int p = (int) (id >>> PAGE_SHIFT);
        return id >= BlockMap.FIRST_CHUNK_ID && p < metas.length && metas[p] != null && metas[p][(int) (id & (PAGE_SIZE - 1))] != 0;
    }

    int refCount(long id) {
        Check.that(isLive(id), "refcount of live chunk %d", id);
        return refs[(int) (id >>> PAGE_SHIFT)][(int) (id & (PAGE_SIZE - 1))];
    }

    void increment(long id) {
        Check.that(isLive(id), "reference to live chunk %d", id);
        int[] page = refs[(int) (id >>> PAGE_SHIFT)];
        int i = (int) (id & (PAGE_SIZE - 1));
        Check.that(page[i] < Integer.MAX_VALUE, "refcount of chunk %d overflows", id);
        page[i]++;
    }

    /** Drops one reference; a chunk left with none becomes garbage (dead) and its id is never handed out again. */
    void decrement(long id) {
        Check.that(isLive(id), "dereference of live chunk %d", id);
        int p = (int) (id >>> PAGE_SHIFT);
        int i = (int) (id & (PAGE_SIZE - 1));
        Check.that(refs[p][i] > 0, "refcount of chunk %d stays >= 0", id);
        if (--refs[p][i] == 0) {
            int length = metas[p][i] & 0xffff;
            metas[p][i] = 0;
            live--;
            liveBytes -= length;
            deadBytes += length;
        }
    }

    Location location(long id) {
        Check.that(isLive(id), "location of live chunk %d", id);
        int p = (int) (id >>> PAGE_SHIFT);
        int i = (int) (id & (PAGE_SIZE - 1));
        long loc = locations[p][i];
        int meta = metas[p][i];
        return new Location(id, loc >>> 32, (int) loc, meta & 0xffff, (meta >>> 16) & 0xff, crcs[p][i]);
    }

    /** Visits every live chunk in id order. */
    void forEachLive(java.util.function.Consumer<Location> visitor) {
        for (int p = 0; p < metas.length; p++) {
            if (metas[p] == null) continue;
            for (int i = 0; i < PAGE_SIZE; i++) {
                if (metas[p][i] != 0) visitor.accept(location((long) p << PAGE_SHIFT | i));
            }
        }
    }

    long memoryBytes() {
        long pagesAllocated = 0;
        for (int[] m : metas) if (m != null) pagesAllocated++;
        return pagesAllocated * PAGE_SIZE * 20L + metas.length * 32L;
    }
}
