package io.dedisk.metrics;

import io.dedisk.pool.PoolStats;
import io.dedisk.util.Check;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.MultiGauge;
import io.micrometer.core.instrument.Tags;
import java.util.ArrayList;
import java.util.List;
import java.util.function.LongSupplier;
import java.util.function.Supplier;
import java.util.function.ToDoubleFunction;

/**
 * The one place that maps {@link PoolStats} to numbers: Prometheus gauges and counters here, and the keys of the
 * stats history (io.dedisk.report) too, which stores every {@link #POOL} and {@link #VOLUME} field by its
 * {@link Field#key()}. When PoolStats gains a field, one line in {@link #POOL} (or {@link #VOLUME}) exports it and
 * records it in the history.
 *
 * Sampling: {@link #snapshot()} calls {@code Pool.stats()} at most once per {@code maxAgeNanos} (1 s in serve),
 * however many gauges read it during one scrape and however many scrapers there are. {@link #refresh()} (called
 * by the /metrics handler before each scrape) also rewrites the per-volume rows, since volumes come and go.
 *
 * Threads: any; snapshot() is synchronized. Invariant: every field has a name, a help text and a unit suffix
 * that follow Prometheus conventions (counters get {@code _total} from the registry, never in the name).
 */
public final class PoolMetrics {
    public enum Kind { GAUGE, COUNTER }

    /** One number of a stats snapshot. {@code unit}: Prometheus base unit suffix ("bytes", "ratio"), or null. */
    public record Field<T>(String name, String unit, Kind kind, String help, ToDoubleFunction<T> value) {
        public Field {
            Check.that(name.startsWith("dedisk.") && !name.endsWith(".total") && !help.isEmpty(), "metric field %s", name);
        }

        /** The Prometheus name, e.g. dedisk_pool_data_bytes or dedisk_index_hits_total; also the history key. */
        public String key() {
            return name.replace('.', '_') + (unit == null ? "" : "_" + unit) + (kind == Kind.COUNTER ? "_total" : "");
        }
    }

    private static <T> Field<T> gauge(String name, String unit, String help, ToDoubleFunction<T> value) {
        return new Field<>(name, unit, Kind.GAUGE, help, value);
    }

    private static <T> Field<T> counter(String name, String help, ToDoubleFunction<T> value) {
        return new Field<>(name, null, Kind.COUNTER, help, value);
    }

    private static final String BYTES = "bytes";
    private static final String RATIO = "ratio";

