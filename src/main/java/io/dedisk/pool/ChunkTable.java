package io.dedisk.pool;

import io.dedisk.util.Check;

/**
 * The chunk table: chunk id -> where the chunk's stored body is (segment, offset, length, codec), the CRC32C of
 * that stored body (the checksum lives in the reference, so a misdirected or stale read is caught) and its
 * reference count, stored (never re-derived at open). A {@link PageTree} of leaves of {@link #PER_LEAF} entries of
 * 24 bytes (docs/format.md):
 * <pre>
 *   0 u64 location (segment &lt;&lt; 32 | offset of the body)  8 u16 stored length  10 u8 codec  11 u8 flags (bit 0 live)
 *  12 u32 CRC32C of the stored body  16 u32 reference count  20 u32 reserved (0)
 * </pre>
 * Chunk ids are handed out in increasing order and never reused, so a stale dedup advice pointing at a dead chunk
 * is recognised as stale rather than aliasing another block. A chunk whose count drops to 0 is dead: its bytes are
 * garbage for the cleaner, and a leaf whose chunks are all dead is dropped. The cleaner moves live chunks ({@link #relocate}); ids, and so block maps, stay.
 *
 * Threads: reads under the pool's metadata read lock, changes under its write lock.
 * Invariants: a live chunk's count equals the block-map entries that reference it (`dedisk check` recounts);
 * {@code live} and {@code liveBytes} sum the live entries.
 */
final class ChunkTable {
    static final int ENTRY = 24;
    static final int PER_LEAF = MetaPage.BODY / ENTRY;
    private static final int LIVE = 1;

    /** Buckets of the reference-count histogram: bucket i counts live chunks with 2^i <= refs < 2^(i+1). */
    static final int HISTOGRAM_BUCKETS = 32;

    private final PageTree tree;
    private final long[] histogram;
    private long nextId;
    private long live;
    private long liveBytes;

    /** Where a chunk is and how to check and decode it. */
    record Location(long chunkId, long segment, int offset, int length, int codec, int crc) {}

    ChunkTable(PageTree tree, long nextId, long live, long liveBytes, long[] histogram) {
        Check.that(histogram.length == HISTOGRAM_BUCKETS, "histogram of %d buckets", histogram.length);
        this.tree = tree;
        this.histogram = histogram.clone();
        this.nextId = Math.max(nextId, BlockMap.FIRST_CHUNK_ID);
        this.live = live;
        this.liveBytes = liveBytes;
        tree.grow(this.nextId / PER_LEAF + 1);
    }

    PageTree tree() { return tree; }
    long nextId() { return nextId; }
    long liveChunks() { return live; }
    long liveBytes() { return liveBytes; }

    long allocateId() { return nextId++; }

    /** The reference-count histogram, kept as counts change (stored in each checkpoint root). */
    long[] histogram() { return histogram.clone(); }

    static int bucket(long refs) { return 63 - Long.numberOfLeadingZeros(refs); }

    private void recount(int from, int to) {
        if (from > 0) histogram[bucket(from)]--;
        if (to > 0) histogram[bucket(to)]++;
    }

    /** Ids up to maxId may still be named by dedup advice from before a crash: never hand them out again. */
    void skipIdsThrough(long maxId) {
        if (maxId >= nextId) nextId = maxId + 1;
    }

    private static int at(long id) { return (int) (id % PER_LEAF) * ENTRY; }

    private MetaPage leafOf(long id) {
        return id < BlockMap.FIRST_CHUNK_ID ? null : tree.leaf(id / PER_LEAF);
    }

    private MetaPage leafForWrite(long id) {
        tree.grow(id / PER_LEAF + 1);
        return tree.leafForWrite(id / PER_LEAF);
    }

    /** Records a new chunk with no references yet (the write that created it adds the first). */
    void create(long id, long segment, int offset, int length, int codec, int crc) {
        Check.that(id >= BlockMap.FIRST_CHUNK_ID && !isLive(id), "chunk %d created once", id);
        Check.that(length > 0 && length <= Pool.BLOCK_SIZE && codec >= 0 && codec < 256, "chunk %d length %d codec %d", id, length, codec);
        MetaPage p = leafForWrite(id);
        int a = at(id);
        p.putLong(a, MetaPage.address(segment, offset));
        p.putShort(a + 8, length);
        p.body[a + 10] = (byte) codec;
        p.body[a + 11] = LIVE;
        p.putInt(a + 12, crc);
        p.putInt(a + 16, 0);
        p.putInt(a + 20, 0);
        if (id >= nextId) nextId = id + 1;
        live++;
        liveBytes += length;
    }

    boolean isLive(long id) {
        MetaPage p = leafOf(id);
        return p != null && (p.body[at(id) + 11] & LIVE) != 0;
    }

    int refCount(long id) {
        Check.that(isLive(id), "refcount of live chunk %d", id);
        return leafOf(id).getInt(at(id) + 16);
    }

    void increment(long id) {
        Check.that(isLive(id), "reference to live chunk %d", id);
        MetaPage p = leafForWrite(id);
        int n = p.getInt(at(id) + 16);
        Check.that(n < Integer.MAX_VALUE, "refcount of chunk %d overflows", id);
        p.putInt(at(id) + 16, n + 1);
        recount(n, n + 1);
    }

    /** Drops one reference; returns the chunk's location when that was its last (it is now dead), else null. */
    Location decrement(long id) {
        Check.that(isLive(id), "dereference of live chunk %d", id);
        MetaPage p = leafForWrite(id);
        int a = at(id);
        int n = p.getInt(a + 16);
        Check.that(n > 0, "refcount of chunk %d stays >= 0", id);
        p.putInt(a + 16, n - 1);
        recount(n, n - 1);
        if (n > 1) return null;
        Location loc = location(id);
        p.body[a + 11] = 0;
        live--;
        liveBytes -= loc.length();
        dropIfDead(id / PER_LEAF, p);
        return loc;
    }

    /**
     * A leaf all of whose chunks are dead is dropped (an absent leaf reads as dead chunks), so deleted data leaves no
     * metadata behind; not the leaf new ids go to, which would only be created again.
     */
    private void dropIfDead(long leafNo, MetaPage p) {
        if (leafNo == nextId / PER_LEAF) return;
        for (int i = 0; i < PER_LEAF; i++) if ((p.body[i * ENTRY + 11] & LIVE) != 0) return;
        tree.dropLeaf(leafNo);
    }

    Location location(long id) {
        Check.that(isLive(id), "location of live chunk %d", id);
        MetaPage p = leafOf(id);
        int a = at(id);
        long loc = p.getLong(a);
        return new Location(id, MetaPage.segmentOf(loc), (int) MetaPage.offsetOf(loc), p.getShort(a + 8), p.body[a + 10] & 0xff, p.getInt(a + 12));
    }

    /** The cleaner moved a live chunk's body (same bytes, same CRC) to a new place. */
    void relocate(long id, long segment, int offset) {
        Check.that(isLive(id), "relocated chunk %d is live", id);
        leafForWrite(id).putLong(at(id), MetaPage.address(segment, offset));
    }

    /** Visits every live chunk in id order. */
    void forEachLive(java.util.function.Consumer<Location> visitor) {
        tree.visit(0, tree.capacity(), p -> {
            if (p.key.level() != 0) return;
            long base = p.key.index() * PER_LEAF;
            for (int i = 0; i < PER_LEAF; i++) {
                if ((p.body[i * ENTRY + 11] & LIVE) != 0) visitor.accept(location(base + i));
            }
        });
    }
}
