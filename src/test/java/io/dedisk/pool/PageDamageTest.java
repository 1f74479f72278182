package io.dedisk.pool;

import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.DediskException.CorruptionException;
import io.dedisk.sim.SimFs;
import io.dedisk.store.DirectoryBackend;
import java.nio.ByteBuffer;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Bit rot in a stored metadata page: detected by the CRC its parent holds, contained to the LBAs it maps. */
class PageDamageTest {
    static final int BS = Pool.BLOCK_SIZE;

    @Test
    void aRottedBlockMapPageFailsOnlyItsBlocks() throws Exception {
        SimFs fs = new SimFs(3);
        Pool.create(fs, new Pool.Options(1 << 20, 1L << 30, 0, false));
        byte[] data = new byte[4096 * BS];
        new Random(4).nextBytes(data);
        java.util.UUID poolId;
        try (Pool p = Pool.open(fs, Runnable::run)) {
            poolId = p.poolId();
            p.createVolume("v", 4096L * BS); // 4 block-map leaves under one interior root
            p.volume("v").orElseThrow().write(0, ByteBuffer.wrap(data), false);
        }
        // The newest version of leaf 1 of volume 1: the last PAGE record naming it.
        long[] found = {0, -1};
        for (long seq : new DirectoryBackend(fs).segments()) {
            byte[] seg = fs.readAll(DirectoryBackend.segmentName(seq));
            LogReader.walk(seg, 0, LogReader.ANY_LSN, seq, poolId, r -> {
                ByteBuffer pl = r.payload();
                if (r.type() == LogRecord.PAGE && pl.get(0) == MetaPage.KIND_MAP_LEAF && pl.getInt(4) == 1 && pl.getLong(8) == 1) {
                    found[0] = seq;
                    found[1] = r.payloadOffset();
                }
                return true;
            });
        }
        assertTrue(found[1] > 0, "leaf 1 was written by a checkpoint");
        fs.flipBit(DirectoryBackend.segmentName(found[0]), found[1] + MetaPage.HEADER + 100, 5);
        try (Pool q = Pool.open(fs, Pool.OpenOptions.defaults().withBackground(Runnable::run).withMetadataCache(0))) {
            VolumeDevice v = q.volume("v").orElseThrow();
            ByteBuffer ok = ByteBuffer.allocate(1024 * BS);
            v.read(0, ok);
            assertArrayEquals(java.util.Arrays.copyOfRange(data, 0, 1024 * BS), ok.array(), "leaf 0's blocks are served");
            CorruptionException e = assertThrows(CorruptionException.class, () -> v.read(1500L * BS, ByteBuffer.allocate(BS)));
            assertTrue(e.getMessage().contains("metadata page"), e.getMessage());
            assertThrows(CorruptionException.class, () -> v.write(1500L * BS, ByteBuffer.wrap(new byte[BS]), false),
                    "a write that needs the damaged page fails before anything is logged");
            assertNull(q.readOnlyReason(), "nothing was appended that memory could not follow");
            ByteBuffer later = ByteBuffer.allocate(1024 * BS);
            v.read(2048L * BS, later);
            assertArrayEquals(java.util.Arrays.copyOfRange(data, 2048 * BS, 3072 * BS), later.array(), "leaf 2's blocks are served");
            PoolChecker.Report report = PoolChecker.check(q);
            assertFalse(report.ok());
            assertTrue(report.toText().contains("metadata page"), report.toText());
        }
    }
}
