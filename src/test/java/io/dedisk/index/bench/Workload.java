package io.dedisk.index.bench;

import io.dedisk.index.BlockName;
import io.dedisk.util.Check;
import java.util.SplittableRandom;

/**
 * A synthetic write stream with a known duplicate structure, for the index tests and benchmarks. The stream is a
 * sequence of runs of {@code runLength} blocks: a run is new data (fresh contents) or, with probability
 * {@code dupFraction}, a copy of the run that started {@code distance} blocks earlier, distance uniform in
 * [minDistance, maxDistance] (temporal locality: duplicates come in runs, as in VM images and backups).
 *
 * Each block has a content id; its name is a fixed pseudo-random function of the id (SplitMix64 finaliser,
 * 256 uniform bits like SHA-256) and its chunk id is content id + 1, so a correct answer for a duplicate is
 * known. {@link Op#distance} is the number of blocks since the content last appeared (what the index's window is
 * measured against; the pool re-inserts a confirmed duplicate), or -1 for new content.
 *
 * Memory: two int arrays of {@code blocks} entries (history and last position by content).
 */
public final class Workload {
    public record Op(BlockName name, long chunkId, long distance) {
        public boolean duplicate() { return distance >= 0; }
    }

    private final SplittableRandom random;
    private final int blocks;
    private final int runLength;
    private final int minDistance;
    private final int maxDistance;
    private final double dupFraction;
    private final int[] history;
    private final int[] lastPosition;
    private int position;
    private int nextContent;
    private int runLeft;
    private int runSource = -1;
    private long duplicates;

    public Workload(long seed, int blocks, int runLength, int minDistance, int maxDistance, double dupFraction) {
        Check.that(runLength >= 1 && minDistance >= runLength && maxDistance >= minDistance, "workload run %d, distances [%d, %d]", runLength, minDistance, maxDistance);
        this.random = new SplittableRandom(seed);
        this.blocks = blocks;
        this.runLength = runLength;
        this.minDistance = minDistance;
        this.maxDistance = maxDistance;
        this.dupFraction = dupFraction;
        this.history = new int[blocks];
        this.lastPosition = new int[blocks];
    }

    /** Half the runs duplicate, copied from [runLength, maxDistance] blocks back. */
    public Workload(long seed, int blocks, int runLength, int maxDistance) { this(seed, blocks, runLength, runLength, maxDistance, 0.5); }

    public boolean hasNext() { return position < blocks; }

    public Op next() {
        Check.that(hasNext(), "workload exhausted");
        if (runLeft == 0) {
            runLeft = runLength;
            runSource = position >= minDistance && random.nextDouble() < dupFraction
                    ? position - (minDistance + random.nextInt(Math.min(maxDistance, position) - minDistance + 1))
                    : -1;
        }
        runLeft--;
        boolean fresh = runSource < 0;
        int content = fresh ? nextContent++ : history[runSource++];
        long distance = fresh ? -1 : position - lastPosition[content];
        if (!fresh) duplicates++;
        history[position] = content;
        lastPosition[content] = position;
        position++;
        return new Op(nameOf(content), content + 1L, distance);
    }

    public long duplicates() { return duplicates; }

    public int position() { return position; }

    public static BlockName nameOf(long content) {
        return new BlockName(mix(content * 4), mix(content * 4 + 1), mix(content * 4 + 2), mix(content * 4 + 3));
    }

    private static long mix(long z) {
        z += 0x9E3779B97F4A7C15L;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
