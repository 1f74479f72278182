package io.dedisk.report;

import io.dedisk.metrics.PoolMetrics;
import io.dedisk.pool.PoolStats;
import io.dedisk.util.Check;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One point of the stats history: when it was taken, every pool-wide field of {@link PoolMetrics#POOL} and every
 * per-volume field of {@link PoolMetrics#VOLUME}, keyed by their Prometheus names (so a field added to that
 * mapping is recorded with no change here), and a histogram of chunk reference counts when one was available
 * (bucket i counts chunks with 2^i ≤ refcount < 2^(i+1); empty when unknown).
 *
 * Immutable; any thread. Invariant: keys are 1..255 ASCII bytes, volume names 1..1024 bytes, counts ≥ 0.
 */
public record StatsSample(long timeMillis, Map<String, Double> pool, List<VolumeSample> volumes, long[] refcountHistogram) {
    public record VolumeSample(String name, Map<String, Double> values) {
        public VolumeSample {
            Check.that(!name.isEmpty(), "volume sample without a name");
            values = Collections.unmodifiableMap(new LinkedHashMap<>(values));
        }

        public double get(PoolMetrics.Field<PoolStats.VolumeStats> field) { return values.getOrDefault(field.key(), Double.NaN); }
    }

    public StatsSample {
        pool = Collections.unmodifiableMap(new LinkedHashMap<>(pool));
        volumes = List.copyOf(volumes);
        refcountHistogram = refcountHistogram.clone();
        for (String k : pool.keySet()) Check.that(!k.isEmpty() && k.length() <= 255 && k.chars().allMatch(c -> c > 32 && c < 127), "history key '%s'", k);
        for (long c : refcountHistogram) Check.that(c >= 0, "negative refcount histogram bucket %d", c);
    }

    /** A sample of {@code stats} taken at {@code timeMillis}; {@code refcountHistogram} may be empty. */
    public static StatsSample of(long timeMillis, PoolStats stats, long[] refcountHistogram) {
        Map<String, Double> pool = new LinkedHashMap<>();
        for (PoolMetrics.Field<PoolStats> f : PoolMetrics.POOL) pool.put(f.key(), f.value().applyAsDouble(stats));
        List<VolumeSample> volumes = new ArrayList<>();
        for (PoolStats.VolumeStats v : stats.volumes()) {
            Map<String, Double> values = new LinkedHashMap<>();
            for (PoolMetrics.Field<PoolStats.VolumeStats> f : PoolMetrics.VOLUME) values.put(f.key(), f.value().applyAsDouble(v));
            volumes.add(new VolumeSample(v.name(), values));
        }
        return new StatsSample(timeMillis, pool, volumes, refcountHistogram);
    }

    /** The field's value, or NaN when this sample does not have it (recorded by an older dedisk). */
    public double get(PoolMetrics.Field<PoolStats> field) { return pool.getOrDefault(field.key(), Double.NaN); }

    public double get(String key) { return pool.getOrDefault(key, Double.NaN); }

    @Override public long[] refcountHistogram() { return refcountHistogram.clone(); }

    @Override
    public boolean equals(Object o) {
        return o instanceof StatsSample s && s.timeMillis == timeMillis && s.pool.equals(pool) && s.volumes.equals(volumes)
                && java.util.Arrays.equals(s.refcountHistogram, refcountHistogram);
    }

    @Override
    public int hashCode() { return Long.hashCode(timeMillis) * 31 + pool.hashCode(); }
}
