package io.dedisk.metrics;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.dedisk.DediskException;
import io.dedisk.pool.PoolStats;
import io.dedisk.util.Check;
import io.dedisk.util.HttpServers;
import io.micrometer.core.instrument.binder.jvm.ClassLoaderMetrics;
import io.micrometer.core.instrument.config.MeterFilter;
import io.micrometer.core.instrument.binder.jvm.JvmGcMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmMemoryMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmThreadMetrics;
import io.micrometer.core.instrument.binder.system.ProcessorMetrics;
import io.micrometer.core.instrument.binder.system.UptimeMetrics;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.Executors;
import java.util.function.Supplier;

/**
 * The Prometheus endpoint of `dedisk serve --metrics HOST:PORT`: a Micrometer Prometheus registry holding the
 * pool's gauges ({@link PoolMetrics}), the NBD server's meters ({@link #nbd()}) and the JVM's (memory, JVM GC,
 * threads, classes, CPU, uptime), served as the text exposition format by the JDK's HTTP server on
 * {@code GET /metrics} (anything else is 404, a method other than GET/HEAD 405).
 *
 * Threads: the HTTP server runs each scrape on a virtual thread; the registry and PoolMetrics are thread-safe.
 * Lifecycle: constructed bound (so a taken port fails `serve` at start), {@link #start}, {@link #close} once.
 */
public final class MetricsServer implements AutoCloseable {
    /** Stats are sampled at most once per second, however often Prometheus scrapes. */
    public static final long STATS_MAX_AGE_NANOS = 1_000_000_000L;
    static final String CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

    private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final PoolMetrics pool;
    private final MicrometerNbdMetrics nbd;
    private final JvmGcMetrics jvmGc = new JvmGcMetrics();
    private final HttpServer http;

    public MetricsServer(InetSocketAddress listen, Supplier<PoolStats> stats) throws IOException {
        Check.that(listen != null, "metrics listen address");
        // Two of Micrometer's processor meters break Prometheus naming rules (promtool: a "_count" suffix on a
        // gauge, an abbreviated unit in process_cpu_time_ns_total); the rest of the binder is kept.
        registry.config().meterFilter(MeterFilter.deny(id -> id.getName().equals("system.cpu.count") || id.getName().equals("process.cpu.time")));
        new JvmMemoryMetrics().bindTo(registry);
        jvmGc.bindTo(registry);
        new JvmThreadMetrics().bindTo(registry);
        new ClassLoaderMetrics().bindTo(registry);
        new ProcessorMetrics().bindTo(registry);
        new UptimeMetrics().bindTo(registry);
        this.pool = new PoolMetrics(stats, System::nanoTime, STATS_MAX_AGE_NANOS).bindTo(registry);
        this.nbd = new MicrometerNbdMetrics(registry);
        try {
            http = HttpServers.create(listen, 16);
        } catch (IOException e) {
            jvmGc.close();
            throw new DediskException.InvalidRequestException("cannot listen for metrics on " + listen + ": " + e.getMessage());
        }
        http.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
        http.createContext("/", this::handle);
    }

    /** The meters the NBD server reports to. */
    public NbdMetrics nbd() { return nbd; }

    public void start() { http.start(); }

    /** HOST:PORT actually bound (the real port when 0 was asked for). */
    public String address() {
        InetSocketAddress a = http.getAddress();
        return a.getHostString() + ":" + a.getPort();
    }

    /** The exposition text, as a scrape returns it. */
    public String scrape() {
        pool.refresh();
        return registry.scrape();
    }

    private void handle(HttpExchange ex) throws IOException {
        try (ex) {
            String method = ex.getRequestMethod();
            if (!ex.getRequestURI().getPath().equals("/metrics")) {
                reply(ex, 404, "not found: dedisk serves its metrics on /metrics\n", "text/plain; charset=utf-8", true);
            } else if (!method.equals("GET") && !method.equals("HEAD")) {
                ex.getResponseHeaders().set("Allow", "GET, HEAD");
                reply(ex, 405, "method " + method + " not allowed: expected GET or HEAD\n", "text/plain; charset=utf-8", true);
            } else {
                reply(ex, 200, scrape(), CONTENT_TYPE, method.equals("GET"));
            }
        }
    }

    private static void reply(HttpExchange ex, int status, String body, String type, boolean withBody) throws IOException {
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", type);
        ex.sendResponseHeaders(status, withBody ? bytes.length : -1);
        if (withBody) {
            try (OutputStream out = ex.getResponseBody()) { out.write(bytes); }
        }
    }

    @Override
    public void close() {
        http.stop(0);
        jvmGc.close();
        registry.close();
    }
}
