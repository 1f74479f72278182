package io.dedisk.pool;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A volume as a block device (what NBD exports): byte-addressed I/O mapped onto whole 4 KiB blocks of the pool.
 * Partial blocks at either end of a request are read-modify-written under the block's stripe lock, so two
 * writes to different bytes of one block never lose each other. Thread-safe; holds no state but the handles.
 */
final class Volume implements VolumeDevice {
    private static final int BS = Pool.BLOCK_SIZE;
    private final Pool pool;
    private final VolumeState state;

    Volume(Pool pool, VolumeState state) {
        this.pool = pool;
        this.state = state;
    }

    @Override public String name() { return state.name; }
    @Override public long size() { return state.size; }
    @Override public boolean readOnly() { return state.snapshot || pool.readOnlyReason() != null; }

    @Override
    public void read(long offset, ByteBuffer dst) {
        int length = dst.remaining();
        pool.checkRange(state, offset, length);
        if (length == 0) return;
        long first = offset / BS;
        long end = (offset + length + BS - 1) / BS;
        byte[] buf = new byte[(int) (end - first) * BS];
        pool.readBlocks(state, first, (int) (end - first), buf, 0);
        dst.put(buf, (int) (offset - first * BS), length);
    }

    @Override
    public void write(long offset, ByteBuffer src, boolean fua) {
        int length = src.remaining();
        pool.checkRange(state, offset, length);
        int base = src.position();
        split(offset, length, new Parts() {
            @Override public void partial(long lba, int at, int len, long pos) {
                byte[] part = new byte[len];
                src.get(base + (int) (pos - offset), part);
                modifyBlock(lba, at, part);
            }

            @Override public void whole(long lba, long count, long pos) {
                int from = base + (int) (pos - offset);
                if (src.hasArray()) {
                    pool.writeBlocks(state, lba, src.array(), src.arrayOffset() + from, (int) count, false);
                } else {
                    // One recycled batch array at a time (BatchArrays: no humongous copy per request).
                    byte[] blocks = pool.batchArrays.take();
                    try {
                        for (long done = 0; done < count; done += WritePipeline.BATCH_BLOCKS) {
                            int n = (int) Math.min(WritePipeline.BATCH_BLOCKS, count - done);
                            src.get(from + (int) (done * BS), blocks, 0, n * BS);
                            pool.writeBlocks(state, lba + done, blocks, 0, n, false);
                        }
                    } finally {
                        pool.batchArrays.giveBack(blocks);
                    }
                }
            }
        });
        src.position(base + length);
        if (fua) pool.flush();
    }

    /** How a byte range falls on blocks: partial blocks at the ends, a run of whole blocks between. */
    private interface Parts {
        /** Bytes [at, at+len) of block lba; pos is the byte offset of the part in the volume. */
        void partial(long lba, int at, int len, long pos);

        void whole(long lba, long count, long pos);
    }

    private static void split(long offset, long length, Parts parts) {
        long end = offset + length;
        long pos = offset;
        if (pos % BS != 0 && pos < end) {
            long stop = Math.min(end, (pos / BS + 1) * BS);
            parts.partial(pos / BS, (int) (pos % BS), (int) (stop - pos), pos);
            pos = stop;
        }
        long whole = (end - pos) / BS;
        if (whole > 0) {
            parts.whole(pos / BS, whole, pos);
            pos += whole * BS;
        }
        if (pos < end) parts.partial(pos / BS, 0, (int) (end - pos), pos);
    }

    /** Read-modify-write of one block: bytes replace the block's content from offset {@code at}. */
    private void modifyBlock(long lba, int at, byte[] bytes) {
        ReentrantLock lock = state.stripe(lba);
        lock.lock();
        try {
            byte[] block = new byte[BS];
            pool.readBlocks(state, lba, 1, block, 0);
            System.arraycopy(bytes, 0, block, at, bytes.length);
            pool.writeBlocks(state, lba, block, 0, 1, false);
        } finally {
            lock.unlock();
        }
    }

    @Override
    public void writeZeroes(long offset, long length, boolean mayTrim, boolean fua) {
        zeroRange(offset, length, mayTrim, true);
        if (fua) pool.flush();
    }

    @Override
    public void trim(long offset, long length, boolean fua) {
        // Advisory: only whole blocks are released; partial edges keep their data.
        zeroRange(offset, length, true, false);
        if (fua) pool.flush();
    }

    private void zeroRange(long offset, long length, boolean unmap, boolean zeroPartialBlocks) {
        pool.checkRange(state, offset, length);
        split(offset, length, new Parts() {
            @Override public void partial(long lba, int at, int len, long pos) {
                if (zeroPartialBlocks) modifyBlock(lba, at, new byte[len]);
            }

            @Override public void whole(long lba, long count, long pos) {
                pool.mapRange(state, lba, count, unmap, false);
            }
        });
    }

    @Override
    public void flush() { pool.flush(); }

    @Override
    public List<Extent> blockStatus(long offset, long length) {
        pool.checkRange(state, offset, length);
        long first = offset / BS;
        long end = Math.min((offset + length + BS - 1) / BS, first + (1L << 20));
        List<Extent> blocks = pool.blockStatus(state, first, end - first);
        // The first extent starts at offset, which may be inside a block: trim it to start there.
        List<Extent> out = new ArrayList<>(blocks);
        Extent head = out.get(0);
        long skip = offset - first * BS;
        out.set(0, new Extent(head.length() - skip, head.hole(), head.zero()));
        return out;
    }
}
