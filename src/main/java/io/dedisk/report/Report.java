package io.dedisk.report;

import io.dedisk.metrics.PoolMetrics;
import io.dedisk.pool.PoolStats;
import io.dedisk.util.Check;
import io.dedisk.util.Sizes;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.function.DoubleFunction;

/**
 * The savings report (`dedisk report`): one self-contained HTML page (inline CSS and SVG, no script, nothing
 * fetched) built from the pool's current stats, its stats history and, with --scan, a content scan. Plots:
 * physical vs logical space over time; dedup and compression ratios per volume (and the pool's over time); the
 * distribution of chunk reference counts; the dedup index hit rate; garbage collection activity.
 *
 * The reference-count plot takes a {@code long[]} histogram (bucket i: 2^i ≤ refs < 2^(i+1)) from, in order:
 * the content scan, the newest history sample that has one (the engine's {@code Pool.refcountHistogram()} once
 * it exists), or else it plots what the history holds: mean references per chunk over time.
 * The GC plot draws every history field named dedisk_gc_*, so fields the cleaner adds to PoolMetrics appear in it.
 *
 * Pure function of its input; any thread.
 */
public final class Report {
    /** Everything a report is made from. {@code scan} may be null (no --scan). */
    public record Data(long generatedMillis, String source, PoolStats now, StatsHistory.Contents history, ContentScan.Result scan) {}

    private static final DoubleFunction<String> BYTES = v -> Sizes.format(Math.round(v));
    private static final DoubleFunction<String> RATIO = v -> String.format(Locale.ROOT, "%.2f", v);
    private static final DoubleFunction<String> PERCENT = v -> String.format(Locale.ROOT, "%.0f%%", 100 * v);
    private static final DoubleFunction<String> COUNT = v -> String.format(Locale.ROOT, "%,d", Math.round(v));

    private Report() {}

    /** The history samples followed by the current stats as the newest point. */
    static List<StatsSample> timeline(Data d) {
        List<StatsSample> out = new ArrayList<>(d.history().samples());
        StatsSample now = StatsSample.of(d.generatedMillis(), d.now(), new long[0]);
        if (out.isEmpty() || out.getLast().timeMillis() < now.timeMillis()) out.add(now);
        return out;
    }

    static Svg.Series series(String name, List<StatsSample> samples, String key) {
        List<Svg.Point> pts = new ArrayList<>(samples.size());
        for (StatsSample s : samples) pts.add(new Svg.Point(s.timeMillis(), s.get(key)));
        return new Svg.Series(name, pts);
    }

    /** Hit rate of each interval between samples (counters restart at zero when the pool is reopened). */
    static Svg.Series hitRate(List<StatsSample> samples) {
        List<Svg.Point> pts = new ArrayList<>();
        double prevHits = 0, prevMisses = 0;
        for (StatsSample s : samples) {
            double h = s.get(PoolMetrics.INDEX_HITS), m = s.get(PoolMetrics.INDEX_MISSES);
            if (!Double.isFinite(h) || !Double.isFinite(m)) continue;
            double dh = h - prevHits, dm = m - prevMisses;
            if (dh < 0 || dm < 0) { dh = h; dm = m; } // a restart in between
            if (dh + dm > 0) pts.add(new Svg.Point(s.timeMillis(), dh / (dh + dm)));
            prevHits = h;
            prevMisses = m;
        }
        return new Svg.Series("hit rate per interval", pts);
    }

    /** The refcount histogram to plot and where it came from, or null when there is none. */
    record Histogram(long[] buckets, String source) {}

    static Histogram histogram(Data d) {
        if (d.scan() != null) return new Histogram(d.scan().refcountHistogram(), "content scan of every stored block at " + time(d.generatedMillis()));
        List<StatsSample> samples = d.history().samples();
        for (int i = samples.size() - 1; i >= 0; i--) {
            long[] h = samples.get(i).refcountHistogram();
            if (h.length > 0) return new Histogram(h, "stats sample of " + time(samples.get(i).timeMillis()));
        }
        return null;
    }

