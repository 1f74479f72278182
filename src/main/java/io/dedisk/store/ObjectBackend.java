package io.dedisk.store;

import io.dedisk.util.Check;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.file.NoSuchFileException;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import java.util.UUID;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import java.util.function.Consumer;

/**
 * The backend of a pool in an object-store bucket (DESIGN.md §3, §4), with a local cache directory.
 *
 * Bucket (keys under the pool's prefix): {@code superblock} (written once), {@code manifest} (replaced only by
 * conditional write: {@link UploadQueue}), {@code segments/<16 hex>.seg} (immutable, put-if-absent, named by sequence).
 * Cache directory ({@link Fs}): {@code identity} ({@link CacheIdentity}), {@code manifest} (the newest this writer
 * wrote, ahead of the bucket's until its segments are up), {@code writeback/<16 hex>.seg} (the open segment and the
 * sealed ones not yet uploaded: FLUSH is their fsync, no request), {@code readcache/} ({@link ObjectReadCache}).
 *
 * Reads: the local write-back file, else the read cache, else a ranged GET (kept in the read cache). Sealed segments
 * upload in order in the background ({@link UploadQueue}); once stored their write-back file is deleted. Segments
 * the pool deletes go once a manifest that does not need them is in the bucket. Losing the cache directory leaves the
 * bucket at a prefix of the log: every segment up to some sequence, and a manifest whose roots lie in them.
 *
 * Fencing: once the queue finds another writer's object where it writes (412), the backend is fenced: the queue stops,
 * writes and syncs of the write-back tail fail with {@link FencedException}, and the pool is told (read-only).
 *
 * Threads: any; changes to the write-back handles are made under this object's monitor, and reads look them up without
 * it (a concurrent map); {@link #localGuard} keeps a handle open while it is read (read: a read inside a write-back
 * file; write: dropping one after its upload).
 */
public final class ObjectBackend implements SharedBackend {
    public static final String SUPERBLOCK = "superblock";
    static final String SEGMENT_PREFIX = "segments/";
    static final String WRITEBACK = "writeback";
    static final String CACHED_MANIFEST = "manifest";
    private static final System.Logger LOG = System.getLogger("dedisk.objectbackend");

    /**
     * How a bucket pool is opened: the options the CLI gives (--read-cache, --sync-to-backend, --force), and whether an
     * uploader thread runs and retries wait (not in the simulation, which drives the queue itself and replays exactly).
     */
    public record Options(long readCacheBytes, boolean syncToBackend, boolean force, boolean simulated, long takeoverGraceMillis) {
        public static final long DEFAULT_READ_CACHE = 1L << 30;
        /** Segments from before a forced takeover are kept this long for the fenced writer's reads (SlateDB's GC rule). */
        public static final long DEFAULT_TAKEOVER_GRACE_MILLIS = 10 * 60_000L;

        public static Options defaults() { return new Options(DEFAULT_READ_CACHE, false, false, false, DEFAULT_TAKEOVER_GRACE_MILLIS); }

        public Options withReadCache(long bytes) { return new Options(bytes, syncToBackend, force, simulated, takeoverGraceMillis); }

        public Options withSyncToBackend(boolean sync) { return new Options(readCacheBytes, sync, force, simulated, takeoverGraceMillis); }

        public Options withForce(boolean f) { return new Options(readCacheBytes, syncToBackend, f, simulated, takeoverGraceMillis); }

        public Options asSimulated() { return new Options(readCacheBytes, syncToBackend, force, true, takeoverGraceMillis); }

        /** The simulation, whose lost hosts are dead for good, takes 0 so the cleaner's deletions go on after a takeover. */
        public Options withTakeoverGrace(long millis) { return new Options(readCacheBytes, syncToBackend, force, simulated, millis); }

        /** How bucket requests are retried: the default policy, without waits in the simulation. */
        Retry retry() { return simulated ? Retry.defaults().withoutWaiting() : Retry.defaults(); }
    }

