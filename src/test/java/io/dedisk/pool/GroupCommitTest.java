package io.dedisk.pool;

import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.store.LocalFs;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Group commit under real concurrency: many writers whose batches are committed by each other, with contents that
 * collide across writers (shared chunks created and released inside one group) and overwrites that kill chunks
 * other batches of the same group want to share. Each writer owns a region, so the final content is known.
 */
class GroupCommitTest {
    static final int BS = Pool.BLOCK_SIZE;
    @TempDir Path dir;

    @Test
    void concurrentWritersWithCollidingContentStayConsistentAcrossReopen() throws Exception {
        Pool.create(new LocalFs(dir), new Pool.Options(1 << 20, 4 << 20, 16 << 20, false));
        int writers = 16;
        int regionBlocks = 64;
        byte[][] patterns = new byte[8][BS];
        for (int p = 0; p < patterns.length; p++) Arrays.fill(patterns[p], (byte) (p + 1));
        byte[][] expected = new byte[writers][];
        TrackedBackground background = new TrackedBackground();
        try (Pool pool = Pool.open(new LocalFs(dir), background); ExecutorService ex = Executors.newVirtualThreadPerTaskExecutor()) {
            pool.createVolume("v", (long) writers * regionBlocks * BS);
            VolumeDevice v = pool.volume("v").orElseThrow();
            List<Future<?>> fs = new ArrayList<>();
            for (int t = 0; t < writers; t++) {
                int writer = t;
                fs.add(ex.submit(() -> {
                    Random r = new Random(writer);
                    byte[] region = new byte[regionBlocks * BS];
                    for (int i = 0; i < 300; i++) {
                        int first = r.nextInt(regionBlocks);
                        int n = 1 + r.nextInt(Math.min(8, regionBlocks - first));
                        byte[] data = new byte[n * BS];
                        for (int b = 0; b < n; b++) {
                            byte[] src = r.nextInt(5) == 0 ? randomBlock(r) : patterns[r.nextInt(patterns.length)];
                            System.arraycopy(src, 0, data, b * BS, BS);
                        }
                        v.write(((long) writer * regionBlocks + first) * BS, ByteBuffer.wrap(data), r.nextInt(50) == 0);
                        System.arraycopy(data, 0, region, first * BS, data.length);
                    }
                    expected[writer] = region;
                    return null;
                }));
            }
            for (Future<?> f : fs) f.get();
            background.awaitIdle();
            verify(pool, expected, regionBlocks);
            PoolChecker.Report report = PoolChecker.check(pool);
            assertTrue(report.ok(), report.toText());
            assertTrue(pool.stats().liveChunks() < writers * 300L, "patterns are shared, not stored per write");
        }
        TrackedBackground afterOpen = new TrackedBackground();
        try (Pool pool = Pool.open(new LocalFs(dir), afterOpen)) { // an open that replayed a tail queues a checkpoint
            verify(pool, expected, regionBlocks);
            afterOpen.awaitIdle();
            assertTrue(PoolChecker.check(pool).ok());
        }
    }

