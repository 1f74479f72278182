package io.dedisk.pool;

import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.store.LocalFs;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.UUID;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * docs/format.md describes the bytes the code writes: this test parses real pool files with the offsets the doc
 * gives, using nothing of the pool's own decoders, and checks what it finds against what was written.
 */
class FormatTest {
    @TempDir Path dir;

    static int crc(byte[] b, int off, int len) {
        CRC32C c = new CRC32C();
        c.update(b, off, len);
        return (int) c.getValue();
    }

    record Rec(long seq, int offset, int type, int length, int covered, long lsn, int crc, ByteBuffer payload) {}

    @Test
    void theDocumentedLayoutIsWhatThePoolWrites() throws Exception {
        Pool.create(new LocalFs(dir), new Pool.Options(1 << 20, 1 << 20, 0, false));
        byte[] random = new byte[300 * 4096];
        new Random(1).nextBytes(random);
        try (Pool p = Pool.open(new LocalFs(dir))) {
            p.createVolume("vol-a", 1024L * 4096);
            VolumeDevice v = p.volume("vol-a").orElseThrow();
            v.write(0, ByteBuffer.wrap(random), false);               // 300 new chunks, several segments
            v.write(400L * 4096, ByteBuffer.wrap(random, 0, 4096), false); // a duplicate
            v.writeZeroes(500L * 4096, 8 * 4096, false, false);        // 8 ZERO blocks
            p.checkpoint();
            v.write(600L * 4096, ByteBuffer.wrap(random, 4096, 4096), true);
        } // clean close: a second checkpoint

        // Superblock.
        ByteBuffer sb = ByteBuffer.wrap(Files.readAllBytes(dir.resolve("superblock"))).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(64, sb.capacity());
        assertEquals("DDSKSUPR", new String(sb.array(), 0, 8, StandardCharsets.US_ASCII));
        assertEquals(3, sb.getInt(8));
        assertEquals(4096, sb.getInt(12));
        UUID pool = new UUID(sb.getLong(16), sb.getLong(24));
        assertEquals(1 << 20, sb.getInt(40));
        assertEquals(crc(sb.array(), 0, 60), sb.getInt(60));

        // Manifest.
        ByteBuffer m = ByteBuffer.wrap(Files.readAllBytes(dir.resolve("manifest"))).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(112, m.capacity());
        assertEquals("DDSKMANI", new String(m.array(), 0, 8, StandardCharsets.US_ASCII));
        assertEquals(3, m.getInt(8));
        assertEquals(0, m.getInt(12), "a directory pool is never marked owned: its OS lock is the ownership");
        assertEquals(pool, new UUID(m.getLong(16), m.getLong(24)));
        assertEquals(new UUID(0, 0), new UUID(m.getLong(72), m.getLong(80)), "no owner id on a directory pool");
        assertEquals(0, m.getLong(88), "no takeover: fence segment 0");
        assertEquals(0, m.getLong(96), "no takeover: time 0");
        assertEquals(0, m.getInt(104));
        assertEquals(crc(m.array(), 0, 108), m.getInt(108));
        long newest = m.getLong(40), previous = m.getLong(56);
        assertTrue(newest != 0 && previous != 0 && newest > previous, "two roots, the newest later in the log");

        // Every segment: records, LSN chain, seals.
        assertTrue(segmentCount(dir) >= 2, "several segments");
        List<Rec> records = records(dir, pool);

        // WRITE entries: 300 NEW, then one EXISTING pointing at the first chunk; bodies CRC'd by their entries.
        Map<Integer, Integer> kinds = new HashMap<>();
        for (Rec r : records) {
            if (r.type() != 6) continue;
            ByteBuffer p = r.payload();
            int count = p.getInt(12);
            int at = 16;
            int body = r.covered();
            for (int e = 0; e < count; e++) {
                int kind = p.get(at) & 0xff;
                kinds.merge(kind, 1, Integer::sum);
                at += 1;
                if (kind == 2) at += 8;
                if (kind == 3) {
                    int len = p.getShort(at + 9) & 0xffff;
                    int bodyCrc = p.getInt(at + 11);
                    assertEquals(bodyCrc, crc(p.array(), p.arrayOffset() + body, len), "NEW body CRC32C");
                    body += len;
                    at += 15;
                }
            }
            assertEquals(r.covered(), at, "entries end where the CRC's cover ends");
            assertEquals(r.length(), body, "bodies fill the payload");
        }
        assertEquals(300, kinds.get(3), "300 random blocks are 300 new chunks");
        assertEquals(2, kinds.get(2), "two dedup hits: LBA 400 and the FUA write at LBA 600");
        assertTrue(records.stream().anyMatch(r -> r.type() == 7 && r.payload().getLong(12) == 8 && r.payload().get(20) == 1), "MAP_RANGE of 8 ZERO blocks");

        // The newest ROOT: where the manifest says, with its length and CRC; the volume as written.
        Rec root = records.stream().filter(r -> ((r.seq() << 32) | r.offset()) == newest).findFirst().orElseThrow();
        assertEquals(9, root.type());
        assertEquals(m.getInt(48), 28 + root.length());
        ByteBuffer rp = root.payload();
        int at = 8 + 8 + 4;                 // number, next chunk id, next volume id
        at += 8 + 4 + 4 + 1 + 8 + 8;        // chunk tree root (address, CRC, length), height, live chunks, live bytes
        assertEquals(300, rp.getLong(at - 16), "live chunks (duplicates are not new ones)");
        assertEquals(298, rp.getLong(at), "histogram bucket 0: chunks with one reference");
        assertEquals(2, rp.getLong(at + 8), "bucket 1: the two chunks with two references");
        at += 32 * 8;
        assertEquals(1, rp.getInt(at));
        at += 4;
        assertEquals(1024L * 4096, rp.getLong(at + 4));
        assertEquals(302, rp.getLong(at + 12), "mapped blocks");
        assertEquals(8, rp.getLong(at + 20), "zero blocks");
        long volRoot = rp.getLong(at + 28);
        int volRootCrc = rp.getInt(at + 36), volRootLength = rp.getInt(at + 40);
        assertEquals(0, rp.get(at + 44), "height 0");
        int nameLen = rp.getShort(at + 45) & 0xffff;
        assertEquals("vol-a", new String(rp.array(), rp.arrayOffset() + at + 47, nameLen, StandardCharsets.UTF_8));
        at += 47 + nameLen;
        int usage = rp.getInt(at);
        at += 4 + usage * 16;
        assertEquals(1, rp.getInt(at), "one lineage entry per volume");
        assertEquals(rp.getInt(at - 4 - usage * 16 - 47 - nameLen), rp.getInt(at + 4), "an origin volume is its own family");
        assertEquals(0, rp.getInt(at + 8), "no parent");
        assertEquals(0, rp.get(at + 12), "not a snapshot");
        at += 4 + 9;
        assertEquals(root.length(), at, "the root ends after its lineage table");

        // The volume's root page: a block-map leaf (1024 LBAs need one leaf: height 0) naming chunk ids, its
        // record of the length and CRC the root gives, its body in byte planes, LZ4-compressed.
        Rec leaf = records.stream().filter(r -> ((r.seq() << 32) | r.offset()) == volRoot).findFirst().orElseThrow();
        assertEquals(8, leaf.type());
        assertEquals(volRootLength, 28 + leaf.length(), "the root holds the page record's length");
        assertEquals(volRootCrc, leaf.crc(), "and its CRC");
        assertTrue(leaf.length() < 24 + 8192, "the leaf is stored encoded: " + leaf.length() + " payload bytes");
        ByteBuffer lp = leaf.payload();
        assertEquals(1, lp.get(0), "block-map leaf");
        assertEquals(0, lp.get(1), "level 0");
        assertEquals(1, lp.get(2), "encoding 1: byte planes + LZ4");
        assertEquals(0, lp.get(3));
        assertEquals(0, lp.getLong(8), "index 0");
        ByteBuffer body = ByteBuffer.wrap(decodePlanes(lp, 8)).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(body.getLong(0), body.getLong(400 * 8), "LBA 400 shares LBA 0's chunk");
        assertTrue(body.getLong(0) >= 2);
        assertEquals(1, body.getLong(500 * 8), "ZERO");
        assertEquals(0, body.getLong(700 * 8), "UNMAPPED");
    }

