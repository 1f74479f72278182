package io.dedisk.index;

import io.dedisk.util.ByteSink;
import io.dedisk.util.ByteSource;
import io.dedisk.util.Check;
import java.util.Arrays;

/**
 * The open chapter: the newest records, in memory, in arrival order (UDS's open chapter). Records here are found
 * by an exact hash lookup on the full name, so a name posted again while its record is still open is updated in
 * place (the cheap refresh) instead of taking a second record. When full it is written out as a closed chapter
 * ({@link ChapterFile}) and cleared.
 *
 * Owns: names (4 longs a,b,c,d per record), chunk ids, the closed chapter that held each name's newest record when
 * it was posted (-1: none; its volume index entry is moved from there when this chapter closes), and an
 * open-addressing table of 2·capacity ints mapping a name (by its bits a) to record index + 1, 0 = empty, linear
 * probing.
 * All arrays are allocated once at full capacity, so memoryBytes is constant.
 *
 * Invariants: count ≤ capacity; every name appears at most once; table holds exactly the records [0, count).
 * Threads: none inside; {@link UdsIndex} and its jobs read it under the index lock ({@link IndexState#lock}) and
 * change it under its write lock.
 */
final class OpenChapter implements ChapterFile.Records {
    final int capacity;
    private final long[] names;
    private final long[] ids;
    private final long[] previous;
    private final int[] table;
    private int count;

    OpenChapter(int capacity) {
        Check.that(capacity >= 1 && capacity <= (1 << 28), "open chapter capacity %d in [1, 2^28]", capacity);
        this.capacity = capacity;
        names = new long[capacity * 4];
        ids = new long[capacity];
        previous = new long[capacity];
        table = new int[capacity * 2];
    }

    static long bytesFor(int capacity) { return 56L * capacity + 4 * 16; }

    long memoryBytes() { return bytesFor(capacity); }

    @Override
    public int count() { return count; }

    boolean full() { return count == capacity; }

    private int home(long a) { return (int) Math.unsignedMultiplyHigh(a, table.length); }

    private boolean matches(int r, BlockName n) {
        int i = r * 4;
        return names[i] == n.a() && names[i + 1] == n.b() && names[i + 2] == n.c() && names[i + 3] == n.d();
    }

    /** Index of the name's record, or -1. */
    int find(BlockName n) {
        for (int s = home(n.a()); ; s = s + 1 == table.length ? 0 : s + 1) {
            int r = table[s] - 1;
            if (r < 0) return -1;
            if (matches(r, n)) return r;
        }
    }

    /** Appends a record for a name that is not here yet; returns its index. */
    int add(BlockName n, long chunkId, long previousChapter) {
        Check.that(count < capacity, "open chapter full (%d records)", capacity);
        int s = emptySlotFor(n);
        int r = count++;
        int i = r * 4;
        names[i] = n.a();
        names[i + 1] = n.b();
        names[i + 2] = n.c();
        names[i + 3] = n.d();
        ids[r] = chunkId;
        previous[r] = previousChapter;
        table[s] = r + 1;
        return r;
    }

    /** The first empty table slot on the name's probe path; the name must not be in the table. */
    private int emptySlotFor(BlockName n) {
        int s = home(n.a());
        while (table[s] != 0) {
            Check.that(!matches(table[s] - 1, n), "name %s added twice to the open chapter", n);
            s = s + 1 == table.length ? 0 : s + 1;
        }
        return s;
    }

    @Override
    public long id(int r) { return ids[r]; }

    void setId(int r, long chunkId) { ids[r] = chunkId; }

    long previous(int r) { return previous[r]; }

    /** Word w (0..3 for a..d) of record r's name, for sorting and encoding without allocating names. */
    @Override
    public long word(int r, int w) { return names[r * 4 + w]; }

    /** Orders records as a chapter's record pages do ({@link ChapterPage#compareNames}), without the interface's word calls. */
    @Override
    public int compare(int r1, int r2) {
        int i = r1 * 4, j = r2 * 4;
        return ChapterPage.compareNames(names[i], names[i + 1], names[i + 2], names[i + 3], names[j], names[j + 1], names[j + 2], names[j + 3]);
    }

    BlockName name(int r) {
        int i = r * 4;
        return new BlockName(names[i], names[i + 1], names[i + 2], names[i + 3]);
    }

    /** Largest encoded record: 4 × u64 name and two varints of at most 10 bytes. */
    static final int MAX_RECORD_BYTES = 32 + 10 + 10;

    /**
     * The on-disk form of record r, shared by {@link SaveFile} and {@link OpenChapterFile}:
     * {@code 4 × u64 name (a, b, c, d) · varint chunk id · varint previous age} where the age is 0 when the name had
     * no closed record, else (this open chapter's number − the previous chapter).
     */
    void encode(int r, long openChapter, ByteSink out) {
        int i = r * 4;
        out.putLong(names[i]).putLong(names[i + 1]).putLong(names[i + 2]).putLong(names[i + 3]);
        long p = previous[r];
        Check.that(p == -1 || (p >= 0 && p < openChapter), "record %d's previous chapter %d precedes open chapter %d", r, p, openChapter);
        out.putVarLong(ids[r]).putVarLong(p < 0 ? 0 : openChapter - p);
    }

    /** A decoded record (untrusted until the caller checks it against its file). */
    record Encoded(BlockName name, long chunkId, long previous) {}

    /**
     * Decodes one record written by {@link #encode} for open chapter {@code openChapter} of an index keeping
     * {@code closedChapters} closed chapters; throws CorruptionException unless 1 ≤ chunk id ≤ {@code maxChunkId}
     * and the previous chapter is none or one of the window's closed chapters.
     */
    static Encoded decode(ByteSource src, long openChapter, int closedChapters, long maxChunkId) {
        BlockName n = new BlockName(src.getLong(), src.getLong(), src.getLong(), src.getLong());
        long id = src.getVarLong(), age = src.getVarLong();
        src.expect(id >= 1 && id <= maxChunkId, "open record %s: chunk id expected in [1, %d], found %d", n, maxChunkId, id);
        long maxAge = Math.min(closedChapters, openChapter);
        src.expect(age >= 0 && age <= maxAge, "open record %s: previous chapter age expected in [0, %d], found %d", n, maxAge, age);
        return new Encoded(n, id, age == 0 ? -1 : openChapter - age);
    }

    void clear() {
        Arrays.fill(table, 0);
        count = 0;
    }

    /**
     * Removes every record for which {@code drop} holds (given its index), keeping the others in arrival order, and
     * rebuilds the table; returns how many were removed. Record indices change: callers forget any they held.
     */
    int removeIf(java.util.function.IntPredicate drop) {
        int kept = 0;
        for (int r = 0; r < count; r++) {
            if (drop.test(r)) continue;
            if (kept != r) {
                System.arraycopy(names, r * 4, names, kept * 4, 4);
                ids[kept] = ids[r];
                previous[kept] = previous[r];
            }
            kept++;
        }
        int removed = count - kept;
        if (removed == 0) return 0;
        Arrays.fill(table, 0);
        count = kept;
        for (int r = 0; r < kept; r++) table[emptySlotFor(name(r))] = r + 1;
        for (int r = 0; r < kept; r++) Check.that(find(name(r)) == r, "open chapter record %d found again after a removal", r);
        return removed;
    }
}
