package io.dedisk.pool;

import io.dedisk.DediskException.CorruptionException;
import io.dedisk.index.BlockName;
import io.dedisk.index.DedupIndex;
import io.dedisk.util.ByteSource;
import io.dedisk.util.Check;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The pool's metadata as of some point of the log: the volumes and their block maps, the chunk table and the
 * segment usage table, all paged through one {@link MetadataCache}. It changes only by {@link #apply} of a log
 * record, in recovery and in live operation alike (live operation appends the record first, then applies exactly
 * what it wrote), so what recovery rebuilds is what was served, by construction.
 *
 * Threads: reads under the pool's metadata read lock, {@link #apply} and every change under its write lock.
 * Invariants (checked by `dedisk check`): a chunk's refcount = its entries in distinct leaf versions (a leaf that
 * several family members share counts once; see {@link Family}); usage = live chunk bytes + the bytes of every page
 * version something references, counted once, per segment.
 */
final class PoolState {
    static final int CHUNK_TREE = 0;

    final MetadataCache cache;
    final PageTree.PageReader pages;
    final ChunkTable chunks;
    final UsageTable usage;
    final Map<Integer, VolumeState> volumesById = new HashMap<>();
    final TreeMap<String, VolumeState> volumesByName = new TreeMap<>();
    /** Family id -> its member trees (the chunk table is family 0). */
    final Map<Integer, Family> families = new HashMap<>();
    /** Null when the pool is open read-only: nothing is posted (a read-only index refuses inserts). */
    private final DedupIndex index;
    int nextVolumeId;
    long checkpointNumber;
    /** Bytes of chunks that died (cumulative, for stats). */
    long deadChunkBytes;

    PoolState(CheckpointRoot root, MetadataCache cache, PageTree.PageReader pages, DedupIndex index) {
        this.cache = cache;
        this.pages = pages;
        this.index = index;
        this.usage = new UsageTable(root.usage());
        this.chunks = new ChunkTable(tree(CHUNK_TREE, CHUNK_TREE, MetaPage.KIND_CHUNK_LEAF, root.chunkRoot()), root.nextChunkId(), root.liveChunks(), root.liveBytes(), root.refHistogram());
        this.nextVolumeId = root.nextVolumeId();
        this.checkpointNumber = root.number();
        for (CheckpointRoot.VolumeRoot v : root.volumes()) {
            addVolume(new VolumeState(v.id(), v.name(), v.size(), v.family(), v.parent(), v.snapshot(),
                    new BlockMap(tree(v.id(), v.family(), MetaPage.KIND_MAP_LEAF, v.root()), v.size() / Pool.BLOCK_SIZE, v.mapped(), v.zero())));
        }
    }

    private PageTree tree(int id, int family, int leafKind, PageTree.Root root) {
        return new PageTree(id, families.computeIfAbsent(family, Family::new), leafKind, cache, pages, this::pageReleased, this::forked, root);
    }

    /** A leaf became a tree's own copy of a shared version: each chunk it names gains the reference the copy holds. */
    private void forked(MetaPage leaf) {
        Check.that(leaf.kind == MetaPage.KIND_MAP_LEAF, "only block-map leaves are shared (page %s)", leaf.key);
        BlockMap.forEachEntry(leaf, (i, ref) -> {
            if (BlockMap.isChunk(ref)) chunks.increment(ref);
        });
    }

    /** The member trees of a family (none when it has no members left). */
    List<PageTree> family(int id) {
        Family f = families.get(id);
        return f == null ? List.of() : f.members();
    }

    /** A durable page version is no longer referenced: its bytes are garbage now. */
    private void pageReleased(long address, int length) { usage.add(MetaPage.segmentOf(address), -length); }

    /** The tree a page key belongs to, or null (a deleted volume). */
    PageTree treeOf(int tree) {
        if (tree == CHUNK_TREE) return chunks.tree();
        VolumeState v = volumesById.get(tree);
        return v == null ? null : v.map.tree();
    }

    List<PageTree> trees() {
        List<PageTree> out = new ArrayList<>();
        out.add(chunks.tree());
        for (VolumeState v : volumesById.values()) out.add(v.map.tree());
        return out;
    }

    private void addVolume(VolumeState v) {
        volumesById.put(v.id, v);
        volumesByName.put(v.name, v);
        nextVolumeId = Math.max(nextVolumeId, v.id + 1);
    }

    private void removeVolume(VolumeState v) {
        v.deleted = true;
        volumesById.remove(v.id);
        volumesByName.remove(v.name);
        Family f = v.map.tree().family;
        f.remove(v.map.tree());
        if (f.isEmpty()) families.remove(f.id);
    }

