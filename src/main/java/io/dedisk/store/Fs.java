package io.dedisk.store;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;

/**
 * The filesystem as dedisk sees it: a flat directory of named files that can be appended, read at offsets,
 * synced, truncated, renamed and deleted. Everything the pool stores locally goes through this interface so a
 * simulated twin can keep synced and unsynced state apart and inject faults (crash, torn writes, EIO, ENOSPC).
 *
 * Names are relative paths with '/' separators ("segments/0000000001.seg"); {@link #list} lists one directory.
 * Durability rules (POSIX): file data is durable after {@link FileHandle#sync}; a created, renamed or deleted
 * name is durable after {@link #syncDir} of its directory.
 *
 * Errors are plain IOExceptions; the pool turns them into StorageException / NoSpaceException.
 */
public interface Fs {
    /** Opens a file for reading and writing, creating it (empty) when {@code create} and it does not exist. */
    FileHandle open(String name, boolean create) throws IOException;

    boolean exists(String name) throws IOException;

    /** Names (relative to dir, no path) of the files in dir, sorted; empty when dir does not exist. */
    List<String> list(String dir) throws IOException;

    void mkdirs(String dir) throws IOException;

    void delete(String name) throws IOException;

    /** Atomically replaces {@code to} with {@code from}. */
    void rename(String from, String to) throws IOException;

    /** Makes the names in dir (creations, renames, deletions) durable. */
    void syncDir(String dir) throws IOException;

    /** Bytes still free on the device below, or Long.MAX_VALUE when unknown. */
    long usableSpace() throws IOException;

    /** Reads a whole (small) file. */
    default byte[] readAll(String name) throws IOException {
        try (FileHandle h = open(name, false)) {
            long size = h.size();
            if (size > Integer.MAX_VALUE - 16) throw new IOException(name + ": too large to read whole (" + size + " bytes)");
            ByteBuffer buf = ByteBuffer.allocate((int) size);
            h.readFully(0, buf);
            return buf.array();
        }
    }

    /**
     * Writes a whole file durably and atomically: write to a temporary name, sync, rename over the target,
     * sync the directory. After a crash the target holds either its old content or the new one.
     */
    default void writeAtomically(String name, byte[] content) throws IOException {
        writeAtomically(name, h -> {
            h.write(0, ByteBuffer.wrap(content));
            return content.length;
        });
    }

    /** What {@link #writeAtomically(String, Writer)} runs on the empty temporary file; returns the bytes it wrote. */
    interface Writer {
        long write(FileHandle h) throws IOException;
    }

    /**
     * As {@link #writeAtomically(String, byte[])}, with the content streamed by {@code body} into the temporary file
     * (deleted again if the body fails). Returns what the body returned.
     */
    default long writeAtomically(String name, Writer body) throws IOException {
        String tmp = name + ".tmp";
        boolean done = false;
        long size;
        try (FileHandle h = open(tmp, true)) {
            h.truncate(0);
            size = body.write(h);
            h.sync();
            done = true;
        } finally {
            if (!done) delete(tmp);
        }
        rename(tmp, name);
        int slash = name.lastIndexOf('/');
        syncDir(slash < 0 ? "" : name.substring(0, slash));
        return size;
    }

    /** One open file. Positional reads and writes may be issued concurrently from several threads. */
    interface FileHandle extends AutoCloseable {
        /** Reads into dst at pos until dst is full or the file ends; returns bytes read. */
        int read(long pos, ByteBuffer dst) throws IOException;

        /** Writes all of src at pos. */
        void write(long pos, ByteBuffer src) throws IOException;

        void sync() throws IOException;

        long size() throws IOException;

        void truncate(long size) throws IOException;

        @Override
        void close() throws IOException;

        /** Reads exactly dst.remaining() bytes or throws EOFException naming the shortfall. */
        default void readFully(long pos, ByteBuffer dst) throws IOException {
            int want = dst.remaining();
            int got = read(pos, dst);
            if (got < want) {
                throw new java.io.EOFException("short read at " + pos + ": expected " + want + " bytes, found " + got);
            }
        }
    }
}
