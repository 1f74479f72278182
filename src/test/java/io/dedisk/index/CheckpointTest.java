package io.dedisk.index;

import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.sim.SimFs;
import io.dedisk.store.Fs;
import io.dedisk.store.LocalFs;
import java.io.IOException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link UdsIndex#checkpoint}: every insert before a completed checkpoint answers after a crash, whether the
 * process was killed (the page cache survives) or the machine lost power (only synced data survives, unsynced
 * writes kept, dropped or torn per sector by {@link SimFs#machineCrash}), at every mutating operation of a
 * workload of inserts, refreshes, chapter closes, checkpoints, saves and compactions (advice of dead chunks
 * dropped: a checkpointed name need answer only while a chunk id made durable for it is live), over two
 * generations of processes.
 */
@Timeout(300)
class CheckpointTest {
    /** 16 chapters of 64 records: the workloads below never leave the window, so nothing may be evicted. */
    static final Geometry G = Geometry.sized(false, 16, 15, 64, 16, 0);
    static final List<BlockName> NAMES = UdsIndexTest.names(40, 900);

    @TempDir Path tmp;

    /** What a run posted and what it may expect after a crash. */
    static final class Model {
        final Map<BlockName, Set<Long>> posted = new HashMap<>();
        /** Names made durable, with the ids posted for them before the checkpoint or save that did it. */
        final Map<BlockName, Set<Long>> mustSurvive = new HashMap<>();
        /** Chunk ids dead for ever (what the pool's DeadChunks would say): compaction may drop their records. */
        final Set<Long> dead = new HashSet<>();
        int next;
        long nextRefreshId = 1_000_000;

        Model copy() {
            Model m = new Model();
            posted.forEach((k, v) -> m.posted.put(k, new HashSet<>(v)));
            mustSurvive.forEach((k, v) -> m.mustSurvive.put(k, new HashSet<>(v)));
            m.dead.addAll(dead);
            m.next = next;
            m.nextRefreshId = nextRefreshId;
            return m;
        }

        /** Whether the name must answer after a crash: made durable with an id that is still live. */
        boolean required(BlockName name) {
            Set<Long> ids = mustSurvive.get(name);
            return ids != null && !dead.containsAll(ids);
        }

        DedupIndex.DeadChunks deadChunks() {
            return new DedupIndex.DeadChunks() {
                @Override public boolean dead(long chunkId) { return dead.contains(chunkId); }
                @Override public void makeDurable() { }
            };
        }

        /** A checkpoint or save returned: what the index held then (name and the ids it may answer) must survive. */
        void madeDurable(Map<BlockName, Set<Long>> held) {
            held.forEach((n, ids) -> mustSurvive.computeIfAbsent(n, k -> new HashSet<>()).addAll(ids));
        }
    }

    /**
     * One process's workload: rounds of new names, a refresh with a new chunk id now and then (a chunk that
     * died and was written again), checkpoints and now and then a save. A checkpoint or save that returns makes
     * everything posted before it required. Ends without close, as a kill -9 would; throws
     * {@link KillableFs.Killed} when the process is killed first.
     */
    static DedupIndex.Compaction generation(Fs fs, long seed, Model m, int rounds) throws IOException {
        SplittableRandom r = new SplittableRandom(seed);
        UdsIndex index = UdsIndex.open(fs, "index", G);
        index.awaitRebuild(); // so no rebuild thread outlives a kill (rebuilds during inserts: UdsIndexTest)
        // What an earlier crash lost is gone; a checkpoint covers what the index holds now and what is posted.
        Map<BlockName, Set<Long>> held = new HashMap<>();
        for (BlockName name : m.posted.keySet()) {
            long id = index.lookup(name);
            if (id != DedupIndex.NONE) held.computeIfAbsent(name, k -> new HashSet<>()).add(id);
        }
        for (BlockName name : m.mustSurvive.keySet()) assertTrue(!m.required(name) || held.containsKey(name), "opened with everything required");
        for (int round = 0; round < rounds; round++) {
            int n = r.nextInt(50);
            for (int i = 0; i < n && m.next < NAMES.size(); i++) {
                BlockName name = NAMES.get(m.next);
                long id = ++m.next;
                index.insert(name, id);
                m.posted.computeIfAbsent(name, k -> new HashSet<>()).add(id);
                held.computeIfAbsent(name, k -> new HashSet<>()).add(id);
            }
            if (m.next > 0 && r.nextInt(3) == 0) {
                BlockName name = NAMES.get(r.nextInt(m.next));
                long id = m.nextRefreshId++;
                m.dead.addAll(m.posted.get(name)); // written again under a new id: the old chunk had died
                index.insert(name, id);
                m.posted.get(name).add(id);
                held.computeIfAbsent(name, k -> new HashSet<>()).add(id);
            }
            if (m.next > 0 && r.nextInt(2) == 0) {
                for (int k = r.nextInt(40); k > 0; k--) m.dead.addAll(m.posted.get(NAMES.get(r.nextInt(m.next)))); // deleted data
            }
            if (r.nextInt(4) == 0) index.compactAll(m.deadChunks());
            int durable = r.nextInt(9);
            if (durable < 5) {
                index.checkpoint();
                m.madeDurable(held);
            } else if (durable == 5) {
                index.save(); // a save holds the open chapter too (and replaces its checkpoint file)
                m.madeDurable(held);
            }
        }
        // No close: the process simply ends (close would write nothing anyway).
        return index.compacted();
    }

    /** Reopens after the crash and checks the contract: required names answer, nothing answers wrongly. */
    static void check(Fs fs, Model m, String what) throws IOException {
        try (UdsIndex index = UdsIndex.open(fs, "index", G)) {
            index.awaitRebuild();
            long maxAnswer = 0;
            for (Map.Entry<BlockName, Set<Long>> e : m.posted.entrySet()) {
                long got = index.lookup(e.getKey());
                if (m.required(e.getKey())) {
                    assertTrue(e.getValue().contains(got), what + ": checkpointed name answers " + got + ", expected one of " + e.getValue());
                } else {
                    assertTrue(got == DedupIndex.NONE || e.getValue().contains(got), what + ": a name answers " + got + ", posted " + e.getValue());
                }
                maxAnswer = Math.max(maxAnswer, got);
            }
            assertTrue(index.maxChunkId() >= maxAnswer, what + ": maxChunkId " + index.maxChunkId() + " below an answer " + maxAnswer);
        }
    }

    /** Chapters the counting runs of {@link #opsOf} compacted: the crash points cover compaction only if some did. */
    static long chaptersCompacted;

    /** Mutating operations of a whole generation, counted on a fresh run. */
    static long opsOf(long seed, int rounds, long firstSeed, int firstRounds) throws IOException {
        SimFs sim = new SimFs(seed);
        Model m = new Model();
        if (firstRounds > 0) generation(sim, firstSeed, m, firstRounds);
        KillableFs counting = new KillableFs(sim);
        DedupIndex.Compaction c = generation(counting, seed, m, rounds);
        chaptersCompacted += c.chaptersRewritten() + c.chaptersDeleted();
        return counting.ops();
    }

    @Test
    void checkpointedInsertsSurviveAKillOrAPowerLossAtEveryOperation() throws IOException {
        int runs = 0;
        for (long seed = 1; seed <= 4; seed++) {
            int rounds = 8;
            long ops = opsOf(seed, rounds, 0, 0);
            for (long k = 1; k <= ops + 1; k++) {
                for (boolean power : new boolean[] {false, true}) {
                    SimFs sim = new SimFs(seed);
                    Model m = new Model();
                    try {
                        generation(new KillableFs(sim).killAfter(k), seed, m, rounds);
                    } catch (KillableFs.Killed expected) {
                        // the crash point
                    }
                    Fs after = power ? sim.machineCrash(seed * 7919 + k) : sim;
                    check(after, m, "seed " + seed + (power ? ", power loss" : ", kill") + " at op " + k + " of " + ops);
                    runs++;
                }
            }
        }
        assertTrue(runs > 200, "crash points covered: " + runs);
        assertTrue(chaptersCompacted > 0, "the workloads compact chapters");
    }

    /** The second process merges the first one's checkpoint and must not lose it while checkpointing itself. */
    @Test
    void aSecondCrashDuringTheNextProcessLosesNothingCheckpointedBefore() throws IOException {
        int runs = 0;
        for (long seed = 11; seed <= 13; seed++) {
            long ops = opsOf(seed + 100, 6, seed, 6);
            for (long k = 1; k <= ops + 1; k++) {
                for (boolean power : new boolean[] {false, true}) {
                    SimFs sim = new SimFs(seed);
                    Model m = new Model();
                    generation(sim, seed, m, 6); // the first process, killed at its end
                    Fs first = power ? sim.machineCrash(seed) : sim;
                    check(first, m.copy(), "seed " + seed + " after the first process");
                    SimFs sim2 = first instanceof SimFs s ? s : sim;
                    try {
                        generation(new KillableFs(sim2).killAfter(k), seed + 100, m, 6);
                    } catch (KillableFs.Killed expected) {
                        // the crash point
                    }
                    Fs after = power ? sim2.machineCrash(seed * 31 + k) : sim2;
                    check(after, m, "seed " + seed + (power ? ", power loss" : ", kill") + " at op " + k + " of the second process");
                    runs++;
                }
            }
        }
        assertTrue(runs > 100, "crash points covered: " + runs);
        assertTrue(chaptersCompacted > 0, "the workloads compact chapters");
    }

    @Test
    void withoutACheckpointTheOpenChapterIsLost() throws IOException {
        Fs fs = new LocalFs(tmp);
        List<BlockName> names = NAMES.subList(0, 100); // chapter 0 closes at 64; 36 stay in the open chapter
        try (UdsIndex index = UdsIndex.open(fs, "index", G)) {
            for (int i = 0; i < names.size(); i++) index.insert(names.get(i), 1 + i);
        }
        try (UdsIndex index = UdsIndex.open(fs, "index", G)) {
            index.awaitRebuild();
            assertEquals(1, index.lookup(names.getFirst()), "closed chapter");
            assertEquals(DedupIndex.NONE, index.lookup(names.getLast()), "the open chapter was never made durable");
            for (int i = 0; i < names.size(); i++) index.insert(names.get(i), 1 + i);
            index.checkpoint();
        }
        try (UdsIndex index = UdsIndex.open(fs, "index", G)) {
            assertEquals(100, index.lookup(names.getLast()), "answers before any rebuild: merged at open");
            assertEquals(100, index.maxChunkId());
        }
    }

    /** A checkpoint writes what was posted since the previous one (a base: since the chapter opened), never more. */
    @Test
    void aCheckpointCostsWhatWasPostedSinceThePreviousOne() throws IOException {
        KillableFs fs = new KillableFs(new LocalFs(tmp));
        try (UdsIndex index = UdsIndex.open(fs, "index", G)) {
            index.checkpoint();
            long ops = fs.ops();
            index.checkpoint();
            assertEquals(ops, fs.ops(), "nothing posted: no I/O at all");
            for (int i = 0; i < 10; i++) index.insert(NAMES.get(i), 1 + i);
            long before = fs.bytesWritten();
            index.checkpoint(); // the chapter's first: a base
            long base = fs.bytesWritten() - before;
            assertTrue(base <= OpenChapterFile.HEADER_BYTES + BlockStream.HEAD + OpenChapterFile.BLOCK_HEADER + 10L * OpenChapter.MAX_RECORD_BYTES,
                    "base of 10 records wrote " + base + " bytes");
            for (int i = 10; i < 13; i++) index.insert(NAMES.get(i), 1 + i);
            before = fs.bytesWritten();
            index.checkpoint(); // an append of 3 records
            long append = fs.bytesWritten() - before;
            assertTrue(append <= BlockStream.HEAD + OpenChapterFile.BLOCK_HEADER + 3L * OpenChapter.MAX_RECORD_BYTES, "append of 3 wrote " + append);
            ops = fs.ops();
            index.insert(NAMES.get(0), 1); // a refresh with the same id changes nothing
            index.checkpoint();
            assertEquals(ops, fs.ops(), "a refresh with the same chunk id: nothing to write");
            assertEquals(SaveFileTest.filesBytes(fs, "index"), index.diskBytes());
            for (int i = 13; i < 64; i++) index.insert(NAMES.get(i), 1 + i); // the chapter closes
            assertFalse(fs.exists(OpenChapterFile.fileName("index", 0)), "the closed chapter's checkpoint is deleted");
            assertEquals(SaveFileTest.filesBytes(fs, "index"), index.diskBytes());
        }
    }

    /** Lookups and inserts are not held up while a checkpoint waits for its I/O. */
    @Test
    void lookupsAndInsertsGoOnWhileACheckpointWrites() throws Exception {
        CountDownLatch inSync = new CountDownLatch(1), release = new CountDownLatch(1);
        Fs fs = new DelegatingFs(new LocalFs(tmp)) {
            @Override
            public FileHandle open(String name, boolean create) throws IOException {
                FileHandle h = super.open(name, create);
                if (!Thread.currentThread().getName().equals("checkpointer")) return h;
                return new FileHandle() {
                    @Override public int read(long pos, java.nio.ByteBuffer dst) throws IOException { return h.read(pos, dst); }
                    @Override public void write(long pos, java.nio.ByteBuffer src) throws IOException { h.write(pos, src); }
                    @Override public long size() throws IOException { return h.size(); }
                    @Override public void truncate(long size) throws IOException { h.truncate(size); }
                    @Override public void close() throws IOException { h.close(); }

                    @Override
                    public void sync() throws IOException {
                        inSync.countDown();
                        try {
                            release.await();
                        } catch (InterruptedException e) {
                            throw new java.io.InterruptedIOException();
                        }
                        h.sync();
                    }
                };
            }
        };
        try (UdsIndex index = UdsIndex.open(fs, "index", G)) {
            for (int i = 0; i < 20; i++) index.insert(NAMES.get(i), 1 + i);
            AtomicReference<Throwable> failure = new AtomicReference<>();
            Thread t = Thread.ofPlatform().name("checkpointer").start(() -> {
                try {
                    index.checkpoint();
                } catch (Throwable e) {
                    failure.set(e);
                }
            });
            inSync.await();
            // The checkpoint holds its lock and waits in sync: the index still serves this thread.
            assertEquals(1, index.lookup(NAMES.getFirst()));
            index.insert(NAMES.get(20), 21);
            assertEquals(21, index.lookup(NAMES.get(20)));
            release.countDown();
            t.join();
            assertNull(failure.get());
            index.checkpoint(); // appends the insert made during the first one
        }
        try (UdsIndex index = UdsIndex.open(fs, "index", G)) {
            assertEquals(21, index.lookup(NAMES.get(20)));
        }
    }

    @Test
    void aFailedCheckpointIsRetriedWhole() throws IOException {
        boolean[] fail = {false};
        Fs fs = new DelegatingFs(new LocalFs(tmp)) {
            @Override
            public FileHandle open(String name, boolean create) throws IOException {
                FileHandle h = super.open(name, create);
                return new FileHandle() {
                    @Override public int read(long pos, java.nio.ByteBuffer dst) throws IOException { return h.read(pos, dst); }
                    @Override public long size() throws IOException { return h.size(); }
                    @Override public void truncate(long size) throws IOException { h.truncate(size); }
                    @Override public void close() throws IOException { h.close(); }
                    @Override public void sync() throws IOException { h.sync(); }

                    @Override
                    public void write(long pos, java.nio.ByteBuffer src) throws IOException {
                        if (fail[0] && name.contains("open-")) {
                            // half of it reaches the file, as a full disk would leave it
                            java.nio.ByteBuffer half = src.duplicate();
                            half.limit(half.position() + half.remaining() / 2);
                            h.write(pos, half);
                            throw new IOException("injected: no space left on device");
                        }
                        h.write(pos, src);
                    }
                };
            }
        };
        try (UdsIndex index = UdsIndex.open(fs, "index", G)) {
            for (int i = 0; i < 10; i++) index.insert(NAMES.get(i), 1 + i);
            index.checkpoint();
            for (int i = 10; i < 20; i++) index.insert(NAMES.get(i), 1 + i);
            fail[0] = true;
            assertThrows(IOException.class, index::checkpoint);
            fail[0] = false;
            assertEquals(SaveFileTest.filesBytes(fs, "index"), index.diskBytes(), "a torn append is counted as it is");
            index.checkpoint(); // a base again: the torn append is replaced
            assertEquals(SaveFileTest.filesBytes(fs, "index"), index.diskBytes());
        }
        try (UdsIndex index = UdsIndex.open(fs, "index", G)) {
            for (int i = 0; i < 20; i++) assertEquals(1 + i, index.lookup(NAMES.get(i)), "name " + i);
        }
    }
}
