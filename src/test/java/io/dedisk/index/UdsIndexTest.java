package io.dedisk.index;

import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.DediskException.CorruptionException;
import io.dedisk.DediskException.InvalidRequestException;
import io.dedisk.index.bench.Workload;
import io.dedisk.store.Fs;
import io.dedisk.store.LocalFs;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

@Timeout(60)
class UdsIndexTest {
    /** 4 chapters of 64 records: the window is 256 records, 192 of them in closed chapters. */
    static final Geometry TINY = Geometry.sized(false, 4, 3, 64, 16, 0);

    @TempDir Path tmp;

    static BlockName random(SplittableRandom r) { return new BlockName(r.nextLong(), r.nextLong(), r.nextLong(), r.nextLong()); }

    static List<BlockName> names(long seed, int count) {
        SplittableRandom r = new SplittableRandom(seed);
        List<BlockName> list = new ArrayList<>();
        for (int i = 0; i < count; i++) list.add(random(r));
        return list;
    }

    Fs fs() { return new LocalFs(tmp); }

    @Test
    void hitsAreExactAndNewNamesMiss() throws IOException {
        try (UdsIndex index = UdsIndex.open(fs(), "index", TINY)) {
            List<BlockName> names = names(1, 190); // spans two closed chapters and the open one
            for (int i = 0; i < names.size(); i++) index.insert(names.get(i), 100 + i);
            assertArrayEquals(new long[] {0, 1}, index.liveChapters());
            for (int i = 0; i < names.size(); i++) assertEquals(100 + i, index.lookup(names.get(i)), "name " + i);
            for (BlockName n : names(2, 1000)) assertEquals(DedupIndex.NONE, index.lookup(n));
            assertEquals(190, index.entries());
            assertEquals(289, index.maxChunkId());
            // A later post wins: in the open chapter in place, and over an older closed record.
            index.insert(names.get(189), 7000);
            index.insert(names.get(0), 7001);
            assertEquals(7000, index.lookup(names.get(189)));
            assertEquals(7001, index.lookup(names.get(0)));
            assertEquals(191, index.entries());
        }
    }

    @Test
    void namesSharingTheCompactBitsNeverAnswerForEachOther() throws IOException {
        try (UdsIndex index = UdsIndex.open(fs(), "index", TINY)) {
            // Same b (bucket) and c (fingerprint): identical volume index entries. Same top half of a: same chapter
            // index key. Only the full name tells them apart.
            BlockName posted = new BlockName(0x1234567800000001L, 42, 0x7777000000000000L, 5);
            BlockName sameBits = new BlockName(0x1234567800000002L, 42, 0x7777000000000000L, 6);
            BlockName sameButD = new BlockName(0x1234567800000001L, 42, 0x7777000000000000L, 6);
            index.insert(posted, 500);
            assertEquals(DedupIndex.NONE, index.lookup(sameBits), "open chapter");
            assertEquals(DedupIndex.NONE, index.lookup(sameButD), "open chapter");
            for (BlockName n : names(3, 63)) index.insert(n, 9);
            assertEquals(1, index.openChapterNumber(), "the posted name is in a closed chapter now");
            assertEquals(500, index.lookup(posted));
            assertEquals(DedupIndex.NONE, index.lookup(sameBits), "closed chapter");
            assertEquals(DedupIndex.NONE, index.lookup(sameButD), "closed chapter");
            index.insert(sameButD, 501);
            for (BlockName n : names(4, 63)) index.insert(n, 9);
            assertEquals(500, index.lookup(posted));
            assertEquals(501, index.lookup(sameButD));
            assertEquals(DedupIndex.NONE, index.lookup(sameBits));
        }
    }

