package io.dedisk.pool;

import io.dedisk.DediskException.CorruptionException;
import io.dedisk.util.ByteSource;
import java.nio.ByteBuffer;

/**
 * The payload of a WRITE log record, decoded from untrusted bytes (docs/format.md):
 * <pre>
 *   u32 volume id | u64 first LBA | u32 count (1..256) | count entries | NEW bodies, back to back, in entry order
 *   entry: u8 kind; EXISTING: u64 chunk id; NEW: u64 chunk id | u8 codec | u16 stored length | u32 CRC32C of body
 * </pre>
 * The record CRC covers the fixed part and the entries; each body is covered by the CRC in its entry.
 */
record WriteRecord(int volumeId, long firstLba, Entry[] entries) {
    static final int KIND_UNMAPPED = 0, KIND_ZERO = 1, KIND_EXISTING = 2, KIND_NEW = 3;
    static final int FIXED_BYTES = 16;
    static final int NEW_ENTRY_BYTES = 1 + 8 + 1 + 2 + 4;

    /** One block of the record. For NEW, the body is at {@code bodyPosition} of the payload. */
    record Entry(int kind, long chunkId, int codec, int length, int crc, int bodyPosition) {}

    static WriteRecord parse(ByteBuffer payload, int covered) {
        ByteSource in = new ByteSource(payload, "write record");
        int volumeId = in.getInt();
        long first = in.getLong();
        int count = in.getInt();
        in.expect(count > 0 && count <= WritePipeline.RECORD_MAX_BLOCKS, "write of %d blocks", count);
        Entry[] entries = new Entry[count];
        int body = covered;
        for (int i = 0; i < count; i++) {
            int kind = in.getByte();
            entries[i] = switch (kind) {
                case KIND_UNMAPPED, KIND_ZERO -> new Entry(kind, 0, 0, 0, 0, 0);
                case KIND_EXISTING -> new Entry(kind, in.getLong(), 0, 0, 0, 0);
                case KIND_NEW -> {
                    Entry e = new Entry(kind, in.getLong(), in.getByte(), in.getShort(), in.getInt(), body);
                    in.expect(e.length > 0 && e.length <= Pool.BLOCK_SIZE, "chunk %d length %d", e.chunkId, e.length);
                    body += e.length;
                    yield e;
                }
                default -> throw new CorruptionException("write record entry " + i + ": unknown kind " + kind);
            };
        }
        in.expect(in.position() == covered && body == payload.remaining(), "entries end at %d (covered %d), bodies at %d (payload %d)",
                in.position(), covered, body, payload.remaining());
        return new WriteRecord(volumeId, first, entries);
    }
}
