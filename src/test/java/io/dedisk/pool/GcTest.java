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

    /**
     * gc moves no segment that is 95 % live or more (it would write 19 bytes per byte freed) and says how much of
     * the segments is still not live; a segment below that line is cleaned, and the data stays.
     */
    @Test
    void gcLeavesSegmentsNotWorthMovingAndCleansTheRest() throws Exception {
        SimFs fs = new SimFs(7);
        Pool.create(fs, new Pool.Options(1 << 20, 64 << 20, 0, false));
        int n = 2048; // 8 MiB of incompressible blocks: 8 segments and some
        byte[] model = blocks(70, n);
        try (Pool p = Pool.open(fs, Runnable::run)) {
            p.createVolume("v", (long) n * BS);
            VolumeDevice v = p.volume("v").orElseThrow();
            v.write(0, ByteBuffer.wrap(model), false);
            // A little garbage in every segment: 2 blocks out of each 256 written again.
            for (int at = 0; at < n; at += 256) {
                byte[] d = blocks(71 + at, 2);
                v.write((long) at * BS, ByteBuffer.wrap(d), false);
                System.arraycopy(d, 0, model, at * BS, d.length);
            }
            v.flush();
            p.checkpoint();
            Pool.GcResult light = p.gc();
            assertEquals(0, light.segmentsCleaned(), "segments 95 % live or more are left: " + light);
            assertEquals(0, p.stats().log().cleanerBytesMoved(), "nothing moved");
            assertTrue(light.notLiveAfter() >= 16L * BS, "the garbage left is reported: " + light);

            // Half of the first 256 blocks written again: their segment is about half live now.
            byte[] d = blocks(90, 128);
            v.write(0, ByteBuffer.wrap(d), false);
            System.arraycopy(d, 0, model, 0, d.length);
            v.flush();
            Pool.GcResult heavy = p.gc();
            assertTrue(heavy.segmentsCleaned() >= 1, "a segment below 95 % live is cleaned: " + heavy);
            assertTrue(p.stats().log().cleanerBytesMoved() > 0);
            assertTrue(heavy.bytesAfter() < heavy.bytesBefore(), heavy.toString());
            assertArrayEquals(model, read(p, 0, model.length), "gc moved nothing but bytes");
            assertTrue(PoolChecker.check(p).ok(), PoolChecker.check(p).toText());
        }
    }
}