    @Test
    void oldestChapterExpiresWhenTheWindowIsFull() throws IOException {
        Fs fs = fs();
        try (UdsIndex index = UdsIndex.open(fs, "index", TINY)) {
            List<BlockName> names = names(5, 64 * 10);
            for (int i = 0; i < names.size(); i++) {
                index.insert(names.get(i), i + 1);
                assertTrue(index.entries() <= index.windowEntries());
            }
            // 10 chapters closed: the newest 3 (7, 8, 9) stay; the open chapter (10) is empty.
            assertArrayEquals(new long[] {7, 8, 9}, index.liveChapters());
            assertEquals(192, index.entries());
            for (int i = 0; i < 7 * 64; i++) assertEquals(DedupIndex.NONE, index.lookup(names.get(i)), "expired name " + i);
            for (int i = 7 * 64; i < names.size(); i++) assertEquals(i + 1, index.lookup(names.get(i)));
            List<String> files = fs.list("index").stream().filter(f -> f.startsWith("chapter-")).toList();
            assertEquals(List.of("chapter-0000000000000007", "chapter-0000000000000008", "chapter-0000000000000009"), files);
        }
    }

    @Test
    void refreshKeepsAHotNameAlivePastExpiry() throws IOException {
        try (UdsIndex index = UdsIndex.open(fs(), "index", TINY)) {
            BlockName hot = names(6, 1).getFirst(), cold = names(7, 1).getFirst();
            index.insert(hot, 11);
            index.insert(cold, 12);
            SplittableRandom r = new SplittableRandom(8);
            for (int i = 0; i < 64 * 20; i++) {
                index.insert(random(r), 1000 + i);
                // The pool's confirmed hit: lookup, then insert again to refresh.
                if (i % 50 == 0) {
                    assertEquals(11, index.lookup(hot), "hot name after " + i + " inserts");
                    index.insert(hot, 11);
                }
            }
            assertEquals(11, index.lookup(hot));
            assertEquals(DedupIndex.NONE, index.lookup(cold));
        }
    }

    /** 32 chapters of 64 records: young records are those of the newest 31 / 4 = 7 closed chapters. */
    static final Geometry WIDE = Geometry.sized(false, 32, 31, 64, 16, 0);

    /** Duplicate-heavy writes (every block a confirmed hit on a young record) add no record and write nothing. */
    @Test
    void aConfirmedHitOnAYoungRecordAddsNoRecord() throws IOException {
        try (UdsIndex index = UdsIndex.open(fs(), "index", WIDE)) {
            List<BlockName> names = names(30, 64 * 4);
            for (int i = 0; i < names.size(); i++) index.insert(names.get(i), 1 + i);
            long entries = index.entries(), disk = index.diskBytes(), chapter = index.openChapterNumber();
            for (int round = 0; round < 3; round++) {
                for (int i = 0; i < names.size(); i++) {
                    assertEquals(1 + i, index.lookup(names.get(i)));
                    index.insert(names.get(i), 1 + i); // the pool's refresh after a confirmed hit
                }
            }
            assertEquals(entries, index.entries(), "no record added");
            assertEquals(chapter, index.openChapterNumber(), "no chapter closed");
            assertEquals(disk, index.diskBytes());
            index.insert(names.getFirst(), 5000); // the same content under a new chunk id (the old one died): posted
            assertEquals(entries + 1, index.entries());
            assertEquals(5000, index.lookup(names.getFirst()));
        }
    }

    /** A name hit now and then over three windows' worth of chapters is always found: old records are posted again. */
    @Test
    void adviceOfANameHitRepeatedlySurvivesManyWindows() throws IOException {
        try (UdsIndex index = UdsIndex.open(fs(), "index", WIDE)) {
            BlockName hot = names(31, 1).getFirst();
            index.insert(hot, 11);
            SplittableRandom r = new SplittableRandom(32);
            int hits = 0;
            for (int i = 0; i < 64 * 32 * 3; i++) {
                index.insert(random(r), 1000 + i);
                if (i % (64 * 5) == 0) { // every five chapters: young at first, then old enough to be posted again
                    assertEquals(11, index.lookup(hot), "hot name after " + i + " inserts");
                    index.insert(hot, 11);
                    hits++;
                }
            }
            assertEquals(11, index.lookup(hot));
            assertTrue(hits > 19 && index.openChapterNumber() > 3 * 31, "hit " + hits + " times over " + index.openChapterNumber() + " chapters");
        }
    }

