package io.dedisk.index;

import static io.dedisk.index.ChapterFile.KIND_INDEX;
import static io.dedisk.index.ChapterFile.KIND_RECORD;
import static io.dedisk.index.ChapterFile.PAGE;
import static io.dedisk.index.ChapterFile.PAGE_HEADER;
import static io.dedisk.index.ChapterFile.RECORD_BYTES;

import io.dedisk.DediskException.CorruptionException;
import io.dedisk.util.Crc;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/**
 * One 4 KiB index or record page of a chapter file ({@link ChapterFile} has the file's layout and the page
 * counts): its header, sealed by {@link #seal} and checked by {@link #verify}, the entries read from it, and the
 * binary searches a lookup runs on a verified page. Works on a page alone ({@code base} 0) or inside a whole file
 * image ({@code base} its byte offset there).
 * <pre>
 *   page header (16 bytes): 0 u32 CRC32C of page bytes [4, 4096)   4 u16 kind (1 index, 2 record)
 *                           6 u16 entry count   8 u32 page number within its kind   12 u32 chapter number, low 32 bits
 *   index page entries:     u64 (key << 32 | record page), sorted unsigned, 510 a page
 *   record page entries:    (a, b, c, d, chunk id: 5 × u64), sorted by name ({@link #compareNames}), 102 a page
 * </pre>
 * Invariant: the searches read only pages {@link #verify} accepted (their order and targets were checked, never
 * trusted). Threads: stateless, static; pages are not changed once verified.
 */
final class ChapterPage {
    private static final VarHandle LONG = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle INT = MethodHandles.byteArrayViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle SHORT = MethodHandles.byteArrayViewVarHandle(short[].class, ByteOrder.LITTLE_ENDIAN);

    private ChapterPage() {}

    /** Writes a page header and its CRC (tests re-seal pages they alter, to reach the checks behind the CRC). */
    static void seal(byte[] file, int base, int kind, int count, int page, long chapter) {
        SHORT.set(file, base + 4, (short) kind);
        SHORT.set(file, base + 6, (short) count);
        INT.set(file, base + 8, page);
        INT.set(file, base + 12, (int) chapter);
        INT.set(file, base, Crc.of(file, base + 4, PAGE - 4));
    }

    /**
     * Verifies the page at {@code base} (untrusted) as page {@code page} of its kind in chapter {@code chapter},
     * holding {@code expected} entries, whose index entries point below {@code recordPages}: CRC, header, count,
     * order, targets. CorruptionException at the first problem, saying expected and found.
     */
    static void verify(byte[] bytes, int base, int kind, int page, long chapter, int expected, int recordPages, String what) {
        int crc = (int) INT.get(bytes, base), computed = Crc.of(bytes, base + 4, PAGE - 4);
        String where = what + " " + (kind == KIND_INDEX ? "index" : "record") + " page " + page;
        if (crc != computed) throw new CorruptionException(String.format("%s: CRC32C expected %08x, found %08x", where, computed, crc));
        int k = (short) SHORT.get(bytes, base + 4);
        int no = (int) INT.get(bytes, base + 8), ch = (int) INT.get(bytes, base + 12);
        if (k != kind || no != page || ch != (int) chapter) {
            throw new CorruptionException(where + ": (kind, page, chapter low bits) expected (" + kind + ", " + page + ", " + (int) chapter + "), found (" + k + ", " + no + ", " + ch + ") (misplaced page)");
        }
        if (count(bytes, base) != expected) throw new CorruptionException(where + ": entry count expected " + expected + ", found " + count(bytes, base));
        // Binary searches below rely on the order; check it once per read rather than trust it.
        for (int i = 1; i < expected; i++) {
            BlockName n = kind == KIND_RECORD ? recordName(bytes, base, i) : null;
            boolean sorted = kind == KIND_INDEX
                    ? Long.compareUnsigned(indexEntry(bytes, base, i - 1), indexEntry(bytes, base, i)) <= 0
                    : compareRecord(bytes, base, i - 1, n.a(), n.b(), n.c(), n.d()) < 0;
            if (!sorted) throw new CorruptionException(where + ": entries expected sorted, found entry " + i + " out of order");
        }
        if (kind == KIND_INDEX) {
            for (int i = 0; i < expected; i++) {
                int target = (int) indexEntry(bytes, base, i);
                if (target < 0 || target >= recordPages) throw new CorruptionException(where + ": entry " + i + ": record page expected in [0, " + recordPages + "), found " + target);
            }
        }
    }