    /**
     * The 8192-byte body of an encoding-1 PAGE payload, as docs/format.md gives it: an LZ4 block of the body's byte
     * planes (plane j = byte j of each {@code stride}-byte entry, then the bytes past the last whole entry).
     */
    static byte[] decodePlanes(ByteBuffer payload, int stride) {
        byte[] stored = new byte[payload.limit() - 24];
        payload.get(24, stored);
        byte[] planes = new byte[8192];
        assertEquals(8192, net.jpountz.lz4.LZ4Factory.safeInstance().safeDecompressor().decompress(stored, 0, stored.length, planes, 0, 8192));
        int entries = 8192 / stride;
        byte[] body = new byte[8192];
        for (int i = 0; i < entries; i++) for (int j = 0; j < stride; j++) body[i * stride + j] = planes[j * entries + i];
        System.arraycopy(planes, entries * stride, body, entries * stride, 8192 - entries * stride);
        return body;
    }

    static int segmentCount(Path dir) throws java.io.IOException {
        try (var s = Files.list(dir.resolve("segments"))) { return (int) s.count(); }
    }

    /** Every record of every segment, parsed with the documented offsets; checks headers, CRCs, the LSN chain and seals. */
    static List<Rec> records(Path dir, UUID pool) throws java.io.IOException {
        List<Rec> records = new ArrayList<>();
        List<Path> segs;
        try (var s = Files.list(dir.resolve("segments"))) { segs = s.sorted().toList(); }
        long lsn = -1;
        for (int i = 0; i < segs.size(); i++) {
            String name = segs.get(i).getFileName().toString();
            assertTrue(name.matches("[0-9a-f]{16}\\.seg"), name);
            long seq = Long.parseLong(name.substring(0, 16), 16);
            byte[] data = Files.readAllBytes(segs.get(i));
            ByteBuffer b = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
            int off = 0;
            boolean sealed = false;
            while (off + 28 <= data.length) {
                assertEquals(0x43455244, b.getInt(off), "record magic at " + name + ":" + off);
                int type = b.get(off + 4) & 0xff;
                assertEquals(3, b.get(off + 5), "record version");
                assertEquals(0, b.getShort(off + 6));
                int length = b.getInt(off + 8);
                int covered = b.getInt(off + 12);
                long recLsn = b.getLong(off + 16);
                CRC32C c = new CRC32C();
                c.update(data, off + 4, 20);
                c.update(data, off + 28, covered);
                assertEquals((int) c.getValue(), b.getInt(off + 24), "record CRC at " + name + ":" + off);
                if (lsn >= 0) assertEquals(lsn, recLsn, "LSN chain");
                lsn = recLsn + 1;
                ByteBuffer payload = ByteBuffer.wrap(data, off + 28, length).slice().order(ByteOrder.LITTLE_ENDIAN);
                if (off == 0) {
                    assertEquals(1, type, "first record is SEGMENT_HEADER");
                    assertEquals(pool, new UUID(payload.getLong(0), payload.getLong(8)));
                    assertEquals(seq, payload.getLong(16));
                }
                records.add(new Rec(seq, off, type, length, covered, recLsn, b.getInt(off + 24), payload));
                off += 28 + length;
                if (type == 2) {
                    assertEquals(seq + 1, payload.getLong(0), "SEAL names the next segment");
                    sealed = true;
                    break;
                }
            }
            if (i < segs.size() - 1) assertTrue(sealed && off == data.length, name + " ends with its SEAL");
        }

        return records;
    }

