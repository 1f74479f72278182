package io.dedisk.util;

import java.nio.ByteBuffer;
import java.util.zip.CRC32C;

/** CRC32C (Castagnoli, hardware-accelerated by the JDK), the checksum of every on-disk object in dedisk. */
public final class Crc {
    private Crc() {}

    public static int of(byte[] data, int off, int len) {
        CRC32C c = new CRC32C();
        c.update(data, off, len);
        return (int) c.getValue();
    }

    /** CRC of the bytes between position and limit, without moving the buffer's position. */
    public static int of(ByteBuffer data) {
        CRC32C c = new CRC32C();
        c.update(data.duplicate());
        return (int) c.getValue();
    }
}
