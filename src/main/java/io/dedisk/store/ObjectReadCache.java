package io.dedisk.store;

import io.dedisk.util.Check;
import io.dedisk.util.Crc;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;

/**
 * The bounded read cache of a bucket pool: uploaded segments' bytes kept on local disk in aligned blocks of
 * {@link #BLOCK} bytes, keyed by (segment, block), least recently used evicted first, the total bounded in bytes.
 * Keyed by segment position, not by volume, so clones and snapshots that share chunks share the cache.
 *
 * One file per block, {@code readcache/<16 hex segment>-<8 hex block>.blk} (little-endian):
 * <pre>
 *    0 u64 magic "DDSKRCAC"   8 u32 format version (1)   12 u32 data length (bytes, at most BLOCK)
 *   16 u64+u64 pool id        32 u64 segment            40 u64 block index
 *   48 u32 x 256  CRC32C of each 4 KiB piece of the data (the last one may be shorter)
 * 1072 u32 CRC32C of bytes [0, 1072)               4096 the data
 * </pre>
 * Files are written under a temporary name and renamed, not synced: a cache needs no durability, because what it
 * serves is verified, so what a machine crash leaves of an entry (empty, torn) is found, dropped and fetched again (a
 * cache never turns a disk fault into a pool fault). One fetch per block at a time: concurrent misses on a block wait
 * for the first one's GET instead of issuing their own.
 * Two ways to read a hit: {@link #read} checks the header once and the CRC of every 4 KiB piece it uses (recovery,
 * the cleaner, the checker: callers that take the bytes as they are); {@link #readForCallerCheck} reads the bytes
 * straight from the entry's file into the caller's buffer (one positioned read, as a directory pool's segment read)
 * for a caller that checks them against a checksum of its own (chunk bodies against their reference's CRC32C), and
 * that calls {@link #refetch} when its check fails: the entries under the range are dropped and fetched again.
 * Read-only: entries are read, never written or evicted; the last {@link #MEMO_BLOCKS} fetched blocks are kept in
 * memory instead, so a read-only scan (check, stats) does not GET a block again for every chunk in it.
 *
 * Threads: any; the LRU maps and the in-flight fetches are guarded by this object's monitor, I/O runs outside it.
 */
final class ObjectReadCache {
    static final String DIR = "readcache";
    static final int BLOCK = 1 << 20;
    static final int PIECE = 4096;
    static final int DATA_OFFSET = 4096;
    static final long MAGIC = 0x434143524b534444L; // "DDSKRCAC" little-endian
    static final int VERSION = 1;
    private static final int PIECES = BLOCK / PIECE;
    private static final int HEADER_CRC_AT = 48 + 4 * PIECES;
    private static final System.Logger LOG = System.getLogger("dedisk.readcache");
    private static final int MAX_OPEN = 256;
    static final int MEMO_BLOCKS = 16;

    /** Fetches bytes [offset, offset+length) of a segment from the store, fewer at its end. */
    interface Fetcher {
        byte[] fetch(long seq, long offset, int length) throws IOException;
    }

    private record Key(long seq, long block) {}

    /** A cached block: its data length and, once read, the CRCs of its pieces. */
    private static final class Entry {
        final int length;
        int[] crcs;

        Entry(int length, int[] crcs) {
            this.length = length;
            this.crcs = crcs;
        }
    }

    private final Fs fs;
    private final UUID poolId;
    private final long capacity;
    private final boolean readOnly;
    private final LinkedHashMap<Key, Entry> entries = new LinkedHashMap<>(64, 0.75f, true);
    private final LinkedHashMap<Key, Fs.FileHandle> handles = new LinkedHashMap<>(64, 0.75f, true);
    private final Map<Key, java.util.concurrent.CompletableFuture<byte[]>> fetching = new java.util.HashMap<>();
    /** Read-only opens: recently fetched blocks, in memory (nothing is written to the cache directory). */
    private final LinkedHashMap<Key, byte[]> memo = new LinkedHashMap<>(MEMO_BLOCKS * 2, 0.75f, true) {
        @Override protected boolean removeEldestEntry(Map.Entry<Key, byte[]> eldest) { return size() > MEMO_BLOCKS; }
    };
    private long bytes;
    private long hits;
    private long misses;

