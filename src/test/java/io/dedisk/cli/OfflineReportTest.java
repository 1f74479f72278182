package io.dedisk.cli;

import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.pool.Pool;
import io.dedisk.pool.VolumeDevice;
import io.dedisk.report.ContentScan;
import io.dedisk.store.LocalFs;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.TreeMap;
import io.dedisk.store.DirFingerprint;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The offline report on a pool left by a crash (no checkpoint, a torn record at the log's tail): recovery runs
 * in the overlay, the report is made, and the pool directory is byte for byte what it was; the content scan's
 * figures match what was written.
 */
class OfflineReportTest {
    @TempDir Path tmp;

    /** count blocks, each its own compressible content (a line naming seed and block, repeated). */
    static ByteBuffer blocks(int count, int seed) {
        byte[] data = new byte[count * Pool.BLOCK_SIZE];
        for (int k = 0; k < count; k++) {
            byte[] line = ("block " + seed + "/" + k + " of a test volume; ").getBytes(java.nio.charset.StandardCharsets.US_ASCII);
            for (int j = 0; j < Pool.BLOCK_SIZE; j++) data[k * Pool.BLOCK_SIZE + j] = line[j % line.length];
        }
        return ByteBuffer.wrap(data);
    }

    @Test
    void reportOnACrashedPoolChangesNothing() throws Exception {
        Path dir = tmp.resolve("pool");
        PoolDirectory.create(dir, new Pool.Options(1 << 20, 1 << 30, 16 << 20, false));
        Pool crashed = Pool.open(new LocalFs(dir));
        crashed.createVolume("a", 16 << 20);
        crashed.createVolume("b", 16 << 20);
        VolumeDevice a = crashed.volume("a").orElseThrow(), b = crashed.volume("b").orElseThrow();
        // Every block of blocks(n, seed) has its own content: a holds 8 contents twice, b the same 8 once more
        // and 4 of its own.
        a.write(0, blocks(8, 1), false);
        a.write(8L * Pool.BLOCK_SIZE, blocks(8, 1), false);
        b.write(0, blocks(8, 1), false);
        b.write(1L << 20, blocks(4, 2), false);
        crashed.flush();
        long expectedMapped = 28;
        assertEquals(expectedMapped, crashed.stats().mappedBlocks());
        long liveChunks = crashed.stats().liveChunks();
        // The process "dies" here: no close, no checkpoint. A torn record tail follows the last flushed record.
        Path tail;
        try (var s = Files.list(dir.resolve("segments"))) { tail = s.sorted().toList().getLast(); }
        Files.write(tail, new byte[] {0x44, 0x52, 0x45, 0x43, 1, 1, 0}, StandardOpenOption.APPEND);
        TreeMap<String, String> before = DirFingerprint.of(dir);

        ContentScan.Result scan;
        String html;
        try (OfflinePool p = OfflinePool.open(dir)) {
            assertEquals(expectedMapped, p.pool.stats().mappedBlocks(), "recovery in the overlay replays the log");
            scan = ContentScan.run(p.pool);
            html = SavingsReport.render(p.pool, io.dedisk.report.StatsHistory.read(p.fs), true, "test");
            assertTrue(p.fs.overlayBytes() >= 0);
        }
        assertEquals(before, DirFingerprint.of(dir), "an offline report changes nothing on disk, even after a crash");
        assertTrue(html.contains("id=\"plot-refcounts\""), "the report is rendered");

        assertEquals(expectedMapped, scan.mappedBlocks());
        assertEquals(liveChunks, scan.distinctBlocks(), "every duplicate was found: distinct contents = live chunks");
        assertEquals(0, scan.unreadableBlocks());
        assertEquals(12, scan.distinctBlocks());
        assertArrayEquals(new long[] {4, 8}, scan.refcountHistogram(), "4 contents referenced once, 8 three times");
        ContentScan.VolumeScan va = scan.volumes().get(0), vb = scan.volumes().get(1);
        assertEquals("a", va.name());
        assertEquals(16, va.mappedBlocks());
        assertEquals(8, va.distinctBlocks());
        assertEquals(2.0, va.dedupRatio());
        assertEquals(12, vb.mappedBlocks());
        assertEquals(1.0, vb.dedupRatio());
        assertTrue(va.compressionRatio() > 1, "the pattern compresses: " + va.compressionRatio());

        // The pool is still the crashed one and recovers for real afterwards.
        try (PoolDirectory p = PoolDirectory.open(dir)) {
            assertEquals(expectedMapped, p.pool.stats().mappedBlocks());
        }
        // `crashed` is never closed: it stands for the process that died (closing it would write its checkpoint).
    }
}
