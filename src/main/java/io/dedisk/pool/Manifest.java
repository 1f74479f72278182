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
 * before it (the fallback when the newest cannot be read) and who writes the pool: the writer's epoch, its owner id
 * (the identity of its cache directory; zero on a directory pool, whose OS lock is the ownership), whether it holds
 * the pool now (set by opening, cleared by a clean close), and the boundary of the last forced takeover (segments at
 * or below {@code fenceSegment} predate it: they are not deleted until a grace period (10 minutes:
 * {@code ObjectBackend.Options.DEFAULT_TAKEOVER_GRACE_MILLIS}) after {@code takeoverMillis}, because the fenced writer
 * may still be reading them). Layout (little-endian, 112 bytes):
 * <pre>
 *   0 u64 magic "DDSKMANI"   8 u32 format version (3)   12 u32 flags (bit 0: owned, not closed cleanly)
 *  16 u64+u64 pool id        32 u64 epoch
 *  40 newest root:   u64 address | u32 record length | u32 record CRC   (address 0: no checkpoint yet)
 *  56 previous root: u64 address | u32 record length | u32 record CRC
 *  72 u64+u64 owner id       88 u64 fence segment   96 u64 takeover time (epoch ms; 0: never taken over)
 * 104 u32 reserved (0)      108 u32 CRC32C of bytes [0, 108)
 * </pre>
 * Version 2 (80 bytes: no flags, owner or takeover) is still read, as a pool nobody holds.
 */
record Manifest(UUID poolId, long epoch, RootRef newest, RootRef previous, boolean owned, UUID owner, long fenceSegment, long takeoverMillis) {
    static final String FILE = "manifest";
    static final long MAGIC = 0x494e414d4b534444L; // "DDSKMANI" little-endian
    static final int VERSION = 3;
    static final int SIZE = 112;
    static final int V2_SIZE = 80;
    static final int FLAG_OWNED = 1;
    static final UUID NO_OWNER = new UUID(0, 0);

    /** Where a ROOT record is: its address, the length of the whole record and its record CRC. */
    record RootRef(long address, int length, int crc) {
        static final RootRef NONE = new RootRef(0, 0, 0);
        boolean present() { return address != 0; }
    }

    /** The manifest of a pool nobody has written yet. */
    static Manifest initial(UUID poolId) { return new Manifest(poolId, 0, RootRef.NONE, RootRef.NONE, false, NO_OWNER, 0, 0); }

    Manifest withRoots(RootRef newestRoot, RootRef previousRoot) {
        return new Manifest(poolId, epoch, newestRoot, previousRoot, owned, owner, fenceSegment, takeoverMillis);
    }

    /** Taken by writer {@code by} with the next epoch; a takeover (from another live owner) moves the fence. */
    Manifest claimedBy(UUID by, long fenceAt, long nowMillis, boolean takeover) {
        return new Manifest(poolId, epoch + 1, newest, previous, true, by, takeover ? fenceAt : fenceSegment, takeover ? nowMillis : takeoverMillis);
    }

    Manifest closed() { return new Manifest(poolId, epoch, newest, previous, false, owner, fenceSegment, takeoverMillis); }

    /** Whether segment seq may be deleted at {@code nowMillis}: not while a fenced writer may still read it ({@code graceMillis}). */
    boolean deletable(long seq, long nowMillis, long graceMillis) { return seq > fenceSegment || nowMillis >= takeoverMillis + graceMillis; }

    byte[] encode() {
        Check.that(owner != null, "manifest owner");
        ByteBuffer b = ByteBuffer.allocate(SIZE).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(MAGIC).putInt(VERSION).putInt(owned ? FLAG_OWNED : 0).putLong(poolId.getMostSignificantBits()).putLong(poolId.getLeastSignificantBits()).putLong(epoch);
        for (RootRef r : new RootRef[] {newest, previous}) b.putLong(r.address()).putInt(r.length()).putInt(r.crc());
        b.putLong(owner.getMostSignificantBits()).putLong(owner.getLeastSignificantBits()).putLong(fenceSegment).putLong(takeoverMillis);
        b.putInt(0);
        b.putInt(Crc.of(b.array(), 0, SIZE - 4));
        Check.that(!b.hasRemaining(), "manifest fills %d bytes", SIZE);
        return b.array();
    }

    static Manifest decode(byte[] untrusted, UUID expectedPool) {
        if (untrusted.length != SIZE && untrusted.length != V2_SIZE) {
            throw new CorruptionException("manifest: expected " + SIZE + " bytes (or " + V2_SIZE + " for version 2), found " + untrusted.length);
        }
        int size = untrusted.length;
        ByteBuffer b = ByteBuffer.wrap(untrusted).order(ByteOrder.LITTLE_ENDIAN);
        if (b.getLong(0) != MAGIC) throw new CorruptionException(String.format("manifest: bad magic %016x", b.getLong(0)));
        int crc = Crc.of(untrusted, 0, size - 4);
        if (b.getInt(size - 4) != crc) throw new CorruptionException(String.format("manifest: CRC32C expected %08x, found %08x", crc, b.getInt(size - 4)));
        int version = b.getInt(8);
        int expectedVersion = size == SIZE ? VERSION : 2;
        if (version != expectedVersion) throw new CorruptionException("manifest: format version " + version + " in " + size + " bytes, this dedisk reads 2 (80 bytes) and " + VERSION + " (" + SIZE + " bytes)");
        int flags = b.getInt(12);
        if ((flags & ~FLAG_OWNED) != 0) throw new CorruptionException("manifest: unknown flags " + Integer.toHexString(flags));
        UUID id = new UUID(b.getLong(16), b.getLong(24));
        if (!id.equals(expectedPool)) throw new CorruptionException("manifest: names pool " + id + ", expected " + expectedPool);
        b.position(32);
        long epoch = b.getLong();
        RootRef newest = new RootRef(b.getLong(), b.getInt(), b.getInt());
        RootRef previous = new RootRef(b.getLong(), b.getInt(), b.getInt());
        if (version == 2) return new Manifest(id, epoch, newest, previous, false, NO_OWNER, 0, 0);
        UUID owner = new UUID(b.getLong(), b.getLong());
        return new Manifest(id, epoch, newest, previous, (flags & FLAG_OWNED) != 0, owner, b.getLong(), b.getLong());
    }
}
