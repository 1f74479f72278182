package io.dedisk.util;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/** A growable little-endian byte buffer with LEB128 varints, for encoding metadata objects (checkpoints). */
public final class ByteSink {
    private byte[] buf;
    private int size;

    public ByteSink(int initialCapacity) { buf = new byte[Math.max(16, initialCapacity)]; }

    private void ensure(int more) {
        if (size + more > buf.length) buf = Arrays.copyOf(buf, Math.max(buf.length * 2, size + more));
    }

    public ByteSink putByte(int v) { ensure(1); buf[size++] = (byte) v; return this; }

    public ByteSink putShort(int v) { ensure(2); buf[size++] = (byte) v; buf[size++] = (byte) (v >>> 8); return this; }

    public ByteSink putInt(int v) {
        ensure(4);
        for (int i = 0; i < 4; i++) buf[size++] = (byte) (v >>> (8 * i));
        return this;
    }

    public ByteSink putLong(long v) {
        ensure(8);
        for (int i = 0; i < 8; i++) buf[size++] = (byte) (v >>> (8 * i));
        return this;
    }

    /** Unsigned LEB128. */
    public ByteSink putVarLong(long v) {
        ensure(10);
        while ((v & ~0x7fL) != 0) {
            buf[size++] = (byte) ((v & 0x7f) | 0x80);
            v >>>= 7;
        }
        buf[size++] = (byte) v;
        return this;
    }

    /** Signed values, zigzag-encoded so small negatives stay short. */
    public ByteSink putZigZag(long v) { return putVarLong((v << 1) ^ (v >> 63)); }

    public ByteSink putBytes(byte[] b) { ensure(b.length); System.arraycopy(b, 0, buf, size, b.length); size += b.length; return this; }

    public int size() { return size; }

    public byte[] toByteArray() { return Arrays.copyOf(buf, size); }

    /** A little-endian view of the bytes written so far (shares the array). */
    public ByteBuffer view() { return ByteBuffer.wrap(buf, 0, size).order(ByteOrder.LITTLE_ENDIAN); }
}
