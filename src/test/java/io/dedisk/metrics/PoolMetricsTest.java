package io.dedisk.metrics;

import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.pool.PoolStats;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/** The PoolStats → Prometheus mapping: names, values, per-volume rows, and at most one stats call per second. */
class PoolMetricsTest {
    static PoolStats stats(long dataBytes, List<PoolStats.VolumeStats> volumes) {
        return new PoolStats("00000000-0000-0000-0000-000000000001", null, null, volumes, 10, dataBytes, 8236, 123, 9000, 700,
                new PoolStats.IndexStats("uds", 10, 1000, 4096, 8192, 5, 10, 1, false, 0.0, io.dedisk.index.DedupIndex.Compaction.NONE), new PoolStats.LogStats(4, 1 << 20, 2, 10, 10 * 2048, 1, 1, 4096, 0), new PoolStats.CacheStats(64 << 20, 1 << 20, 8192, 100, 10, 0), 300, 200, 7, 0);
    }

    @Test
    void everyFieldIsExportedUnderItsKeyWithItsValue() {
        AtomicReference<PoolStats> current = new AtomicReference<>(stats(4096, List.of(new PoolStats.VolumeStats("vm1", 1 << 30, 30, 4))));
        PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        PoolMetrics m = new PoolMetrics(current::get, System::nanoTime, 0).bindTo(registry);
        m.refresh();
        String text = registry.scrape();
        for (var f : PoolMetrics.POOL) {
            assertTrue(text.contains("# TYPE " + f.key() + " " + (f.kind() == PoolMetrics.Kind.COUNTER ? "counter" : "gauge")), f.key() + " in\n" + text);
        }
        for (var f : PoolMetrics.VOLUME) assertTrue(text.contains(f.key() + "{volume=\"vm1\"}"), f.key() + " in\n" + text);
        assertTrue(text.contains("dedisk_pool_data_bytes 4096.0"), text);
        assertTrue(text.contains("dedisk_pool_mapped_blocks 30.0"), text);
        assertTrue(text.contains("dedisk_pool_dedup_ratio 3.0"), "30 mapped blocks / 10 chunks: " + text);
        assertTrue(text.contains("dedisk_index_hits_total 5.0"), text);
        assertTrue(text.contains("dedisk_volume_zero_blocks{volume=\"vm1\"} 4.0"), text);
        assertTrue(text.contains("dedisk_pool_info{index_kind=\"uds\",index_sparse=\"false\",pool_id=\"00000000-0000-0000-0000-000000000001\"} 1"), text);

        // A volume that is gone stops being exported; a new one appears.
        current.set(stats(8192, List.of(new PoolStats.VolumeStats("vm2", 1 << 20, 1, 0))));
        m.refresh();
        text = registry.scrape();
        assertFalse(text.contains("volume=\"vm1\""), text);
        assertTrue(text.contains("dedisk_volume_mapped_blocks{volume=\"vm2\"} 1.0"), text);
        assertTrue(text.contains("dedisk_pool_data_bytes 8192.0"), text);
    }

    @Test
    void statsAreSampledAtMostOncePerMaximumAge() {
        AtomicLong clock = new AtomicLong(1_000);
        List<Long> calls = new ArrayList<>();
        PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        PoolMetrics m = new PoolMetrics(() -> {
            calls.add(clock.get());
            return stats(4096L * calls.size(), List.of());
        }, clock::get, 1_000_000_000L).bindTo(registry);
        assertEquals(0, m.samplesTaken(), "binding caches no snapshot (the first scrape must be fresh)");
        for (int i = 0; i < 3; i++) {
            m.refresh();
            registry.scrape(); // ~27 pool gauges read the snapshot
        }
        assertEquals(1, m.samplesTaken(), "three scrapes within one second share the snapshot");
        clock.addAndGet(1_000_000_001L);
        m.refresh();
        String text = registry.scrape();
        assertEquals(2, m.samplesTaken(), "a scrape after the maximum age takes a new snapshot");
        assertTrue(text.contains("dedisk_pool_data_bytes 12288.0"), "the newest snapshot is the one exported: " + text);
    }

    @Test
    void keysFollowPrometheusConventions() {
        for (var f : PoolMetrics.POOL) {
            assertTrue(f.key().matches("dedisk_[a-z_]+"), f.key());
            assertEquals(f.kind() == PoolMetrics.Kind.COUNTER, f.key().endsWith("_total"), f.key());
        }
        assertEquals("dedisk_pool_saving_ratio", PoolMetrics.SAVING.key());
        assertEquals("dedisk_gc_garbage_bytes", PoolMetrics.GARBAGE.key());
        assertThrows(io.dedisk.util.Check.InvariantViolation.class,
                () -> new PoolMetrics.Field<PoolStats>("other.name", null, PoolMetrics.Kind.GAUGE, "help", s -> 0));
    }
}
