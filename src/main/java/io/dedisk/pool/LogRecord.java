package io.dedisk.pool;

import io.dedisk.util.Check;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The frame of every record in the log. A segment is a sequence of records; the first is SEGMENT_HEADER, a
 * sealed segment's last is SEAL. Records carry a log sequence number (LSN) that grows by one per record across
 * the whole log, so replay can tell a stale or misplaced record from the next one.
 *
 * Header (little-endian, 24 bytes), then {@code length} payload bytes:
 * <pre>
 *   0 u32 magic "DREC"   4 u8 type   5 u8 format version (1)   6 u16 reserved (0)
 *   8 u32 payload length  12 u64 LSN   20 u32 CRC32C of header bytes [4, 20) and the payload
 * </pre>
 * Payloads by type are documented in docs/format.md and encoded by {@link Pool} / {@link Checkpoint}.
 */
public final class LogRecord {
    private LogRecord() {}

    public static final int MAGIC = 0x43455244; // "DREC"
    public static final int VERSION = 1;
    public static final int HEADER_SIZE = 24;
    /** Upper bound on one record's payload: a write batch of 256 raw blocks plus entry headers fits easily. */
    public static final int MAX_PAYLOAD = 4 << 20;

    public static final int SEGMENT_HEADER = 1;
    public static final int SEAL = 2;
    public static final int VOLUME_CREATE = 3;
    public static final int VOLUME_DELETE = 4;
    public static final int VOLUME_RESIZE = 5;
    public static final int WRITE = 6;
    public static final int MAP_RANGE = 7;

    /** A buffer for one record: header space reserved, payload written after it by the caller. */
    public static ByteBuffer newBuffer(int payloadCapacity) {
        ByteBuffer b = ByteBuffer.allocate(HEADER_SIZE + payloadCapacity).order(ByteOrder.LITTLE_ENDIAN);
        b.position(HEADER_SIZE);
        return b;
    }

    /**
     * Fills in the header of a record whose payload occupies [HEADER_SIZE, position) and flips the buffer so it
     * is ready to be written.
     */
    public static ByteBuffer seal(ByteBuffer record, int type, long lsn) {
        int length = record.position() - HEADER_SIZE;
        Check.that(length >= 0 && length <= MAX_PAYLOAD, "record payload length %d out of range", length);
        record.putInt(0, MAGIC);
        record.put(4, (byte) type);
        record.put(5, (byte) VERSION);
        record.putShort(6, (short) 0);
        record.putInt(8, length);
        record.putLong(12, lsn);
        record.putInt(20, crcOf(record, length));
        record.flip();
        return record;
    }

    static int crcOf(ByteBuffer record, int payloadLength) {
        java.util.zip.CRC32C c = new java.util.zip.CRC32C();
        c.update(record.slice(4, 16));
        c.update(record.slice(HEADER_SIZE, payloadLength));
        return (int) c.getValue();
    }

    /** What a header says, before the payload is checked. Named untrusted until {@link #verify} passes. */
    public record Header(int type, int length, long lsn, int crc) {
        /** Parses a 24-byte header; returns null when it is not a well-formed header (torn or garbage). */
        public static Header parseUntrusted(ByteBuffer b) {
            b.order(ByteOrder.LITTLE_ENDIAN);
            if (b.getInt(0) != MAGIC) return null;
            int version = b.get(5) & 0xff;
            int length = b.getInt(8);
            if (version != VERSION || b.getShort(6) != 0 || length < 0 || length > MAX_PAYLOAD) return null;
            return new Header(b.get(4) & 0xff, length, b.getLong(12), b.getInt(20));
        }

        /** True when the CRC over header and payload matches: the record is whole and unchanged. */
        public boolean verify(ByteBuffer headerAndPayload) {
            return crcOf(headerAndPayload.order(ByteOrder.LITTLE_ENDIAN), length) == crc;
        }
    }
}
