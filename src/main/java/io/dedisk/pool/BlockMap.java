package io.dedisk.pool;

import io.dedisk.util.Check;
import java.util.function.LongConsumer;

/**
 * One volume's block map: LBA -> block reference, as a {@link PageTree} of leaves of {@link #LEAF_ENTRIES}
 * references (u64 each, 4 MiB of the volume per leaf). Thin: a leaf none of whose LBAs was ever mapped is absent
 * and costs nothing, in memory or on disk; unmapping a whole leaf drops it again.
 *
 * A reference is {@link #UNMAPPED} (0, never written or trimmed), {@link #ZERO} (1, written as zeros), or a chunk
 * id (>= {@link #FIRST_CHUNK_ID}).
 *
 * Threads: reads under the pool's metadata read lock, changes under its write lock.
 * Invariants: {@code mapped} and {@code zero} count the entries that are chunk ids and ZERO; no entry at or
 * beyond {@code blocks} is anything but UNMAPPED.
 */
final class BlockMap {
    static final long UNMAPPED = 0;
    static final long ZERO = 1;
    static final long FIRST_CHUNK_ID = 2;
    static final int LEAF_SHIFT = 10;
    static final int LEAF_ENTRIES = 1 << LEAF_SHIFT;

    private final PageTree tree;
    private long blocks;
    private long mapped;
    private long zero;

    BlockMap(PageTree tree, long blocks, long mapped, long zero) {
        this.tree = tree;
        this.blocks = blocks;
        this.mapped = mapped;
        this.zero = zero;
        tree.grow(leaves(blocks));
    }

    private static long leaves(long blocks) { return (blocks + LEAF_ENTRIES - 1) >>> LEAF_SHIFT; }

    static boolean isChunk(long ref) { return ref >= FIRST_CHUNK_ID; }

    PageTree tree() { return tree; }
    long blocks() { return blocks; }
    long mappedBlocks() { return mapped; }
    long zeroBlocks() { return zero; }

    long get(long lba) {
        Check.that(lba >= 0 && lba < blocks, "lba %d within [0, %d)", lba, blocks);
        MetaPage leaf = tree.leaf(lba >>> LEAF_SHIFT);
        return leaf == null ? UNMAPPED : leaf.getLong((int) (lba & (LEAF_ENTRIES - 1)) * 8);
    }

    /** Sets the reference of lba and returns the previous one. */
    long set(long lba, long ref) {
        Check.that(lba >= 0 && lba < blocks, "lba %d within [0, %d)", lba, blocks);
        MetaPage leaf = ref == UNMAPPED ? tree.leaf(lba >>> LEAF_SHIFT) : tree.leafForWrite(lba >>> LEAF_SHIFT);
        if (leaf == null) return UNMAPPED;
        int at = (int) (lba & (LEAF_ENTRIES - 1)) * 8;
        long old = leaf.getLong(at);
        if (old == ref) return old;
        if (ref == UNMAPPED) leaf = tree.leafForWrite(lba >>> LEAF_SHIFT);
        leaf.putLong(at, ref);
        count(old, -1);
        count(ref, +1);
        return old;
    }

    private void count(long ref, int delta) {
        if (isChunk(ref)) mapped += delta;
        else if (ref == ZERO) zero += delta;
    }

