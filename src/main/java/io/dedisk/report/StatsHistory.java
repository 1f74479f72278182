package io.dedisk.report;

import io.dedisk.DediskException;
import io.dedisk.store.Fs;
import io.dedisk.util.Check;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.CRC32C;

/**
 * The stats history file {@code POOL/stats-history}: an append-only sequence of {@link StatsSample} records
 * that `serve` writes every --stats-interval and `dedisk report` plots. Format (docs/format.md "Stats history"),
 * little-endian:
 * <pre>
 * record  u32 magic "DSTH" | u8 version (1) | u8 0 | u16 0 | u32 payload length (≤ 1 MiB)
 *         | u32 CRC32C of header bytes [4, 12) and the payload | payload
 * payload u64 time (epoch ms)
 *         | u16 P, P × (u8 key length, key ASCII, f64 value)                         pool fields
 *         | u16 V, V × (u16 name length, name UTF-8, u16 K, K × (u8 key length, key, f64 value))   volumes
 *         | u16 H, H × u64                                  refcount histogram (bucket i: 2^i ≤ refs < 2^(i+1))
 * </pre>
 * Reading verifies every record; a record that fails (torn by a crash mid-append, or damaged) is skipped by
 * searching for the next magic that starts a valid record. Bytes skipped at the very end are a torn last
 * record and are ignored silently; bytes skipped before a valid record are reported as damage.
 *
 * Bounded size: when an append takes the file past {@code maxBytes}, the file is rewritten atomically
 * ({@link Fs#writeAtomically}) with the older half of the samples thinned to every other one (the first sample
 * is always kept), so resolution decays with age and the file stays below the bound.
 *
 * Threads: one writer instance per pool directory (the server's sampler); every method is synchronized, so the
 * server's report reads a consistent file while the sampler appends. Offline readers use {@link #read(Fs)}.
 */
public final class StatsHistory implements AutoCloseable {
    public static final String FILE = "stats-history";
    public static final int MAGIC = 0x48545344; // "DSTH" little-endian
    public static final int VERSION = 1;
    static final int HEADER = 16;
    static final int MAX_PAYLOAD = 1 << 20;
    public static final long DEFAULT_MAX_BYTES = 8L << 20;

    /** What a read found: the samples in file order, damaged bytes skipped, and the torn tail ignored. */
    public record Contents(List<StatsSample> samples, long damagedBytes, long tornTailBytes, long validEnd) {}

    private final Fs fs;
    private final long maxBytes;
    // Guarded by this.
    private Fs.FileHandle handle;
    private long size;
    private long compactions;

    private StatsHistory(Fs fs, long maxBytes, Fs.FileHandle handle, long size) {
        this.fs = fs;
        this.maxBytes = maxBytes;
        this.handle = handle;
        this.size = size;
    }

    /** Opens (creating) the history for appending; a torn last record is cut off first. */
    public static StatsHistory openForAppend(Fs fs, long maxBytes) throws IOException {
        Check.that(maxBytes >= 4 * (HEADER + 4096L), "history bound %d is too small", maxBytes);
        Fs.FileHandle h = fs.open(FILE, true);
        try {
            Contents c = decodeAll(readWhole(h));
            if (c.validEnd() < h.size()) {
                h.truncate(c.validEnd());
                h.sync();
            }
            return new StatsHistory(fs, maxBytes, h, c.validEnd());
        } catch (IOException | RuntimeException e) {
            h.close();
            throw e;
        }
    }

    /** Reads the history of a pool directory without changing it; empty when there is none. */
    public static Contents read(Fs fs) throws IOException {
        if (!fs.exists(FILE)) return new Contents(List.of(), 0, 0, 0);
        return decodeAll(fs.readAll(FILE));
    }

    /** The samples as this writer sees them. */
    public synchronized Contents read() throws IOException {
        return decodeAll(readWhole(handle));
    }

