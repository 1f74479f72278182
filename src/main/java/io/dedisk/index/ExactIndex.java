package io.dedisk.index;

import io.dedisk.util.Check;

/**
 * An exact in-memory dedup index: an open-addressing hash table with linear probing over the full 256-bit names.
 * It never forgets, so its memory grows with the number of unique chunks: 40 bytes per slot, at most 75% full
 * before doubling, i.e. 53–107 bytes per entry. The UDS-style, memory-bounded index replaces it (see
 * docs/decisions.md); this one is the reference it is measured against.
 *
 * Threads: synchronized; the pool calls it under its metadata lock, so the monitor is uncontended.
 */
public final class ExactIndex implements DedupIndex {
    private long[] names; // 4 longs per slot
    private long[] ids;   // 0 = empty slot (chunk ids start at 2)
    private int mask;
    private long entries;

    public ExactIndex() { allocate(1 << 12); }

    private void allocate(int slots) {
        Check.that(Integer.bitCount(slots) == 1, "slot count %d is a power of two", slots);
        names = new long[slots * 4];
        ids = new long[slots];
        mask = slots - 1;
    }

    private int slotOf(BlockName n) { return (int) (n.a() ^ (n.a() >>> 29)) & mask; }

    private boolean matches(int slot, BlockName n) {
        int i = slot * 4;
        return names[i] == n.a() && names[i + 1] == n.b() && names[i + 2] == n.c() && names[i + 3] == n.d();
    }

    @Override
    public synchronized long lookup(BlockName name) {
        for (int s = slotOf(name); ; s = (s + 1) & mask) {
            if (ids[s] == 0) return NONE;
            if (matches(s, name)) return ids[s];
        }
    }

    @Override
    public synchronized void insert(BlockName name, long chunkId) {
        Check.that(chunkId > 0, "chunk id %d is positive", chunkId);
        if ((entries + 1) * 4 > (long) ids.length * 3) grow();
        int s = slotOf(name);
        while (ids[s] != 0 && !matches(s, name)) s = (s + 1) & mask;
        if (ids[s] == 0) {
            entries++;
            int i = s * 4;
            names[i] = name.a();
            names[i + 1] = name.b();
            names[i + 2] = name.c();
            names[i + 3] = name.d();
        }
        ids[s] = chunkId;
    }

    private void grow() {
        long[] oldNames = names;
        long[] oldIds = ids;
        Check.that(oldIds.length < (1 << 29), "exact index exceeds %d slots", oldIds.length);
        allocate(oldIds.length * 2);
        entries = 0;
        for (int s = 0; s < oldIds.length; s++) {
            if (oldIds[s] != 0) {
                int i = s * 4;
                insert(new BlockName(oldNames[i], oldNames[i + 1], oldNames[i + 2], oldNames[i + 3]), oldIds[s]);
            }
        }
    }

    @Override
    public synchronized long entries() { return entries; }

    @Override
    public synchronized long memoryBytes() { return (long) ids.length * 40; }

    @Override
    public long windowEntries() { return Long.MAX_VALUE; }

    /** Memory only: rebuilt from the pool's live chunks at every open. */
    @Override
    public long diskBytes() { return 0; }

    @Override
    public boolean sparse() { return false; }

    /** Rebuilt from the pool's live chunks at every open, so it never holds advice from before a crash. */
    @Override
    public long maxChunkId() { return reservedThrough; }

    /**
     * Makes {@link #maxChunkId} at least {@code id}: used when this in-memory index stands in for index files that
     * could not be opened (a full disk), whose advice may name ids up to {@code id} when they come back.
     */
    public void reserveIdsThrough(long id) { reservedThrough = Math.max(reservedThrough, id); }

    private volatile long reservedThrough;

    /** Nothing to make durable: rebuilt from the pool's live chunks at every open. */
    @Override
    public void checkpoint() { }

    @Override
    public void save() { }

    @Override
    public void close() { }
}
