package io.dedisk.index;

import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.DediskException.CorruptionException;
import io.dedisk.store.Fs;
import io.dedisk.store.LocalFs;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.UUID;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ChapterFileTest {
    static final UUID ID = UUID.randomUUID();
    @TempDir Path tmp;

    /** Searches a chapter the way the index does, page by page. */
    static long search(ChapterFile c, Fs fs, BlockName n) throws IOException {
        int key = ChapterFile.key(n);
        for (int q = c.firstIndexPage(key); q >= 0 && c.indexPageMayHold(q, key); q++) {
            byte[] ip = c.readPage(fs, "ix", ChapterFile.KIND_INDEX, q);
            for (int i = ChapterPage.firstEntry(ip, key), p; (p = ChapterPage.recordPageAt(ip, i, key)) >= 0; i++) {
                long id = ChapterPage.findRecord(c.readPage(fs, "ix", ChapterFile.KIND_RECORD, p), n);
                if (id != DedupIndex.NONE) return id;
            }
        }
        return DedupIndex.NONE;
    }

    @Test
    void writtenChapterReadsBackAndFindsEveryRecord() throws IOException {
        Fs fs = new LocalFs(tmp);
        fs.mkdirs("ix");
        SplittableRandom r = new SplittableRandom(1);
        OpenChapter open = new OpenChapter(3000);
        List<BlockName> names = new ArrayList<>();
        // 1200 names share their key (top 32 bits of a): their index entries span three index pages.
        for (int i = 0; i < 3000; i++) {
            long a = i < 1200 ? (0xCAFEBABEL << 32) | (r.nextLong() >>> 32) : r.nextLong();
            BlockName n = new BlockName(a, r.nextLong(), r.nextLong(), r.nextLong());
            names.add(n);
            open.add(n, 100 + i, -1);
        }
        ChapterFile written = ChapterFile.write(fs, "ix", ID, 42, open, 5000);
        ChapterFile c = ChapterFile.readHeader(fs, "ix", ID, 42);
        assertEquals(3000, c.records);
        assertEquals(5000, c.maxChunkId);
        assertEquals(written.indexPages, c.indexPages);
        assertEquals(ChapterFile.pagesFor(3000, ChapterFile.RECORDS_PER_PAGE), c.recordPages);
        for (int i = 0; i < names.size(); i++) assertEquals(100 + i, search(c, fs, names.get(i)), "record " + i);
        BlockName n = names.get(7);
        assertEquals(DedupIndex.NONE, search(c, fs, new BlockName(n.a(), n.b(), n.c(), n.d() + 1)), "same key, other name");
        assertEquals(DedupIndex.NONE, search(c, fs, new BlockName(r.nextLong(), 1, 2, 3)));
        List<BlockName> all = new ArrayList<>();
        c.forEachName(c.readAll(fs, "ix"), all::add);
        assertEquals(3000, all.size());
        assertEquals(c.indexPages, c.readIndexPages(fs, "ix").length);
    }

    /** Writes {@code records} random names (chunk ids 1..records, the max) as chapter {@code number} in "ix"; returns its file. */
    private static byte[] writeRandomChapter(Fs fs, long seed, int records, long number) throws IOException {
        fs.mkdirs("ix");
        OpenChapter open = new OpenChapter(records);
        SplittableRandom r = new SplittableRandom(seed);
        for (int i = 0; i < records; i++) open.add(new BlockName(r.nextLong(), r.nextLong(), r.nextLong(), r.nextLong()), 1 + i, -1);
        ChapterFile.write(fs, "ix", ID, number, open, records);
        return fs.readAll(ChapterFile.fileName("ix", number));
    }

    @Test
    void damageAnywhereIsDetected() throws IOException {
        Fs fs = new LocalFs(tmp);
        byte[] good = writeRandomChapter(fs, 2, 300, 7);
        String name = ChapterFile.fileName("ix", 7);
        ChapterFile c = ChapterFile.readHeader(fs, "ix", ID, 7);
        int[] offsets = {3, 20, 50, ChapterFile.HEADER_BYTES + 1, ChapterFile.PAGE * c.filePage(ChapterFile.KIND_INDEX, 0) + 40,
                ChapterFile.PAGE * c.filePage(ChapterFile.KIND_RECORD, 2) + 8, good.length - 1};
        for (int off : offsets) {
            byte[] bad = good.clone();
            bad[off] ^= 0x08;
            fs.writeAtomically(name, bad);
            assertThrows(CorruptionException.class, () -> ChapterFile.readHeader(fs, "ix", ID, 7).readAll(fs, "ix"), "flip at " + off);
        }
        fs.writeAtomically(name, java.util.Arrays.copyOf(good, good.length - ChapterFile.PAGE));
        assertThrows(CorruptionException.class, () -> ChapterFile.readHeader(fs, "ix", ID, 7), "truncated");
        fs.writeAtomically(name, good);
        assertThrows(CorruptionException.class, () -> ChapterFile.readHeader(fs, "ix", UUID.randomUUID(), 7), "another index");
        fs.rename(name, ChapterFile.fileName("ix", 8));
        assertThrows(CorruptionException.class, () -> ChapterFile.readHeader(fs, "ix", ID, 8), "renamed");
        // A record page copied over another one (a misdirected write) fails its page number check.
        byte[] misplaced = good.clone();
        int p0 = ChapterFile.PAGE * c.filePage(ChapterFile.KIND_RECORD, 0), p1 = ChapterFile.PAGE * c.filePage(ChapterFile.KIND_RECORD, 1);
        System.arraycopy(good, p0, misplaced, p1, ChapterFile.PAGE);
        fs.writeAtomically(name, misplaced);
        CorruptionException e = assertThrows(CorruptionException.class, () -> c.readPage(fs, "ix", ChapterFile.KIND_RECORD, 1));
        assertTrue(e.getMessage().contains("misplaced"), e.getMessage());
        assertEquals(1, c.readPage(fs, "ix", ChapterFile.KIND_RECORD, 0).length / ChapterFile.PAGE);
    }

    /** Damage behind valid page CRCs: only the whole-file verification sees it. */
    @Test
    void verifyFindsWhatNoSinglePageShows() throws IOException {
        Fs fs = new LocalFs(tmp);
        byte[] good = writeRandomChapter(fs, 3, 1200, 9);
        String name = ChapterFile.fileName("ix", 9);
        ChapterFile c = ChapterFile.readHeader(fs, "ix", ID, 9);
        List<String> problems = new ArrayList<>();
        assertNotNull(ChapterVerifier.verify(fs, "ix", ID, 9, 1200, problems::add));
        assertEquals(List.of(), problems, "a good chapter");

        // An index entry pointing at another record page (still in range, still sorted: the last entry of page 0).
        byte[] bad = good.clone();
        int ip = c.filePage(ChapterFile.KIND_INDEX, 0) * ChapterFile.PAGE;
        int last = ChapterFile.ENTRIES_PER_INDEX_PAGE - 1, at = ip + ChapterFile.PAGE_HEADER + 8 * last;
        ByteBuffer b = ByteBuffer.wrap(bad).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        long e = b.getLong(at);
        b.putLong(at, (e & ~0xffffffffL) | (((int) e + 1) % c.recordPages));
        ChapterPage.seal(bad, ip, ChapterFile.KIND_INDEX, ChapterFile.ENTRIES_PER_INDEX_PAGE, 0, 9);
        fs.writeAtomically(name, bad);
        problems.clear();
        ChapterVerifier.verify(fs, "ix", ID, 9, 1200, problems::add);
        assertEquals(1, problems.size(), problems.toString());
        assertTrue(problems.getFirst().contains("index entries expected to be the records' (key, record page) pairs"), problems.toString());

        // A chunk id above the header's max chunk id.
        bad = good.clone();
        int rp = c.filePage(ChapterFile.KIND_RECORD, 3) * ChapterFile.PAGE;
        ByteBuffer.wrap(bad).order(java.nio.ByteOrder.LITTLE_ENDIAN).putLong(rp + ChapterFile.PAGE_HEADER + 32, 5000);
        ChapterPage.seal(bad, rp, ChapterFile.KIND_RECORD, ChapterFile.RECORDS_PER_PAGE, 3, 9);
        fs.writeAtomically(name, bad);
        problems.clear();
        ChapterVerifier.verify(fs, "ix", ID, 9, 1200, problems::add);
        assertEquals(1, problems.size(), problems.toString());
        assertTrue(problems.getFirst().contains("chunk id expected in [1, 1200]") && problems.getFirst().contains("found 5000"), problems.toString());

        // More records than this index's chapters hold.
        fs.writeAtomically(name, good);
        problems.clear();
        ChapterVerifier.verify(fs, "ix", ID, 9, 1000, problems::add);
        assertTrue(problems.getFirst().contains("record count expected at most 1000"), problems.toString());
    }
}