    private final ObjectStore store;
    private final Fs cache;
    private final UUID poolId;
    private final CacheIdentity identity;
    private final boolean readOnly;
    private final Options options;
    private final ObjectStore.Versioned storedManifest;
    private final UploadQueue queue;
    private final ObjectReadCache readCache;
    /** Sizes of the segments in the bucket. */
    private final ConcurrentSkipListMap<Long, Long> bucket = new ConcurrentSkipListMap<>();
    /** Read handles of the write-back files (the open tail and the sealed ones waiting for upload). */
    private final ConcurrentSkipListMap<Long, Fs.FileHandle> local = new ConcurrentSkipListMap<>();
    private final ReentrantReadWriteLock localGuard = new ReentrantReadWriteLock();
    private final AtomicBoolean stopUploader = new AtomicBoolean();
    private Thread uploader;
    private byte[] cachedManifest;
    private volatile boolean cacheDiscarded;
    private long tailSeq;

    ObjectBackend(ObjectStore store, Fs cache, UUID poolId, CacheIdentity identity, boolean readOnly, Options options) throws IOException {
        this.store = store; // a RetryingObjectStore (ObjectStorage wraps it)
        this.cache = cache;
        this.poolId = poolId;
        this.identity = identity;
        this.readOnly = readOnly;
        this.options = options;
        this.storedManifest = this.store.get(UploadQueue.MANIFEST);
        for (ObjectStore.Info i : this.store.list(SEGMENT_PREFIX)) {
            long seq = DirectoryBackend.segmentSeqOf(i.key().substring(SEGMENT_PREFIX.length()));
            if (seq > 0) bucket.put(seq, i.size());
        }
        probeListingLag();
        for (String f : cache.list(WRITEBACK)) {
            long seq = DirectoryBackend.segmentSeqOf(f);
            if (seq > 0) local.put(seq, cache.open(WRITEBACK + "/" + f, false));
        }
        this.cachedManifest = cache.exists(CACHED_MANIFEST) ? cache.readAll(CACHED_MANIFEST) : null;
        this.tailSeq = Math.max(bucket.isEmpty() ? 0 : bucket.lastKey(), local.isEmpty() ? 0 : local.lastKey());
        this.queue = new UploadQueue(this.store, new Uploaded(), options.retry(), bucket.isEmpty() ? 0 : bucket.lastKey(),
                storedManifest == null ? null : storedManifest.etag());
        this.readCache = new ObjectReadCache(cache, poolId, options.readCacheBytes(), readOnly);
    }

    /**
     * A listing may lag behind the newest puts (an object stored but not yet listed): the segments after the last one
     * listed are probed by key, so the log's newest segments are not mistaken for missing.
     */
    private void probeListingLag() throws IOException {
        long next = bucket.isEmpty() ? 1 : bucket.lastKey() + 1;
        while (true) {
            ObjectStore.Versioned v = store.get(UploadQueue.segmentKey(next));
            if (v == null) return;
            LOG.log(System.Logger.Level.INFO, "segment {0} is in the bucket but not yet listed", next);
            bucket.put(next, (long) v.content().length);
            next++;
        }
    }

    private static String writebackName(long seq) { return WRITEBACK + "/" + DirectoryBackend.fileName(seq); }

    /** Starts the background uploader once the pool is ours (the simulation drives the queue itself). */
    private void startUploader() {
        if (readOnly || options.simulated() || uploader != null) return;
        uploader = Thread.ofPlatform().daemon().name("dedisk-upload").start(() -> queue.runUntil(stopUploader));
    }

    /** One request of the upload queue, for the simulation and tests; false when idle or it failed. */
    public boolean uploadStep() throws IOException { return queue.runOne(); }

    /** Everything queued that can go, now (tests). */
    public void drainUploads() throws IOException { queue.drain(); }

    public CacheIdentity identity() { return identity; }

    // ---------------------------------------------------------------- SharedBackend

    @Override public UUID ownerId() { return identity.cacheId(); }

    @Override public boolean force() { return options.force(); }

    @Override public boolean syncToBackend() { return options.syncToBackend(); }

    @Override public long takeoverGraceMillis() { return options.takeoverGraceMillis(); }

