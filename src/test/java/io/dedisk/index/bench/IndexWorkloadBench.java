package io.dedisk.index.bench;

import io.dedisk.index.BlockName;
import io.dedisk.index.DedupIndex;
import io.dedisk.index.IndexConfig;
import io.dedisk.index.UdsIndex;
import io.dedisk.store.Fs;
import io.dedisk.store.LocalFs;
import io.dedisk.util.Sizes;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Stream;

/**
 * The index workload benchmark (docs/index.md, "Benchmarks"): streams synthetic workloads with a known duplicate
 * structure through {@link UdsIndex} and prints window, memory, detection rates, throughput and restart times.
 *
 * <pre>
 *   ./mvnw -q -o test-compile
 *   java -Xmx6g -cp target/classes:target/test-classes io.dedisk.index.bench.IndexWorkloadBench [dir=/var/tmp] [memory=16M] [saveMemory=1G] [fill=40000000]
 * </pre>
 * Sections: (1) dense detection and throughput: half the runs of 4096 blocks duplicate a run 4096 ..
 * 1.5 × window blocks back; (2) sparse, same memory, on the same stream: share of dense's finds;
 * (3) sparse detection over its own (10× larger) window; (4) save, load and crash rebuild of a dense index of
 * {@code saveMemory} filled with {@code fill} records (the save file's size does not depend on the fill: the
 * tables are written whole; the rebuild time is extrapolated to a full window and labelled so).
 */
public final class IndexWorkloadBench {
    private static final int RUN = 4096;
    private static final int BATCH = 1024;

    private IndexWorkloadBench() {}

    record Result(long inWindow, long foundInWindow, long outside, long foundOutside, long wrong,
                  long lookups, long lookupNanos, long inserts, long insertNanos) {
        double rate() { return (double) foundInWindow / inWindow; }
        double lookupsPerSecond() { return lookups * 1e9 / lookupNanos; }
        double insertsPerSecond() { return inserts * 1e9 / insertNanos; }
    }

    public static void main(String[] args) throws Exception {
        Map<String, String> opt = new HashMap<>(Map.of("dir", "/var/tmp", "memory", "16M", "saveMemory", "1G", "fill", "40000000"));
        for (String a : args) {
            int eq = a.indexOf('=');
            if (eq < 0 || !opt.containsKey(a.substring(0, eq))) throw new IllegalArgumentException("expected one of " + opt.keySet() + " as key=value, found " + a);
            opt.put(a.substring(0, eq), a.substring(eq + 1));
        }
        Path root = Files.createTempDirectory(Path.of(opt.get("dir")), "dedisk-index-workload");
        try {
            Fs fs = new LocalFs(root);
            IndexConfig dense = IndexConfig.parse(opt.get("memory"), false), sparse = IndexConfig.parse(opt.get("memory"), true);
            System.out.printf(Locale.ROOT, "dedisk index workload benchmark: %d CPUs, max heap %s, files in %s%n%n",
                    Runtime.getRuntime().availableProcessors(), Sizes.format(Runtime.getRuntime().maxMemory()), root);

            long denseWindow;
            Result d;
            try (UdsIndex index = UdsIndex.open(fs, "dense", dense)) {
                denseWindow = index.windowEntries();
                Workload w = new Workload(1, (int) (2.5 * denseWindow), RUN, (int) (1.5 * denseWindow));
                d = run(index, w, denseWindow);
                header("1. dense " + dense, index);
                report(d);
            }
            try (UdsIndex index = UdsIndex.open(fs, "sparse-same", sparse)) {
                Workload w = new Workload(1, (int) (2.5 * denseWindow), RUN, (int) (1.5 * denseWindow));
                Result s = run(index, w, denseWindow);
                header("2. sparse " + sparse + " on the same stream (duplicates inside the dense window)", index);
                report(s);
                System.out.printf(Locale.ROOT, "   sparse finds %.2f %% of what dense finds%n%n", 100.0 * s.foundInWindow() / d.foundInWindow());
            }
            try (UdsIndex index = UdsIndex.open(fs, "sparse", sparse)) {
                long window = index.windowEntries();
                Workload w = new Workload(2, (int) (1.3 * window), RUN, (int) (1.2 * window));
                Result s = run(index, w, window);
                header("3. sparse " + sparse + " over its own window", index);
                report(s);
            }
            restart(fs, IndexConfig.parse(opt.get("saveMemory"), false), Long.parseLong(opt.get("fill")));
        } finally {
            try (Stream<Path> files = Files.walk(root)) {
                for (Path p : files.sorted(Comparator.reverseOrder()).toList()) Files.delete(p);
            }
        }
    }

