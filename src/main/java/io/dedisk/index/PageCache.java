package io.dedisk.index;

import io.dedisk.util.Check;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The page cache: verified 4 KiB chapter pages (index and record pages), least recently used evicted first
 * (UDS's volume page cache). Keyed by (chapter number, file page); chapter numbers are never reused, so a page
 * of an expired or dropped chapter is never wrong, only unused until it is evicted.
 *
 * Memory: at most {@code capacity} pages, each counted as {@link #PAGE_COST} (the array, the map entry and the
 * boxed key), so memoryBytes() ≤ bytesFor(capacity). Pages are immutable once cached: readers search a page they
 * got without holding any lock, and eviction only drops the reference.
 *
 * Threads: all methods synchronized (short critical sections, no I/O inside); loading a missing page is the
 * caller's business, outside the lock (two threads may load the same page; the second put wins, harmlessly).
 */
final class PageCache {
    static final long PAGE_COST = ChapterFile.PAGE + 96;
    private final int capacity;
    private final LinkedHashMap<Long, byte[]> pages;

    PageCache(int capacity) {
        Check.that(capacity >= 1, "page cache capacity %d ≥ 1", capacity);
        this.capacity = capacity;
        this.pages = new LinkedHashMap<>(16, 0.75f, true) {
            @Override
            protected boolean removeEldestEntry(Map.Entry<Long, byte[]> eldest) { return size() > PageCache.this.capacity; }
        };
    }

    static long bytesFor(int capacity) { return capacity * PAGE_COST; }

    static long key(long chapter, int filePage) { return (chapter << 24) | filePage; }

    synchronized byte[] get(long key) { return pages.get(key); }

    synchronized void put(long key, byte[] page) {
        Check.that(page.length == ChapterFile.PAGE, "cached page is %d bytes", page.length);
        pages.put(key, page);
    }

    synchronized long memoryBytes() { return pages.size() * PAGE_COST; }
}
