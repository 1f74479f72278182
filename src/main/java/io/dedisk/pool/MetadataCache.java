package io.dedisk.pool;

import io.dedisk.util.Check;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The one bounded cache of metadata pages (block-map and chunk-table trees): what the pool holds of its metadata
 * in memory. Clean pages are evicted least-recently-used once the cache is over its capacity; dirty pages (changed
 * since the last checkpoint) are pinned until a checkpoint writes them, and the pool checkpoints when they pass
 * half the capacity ({@link #overDirtyLimit}), so the cache stays within its size but for one checkpoint's lag.
 *
 * Threads: every method is synchronized: readers under the pool's read lock load pages concurrently. Page I/O is
 * done by the caller outside this monitor; a page loaded twice by two readers is inserted once ({@link #insert}
 * returns the page already there).
 *
 * Invariants: {@code dirtyBytes} = PAGE_COST x dirty pages held; every dirty page is in the map.
 */
final class MetadataCache {
    /** Memory one cached page costs: its body plus object and map overhead. */
    static final long PAGE_COST = MetaPage.BODY + 160;
    static final long MIN_CAPACITY = 64 * PAGE_COST;

    private final long capacity;
    private final LinkedHashMap<MetaPage.Key, MetaPage> pages = new LinkedHashMap<>(1024, 0.75f, true);
    private long dirtyPages;
    private long hits;
    private long misses;
    private long evictions;

    MetadataCache(long capacityBytes) {
        this.capacity = Math.max(MIN_CAPACITY, capacityBytes);
    }

    synchronized MetaPage get(MetaPage.Key key) {
        MetaPage p = pages.get(key);
        if (p != null) hits++; else misses++;
        return p;
    }

    /** Whether a page is cached, without counting a hit or miss or touching its recency (a probe, not a use). */
    synchronized boolean contains(MetaPage.Key key) { return pages.containsKey(key); }

    /** Whether {@code p} itself is the cached page of its key (it was not dropped or replaced since); counts no hit or miss. */
    synchronized boolean holds(MetaPage p) { return pages.get(p.key) == p; }

    /**
     * Adds a page (loaded or new) unless one with its key is there; returns the cached one. The page added is not
     * evicted by its own insertion (a full cache of dirty pages would otherwise drop it before the caller uses it).
     */
    synchronized MetaPage insert(MetaPage page) {
        MetaPage there = pages.putIfAbsent(page.key, page);
        if (there != null) return there;
        if (page.dirty) dirtyPages++;
        evict(page);
        return page;
    }

    synchronized void remove(MetaPage.Key key) {
        MetaPage p = pages.remove(key);
        if (p != null && p.dirty) dirtyPages--;
    }

    synchronized void markDirty(MetaPage p) {
        Check.that(pages.get(p.key) == p, "dirtied page %s is the cached one", p.key);
        if (!p.dirty) {
            p.dirty = true;
            dirtyPages++;
        }
    }

    synchronized void markClean(MetaPage p) {
        if (p.dirty) {
            p.dirty = false;
            dirtyPages--;
        }
    }

    /** Dirty pages, lowest level first (children before the parents that must learn their new addresses). */
    synchronized List<MetaPage> dirtyByLevel() {
        List<MetaPage> out = new ArrayList<>();
        for (MetaPage p : pages.values()) if (p.dirty) out.add(p);
        out.sort((a, b) -> a.key.level() != b.key.level() ? Integer.compare(a.key.level(), b.key.level())
                : a.key.tree() != b.key.tree() ? Integer.compare(a.key.tree(), b.key.tree()) : Long.compare(a.key.index(), b.key.index()));
        Check.that(out.size() == dirtyPages, "dirty count %d matches %d dirty pages", dirtyPages, out.size());
        return out;
    }

    /** The cached pages of a tree (a scan of the cache: for snapshots and clones, which copy the dirty ones). */
    synchronized List<MetaPage> pagesOf(int tree) {
        List<MetaPage> out = new ArrayList<>();
        for (MetaPage p : pages.values()) if (p.key.tree() == tree) out.add(p);
        return out;
    }

    /** Drops every page of a tree (a deleted volume). */
    synchronized void removeTree(int tree) {
        Iterator<Map.Entry<MetaPage.Key, MetaPage>> it = pages.entrySet().iterator();
        while (it.hasNext()) {
            MetaPage p = it.next().getValue();
            if (p.key.tree() == tree) {
                if (p.dirty) dirtyPages--;
                it.remove();
            }
        }
    }

    synchronized boolean overDirtyLimit() { return dirtyPages * PAGE_COST * 2 > capacity; }

    synchronized void evictToCapacity() { evict(null); }

    private void evict(MetaPage keep) {
        if (pages.size() * PAGE_COST <= capacity) return;
        Iterator<MetaPage> it = pages.values().iterator();
        while (pages.size() * PAGE_COST > capacity && it.hasNext()) {
            MetaPage p = it.next();
            if (!p.dirty && p != keep) {
                it.remove();
                evictions++;
            }
        }
    }

    record Stats(long capacityBytes, long bytes, long dirtyBytes, long hits, long misses, long evictions) {}

    synchronized Stats stats() {
        return new Stats(capacity, pages.size() * PAGE_COST, dirtyPages * PAGE_COST, hits, misses, evictions);
    }
}
