package io.dedisk.pool;

import java.nio.ByteBuffer;
import java.util.List;

/**
 * The block-device view of one volume: what the NBD server (and tests) drive. Byte offsets and lengths may be
 * unaligned; the implementation does read-modify-write for partial 4 KiB blocks.
 *
 * Thread safety: every method may be called concurrently from many threads and connections. Requests whose byte
 * ranges overlap have no defined order (as in NBD); non-overlapping requests never disturb each other, even
 * inside one 4 KiB block.
 *
 * Durability: a write is durable once {@link #flush()} returns after it completed, or when it was made with
 * {@code fua=true} and returned. Errors are {@link io.dedisk.DediskException} subclasses.
 */
public interface VolumeDevice {
    String name();

    /** Logical size in bytes (a multiple of 4096). */
    long size();

    boolean readOnly();

    /** Reads {@code dst.remaining()} bytes at {@code offset} into dst, advancing its position. */
    void read(long offset, ByteBuffer dst);

    /** Writes {@code src.remaining()} bytes at {@code offset}, advancing src's position. */
    void write(long offset, ByteBuffer src, boolean fua);

    /** Makes the range read as zeros. {@code mayTrim}: the store may deallocate (NBD: no NO_HOLE flag). */
    void writeZeroes(long offset, long length, boolean mayTrim, boolean fua);

    /** Advisory discard: whole 4 KiB blocks in the range are deallocated and read as zeros afterwards. */
    void trim(long offset, long length, boolean fua);

    /** Makes every write that completed before this call durable. */
    void flush();

    /**
     * Allocation status of [offset, offset+length), as consecutive extents starting at offset. The extents cover
     * at least one byte and at most the requested range; the caller may ask again for the rest.
     */
    List<Extent> blockStatus(long offset, long length);

    /** One run of blocks with the same allocation state. {@code hole}: no storage allocated; {@code zero}: reads zeros. */
    record Extent(long length, boolean hole, boolean zero) {}
}
