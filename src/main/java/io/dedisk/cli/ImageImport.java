package io.dedisk.cli;

import io.dedisk.DediskException.InvalidRequestException;
import io.dedisk.pool.Pool;
import io.dedisk.util.Sizes;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * `dedisk import --pool P FILE VOLUME`: any image qemu-img reads becomes a new volume. The volume is created as
 * VOLUME{@value #INCOMPLETE_SUFFIX} (its virtual size, rounded up to 4 KiB, or --size) and the image copied into
 * it: a raw image by the process that holds the pool ({@link RawImageCopy}; through a server, the server reads the
 * file: {@link ServedRawImport}), any other format (or a raw file the server cannot read) by qemu-img into the
 * volume's NBD export ({@link PoolSession}: the running server's or an in-process one) with --target-is-zero.
 * Either way holes and zero blocks are never written and cost nothing. On success it is renamed to VOLUME. The rename's
 * fsync covers every write before it (one log), so VOLUME exists only complete and durable. An existing VOLUME is
 * refused, or with --replace deleted just before the rename. A failed or
 * interrupted (SIGINT/SIGTERM) import deletes the incomplete volume; a killed one (kill -9, a crash) leaves it,
 * clearly named, and the next import into VOLUME refuses until it is deleted.
 *
 * Threads: the command's; an {@link Interruption} hook stops the copy on SIGINT/SIGTERM.
 */
@Command(name = "import", description = "Import a disk image (any format qemu-img reads: raw, qcow2, vmdk, vdi, vhdx...) as a new volume;"
        + " holes and zero blocks cost nothing (works while the pool is served).")
final class ImageImport implements Callable<Integer> {
    @Option(names = "--pool", required = true, description = Main.POOL_HELP) String pool;
    @CommandLine.Mixin BucketOptions bucket = new BucketOptions();
    @Option(names = "--format", description = "Image format (default: detected by qemu-img).") String format;
    @Option(names = "--size", description = "Volume size (default: the image's virtual size); at least the virtual size.") String size;
    @Option(names = "--no-progress", description = "No progress bar.") boolean noProgress;
    @Option(names = "--replace", description = "Replace an existing VOLUME once the new image is completely in (clients of the old one lose it).") boolean replace;
    @Parameters(index = "0", paramLabel = "FILE") Path file;
    @Parameters(index = "1", paramLabel = "VOLUME") String volume;

    static final String INCOMPLETE_SUFFIX = ".importing";
    /** qemu-img's parallel requests (-m, its maximum); out-of-order writes (-W) measured slower: docs/decisions.md. */
    static final List<String> PARALLEL = List.of("-m", "16");

    @Override
    public Integer call() throws Exception {
        try (PoolLocation at = PoolLocation.of(pool, bucket)) {
            System.out.print(run(at, file, volume, format, size, replace, !noProgress));
        }
        return 0;
    }

