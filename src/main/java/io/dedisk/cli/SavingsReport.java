package io.dedisk.cli;

import io.dedisk.DediskException.InvalidRequestException;
import io.dedisk.pool.Pool;
import io.dedisk.report.ContentScan;
import io.dedisk.report.Report;
import io.dedisk.report.StatsHistory;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Map;
import java.util.Optional;

/**
 * `dedisk report --pool P --out FILE [--scan]`: asks the running server for the page over the control endpoint
 * (operation {@code report}), or, when the pool is stopped, opens it read-only ({@link OfflinePool}) and renders
 * it here. Either way the page is written to FILE atomically (temporary file, then rename), and FILE may not be
 * inside the pool directory: the report never adds a byte to the pool.
 */
final class SavingsReport {
    static final String OPERATION = "report";

    private SavingsReport() {}

    /** The page for an open pool and its history; used by the server and offline alike. */
    static String render(Pool pool, StatsHistory.Contents history, boolean scan, String source) {
        ContentScan.Result scanned = scan ? ContentScan.run(pool) : null;
        return Report.render(new Report.Data(System.currentTimeMillis(), source, pool.stats(), history, scanned));
    }

    /**
     * Writes the report for the pool at {@code location} to out; returns where it came from ("server ..." or
     * "offline"). A stopped bucket pool is opened read-only (nothing is written to the bucket or its cache).
     */
    static String write(PoolLocation location, Path out, boolean scan) throws IOException, InterruptedException {
        Path dir = location.localDir();
        if (dir == null) throw new InvalidRequestException("no dedisk pool in " + location);
        Path absPool = dir.toAbsolutePath().normalize(), absOut = out.toAbsolutePath().normalize();
        if (absOut.startsWith(absPool)) {
            throw new InvalidRequestException("--out " + out + " is inside the pool directory " + dir + "; expected a path outside it (the report never writes into the pool)");
        }
        String html;
        String source;
        Optional<ControlClient> control = PoolDirectory.runningControl(dir);
        if (control.isPresent()) {
            html = Main.poolOperation(location, OPERATION, Map.of("scan", Boolean.toString(scan)));
            source = "from the running server at " + control.get();
        } else if (location.isBucket()) {
            try (PoolDirectory p = PoolDirectory.open(location, Pool.OpenOptions.defaults().withReadOnly())) {
                html = render(p.pool, StatsHistory.read(new io.dedisk.store.LocalFs(dir)), scan, "offline (pool opened read-only)");
            }
            source = "offline";
        } else {
            try (OfflinePool p = OfflinePool.open(dir)) {
                html = render(p.pool, StatsHistory.read(p.fs), scan, "offline (pool opened read-only)");
            }
            source = "offline";
        }
        if (!html.startsWith("<!DOCTYPE html>")) throw new IOException("the report is not an HTML page: " + html.substring(0, Math.min(200, html.length())));
        Path parent = absOut.getParent();
        if (parent != null) Files.createDirectories(parent);
        Path tmp = absOut.resolveSibling(absOut.getFileName() + ".tmp");
        Files.writeString(tmp, html, StandardCharsets.UTF_8);
        Files.move(tmp, absOut, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        return source;
    }
}
