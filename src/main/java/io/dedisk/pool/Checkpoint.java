package io.dedisk.pool;

import io.dedisk.DediskException.CorruptionException;
import io.dedisk.util.ByteSink;
import io.dedisk.util.ByteSource;
import io.dedisk.util.Check;
import io.dedisk.util.Crc;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;

/**
 * A checkpoint: a durable image of the volumes, their block maps and the chunk table as of a log position, so
 * that opening the pool replays only the log after it. File {@code checkpoints/<lsn hex>.ckpt}, written
 * atomically (temporary name, fsync, rename, directory fsync) and only after the log up to its position is
 * durable. Reference counts are not stored: loading re-derives them from the block maps, and a live chunk left
 * without references is corruption.
 *
 * Layout (little-endian; varints are LEB128, "zz" = zigzag varint):
 * <pre>
 *   header  u64 magic "DDSKCKPT" | u32 version (1) | u64 pool id msb | u64 pool id lsb
 *           | u64 next LSN | u64 segment seq | u64 segment offset | u64 next chunk id | u32 next volume id
 *           | u64 dead bytes
 *   volumes varint count, each: u32 id | u64 size | u16 name length | name (UTF-8)
 *           | varint allocated pages, each: varint page index delta | 1024 x zz (ref - previous ref)
 *   chunks  varint count, each: varint id delta | varint segment delta | varint offset | u16 length | u8 codec | u32 crc
 *   footer  u64 magic "DDSKCKPT" inverted | u32 CRC32C of every byte before it
 * </pre>
 * Threads: encoding runs under the pool's metadata write lock (a consistent image); decoding on open.
 */
final class Checkpoint {
    static final String DIR = "checkpoints";
    static final long MAGIC = 0x54504b434b534444L; // "DDSKCKPT" little-endian
    static final int VERSION = 1;

    private Checkpoint() {}

    /** Where the log continues after this checkpoint. */
    record Position(long nextLsn, long segmentSeq, long segmentOffset) {}

    /** Everything a checkpoint restores. */
    record Image(Position position, List<VolumeState> volumes, ChunkTable chunks, int nextVolumeId) {}

    static String fileName(long lsn) { return DIR + "/" + String.format("%016x.ckpt", lsn); }

    static byte[] encode(UUID poolId, Image image) {
        ByteSink out = new ByteSink(1 << 16);
        Position pos = image.position();
        out.putLong(MAGIC).putInt(VERSION).putLong(poolId.getMostSignificantBits()).putLong(poolId.getLeastSignificantBits())
                .putLong(pos.nextLsn()).putLong(pos.segmentSeq()).putLong(pos.segmentOffset())
                .putLong(image.chunks().nextId()).putInt(image.nextVolumeId()).putLong(image.chunks().deadBytes());
        out.putVarLong(image.volumes().size());
        for (VolumeState v : image.volumes()) {
            byte[] name = v.name.getBytes(StandardCharsets.UTF_8);
            out.putInt(v.id).putLong(v.size).putShort(name.length).putBytes(name);
            BlockMap map = v.map;
            int allocated = 0;
            for (int p = 0; p < map.pageCount(); p++) if (map.page(p) != null) allocated++;
            out.putVarLong(allocated);
            int previousPage = -1;
            for (int p = 0; p < map.pageCount(); p++) {
                long[] page = map.page(p);
                if (page == null) continue;
                out.putVarLong(p - previousPage);
                previousPage = p;
                long previous = 0;
                for (long ref : page) {
                    out.putZigZag(ref - previous);
                    previous = ref;
                }
            }
        }
        out.putVarLong(image.chunks().liveChunks());
        long[] previous = {0, 0};
        image.chunks().forEachLive(loc -> {
            out.putVarLong(loc.chunkId() - previous[0]).putVarLong(loc.segment() - previous[1]).putVarLong(loc.offset())
                    .putShort(loc.length()).putByte(loc.codec()).putInt(loc.crc());
            previous[0] = loc.chunkId();
            previous[1] = loc.segment();
        });
        out.putLong(~MAGIC);
        out.putInt(Crc.of(out.view()));
        byte[] bytes = out.toByteArray();
        Check.that(verifyFooter(bytes) == null, "checkpoint verifies after encoding");
        return bytes;
    }

