package io.dedisk.cli;

import io.dedisk.DediskException;
import io.dedisk.index.BlockName;
import io.dedisk.nbd.NbdServer;
import io.dedisk.pool.ChunkCodec;
import io.dedisk.pool.Pool;
import io.dedisk.util.Sizes;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** The dedisk command line. Pool operations run in the serving process when the pool is served. */
@Command(name = "dedisk", mixinStandardHelpOptions = true, scope = CommandLine.ScopeType.INHERIT, version = "dedisk 0.1.0",
        description = "Deduplicating, compressing, thin-provisioned virtual disks served over NBD.")
public final class Main {
    /** The subcommands, in the order help lists them; each class's @Command gives its name. */
    static final List<Class<?>> COMMANDS = List.of(Create.class, VolumeCmd.class, SnapshotCmd.class, CloneCmd.class, Serve.class, Run.class, Stats.class, Check.class,
            Gc.class, Ideal.class, ReportCmd.class, ImageImport.class, ImageExport.class);
    static final String DEFAULT_LISTEN = "127.0.0.1:10809";
    static final String POOL_HELP = "Pool directory, or s3://BUCKET/PREFIX (endpoint, region and credentials from the AWS environment).";

    public static void main(String[] args) {
        System.setProperty("java.util.logging.SimpleFormatter.format", "%1$tF %1$tT %4$s %3$s: %5$s%6$s%n");
        // One-shot commands only report problems; serve logs its activity.
        java.util.logging.Logger.getLogger("").setLevel(java.util.logging.Level.WARNING);
        CommandLine cl = commandLine(args);
        cl.setExecutionExceptionHandler((e, cmd, parsed) -> {
            if (e instanceof DediskException || e instanceof IOException) {
                cmd.getErr().println("dedisk: error: " + e.getMessage());
                return 1;
            }
            throw e;
        });
        System.exit(cl.execute(args));
    }

    /**
     * The command line for {@code args}: when they start with a subcommand's name, with that subcommand alone (and
     * its own subcommands), else (help, version, a mistyped name) with all. Picocli models every command it is given
     * by reflection before it parses, which is most of a one-shot command's start (docs/decisions.md: "CLI start").
     */
    static CommandLine commandLine(String... args) {
        CommandLine cl = new CommandLine(new Main());
        Class<?> named = null;
        for (Class<?> c : COMMANDS) {
            if (args.length > 0 && c.getAnnotation(Command.class).name().equals(args[0])) {
                named = c;
                break;
            }
        }
        if (named != null) cl.addSubcommand(named);
        else for (Class<?> c : COMMANDS) cl.addSubcommand(c);
        return cl;
    }

    /** Runs a pool operation: in the server that holds the pool if there is one, else on the pool opened here. */
    static String poolOperation(PoolLocation dir, String op, Map<String, String> args) throws IOException, InterruptedException {
        Optional<ControlClient> control = PoolDirectory.runningControl(dir);
        if (control.isPresent()) return control.get().call(op, args);
        Pool.OpenOptions options = PoolCommands.readsOnly(op) ? Pool.OpenOptions.defaults().withReadOnly() : Pool.OpenOptions.defaults();
        try (PoolDirectory p = PoolDirectory.open(dir, options)) {
            return PoolCommands.run(p.pool, op, args);
        }
    }

    static InetSocketAddress parseListen(String listen) {
        int colon = listen.lastIndexOf(':');
        if (colon <= 0) throw new DediskException.InvalidRequestException("invalid --listen '" + listen + "': expected HOST:PORT, e.g. 127.0.0.1:10809");
        try {
            return new InetSocketAddress(listen.substring(0, colon), Integer.parseInt(listen.substring(colon + 1)));
        } catch (IllegalArgumentException e) {
            throw new DediskException.InvalidRequestException("invalid --listen '" + listen + "': " + e.getMessage());
        }
    }

