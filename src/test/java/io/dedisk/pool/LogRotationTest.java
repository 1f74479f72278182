package io.dedisk.pool;

import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.DediskException;
import io.dedisk.sim.SimFs;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The measured LogWriter failures at segment rotation (issue "Engine v2"), each pinned by a test. */
class LogRotationTest {
    static final int BS = Pool.BLOCK_SIZE;

    static byte[] block(long seed) {
        byte[] b = new byte[BS];
        new Random(seed).nextBytes(b);
        return b;
    }

    /**
     * A full disk at a rotation: the SEAL fits but the next segment's header does not. Space then comes back a
     * little at a time while a client keeps writing and flushing; after a kill -9 every acknowledged, flushed block
     * must read back and the pool must not be read-only.
     */
    @Test
    void fullDiskAtARotationLosesNoFlushedWrite() throws Exception {
        SimFs fs = new SimFs(7);
        Pool.create(fs, new Pool.Options(1 << 20, 1L << 40, 0, false));
        Pool p = Pool.open(fs, Runnable::run);
        p.createVolume("v", 4096L * BS);
        VolumeDevice v = p.volume("v").orElseThrow();
        List<Integer> acked = new ArrayList<>();
        int lba = 0;
        fs.capacity(fs.usedBytes()); // full
        long failures = 0;
        for (int attempt = 0; attempt < 4000 && acked.size() < 600; attempt++) {
            fs.capacity(fs.usedBytes() + 40 + (attempt % 7) * 8); // freed a few bytes at a time
            try {
                v.write((long) lba * BS, ByteBuffer.wrap(block(lba)), false);
                v.flush();
                acked.add(lba);
                lba++;
            } catch (DediskException.StorageException e) {
                failures++;
                fs.capacity(fs.usedBytes() + 2 * BS + 512); // room for the block and its record next time
                try {
                    v.write((long) lba * BS, ByteBuffer.wrap(block(lba)), false);
                    v.flush();
                    acked.add(lba);
                    lba++;
                } catch (DediskException.StorageException again) {
                    failures++;
                }
            }
        }
        assertTrue(failures > 0, "the disk was full at some point");
        assertTrue(acked.size() > 300, "crossed segment rotations: " + acked.size() + " blocks");
        assertNull(p.readOnlyReason(), "a full disk is not damage");
        fs.capacity(Long.MAX_VALUE);
        // kill -9: reopen the same files without closing.
        try (Pool q = Pool.open(fs, Runnable::run)) {
            assertNull(q.readOnlyReason(), "reopened writable");
            VolumeDevice w = q.volume("v").orElseThrow();
            for (int b : acked) {
                ByteBuffer got = ByteBuffer.allocate(BS);
                w.read((long) b * BS, got);
                assertArrayEquals(block(b), got.array(), "flushed block " + b);
            }
            assertTrue(PoolChecker.check(q).ok(), PoolChecker.check(q).toText());
        }
    }
}