    static String bucketLabel(int i) {
        long lo = 1L << i, hi = (1L << (i + 1)) - 1;
        return lo == hi ? Long.toString(lo) : lo + "–" + hi;
    }

    static String time(long millis) {
        return DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss 'UTC'").format(Instant.ofEpochMilli(millis).atZone(ZoneOffset.UTC));
    }

    public static String render(Data d) {
        PoolStats now = d.now();
        List<StatsSample> tl = timeline(d);
        StringBuilder b = new StringBuilder(64 * 1024);
        b.append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>dedisk savings report: pool ")
                .append(Svg.esc(now.poolId())).append("</title>\n<style>\n")
                .append("body{font-family:sans-serif;margin:24px;color:#222;background:#fff;max-width:1060px}\n")
                .append("h1{font-size:24px}h3{font-size:16px;margin:16px 0 4px}h2{font-size:19px;margin-top:32px;border-bottom:2px solid #1f77b4;padding-bottom:4px}\n")
                .append("table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}\n")
                .append("th{background:#eef3f8}td:first-child,th:first-child{text-align:left}\n")
                .append(".note{color:#555;font-size:14px}.empty{padding:20px;background:#f6f6f6;color:#555;font-size:16px}\n")
                .append(".warn{color:#a00}svg.plot{display:block;margin:8px 0;border:1px solid #ddd}\n</style>\n</head>\n<body>\n");
        b.append("<h1>dedisk savings report</h1>\n<p class=\"note\">pool <code>").append(Svg.esc(now.poolId())).append("</code> · generated ")
                .append(Svg.esc(time(d.generatedMillis()))).append(" · ").append(Svg.esc(d.source())).append(" · mode ")
                .append(now.readOnlyReason() == null ? "normal" : "<span class=\"warn\">read-only (" + Svg.esc(now.readOnlyReason()) + ")</span>")
                .append("</p>\n");
        summary(b, d, tl);
        space(b, tl);
        ratios(b, d, tl);
        refcounts(b, d, tl);
        index(b, tl);
        gc(b, tl);
        b.append("</body>\n</html>\n");
        return b.toString();
    }

    private static void row(StringBuilder b, String label, String value) {
        b.append("<tr><td>").append(Svg.esc(label)).append("</td><td>").append(Svg.esc(value)).append("</td></tr>\n");
    }

