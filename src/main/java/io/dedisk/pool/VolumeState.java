package io.dedisk.pool;

import java.util.concurrent.locks.ReentrantLock;

/**
 * One volume's identity and block map, as the pool holds it. A snapshot is a read-only volume named
 * {@code VOLUME@SNAP}; a clone is a writable one derived from a snapshot; both belong to their origin's
 * {@link Family} ({@code family}) and name what they were derived from ({@code parent}: the volume a snapshot was
 * taken of, the snapshot a clone was made from; 0 for none), kept even when that one is deleted. The block map,
 * size and name change only under the pool's metadata write lock; {@code size}, {@code name} and {@code deleted}
 * are volatile so I/O paths can check them first. A rename changes {@code name} only: the id keys the block-map
 * tree, and open handles (NBD connections) keep working on the renamed volume.
 * The stripe locks serialize read-modify-write of partial blocks: two writes to different bytes of one 4 KiB
 * block must not lose either.
 */
final class VolumeState {
    private static final int STRIPES = 64;

    final int id;
    volatile String name;
    final int family;
    final int parent;
    final boolean snapshot;
    final BlockMap map;
    volatile long size;
    volatile boolean deleted;
    private final ReentrantLock[] stripes = new ReentrantLock[STRIPES];
    /** Block ranges {first, end} whose content is unknown because the log that changed them is damaged. */
    private final java.util.List<long[]> poisoned = new java.util.concurrent.CopyOnWriteArrayList<>();

    VolumeState(int id, String name, long size, int family, int parent, boolean snapshot, BlockMap map) {
        this.id = id;
        this.name = name;
        this.family = family;
        this.parent = parent;
        this.snapshot = snapshot;
        this.size = size;
        this.map = map;
        for (int i = 0; i < STRIPES; i++) stripes[i] = new ReentrantLock();
    }

    void poison(long first, long count) { poisoned.add(new long[] {first, first + count}); }

    boolean isPoisoned(long first, long count) {
        for (long[] r : poisoned) if (r[0] < first + count && first < r[1]) return true;
        return false;
    }

    ReentrantLock stripe(long lba) { return stripes[(int) Math.floorMod(lba * 0x9E3779B97F4A7C15L >>> 32, STRIPES)]; }
}
