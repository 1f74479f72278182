package io.dedisk.pool;

import io.dedisk.DediskException.CorruptionException;
import io.dedisk.util.Check;
import io.dedisk.util.Crc;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.UUID;

/**
 * The manifest: the one object of a pool that is replaced in place (atomically: a new file renamed over the old
 * one on a directory; a conditional write on an object store). It names the newest checkpoint root and the one
 * before it (the fallback when the newest cannot be read) and the writer's epoch (ownership; fencing arrives with
 * the object store backend). Layout (little-endian, 80 bytes):
 * <pre>
 *   0 u64 magic "DDSKMANI"   8 u32 format version (2)   12 u32 reserved (0)
 *  16 u64+u64 pool id        32 u64 epoch
 *  40 newest root:   u64 address | u32 record length | u32 record CRC   (address 0: no checkpoint yet)
 *  56 previous root: u64 address | u32 record length | u32 record CRC
 *  72 u32 reserved (0)       76 u32 CRC32C of bytes [0, 76)
 * </pre>
 */
record Manifest(UUID poolId, long epoch, RootRef newest, RootRef previous) {
    static final String FILE = "manifest";
    static final long MAGIC = 0x494e414d4b534444L; // "DDSKMANI" little-endian
    static final int VERSION = 2;
    static final int SIZE = 80;

    /** Where a ROOT record is: its address, the length of the whole record and its record CRC. */
    record RootRef(long address, int length, int crc) {
        static final RootRef NONE = new RootRef(0, 0, 0);
        boolean present() { return address != 0; }
    }

    byte[] encode() {
        ByteBuffer b = ByteBuffer.allocate(SIZE).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(MAGIC).putInt(VERSION).putInt(0).putLong(poolId.getMostSignificantBits()).putLong(poolId.getLeastSignificantBits()).putLong(epoch);
        for (RootRef r : new RootRef[] {newest, previous}) b.putLong(r.address()).putInt(r.length()).putInt(r.crc());
        b.putInt(0);
        b.putInt(Crc.of(b.array(), 0, SIZE - 4));
        Check.that(!b.hasRemaining(), "manifest fills %d bytes", SIZE);
        return b.array();
    }

    static Manifest decode(byte[] untrusted, UUID expectedPool) {
        if (untrusted.length != SIZE) throw new CorruptionException("manifest: expected " + SIZE + " bytes, found " + untrusted.length);
        ByteBuffer b = ByteBuffer.wrap(untrusted).order(ByteOrder.LITTLE_ENDIAN);
        if (b.getLong(0) != MAGIC) throw new CorruptionException(String.format("manifest: bad magic %016x", b.getLong(0)));
        int crc = Crc.of(untrusted, 0, SIZE - 4);
        if (b.getInt(SIZE - 4) != crc) throw new CorruptionException(String.format("manifest: CRC32C expected %08x, found %08x", crc, b.getInt(SIZE - 4)));
        int version = b.getInt(8);
        if (version != VERSION) throw new CorruptionException("manifest: format version " + version + ", this dedisk reads " + VERSION);
        UUID id = new UUID(b.getLong(16), b.getLong(24));
        if (!id.equals(expectedPool)) throw new CorruptionException("manifest: names pool " + id + ", expected " + expectedPool);
        b.position(32);
        long epoch = b.getLong();
        RootRef newest = new RootRef(b.getLong(), b.getInt(), b.getInt());
        RootRef previous = new RootRef(b.getLong(), b.getInt(), b.getInt());
        return new Manifest(id, epoch, newest, previous);
    }
}
