package io.dedisk.sim;

import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.DediskException;
import io.dedisk.DediskException.CorruptionException;
import io.dedisk.pool.Pool;
import io.dedisk.pool.PoolChecker;
import io.dedisk.pool.VolumeDevice;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** One test per fault of the fault model (docs/fault-model.md) that is not a crash: what is detected, what is contained. */
class FaultTest {
    static final int BS = DiskModel.BS;

    static Pool fresh(SimFs fs) throws Exception {
        Pool.create(fs, SimulationTest.smallSegments());
        Pool p = SimulationTest.open(fs);
        p.createVolume("v", 512L * BS);
        return p;
    }

    static byte[] random(Random r, int n) { byte[] b = new byte[n]; r.nextBytes(b); return b; }

    static byte[] read(Pool p, long off, int len) {
        ByteBuffer b = ByteBuffer.allocate(len);
        p.volume("v").orElseThrow().read(off, b);
        return b.array();
    }

    @Test
    void failedFsyncMakesThePoolReadOnlyAndKeepsWhatWasFlushed() throws Exception {
        SimFs fs = new SimFs(1);
        Pool p = fresh(fs);
        VolumeDevice v = p.volume("v").orElseThrow();
        byte[] a = random(new Random(1), 64 * BS);
        v.write(0, ByteBuffer.wrap(a), false);
        v.flush();
        v.write(64 * BS, ByteBuffer.wrap(random(new Random(2), 8 * BS)), false);
        fs.failSyncs(1);
        assertThrows(DediskException.StorageException.class, v::flush, "a failed fsync is reported, not hidden");
        assertNotNull(p.readOnlyReason());
        assertThrows(DediskException.ReadOnlyException.class, () -> v.write(0, ByteBuffer.wrap(new byte[BS]), false));
        assertThrows(DediskException.ReadOnlyException.class, v::flush, "no later flush pretends the lost writes are safe");
        assertArrayEquals(a, read(p, 0, a.length), "reads go on");
        assertTrue(p.volume("v").orElseThrow().readOnly(), "NBD exports it read-only");
        // After a restart (the kernel may have dropped the dirty pages: a machine crash) the flushed data is there.
        try (Pool q = SimulationTest.open(fs.machineCrash(5))) {
            assertArrayEquals(a, read(q, 0, a.length));
            assertTrue(PoolChecker.check(q).ok());
        }
    }

    @Test
    void fullDiskFailsTheWriteAndLosesNothing() throws Exception {
        SimFs fs = new SimFs(2);
        Pool p = fresh(fs);
        VolumeDevice v = p.volume("v").orElseThrow();
        byte[] a = random(new Random(3), 128 * BS);
        v.write(0, ByteBuffer.wrap(a), true);
        fs.capacity(fs.usedBytes() + 100 * BS); // just above what the pool uses now
        DediskException e = assertThrows(DediskException.NoSpaceException.class, () -> {
            for (int i = 0; i < 100; i++) v.write(128L * BS + (long) i * 4 * BS, ByteBuffer.wrap(random(new Random(10 + i), 4 * BS)), false);
        });
        assertTrue(e.getMessage().contains("full"), e.getMessage());
        assertArrayEquals(a, read(p, 0, a.length), "earlier data intact");
        v.write(0, ByteBuffer.wrap(a), false); // a duplicate needs no data space: only a small record
        fs.capacity(Long.MAX_VALUE);
        v.flush();
        try (Pool q = SimulationTest.open(fs)) {
            assertArrayEquals(a, read(q, 0, a.length));
            assertTrue(PoolChecker.check(q).ok(), PoolChecker.check(q).toText());
        }
    }

    @Test
    void ioErrorsFailRequestsButNeverReturnWrongData() throws Exception {
        Random r = new Random(4);
        SimFs fs = new SimFs(4);
        Pool p = fresh(fs);
        VolumeDevice v = p.volume("v").orElseThrow();
        byte[] model = new byte[512 * BS];
        fs.ioErrorRate(0.2);
        int failures = 0;
        for (int i = 0; i < 300; i++) {
            int off = r.nextInt(500) * BS;
            int len = (1 + r.nextInt(8)) * BS;
            try {
                if (r.nextBoolean()) {
                    byte[] d = DiskModel.content(r, len);
                    try {
                        v.write(off, ByteBuffer.wrap(d), false);
                        System.arraycopy(d, 0, model, off, len);
                    } catch (DediskException.StorageException failedWrite) {
                        failures++;
                        fs.ioErrorRate(0);
                        byte[] now = read(p, off, len); // each block old or new, nothing else
                        for (int b = 0; b < len / BS; b++) {
                            byte[] got = Arrays.copyOfRange(now, b * BS, (b + 1) * BS);
                            assertTrue(Arrays.equals(got, Arrays.copyOfRange(model, off + b * BS, off + (b + 1) * BS))
                                    || Arrays.equals(got, Arrays.copyOfRange(d, b * BS, (b + 1) * BS)), "failed write left block old or new");
                        }
                        System.arraycopy(now, 0, model, off, len);
                        fs.ioErrorRate(0.2);
                    }
                } else {
                    assertArrayEquals(Arrays.copyOfRange(model, off, off + len), read(p, off, len), "a read that succeeds is right");
                }
            } catch (DediskException.StorageException | DediskException.ReadOnlyException e) {
                failures++;
            }
        }
        assertTrue(failures > 10, "errors were injected: " + failures);
    }

