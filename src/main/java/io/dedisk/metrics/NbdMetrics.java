package io.dedisk.metrics;

/**
 * What the NBD server reports about its traffic, so the protocol code (io.dedisk.nbd) needs nothing from the
 * metrics library: it calls these methods, and {@link #NOOP} (the default when `serve` has no --metrics) makes
 * each call cost nothing.
 *
 * Threads: every method may be called concurrently from any connection's reader thread or request thread;
 * implementations must be thread-safe and must not block or throw (a metrics failure never fails a request).
 *
 * Codes are the NBD protocol's own numbers (command types: READ 0, WRITE 1, DISC 2, FLUSH 3, TRIM 4, CACHE 5,
 * WRITE_ZEROES 6, BLOCK_STATUS 7; errors: 0 success, EPERM 1, EIO 5, ENOMEM 12, EINVAL 22, ENOSPC 28,
 * EOVERFLOW 75, ENOTSUP 95, ESHUTDOWN 108), so the call site passes what it already holds.
 */
public interface NbdMetrics {
    /**
     * One request answered (or abandoned). {@code command}: the NBD command type; {@code error}: the NBD error
     * value of the reply (0 = success); {@code nanos}: from the start of its handling to the reply being handed
     * to the writer; {@code length}: the request's length field (bytes transferred for READ and WRITE).
     */
    void requestDone(int command, int error, long nanos, long length);

    /** A TCP connection was accepted (before the handshake). */
    void connectionOpened();

    /** A connection accepted earlier has ended, whatever the reason. */
    void connectionClosed();

    /** A TLS handshake ended: {@code ok} when it succeeded. */
    void tlsHandshake(boolean ok);

    /** Reports nothing. */
    NbdMetrics NOOP = new NbdMetrics() {
        @Override public void requestDone(int command, int error, long nanos, long length) {}
        @Override public void connectionOpened() {}
        @Override public void connectionClosed() {}
        @Override public void tlsHandshake(boolean ok) {}
    };
}