    /**
     * Sets [first, first+count) to ZERO or UNMAPPED; every reference it replaces goes to {@code released}. Cost:
     * the leaves touched. Whole leaves that are unmapped become absent; absent subtrees are skipped.
     */
    void setRange(long first, long count, long ref, LongConsumer released) {
        Check.that(ref == ZERO || ref == UNMAPPED, "range reference %d", ref);
        Check.that(first >= 0 && count >= 0 && first + count <= blocks, "range [%d, +%d) within %d blocks", first, count, blocks);
        long end = first + count;
        long lba = first;
        while (lba < end) {
            long leafNo = lba >>> LEAF_SHIFT;
            long leafStart = leafNo << LEAF_SHIFT;
            long leafEnd = Math.min(leafStart + LEAF_ENTRIES, end);
            if (ref == UNMAPPED && lba == leafStart && leafEnd - leafStart == LEAF_ENTRIES) {
                // Whole leaves: visit only the present ones, release what they hold, drop them. A leaf another
                // family member holds as the same version keeps its references: they are that version's.
                long lastWhole = end >>> LEAF_SHIFT;
                tree.visit(leafNo, lastWhole, p -> {
                    if (p.key.level() != 0) return;
                    boolean shared = tree.sharedVersion(p);
                    for (int i = 0; i < LEAF_ENTRIES; i++) {
                        long old = p.getLong(i * 8);
                        if (old != UNMAPPED) {
                            count(old, -1);
                            if (!shared) released.accept(old);
                        }
                    }
                    tree.dropLeaf(p.key.index());
                });
                lba = lastWhole << LEAF_SHIFT;
                continue;
            }
            setInLeaf(leafNo, (int) (lba - leafStart), (int) (leafEnd - leafStart), ref, released);
            lba = leafEnd;
        }
    }

    /** Sets entries [from, to) of one leaf to ref: one tree lookup per leaf, not per block. */
    private void setInLeaf(long leafNo, int from, int to, long ref, LongConsumer released) {
        MetaPage leaf = tree.leaf(leafNo);
        if (leaf == null && ref == UNMAPPED) return;
        boolean writable = false;
        for (int i = from; i < to; i++) {
            long old = leaf == null ? UNMAPPED : leaf.getLong(i * 8);
            if (old == ref) continue;
            if (!writable) {
                leaf = tree.leafForWrite(leafNo);
                writable = true;
            }
            leaf.putLong(i * 8, ref);
            count(old, -1);
            count(ref, +1);
            if (old != UNMAPPED) released.accept(old);
        }
    }

    /** Changes the number of blocks; when shrinking, the references beyond the new end go to {@code released}. */
    void resize(long newBlocks, LongConsumer released) {
        if (newBlocks < blocks) setRange(newBlocks, blocks - newBlocks, UNMAPPED, released);
        blocks = newBlocks;
        tree.grow(leaves(newBlocks));
    }

    /** Visits every present leaf's entries in LBA order: (lba, ref) for each entry that is not UNMAPPED. */
    void forEachMapped(java.util.function.BiConsumer<Long, Long> visitor) {
        tree.visit(0, leaves(blocks), p -> {
            if (p.key.level() != 0) return;
            long base = p.key.index() << LEAF_SHIFT;
            forEachEntry(p, (i, ref) -> visitor.accept(base + i, ref));
        });
    }

    /** Releases every reference and page only this map holds (the volume is deleted, or rolled back). */
    void deleteAll(LongConsumer released) {
        tree.releaseAll(leaf -> forEachEntry(leaf, (i, ref) -> released.accept(ref)));
        mapped = 0;
        zero = 0;
    }

    /** A new map over {@code tree} that is the same map as {@code source} (snapshot, clone): O(the source's dirty pages). */
    static BlockMap sharing(PageTree tree, BlockMap source) {
        tree.shareOf(source.tree);
        return new BlockMap(tree, source.blocks, source.mapped, source.zero);
    }

    /** This map releases what it alone holds and becomes the same map as {@code source} (rollback). */
    void rollBackTo(BlockMap source, LongConsumer released) {
        deleteAll(released);
        tree.shareOf(source.tree);
        blocks = source.blocks;
        mapped = source.mapped;
        zero = source.zero;
    }

    /** Visits the entries of one leaf that are not UNMAPPED: (index in the leaf, reference). */
    static void forEachEntry(MetaPage leaf, java.util.function.BiConsumer<Integer, Long> visitor) {
        for (int i = 0; i < LEAF_ENTRIES; i++) {
            long ref = leaf.getLong(i * 8);
            if (ref != UNMAPPED) visitor.accept(i, ref);
        }
    }
}
