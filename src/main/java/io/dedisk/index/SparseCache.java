package io.dedisk.index;

import io.dedisk.util.Check;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * The sparse cache: the whole chapter index (all index pages) of a few sparse chapters, loaded when a hook name
 * was found in one of them (UDS's sparse cache). Names that are not hooks have no volume index entry in sparse
 * chapters, so they are looked for in these chapters only: the duplicates that follow a hook hit (temporal
 * locality) find their records here.
 *
 * Memory: at most {@code capacity} chapters; a chapter costs its index pages plus small change (bytesFor).
 * Eviction: least recently searched (approximate: the use stamp is written without a lock).
 *
 * Threads: readers take {@link #chapters()}, an immutable snapshot ordered newest chapter first, without locking;
 * put/retain are synchronized and publish a new snapshot.
 */
final class SparseCache {
    /** A cached chapter index. The use stamp is racy on purpose: an approximate LRU is good enough. */
    static final class Entry {
        final ChapterFile chapter;
        final byte[][] indexPages;
        volatile long lastUse;

        Entry(ChapterFile chapter, byte[][] indexPages) {
            Check.that(indexPages.length == chapter.indexPages, "chapter %d cached with all its index pages", chapter.number);
            this.chapter = chapter;
            this.indexPages = indexPages;
        }

        long memoryBytes() { return entryBytes(chapter.records); }
    }

    private static final Entry[] EMPTY = new Entry[0];
    private final int capacity;
    private volatile Entry[] snapshot = EMPTY;
    private long clock;

    SparseCache(int capacity) {
        Check.that(capacity >= 1, "sparse cache capacity %d ≥ 1", capacity);
        this.capacity = capacity;
    }

    /** The entry object, the page array and each page (array header and reference included). */
    private static long entryBytes(int records) {
        return 64 + 16 + (long) ChapterFile.pagesFor(records, ChapterFile.ENTRIES_PER_INDEX_PAGE) * (ChapterFile.PAGE + 16 + 8);
    }

    static long bytesFor(int capacity, int chapterRecords) { return capacity * entryBytes(chapterRecords); }

    /** Newest chapter first. */
    Entry[] chapters() { return snapshot; }

    void touch(Entry e) { e.lastUse = ++clock; }

    synchronized boolean contains(long chapter) {
        for (Entry e : snapshot) if (e.chapter.number == chapter) return true;
        return false;
    }

    synchronized void put(ChapterFile chapter, byte[][] indexPages) {
        List<Entry> list = new ArrayList<>(List.of(snapshot));
        for (Entry e : list) if (e.chapter.number == chapter.number) return;
        if (list.size() == capacity) list.remove(list.stream().min(Comparator.comparingLong(e -> e.lastUse)).orElseThrow());
        Entry added = new Entry(chapter, indexPages);
        touch(added);
        list.add(added);
        publish(list);
    }

    /** Drops the chapters older than {@code oldestLive} (they left the window). */
    synchronized void retainFrom(long oldestLive) {
        List<Entry> list = new ArrayList<>(List.of(snapshot));
        if (list.removeIf(e -> e.chapter.number < oldestLive)) publish(list);
    }

    /** Drops the chapter's cached index (the chapter was rewritten or deleted). */
    synchronized void remove(long chapter) {
        List<Entry> list = new ArrayList<>(List.of(snapshot));
        if (list.removeIf(e -> e.chapter.number == chapter)) publish(list);
    }

    private void publish(List<Entry> list) {
        list.sort(Comparator.comparingLong((Entry e) -> e.chapter.number).reversed());
        snapshot = list.toArray(EMPTY);
    }

    long memoryBytes() {
        long total = 0;
        for (Entry e : snapshot) total += e.memoryBytes();
        return total;
    }
}
