package io.dedisk.pool;

import io.dedisk.DediskException.CorruptionException;
import io.dedisk.util.Check;
import net.jpountz.lz4.LZ4Compressor;
import net.jpountz.lz4.LZ4Exception;
import net.jpountz.lz4.LZ4Factory;
import net.jpountz.lz4.LZ4SafeDecompressor;

/**
 * Turns a metadata page's 8192-byte body into the bytes its PAGE record stores, and back (docs/format.md,
 * "Metadata pages"). Encoding 1: the body's byte planes, then LZ4. A page is an array of fixed-size entries (8 bytes
 * in a block-map leaf, 16 in an interior page, 24 in a chunk-table leaf) whose high bytes are mostly alike (chunk
 * ids and addresses far below 2^64, counts of 1, flags), so plane j holds byte j of every entry, then the bytes
 * left over past the last whole entry; LZ4 then finds the long runs a plain LZ4 of the entries cannot (measured on
 * the benchmark images' pages: map leaves 14.8x vs 2.1x, chunk leaves 3.0x vs 1.6x; docs/decisions.md). A body
 * that does not get smaller is stored raw (encoding 0).
 *
 * The decoder trusts nothing: its caller has verified the record's CRC32C, and it still checks that exactly one
 * body comes out, so a damaged or hostile record is a {@link CorruptionException}, never a page.
 *
 * Threads: stateless and thread-safe (the LZ4 instances are thread-safe).
 */
final class PageCodec {
    static final int RAW = 0, PLANES_LZ4 = 1;

    private static final LZ4Factory FACTORY = LZ4Factory.fastestInstance();
    private static final LZ4Compressor COMPRESSOR = FACTORY.fastCompressor();
    private static final LZ4SafeDecompressor DECOMPRESSOR = FACTORY.safeDecompressor();
    /** The most an encoded body may take: a body that does not shrink is stored raw. */
    static final int MAX_STORED = MetaPage.BODY;

    private PageCodec() {}

    /** An encoded body: {@code length} bytes of {@code bytes}, stored with {@code encoding}. */
    record Encoded(int encoding, byte[] bytes, int length) {}

    /** Entry size of a page kind: the stride of its byte planes. */
    static int stride(int kind) {
        return switch (kind) {
            case MetaPage.KIND_MAP_LEAF -> 8;
            case MetaPage.KIND_INTERIOR -> MetaPage.CHILD_BYTES;
            case MetaPage.KIND_CHUNK_LEAF -> ChunkTable.ENTRY;
            default -> throw new IllegalArgumentException("page kind " + kind);
        };
    }

    static Encoded encode(int kind, byte[] body) {
        Check.that(body.length == MetaPage.BODY, "page body of %d bytes", body.length);
        byte[] planes = transpose(body, stride(kind));
        byte[] out = new byte[COMPRESSOR.maxCompressedLength(MetaPage.BODY)];
        int n = COMPRESSOR.compress(planes, 0, planes.length, out, 0, out.length);
        if (n >= MAX_STORED) return new Encoded(RAW, body, MetaPage.BODY);
        return new Encoded(PLANES_LZ4, out, n);
    }

    /** The body from {@code length} stored bytes at {@code off}; {@code where} names the page for errors. */
    static byte[] decode(int kind, int encoding, byte[] stored, int off, int length, String where) {
        if (encoding == RAW) {
            if (length != MetaPage.BODY) throw new CorruptionException(where + ": raw page body of " + length + " bytes, expected " + MetaPage.BODY);
            return java.util.Arrays.copyOfRange(stored, off, off + length);
        }
        if (encoding != PLANES_LZ4 || length <= 0 || length >= MAX_STORED) {
            throw new CorruptionException(where + ": page encoding " + encoding + " with " + length + " stored bytes (expected 0 with "
                    + MetaPage.BODY + ", or 1 with fewer)");
        }
        byte[] planes = new byte[MetaPage.BODY];
        int n;
        try {
            n = DECOMPRESSOR.decompress(stored, off, length, planes, 0, MetaPage.BODY);
        } catch (LZ4Exception e) {
            throw new CorruptionException(where + ": page body does not decompress (" + e.getMessage() + ")");
        }
        if (n != MetaPage.BODY) throw new CorruptionException(where + ": page body decompresses to " + n + " bytes, expected " + MetaPage.BODY);
        return untranspose(planes, stride(kind));
    }

    /** Byte j of entry i goes to j * entries + i; the bytes past the last whole entry stay at the end. */
    static byte[] transpose(byte[] body, int stride) {
        int entries = body.length / stride;
        byte[] out = new byte[body.length];
        for (int i = 0; i < entries; i++) {
            int from = i * stride;
            for (int j = 0; j < stride; j++) out[j * entries + i] = body[from + j];
        }
        System.arraycopy(body, entries * stride, out, entries * stride, body.length - entries * stride);
        return out;
    }

    static byte[] untranspose(byte[] planes, int stride) {
        int entries = planes.length / stride;
        byte[] out = new byte[planes.length];
        for (int i = 0; i < entries; i++) {
            int to = i * stride;
            for (int j = 0; j < stride; j++) out[to + j] = planes[j * entries + i];
        }
        System.arraycopy(planes, entries * stride, out, entries * stride, planes.length - entries * stride);
        return out;
    }
}