    @Override public byte[] storedManifest() { return storedManifest == null ? null : storedManifest.content().clone(); }

    @Override public synchronized byte[] cachedManifest() { return cacheDiscarded || cachedManifest == null ? null : cachedManifest.clone(); }

    @Override
    public void discardCache() throws IOException {
        LOG.log(System.Logger.Level.WARNING, "pool {0}: the cache directory belongs to an epoch another writer superseded; {1}", poolId,
                readOnly ? "ignored" : "its write-back segments are dropped");
        List<Long> seqs;
        synchronized (this) {
            cacheDiscarded = true;
            seqs = new ArrayList<>(local.keySet());
        }
        if (readOnly) return;
        for (long seq : seqs) dropLocal(seq);
        cache.delete(CACHED_MANIFEST);
        for (long seq : new TreeSet<>(bucket.keySet())) readCache.forget(seq);
        cache.syncDir("");
        synchronized (this) {
            cachedManifest = null;
            tailSeq = bucket.isEmpty() ? 0 : bucket.lastKey();
            // The stale files are gone: what the cache holds from now on is this owner's (its fence segment first),
            // so it must be seen again. A read-only open keeps them, hidden by the flag.
            cacheDiscarded = false;
        }
    }

    @Override
    public void claim(byte[] forStore, byte[] forCache) throws IOException {
        Check.that(!readOnly, "a read-only open claims nothing");
        // Uploads go in order, so a write-back segment at or below the bucket's newest was uploaded before a crash
        // (and maybe deleted since: a machine crash can bring back a file whose deletion was not synced): dropped.
        // The others wait in order; the highest is the tail, which recovery continues or seals.
        List<Long> seqs;
        synchronized (this) { seqs = new ArrayList<>(local.keySet()); }
        long last = seqs.isEmpty() ? 0 : seqs.get(seqs.size() - 1);
        long stored = bucket.isEmpty() ? 0 : bucket.lastKey();
        for (long seq : seqs) {
            if (seq <= stored) dropLocal(seq);
            else if (seq != last) queue.sealed(seq, segmentBytes(seq));
        }
        queue.claim(forStore);
        cache.writeAtomically(CACHED_MANIFEST, forCache);
        synchronized (this) { cachedManifest = forCache.clone(); }
        if (!java.util.Arrays.equals(forStore, forCache)) queue.manifest(forCache, last); // its roots lie at or before the tail
        startUploader();
    }

    @Override public void awaitStored(long seq) throws IOException { queue.awaitStored(seq); }

    @Override public void whenFenced(Consumer<String> reason) { queue.whenFenced(reason); }

    /**
     * A writer's is its upload queue's (sealed segments waiting). A read-only open (offline stats) has no queue: what it
     * reports is the cache directory's write-back segments the bucket lacks, the unsealed tail included (after a
     * kill -9 it holds flushed writes too), with the oldest one's age unknown (-1): nothing here records when it was sealed.
     */
    @Override
    public Backlog backlog() {
        if (!readOnly) return queue.backlog();
        long stored = bucket.isEmpty() ? 0 : bucket.lastKey(), segments = 0, bytes = 0;
        if (!cacheDiscarded) {
            for (var e : local.tailMap(stored, false).entrySet()) {
                try {
                    bytes += e.getValue().size();
                    segments++;
                } catch (IOException unreadable) {
                    LOG.log(System.Logger.Level.WARNING, "write-back segment {0}: size unknown ({1})", e.getKey(), unreadable.toString());
                }
            }
        }
        return new Backlog(segments, bytes, segments == 0 ? 0 : -1);
    }

    // ---------------------------------------------------------------- Backend

    @Override
    public Fs.FileHandle createSegment(long seq) throws IOException {
        checkWritable();
        long previous = seq - 1;
        synchronized (this) {
            // Sealed before a crash, before its successor existed: nobody called sealed() for it.
            if (local.containsKey(previous) && !queue.pending(previous) && previous > queue.storedThrough()) queue.sealed(previous, local.get(previous).size());
        }
        String name = writebackName(seq);
        cache.mkdirs(WRITEBACK);
        Fs.FileHandle h = DirectoryBackend.createEmpty(cache, name);
        synchronized (this) {
            Fs.FileHandle old = local.put(seq, cache.open(name, false));
            if (old != null) old.close();
            tailSeq = Math.max(tailSeq, seq);
        }
        return new WriteBackHandle(h);
    }

