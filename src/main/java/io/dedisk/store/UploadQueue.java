package io.dedisk.store;

import io.dedisk.store.ObjectStore.PreconditionFailedException;
import io.dedisk.util.Check;
import java.io.IOException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;

/**
 * The ordered work of a bucket pool's writer towards its bucket (DESIGN.md §3, §4): upload sealed segments, write the
 * manifest, delete cleaned segments. The order is what keeps the bucket a prefix of the write history at every moment:
 * <ul>
 *   <li>segments upload in sequence order, each with put-if-absent (immutable, named by sequence: an ambiguous put is
 *       retried, and a 412 whose object holds our bytes is our own earlier put: {@link RetryingObjectStore});</li>
 *   <li>a manifest is written only once every segment up to the log tail at the time it was written is in the bucket
 *       (its root lies at or before that tail), by replace-if-match on the ETag of the manifest this writer wrote last;
 *       of several manifests ready at once only the newest is written;</li>
 *   <li>a segment deletion queued after a manifest runs only once that manifest (or a newer one) is in the bucket.</li>
 * </ul>
 * A 412 (never our own earlier write: the store below counts those as done) means another writer took the pool: the
 * queue stops for good (fenced), and the listener is told once.
 *
 * Failures: each request is tried as the {@link Retry} policy says by the store below ({@link RetryingObjectStore},
 * the one retrying layer); when it still fails, a caller waiting for it ({@link #awaitStored}, {@link #drain}, {@link
 * #claim}) gets that error at once, and the background uploader, which never abandons the queue, pauses by the same
 * policy's backoff (growing with its consecutive failures) and runs the request again.
 *
 * Threads: any. {@link #runOne} performs one request at a time (the {@code processing} lock): the background uploader
 * and a thread waiting in {@link #awaitStored} both drive it, so the simulation, which starts no uploader, runs it
 * inline and replays exactly. State is guarded by this object's monitor.
 */
final class UploadQueue {
    static final String MANIFEST = "manifest";
    private static final System.Logger LOG = System.getLogger("dedisk.upload");

    /** The cache's side of uploads: the bytes of a sealed write-back segment, and what to drop once stored or deleted. */
    interface Local {
        byte[] sealedBytes(long seq) throws IOException;

        void uploaded(long seq) throws IOException;

        void deleted(long seq);
    }

    private record Upload(long bytes, long sealedMillis) {}

    /** A manifest waiting for the segments up to {@code needsThrough}, and the deletions queued after it. */
    private static final class ManifestWrite {
        final byte[] content;
        final long needsThrough;
        final List<Long> deletesAfter = new ArrayList<>();

        ManifestWrite(byte[] content, long needsThrough) {
            this.content = content;
            this.needsThrough = needsThrough;
        }
    }

    private final ObjectStore store;
    private final Local local;
    private final Retry retry;
    private final ReentrantLock processing = new ReentrantLock();
    private final TreeMap<Long, Upload> uploads = new TreeMap<>();
    private final ArrayDeque<ManifestWrite> manifests = new ArrayDeque<>();
    private final ArrayDeque<Long> deletes = new ArrayDeque<>();
    /** The highest segment in the bucket (uploaded in order, so every sealed one below it is too). */
    private long storedThrough;
    /** The ETag of the bucket's manifest as this writer last wrote or read it; null when there is none. */
    private String manifestEtag;
    private String fenced;
    private Consumer<String> fencedListener = reason -> { };
    private int failures;
    private IOException lastError;

    UploadQueue(ObjectStore store, Local local, Retry retry, long storedThrough, String manifestEtag) {
        this.store = store;
        this.local = local;
        this.retry = retry;
        this.storedThrough = storedThrough;
        this.manifestEtag = manifestEtag;
    }

    static String segmentKey(long seq) { return DirectoryBackend.segmentName(seq); } // the same names as in a directory

    synchronized void whenFenced(Consumer<String> listener) { fencedListener = listener; }

    synchronized String fenced() { return fenced; }

    synchronized long storedThrough() { return storedThrough; }

