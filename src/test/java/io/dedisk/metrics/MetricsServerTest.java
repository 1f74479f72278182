package io.dedisk.metrics;

import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.DediskException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The /metrics endpoint: methods, paths, content type, and a clear error when its port is taken. */
class MetricsServerTest {
    @Test
    void servesMetricsOnlyOnGetAndHeadOfMetrics() throws Exception {
        try (MetricsServer server = new MetricsServer(new InetSocketAddress("127.0.0.1", 0),
                () -> PoolMetricsTest.stats(4096, List.of()));
             HttpClient http = HttpClient.newHttpClient()) {
            server.start();
            String base = "http://" + server.address();
            HttpResponse<String> get = http.send(HttpRequest.newBuilder(URI.create(base + "/metrics")).build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(200, get.statusCode());
            assertEquals(MetricsServer.CONTENT_TYPE, get.headers().firstValue("Content-Type").orElseThrow());
            assertTrue(get.body().contains("\ndedisk_pool_data_bytes 4096.0\n"), get.body());
            HttpResponse<String> head = http.send(HttpRequest.newBuilder(URI.create(base + "/metrics")).method("HEAD", HttpRequest.BodyPublishers.noBody()).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(200, head.statusCode());
            assertEquals("", head.body());
            HttpResponse<String> post = http.send(HttpRequest.newBuilder(URI.create(base + "/metrics")).POST(HttpRequest.BodyPublishers.ofString("x")).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(405, post.statusCode());
            assertEquals("GET, HEAD", post.headers().firstValue("Allow").orElseThrow());
            assertEquals(404, http.send(HttpRequest.newBuilder(URI.create(base + "/")).build(), HttpResponse.BodyHandlers.ofString()).statusCode());

            InetSocketAddress taken = new InetSocketAddress("127.0.0.1", Integer.parseInt(server.address().substring(server.address().lastIndexOf(':') + 1)));
            var e = assertThrows(DediskException.InvalidRequestException.class, () -> new MetricsServer(taken, () -> PoolMetricsTest.stats(0, List.of())));
            assertTrue(e.getMessage().contains("cannot listen for metrics on"), e.getMessage());
        }
    }
}