    @Test
    void volumeRenameRecordIsAsDocumented() throws Exception {
        Pool.create(new LocalFs(dir), new Pool.Options(1 << 20, 1 << 20, 0, false));
        UUID pool;
        try (Pool p = Pool.open(new LocalFs(dir))) {
            pool = p.poolId();
            p.createVolume("golden.importing", 16 * 4096);
            p.renameVolume("golden.importing", "golden");
            // Parsed while open (the rename is durable when it returns) so no checkpoint has freed its segment yet.
            Rec rename = records(dir, pool).stream().filter(r -> r.type() == 11).findFirst().orElseThrow();
            ByteBuffer b = rename.payload();
            assertEquals(1, b.getInt(0), "volume id");
            int fromLen = b.getShort(4) & 0xffff;
            assertEquals("golden.importing", new String(b.array(), b.arrayOffset() + 6, fromLen, StandardCharsets.UTF_8));
            int toLen = b.getShort(6 + fromLen) & 0xffff;
            assertEquals("golden", new String(b.array(), b.arrayOffset() + 8 + fromLen, toLen, StandardCharsets.UTF_8));
            assertEquals(rename.length(), 8 + fromLen + toLen, "the payload ends after the new name");
            assertEquals(rename.length(), rename.covered(), "the CRC covers the whole payload");
        }
    }