    /** The root a checkpoint writes after its pages. */
    CheckpointRoot root(long number) {
        List<CheckpointRoot.VolumeRoot> vols = new ArrayList<>();
        for (VolumeState v : volumesById.values()) {
            vols.add(new CheckpointRoot.VolumeRoot(v.id, v.name, v.size, v.map.mappedBlocks(), v.map.zeroBlocks(), v.map.tree().root(), v.family, v.parent, v.snapshot));
        }
        vols.sort((a, b) -> Integer.compare(a.id(), b.id()));
        return new CheckpointRoot(number, chunks.nextId(), nextVolumeId, chunks.tree().root(), chunks.liveChunks(), chunks.liveBytes(),
                chunks.histogram(), vols, usage.snapshot());
    }

    /**
     * Applies one record. {@code names} are the block names of a WRITE's entries when the caller has them (live
     * path); in replay ({@code names} null) the names of new chunks are recomputed from their bodies, so the dedup
     * index loses no advice across a crash.
     */
    void apply(int type, ByteBuffer payload, int covered, long segmentSeq, long payloadOffset, BlockName[] names) {
        switch (type) {
            case LogRecord.WRITE -> { applyWrite(payload, covered, segmentSeq, payloadOffset, names); return; }
            case LogRecord.RELOCATE -> { applyRelocate(payload, covered, segmentSeq, payloadOffset); return; }
            case LogRecord.PAGE, LogRecord.ROOT -> { return; } // a checkpoint's own output: no change of state
            default -> { }
        }
        ByteSource in = new ByteSource(payload, "record type " + type);
        in.expect(covered == payload.remaining(), "covers %d of %d payload bytes", covered, payload.remaining());
        switch (type) {
            case LogRecord.SEGMENT_HEADER -> in.skip(24); // verified by LogReader / written by LogWriter
            case LogRecord.VOLUME_CREATE -> {
                int id = in.getInt();
                long size = in.getLong();
                String name = new String(in.getBytes(in.getShort()), StandardCharsets.UTF_8);
                in.expect(id > 0 && !volumesById.containsKey(id) && !volumesByName.containsKey(name), "volume %s (id %d) created twice", name, id);
                in.expect(size > 0 && size % Pool.BLOCK_SIZE == 0, "volume %s size %d", name, size);
                addVolume(new VolumeState(id, name, size, id, 0, false,
                        new BlockMap(tree(id, id, MetaPage.KIND_MAP_LEAF, PageTree.Root.EMPTY), size / Pool.BLOCK_SIZE, 0, 0)));
            }
            case LogRecord.VOLUME_DELETE -> {
                VolumeState v = volumeForRecord(in);
                v.map.deleteAll(this::dereference);
                removeVolume(v);
            }
            case LogRecord.SNAPSHOT_CREATE, LogRecord.CLONE_CREATE -> {
                int id = in.getInt();
                VolumeState source = volumeForRecord(in);
                String name = new String(in.getBytes(in.getShort()), StandardCharsets.UTF_8);
                boolean snapshot = type == LogRecord.SNAPSHOT_CREATE;
                in.expect(id > 0 && !volumesById.containsKey(id) && !volumesByName.containsKey(name), "volume %s (id %d) created twice", name, id);
                in.expect(snapshot != source.snapshot, "%s of %s, which is %s", snapshot ? "snapshot" : "clone", source.name, source.snapshot ? "a snapshot" : "writable");
                PageTree t = tree(id, source.family, MetaPage.KIND_MAP_LEAF, PageTree.Root.EMPTY);
                addVolume(new VolumeState(id, name, source.size, source.family, source.id, snapshot, BlockMap.sharing(t, source.map)));
            }
            case LogRecord.VOLUME_ROLLBACK -> {
                VolumeState v = volumeForRecord(in);
                VolumeState snap = volumeForRecord(in);
                in.expect(!v.snapshot && snap.snapshot && v.family == snap.family, "rollback of %s to %s: a writable volume to a snapshot of its family", v.name, snap.name);
                v.map.rollBackTo(snap.map, this::dereference);
                v.size = snap.size;
            }
            case LogRecord.VOLUME_RESIZE -> {
                VolumeState v = volumeForRecord(in);
                long size = in.getLong();
                in.expect(size > 0 && size % Pool.BLOCK_SIZE == 0, "volume %s new size %d", v.name, size);
                v.map.resize(size / Pool.BLOCK_SIZE, this::dereference);
                v.size = size;
            }
            case LogRecord.VOLUME_RENAME -> {
                VolumeState v = volumeForRecord(in);
                String from = new String(in.getBytes(in.getShort()), StandardCharsets.UTF_8);
                String to = new String(in.getBytes(in.getShort()), StandardCharsets.UTF_8);
                in.expect(from.equals(v.name), "volume id %d renamed from '%s', but it is named '%s'", v.id, from, v.name);
                in.expect(!volumesByName.containsKey(to), "volume %s renamed to '%s', a name in use", v.name, to);
                volumesByName.remove(v.name);
                v.name = to;
                volumesByName.put(to, v);
            }
            case LogRecord.MAP_RANGE -> {
                VolumeState v = volumeForRecord(in);
                long first = in.getLong();
                long count = in.getLong();
                int state = in.getByte();
                in.expect(first >= 0 && count > 0 && first + count <= v.map.blocks(), "range [%d, +%d) beyond volume %s", first, count, v.name);
                in.expect(state == WriteRecord.KIND_ZERO || state == WriteRecord.KIND_UNMAPPED, "range state %d", state);
                v.map.setRange(first, count, state == WriteRecord.KIND_ZERO ? BlockMap.ZERO : BlockMap.UNMAPPED, this::dereference);
            }
            default -> in.expect(false, "unknown record type %d", type);
        }
        in.expect(in.remaining() == 0, "%d trailing bytes", in.remaining());
    }

