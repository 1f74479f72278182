package io.dedisk.pool;

import io.dedisk.DediskException.InvalidRequestException;
import io.dedisk.DediskException.ReadOnlyException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Snapshots, clones and rollback as pool operations (DESIGN.md §5; the sharing itself is {@link Family} and
 * {@link PageTree}): each is one durable log record that {@link PoolState#apply} turns into a tree sharing another
 * tree's pages, so creation is O(the source's dirty pages), never O(its size), and replay rebuilds exactly it.
 * <ul>
 *   <li>A snapshot {@code VOLUME@SNAP} (SNAPSHOT_CREATE) is read-only and holds every write that completed before
 *       the command: the record follows them in the log. A checkpoint runs first so the source's pages are durable
 *       and shared, not copied.</li>
 *   <li>A clone (CLONE_CREATE) of a snapshot is a writable volume; clones of clones' snapshots work, with no
 *       depth penalty: every tree is a whole block map, not a chain.</li>
 *   <li>Rollback (VOLUME_ROLLBACK) makes {@code VOLUME} the same tree as {@code VOLUME@SNAP}, atomically under the
 *       metadata write lock: a client connected to the volume reads the snapshot's content from the next request
 *       on (writes in flight land after it). Deleting is the usual VOLUME_DELETE, releasing only what the tree
 *       alone held.</li>
 * </ul>
 * Threads: the pool's (records under its metadata write lock; {@link #infos} under the read lock).
 */
final class Snapshots {
    private final Pool pool;

    Snapshots(Pool pool) { this.pool = pool; }

    /** Writes, zeroes, trims and resizes of a snapshot are refused: it never changes. */
    static void checkWritable(VolumeState v) {
        if (v.snapshot) throw new ReadOnlyException("volume '" + v.name + "' is a snapshot, read-only; clone it to write ('dedisk clone')");
    }

    void create(String volume, String snapshot) throws IOException {
        Pool.validateVolumeName(snapshot);
        String name = volume + "@" + snapshot;
        pool.checkWritable();
        pool.checkpoint(); // the source's dirty pages become durable versions the snapshot shares instead of copying
        pool.catalog.mutateDurably(() -> {
            VolumeState source = pool.catalog.existing(volume);
            if (source.snapshot) throw new InvalidRequestException("'" + volume + "' is a snapshot; snapshots are taken of volumes and clones");
            return record(LogRecord.SNAPSHOT_CREATE, name, source);
        });
    }

    void clone(String snapshot, String clone) {
        Pool.validateVolumeName(clone);
        pool.catalog.mutateDurably(() -> {
            VolumeState source = pool.catalog.existing(snapshot);
            if (!source.snapshot) throw new InvalidRequestException("'" + snapshot + "' is not a snapshot: clones are made of snapshots (VOLUME@SNAP)");
            return record(LogRecord.CLONE_CREATE, clone, source);
        });
    }

    void rollback(String snapshot) {
        int at = snapshot.indexOf('@');
        if (at <= 0) throw new InvalidRequestException("'" + snapshot + "' names no snapshot: expected VOLUME@SNAP");
        String volume = snapshot.substring(0, at);
        pool.catalog.mutateDurably(() -> {
            VolumeState snap = pool.catalog.existing(snapshot);
            VolumeState v = pool.catalog.existing(volume);
            if (!snap.snapshot) throw new InvalidRequestException("'" + snapshot + "' is not a snapshot");
            if (v.family != snap.family) {
                throw new InvalidRequestException("'" + snapshot + "' was taken of an earlier volume named '" + volume + "' (deleted since); clone it instead");
            }
            ByteBuffer rec = LogRecord.newBuffer(8);
            rec.putInt(v.id).putInt(snap.id);
            return new VolumeCatalog.PendingRecord(rec, LogRecord.VOLUME_ROLLBACK);
        });
    }

    private VolumeCatalog.PendingRecord record(int type, String name, VolumeState source) {
        if (pool.state.volumesByName.containsKey(name)) throw new InvalidRequestException("volume '" + name + "' already exists");
        byte[] nameBytes = name.getBytes(StandardCharsets.UTF_8);
        ByteBuffer rec = LogRecord.newBuffer(10 + nameBytes.length);
        rec.putInt(pool.state.nextVolumeId).putInt(source.id).putShort((short) nameBytes.length).put(nameBytes);
        return new VolumeCatalog.PendingRecord(rec, type);
    }

    /**
     * Every volume, snapshot and clone with its parent and the bytes it holds alone. Cost: a walk of each tree's own
     * pages (shared subtrees are skipped unread), so O(what each holds alone), not O(the pool).
     */
    List<VolumeInfo> infos() {
        return pool.withReadLock(() -> {
            List<VolumeInfo> out = new ArrayList<>();
            for (VolumeState v : pool.state.volumesByName.values()) {
                VolumeState parent = v.parent == 0 ? null : pool.state.volumesById.get(v.parent);
                out.add(new VolumeInfo(v.name, v.size, v.map.mappedBlocks(), v.snapshot, v.parent == 0 ? null : parent == null ? "-" : parent.name,
                        aloneBytes(v)));
            }
            return out;
        });
    }

    private long aloneBytes(VolumeState v) {
        PageTree tree = v.map.tree();
        ChunkTable chunks = pool.state.chunks;
        Map<Long, Integer> own = new HashMap<>();
        long[] bytes = {0};
        tree.walkOwn(p -> {
            if (p.key.level() == 0) BlockMap.forEachEntry(p, (i, ref) -> {
                if (BlockMap.isChunk(ref)) own.merge(ref, 1, Integer::sum);
            });
            if (p.address != 0 && !tree.heldByOthers(p)) bytes[0] += p.length;
        });
        // A chunk is this tree's alone when every reference it has comes from the tree's own leaves.
        for (var e : own.entrySet()) if (chunks.refCount(e.getKey()) == e.getValue()) bytes[0] += chunks.location(e.getKey()).length();
        return bytes[0];
    }
}