    /**
     * Streams the workload in batches: all lookups of a batch, then all its inserts (a duplicate is at least one
     * run back, so no block of a batch duplicates another of the same batch and the answers are those of an
     * interleaved stream). A duplicate counts as inside the window when fewer than 99 % of the window's records
     * were posted since its content last was (records ≤ blocks, so it is certainly still indexed).
     */
    static Result run(UdsIndex index, Workload w, long window) {
        long limit = (long) (0.99 * window);
        BlockName[] names = new BlockName[BATCH];
        long[] ids = new long[BATCH], distances = new long[BATCH], answers = new long[BATCH];
        long inWindow = 0, found = 0, outside = 0, foundOutside = 0, wrong = 0, lookups = 0, lookupNanos = 0, insertNanos = 0;
        while (w.hasNext()) {
            int n = 0;
            for (; n < BATCH && w.hasNext(); n++) {
                Workload.Op op = w.next();
                names[n] = op.name();
                ids[n] = op.chunkId();
                distances[n] = op.distance();
            }
            long t0 = System.nanoTime();
            for (int k = 0; k < n; k++) answers[k] = index.lookup(names[k]);
            long t1 = System.nanoTime();
            for (int k = 0; k < n; k++) index.insert(names[k], ids[k]);
            long t2 = System.nanoTime();
            lookupNanos += t1 - t0;
            insertNanos += t2 - t1;
            lookups += n;
            for (int k = 0; k < n; k++) {
                boolean hit = answers[k] == ids[k];
                if (answers[k] != DedupIndex.NONE && !hit) wrong++;
                if (distances[k] < 0) continue;
                if (distances[k] <= limit) {
                    inWindow++;
                    if (hit) found++;
                } else {
                    outside++;
                    if (hit) foundOutside++;
                }
            }
        }
        return new Result(inWindow, found, outside, foundOutside, wrong, lookups, lookupNanos, lookups, insertNanos);
    }

    static void header(String title, UdsIndex index) {
        System.out.printf(Locale.ROOT, "%s%n   window %,d entries, memoryBytes %s (%,d), %.3f bytes per window entry%n",
                title, index.windowEntries(), Sizes.format(index.memoryBytes()), index.memoryBytes(), (double) index.memoryBytes() / index.windowEntries());
    }

    static void report(Result r) {
        System.out.printf(Locale.ROOT, "   duplicates inside the window: %,d, found %,d = %.3f %%; outside: %,d (found %,d); wrong answers: %d%n",
                r.inWindow(), r.foundInWindow(), 100 * r.rate(), r.outside(), r.foundOutside(), r.wrong());
        System.out.printf(Locale.ROOT, "   %,d lookups at %,.0f /s, %,d inserts at %,.0f /s (one thread, chapter writes included)%n%n",
                r.lookups(), r.lookupsPerSecond(), r.inserts(), r.insertsPerSecond());
    }

    /** Save, load and crash rebuild of a dense index; the save writes the tables whole whatever the fill. */
    static void restart(Fs fs, IndexConfig config, long fill) throws IOException, InterruptedException {
        long window, saveNanos, loadNanos, openNanos, rebuildNanos;
        long t0 = System.nanoTime();
        try (UdsIndex index = UdsIndex.open(fs, "restart", config)) {
            window = index.windowEntries();
            for (long c = 0; c < fill; c++) index.insert(Workload.nameOf(c), c + 1);
            System.out.printf(Locale.ROOT, "4. restart, dense %s: window %,d entries, filled with %,d records in %.1f s%n",
                    config, window, fill, (System.nanoTime() - t0) / 1e9);
            long s = System.nanoTime();
            index.save();
            saveNanos = System.nanoTime() - s;
        }
        long saveBytes;
        try (Fs.FileHandle h = fs.open("restart/save", false)) {
            saveBytes = h.size();
        }
        long l = System.nanoTime();
        try (UdsIndex index = UdsIndex.open(fs, "restart", config)) {
            loadNanos = System.nanoTime() - l;
            check(index, fill, true);
        }
        fs.delete("restart/save"); // as after a crash: no valid save
        long o = System.nanoTime();
        try (UdsIndex index = UdsIndex.open(fs, "restart", config)) {
            openNanos = System.nanoTime() - o;
            while (index.rebuildRemaining() > 0) Thread.sleep(10);
            rebuildNanos = System.nanoTime() - o;
            check(index, fill, false);
        }
        System.out.printf(Locale.ROOT, "   save %.2f s (save file %s), load %.2f s%n", saveNanos / 1e9, Sizes.format(saveBytes), loadNanos / 1e9);
        System.out.printf(Locale.ROOT, "   crash: open returned in %.3f s, background rebuild of %,d records took %.1f s"
                + " (extrapolated to a full window of %,d: %.0f s)%n", openNanos / 1e9, fill, rebuildNanos / 1e9, window, rebuildNanos / 1e9 * window / fill);
    }

    /** Samples the newest records: closed chapters answer; the open chapter's records survive only a save. */
    private static void check(UdsIndex index, long fill, boolean saved) {
        long chapter = index.windowEntries() / 1024; // the dense geometry has 1024 chapters
        long closedEnd = fill - fill % chapter;
        for (long c = fill - 1; c >= Math.max(0, fill - 100_000); c -= 97) {
            long expected = c < closedEnd || saved ? c + 1 : DedupIndex.NONE;
            long got = index.lookup(Workload.nameOf(c));
            if (got != expected) throw new IllegalStateException("record " + c + ": expected " + expected + ", found " + got);
        }
    }
}
