package io.dedisk.index.bench;

import io.dedisk.index.IndexConfig;
import io.dedisk.index.UdsIndex;
import io.dedisk.store.LocalFs;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Stream;

/**
 * What the index's files cost on disk against the entries they hold (docs/index.md, "Disk use"): for each count,
 * a fresh index is filled with that many distinct names and checkpointed (the checkpoint file is measured then),
 * then saved (a save replaces the checkpoint file), and its files are measured with java.nio (not with the
 * index's own accounting, which is printed beside them).
 *
 * <pre>
 *   ./mvnw -q test-compile
 *   java -Xmx2g -cp target/classes:target/test-classes io.dedisk.index.bench.IndexDiskBench [dir=/var/tmp] [memory=128M] [sparse=false] [counts=0,7736,100000,1000000]
 *   java -Xmx2g -cp target/classes:target/test-classes io.dedisk.index.bench.IndexDiskBench checkpointEvery=8192
 * </pre>
 * Only what every index format has is used for the figures (open, insert, save), so the same class measures an
 * older dedisk too.
 */
public final class IndexDiskBench {
    private IndexDiskBench() {}

    /**
     * The cost of checkpoints: a checkpoint every {@code every} inserts of new names, through two chapter closes;
     * prints the bytes each one added to the checkpoint file (a base rewrites it whole) and its wall time
     * (indicative only: one fsync, plus a directory fsync for a base, on whatever disk {@code dir} is on).
     */
    static void checkpoints(Path dir, IndexConfig config, long every) throws IOException {
        Path root = Files.createTempDirectory(dir, "dedisk-index-checkpoint");
        try (UdsIndex index = UdsIndex.open(new LocalFs(root), "index", config)) {
            System.out.printf(Locale.ROOT, "index %s: a checkpoint every %,d new names%n%10s %12s %12s %10s%n", config, every, "inserts", "file bytes", "written", "ms");
            long chapter = index.windowEntries() / 1024, previous = 0;
            for (long i = 0, n = 0; i < 2 * chapter + every; i++) {
                index.insert(Workload.nameOf(i), i + 1);
                if (++n % every != 0) continue;
                long t = System.nanoTime();
                index.checkpoint();
                long ms = (System.nanoTime() - t) / 1_000_000;
                long now = bytesOf(root, "open-");
                System.out.printf(Locale.ROOT, "%,10d %,12d %,12d %10d%n", n, now, now >= previous ? now - previous : now, ms);
                previous = now;
            }
        } finally {
            try (Stream<Path> files = Files.walk(root)) {
                for (Path p : files.sorted(Comparator.reverseOrder()).toList()) Files.delete(p);
            }
        }
    }

    /** Bytes of the index files whose name starts with the prefix. */
    static long bytesOf(Path root, String prefix) throws IOException {
        long total = 0;
        try (Stream<Path> files = Files.list(root.resolve("index"))) {
            for (Path p : files.toList()) if (p.getFileName().toString().startsWith(prefix)) total += Files.size(p);
        }
        return total;
    }

    public static void main(String[] args) throws IOException {
        Map<String, String> opt = new HashMap<>(Map.of("dir", "/var/tmp", "memory", "128M", "sparse", "false", "counts", "0,7736,100000,1000000",
                "checkpointEvery", "0"));
        for (String a : args) {
            int eq = a.indexOf('=');
            if (eq < 0 || !opt.containsKey(a.substring(0, eq))) throw new IllegalArgumentException("expected one of " + opt.keySet() + " as key=value, found " + a);
            opt.put(a.substring(0, eq), a.substring(eq + 1));
        }
        IndexConfig config = IndexConfig.parse(opt.get("memory"), Boolean.parseBoolean(opt.get("sparse")));
        long every = Long.parseLong(opt.get("checkpointEvery"));
        if (every > 0) {
            checkpoints(Path.of(opt.get("dir")), config, every);
            return;
        }
        System.out.printf(Locale.ROOT, "index %s: entries -> bytes of each kind of file (checkpoint: after a checkpoint; the rest after the save that follows)%n", config);
        System.out.printf(Locale.ROOT, "%12s %14s %14s %12s %14s %14s %10s%n", "entries", "save", "chapters", "checkpoint", "all files", "diskBytes()", "save B/entry");
        for (String c : opt.get("counts").split(",")) {
            long count = Long.parseLong(c.strip());
            Path root = Files.createTempDirectory(Path.of(opt.get("dir")), "dedisk-index-disk");
            try {
                long entries, reported = -1, checkpoint = 0;
                try (UdsIndex index = UdsIndex.open(new LocalFs(root), "index", config)) {
                    for (long i = 0; i < count; i++) index.insert(Workload.nameOf(i), i + 1);
                    index.checkpoint(); // CHECKPOINT (the lines an older dedisk's copy of this file drops)
                    checkpoint = bytesOf(root, "open-"); // CHECKPOINT
                    index.save();
                    entries = index.entries();
                    reported = index.diskBytes(); // DISKBYTES
                }
                long save = 0, chapters = 0, all = 0;
                try (Stream<Path> files = Files.list(root.resolve("index"))) {
                    for (Path p : files.toList()) {
                        long size = Files.size(p);
                        String name = p.getFileName().toString();
                        all += size;
                        if (name.equals("save")) save += size;
                        else if (name.startsWith("chapter-")) chapters += size;
                    }
                }
                System.out.printf(Locale.ROOT, "%,12d %,14d %,14d %,12d %,14d %,14d %10.2f%n", entries, save, chapters, checkpoint, all,
                        reported, entries == 0 ? Double.NaN : (double) save / entries);
            } finally {
                try (Stream<Path> files = Files.walk(root)) {
                    for (Path p : files.sorted(Comparator.reverseOrder()).toList()) Files.delete(p);
                }
            }
        }
    }
}
