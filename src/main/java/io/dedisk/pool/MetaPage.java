package io.dedisk.pool;

import io.dedisk.DediskException.CorruptionException;
import io.dedisk.util.Check;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * One fixed-size metadata page (a block-map leaf, a chunk-table leaf, or an interior page of either tree) as it
 * sits in the metadata cache, and its encoding as the payload of a PAGE log record (docs/format.md):
 * <pre>
 *   0 u8 kind (1 map leaf, 2 interior, 3 chunk leaf)   1 u8 level (0 = leaf)   2 u16 reserved (0)
 *   4 u32 tree (family id: the origin volume's id; 0 = chunk table)   8 u64 index (position at its level)
 *  16 u64 generation (number of the checkpoint that wrote it)
 *  24 8192 body bytes
 * </pre>
 * Interior bodies are {@link #FANOUT} child entries of 16 bytes: u64 address (0 = absent: every entry below is
 * UNMAPPED / no chunk) | u32 CRC32C of the child's PAGE record | u32 flags (0; reserved for shared pages).
 * A page's address is where its PAGE record starts in the log: segment sequence &lt;&lt; 32 | byte offset. The
 * parent holds the record CRC, so a misdirected or stale page read is caught as well as bit rot.
 *
 * The tree field names the page's {@link Family}, not the member that wrote it: members share page versions, so
 * any of them may read a page another wrote (a volume's own id is its family's until it has snapshots).
 *
 * Threads: a page is read and changed under the pool's metadata lock (reads under the read lock, changes under
 * the write lock); its dirty flag and address change only under the write lock.
 */
final class MetaPage {
    static final int KIND_MAP_LEAF = 1, KIND_INTERIOR = 2, KIND_CHUNK_LEAF = 3;
    static final int HEADER = 24;
    static final int BODY = 8192;
    static final int PAYLOAD = HEADER + BODY;
    static final int RECORD_BYTES = LogRecord.HEADER_SIZE + PAYLOAD;
    static final int FANOUT_SHIFT = 9;
    static final int FANOUT = 1 << FANOUT_SHIFT;
    static final int CHILD_BYTES = 16;

    private static final VarHandle LONG = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle INT = MethodHandles.byteArrayViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle SHORT = MethodHandles.byteArrayViewVarHandle(short[].class, ByteOrder.LITTLE_ENDIAN);

    /** Identity of a page: which tree, which level, which position. */
    record Key(int tree, int level, long index) {}

    final Key key;
    final int kind;
    final byte[] body;
    /** Where the current durable version is (0: none yet) and its record CRC. */
    long address;
    int crc;
    boolean dirty;
    /**
     * Dirty only to be moved (the cleaner): the content is still the durable version at {@link #address}, so every
     * member holding that version writes the same copy and keeps sharing it. The first real change clears it.
     */
    boolean relocating;

    /** Whether the content is still the durable version at {@link #address}: clean, or dirty only to be moved. */
    boolean isDurableVersion() { return address != 0 && (!dirty || relocating); }

    MetaPage(Key key, int kind, byte[] body) {
        Check.that(body.length == BODY, "page body of %d bytes", body.length);
        Check.that(kind == KIND_INTERIOR ? key.level() > 0 : key.level() == 0, "page kind %d at level %d", kind, key.level());
        this.key = key;
        this.kind = kind;
        this.body = body;
    }

    static long address(long segment, long offset) {
        Check.that(segment > 0 && segment <= 0xffffffffL && offset >= 0 && offset <= 0xffffffffL, "address of segment %d offset %d", segment, offset);
        return segment << 32 | offset;
    }

    static long segmentOf(long address) { return address >>> 32; }

    static long offsetOf(long address) { return address & 0xffffffffL; }

    long getLong(int at) { return (long) LONG.get(body, at); }
    void putLong(int at, long v) { LONG.set(body, at, v); }
    int getInt(int at) { return (int) INT.get(body, at); }
    void putInt(int at, int v) { INT.set(body, at, v); }
    int getShort(int at) { return (short) SHORT.get(body, at) & 0xffff; }
    void putShort(int at, int v) { SHORT.set(body, at, (short) v); }

    // interior entries
    long childAddress(int i) { return getLong(i * CHILD_BYTES); }
    int childCrc(int i) { return getInt(i * CHILD_BYTES + 8); }

    void setChild(int i, long address, int crc) {
        putLong(i * CHILD_BYTES, address);
        putInt(i * CHILD_BYTES + 8, crc);
        putInt(i * CHILD_BYTES + 12, 0);
    }

    /** The PAGE record payload for this page of family {@code family}, in a record buffer (header space reserved). */
    ByteBuffer encode(long generation, int family) {
        ByteBuffer b = LogRecord.newBuffer(PAYLOAD);
        b.put((byte) kind).put((byte) key.level()).putShort((short) 0).putInt(family).putLong(key.index()).putLong(generation);
        b.put(body);
        Check.that(!b.hasRemaining(), "page record filled exactly");
        return b;
    }

    /**
     * Decodes a page from the bytes read at its address: a whole PAGE record that must verify, carry the CRC its
     * parent holds, and name the expected page of family {@code family}. Anything else is corruption (bit rot, a
     * misdirected or stale read).
     */
    static MetaPage decode(ByteBuffer recordUntrusted, Key expected, int family, int expectedKind, long address, int expectedCrc) {
        String where = "metadata page " + expected + " at segment " + segmentOf(address) + " offset " + offsetOf(address);
        LogRecord.Header h = recordUntrusted.remaining() >= LogRecord.HEADER_SIZE ? LogRecord.Header.parseUntrusted(recordUntrusted.duplicate()) : null;
        if (h == null || h.type() != LogRecord.PAGE || h.length() != PAYLOAD || recordUntrusted.remaining() < RECORD_BYTES) {
            throw new CorruptionException(where + ": no PAGE record there (expected " + RECORD_BYTES + " bytes of record type " + LogRecord.PAGE + ")");
        }
        if (h.crc() != expectedCrc) {
            throw new CorruptionException(String.format("%s: record CRC32C %08x, the reference holds %08x (stale or misdirected)", where, h.crc(), expectedCrc));
        }
        ByteBuffer whole = recordUntrusted.slice(recordUntrusted.position(), RECORD_BYTES);
        if (!h.verify(whole)) throw new CorruptionException(where + ": record CRC32C does not match its bytes");
        ByteBuffer p = whole.slice(LogRecord.HEADER_SIZE, PAYLOAD).order(ByteOrder.LITTLE_ENDIAN);
        int kind = p.get(0) & 0xff;
        int level = p.get(1) & 0xff;
        int tree = p.getInt(4);
        long index = p.getLong(8);
        if (kind != expectedKind || level != expected.level() || tree != family || index != expected.index() || p.getShort(2) != 0) {
            throw new CorruptionException(where + ": holds page kind " + kind + " family " + tree + " level " + level + " index " + index
                    + ", expected kind " + expectedKind + " family " + family);
        }
        byte[] body = new byte[BODY];
        p.get(HEADER, body);
        MetaPage page = new MetaPage(expected, kind, body);
        page.address = address;
        page.crc = expectedCrc;
        return page;
    }
}