    synchronized boolean pending(long seq) { return uploads.containsKey(seq); }

    /** Segment seq is sealed: upload it after the ones before. */
    synchronized void sealed(long seq, long bytes) {
        Check.that(seq > storedThrough && (uploads.isEmpty() || seq > uploads.lastKey()), "segment %d sealed in order (stored through %d, queued %s)",
                seq, storedThrough, uploads.isEmpty() ? "none" : uploads.lastKey());
        uploads.put(seq, new Upload(bytes, System.currentTimeMillis()));
        notifyAll();
    }

    /** A manifest to write once segments through {@code needsThrough} are stored. */
    synchronized void manifest(byte[] content, long needsThrough) {
        manifests.add(new ManifestWrite(content.clone(), needsThrough));
        notifyAll();
    }

    /** A segment to delete once the manifest written before this call is stored. */
    synchronized void delete(long seq) {
        if (manifests.isEmpty()) deletes.add(seq); else manifests.peekLast().deletesAfter.add(seq);
        notifyAll();
    }

    synchronized SharedBackend.Backlog backlog() {
        long bytes = 0;
        for (Upload u : uploads.values()) bytes += u.bytes();
        long oldest = uploads.isEmpty() ? 0 : System.currentTimeMillis() - uploads.firstEntry().getValue().sealedMillis();
        return new SharedBackend.Backlog(uploads.size(), bytes, oldest);
    }

    private sealed interface Op permits UploadOp, ManifestOp, DeleteOp {}
    private record UploadOp(long seq) implements Op {}
    private record ManifestOp(ManifestWrite write) implements Op {}
    private record DeleteOp(long seq) implements Op {}

    /** The next request: the newest ready manifest, else a released deletion, else the next upload. */
    private synchronized Op next() {
        ManifestWrite ready = null;
        for (ManifestWrite m : manifests) if (m.needsThrough <= storedThrough) ready = m;
        if (ready != null) return new ManifestOp(ready);
        if (!deletes.isEmpty()) return new DeleteOp(deletes.peekFirst());
        if (!uploads.isEmpty()) return new UploadOp(uploads.firstKey());
        return null;
    }

    /** Performs the next request once. Returns false when there was nothing to do or it failed (see {@link #failures}). */
    boolean runOne() throws FencedException {
        processing.lock();
        try {
            checkNotFenced();
            Op op = next();
            if (op == null) return false;
            try {
                perform(op);
                synchronized (this) { failures = 0; }
                return true;
            } catch (FencedException e) {
                throw e;
            } catch (IOException e) {
                synchronized (this) {
                    failures++;
                    lastError = e;
                }
                LOG.log(System.Logger.Level.DEBUG, "bucket request failed (will retry): {0}", e.toString());
                return false;
            }
        } finally {
            processing.unlock();
        }
    }

    private void perform(Op op) throws IOException {
        switch (op) {
            case UploadOp u -> {
                byte[] bytes = local.sealedBytes(u.seq());
                long expected;
                synchronized (this) { expected = uploads.get(u.seq()).bytes(); }
                Check.that(bytes.length == expected, "segment %d holds %d bytes as sealed, found %d", u.seq(), expected, bytes.length);
                String key = segmentKey(u.seq());
                try {
                    store.putIfAbsent(key, bytes); // our own earlier put (ambiguous, or before a crash) counts as done
                } catch (PreconditionFailedException e) {
                    throw fence("segment " + u.seq() + " was written by another writer (a newer owner's fence): this writer no longer owns the pool");
                }
                synchronized (this) {
                    uploads.remove(u.seq());
                    storedThrough = Math.max(storedThrough, u.seq());
                    notifyAll();
                }
                local.uploaded(u.seq());
            }
            case ManifestOp m -> {
                writeManifest(m.write().content);
                synchronized (this) {
                    while (true) { // this one and every older one are done; their deletions are released
                        ManifestWrite w = manifests.pollFirst();
                        deletes.addAll(w.deletesAfter);
                        if (w == m.write()) break;
                    }
                    notifyAll();
                }
            }
            case DeleteOp d -> {
                store.delete(segmentKey(d.seq()));
                synchronized (this) { deletes.remove(d.seq()); }
                local.deleted(d.seq());
            }
        }
    }

