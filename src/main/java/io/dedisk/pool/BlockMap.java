package io.dedisk.pool;

import io.dedisk.util.Check;
import java.util.Arrays;

/**
 * One volume's block map: LBA -> block reference, in memory, paged so that memory follows the mapped part of the
 * volume, not its logical size (thin provisioning): a page of 1024 references (8 KiB) exists only once one of its
 * LBAs was written. The page directory costs 8 bytes per 4 MiB of logical size.
 *
 * A reference is a long: {@link #UNMAPPED} (0, never written or trimmed), {@link #ZERO} (1, written as zeros),
 * or a chunk id (>= {@link #FIRST_CHUNK_ID}).
 *
 * Threads: guarded by the pool's metadata lock (reads under the read lock, changes under the write lock).
 * Invariants: {@code mapped} and {@code zero} count the entries that are chunk ids and ZERO respectively.
 */
final class BlockMap {
    static final long UNMAPPED = 0;
    static final long ZERO = 1;
    static final long FIRST_CHUNK_ID = 2;
    static final int PAGE_SHIFT = 10;
    static final int PAGE_SIZE = 1 << PAGE_SHIFT;

    private long[][] pages;
    private long blocks;
    private long mapped;
    private long zero;

    BlockMap(long blocks) {
        this.blocks = blocks;
        this.pages = new long[pageCount(blocks)][];
    }

    private static int pageCount(long blocks) {
        long n = (blocks + PAGE_SIZE - 1) >>> PAGE_SHIFT;
        Check.that(n <= Integer.MAX_VALUE, "block map of %d blocks needs too many pages", blocks);
        return (int) n;
    }

    static boolean isChunk(long ref) { return ref >= FIRST_CHUNK_ID; }

    long blocks() { return blocks; }
    long mappedBlocks() { return mapped; }
    long zeroBlocks() { return zero; }

    long get(long lba) {
        Check.that(lba >= 0 && lba < blocks, "lba %d within [0, %d)", lba, blocks);
        long[] page = pages[(int) (lba >>> PAGE_SHIFT)];
        return page == null ? UNMAPPED : page[(int) (lba & (PAGE_SIZE - 1))];
    }

    /** Sets the reference of lba and returns the previous one. */
    long set(long lba, long ref) {
        Check.that(lba >= 0 && lba < blocks, "lba %d within [0, %d)", lba, blocks);
        int p = (int) (lba >>> PAGE_SHIFT);
        long[] page = pages[p];
        if (page == null) {
            if (ref == UNMAPPED) return UNMAPPED;
            page = pages[p] = new long[PAGE_SIZE];
        }
        int i = (int) (lba & (PAGE_SIZE - 1));
        long old = page[i];
        page[i] = ref;
        count(old, -1);
        count(ref, +1);
        return old;
    }

    private void count(long ref, int delta) {
        if (isChunk(ref)) mapped += delta;
        else if (ref == ZERO) zero += delta;
    }

    /**
     * Changes the number of blocks. When shrinking, the references beyond the new end are handed to
     * {@code released} (the caller drops their chunk references) before they are forgotten.
     */
    void resize(long newBlocks, java.util.function.LongConsumer released) {
        for (long lba = newBlocks; lba < blocks; lba++) {
            long old = get(lba);
            if (old != UNMAPPED) {
                set(lba, UNMAPPED);
                released.accept(old);
            }
        }
        pages = Arrays.copyOf(pages, pageCount(newBlocks));
        blocks = newBlocks;
    }

    int pageCount() { return pages.length; }

    /** The page at index p (shared, do not modify), or null when none of its LBAs was ever mapped. */
    long[] page(int p) { return pages[p]; }

    /** Installs a page read from a checkpoint. */
    void loadPage(int p, long[] entries) {
        Check.that(pages[p] == null && entries.length == PAGE_SIZE, "checkpoint page %d loaded once, whole", p);
        pages[p] = entries;
        for (long ref : entries) count(ref, +1);
    }
}
