package io.dedisk.pool;

import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.index.DedupIndex;
import io.dedisk.sim.SimFs;
import java.nio.ByteBuffer;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** `dedisk gc` gives back the dedup index's space for the names of deleted data, and keeps the advice of live data. */
class IndexGcTest {
    static final int BS = Pool.BLOCK_SIZE;

    @Test
    void deletingAVolumeAndGcShrinksTheIndexAndKeepsLiveAdvice() throws Exception {
        SimFs fs = new SimFs(41);
        Pool.create(fs, new Pool.Options(1 << 20, 1L << 30, 16 << 20, false)); // 16 MiB dense: 4,673 records a chapter
        byte[] keep = new byte[2000 * BS], gone = new byte[12_000 * BS];
        Random r = new Random(42);
        r.nextBytes(keep);
        r.nextBytes(gone);
        long before, chunks;
        try (Pool p = Pool.open(fs, Runnable::run)) {
            p.createVolume("keep", keep.length);
            p.createVolume("gone", gone.length);
            p.volume("keep").orElseThrow().write(0, ByteBuffer.wrap(keep), false);
            p.volume("gone").orElseThrow().write(0, ByteBuffer.wrap(gone), true);
            p.checkpoint();
            before = p.stats().index().diskBytes();
            p.deleteVolume("gone");
            Pool.GcResult gc = p.gc();
            DedupIndex.Compaction c = gc.index();
            assertEquals(12_000, c.records(), "every name of the deleted volume dropped: " + c);
            assertTrue(c.chaptersDeleted() >= 1 && c.chaptersRewritten() >= 1, c.toString());
            PoolStats s = p.stats();
            assertEquals(c, s.index().compacted(), "stats show what compaction gave back");
            assertTrue(s.index().diskBytes() < before - 12_000L * 40, "index disk bytes " + before + " -> " + s.index().diskBytes());
            assertEquals(2000, s.index().entries(), "the live volume's names are all that is left");
            chunks = s.liveChunks();
            p.createVolume("copy", keep.length);
            p.volume("copy").orElseThrow().write(0, ByteBuffer.wrap(keep), true);
            assertEquals(chunks, p.stats().liveChunks(), "the kept data still dedups: no chunk stored again");
            assertEquals(2000, p.stats().index().hits());
            PoolChecker.Report rep = PoolChecker.check(p);
            assertTrue(rep.ok(), rep.toText());
        }
        // Power loss after a clean stop (the save) and after a gc without one: advice of the live data stays.
        try (Pool q = Pool.open(fs.machineCrash(43), Runnable::run)) {
            q.createVolume("again", keep.length);
            q.volume("again").orElseThrow().write(0, ByteBuffer.wrap(keep), true);
            assertEquals(chunks, q.stats().liveChunks(), "after reopening");
            q.deleteVolume("copy");
            q.gc();
            q.flush();
        }
        try (Pool q = Pool.open(fs.machineCrash(44), Runnable::run)) {
            q.createVolume("third", keep.length);
            q.volume("third").orElseThrow().write(0, ByteBuffer.wrap(keep), true);
            assertEquals(chunks, q.stats().liveChunks(), "after a second gc and a power loss");
            assertTrue(PoolChecker.check(q).ok(), PoolChecker.check(q).toText());
        }
    }

    /** The server's background rounds compact too, a bounded step at a time, without a gc. */
    @Test
    void backgroundRoundsCompactTheIndex() throws Exception {
        SimFs fs = new SimFs(45);
        Pool.create(fs, new Pool.Options(1 << 20, 1L << 30, 16 << 20, false));
        byte[] gone = new byte[12_000 * BS];
        new Random(46).nextBytes(gone);
        try (Pool p = Pool.open(fs, Runnable::run)) {
            p.createVolume("gone", gone.length);
            p.volume("gone").orElseThrow().write(0, ByteBuffer.wrap(gone), true);
            long before = p.stats().index().diskBytes();
            p.deleteVolume("gone");
            for (int round = 0; round < 3; round++) p.maintenance();
            DedupIndex.Compaction c = p.stats().index().compacted();
            assertEquals(2, c.chaptersDeleted(), "both closed chapters, one per round: " + c);
            assertEquals(0, c.chaptersRewritten());
            assertTrue(p.stats().index().diskBytes() < before - 9_000L * 40, before + " -> " + p.stats().index().diskBytes());
            assertTrue(PoolChecker.check(p).ok(), PoolChecker.check(p).toText());
        }
    }

    /**
     * A background compaction step that cannot write its chapter (a full or failing disk) costs advice only: the
     * round goes on (it must, e.g. to leave no-space mode), the old chapter stays whole, and a later step compacts.
     */
    @Test
    void aFailingCompactionStepCostsAdviceOnlyAndTheRoundGoesOn() throws Exception {
        SimFs fs = new SimFs(47);
        Pool.create(fs, new Pool.Options(1 << 20, 1L << 30, 16 << 20, false));
        Random r = new Random(48);
        try (Pool p = Pool.open(fs, Runnable::run)) {
            p.createVolume("keep", 6_000L * BS);
            p.createVolume("gone", 6_000L * BS);
            byte[] part = new byte[500 * BS];
            byte[] kept = new byte[6_000 * BS];
            for (int i = 0; i < 24; i++) { // keep's and gone's names alternate within every chapter
                r.nextBytes(part);
                long off = (long) (i / 2) * part.length;
                p.volume(i % 2 == 0 ? "keep" : "gone").orElseThrow().write(off, ByteBuffer.wrap(part), true);
                if (i % 2 == 0) System.arraycopy(part, 0, kept, (int) off, part.length);
            }
            p.deleteVolume("gone");
            int[] refused = {0};
            fs.beforeWrite((name, pos, length) -> {
                if (name.contains("chapter-") && name.endsWith(".tmp")) {
                    refused[0]++;
                    throw new java.io.IOException("injected: no room for " + name);
                }
            });
            assertDoesNotThrow(p::maintenance);
            assertTrue(refused[0] > 0, "the step tried to rewrite a chapter");
            assertEquals(DedupIndex.Compaction.NONE, p.stats().index().compacted(), "nothing was installed");
            long before = p.stats().index().diskBytes(); // after the round's own checkpoint of the open chapter
            fs.beforeWrite(null);
            byte[] fresh = new byte[BS];
            r.nextBytes(fresh);
            p.volume("keep").orElseThrow().write(0, ByteBuffer.wrap(fresh), true); // a chunk dies: the next step tries again
            System.arraycopy(fresh, 0, kept, 0, BS);
            p.maintenance();
            assertTrue(p.stats().index().compacted().chaptersRewritten() > 0, "compacted once writes work: " + p.stats().index().compacted());
            assertTrue(p.stats().index().diskBytes() < before, before + " -> " + p.stats().index().diskBytes());
            ByteBuffer got = ByteBuffer.allocate(kept.length);
            p.volume("keep").orElseThrow().read(0, got);
            assertArrayEquals(kept, got.array());
            assertTrue(PoolChecker.check(p).ok(), PoolChecker.check(p).toText());
        }
    }
}