    @Override
    public Fs.FileHandle openSegment(long seq) throws IOException {
        synchronized (this) {
            if (!cacheDiscarded && local.containsKey(seq)) return new WriteBackHandle(cache.open(writebackName(seq), false));
        }
        if (bucket.containsKey(seq)) return new StoredHandle(seq); // sealed and uploaded: nothing to append or sync
        throw new NoSuchFileException("segment " + seq + " is neither in the cache nor in the bucket");
    }

    @Override
    public void sealed(long seq) throws IOException {
        checkWritable();
        queue.sealed(seq, segmentBytes(seq));
    }

    /** How a read of an uploaded segment uses the read cache (see {@link ObjectReadCache}). */
    private enum Via { VERIFIED, CALLER_CHECKS, REFETCH }

    @Override public void read(long seq, long pos, ByteBuffer dst) throws IOException { read(seq, pos, dst, Via.VERIFIED); }

    @Override public void readForCallerCheck(long seq, long pos, ByteBuffer dst) throws IOException { read(seq, pos, dst, Via.CALLER_CHECKS); }

    @Override public void reread(long seq, long pos, ByteBuffer dst) throws IOException { read(seq, pos, dst, Via.REFETCH); }

    private void read(long seq, long pos, ByteBuffer dst, Via via) throws IOException {
        int start = dst.position();
        for (int attempt = 0; ; attempt++) {
            localGuard.readLock().lock();
            try {
                Fs.FileHandle h = cacheDiscarded ? null : local.get(seq); // a write-back file is the segment itself: no cache
                if (h != null) {
                    h.readFully(pos, dst);
                    return;
                }
            } catch (ClosedChannelException e) {
                if (attempt >= 3) throw e;
                dst.position(start);
                continue;
            } finally {
                localGuard.readLock().unlock();
            }
            if (!bucket.containsKey(seq)) throw new NoSuchFileException("segment " + seq + " is neither in the cache nor in the bucket");
            switch (via) {
                case VERIFIED -> readCache.read(seq, pos, dst, this::fetch);
                case CALLER_CHECKS -> readCache.readForCallerCheck(seq, pos, dst, this::fetch);
                case REFETCH -> readCache.refetch(seq, pos, dst, this::fetch);
            }
            return;
        }
    }

    private byte[] fetch(long seq, long offset, int length) throws IOException { return store.getRange(UploadQueue.segmentKey(seq), offset, length); }

    @Override
    public long segmentBytes(long seq) throws IOException {
        Fs.FileHandle h = cacheDiscarded ? null : local.get(seq);
        if (h != null) {
            try {
                return h.size();
            } catch (ClosedChannelException uploaded) {
                // dropped after its upload meanwhile (the bucket's size is recorded before the drop)
            }
        }
        Long size = bucket.get(seq);
        if (size == null) throw new NoSuchFileException("segment " + seq + " is neither in the cache nor in the bucket");
        return size;
    }

    @Override
    public List<Long> segments() {
        TreeSet<Long> all = new TreeSet<>(bucket.keySet());
        synchronized (this) { if (!cacheDiscarded) all.addAll(local.keySet()); }
        return new ArrayList<>(all);
    }

    @Override
    public void deleteSegment(long seq) throws IOException {
        checkWritable();
        queue.delete(seq);
    }

    @Override
    public synchronized byte[] readManifest() {
        if (!cacheDiscarded && cachedManifest != null) return cachedManifest.clone();
        return storedManifest();
    }

    @Override
    public void writeManifest(byte[] content) throws IOException {
        checkWritable();
        cache.writeAtomically(CACHED_MANIFEST, content);
        long needs;
        synchronized (this) {
            cachedManifest = content.clone();
            needs = tailSeq;
        }
        queue.manifest(content, needs);
    }