    @Test
    void bitRotInAChunkBodyFailsOnlyThatBlock() throws Exception {
        SimFs fs = new SimFs(5);
        Pool p = fresh(fs);
        byte[] a = random(new Random(6), 400 * BS); // several 1 MiB segments: the first is sealed
        p.volume("v").orElseThrow().write(0, ByteBuffer.wrap(a), true);
        p.close();
        // Flip a bit in the middle of a sealed segment (raw bodies: random data does not compress).
        String victim = "segments/0000000000000002.seg";
        assertTrue(fs.fileSize(victim) > 3 * 64 * BS, "segment 2 holds several 64-block write records");
        fs.flipBit(victim, fs.fileSize(victim) / 2, 3);
        try (Pool q = SimulationTest.open(fs)) {
            int bad = 0;
            for (int b = 0; b < 400; b++) {
                try {
                    assertArrayEquals(Arrays.copyOfRange(a, b * BS, (b + 1) * BS), read(q, (long) b * BS, BS), "block " + b);
                } catch (CorruptionException e) {
                    bad++;
                    assertTrue(e.getMessage().contains("CRC32C"), e.getMessage());
                }
            }
            assertEquals(1, bad, "exactly the damaged block fails, none returns wrong data");
            PoolChecker.Report report = PoolChecker.check(q);
            assertFalse(report.ok());
            assertTrue(report.toText().contains("v LBA"), "check names the affected LBA: " + report.toText());
            assertTrue(q.stats().corruptReads() > 0);
        }
    }

    @Test
    void damagedMetadataInASealedSegmentMakesThePoolReadOnlyAndPoisonsLaterBlocks() throws Exception {
        SimFs fs = new SimFs(7);
        Pool p = fresh(fs);
        VolumeDevice v = p.volume("v").orElseThrow();
        byte[] a = random(new Random(8), 200 * BS);
        v.write(0, ByteBuffer.wrap(a), false);   // segment 1
        byte[] b = random(new Random(9), 250 * BS);
        v.write(200L * BS, ByteBuffer.wrap(b), true); // segments 1-2 (spills over)
        // No clean close: replay starts at the log's beginning, so the damage is met during replay.
        long recordOffset = 48 + 1 + 200; // inside the first WRITE record's header region of segment 1
        fs.flipBit("segments/0000000000000001.seg", recordOffset, 1);
        try (Pool q = SimulationTest.open(fs)) {
            assertNotNull(q.readOnlyReason(), "metadata that cannot be trusted makes the pool read-only");
            assertThrows(DediskException.ReadOnlyException.class, () -> q.volume("v").orElseThrow().write(0, ByteBuffer.wrap(new byte[BS]), false));
            int served = 0;
            for (int blk = 0; blk < 450; blk++) {
                byte[] expected = blk < 200 ? Arrays.copyOfRange(a, blk * BS, (blk + 1) * BS) : Arrays.copyOfRange(b, (blk - 200) * BS, (blk - 199) * BS);
                try {
                    assertArrayEquals(expected, read(q, (long) blk * BS, BS), "block " + blk + " is right if it is served");
                    served++;
                } catch (CorruptionException e) {
                    // poisoned: its latest write is past the damage
                }
            }
            assertTrue(served < 450, "blocks written after the damage are not served from stale state");
            assertFalse(PoolChecker.check(q).ok());
        }
    }

