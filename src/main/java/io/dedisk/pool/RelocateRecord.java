package io.dedisk.pool;

import io.dedisk.util.ByteSource;
import java.nio.ByteBuffer;

/**
 * The payload of a RELOCATE record: chunk bodies the cleaner copied out of a victim segment, unchanged (same
 * codec, length and CRC32C), so the chunk table can point at the copies (docs/format.md):
 * <pre>
 *   u32 count | count entries: u64 chunk id | u16 stored length | u32 CRC32C of the body | bodies, back to back
 * </pre>
 * The record CRC covers the count and the entries; each body is covered by the CRC in its entry.
 */
record RelocateRecord(Entry[] entries) {
    static final int ENTRY_BYTES = 8 + 2 + 4;
    static final int MAX_ENTRIES = 1024;

    /** One moved chunk; its body is at {@code bodyPosition} of the payload. */
    record Entry(long chunkId, int length, int crc, int bodyPosition) {}

    static RelocateRecord parse(ByteBuffer payload, int covered) {
        ByteSource in = new ByteSource(payload, "relocate record");
        int count = in.getInt();
        in.expect(count > 0 && count <= MAX_ENTRIES, "relocation of %d chunks", count);
        Entry[] entries = new Entry[count];
        int body = covered;
        for (int i = 0; i < count; i++) {
            entries[i] = new Entry(in.getLong(), in.getShort(), in.getInt(), body);
            in.expect(entries[i].length() > 0 && entries[i].length() <= Pool.BLOCK_SIZE, "chunk %d length %d", entries[i].chunkId(), entries[i].length());
            body += entries[i].length();
        }
        in.expect(in.position() == covered && body == payload.remaining(), "entries end at %d (covered %d), bodies at %d (payload %d)",
                in.position(), covered, body, payload.remaining());
        return new RelocateRecord(entries);
    }
}
