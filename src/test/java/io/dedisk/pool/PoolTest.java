package io.dedisk.pool;

import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.DediskException.InvalidRequestException;
import io.dedisk.store.LocalFs;
import java.io.IOException;
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

class PoolTest {
    static final int BS = Pool.BLOCK_SIZE;
    @TempDir Path dir;

    Pool create() throws IOException {
        Pool.create(new LocalFs(dir), new Pool.Options(1 << 20, 1 << 20, 16 << 20, false));
        return Pool.open(new LocalFs(dir));
    }

    Pool reopen() throws IOException { return Pool.open(new LocalFs(dir)); }

    static byte[] compressible(Random r, int blocks) {
        byte[] b = new byte[blocks * BS];
        for (int i = 0; i < b.length; i++) b[i] = (byte) ("dedisk-" + (i / 512) % 7).charAt(i % 8);
        for (int i = 0; i < blocks; i++) { // make blocks distinct
            b[i * BS] = (byte) i;
            b[i * BS + 1] = (byte) (i >> 8);
            b[i * BS + 2] = (byte) r.nextInt();
        }
        return b;
    }

    static byte[] random(Random r, int n) { byte[] b = new byte[n]; r.nextBytes(b); return b; }

    static byte[] read(VolumeDevice v, long off, int len) {
        ByteBuffer b = ByteBuffer.allocate(len);
        v.read(off, b);
        assertEquals(len, b.position());
        return b.array();
    }

    @Test
    void writeReadRoundTripAcrossReopen() throws IOException {
        Random r = new Random(1);
        byte[] data = random(r, 300 * BS);
        try (Pool p = create()) {
            p.createVolume("a", 16L << 20);
            VolumeDevice v = p.volume("a").orElseThrow();
            v.write(4096, ByteBuffer.wrap(data), false);
            assertArrayEquals(data, read(v, 4096, data.length));
            assertArrayEquals(new byte[BS], read(v, 0, BS), "never-written block reads as zeros");
        }
        try (Pool p = reopen()) {
            VolumeDevice v = p.volume("a").orElseThrow();
            assertArrayEquals(data, read(v, 4096, data.length));
            assertEquals(300, p.stats().mappedBlocks());
        }
    }

    @Test
    void dedupAcrossVolumesAndCompression() throws IOException {
        Random r = new Random(2);
        byte[] data = compressible(r, 64);
        try (Pool p = create()) {
            p.createVolume("a", 1 << 20);
            p.createVolume("b", 1 << 20);
            p.volume("a").orElseThrow().write(0, ByteBuffer.wrap(data), false);
            p.volume("b").orElseThrow().write(8 * BS, ByteBuffer.wrap(data), false);
            PoolStats s = p.stats();
            assertEquals(64, s.liveChunks(), "the second copy shares every chunk");
            assertEquals(128, s.mappedBlocks());
            assertEquals(2.0, s.dedupRatio(), 1e-9);
            assertTrue(s.compressionRatio() > 4, "repetitive blocks compress: " + s.compressionRatio());
            assertEquals(64, s.index().hits());
            assertArrayEquals(data, read(p.volume("b").orElseThrow(), 8 * BS, data.length));
        }
    }

    @Test
    void zeroBlocksStoreNothingAndTrimReleases() throws IOException {
        Random r = new Random(3);
        try (Pool p = create()) {
            p.createVolume("a", 1 << 20);
            VolumeDevice v = p.volume("a").orElseThrow();
            v.write(0, ByteBuffer.wrap(new byte[16 * BS]), false);
            assertEquals(0, p.stats().liveChunks());
            assertEquals(16, p.stats().zeroBlocks());
            byte[] data = random(r, 8 * BS);
            v.write(0, ByteBuffer.wrap(data), false);
            assertEquals(8, p.stats().liveChunks());
            v.trim(0, 4 * BS, false);
            assertEquals(4, p.stats().liveChunks(), "trim drops the trimmed blocks' references");
            assertArrayEquals(new byte[4 * BS], read(v, 0, 4 * BS));
            assertEquals(4L * BS, p.stats().garbageBytes() >= 4L * BS ? 4L * BS : -1);
            v.writeZeroes(4 * BS, 4 * BS, false, false);
            assertEquals(0, p.stats().liveChunks());
            List<VolumeDevice.Extent> ext = v.blockStatus(0, 1 << 20);
            assertTrue(ext.get(0).hole() && ext.get(0).zero());
            assertEquals(4L * BS, ext.get(0).length());
            assertTrue(!ext.get(1).hole() && ext.get(1).zero());
        }
    }

