package io.dedisk.index;

import io.dedisk.util.Check;
import java.util.ArrayList;
import java.util.List;

/**
 * The closed chapters of the window, by number: a ring of {@link ChapterFile} summaries indexed by chapter
 * number mod N (the window's chapter count), so at most one chapter per slot can be live.
 *
 * Invariants: a slot holds null or the summary whose number maps to it; {@code records} is the sum of the
 * record counts held. Threads: none inside; the owner reads under its read lock and changes under its write lock.
 */
final class ChapterRing {
    private final ChapterFile[] ring;
    /** Volatile so that stats read them without the owner's lock; written under its write lock. */
    private volatile long records;
    private volatile long summaryBytes;

    ChapterRing(int chapters) {
        Check.that(chapters >= 2, "chapter ring of %d slots", chapters);
        ring = new ChapterFile[chapters];
    }

    /** The ring array and one full summary per slot. */
    static long bytesFor(int chapters, int chapterRecords) { return 16 + 8L * chapters + chapters * ChapterFile.bytesFor(chapterRecords); }

    private int slot(long number) { return (int) Math.floorMod(number, (long) ring.length); }

    ChapterFile get(long number) {
        ChapterFile c = ring[slot(number)];
        return c != null && c.number == number ? c : null;
    }

    void add(ChapterFile c) {
        int s = slot(c.number);
        Check.that(ring[s] == null, "chapter %d added over chapter %s", c.number, ring[s] == null ? "-" : ring[s].number);
        ring[s] = c;
        records += c.records;
        summaryBytes += c.memoryBytes();
    }

    /** Removes the chapter if held; returns it or null. */
    ChapterFile remove(long number) {
        ChapterFile c = get(number);
        if (c == null) return null;
        ring[slot(number)] = null;
        records -= c.records;
        summaryBytes -= c.memoryBytes();
        return c;
    }

    /** Puts {@code now} (a rewrite of the same chapter) in place of {@code was}, which must be held. */
    void replace(ChapterFile was, ChapterFile now) {
        Check.that(get(was.number) == was && now.number == was.number, "chapter %d replaced by chapter %d while held", was.number, now.number);
        ring[slot(was.number)] = now;
        records += now.records - was.records;
        summaryBytes += now.memoryBytes() - was.memoryBytes();
    }

    long records() { return records; }

    long memoryBytes() { return 16 + 8L * ring.length + summaryBytes; }

    /** The summaries' share of {@link #memoryBytes}. */
    long summaryBytes() { return summaryBytes; }

    List<ChapterFile> all() {
        List<ChapterFile> list = new ArrayList<>();
        for (ChapterFile c : ring) if (c != null) list.add(c);
        return list;
    }
}
