package io.dedisk.pool;

import io.dedisk.util.Check;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The frame of every record in the log. A segment is a sequence of records; the first is SEGMENT_HEADER, a
 * sealed segment's last is SEAL. Records carry a log sequence number (LSN) that grows by one per record across
 * the whole log, so replay can tell a stale or misplaced record from the next one.
 *
 * Header (little-endian, 28 bytes), then {@code length} payload bytes:
 * <pre>
 *   0 u32 magic "DREC"   4 u8 type   5 u8 format version (3)   6 u16 reserved (0)
 *   8 u32 payload length  12 u32 covered length  16 u64 LSN
 *  24 u32 CRC32C of header bytes [4, 24) and the first {@code covered} payload bytes
 * </pre>
 * The CRC covers the metadata of a record; the chunk bodies that may follow it (WRITE) carry their own CRC32C
 * in their entries. So a flipped bit in a stored body spoils that one chunk (its reads fail), not the record
 * and everything the log holds after it.
 * Payloads by type are documented in docs/format.md and encoded by the write pipeline, the checkpointer and the cleaner.
 */
public final class LogRecord {
    private LogRecord() {}

    public static final int MAGIC = 0x43455244; // "DREC"
    public static final int VERSION = 3;
    public static final int HEADER_SIZE = 28;
    /** Upper bound on one record's payload: a write batch of 256 raw blocks plus entry headers fits easily. */
    public static final int MAX_PAYLOAD = 4 << 20;

    public static final int SEGMENT_HEADER = 1;
    public static final int SEAL = 2;
    public static final int VOLUME_CREATE = 3;
    public static final int VOLUME_DELETE = 4;
    public static final int VOLUME_RESIZE = 5;
    public static final int WRITE = 6;
    public static final int MAP_RANGE = 7;
    /** A metadata page written by a checkpoint ({@link MetaPage}). */
    public static final int PAGE = 8;
    /** A checkpoint root ({@link CheckpointRoot}): the last record a checkpoint writes. */
    public static final int ROOT = 9;
    /** Chunk bodies the cleaner moved ({@link RelocateRecord}). */
    public static final int RELOCATE = 10;
    /** A volume's new name ({@link Pool#renameVolume}). */
    public static final int VOLUME_RENAME = 11;
    /** A snapshot of a volume: a read-only tree that shares the volume's pages (docs/format.md). */
    public static final int SNAPSHOT_CREATE = 12;
    /** A clone of a snapshot: a writable tree that shares the snapshot's pages. */
    public static final int CLONE_CREATE = 13;
    /** A volume becomes the same tree as one of its family's snapshots. */
    public static final int VOLUME_ROLLBACK = 14;

    /** A buffer for one record: header space reserved, payload written after it by the caller. */
    public static ByteBuffer newBuffer(int payloadCapacity) {
        ByteBuffer b = ByteBuffer.allocate(HEADER_SIZE + payloadCapacity).order(ByteOrder.LITTLE_ENDIAN);
        b.position(HEADER_SIZE);
        return b;
    }

    /**
     * Fills in the header of a record whose payload occupies [HEADER_SIZE, position), of which the first
     * {@code covered} bytes are protected by the record CRC, and flips the buffer so it is ready to be written.
     */
    public static ByteBuffer seal(ByteBuffer record, int type, long lsn, int covered) {
        int length = record.position() - HEADER_SIZE;
        Check.that(length >= 0 && length <= MAX_PAYLOAD, "record payload length %d out of range", length);
        Check.that(covered >= 0 && covered <= length, "covered length %d within payload %d", covered, length);
        record.putInt(0, MAGIC);
        record.put(4, (byte) type);
        record.put(5, (byte) VERSION);
        record.putShort(6, (short) 0);
        record.putInt(8, length);
        record.putInt(12, covered);
        record.putLong(16, lsn);
        record.putInt(24, crcOf(record, covered));
        record.flip();
        return record;
    }

    /** Seals a record whose whole payload is covered by the CRC (every type but WRITE). */
    public static ByteBuffer seal(ByteBuffer record, int type, long lsn) {
        return seal(record, type, lsn, record.position() - HEADER_SIZE);
    }

    static int crcOf(ByteBuffer record, int covered) {
        java.util.zip.CRC32C c = new java.util.zip.CRC32C();
        c.update(record.slice(4, 20));
        c.update(record.slice(HEADER_SIZE, covered));
        return (int) c.getValue();
    }

    /** What a header says, before the payload is checked. Named untrusted until {@link #verify} passes. */
    public record Header(int type, int length, int covered, long lsn, int crc) {
        /** Parses a header; returns null when it is not a well-formed header (torn or garbage). */
        public static Header parseUntrusted(ByteBuffer b) {
            b.order(ByteOrder.LITTLE_ENDIAN);
            if (b.getInt(0) != MAGIC) return null;
            int version = b.get(5) & 0xff;
            int length = b.getInt(8);
            int covered = b.getInt(12);
            if (version != VERSION || b.getShort(6) != 0 || length < 0 || length > MAX_PAYLOAD || covered < 0 || covered > length) return null;
            return new Header(b.get(4) & 0xff, length, covered, b.getLong(16), b.getInt(24));
        }

        /** True when the CRC over header and covered payload matches: the record's metadata is whole and unchanged. */
        public boolean verify(ByteBuffer headerAndPayload) {
            return crcOf(headerAndPayload.order(ByteOrder.LITTLE_ENDIAN), covered) == crc;
        }
    }
}
