package io.dedisk.pool;

import io.dedisk.DediskException;
import io.dedisk.DediskException.InvalidRequestException;
import io.dedisk.DediskException.ReadOnlyException;
import io.dedisk.DediskException.StorageException;
import io.dedisk.index.BlockName;
import io.dedisk.index.DedupIndex;
import io.dedisk.index.ExactIndex;
import io.dedisk.index.IndexConfig;
import io.dedisk.index.UdsIndex;
import io.dedisk.store.Backend;
import io.dedisk.store.DirectoryStorage;
import io.dedisk.store.FencedException;
import io.dedisk.store.Fs;
import io.dedisk.store.PoolStorage;
import io.dedisk.util.Check;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * A pool: the composition of its structures (DESIGN.md §4), each in its own file — the log ({@link LogWriter},
 * {@link LogReader}), the metadata ({@link PoolState}: block-map trees, chunk table, usage table, paged through
 * the {@link MetadataCache}), the {@link WritePipeline}, the {@link ReadPath}, the {@link Checkpointer}, the
 * {@link Cleaner}, {@link Recovery} and the dedup index — over a {@link Backend} (the local directory by default).
 * This class owns what ties them together: opening and closing, the locks, the mode (normal, no-space,
 * read-only), volume operations, and the triggers of background work.
 *
 * Locks: {@link #meta} (read: lookups and reads; write: every change of state, one group of records at a time);
 * {@link #segmentGuard} (read: a reader inside segments; write: deleting segments). Order: meta, then guard.
 *
 * Durability (DESIGN.md §3): records are appended in order; FLUSH = fsync of the tail segment (sealed segments
 * were synced when sealed). A failed fsync makes the pool read-only: the kernel may have dropped the dirty pages,
 * so what is durable is no longer known.
 */
public final class Pool implements VolumeProvider, AutoCloseable {
    public static final int BLOCK_SIZE = 4096;
    static final int DEFAULT_SEGMENT_SIZE = 16 << 20;
    static final long DEFAULT_CHECKPOINT_INTERVAL = 256L << 20;
    /**
     * The metadata cache when none is asked for: an eighth of the JVM's heap limit (64 MiB under the launcher's
     * -Xmx512m), whole MiB, 8 MiB to 1 GiB. The cache's pages live in the heap beside the index and the write
     * buffers, so it follows the operator's memory budget rather than a fixed size that could crowd a small heap.
     */
    public static long defaultMetadataCache() {
        long eighth = Runtime.getRuntime().maxMemory() / 8 >> 20 << 20;
        return Math.clamp(eighth, 8L << 20, 1L << 30);
    }
    static final String INDEX_DIR = "index";

    private static final System.Logger LOG = System.getLogger("dedisk.pool");

    final Fs fs;
    final Backend backend;
    private final Superblock superblock;
    private final Executor background;
    final ReentrantReadWriteLock meta = new ReentrantReadWriteLock();
    final ReentrantReadWriteLock segmentGuard = new ReentrantReadWriteLock();
    final PoolState state;
    final DedupIndex index;
    final LogWriter log;
    final Counters counters = new Counters();
    private final WritePipeline writes;
    /** Heap copies of writes that arrive in direct buffers (see {@link BatchArrays}). */
    final BatchArrays batchArrays = new BatchArrays();
    private final ReadPath reads;
    private final Checkpointer checkpointer;
    private final Cleaner cleaner;
    private final OpenOptions options;
    /** Bytes of each segment, for the cleaner's utilisation and the stats; guarded by {@link #meta}. */
    private final TreeMap<Long, Long> segmentBytes = new TreeMap<>();
    private final SpaceReserve space;
    private final Maintenance maintenance;
    final VolumeCatalog catalog = new VolumeCatalog(this);
    private final Snapshots snapshots = new Snapshots(this);
    private long userBytesAppended;
    private volatile String readOnlyReason;
    private volatile boolean closed;

    /** Operation counters for stats; LongAdders because readers update them without the lock. */
    static final class Counters {
        final LongAdder blocksWritten = new LongAdder();
        final LongAdder blocksRead = new LongAdder();
        final LongAdder dedupHits = new LongAdder();
        final LongAdder dedupMisses = new LongAdder();
        final LongAdder staleAdvice = new LongAdder();
        final LongAdder zeroBlocksWritten = new LongAdder();
        final LongAdder flushes = new LongAdder();
        final LongAdder corruptReads = new LongAdder();
    }

    /** Creation parameters. {@code indexMemory} 0 selects the exact (unbounded) index. */
    public record Options(int segmentSize, long checkpointInterval, long indexMemory, boolean sparseIndex) {
        public static final long DEFAULT_INDEX_MEMORY = 128L << 20;

        public Options {
            if (indexMemory != 0) new IndexConfig(indexMemory, sparseIndex); // validates, with a clear message
            if (indexMemory % (1 << 20) != 0) throw new InvalidRequestException("index memory must be a whole number of MiB, found " + indexMemory + " bytes");
        }

        public Options(int segmentSize, long checkpointInterval) { this(segmentSize, checkpointInterval, DEFAULT_INDEX_MEMORY, false); }

        public static Options defaults() { return new Options(DEFAULT_SEGMENT_SIZE, DEFAULT_CHECKPOINT_INTERVAL); }
    }

    /**
     * How to open: where background work runs (the simulation passes {@code Runnable::run}: inline, reproducible),
     * the metadata cache size, and read-only (for `check` and offline `stats`: nothing is written, truncated,
     * deleted or saved).
     */
    public record OpenOptions(Executor background, long metadataCacheBytes, boolean readOnly) {
        public static OpenOptions defaults() {
            return new OpenOptions(task -> Thread.ofVirtual().name("dedisk-background").start(task), defaultMetadataCache(), false);
        }

        public OpenOptions withReadOnly() { return new OpenOptions(background, metadataCacheBytes, true); }

        public OpenOptions withMetadataCache(long bytes) { return new OpenOptions(background, bytes, readOnly); }

        public OpenOptions withBackground(Executor e) { return new OpenOptions(e, metadataCacheBytes, readOnly); }
    }

    // ---------------------------------------------------------------- create / open / close

    /** Makes a new, empty pool in directory fs (whose root must be empty). */
    public static void create(Fs fs, Options options) throws IOException { create(new DirectoryStorage(fs), options); }

    /** Makes a new, empty pool in storage (a directory or a bucket prefix, which must be empty). */
    public static void create(PoolStorage storage, Options options) throws IOException {
        Superblock sb = new Superblock(UUID.randomUUID(), System.currentTimeMillis(), options.segmentSize(), options.checkpointInterval(),
                options.indexMemory(), options.sparseIndex());
        storage.create(sb.encode());
    }

    public static Pool open(Fs fs) throws IOException { return open(fs, OpenOptions.defaults()); }

    /** Opens a pool whose background work runs on {@code background} (the simulation: inline). */
    public static Pool open(Fs fs, Executor background) throws IOException { return open(fs, OpenOptions.defaults().withBackground(background)); }

    /** Opens a pool: reads the manifest and its checkpoint root, replays the log after it, opens the dedup index. */
    public static Pool open(Fs fs, OpenOptions options) throws IOException { return open(new DirectoryStorage(fs), options); }

    /**
     * Opens the pool in storage (see {@link Ownership} for what a bucket pool adds). Losing the race for a bucket
     * pool's fence segment to another writer opening at the same moment is retried, from the bucket as it is then.
     */
    public static Pool open(PoolStorage storage, OpenOptions options) throws IOException {
        byte[] sbBytes = storage.readSuperblock();
        if (sbBytes == null) throw new InvalidRequestException("no dedisk pool here (no superblock); create one with 'dedisk create'");
        Superblock sb = Superblock.decode(sbBytes);
        for (int attempt = 1; ; attempt++) {
            PoolStorage.Opened o = storage.open(sb.poolId(), options.readOnly());
            try {
                return new Pool(o.local(), o.backend(), sb, options);
            } catch (FencedException lost) {
                closeQuietly(o.backend(), lost);
                if (attempt >= 3) throw lost;
                LOG.log(System.Logger.Level.WARNING, "another writer took the pool while it was opening ({0}); opening again", lost.getMessage());
            } catch (IOException | RuntimeException e) {
                closeQuietly(o.backend(), e);
                throw e;
            }
        }
    }

    private static void closeQuietly(Backend backend, Throwable cause) {
        try {
            backend.close();
        } catch (IOException | RuntimeException e) {
            cause.addSuppressed(e);
        }
    }

    private Pool(Fs fs, Backend backend, Superblock sb, OpenOptions options) throws IOException {
        this.fs = fs;
        this.options = options;
        this.background = options.background();
        this.superblock = sb;
        this.backend = backend;
        Ownership.claim(backend, sb.poolId(), options.readOnly());
        this.index = IndexOpening.open(fs, sb, options.readOnly());
        MetadataCache cache = new MetadataCache(options.metadataCacheBytes());
        Recovery.Recovered r = Recovery.recover(backend, sb.poolId(), cache, options.readOnly() ? null : index);
        this.state = r.state();
        if (r.damage() != null) enterReadOnly(r.damage());
        for (long seq : backend.segments()) segmentBytes.put(seq, backend.segmentBytes(seq));
        // A damaged log is left exactly as found (no truncation, no appends) for the operator and `dedisk check`.
        LogWriter writer = null;
        if (r.end() != null && !options.readOnly()) {
            writer = new LogWriter(backend, sb.poolId(), sb.segmentSize(), r.end().segment(), r.end().offset(), r.end().nextLsn(), background, this::fsyncFailed,
                    segmentBytes::put);
        }
        this.log = writer;
        Set<Long> zeroInRoot = new HashSet<>();
        if (r.rootUsed().present()) {
            long rootSeg = MetaPage.segmentOf(r.rootUsed().address());
            for (long seq : segmentBytes.keySet()) if (seq < rootSeg && state.usage.live(seq) == 0) zeroInRoot.add(seq);
        }
        // Opened from the previous root (the newest did not verify): that one is what the next manifest keeps.
        Manifest manifest = r.manifest() != null && r.rootUsed().present() && !r.rootUsed().equals(r.manifest().newest())
                ? r.manifest().withRoots(r.rootUsed(), Manifest.RootRef.NONE) : r.manifest();
        if (writer != null) manifest = Ownership.fence(backend, writer, manifest, this::enterReadOnly);
        this.checkpointer = new Checkpointer(backend, sb.poolId(), index, segmentBytes::keySet, meta, segmentGuard, manifest, zeroInRoot);
        this.cleaner = new Cleaner(backend, sb.poolId(), meta, segmentGuard);
        this.writes = new WritePipeline(this);
        this.reads = new ReadPath(this);
        this.space = new SpaceReserve(backend, sb.poolId(), 2L * sb.segmentSize() + options.metadataCacheBytes() / 2 + (4 << 20));
        this.maintenance = new Maintenance(this, background);
        if (index instanceof ExactIndex && sb.indexMemory() == 0) IndexOpening.rebuildExact(state, reads, index);
        // Advice that survived a crash may name chunk ids whose creation did not: never reuse them.
        state.chunks.skipIdsThrough(index.maxChunkId());
        // A crash left a log tail to replay: checkpoint it soon, so a second crash does not replay it all again.
        // Last: the state (ids above the index's advice included) is complete now.
        if (log != null && r.recordsReplayed() > 1) maintenance.checkpointSoon();
        LOG.log(System.Logger.Level.INFO, "opened pool {0}: {1} volumes, {2} chunks, {3}",
                sb.poolId(), state.volumesById.size(), state.chunks.liveChunks(),
                readOnlyReason != null ? "READ-ONLY: " + readOnlyReason : log == null ? "opened read-only" : "log at segment " + log.segmentSeq() + " offset " + log.tailOffset());
    }

    public UUID poolId() { return superblock.poolId(); }

    public Superblock superblock() { return superblock; }

    // ---------------------------------------------------------------- modes

    void checkWritable() {
        if (closed) throw new InvalidRequestException("the pool is closed");
        String reason = readOnlyReason;
        if (reason != null) throw new ReadOnlyException("the pool is read-only: " + reason);
        if (log == null) throw new ReadOnlyException("the pool was opened read-only");
    }

    /** Puts the pool in read-only mode (VDO's read_only_mode): writes fail, reads of intact data go on. */
    void enterReadOnly(String reason) {
        if (readOnlyReason == null) {
            readOnlyReason = reason;
            LOG.log(System.Logger.Level.ERROR, "pool {0} is now read-only: {1}", superblock.poolId(), reason);
        }
    }

    public String readOnlyReason() { return readOnlyReason; }

    /** Why fresh writes are refused now (the disk is full), or null. Duplicates, zeros, TRIM and reads go on. */
    public String noSpaceReason() { return space.reason(); }

    /** The reserve, for tests that fill a simulated disk to it. */
    public long reserveBytesForTests() { return space.reserveBytes(); }

    /** Fresh data may only use the space above the reserve (see {@link SpaceReserve}). Write lock held. */
    void checkFreshSpace() { space.checkFresh(log.bytesAppended()); }

    DediskException storageFailure(String what, IOException e) { return space.failure(what, e); }

    /** The kernel may have dropped the dirty pages of a failed fsync (fsyncgate): what is durable is unknown. */
    private void fsyncFailed(IOException e) {
        enterReadOnly("fsync of the log failed (" + e + "); what reached the disk is unknown");
    }

    // ---------------------------------------------------------------- apply, checkpoints, cleaning (see Maintenance)

    /** Called with the write lock held: appends one record and applies what was written. */
    void appendAndApply(ByteBuffer record, int type, int covered) {
        Check.that(meta.isWriteLockedByCurrentThread(), "append under the metadata write lock");
        LogWriter.Appended a = log.appendAll(List.of(new LogWriter.Pending(record, type, covered)));
        if (a.error() != null) throw storageFailure("appending to the log", a.error());
        appended(record.limit());
        ByteBuffer payload = record.duplicate().position(LogRecord.HEADER_SIZE).slice().order(ByteOrder.LITTLE_ENDIAN);
        applyAppended(type, payload, covered, a.segments()[0], a.offsets()[0] + LogRecord.HEADER_SIZE, null);
    }

    /**
     * Applies a record that is already in the log. If that fails half way (a metadata page that cannot be read or
     * fails verification), memory no longer matches the log: the pool goes read-only, and a restart replays the log.
     */
    void applyAppended(int type, ByteBuffer payload, int covered, long segment, long payloadOffset, BlockName[] names) {
        try {
            state.apply(type, payload, covered, segment, payloadOffset, names);
        } catch (RuntimeException e) {
            enterReadOnly("applying log record type " + type + " failed (" + e.getMessage() + "); the log holds it, a restart replays it");
            throw e;
        }
    }

    /** Accounts appended bytes (write lock held). */
    void appended(long bytes) {
        userBytesAppended += bytes;
    }

    /** After a change: a checkpoint when one is due (see {@link Maintenance#afterMutation}). */
    void afterMutation() { maintenance.afterMutation(); }

    /** Writes an incremental checkpoint (dirty pages, root, manifest) and deletes the segments it frees. */
    public void checkpoint() throws IOException { maintenance.checkpoint(); }

    /** Cleans up to {@code maxSegments} segments below {@code maxUtilisation} live (see {@link Maintenance#clean}). */
    public int clean(int maxSegments, double maxUtilisation) throws IOException { return maintenance.clean(maxSegments, maxUtilisation); }

    /** `dedisk gc`: cleans every segment holding garbage, then checkpoints twice so the cleaned ones are deleted. */
    public GcResult gc() throws IOException {
        checkWritable();
        return maintenance.gc();
    }

    /**
     * What gc gave back: segments cleaned, their bytes before and after, the bytes of them still not live after it
     * (in segments not worth moving, and the open one), and what the index's compaction dropped.
     */
    public record GcResult(int segmentsCleaned, long bytesBefore, long bytesAfter, long notLiveAfter, io.dedisk.index.DedupIndex.Compaction index) {}

    /**
     * For the simulation: {@code step} runs between a checkpoint's batches of leaves, where writers get the lock
     * (null: the checkpoint hands the lock to waiting threads there, as in the server). See {@link Checkpointer}.
     */
    public void betweenCheckpointBatches(Runnable step) { checkpointer.betweenBatches(step); }

    /** One round of background upkeep (see {@link Maintenance#round}); returns whether it cleaned. */
    public boolean maintenance() throws IOException { return maintenance.round(); }

    /** Runs the upkeep on a background thread until the pool closes (the server). */
    public void startBackgroundWork() { maintenance.start(); }

    boolean closed() { return closed; }

    /** Bytes of each segment; guarded by {@link #meta}. */
    TreeMap<Long, Long> segmentBytes() { return segmentBytes; }

    Cleaner cleaner() { return cleaner; }

    Checkpointer checkpointer() { return checkpointer; }

    /** Flush the log (checkpoints sync it before naming a root in the manifest). */
    void sync() {
        syncLog();
        Ownership.afterCheckpointSync(this);
    }

    // ---------------------------------------------------------------- volumes

    @Override
    public List<String> volumeNames() {
        meta.readLock().lock();
        try { return List.copyOf(state.volumesByName.keySet()); } finally { meta.readLock().unlock(); }
    }

    @Override
    public Optional<VolumeDevice> volume(String name) {
        meta.readLock().lock();
        try {
            VolumeState v = state.volumesByName.get(name);
            return v == null ? Optional.empty() : Optional.of(new Volume(this, v));
        } finally { meta.readLock().unlock(); }
    }

    /** Refuses names that are not 1-128 of [A-Za-z0-9._-], starting with a letter or digit (see {@link VolumeCatalog}). */
    public static void validateVolumeName(String name) { VolumeCatalog.validateName(name); }

    public void createVolume(String name, long size) { catalog.create(name, size); }

    public void deleteVolume(String name) { catalog.delete(name); }

    public void resizeVolume(String name, long size) { catalog.resize(name, size); }

    /**
     * Renames a volume: one durable VOLUME_RENAME record. Open handles (NBD connections to the old name) keep
     * working on the volume; new connections must use the new name.
     */
    public void renameVolume(String from, String to) { catalog.rename(from, to); }

    // ---------------------------------------------------------------- snapshots and clones (see Snapshots)

    /** `dedisk snapshot create`: a read-only {@code volume@snapshot} holding every write completed before the call. */
    public void createSnapshot(String volume, String snapshot) throws IOException { snapshots.create(volume, snapshot); }

    /** `dedisk clone`: a writable volume sharing every page of {@code snapshot} (VOLUME@SNAP) until written. */
    public void cloneSnapshot(String snapshot, String clone) { snapshots.clone(snapshot, clone); }

    /** `dedisk volume rollback`: VOLUME becomes the same as {@code snapshot} (VOLUME@SNAP), atomically. */
    public void rollback(String snapshot) { snapshots.rollback(snapshot); }

    /** Volumes, snapshots and clones with their parents and the bytes each holds alone (walks what each holds alone). */
    public List<VolumeInfo> volumeInfos() { return snapshots.infos(); }

    // ---------------------------------------------------------------- I/O (called by Volume)

    void checkRange(VolumeState v, long offset, long length) {
        if (v.deleted) throw new InvalidRequestException("volume '" + v.name + "' was deleted");
        long size = v.size;
        if (offset < 0 || length < 0 || offset > size || length > size - offset) {
            throw new InvalidRequestException("I/O [" + offset + ", +" + length + ") is outside volume '" + v.name + "' of " + size + " bytes");
        }
    }

    /** Writes {@code count} whole blocks from buf[off...] at lba (see {@link WritePipeline}). */
    void writeBlocks(VolumeState v, long lba, byte[] buf, int off, int count, boolean fua) {
        maintenance.admitWrite();
        for (int done = 0; done < count; done += WritePipeline.BATCH_BLOCKS) {
            int n = Math.min(WritePipeline.BATCH_BLOCKS, count - done);
            writes.commit(List.of(writes.prepare(v, lba + done, buf, off + done * BLOCK_SIZE, n)));
        }
        if (fua) flush();
    }

    /** The write pipeline's two steps, for the simulation's scheduler. */
    WritePipeline writePipeline() { return writes; }

    /** A write named and compressed but not yet committed (see {@link #prepareWrite}). */
    public static final class PreparedWrite {
        private final WritePipeline.PendingWrite pending;

        private PreparedWrite(WritePipeline.PendingWrite pending) { this.pending = pending; }
    }

    /**
     * The first half of a write of whole blocks (at most {@link WritePipeline#RECORD_MAX_BLOCKS}): names and compresses {@code blocks} for
     * {@code volume} at {@code lba}, without taking the write lock. {@link #commitWrites} finishes it. The two
     * halves are what concurrent writers interleave; the simulation schedules them by its seed.
     */
    public PreparedWrite prepareWrite(String volume, long lba, byte[] blocks) {
        Check.that(blocks.length % BLOCK_SIZE == 0 && blocks.length / BLOCK_SIZE <= WritePipeline.RECORD_MAX_BLOCKS, "whole blocks, at most a record");
        VolumeState v;
        meta.readLock().lock();
        try { v = catalog.existing(volume); } finally { meta.readLock().unlock(); }
        Snapshots.checkWritable(v);
        return new PreparedWrite(writes.prepare(v, lba, blocks, 0, blocks.length / BLOCK_SIZE));
    }

    /** Commits prepared writes as one group, in list order; throws the first one's failure. */
    public void commitWrites(List<PreparedWrite> prepared) {
        List<WritePipeline.PendingWrite> batches = new java.util.ArrayList<>();
        for (PreparedWrite p : prepared) batches.add(p.pending);
        writes.commit(batches);
    }

    /** Maps whole blocks [lba, lba+count) to ZERO or UNMAPPED: no data is stored, no I/O but the record. */
    void mapRange(VolumeState v, long lba, long count, boolean unmap, boolean fua) {
        meta.writeLock().lock();
        try {
            checkWritable();
            checkRange(v, lba * BLOCK_SIZE, count * BLOCK_SIZE);
            Snapshots.checkWritable(v);
            ByteBuffer rec = LogRecord.newBuffer(21);
            rec.putInt(v.id).putLong(lba).putLong(count).put((byte) (unmap ? WriteRecord.KIND_UNMAPPED : WriteRecord.KIND_ZERO));
            appendAndApply(rec, LogRecord.MAP_RANGE, rec.position() - LogRecord.HEADER_SIZE);
            if (!unmap) counters.zeroBlocksWritten.add(count);
        } finally { meta.writeLock().unlock(); }
        afterMutation();
        if (fua) flush();
    }

    void readBlocks(VolumeState v, long lba, int count, byte[] dst, int dstOff) { reads.readBlocks(v, lba, count, dst, dstOff); }

    List<VolumeDevice.Extent> blockStatus(VolumeState v, long lba, long count) { return reads.blockStatus(v, lba, count); }

    public void flush() {
        if (closed) throw new InvalidRequestException("the pool is closed");
        counters.flushes.increment();
        syncLog();
    }

    /** Flushes the log (FLUSH without counting one; also what index compaction waits for before dropping advice). */
    void syncLog() {
        String reason = readOnlyReason;
        if (reason != null && reason.startsWith("fsync")) throw new ReadOnlyException("the pool is read-only: " + reason);
        if (log == null) return; // read-only since open: nothing was written
        try {
            log.sync();
        } catch (IOException e) {
            fsyncFailed(e);
            throw new StorageException("flush failed: " + e, e);
        }
        Ownership.flushToBackend(this);
    }

    // ---------------------------------------------------------------- for the checker

    <T> T withReadLock(java.util.function.Supplier<T> body) {
        meta.readLock().lock();
        try { return body.get(); } finally { meta.readLock().unlock(); }
    }

    /** Segments below this may be deleted (the durable roots need nothing there). */
    long checkpointDeletionLimit() { return checkpointer.deletionLimit(); }

    List<VolumeState> volumeStates() { return List.copyOf(state.volumesByName.values()); }

    /** Reads, verifies and decodes one chunk into block. */
    void readVerified(ChunkTable.Location loc, byte[] block) {
        segmentGuard.readLock().lock();
        try { reads.readVerified(loc, block); } finally { segmentGuard.readLock().unlock(); }
    }

    // ---------------------------------------------------------------- stats

    /** Live chunks by reference count: bucket i counts chunks with 2^i <= references < 2^(i+1). O(1): kept as counts change. */
    public long[] refcountHistogram() {
        meta.readLock().lock();
        try { return state.chunks.histogram(); } finally { meta.readLock().unlock(); }
    }

    public PoolStats stats() {
        long indexDiskBytes = index.diskBytes();
        Checkpointer.Stats ck = checkpointer.stats();
        Cleaner.Stats cl = cleaner.stats();
        MetadataCache.Stats cache = state.cache.stats();
        meta.readLock().lock();
        try {
            List<PoolStats.VolumeStats> vols = new java.util.ArrayList<>();
            for (VolumeState v : state.volumesByName.values()) {
                vols.add(new PoolStats.VolumeStats(v.name, v.size, v.map.mappedBlocks(), v.map.zeroBlocks()));
            }
            long logBytes = 0;
            for (long b : segmentBytes.values()) logBytes += b;
            long live = state.usage.totalLive();
            long pageBytes = live - state.chunks.liveBytes();
            return new PoolStats(superblock.poolId().toString(), readOnlyReason, space.reason(), vols, state.chunks.liveChunks(), state.chunks.liveBytes(),
                    pageBytes, logBytes - live, logBytes, Superblock.SIZE + Manifest.SIZE + Math.max(0, indexDiskBytes),
                    new PoolStats.IndexStats(index instanceof UdsIndex ? "uds" : "exact", index.entries(), index.windowEntries(),
                            index.memoryBytes(), indexDiskBytes, counters.dedupHits.sum(), counters.dedupMisses.sum(),
                            counters.staleAdvice.sum(), index.sparse(), index.rebuildRemaining(), index.compacted()),
                    new PoolStats.LogStats(segmentBytes.size(), userBytesAppended, ck.checkpoints(), ck.pagesWritten(), ck.pageBytesWritten(), ck.segmentsDeleted(),
                            cl.segmentsCleaned(), cl.bytesMoved(), cl.pagesRewritten()),
                    new PoolStats.CacheStats(cache.capacityBytes(), cache.bytes(), cache.dirtyBytes(), cache.hits(), cache.misses(), cache.evictions()),
                    counters.blocksWritten.sum(), counters.blocksRead.sum(), counters.flushes.sum(), counters.corruptReads.sum(), Ownership.backlog(backend));
        } finally { meta.readLock().unlock(); }
    }

    /**
     * Clean stop: a final checkpoint and the index save, so the next open replays nothing and rebuilds nothing.
     * Throws when either fails (the caller's exit status must say so; the log still holds everything).
     */
    @Override
    public void close() throws IOException {
        if (closed) return;
        try {
            if (readOnlyReason == null && log != null) {
                checkpoint();
                index.save();
                Ownership.release(this);
            }
        } finally {
            checkpointer.stop(); // a checkpoint queued in the background (after a replaying open) must not outlive the pool
            closed = true;
            index.close();
            meta.writeLock().lock();
            try {
                try {
                    if (log != null) log.close(); // a fenced writer's last sync fails: the stop reports the fence
                } finally {
                    backend.close();
                }
            } finally { meta.writeLock().unlock(); }
        }
    }
}