    @Test
    void overwriteReleasesOldChunkAndRefcountsFollow() throws IOException {
        Random r = new Random(4);
        byte[] a = random(r, BS);
        byte[] b = random(r, BS);
        try (Pool p = create()) {
            p.createVolume("v", 1 << 20);
            VolumeDevice v = p.volume("v").orElseThrow();
            v.write(0, ByteBuffer.wrap(a), false);
            v.write(BS, ByteBuffer.wrap(a), false);
            v.write(0, ByteBuffer.wrap(b), false);
            assertEquals(2, p.stats().liveChunks());
            v.write(BS, ByteBuffer.wrap(b), false);
            assertEquals(1, p.stats().liveChunks(), "a has no references left");
            // The dead chunk's index entry is stale advice now: writing a again creates a new chunk.
            v.write(2 * BS, ByteBuffer.wrap(a), false);
            assertEquals(1, p.stats().index().staleAdvice());
            assertArrayEquals(a, read(v, 2 * BS, BS));
        }
    }

    @Test
    void unalignedWritesReadModifyWrite() throws IOException {
        Random r = new Random(5);
        byte[] model = new byte[64 * BS];
        try (Pool p = create()) {
            p.createVolume("v", model.length);
            VolumeDevice v = p.volume("v").orElseThrow();
            for (int i = 0; i < 300; i++) {
                int off = r.nextInt(model.length - 1);
                int len = 1 + r.nextInt(Math.min(3 * BS, model.length - off));
                byte[] d = random(r, len);
                if (r.nextInt(4) == 0) Arrays.fill(d, (byte) 0);
                v.write(off, ByteBuffer.wrap(d), false);
                System.arraycopy(d, 0, model, off, len);
                if (r.nextInt(10) == 0) {
                    int zo = r.nextInt(model.length - 1);
                    int zl = 1 + r.nextInt(Math.min(5 * BS, model.length - zo));
                    v.writeZeroes(zo, zl, r.nextBoolean(), false);
                    Arrays.fill(model, zo, zo + zl, (byte) 0);
                }
            }
            assertArrayEquals(model, read(v, 0, model.length));
            int off = 1234;
            assertArrayEquals(Arrays.copyOfRange(model, off, off + 5000), read(v, off, 5000));
        }
        try (Pool p = reopen()) {
            assertArrayEquals(model, read(p.volume("v").orElseThrow(), 0, model.length));
        }
    }

    @Test
    void concurrentSubBlockWritesToOneBlockAllSurvive() throws Exception {
        try (Pool p = create(); ExecutorService ex = Executors.newFixedThreadPool(8)) {
            p.createVolume("v", 1 << 20);
            VolumeDevice v = p.volume("v").orElseThrow();
            List<Future<?>> fs = new ArrayList<>();
            for (int s = 0; s < 8; s++) {
                int sector = s;
                fs.add(ex.submit(() -> {
                    byte[] d = new byte[512];
                    Arrays.fill(d, (byte) (sector + 1));
                    v.write(sector * 512L, ByteBuffer.wrap(d), false);
                }));
            }
            for (Future<?> f : fs) f.get();
            byte[] block = read(v, 0, BS);
            for (int s = 0; s < 8; s++) assertEquals(s + 1, block[s * 512 + 100], "sector " + s);
        }
    }

    @Test
    void concurrentIdenticalWritesCreateOneChunk() throws Exception {
        byte[] data = random(new Random(6), 32 * BS);
        try (Pool p = create(); ExecutorService ex = Executors.newFixedThreadPool(8)) {
            p.createVolume("v", 8 << 20);
            VolumeDevice v = p.volume("v").orElseThrow();
            List<Future<?>> fs = new ArrayList<>();
            for (int t = 0; t < 16; t++) {
                long off = (long) t * data.length;
                fs.add(ex.submit(() -> v.write(off, ByteBuffer.wrap(data), false)));
            }
            for (Future<?> f : fs) f.get();
            assertEquals(32, p.stats().liveChunks());
            assertEquals(16 * 32, p.stats().mappedBlocks());
        }
    }