    private static void summary(StringBuilder b, Data d, List<StatsSample> tl) {
        PoolStats s = d.now();
        b.append("<h2 id=\"summary\">Summary</h2>\n<table>\n");
        row(b, "logical size (all volumes)", Sizes.format(s.logicalSizeBytes()));
        row(b, "logical used", Sizes.format(s.logicalUsedBytes()));
        row(b, "physical used", Sizes.format(s.physicalUsedBytes()));
        row(b, "  stored data / metadata / garbage", Sizes.format(s.dataBytes()) + " / " + Sizes.format(s.metadataBytes()) + " / " + Sizes.format(s.garbageBytes()));
        row(b, "space saving", String.format(Locale.ROOT, "%.1f%%", s.savingPercent()));
        row(b, "dedup ratio", RATIO.apply(s.dedupRatio()));
        row(b, "compression ratio", RATIO.apply(s.compressionRatio()));
        row(b, "unique chunks", COUNT.apply(s.liveChunks()));
        row(b, "zero blocks (stored as nothing)", COUNT.apply(s.zeroBlocks()));
        // Index counters restart when the pool is opened (an offline report opens it anew): show the newest
        // sample that saw lookups.
        String advice = "no lookups recorded";
        for (int i = tl.size() - 1; i >= 0; i--) {
            double hits = tl.get(i).get(PoolMetrics.INDEX_HITS), lookups = hits + tl.get(i).get(PoolMetrics.INDEX_MISSES);
            if (lookups > 0) {
                advice = COUNT.apply(hits) + " of " + COUNT.apply(lookups) + " lookups (" + PERCENT.apply(hits / lookups) + "), since the pool was opened, as of "
                        + time(tl.get(i).timeMillis());
                break;
            }
        }
        row(b, "dedup index hits", advice);
        StatsHistory.Contents h = d.history();
        String span = h.samples().isEmpty() ? "none" : h.samples().size() + " samples, " + time(h.samples().getFirst().timeMillis()) + " to " + time(h.samples().getLast().timeMillis());
        row(b, "stats history", span);
        b.append("</table>\n");
        if (h.damagedBytes() > 0) {
            b.append("<p class=\"warn\">").append(h.damagedBytes()).append(" bytes of damaged stats history were skipped.</p>\n");
        }
        if (h.samples().isEmpty()) {
            b.append("<p class=\"note\">No stats history yet: `dedisk serve` records a sample every --stats-interval (default 60 s) in POOL/stats-history. "
                    + "The plots over time show the current stats only.</p>\n");
        }
        b.append("<table>\n<tr><th>volume</th><th>size</th><th>logical used</th><th>zero blocks</th>");
        if (d.scan() != null) b.append("<th>distinct blocks</th><th>dedup ratio</th><th>compression ratio</th>");
        b.append("</tr>\n");
        for (PoolStats.VolumeStats v : s.volumes()) {
            b.append("<tr><td>").append(Svg.esc(v.name())).append("</td><td>").append(Sizes.format(v.sizeBytes())).append("</td><td>")
                    .append(Sizes.format(v.logicalUsedBytes())).append("</td><td>").append(COUNT.apply(v.zeroBlocks())).append("</td>");
            if (d.scan() != null) {
                ContentScan.VolumeScan vs = d.scan().volumes().stream().filter(x -> x.name().equals(v.name())).findFirst().orElse(null);
                if (vs == null) b.append("<td colspan=\"3\">not scanned</td>");
                else b.append("<td>").append(COUNT.apply(vs.distinctBlocks())).append("</td><td>").append(RATIO.apply(vs.dedupRatio()))
                        .append("</td><td>").append(RATIO.apply(vs.compressionRatio())).append("</td>");
            }
            b.append("</tr>\n");
        }
        b.append("</table>\n");
    }

    private static void space(StringBuilder b, List<StatsSample> tl) {
        b.append("<h2 id=\"space\">Physical vs logical space over time</h2>\n");
        b.append(Svg.timeChart("plot-space", "Physical vs logical space over time", List.of(
                series("logical used", tl, PoolMetrics.LOGICAL_USED.key()),
                series("physical used", tl, PoolMetrics.PHYSICAL_USED.key()),
                series("stored data", tl, PoolMetrics.DATA.key())), true, BYTES));
        b.append("<p class=\"note\">Logical used: blocks that reference stored data × 4 KiB. Physical used: every byte of the pool's log, "
                + "checkpoints and superblock. The gap between them is what dedup, compression and zero detection save.</p>\n");
    }

    private static void ratios(StringBuilder b, Data d, List<StatsSample> tl) {
        b.append("<h2 id=\"ratios\">Dedup and compression ratios per volume</h2>\n");
        List<Svg.Group> groups = new ArrayList<>();
        groups.add(new Svg.Group("pool", new double[] {d.now().dedupRatio(), d.now().compressionRatio()}));
        if (d.scan() != null) {
            for (ContentScan.VolumeScan v : d.scan().volumes()) groups.add(new Svg.Group(v.name(), new double[] {v.dedupRatio(), v.compressionRatio()}));
        }
        b.append(Svg.barChart("plot-ratios", "Dedup and compression ratios per volume", List.of("dedup ratio", "compression ratio"), groups, false, RATIO));
        if (d.scan() == null) {
            b.append("<p class=\"note\">Per-volume ratios come from a content scan: <code>dedisk report --scan</code> reads every stored block once. "
                    + "(The pool's stats do not split chunks by volume: chunks are shared across volumes.)</p>\n");
        } else {
            b.append("<p class=\"note\">A volume's dedup ratio: its mapped blocks / its distinct contents; compression ratio: distinct contents × 4 KiB "
                    + "/ their LZ4 size. Blocks shared between volumes count in each. Pool: from the stats.</p>\n");
        }
        b.append("<h3>Pool ratios over time</h3>\n");
        b.append(Svg.timeChart("plot-ratios-time", "Pool dedup and compression ratios over time", List.of(
                series("dedup ratio", tl, PoolMetrics.DEDUP.key()), series("compression ratio", tl, PoolMetrics.COMPRESSION.key())), false, RATIO));
    }