    /** Replaces the bucket's manifest (see {@link #replaceManifest}); a lost condition means another owner: fenced. */
    private void writeManifest(byte[] content) throws IOException {
        try {
            replaceManifest(content);
        } catch (PreconditionFailedException e) {
            throw fence("the bucket's manifest was replaced by another writer (" + e.getMessage() + "): this writer no longer owns the pool");
        }
    }

    /**
     * Replaces the bucket's manifest conditionally on the ETag last seen (created if there was none) and keeps the new
     * ETag; a 412 (another writer's manifest: our own earlier write counts as done below) is thrown.
     */
    private void replaceManifest(byte[] content) throws IOException {
        String etag;
        synchronized (this) { etag = manifestEtag; }
        String next = etag == null ? store.putIfAbsent(MANIFEST, content) : store.replaceIfMatch(MANIFEST, content, etag);
        synchronized (this) { manifestEtag = next; }
    }

    private FencedException fence(String why) {
        Consumer<String> listener;
        synchronized (this) {
            if (fenced != null) return new FencedException(fenced);
            fenced = why;
            listener = fencedListener;
            notifyAll();
        }
        LOG.log(System.Logger.Level.ERROR, "fenced: {0}", why);
        listener.accept("fenced: " + why);
        return new FencedException(why);
    }

    private synchronized void checkNotFenced() throws FencedException {
        if (fenced != null) throw new FencedException(fenced);
    }

    /** Returns once no sealed segment up to seq waits for upload. */
    void awaitStored(long seq) throws IOException {
        driveUntil(() -> uploads.headMap(seq, true).isEmpty(), "segment " + seq);
    }

    /** Returns once everything queued that can run is done (a clean close: the tail is sealed first). */
    void drain() throws IOException {
        driveUntil(() -> uploads.isEmpty() && manifests.isEmpty() && deletes.isEmpty(), "the upload queue");
    }

    /**
     * Takes the pool (see {@link SharedBackend#claim}): drops manifests queued but superseded by this one (their
     * deletions are redone by a later checkpoint), then writes it now, ahead of the uploads waiting (its roots are in
     * the bucket already); a 412 is thrown to the caller.
     */
    void claim(byte[] content) throws IOException {
        synchronized (this) {
            manifests.clear();
            deletes.clear();
        }
        replaceManifest(content); // a 412 is another writer's manifest: the caller decides (Ownership)
    }

    private interface Condition {
        boolean holds();
    }

    private void driveUntil(Condition done, String what) throws IOException {
        while (true) {
            synchronized (this) {
                if (fenced != null) throw new FencedException(fenced);
                if (done.holds()) return;
            }
            if (runOne()) continue;
            synchronized (this) {
                if (done.holds()) return;
                // Nothing can run: what is left waits for a segment not sealed yet (a manifest naming the open tail).
                // It stays queued, and in the cache's manifest file; only drain() can get here.
                if (next() == null) return;
                if (failures > 0) throw new IOException("the bucket did not take " + what + ": " + lastError.getMessage(), lastError);
            }
        }
    }

    /** The background uploader's loop: until {@code stop} is set, drives the queue, waiting when idle or failing. */
    void runUntil(java.util.concurrent.atomic.AtomicBoolean stop) {
        while (!stop.get()) {
            try {
                if (runOne()) continue;
                int f;
                synchronized (this) {
                    f = failures;
                    if (f == 0) {
                        wait(1000);
                        continue;
                    }
                }
                retry.pause("the upload queue", f);
            } catch (FencedException e) {
                return;
            } catch (InterruptedException | IOException e) {
                if (stop.get()) return;
            } catch (RuntimeException e) {
                LOG.log(System.Logger.Level.ERROR, "uploader failed (retrying): " + e, e);
                synchronized (this) { failures++; }
            }
        }
    }

    synchronized void wakeUp() { notifyAll(); }
}
