package io.dedisk.pool;

import io.dedisk.DediskException.CorruptionException;
import io.dedisk.pool.ChunkTable.Location;
import io.dedisk.util.Crc;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The read path: LBA -> block reference -> chunk location (under the metadata read lock), then one backend read
 * per run of chunks that lie back to back in a segment, each body verified against the CRC32C held in its
 * reference and decoded. Unmapped and ZERO blocks read as zeros without I/O. A body that fails verification is
 * never returned: that read fails (EIO), everything else is served.
 *
 * Segment deletion cannot pull a segment from under a reader: the reader takes the segment guard's read lock before
 * it lets go of the metadata lock (so before the cleaner can move its chunks) and holds it through its reads.
 *
 * Threads: any number of readers at once.
 */
final class ReadPath {
    /** Largest single backend read when coalescing. */
    private static final int MAX_COALESCED = 1 << 20;

    private final Pool pool;

    ReadPath(Pool pool) {
        this.pool = pool;
    }

    /** Reads count blocks at lba into dst[dstOff...]. */
    void readBlocks(VolumeState v, long lba, int count, byte[] dst, int dstOff) {
        Location[] locs = new Location[count];
        pool.meta.readLock().lock();
        boolean guarded = false;
        try {
            pool.checkRange(v, lba * Pool.BLOCK_SIZE, (long) count * Pool.BLOCK_SIZE);
            if (v.isPoisoned(lba, count)) {
                pool.counters.corruptReads.increment();
                throw new CorruptionException("volume " + v.name + " blocks [" + lba + ", +" + count + "): the log record of their last write is damaged (" + pool.readOnlyReason() + ")");
            }
            for (int i = 0; i < count; i++) {
                long ref = v.map.get(lba + i);
                if (BlockMap.isChunk(ref)) locs[i] = pool.state.chunks.location(ref);
            }
            pool.segmentGuard.readLock().lock();
            guarded = true;
        } finally { pool.meta.readLock().unlock(); }
        try {
            pool.counters.blocksRead.add(count);
            int i = 0;
            while (i < count) {
                if (locs[i] == null) {
                    Arrays.fill(dst, dstOff + i * Pool.BLOCK_SIZE, dstOff + (i + 1) * Pool.BLOCK_SIZE, (byte) 0);
                    i++;
                    continue;
                }
                // Coalesce chunks stored one after another in a segment into one read (sequential VM image reads).
                int j = i + 1;
                while (j < count && locs[j] != null && locs[j].segment() == locs[i].segment()
                        && locs[j].offset() > locs[j - 1].offset()
                        && (long) locs[j].offset() - (locs[j - 1].offset() + locs[j - 1].length()) <= 64
                        && (long) locs[j].offset() + locs[j].length() - locs[i].offset() <= MAX_COALESCED) {
                    j++;
                }
                readChunks(locs, i, j, dst, dstOff);
                i = j;
            }
        } finally {
            if (guarded) pool.segmentGuard.readLock().unlock();
        }
    }

    /** Reads, verifies and decodes one chunk (the checker, the exact index's rebuild). Caller guards the segment. */
    void readVerified(Location loc, byte[] block) { readChunks(new Location[] {loc}, 0, 1, block, 0); }

    /** Reads locs[from, to) (one segment, increasing offsets) with one I/O, verifies each body, decodes each. */
    private void readChunks(Location[] locs, int from, int to, byte[] dst, int dstOff) {
        Location first = locs[from];
        Location last = locs[to - 1];
        int span = last.offset() + last.length() - first.offset();
        byte[] raw = new byte[span];
        read(first, raw, false);
        boolean reread = false;
        for (int k = from; k < to; k++) {
            Location loc = locs[k];
            int at = loc.offset() - first.offset();
            int crc = Crc.of(raw, at, loc.length());
            if (crc != loc.crc() && !reread) {
                // The backend may have served these bytes from a cache that left the check to us: once more from its source.
                reread = true;
                read(first, raw, true);
                crc = Crc.of(raw, at, loc.length());
            }
            if (crc != loc.crc()) {
                pool.counters.corruptReads.increment();
                throw new CorruptionException(String.format("chunk %d (segment %d offset %d, %d bytes): CRC32C expected %08x, found %08x",
                        loc.chunkId(), loc.segment(), loc.offset(), loc.length(), loc.crc(), crc));
            }
            ChunkCodec.decode(loc.codec(), raw, at, loc.length(), dst, dstOff + k * Pool.BLOCK_SIZE, "chunk " + loc.chunkId());
        }
    }

    /** Reads raw.length bytes of first's segment from its offset, for this class's own CRC check (or again after it failed). */
    private void read(Location first, byte[] raw, boolean again) {
        try {
            if (again) pool.backend.reread(first.segment(), first.offset(), ByteBuffer.wrap(raw));
            else pool.backend.readForCallerCheck(first.segment(), first.offset(), ByteBuffer.wrap(raw));
        } catch (java.io.EOFException | java.nio.file.NoSuchFileException | java.io.FileNotFoundException e) {
            pool.counters.corruptReads.increment();
            throw new CorruptionException("chunk " + first.chunkId() + ": segment " + first.segment() + " does not hold bytes up to offset " + (first.offset() + raw.length) + ": " + e.getMessage(), e);
        } catch (IOException e) {
            throw pool.storageFailure("reading segment " + first.segment(), e);
        }
    }

    /** Block status of [lba, lba+count): runs of (hole, zero) as VolumeDevice extents, in blocks. */
    List<VolumeDevice.Extent> blockStatus(VolumeState v, long lba, long count) {
        List<VolumeDevice.Extent> out = new ArrayList<>();
        pool.meta.readLock().lock();
        try {
            pool.checkRange(v, lba * Pool.BLOCK_SIZE, count * Pool.BLOCK_SIZE);
            long runStart = lba;
            int runState = stateOf(v.map.get(lba));
            for (long b = lba + 1; b < lba + count && out.size() < 1024; b++) {
                int s = stateOf(v.map.get(b));
                if (s != runState) {
                    out.add(extent(b - runStart, runState));
                    runStart = b;
                    runState = s;
                }
            }
            if (out.size() < 1024) out.add(extent(lba + count - runStart, runState));
        } finally { pool.meta.readLock().unlock(); }
        return out;
    }

    private static int stateOf(long ref) { return ref == BlockMap.UNMAPPED ? 0 : ref == BlockMap.ZERO ? 1 : 2; }

    private static VolumeDevice.Extent extent(long blocks, int state) {
        return new VolumeDevice.Extent(blocks * Pool.BLOCK_SIZE, state == 0, state != 2);
    }
}