    private static void refcounts(StringBuilder b, Data d, List<StatsSample> tl) {
        b.append("<h2 id=\"refcounts\">Chunk reference counts</h2>\n");
        Histogram h = histogram(d);
        if (h != null) {
            List<Svg.Group> groups = new ArrayList<>();
            for (int i = 0; i < h.buckets().length; i++) groups.add(new Svg.Group(bucketLabel(i), new double[] {h.buckets()[i]}));
            b.append(Svg.barChart("plot-refcounts", "Distribution of chunk reference counts", List.of("chunks"), groups, true, COUNT));
            b.append("<p class=\"note\">Chunks by how many blocks reference them (powers-of-two buckets); from the ").append(Svg.esc(h.source())).append(".</p>\n");
        } else {
            List<Svg.Point> mean = new ArrayList<>();
            for (StatsSample s : tl) {
                double chunks = s.get(PoolMetrics.LIVE_CHUNKS);
                if (chunks > 0) mean.add(new Svg.Point(s.timeMillis(), s.get(PoolMetrics.MAPPED_BLOCKS) / chunks));
            }
            b.append(Svg.timeChart("plot-refcounts", "Mean references per chunk over time", List.of(new Svg.Series("mean references per chunk", mean)), false, RATIO));
            b.append("<p class=\"note\">The stats history holds no reference-count histogram (the pool does not report one yet), so this plots the "
                    + "mean: mapped blocks / live chunks. <code>dedisk report --scan</code> draws the full distribution.</p>\n");
        }
    }

    private static void index(StringBuilder b, List<StatsSample> tl) {
        b.append("<h2 id=\"index\">Dedup index hit rate</h2>\n");
        Svg.Series rate = hitRate(tl);
        if (rate.points().isEmpty()) {
            b.append("<div class=\"empty\" id=\"plot-index\">no index lookups recorded</div>\n");
            return;
        }
        b.append(Svg.timeChart("plot-index", "Dedup index hit rate", List.of(rate), false, PERCENT));
        b.append("<p class=\"note\">Share of index lookups in each interval between samples whose advice was a confirmed duplicate.</p>\n");
    }

    private static void gc(StringBuilder b, List<StatsSample> tl) {
        b.append("<h2 id=\"gc\">Garbage collection</h2>\n");
        Set<String> keys = new LinkedHashSet<>();
        for (StatsSample s : tl) for (String k : s.pool().keySet()) if (k.startsWith("dedisk_gc_")) keys.add(k);
        boolean active = false;
        for (StatsSample s : tl) for (String k : keys) if (Double.isFinite(s.get(k)) && s.get(k) != 0) active = true;
        if (!active) {
            b.append("<div class=\"empty\" id=\"plot-gc\">no GC activity recorded</div>\n");
            return;
        }
        List<Svg.Series> series = new ArrayList<>();
        boolean allBytes = true;
        for (String k : keys) {
            series.add(series(k.substring("dedisk_gc_".length()).replace('_', ' '), tl, k));
            allBytes &= k.endsWith("_bytes");
        }
        Check.that(!series.isEmpty(), "GC activity without a GC field");
        b.append(Svg.timeChart("plot-gc", "Garbage collection", series, allBytes, allBytes ? BYTES : RATIO));
        b.append("<p class=\"note\">Garbage: segment bytes nothing references any more (dead chunks, superseded metadata pages, checkpointed records), which the cleaner reclaims.</p>\n");
    }
}
