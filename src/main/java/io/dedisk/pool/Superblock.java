package io.dedisk.pool;

import io.dedisk.DediskException.CorruptionException;
import io.dedisk.DediskException.InvalidRequestException;
import io.dedisk.util.Check;
import io.dedisk.util.Crc;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.UUID;

/**
 * The pool superblock: file {@code superblock} in the pool directory (object {@code superblock} in a bucket), written once at creation and never
 * modified. It names the pool (the pool id stamped into every segment and checkpoint, so objects from another
 * pool are never mistaken for ours) and fixes the parameters chosen at creation.
 *
 * Layout (little-endian, 64 bytes):
 * <pre>
 *   0  u64 magic "DDSKSUPR"     8  u32 format version (3)   12 u32 block size (4096)
 *  16  u64 pool id (msb)       24  u64 pool id (lsb)        32 u64 created (epoch millis)
 *  40  u32 segment size        44  u32 flags (bit 0: sparse dedup index)
 *  48  u64 checkpoint interval (log bytes)                  56 u32 dedup index memory (MiB; 0 = exact index)
 *  60  u32 CRC32C of bytes [0, 60)
 * </pre>
 */
public record Superblock(UUID poolId, long createdMillis, int segmentSize, long checkpointInterval, long indexMemory, boolean sparseIndex) {
    static final long MAGIC = 0x525055534B534444L; // "DDSKSUPR" little-endian
    static final int VERSION = 3;
    static final int SIZE = 64;

    public Superblock {
        Check.that(segmentSize >= (1 << 20) && segmentSize <= (1 << 30), "segment size %d out of [1 MiB, 1 GiB]", segmentSize);
        Check.that(checkpointInterval >= segmentSize, "checkpoint interval %d below segment size", checkpointInterval);
        Check.that(indexMemory >= 0 && indexMemory % (1 << 20) == 0 && indexMemory >> 20 <= Integer.MAX_VALUE, "index memory %d in whole MiB", indexMemory);
    }

    byte[] encode() {
        ByteBuffer b = ByteBuffer.allocate(SIZE).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(MAGIC).putInt(VERSION).putInt(Pool.BLOCK_SIZE)
                .putLong(poolId.getMostSignificantBits()).putLong(poolId.getLeastSignificantBits())
                .putLong(createdMillis).putInt(segmentSize).putInt(sparseIndex ? 1 : 0).putLong(checkpointInterval)
                .putInt((int) (indexMemory >> 20));
        b.putInt(Crc.of(b.array(), 0, SIZE - 4));
        Check.that(!b.hasRemaining(), "superblock encoding fills exactly %d bytes", SIZE);
        return b.array();
    }

    public static Superblock decode(byte[] untrusted) {
        if (untrusted.length != SIZE) {
            throw new CorruptionException("superblock: expected " + SIZE + " bytes, found " + untrusted.length);
        }
        ByteBuffer b = ByteBuffer.wrap(untrusted).order(ByteOrder.LITTLE_ENDIAN);
        long magic = b.getLong();
        if (magic != MAGIC) throw new CorruptionException(String.format("superblock: bad magic %016x (not a dedisk pool?)", magic));
        int crc = b.getInt(SIZE - 4);
        int computed = Crc.of(untrusted, 0, SIZE - 4);
        if (crc != computed) throw new CorruptionException(String.format("superblock: CRC32C expected %08x, found %08x", computed, crc));
        int version = b.getInt();
        if (version == 1 || version == 2) {
            throw new InvalidRequestException("this pool has on-disk format version " + version + (version == 1
                    ? " (dedisk before engine v2: block maps and checkpoints held whole in memory)"
                    : " (dedisk before 2026-12-02: metadata pages stored uncompressed, their references without a length)")
                    + "; this dedisk reads version " + VERSION + " only. Copy the volumes out with the old dedisk (nbdcopy), create a new pool and copy them in.");
        }
        if (version != VERSION) throw new CorruptionException("superblock: format version " + version + " is not supported (this dedisk reads " + VERSION + ")");
        int blockSize = b.getInt();
        if (blockSize != Pool.BLOCK_SIZE) throw new CorruptionException("superblock: block size " + blockSize + ", expected " + Pool.BLOCK_SIZE);
        UUID id = new UUID(b.getLong(), b.getLong());
        long created = b.getLong();
        int segmentSize = b.getInt();
        int flags = b.getInt();
        long interval = b.getLong();
        long indexMemory = (b.getInt() & 0xffffffffL) << 20;
        if ((flags & ~1) != 0) throw new CorruptionException("superblock: unknown flags " + Integer.toHexString(flags));
        return new Superblock(id, created, segmentSize, interval, indexMemory, (flags & 1) != 0);
    }
}