    /** Records 12-14, the root's lineage table and the family id in the pages of a snapshot's clone, as docs/format.md gives them. */
    @Test
    void snapshotsClonesAndRollbacksAreAsDocumented() throws Exception {
        Pool.create(new LocalFs(dir), new Pool.Options(1 << 20, 64 << 20, 0, false));
        byte[] data = new byte[8 * 4096];
        new Random(2).nextBytes(data);
        try (Pool p = Pool.open(new LocalFs(dir))) {
            p.createVolume("gold", 1024L * 4096);
            p.volume("gold").orElseThrow().write(0, ByteBuffer.wrap(data), false);
            p.createSnapshot("gold", "v1");
            p.cloneSnapshot("gold@v1", "vm");
            p.volume("vm").orElseThrow().write(0, ByteBuffer.wrap(data, 4096, 4096), false); // forks the clone's leaf
            p.volume("gold").orElseThrow().write(4096, ByteBuffer.wrap(data, 0, 4096), false);
            p.rollback("gold@v1");
        }
        ByteBuffer sb = ByteBuffer.wrap(Files.readAllBytes(dir.resolve("superblock"))).order(ByteOrder.LITTLE_ENDIAN);
        List<Rec> records = records(dir, new UUID(sb.getLong(16), sb.getLong(24)));
        Rec snap = records.stream().filter(r -> r.type() == 12).findFirst().orElseThrow();
        assertEquals(2, snap.payload().getInt(0), "new volume id");
        assertEquals(1, snap.payload().getInt(4), "source: gold");
        assertEquals("gold@v1", new String(snap.payload().array(), snap.payload().arrayOffset() + 10, snap.payload().getShort(8), StandardCharsets.UTF_8));
        Rec clone = records.stream().filter(r -> r.type() == 13).findFirst().orElseThrow();
        assertEquals(3, clone.payload().getInt(0));
        assertEquals(2, clone.payload().getInt(4), "source: the snapshot");
        assertEquals("vm", new String(clone.payload().array(), clone.payload().arrayOffset() + 10, clone.payload().getShort(8), StandardCharsets.UTF_8));
        Rec rollback = records.stream().filter(r -> r.type() == 14).findFirst().orElseThrow();
        assertEquals(8, rollback.length());
        assertEquals(1, rollback.payload().getInt(0), "gold");
        assertEquals(2, rollback.payload().getInt(4), "to gold@v1");

        // Every block-map page names the family (gold's id), whichever member wrote it: the clone's forked leaf too.
        List<Rec> leaves = records.stream().filter(r -> r.type() == 8 && r.payload().get(0) == 1).toList();
        assertTrue(leaves.size() >= 2, "gold's leaf and the clone's forked copy");
        for (Rec l : leaves) assertEquals(1, l.payload().getInt(4), "family id in the page header");

        // The newest root's lineage table: one entry per volume, in volume order.
        ByteBuffer m = ByteBuffer.wrap(Files.readAllBytes(dir.resolve("manifest"))).order(ByteOrder.LITTLE_ENDIAN);
        long newest = m.getLong(40);
        ByteBuffer rp = records.stream().filter(r -> ((r.seq() << 32) | r.offset()) == newest).findFirst().orElseThrow().payload();
        int at = 8 + 8 + 4 + 8 + 4 + 4 + 1 + 8 + 8 + 32 * 8;
        int volumes = rp.getInt(at);
        assertEquals(3, volumes);
        at += 4;
        for (int i = 0; i < volumes; i++) at += 4 + 8 + 8 + 8 + 8 + 4 + 4 + 1 + 2 + (rp.getShort(at + 45) & 0xffff);
        at += 4 + rp.getInt(at) * 16;
        assertEquals(3, rp.getInt(at), "lineage entries");
        int[][] expected = {{1, 0, 0}, {1, 1, 1}, {1, 2, 0}}; // gold; gold@v1: of gold, snapshot; vm: of gold@v1
        for (int i = 0; i < 3; i++) {
            int e = at + 4 + i * 9;
            assertArrayEquals(expected[i], new int[] {rp.getInt(e), rp.getInt(e + 4), rp.get(e + 8)}, "lineage of volume " + (i + 1));
        }
        assertEquals(rp.limit(), at + 4 + 3 * 9, "the root ends after its lineage table");
    }

