package io.dedisk.index;

import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.sim.SimFs;
import io.dedisk.store.Fs;
import io.dedisk.store.LocalFs;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.LongPredicate;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link UdsIndex#compactAll} and {@link UdsIndex#compactSome}: live records all still found, dead ones gone, files
 * smaller, the verifier content, lookups right while chapters are rewritten. Crashes at every file operation of a
 * compaction: {@link CheckpointTest} (its workload compacts).
 */
@Timeout(300)
class CompactionTest {
    /** 32 chapters of 306 records (3 record pages): nothing leaves the window below. */
    static final Geometry G = Geometry.sized(false, 32, 31, 306, 64, 0);

    @TempDir Path tmp;

    static DedupIndex.DeadChunks dead(LongPredicate p) {
        return new DedupIndex.DeadChunks() {
            @Override public boolean dead(long chunkId) { return p.test(chunkId); }
            @Override public void makeDurable() { }
        };
    }

    /** Names i get chunk id i + 1; {@code dead} holds for the ids of deleted data. */
    static void fill(UdsIndex index, List<BlockName> names) {
        for (int i = 0; i < names.size(); i++) index.insert(names.get(i), i + 1);
    }

    static void assertAnswers(UdsIndex index, List<BlockName> names, LongPredicate dead, String what) {
        for (int i = 0; i < names.size(); i++) {
            long id = i + 1;
            assertEquals(dead.test(id) ? DedupIndex.NONE : id, index.lookup(names.get(i)), what + ": name " + i + (dead.test(id) ? " (dead)" : " (live)"));
        }
    }

    @Test
    void liveRecordsStayDeadOnesGoAndTheFilesShrink() throws IOException {
        Fs fs = new LocalFs(tmp);
        List<BlockName> names = UdsIndexTest.names(5, 306 * 6 + 100); // 6 closed chapters and 100 open records
        // Chapter 1 dies whole (a deleted volume's fresh data), chapter 3 by two thirds, a third of the open records.
        LongPredicate isDead = id -> id > 306 && id <= 612 || id > 918 && id <= 1224 && id % 3 != 0 || id > 306 * 6 && id % 3 == 0;
        long before;
        try (UdsIndex index = UdsIndex.open(fs, "index", G)) {
            fill(index, names);
            index.checkpoint();
            before = index.diskBytes();
            long entries = index.entries();
            long chapter3 = fileSize(fs, ChapterFile.fileName("index", 3));
            DedupIndex.Compaction c = index.compactAll(dead(isDead));
            assertEquals(1, c.chaptersDeleted(), c.toString());
            assertEquals(1, c.chaptersRewritten(), c.toString());
            long deadCount = 0;
            for (long id = 1; id <= names.size(); id++) if (isDead.test(id)) deadCount++;
            assertEquals(deadCount, c.records(), "every dead record dropped (open chapter included)");
            assertEquals(entries - deadCount, index.entries());
            assertAnswers(index, names, isDead, "after compaction");
            assertFalse(fs.exists(ChapterFile.fileName("index", 1)), "a chapter with nothing live is deleted");
            assertTrue(fileSize(fs, ChapterFile.fileName("index", 3)) < chapter3, "the rewritten chapter is smaller");
            assertEquals(SaveFileTest.filesBytes(fs, "index"), index.diskBytes(), "disk bytes follow the rewrite");
            assertEquals(before - index.diskBytes(), c.bytes(), "the chapters' bytes given back are counted");
            assertEquals(c, index.compacted());
            assertEquals(DedupIndex.Compaction.NONE, index.compactAll(dead(isDead)), "nothing left to drop");
            assertTrue(IndexVerifier.verify(fs, "index", G).ok(), IndexVerifier.verify(fs, "index", G).toString());
            index.checkpoint(); // the open chapter's checkpoint: a base without the purged records
        }
        // Kill (no save): the rebuild reads the compacted chapters and merges the open chapter's checkpoint.
        try (UdsIndex index = UdsIndex.open(fs, "index", G)) {
            index.awaitRebuild();
            assertAnswers(index, names, isDead, "after a rebuild");
            assertEquals(SaveFileTest.filesBytes(fs, "index"), index.diskBytes());
            assertTrue(index.diskBytes() < before);
            index.save();
        }
        try (UdsIndex index = UdsIndex.open(fs, "index", G)) {
            assertAnswers(index, names, isDead, "after a save and load");
            // New chapters still close and index after a rewrite and a deleted chapter.
            List<BlockName> more = UdsIndexTest.names(6, 700);
            for (int i = 0; i < more.size(); i++) index.insert(more.get(i), 10_000 + i);
            for (int i = 0; i < more.size(); i++) assertEquals(10_000 + i, index.lookup(more.get(i)));
            assertAnswers(index, names, isDead, "after more chapters");
        }
        IndexVerifier.Report r = IndexVerifier.verify(fs, "index", G);
        assertTrue(r.ok(), r.toString());
    }

