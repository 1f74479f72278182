package io.dedisk.report;

import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.DediskException;
import io.dedisk.metrics.PoolMetrics;
import io.dedisk.pool.PoolStats;
import io.dedisk.store.LocalFs;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The stats history file: round trip, torn last record, damage in the middle, bounded size, versions. */
class StatsHistoryTest {
    @TempDir Path dir;

    static StatsSample sample(long t) {
        PoolStats s = new PoolStats("p", null, null, List.of(new PoolStats.VolumeStats("vm1", 1 << 30, 100 + t, 3), new PoolStats.VolumeStats("vm2", 1 << 20, 7, 0)),
                10 + t, 4096 * (10 + t), 8236, t, 9000 + t, 700, new PoolStats.IndexStats("uds", 10, 1000, 4096, 8192, t, 2 * t, 0, false, 0.0, io.dedisk.index.DedupIndex.Compaction.NONE),
                new PoolStats.LogStats(4, 1 << 20, 2, 10, 10 * 2048, 1, 1, 4096, 0), new PoolStats.CacheStats(64 << 20, 1 << 20, 8192, 100, 10, 0), 300, 200, 7, 0);
        return StatsSample.of(1_700_000_000_000L + 60_000 * t, s, t % 2 == 0 ? new long[] {t, 2, 1} : new long[0]);
    }

    Path file() { return dir.resolve(StatsHistory.FILE); }

    @Test
    void roundTripKeepsEveryField() throws Exception {
        LocalFs fs = new LocalFs(dir);
        assertEquals(List.of(), StatsHistory.read(fs).samples(), "no file: no samples");
        try (StatsHistory h = StatsHistory.openForAppend(fs, StatsHistory.DEFAULT_MAX_BYTES)) {
            for (int t = 0; t < 3; t++) h.append(sample(t));
            assertEquals(3, h.read().samples().size());
        }
        StatsHistory.Contents c = StatsHistory.read(fs);
        assertEquals(List.of(sample(0), sample(1), sample(2)), c.samples());
        assertEquals(0, c.damagedBytes());
        assertEquals(0, c.tornTailBytes());
        StatsSample s = c.samples().get(2);
        assertEquals(102, s.volumes().get(0).get(PoolMetrics.VOLUME_MAPPED));
        assertEquals(4096.0 * 12, s.get(PoolMetrics.DATA));
        assertArrayEquals(new long[] {2, 2, 1}, s.refcountHistogram());
        assertEquals(PoolMetrics.POOL.size(), s.pool().size(), "every mapped field is recorded");
        assertTrue(Double.isNaN(s.get("dedisk_field_from_the_future")));
    }

    @Test
    void tornLastRecordIsIgnoredAndCutBeforeTheNextAppend() throws Exception {
        LocalFs fs = new LocalFs(dir);
        try (StatsHistory h = StatsHistory.openForAppend(fs, StatsHistory.DEFAULT_MAX_BYTES)) {
            for (int t = 0; t < 3; t++) h.append(sample(t));
        }
        long whole = Files.size(file());
        byte[] fourth = StatsHistory.encode(sample(3));
        Files.write(file(), java.util.Arrays.copyOf(fourth, fourth.length - 5), java.nio.file.StandardOpenOption.APPEND);
        StatsHistory.Contents c = StatsHistory.read(fs);
        assertEquals(3, c.samples().size());
        assertEquals(fourth.length - 5, c.tornTailBytes());
        assertEquals(0, c.damagedBytes());
        try (StatsHistory h = StatsHistory.openForAppend(fs, StatsHistory.DEFAULT_MAX_BYTES)) {
            assertEquals(whole, Files.size(file()), "the torn record is cut off");
            h.append(sample(4));
        }
        assertEquals(List.of(sample(0), sample(1), sample(2), sample(4)), StatsHistory.read(fs).samples());
    }

    @Test
    void damagedRecordInTheMiddleIsSkippedAndReported() throws Exception {
        LocalFs fs = new LocalFs(dir);
        try (StatsHistory h = StatsHistory.openForAppend(fs, StatsHistory.DEFAULT_MAX_BYTES)) {
            for (int t = 0; t < 3; t++) h.append(sample(t));
        }
        int first = StatsHistory.encode(sample(0)).length;
        int second = StatsHistory.encode(sample(1)).length;
        byte[] bytes = Files.readAllBytes(file());
        bytes[first + 40] ^= 0x10;
        Files.write(file(), bytes);
        StatsHistory.Contents c = StatsHistory.read(fs);
        assertEquals(List.of(sample(0), sample(2)), c.samples());
        assertEquals(second, c.damagedBytes());
        assertEquals(0, c.tornTailBytes());
    }

    @Test
    void sizeStaysBoundedAndOldSamplesThinOut() throws Exception {
        LocalFs fs = new LocalFs(dir);
        int record = StatsHistory.encode(sample(0)).length;
        long max = 20L * record;
        try (StatsHistory h = StatsHistory.openForAppend(fs, Math.max(max, 4 * (16 + 4096L)))) {
            long bound = Math.max(max, 4 * (16 + 4096L));
            for (int t = 0; t < 400; t++) {
                h.append(sample(t));
                assertTrue(Files.size(file()) <= bound, "history of " + Files.size(file()) + " bytes past its bound " + bound);
            }
            assertTrue(h.compactions() > 0);
        }
        assertFalse(Files.exists(dir.resolve(StatsHistory.FILE + ".tmp")), "no temporary file left");
        List<StatsSample> kept = StatsHistory.read(fs).samples();
        assertEquals(sample(0), kept.getFirst(), "the first sample survives every compaction");
        assertEquals(sample(399), kept.getLast());
        List<Long> gaps = new ArrayList<>();
        for (int i = 1; i < kept.size(); i++) {
            long gap = kept.get(i).timeMillis() - kept.get(i - 1).timeMillis();
            assertTrue(gap > 0, "samples stay in time order");
            gaps.add(gap);
        }
        assertEquals(60_000, (long) gaps.getLast(), "the newest samples keep full resolution");
        assertTrue(gaps.getFirst() > 60_000 * 4, "the oldest are thinned: " + gaps);
    }

    @Test
    void unknownVersionIsRefusedNamingBothVersions() throws Exception {
        byte[] rec = StatsHistory.encode(sample(0));
        rec[4] = 9;
        // re-checksum so only the version is wrong
        java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
        crc.update(rec, 4, 8);
        crc.update(rec, 16, rec.length - 16);
        ByteBuffer.wrap(rec).order(ByteOrder.LITTLE_ENDIAN).putInt(12, (int) crc.getValue());
        Files.write(file(), rec);
        var e = assertThrows(DediskException.CorruptionException.class, () -> StatsHistory.read(new LocalFs(dir)));
        assertTrue(e.getMessage().contains("version 9") && e.getMessage().contains("version 1"), e.getMessage());
    }
}
