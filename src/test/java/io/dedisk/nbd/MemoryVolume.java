package io.dedisk.nbd;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

import io.dedisk.DediskException;
import io.dedisk.pool.VolumeDevice;

/**
 * Test twin of a dedisk volume: a byte[] with a per-4-KiB-block allocation map, a flush counter, and hooks to
 * delay or fail operations. Thread-safe: data access is synchronized; delays and faults happen outside the lock
 * so that delayed requests really overlap.
 *
 * Semantics follow {@link VolumeDevice}: writes allocate the blocks they touch; writeZeroes with mayTrim and trim
 * deallocate whole blocks inside the range (partial blocks are zeroed but stay allocated); blockStatus reports
 * runs of (hole, zero) state, at most {@link #blockStatusShape} extents per call of at most a given length.
 */
final class MemoryVolume implements VolumeDevice {
    static final int BLOCK = 4096;

    /** An operation as seen by the hooks. */
    enum Op { READ, WRITE, WRITE_ZEROES, TRIM, FLUSH, BLOCK_STATUS }

    /** Decides, per operation, a delay in milliseconds (0: none). */
    interface Delay {
        long millis(Op op, long offset);
    }

    /** Decides, per operation, a failure to throw (null: none). May return Errors to simulate bugs. */
    interface Fault {
        Throwable failure(Op op, long offset);
    }

    private final String name;
    private final byte[] data;
    private final BitSet allocated;
    private final boolean readOnly;
    private final AtomicInteger flushes = new AtomicInteger();
    private final AtomicInteger fuaWrites = new AtomicInteger();
    private volatile Delay delay = (op, offset) -> 0;
    private volatile Fault fault = (op, offset) -> null;
    private volatile int maxExtentsPerCall = Integer.MAX_VALUE;
    private volatile long maxExtentLength = Long.MAX_VALUE;

    MemoryVolume(String name, int size, boolean readOnly) {
        if (size % BLOCK != 0) throw new IllegalArgumentException("size must be a multiple of 4096: " + size);
        this.name = name;
        this.data = new byte[size];
        this.allocated = new BitSet(size / BLOCK);
        this.readOnly = readOnly;
    }

    MemoryVolume(String name, int size) {
        this(name, size, false);
    }

    void delay(Delay delay) {
        this.delay = delay;
    }

    void fault(Fault fault) {
        this.fault = fault;
    }

    /** Limits what one blockStatus call returns, to exercise the server's repeated calls and merging. */
    void blockStatusShape(int maxExtentsPerCall, long maxExtentLength) {
        this.maxExtentsPerCall = maxExtentsPerCall;
        this.maxExtentLength = maxExtentLength;
    }

    int flushes() {
        return flushes.get();
    }

    int fuaWrites() {
        return fuaWrites.get();
    }

    synchronized byte[] snapshot(int offset, int length) {
        byte[] copy = new byte[length];
        System.arraycopy(data, offset, copy, 0, length);
        return copy;
    }

    synchronized boolean isAllocated(long offset) {
        return allocated.get((int) (offset / BLOCK));
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public long size() {
        return data.length;
    }

    @Override
    public boolean readOnly() {
        return readOnly;
    }

    @Override
    public void read(long offset, ByteBuffer dst) {
        hooks(Op.READ, offset);
        int length = dst.remaining();
        checkRange(offset, length);
        synchronized (this) {
            dst.put(data, (int) offset, length);
        }
    }

    @Override
    public void write(long offset, ByteBuffer src, boolean fua) {
        hooks(Op.WRITE, offset);
        checkWritable();
        int length = src.remaining();
        checkRange(offset, length);
        synchronized (this) {
            src.get(data, (int) offset, length);
            allocate(offset, length);
        }
        if (fua) fuaWrites.incrementAndGet();
    }

    @Override
    public void writeZeroes(long offset, long length, boolean mayTrim, boolean fua) {
        hooks(Op.WRITE_ZEROES, offset);
        checkWritable();
        checkRange(offset, length);
        synchronized (this) {
            Arrays.fill(data, (int) offset, (int) (offset + length), (byte) 0);
            allocate(offset, length);
            if (mayTrim) deallocateWholeBlocks(offset, length);
        }
    }

    @Override
    public void trim(long offset, long length, boolean fua) {
        hooks(Op.TRIM, offset);
        checkWritable();
        checkRange(offset, length);
        synchronized (this) {
            deallocateWholeBlocks(offset, length);
        }
    }

    @Override
    public void flush() {
        hooks(Op.FLUSH, 0);
        flushes.incrementAndGet();
    }

    @Override
    public List<Extent> blockStatus(long offset, long length) {
        hooks(Op.BLOCK_STATUS, offset);
        checkRange(offset, length);
        List<Extent> extents = new ArrayList<>();
        long end = offset + length;
        long position = offset;
        synchronized (this) {
            while (position < end && extents.size() < maxExtentsPerCall) {
                boolean hole = !allocated.get((int) (position / BLOCK));
                boolean zero = hole || blockIsZero(position);
                long limit = position + Math.min(maxExtentLength, end - position);
                long runEnd = position;
                while (runEnd < limit) {
                    boolean h = !allocated.get((int) (runEnd / BLOCK));
                    if (h != hole || (h || blockIsZero(runEnd)) != zero) break;
                    runEnd = Math.min(limit, (runEnd / BLOCK + 1) * BLOCK);
                }
                extents.add(new Extent(runEnd - position, hole, zero));
                position = runEnd;
            }
        }
        return extents;
    }

    private boolean blockIsZero(long position) {
        int start = (int) (position / BLOCK * BLOCK);
        for (int i = start; i < start + BLOCK; i++) if (data[i] != 0) return false;
        return true;
    }

    private void allocate(long offset, long length) {
        allocated.set((int) (offset / BLOCK), (int) ((offset + length + BLOCK - 1) / BLOCK));
    }

    private void deallocateWholeBlocks(long offset, long length) {
        long first = (offset + BLOCK - 1) / BLOCK;
        long end = (offset + length) / BLOCK;
        if (first >= end) return;
        Arrays.fill(data, (int) (first * BLOCK), (int) (end * BLOCK), (byte) 0);
        allocated.clear((int) first, (int) end);
    }

    private void checkRange(long offset, long length) {
        if (offset < 0 || length < 0 || offset + length > data.length) {
            throw new DediskException.InvalidRequestException("range " + offset + "+" + length + " outside volume of "
                    + data.length + " bytes");
        }
    }

    private void checkWritable() {
        if (readOnly) throw new DediskException.ReadOnlyException("volume " + name + " is read-only");
    }

    private void hooks(Op op, long offset) {
        long millis = delay.millis(op, offset);
        if (millis > 0) {
            try {
                Thread.sleep(millis);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        Throwable failure = fault.failure(op, offset);
        switch (failure) {
            case null -> { }
            case RuntimeException e -> throw e;
            case Error e -> throw e;
            default -> throw new IllegalStateException("unexpected fault", failure);
        }
    }
}