    /** The verifier accepts a compacted chapter (fewer records than C) and still finds damage in it. */
    @Test
    void theVerifierAcceptsACompactedChapterAndFindsDamageInIt() throws IOException {
        Fs fs = new LocalFs(tmp);
        List<BlockName> names = UdsIndexTest.names(7, 306 * 2 + 10);
        try (UdsIndex index = UdsIndex.open(fs, "index", G)) {
            fill(index, names);
            index.compactAll(dead(id -> id % 2 == 0));
            index.save();
        }
        String chapter = ChapterFile.fileName("index", 0);
        ChapterFile h = ChapterFile.readHeader(fs, "index", IndexHeader.decode(fs.readAll("index/" + IndexHeader.FILE), "h").indexId(), 0);
        assertEquals(153, h.records, "half of chapter 0 is left");
        IndexVerifier.Report clean = IndexVerifier.verify(fs, "index", G);
        assertTrue(clean.ok(), clean.toString());
        byte[] bytes = fs.readAll(chapter);
        bytes[h.filePage(ChapterFile.KIND_RECORD, 1) * ChapterFile.PAGE + 100] ^= 4;
        fs.writeAtomically(chapter, bytes);
        IndexVerifier.Report damaged = IndexVerifier.verify(fs, "index", G);
        assertFalse(damaged.ok());
        assertTrue(damaged.problems().stream().anyMatch(p -> p.file().equals(chapter) && p.what().contains("record page 1")), damaged.toString());
    }

    /** The background step compacts a chapter worth it, one per step, and leaves one that is not. */
    @Test
    void theBackgroundStepRewritesOnlyWhatIsWorthIt() throws IOException {
        Fs fs = new SimFs(3);
        List<BlockName> names = UdsIndexTest.names(8, 306 * 3);
        LongPredicate isDead = id -> id <= 306 && id % 2 == 0 || id > 612 && id % 20 == 0; // chapter 0: half, chapter 2: 5 %
        try (UdsIndex index = UdsIndex.open(fs, "index", G)) {
            fill(index, names);
            DedupIndex.Compaction first = index.compactSome(dead(isDead));
            assertEquals(new DedupIndex.Compaction(1, 0, 153, ChapterFile.PAGE), first, "chapter 0 rewritten: 3 record pages become 2");
            assertEquals(DedupIndex.Compaction.NONE, index.compactSome(dead(isDead)), "chapter 2's 5 % is not worth a rewrite");
            assertAnswers(index, names, isDead.and(id -> id <= 306), "chapter 0's dead are gone");
            for (int i = 612; i < names.size(); i++) assertEquals(i + 1, index.lookup(names.get(i)), "chapter 2 untouched, dead records included");
        }
    }

    /**
     * Lookups from several threads while chapters are rewritten, deleted and closed: a live name always answers its
     * id (a chapter exists whole, old or new, and its pages never mix), a dead one its id or nothing.
     */
    @Test
    void lookupsAreRightWhileChaptersAreRewritten() throws Exception {
        Fs fs = new LocalFs(tmp);
        List<BlockName> names = UdsIndexTest.names(9, 306 * 12);
        Set<Long> deadIds = ConcurrentHashMap.newKeySet();
        AtomicBoolean stop = new AtomicBoolean();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        try (UdsIndex index = UdsIndex.open(fs, "index", G)) {
            fill(index, names);
            List<Thread> readers = new ArrayList<>();
            for (int t = 0; t < 3; t++) {
                int seed = t;
                readers.add(Thread.ofPlatform().start(() -> {
                    java.util.SplittableRandom r = new java.util.SplittableRandom(seed);
                    try {
                        while (!stop.get()) {
                            int i = r.nextInt(names.size());
                            long id = i + 1;
                            boolean wasDead = deadIds.contains(id); // read before the lookup: dead stays dead
                            long got = index.lookup(names.get(i));
                            if (!wasDead && !deadIds.contains(id)) assertEquals(id, got, "live name " + i);
                            else assertTrue(got == id || got == DedupIndex.NONE, "dead name " + i + " answered " + got);
                        }
                    } catch (Throwable e) {
                        failure.compareAndSet(null, e);
                    }
                }));
            }
            List<BlockName> more = UdsIndexTest.names(10, 306 * 8);
            java.util.SplittableRandom r = new java.util.SplittableRandom(11);
            for (int round = 0; round < 8 && failure.get() == null; round++) {
                for (int k = 0; k < 400; k++) deadIds.add(1 + (long) r.nextInt(names.size()));
                if (round == 3) for (long id = 307; id <= 612; id++) deadIds.add(id); // a whole chapter
                DedupIndex.Compaction c = index.compactAll(dead(deadIds::contains));
                assertTrue(c.records() > 0, "round " + round + " dropped records");
                for (int i = round * 306; i < (round + 1) * 306; i++) index.insert(more.get(i), 100_000 + i); // a chapter closes
            }
            stop.set(true);
            for (Thread t : readers) t.join();
            if (failure.get() != null) throw new AssertionError(failure.get());
            for (int i = 0; i < names.size(); i++) {
                long got = index.lookup(names.get(i));
                // gc leaves a chapter that would lose under 1/16 of its records and no page as it is
                if (deadIds.contains(i + 1L)) assertTrue(got == i + 1 || got == DedupIndex.NONE, "dead name " + i);
                else assertEquals(i + 1, got, "live name " + i);
            }
            assertEquals(SaveFileTest.filesBytes(fs, "index"), index.diskBytes());
        }
    }

    static long fileSize(Fs fs, String name) throws IOException {
        try (Fs.FileHandle h = fs.open(name, false)) {
            return h.size();
        }
    }
}
