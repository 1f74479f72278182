package io.dedisk.store;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The local-directory backend: segments are files {@code segments/<16 hex digits>.seg}, the manifest is the file
 * {@code manifest}, both in the pool directory, all through {@link Fs} (so the simulated twin SimFs stands in for
 * it in tests). Reads keep a bounded LRU of open handles, so a pool of thousands of segments does not hold
 * thousands of descriptors; a handle evicted while a reader uses it fails with ClosedChannelException and the read
 * is retried on a fresh handle.
 *
 * Durability: a created or deleted segment name is made durable by a directory fsync before the call returns; the
 * manifest is written to a temporary name, synced, renamed over the old one and the directory synced.
 * Threads: any; the handle map is guarded by this object's monitor, reads themselves run concurrently.
 */
public final class DirectoryBackend implements Backend {
    public static final String SEGMENTS = "segments";
    public static final String MANIFEST = "manifest";
    private static final int MAX_OPEN = 256;

    private final Fs fs;
    private final LinkedHashMap<Long, Fs.FileHandle> open = new LinkedHashMap<>(64, 0.75f, true);

    public DirectoryBackend(Fs fs) {
        this.fs = fs;
    }

    public static String segmentName(long seq) { return SEGMENTS + "/" + fileName(seq); }

    /** The sequence number in a segment file name, or -1 when the name is not one (a stray file). */
    static long segmentSeqOf(String fileName) {
        if (!fileName.endsWith(".seg") || fileName.length() != 20) return -1;
        try {
            return Long.parseUnsignedLong(fileName.substring(0, 16), 16);
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    /** Makes the directories of a new pool. */
    public static void initialize(Fs fs) throws IOException {
        fs.mkdirs(SEGMENTS);
        fs.syncDir("");
    }

    @Override
    public Fs.FileHandle createSegment(long seq) throws IOException { return createEmpty(fs, segmentName(seq)); }

    /** Creates (or empties) file {@code name} in fs and makes its name durable; the handle is open for appending. */
    static Fs.FileHandle createEmpty(Fs fs, String name) throws IOException {
        Fs.FileHandle h = fs.open(name, true);
        try {
            h.truncate(0);
            fs.syncDir(name.substring(0, name.lastIndexOf('/')));
        } catch (IOException | RuntimeException e) {
            h.close();
            throw e;
        }
        return h;
    }

    /** The file name of segment seq within its directory. */
    static String fileName(long seq) { return String.format("%016x.seg", seq); }

    @Override
    public Fs.FileHandle openSegment(long seq) throws IOException { return fs.open(segmentName(seq), false); }

    @Override
    public void sealed(long seq) { } // a local file is already where it stays

    @Override
    public void read(long seq, long pos, ByteBuffer dst) throws IOException {
        int start = dst.position();
        for (int attempt = 0; ; attempt++) {
            Fs.FileHandle h = handle(seq);
            try {
                h.readFully(pos, dst);
                return;
            } catch (ClosedChannelException e) {
                if (attempt >= 3) throw e;
                dst.position(start);
                forget(seq, h);
            }
        }
    }

    @Override
    public long segmentBytes(long seq) throws IOException {
        try (Fs.FileHandle h = fs.open(segmentName(seq), false)) { return h.size(); }
    }

    @Override
    public List<Long> segments() throws IOException {
        List<Long> out = new ArrayList<>();
        for (String f : fs.list(SEGMENTS)) {
            long seq = segmentSeqOf(f);
            if (seq > 0) out.add(seq);
        }
        out.sort(null);
        return out;
    }

    @Override
    public void deleteSegment(long seq) throws IOException {
        synchronized (this) {
            Fs.FileHandle h = open.remove(seq);
            if (h != null) h.close();
        }
        fs.delete(segmentName(seq));
        fs.syncDir(SEGMENTS);
    }

    @Override
    public byte[] readManifest() throws IOException {
        return fs.exists(MANIFEST) ? fs.readAll(MANIFEST) : null;
    }

    @Override
    public void writeManifest(byte[] content) throws IOException { fs.writeAtomically(MANIFEST, content); }

    @Override
    public long usableSpace() throws IOException { return fs.usableSpace(); }

    private synchronized Fs.FileHandle handle(long seq) throws IOException {
        Fs.FileHandle h = open.get(seq);
        if (h != null) return h;
        h = fs.open(segmentName(seq), false);
        open.put(seq, h);
        if (open.size() > MAX_OPEN) {
            Iterator<Map.Entry<Long, Fs.FileHandle>> it = open.entrySet().iterator();
            Fs.FileHandle eldest = it.next().getValue();
            it.remove();
            eldest.close();
        }
        return h;
    }

    private synchronized void forget(long seq, Fs.FileHandle h) { open.remove(seq, h); }

    @Override
    public synchronized void close() throws IOException {
        for (Fs.FileHandle h : open.values()) h.close();
        open.clear();
    }
}
