package io.dedisk.nbd;

import java.lang.System.Logger.Level;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;
import java.util.function.Supplier;

import io.dedisk.util.Check;

/**
 * A log that a client cannot use to fill the disk: the first {@code burst} lines pass, after that at most one line
 * per {@code interval}, and that line says how many were suppressed since the last one that went out (a token
 * bucket of {@code burst} lines refilled by one line per interval, so a limiter that stays quiet long enough lets a
 * burst through again). A limiter may
 * have a parent (the server's), which must also let a line through: per-connection limits stop one noisy
 * connection, the parent stops many connections (or a reconnect loop) from adding up.
 *
 * Every line is exactly one line: control characters in messages (which may quote client data, e.g. an export
 * name) are escaped, and a throwable is reduced to its description and top frames on the same line.
 *
 * Threads: any thread; state is guarded by the instance's monitor. Invariant: lines emitted in any span of time
 * ≤ burst + span / interval (so a flood costs a bounded number of bytes per minute); 0 ≤ credit ≤ burst lines.
 */
final class RateLimitedLog {
    static final int CONNECTION_BURST = 5;
    static final long CONNECTION_INTERVAL_NANOS = TimeUnit.SECONDS.toNanos(60);
    static final int SERVER_BURST = 100;
    /** Server-wide: 100 lines a minute once the burst is spent. */
    static final long SERVER_INTERVAL_NANOS = TimeUnit.MILLISECONDS.toNanos(600);
    private static final int MAX_LINE_CHARS = 2000;
    private static final int FRAMES = 3;

    private final System.Logger logger;
    private final int burst;
    private final long intervalNanos;
    private final LongSupplier clock;
    private final RateLimitedLog parent;
    private final String prefix;
    // Guarded by this.
    /** Lines that may go out now, in nanoseconds of refill (one line costs {@code intervalNanos}). */
    private long credit;
    private long lastRefill;
    private long suppressed;
    private long suppressedTotal;

    RateLimitedLog(System.Logger logger, int burst, long intervalNanos, LongSupplier clock, RateLimitedLog parent,
                   String prefix) {
        Check.that(burst >= 0 && intervalNanos > 0, "rate limit burst %d interval %d ns", burst, intervalNanos);
        this.logger = logger;
        this.burst = burst;
        this.intervalNanos = intervalNanos;
        this.clock = clock;
        this.parent = parent;
        this.prefix = prefix;
        this.credit = burst * intervalNanos;
        this.lastRefill = clock.getAsLong();
    }

    /** The server-wide limiter. */
    static RateLimitedLog server(System.Logger logger) {
        return new RateLimitedLog(logger, SERVER_BURST, SERVER_INTERVAL_NANOS, System::nanoTime, null, "");
    }

    /** A connection's limiter, under the server's; every line starts with the peer. */
    RateLimitedLog child(String peer) {
        return new RateLimitedLog(logger, CONNECTION_BURST, CONNECTION_INTERVAL_NANOS, clock, this, peer + ": ");
    }

    void log(Level level, String message) {
        log(level, () -> message, null);
    }

    /** Logs {@code message} (built only if the line goes out) and, on the same line, {@code failure} if not null. */
    void log(Level level, Supplier<String> message, Throwable failure) {
        if (!logger.isLoggable(level)) return;
        long mine = permit();
        if (mine < 0) return;
        long parents = parent == null ? 0 : parent.permit();
        if (parents < 0) return;
        StringBuilder line = new StringBuilder(prefix).append(message.get());
        if (failure != null) appendFailure(line, failure);
        long dropped = mine + parents;
        if (dropped > 0) line.append(" [").append(dropped).append(" similar lines suppressed]");
        logger.log(level, oneLine(line));
    }

    /**
     * At the end of a connection: one line with the number of lines suppressed in all, if any were. Limited by the
     * parent only (it is the connection's last line).
     */
    void close(Level level) {
        long total;
        synchronized (this) {
            total = suppressedTotal;
        }
        if (total == 0 || !logger.isLoggable(level)) return;
        long parents = parent == null ? 0 : parent.permit();
        if (parents < 0) return;
        logger.log(level, oneLine(prefix + total + " log lines of this connection were suppressed in all"
                + (parents > 0 ? " [" + parents + " similar lines suppressed]" : "")));
    }

    /** Lines suppressed so far (for tests). */
    synchronized long suppressed() {
        return suppressedTotal;
    }

    /** -1: suppress this line; otherwise it goes out, and the value is how many were suppressed before it. */
    private synchronized long permit() {
        long now = clock.getAsLong();
        long max = burst * intervalNanos;
        credit = Math.min(max, credit + Math.max(0, now - lastRefill));
        lastRefill = now;
        Check.that(credit >= 0 && credit <= max, "log credit %d outside [0, %d]", credit, max);
        if (credit >= intervalNanos) {
            credit -= intervalNanos;
            long dropped = suppressed;
            suppressed = 0;
            return dropped;
        }
        suppressed++;
        suppressedTotal++;
        return -1;
    }

    private static void appendFailure(StringBuilder line, Throwable failure) {
        line.append(": ").append(failure);
        StackTraceElement[] frames = failure.getStackTrace();
        for (int i = 0; i < Math.min(FRAMES, frames.length); i++) line.append(i == 0 ? " at " : " < ").append(frames[i]);
        if (failure.getCause() != null) line.append(" caused by ").append(failure.getCause());
    }

    /** Escapes control characters and caps the length, so a line is always one line of bounded size. */
    static String oneLine(CharSequence text) {
        StringBuilder out = new StringBuilder(Math.min(text.length(), MAX_LINE_CHARS) + 8);
        for (int i = 0; i < text.length() && out.length() < MAX_LINE_CHARS; i++) {
            char c = text.charAt(i);
            if (c < 0x20 || c == 0x7f || c == '\u2028' || c == '\u2029') {
                out.append(String.format("\\x%02x", (int) c & 0xff));
            } else {
                out.append(c);
            }
        }
        if (out.length() >= MAX_LINE_CHARS) out.append("...");
        return out.toString();
    }
}