    @Test
    void refreshInTheOpenChapterTakesNoRecord() throws IOException {
        try (UdsIndex index = UdsIndex.open(fs(), "index", TINY)) {
            BlockName n = names(9, 1).getFirst();
            for (int i = 0; i < 1000; i++) index.insert(n, 5);
            assertEquals(1, index.entries());
            assertEquals(0, index.openChapterNumber());
        }
    }

    @Test
    void saveAndOpenRoundTrip() throws IOException {
        Fs fs = fs();
        List<BlockName> names = names(10, 64 * 5 + 30);
        long memory;
        try (UdsIndex index = UdsIndex.open(fs, "index", TINY)) {
            for (int i = 0; i < names.size(); i++) index.insert(names.get(i), 10 + i);
            memory = index.memoryBytes();
            index.save();
        }
        try (UdsIndex index = UdsIndex.open(fs, "index", TINY)) {
            assertEquals(0, index.rebuildRemaining(), "a valid save needs no rebuild");
            assertEquals(10 + names.size() - 1, index.maxChunkId());
            assertEquals(64 * 3 + 30, index.entries());
            assertArrayEquals(new long[] {2, 3, 4}, index.liveChapters());
            for (int i = 0; i < names.size(); i++) {
                assertEquals(i < 128 ? DedupIndex.NONE : 10 + i, index.lookup(names.get(i)), "name " + i);
            }
            assertTrue(index.memoryBytes() <= TINY.memoryBytes());
            assertTrue(memory <= TINY.memoryBytes());
            // The save stays consistent after more inserts that do not close a chapter: reopening loads it again.
            index.insert(names(11, 1).getFirst(), 999_999);
        }
        try (UdsIndex index = UdsIndex.open(fs, "index", TINY)) {
            assertEquals(0, index.rebuildRemaining());
            assertEquals(10 + names.size() - 1, index.lookup(names.getLast()));
        }
    }

    @Test
    void crashRebuildsFromTheChaptersInTheBackground() throws Exception {
        Fs fs = fs();
        List<BlockName> names = names(12, 64 * 3 + 20);
        try (UdsIndex index = UdsIndex.open(fs, "index", TINY)) {
            for (int i = 0; i < names.size(); i++) index.insert(names.get(i), 10 + i);
            index.save();
            // A chapter closes after the save: the save is now older than the chapters.
            for (BlockName n : names(13, 64)) index.insert(n, 5000);
        } // no save: a crash as far as the index can tell
        try (UdsIndex index = UdsIndex.open(fs, "index", TINY)) {
            awaitRebuild(index);
            assertArrayEquals(new long[] {1, 2, 3}, index.liveChapters());
            for (int i = 0; i < 64; i++) assertEquals(DedupIndex.NONE, index.lookup(names.get(i)), "expired " + i);
            for (int i = 64; i < names.size(); i++) assertEquals(10 + i, index.lookup(names.get(i)), "name " + i);
            assertEquals(5000, index.maxChunkId(), "the newest chapter header's max chunk id");
            index.insert(names.getFirst(), 6000);
            assertEquals(6000, index.lookup(names.getFirst()));
        }
        // No save at all: records of the open chapter are lost; closed ones come back.
        try (UdsIndex index = UdsIndex.open(fs, "index", TINY)) {
            awaitRebuild(index);
            assertEquals(DedupIndex.NONE, index.lookup(names.getFirst()));
            assertEquals(10 + 100, index.lookup(names.get(100)));
        }
    }

