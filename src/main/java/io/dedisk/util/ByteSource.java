package io.dedisk.util;

import io.dedisk.DediskException.CorruptionException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Reads what {@link ByteSink} wrote, from untrusted bytes: every read is bounds-checked and a shortfall or an
 * over-long varint is a {@link CorruptionException} naming the object being decoded.
 */
public final class ByteSource {
    private final ByteBuffer b;
    private final String what;

    public ByteSource(ByteBuffer untrusted, String what) {
        this.b = untrusted.slice().order(ByteOrder.LITTLE_ENDIAN);
        this.what = what;
    }

    private void need(int n) {
        if (b.remaining() < n) {
            throw new CorruptionException(what + ": truncated at byte " + b.position() + " (needed " + n + " more, found " + b.remaining() + ")");
        }
    }

    public int getByte() { need(1); return b.get() & 0xff; }
    public int getShort() { need(2); return b.getShort() & 0xffff; }
    public int getInt() { need(4); return b.getInt(); }
    public long getLong() { need(8); return b.getLong(); }

    public long getVarLong() {
        long v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            int x = getByte();
            v |= (long) (x & 0x7f) << shift;
            if ((x & 0x80) == 0) return v;
        }
        throw new CorruptionException(what + ": varint longer than 10 bytes at byte " + b.position());
    }

    public long getZigZag() { long v = getVarLong(); return (v >>> 1) ^ -(v & 1); }

    public byte[] getBytes(int n) {
        if (n < 0) throw new CorruptionException(what + ": negative length " + n);
        need(n);
        byte[] out = new byte[n];
        b.get(out);
        return out;
    }

    public void skip(int n) { need(n); b.position(b.position() + n); }

    public int position() { return b.position(); }
    public int remaining() { return b.remaining(); }

    /** Throws a CorruptionException naming the object unless the condition holds. */
    public void expect(boolean condition, String format, Object... args) {
        if (!condition) throw new CorruptionException(what + ": " + String.format(format, args));
    }
}
