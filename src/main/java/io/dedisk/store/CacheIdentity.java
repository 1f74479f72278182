package io.dedisk.store;

import io.dedisk.DediskException.CorruptionException;
import io.dedisk.DediskException.InvalidRequestException;
import io.dedisk.util.Check;
import io.dedisk.util.Crc;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.UUID;

/**
 * The identity of a bucket pool's cache directory: file {@code identity}, written once when the directory is first
 * used. It names the pool the directory belongs to (a cache directory of another pool is refused: its write-back
 * segments would be taken for this pool's) and the cache's own id, which is the owner id a writer using this
 * directory puts into the manifest (so the same directory after a kill -9 recognises the epoch it owned).
 *
 * Layout (little-endian, 64 bytes):
 * <pre>
 *   0 u64 magic "DDSKCACH"   8 u32 format version (1)   12 u32 reserved (0)
 *  16 u64+u64 pool id        32 u64+u64 cache id         48 u64 created (epoch ms)
 *  56 u32 reserved (0)       60 u32 CRC32C of bytes [0, 60)
 * </pre>
 * Threads: created and read by the opening thread.
 */
public record CacheIdentity(UUID poolId, UUID cacheId, long createdMillis) {
    public static final String FILE = "identity";
    static final long MAGIC = 0x484341434b534444L; // "DDSKCACH" little-endian
    static final int VERSION = 1;
    static final int SIZE = 64;
    /** What the CLI may have put into a new cache directory before the pool opened (its lock and control files). */
    static final java.util.Set<String> CLI_FILES = java.util.Set.of("lock", "control", "control.tmp");

    byte[] encode() {
        ByteBuffer b = ByteBuffer.allocate(SIZE).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(MAGIC).putInt(VERSION).putInt(0).putLong(poolId.getMostSignificantBits()).putLong(poolId.getLeastSignificantBits())
                .putLong(cacheId.getMostSignificantBits()).putLong(cacheId.getLeastSignificantBits()).putLong(createdMillis).putInt(0);
        b.putInt(Crc.of(b.array(), 0, SIZE - 4));
        Check.that(!b.hasRemaining(), "cache identity fills %d bytes", SIZE);
        return b.array();
    }

    static CacheIdentity decode(byte[] untrusted, String where) {
        if (untrusted.length != SIZE) throw new CorruptionException(where + ": expected " + SIZE + " bytes, found " + untrusted.length);
        ByteBuffer b = ByteBuffer.wrap(untrusted).order(ByteOrder.LITTLE_ENDIAN);
        if (b.getLong(0) != MAGIC) throw new CorruptionException(String.format("%s: bad magic %016x (not a dedisk cache directory?)", where, b.getLong(0)));
        int crc = Crc.of(untrusted, 0, SIZE - 4);
        if (b.getInt(SIZE - 4) != crc) throw new CorruptionException(String.format("%s: CRC32C expected %08x, found %08x", where, crc, b.getInt(SIZE - 4)));
        if (b.getInt(8) != VERSION) throw new CorruptionException(where + ": format version " + b.getInt(8) + ", this dedisk reads " + VERSION);
        return new CacheIdentity(new UUID(b.getLong(16), b.getLong(24)), new UUID(b.getLong(32), b.getLong(40)), b.getLong(48));
    }

    /**
     * The identity of the cache directory {@code fs} for pool {@code poolId} ({@code where} names it in messages):
     * read and checked, or created (read-only: made up in memory, nothing written) when the directory is new.
     */
    static CacheIdentity openOrCreate(Fs fs, UUID poolId, boolean readOnly, String where) throws IOException {
        if (fs.exists(FILE)) {
            CacheIdentity id = decode(fs.readAll(FILE), where + "/" + FILE);
            if (!id.poolId().equals(poolId)) {
                throw new InvalidRequestException("cache directory " + where + " belongs to pool " + id.poolId() + ", not to pool " + poolId
                        + "; give each pool its own --cache directory");
            }
            return id;
        }
        java.util.List<String> files = new java.util.ArrayList<>(fs.list(""));
        files.removeAll(CLI_FILES);
        if (!files.isEmpty()) {
            throw new InvalidRequestException("cache directory " + where + " holds files but no dedisk cache identity; expected an empty or new directory");
        }
        CacheIdentity id = new CacheIdentity(poolId, UUID.randomUUID(), System.currentTimeMillis());
        if (!readOnly) {
            byte[] bytes = id.encode();
            Check.that(decode(bytes, FILE).equals(id), "cache identity decodes to itself");
            fs.writeAtomically(FILE, bytes);
        }
        return id;
    }
}
