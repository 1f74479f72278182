package io.dedisk.index;

import io.dedisk.DediskException.CorruptionException;
import io.dedisk.util.ByteSink;
import io.dedisk.util.ByteSource;
import io.dedisk.util.Check;
import io.dedisk.util.Crc;
import java.nio.ByteBuffer;
import java.util.UUID;

/**
 * The index header: file {@code <dir>/header}, written once when the index is created, never modified. It names
 * the index (the id stamped into every chapter and save file, so files from another index are refused) and fixes
 * its geometry, so reopening with another configuration is detected instead of misreading the chapters.
 *
 * Layout (little-endian, 80 bytes; at open a version other than {@link #VERSION} is refused with a
 * CorruptionException saying so, so an index of another dedisk is never misread):
 * <pre>
 *   0 u64 magic "DDSKIDXH"     8 u32 format version (2)    12 u32 flags (bit 0: sparse)
 *  16 u64+u64 index id         32 u64 memory budget (bytes) 40 u32 chapters N
 *  44 u32 dense chapters D     48 u32 records per chapter C 52 u32 page cache pages
 *  56 u32 sparse cache chapters 60 u32 fingerprint bits (13) 64 u32 hook rate (32)
 *  68 u64 created (epoch ms)   76 u32 CRC32C of [0, 76)
 * </pre>
 */
record IndexHeader(UUID indexId, Geometry geometry, long createdMillis) {
    static final String FILE = "header";
    static final long MAGIC = 0x4858444948534444L; // "DDSKIDXH" little-endian
    /**
     * The index format: one number for every file of an index (header, chapters, save, open chapter checkpoint).
     * 2: compact save file, open chapter checkpoint files. Other versions are refused, not migrated.
     */
    static final int VERSION = 2;
    static final int SIZE = 80;

    byte[] encode() {
        ByteSink s = new ByteSink(SIZE);
        s.putLong(MAGIC).putInt(VERSION).putInt(geometry.sparse() ? 1 : 0)
                .putLong(indexId.getMostSignificantBits()).putLong(indexId.getLeastSignificantBits())
                .putLong(geometry.memoryBytes()).putInt(geometry.chapters()).putInt(geometry.denseChapters())
                .putInt(geometry.chapterRecords()).putInt(geometry.pageCachePages()).putInt(geometry.sparseCacheChapters())
                .putInt(VolumeIndex.FP_BITS).putInt(Geometry.HOOK_RATE).putLong(createdMillis);
        s.putInt(Crc.of(s.view()));
        byte[] out = s.toByteArray();
        Check.that(out.length == SIZE, "index header encodes to %d bytes", out.length);
        return out;
    }

    static IndexHeader decode(byte[] untrusted, String what) {
        ByteSource src = new ByteSource(ByteBuffer.wrap(untrusted), what);
        src.expect(untrusted.length == SIZE, "expected %d bytes, found %d", SIZE, untrusted.length);
        long magic = src.getLong();
        src.expect(magic == MAGIC, "magic expected %016x (DDSKIDXH), found %016x (not an index header)", MAGIC, magic);
        int computed = Crc.of(untrusted, 0, SIZE - 4);
        int stored = ByteBuffer.wrap(untrusted).order(java.nio.ByteOrder.LITTLE_ENDIAN).getInt(SIZE - 4);
        src.expect(stored == computed, "CRC32C expected %08x, found %08x", computed, stored);
        int version = src.getInt();
        src.expect(version == VERSION, "index format version expected %d (the only one this dedisk reads), found %d: an index of another"
                + " dedisk version; delete the index directory to start an empty index (it holds advice only, no data is lost)", VERSION, version);
        int flags = src.getInt();
        src.expect((flags & ~1) == 0, "flags expected 0 or 1, found %x", flags);
        UUID id = new UUID(src.getLong(), src.getLong());
        long memory = src.getLong();
        int chapters = src.getInt(), dense = src.getInt(), records = src.getInt(), pages = src.getInt(), cache = src.getInt();
        int fpBits = src.getInt(), hookRate = src.getInt();
        src.expect(fpBits == VolumeIndex.FP_BITS && hookRate == Geometry.HOOK_RATE,
                "fingerprint bits and hook rate expected %d and %d (this dedisk's), found %d and %d", VolumeIndex.FP_BITS, Geometry.HOOK_RATE, fpBits, hookRate);
        long created = src.getLong();
        String problem = Geometry.problem(flags == 1, chapters, dense, records, pages, cache, memory);
        if (problem != null) throw new CorruptionException(what + ": geometry expected possible, found " + problem);
        return new IndexHeader(id, new Geometry(flags == 1, chapters, dense, records, pages, cache, memory), created);
    }
}
