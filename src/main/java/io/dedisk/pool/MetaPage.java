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
 *   0 u8 kind (1 map leaf, 2 interior, 3 chunk leaf)   1 u8 level (0 = leaf)
 *   2 u8 encoding of the stored body ({@link PageCodec}: 0 raw, 1 byte planes + LZ4)   3 u8 reserved (0)
 *   4 u32 tree (family id: the origin volume's id; 0 = chunk table)   8 u64 index (position at its level)
 *  16 u64 generation (number of the checkpoint that wrote it)
 *  24 the stored body: the rest of the payload (8192 bytes raw, fewer encoded)
 * </pre>
 * In the cache a page is always its 8192-byte body. Interior bodies are {@link #FANOUT} child entries of 16 bytes:
 * u64 address (0 = absent: every entry below is UNMAPPED / no chunk) | u32 CRC32C of the child's PAGE record |
 * u32 length of that record in bytes (header included). A page's address is where its PAGE record starts in the
 * log: segment sequence &lt;&lt; 32 | byte offset. The reference (parent entry or tree root) holds the record's CRC
 * and length, so a misdirected or stale page read is caught as well as bit rot, and a page's bytes can be given
 * back to the usage table without reading it.
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
    /** The largest PAGE payload and record (a body stored raw); encoded pages are smaller. */
    static final int MAX_PAYLOAD = HEADER + BODY;
    static final int MAX_RECORD_BYTES = LogRecord.HEADER_SIZE + MAX_PAYLOAD;
    /** The smallest PAGE record: header and page header with a one-byte body. */
    static final int MIN_RECORD_BYTES = LogRecord.HEADER_SIZE + HEADER + 1;
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
    /** Where the current durable version is (0: none yet), its record CRC and its record length in bytes. */
    long address;
    int crc;
    int length;
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
    int childLength(int i) { return getInt(i * CHILD_BYTES + 12); }

    /** Whether (address, CRC, length) can reference a page: none (all 0), or a PAGE record of a possible length. */
    static boolean validReference(long address, int crc, int length) {
        return address == 0 ? crc == 0 && length == 0 : length >= MIN_RECORD_BYTES && length <= MAX_RECORD_BYTES;
    }

    void setChild(int i, long address, int crc, int length) {
        Check.that(validReference(address, crc, length), "child %d at %x: record of %d bytes", i, address, length);
        putLong(i * CHILD_BYTES, address);
        putInt(i * CHILD_BYTES + 8, crc);
        putInt(i * CHILD_BYTES + 12, length);
    }

    /**
     * The PAGE record payload for this page of family {@code family}, in a record buffer (header space reserved,
     * payload up to its position), its body encoded by {@link PageCodec}. The encoding is checked before it is
     * written: the stored bytes decode to this very body.
     */
    ByteBuffer encode(long generation, int family) {
        PageCodec.Encoded e = PageCodec.encode(kind, body);
        Check.that(java.util.Arrays.equals(PageCodec.decode(kind, e.encoding(), e.bytes(), 0, e.length(), "page " + key + " as encoded"), body),
                "page %s encoding %d decodes to its body", key, e.encoding());
        ByteBuffer b = LogRecord.newBuffer(HEADER + e.length());
        b.put((byte) kind).put((byte) key.level()).put((byte) e.encoding()).put((byte) 0).putInt(family).putLong(key.index()).putLong(generation);
        b.put(e.bytes(), 0, e.length());
        Check.that(!b.hasRemaining(), "page record filled exactly");
        return b;
    }

    /**
     * Decodes a page from the bytes read at its address: a whole PAGE record of the length and CRC its reference
     * holds that must verify and name the expected page of family {@code family}. Anything else is corruption (bit
     * rot, a misdirected or stale read).
     */
    static MetaPage decode(ByteBuffer recordUntrusted, Key expected, int family, int expectedKind, long address, int expectedCrc, int expectedLength) {
        String where = "metadata page " + expected + " at segment " + segmentOf(address) + " offset " + offsetOf(address);
        LogRecord.Header h = recordUntrusted.remaining() >= LogRecord.HEADER_SIZE ? LogRecord.Header.parseUntrusted(recordUntrusted.duplicate()) : null;
        if (h == null || h.type() != LogRecord.PAGE || LogRecord.HEADER_SIZE + (long) h.length() != expectedLength || h.length() <= HEADER
                || recordUntrusted.remaining() < expectedLength) {
            throw new CorruptionException(where + ": no PAGE record there (expected " + expectedLength + " bytes of record type " + LogRecord.PAGE + ", found "
                    + (h == null ? "no record header" : "type " + h.type() + " of " + (LogRecord.HEADER_SIZE + (long) h.length()) + " bytes") + ")");
        }
        if (h.crc() != expectedCrc) {
            throw new CorruptionException(String.format("%s: record CRC32C %08x, the reference holds %08x (stale or misdirected)", where, h.crc(), expectedCrc));
        }
        ByteBuffer whole = recordUntrusted.slice(recordUntrusted.position(), expectedLength);
        if (!h.verify(whole)) throw new CorruptionException(where + ": record CRC32C does not match its bytes");
        ByteBuffer p = whole.slice(LogRecord.HEADER_SIZE, h.length()).order(ByteOrder.LITTLE_ENDIAN);
        int kind = p.get(0) & 0xff;
        int level = p.get(1) & 0xff;
        int encoding = p.get(2) & 0xff;
        int tree = p.getInt(4);
        long index = p.getLong(8);
        if (kind != expectedKind || level != expected.level() || tree != family || index != expected.index() || p.get(3) != 0) {
            throw new CorruptionException(where + ": holds page kind " + kind + " family " + tree + " level " + level + " index " + index
                    + ", expected kind " + expectedKind + " family " + family);
        }
        byte[] stored = new byte[h.length() - HEADER];
        p.get(HEADER, stored);
        MetaPage page = new MetaPage(expected, kind, PageCodec.decode(kind, encoding, stored, 0, stored.length, where));
        page.address = address;
        page.crc = expectedCrc;
        page.length = expectedLength;
        return page;
    }
}
