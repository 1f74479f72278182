package io.dedisk.index;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/**
 * The name of a 4 KiB block's content: its SHA-256, kept as four longs. SHA-256 is collision-proof, so two blocks
 * with the same name are equal and a hit can be shared without reading the candidate back (see
 * docs/decisions.md: "Block name"). Nobody can craft two blocks with one name to read another volume's data.
 */
public record BlockName(long a, long b, long c, long d) {
    public static final int BYTES = 32;

    private static final ThreadLocal<MessageDigest> SHA256 = ThreadLocal.withInitial(() -> {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JDK has no SHA-256", e);
        }
    });

    public static BlockName of(byte[] data, int off, int len) {
        MessageDigest md = SHA256.get();
        md.update(data, off, len);
        ByteBuffer h = ByteBuffer.wrap(md.digest()).order(ByteOrder.LITTLE_ENDIAN);
        return new BlockName(h.getLong(), h.getLong(), h.getLong(), h.getLong());
    }

    @Override
    public String toString() { return String.format("%016x%016x%016x%016x", a, b, c, d); }
}