    @Override
    public long usableSpace() throws IOException { return cache.usableSpace(); }

    /** Bytes of the read cache on disk, and its hits and misses (stats, tests). */
    public long[] readCacheStats() { return new long[] {readCache.bytes(), readCache.hits(), readCache.misses()}; }

    private void checkWritable() throws IOException {
        Check.that(!readOnly, "a read-only open writes nothing");
        String f = queue.fenced();
        if (f != null) throw new FencedException(f);
    }

    private void dropLocal(long seq) throws IOException {
        localGuard.writeLock().lock();
        try {
            Fs.FileHandle h;
            synchronized (this) { h = local.remove(seq); }
            if (h != null) h.close();
            cache.delete(writebackName(seq));
        } finally {
            localGuard.writeLock().unlock();
        }
    }

    /** What the upload queue reads and drops. */
    private final class Uploaded implements UploadQueue.Local {
        @Override
        public byte[] sealedBytes(long seq) throws IOException {
            Fs.FileHandle h;
            synchronized (ObjectBackend.this) { h = local.get(seq); }
            if (h == null) throw new NoSuchFileException("write-back segment " + seq + " is gone from the cache directory");
            long size = h.size();
            Check.that(size <= Integer.MAX_VALUE - 16, "segment %d of %d bytes fits one upload", seq, size);
            ByteBuffer b = ByteBuffer.allocate((int) size);
            h.readFully(0, b);
            return b.array();
        }

        @Override
        public void uploaded(long seq) throws IOException {
            bucket.put(seq, segmentBytes(seq));
            dropLocal(seq);
        }

        @Override
        public void deleted(long seq) {
            bucket.remove(seq);
            readCache.forget(seq);
        }
    }

    /** The log's handle on a write-back file: refuses to write or sync once the backend is fenced. */
    private final class WriteBackHandle implements Fs.FileHandle {
        private final Fs.FileHandle h;

        WriteBackHandle(Fs.FileHandle h) { this.h = h; }

        @Override public int read(long pos, ByteBuffer dst) throws IOException { return h.read(pos, dst); }

        @Override
        public void write(long pos, ByteBuffer src) throws IOException {
            checkWritable();
            h.write(pos, src);
        }

        @Override
        public void sync() throws IOException {
            h.sync();
            String f = queue.fenced(); // after the sync: a FLUSH of a fenced writer fails, whatever reached its disk
            if (f != null) throw new FencedException(f);
        }

        @Override public long size() throws IOException { return h.size(); }

        @Override
        public void truncate(long size) throws IOException {
            checkWritable();
            h.truncate(size);
        }

        @Override public void close() throws IOException { h.close(); }
    }

    /** A segment that is only in the bucket: sealed and uploaded, so there is nothing to append, truncate or sync. */
    private final class StoredHandle implements Fs.FileHandle {
        private final long seq;

        StoredHandle(long seq) { this.seq = seq; }

        @Override
        public int read(long pos, ByteBuffer dst) throws IOException {
            int before = dst.remaining();
            long size = segmentBytes(seq);
            if (pos >= size) return 0;
            ByteBuffer part = dst.slice().limit((int) Math.min(before, size - pos));
            ObjectBackend.this.read(seq, pos, part);
            dst.position(dst.position() + part.position());
            return part.position();
        }

        @Override public void write(long pos, ByteBuffer src) throws IOException { throw new IOException("segment " + seq + " is sealed and in the bucket"); }

        @Override public void sync() { }

        @Override public long size() throws IOException { return segmentBytes(seq); }

        @Override public void truncate(long size) throws IOException { throw new IOException("segment " + seq + " is sealed and in the bucket"); }

        @Override public void close() { }
    }

    @Override
    public void close() throws IOException {
        try {
            if (!readOnly && queue.fenced() == null) queue.drain();
        } finally {
            stopUploader.set(true);
            queue.wakeUp();
            Thread t = uploader;
            if (t != null) {
                try {
                    t.join(10_000);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            synchronized (this) {
                for (Fs.FileHandle h : local.values()) h.close();
                local.clear();
            }
            readCache.close();
        }
    }
}