    @Test
    void theDocumentedBucketLayoutIsWhatABucketPoolWrites() throws Exception {
        io.dedisk.sim.SimObjectStore bucket = new io.dedisk.sim.SimObjectStore(1);
        io.dedisk.sim.SimFs cacheA = new io.dedisk.sim.SimFs(1), cacheB = new io.dedisk.sim.SimFs(2);
        java.util.function.Function<io.dedisk.sim.SimFs, io.dedisk.store.ObjectStorage> at = cache -> new io.dedisk.store.ObjectStorage(bucket,
                new io.dedisk.store.ObjectStorage.CacheDirs() {
                    @Override public io.dedisk.store.Fs cacheFor(UUID id) { return cache; }
                    @Override public String describe(UUID id) { return "cache"; }
                }, io.dedisk.store.ObjectBackend.Options.defaults().asSimulated(), "sim://bucket");
        Pool.create(at.apply(cacheA), new Pool.Options(1 << 20, 1 << 20, 0, false));
        byte[] random = new byte[300 * 4096];
        new Random(2).nextBytes(random);
        try (Pool p = Pool.open(at.apply(cacheA), Pool.OpenOptions.defaults().withBackground(Runnable::run))) {
            p.createVolume("v", 1024L * 4096);
            p.volume("v").orElseThrow().write(0, ByteBuffer.wrap(random), false);
        } // a clean stop uploads everything
        try (Pool p = Pool.open(at.apply(cacheB), Pool.OpenOptions.defaults().withBackground(Runnable::run).withReadOnly())) {
            ByteBuffer back = ByteBuffer.allocate(random.length);
            p.volume("v").orElseThrow().read(0, back);
            assertArrayEquals(random, back.array(), "read back through the read cache of another host");
        }
        java.util.SortedMap<String, byte[]> objects = bucket.snapshot();
        assertEquals(64, objects.get("superblock").length);
        List<String> segs = objects.keySet().stream().filter(k -> k.startsWith("segments/")).toList();
        assertTrue(segs.size() >= 2 && segs.stream().allMatch(k -> k.matches("segments/[0-9a-f]{16}\\.seg")), segs.toString());
        for (String k : segs) assertEquals(0x43455244, ByteBuffer.wrap(objects.get(k)).order(ByteOrder.LITTLE_ENDIAN).getInt(0), k + " starts with a record");

        // Cache identity (host A's directory).
        ByteBuffer id = ByteBuffer.wrap(cacheA.readAll("identity")).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(64, id.capacity());
        assertEquals("DDSKCACH", new String(id.array(), 0, 8, StandardCharsets.US_ASCII));
        assertEquals(1, id.getInt(8));
        UUID pool = new UUID(id.getLong(16), id.getLong(24));
        UUID cacheId = new UUID(id.getLong(32), id.getLong(40));
        assertEquals(crc(id.array(), 0, 60), id.getInt(60));
        ByteBuffer sb = ByteBuffer.wrap(objects.get("superblock")).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(pool, new UUID(sb.getLong(16), sb.getLong(24)));

        // The bucket's manifest: closed cleanly by host A, which owned epoch 1.
        ByteBuffer m = ByteBuffer.wrap(objects.get("manifest")).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(112, m.capacity());
        assertEquals(3, m.getInt(8));
        assertEquals(0, m.getInt(12), "not owned: closed cleanly");
        assertEquals(1, m.getLong(32), "the first writer's epoch");
        assertEquals(cacheId, new UUID(m.getLong(72), m.getLong(80)), "owner: host A's cache id");
        assertEquals(crc(m.array(), 0, 108), m.getInt(108));
        assertArrayEquals(objects.get("manifest"), cacheA.readAll("manifest"), "the cache's manifest is the bucket's once uploaded");
        assertTrue(cacheA.list("writeback").isEmpty(), "nothing left to upload");

        // Read cache blocks: host A filled none (its reads were local); the read-only host B wrote none.
        assertTrue(cacheB.list("readcache").isEmpty() && !cacheB.exists("identity"), "a read-only open writes nothing to its cache");
        try (Pool p = Pool.open(at.apply(cacheA), Pool.OpenOptions.defaults().withBackground(Runnable::run))) {
            p.volume("v").orElseThrow().read(0, ByteBuffer.allocate(random.length));
        }
        List<String> blocks = cacheA.list("readcache");
        assertFalse(blocks.isEmpty(), "reads from the bucket fill the read cache");
        String name = blocks.get(0);
        assertTrue(name.matches("[0-9a-f]{16}-[0-9a-f]{8}\\.blk"), name);
        ByteBuffer blk = ByteBuffer.wrap(cacheA.readAll("readcache/" + name)).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals("DDSKRCAC", new String(blk.array(), 0, 8, StandardCharsets.US_ASCII));
        assertEquals(1, blk.getInt(8));
        int length = blk.getInt(12);
        assertEquals(4096 + length, blk.capacity());
        assertEquals(pool, new UUID(blk.getLong(16), blk.getLong(24)));
        long seq = blk.getLong(32), index = blk.getLong(40);
        assertEquals(name, String.format("%016x-%08x.blk", seq, index));
        assertEquals(crc(blk.array(), 0, 1072), blk.getInt(1072));
        byte[] seg = objects.get(String.format("segments/%016x.seg", seq));
        for (int piece = 0; piece * 4096 < length; piece++) {
            int n = Math.min(4096, length - piece * 4096);
            assertEquals(crc(blk.array(), 4096 + piece * 4096, n), blk.getInt(48 + 4 * piece), "piece " + piece + " CRC32C");
        }
        assertArrayEquals(java.util.Arrays.copyOfRange(seg, (int) (index << 20), (int) (index << 20) + length),
                java.util.Arrays.copyOfRange(blk.array(), 4096, 4096 + length), "the block holds the segment's bytes at its index");
    }