    /** Opens the cache in {@code fs} (the cache directory), listing the blocks a previous run left. */
    ObjectReadCache(Fs fs, UUID poolId, long capacityBytes, boolean readOnly) throws IOException {
        this.fs = fs;
        this.poolId = poolId;
        this.capacity = capacityBytes;
        this.readOnly = readOnly;
        if (!readOnly) fs.mkdirs(DIR);
        for (String name : fs.list(DIR)) {
            Key k = keyOf(name);
            if (k == null) { // a temporary file a crash left behind
                if (!readOnly) fs.delete(DIR + "/" + name);
                continue;
            }
            long size;
            try (Fs.FileHandle h = fs.open(DIR + "/" + name, false)) { size = h.size(); }
            if (size <= DATA_OFFSET || size > DATA_OFFSET + BLOCK) {
                if (!readOnly) fs.delete(DIR + "/" + name);
                continue;
            }
            entries.put(k, new Entry((int) (size - DATA_OFFSET), null));
            bytes += size;
        }
        if (!readOnly) evictToCapacity();
    }

    static String fileName(long seq, long block) { return String.format("%016x-%08x.blk", seq, block); }

    private static Key keyOf(String name) {
        if (name.length() != 29 || !name.endsWith(".blk") || name.charAt(16) != '-') return null;
        try {
            return new Key(Long.parseUnsignedLong(name.substring(0, 16), 16), Long.parseLong(name.substring(17, 25), 16));
        } catch (NumberFormatException e) {
            return null;
        }
    }

    synchronized long bytes() { return bytes; }

    synchronized long hits() { return hits; }

    synchronized long misses() { return misses; }

    /** Reads dst.remaining() bytes of segment seq at pos, verified, from cached blocks or fetched ones (which are then kept). */
    void read(long seq, long pos, ByteBuffer dst, Fetcher fetcher) throws IOException { read(seq, pos, dst, fetcher, false); }

    /**
     * Reads like {@link #read}, but a hit is not checked here: the caller checks the bytes against its own checksum and
     * calls {@link #refetch} when they fail it (see the class comment).
     */
    void readForCallerCheck(long seq, long pos, ByteBuffer dst, Fetcher fetcher) throws IOException { read(seq, pos, dst, fetcher, true); }

    /** The caller's check failed on bytes of [pos, pos + dst.remaining()): drops the blocks under them and reads them fetched again. */
    void refetch(long seq, long pos, ByteBuffer dst, Fetcher fetcher) throws IOException {
        for (long block = pos / BLOCK, last = (pos + Math.max(dst.remaining(), 1) - 1) / BLOCK; block <= last; block++) {
            Key key = new Key(seq, block);
            LOG.log(System.Logger.Level.WARNING, "read cache entry {0} failed its reader''s check, fetching it again", fileName(seq, block));
            synchronized (this) { memo.remove(key); }
            drop(key);
        }
        read(seq, pos, dst, fetcher, false);
    }

    private void read(long seq, long pos, ByteBuffer dst, Fetcher fetcher, boolean callerChecks) throws IOException {
        while (dst.hasRemaining()) {
            long block = pos / BLOCK;
            int within = (int) (pos - block * BLOCK);
            int n = Math.min(dst.remaining(), BLOCK - within);
            if (!cached(seq, block, within, n, dst, callerChecks)) {
                byte[] data = fetched(new Key(seq, block), fetcher);
                if (within + n > data.length) throw new java.io.EOFException("segment " + seq + " ends at " + (block * BLOCK + data.length) + ", read needs " + (pos + n));
                dst.put(data, within, n);
            }
            pos += n;
        }
    }

    /** The block's bytes from the store, kept; or, when another thread is fetching it already, from that fetch. */
    private byte[] fetched(Key key, Fetcher fetcher) throws IOException {
        java.util.concurrent.CompletableFuture<byte[]> mine = new java.util.concurrent.CompletableFuture<>(), theirs;
        synchronized (this) {
            byte[] remembered = memo.get(key);
            if (remembered != null) return remembered;
            theirs = fetching.putIfAbsent(key, mine);
        }
        if (theirs != null) {
            try {
                return theirs.join();
            } catch (java.util.concurrent.CompletionException failed) {
                return fetcher.fetch(key.seq(), key.block() * BLOCK, BLOCK); // their fetch failed: this read tries for itself
            }
        }
        try {
            byte[] data = fetcher.fetch(key.seq(), key.block() * BLOCK, BLOCK);
            if (readOnly) {
                synchronized (this) { memo.put(key, data); }
            }
            mine.complete(data); // the waiters need not wait for the cache file
            if (!readOnly) keep(key.seq(), key.block(), data);
            return data;
        } catch (IOException | RuntimeException e) {
            mine.completeExceptionally(e);
            throw e;
        } finally {
            synchronized (this) { fetching.remove(key); }
        }
    }

