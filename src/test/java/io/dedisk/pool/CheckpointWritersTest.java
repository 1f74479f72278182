package io.dedisk.pool;

import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.sim.SimFs;
import io.dedisk.store.DirectoryBackend;
import java.nio.ByteBuffer;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * A checkpoint does not pause writers for its whole dirty set (docs/decisions.md, "checkpoints in batches"): a
 * write and its FLUSH, and a clone, complete while the checkpoint is still writing its pages. Deterministic on the
 * simulated file system: a write hook holds each of the checkpoint's page writes until the writer is done or waits
 * for the lock again (with the old single hold under the write lock, the writer could only finish after the root).
 */
class CheckpointWritersTest {
    static final int BS = Pool.BLOCK_SIZE;
    /** Dirty leaves before the checkpoint: several batches' worth. */
    static final int LEAVES = 4 * Checkpointer.LEAVES_PER_HOLD + 10;

    static byte[] block(long seed) {
        byte[] b = new byte[BS];
        new Random(seed).nextBytes(b);
        return b;
    }

    static byte[] read(Pool p, String volume, long lba) {
        ByteBuffer b = ByteBuffer.allocate(BS);
        p.volume(volume).orElseThrow().read(lba * BS, b);
        return b.array();
    }

    @Test
    void aWriterAndACloneCompleteWhileTheCheckpointWritesItsPages() throws Exception {
        SimFs fs = new SimFs(7);
        Pool.create(fs, new Pool.Options(16 << 20, 1L << 40, 0, false)); // no checkpoint falls due by itself
        Pool pool = Pool.open(fs, Pool.OpenOptions.defaults().withBackground(task -> { }));
        long leafBlocks = BlockMap.LEAF_ENTRIES;
        pool.createVolume("v", (LEAVES + 1) * leafBlocks * BS);
        VolumeDevice v = pool.volume("v").orElseThrow();
        for (int i = 0; i < LEAVES; i++) v.write(i * leafBlocks * BS, ByteBuffer.wrap(block(i)), false);
        v.flush();
        pool.checkpoint(); // gold's pages durable, so the snapshot below shares them
        pool.createSnapshot("v", "gold");
        for (int i = 0; i < LEAVES; i++) v.write(i * leafBlocks * BS, ByteBuffer.wrap(block(1000 + i)), false); // dirty again
        v.flush();

        long late = LEAVES * leafBlocks; // in a leaf of its own, written while the checkpoint runs
        AtomicReference<Thread> checkpointThread = new AtomicReference<>();
        AtomicInteger pageWrites = new AtomicInteger();
        CountDownLatch writerDone = new CountDownLatch(1);
        AtomicBoolean doneDuringCheckpoint = new AtomicBoolean();
        AtomicReference<Throwable> writerFailed = new AtomicReference<>();
        fs.beforeWrite((name, pos, length) -> {
            if (Thread.currentThread() != checkpointThread.get() || !name.startsWith(DirectoryBackend.SEGMENTS + "/")) return;
            if (pageWrites.incrementAndGet() == 1) {
                Thread.ofPlatform().name("writer").start(() -> {
                    try {
                        v.write(late * BS, ByteBuffer.wrap(block(77)), false); // takes the lock twice: prepare, commit
                        v.flush();
                        pool.cloneSnapshot("v@gold", "vm1");
                    } catch (Throwable t) {
                        writerFailed.set(t);
                    } finally {
                        writerDone.countDown();
                    }
                });
            }
            if (doneDuringCheckpoint.get()) return;
            // Each page write of the checkpoint holds it until the writer is done or waits for the lock again, so
            // the writer's every turn at the lock comes at a known point: between two of the checkpoint's batches.
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (writerDone.getCount() > 0 && !pool.meta.hasQueuedThreads() && System.nanoTime() < deadline) Thread.onSpinWait();
            if (writerDone.getCount() == 0) doneDuringCheckpoint.set(true);
        });
        long pagesBefore = pool.stats().log().pagesWritten();
        Thread ck = Thread.ofPlatform().name("checkpoint").unstarted(() -> {
            try {
                pool.checkpoint();
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        });
        checkpointThread.set(ck);
        ck.start();
        ck.join(TimeUnit.SECONDS.toMillis(60));
        assertFalse(ck.isAlive(), "the checkpoint finished");
        fs.beforeWrite(null);
        assertTrue(writerDone.await(10, TimeUnit.SECONDS));
        assertNull(writerFailed.get(), () -> "the writer failed: " + writerFailed.get());
        assertTrue(doneDuringCheckpoint.get(), "the write, its FLUSH and the clone completed while the checkpoint was still writing pages ("
                + pageWrites.get() + " writes)");
        assertTrue(pageWrites.get() > 2, "the checkpoint wrote its leaves in several writes: " + pageWrites.get());
        assertTrue(pool.stats().log().pagesWritten() - pagesBefore >= LEAVES, "every dirty leaf was written");

        for (int i = 0; i < LEAVES; i++) {
            assertArrayEquals(block(1000 + i), read(pool, "v", i * leafBlocks), "v, leaf " + i);
            assertArrayEquals(block(i), read(pool, "vm1", i * leafBlocks), "the clone holds the snapshot's data, leaf " + i);
        }
        assertArrayEquals(block(77), read(pool, "v", late));
        PoolChecker.Report live = PoolChecker.check(pool);
        assertTrue(live.ok(), live.toText());

        // A machine crash now: the flushed write and the clone survive, and the pool is consistent.
        try (Pool q = Pool.open(fs.machineCrash(11), Runnable::run)) {
            assertArrayEquals(block(77), read(q, "v", late), "the write flushed during the checkpoint");
            for (int i = 0; i < LEAVES; i++) {
                assertArrayEquals(block(1000 + i), read(q, "v", i * leafBlocks), "v after the crash, leaf " + i);
                assertArrayEquals(block(i), read(q, "vm1", i * leafBlocks), "vm1 after the crash, leaf " + i);
            }
            PoolChecker.Report rep = PoolChecker.check(q);
            assertTrue(rep.ok(), rep.toText());
        }
    }
}