    /**
     * Real threads: writers and readers race the cleaner, checkpoints and flushes on one pool with a minimal
     * metadata cache (pages evicted and reloaded under load) and small segments (rotations, cleaning, deletion).
     */
    @Test
    void writersAndReadersRaceTheCleanerAndCheckpoints() throws Exception {
        Pool.create(new LocalFs(dir), new Pool.Options(1 << 20, 1 << 20, 0, false));
        int writers = 6;
        int regionBlocks = 256;
        byte[][] expected = new byte[writers][regionBlocks * BS];
        java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
        TrackedBackground queued = new TrackedBackground();
        try (Pool pool = Pool.open(new LocalFs(dir), Pool.OpenOptions.defaults().withMetadataCache(0).withBackground(queued));
             ExecutorService ex = Executors.newVirtualThreadPerTaskExecutor()) {
            pool.createVolume("v", (long) writers * regionBlocks * BS);
            VolumeDevice v = pool.volume("v").orElseThrow();
            Future<Integer> background = ex.submit(() -> {
                int rounds = 0;
                while (!stop.get()) {
                    pool.clean(2, 0.99);
                    pool.checkpoint();
                    rounds++;
                }
                return rounds;
            });
            List<Future<?>> fs = new ArrayList<>();
            for (int t = 0; t < writers; t++) {
                int writer = t;
                fs.add(ex.submit(() -> {
                    Random r = new Random(100 + writer);
                    for (int i = 0; i < 400; i++) {
                        int first = r.nextInt(regionBlocks);
                        int n = 1 + r.nextInt(Math.min(16, regionBlocks - first));
                        long off = ((long) writer * regionBlocks + first) * BS;
                        if (r.nextInt(4) == 0) { // a read of our own region must see our last writes
                            ByteBuffer got = ByteBuffer.allocate(n * BS);
                            v.read(off, got);
                            assertArrayEquals(Arrays.copyOfRange(expected[writer], first * BS, (first + n) * BS), got.array(), "writer " + writer + " read");
                            continue;
                        }
                        byte[] data = new byte[n * BS];
                        for (int b = 0; b < n; b++) System.arraycopy(randomBlock(r), 0, data, b * BS, BS);
                        v.write(off, ByteBuffer.wrap(data), r.nextInt(20) == 0);
                        System.arraycopy(data, 0, expected[writer], first * BS, data.length);
                    }
                    return null;
                }));
            }
            for (Future<?> f : fs) f.get();
            stop.set(true);
            assertTrue(background.get() > 0, "the cleaner and checkpoints ran while the writers wrote");
            queued.awaitIdle();
            verify(pool, expected, regionBlocks);
            PoolChecker.Report report = PoolChecker.check(pool);
            assertTrue(report.ok(), report.toText());
            assertTrue(pool.stats().log().segmentsDeleted() > 0, "cleaned segments were deleted under load");
            long onDisk;
            try (var segs = java.nio.file.Files.list(dir.resolve("segments"))) {
                onDisk = segs.mapToLong(f -> f.toFile().length()).sum();
            }
            assertEquals(onDisk, pool.stats().logBytes(), "the pool's segment sizes are the files' (every append, seal and page batch counted)");
            assertNull(pool.readOnlyReason());
        }
        TrackedBackground afterOpen = new TrackedBackground();
        try (Pool pool = Pool.open(new LocalFs(dir), afterOpen)) { // an open that replayed a tail queues a checkpoint
            verify(pool, expected, regionBlocks);
            afterOpen.awaitIdle();
            assertTrue(PoolChecker.check(pool).ok());
        }
    }

    @Test
    void aChunkReleasedEarlierInTheGroupIsNotSharedByALaterRecord() throws Exception {
        Pool.create(new LocalFs(dir), new Pool.Options(1 << 20, 4 << 20, 16 << 20, false));
        byte[] x = randomBlock(new Random(1));
        byte[] y = randomBlock(new Random(2));
        try (Pool pool = Pool.open(new LocalFs(dir))) {
            pool.createVolume("v", 1 << 20);
            VolumeDevice v = pool.volume("v").orElseThrow();
            v.write(0, ByteBuffer.wrap(x), false); // chunk X, one reference
            VolumeState state = pool.volumeStates().get(0);
            // One group: the first record releases X's last reference, the second writes X's content elsewhere.
            pool.writePipeline().commit(List.of(pool.writePipeline().prepare(state, 0, y, 0, 1), pool.writePipeline().prepare(state, 10, x, 0, 1)));
            ByteBuffer got = ByteBuffer.allocate(BS);
            v.read(10L * BS, got);
            assertArrayEquals(x, got.array());
            assertTrue(PoolChecker.check(pool).ok());
        }
        try (Pool pool = Pool.open(new LocalFs(dir))) {
            assertTrue(PoolChecker.check(pool).ok(), "the log replays: no record references a chunk an earlier record killed");
        }
    }

    /**
     * The pool's background work (sync-ahead, checkpoints queued when due), on virtual threads the test can wait out:
     * the checker and the segment listing below must not race a queued checkpoint deleting segments. (The CLI's
     * check opens the pool read-only, where no such work runs.)
     */
    private static final class TrackedBackground implements java.util.concurrent.Executor {
        private final java.util.concurrent.atomic.AtomicInteger running = new java.util.concurrent.atomic.AtomicInteger();

        @Override
        public void execute(Runnable task) {
            running.incrementAndGet();
            Thread.ofVirtual().name("dedisk-background").start(() -> {
                try {
                    task.run();
                } finally {
                    running.decrementAndGet();
                }
            });
        }

        void awaitIdle() throws InterruptedException {
            long deadline = System.nanoTime() + 60_000_000_000L;
            while (running.get() > 0) {
                assertTrue(System.nanoTime() < deadline, "background work still running after 60 s: " + running.get() + " tasks");
                Thread.sleep(1);
            }
        }
    }

    private static byte[] randomBlock(Random r) {
        byte[] b = new byte[BS];
        r.nextBytes(b);
        return b;
    }

    private static void verify(Pool pool, byte[][] expected, int regionBlocks) {
        VolumeDevice v = pool.volume("v").orElseThrow();
        for (int w = 0; w < expected.length; w++) {
            ByteBuffer got = ByteBuffer.allocate(regionBlocks * BS);
            v.read((long) w * regionBlocks * BS, got);
            assertArrayEquals(expected[w], got.array(), "region of writer " + w);
        }
    }
}
