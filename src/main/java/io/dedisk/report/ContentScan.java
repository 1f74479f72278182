package io.dedisk.report;

import io.dedisk.DediskException;
import io.dedisk.index.BlockName;
import io.dedisk.pool.ChunkCodec;
import io.dedisk.pool.Pool;
import io.dedisk.pool.VolumeDevice;
import io.dedisk.pool.VolumeProvider;
import io.dedisk.util.Check;
import java.nio.ByteBuffer;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * `dedisk report --scan`: reads every stored block of every volume through the public block-device view
 * (blockStatus skips holes and zero blocks, so only mapped blocks are read) and names each by its SHA-256,
 * which is what dedisk dedups on. From that it derives what the stats alone cannot give:
 * <ul>
 * <li>the distribution of references per distinct content across the pool, bucketed by powers of two — equal
 *     to the chunk reference-count histogram whenever the index found every duplicate (always with the exact
 *     index; a window index may store an old duplicate twice, which the scan counts as one content);</li>
 * <li>per volume: mapped blocks, distinct contents and their LZ4 stored size, hence the volume's own dedup
 *     ratio (mapped / distinct) and compression ratio (distinct x 4 KiB / stored).</li>
 * </ul>
 * Cost: one read of all stored data, and memory for one name per distinct content (~100 B each) plus one per
 * distinct content per volume; the reads count in the pool's blocksRead. Threads: the caller's only.
 */
public final class ContentScan {
    private static final int READ_BYTES = 1 << 20;

    /** One volume's figures. */
    public record VolumeScan(String name, long mappedBlocks, long distinctBlocks, long storedBytes) {
        public double dedupRatio() { return distinctBlocks == 0 ? 1.0 : (double) mappedBlocks / distinctBlocks; }
        public double compressionRatio() { return storedBytes == 0 ? 1.0 : (double) distinctBlocks * Pool.BLOCK_SIZE / storedBytes; }
    }

    /** {@code refcountHistogram[i]}: distinct contents referenced by 2^i ≤ n < 2^(i+1) blocks. */
    public record Result(long[] refcountHistogram, List<VolumeScan> volumes, long distinctBlocks, long mappedBlocks, long unreadableBlocks) {}

    private ContentScan() {}

    public static Result run(VolumeProvider pool) {
        Map<BlockName, long[]> refs = new HashMap<>();
        Map<String, VolumeScan> volumes = new LinkedHashMap<>();
        byte[] block = new byte[Pool.BLOCK_SIZE];
        long mappedTotal = 0, unreadable = 0;
        for (String name : pool.volumeNames()) {
            VolumeDevice v = pool.volume(name).orElse(null);
            if (v == null) continue; // deleted while we scanned
            Set<BlockName> distinct = new HashSet<>();
            long mapped = 0, stored = 0;
            ByteBuffer buf = ByteBuffer.allocate(READ_BYTES);
            long pos = 0;
            while (pos < v.size()) {
                List<VolumeDevice.Extent> extents = v.blockStatus(pos, Math.min(v.size() - pos, 1L << 30));
                Check.that(!extents.isEmpty(), "blockStatus(%d) of %s returned no extent", pos, name);
                for (VolumeDevice.Extent e : extents) {
                    Check.that(e.length() > 0 && e.length() % Pool.BLOCK_SIZE == 0, "extent of %d bytes in %s", e.length(), name);
                    if (!e.zero() && !e.hole()) {
                        for (long off = pos; off < pos + e.length(); off += READ_BYTES) {
                            int n = (int) Math.min(READ_BYTES, pos + e.length() - off);
                            boolean whole = read(v, off, buf, n);
                            for (int b = 0; b < n; b += Pool.BLOCK_SIZE) {
                                if (!whole && !read(v, off + b, buf.clear(), Pool.BLOCK_SIZE)) { // corrupt: not data
                                    unreadable++;
                                    continue;
                                }
                                System.arraycopy(buf.array(), whole ? b : 0, block, 0, Pool.BLOCK_SIZE);
                                BlockName id = BlockName.of(block, 0, Pool.BLOCK_SIZE);
                                mapped++;
                                refs.computeIfAbsent(id, k -> new long[1])[0]++;
                                if (distinct.add(id)) stored += ChunkCodec.storedLength(block, 0);
                            }
                        }
                    }
                    pos += e.length();
                }
            }
            mappedTotal += mapped;
            volumes.put(name, new VolumeScan(name, mapped, distinct.size(), stored));
        }
        long[] histogram = new long[64];
        int top = 0;
        for (long[] c : refs.values()) {
            int bucket = 63 - Long.numberOfLeadingZeros(c[0]);
            histogram[bucket]++;
            top = Math.max(top, bucket + 1);
        }
        long[] trimmed = java.util.Arrays.copyOf(histogram, top);
        long sum = 0;
        for (long c : trimmed) sum += c;
        Check.that(sum == refs.size(), "refcount histogram counts %d contents, %d seen", sum, refs.size());
        return new Result(trimmed, List.copyOf(volumes.values()), refs.size(), mappedTotal, unreadable);
    }

    /** Reads n bytes at off into buf; false when the device refuses them as corrupt (checked, never served). */
    private static boolean read(VolumeDevice v, long off, ByteBuffer buf, int n) {
        buf.clear().limit(n);
        try {
            v.read(off, buf);
        } catch (DediskException.CorruptionException e) {
            return false;
        }
        Check.that(!buf.hasRemaining(), "short read of %s at %d", v.name(), off);
        return true;
    }
}
