package io.dedisk.pool;

import io.dedisk.store.Fs;
import io.dedisk.store.Fs.FileHandle;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Read access to segments: a bounded LRU of open file handles, so a pool of thousands of segments does not hold
 * thousands of descriptors. Reads run outside the pool's metadata lock; a handle evicted while a reader uses it
 * fails with ClosedChannelException and the read is retried on a fresh handle.
 *
 * Threads: any; the handle map is guarded by this object's monitor, the reads themselves are concurrent.
 */
final class SegmentFiles implements AutoCloseable {
    private final Fs fs;
    private final int maxOpen;
    private final LinkedHashMap<Long, FileHandle> open = new LinkedHashMap<>(64, 0.75f, true);

    SegmentFiles(Fs fs, int maxOpen) {
        this.fs = fs;
        this.maxOpen = maxOpen;
    }

    /** Reads exactly dst.remaining() bytes of segment seq at pos. */
    void read(long seq, long pos, ByteBuffer dst) throws IOException {
        int start = dst.position();
        for (int attempt = 0; ; attempt++) {
            FileHandle h = handle(seq);
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

    private synchronized FileHandle handle(long seq) throws IOException {
        FileHandle h = open.get(seq);
        if (h != null) return h;
        h = fs.open(LogWriter.segmentName(seq), false);
        open.put(seq, h);
        if (open.size() > maxOpen) {
            Iterator<Map.Entry<Long, FileHandle>> it = open.entrySet().iterator();
            FileHandle eldest = it.next().getValue();
            it.remove();
            eldest.close();
        }
        return h;
    }

    private synchronized void forget(long seq, FileHandle h) {
        open.remove(seq, h);
    }

    @Override
    public synchronized void close() throws IOException {
        for (FileHandle h : open.values()) h.close();
        open.clear();
    }
}
