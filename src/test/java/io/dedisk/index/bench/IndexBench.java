package io.dedisk.index.bench;

import io.dedisk.index.BlockName;
import io.dedisk.index.DedupIndex;
import io.dedisk.index.IndexConfig;
import io.dedisk.index.UdsIndex;
import io.dedisk.store.LocalFs;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * JMH: single-thread throughput of {@link UdsIndex} lookups and inserts (docs/index.md, "Benchmarks").
 *
 * The index (64 MiB by default) is filled with three closed chapters and half an open one. Lookup cases:
 * hits in the open chapter; hits in a closed chapter whose pages are cached (the names of one page-cache-sized
 * slice of the newest closed chapter, read once in setup); misses (fresh names: the volume index answers alone,
 * except the rare fingerprint collision). Insert cases: new names (chapter closes and their file writes
 * included, amortised) and refreshes of names already in the open chapter.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgs = {"-Xmx2g"})
public class IndexBench {
    @Param({"64M"})
    public String memory;

    @Param({"false", "true"})
    public boolean sparse;

    private static final int SET = 1 << 14;
    private Path dir;
    private UdsIndex index;
    private BlockName[] openHits;
    private BlockName[] closedHits;
    private BlockName[] misses;
    private long next;
    private int i;

    @Setup(Level.Trial)
    public void setUp() throws IOException {
        dir = Files.createTempDirectory("dedisk-index-bench");
        index = UdsIndex.open(new LocalFs(dir), "index", IndexConfig.parse(memory, sparse));
        long chapter = index.windowEntries() / (sparse ? 10240 : 1024);
        long filled = 3 * chapter + chapter / 2;
        for (next = 0; next < filled; next++) index.insert(Workload.nameOf(next), next + 1);
        openHits = new BlockName[SET];
        closedHits = new BlockName[SET];
        misses = new BlockName[SET];
        for (int k = 0; k < SET; k++) {
            openHits[k] = Workload.nameOf(filled - 1 - k % (chapter / 2));
            closedHits[k] = Workload.nameOf(3 * chapter - 1 - k % Math.min(chapter, 4096));
            misses[k] = Workload.nameOf(Long.MAX_VALUE / 2 - k);
            if (index.lookup(closedHits[k]) == DedupIndex.NONE || index.lookup(openHits[k]) == DedupIndex.NONE) {
                throw new IllegalStateException("setup: name " + k + " not found");
            }
        }
        next = Long.MAX_VALUE / 4;
    }

    @TearDown(Level.Trial)
    public void tearDown() throws IOException {
        index.close();
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path p : files.sorted(Comparator.reverseOrder()).toList()) Files.delete(p);
        }
    }

    @Benchmark
    public long lookupHitOpenChapter() { return index.lookup(openHits[i++ & (SET - 1)]); }

    @Benchmark
    public long lookupHitClosedChapterCached() { return index.lookup(closedHits[i++ & (SET - 1)]); }

    @Benchmark
    public long lookupMiss() { return index.lookup(misses[i++ & (SET - 1)]); }

    @Benchmark
    public void insertNew() { index.insert(Workload.nameOf(next++), 1); }

    @Benchmark
    public void insertRefreshInOpenChapter() { index.insert(openHits[i++ & (SET - 1)], 7); }
}
