package io.dedisk.index;

import io.dedisk.store.Fs;
import java.io.IOException;
import java.util.List;

/** An Fs that forwards everything; tests override single methods to inject faults or pauses. */
class DelegatingFs implements Fs {
    private final Fs inner;

    DelegatingFs(Fs inner) { this.inner = inner; }

    @Override public FileHandle open(String name, boolean create) throws IOException { return inner.open(name, create); }
    @Override public boolean exists(String name) throws IOException { return inner.exists(name); }
    @Override public List<String> list(String dir) throws IOException { return inner.list(dir); }
    @Override public void mkdirs(String dir) throws IOException { inner.mkdirs(dir); }
    @Override public void delete(String name) throws IOException { inner.delete(name); }
    @Override public void rename(String from, String to) throws IOException { inner.rename(from, to); }
    @Override public void syncDir(String dir) throws IOException { inner.syncDir(dir); }
    @Override public long usableSpace() throws IOException { return inner.usableSpace(); }
    @Override public byte[] readAll(String name) throws IOException { return inner.readAll(name); }
    @Override public void writeAtomically(String name, byte[] content) throws IOException { inner.writeAtomically(name, content); }
}
