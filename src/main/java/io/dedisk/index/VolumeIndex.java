package io.dedisk.index;

import io.dedisk.util.Check;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * The volume index: the compact in-memory map from a block name to the closed chapters that may hold its record
 * (UDS's volume index; here a bucketized cuckoo table of fingerprints rather than a delta index, because it
 * reaches the same ~3 bytes per entry with constant-time lookups and in-place updates).
 *
 * Owns: a table of {@code buckets} 64-byte buckets (one cache line each), kept in byte-array segments. Each
 * bucket packs {@code slotsPerBucket} slots of {@code slotBits = FP_BITS + chapterBits} bits, little-endian bit
 * order, slot i at bits [i·slotBits, (i+1)·slotBits). A slot holds {@code fingerprint << chapterBits | chapter mod
 * 2^chapterBits}; 0 means empty (fingerprints are never 0). A name's first bucket comes from its bits b, its
 * fingerprint from bits c (BlockName bits are uniformly random SHA-256 output, so they are used as they are); its
 * second bucket is {@code alt(first, fingerprint)}, an involution, so an entry can move between its two buckets
 * knowing only its fingerprint (partial-key cuckoo hashing).
 *
 * Meaning: an entry says "a name with this bucket pair and fingerprint was recorded in this chapter". Several
 * names can share an entry's bits, so answers are candidates only: the caller reads the chapter and compares the
 * full 256-bit name, newest candidate first. A name has one entry, moved to the new chapter when its record is
 * posted again ({@link #move}, as UDS updates its volume index record); after a rebuild it may have two
 * ({@link #putReplayed}). An entry is live while its age, (open chapter − chapter) mod 2^chapterBits, is in [1, window]; older
 * entries are dead and their slots are reused in place. A sweep clears dead entries before their age can wrap
 * round to look live again: each chapter close sweeps ceil(buckets / sweepPeriod) buckets, so every bucket is
 * visited within sweepPeriod = 2^chapterBits − 1 − window closes. (Correctness never depends on the sweep: a
 * wrapped entry only sends a lookup to a chapter that does not hold the name.)
 *
 * Persistence: {@link SaveFile} writes the live entries bucket by bucket ({@link #liveEntries}) and loads them back
 * into slots 0.. of the same buckets ({@link #setBucket}); a slot's position within its bucket carries no meaning.
 * The sweep cursor is saved with them.
 *
 * Threads: none inside. The owner ({@link IndexState}, for {@link UdsIndex}) calls the read methods under its read
 * lock and the mutating ones under its write lock.
 */
final class VolumeIndex {
    static final int FP_BITS = 13;
    static final int BUCKET_BYTES = 64;
    /** Live entries per slot at the expected maximum; buckets of ≥ 16 slots with two choices fill beyond 98 %. */
    static final double MAX_LOAD = 0.95;
    /** Buckets per segment array (64 MiB), so tables beyond 2 GiB fit in Java arrays. */
    static final int SEGMENT_SHIFT = 20;
    /** An 8-byte slot read starting in a segment's last bucket can run 7 bytes past it. */
    static final int SEGMENT_PADDING = 8;
    private static final int MAX_KICKS = 500;
    private static final VarHandle LONG = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);

    final Shape shape;
    final int window;
    final int chapterBits;
    final int slotBits;
    final int slotsPerBucket;
    final long buckets;
    private final long chapterMask;
    private final long slotMask;
    private final int sweepPeriod;
    private final byte[][] segments;
    private long sweepCursor;
    private long dropped;
    private long rng = 0x9E3779B97F4A7C15L;

    /**
     * The dimensions of a table, computable without allocating it (the verifier checks a save file against them).
     * {@code valueBytes} is what one slot value takes in a save file: ceil(slotBits / 8) bytes.
     */
    record Shape(long buckets, int window, int chapterBits, int slotBits, int slotsPerBucket) {
        static Shape of(long expectedEntries, int window) {
            int bits = VolumeIndex.chapterBits(window);
            return new Shape(bucketsFor(expectedEntries, window), window, bits, FP_BITS + bits, (BUCKET_BYTES * 8) / (FP_BITS + bits));
        }

        int valueBytes() { return (slotBits + 7) / 8; }

        /** Whether a slot value read from untrusted bytes is a possible entry, live for {@code openChapter}. */
        boolean isLiveValue(long value, long openChapter) {
            if (value <= 0 || value >>> slotBits != 0 || value >>> chapterBits == 0) return false;
            long age = (openChapter - value) & ((1L << chapterBits) - 1);
            return age >= 1 && age <= window;
        }
    }

    /** A table able to hold {@code expectedEntries} live entries of chapters aged 1..window. */
    VolumeIndex(long expectedEntries, int window) {
        this(Shape.of(expectedEntries, window));
        Check.that(memoryBytes() == bytesFor(expectedEntries, window), "volume index allocation matches bytesFor");
    }

    VolumeIndex(Shape shape) {
        this.shape = shape;
        this.window = shape.window();
        this.chapterBits = shape.chapterBits();
        this.slotBits = shape.slotBits();
        this.slotsPerBucket = shape.slotsPerBucket();
        this.buckets = shape.buckets();
        this.chapterMask = (1L << chapterBits) - 1;
        this.slotMask = (1L << slotBits) - 1;
        this.sweepPeriod = (int) ((1L << chapterBits) - 1 - window);
        Check.that(sweepPeriod >= 1 && slotBits + 7 <= 64, "volume index window %d gives %d chapter bits", window, chapterBits);
        int count = (int) ((buckets + (1L << SEGMENT_SHIFT) - 1) >>> SEGMENT_SHIFT);
        segments = new byte[count][];
        for (int s = 0; s < count; s++) {
            long inSegment = Math.min(1L << SEGMENT_SHIFT, buckets - ((long) s << SEGMENT_SHIFT));
            segments[s] = new byte[(int) (inSegment * BUCKET_BYTES + SEGMENT_PADDING)];
        }
    }

    /** Chapter number bits for a window: enough that a dead entry has ≥ window/8 closes to be swept before wrapping. */
    static int chapterBits(int window) {
        long needed = (long) window + 1 + Math.max(1, window / 8);
        return 64 - Long.numberOfLeadingZeros(needed);
    }

    static long bucketsFor(long expectedEntries, int window) {
        int perBucket = (BUCKET_BYTES * 8) / (FP_BITS + chapterBits(window));
        long slots = (long) Math.ceil(expectedEntries / MAX_LOAD);
        return Math.max(2, (slots + perBucket - 1) / perBucket);
    }

    /** Exactly what the constructor allocates (array headers included), for sizing before allocating. */
    static long bytesFor(long expectedEntries, int window) {
        long buckets = bucketsFor(expectedEntries, window);
        long segments = (buckets + (1L << SEGMENT_SHIFT) - 1) >>> SEGMENT_SHIFT;
        return buckets * BUCKET_BYTES + segments * (SEGMENT_PADDING + 16) + 16;
    }

    long memoryBytes() {
        long total = 16;
        for (byte[] s : segments) total += s.length + 16;
        return total;
    }

    /** Entries dropped because both buckets and a cuckoo walk found no room (lost advice, counted for stats). */
    long dropped() { return dropped; }

    private static int fingerprint(BlockName n) {
        int fp = (int) (n.c() >>> (64 - FP_BITS));
        return fp == 0 ? 1 : fp;
    }

    private long firstBucket(BlockName n) { return Math.unsignedMultiplyHigh(n.b(), buckets); }

    /** The other bucket of an entry in bucket b: (h(fp) − b) mod buckets, its own inverse. */
    private long alt(long b, int fp) {
        long h = Math.unsignedMultiplyHigh(fp * 0x9E3779B97F4A7C15L, buckets);
        long r = h - b;
        return r < 0 ? r + buckets : r;
    }

    private long slot(long b, int i) {
        byte[] seg = segments[(int) (b >>> SEGMENT_SHIFT)];
        int bit = i * slotBits;
        int off = (int) (b & ((1L << SEGMENT_SHIFT) - 1)) * BUCKET_BYTES + (bit >>> 3);
        return ((long) LONG.get(seg, off) >>> (bit & 7)) & slotMask;
    }

    private void setSlot(long b, int i, long value) {
        byte[] seg = segments[(int) (b >>> SEGMENT_SHIFT)];
        int bit = i * slotBits;
        int off = (int) (b & ((1L << SEGMENT_SHIFT) - 1)) * BUCKET_BYTES + (bit >>> 3);
        int shift = bit & 7;
        long word = (long) LONG.get(seg, off);
        LONG.set(seg, off, (word & ~(slotMask << shift)) | (value << shift));
    }

    private long age(long value, long openChapter) { return (openChapter - value) & chapterMask; }

    private boolean live(long value, long openChapter) {
        long age = age(value, openChapter);
        return value != 0 && age >= 1 && age <= window;
    }

    /**
     * The newest chapter older than {@code below} with a live entry matching the name's bits, or -1. Callers walk
     * the candidates newest first by passing the previous answer as {@code below}; no allocation per lookup.
     */
    long newestCandidate(BlockName name, long openChapter, long below) {
        int fp = fingerprint(name);
        long b1 = firstBucket(name);
        long best = newestIn(b1, fp, openChapter, below, -1);
        long b2 = alt(b1, fp);
        return b2 == b1 ? best : newestIn(b2, fp, openChapter, below, best);
    }

    private long newestIn(long b, int fp, long openChapter, long below, long best) {
        for (int i = 0; i < slotsPerBucket; i++) {
            long v = slot(b, i);
            if ((v >>> chapterBits) != fp) continue;
            long age = age(v, openChapter);
            if (age < 1 || age > window) continue;
            long chapter = openChapter - age;
            if (chapter < below && chapter > best) best = chapter;
        }
        return best;
    }

    /**
     * Records that the name is in {@code chapter} (which must be live for {@code openChapter}). Entries are never
     * merged, even when two names share all their bits and chapter: {@link #move} then moves one and leaves the
     * other. Returns false when no room was found and one entry (possibly another name's) had to be dropped.
     */
    boolean put(BlockName name, long chapter, long openChapter) {
        checkLive(chapter, openChapter);
        int fp = fingerprint(name);
        long value = ((long) fp << chapterBits) | (chapter & chapterMask);
        long b1 = firstBucket(name);
        long b2 = alt(b1, fp);
        int free = freeSlot(b1, openChapter);
        if (free >= 0) { setSlot(b1, free, value); return true; }
        free = freeSlot(b2, openChapter);
        if (free >= 0) { setSlot(b2, free, value); return true; }
        long b = (next() & 1) == 0 ? b1 : b2;
        long v = value;
        for (int k = 0; k < MAX_KICKS; k++) {
            int i = (int) Long.remainderUnsigned(next(), slotsPerBucket);
            long victim = slot(b, i);
            setSlot(b, i, v);
            v = victim;
            b = alt(b, (int) (v >>> chapterBits));
            free = freeSlot(b, openChapter);
            if (free >= 0) { setSlot(b, free, v); return true; }
        }
        dropped++;
        return false;
    }

    /**
     * For a rebuild (chapters replayed newest first, so entries already present are newer): puts the entry unless
     * its bucket pair already holds two live entries with its fingerprint. Without the full names at hand the
     * replay cannot tell a name seen again from another name with the same bits; a name in many chapters would
     * otherwise crowd its two buckets with one entry per chapter. Skipping wrongly needs two other names with
     * the same bits in the pair (≈ (40/8191)² ≈ 2·10⁻⁵ of entries).
     */
    void putReplayed(BlockName name, long chapter, long openChapter) {
        int fp = fingerprint(name);
        long b1 = firstBucket(name);
        long b2 = alt(b1, fp);
        int same = sameFingerprint(b1, fp, openChapter) + (b2 == b1 ? 0 : sameFingerprint(b2, fp, openChapter));
        if (same < 2) put(name, chapter, openChapter);
    }

    private int sameFingerprint(long b, int fp, long openChapter) {
        int n = 0;
        for (int i = 0; i < slotsPerBucket; i++) {
            long v = slot(b, i);
            if ((v >>> chapterBits) == fp && live(v, openChapter)) n++;
        }
        return n;
    }

    /**
     * Moves the name's entry from chapter {@code from} to {@code to} (its record was posted again): one entry per
     * name, as in UDS, so a name posted in many chapters does not crowd its buckets. False when no such entry is
     * left (dropped, or {@code from} expired); the caller then puts a new one.
     */
    boolean move(BlockName name, long from, long to, long openChapter) {
        checkLive(to, openChapter);
        int fp = fingerprint(name);
        long old = ((long) fp << chapterBits) | (from & chapterMask);
        if (!live(old, openChapter)) return false;
        long moved = ((long) fp << chapterBits) | (to & chapterMask);
        long b1 = firstBucket(name);
        int i = indexOf(b1, old);
        if (i >= 0) { setSlot(b1, i, moved); return true; }
        long b2 = alt(b1, fp);
        i = indexOf(b2, old);
        if (i >= 0) { setSlot(b2, i, moved); return true; }
        return false;
    }

    /**
     * Removes the name's entry for {@code chapter} (its record there was compacted away); false when there is none
     * (the entry moved to a newer chapter, was dropped, or expired). Another name with the same bucket pair and
     * fingerprint in that chapter shares the entry's bits: the caller keeps the entry for it ({@link #pairKey}).
     */
    boolean remove(BlockName name, long chapter, long openChapter) {
        int fp = fingerprint(name);
        long value = ((long) fp << chapterBits) | (chapter & chapterMask);
        if (!live(value, openChapter)) return false;
        long b1 = firstBucket(name);
        int i = indexOf(b1, value);
        if (i >= 0) { setSlot(b1, i, 0); return true; }
        long b2 = alt(b1, fp);
        i = indexOf(b2, value);
        if (i >= 0) { setSlot(b2, i, 0); return true; }
        return false;
    }

    /** What the name's entries share with other names' (bucket pair and fingerprint): names with equal keys are told apart only by their records. */
    long pairKey(BlockName name) {
        int fp = fingerprint(name);
        long b1 = firstBucket(name);
        return (Math.min(b1, alt(b1, fp)) << FP_BITS) | fp;
    }

    private int indexOf(long b, long value) {
        for (int i = 0; i < slotsPerBucket; i++) if (slot(b, i) == value) return i;
        return -1;
    }

    private void checkLive(long chapter, long openChapter) {
        long age = openChapter - chapter;
        Check.that(age >= 1 && age <= window, "chapter %d is live for open chapter %d (window %d)", chapter, openChapter, window);
    }

    /** The first empty or dead slot of bucket b, or -1. */
    private int freeSlot(long b, long openChapter) {
        for (int i = 0; i < slotsPerBucket; i++) if (!live(slot(b, i), openChapter)) return i;
        return -1;
    }

    private long next() {
        rng ^= rng << 13;
        rng ^= rng >>> 7;
        rng ^= rng << 17;
        return rng;
    }

    /** Called once per chapter close, after the open chapter number advanced: clears dead entries ahead of the cursor. */
    void sweep(long openChapter) {
        long count = (buckets + sweepPeriod - 1) / sweepPeriod;
        for (long n = 0; n < count; n++) {
            for (int i = 0; i < slotsPerBucket; i++) {
                long v = slot(sweepCursor, i);
                if (v != 0 && !live(v, openChapter)) setSlot(sweepCursor, i, 0);
            }
            sweepCursor = sweepCursor + 1 == buckets ? 0 : sweepCursor + 1;
        }
    }

    long sweepCursor() { return sweepCursor; }

    void setSweepCursor(long cursor) {
        Check.that(cursor >= 0 && cursor < buckets, "sweep cursor %d within %d buckets", cursor, buckets);
        sweepCursor = cursor;
    }

    /**
     * The live entries of bucket b (slot values, in slot order) into {@code out}; returns their count. Dead
     * entries are left out: a save keeps only what can still answer. An empty bucket costs 8 word reads.
     */
    int liveEntries(long b, long openChapter, long[] out) {
        byte[] seg = segments[(int) (b >>> SEGMENT_SHIFT)];
        int base = (int) (b & ((1L << SEGMENT_SHIFT) - 1)) * BUCKET_BYTES;
        long any = 0;
        for (int w = 0; w < BUCKET_BYTES; w += 8) any |= (long) LONG.get(seg, base + w);
        if (any == 0) return 0;
        int n = 0;
        for (int i = 0; i < slotsPerBucket; i++) {
            long v = slot(b, i);
            if (live(v, openChapter)) out[n++] = v;
        }
        return n;
    }

    /** Puts {@code count} entries into slots 0.. of bucket b, which must be empty (loading a save into a clear table). */
    void setBucket(long b, long[] values, int count) {
        Check.that(count >= 1 && count <= slotsPerBucket, "%d entries for a bucket of %d slots", count, slotsPerBucket);
        for (int i = 0; i < slotsPerBucket; i++) Check.that(slot(b, i) == 0, "bucket %d is empty before a load", b);
        for (int i = 0; i < count; i++) {
            Check.that(values[i] != 0 && (values[i] & ~slotMask) == 0, "slot value %x fits %d bits", values[i], slotBits);
            setSlot(b, i, values[i]);
        }
    }

    void clear() {
        for (byte[] s : segments) Arrays.fill(s, (byte) 0);
        sweepCursor = 0;
    }
}