    /** Null when the footer and CRC are right, else what is wrong. */
    private static String verifyFooter(byte[] b) {
        if (b.length < 64) return "file of " + b.length + " bytes is shorter than a checkpoint header";
        ByteBuffer bb = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        if (bb.getLong(b.length - 12) != ~MAGIC) return "footer magic missing (file truncated?)";
        int stored = bb.getInt(b.length - 4);
        int computed = Crc.of(b, 0, b.length - 4);
        if (stored != computed) return String.format("CRC32C expected %08x, found %08x", computed, stored);
        return null;
    }

    static Image decode(byte[] untrusted, UUID poolId, String what) {
        String problem = verifyFooter(untrusted);
        if (problem != null) throw new CorruptionException(what + ": " + problem);
        ByteSource in = new ByteSource(ByteBuffer.wrap(untrusted, 0, untrusted.length - 12), what);
        in.expect(in.getLong() == MAGIC, "bad magic");
        int version = in.getInt();
        in.expect(version == VERSION, "format version %d, this dedisk reads %d", version, VERSION);
        UUID id = new UUID(in.getLong(), in.getLong());
        in.expect(id.equals(poolId), "belongs to pool %s, not %s", id, poolId);
        Position pos = new Position(in.getLong(), in.getLong(), in.getLong());
        long nextChunkId = in.getLong();
        int nextVolumeId = in.getInt();
        long deadBytes = in.getLong();
        long volumeCount = in.getVarLong();
        in.expect(volumeCount < 1 << 20, "volume count %d", volumeCount);
        List<VolumeState> volumes = new ArrayList<>();
        for (long n = 0; n < volumeCount; n++) {
            int vid = in.getInt();
            long size = in.getLong();
            String name = new String(in.getBytes(in.getShort()), StandardCharsets.UTF_8);
            in.expect(vid > 0 && vid < nextVolumeId && size > 0 && size % Pool.BLOCK_SIZE == 0, "volume %s id %d size %d", name, vid, size);
            VolumeState v = new VolumeState(vid, name, size);
            long pages = in.getVarLong();
            in.expect(pages <= v.map.pageCount(), "volume %s: %d pages for %d", name, pages, v.map.pageCount());
            long p = -1;
            for (long k = 0; k < pages; k++) {
                p += in.getVarLong();
                in.expect(p < v.map.pageCount(), "volume %s: page %d beyond %d", name, p, v.map.pageCount());
                long[] entries = new long[BlockMap.PAGE_SIZE];
                long previous = 0;
                for (int i = 0; i < entries.length; i++) {
                    entries[i] = previous + in.getZigZag();
                    previous = entries[i];
                    in.expect(entries[i] >= 0 && entries[i] < nextChunkId, "volume %s: reference %d", name, entries[i]);
                }
                v.map.loadPage((int) p, entries);
            }
            volumes.add(v);
        }
        ChunkTable chunks = new ChunkTable();
        long count = in.getVarLong();
        long chunkId = 0;
        long segment = 0;
        for (long n = 0; n < count; n++) {
            chunkId += in.getVarLong();
            segment += in.getVarLong();
            long offset = in.getVarLong();
            int length = in.getShort();
            int codec = in.getByte();
            int crc = in.getInt();
            in.expect(chunkId >= BlockMap.FIRST_CHUNK_ID && chunkId < nextChunkId && !chunks.isLive(chunkId), "chunk id %d", chunkId);
            in.expect(offset <= Integer.MAX_VALUE && length > 0 && length <= Pool.BLOCK_SIZE, "chunk %d offset %d length %d", chunkId, offset, length);
            chunks.create(chunkId, segment, (int) offset, length, codec, crc);
        }
        in.expect(in.remaining() == 0, "%d unexpected bytes before the footer", in.remaining());
        chunks.restoreCounters(nextChunkId, deadBytes);
        return new Image(pos, volumes, chunks, nextVolumeId);
    }
}
