package io.dedisk.nbd;

import java.time.Duration;

import io.dedisk.DediskException;

/**
 * The resource limits one {@link NbdServer} enforces against clients, hostile or merely broken. Immutable; made
 * once (by the CLI from the {@code serve} flags, or by tests) and read by every connection thread.
 *
 * What each limit bounds (defaults in {@link #defaults()}, documented in docs/operations.md):
 * <ul>
 * <li>{@code maxConnections}, {@code maxConnectionsPerClient}: open connections, server-wide and per client IP
 *     address; a connection over either is closed at once, before the greeting.</li>
 * <li>{@code handshakeTimeout}: from accept to the end of option haggling (TLS included).</li>
 * <li>{@code idleTimeout}: a connection in transmission with no request in flight and no byte of a new one
 *     arriving for this long is closed; zero disables.</li>
 * <li>{@code payloadGrace} and {@code minPayloadRate}: a request's payload (write data) must arrive completely
 *     within grace + length / rate after its header; the same deadline applies to a reply the client must read.</li>
 * <li>{@code connectionInflightBytes}: data of requests one connection has in flight (read until replied).</li>
 * <li>{@code globalInflightBytes}: direct memory held by requests of all connections together (payload pieces,
 *     reply buffers, borrowed input buffers). A reader that would exceed it waits instead of allocating.</li>
 * </ul>
 * Invariants (checked here): every count and size is positive, timeouts are positive (idle may be zero), and the
 * global budget holds at least one maximum-size request plus the pieces of another.
 */
public record NbdLimits(int maxConnections, int maxConnectionsPerClient, Duration handshakeTimeout,
                        Duration idleTimeout, Duration payloadGrace, long minPayloadRate,
                        long connectionInflightBytes, long globalInflightBytes) {

    public static final int DEFAULT_MAX_CONNECTIONS = 4096;
    public static final int DEFAULT_MAX_CONNECTIONS_PER_CLIENT = 256;
    public static final Duration DEFAULT_HANDSHAKE_TIMEOUT = Duration.ofSeconds(10);
    public static final Duration DEFAULT_IDLE_TIMEOUT = Duration.ofHours(1);
    public static final Duration DEFAULT_PAYLOAD_GRACE = Duration.ofSeconds(10);
    public static final long DEFAULT_MIN_PAYLOAD_RATE = 1L << 20;
    public static final long DEFAULT_CONNECTION_INFLIGHT_BYTES = 64L << 20;
    public static final long DEFAULT_GLOBAL_INFLIGHT_BYTES = 160L << 20;

    public NbdLimits {
        require(maxConnections > 0, "max connections must be positive, found " + maxConnections);
        require(maxConnectionsPerClient > 0, "max connections per client must be positive, found "
                + maxConnectionsPerClient);
        require(positive(handshakeTimeout), "handshake timeout must be positive, found " + handshakeTimeout);
        require(idleTimeout != null && !idleTimeout.isNegative(), "idle timeout must be zero (off) or positive, found "
                + idleTimeout);
        require(positive(payloadGrace), "payload grace must be positive, found " + payloadGrace);
        require(minPayloadRate > 0, "minimum payload rate must be positive, found " + minPayloadRate);
        require(connectionInflightBytes >= 1L << 20, "per-connection in-flight bytes must be at least 1 MiB, found "
                + connectionInflightBytes);
        require(globalInflightBytes >= 2L * NbdConstants.MAX_PAYLOAD + (4L << 20),
                "global in-flight bytes must be at least 68 MiB (two maximum payloads and room for small requests), "
                        + "found " + globalInflightBytes);
    }

    /** The defaults, as documented in docs/operations.md. */
    public static NbdLimits defaults() {
        return new NbdLimits(DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_CLIENT, DEFAULT_HANDSHAKE_TIMEOUT,
                DEFAULT_IDLE_TIMEOUT, DEFAULT_PAYLOAD_GRACE, DEFAULT_MIN_PAYLOAD_RATE,
                DEFAULT_CONNECTION_INFLIGHT_BYTES, DEFAULT_GLOBAL_INFLIGHT_BYTES);
    }

    public NbdLimits withMaxConnections(int server, int perClient) {
        return new NbdLimits(server, perClient, handshakeTimeout, idleTimeout, payloadGrace, minPayloadRate,
                connectionInflightBytes, globalInflightBytes);
    }

    public NbdLimits withTimeouts(Duration handshake, Duration idle, Duration grace, long minRate) {
        return new NbdLimits(maxConnections, maxConnectionsPerClient, handshake, idle, grace, minRate,
                connectionInflightBytes, globalInflightBytes);
    }

    public NbdLimits withInflight(long perConnection, long global) {
        return new NbdLimits(maxConnections, maxConnectionsPerClient, handshakeTimeout, idleTimeout, payloadGrace,
                minPayloadRate, perConnection, global);
    }

    /** How long {@code bytes} of payload (or of a reply) may take to cross the wire: grace + bytes / rate. */
    long transferNanos(long bytes) {
        double seconds = (double) bytes / minPayloadRate;
        return payloadGrace.toNanos() + (long) (seconds * 1e9);
    }

    private static boolean positive(Duration d) {
        return d != null && !d.isNegative() && !d.isZero();
    }

    private static void require(boolean condition, String message) {
        if (!condition) throw new DediskException.InvalidRequestException(message);
    }
}
