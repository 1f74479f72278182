package io.dedisk.index;

import static io.dedisk.index.ChapterFile.KIND_INDEX;
import static io.dedisk.index.ChapterFile.KIND_RECORD;
import static io.dedisk.index.ChapterFile.PAGE;
import static io.dedisk.index.ChapterFile.PAGE_HEADER;
import static io.dedisk.index.ChapterFile.RECORD_BYTES;

import io.dedisk.DediskException.CorruptionException;
import io.dedisk.store.Fs;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.UUID;
import java.util.function.Consumer;

/**
 * The offline check of one chapter file ({@link ChapterFile}, {@code chapter-<n>}), for {@link IndexVerifier}
 * ({@code dedisk check}): where a lookup stops at the first bad page and drops the chapter, this goes on and
 * reports every problem it finds (at most {@link #MAX_PROBLEMS_PER_FILE} listed), including those that only show
 * across pages. It reads one page at a time and changes nothing.
 *
 * Threads: stateless, static; runs on the caller's thread, with no index open.
 */
final class ChapterVerifier {
    private ChapterVerifier() {}

    /** Problems reported per chapter file at most, so one ruined file does not flood a report. */
    static final int MAX_PROBLEMS_PER_FILE = 8;

    /**
     * Verifies a whole chapter file page by page, reading one page at a time (for {@link IndexVerifier}): the
     * header and index page map as {@link ChapterFile#readHeader} does, every page as a lookup does, and across pages what no
     * single page shows: each index page starts with the key the map gives it, index entries are sorted across
     * pages, every record's chunk id is in [1, the header's max chunk id], and the index entries are exactly the
     * (key, record page) pairs of the records (compared as multiset hashes). Each problem is a message saying
     * expected and found, handed to {@code problems}; returns the summary, or null when the header cannot be
     * trusted (then nothing else was checked).
     */
    static ChapterFile verify(Fs fs, String dir, UUID indexId, long number, int maxRecords, Consumer<String> problems) throws IOException {
        ChapterFile c;
        try {
            c = ChapterFile.readHeader(fs, dir, indexId, number);
        } catch (CorruptionException e) {
            problems.accept(e.getMessage());
            return null;
        }
        String name = ChapterFile.fileName(dir, number);
        int[] reported = {0};
        Consumer<String> report = m -> {
            if (reported[0]++ < MAX_PROBLEMS_PER_FILE) problems.accept(m);
        };
        if (c.records > maxRecords) report.accept(name + ": record count expected at most " + maxRecords + " (a chapter of this index), found " + c.records);
        boolean pagesOk = true;
        long indexHash = 0, recordHash = 0, previousLast = 0;
        boolean havePrevious = false;
        byte[] page = new byte[PAGE];
        try (Fs.FileHandle h = fs.open(name, false)) {
            for (int q = 0; q < c.indexPages; q++) {
                if (!readVerified(h, c, KIND_INDEX, q, page, name, report)) {
                    pagesOk = false;
                    havePrevious = false;
                    continue;
                }
                int n = ChapterPage.count(page, 0);
                long first = ChapterPage.indexEntry(page, 0, 0), last = ChapterPage.indexEntry(page, 0, n - 1);
                if ((int) (first >>> 32) != c.firstKey(q)) {
                    report.accept(name + " index page " + q + ": first key expected " + Integer.toUnsignedString(c.firstKey(q))
                            + " (the header's index page map), found " + Long.toUnsignedString(first >>> 32));
                }
                if (havePrevious && Long.compareUnsigned(previousLast, first) > 0) {
                    report.accept(name + " index page " + q + ": entries expected sorted across pages, found first entry "
                            + Long.toUnsignedString(first, 16) + " below the previous page's last " + Long.toUnsignedString(previousLast, 16));
                }
                previousLast = last;
                havePrevious = true;
                for (int i = 0; i < n; i++) indexHash += mix(ChapterPage.indexEntry(page, 0, i));
            }
            for (int p = 0; p < c.recordPages; p++) {
                if (!readVerified(h, c, KIND_RECORD, p, page, name, report)) {
                    pagesOk = false;
                    continue;
                }
                int n = ChapterPage.count(page, 0);
                for (int i = 0; i < n; i++) {
                    int o = PAGE_HEADER + RECORD_BYTES * i;
                    long id = ChapterPage.recordWord(page, o, 4);
                    if (id < 1 || id > c.maxChunkId) {
                        report.accept(name + " record page " + p + " record " + i + ": chunk id expected in [1, " + c.maxChunkId + "] (the header's max), found " + id);
                    }
                    recordHash += mix(((long) ChapterFile.key(ChapterPage.recordWord(page, o, 0)) << 32) | p);
                }
            }
        }
        if (pagesOk && indexHash != recordHash) {
            report.accept(name + ": index entries expected to be the records' (key, record page) pairs, found another set (hash "
                    + Long.toHexString(recordHash) + " against " + Long.toHexString(indexHash) + ")");
        }
        if (reported[0] > MAX_PROBLEMS_PER_FILE) problems.accept(name + ": further problems expected none, found " + (reported[0] - MAX_PROBLEMS_PER_FILE) + " more (not listed)");
        return c;
    }

    /** Reads page {@code number} of a kind into {@code page} and verifies it as a lookup would; false (reported) when it fails. */
    private static boolean readVerified(Fs.FileHandle h, ChapterFile c, int kind, int number, byte[] page, String name, Consumer<String> report)
            throws IOException {
        h.readFully((long) c.filePage(kind, number) * PAGE, ByteBuffer.wrap(page));
        try {
            c.verifyPage(page, 0, kind, number, name);
            return true;
        } catch (CorruptionException e) {
            report.accept(e.getMessage());
            return false;
        }
    }

    /** splitmix64's finalizer: a multiset hash is the sum of mix(entry) over its entries. */
    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
        z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
        return z ^ (z >>> 31);
    }
}