    @Test
    void lookupsAndInsertsGoOnDuringARebuild() throws Exception {
        CountDownLatch gate = new CountDownLatch(1);
        Fs fs = new DelegatingFs(fs()) {
            @Override
            public FileHandle open(String name, boolean create) throws IOException {
                // Holds the rebuild back (only it) until the test has looked at the index mid-rebuild.
                if (Thread.currentThread().getName().equals("dedisk-index-rebuild")) {
                    try {
                        gate.await();
                    } catch (InterruptedException e) {
                        throw new java.io.InterruptedIOException();
                    }
                }
                return super.open(name, create);
            }
        };
        Geometry g = Geometry.sized(false, 64, 63, 512, 64, 0);
        List<BlockName> names = names(14, 512 * 40);
        try (UdsIndex index = UdsIndex.open(fs, "index", g)) {
            for (int i = 0; i < names.size(); i++) index.insert(names.get(i), 1 + i);
        }
        try (UdsIndex index = UdsIndex.open(fs, "index", g)) {
            try {
                checkDuringRebuild(index, names, gate);
            } finally {
                gate.countDown(); // close() waits for the rebuild: never leave it blocked
            }
            index.save();
        }
        try (UdsIndex index = UdsIndex.open(fs, "index", g)) {
            assertEquals(0, index.rebuildRemaining());
            assertEquals(1, index.lookup(names.getFirst()));
        }
    }

    private static void checkDuringRebuild(UdsIndex index, List<BlockName> names, CountDownLatch gate) throws InterruptedException {
        assertEquals(1.0, index.rebuildRemaining());
        assertEquals(512 * 40, index.maxChunkId(), "known before the rebuild, from the newest chapter header");
        List<BlockName> fresh = names(15, 2000);
        for (int i = 0; i < fresh.size(); i++) {
            index.insert(fresh.get(i), 1_000_000 + i);
            assertEquals(DedupIndex.NONE, index.lookup(names.get(i)), "not rebuilt yet");
        }
        for (int i = 0; i < fresh.size(); i++) assertEquals(1_000_000 + i, index.lookup(fresh.get(i)));
        gate.countDown();
        awaitRebuild(index);
        for (int i = 0; i < fresh.size(); i++) assertEquals(1_000_000 + i, index.lookup(fresh.get(i)));
        for (int i = 0; i < names.size(); i++) assertEquals(1 + i, index.lookup(names.get(i)), "name " + i);
    }

    @Test
    void corruptChapterIsDroppedAndTheRestWorks() throws Exception {
        Fs fs = fs();
        List<BlockName> names = names(16, 64 * 3);
        try (UdsIndex index = UdsIndex.open(fs, "index", TINY)) {
            for (int i = 0; i < names.size(); i++) index.insert(names.get(i), 1 + i);
            index.save();
        }
        // Flip one byte in chapter 1's last page (a record page).
        String victim = ChapterFile.fileName("index", 1);
        try (Fs.FileHandle h = fs.open(victim, false)) {
            long pos = h.size() - 100;
            ByteBuffer b = ByteBuffer.allocate(1);
            h.readFully(pos, b);
            b.put(0, (byte) (b.get(0) ^ 0x40)).rewind();
            h.write(pos, b);
        }
        try (UdsIndex index = UdsIndex.open(fs, "index", TINY)) { // from the save: found on first read
            assertEquals(3 * 64, index.entries(), "before the damage is found");
            for (int i = 0; i < names.size(); i++) {
                long hit = index.lookup(names.get(i));
                if (i / 64 == 1) assertTrue(hit == DedupIndex.NONE || hit == 1 + i, "corrupt chapter: right or missing");
                else assertEquals(1 + i, hit);
            }
            assertEquals(DedupIndex.NONE, index.lookup(names.get(64 + 63)), "the damaged page's chapter is dropped");
            assertEquals(DedupIndex.NONE, index.lookup(names.get(64)), "all of it");
            assertEquals(2 * 64, index.entries(), "the dropped chapter's records no longer count");
        }
        fs.delete("index/" + SaveFile.FILE);
        try (UdsIndex index = UdsIndex.open(fs, "index", TINY)) { // rebuild: found while reading the chapter
            awaitRebuild(index);
            assertArrayEquals(new long[] {0, 2}, index.liveChapters());
            assertEquals(2 * 64, index.entries());
            assertEquals(1, index.lookup(names.getFirst()));
            assertEquals(DedupIndex.NONE, index.lookup(names.get(64)));
            assertEquals(names.size(), index.lookup(names.getLast()));
        }
    }