    public static final Field<PoolStats> LOGICAL_SIZE = gauge("dedisk.pool.logical.size", BYTES, "Sum of the volumes' sizes", PoolStats::logicalSizeBytes);
    public static final Field<PoolStats> LOGICAL_USED = gauge("dedisk.pool.logical.used", BYTES, "Blocks mapped to stored chunks x 4 KiB", PoolStats::logicalUsedBytes);
    public static final Field<PoolStats> PHYSICAL_USED = gauge("dedisk.pool.physical.used", BYTES, "Every byte the pool holds on disk (log, checkpoints, superblock)", PoolStats::physicalUsedBytes);
    public static final Field<PoolStats> DATA = gauge("dedisk.pool.data", BYTES, "Stored (compressed) bodies of live chunks", PoolStats::dataBytes);
    public static final Field<PoolStats> METADATA = gauge("dedisk.pool.metadata", BYTES, "Physical bytes that are neither live data nor garbage", PoolStats::metadataBytes);
    public static final Field<PoolStats> LIVE_CHUNKS = gauge("dedisk.pool.chunks", null, "Live (unique) chunks", PoolStats::liveChunks);
    public static final Field<PoolStats> MAPPED_BLOCKS = gauge("dedisk.pool.mapped.blocks", null, "Blocks that reference a chunk", PoolStats::mappedBlocks);
    public static final Field<PoolStats> ZERO_BLOCKS = gauge("dedisk.pool.zero.blocks", null, "Blocks written as zeros (stored as nothing)", PoolStats::zeroBlocks);
    public static final Field<PoolStats> DEDUP = gauge("dedisk.pool.dedup", RATIO, "Mapped blocks per live chunk", PoolStats::dedupRatio);
    public static final Field<PoolStats> COMPRESSION = gauge("dedisk.pool.compression", RATIO, "Live chunks x 4 KiB per stored data byte", PoolStats::compressionRatio);
    public static final Field<PoolStats> SAVING = gauge("dedisk.pool.saving", RATIO, "1 - physical used / logical used (0 when nothing is used)", s -> s.savingPercent() / 100);
    public static final Field<PoolStats> READ_ONLY = gauge("dedisk.pool.read.only", null, "1 when the pool is read-only (see dedisk stats for why), else 0", s -> s.readOnlyReason() == null ? 0 : 1);
    public static final Field<PoolStats> BLOCKS_WRITTEN = counter("dedisk.pool.blocks.written", "4 KiB blocks written since the pool was opened", PoolStats::blocksWritten);
    public static final Field<PoolStats> BLOCKS_READ = counter("dedisk.pool.blocks.read", "4 KiB blocks read since the pool was opened", PoolStats::blocksRead);
    public static final Field<PoolStats> FLUSHES = counter("dedisk.pool.flushes", "Flushes since the pool was opened", PoolStats::flushes);
    public static final Field<PoolStats> CORRUPT_READS = counter("dedisk.pool.corrupt.reads", "Reads refused because stored bytes failed verification", PoolStats::corruptReads);
    public static final Field<PoolStats> NO_SPACE = gauge("dedisk.pool.no.space", null, "1 when fresh writes are refused because the disk is at its reserve, else 0", s -> s.noSpaceReason() == null ? 0 : 1);
    public static final Field<PoolStats> PAGES = gauge("dedisk.pool.metadata.pages", BYTES, "Metadata pages the checkpoint roots use", PoolStats::pageBytes);
    public static final Field<PoolStats> LOG = gauge("dedisk.log.segments.size", BYTES, "Bytes of the log's segment files", PoolStats::logBytes);
    public static final Field<PoolStats> SEGMENTS = gauge("dedisk.log.segments", null, "Segment files of the log", s -> s.log().segments());
    public static final Field<PoolStats> APPENDED = counter("dedisk.log.appended.bytes", "Bytes appended to the log since the pool was opened", s -> s.log().bytesAppended());
    public static final Field<PoolStats> CHECKPOINTS = counter("dedisk.log.checkpoints", "Checkpoints written since the pool was opened", s -> s.log().checkpoints());
    public static final Field<PoolStats> PAGES_WRITTEN = counter("dedisk.log.pages.written", "Metadata pages written by checkpoints since the pool was opened", s -> s.log().pagesWritten());
    public static final Field<PoolStats> GARBAGE = gauge("dedisk.gc.garbage", BYTES, "Segment bytes nothing references (dead chunks, superseded pages, checkpointed records), awaiting the cleaner", PoolStats::garbageBytes);
    public static final Field<PoolStats> GC_CLEANED = counter("dedisk.gc.segments.cleaned", "Segments the cleaner emptied since the pool was opened", s -> s.log().segmentsCleaned());
    public static final Field<PoolStats> GC_DELETED = counter("dedisk.gc.segments.deleted", "Cleaned segments deleted since the pool was opened", s -> s.log().segmentsDeleted());
    public static final Field<PoolStats> GC_MOVED = counter("dedisk.gc.moved.bytes", "Live chunk bytes the cleaner copied since the pool was opened", s -> s.log().cleanerBytesMoved());
    public static final Field<PoolStats> GC_WA = gauge("dedisk.log.write.amplification", RATIO, "Cleaner write amplification: (client bytes appended + cleaner bytes moved) / client bytes appended", s -> s.log().writeAmplification());
    public static final Field<PoolStats> CACHE_CAPACITY = gauge("dedisk.cache.metadata.capacity", BYTES, "Configured size of the metadata page cache", s -> s.cache().capacityBytes());
    public static final Field<PoolStats> CACHE_USED = gauge("dedisk.cache.metadata.used", BYTES, "Metadata pages held in memory", s -> s.cache().bytes());
    public static final Field<PoolStats> CACHE_DIRTY = gauge("dedisk.cache.metadata.dirty", BYTES, "Metadata pages changed since the last checkpoint", s -> s.cache().dirtyBytes());
    public static final Field<PoolStats> CACHE_HITS = counter("dedisk.cache.metadata.hits", "Metadata page lookups found in memory", s -> s.cache().hits());
    public static final Field<PoolStats> CACHE_MISSES = counter("dedisk.cache.metadata.misses", "Metadata page lookups that read the log", s -> s.cache().misses());
    public static final Field<PoolStats> INDEX_ENTRIES = gauge("dedisk.index.entries", null, "Names the dedup index holds", s -> s.index().entries());
    public static final Field<PoolStats> INDEX_WINDOW = gauge("dedisk.index.window.entries", null, "Names the dedup index can hold (+Inf: unbounded)",
            s -> s.index().windowEntries() == Long.MAX_VALUE ? Double.POSITIVE_INFINITY : s.index().windowEntries());
    public static final Field<PoolStats> INDEX_MEMORY = gauge("dedisk.index.memory", BYTES, "Memory the dedup index holds", s -> s.index().memoryBytes());
    public static final Field<PoolStats> INDEX_DISK = gauge("dedisk.index.disk", BYTES, "Bytes of the dedup index's files (NaN while unknown)",
            s -> s.index().diskBytes() < 0 ? Double.NaN : s.index().diskBytes());
    public static final Field<PoolStats> INDEX_HITS = counter("dedisk.index.hits", "Dedup index answers confirmed as duplicates", s -> s.index().hits());
    public static final Field<PoolStats> INDEX_MISSES = counter("dedisk.index.misses", "Dedup index lookups without a candidate", s -> s.index().misses());
    public static final Field<PoolStats> INDEX_STALE = counter("dedisk.index.stale.advice", "Dedup index candidates that were no longer (or never) the same content", s -> s.index().staleAdvice());
    public static final Field<PoolStats> INDEX_REBUILD = gauge("dedisk.index.rebuild.remaining", RATIO, "Part of the dedup index still to rebuild after a crash (0: done)", s -> s.index().rebuildRemaining());

