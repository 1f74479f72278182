package io.dedisk.index;

import io.dedisk.store.Fs;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;

/**
 * A view of an Fs as one process sees it: it can be killed at its k-th mutating operation (that operation and
 * every later one throw {@link Killed}, nothing reaches the Fs below), while the Fs below lives on, as the page
 * cache outlives a kill -9. Reopening on the Fs below then sees exactly what the killed process left; a
 * {@link io.dedisk.sim.SimFs} below can also be machine-crashed afterwards. Counts mutating operations and the
 * bytes written, so tests can bound what an operation costs.
 */
final class KillableFs implements Fs {
    /** The process died. An Error, so no catch block in the index eats it. */
    static final class Killed extends Error {
        private static final long serialVersionUID = 1L;
        Killed(long op) { super("process killed at mutating operation " + op); }
    }

    private final Fs inner;
    private long ops;
    private long killAt = Long.MAX_VALUE;
    private long bytesWritten;
    private boolean dead;

    KillableFs(Fs inner) { this.inner = inner; }

    /** Kills the process at mutating operation number k from now (1-based). */
    synchronized KillableFs killAfter(long k) { killAt = ops + k; return this; }

    synchronized long ops() { return ops; }

    synchronized long bytesWritten() { return bytesWritten; }

    synchronized boolean dead() { return dead; }

    private synchronized void mutating() {
        if (dead) throw new Killed(ops);
        ops++;
        if (ops >= killAt) {
            dead = true;
            throw new Killed(ops);
        }
    }

    private synchronized void alive() { if (dead) throw new Killed(ops); }

    @Override
    public FileHandle open(String name, boolean create) throws IOException {
        alive();
        if (create && !inner.exists(name)) mutating();
        FileHandle h = inner.open(name, create);
        return new FileHandle() {
            @Override public int read(long pos, ByteBuffer dst) throws IOException { alive(); return h.read(pos, dst); }

            @Override
            public void write(long pos, ByteBuffer src) throws IOException {
                mutating();
                synchronized (KillableFs.this) { bytesWritten += src.remaining(); }
                h.write(pos, src);
            }

            @Override public void sync() throws IOException { mutating(); h.sync(); }
            @Override public long size() throws IOException { alive(); return h.size(); }
            @Override public void truncate(long size) throws IOException { mutating(); h.truncate(size); }
            @Override public void close() throws IOException { h.close(); }
        };
    }

    @Override public boolean exists(String name) throws IOException { alive(); return inner.exists(name); }
    @Override public List<String> list(String dir) throws IOException { alive(); return inner.list(dir); }
    @Override public void mkdirs(String dir) throws IOException { mutating(); inner.mkdirs(dir); }
    @Override public void delete(String name) throws IOException { mutating(); inner.delete(name); }
    @Override public void rename(String from, String to) throws IOException { mutating(); inner.rename(from, to); }
    @Override public void syncDir(String dir) throws IOException { mutating(); inner.syncDir(dir); }
    @Override public long usableSpace() throws IOException { alive(); return inner.usableSpace(); }
    // readAll and writeAtomically: the interface's defaults, so they go through the counted calls above.
}
