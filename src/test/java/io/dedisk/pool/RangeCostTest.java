package io.dedisk.pool;

import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.sim.SimFs;
import java.nio.ByteBuffer;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Range operations cost the pages they touch, not the range: counted as metadata pages read from the log (cache
 * misses, on a cold cache), not timed.
 */
class RangeCostTest {
    static final int BS = Pool.BLOCK_SIZE;

    static long lookups(Pool p) { return p.stats().cache().misses(); }

    /** Writes the four blocks, checkpoints and reopens: the next operation starts on a cold metadata cache. */
    static Pool coldWithBlocks(SimFs fs, Pool p, long[] lbas, byte[] block) throws Exception {
        VolumeDevice v = p.volume("big").orElseThrow();
        for (long lba : lbas) v.write(lba * BS, ByteBuffer.wrap(block), false);
        p.close();
        return Pool.open(fs, Runnable::run);
    }

    @Test
    void trimResizeAndDeleteOfAPebibyteVolumeTouchOnlyItsMappedPages() throws Exception {
        SimFs fs = new SimFs(9);
        Pool.create(fs, new Pool.Options(1 << 20, 1L << 30, 0, false));
        long size = 1L << 50; // 1 PiB: 2^38 blocks, 2^28 block-map leaves under 4 levels of interior pages
        byte[] block = new byte[BS];
        new Random(1).nextBytes(block);
        long[] lbas = {0, 1L << 30, (1L << 37) + 5, (1L << 38) - 1};
        Pool first = Pool.open(fs, Runnable::run);
        first.createVolume("big", size);
        try (Pool p = coldWithBlocks(fs, first, lbas, block)) {
            assertEquals(4, p.stats().mappedBlocks());
            long before = lookups(p);
            p.volume("big").orElseThrow().trim(0, size, false);
            long trim = lookups(p) - before;
            assertEquals(0, p.stats().mappedBlocks());
            // 4 leaves + at most 4 x 3 interiors below the root + the root + the 4 chunk-table leaf and its root.
            assertTrue(trim <= 20, "trimming 1 PiB read " + trim + " pages, not 2^28 leaves");
        }
        Pool second = Pool.open(fs, Runnable::run);
        try (Pool p = coldWithBlocks(fs, second, lbas, block)) {
            long before = lookups(p);
            p.resizeVolume("big", 1L << 40);
            assertTrue(lookups(p) - before <= 20, "shrinking 1 PiB to 1 TiB read " + (lookups(p) - before) + " pages");
            assertEquals(1, p.stats().mappedBlocks(), "the block below 1 TiB (LBA 0) stays");
        }
        try (Pool p = Pool.open(fs, Runnable::run)) {
            long before = lookups(p);
            p.deleteVolume("big");
            assertTrue(lookups(p) - before <= 20, "deleting read " + (lookups(p) - before) + " pages");
            assertEquals(0, p.stats().liveChunks(), "the delete released the chunk");
            PoolChecker.Report r = PoolChecker.check(p);
            assertTrue(r.ok(), r.toText());
        }
    }
}
