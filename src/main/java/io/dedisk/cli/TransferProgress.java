package io.dedisk.cli;

import java.time.Duration;
import java.util.Locale;
import java.util.concurrent.Callable;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

/**
 * The progress bar of import and export (on stderr, the `progressbar` library): bytes of the image done out of its
 * virtual size and the rate, from qemu-img's progress; for an import, also the pool's dedup so far (hits among the
 * non-zero blocks written since the import began), polled twice a second. Hidden with --no-progress.
 *
 * Threads: {@link #done} from qemu-img's reader; the poller is this object's own virtual thread; {@link #close}
 * from the command's thread.
 */
final class TransferProgress implements AutoCloseable {
    private static final Duration POLL = Duration.ofMillis(500);

    private final long total;
    private final ProgressBar bar;
    private final Thread poller;

    /** {@code counters} null: nothing to poll (export). */
    TransferProgress(String task, long totalBytes, boolean shown, Callable<PoolSession.Counters> counters) {
        this.total = totalBytes;
        this.bar = shown ? new ProgressBarBuilder().setTaskName(task).setInitialMax(totalBytes).setUnit("MiB", 1 << 20)
                .setStyle(ProgressBarStyle.ASCII).showSpeed().setUpdateIntervalMillis(250).build() : null;
        this.poller = bar != null && counters != null ? Thread.ofVirtual().name("progress-poller").start(() -> poll(counters)) : null;
    }

    private void poll(Callable<PoolSession.Counters> counters) {
        try {
            while (!Thread.currentThread().isInterrupted()) {
                bar.setExtraMessage(" " + brief(counters.call()));
                Thread.sleep(POLL);
            }
        } catch (InterruptedException e) {
            // closed
        } catch (Exception e) {
            bar.setExtraMessage(" (dedup unknown: " + e.getMessage() + ")");
        }
    }

    /** What the summary says about the writes of this transfer. */
    static String describe(PoolSession.Counters c) {
        return String.format(Locale.ROOT, "dedup %.0f%% of %,d blocks", 100 * c.dedupShare(), c.dedupHits() + c.dedupMisses());
    }

    /** The bar's short form (a narrow terminal cuts the line). */
    static String brief(PoolSession.Counters c) {
        return String.format(Locale.ROOT, "dedup %.0f%%", 100 * c.dedupShare());
    }

    /** The share of the image done, 0..1. */
    void done(double share) { doneBytes(Math.round(share * total)); }

    /** Bytes of the image done. */
    void doneBytes(long bytes) {
        if (bar != null) bar.stepTo(bytes);
    }

    @Override
    public void close() throws InterruptedException {
        if (poller != null) {
            poller.interrupt();
            poller.join();
        }
        if (bar != null) bar.close();
    }
}