    /** Appends one sample durably (write + fsync), compacting first if the file would pass its bound. */
    public synchronized void append(StatsSample sample) throws IOException {
        byte[] record = encode(sample);
        Check.that(record.length <= maxBytes / 4, "one history record of %d bytes against a bound of %d", record.length, maxBytes);
        handle.write(size, ByteBuffer.wrap(record));
        handle.sync();
        size += record.length;
        if (size > maxBytes) compact();
    }

    /** How many times the file was rewritten to stay within its bound (for tests). */
    public synchronized long compactions() { return compactions; }

    public synchronized long sizeBytes() { return size; }

    private void compact() throws IOException {
        List<StatsSample> all = decodeAll(readWhole(handle)).samples();
        List<StatsSample> kept = all;
        byte[] content;
        do {
            kept = thin(kept);
            content = encodeAll(kept);
        } while (content.length > maxBytes * 3 / 4 && kept.size() > 2);
        Check.that(content.length <= maxBytes, "compacted history of %d bytes exceeds its bound %d", content.length, maxBytes);
        handle.close();
        try {
            fs.writeAtomically(FILE, content);
            compactions++;
        } finally { // after a failed rewrite the old file is whole: go on appending to it
            handle = fs.open(FILE, false);
            size = handle.size();
        }
        Check.that(size == content.length, "history rewritten as %d bytes, found %d", content.length, size);
    }

    /** Keeps the newer half whole and every other sample of the older half (always the first). */
    static List<StatsSample> thin(List<StatsSample> samples) {
        int older = samples.size() / 2;
        List<StatsSample> out = new ArrayList<>(samples.size());
        for (int i = 0; i < older; i++) if (i % 2 == 0) out.add(samples.get(i));
        out.addAll(samples.subList(older, samples.size()));
        Check.that(samples.isEmpty() || out.getLast() == samples.getLast(), "thinning keeps the newest sample");
        return out;
    }

    @Override
    public synchronized void close() throws IOException {
        if (handle != null) handle.close();
        handle = null;
    }

    // ---------------------------------------------------------------- encoding

    static byte[] encodeAll(List<StatsSample> samples) {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        for (StatsSample s : samples) out.writeBytes(encode(s));
        return out.toByteArray();
    }

    public static byte[] encode(StatsSample s) {
        int len = 8 + 2 + 2 + 2;
        for (String k : s.pool().keySet()) len += 1 + k.length() + 8;
        for (StatsSample.VolumeSample v : s.volumes()) {
            len += 2 + v.name().getBytes(StandardCharsets.UTF_8).length + 2;
            for (String k : v.values().keySet()) len += 1 + k.length() + 8;
        }
        len += 8 * s.refcountHistogram().length;
        Check.that(len <= MAX_PAYLOAD, "history record payload of %d bytes, at most %d", len, MAX_PAYLOAD);
        Check.that(s.pool().size() <= 0xffff && s.volumes().size() <= 0xffff, "history record counts");
        ByteBuffer b = ByteBuffer.allocate(HEADER + len).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(MAGIC).put((byte) VERSION).put((byte) 0).putShort((short) 0).putInt(len).putInt(0);
        b.putLong(s.timeMillis());
        putFields(b, s.pool());
        b.putShort((short) s.volumes().size());
        for (StatsSample.VolumeSample v : s.volumes()) {
            byte[] name = v.name().getBytes(StandardCharsets.UTF_8);
            Check.that(name.length <= 1024, "volume name of %d bytes", name.length);
            b.putShort((short) name.length).put(name);
            putFields(b, v.values());
        }
        long[] h = s.refcountHistogram();
        Check.that(h.length <= 64, "refcount histogram of %d buckets, at most 64", h.length);
        b.putShort((short) h.length);
        for (long c : h) b.putLong(c);
        Check.that(!b.hasRemaining(), "history record length computed %d, written %d", b.capacity(), b.position());
        b.putInt(12, crc(b.array(), 0, HEADER + len));
        return b.array();
    }

