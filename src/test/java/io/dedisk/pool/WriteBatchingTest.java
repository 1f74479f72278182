package io.dedisk.pool;

import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.store.LocalFs;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The write path's batching and buffer reuse (docs/decisions.md, "Write path allocation"): writes from direct
 * buffers (how NBD payloads arrive) go through recycled batch arrays and must land byte for byte; WRITE records of
 * up to {@link WritePipeline#RECORD_MAX_BLOCKS} blocks (what pools written with 1 MiB batches hold) still replay
 * although the pipeline now makes records of {@link WritePipeline#BATCH_BLOCKS}.
 */
class WriteBatchingTest {
    static final int BS = Pool.BLOCK_SIZE;
    @TempDir Path dir;

    @Test
    void batchArraysAreRecycledAndBounded() {
        BatchArrays arrays = new BatchArrays();
        byte[] a = arrays.take();
        assertEquals(BatchArrays.BYTES, a.length);
        arrays.giveBack(a);
        assertSame(a, arrays.take(), "a given-back array is reused");
        byte[][] out = new byte[BatchArrays.MAX_FREE + 5][];
        for (int i = 0; i < out.length; i++) out[i] = arrays.take();
        for (byte[] x : out) arrays.giveBack(x);
        assertEquals(BatchArrays.MAX_FREE, arrays.freeCount(), "at most MAX_FREE arrays kept");
        assertThrows(io.dedisk.util.Check.InvariantViolation.class, () -> arrays.giveBack(new byte[BS]));
    }

    /** Direct-buffer writes longer than a batch, unaligned at both ends, with zero, duplicate and random blocks. */
    @Test
    void directBufferWritesLandExactlyAndSurviveReopen() throws Exception {
        Pool.create(new LocalFs(dir), new Pool.Options(1 << 20, 4 << 20, 16 << 20, false));
        int blocks = 3 * WritePipeline.BATCH_BLOCKS + 17;
        long size = (long) (blocks + 8) * BS;
        byte[] expected = new byte[(int) size];
        Random r = new Random(7);
        try (Pool pool = Pool.open(new LocalFs(dir))) {
            pool.createVolume("v", size);
            VolumeDevice v = pool.volume("v").orElseThrow();
            for (int round = 0; round < 4; round++) {
                int offset = r.nextInt(4 * BS) + (round == 0 ? 0 : 1);
                int length = blocks * BS - r.nextInt(BS);
                byte[] data = new byte[length];
                for (int b = 0; b * BS < length; b++) {
                    int kind = r.nextInt(3); // random, a repeated pattern (dedup within the write), or zeros
                    for (int i = b * BS; i < Math.min(length, (b + 1) * BS); i++) {
                        data[i] = kind == 0 ? (byte) r.nextInt() : kind == 1 ? (byte) (round + 1) : 0;
                    }
                }
                ByteBuffer direct = ByteBuffer.allocateDirect(length).put(data).flip();
                v.write(offset, direct, round == 3);
                assertFalse(direct.hasRemaining(), "the write consumed its buffer");
                System.arraycopy(data, 0, expected, offset, length);
                assertArrayEquals(expected, readAll(v, size), "after round " + round);
            }
            assertTrue(pool.batchArrays.freeCount() > 0, "the copies went through recycled arrays");
            assertTrue(PoolChecker.check(pool).ok());
        }
        try (Pool pool = Pool.open(new LocalFs(dir))) {
            assertArrayEquals(expected, readAll(pool.volume("v").orElseThrow(), size));
        }
    }

    /** A 256-block record, as pools written before the 64-block batches hold, is written, replayed and read back. */
    @Test
    void recordsOfTheFormatsLargestSizeStillReplay() throws Exception {
        Pool.create(new LocalFs(dir), new Pool.Options(1 << 20, 4 << 20, 16 << 20, false));
        byte[] blocks = new byte[WritePipeline.RECORD_MAX_BLOCKS * BS];
        new Random(11).nextBytes(blocks);
        try (Pool pool = Pool.open(new LocalFs(dir))) {
            pool.createVolume("v", blocks.length);
            pool.commitWrites(List.of(pool.prepareWrite("v", 0, blocks)));
            pool.flush();
            assertThrows(io.dedisk.util.Check.InvariantViolation.class,
                    () -> pool.prepareWrite("v", 0, new byte[(WritePipeline.RECORD_MAX_BLOCKS + 1) * BS]));
        }
        try (Pool pool = Pool.open(new LocalFs(dir))) {
            assertArrayEquals(blocks, readAll(pool.volume("v").orElseThrow(), blocks.length));
            assertEquals(WritePipeline.RECORD_MAX_BLOCKS, pool.stats().liveChunks());
        }
    }

    private static byte[] readAll(VolumeDevice v, long size) {
        ByteBuffer out = ByteBuffer.allocate((int) size);
        v.read(0, out);
        return out.array();
    }
}