    /**
     * Copies the cached bytes [within, within+n) of a block into dst (verified here unless the caller checks them);
     * false on a miss (or an entry that failed and was dropped).
     */
    private boolean cached(long seq, long block, int within, int n, ByteBuffer dst, boolean callerChecks) throws IOException {
        Key key = new Key(seq, block);
        Entry e;
        synchronized (this) {
            e = entries.get(key);
            if (e == null || within + n > e.length) {
                misses++;
                return false;
            }
            hits++;
        }
        int start = dst.position(), limit = dst.limit();
        for (int attempt = 0; ; attempt++) {
            try {
                Fs.FileHandle h = handle(key);
                if (callerChecks) {
                    dst.limit(start + n);
                    h.readFully(DATA_OFFSET + within, dst);
                } else {
                    copyVerified(h, key, e, within, n, dst);
                }
                Check.that(dst.position() - start == n, "read cache copied %d bytes, expected %d", dst.position() - start, n);
                return true;
            } catch (java.nio.channels.ClosedChannelException evicted) {
                dst.position(start); // a retry, or the fetch, copies the whole range again
                if (attempt < 3) continue; // its handle was closed for another one meanwhile: open it again
                drop(key);
                return false;
            } catch (IOException | RuntimeException damaged) {
                dst.position(start);
                LOG.log(System.Logger.Level.WARNING, "read cache entry {0} unusable, fetching it again: {1}", fileName(seq, block), damaged.toString());
                drop(key);
                return false;
            } finally {
                dst.limit(limit);
            }
        }
    }

    /** Reads the 4 KiB pieces under [within, within+n) of an entry, checks each against the entry's CRCs, copies the range. */
    private void copyVerified(Fs.FileHandle h, Key key, Entry e, int within, int n, ByteBuffer dst) throws IOException {
        int[] crcs = e.crcs != null ? e.crcs : readHeader(h, key);
        e.crcs = crcs;
        int from = within / PIECE * PIECE, to = Math.min(e.length, (within + n + PIECE - 1) / PIECE * PIECE);
        ByteBuffer buf = ByteBuffer.allocate(to - from);
        h.readFully(DATA_OFFSET + from, buf);
        byte[] data = buf.array();
        for (int p = from / PIECE; p * PIECE < to; p++) {
            int off = p * PIECE - from, len = Math.min(PIECE, to - p * PIECE);
            if (Crc.of(data, off, len) != crcs[p]) throw new io.dedisk.DediskException.CorruptionException("piece " + p + " fails its CRC32C");
        }
        dst.put(data, within - from, n);
    }

    /** An open handle on the entry's file, from a bounded LRU of handles (so a large cache holds few descriptors). */
    private Fs.FileHandle handle(Key key) throws IOException {
        Fs.FileHandle eldest = null, h;
        synchronized (this) {
            h = handles.get(key);
            if (h != null) return h;
            h = fs.open(DIR + "/" + fileName(key.seq(), key.block()), false);
            handles.put(key, h);
            if (handles.size() > MAX_OPEN) {
                Iterator<Map.Entry<Key, Fs.FileHandle>> it = handles.entrySet().iterator();
                eldest = it.next().getValue();
                it.remove();
            }
        }
        if (eldest != null) eldest.close();
        return h;
    }

    private int[] readHeader(Fs.FileHandle h, Key key) throws IOException {
        ByteBuffer hb = ByteBuffer.allocate(HEADER_CRC_AT + 4).order(ByteOrder.LITTLE_ENDIAN);
        h.readFully(0, hb);
        byte[] a = hb.array();
        if (hb.getLong(0) != MAGIC || hb.getInt(8) != VERSION) { // e.g. an entry a machine crash left empty or torn
            throw new io.dedisk.DediskException.CorruptionException(String.format("magic %016x version %d expected, found %016x version %d",
                    MAGIC, VERSION, hb.getLong(0), hb.getInt(8)));
        }
        int crc = Crc.of(a, 0, HEADER_CRC_AT);
        if (hb.getInt(HEADER_CRC_AT) != crc) throw new io.dedisk.DediskException.CorruptionException(String.format("header CRC32C expected %08x, found %08x", crc, hb.getInt(HEADER_CRC_AT)));
        UUID pool = new UUID(hb.getLong(16), hb.getLong(24));
        if (!pool.equals(poolId) || hb.getLong(32) != key.seq() || hb.getLong(40) != key.block()) {
            throw new io.dedisk.DediskException.CorruptionException("entry names pool " + pool + " segment " + hb.getLong(32) + " block " + hb.getLong(40)
                    + ", expected " + poolId + " " + key.seq() + " " + key.block());
        }
        int[] crcs = new int[PIECES];
        for (int i = 0; i < PIECES; i++) crcs[i] = hb.getInt(48 + 4 * i);
        return crcs;
    }