    public static final Field<PoolStats> UPLOAD_BACKLOG = gauge("dedisk.upload.backlog", BYTES, "Bucket pools: sealed segment bytes not yet in the bucket (0 for a directory pool)",
            s -> s.backlog() == null ? 0 : s.backlog().bytes());
    public static final Field<PoolStats> UPLOAD_BACKLOG_AGE = gauge("dedisk.upload.backlog.age", "seconds", "Bucket pools: how long the oldest segment not yet in the bucket has waited",
            s -> s.backlog() == null ? 0 : Math.max(0, s.backlog().oldestAgeMillis()) / 1000.0);

    /** Pool-wide fields, in the order they are exported and recorded. */
    public static final List<Field<PoolStats>> POOL = List.of(LOGICAL_SIZE, LOGICAL_USED, PHYSICAL_USED, DATA, METADATA, LIVE_CHUNKS,
            MAPPED_BLOCKS, ZERO_BLOCKS, DEDUP, COMPRESSION, SAVING, READ_ONLY, BLOCKS_WRITTEN, BLOCKS_READ, FLUSHES, CORRUPT_READS,
            NO_SPACE, PAGES, LOG, SEGMENTS, APPENDED, CHECKPOINTS, PAGES_WRITTEN, GARBAGE, GC_CLEANED, GC_DELETED, GC_MOVED, GC_WA,
            CACHE_CAPACITY, CACHE_USED, CACHE_DIRTY, CACHE_HITS, CACHE_MISSES, INDEX_ENTRIES, INDEX_WINDOW, INDEX_MEMORY, INDEX_DISK, INDEX_HITS, INDEX_MISSES,
            INDEX_STALE, INDEX_REBUILD, UPLOAD_BACKLOG, UPLOAD_BACKLOG_AGE);