    private static void putFields(ByteBuffer b, Map<String, Double> fields) {
        b.putShort((short) fields.size());
        for (var e : fields.entrySet()) {
            b.put((byte) e.getKey().length()).put(e.getKey().getBytes(StandardCharsets.US_ASCII)).putDouble(e.getValue());
        }
    }

    /** CRC32C of header bytes [4, 12) and the payload of the record at off. */
    private static int crc(byte[] data, int off, int recordLength) {
        CRC32C c = new CRC32C();
        c.update(data, off + 4, 8);
        c.update(data, off + HEADER, recordLength - HEADER);
        return (int) c.getValue();
    }

    static Contents decodeAll(byte[] data) {
        List<StatsSample> samples = new ArrayList<>();
        long damaged = 0, skipping = 0;
        long validEnd = 0;
        int pos = 0;
        while (pos + HEADER <= data.length) {
            StatsSample s = decodeAt(data, pos);
            if (s == null) {
                pos++;
                skipping++;
                continue;
            }
            damaged += skipping;
            skipping = 0;
            samples.add(s);
            pos += HEADER + ByteBuffer.wrap(data, pos + 8, 4).order(ByteOrder.LITTLE_ENDIAN).getInt();
            validEnd = pos;
        }
        long torn = data.length - validEnd;
        Check.that(torn >= 0 && validEnd <= data.length, "history scan ended at %d of %d", validEnd, data.length);
        return new Contents(samples, damaged, torn, validEnd);
    }

    /** The sample whose record starts at pos, or null when no valid record starts there. */
    static StatsSample decodeAt(byte[] data, int pos) {
        ByteBuffer b = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
        if (b.getInt(pos) != MAGIC) return null;
        int version = b.get(pos + 4);
        int lengthUntrusted = b.getInt(pos + 8);
        if (lengthUntrusted < 14 || lengthUntrusted > MAX_PAYLOAD || (long) pos + HEADER + lengthUntrusted > data.length) return null;
        if (crc(data, pos, HEADER + lengthUntrusted) != b.getInt(pos + 12)) return null;
        if (version != VERSION) {
            throw new DediskException.CorruptionException("stats history record at byte " + pos + " has format version " + version
                    + ", this dedisk reads version " + VERSION);
        }
        try {
            ByteBuffer p = ByteBuffer.wrap(data, pos + HEADER, lengthUntrusted).slice().order(ByteOrder.LITTLE_ENDIAN);
            long time = p.getLong();
            Map<String, Double> pool = getFields(p);
            int volumes = Short.toUnsignedInt(p.getShort());
            List<StatsSample.VolumeSample> vols = new ArrayList<>(volumes);
            for (int i = 0; i < volumes; i++) {
                byte[] name = new byte[Short.toUnsignedInt(p.getShort())];
                p.get(name);
                vols.add(new StatsSample.VolumeSample(new String(name, StandardCharsets.UTF_8), getFields(p)));
            }
            long[] h = new long[Short.toUnsignedInt(p.getShort())];
            for (int i = 0; i < h.length; i++) h[i] = p.getLong();
            if (p.hasRemaining()) return null; // a checksummed record whose fields do not add up: not one we wrote
            return new StatsSample(time, pool, vols, h);
        } catch (java.nio.BufferUnderflowException | Check.InvariantViolation e) {
            return null;
        }
    }

    private static Map<String, Double> getFields(ByteBuffer p) {
        int n = Short.toUnsignedInt(p.getShort());
        Map<String, Double> out = new LinkedHashMap<>();
        for (int i = 0; i < n; i++) {
            byte[] key = new byte[Byte.toUnsignedInt(p.get())];
            p.get(key);
            out.put(new String(key, StandardCharsets.US_ASCII), p.getDouble());
        }
        return out;
    }

    private static byte[] readWhole(Fs.FileHandle h) throws IOException {
        long n = h.size();
        if (n > Integer.MAX_VALUE - 16) throw new IOException("stats history of " + n + " bytes is too large to read");
        ByteBuffer buf = ByteBuffer.allocate((int) n);
        h.readFully(0, buf);
        return buf.array();
    }
}
