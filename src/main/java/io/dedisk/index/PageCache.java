package io.dedisk.index;

import io.dedisk.util.Check;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The page cache: verified 4 KiB chapter pages (index and record pages), evicted by CLOCK (second chance, an
 * approximation of least recently used; UDS's volume page cache). Keyed by (the chapter summary's cache id, file
 * page): a summary describes one version of a chapter file (a compaction rewrites the file under a new summary)
 * and cache ids are never reused, so a page of an expired, dropped or rewritten chapter is never served for
 * another, only unused until evicted.
 *
 * Owns: a concurrent map key → frame (the page and its referenced bit) and a ring of the cached keys for the
 * clock hand. Memory: at most {@code capacity} pages, each counted as {@link #PAGE_COST} (the array, the map
 * node, the boxed key, the frame), so memoryBytes() ≤ bytesFor(capacity).
 *
 * Threads: get is lock-free (lookups under the index's read lock run it concurrently); put is synchronized.
 * Pages are immutable once cached: a reader searches the page it got without any lock, and eviction only drops
 * the reference. Loading a missing page is the caller's business (two threads may load the same page; the
 * second put finds it present and keeps the first).
 */
final class PageCache {
    static final long PAGE_COST = ChapterFile.PAGE + 112;

    private static final class Frame {
        final byte[] page;
        volatile boolean referenced = true;

        Frame(byte[] page) { this.page = page; }
    }

    private final ConcurrentHashMap<Long, Frame> frames;
    private final long[] ring;
    private int used;
    private int hand;

    PageCache(int capacity) {
        Check.that(capacity >= 1, "page cache capacity %d ≥ 1", capacity);
        frames = new ConcurrentHashMap<>(Math.min(capacity, 1 << 16));
        ring = new long[capacity];
    }

    static long bytesFor(int capacity) { return capacity * PAGE_COST; }

    static long key(long cacheId, int filePage) { return (cacheId << 24) | filePage; }

    byte[] get(long key) {
        Frame f = frames.get(key);
        if (f == null) return null;
        if (!f.referenced) f.referenced = true;
        return f.page;
    }

    synchronized void put(long key, byte[] page) {
        Check.that(page.length == ChapterFile.PAGE, "cached page is %d bytes", page.length);
        if (frames.containsKey(key)) return;
        int slot;
        if (used < ring.length) {
            slot = used++;
        } else {
            // Second chance: skip (and clear) recently used pages; every lap clears all, so this ends.
            while (frames.get(ring[hand]).referenced) {
                frames.get(ring[hand]).referenced = false;
                hand = hand + 1 == ring.length ? 0 : hand + 1;
            }
            slot = hand;
            frames.remove(ring[slot]);
            hand = hand + 1 == ring.length ? 0 : hand + 1;
        }
        ring[slot] = key;
        frames.put(key, new Frame(page));
    }

    long memoryBytes() { return frames.size() * PAGE_COST; }
}