    public static final Field<PoolStats.VolumeStats> VOLUME_SIZE = gauge("dedisk.volume.size", BYTES, "Logical size of the volume", PoolStats.VolumeStats::sizeBytes);
    public static final Field<PoolStats.VolumeStats> VOLUME_USED = gauge("dedisk.volume.logical.used", BYTES, "Volume blocks mapped to stored chunks x 4 KiB", PoolStats.VolumeStats::logicalUsedBytes);
    public static final Field<PoolStats.VolumeStats> VOLUME_MAPPED = gauge("dedisk.volume.mapped.blocks", null, "Volume blocks that reference a chunk", PoolStats.VolumeStats::mappedBlocks);
    public static final Field<PoolStats.VolumeStats> VOLUME_ZERO = gauge("dedisk.volume.zero.blocks", null, "Volume blocks written as zeros", PoolStats.VolumeStats::zeroBlocks);

    /** Per-volume fields (tag {@code volume}). */
    public static final List<Field<PoolStats.VolumeStats>> VOLUME = List.of(VOLUME_SIZE, VOLUME_USED, VOLUME_MAPPED, VOLUME_ZERO);

    private final Supplier<PoolStats> source;
    private final LongSupplier nanoClock;
    private final long maxAgeNanos;
    private final List<MultiGauge> volumeGauges = new ArrayList<>();
    // Guarded by this.
    private PoolStats cached;
    private long cachedAt;
    private long samples;

    /** Reads stats from {@code source} (e.g. {@code pool::stats}) at most once per {@code maxAgeNanos}. */
    public PoolMetrics(Supplier<PoolStats> source, LongSupplier nanoClock, long maxAgeNanos) {
        Check.that(maxAgeNanos >= 0, "snapshot age %d must not be negative", maxAgeNanos);
        this.source = source;
        this.nanoClock = nanoClock;
        this.maxAgeNanos = maxAgeNanos;
    }

    /**
     * Registers every pool and volume field, and dedisk_pool_info{pool_id,index_kind,index_sparse} = 1. Volume
     * rows appear at the first {@link #refresh}.
     */
    public PoolMetrics bindTo(MeterRegistry registry) {
        for (Field<PoolStats> f : POOL) {
            if (f.kind() == Kind.COUNTER) {
                FunctionCounter.builder(f.name(), this, m -> f.value().applyAsDouble(m.snapshot())).description(f.help()).register(registry);
            } else {
                Gauge.builder(f.name(), this, m -> f.value().applyAsDouble(m.snapshot())).baseUnit(f.unit()).description(f.help()).register(registry);
            }
        }
        for (Field<PoolStats.VolumeStats> f : VOLUME) {
            Check.that(f.kind() == Kind.GAUGE, "volume field %s must be a gauge (rows are rewritten at each scrape)", f.name());
            volumeGauges.add(MultiGauge.builder(f.name()).baseUnit(f.unit()).description(f.help()).register(registry));
        }
        PoolStats s = source.get(); // not cached: the first scrape must not see a snapshot from start-up
        Gauge.builder("dedisk.pool.info", () -> 1)
                .tags(Tags.of("pool_id", s.poolId(), "index_kind", s.index().kind(), "index_sparse", Boolean.toString(s.index().sparse())))
                .description("Constant 1, labelled with the pool's identity and dedup index configuration").register(registry);
        return this;
    }

    /** The newest snapshot, taken now if the cached one is older than the maximum age. */
    public synchronized PoolStats snapshot() {
        long now = nanoClock.getAsLong();
        if (cached == null || now - cachedAt > maxAgeNanos) {
            cached = source.get();
            cachedAt = now;
            samples++;
            Check.that(cached != null, "the stats source returned null");
        }
        return cached;
    }

    /** How many times the source was asked (for tests: at most once per maximum age). */
    public synchronized long samplesTaken() { return samples; }

    /** Rewrites the per-volume rows from the (cached) snapshot; call before each scrape. */
    public void refresh() {
        PoolStats s = snapshot();
        for (int i = 0; i < VOLUME.size(); i++) {
            Field<PoolStats.VolumeStats> f = VOLUME.get(i);
            List<MultiGauge.Row<?>> rows = new ArrayList<>(s.volumes().size());
            for (PoolStats.VolumeStats v : s.volumes()) rows.add(MultiGauge.Row.of(Tags.of("volume", v.name()), f.value().applyAsDouble(v)));
            volumeGauges.get(i).register(rows, true);
        }
    }
}