    /** A pool of an older format version is refused as misuse, with the versions and the way out named, and is left as it was. */
    @Test
    void olderFormatVersionsAreRefusedWithTheWayOut() throws Exception {
        Pool.create(new LocalFs(dir), new Pool.Options(1 << 20, 1 << 20, 0, false));
        try (Pool p = Pool.open(new LocalFs(dir))) { p.createVolume("v", 1 << 20); }
        Path sbFile = dir.resolve("superblock");
        for (int version : new int[] {1, 2}) {
            byte[] sb = Files.readAllBytes(sbFile);
            ByteBuffer b = ByteBuffer.wrap(sb).order(ByteOrder.LITTLE_ENDIAN);
            b.putInt(8, version);
            b.putInt(60, crc(sb, 0, 60));
            Files.write(sbFile, sb);
            io.dedisk.DediskException.InvalidRequestException e = assertThrows(io.dedisk.DediskException.InvalidRequestException.class,
                    () -> Pool.open(new LocalFs(dir)).close());
            assertTrue(e.getMessage().contains("format version " + version) && e.getMessage().contains("reads version 3")
                    && e.getMessage().contains("copy them in"), e.getMessage());
            assertArrayEquals(sb, Files.readAllBytes(sbFile), "the refused pool's superblock is unchanged");
        }
    }
}
