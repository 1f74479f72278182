package io.dedisk.metrics;

import io.dedisk.util.Check;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReferenceArray;

/**
 * {@link NbdMetrics} as Micrometer meters (Prometheus names in parentheses):
 * <ul>
 * <li>requests by command type and result ({@code dedisk_nbd_requests_total{type,result}}),</li>
 * <li>their latency as a histogram with fixed buckets from 25 µs to 10 s
 *     ({@code dedisk_nbd_request_duration_seconds_bucket{type,result,le}}, {@code _sum}, {@code _count}),</li>
 * <li>bytes read and written by clients ({@code dedisk_nbd_transferred_bytes_total{type}}),</li>
 * <li>connections accepted and open ({@code dedisk_nbd_connections_opened_total}, {@code dedisk_nbd_connections_active}),</li>
 * <li>TLS handshakes by outcome ({@code dedisk_nbd_tls_handshakes_total{result}}).</li>
 * </ul>
 * Threads: any; the per (type, result) meters are created on first use and cached in a lock-free array (a
 * race creates the same meter twice, which Micrometer resolves to one), so the request path only does array
 * reads and atomic adds. Invariant: type and result tags come from the closed sets below, so a hostile client
 * cannot create unbounded series (unknown command types count as "other").
 */
public final class MicrometerNbdMetrics implements NbdMetrics {
    /** Tag values by NBD command type; index {@link #OTHER_TYPE} is every other number. */
    private static final String[] TYPES = {"read", "write", "disc", "flush", "trim", "cache", "write_zeroes", "block_status", "other"};
    private static final int OTHER_TYPE = TYPES.length - 1;
    /** NBD error values and their tag values; the last entry is every other value. */
    private static final int[] ERRORS = {0, 1, 5, 12, 22, 28, 75, 95, 108, -1};
    private static final String[] RESULTS = {"ok", "eperm", "eio", "enomem", "einval", "enospc", "eoverflow", "enotsup", "eshutdown", "other"};
    private static final Duration[] BUCKETS = {
        Duration.ofNanos(25_000), Duration.ofNanos(50_000), Duration.ofNanos(100_000), Duration.ofNanos(250_000),
        Duration.ofNanos(500_000), Duration.ofMillis(1), Duration.ofMillis(2), Duration.ofMillis(5), Duration.ofMillis(10),
        Duration.ofMillis(25), Duration.ofMillis(50), Duration.ofMillis(100), Duration.ofMillis(250), Duration.ofMillis(500),
        Duration.ofSeconds(1), Duration.ofMillis(2500), Duration.ofSeconds(5), Duration.ofSeconds(10)};

    private record RequestMeters(Counter count, Timer latency) {}

    private final MeterRegistry registry;
    private final AtomicReferenceArray<RequestMeters> requests = new AtomicReferenceArray<>(TYPES.length * RESULTS.length);
    private final Counter readBytes;
    private final Counter writtenBytes;
    private final Counter opened;
    private final AtomicLong active = new AtomicLong();
    private final Counter tlsOk;
    private final Counter tlsFailed;

    public MicrometerNbdMetrics(MeterRegistry registry) {
        Check.that(RESULTS.length == ERRORS.length, "one result tag per NBD error value");
        this.registry = registry;
        readBytes = transferred(registry, "read");
        writtenBytes = transferred(registry, "write");
        opened = Counter.builder("dedisk.nbd.connections.opened").description("NBD connections accepted").register(registry);
        Gauge.builder("dedisk.nbd.connections.active", active, AtomicLong::get)
                .description("NBD connections open now (handshake or transmission)").register(registry);
        tlsOk = tls(registry, "ok");
        tlsFailed = tls(registry, "failed");
    }

    private static Counter transferred(MeterRegistry registry, String type) {
        return Counter.builder("dedisk.nbd.transferred").baseUnit("bytes").tag("type", type)
                .description("Data bytes clients read or wrote over NBD (successful requests)").register(registry);
    }

    private static Counter tls(MeterRegistry registry, String result) {
        return Counter.builder("dedisk.nbd.tls.handshakes").tag("result", result)
                .description("TLS handshakes on NBD connections, by outcome").register(registry);
    }

    static int typeIndex(int command) { return command >= 0 && command < OTHER_TYPE ? command : OTHER_TYPE; }

    static int resultIndex(int error) {
        for (int i = 0; i < ERRORS.length - 1; i++) if (ERRORS[i] == error) return i;
        return ERRORS.length - 1;
    }

    private RequestMeters meters(int type, int result) {
        int slot = type * RESULTS.length + result;
        RequestMeters m = requests.get(slot);
        if (m != null) return m;
        m = new RequestMeters(
                Counter.builder("dedisk.nbd.requests").tag("type", TYPES[type]).tag("result", RESULTS[result])
                        .description("NBD requests answered, by command type and result (NBD error name, or ok)").register(registry),
                Timer.builder("dedisk.nbd.request.duration").tag("type", TYPES[type]).tag("result", RESULTS[result])
                        .serviceLevelObjectives(BUCKETS)
                        .description("Time from the start of an NBD request's handling to its reply being queued").register(registry));
        requests.compareAndSet(slot, null, m);
        return requests.get(slot);
    }

    @Override
    public void requestDone(int command, int error, long nanos, long length) {
        int type = typeIndex(command);
        RequestMeters m = meters(type, resultIndex(error));
        m.count().increment();
        m.latency().record(Math.max(0, nanos), TimeUnit.NANOSECONDS);
        if (error == 0 && length > 0) {
            if (type == 0) readBytes.increment(length);
            else if (type == 1) writtenBytes.increment(length);
        }
    }

    @Override
    public void connectionOpened() {
        opened.increment();
        active.incrementAndGet();
    }

    @Override
    public void connectionClosed() {
        long now = active.decrementAndGet();
        Check.that(now >= 0, "NBD connections closed (%d more) than opened", -now);
    }

    @Override
    public void tlsHandshake(boolean ok) {
        (ok ? tlsOk : tlsFailed).increment();
    }
}
