package io.dedisk.index;

import io.dedisk.util.Check;
import io.dedisk.util.Sizes;
import java.util.Locale;

/**
 * The shape of a UDS-style index, derived from its {@link IndexConfig} by {@link #of} and stored in its header.
 *
 * <ul>
 * <li>{@code chapters} N: chapters in the window, the open one included; N−1 closed chapters are kept.
 * <li>{@code chapterRecords} C: records per chapter. The window is N·C records.
 * <li>{@code denseChapters} D: the newest closed chapters whose every name has a volume index entry (N−1 when
 *     dense). In sparse mode the older N−1−D chapters keep entries for hook names only (1 in {@link #HOOK_RATE}).
 * <li>{@code pageCachePages}, {@code sparseCacheChapters}: cache bounds.
 * <li>{@code memoryBytes}: the budget; {@link #requiredBytes} (everything the index can hold) never exceeds it.
 * </ul>
 *
 * Formulas ({@link #of}): page cache = M/16 (at most 1 GiB) in 4 KiB pages; N = 1024 dense, 10240 sparse with
 * D = N/20 and a 7-chapter sparse cache (UDS's figures); C = the largest value for which everything fits in M
 * ({@link #required}). If C would exceed 2^24 (huge memory), N grows instead so chapters stay ≤ 640 MiB on disk.
 * Volume index entries cost (13 + chapter bits) bits in 64-byte buckets at ≤ 95 % load: ≈ 3.2 B per dense entry.
 *
 * Invariants (constructor): the shape is self-consistent and fits the budget.
 */
