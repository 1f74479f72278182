package io.dedisk.pool;

import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.sim.SimFs;
import java.nio.ByteBuffer;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The cleaner and segment deletion: space comes back, nothing is lost, and the pool replays after it. */
class GcTest {
    static final int BS = Pool.BLOCK_SIZE;

    static byte[] blocks(long seed, int n) {
        byte[] b = new byte[n * BS];
        new Random(seed).nextBytes(b);
        return b;
    }

    static byte[] read(Pool p, long off, int len) {
        ByteBuffer b = ByteBuffer.allocate(len);
        p.volume("v").orElseThrow().read(off, b);
        return b.array();
    }

    @Test
    void overwritesAreReclaimedAndTheDataStays() throws Exception {
        SimFs fs = new SimFs(1);
        Pool.create(fs, new Pool.Options(1 << 20, 4 << 20, 0, false));
        byte[] model = new byte[256 * BS];
        long before;
        try (Pool p = Pool.open(fs, Runnable::run)) {
            p.createVolume("v", 256L * BS);
            VolumeDevice v = p.volume("v").orElseThrow();
            Random r = new Random(2);
            for (int round = 0; round < 12; round++) {
                for (int i = 0; i < 64; i++) {
                    int lba = r.nextInt(256 - 8);
                    byte[] d = blocks(round * 1000L + i, 8);
                    v.write((long) lba * BS, ByteBuffer.wrap(d), false);
                    System.arraycopy(d, 0, model, lba * BS, d.length);
                }
            }
            v.flush();
            PoolStats s = p.stats();
            before = s.logBytes();
            assertTrue(s.garbageBytes() > s.dataBytes(), "overwrites left garbage: " + s.garbageBytes() + " vs data " + s.dataBytes());
            Pool.GcResult gc = p.gc();
            assertTrue(gc.segmentsCleaned() > 0, "segments cleaned");
            PoolStats after = p.stats();
            assertTrue(after.logBytes() < before / 2, "the log shrank from " + before + " to " + after.logBytes());
            assertTrue(after.log().segmentsDeleted() > 0);
            assertTrue(after.log().cleanerBytesMoved() > 0);
            assertArrayEquals(model, read(p, 0, model.length), "GC moved nothing but bytes");
            PoolChecker.Report rep = PoolChecker.check(p);
            assertTrue(rep.ok(), rep.toText());
        }
        try (Pool q = Pool.open(fs, Runnable::run)) {
            assertArrayEquals(model, read(q, 0, model.length), "after a clean reopen");
            assertTrue(PoolChecker.check(q).ok(), PoolChecker.check(q).toText());
        }
        // A crash right after GC (no clean close): replay from the newest root still finds everything.
        Pool p2 = Pool.open(fs, Runnable::run);
        p2.volume("v").orElseThrow().write(0, ByteBuffer.wrap(blocks(99, 4)), true);
        System.arraycopy(blocks(99, 4), 0, model, 0, 4 * BS);
        p2.gc();
        try (Pool q = Pool.open(fs.machineCrash(3), Runnable::run)) {
            assertArrayEquals(model, read(q, 0, model.length), "after a machine crash following GC");
            PoolChecker.Report rep = PoolChecker.check(q);
            assertTrue(rep.ok(), rep.toText());
        }
    }
}