    @Test
    void crashWithoutCloseReplaysFlushedWrites() throws IOException {
        Random r = new Random(7);
        byte[] data = random(r, 700 * BS); // spans several 1 MiB segments
        Pool p = create();
        p.createVolume("v", 8 << 20);
        VolumeDevice v = p.volume("v").orElseThrow();
        v.write(0, ByteBuffer.wrap(data), false);
        v.trim(0, BS, false);
        v.flush();
        // No close: no checkpoint; the next open must rebuild everything from the log.
        try (Pool q = reopen()) {
            VolumeDevice w = q.volume("v").orElseThrow();
            assertArrayEquals(new byte[BS], read(w, 0, BS));
            assertArrayEquals(Arrays.copyOfRange(data, BS, data.length), read(w, BS, data.length - BS));
            assertEquals(699, q.stats().liveChunks());
        }
    }

    @Test
    void volumeLifecycleAndErrors() throws IOException {
        try (Pool p = create()) {
            p.createVolume("a", 1 << 20);
            assertThrows(InvalidRequestException.class, () -> p.createVolume("a", 1 << 20));
            assertThrows(InvalidRequestException.class, () -> p.createVolume("bad name", 1 << 20));
            assertThrows(InvalidRequestException.class, () -> p.createVolume("b", 1000));
            VolumeDevice v = p.volume("a").orElseThrow();
            assertThrows(InvalidRequestException.class, () -> v.read((1 << 20) - 10, ByteBuffer.allocate(20)));
            v.write(0, ByteBuffer.wrap(random(new Random(8), 256 * BS)), false);
            p.resizeVolume("a", 128 * BS);
            assertEquals(128, p.stats().mappedBlocks());
            assertEquals(128, p.stats().liveChunks());
            p.resizeVolume("a", 2 << 20);
            assertArrayEquals(new byte[BS], read(p.volume("a").orElseThrow(), 200 * BS, BS));
            p.deleteVolume("a");
            assertEquals(0, p.stats().liveChunks());
            assertThrows(InvalidRequestException.class, () -> v.read(0, ByteBuffer.allocate(1)));
            assertTrue(p.volume("a").isEmpty());
        }
        try (Pool p = reopen()) {
            assertTrue(p.volumeNames().isEmpty());
        }
    }

    @Test
    void createRefusesExistingPool() throws IOException {
        try (Pool p = create()) { p.createVolume("a", 1 << 20); }
        assertThrows(InvalidRequestException.class, () -> Pool.create(new LocalFs(dir), Pool.Options.defaults()));
    }

    /**
     * A checkpoint queued in the background (an open that replayed a log tail queues one) and run only after the pool
     * closed writes nothing: the closed pool's directory stays byte for byte as the close left it.
     */
    @Test
    void aCheckpointQueuedBeforeCloseWritesNothingAfterIt() throws Exception {
        Pool.create(new LocalFs(dir), new Pool.Options(1 << 20, 1L << 30, 16 << 20, false));
        Pool crashed = Pool.open(new LocalFs(dir)); // never closed: the process that died with a log tail
        crashed.createVolume("v", 1 << 20);
        byte[] data = new byte[4 * Pool.BLOCK_SIZE];
        new Random(5).nextBytes(data);
        crashed.volume("v").orElseThrow().write(0, ByteBuffer.wrap(data), true);
        List<Runnable> queued = new ArrayList<>();
        Pool reopened = Pool.open(new LocalFs(dir), queued::add);
        assertFalse(queued.isEmpty(), "the open replayed the tail and queued a checkpoint");
        reopened.close();
        var closedState = io.dedisk.store.DirFingerprint.of(dir);
        for (Runnable task : queued) task.run();
        assertEquals(closedState, io.dedisk.store.DirFingerprint.of(dir), "nothing written after the close");
        try (Pool p = Pool.open(new LocalFs(dir))) {
            ByteBuffer got = ByteBuffer.allocate(data.length);
            p.volume("v").orElseThrow().read(0, got);
            assertArrayEquals(data, got.array());
            assertTrue(PoolChecker.check(p).ok());
        }
    }

    /** The default metadata cache is an eighth of the heap limit in whole MiB, within [8 MiB, 1 GiB], and what a pool opens with. */
    @Test
    void theDefaultMetadataCacheFollowsTheHeapLimit() {
        long expected = Math.clamp(Runtime.getRuntime().maxMemory() / 8 >> 20 << 20, 8L << 20, 1L << 30);
        assertEquals(expected, Pool.defaultMetadataCache());
        assertEquals(0, Pool.defaultMetadataCache() % (1 << 20));
        assertEquals(Pool.defaultMetadataCache(), Pool.OpenOptions.defaults().metadataCacheBytes());
    }
}