    /** Runs the import; returns the summary line. {@code format} and {@code size} may be null (detect; virtual size). */
    static String run(PoolLocation dir, Path file, String volume, String format, String size, boolean replace, boolean progress)
            throws IOException, InterruptedException {
        Pool.validateVolumeName(volume);
        Pool.validateVolumeName(volume + INCOMPLETE_SUFFIX);
        if (!Files.exists(file)) throw new InvalidRequestException("no such file: " + file);
        if (!Files.isReadable(file) || Files.isDirectory(file)) throw new InvalidRequestException("cannot read " + file + ": expected a readable disk image file");
        QemuImg.Info info = QemuImg.info(file.toString(), format);
        long virtual = info.virtualSize();
        long volumeSize = (virtual + Pool.BLOCK_SIZE - 1) / Pool.BLOCK_SIZE * Pool.BLOCK_SIZE;
        if (size != null) {
            long asked = Sizes.parse(size);
            if (asked < virtual) throw new InvalidRequestException("--size " + size + " is smaller than the image's virtual size " + virtual + " bytes");
            volumeSize = asked;
        }
        String partial = volume + INCOMPLETE_SUFFIX;
        Interruption stop = new Interruption("import");
        try (PoolSession s = PoolSession.open(dir)) {
            Set<String> names = s.volumeNames();
            if (!replace && names.contains(volume)) throw new InvalidRequestException("volume '" + volume + "' exists; import into a new name, delete it first, or use --replace");
            if (names.contains(partial)) {
                throw new InvalidRequestException("volume '" + partial + "' exists: an import into '" + volume + "' is running or was interrupted;"
                        + " delete it (dedisk volume delete --pool " + dir + " " + partial + ") and import again");
            }
            s.run("volume/create", Map.of("name", partial, "size", Long.toString(volumeSize)));
            PoolSession.Counters before = s.counters();
            long start = System.nanoTime();
            boolean done = false;
            String copier;
            try (TransferProgress bar = new TransferProgress("import " + volume, virtual, progress, () -> s.counters().minus(before))) {
                copier = copy(s, file, info, partial, bar, stop);
                stop.check();
                // --replace: the old volume goes only now, with the new one complete; a crash between the two
                // records leaves no VOLUME and a complete VOLUME.importing (docs/operations.md).
                if (replace && s.volumeNames().contains(volume)) s.run("volume/delete", Map.of("name", volume)); // now: it may have gone meanwhile
                s.run("volume/rename", Map.of("from", partial, "to", volume));
                done = true;
            } finally {
                if (!done) deleteIncomplete(s, partial);
            }
            double seconds = (System.nanoTime() - start) / 1e9;
            PoolSession.Counters c = s.counters().minus(before);
            return String.format(Locale.ROOT, "imported %s (%s, %s) into volume %s %s, %s, in %.1f s (%.1f MiB/s of image); %s%n", file, info.format(),
                    Sizes.format(virtual), volume, s.where(), copier, seconds, virtual / seconds / (1 << 20), TransferProgress.describe(c));
        } finally {
            stop.finished(); // after the pool closed: an interrupted offline import ends with a clean checkpoint
        }
    }

    /**
     * Copies the image into the fresh volume {@code partial}; returns how, for the summary. A raw image is read by
     * the process holding the pool ({@link RawImageCopy}: here offline, in the server through it); anything else,
     * or a raw image the server cannot read, goes through qemu-img into the volume's NBD export.
     */
    private static String copy(PoolSession s, Path file, QemuImg.Info info, String partial, TransferProgress bar, Interruption stop)
            throws IOException, InterruptedException {
        String fallback = "";
        if (info.format().equals("raw")) {
            if (!s.served()) {
                try (FileChannel in = FileChannel.open(file, StandardOpenOption.READ)) {
                    RawImageCopy.copy(in, FileExtents.of(file, info.virtualSize()), info.virtualSize(), s.localVolume(partial).orElseThrow(), bar::doneBytes, stop::check);
                }
                return "read directly";
            }
            Optional<String> declined = ServedRawImport.copy(s.control(), file, info.virtualSize(), partial, bar::doneBytes, stop);
            if (declined.isEmpty()) return "read by the server";
            fallback = " (" + declined.get() + ")";
        }
        List<String> args = new ArrayList<>(List.of("-n", "--target-is-zero"));
        args.addAll(PARALLEL);
        args.addAll(List.of("-f", info.format(), "-O", "raw", file.toString(), s.uri(partial)));
        QemuImg.convert(args, bar::done, stop::started);
        return "qemu-img over NBD" + fallback;
    }

    private static void deleteIncomplete(PoolSession s, String partial) {
        try {
            s.run("volume/delete", Map.of("name", partial));
        } catch (IOException | RuntimeException e) {
            System.err.println("dedisk: warning: the incomplete volume '" + partial + "' is left (" + e.getMessage() + "); delete it with 'dedisk volume delete'");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