    private VolumeState volumeForRecord(ByteSource in) {
        int id = in.getInt();
        VolumeState v = volumesById.get(id);
        in.expect(v != null, "unknown volume id %d", id);
        return v;
    }

    void dereference(long ref) {
        if (!BlockMap.isChunk(ref)) return;
        ChunkTable.Location dead = chunks.decrement(ref);
        if (dead != null) {
            usage.add(dead.segment(), -dead.length());
            deadChunkBytes += dead.length();
        }
    }

    /** All increments of a record come before its decrements, so a chunk shared within one batch never dies. */
    private void applyWrite(ByteBuffer payload, int covered, long segmentSeq, long payloadOffset, BlockName[] names) {
        WriteRecord w = WriteRecord.parse(payload, covered);
        VolumeState v = volumesById.get(w.volumeId());
        if (v == null) throw new CorruptionException("write record: unknown volume id " + w.volumeId());
        int count = w.entries().length;
        if (w.firstLba() < 0 || w.firstLba() + count > v.map.blocks()) {
            throw new CorruptionException("write record: [" + w.firstLba() + ", +" + count + ") beyond volume " + v.name);
        }
        long[] olds = new long[count];
        byte[] block = names == null && index != null ? new byte[Pool.BLOCK_SIZE] : null;
        for (int i = 0; i < count; i++) {
            WriteRecord.Entry e = w.entries()[i];
            long ref = switch (e.kind()) {
                case WriteRecord.KIND_ZERO -> BlockMap.ZERO;
                case WriteRecord.KIND_UNMAPPED -> BlockMap.UNMAPPED;
                default -> e.chunkId();
            };
            if (e.kind() == WriteRecord.KIND_NEW) {
                if (ref < BlockMap.FIRST_CHUNK_ID || ref < chunks.nextId() && chunks.isLive(ref)) {
                    throw new CorruptionException("write record: new chunk " + ref + " already exists");
                }
                chunks.create(ref, segmentSeq, (int) (payloadOffset + e.bodyPosition()), e.length(), e.codec(), e.crc());
                usage.add(segmentSeq, e.length());
                if (index == null) {
                    // read-only open: advice is not needed and may not be written
                } else if (names != null) {
                    index.insert(names[i], ref);
                } else {
                    ChunkCodec.decode(e.codec(), payload.array(), payload.arrayOffset() + e.bodyPosition(), e.length(), block, 0, "chunk " + ref);
                    index.insert(BlockName.of(block, 0, Pool.BLOCK_SIZE), ref);
                }
            } else if (e.kind() == WriteRecord.KIND_EXISTING) {
                if (!chunks.isLive(ref)) throw new CorruptionException("write record: reference to chunk " + ref + " which is not live");
                if (names != null && index != null) index.insert(names[i], ref); // a confirmed hit refreshes the name in the window
            }
            if (BlockMap.isChunk(ref)) chunks.increment(ref);
            olds[i] = v.map.set(w.firstLba() + i, ref);
        }
        for (long old : olds) dereference(old);
    }

    private void applyRelocate(ByteBuffer payload, int covered, long segmentSeq, long payloadOffset) {
        for (RelocateRecord.Entry e : RelocateRecord.parse(payload, covered).entries()) {
            if (!chunks.isLive(e.chunkId())) throw new CorruptionException("relocate record: chunk " + e.chunkId() + " is not live");
            ChunkTable.Location old = chunks.location(e.chunkId());
            if (old.length() != e.length() || old.crc() != e.crc()) {
                throw new CorruptionException(String.format("relocate record: chunk %d moved as %d bytes CRC %08x, the table holds %d bytes CRC %08x",
                        e.chunkId(), e.length(), e.crc(), old.length(), old.crc()));
            }
            usage.add(old.segment(), -old.length());
            chunks.relocate(e.chunkId(), segmentSeq, (int) (payloadOffset + e.bodyPosition()));
            usage.add(segmentSeq, e.length());
        }
    }
}