    @Test
    void corruptSaveFallsBackToARebuild() throws Exception {
        Fs fs = fs();
        List<BlockName> names = names(17, 64 * 2 + 5);
        try (UdsIndex index = UdsIndex.open(fs, "index", TINY)) {
            for (int i = 0; i < names.size(); i++) index.insert(names.get(i), 1 + i);
            index.save();
        }
        byte[] save = fs.readAll("index/" + SaveFile.FILE);
        save[save.length / 2] ^= 1;
        fs.writeAtomically("index/" + SaveFile.FILE, save);
        try (UdsIndex index = UdsIndex.open(fs, "index", TINY)) {
            awaitRebuild(index);
            assertEquals(1, index.lookup(names.getFirst()));
            assertEquals(DedupIndex.NONE, index.lookup(names.getLast()), "the saved open chapter could not be trusted");
        }
    }

    @Test
    void chapterWriteFailureLosesOnlyThatChapter() throws IOException {
        AtomicBoolean failChapters = new AtomicBoolean();
        Fs real = fs();
        Fs faulty = new DelegatingFs(real) {
            @Override
            public void writeAtomically(String name, byte[] content) throws IOException {
                if (failChapters.get() && name.contains("chapter-")) throw new IOException("injected: no space left on device");
                super.writeAtomically(name, content);
            }
        };
        List<BlockName> names = names(18, 64 * 3);
        try (UdsIndex index = UdsIndex.open(faulty, "index", TINY)) {
            for (int i = 0; i < 64; i++) index.insert(names.get(i), 1 + i);
            failChapters.set(true);
            for (int i = 64; i < 128; i++) index.insert(names.get(i), 1 + i);
            failChapters.set(false);
            for (int i = 128; i < 192; i++) index.insert(names.get(i), 1 + i);
            assertEquals(64, index.lostAdvice());
            assertEquals(1, index.lookup(names.getFirst()));
            assertEquals(DedupIndex.NONE, index.lookup(names.get(100)));
            assertEquals(192, index.lookup(names.getLast()));
            assertEquals(192, index.maxChunkId());
        }
    }

    @Test
    void configurationIsValidatedAndStored() throws IOException {
        InvalidRequestException small = assertThrows(InvalidRequestException.class, () -> IndexConfig.parse("15M", false));
        assertTrue(small.getMessage().contains("between 16.0 MiB and 1.0 TiB"), small.getMessage());
        assertThrows(InvalidRequestException.class, () -> IndexConfig.parse("2T", true));
        assertThrows(InvalidRequestException.class, () -> IndexConfig.parse("lots", true));
        Fs fs = fs();
        try (UdsIndex index = UdsIndex.open(fs, "index", IndexConfig.parse("16M", false))) {
            assertFalse(index.sparse());
            assertTrue(index.memoryBytes() <= 16 << 20);
            assertTrue(index.windowEntries() > 4_000_000, "16 MiB dense covers " + index.windowEntries());
        }
        InvalidRequestException other = assertThrows(InvalidRequestException.class, () -> UdsIndex.open(fs, "index", IndexConfig.parse("16M", true)));
        assertTrue(other.getMessage().contains("was created as 16.0 MiB dense"), other.getMessage());
        byte[] header = fs.readAll("index/" + IndexHeader.FILE);
        header[40] ^= 1;
        fs.writeAtomically("index/" + IndexHeader.FILE, header);
        assertThrows(CorruptionException.class, () -> UdsIndex.open(fs, "index", IndexConfig.parse("16M", false)));
    }