    @Test
    void corruptNewestCheckpointRootFallsBackToThePreviousOne() throws Exception {
        SimFs fs = new SimFs(10);
        Pool p = fresh(fs);
        byte[] a = random(new Random(11), 300 * BS);
        p.volume("v").orElseThrow().write(0, ByteBuffer.wrap(a), false);
        p.checkpoint();
        p.volume("v").orElseThrow().write(0, ByteBuffer.wrap(a, 0, BS), false);
        p.close();
        // The manifest names the newest root (offset 40: u64 address = segment << 32 | offset): rot one bit of it.
        long address = ByteBuffer.wrap(fs.readAll("manifest")).order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong(40);
        fs.flipBit(String.format("segments/%016x.seg", address >>> 32), (address & 0xffffffffL) + 40, 0);
        // Background tasks are dropped: the checkpoint an open after a replay queues would replace the bad root.
        try (Pool q = Pool.open(fs, task -> { })) {
            assertArrayEquals(a, read(q, 0, a.length));
            assertTrue(PoolChecker.check(q).problems().stream().anyMatch(m -> m.contains("newest checkpoint root")), "check reports the bad root");
        }
    }

    @Test
    void aDamagedIndexIsDiscardedAndDataStays() throws Exception {
        SimFs fs = new SimFs(12);
        Pool p = fresh(fs);
        byte[] a = random(new Random(13), 100 * BS);
        p.volume("v").orElseThrow().write(0, ByteBuffer.wrap(a), false);
        p.close();
        fs.flipBit("index/header", 10, 2);
        try (Pool q = SimulationTest.open(fs)) {
            assertArrayEquals(a, read(q, 0, a.length));
            assertEquals(0, q.stats().index().entries(), "the damaged index started empty");
            q.volume("v").orElseThrow().write(200L * BS, ByteBuffer.wrap(a, 0, BS), false);
            assertEquals(101, q.stats().liveChunks(), "stored again as a new chunk: the old advice is gone");
            assertTrue(PoolChecker.check(q).ok());
        }
    }

    @Test
    void aFullDiskIsAStateThePoolLivesThrough() throws Exception {
        SimFs fs = new SimFs(14);
        Pool.create(fs, new Pool.Options(1 << 20, 8 << 20, 0, false));
        Pool p = SimulationTest.open(fs);
        p.createVolume("v", 2048L * BS);
        VolumeDevice v = p.volume("v").orElseThrow();
        fs.capacity(fs.usedBytes() + p.reserveBytesForTests() + (3 << 20));
        byte[] model = new byte[2048 * BS];
        int lba = 0;
        DediskException.NoSpaceException full = null;
        while (full == null && lba < 2048) {
            byte[] d = random(new Random(100 + lba), 16 * BS);
            try {
                v.write((long) lba * BS, ByteBuffer.wrap(d), false);
                System.arraycopy(d, 0, model, lba * BS, d.length);
                lba += 16;
            } catch (DediskException.NoSpaceException e) {
                full = e;
            }
        }
        assertNotNull(full, "fresh writes stop before the disk is full");
        assertEquals("no-space", p.stats().mode(), "stats says why");
        assertNotNull(p.stats().noSpaceReason());
        assertTrue(p.stats().toJson().contains("\"noSpaceReason\""));
        // Duplicates, zeros, TRIM, flush and reads go on.
        v.write(1900L * BS, ByteBuffer.wrap(model, 0, 16 * BS), false);
        System.arraycopy(model, 0, model, 1900 * BS, 16 * BS);
        v.writeZeroes(16L * BS, 16L * BS, false, false);
        java.util.Arrays.fill(model, 16 * BS, 32 * BS, (byte) 0);
        v.trim(32L * BS, 16L * BS, false);
        java.util.Arrays.fill(model, 32 * BS, 48 * BS, (byte) 0);
        v.flush();
        assertArrayEquals(model, read(p, 0, model.length));
        // kill -9 with the disk completely full: the pool opens and serves reads.
        fs.capacity(fs.usedBytes());
        Pool q = SimulationTest.open(fs);
        assertArrayEquals(model, read(q, 0, model.length), "a pool on a full disk opens and serves reads");
        VolumeDevice w = q.volume("v").orElseThrow();
        assertThrows(DediskException.NoSpaceException.class, () -> w.write(1000L * BS, ByteBuffer.wrap(random(new Random(7), BS)), false));
        assertEquals("no-space", q.stats().mode());
        // Space comes back: fresh writes resume by themselves.
        fs.capacity(Long.MAX_VALUE);
        byte[] fresh = random(new Random(8), BS);
        w.write(1000L * BS, ByteBuffer.wrap(fresh), true);
        System.arraycopy(fresh, 0, model, 1000 * BS, BS);
        assertEquals("normal", q.stats().mode());
        q.close();
        try (Pool r = SimulationTest.open(fs)) {
            assertArrayEquals(model, read(r, 0, model.length));
            assertTrue(PoolChecker.check(r).ok(), PoolChecker.check(r).toText());
        }
    }
}
