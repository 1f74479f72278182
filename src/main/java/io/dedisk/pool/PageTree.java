package io.dedisk.pool;

import io.dedisk.DediskException.StorageException;
import io.dedisk.util.Check;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.function.Consumer;
import java.util.function.Predicate;

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
 * Sharing (snapshots and clones, see {@link Family}): members of a family share durable page versions. A tree
 * never changes a shared version in place: the first change of a clean leaf that another member holds as the same
 * version forks it ({@code forked}: the tree's copy is its own, so every chunk it names gains a reference); forking
 * an interior page costs nothing (its children simply become shared). A durable address is released to the usage
 * table only when no other member holds it any more. Dirty pages are always this tree's own, except those the
 * cleaner marked {@link MetaPage#relocating}, which every holder writes as one shared copy.
 *
 * Threads: reads under the pool's metadata read lock, changes under its write lock.
 * Invariants: every dirty page's ancestors are dirty (so cached) and not relocating; a cached page's key lies
 * within the height; a cached page's address is the one its parent (or the root) records for it.
 */
final class PageTree {
    /** Reads the bytes of a page record at an address (the backend). */
    interface PageReader {
        void read(long address, ByteBuffer dst) throws IOException;
    }

    /** Where a tree's root is: the root page's address, record CRC and record length (0, 0, 0: not written yet) and the height. */
    record Root(long address, int crc, int length, int height) {
        static final Root EMPTY = new Root(0, 0, 0, 0);
    }

    /** Gets the address and record length of every durable page version that stops being referenced. */
    interface Released {
        void accept(long address, int length);
    }

    /** A page met by {@link #walk}, before it is loaded: where, its durable address, and whether the tree's page there is that durable version. */
    record Ref(int level, long index, long address, boolean version) {}

    final int tree;
    final Family family;
    private final int leafKind;
    private final MetadataCache cache;
    private final PageReader reader;
    /** Called with every durable page version that stops being referenced (usage accounting). */
    private final Released released;
    /** Called with a leaf that stopped being a shared version and became this tree's own copy (the fork). */
    private final Consumer<MetaPage> forked;
    private long rootAddress;
    private int rootCrc;
    private int rootLength;
    private int height;

    PageTree(int tree, Family family, int leafKind, MetadataCache cache, PageReader reader, Released released, Consumer<MetaPage> forked, Root root) {
        Check.that(root.height() >= 0 && root.height() <= 7, "tree height %d", root.height());
        this.tree = tree;
        this.family = family;
        this.forked = forked;
        this.leafKind = leafKind;
        this.cache = cache;
        this.reader = reader;
        this.released = released;
        this.rootAddress = root.address();
        this.rootCrc = root.crc();
        this.rootLength = root.length();
        this.height = root.height();
        family.add(this);
    }

    Root root() { return new Root(rootAddress, rootCrc, rootLength, height); }

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
            root.setChild(0, rootAddress, rootCrc, rootLength);
            clearRoot();
            cache.markDirty(cache.insert(root));
        }
    }

    /** Leaf n for reading, or null when absent (every entry empty). */
    MetaPage leaf(long n) { return n >= 0 && n < capacity() ? page(0, n, false) : null; }


    /** Leaf n for changing: created when absent; it and its ancestors are marked dirty; a shared version is forked. */
    MetaPage leafForWrite(long n) {
        Check.that(n >= 0 && n < capacity(), "leaf %d within capacity %d", n, capacity());
        MetaPage p = page(0, n, true);
        boolean version = p.isDurableVersion();
        markDirty(p); // pinned before the family is asked: asking may load pages, evicting clean ones
        if (version && family.heldElsewhere(this, 0, n, p.address) == Family.Hold.VERSION) forked.accept(p);
        return p;
    }

    /** Whether leaf p is still a durable version another member holds too (its references are not this tree's alone). */
    boolean sharedVersion(MetaPage p) {
        return p.isDurableVersion() && family.heldElsewhere(this, p.key.level(), p.key.index(), p.address) == Family.Hold.VERSION;
    }

    private MetaPage page(int level, long index, boolean create) {
        MetaPage.Key key = new MetaPage.Key(tree, level, index);
        MetaPage p = cache.get(key);
        if (p != null) return p;
        long address;
        int crc, length;
        if (level == height) {
            Check.that(index == 0, "root index %d", index);
            address = rootAddress;
            crc = rootCrc;
            length = rootLength;
        } else {
            MetaPage parent = page(level + 1, index >>> MetaPage.FANOUT_SHIFT, create);
            if (parent == null) return null;
            int i = (int) (index & (MetaPage.FANOUT - 1));
            address = parent.childAddress(i);
            crc = parent.childCrc(i);
            length = parent.childLength(i);
        }
        if (address == 0) {
            if (!create) return null;
            p = new MetaPage(key, level == 0 ? leafKind : MetaPage.KIND_INTERIOR, new byte[MetaPage.BODY]);
        } else {
            p = load(key, address, crc, length);
        }
        return cache.insert(p);
    }

    private MetaPage load(MetaPage.Key key, long address, int crc, int length) {
        if (!MetaPage.validReference(address, crc, length)) {
            throw new io.dedisk.DediskException.CorruptionException("metadata page " + key + " at segment " + MetaPage.segmentOf(address) + " offset "
                    + MetaPage.offsetOf(address) + ": its reference gives a record of " + length + " bytes, expected " + MetaPage.MIN_RECORD_BYTES
                    + " to " + MetaPage.MAX_RECORD_BYTES);
        }
        ByteBuffer buf = ByteBuffer.allocate(length);
        try {
            reader.read(address, buf);
        } catch (IOException e) {
            throw new StorageException("reading metadata page " + key + " at segment " + MetaPage.segmentOf(address)
                    + " offset " + MetaPage.offsetOf(address) + " failed: " + e, e);
        }
        buf.flip();
        return MetaPage.decode(buf, key, family.id, key.level() == 0 ? leafKind : MetaPage.KIND_INTERIOR, address, crc, length);
    }

    /** Marks p and its ancestors dirty; a page that was only being moved is a real change now. */
    private void markDirty(MetaPage p) {
        while (!p.dirty || p.relocating) {
            p.relocating = false;
            cache.markDirty(p);
            if (p.key.level() == height) return;
            p = page(p.key.level() + 1, p.key.index() >>> MetaPage.FANOUT_SHIFT, true);
        }
    }

    /** Leaf n becomes absent (the caller has released what its entries referenced). */
    void dropLeaf(long n) {
        MetaPage.Key key = new MetaPage.Key(tree, 0, n);
        if (height == 0) {
            release(0, 0, rootAddress, rootLength);
            clearRoot();
            cache.remove(key);
            return;
        }
        MetaPage parent = page(1, n >>> MetaPage.FANOUT_SHIFT, false);
        if (parent == null) return;
        int i = (int) (n & (MetaPage.FANOUT - 1));
        long address = parent.childAddress(i);
        if (address == 0 && !cache.contains(key)) return;
        release(0, n, address, parent.childLength(i));
        cache.remove(key);
        markDirty(parent);
        parent.setChild(i, 0, 0, 0);
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
    void written(MetaPage p, long address, int crc, int length) {
        Check.that(p.dirty && p.key.tree() == tree, "written page %s was dirty in tree %d", p.key, tree);
        release(p.key.level(), p.key.index(), p.address, p.length);
        p.address = address;
        p.crc = crc;
        p.length = length;
        p.relocating = false;
        if (p.key.level() == height) {
            Check.that(p.key.index() == 0, "root page index");
            rootAddress = address;
            rootCrc = crc;
            rootLength = length;
        } else {
            MetaPage parent = cache.get(new MetaPage.Key(tree, p.key.level() + 1, p.key.index() >>> MetaPage.FANOUT_SHIFT));
            Check.that(parent != null && parent.dirty, "parent of dirty page %s is cached and dirty", p.key);
            parent.setChild((int) (p.key.index() & (MetaPage.FANOUT - 1)), address, crc, length);
        }
        cache.markClean(p);
    }

    /** The tree stops referencing a durable version: its bytes are garbage unless another member still holds them. */
    private void release(int level, long index, long address, int length) {
        if (address != 0 && family.heldElsewhere(this, level, index, address) == Family.Hold.NONE) released.accept(address, length);
    }

    private void clearRoot() {
        rootAddress = 0;
        rootCrc = 0;
        rootLength = 0;
    }

    /**
     * Visits the present pages, children before parents, asking {@code enter} before each is loaded: false skips the
     * page and its whole subtree (a shared subtree is not descended into).
     */
    void walk(Predicate<Ref> enter, Consumer<MetaPage> visitor) { walk(height, 0, rootAddress, rootCrc, rootLength, enter, visitor); }

    private void walk(int level, long index, long address, int crc, int length, Predicate<Ref> enter, Consumer<MetaPage> visitor) {
        MetaPage.Key key = new MetaPage.Key(tree, level, index);
        MetaPage cached = cache.get(key);
        if (cached == null && address == 0) return;
        boolean version = cached == null || !cached.dirty || cached.relocating;
        if (!enter.test(new Ref(level, index, cached != null ? cached.address : address, version))) return;
        // Loaded from the reference in hand (the parent was just read): one cache lookup per page walked.
        MetaPage p = cached != null ? cached : cache.insert(load(key, address, crc, length));
        if (level > 0) {
            long first = index << MetaPage.FANOUT_SHIFT;
            for (int i = 0; i < MetaPage.FANOUT; i++) {
                long child = p.childAddress(i);
                if (child == 0 && (!p.dirty || !cache.contains(new MetaPage.Key(tree, level - 1, first + i)))) continue;
                walk(level - 1, first + i, child, p.childCrc(i), p.childLength(i), enter, visitor);
            }
        }
        visitor.accept(p);
    }

    /** Visits the pages that are this tree's own (no other member holds them as the same version), skipping shared subtrees. */
    void walkOwn(Consumer<MetaPage> visitor) {
        walk(r -> !r.version() || family.heldElsewhere(this, r.level(), r.index(), r.address()) != Family.Hold.VERSION, visitor);
    }

    /** Whether another member still holds page p's durable address (as a version, or as the previous one of its copy). */
    boolean heldByOthers(MetaPage p) {
        return p.address != 0 && family.heldElsewhere(this, p.key.level(), p.key.index(), p.address) != Family.Hold.NONE;
    }

    /**
     * The tree is deleted (or rolled back): what only it holds is released — {@code leafReleased} gets each leaf of
     * its own, whose references it must drop, and the usage of every page no member holds any more goes — and the
     * subtrees another member holds as the same version are left to it, not even loaded. The tree is empty after.
     */
    void releaseAll(Consumer<MetaPage> leafReleased) {
        walkOwn(p -> {
            if (p.key.level() == 0) leafReleased.accept(p);
            release(p.key.level(), p.key.index(), p.address, p.length);
        });
        cache.removeTree(tree);
        clearRoot();
    }

    /**
     * An empty tree becomes the same tree as {@code source} (a snapshot, clone or rollback): the durable root is
     * shared, and each of the source's dirty pages (a bounded set: what changed since the last checkpoint) is copied,
     * its own from now on; a copied leaf forks (pages only being moved stay one shared version).
     */
    void shareOf(PageTree source) {
        Check.that(source.family == family && source.leafKind == leafKind && source != this, "tree %d shares tree %d of its family", tree, source.tree);
        Check.that(rootAddress == 0 && cache.pagesOf(tree).isEmpty(), "tree %d is empty before it shares tree %d", tree, source.tree);
        rootAddress = source.rootAddress;
        rootCrc = source.rootCrc;
        rootLength = source.rootLength;
        height = source.height;
        // Every dirty page's ancestors are dirty too, so the copies form whole paths from the root.
        for (MetaPage p : cache.pagesOf(source.tree)) {
            if (!p.dirty) continue;
            MetaPage copy = new MetaPage(new MetaPage.Key(tree, p.key.level(), p.key.index()), p.kind, p.body.clone());
            copy.address = p.address;
            copy.crc = p.crc;
            copy.length = p.length;
            copy.relocating = p.relocating;
            copy.dirty = true;
            Check.that(cache.insert(copy) == copy, "copy of page %s is new in the cache", copy.key);
            if (copy.key.level() == 0 && !copy.relocating) forked.accept(copy);
        }
    }

    /** How this tree holds the durable version at (level, index, address) (see {@link Family.Hold}); may load its pages. */
    Family.Hold hold(int level, long index, long address) {
        // Beyond this tree's height or width (a member that grew since, or a smaller one): nothing there.
        if (level > height || index >= 1L << (MetaPage.FANOUT_SHIFT * (height - level))) return Family.Hold.NONE;
        MetaPage cached = cache.get(new MetaPage.Key(tree, level, index));
        if (cached != null) {
            if (cached.address != address) return Family.Hold.NONE;
            return cached.dirty && !cached.relocating ? Family.Hold.BYTES : Family.Hold.VERSION;
        }
        if (level == height) return index == 0 && rootAddress == address ? Family.Hold.VERSION : Family.Hold.NONE;
        MetaPage parent = page(level + 1, index >>> MetaPage.FANOUT_SHIFT, false);
        return parent != null && parent.childAddress((int) (index & (MetaPage.FANOUT - 1))) == address ? Family.Hold.VERSION : Family.Hold.NONE;
    }

    /**
     * The cleaner found this tree's version of (level, index) in a victim: the page is marked to be moved, so the
     * next checkpoint writes it elsewhere, one copy for all members that hold it (see {@link Checkpointer}).
     */
    void rewrite(int level, long index) {
        MetaPage p = page(level, index, false);
        Check.that(p != null, "page %d/%d of tree %d to rewrite exists", level, index, tree);
        if (p.dirty) return; // written at the next checkpoint anyway
        cache.markDirty(p);
        p.relocating = true;
        if (level < height) markDirty(page(level + 1, index >>> MetaPage.FANOUT_SHIFT, true));
    }
}
