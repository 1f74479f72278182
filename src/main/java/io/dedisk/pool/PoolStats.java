package io.dedisk.pool;

import io.dedisk.store.SharedBackend;
import io.dedisk.util.Sizes;
import java.util.List;
import java.util.Locale;

/**
 * A snapshot of a pool's space and activity, in the spirit of vdostats. Definitions (docs/operations.md):
 * logical used = blocks mapped to chunks x 4 KiB (zero blocks and holes use nothing); physical used = every byte
 * the pool has on disk: the segments of the log, the superblock, the manifest and the dedup index's files. Of the
 * segments: data = live chunk bodies, pages = metadata pages the checkpoint roots use, garbage = everything else
 * (dead chunks, superseded pages, records already checkpointed) until the cleaner reclaims it. Dedup ratio =
 * mapped blocks / live chunks; compression ratio = live chunks x 4 KiB / data bytes; saving = 1 - physical used /
 * logical used; cleaner write amplification = (bytes the clients' writes appended + bytes the cleaner moved) /
 * bytes the clients' writes appended.
 */
public record PoolStats(String poolId, String readOnlyReason, String noSpaceReason, List<VolumeStats> volumes, long liveChunks, long dataBytes,
                        long pageBytes, long garbageBytes, long logBytes, long otherBytes, IndexStats index, LogStats log, CacheStats cache,
                        long blocksWritten, long blocksRead, long flushes, long corruptReads, SharedBackend.Backlog backlog) {

    /** Without an upload backlog: a directory pool (a bucket pool's is its sealed segments not yet in the bucket). */
    public PoolStats(String poolId, String readOnlyReason, String noSpaceReason, List<VolumeStats> volumes, long liveChunks, long dataBytes,
                     long pageBytes, long garbageBytes, long logBytes, long otherBytes, IndexStats index, LogStats log, CacheStats cache,
                     long blocksWritten, long blocksRead, long flushes, long corruptReads) {
        this(poolId, readOnlyReason, noSpaceReason, volumes, liveChunks, dataBytes, pageBytes, garbageBytes, logBytes, otherBytes, index, log, cache,
                blocksWritten, blocksRead, flushes, corruptReads, null);
    }

    public record VolumeStats(String name, long sizeBytes, long mappedBlocks, long zeroBlocks) {
        public long logicalUsedBytes() { return mappedBlocks * Pool.BLOCK_SIZE; }
    }

    /**
     * The dedup index: kind (uds or exact), what it holds, its window, memory and disk, how advice fared, and what
     * compaction (advice of dead chunks dropped) gave back since the pool was opened.
     */
    public record IndexStats(String kind, long entries, long windowEntries, long memoryBytes, long diskBytes, long hits,
                             long misses, long staleAdvice, boolean sparse, double rebuildRemaining, io.dedisk.index.DedupIndex.Compaction compacted) {}

    /** The log and its upkeep: segments, bytes appended for clients, checkpoints (and the bytes of the PAGE records they wrote, not in bytesAppended), the cleaner. */
    public record LogStats(long segments, long bytesAppended, long checkpoints, long pagesWritten, long pageBytesWritten, long segmentsDeleted,
                           long segmentsCleaned, long cleanerBytesMoved, long pagesRewritten) {
        public double writeAmplification() {
            long user = bytesAppended - cleanerBytesMoved;
            return user <= 0 ? 1.0 : (double) bytesAppended / user;
        }
    }

    /** The metadata page cache. */
    public record CacheStats(long capacityBytes, long bytes, long dirtyBytes, long hits, long misses, long evictions) {}

    /** normal, no-space (fresh writes refused, all else works) or read-only. */
    public String mode() { return readOnlyReason != null ? "read-only" : noSpaceReason != null ? "no-space" : "normal"; }

    public long mappedBlocks() { return volumes.stream().mapToLong(VolumeStats::mappedBlocks).sum(); }
    public long zeroBlocks() { return volumes.stream().mapToLong(VolumeStats::zeroBlocks).sum(); }
    public long logicalSizeBytes() { return volumes.stream().mapToLong(VolumeStats::sizeBytes).sum(); }
    public long logicalUsedBytes() { return mappedBlocks() * Pool.BLOCK_SIZE; }
    public long physicalUsedBytes() { return logBytes + otherBytes; }
    public long metadataBytes() { return physicalUsedBytes() - dataBytes - garbageBytes; }
    public double dedupRatio() { return liveChunks == 0 ? 1.0 : (double) mappedBlocks() / liveChunks; }
    public double compressionRatio() { return dataBytes == 0 ? 1.0 : (double) liveChunks * Pool.BLOCK_SIZE / dataBytes; }
    public double savingPercent() {
        long logical = logicalUsedBytes();
        return logical == 0 ? 0.0 : 100.0 * (logical - physicalUsedBytes()) / logical;
    }

    public String toJson() {
        StringBuilder b = new StringBuilder(512);
        b.append("{\"poolId\":\"").append(poolId).append('"')
                .append(",\"mode\":\"").append(mode()).append('"');
        if (readOnlyReason != null) b.append(",\"readOnlyReason\":").append(quote(readOnlyReason));
        if (noSpaceReason != null) b.append(",\"noSpaceReason\":").append(quote(noSpaceReason));
        b.append(",\"logicalSizeBytes\":").append(logicalSizeBytes())
                .append(",\"logicalUsedBytes\":").append(logicalUsedBytes())
                .append(",\"mappedBlocks\":").append(mappedBlocks())
                .append(",\"zeroBlocks\":").append(zeroBlocks())
                .append(",\"physicalUsedBytes\":").append(physicalUsedBytes())
                .append(",\"dataBytes\":").append(dataBytes)
                .append(",\"metadataBytes\":").append(metadataBytes())
                .append(",\"pageBytes\":").append(pageBytes)
                .append(",\"garbageBytes\":").append(garbageBytes)
                .append(",\"segmentBytes\":").append(logBytes)
                .append(",\"uniqueChunks\":").append(liveChunks)
                .append(",\"dedupRatio\":").append(num(dedupRatio()))
                .append(",\"compressionRatio\":").append(num(compressionRatio()))
                .append(",\"savingPercent\":").append(num(savingPercent()))
                .append(",\"blocksWritten\":").append(blocksWritten)
                .append(",\"blocksRead\":").append(blocksRead)
                .append(",\"flushes\":").append(flushes)
                .append(",\"corruptReads\":").append(corruptReads);
        if (backlog != null) {
            b.append(",\"backlog\":{\"segments\":").append(backlog.segments()).append(",\"bytes\":").append(backlog.bytes())
                    .append(",\"oldestAgeMillis\":").append(backlog.oldestAgeMillis()).append('}');
        }
        b                .append(",\"log\":{\"segments\":").append(log.segments())
                .append(",\"bytesAppended\":").append(log.bytesAppended())
                .append(",\"checkpoints\":").append(log.checkpoints())
                .append(",\"pagesWritten\":").append(log.pagesWritten())
                .append(",\"segmentsDeleted\":").append(log.segmentsDeleted())
                .append(",\"segmentsCleaned\":").append(log.segmentsCleaned())
                .append(",\"cleanerBytesMoved\":").append(log.cleanerBytesMoved())
                .append(",\"pagesRewritten\":").append(log.pagesRewritten())
                .append(",\"pageBytesWritten\":").append(log.pageBytesWritten())
                .append(",\"writeAmplification\":").append(num(log.writeAmplification())).append('}')
                .append(",\"metadataCache\":{\"capacityBytes\":").append(cache.capacityBytes())
                .append(",\"bytes\":").append(cache.bytes())
                .append(",\"dirtyBytes\":").append(cache.dirtyBytes())
                .append(",\"hits\":").append(cache.hits())
                .append(",\"misses\":").append(cache.misses())
                .append(",\"evictions\":").append(cache.evictions()).append('}')
                .append(",\"index\":{\"kind\":\"").append(index.kind()).append('"')
                .append(",\"sparse\":").append(index.sparse())
                .append(",\"entries\":").append(index.entries())
                .append(",\"windowEntries\":").append(index.windowEntries())
                .append(",\"memoryBytes\":").append(index.memoryBytes())
                .append(",\"diskBytes\":").append(index.diskBytes())
                .append(",\"rebuildRemaining\":").append(num(index.rebuildRemaining()))
                .append(",\"hits\":").append(index.hits())
                .append(",\"misses\":").append(index.misses())
                .append(",\"staleAdvice\":").append(index.staleAdvice())
                .append(",\"compactedChapters\":").append(index.compacted().chaptersRewritten())
                .append(",\"compactedChaptersDeleted\":").append(index.compacted().chaptersDeleted())
                .append(",\"compactedRecords\":").append(index.compacted().records())
                .append(",\"compactedBytes\":").append(index.compacted().bytes()).append('}')
                .append(",\"volumes\":[");
        for (int i = 0; i < volumes.size(); i++) {
            VolumeStats v = volumes.get(i);
            if (i > 0) b.append(',');
            b.append("{\"name\":").append(quote(v.name()))
                    .append(",\"sizeBytes\":").append(v.sizeBytes())
                    .append(",\"logicalUsedBytes\":").append(v.logicalUsedBytes())
                    .append(",\"mappedBlocks\":").append(v.mappedBlocks())
                    .append(",\"zeroBlocks\":").append(v.zeroBlocks()).append('}');
        }
        return b.append("]}").toString();
    }

    public String toText() {
        StringBuilder b = new StringBuilder();
        b.append(String.format(Locale.ROOT, "pool %s  mode %s%n", poolId, readOnlyReason != null ? "READ-ONLY (" + readOnlyReason + ")"
                : noSpaceReason != null ? "NO-SPACE (" + noSpaceReason + ")" : "normal"));
        b.append(String.format(Locale.ROOT, "%-24s %14s %14s %12s %12s%n", "volume", "size", "logical used", "zero blocks", "mapped"));
        for (VolumeStats v : volumes) {
            b.append(String.format(Locale.ROOT, "%-24s %14s %14s %12d %12d%n", v.name(), Sizes.format(v.sizeBytes()),
                    Sizes.format(v.logicalUsedBytes()), v.zeroBlocks(), v.mappedBlocks()));
        }
        b.append(String.format(Locale.ROOT, "%-24s %14s %14s %12d %12d%n%n", "(pool)", Sizes.format(logicalSizeBytes()),
                Sizes.format(logicalUsedBytes()), zeroBlocks(), mappedBlocks()));
        row(b, "physical used", Sizes.format(physicalUsedBytes()) + " (" + physicalUsedBytes() + " bytes)");
        row(b, "  data", Sizes.format(dataBytes));
        row(b, "  metadata", Sizes.format(metadataBytes()));
        row(b, "    of which pages", Sizes.format(pageBytes));
        row(b, "  garbage (awaiting GC)", Sizes.format(garbageBytes));
        row(b, "segments", String.format(Locale.ROOT, "%d (%s), %d cleaned, %d deleted, cleaner moved %s, write amplification %.2f",
                log.segments(), Sizes.format(logBytes), log.segmentsCleaned(), log.segmentsDeleted(), Sizes.format(log.cleanerBytesMoved()),
                log.writeAmplification()));
        row(b, "checkpoints", String.format(Locale.ROOT, "%d, %d pages written", log.checkpoints(), log.pagesWritten()));
        row(b, "metadata cache", String.format(Locale.ROOT, "%s of %s (%s dirty), %d hits, %d misses", Sizes.format(cache.bytes()),
                Sizes.format(cache.capacityBytes()), Sizes.format(cache.dirtyBytes()), cache.hits(), cache.misses()));
        row(b, "unique chunks", Long.toString(liveChunks));
        row(b, "dedup ratio", String.format(Locale.ROOT, "%.2f", dedupRatio()));
        row(b, "compression ratio", String.format(Locale.ROOT, "%.2f", compressionRatio()));
        row(b, "space saving", String.format(Locale.ROOT, "%.1f%%", savingPercent()));
        row(b, "index", String.format(Locale.ROOT, "%s%s: %d entries of a %s-entry window, %s memory, %s on disk%s",
                index.kind(), index.sparse() ? " sparse" : index.kind().equals("uds") ? " dense" : "", index.entries(),
                index.windowEntries() == Long.MAX_VALUE ? "unbounded" : Long.toString(index.windowEntries()),
                Sizes.format(index.memoryBytes()), Sizes.format(Math.max(0, index.diskBytes())),
                index.rebuildRemaining() > 0 ? String.format(Locale.ROOT, ", rebuilding (%.0f%% left)", 100 * index.rebuildRemaining()) : ""));
        row(b, "index advice", String.format(Locale.ROOT, "%d hits, %d misses, %d stale", index.hits(), index.misses(), index.staleAdvice()));
        row(b, "index compaction", String.format(Locale.ROOT, "%s given back, %d records of dead chunks dropped, %d chapters rewritten, %d deleted (since open)",
                Sizes.format(index.compacted().bytes()), index.compacted().records(), index.compacted().chaptersRewritten(), index.compacted().chaptersDeleted()));
        row(b, "blocks written / read", blocksWritten + " / " + blocksRead);
        row(b, "flushes", Long.toString(flushes));
        row(b, "corrupt reads", Long.toString(corruptReads));
        if (backlog != null) {
            row(b, "upload backlog", String.format(Locale.ROOT, "%d segments, %s, %s", backlog.segments(), Sizes.format(backlog.bytes()),
                    backlog.oldestAgeMillis() < 0 ? "in the cache directory (age unknown offline)"
                            : String.format(Locale.ROOT, "oldest waiting %.1f s", backlog.oldestAgeMillis() / 1000.0)));
        }
        return b.toString();
    }

    private static void row(StringBuilder b, String label, String value) {
        b.append(String.format(Locale.ROOT, "%-24s %s%n", label, value));
    }

    private static String num(double d) { return String.format(Locale.ROOT, "%.4f", d); }

    static String quote(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            switch (c) {
                case '"' -> b.append("\\\"");
                case '\\' -> b.append("\\\\");
                default -> { if (c < 0x20) b.append(String.format("\\u%04x", (int) c)); else b.append(c); }
            }
        }
        return b.append('"').toString();
    }
}
