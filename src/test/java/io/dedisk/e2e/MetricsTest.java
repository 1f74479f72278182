package io.dedisk.e2e;

import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.e2e.ServerProcess.Tools;
import io.dedisk.metrics.PoolMetrics;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * `dedisk serve --metrics`: after real traffic (qemu-io writes and reads, a request the server refuses), the
 * /metrics page passes `promtool check metrics` (the Prometheus project's own linter) and its numbers match the
 * traffic and the pool.
 */
class MetricsTest {
    @TempDir Path tmp;

    static HttpResponse<String> get(String url) throws Exception {
        try (HttpClient http = HttpClient.newHttpClient()) {
            return http.send(HttpRequest.newBuilder(URI.create(url)).build(), HttpResponse.BodyHandlers.ofString());
        }
    }

    /** The value of the sample line "name{labels} value" (labels as printed, in order), or fails. */
    static double sample(String text, String series) {
        Matcher m = Pattern.compile("(?m)^" + Pattern.quote(series) + " (\\S+)$").matcher(text);
        assertTrue(m.find(), "no sample " + series + " in\n" + text);
        return Double.parseDouble(m.group(1));
    }

    @Test
    void prometheusEndpointAfterRealTraffic() throws Exception {
        Tools.requireTool("promtool");
        Path pool = tmp.resolve("pool");
        ServerProcess.cli("create", "--pool", pool.toString());
        ServerProcess.cli("volume", "create", "--pool", pool.toString(), "m1", "--size", "64M");
        ServerProcess.cli("volume", "create", "--pool", pool.toString(), "m2", "--size", "32M");
        int metricsPort = ServerProcess.freePort();
        try (ServerProcess server = new ServerProcess(pool).start("--metrics", "127.0.0.1:" + metricsPort)) {
            assertTrue(server.log().contains("metrics http://127.0.0.1:" + metricsPort + "/metrics"), server.log());
            Tools.run(120, "qemu-io", "-f", "raw", "-c", "write -P 0xab 0 1M", "-c", "write -P 0xcd 1M 1M", "-c", "read -P 0xab 0 1M",
                    "-c", "write -z 4M 1M", "-c", "flush", server.uri("m1"));
            Tools.run(120, "qemu-io", "-f", "raw", "-c", "write -P 0xab 0 1M", "-c", "flush", server.uri("m2"));
            // A read past the end, which the server must refuse (libnbd's own checks switched off).
            String refused = Tools.run(60, "nbdsh", "-u", server.uri("m2"), "-c",
                    "h.set_strict_mode(0)\ntry:\n    h.pread(4096, h.get_size())\nexcept nbd.Error as e:\n    print('refused', e.errno)").stdout();
            assertTrue(refused.contains("refused EINVAL"), refused);

            HttpResponse<String> r = get("http://127.0.0.1:" + metricsPort + "/metrics");
            assertEquals(200, r.statusCode());
            assertTrue(r.headers().firstValue("Content-Type").orElse("").startsWith("text/plain; version=0.0.4"), r.headers().toString());
            String text = r.body();

            Path file = tmp.resolve("metrics.txt");
            Files.writeString(file, text);
            Tools.Result lint = Tools.runAllowingFailure(List.of("/bin/sh", "-c", "promtool check metrics < " + file), 60);
            assertEquals(0, lint.exit(), "promtool check metrics:\n" + lint.stdout() + lint.stderr());
            assertEquals("", (lint.stdout() + lint.stderr()).trim(), "promtool has no complaints");

            // NBD: requests by type and result, bytes, latency histogram, connections.
            assertEquals(3, sample(text, "dedisk_nbd_requests_total{result=\"ok\",type=\"write\"}"));
            assertEquals(1, sample(text, "dedisk_nbd_requests_total{result=\"ok\",type=\"read\"}"));
            assertEquals(1, sample(text, "dedisk_nbd_requests_total{result=\"einval\",type=\"read\"}"));
            assertTrue(sample(text, "dedisk_nbd_requests_total{result=\"ok\",type=\"flush\"}") >= 2);
            assertEquals(1, sample(text, "dedisk_nbd_requests_total{result=\"ok\",type=\"write_zeroes\"}"));
            assertEquals(3 << 20, sample(text, "dedisk_nbd_transferred_bytes_total{type=\"write\"}"));
            assertEquals(1 << 20, sample(text, "dedisk_nbd_transferred_bytes_total{type=\"read\"}"));
            assertEquals(3, sample(text, "dedisk_nbd_request_duration_seconds_count{result=\"ok\",type=\"write\"}"));
            assertEquals(3, sample(text, "dedisk_nbd_request_duration_seconds_bucket{result=\"ok\",type=\"write\",le=\"+Inf\"}"));
            assertTrue(sample(text, "dedisk_nbd_request_duration_seconds_sum{result=\"ok\",type=\"write\"}") > 0);
            assertEquals(3, sample(text, "dedisk_nbd_connections_opened_total"));
            assertEquals(0, sample(text, "dedisk_nbd_connections_active"));
            assertEquals(0, sample(text, "dedisk_nbd_tls_handshakes_total{result=\"ok\"}"));

            // Pool and volumes: 3 MiB written of two patterns, one of them twice: 768 mapped blocks, 2 chunks.
            for (var f : PoolMetrics.POOL) assertTrue(text.contains("\n" + f.key() + " "), f.key() + " exported");
            assertEquals(768, sample(text, "dedisk_pool_mapped_blocks"));
            assertEquals(2, sample(text, "dedisk_pool_chunks"));
            assertEquals(384, sample(text, "dedisk_pool_dedup_ratio"));
            assertEquals(256, sample(text, "dedisk_pool_zero_blocks"));
            assertEquals(768 * 4096, sample(text, "dedisk_pool_logical_used_bytes"));
            assertTrue(sample(text, "dedisk_pool_physical_used_bytes") > 0);
            assertEquals(512 * 4096, sample(text, "dedisk_volume_logical_used_bytes{volume=\"m1\"}"));
            assertEquals(256, sample(text, "dedisk_volume_mapped_blocks{volume=\"m2\"}"));
            assertEquals(64 << 20, sample(text, "dedisk_volume_size_bytes{volume=\"m1\"}"));
            assertEquals(766, sample(text, "dedisk_index_hits_total"), "every block but the first of each pattern is a hit");
            String json = ServerProcess.cli("stats", "--pool", pool.toString(), "--json");
            java.util.regex.Matcher garbage = java.util.regex.Pattern.compile("\"garbageBytes\":(\\d+)").matcher(json);
            assertTrue(garbage.find(), json);
            assertEquals(Double.parseDouble(garbage.group(1)), sample(text, "dedisk_gc_garbage_bytes"), "the gauge is the stats' garbage");
            assertTrue(text.contains("\njvm_memory_used_bytes{"), "JVM meters are there too");

            assertEquals(404, get("http://127.0.0.1:" + metricsPort + "/other").statusCode());
        }
    }
}