    /** Stores a fetched block (atomically) and evicts the least recently used ones beyond the capacity. */
    private void keep(long seq, long block, byte[] data) {
        if (capacity <= 0 || data.length == 0) return;
        ByteBuffer b = ByteBuffer.allocate(DATA_OFFSET + data.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(MAGIC).putInt(VERSION).putInt(data.length).putLong(poolId.getMostSignificantBits()).putLong(poolId.getLeastSignificantBits())
                .putLong(seq).putLong(block);
        int[] crcs = new int[PIECES];
        for (int p = 0; p * PIECE < data.length; p++) crcs[p] = Crc.of(data, p * PIECE, Math.min(PIECE, data.length - p * PIECE));
        for (int c : crcs) b.putInt(c);
        b.putInt(Crc.of(b.array(), 0, HEADER_CRC_AT));
        b.position(DATA_OFFSET);
        b.put(data);
        String name = DIR + "/" + fileName(seq, block);
        try {
            try (Fs.FileHandle h = fs.open(name + ".tmp", true)) { // not synced: see the class comment
                h.truncate(0);
                h.write(0, ByteBuffer.wrap(b.array()));
            }
            fs.rename(name + ".tmp", name);
        } catch (IOException e) {
            LOG.log(System.Logger.Level.WARNING, "read cache: block not kept ({0})", e.toString());
            return;
        }
        Fs.FileHandle stale;
        synchronized (this) {
            stale = handles.remove(new Key(seq, block)); // the file was replaced: a handle on the old one must go
            Entry old = entries.put(new Key(seq, block), new Entry(data.length, crcs));
            if (old != null) bytes -= DATA_OFFSET + old.length;
            bytes += DATA_OFFSET + data.length;
        }
        if (stale != null) {
            try { stale.close(); } catch (IOException ignored) { /* it named the replaced file only */ }
        }
        evictToCapacity();
    }

    /** Closes the open handles (the backend's close). */
    void close() throws IOException {
        List<Fs.FileHandle> all;
        synchronized (this) {
            all = new ArrayList<>(handles.values());
            handles.clear();
        }
        for (Fs.FileHandle h : all) h.close();
    }

    /** Drops every cached block of segment seq (deleted from the bucket). */
    void forget(long seq) {
        if (readOnly) return;
        List<Key> gone = new ArrayList<>();
        synchronized (this) {
            for (Key k : entries.keySet()) if (k.seq() == seq) gone.add(k);
        }
        for (Key k : gone) drop(k);
    }

    private void drop(Key key) {
        Fs.FileHandle h;
        synchronized (this) {
            h = handles.remove(key);
            Entry e = entries.remove(key);
            if (e == null) return;
            bytes -= DATA_OFFSET + e.length;
        }
        if (h != null) {
            try {
                h.close();
            } catch (IOException e) {
                LOG.log(System.Logger.Level.DEBUG, "read cache: closing {0}: {1}", fileName(key.seq(), key.block()), e.toString());
            }
        }
        if (readOnly) return;
        try {
            fs.delete(DIR + "/" + fileName(key.seq(), key.block()));
        } catch (IOException e) {
            LOG.log(System.Logger.Level.WARNING, "read cache: could not delete {0}: {1}", fileName(key.seq(), key.block()), e.toString());
        }
    }

    private void evictToCapacity() {
        while (true) {
            Key eldest;
            synchronized (this) {
                if (bytes <= capacity || entries.isEmpty()) return;
                Iterator<Map.Entry<Key, Entry>> it = entries.entrySet().iterator();
                eldest = it.next().getKey();
            }
            drop(eldest);
        }
    }
}
