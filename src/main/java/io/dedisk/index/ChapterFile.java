package io.dedisk.index;

import io.dedisk.DediskException.CorruptionException;
import io.dedisk.store.Fs;
import io.dedisk.util.Check;
import io.dedisk.util.Crc;
import java.io.IOException;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A closed chapter: its file's layout and header codec, how it is written from the open chapter, how it is read
 * back, and its in-memory summary (an instance of this class: header fields and the index page map, ~4 bytes per
 * 510 records, kept for every chapter in the window). One page's header, entries and searches are
 * {@link ChapterPage}'s; the offline check of a whole file is {@link ChapterVerifier}'s. Closed chapters are
 * immutable; a chapter leaves the window whole and its file is deleted.
 *
 * File {@code <dir>/chapter-<chapter number, 16 hex digits>}, little-endian, 4 KiB pages:
 * <pre>
 *   header pages (H):   0 u64 magic "DDSKCHAP"   8 u32 format version (2)   12 u32 record count n
 *                      16 u64+u64 index id      32 u64 chapter number
 *                      40 u64 max chunk id (no chunk id posted to the index before this chapter closed is larger)
 *                      48 u32 record pages P    52 u32 index pages Q       56 u32 header pages H
 *                      60 u32 CRC32C of [0, 60)
 *                      64 Q × u32 index page map (first key of each index page), then u32 CRC32C of the map;
 *                         zero to the end of page H−1
 *   index pages (Q):   file pages [H, H+Q): entries u64 (key << 32 | record page), sorted unsigned, 510 a page
 *   record pages (P):  file pages [H+Q, H+Q+P): records (a, b, c, d, chunk id: 5 × u64), 102 a page
 *   every index and record page starts with a 16-byte header ({@link ChapterPage})
 * </pre>
 * Records go to record pages in arrival order (UDS: temporal locality survives at page granularity, so a run of
 * duplicates reads consecutive record pages) and are sorted by full name (unsigned a, b, c, d) within a page. The
 * key of a name is its top 32 bits of a; the index pages map keys to record pages, so a lookup reads one index
 * page (chosen with the in-memory map) and one record page, verifying each page's CRC, kind, number and chapter.
 * Page counts are exact: page p of a kind holds min(per-page, n − p·per-page) entries.
 *
 * Written with {@link Fs#writeAtomically} (temp file, sync, rename, directory sync): a chapter file exists whole
 * and durable, or not at all. A chapter may hold fewer than the geometry's C records: closed full, then rewritten
 * without the records of dead chunks ({@link Compactor}), under the same number and name, so a summary belongs to
 * one version of the file: its {@link #cacheId} (unique in the process) keys its pages in the page cache, and the
 * owner swaps summary and file together. Threads: a summary is immutable apart from its dropped flag; the static
 * readers may run concurrently.
 */
final class ChapterFile {
    static final int PAGE = 4096;
    static final int PAGE_HEADER = 16;
    static final int RECORD_BYTES = 40;
    static final int RECORDS_PER_PAGE = (PAGE - PAGE_HEADER) / RECORD_BYTES;
    static final int ENTRIES_PER_INDEX_PAGE = (PAGE - PAGE_HEADER) / 8;
    static final int KIND_INDEX = 1;
    static final int KIND_RECORD = 2;
    static final long MAGIC = 0x504148434b534444L; // "DDSKCHAP" little-endian
    static final int VERSION = IndexHeader.VERSION;
    static final int HEADER_BYTES = 64;
    static final int MAX_RECORDS = 1 << 24;
    private static final String PREFIX = "chapter-";
    private static final VarHandle LONG = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle INT = MethodHandles.byteArrayViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN);

    final long number;
    final int records;
    final int recordPages;
    final int indexPages;
    final int headerPages;
    final long maxChunkId;
    /** First key of each index page, nondecreasing unsigned. */
    private final int[] firstKeys;
    private final AtomicBoolean dropped = new AtomicBoolean();
    /** Distinct for every summary made in this process: a rewritten chapter's pages never meet its old ones in a cache. */
    final long cacheId = NEXT_CACHE_ID.getAndIncrement();
    private static final java.util.concurrent.atomic.AtomicLong NEXT_CACHE_ID = new java.util.concurrent.atomic.AtomicLong();

    /** What a chapter is written from: records in arrival order (the open chapter, or the survivors of a compaction). */
    interface Records {
        int count();

        /** Word w (0..3 for a..d) of record r's name. */
        long word(int r, int w);

        long id(int r);

        /** Orders records as a chapter's record pages do ({@link ChapterPage#compareNames}). */
        default int compare(int r1, int r2) {
            return ChapterPage.compareNames(word(r1, 0), word(r1, 1), word(r1, 2), word(r1, 3), word(r2, 0), word(r2, 1), word(r2, 2), word(r2, 3));
        }
    }

    /** A chapter file's bytes, verified, and the summary they decode to. */
    record Image(ChapterFile summary, byte[] bytes) {}

    ChapterFile(long number, int records, long maxChunkId, int[] firstKeys) {
        Check.that(records >= 1 && records <= MAX_RECORDS, "chapter %d record count %d in [1, %d]", number, records, MAX_RECORDS);
        Check.that(firstKeys.length == pagesFor(records, ENTRIES_PER_INDEX_PAGE), "chapter %d index page map has %d pages", number, firstKeys.length);
        this.number = number;
        this.records = records;
        this.recordPages = pagesFor(records, RECORDS_PER_PAGE);
        this.indexPages = firstKeys.length;
        this.headerPages = headerPages(indexPages);
        this.maxChunkId = maxChunkId;
        this.firstKeys = firstKeys;
    }

    static int pagesFor(int entries, int perPage) { return (entries + perPage - 1) / perPage; }

    private static int headerPages(int indexPages) { return pagesFor(HEADER_BYTES + 4 * indexPages + 4, PAGE); }

    /** Memory held by a summary of a chapter of {@code records} records (object, map array). */
    static long bytesFor(int records) { return 64 + 16 + 4L * pagesFor(records, ENTRIES_PER_INDEX_PAGE); }

    long memoryBytes() { return bytesFor(records); }

    int filePages() { return headerPages + indexPages + recordPages; }

    int filePage(int kind, int page) { return kind == KIND_INDEX ? headerPages + page : headerPages + indexPages + page; }

    int firstKey(int indexPage) { return firstKeys[indexPage]; }

    /** The index page map (a copy). */
    int[] firstKeys() { return firstKeys.clone(); }

    boolean dropped() { return dropped.get(); }

    /** Marks the chapter unusable; true for the caller that dropped it (the one that logs). */
    boolean drop() { return dropped.compareAndSet(false, true); }

    static String fileName(String dir, long chapter) { return IndexFiles.fileName(dir, PREFIX, chapter); }

    /** The chapter number of a file name in the index directory, or -1 when it is not a chapter file. */
    static long parseFileName(String name) { return IndexFiles.parseFileName(name, PREFIX); }

    /** A name's chapter index key: the top 32 bits of its word a. */
    static int key(long a) { return (int) (a >>> 32); }

    static int key(BlockName n) { return key(n.a()); }

    // ---------------------------------------------------------------- writing

    /** Writes the open chapter's records as chapter {@code number}, durably; returns its summary. */
    static ChapterFile write(Fs fs, String dir, UUID indexId, long number, Records open, long maxChunkId) throws IOException {
        Image image = encode(indexId, number, open, maxChunkId);
        fs.writeAtomically(fileName(dir, number), image.bytes());
        return image.summary();
    }

    /** Encodes records (at least one) as chapter {@code number}, verified as a reader would verify it before it is written. */
    static Image encode(UUID indexId, long number, Records open, long maxChunkId) {
        int n = open.count();
        int[] order = new int[n];
        for (int i = 0; i < n; i++) order[i] = i;
        long[] entries = new long[n];
        int recordPages = pagesFor(n, RECORDS_PER_PAGE);
        for (int p = 0; p < recordPages; p++) {
            int from = p * RECORDS_PER_PAGE, to = Math.min(n, from + RECORDS_PER_PAGE);
            sortByName(open, order, from, to);
            for (int i = from; i < to; i++) entries[i] = ((long) key(open.word(order[i], 0)) << 32) | p;
        }
        // Sort unsigned: flip the sign bit around a signed sort.
        for (int i = 0; i < n; i++) entries[i] ^= Long.MIN_VALUE;
        Arrays.sort(entries);
        for (int i = 0; i < n; i++) entries[i] ^= Long.MIN_VALUE;
        int indexPages = pagesFor(n, ENTRIES_PER_INDEX_PAGE);
        int[] firstKeys = new int[indexPages];
        for (int q = 0; q < indexPages; q++) firstKeys[q] = (int) (entries[q * ENTRIES_PER_INDEX_PAGE] >>> 32);
        ChapterFile c = new ChapterFile(number, n, maxChunkId, firstKeys);

        byte[] file = new byte[c.filePages() * PAGE];
        ByteBuffer h = ByteBuffer.wrap(file).order(ByteOrder.LITTLE_ENDIAN);
        h.putLong(MAGIC).putInt(VERSION).putInt(n)
                .putLong(indexId.getMostSignificantBits()).putLong(indexId.getLeastSignificantBits())
                .putLong(number).putLong(maxChunkId).putInt(c.recordPages).putInt(c.indexPages).putInt(c.headerPages);
        h.putInt(Crc.of(file, 0, HEADER_BYTES - 4));
        for (int k : firstKeys) h.putInt(k);
        h.putInt(Crc.of(file, HEADER_BYTES, 4 * indexPages));
        for (int q = 0; q < indexPages; q++) {
            int base = c.filePage(KIND_INDEX, q) * PAGE;
            int from = q * ENTRIES_PER_INDEX_PAGE, to = Math.min(n, from + ENTRIES_PER_INDEX_PAGE);
            for (int i = from; i < to; i++) LONG.set(file, base + PAGE_HEADER + 8 * (i - from), entries[i]);
            ChapterPage.seal(file, base, KIND_INDEX, to - from, q, number);
        }
        for (int p = 0; p < c.recordPages; p++) {
            int base = c.filePage(KIND_RECORD, p) * PAGE;
            int from = p * RECORDS_PER_PAGE, to = Math.min(n, from + RECORDS_PER_PAGE);
            for (int i = from; i < to; i++) {
                int o = base + PAGE_HEADER + RECORD_BYTES * (i - from);
                for (int w = 0; w < 4; w++) LONG.set(file, o + 8 * w, open.word(order[i], w));
                LONG.set(file, o + 32, open.id(order[i]));
            }
            ChapterPage.seal(file, base, KIND_RECORD, to - from, p, number);
        }
        // Verify before write: what we are about to make durable decodes to the summary we return, page by page.
        String what = "chapter " + number + " (before write)";
        ChapterFile check = decodeHeader(file, indexId, number, file.length, what);
        Check.that(Arrays.equals(check.firstKeys, firstKeys) && check.records == n, "chapter %d encodes its own summary", number);
        c.verifyPages(file, what);
        return new Image(c, file);
    }

    /** Insertion sort of record indices [from, to) by full name: a page holds at most 102 records. */
    private static void sortByName(Records open, int[] order, int from, int to) {
        for (int i = from + 1; i < to; i++) {
            int r = order[i];
            int j = i - 1;
            while (j >= from && open.compare(order[j], r) > 0) {
                order[j + 1] = order[j];
                j--;
            }
            order[j + 1] = r;
        }
    }

    // ---------------------------------------------------------------- reading (all input untrusted)

    /** Reads and verifies the header and index page map of chapter {@code number}. */
    static ChapterFile readHeader(Fs fs, String dir, UUID indexId, long number) throws IOException {
        String name = fileName(dir, number);
        try (Fs.FileHandle h = fs.open(name, false)) {
            long size = h.size();
            byte[] head = new byte[HEADER_BYTES];
            h.readFully(0, ByteBuffer.wrap(head));
            byte[] all = new byte[headerPages(declaredIndexPages(head, name)) * PAGE];
            h.readFully(0, ByteBuffer.wrap(all));
            return decodeHeader(all, indexId, number, size, name);
        }
    }

    /** The index page count a header declares, bounded so a corrupt count cannot make us allocate gigabytes. */
    private static int declaredIndexPages(byte[] header, String what) {
        int q = (int) INT.get(header, 52);
        if (q < 1 || q > pagesFor(MAX_RECORDS, ENTRIES_PER_INDEX_PAGE)) {
            throw new CorruptionException(what + ": index page count expected in [1, " + pagesFor(MAX_RECORDS, ENTRIES_PER_INDEX_PAGE) + "], found " + Integer.toUnsignedString(q));
        }
        return q;
    }

    /** Decodes the header pages at the start of {@code bytes} (untrusted) of a file of {@code fileSize} bytes. */
    private static ChapterFile decodeHeader(byte[] bytes, UUID indexId, long number, long fileSize, String what) {
        if (bytes.length < HEADER_BYTES) throw new CorruptionException(what + ": header expected " + HEADER_BYTES + " bytes, found " + bytes.length);
        long magic = (long) LONG.get(bytes, 0);
        if (magic != MAGIC) throw new CorruptionException(String.format("%s: magic expected %016x (DDSKCHAP), found %016x (not a chapter file)", what, MAGIC, magic));
        int crc = (int) INT.get(bytes, 60), computed = Crc.of(bytes, 0, 60);
        if (crc != computed) throw new CorruptionException(String.format("%s: header CRC32C expected %08x, found %08x", what, computed, crc));
        int version = (int) INT.get(bytes, 8);
        if (version != VERSION) throw new CorruptionException(what + ": format version expected " + VERSION + " (the only one this dedisk reads), found " + version);
        UUID id = new UUID((long) LONG.get(bytes, 16), (long) LONG.get(bytes, 24));
        if (!id.equals(indexId)) throw new CorruptionException(what + ": index id expected " + indexId + ", found " + id + " (a chapter of another index)");
        long chapter = (long) LONG.get(bytes, 32);
        if (chapter != number) throw new CorruptionException(what + ": chapter number expected " + number + " (the file name), found " + chapter);
        int n = (int) INT.get(bytes, 12);
        if (n < 1 || n > MAX_RECORDS) throw new CorruptionException(what + ": record count expected in [1, " + MAX_RECORDS + "], found " + Integer.toUnsignedString(n));
        int p = (int) INT.get(bytes, 48), q = declaredIndexPages(bytes, what), hp = (int) INT.get(bytes, 56);
        if (p != pagesFor(n, RECORDS_PER_PAGE) || q != pagesFor(n, ENTRIES_PER_INDEX_PAGE) || hp != headerPages(q)) {
            throw new CorruptionException(what + ": record/index/header page counts expected " + pagesFor(n, RECORDS_PER_PAGE) + "/"
                    + pagesFor(n, ENTRIES_PER_INDEX_PAGE) + "/" + headerPages(q) + " for " + n + " records, found " + p + "/" + q + "/" + hp);
        }
        if (bytes.length < hp * PAGE) throw new CorruptionException(what + ": header pages expected " + hp * PAGE + " bytes, found " + bytes.length);
        int mapCrc = (int) INT.get(bytes, HEADER_BYTES + 4 * q), mapComputed = Crc.of(bytes, HEADER_BYTES, 4 * q);
        if (mapCrc != mapComputed) throw new CorruptionException(String.format("%s: index page map CRC32C expected %08x, found %08x", what, mapComputed, mapCrc));
        int[] firstKeys = new int[q];
        for (int i = 0; i < q; i++) {
            firstKeys[i] = (int) INT.get(bytes, HEADER_BYTES + 4 * i);
            if (i > 0 && Integer.compareUnsigned(firstKeys[i - 1], firstKeys[i]) > 0) throw new CorruptionException(what + ": index page map expected sorted, found key " + Integer.toUnsignedString(firstKeys[i]) + " after " + Integer.toUnsignedString(firstKeys[i - 1]) + " at " + i);
        }
        long expectedSize = (long) (hp + q + p) * PAGE;
        if (fileSize != expectedSize) throw new CorruptionException(what + ": file size expected " + expectedSize + " bytes, found " + fileSize);
        return new ChapterFile(number, n, (long) LONG.get(bytes, 40), firstKeys);
    }

    /** Reads and verifies one index or record page. */
    byte[] readPage(Fs fs, String dir, int kind, int page) throws IOException {
        String name = fileName(dir, number);
        byte[] bytes = readPages(fs, name, filePage(kind, page), 1);
        verifyPage(bytes, 0, kind, page, name);
        return bytes;
    }

    /** Reads the whole file and verifies every page (rebuilds). */
    byte[] readAll(Fs fs, String dir) throws IOException {
        String name = fileName(dir, number);
        byte[] file = readPages(fs, name, 0, filePages());
        verifyPages(file, name);
        return file;
    }

    /** {@code count} consecutive pages of the file {@code name} from file page {@code first}, as they are (unverified). */
    private static byte[] readPages(Fs fs, String name, int first, int count) throws IOException {
        byte[] bytes = new byte[count * PAGE];
        try (Fs.FileHandle h = fs.open(name, false)) {
            h.readFully((long) first * PAGE, ByteBuffer.wrap(bytes));
        }
        return bytes;
    }

    /** Verifies every index and record page of a whole file image (CorruptionException at the first bad one). */
    private void verifyPages(byte[] file, String name) {
        for (int q = 0; q < indexPages; q++) verifyPage(file, filePage(KIND_INDEX, q) * PAGE, KIND_INDEX, q, name);
        for (int p = 0; p < recordPages; p++) verifyPage(file, filePage(KIND_RECORD, p) * PAGE, KIND_RECORD, p, name);
    }

    /** The number of records in record page p of a whole file image verified by {@link #readAll}. */
    int recordsIn(byte[] file, int p) { return ChapterPage.count(file, filePage(KIND_RECORD, p) * PAGE); }

    /** Byte offset in a whole file image of record i of record page p (5 × u64: a, b, c, d, chunk id). */
    int recordOffset(int p, int i) { return filePage(KIND_RECORD, p) * PAGE + PAGE_HEADER + RECORD_BYTES * i; }

    /** Reads and verifies all index pages (the chapter index), one array per page: the sparse cache's form. */
    byte[][] readIndexPages(Fs fs, String dir) throws IOException {
        String name = fileName(dir, number);
        byte[] all = readPages(fs, name, filePage(KIND_INDEX, 0), indexPages);
        byte[][] pages = new byte[indexPages][];
        for (int q = 0; q < indexPages; q++) {
            verifyPage(all, q * PAGE, KIND_INDEX, q, name);
            pages[q] = Arrays.copyOfRange(all, q * PAGE, (q + 1) * PAGE);
        }
        return pages;
    }

    /** Calls {@code each} with every record name of a whole file read by {@link #readAll}. */
    void forEachName(byte[] file, java.util.function.Consumer<BlockName> each) {
        for (int p = 0; p < recordPages; p++) {
            int count = recordsIn(file, p);
            for (int i = 0; i < count; i++) each.accept(ChapterPage.recordName(file, recordOffset(p, i)));
        }
    }

    /** Verifies page {@code page} of a kind of this chapter, at {@code base} of {@code bytes} ({@link ChapterPage#verify}). */
    void verifyPage(byte[] bytes, int base, int kind, int page, String what) {
        int perPage = kind == KIND_INDEX ? ENTRIES_PER_INDEX_PAGE : RECORDS_PER_PAGE;
        ChapterPage.verify(bytes, base, kind, page, number, Math.min(perPage, records - page * perPage), recordPages, what);
    }

    // ---------------------------------------------------------------- searching verified pages

    /** First index page that may hold the key, or -1 when none can: candidates run while {@link #indexPageMayHold}. */
    int firstIndexPage(int key) {
        int lo = 0, hi = indexPages;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (Integer.compareUnsigned(firstKeys[mid], key) < 0) lo = mid + 1; else hi = mid;
        }
        // Page lo−1 starts below the key and may end with it; pages before it end below the key.
        if (lo > 0) return lo - 1;
        return firstKeys[0] == key ? 0 : -1;
    }

    /** Whether index page q (≥ the first candidate) can still hold the key. */
    boolean indexPageMayHold(int q, int key) { return q < indexPages && Integer.compareUnsigned(firstKeys[q], key) <= 0; }
}