    /** The entry count of a page at {@code base} (0 for a page on its own). */
    static int count(byte[] page, int base) { return (short) SHORT.get(page, base + 6) & 0xffff; }

    /** Entry i of the index page at {@code base}: key << 32 | record page. */
    static long indexEntry(byte[] page, int base, int i) { return (long) LONG.get(page, base + PAGE_HEADER + 8 * i); }

    private static BlockName recordName(byte[] page, int base, int i) { return recordName(page, base + PAGE_HEADER + RECORD_BYTES * i); }

    /** The name of the record at byte {@code offset} of a page or file image (words a..d, see {@link #recordWord}). */
    static BlockName recordName(byte[] file, int offset) {
        return new BlockName(recordWord(file, offset, 0), recordWord(file, offset, 1), recordWord(file, offset, 2), recordWord(file, offset, 3));
    }

    /** Word w of the record at a {@link ChapterFile#recordOffset} (0..3: the name's a..d, 4: the chunk id). */
    static long recordWord(byte[] file, int offset, int w) { return (long) LONG.get(file, offset + 8 * w); }

    /** The order of names within a record page: unsigned a, then b, c, d. */
    static int compareNames(long a1, long b1, long c1, long d1, long a2, long b2, long c2, long d2) {
        int c = Long.compareUnsigned(a1, a2);
        if (c != 0) return c;
        c = Long.compareUnsigned(b1, b2);
        if (c != 0) return c;
        c = Long.compareUnsigned(c1, c2);
        return c != 0 ? c : Long.compareUnsigned(d1, d2);
    }

    /** Record i of the page at {@code base} compared with the name (a, b, c, d). */
    private static int compareRecord(byte[] page, int base, int i, long a, long b, long c, long d) {
        int o = base + PAGE_HEADER + RECORD_BYTES * i;
        return compareNames((long) LONG.get(page, o), (long) LONG.get(page, o + 8), (long) LONG.get(page, o + 16), (long) LONG.get(page, o + 24), a, b, c, d);
    }

    /** Position of the first entry with the key in a verified index page, or the entry count when none. */
    static int firstEntry(byte[] page, int key) {
        int lo = 0, hi = count(page, 0);
        long target = (long) key << 32;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (Long.compareUnsigned(indexEntry(page, 0, mid), target) < 0) lo = mid + 1; else hi = mid;
        }
        return lo;
    }

    /** The record page of entry i when its key is {@code key}, else -1 (past the key's run or the page's end). */
    static int recordPageAt(byte[] page, int i, int key) {
        if (i >= count(page, 0)) return -1;
        long e = indexEntry(page, 0, i);
        return (int) (e >>> 32) == key ? (int) e : -1;
    }

    /** The chunk id of the name in a verified record page, or {@link DedupIndex#NONE}. */
    static long findRecord(byte[] page, BlockName name) {
        int lo = 0, hi = count(page, 0) - 1;
        while (lo <= hi) {
            int mid = (lo + hi) >>> 1;
            int c = compareRecord(page, 0, mid, name.a(), name.b(), name.c(), name.d());
            if (c == 0) return (long) LONG.get(page, PAGE_HEADER + RECORD_BYTES * mid + 32);
            if (c < 0) lo = mid + 1; else hi = mid - 1;
        }
        return DedupIndex.NONE;
    }
}