record Geometry(boolean sparse, int chapters, int denseChapters, int chapterRecords, int pageCachePages,
                int sparseCacheChapters, long memoryBytes) {
    static final int HOOK_RATE = 32;
    static final int DENSE_CHAPTERS = 1024;
    static final int SPARSE_CHAPTERS = 10240;
    static final int SPARSE_DENSE_FRACTION = 20;
    static final int SPARSE_CACHE_CHAPTERS = 7;
    /** Smallest useful chapter: the 16 MiB minimum gives ≥ 4 Ki records, so any config from IndexConfig meets it. */
    static final int MIN_CONFIG_RECORDS = 1024;

    Geometry {
        String problem = problem(sparse, chapters, denseChapters, chapterRecords, pageCachePages, sparseCacheChapters, memoryBytes);
        Check.that(problem == null, "geometry: %s", problem);
    }

    /** What is wrong with a shape, or null: shared by the constructor and the header decoder (untrusted input). */
    static String problem(boolean sparse, int chapters, int denseChapters, int chapterRecords, int pageCachePages,
                          int sparseCacheChapters, long memoryBytes) {
        if (chapters < 2 || chapters > Integer.MAX_VALUE / 2) return chapters + " chapters (expected ≥ 2)";
        if (chapterRecords < 1 || chapterRecords > ChapterFile.MAX_RECORDS) return chapterRecords + " records per chapter (expected 1.." + ChapterFile.MAX_RECORDS + ")";
        if (sparse ? denseChapters < 1 || denseChapters >= chapters - 1 || sparseCacheChapters < 1
                   : denseChapters != chapters - 1 || sparseCacheChapters != 0) {
            return (sparse ? "sparse" : "dense") + " with " + denseChapters + " dense chapters of " + chapters + " and a sparse cache of " + sparseCacheChapters;
        }
        if (pageCachePages < 1) return "page cache of " + pageCachePages + " pages";
        long required = required(sparse, chapters, denseChapters, chapterRecords, pageCachePages, sparseCacheChapters);
        if (required > memoryBytes) return "needs " + required + " bytes, budget " + memoryBytes;
        return null;
    }

    static boolean isHook(BlockName n) { return (n.d() & (HOOK_RATE - 1)) == 0; }

    /** The geometry an operator's configuration gets. */
    static Geometry of(IndexConfig config) {
        long m = config.memoryBytes();
        boolean sparse = config.sparse();
        int pages = (int) Math.max(16, Math.min(m / 16, 1L << 30) / PageCache.PAGE_COST);
        int cache = sparse ? SPARSE_CACHE_CHAPTERS : 0;
        long n = sparse ? SPARSE_CHAPTERS : DENSE_CHAPTERS;
        for (int round = 0; ; round++) {
            Check.that(round < 8 && n < Integer.MAX_VALUE / 2, "geometry for %s converges", config);
            int d = sparse ? (int) n / SPARSE_DENSE_FRACTION : (int) n - 1;
            long lo = 0, hi = Integer.MAX_VALUE / 2;
            while (lo < hi) {
                long mid = (lo + hi + 1) >>> 1;
                if (required(sparse, (int) n, d, (int) mid, pages, cache) <= m) lo = mid; else hi = mid - 1;
            }
            if (lo <= ChapterFile.MAX_RECORDS) {
                Check.that(lo >= MIN_CONFIG_RECORDS, "%s gives %d records per chapter (≥ %d)", config, lo, MIN_CONFIG_RECORDS);
                return new Geometry(sparse, (int) n, d, (int) lo, pages, cache, m);
            }
            n = (n * lo + ChapterFile.MAX_RECORDS - 1) / ChapterFile.MAX_RECORDS;
            if (sparse) n = (n + SPARSE_DENSE_FRACTION - 1) / SPARSE_DENSE_FRACTION * SPARSE_DENSE_FRACTION;
        }
    }

    /** An explicit shape with exactly the memory it needs (tests use small ones to reach expiry quickly). */
    static Geometry sized(boolean sparse, int chapters, int denseChapters, int chapterRecords, int pageCachePages, int sparseCacheChapters) {
        return new Geometry(sparse, chapters, denseChapters, chapterRecords, pageCachePages, sparseCacheChapters,
                required(sparse, chapters, denseChapters, chapterRecords, pageCachePages, sparseCacheChapters));
    }

    /** Everything the index can hold at most: volume index tables, open chapter, chapter summaries, caches. */
    static long required(boolean sparse, int chapters, int denseChapters, int chapterRecords, int pageCachePages, int sparseCacheChapters) {
        long total = VolumeIndex.bytesFor(fullTableEntries(sparse, denseChapters, chapterRecords), denseChapters)
                + OpenChapter.bytesFor(chapterRecords)
                + ChapterRing.bytesFor(chapters, chapterRecords)
                + PageCache.bytesFor(pageCachePages);
        if (sparse) {
            total += VolumeIndex.bytesFor(hookTableEntries(chapters, chapterRecords), chapters - 1)
                    + SparseCache.bytesFor(sparseCacheChapters, chapterRecords);
        }
        return total;
    }

    /** Most live entries of the full table: every name of the newest D chapters (non-hooks only when sparse). */
    private static long fullTableEntries(boolean sparse, int denseChapters, int chapterRecords) {
        long all = (long) denseChapters * chapterRecords;
        return sparse ? withSlack(all * (HOOK_RATE - 1.0) / HOOK_RATE) : all;
    }

    /** Most live entries of the hook table: the hooks of every closed chapter. */
    private static long hookTableEntries(int chapters, int chapterRecords) {
        return withSlack((double) (chapters - 1) * chapterRecords / HOOK_RATE);
    }

    /** A sampled count exceeds its mean by more than 4 standard deviations with negligible probability. */
    private static long withSlack(double mean) { return (long) Math.ceil(mean + 4 * Math.sqrt(mean) + 1); }

    long fullTableEntries() { return fullTableEntries(sparse, denseChapters, chapterRecords); }

    long hookTableEntries() { return hookTableEntries(chapters, chapterRecords); }

    long requiredBytes() { return required(sparse, chapters, denseChapters, chapterRecords, pageCachePages, sparseCacheChapters); }

    long windowEntries() { return (long) chapters * chapterRecords; }

    int closedChapters() { return chapters - 1; }

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "%s %s: %d chapters × %d records = window %d%s, page cache %d pages%s",
                Sizes.format(memoryBytes), sparse ? "sparse" : "dense", chapters, chapterRecords, windowEntries(),
                sparse ? " (newest " + denseChapters + " chapters dense)" : "", pageCachePages,
                sparse ? ", sparse cache " + sparseCacheChapters + " chapters" : "");
    }
}