    /** Serves the pool until the process is stopped (SIGINT/SIGTERM close it cleanly; kill -9 is survived). */
    static void serve(PoolLocation dir, String listen, String metadataCache, Observability.Options watch, NbdOptions nbdOptions)
            throws IOException, InterruptedException {
        InetSocketAddress address = parseListen(listen);
        long cache = metadataCache == null ? Pool.defaultMetadataCache() : Sizes.parse(metadataCache);
        if (cache < (4 << 20)) throw new DediskException.InvalidRequestException("--metadata-cache must be at least 4M, got " + metadataCache);
        io.dedisk.nbd.NbdLimits limits = nbdOptions.toLimits();
        io.dedisk.nbd.NbdTls tls = nbdOptions.toTls();
        java.util.logging.Logger.getLogger("").setLevel(java.util.logging.Level.INFO);
        PoolDirectory p = PoolDirectory.open(dir, Pool.OpenOptions.defaults().withMetadataCache(cache));
        NbdServer nbd = new NbdServer(p.pool, address, limits, tls);
        ControlServer control = new ControlServer(p.pool);
        control.register(PoolSession.NBD_OPERATION, args -> PoolSession.describeListener(nbd.localAddress(), tls.mode()));
        ServedRawImport imports = new ServedRawImport(p.pool);
        control.registerStreaming(ServedRawImport.OPERATION, imports::start);
        CountDownLatch stopped = new CountDownLatch(1);
        Observability observability = null;
        try {
            observability = Observability.start(p, nbd, control, watch);
            nbd.start();
            control.start();
            p.advertiseControl(control.client()).ifPresent(w -> System.err.println("dedisk: warning: " + w));
            p.pool.startBackgroundWork();
        } catch (IOException | RuntimeException e) {
            nbd.close();
            if (observability != null) observability.close();
            control.close();
            p.close();
            throw e;
        }
        Observability watching = observability;
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            nbd.close();
            watching.close();
            control.close();
            imports.close(); // its copies write into the pool: they stop before it closes
            try {
                p.close();
            } catch (IOException | RuntimeException e) {
                // The stop did not finish its checkpoint: say so in the exit status (the log still holds everything).
                System.err.println("dedisk: error while closing the pool (the next start replays the log): " + e);
                System.err.flush();
                Runtime.getRuntime().halt(1);
            }
            stopped.countDown();
        }));
        long indexMemory = p.pool.superblock().indexMemory();
        if (Runtime.getRuntime().maxMemory() < indexMemory + (128L << 20)) {
            System.err.println("dedisk: warning: the JVM heap (" + Sizes.format(Runtime.getRuntime().maxMemory()) + ") is small for a "
                    + Sizes.format(indexMemory) + " dedup index; set DEDISK_JAVA_OPTS=-Xmx" + ((indexMemory >> 20) + 512) + "m");
        }
        InetSocketAddress bound = nbd.localAddress();
        System.out.println("dedisk: serving pool " + dir + " on nbd://" + bound.getHostString() + ":" + bound.getPort()
                + "/ (volumes: " + String.join(", ", p.pool.volumeNames()) + "; control " + control.client() + "; metadata cache "
                + Sizes.format(cache) + watching.describe() + ")");
        System.out.flush();
        stopped.await();
    }

    @Command(name = "create", description = "Create a new pool in an empty or new directory.")
    static final class Create implements Callable<Integer> {
        @Option(names = "--pool", required = true, description = POOL_HELP) String pool;
        @CommandLine.Mixin BucketOptions bucket = new BucketOptions();
        @Option(names = "--segment-size", defaultValue = "16M", description = "Log segment size (1M..1G, default ${DEFAULT-VALUE}).") String segmentSize;
        @Option(names = "--checkpoint-interval", defaultValue = "256M", description = "Log bytes between checkpoints (default ${DEFAULT-VALUE}).") String checkpointInterval;
        @Option(names = "--index-memory", defaultValue = "128M",
                description = "Memory of the dedup index, which sets its window (16M..1T, default ${DEFAULT-VALUE}; about 4 bytes per 4 KiB block remembered). 'exact' keeps every block, unbounded.") String indexMemory;
        @Option(names = "--sparse-index", description = "Sparse index: about 10x the window in the same memory, finding most duplicates.") boolean sparseIndex;

        @Override
        public Integer call() throws IOException {
            long seg = Sizes.parse(segmentSize);
            long interval = Sizes.parse(checkpointInterval);
            if (seg < (1 << 20) || seg > (1 << 30)) throw new DediskException.InvalidRequestException("--segment-size must be within 1M..1G, got " + segmentSize);
            if (interval < seg) throw new DediskException.InvalidRequestException("--checkpoint-interval must be at least the segment size");
            boolean exact = indexMemory.equalsIgnoreCase("exact");
            if (exact && sparseIndex) throw new DediskException.InvalidRequestException("--sparse-index needs a memory size, not 'exact'");
            try (PoolLocation at = PoolLocation.of(pool, bucket)) {
                PoolDirectory.create(at, new Pool.Options((int) seg, interval, exact ? 0 : Sizes.parse(indexMemory), sparseIndex));
            }
            System.out.println("created pool " + pool);
            return 0;
        }
    }

    @Command(name = "volume", description = "Manage volumes (works while the pool is served).",
            subcommands = {VolumeCreate.class, VolumeList.class, VolumeDelete.class, VolumeResize.class, VolumeRename.class, VolumeRollback.class})
    static final class VolumeCmd {}

    @Command(name = "snapshot", description = "Read-only snapshots VOLUME@SNAP, exported over NBD under that name (works while the pool is served).",
            subcommands = {SnapshotCreate.class, SnapshotList.class, SnapshotDelete.class})
    static final class SnapshotCmd {}

    /** A snapshot operation naming VOLUME and SNAP. */
    abstract static class SnapshotOperation extends PoolOperation {
        @Parameters(index = "0", paramLabel = "VOLUME") String volume;
        @Parameters(index = "1", paramLabel = "SNAP") String snapshot;

        @Override Map<String, String> arguments() { return Map.of("volume", volume, "snapshot", snapshot); }
    }

    @Command(name = "create", description = "Snapshot a volume or clone: O(1), holds every write completed before the command.")
    static final class SnapshotCreate extends SnapshotOperation {
        @Override String operation() { return "snapshot/create"; }
    }

    @Command(name = "list", description = "List snapshots (of VOLUME, or all) with the bytes each holds alone.")
    static final class SnapshotList extends PoolOperation {
        @Option(names = "--json") boolean json;
        @Parameters(index = "0", paramLabel = "VOLUME", arity = "0..1") String volume;

        @Override String operation() { return "snapshot/list"; }
        @Override Map<String, String> arguments() { return Map.of("volume", volume == null ? "" : volume, "json", Boolean.toString(json)); }
    }

    @Command(name = "delete", description = "Delete snapshot VOLUME@SNAP; its clones keep what they need.")
    static final class SnapshotDelete extends SnapshotOperation {
        @Override String operation() { return "snapshot/delete"; }
    }

    @Command(name = "clone", description = "Make a writable volume NEW sharing every block and map page of snapshot VOLUME@SNAP until written.")
    static final class CloneCmd extends PoolOperation {
        @Parameters(index = "0", paramLabel = "VOLUME@SNAP") String snapshot;
        @Parameters(index = "1", paramLabel = "NEW") String name;

        @Override String operation() { return "clone"; }
        @Override Map<String, String> arguments() { return Map.of("snapshot", snapshot, "name", name); }
    }

    @Command(name = "rollback", description = "Make VOLUME the same as its snapshot VOLUME@SNAP, atomically; clients connected to VOLUME read the snapshot's content from their next request.")
    static final class VolumeRollback extends PoolOperation {
        @Parameters(index = "0", paramLabel = "VOLUME@SNAP") String snapshot;

        @Override String operation() { return "volume/rollback"; }
        @Override Map<String, String> arguments() { return Map.of("snapshot", snapshot); }
    }

    /** A command that is one pool operation: run here, or in the server that holds the pool. */
    abstract static class PoolOperation implements Callable<Integer> {
        @Option(names = "--pool", required = true, description = POOL_HELP) String pool;
        @CommandLine.Mixin BucketOptions bucket = new BucketOptions();

        abstract String operation();

        abstract Map<String, String> arguments();

        @Override
        public Integer call() throws Exception {
            try (PoolLocation at = PoolLocation.of(pool, bucket)) {
                System.out.print(poolOperation(at, operation(), arguments()));
            }
            return 0;
        }
    }

    @Command(name = "create", description = "Create a volume.")
    static final class VolumeCreate extends PoolOperation {
        @Option(names = "--size", required = true, description = "Logical size, e.g. 10G, 512M or bytes.") String size;
        @Parameters(index = "0", paramLabel = "NAME") String name;

        @Override String operation() { return "volume/create"; }
        @Override Map<String, String> arguments() { return Map.of("name", name, "size", size); }
    }

    @Command(name = "list", description = "List volumes, snapshots and clones: parent, and the bytes each holds alone (what deleting it gives back).")
    static final class VolumeList extends PoolOperation {
        @Option(names = "--json") boolean json;

        @Override String operation() { return "volume/list"; }
        @Override Map<String, String> arguments() { return Map.of("json", Boolean.toString(json)); }
    }

    @Command(name = "delete", description = "Delete a volume, snapshot or clone and release what it alone holds.")
    static final class VolumeDelete extends PoolOperation {
        @Parameters(index = "0", paramLabel = "NAME") String name;

        @Override String operation() { return "volume/delete"; }
        @Override Map<String, String> arguments() { return Map.of("name", name); }
    }

    @Command(name = "resize", description = "Grow or shrink a volume (shrinking releases the blocks beyond the new end).")
    static final class VolumeResize extends PoolOperation {
        @Option(names = "--size", required = true) String size;
        @Parameters(index = "0", paramLabel = "NAME") String name;

        @Override String operation() { return "volume/resize"; }
        @Override Map<String, String> arguments() { return Map.of("name", name, "size", size); }
    }

    @Command(name = "rename", description = "Rename a volume (refused if the new name is in use). Connected NBD clients keep their connection; new ones use the new name.")
    static final class VolumeRename extends PoolOperation {
        @Parameters(index = "0", paramLabel = "OLD") String from;
        @Parameters(index = "1", paramLabel = "NEW") String to;

        @Override String operation() { return "volume/rename"; }
        @Override Map<String, String> arguments() { return Map.of("from", from, "to", to); }
    }

    @Command(name = "serve", description = "Serve every volume of the pool over NBD (export name = volume name).")
    static final class Serve implements Callable<Integer> {
        @Option(names = "--pool", required = true, description = POOL_HELP) String pool;
        @CommandLine.Mixin BucketOptions bucket = new BucketOptions();
        @Option(names = "--listen", defaultValue = DEFAULT_LISTEN, description = "HOST:PORT (default ${DEFAULT-VALUE}).") String listen;
        @Option(names = "--metadata-cache", description = "Memory for block-map and chunk-table pages (default: an eighth of the JVM's heap"
                + " limit, 64M under the launcher's -Xmx512m; printed at start); the rest lives in the log.") String metadataCache;
        @Option(names = "--metrics", paramLabel = "HOST:PORT", description = "Serve Prometheus metrics on http://HOST:PORT/metrics (default: off).") String metrics;
        @Option(names = "--stats-interval", defaultValue = "60s", description = "Record a stats sample in POOL/stats-history this often (ms, s, m, h; 0 = off; default ${DEFAULT-VALUE}).") String statsInterval;
        @CommandLine.Mixin NbdOptions nbdOptions = new NbdOptions();

        @Override
        public Integer call() throws Exception {
            serve(PoolLocation.of(pool, bucket), listen, metadataCache, new Observability.Options(metrics, Observability.parseInterval(statsInterval)), nbdOptions);
            return 0;
        }
    }

    @Command(name = "run", description = "Create ./pool with a volume 'default' if there is none, then serve it.")
    static final class Run implements Callable<Integer> {
        @Option(names = "--pool", defaultValue = "pool", description = "Pool directory (default ${DEFAULT-VALUE}).") Path pool;
        @Option(names = "--size", defaultValue = "10G", description = "Size of the default volume if created (default ${DEFAULT-VALUE}).") String size;
        @Option(names = "--listen", defaultValue = DEFAULT_LISTEN) String listen;
        @Option(names = "--metadata-cache", description = "Memory for metadata pages (default: an eighth of the JVM's heap limit, as serve).") String metadataCache;

        @Override
        public Integer call() throws Exception {
            if (!PoolDirectory.exists(pool)) {
                PoolDirectory.create(pool, Pool.Options.defaults());
                try (PoolDirectory p = PoolDirectory.open(pool)) {
                    p.pool.createVolume("default", Sizes.parse(size));
                }
                System.out.println("created pool " + pool + " with volume 'default' (" + size + ")");
            }
            serve(PoolLocation.directory(pool), listen, metadataCache, Observability.Options.none(), new NbdOptions());
            return 0;
        }
    }

    @Command(name = "stats", description = "Space and activity statistics (like vdostats); asks the server when the pool is served.")
    static final class Stats extends PoolOperation {
        @Option(names = "--json") boolean json;

        @Override String operation() { return "stats"; }
        @Override Map<String, String> arguments() { return Map.of("json", Boolean.toString(json)); }
    }

    @Command(name = "check", description = "Audit the pool offline (like vdoaudit / e2fsck -n): refcounts, checksums, log, checkpoints. Exit 0 when sound, 1 when not.")
    static final class Check implements Callable<Integer> {
        @Option(names = "--pool", required = true, description = POOL_HELP) String pool;
        @CommandLine.Mixin BucketOptions bucket = new BucketOptions();

        @Override
        public Integer call() throws IOException {
            try (PoolDirectory p = PoolDirectory.open(PoolLocation.of(pool, bucket), Pool.OpenOptions.defaults().withReadOnly())) {
                io.dedisk.pool.PoolChecker.Report report = io.dedisk.pool.PoolChecker.check(p.pool);
                System.out.print(report.toText());
                return report.ok() ? 0 : 1;
            } catch (DediskException.CorruptionException e) {
                System.out.println("PROBLEM: the pool cannot be opened: " + e.getMessage());
                return 1;
            }
        }
    }

    @Command(name = "gc", description = "Clean every segment worth it (less than 95%% live) and delete the cleaned ones now (works while the pool is served).")
    static final class Gc extends PoolOperation {
        @Override String operation() { return "gc"; }
        @Override Map<String, String> arguments() { return Map.of(); }
    }

    @Command(name = "report", description = "Write the savings report, one self-contained HTML page with SVG plots (works offline, read-only, or through the server).")
    static final class ReportCmd implements Callable<Integer> {
        @Option(names = "--pool", required = true, description = POOL_HELP) String pool;
        @CommandLine.Mixin BucketOptions bucket = new BucketOptions();
        @Option(names = "--out", required = true, description = "HTML file to write (outside the pool directory).") Path out;
        @Option(names = "--scan", description = "Also read every stored block once: per-volume ratios and the reference-count distribution.") boolean scan;

        @Override
        public Integer call() throws Exception {
            String source;
            try (PoolLocation at = PoolLocation.of(pool, bucket)) {
                source = SavingsReport.write(at, out, scan);
            }
            System.out.println("wrote " + out + " (" + source + ")");
            return 0;
        }
    }

    @Command(name = "ideal", description = "The ideal stored size of raw images: exact 4 KiB dedup across all of them + per-block LZ4.")
    static final class Ideal implements Callable<Integer> {
        @Parameters(paramLabel = "IMAGE", arity = "1..*") List<Path> images;

        @Override
        public Integer call() throws IOException {
            Set<BlockName> seen = new HashSet<>();
            long logical = 0, nonZero = 0, ideal = 0;
            byte[] block = new byte[Pool.BLOCK_SIZE];
            byte[] zero = new byte[Pool.BLOCK_SIZE];
            for (Path image : images) {
                try (InputStream in = new java.io.BufferedInputStream(Files.newInputStream(image), 1 << 20)) {
                    int n;
                    while ((n = in.readNBytes(block, 0, block.length)) > 0) {
                        if (n < block.length) java.util.Arrays.fill(block, n, block.length, (byte) 0);
                        logical += n;
                        if (java.util.Arrays.equals(block, zero)) continue;
                        nonZero++;
                        if (seen.add(BlockName.of(block, 0, block.length))) ideal += ChunkCodec.storedLength(block, 0);
                    }
                }
            }
            Map<String, Long> out = new LinkedHashMap<>();
            out.put("logicalBytes", logical);
            out.put("nonZeroBlocks", nonZero);
            out.put("uniqueBlocks", (long) seen.size());
            out.put("idealBytes", ideal);
            StringBuilder b = new StringBuilder("{");
            out.forEach((k, v) -> b.append(b.length() > 1 ? "," : "").append('"').append(k).append("\":").append(v));
            System.out.println(b.append('}'));
            return 0;
        }
    }
}
