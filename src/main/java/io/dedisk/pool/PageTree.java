package io.dedisk.pool;

import io.dedisk.DediskException.StorageException;
import io.dedisk.util.Check;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.function.Consumer;

/**
 * A radix tree of fixed-size pages stored in the log: the shape of every block map (leaves of 1024 block
 * references) and of the chunk table (leaves of 341 chunk entries). Leaf n sits under interior pages of
 * {@link MetaPage#FANOUT} children each; the root is the page at level {@code height} (height 0: the root is leaf
 * 0). A child whose address is 0 and that is not in the cache is absent: its whole subtree holds nothing, costs
 * nothing, and range operations skip it in O(1).
 *
 * Copy-on-write, LFS style: a changed page is marked dirty (and with it every ancestor up to the root); a
 * checkpoint writes dirty pages bottom-up into the log, each at a new address that its parent then records
 * ({@link #written}). Pages are read through the one {@link MetadataCache}.
 *
 * Threads: reads under the pool's metadata read lock, changes under its write lock.
 * Invariants: every dirty page's ancestors are dirty (so cached); a cached page's key lies within the height.
 */
final class PageTree {
    /** Reads the bytes of a page record at an address (the backend). */
    interface PageReader {
        void read(long address, ByteBuffer dst) throws IOException;
    }

    /** Where a tree's root is: the root page's address and record CRC (0, 0: not written yet) and the height. */
    record Root(long address, int crc, int height) {}

    final int tree;
    private final int leafKind;
    private final MetadataCache cache;
    private final PageReader reader;
    /** Called with the address of every durable page version that stops being referenced (usage accounting). */
    private final Consumer<Long> released;
    private long rootAddress;
    private int rootCrc;
    private int height;

    PageTree(int tree, int leafKind, MetadataCache cache, PageReader reader, Consumer<Long> released, Root root) {
        Check.that(root.height() >= 0 && root.height() <= 7, "tree height %d", root.height());
        this.tree = tree;
        this.leafKind = leafKind;
        this.cache = cache;
        this.reader = reader;
        this.released = released;
        this.rootAddress = root.address();
        this.rootCrc = root.crc();
        this.height = root.height();
    }

    Root root() { return new Root(rootAddress, rootCrc, height); }

    /** Leaves the tree can hold at its height. */
    long capacity() { return 1L << (MetaPage.FANOUT_SHIFT * height); }

    /** Raises the height until leaf {@code leaves - 1} fits: the old root becomes child 0 of a new root. */
    void grow(long leaves) {
        while (capacity() < leaves) {
            MetaPage.Key oldRoot = new MetaPage.Key(tree, height, 0);
            boolean empty = rootAddress == 0 && cache.get(oldRoot) == null;
            height++;
            if (empty) continue;
            MetaPage root = new MetaPage(new MetaPage.Key(tree, height, 0), MetaPage.KIND_INTERIOR, new byte[MetaPage.BODY]);
            root.setChild(0, rootAddress, rootCrc);
            rootAddress = 0;
            rootCrc = 0;
            cache.markDirty(cache.insert(root));
        }
    }

    /** Leaf n for reading, or null when absent (every entry empty). */
    MetaPage leaf(long n) { return n >= 0 && n < capacity() ? page(0, n, false) : null; }


    /** Leaf n for changing: created when absent; it and its ancestors are marked dirty. */
    MetaPage leafForWrite(long n) {
        Check.that(n >= 0 && n < capacity(), "leaf %d within capacity %d", n, capacity());
        MetaPage p = page(0, n, true);
        markDirty(p);
        return p;
    }

    private MetaPage page(int level, long index, boolean create) {
        MetaPage.Key key = new MetaPage.Key(tree, level, index);
        MetaPage p = cache.get(key);
        if (p != null) return p;
        long address;
        int crc;
        if (level == height) {
            Check.that(index == 0, "root index %d", index);
            address = rootAddress;
            crc = rootCrc;
        } else {
            MetaPage parent = page(level + 1, index >>> MetaPage.FANOUT_SHIFT, create);
            if (parent == null) return null;
            int i = (int) (index & (MetaPage.FANOUT - 1));
            address = parent.childAddress(i);
            crc = parent.childCrc(i);
        }
        if (address == 0) {
            if (!create) return null;
            p = new MetaPage(key, level == 0 ? leafKind : MetaPage.KIND_INTERIOR, new byte[MetaPage.BODY]);
        } else {
            p = load(key, address, crc);
        }
        return cache.insert(p);
    }

    private MetaPage load(MetaPage.Key key, long address, int crc) {
        ByteBuffer buf = ByteBuffer.allocate(MetaPage.RECORD_BYTES);
        try {
            reader.read(address, buf);
        } catch (IOException e) {
            throw new StorageException("reading metadata page " + key + " at segment " + MetaPage.segmentOf(address)
                    + " offset " + MetaPage.offsetOf(address) + " failed: " + e, e);
        }
        buf.flip();
        return MetaPage.decode(buf, key, key.level() == 0 ? leafKind : MetaPage.KIND_INTERIOR, address, crc);
    }

