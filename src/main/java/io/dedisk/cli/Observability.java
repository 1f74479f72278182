package io.dedisk.cli;

import io.dedisk.metrics.MetricsServer;
import io.dedisk.nbd.NbdServer;
import io.dedisk.pool.Pool;
import java.io.IOException;

/**
 * What `serve` runs beside the NBD server to be watched: the Prometheus endpoint (--metrics HOST:PORT, off by
 * default). Kept out of {@link Main#serve} so that method stays a short list of start and stop steps.
 *
 * Lifecycle: {@link #start} before the NBD server starts (it hands the NBD server its metrics sink);
 * {@link #close} after the NBD server has closed and before the pool closes. Threads: the caller's.
 */
final class Observability implements AutoCloseable {
    /** `serve` options: {@code metricsListen} HOST:PORT or null for none. */
    record Options(String metricsListen) {
        static Options none() { return new Options(null); }
    }

    private final MetricsServer metrics;

    private Observability(MetricsServer metrics) {
        this.metrics = metrics;
    }

    static Observability start(Pool pool, NbdServer nbd, Options options) throws IOException {
        MetricsServer metrics = null;
        if (options.metricsListen() != null) {
            metrics = new MetricsServer(Main.parseListen(options.metricsListen()), pool::stats);
            nbd.setMetrics(metrics.nbd());
            metrics.start();
        }
        return new Observability(metrics);
    }

    /** For the start-up line: where the metrics are, or empty. */
    String describe() {
        return metrics == null ? "" : "; metrics http://" + metrics.address() + "/metrics";
    }

    @Override
    public void close() {
        if (metrics != null) metrics.close();
    }
}
