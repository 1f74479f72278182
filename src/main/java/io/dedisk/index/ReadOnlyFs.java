package io.dedisk.index;

import io.dedisk.store.Fs;
import io.dedisk.util.Check;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;

/**
 * The view of an {@link Fs} that a read-only index ({@link UdsIndex#openReadOnly}) and the verifier
 * ({@link IndexVerifier}) get: reads pass through; creating, writing, truncating, syncing, renaming, deleting
 * and making directories are refused with an {@link Check.InvariantViolation} (a bug: the code meant to change
 * nothing tried to). So "changes no byte" holds by construction, not by care.
 *
 * Note: {@link Fs#open} has no read-only mode, so the file below may still be opened for writing by the Fs
 * implementation (LocalFs opens READ+WRITE); this wrapper guarantees that no write is ever issued through it.
 *
 * Threads: as the wrapped Fs.
 */
final class ReadOnlyFs implements Fs {
    private final Fs inner;

    ReadOnlyFs(Fs inner) { this.inner = inner instanceof ReadOnlyFs r ? r.inner : inner; }

    private static IOException refuse(String what) {
        Check.that(false, "read-only index: attempted to %s", what);
        throw new AssertionError("unreachable");
    }

    @Override
    public FileHandle open(String name, boolean create) throws IOException {
        if (create && !inner.exists(name)) throw refuse("create " + name);
        FileHandle h = inner.open(name, false);
        return new FileHandle() {
            @Override public int read(long pos, ByteBuffer dst) throws IOException { return h.read(pos, dst); }
            @Override public void write(long pos, ByteBuffer src) throws IOException { throw refuse("write " + name); }
            @Override public void sync() throws IOException { throw refuse("sync " + name); }
            @Override public long size() throws IOException { return h.size(); }
            @Override public void truncate(long size) throws IOException { throw refuse("truncate " + name); }
            @Override public void close() throws IOException { h.close(); }
        };
    }

    @Override public boolean exists(String name) throws IOException { return inner.exists(name); }
    @Override public List<String> list(String dir) throws IOException { return inner.list(dir); }
    @Override public void mkdirs(String dir) throws IOException { throw refuse("create directory " + dir); }
    @Override public void delete(String name) throws IOException { throw refuse("delete " + name); }
    @Override public void rename(String from, String to) throws IOException { throw refuse("rename " + from + " to " + to); }
    @Override public void syncDir(String dir) throws IOException { throw refuse("sync directory " + dir); }
    @Override public long usableSpace() throws IOException { return inner.usableSpace(); }
}