    private void markDirty(MetaPage p) {
        while (!p.dirty) {
            cache.markDirty(p);
            if (p.key.level() == height) return;
            p = page(p.key.level() + 1, p.key.index() >>> MetaPage.FANOUT_SHIFT, true);
        }
    }

    /** Leaf n becomes absent (the caller has released what its entries referenced). */
    void dropLeaf(long n) {
        MetaPage.Key key = new MetaPage.Key(tree, 0, n);
        if (height == 0) {
            if (rootAddress != 0) released.accept(rootAddress);
            rootAddress = 0;
            rootCrc = 0;
            cache.remove(key);
            return;
        }
        MetaPage parent = page(1, n >>> MetaPage.FANOUT_SHIFT, false);
        if (parent == null) return;
        int i = (int) (n & (MetaPage.FANOUT - 1));
        long address = parent.childAddress(i);
        if (address == 0 && !cache.contains(key)) return;
        if (address != 0) released.accept(address);
        cache.remove(key);
        markDirty(parent);
        parent.setChild(i, 0, 0);
    }

    /**
     * Visits the pages present in the subtrees over leaves [from, to), children before parents (so a visitor may
     * drop what it visits); absent subtrees are skipped whole.
     */
    void visit(long from, long to, Consumer<MetaPage> visitor) {
        if (from >= to) return;
        MetaPage root = page(height, 0, false);
        if (root != null) visit(root, from, Math.min(to, capacity()), visitor);
    }

    private void visit(MetaPage p, long from, long to, Consumer<MetaPage> visitor) {
        int level = p.key.level();
        if (level > 0) {
            long span = 1L << (MetaPage.FANOUT_SHIFT * (level - 1));
            long first = p.key.index() << MetaPage.FANOUT_SHIFT;
            for (int i = 0; i < MetaPage.FANOUT; i++) {
                long childFirst = (first + i) * span;
                if (childFirst >= to || childFirst + span <= from) continue;
                // An absent child can be in the cache only if it was created since the parent was written, which
                // made the parent dirty: a clean parent's absent children need no lookup.
                if (p.childAddress(i) == 0 && (!p.dirty || !cache.contains(new MetaPage.Key(tree, level - 1, first + i)))) continue;
                MetaPage child = page(level - 1, first + i, false);
                if (child != null) visit(child, from, to, visitor);
            }
        }
        visitor.accept(p);
    }

    /**
     * A checkpoint wrote dirty page p at address: its parent (dirty too, so cached) or the root records it, the
     * previous durable version is released, and the page is clean.
     */
    void written(MetaPage p, long address, int crc) {
        Check.that(p.dirty && p.key.tree() == tree, "written page %s was dirty in tree %d", p.key, tree);
        if (p.address != 0) released.accept(p.address);
        p.address = address;
        p.crc = crc;
        if (p.key.level() == height) {
            Check.that(p.key.index() == 0, "root page index");
            rootAddress = address;
            rootCrc = crc;
        } else {
            MetaPage parent = cache.get(new MetaPage.Key(tree, p.key.level() + 1, p.key.index() >>> MetaPage.FANOUT_SHIFT));
            Check.that(parent != null && parent.dirty, "parent of dirty page %s is cached and dirty", p.key);
            parent.setChild((int) (p.key.index() & (MetaPage.FANOUT - 1)), address, crc);
        }
        cache.markClean(p);
    }

    /** Every durable page of the tree is released (the tree is deleted); the cache forgets it. */
    void releaseAll() {
        visit(0, capacity(), p -> {
            if (p.address != 0) released.accept(p.address);
        });
        cache.removeTree(tree);
        rootAddress = 0;
        rootCrc = 0;
    }

    /** Whether the durable page version at address is the one this tree uses for key (the cleaner's liveness test). */
    boolean isCurrent(MetaPage.Key key, long address) {
        if (key.level() > height) return false;
        MetaPage cached = cache.get(key);
        if (cached != null) return cached.address == address;
        if (key.level() == height) return key.index() == 0 && rootAddress == address;
        MetaPage parent = page(key.level() + 1, key.index() >>> MetaPage.FANOUT_SHIFT, false);
        return parent != null && parent.childAddress((int) (key.index() & (MetaPage.FANOUT - 1))) == address;
    }

    /** Loads the page at key and marks it dirty, so the next checkpoint writes it elsewhere (cleaning). */
    void rewrite(MetaPage.Key key) {
        MetaPage p = page(key.level(), key.index(), false);
        Check.that(p != null, "page %s to rewrite exists", key);
        markDirty(p);
    }
}