    @Test
    void memoryStaysWithinTheConfiguredFigure() throws IOException {
        for (boolean sparse : new boolean[] {false, true}) {
            IndexConfig config = IndexConfig.parse("16M", sparse);
            try (UdsIndex index = UdsIndex.open(fs(), "index-" + sparse, config)) {
                long empty = index.memoryBytes();
                assertTrue(empty <= config.memoryBytes());
                Geometry g = index.geometry();
                double perEntry = (double) config.memoryBytes() / index.windowEntries();
                assertTrue(sparse ? perEntry <= 0.5 : perEntry <= 4, "bytes per window entry " + perEntry);
                // Fill a few chapters and read them back so the caches fill too.
                List<BlockName> names = names(19, g.chapterRecords() * 3);
                for (int i = 0; i < names.size(); i++) index.insert(names.get(i), 1 + i);
                for (BlockName n : names) assertNotEquals(DedupIndex.NONE, index.lookup(n));
                long full = index.memoryBytes();
                assertTrue(full > empty && full <= config.memoryBytes(), "memory " + full + " of " + config.memoryBytes());
            }
        }
    }

    @Test
    void sparseFindsMostOfWhatDenseFinds() throws IOException {
        Geometry dense = Geometry.sized(false, 16, 15, 4096, 256, 0);
        Geometry sparse = Geometry.sized(true, 160, 8, 4096, 256, 7);
        assertEquals(10 * dense.windowEntries(), sparse.windowEntries());
        long[] found = new long[2];
        long duplicates = 0;
        for (int m = 0; m < 2; m++) {
            Workload w = new Workload(20, 400_000, 8192, 60_000);
            try (UdsIndex index = UdsIndex.open(fs(), "index-" + m, m == 0 ? dense : sparse)) {
                while (w.hasNext()) {
                    Workload.Op op = w.next();
                    long hit = index.lookup(op.name());
                    if (op.duplicate()) {
                        if (hit == op.chunkId()) found[m]++;
                        else assertEquals(DedupIndex.NONE, hit, "never a wrong answer");
                    } else {
                        assertEquals(DedupIndex.NONE, hit);
                    }
                    index.insert(op.name(), op.chunkId());
                }
            }
            duplicates = w.duplicates();
        }
        assertTrue(found[0] >= 0.995 * duplicates, "dense finds " + found[0] + " of " + duplicates);
        assertTrue(found[1] >= 0.97 * found[0], "sparse finds " + found[1] + " of dense's " + found[0]);
    }

    @Test
    void concurrentLookupsNeverSeeWrongAnswers() throws Exception {
        Geometry g = Geometry.sized(false, 8, 7, 1024, 64, 0);
        List<BlockName> names = names(21, 30_000);
        AtomicReference<Throwable> failure = new AtomicReference<>();
        try (UdsIndex index = UdsIndex.open(fs(), "index", g)) {
            AtomicBoolean done = new AtomicBoolean();
            List<Thread> readers = new ArrayList<>();
            for (int t = 0; t < 3; t++) {
                int seed = t;
                readers.add(Thread.ofPlatform().start(() -> {
                    SplittableRandom r = new SplittableRandom(seed);
                    try {
                        while (!done.get()) {
                            int i = r.nextInt(names.size());
                            long hit = index.lookup(names.get(i));
                            if (hit != DedupIndex.NONE && hit != 1 + i) throw new AssertionError("name " + i + " answered " + hit);
                        }
                    } catch (Throwable e) {
                        failure.compareAndSet(null, e);
                    }
                }));
            }
            for (int i = 0; i < names.size(); i++) index.insert(names.get(i), 1 + i);
            done.set(true);
            for (Thread t : readers) t.join();
        }
        assertNull(failure.get());
    }

    static void awaitRebuild(UdsIndex index) throws InterruptedException {
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (index.rebuildRemaining() > 0) {
            assertTrue(System.nanoTime() < deadline, "rebuild finishes");
            Thread.sleep(5);
        }
    }
}
