package io.dedisk.cli;

import io.dedisk.DediskException;
import io.dedisk.DediskException.InvalidRequestException;
import io.dedisk.metrics.MetricsServer;
import io.dedisk.nbd.NbdServer;
import io.dedisk.report.StatsHistory;
import io.dedisk.report.StatsSampler;
import io.dedisk.store.LocalFs;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.time.Duration;
import java.util.Locale;

/**
 * What `serve` runs beside the NBD server to be watched: the Prometheus endpoint (--metrics HOST:PORT, off by
 * default), the stats history sampler (--stats-interval, default 60 s, 0 = off) and the control endpoint's
 * {@code report} operation. Kept out of {@link Main#serve} so that method stays a short list of start and stop
 * steps.
 *
 * Lifecycle: {@link #start} before the NBD server and the control endpoint start (it hands the NBD server its
 * metrics sink and registers the report operation); {@link #close} after the NBD server has closed and before
 * the pool closes (the sampler records a last sample). Threads: the caller's; see StatsSampler and
 * MetricsServer for theirs.
 */
final class Observability implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger("dedisk.serve");

    /** `serve` options: {@code metricsListen} HOST:PORT or null for none; {@code statsInterval} zero for no history. */
    record Options(String metricsListen, Duration statsInterval) {
        static Options none() { return new Options(null, StatsSampler.DEFAULT_INTERVAL); }
    }

    private final MetricsServer metrics;
    private final StatsSampler sampler;

    private Observability(MetricsServer metrics, StatsSampler sampler) {
        this.metrics = metrics;
        this.sampler = sampler;
    }

    /** Parses a --stats-interval: a number with unit ms, s, m or h (no unit: seconds); 0 or "off" disables. */
    static Duration parseInterval(String text) {
        String t = text.trim().toLowerCase(Locale.ROOT);
        if (t.equals("off")) return Duration.ZERO;
        try {
            Duration d;
            if (t.endsWith("ms")) d = Duration.ofMillis(Long.parseLong(t.substring(0, t.length() - 2)));
            else if (t.endsWith("s")) d = Duration.ofSeconds(Long.parseLong(t.substring(0, t.length() - 1)));
            else if (t.endsWith("m")) d = Duration.ofMinutes(Long.parseLong(t.substring(0, t.length() - 1)));
            else if (t.endsWith("h")) d = Duration.ofHours(Long.parseLong(t.substring(0, t.length() - 1)));
            else d = Duration.ofSeconds(Long.parseLong(t));
            if (d.isNegative() || (!d.isZero() && d.toMillis() < 100)) throw new NumberFormatException("out of range");
            return d;
        } catch (NumberFormatException e) {
            throw new InvalidRequestException("invalid --stats-interval '" + text + "': expected 0/off or at least 100ms, e.g. 60s, 5m, 1h");
        }
    }

    static Observability start(PoolDirectory p, NbdServer nbd, ControlServer control, Options options) throws IOException {
        MetricsServer metrics = null;
        StatsSampler sampler = null;
        try {
            if (options.metricsListen() != null) {
                metrics = new MetricsServer(Main.parseListen(options.metricsListen()), p.pool::stats);
                nbd.setMetrics(metrics.nbd());
                metrics.start();
            }
            if (!options.statsInterval().isZero()) sampler = startSampler(p, options.statsInterval());
        } catch (IOException | RuntimeException e) {
            if (metrics != null) metrics.close();
            throw e;
        }
        StatsSampler recording = sampler;
        control.register(SavingsReport.OPERATION, args -> SavingsReport.render(p.pool,
                recording != null ? recording.history().read() : StatsHistory.read(new LocalFs(p.dir)),
                "true".equals(args.get("scan")), "from the running server"));
        return new Observability(metrics, sampler);
    }

    /**
     * The history sampler, or null when its file cannot be opened (unwritable, or written by a newer dedisk):
     * the history is an observer and never keeps the pool from being served.
     */
    private static StatsSampler startSampler(PoolDirectory p, Duration interval) {
        StatsHistory history;
        try {
            history = StatsHistory.openForAppend(new LocalFs(p.dir), StatsHistory.DEFAULT_MAX_BYTES);
        } catch (IOException | DediskException e) {
            LOG.log(Level.WARNING, "no stats history this time: cannot open " + p.dir.resolve(StatsHistory.FILE) + ": " + e.getMessage());
            System.err.println("dedisk: warning: no stats history: " + e.getMessage());
            return null;
        }
        return new StatsSampler(history, p.pool::stats, p.pool::refcountHistogram, System::currentTimeMillis, interval);
    }

    /** For the start-up line: where the metrics are, or empty. */
    String describe() {
        return (metrics == null ? "" : "; metrics http://" + metrics.address() + "/metrics") + (sampler == null ? "; no stats history" : "");
    }

    @Override
    public void close() {
        try {
            if (sampler != null) sampler.close();
        } catch (IOException | RuntimeException e) {
            LOG.log(Level.WARNING, "closing the stats history failed: {0}", e.toString());
        } finally {
            if (metrics != null) metrics.close();
        }
    }
}
