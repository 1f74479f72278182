package io.dedisk.e2e;

import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.e2e.ServerProcess.Tools;
import io.dedisk.report.StatsHistory;
import io.dedisk.store.OverlayFs;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.imageio.ImageIO;
import io.dedisk.store.DirFingerprint;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * `dedisk report` end to end: a server records a stats history while qemu-io writes (duplicates, zeros, an
 * overwrite that leaves garbage); the report is asked of the running server, then made offline on the stopped
 * pool, which must not change a byte of it. The page has one SVG per plot carrying the pool's numbers, and
 * headless Chromium renders it to a non-blank picture.
 */
class ReportE2ETest {
    @TempDir Path tmp;

    static String svg(String html, String id) {
        int start = html.indexOf("<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"" + id + "\"");
        assertTrue(start >= 0, "the page has an <svg> for " + id);
        return html.substring(start, html.indexOf("</svg>", start));
    }

    static List<Double> values(String svg, String series, String extra) {
        Matcher m = Pattern.compile("data-series=\"" + Pattern.quote(series) + "\"" + extra + "[^>]*data-v=\"([^\"]+)\"").matcher(svg);
        List<Double> out = new ArrayList<>();
        while (m.find()) out.add(Double.parseDouble(m.group(1)));
        return out;
    }

    static int samples(Path pool) throws Exception {
        try (OverlayFs fs = new OverlayFs(pool)) { return StatsHistory.read(fs).samples().size(); }
    }

    @Test
    void reportFromTheServerAndOfflineRendersInChromium() throws Exception {
        Tools.requireTool("chromium");
        Path pool = tmp.resolve("pool");
        ServerProcess.cli("create", "--pool", pool.toString());
        ServerProcess.cli("volume", "create", "--pool", pool.toString(), "a", "--size", "64M");
        ServerProcess.cli("volume", "create", "--pool", pool.toString(), "b", "--size", "32M");
        Path served = tmp.resolve("served.html");
        try (ServerProcess server = new ServerProcess(pool).start("--stats-interval", "1s")) {
            Tools.run(120, "qemu-io", "-f", "raw", "-c", "write -P 0xab 0 4M", "-c", "write -P 0x11 4M 1M", "-c", "write -z 8M 1M",
                    "-c", "flush", server.uri("a"));
            Tools.run(120, "qemu-io", "-f", "raw", "-c", "write -P 0xab 0 2M", "-c", "write -P 0x33 16M 1M", "-c", "flush",
                    "-c", "write -P 0x44 16M 1M", "-c", "flush", server.uri("b"));
            long deadline = System.nanoTime() + 30_000_000_000L;
            while (samples(pool) < 3 && System.nanoTime() < deadline) Thread.sleep(200);
            assertTrue(samples(pool) >= 3, "the server records a sample every second");
            String out = ServerProcess.cli("report", "--pool", pool.toString(), "--out", served.toString(), "--scan");
            assertTrue(out.contains("from the running server"), out);
            Tools.Result inside = CliTest.dedisk("report", "--pool", pool.toString(), "--out", pool.resolve("r.html").toString());
            assertEquals(1, inside.exit());
            assertTrue(inside.stderr().contains("inside the pool directory"), inside.stderr());
        }
        assertTrue(Files.readString(served).contains("from the running server"));
        int recorded = samples(pool);
        assertTrue(recorded >= 4, "a last sample at shutdown: " + recorded);

        TreeMap<String, String> before = DirFingerprint.of(pool);
        Path offline = tmp.resolve("offline.html");
        String out = ServerProcess.cli("report", "--pool", pool.toString(), "--out", offline.toString(), "--scan");
        assertTrue(out.contains("offline"), out);
        assertEquals(before, DirFingerprint.of(pool), "an offline report changes nothing in the pool directory");

        for (Path page : List.of(served, offline)) {
            String html = Files.readString(page);
            assertFalse(html.contains("<script"), "no script");
            for (String id : List.of("plot-space", "plot-ratios", "plot-ratios-time", "plot-refcounts", "plot-index", "plot-gc")) svg(html, id);
            // a: 4 MiB of 0xab + 1 MiB of 0x11 (+ 1 MiB of zeros); b: 2 MiB of 0xab + 1 MiB of 0x44 (0x33 overwritten).
            List<Double> logical = values(svg(html, "plot-space"), "logical used", "");
            assertEquals(2048 * 4096.0, logical.getLast(), "logical used now: 2048 mapped blocks, " + page);
            assertTrue(logical.size() >= 4, "history points plus now: " + logical);
            String ratios = svg(html, "plot-ratios");
            assertEquals(List.of(2048 / 3.0), values(ratios, "dedup ratio", " data-category=\"pool\""), "3 live chunks");
            assertEquals(List.of(640.0), values(ratios, "dedup ratio", " data-category=\"a\""), "1280 blocks of 2 contents");
            assertEquals(List.of(384.0), values(ratios, "dedup ratio", " data-category=\"b\""), "768 blocks of 2 contents");
            String refs = svg(html, "plot-refcounts");
            assertEquals(List.of(2.0), values(refs, "chunks", " data-category=\"256–511\""), "0x11 and 0x44: 256 references each");
            assertEquals(List.of(1.0), values(refs, "chunks", " data-category=\"1024–2047\""), "0xab: 1536 references");
            assertTrue(values(svg(html, "plot-gc"), "garbage bytes", "").getLast() > 0, "the overwritten chunk is garbage");
            assertFalse(values(svg(html, "plot-index"), "hit rate per interval", "").isEmpty(), "hits recorded");
        }

        Path png = tmp.resolve("offline.png");
        Path profile = Files.createDirectories(tmp.resolve("chromium-profile"));
        Tools.Result shot = Tools.runAllowingFailure(List.of("chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--user-data-dir=" + profile, "--screenshot=" + png, "--window-size=1200,2000", offline.toUri().toString()), 120);
        assertTrue(Files.exists(png), "chromium wrote no screenshot (exit " + shot.exit() + "):\n" + shot.stdout() + shot.stderr());
        BufferedImage image = ImageIO.read(png.toFile());
        assertNotNull(image, "the screenshot is a PNG");
        assertEquals(1200, image.getWidth());
        assertEquals(2000, image.getHeight());
        Set<Integer> colors = new HashSet<>();
        long nonWhite = 0;
        for (int y = 0; y < image.getHeight(); y++) {
            for (int x = 0; x < image.getWidth(); x++) {
                int rgb = image.getRGB(x, y) & 0xffffff;
                colors.add(rgb);
                if (rgb != 0xffffff) nonWhite++;
            }
        }
        double share = (double) nonWhite / (image.getWidth() * (long) image.getHeight());
        assertTrue(colors.size() > 50, "a page of plots has many colours, found " + colors.size());
        assertTrue(share > 0.03 && share < 0.9, "non-white share of the picture: " + share);
        // The plots' own colours are on screen: the series blue and red of the first charts.
        assertTrue(colors.contains(0x1f77b4) && colors.contains(0xd62728), "plot colours rendered");
    }
}
