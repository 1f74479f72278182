package io.dedisk.pool;

import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.DediskException;
import io.dedisk.sim.SimFs;
import io.dedisk.store.Fs;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/** The two measured LogWriter failures at segment rotation (issue "Engine v2"), each pinned by a test. */
class LogRotationTest {
    static final int BS = Pool.BLOCK_SIZE;

    static byte[] block(long seed) {
        byte[] b = new byte[BS];
        new Random(seed).nextBytes(b);
        return b;
    }

    /**
     * A full disk at a rotation, on a filesystem whose free space the pool cannot see (so its reserve does not
     * stop fresh writes first): the SEAL fits but the next segment's header does not. Space then comes back a
     * little at a time while a client keeps writing and flushing; after a kill -9 every acknowledged, flushed block
     * must read back and the pool must not be read-only.
     */
    @Test
    void fullDiskAtARotationLosesNoFlushedWrite() throws Exception {
        SimFs fs = new SimFs(7).reportsFreeSpace(false); // the pool's reserve cannot see it coming: ENOSPC hits the log
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

    /**
     * A FLUSH that takes the tail handle just before a rotation closes it must still succeed: the rotation's seal
     * synced that segment. Deterministic: the flushing thread is held between taking the handle and forcing it.
     */
    @Test
    void flushRacingARotationSucceeds() throws Exception {
        SimFs sim = new SimFs(8);
        CountDownLatch flushHasHandle = new CountDownLatch(1);
        CountDownLatch rotated = new CountDownLatch(1);
        Thread[] flusher = new Thread[1];
        Fs fs = new HoldingFs(sim, () -> {
            if (Thread.currentThread() == flusher[0] && flushHasHandle.getCount() > 0) {
                flushHasHandle.countDown();
                try {
                    assertTrue(rotated.await(10, TimeUnit.SECONDS));
                } catch (InterruptedException e) {
                    throw new AssertionError(e);
                }
            }
        });
        Pool.create(fs, new Pool.Options(1 << 20, 1L << 40, 0, false));
        Pool p = Pool.open(fs, Runnable::run);
        p.createVolume("v", 1024L * BS);
        VolumeDevice v = p.volume("v").orElseThrow();
        v.write(0, ByteBuffer.wrap(block(0)), false);
        AtomicReference<Throwable> flushError = new AtomicReference<>();
        flusher[0] = new Thread(() -> {
            try {
                v.flush();
            } catch (Throwable t) {
                flushError.set(t);
            }
        });
        flusher[0].start();
        assertTrue(flushHasHandle.await(10, TimeUnit.SECONDS));
        for (int b = 1; b < 300; b++) v.write((long) b * BS, ByteBuffer.wrap(block(b)), false); // > 1 MiB: rotates
        rotated.countDown();
        flusher[0].join(10_000);
        assertNull(flushError.get(), () -> "flush failed: " + flushError.get());
        assertNull(p.readOnlyReason(), "a flush racing a rotation does not make the pool read-only");
        v.write(0, ByteBuffer.wrap(block(1000)), true);
        p.close();
    }

    /** Delegates to a SimFs; runs {@code beforeSync} at the start of every file sync. */
    private static final class HoldingFs implements Fs {
        private final SimFs fs;
        private final Runnable beforeSync;

        HoldingFs(SimFs fs, Runnable beforeSync) { this.fs = fs; this.beforeSync = beforeSync; }

        @Override public FileHandle open(String name, boolean create) throws IOException {
            FileHandle h = fs.open(name, create);
            return new FileHandle() {
                @Override public int read(long pos, ByteBuffer dst) throws IOException { return h.read(pos, dst); }
                @Override public void write(long pos, ByteBuffer src) throws IOException { h.write(pos, src); }
                @Override public void sync() throws IOException { beforeSync.run(); h.sync(); }
                @Override public long size() throws IOException { return h.size(); }
                @Override public void truncate(long size) throws IOException { h.truncate(size); }
                @Override public void close() throws IOException { h.close(); }
            };
        }
        @Override public boolean exists(String name) throws IOException { return fs.exists(name); }
        @Override public List<String> list(String dir) throws IOException { return fs.list(dir); }
        @Override public void mkdirs(String dir) throws IOException { fs.mkdirs(dir); }
        @Override public void delete(String name) throws IOException { fs.delete(name); }
        @Override public void rename(String from, String to) throws IOException { fs.rename(from, to); }
        @Override public void syncDir(String dir) throws IOException { fs.syncDir(dir); }
        @Override public long usableSpace() throws IOException { return fs.usableSpace(); }
    }
}
