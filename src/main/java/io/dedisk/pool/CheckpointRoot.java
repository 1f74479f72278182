package io.dedisk.pool;

import io.dedisk.util.ByteSink;
import io.dedisk.util.ByteSource;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;

/**
 * The payload of a ROOT record: everything a checkpoint needs besides the pages it wrote just before it. Recovery
 * starts from it and replays the log after it. Layout (little-endian; docs/format.md):
 * <pre>
 *   u64 checkpoint number | u64 next chunk id | u32 next volume id
 *   chunk tree: u64 root address | u32 root CRC | u32 root record length | u8 height | u64 live chunks | u64 live bytes
 *   32 x u64 reference-count histogram (bucket i: live chunks with 2^i <= references < 2^(i+1))
 *   u32 volume count; each: u32 id | u64 size | u64 mapped blocks | u64 zero blocks
 *                           | u64 root address | u32 root CRC | u32 root record length | u8 height | u16 name length | name (UTF-8)
 *   u32 usage entries; each: u64 segment | u64 live bytes
 *   u32 lineage entries (one per volume, in volume order): u32 family | u32 parent | u8 flags (bit 0 snapshot)
 * </pre>
 * The record CRC covers it all; the manifest names the record's address, length and CRC.
 */
record CheckpointRoot(long number, long nextChunkId, int nextVolumeId, PageTree.Root chunkRoot, long liveChunks, long liveBytes,
                      long[] refHistogram, List<VolumeRoot> volumes, TreeMap<Long, Long> usage) {

    record VolumeRoot(int id, String name, long size, long mapped, long zero, PageTree.Root root, int family, int parent, boolean snapshot) {}

    /** The state of an empty pool: before the first checkpoint, recovery replays the whole log from this. */
    static CheckpointRoot empty() {
        return new CheckpointRoot(0, BlockMap.FIRST_CHUNK_ID, 1, PageTree.Root.EMPTY, 0, 0, new long[ChunkTable.HISTOGRAM_BUCKETS], List.of(), new TreeMap<>());
    }

    ByteBuffer encode() {
        ByteSink s = new ByteSink(256 + volumes.size() * 64 + usage.size() * 16);
        s.putLong(number).putLong(nextChunkId).putInt(nextVolumeId);
        putRoot(s, chunkRoot);
        s.putLong(liveChunks).putLong(liveBytes);
        for (long h : refHistogram) s.putLong(h);
        s.putInt(volumes.size());
        for (VolumeRoot v : volumes) {
            byte[] name = v.name().getBytes(StandardCharsets.UTF_8);
            s.putInt(v.id()).putLong(v.size()).putLong(v.mapped()).putLong(v.zero());
            putRoot(s, v.root());
            s.putShort(name.length).putBytes(name);
        }
        s.putInt(usage.size());
        for (var e : usage.entrySet()) s.putLong(e.getKey()).putLong(e.getValue());
        s.putInt(volumes.size());
        for (VolumeRoot v : volumes) s.putInt(v.family()).putInt(v.parent()).putByte(v.snapshot() ? 1 : 0);
        ByteBuffer rec = LogRecord.newBuffer(s.size());
        rec.put(s.view());
        return rec;
    }

    private static void putRoot(ByteSink s, PageTree.Root r) {
        s.putLong(r.address()).putInt(r.crc()).putInt(r.length()).putByte(r.height());
    }

    private static PageTree.Root getRoot(ByteSource in) {
        long address = in.getLong();
        int crc = in.getInt();
        int length = in.getInt();
        int height = in.getByte();
        in.expect(height <= 7, "tree height %d", height);
        in.expect(MetaPage.validReference(address, crc, length), "tree root at %x: a PAGE record of %d bytes", address, length);
        return new PageTree.Root(address, crc, length, height);
    }

    static CheckpointRoot decode(ByteBuffer payloadUntrusted) {
        ByteSource in = new ByteSource(payloadUntrusted, "checkpoint root");
        long number = in.getLong();
        long nextChunk = in.getLong();
        int nextVolume = in.getInt();
        PageTree.Root chunkRoot = getRoot(in);
        long liveChunks = in.getLong();
        long liveBytes = in.getLong();
        long[] histogram = new long[ChunkTable.HISTOGRAM_BUCKETS];
        for (int i = 0; i < histogram.length; i++) {
            histogram[i] = in.getLong();
            in.expect(histogram[i] >= 0 && histogram[i] <= liveChunks, "histogram bucket %d holds %d of %d chunks", i, histogram[i], liveChunks);
        }
        int nv = in.getInt();
        in.expect(nv >= 0 && nv <= 1 << 20, "volume count %d", nv);
        List<VolumeRoot> vols = new ArrayList<>();
        for (int i = 0; i < nv; i++) {
            int id = in.getInt();
            long size = in.getLong();
            long mapped = in.getLong();
            long zero = in.getLong();
            PageTree.Root root = getRoot(in);
            String name = new String(in.getBytes(in.getShort()), StandardCharsets.UTF_8);
            in.expect(id > 0 && id < nextVolume && size > 0 && size % Pool.BLOCK_SIZE == 0, "volume %s id %d size %d", name, id, size);
            vols.add(new VolumeRoot(id, name, size, mapped, zero, root, id, 0, false));
        }
        int nu = in.getInt();
        in.expect(nu >= 0 && nu <= in.remaining() / 16, "usage entries %d", nu);
        TreeMap<Long, Long> usage = new TreeMap<>();
        for (int i = 0; i < nu; i++) {
            long seq = in.getLong();
            long bytes = in.getLong();
            in.expect(bytes > 0, "segment %d live bytes %d", seq, bytes);
            usage.put(seq, bytes);
        }
        int nl = in.getInt();
        in.expect(nl == nv, "lineage entries %d for %d volumes", nl, nv);
        for (int i = 0; i < nl; i++) {
            VolumeRoot v = vols.get(i);
            int family = in.getInt();
            int parent = in.getInt();
            int flags = in.getByte();
            in.expect(family > 0 && family <= v.id() && parent >= 0 && parent < nextVolume && (flags & ~1) == 0,
                    "volume %s lineage: family %d parent %d flags %d", v.name(), family, parent, flags);
            vols.set(i, new VolumeRoot(v.id(), v.name(), v.size(), v.mapped(), v.zero(), v.root(), family, parent, flags == 1));
        }
        in.expect(in.remaining() == 0, "%d trailing bytes", in.remaining());
        return new CheckpointRoot(number, nextChunk, nextVolume, chunkRoot, liveChunks, liveBytes, histogram, vols, usage);
    }
}
