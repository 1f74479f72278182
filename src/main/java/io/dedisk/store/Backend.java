package io.dedisk.store;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;

/**
 * Where a pool keeps its log and its manifest (DESIGN.md §4): the one interface the pool writes segments, pages
 * and checkpoints through. Segments are numbered; the open (tail) segment is appended through a {@link
 * Fs.FileHandle} the backend hands out (a local file for a directory; a local write-back file for an object
 * store), and once {@link #sealed} it is immutable. The manifest is the one object replaced in place.
 *
 * The first implementation is {@link DirectoryBackend} (the embedded default, a real store); an object-store
 * backend (S3) implements the same calls with uploads of sealed segments and a conditional manifest write.
 *
 * Threads: implementations are thread-safe; reads run concurrently with appends and with each other.
 */
public interface Backend extends AutoCloseable {
    /** Creates segment seq, empty, for appending; its existence is durable when this returns. */
    Fs.FileHandle createSegment(long seq) throws IOException;

    /** Opens existing segment seq for appending (the tail found by recovery). */
    Fs.FileHandle openSegment(long seq) throws IOException;

    /** The segment is complete (sealed and synced): it never changes again. */
    void sealed(long seq) throws IOException;

    /** Reads exactly dst.remaining() bytes of segment seq at pos (EOFException when it is shorter). */
    void read(long seq, long pos, ByteBuffer dst) throws IOException;

    /**
     * Reads like {@link #read}, for a caller that checks the bytes against a checksum of its own (a chunk body against
     * its reference's CRC32C): a backend with a cache may hand out cached bytes without checking them itself, and the
     * caller calls {@link #reread} when its check fails.
     */
    default void readForCallerCheck(long seq, long pos, ByteBuffer dst) throws IOException { read(seq, pos, dst); }

    /** The bytes again from where the backend keeps them for good, past any cache: a caller's check failed on them. */
    default void reread(long seq, long pos, ByteBuffer dst) throws IOException { read(seq, pos, dst); }

    /** Bytes in segment seq. */
    long segmentBytes(long seq) throws IOException;

    /** Sequence numbers of the segments that exist, ascending. */
    List<Long> segments() throws IOException;

    /** Deletes a segment no checkpoint and no reader needs any more; durable when this returns. */
    void deleteSegment(long seq) throws IOException;

    /** The manifest's bytes, or null when there is none yet. */
    byte[] readManifest() throws IOException;

    /** Replaces the manifest atomically and durably. */
    void writeManifest(byte[] content) throws IOException;

    /** Bytes still free for the pool, or Long.MAX_VALUE when unknown. */
    long usableSpace() throws IOException;

    @Override
    void close() throws IOException;
}
