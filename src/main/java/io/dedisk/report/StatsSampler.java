package io.dedisk.report;

import io.dedisk.pool.PoolStats;
import io.dedisk.util.Check;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.time.Duration;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;
import java.util.function.Supplier;

/**
 * Records the pool's stats into its {@link StatsHistory} while `serve` runs: one sample at start, one every
 * interval (default 60 s, `serve --stats-interval`), one at shutdown. A failed append (disk full, EIO) is
 * logged and retried at the next interval: the history is an observer and never stops the server.
 *
 * Threads: samples are taken on one daemon scheduler thread ("dedisk-stats"); {@link #close} waits for it.
 * {@code refcounts} supplies the chunk reference-count histogram (Pool.refcountHistogram, kept by the engine).
 */
public final class StatsSampler implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger("dedisk.stats");
    public static final Duration DEFAULT_INTERVAL = Duration.ofSeconds(60);

    private final StatsHistory history;
    private final Supplier<PoolStats> stats;
    private final Supplier<long[]> refcounts;
    private final LongSupplier clock;
    private final ScheduledExecutorService scheduler;

    public StatsSampler(StatsHistory history, Supplier<PoolStats> stats, Supplier<long[]> refcounts, LongSupplier clock, Duration interval) {
        Check.that(!interval.isNegative() && !interval.isZero(), "stats interval %s must be positive", interval);
        this.history = history;
        this.stats = stats;
        this.refcounts = refcounts;
        this.clock = clock;
        this.scheduler = Executors.newSingleThreadScheduledExecutor(r -> Thread.ofPlatform().daemon().name("dedisk-stats").unstarted(r));
        long ms = Math.max(1, interval.toMillis());
        scheduler.scheduleWithFixedDelay(this::sampleQuietly, 0, ms, TimeUnit.MILLISECONDS);
    }

    /** Takes one sample now, on the caller's thread; the append is durable when this returns. */
    public StatsSample sample() throws IOException {
        StatsSample s = StatsSample.of(clock.getAsLong(), stats.get(), refcounts.get());
        history.append(s);
        return s;
    }

    private void sampleQuietly() {
        try {
            sample();
        } catch (IOException | RuntimeException e) {
            LOG.log(Level.WARNING, "could not record a stats sample (will retry at the next interval): {0}", e.toString());
        }
    }

    public StatsHistory history() { return history; }

    /** Stops the schedule, records a last sample, and closes the history. Call while the pool is still open. */
    @Override
    public void close() throws IOException {
        scheduler.shutdown();
        try {
            if (!scheduler.awaitTermination(30, TimeUnit.SECONDS)) LOG.log(Level.WARNING, "stats sampler did not stop within 30 s");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        try {
            sampleQuietly();
        } finally {
            history.close();
        }
    }
}
