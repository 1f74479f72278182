package io.dedisk.pool;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.dedisk.DediskException.CorruptionException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The page body codec: what it stores decodes to the page, it pays on real page shapes, and bad bytes are corruption. */
class PageCodecTest {
    private static final int[] KINDS = {MetaPage.KIND_MAP_LEAF, MetaPage.KIND_INTERIOR, MetaPage.KIND_CHUNK_LEAF};

    /** A block-map leaf as a sequential import writes it: runs of consecutive chunk ids, zeros and holes. */
    private static byte[] mapLeaf(Random r) {
        ByteBuffer b = ByteBuffer.allocate(MetaPage.BODY).order(ByteOrder.LITTLE_ENDIAN);
        long id = 2 + r.nextInt(1 << 24);
        for (int i = 0; i < 1024; i++) {
            int x = r.nextInt(10);
            b.putLong(i * 8, x == 0 ? 0 : x == 1 ? 1 : id++);
        }
        return b.array();
    }

    /** A chunk-table leaf: increasing locations, random CRCs, small counts. */
    private static byte[] chunkLeaf(Random r) {
        ByteBuffer b = ByteBuffer.allocate(MetaPage.BODY).order(ByteOrder.LITTLE_ENDIAN);
        long location = 7L << 32;
        for (int i = 0; i < 341; i++) {
            int length = 600 + r.nextInt(3497);
            b.putLong(i * 24, location).putShort(i * 24 + 8, (short) length).put(i * 24 + 10, (byte) 1).put(i * 24 + 11, (byte) 1)
                    .putInt(i * 24 + 12, r.nextInt()).putInt(i * 24 + 16, 1 + r.nextInt(3));
            location += length + 16;
        }
        return b.array();
    }

    @Test
    void encodedPagesDecodeToThemselvesAndRealShapesShrink() {
        Random r = new Random(1);
        for (int round = 0; round < 200; round++) {
            byte[] map = mapLeaf(r), chunk = chunkLeaf(r);
            PageCodec.Encoded m = PageCodec.encode(MetaPage.KIND_MAP_LEAF, map);
            PageCodec.Encoded c = PageCodec.encode(MetaPage.KIND_CHUNK_LEAF, chunk);
            assertEquals(PageCodec.PLANES_LZ4, m.encoding());
            assertTrue(m.length() < MetaPage.BODY / 3, "a map leaf of consecutive ids stores in " + m.length() + " bytes");
            assertTrue(c.length() < MetaPage.BODY * 3 / 4, "a chunk leaf stores in " + c.length() + " bytes");
            assertArrayEquals(map, PageCodec.decode(MetaPage.KIND_MAP_LEAF, m.encoding(), m.bytes(), 0, m.length(), "test"));
            assertArrayEquals(chunk, PageCodec.decode(MetaPage.KIND_CHUNK_LEAF, c.encoding(), c.bytes(), 0, c.length(), "test"));
        }
        for (int kind : KINDS) {
            byte[] empty = new byte[MetaPage.BODY];
            PageCodec.Encoded e = PageCodec.encode(kind, empty);
            assertTrue(e.length() < 100, "an empty page of kind " + kind + " stores in " + e.length() + " bytes");
            assertArrayEquals(empty, PageCodec.decode(kind, e.encoding(), e.bytes(), 0, e.length(), "test"));
        }
    }

    @Test
    void aBodyThatDoesNotShrinkIsStoredRaw() {
        byte[] noise = new byte[MetaPage.BODY];
        new Random(2).nextBytes(noise);
        for (int kind : KINDS) {
            PageCodec.Encoded e = PageCodec.encode(kind, noise);
            assertEquals(PageCodec.RAW, e.encoding());
            assertEquals(MetaPage.BODY, e.length());
            assertArrayEquals(noise, PageCodec.decode(kind, e.encoding(), e.bytes(), 0, e.length(), "test"));
        }
    }

    @Test
    void badStoredBytesAreCorruptionNeverAPage() {
        Random r = new Random(3);
        byte[] map = mapLeaf(r);
        PageCodec.Encoded e = PageCodec.encode(MetaPage.KIND_MAP_LEAF, map);
        byte[] stored = Arrays.copyOf(e.bytes(), e.length());
        assertThrows(CorruptionException.class, () -> PageCodec.decode(MetaPage.KIND_MAP_LEAF, 7, stored, 0, stored.length, "test"), "unknown encoding");
        assertThrows(CorruptionException.class, () -> PageCodec.decode(MetaPage.KIND_MAP_LEAF, PageCodec.RAW, stored, 0, stored.length, "test"), "raw of the wrong length");
        assertThrows(CorruptionException.class, () -> PageCodec.decode(MetaPage.KIND_MAP_LEAF, PageCodec.PLANES_LZ4, stored, 0, stored.length - 9, "test"), "truncated");
        // A stream that decodes to fewer bytes than a page: the planes of half a page.
        byte[] half = new byte[MetaPage.BODY / 2];
        byte[] out = new byte[net.jpountz.lz4.LZ4Factory.fastestInstance().fastCompressor().maxCompressedLength(half.length)];
        int n = net.jpountz.lz4.LZ4Factory.fastestInstance().fastCompressor().compress(half, 0, half.length, out, 0, out.length);
        CorruptionException short_ = assertThrows(CorruptionException.class, () -> PageCodec.decode(MetaPage.KIND_MAP_LEAF, PageCodec.PLANES_LZ4, out, 0, n, "leaf 9"));
        assertTrue(short_.getMessage().contains("leaf 9") && short_.getMessage().contains("expected 8192"), short_.getMessage());
        for (int i = 0; i < 200; i++) { // random damage: corruption or, rarely, some other page; never an exception of another kind
            byte[] bad = stored.clone();
            bad[r.nextInt(bad.length)] ^= (byte) (1 + r.nextInt(255));
            try {
                PageCodec.decode(MetaPage.KIND_MAP_LEAF, PageCodec.PLANES_LZ4, bad, 0, bad.length, "test");
            } catch (CorruptionException expected) {
                // what the record CRC would have caught first
            }
        }
    }

    @Test
    void planesAreTheDocumentedTransposition() {
        byte[] body = new byte[MetaPage.BODY];
        for (int i = 0; i < body.length; i++) body[i] = (byte) i;
        byte[] planes = PageCodec.transpose(body, 24);
        int entries = MetaPage.BODY / 24; // 341, then 8 trailing bytes
        assertEquals(body[0], planes[0]);
        assertEquals(body[24], planes[1], "plane 0 holds byte 0 of each entry");
        assertEquals(body[1], planes[entries], "plane 1 starts after 341 bytes");
        assertEquals(body[8191], planes[8191], "the trailing bytes stay at the end");
        assertArrayEquals(body, PageCodec.untranspose(planes, 24));
    }
}
