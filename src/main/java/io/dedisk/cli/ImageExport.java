package io.dedisk.cli;

import io.dedisk.DediskException.InvalidRequestException;
import io.dedisk.util.Sizes;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * `dedisk export --pool P VOLUME FILE [--format raw|qcow2] [--force]`: qemu-img copies the volume's NBD export
 * ({@link PoolSession}: the running server's or an in-process one) into FILE. Sparse: qemu-img asks the export's
 * block status (base:allocation), so unmapped and ZERO blocks are never read and become holes (raw) or unallocated
 * clusters (qcow2); data blocks of zeros become holes too (its default -S 4k). It writes FILE.part and renames it,
 * so FILE is never half written; an existing FILE is refused unless --force. A served volume being written
 * meanwhile is copied as it changes (no point in time): export a snapshot for a consistent copy.
 *
 * Threads: the command's; an {@link Interruption} hook stops qemu-img on SIGINT/SIGTERM.
 */
@Command(name = "export", description = "Export a volume to a sparse raw or qcow2 image file (works while the pool is served).")
final class ImageExport implements Callable<Integer> {
    @Option(names = "--pool", required = true, description = Main.POOL_HELP) String pool;
    // Not the BucketOptions mixin: its --force (take a pool over) would clash with export's own --force, and an
    // export has no business taking a pool over; an s3:// pool is opened with these two.
    @Option(names = "--cache", paramLabel = "DIR", description = "Cache directory of an s3:// pool (default ${XDG_CACHE_HOME:-~/.cache}/dedisk/POOL-ID).") Path cache;
    @Option(names = "--read-cache", paramLabel = "SIZE", description = "Read cache of an s3:// pool (default 1G).") String readCache;
    @Option(names = "--format", defaultValue = "raw", description = "raw or qcow2 (default ${DEFAULT-VALUE}).") String format;
    @Option(names = "--force", description = "Overwrite FILE if it exists.") boolean force;
    @Option(names = "--no-progress", description = "No progress bar.") boolean noProgress;
    @Parameters(index = "0", paramLabel = "VOLUME") String volume;
    @Parameters(index = "1", paramLabel = "FILE") Path file;

    static final String PART_SUFFIX = ".part";

    @Override
    public Integer call() throws Exception {
        BucketOptions bucket = BucketOptions.none();
        bucket.cache = cache;
        bucket.readCache = readCache;
        try (PoolLocation at = PoolLocation.of(pool, bucket)) {
            System.out.print(run(at, volume, file, format, force, !noProgress));
        }
        return 0;
    }

    static String run(PoolLocation dir, String volume, Path file, String format, boolean force, boolean progress) throws IOException, InterruptedException {
        if (!format.equals("raw") && !format.equals("qcow2")) throw new InvalidRequestException("invalid --format '" + format + "': expected raw or qcow2");
        Path out = file.toAbsolutePath().normalize();
        if (dir.directory() != null && out.startsWith(dir.directory().toAbsolutePath().normalize())) throw new InvalidRequestException(file + " is inside the pool directory " + dir + "; expected a path outside it");
        if (Files.isDirectory(out)) throw new InvalidRequestException(file + " is a directory; expected a file name");
        if (Files.exists(out) && !force) throw new InvalidRequestException(file + " exists; use --force to overwrite it");
        Path part = out.resolveSibling(out.getFileName() + PART_SUFFIX);
        Interruption stop = new Interruption("export");
        try (PoolSession s = PoolSession.open(dir)) {
            if (!volume.contains("@") && !s.volumeNames().contains(volume)) throw new InvalidRequestException("no volume named '" + volume + "' in pool " + dir);
            long size = QemuImg.info(s.uri(volume), "raw").virtualSize();
            long start = System.nanoTime();
            Files.deleteIfExists(part);
            boolean done = false;
            try (TransferProgress bar = new TransferProgress("export " + volume, size, progress, null)) {
                List<String> args = new ArrayList<>(List.of("-f", "raw", "-O", format));
                args.addAll(ImageImport.PARALLEL); // without -W the writes stay in order, as qcow2's allocation wants
                args.addAll(List.of(s.uri(volume), part.toString()));
                QemuImg.convert(args, bar::done, stop::started);
                stop.check();
                Files.move(part, out, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
                done = true;
            } finally {
                if (!done) Files.deleteIfExists(part);
            }
            double seconds = (System.nanoTime() - start) / 1e9;
            return String.format(Locale.ROOT, "exported volume %s (%s) %s to %s (%s) in %.1f s (%.1f MiB/s)%n", volume, Sizes.format(size), s.where(), file,
                    format, seconds, size / seconds / (1 << 20));
        } finally {
            stop.finished();
        }
    }
}
