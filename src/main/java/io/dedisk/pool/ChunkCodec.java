package io.dedisk.pool;

import io.dedisk.DediskException.CorruptionException;
import io.dedisk.util.Check;
import io.dedisk.util.Crc;
import net.jpountz.lz4.LZ4Compressor;
import net.jpountz.lz4.LZ4Exception;
import net.jpountz.lz4.LZ4Factory;
import net.jpountz.lz4.LZ4SafeDecompressor;

/**
 * Turns a 4 KiB block into the body stored for its chunk and back. Per-block LZ4 (VDO's unit): a block is kept
 * raw when LZ4 saves less than {@link #MIN_SAVING} bytes, because then the decode cost buys almost nothing.
 * The decoder trusts nothing: the caller verified the body's CRC32C, and the decoder still checks that exactly
 * one block comes out.
 *
 * Threads: stateless and thread-safe (the LZ4 instances are thread-safe).
 */
public final class ChunkCodec {
    public static final int RAW = 0;
    public static final int LZ4 = 1;
    /** LZ4 must save at least this much of a 4 KiB block to be used. */
    public static final int MIN_SAVING = 64;

    private static final LZ4Factory FACTORY = LZ4Factory.fastestInstance();
    private static final LZ4Compressor COMPRESSOR = FACTORY.fastCompressor();
    private static final LZ4SafeDecompressor DECOMPRESSOR = FACTORY.safeDecompressor();
    private static final int BOUND = COMPRESSOR.maxCompressedLength(Pool.BLOCK_SIZE);

    private ChunkCodec() {}

    /**
     * An encoded chunk body: {@code length} bytes of {@code bytes} from {@code off}, stored with {@code codec},
     * CRC32C {@code crc}. A RAW body is the caller's block itself, not a copy: valid while the caller's buffer is.
     */
    public record Encoded(int codec, byte[] bytes, int off, int length, int crc) {}

    /** A scratch array for {@link #encode}, reusable by one thread for any number of blocks. */
    static byte[] scratch() { return new byte[BOUND]; }

    /**
     * Encodes the block at block[off, off+4096), compressing into {@code scratch} (from {@link #scratch}); only an
     * LZ4 body that pays is copied out, in its own length.
     */
    public static Encoded encode(byte[] block, int off, byte[] scratch) {
        Check.that(scratch.length == BOUND, "scratch of %d bytes, expected %d", scratch.length, BOUND);
        int n = COMPRESSOR.compress(block, off, Pool.BLOCK_SIZE, scratch, 0, BOUND);
        if (n <= Pool.BLOCK_SIZE - MIN_SAVING) {
            return new Encoded(LZ4, java.util.Arrays.copyOf(scratch, n), 0, n, Crc.of(scratch, 0, n));
        }
        return new Encoded(RAW, block, off, Pool.BLOCK_SIZE, Crc.of(block, off, Pool.BLOCK_SIZE));
    }

    /** Length LZ4 would store for this block (RAW size when it does not pay): the ideal per-block LZ4 figure. */
    public static int storedLength(byte[] block, int off) {
        byte[] out = new byte[BOUND];
        int n = COMPRESSOR.compress(block, off, Pool.BLOCK_SIZE, out, 0, BOUND);
        return n <= Pool.BLOCK_SIZE - MIN_SAVING ? n : Pool.BLOCK_SIZE;
    }

    /** Decodes a verified body into dst[dstOff, dstOff+4096). {@code what} names the chunk for error messages. */
    public static void decode(int codec, byte[] body, int bodyOff, int length, byte[] dst, int dstOff, Object what) {
        switch (codec) {
            case RAW -> {
                if (length != Pool.BLOCK_SIZE) throw new CorruptionException(what + ": raw body of " + length + " bytes, expected " + Pool.BLOCK_SIZE);
                System.arraycopy(body, bodyOff, dst, dstOff, Pool.BLOCK_SIZE);
            }
            case LZ4 -> {
                int n;
                try {
                    n = DECOMPRESSOR.decompress(body, bodyOff, length, dst, dstOff, Pool.BLOCK_SIZE);
                } catch (LZ4Exception e) {
                    throw new CorruptionException(what + ": LZ4 body does not decode: " + e.getMessage(), e);
                }
                if (n != Pool.BLOCK_SIZE) throw new CorruptionException(what + ": LZ4 body decodes to " + n + " bytes, expected " + Pool.BLOCK_SIZE);
            }
            default -> throw new CorruptionException(what + ": unknown codec " + codec);
        }
    }

    static boolean isZero(byte[] block, int off) {
        Check.that(off + Pool.BLOCK_SIZE <= block.length, "block within buffer");
        return java.util.Arrays.mismatch(block, off, off + Pool.BLOCK_SIZE, ZEROS, 0, Pool.BLOCK_SIZE) < 0;
    }

    private static final byte[] ZEROS = new byte[Pool.BLOCK_SIZE];
}
