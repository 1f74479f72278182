package io.dedisk.report;

import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.pool.PoolStats;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** The HTML page: one SVG per plot with the data it was given, the fallbacks, and escaping. */
class ReportTest {
    static PoolStats stats(long mapped, long chunks, long garbage, long hits, long misses) {
        return new PoolStats("pool-1", null, null, List.of(new PoolStats.VolumeStats("vm<1>", 1 << 30, mapped, 2)), chunks, 4096 * chunks / 2, 8236, garbage,
                10_000, 500, new PoolStats.IndexStats("uds", chunks, 1000, 4096, 8192, hits, misses, 0, false, 0.0, io.dedisk.index.DedupIndex.Compaction.NONE), new PoolStats.LogStats(4, 1 << 20, 2, 10, 10 * 2048, 0, 0, 0, 0), new PoolStats.CacheStats(64 << 20, 1 << 20, 8192, 100, 10, 0), mapped, 0, 1, 0);
    }

    static StatsHistory.Contents history(StatsSample... samples) { return new StatsHistory.Contents(List.of(samples), 0, 0, 0); }

    /** data-v values of the elements of one series in the SVG with this id. */
    static List<Double> values(String html, String svgId, String series) {
        int start = html.indexOf("<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"" + svgId + "\"");
        assertTrue(start >= 0, "no svg " + svgId);
        String svg = html.substring(start, html.indexOf("</svg>", start));
        Matcher m = Pattern.compile("data-series=\"" + Pattern.quote(series) + "\"[^>]*data-v=\"([^\"]+)\"").matcher(svg);
        List<Double> out = new java.util.ArrayList<>();
        while (m.find()) out.add(Double.parseDouble(m.group(1)));
        return out;
    }

    @Test
    void plotsCarryTheHistoryAndTheCurrentStats() {
        long t0 = 1_700_000_000_000L;
        StatsSample s1 = StatsSample.of(t0, stats(100, 50, 0, 10, 90), new long[0]);
        StatsSample s2 = StatsSample.of(t0 + 60_000, stats(300, 60, 4096, 110, 100), new long[] {40, 15, 5});
        String html = Report.render(new Report.Data(t0 + 120_000, "test", stats(400, 80, 8192, 110, 100), history(s1, s2), null));
        assertTrue(html.startsWith("<!DOCTYPE html>"));
        assertFalse(html.contains("<script"), "no script");
        assertFalse(html.matches("(?s).*(src|href)=\"https?:.*"), "nothing fetched");
        assertEquals(List.of(100.0 * 4096, 300.0 * 4096, 400.0 * 4096), values(html, "plot-space", "logical used"));
        assertEquals(List.of(40.0, 15.0, 5.0), values(html, "plot-refcounts", "chunks"), "the newest history histogram");
        assertTrue(html.contains("data-category=\"2–3\""), html);
        // Interval hit rates: 10/100 since open, then 100/110.
        List<Double> rate = values(html, "plot-index", "hit rate per interval");
        assertEquals(2, rate.size());
        assertEquals(0.1, rate.get(0), 1e-9);
        assertEquals(100.0 / 110, rate.get(1), 1e-9);
        assertEquals(List.of(0.0, 4096.0, 8192.0), values(html, "plot-gc", "garbage bytes"));
        assertEquals(List.of(5.0), values(html, "plot-ratios", "dedup ratio"), "pool group only, without a scan: 400 / 80");
        assertTrue(html.contains("vm&lt;1&gt;") && !html.contains("vm<1>"), "volume names are escaped");
        assertEquals(6, html.split("<svg ", -1).length - 1, "six plots");
        assertTrue(html.contains("110 of 210 lookups (52%)"), "summary: the newest counters");
    }

    @Test
    void fallbacksWhenTheStatsHaveNoneOfIt() {
        long t0 = 1_700_000_000_000L;
        String html = Report.render(new Report.Data(t0, "test", stats(0, 0, 0, 0, 0), history(), null));
        assertTrue(html.contains("<div class=\"empty\" id=\"plot-gc\">no GC activity recorded</div>"), html);
        assertTrue(html.contains("no index lookups recorded"), html);
        assertTrue(html.contains("<td>no lookups recorded</td>"), html);
        assertTrue(html.contains("Mean references per chunk"), "no histogram anywhere: the mean from the history");
        assertTrue(html.contains("No stats history yet"), html);
        assertTrue(html.contains("no data"), "a plot without a finite point says so");
    }

    @Test
    void scanGivesPerVolumeRatiosAndTheHistogram() {
        long t0 = 1_700_000_000_000L;
        ContentScan.Result scan = new ContentScan.Result(new long[] {7, 0, 3}, List.of(new ContentScan.VolumeScan("vm<1>", 100, 25, 25 * 1024)), 10, 100, 0);
        String html = Report.render(new Report.Data(t0, "test", stats(100, 10, 0, 1, 1), history(), scan));
        assertEquals(List.of(10.0, 4.0), values(html, "plot-ratios", "dedup ratio"), "pool 100/10, volume 100/25");
        assertEquals(List.of(2.0, 4.0), values(html, "plot-ratios", "compression ratio"), "pool 10x4096/20480, volume 25x4096/25600");
        assertEquals(List.of(7.0, 0.0, 3.0), values(html, "plot-refcounts", "chunks"));
        assertTrue(html.contains("content scan"), html);
    }
}
