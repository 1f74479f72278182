package io.dedisk.pool;

import io.dedisk.DediskException;
import io.dedisk.DediskException.CorruptionException;
import io.dedisk.DediskException.InvalidRequestException;
import io.dedisk.DediskException.NoSpaceException;
import io.dedisk.DediskException.ReadOnlyException;
import io.dedisk.DediskException.StorageException;
import io.dedisk.index.BlockName;
import io.dedisk.index.DedupIndex;
import io.dedisk.index.ExactIndex;
import io.dedisk.index.IndexConfig;
import io.dedisk.index.UdsIndex;
import io.dedisk.pool.ChunkTable.Location;
import io.dedisk.store.Fs;
import io.dedisk.util.ByteSource;
import io.dedisk.util.Check;
import io.dedisk.util.Crc;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * A pool: the volumes, their block maps, the chunk table, the dedup index and the log they are recorded in.
 * This class owns the write path (zero detection, naming, dedup, compression, log append, remap), the read path,
 * recovery (checkpoint load + log replay) and checkpoints.
 *
 * The in-memory state is only ever changed by {@link #apply} of a log record, in recovery and in live operation
 * alike: live operation first appends the record, then applies exactly what it wrote. So what recovery rebuilds
 * is what was served, by construction.
 *
 * Concurrency (docs/decisions.md "Concurrency"): structure locking with per-request batching. Hashing and
 * compression run on the caller's thread without locks; one metadata write lock per request (up to 256 blocks)
 * covers index lookup, record append and apply; chunk reads run outside the lock. Concurrent identical writes
 * meet under the write lock, so the second one finds the first's chunk: never two chunks for one content.
 *
 * Durability (DESIGN.md §3): records are appended in order with one write() each; flush = fsync of the tail
 * segment (sealed segments were synced when sealed). A failed fsync makes the pool read-only: the kernel may have
 * dropped the dirty pages, so what is durable is no longer known.
 */
public final class Pool implements VolumeProvider, AutoCloseable {
    public static final int BLOCK_SIZE = 4096;
    /** Blocks per write record: bounds the time the write lock is held and the record size. */
    static final int BATCH_BLOCKS = 256;
    /** Bytes of records one group commit gathers before writing (bounds the lock hold time). */
    static final long GROUP_BYTES = 4 << 20;
    static final int DEFAULT_SEGMENT_SIZE = 16 << 20;
    static final long DEFAULT_CHECKPOINT_INTERVAL = 1L << 30;
    static final String INDEX_DIR = "index";

    private static final System.Logger LOG = System.getLogger("dedisk.pool");

    private final Fs fs;
    private final java.util.concurrent.Executor background;
    private final Superblock superblock;
    private final ReentrantReadWriteLock meta = new ReentrantReadWriteLock();
    private final Map<Integer, VolumeState> volumesById = new HashMap<>();
    private final TreeMap<String, VolumeState> volumesByName = new TreeMap<>();
    private final ChunkTable chunks;
    private final DedupIndex index;
    private final SegmentFiles segments;
    private final LogWriter log;
    private final AtomicBoolean checkpointRunning = new AtomicBoolean();
    /** Write batches waiting for group commit (see commitQueued). */
    private final java.util.concurrent.ConcurrentLinkedQueue<PendingWrite> commitQueue = new java.util.concurrent.ConcurrentLinkedQueue<>();
    /** One checkpoint at a time (periodic and at close): they share the temporary file name. */
    private final java.util.concurrent.locks.ReentrantLock checkpointLock = new java.util.concurrent.locks.ReentrantLock();
    private final Counters counters = new Counters();
    private int nextVolumeId;
    private long logBytesAtCheckpoint;
    private long logBytesTotal;
    private long checkpointBytes;
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

    // ---------------------------------------------------------------- create / open / close

    /** Makes a new, empty pool in fs (whose root must be empty). */
    public static void create(Fs fs, Options options) throws IOException {
        if (fs.exists(Superblock.FILE)) throw new InvalidRequestException("a dedisk pool already exists here");
        if (!fs.list("").isEmpty() || !fs.list(LogWriter.DIR).isEmpty()) {
            throw new InvalidRequestException("the pool directory is not empty; dedisk only creates pools in new or empty directories");
        }
        Superblock sb = new Superblock(UUID.randomUUID(), System.currentTimeMillis(), options.segmentSize(), options.checkpointInterval(),
                options.indexMemory(), options.sparseIndex());
        fs.mkdirs(LogWriter.DIR);
        fs.mkdirs(Checkpoint.DIR);
        fs.syncDir("");
        fs.writeAtomically(Superblock.FILE, sb.encode());
    }

    /** Opens a pool: loads the newest valid checkpoint, replays the log after it, rebuilds the dedup index. */
    public static Pool open(Fs fs) throws IOException {
        return open(fs, task -> Thread.ofVirtual().name("dedisk-background").start(task));
    }

    /**
     * Opens a pool whose background work (periodic checkpoints) runs on {@code background}; the deterministic
     * simulation passes {@code Runnable::run} so that work happens inline, in a reproducible order.
     */
    public static Pool open(Fs fs, java.util.concurrent.Executor background) throws IOException {
        if (!fs.exists(Superblock.FILE)) throw new InvalidRequestException("no dedisk pool here (no superblock); create one with 'dedisk create'");
        Superblock sb = Superblock.decode(fs.readAll(Superblock.FILE));
        return new Pool(fs, sb, background);
    }

    private Pool(Fs fs, Superblock sb, java.util.concurrent.Executor background) throws IOException {
        this.fs = fs;
        this.background = background;
        this.superblock = sb;
        this.segments = new SegmentFiles(fs, 256);
        this.index = sb.indexMemory() == 0 ? new ExactIndex() : openUdsIndex(fs, new IndexConfig(sb.indexMemory(), sb.sparseIndex()));
        Checkpoint.Image image = loadNewestCheckpoint();
        Checkpoint.Position start;
        if (image != null) {
            start = image.position();
            this.chunks = image.chunks();
            this.nextVolumeId = image.nextVolumeId();
            for (VolumeState v : image.volumes()) addVolume(v);
            recountReferences();
        } else {
            start = new Checkpoint.Position(1, 1, 0);
            this.chunks = new ChunkTable();
            this.nextVolumeId = 1;
        }
        Checkpoint.Position end = replay(start);
        // A damaged log is left exactly as found (no truncation, no appends) for the operator and `dedisk check`.
        this.log = end == null ? null : new LogWriter(fs, sb.poolId(), sb.segmentSize(), end.segmentSeq(), end.segmentOffset(), end.nextLsn(),
                background, this::fsyncFailed);
        this.logBytesTotal = sumSegmentSizes();
        this.checkpointBytes = fileBytes(checkpointFiles());
        if (index instanceof ExactIndex) rebuildIndex();
        // Advice that survived a crash may name chunk ids whose creation did not: never reuse them.
        chunks.skipIdsThrough(index.maxChunkId());
        this.logBytesAtCheckpoint = 0;
        LOG.log(System.Logger.Level.INFO, "opened pool {0}: {1} volumes, {2} chunks, {3}",
                sb.poolId(), volumesById.size(), chunks.liveChunks(),
                log == null ? "READ-ONLY: " + readOnlyReason : "log at segment " + log.segmentSeq() + " offset " + log.tailOffset());
    }

    /**
     * Opens the pool's UDS index. Its answers are only advice, so an index whose header is damaged is discarded
     * and started empty (dedup restarts from nothing; no data is at risk, and with its files gone none of its
     * advice, nor the chunk ids it named, can come back).
     */
    private static UdsIndex openUdsIndex(Fs fs, IndexConfig config) throws IOException {
        try {
            return UdsIndex.open(fs, INDEX_DIR, config);
        } catch (CorruptionException e) {
            LOG.log(System.Logger.Level.ERROR, "dedup index discarded and started empty: {0}", e.getMessage());
            for (String f : fs.list(INDEX_DIR)) fs.delete(INDEX_DIR + "/" + f);
            fs.syncDir(INDEX_DIR);
            return UdsIndex.open(fs, INDEX_DIR, config);
        }
    }

    public UUID poolId() { return superblock.poolId(); }

    public Superblock superblock() { return superblock; }

    private void addVolume(VolumeState v) {
        volumesById.put(v.id, v);
        volumesByName.put(v.name, v);
    }

    private Checkpoint.Image loadNewestCheckpoint() throws IOException {
        for (String name : checkpointFiles()) {
            try {
                byte[] bytes = fs.readAll(name);
                return Checkpoint.decode(bytes, superblock.poolId(), name);
            } catch (CorruptionException e) {
                // An older checkpoint (or the whole log, which is never deleted before GC exists) still works.
                LOG.log(System.Logger.Level.WARNING, "ignoring corrupt checkpoint: {0}", e.getMessage());
            }
        }
        return null;
    }

    private void recountReferences() {
        for (VolumeState v : volumesById.values()) {
            for (int p = 0; p < v.map.pageCount(); p++) {
                long[] page = v.map.page(p);
                if (page == null) continue;
                for (long ref : page) {
                    if (!BlockMap.isChunk(ref)) continue;
                    if (!chunks.isLive(ref)) throw new CorruptionException("checkpoint: volume " + v.name + " references chunk " + ref + " which the checkpoint does not hold");
                    chunks.increment(ref);
                }
            }
        }
        chunks.forEachLive(loc -> {
            if (chunks.refCount(loc.chunkId()) == 0) throw new CorruptionException("checkpoint: live chunk " + loc.chunkId() + " has no references");
        });
    }

    private long sumSegmentSizes() throws IOException {
        List<String> names = new ArrayList<>();
        for (String f : fs.list(LogWriter.DIR)) names.add(LogWriter.DIR + "/" + f);
        return fileBytes(names);
    }

    // ---------------------------------------------------------------- replay

    /**
     * Replays records from {@code start} to the end of the log and returns where the log continues. Decision
     * table for each record position (docs/fault-model.md):
     * header+body valid with the expected LSN -> apply; anything else in the last segment -> torn or unsynced
     * tail, the log ends here; anything else in a sealed (non-last) segment -> corruption, refuse to open.
     */
    private Checkpoint.Position replay(Checkpoint.Position start) throws IOException {
        List<Long> seqs = new ArrayList<>();
        for (String f : fs.list(LogWriter.DIR)) if (f.endsWith(".seg")) seqs.add(LogWriter.segmentSeqOf(f));
        seqs.removeIf(s -> s < start.segmentSeq());
        for (int i = 1; i < seqs.size(); i++) {
            if (seqs.get(i) != seqs.get(i - 1) + 1) throw new CorruptionException("log: segment " + (seqs.get(i - 1) + 1) + " is missing (found " + seqs.get(i) + " after " + seqs.get(i - 1) + ")");
        }
        if (seqs.isEmpty() || seqs.get(0) != start.segmentSeq()) {
            if (start.segmentOffset() != 0) throw new CorruptionException("log: segment " + start.segmentSeq() + " named by the checkpoint is missing");
            return start;
        }
        long lsn = start.nextLsn();
        for (int i = 0; i < seqs.size(); i++) {
            long seq = seqs.get(i);
            boolean last = i == seqs.size() - 1;
            byte[] data = fs.readAll(LogWriter.segmentName(seq));
            long offset = i == 0 ? start.segmentOffset() : 0;
            boolean sealed = false;
            while (true) {
                LogReader.RecordAt r = LogReader.readRecord(data, offset, lsn, seq, superblock.poolId());
                // In the tail segment, unsynced writes may have torn chunk bodies that the record CRC does not
                // cover: such a record is the torn end of the log, not corruption.
                if (r == null || last && r.type() == LogRecord.WRITE && !LogReader.bodiesIntact(r)) break;
                if (r.type() == LogRecord.SEAL) { sealed = true; lsn++; offset = r.end(); break; }
                if (offset == 0 && r.type() != LogRecord.SEGMENT_HEADER) break;
                try {
                    apply(r.type(), r.payload(), r.covered(), seq, r.payloadOffset(), null);
                } catch (CorruptionException e) {
                    throw new CorruptionException("log: segment " + seq + " record LSN " + lsn + " at offset " + offset + ": " + e.getMessage(), e);
                }
                lsn++;
                offset = r.end();
            }
            if (!sealed) {
                if (!last) {
                    containLogDamage(seqs.subList(i, seqs.size()), offset, "sealed segment " + seq + " has an invalid record at offset " + offset + " (LSN " + lsn + " expected)");
                    return null;
                }
                return new Checkpoint.Position(lsn, seq, offset);
            }
            if (last) return new Checkpoint.Position(lsn, seq + 1, 0);
        }
        throw new IllegalStateException("unreachable");
    }

    /**
     * Damage in a sealed (synced) part of the log: what follows cannot be applied, since it may depend on what
     * was lost. The pool goes read-only with the state replayed so far, and every block that a later record
     * would have changed is poisoned (reads fail with an I/O error rather than return stale data). Later records
     * are found by scanning for verified record headers past the damage.
     */
    private void containLogDamage(List<Long> segmentsFromDamage, long damageOffset, String what) throws IOException {
        enterReadOnly("log damage: " + what + "; blocks written after it read as I/O errors");
        long poisoned = 0;
        // The damaged record itself: if its header still parses, poison the range it claims (unverified, so
        // this may poison too much, which is safe; a header too damaged to parse leaves its range unknown).
        byte[] first = fs.readAll(LogWriter.segmentName(segmentsFromDamage.get(0)));
        if (damageOffset + LogRecord.HEADER_SIZE <= first.length) {
            LogRecord.Header h = LogRecord.Header.parseUntrusted(ByteBuffer.wrap(first, (int) damageOffset, LogRecord.HEADER_SIZE).slice());
            if (h != null && damageOffset + LogRecord.HEADER_SIZE + h.length() <= first.length) {
                ByteBuffer payload = ByteBuffer.wrap(first, (int) damageOffset + LogRecord.HEADER_SIZE, h.length()).slice().order(ByteOrder.LITTLE_ENDIAN);
                try {
                    poisoned += poisonTargets(new LogReader.RecordAt(h.type(), h.lsn(), payload, h.covered(), 0, 0));
                } catch (CorruptionException unparseable) {
                    LOG.log(System.Logger.Level.ERROR, "the damaged record names no readable block range: {0}", unparseable.getMessage());
                }
            }
        }
        for (int i = 0; i < segmentsFromDamage.size(); i++) {
            long seq = segmentsFromDamage.get(i);
            byte[] data = fs.readAll(LogWriter.segmentName(seq));
            long p = i == 0 ? damageOffset + 1 : 0;
            while (p + LogRecord.HEADER_SIZE <= data.length) {
                LogReader.RecordAt r;
                try {
                    r = LogReader.readRecord(data, p, LogReader.ANY_LSN, seq, superblock.poolId());
                } catch (CorruptionException e) {
                    r = null;
                }
                if (r == null) { p++; continue; }
                poisoned += poisonTargets(r);
                p = r.end();
            }
        }
        LOG.log(System.Logger.Level.ERROR, "pool {0}: {1}; {2} blocks poisoned", superblock.poolId(), what, poisoned);
    }

    /** Poisons the blocks a WRITE or MAP_RANGE record targets; returns how many. */
    private long poisonTargets(LogReader.RecordAt r) {
        if (r.type() != LogRecord.WRITE && r.type() != LogRecord.MAP_RANGE) return 0;
        ByteSource in = new ByteSource(r.payload(), "record");
        int volumeId = in.getInt();
        long first = in.getLong();
        long count = switch (r.type()) {
            case LogRecord.WRITE -> in.getInt();
            case LogRecord.MAP_RANGE -> in.getLong();
            default -> 0;
        };
        VolumeState v = volumesById.get(volumeId);
        if (v == null || count <= 0) return 0;
        v.poison(first, count);
        return count;
    }

    /** Names every live chunk into the index. A chunk that fails verification is left out (its reads fail). */
    private void rebuildIndex() {
        byte[] block = new byte[BLOCK_SIZE];
        long[] corrupt = {0};
        chunks.forEachLive(loc -> {
            try {
                readChunk(loc, block, 0);
                index.insert(BlockName.of(block, 0, BLOCK_SIZE), loc.chunkId());
            } catch (CorruptionException e) {
                corrupt[0]++;
                LOG.log(System.Logger.Level.ERROR, "corrupt chunk found while opening (its blocks will read as I/O errors): {0}", e.getMessage());
            }
        });
        if (corrupt[0] > 0) LOG.log(System.Logger.Level.ERROR, "{0} corrupt chunks; run 'dedisk check' for the affected volumes and LBAs", corrupt[0]);
    }

    // ---------------------------------------------------------------- apply (the only mutator of state)

    /**
     * Applies one record to the in-memory state. {@code names} are the block names of a WRITE's entries when
     * the caller has them (live path) and null in replay (the index is rebuilt afterwards).
     */
    private void apply(int type, ByteBuffer payload, int covered, long segmentSeq, long payloadOffset, BlockName[] names) {
        if (type == LogRecord.WRITE) {
            applyWrite(payload, covered, segmentSeq, payloadOffset, names);
            return;
        }
        ByteSource in = new ByteSource(payload, "record type " + type);
        in.expect(covered == payload.remaining(), "covers %d of %d payload bytes", covered, payload.remaining());
        switch (type) {
            case LogRecord.SEGMENT_HEADER -> in.skip(24); // verified by readRecord / written by LogWriter
            case LogRecord.VOLUME_CREATE -> {
                int id = in.getInt();
                long size = in.getLong();
                String name = new String(in.getBytes(in.getShort()), StandardCharsets.UTF_8);
                in.expect(!volumesById.containsKey(id) && !volumesByName.containsKey(name), "volume %s (id %d) created twice", name, id);
                in.expect(size > 0 && size % BLOCK_SIZE == 0, "volume %s size %d", name, size);
                addVolume(new VolumeState(id, name, size));
                nextVolumeId = Math.max(nextVolumeId, id + 1);
            }
            case LogRecord.VOLUME_DELETE -> {
                VolumeState v = volumeForRecord(in);
                v.map.resize(0, this::dereference);
                v.deleted = true;
                volumesById.remove(v.id);
                volumesByName.remove(v.name);
            }
            case LogRecord.VOLUME_RESIZE -> {
                VolumeState v = volumeForRecord(in);
                long size = in.getLong();
                in.expect(size > 0 && size % BLOCK_SIZE == 0, "volume %s new size %d", v.name, size);
                v.map.resize(size / BLOCK_SIZE, this::dereference);
                v.size = size;
            }
            case LogRecord.MAP_RANGE -> {
                VolumeState v = volumeForRecord(in);
                long first = in.getLong();
                long count = in.getLong();
                int state = in.getByte();
                in.expect(first >= 0 && count > 0 && first + count <= v.map.blocks(), "range [%d, +%d) beyond volume %s", first, count, v.name);
                in.expect(state == WriteRecord.KIND_ZERO || state == WriteRecord.KIND_UNMAPPED, "range state %d", state);
                long ref = state == WriteRecord.KIND_ZERO ? BlockMap.ZERO : BlockMap.UNMAPPED;
                for (long lba = first; lba < first + count; lba++) {
                    if (ref == BlockMap.UNMAPPED && v.map.page((int) (lba >>> BlockMap.PAGE_SHIFT)) == null) {
                        lba |= BlockMap.PAGE_SIZE - 1; // whole page already unmapped
                        continue;
                    }
                    dereference(v.map.set(lba, ref));
                }
            }
            default -> in.expect(false, "unknown record type %d", type);
        }
        in.expect(in.remaining() == 0, "%d trailing bytes", in.remaining());
    }

    private VolumeState volumeForRecord(ByteSource in) {
        int id = in.getInt();
        VolumeState v = volumesById.get(id);
        in.expect(v != null, "unknown volume id %d", id);
        return v;
    }

    private void dereference(long ref) {
        if (BlockMap.isChunk(ref)) chunks.decrement(ref);
    }

    /** All increments of a record come before its decrements, so a chunk shared within one batch never dies. */
    private void applyWrite(ByteBuffer payload, int covered, long segmentSeq, long payloadOffset, BlockName[] names) {
        WriteRecord w = WriteRecord.parse(payload, covered);
        VolumeState v = volumesById.get(w.volumeId());
        if (v == null) throw new CorruptionException("write record: unknown volume id " + w.volumeId());
        int count = w.entries().length;
        if (w.firstLba() < 0 || w.firstLba() + count > v.map.blocks()) {
            throw new CorruptionException("write record: [" + w.firstLba() + ", +" + count + ") beyond volume " + v.name);
        }
        long[] olds = new long[count];
        for (int i = 0; i < count; i++) {
            WriteRecord.Entry e = w.entries()[i];
            long ref = switch (e.kind()) {
                case WriteRecord.KIND_ZERO -> BlockMap.ZERO;
                case WriteRecord.KIND_UNMAPPED -> BlockMap.UNMAPPED;
                default -> e.chunkId();
            };
            if (e.kind() == WriteRecord.KIND_NEW) {
                if (ref < BlockMap.FIRST_CHUNK_ID || chunks.isLive(ref)) throw new CorruptionException("write record: new chunk " + ref + " already exists");
                chunks.create(ref, segmentSeq, (int) (payloadOffset + e.bodyPosition()), e.length(), e.codec(), e.crc());
                if (names != null) index.insert(names[i], ref);
            } else if (e.kind() == WriteRecord.KIND_EXISTING) {
                if (!chunks.isLive(ref)) throw new CorruptionException("write record: reference to chunk " + ref + " which is not live");
                if (names != null) index.insert(names[i], ref); // a confirmed hit refreshes the name in the window
            }
            if (BlockMap.isChunk(ref)) chunks.increment(ref);
            olds[i] = v.map.set(w.firstLba() + i, ref);
        }
        for (long old : olds) dereference(old);
    }

    // ---------------------------------------------------------------- volumes

    @Override
    public List<String> volumeNames() {
        meta.readLock().lock();
        try { return List.copyOf(volumesByName.keySet()); } finally { meta.readLock().unlock(); }
    }

    @Override
    public Optional<VolumeDevice> volume(String name) {
        meta.readLock().lock();
        try {
            VolumeState v = volumesByName.get(name);
            return v == null ? Optional.empty() : Optional.of(new Volume(this, v));
        } finally { meta.readLock().unlock(); }
    }

    static void validateVolumeName(String name) {
        if (name == null || name.isEmpty() || name.length() > 128 || !name.matches("[A-Za-z0-9][A-Za-z0-9._-]*")) {
            throw new InvalidRequestException("invalid volume name '" + name + "': expected 1-128 characters of letters, digits, '.', '_' or '-', starting with a letter or digit");
        }
    }

    static void validateVolumeSize(long size) {
        if (size <= 0 || size % BLOCK_SIZE != 0) {
            throw new InvalidRequestException("invalid volume size " + size + ": expected a positive multiple of " + BLOCK_SIZE + " bytes");
        }
        if (size / BLOCK_SIZE / BlockMap.PAGE_SIZE >= Integer.MAX_VALUE) throw new InvalidRequestException("volume size " + size + " is larger than dedisk supports (8 PiB)");
    }

    public void createVolume(String name, long size) {
        validateVolumeName(name);
        validateVolumeSize(size);
        byte[] nameBytes = name.getBytes(StandardCharsets.UTF_8);
        mutateDurably(() -> {
            if (volumesByName.containsKey(name)) throw new InvalidRequestException("volume '" + name + "' already exists");
            ByteBuffer rec = LogRecord.newBuffer(14 + nameBytes.length);
            rec.putInt(nextVolumeId).putLong(size).putShort((short) nameBytes.length).put(nameBytes);
            return new PendingRecord(rec, LogRecord.VOLUME_CREATE);
        });
    }

    public void deleteVolume(String name) {
        mutateDurably(() -> {
            VolumeState v = existing(name);
            ByteBuffer rec = LogRecord.newBuffer(4);
            rec.putInt(v.id);
            return new PendingRecord(rec, LogRecord.VOLUME_DELETE);
        });
    }

    public void resizeVolume(String name, long size) {
        validateVolumeSize(size);
        mutateDurably(() -> {
            VolumeState v = existing(name);
            ByteBuffer rec = LogRecord.newBuffer(12);
            rec.putInt(v.id).putLong(size);
            return new PendingRecord(rec, LogRecord.VOLUME_RESIZE);
        });
    }

    private VolumeState existing(String name) {
        VolumeState v = volumesByName.get(name);
        if (v == null) throw new InvalidRequestException("no volume named '" + name + "' (volumes: " + String.join(", ", volumesByName.keySet()) + ")");
        return v;
    }

    private record PendingRecord(ByteBuffer record, int type) {}

    /** Volume-level changes are durable when they return: append, apply, fsync. */
    private void mutateDurably(java.util.function.Supplier<PendingRecord> build) {
        meta.writeLock().lock();
        try {
            checkWritable();
            PendingRecord p = build.get();
            appendAndApply(p.record(), p.type(), p.record().position() - LogRecord.HEADER_SIZE, null);
        } finally { meta.writeLock().unlock(); }
        syncLog();
    }

    // ---------------------------------------------------------------- write path

    /** Called with the write lock held: appends the record and applies what was written. */
    private void appendAndApply(ByteBuffer record, int type, int covered, BlockName[] names) {
        Check.that(meta.isWriteLockedByCurrentThread(), "append under the metadata write lock");
        long offset;
        try {
            offset = log.append(record, type, covered);
        } catch (IOException e) {
            throw storageFailure("appending to the log", e);
        }
        logBytesTotal = logBytesTotal + record.limit();
        ByteBuffer payload = record.duplicate().position(LogRecord.HEADER_SIZE).slice().order(ByteOrder.LITTLE_ENDIAN);
        apply(type, payload, covered, log.segmentSeq(), offset + LogRecord.HEADER_SIZE, names);
        if (log.bytesAppended() - logBytesAtCheckpoint > superblock.checkpointInterval()) scheduleCheckpoint();
    }

    private DediskException storageFailure(String what, IOException e) {
        String msg = String.valueOf(e.getMessage());
        if (msg.contains("No space left") || msg.contains("ENOSPC") || msg.contains("Disk quota")) {
            return new NoSpaceException(what + ": the pool's disk is full (" + msg + ")", e);
        }
        return new StorageException(what + " failed: " + e, e);
    }

    private void checkWritable() {
        if (closed) throw new InvalidRequestException("the pool is closed");
        String reason = readOnlyReason;
        if (reason != null) throw new ReadOnlyException("the pool is read-only: " + reason);
    }

    /** Puts the pool in read-only mode (VDO's read_only_mode): writes fail, reads of intact data go on. */
    void enterReadOnly(String reason) {
        if (readOnlyReason == null) {
            readOnlyReason = reason;
            LOG.log(System.Logger.Level.ERROR, "pool {0} is now read-only: {1}", superblock.poolId(), reason);
        }
    }

    public String readOnlyReason() { return readOnlyReason; }

    /** The kernel may have dropped the dirty pages of a failed fsync (fsyncgate): what is durable is unknown. */
    private void fsyncFailed(IOException e) {
        enterReadOnly("fsync of the log failed (" + e + "); what reached the disk is unknown");
    }

    /**
     * Writes {@code count} whole blocks from buf[off...] at lba. Zero blocks map to ZERO; other blocks are named,
     * deduplicated against the index (live advice only) or compressed and stored as new chunks.
     */
    void writeBlocks(VolumeState v, long lba, byte[] buf, int off, int count, boolean fua) {
        for (int done = 0; done < count; done += BATCH_BLOCKS) {
            writeBatch(v, lba + done, buf, off + done * BLOCK_SIZE, Math.min(BATCH_BLOCKS, count - done));
        }
        if (fua) flush();
    }

    private void writeBatch(VolumeState v, long lba, byte[] buf, int off, int count) {
        commit(List.of(prepare(v, lba, buf, off, count)));
    }

    /** Names the blocks and compresses the likely-new ones, outside any exclusive lock. */
    PendingWrite prepare(VolumeState v, long lba, byte[] buf, int off, int count) {
        BlockName[] names = new BlockName[count];
        for (int i = 0; i < count; i++) {
            int o = off + i * BLOCK_SIZE;
            if (!ChunkCodec.isZero(buf, o)) names[i] = BlockName.of(buf, o, BLOCK_SIZE);
        }
        // Which blocks will likely need storing: compress those outside the lock.
        boolean[] likelyNew = new boolean[count];
        java.util.Set<BlockName> firstInBatch = new java.util.HashSet<>();
        meta.readLock().lock();
        try {
            for (int i = 0; i < count; i++) {
                likelyNew[i] = names[i] != null && firstInBatch.add(names[i]) && liveAdvice(names[i]) == DedupIndex.NONE;
            }
        } finally { meta.readLock().unlock(); }
        ChunkCodec.Encoded[] encoded = new ChunkCodec.Encoded[count];
        for (int i = 0; i < count; i++) if (likelyNew[i]) encoded[i] = ChunkCodec.encode(buf, off + i * BLOCK_SIZE);

        return new PendingWrite(v, lba, buf, off, count, names, encoded);
    }

    /**
     * Queues prepared batches and waits until they are committed, by this thread or by another writer that took
     * the lock first and committed the whole queue (group commit). Throws the first batch's failure.
     */
    void commit(List<PendingWrite> batches) {
        commitQueue.addAll(batches);
        meta.writeLock().lock();
        try {
            for (PendingWrite b : batches) while (!b.done) commitQueued(); // a long queue takes several groups
        } finally { meta.writeLock().unlock(); }
        for (PendingWrite b : batches) {
            Check.that(b.done, "a queued write is committed or failed before its writer returns");
            if (b.failure != null) throw b.failure;
        }
    }

    /** A write batch named and compressed outside the lock, waiting for whichever writer holds the lock to commit it. */
    static final class PendingWrite {
        final VolumeState volume;
        final long lba;
        final byte[] buf;
        final int off;
        final int count;
        final BlockName[] names;
        final ChunkCodec.Encoded[] encoded;
        /** Guarded by the metadata write lock. */
        boolean done;
        RuntimeException failure;

        PendingWrite(VolumeState volume, long lba, byte[] buf, int off, int count, BlockName[] names, ChunkCodec.Encoded[] encoded) {
            this.volume = volume;
            this.lba = lba;
            this.buf = buf;
            this.off = off;
            this.count = count;
            this.names = names;
            this.encoded = encoded;
        }
    }

    /** A block's place in the group: (volume, LBA). */
    private record BlockKey(int volume, long lba) {}

    /**
     * What the records planned so far in a group do that later records must respect, because those records are
     * applied only after the group is written: chunks they create (shared, so identical concurrent writes make
     * one chunk), chunks they release (never referenced by a later record: it may have died), and the LBAs
     * they remap.
     */
    private static final class GroupPlan {
        final Map<BlockName, Long> created = new HashMap<>();
        final java.util.Set<Long> released = new java.util.HashSet<>();
        final Map<BlockKey, Long> remapped = new HashMap<>();
    }

    /**
     * Group commit, run by whichever writer holds the write lock: drains the queue, plans one WRITE record per
     * batch, appends them all with one write per segment, then applies them in order and releases their writers.
     */
    private void commitQueued() {
        Check.that(meta.isWriteLockedByCurrentThread(), "commit under the metadata write lock");
        List<PendingWrite> group = new ArrayList<>();
        List<LogWriter.Pending> records = new ArrayList<>();
        List<Integer> covered = new ArrayList<>();
        GroupPlan plan = new GroupPlan();
        long groupBytes = 0;
        PendingWrite w;
        while (groupBytes < GROUP_BYTES && (w = commitQueue.poll()) != null) {
            try {
                checkWritable();
                checkRange(w.volume, w.lba * BLOCK_SIZE, (long) w.count * BLOCK_SIZE);
                LogWriter.Pending r = planWrite(w, plan);
                group.add(w);
                records.add(r);
                groupBytes += r.buffer().position();
            } catch (RuntimeException e) {
                w.failure = e;
                w.done = true;
            }
        }
        if (group.isEmpty()) return;
        LogWriter.Appended appended = log.appendAll(records);
        for (int i = 0; i < group.size(); i++) {
            PendingWrite g = group.get(i);
            g.done = true;
            if (i >= appended.written()) {
                g.failure = storageFailure("appending to the log", appended.error());
                continue;
            }
            ByteBuffer rec = records.get(i).buffer();
            logBytesTotal += rec.limit();
            ByteBuffer payload = rec.duplicate().position(LogRecord.HEADER_SIZE).slice().order(ByteOrder.LITTLE_ENDIAN);
            apply(LogRecord.WRITE, payload, records.get(i).covered(), appended.segments()[i], appended.offsets()[i] + LogRecord.HEADER_SIZE, g.names);
            counters.blocksWritten.add(g.count);
        }
        if (log.bytesAppended() - logBytesAtCheckpoint > superblock.checkpointInterval()) scheduleCheckpoint();
    }

    /** Decides each block of a batch (zero, dedup hit, or new chunk) and encodes its WRITE record: entries, then bodies. */
    private LogWriter.Pending planWrite(PendingWrite w, GroupPlan plan) {
        int count = w.count;
        int[] kinds = new int[count];
        long[] refs = new long[count];
        ChunkCodec.Encoded[] bodies = new ChunkCodec.Encoded[count];
        List<Long> releasedHere = new ArrayList<>();
        int entryBytes = WriteRecord.FIXED_BYTES;
        int bodyBytes = 0;
        long hits = 0, misses = 0, stale = 0, zeros = 0;
        for (int i = 0; i < count; i++) {
            BlockKey key = new BlockKey(w.volume.id, w.lba + i);
            Long remapped = plan.remapped.get(key);
            releasedHere.add(remapped != null ? remapped : w.volume.map.get(w.lba + i));
            BlockName name = w.names[i];
            if (name == null) {
                kinds[i] = WriteRecord.KIND_ZERO;
                refs[i] = BlockMap.ZERO;
                entryBytes += 1;
                zeros++;
            } else {
                Long created = plan.created.get(name);
                long advice = created != null ? created : index.lookup(name);
                boolean usable = advice != DedupIndex.NONE && !plan.released.contains(advice) && (created != null || chunks.isLive(advice));
                if (usable) {
                    kinds[i] = WriteRecord.KIND_EXISTING;
                    refs[i] = advice;
                    entryBytes += 9;
                    hits++;
                } else {
                    if (advice != DedupIndex.NONE && created == null && !chunks.isLive(advice)) stale++;
                    misses++;
                    kinds[i] = WriteRecord.KIND_NEW;
                    refs[i] = chunks.allocateId();
                    bodies[i] = w.encoded[i] != null ? w.encoded[i] : ChunkCodec.encode(w.buf, w.off + i * BLOCK_SIZE);
                    plan.created.put(name, refs[i]);
                    entryBytes += WriteRecord.NEW_ENTRY_BYTES;
                    bodyBytes += bodies[i].length();
                }
            }
            plan.remapped.put(key, refs[i]);
        }
        // Releases count for the records after this one; within a record increments come before decrements.
        for (long r : releasedHere) if (BlockMap.isChunk(r)) plan.released.add(r);
        ByteBuffer rec = LogRecord.newBuffer(entryBytes + bodyBytes);
        rec.putInt(w.volume.id).putLong(w.lba).putInt(count);
        for (int i = 0; i < count; i++) {
            rec.put((byte) kinds[i]);
            if (kinds[i] == WriteRecord.KIND_EXISTING) rec.putLong(refs[i]);
            if (kinds[i] == WriteRecord.KIND_NEW) rec.putLong(refs[i]).put((byte) bodies[i].codec()).putShort((short) bodies[i].length()).putInt(bodies[i].crc());
        }
        Check.that(rec.position() == LogRecord.HEADER_SIZE + entryBytes, "write entries fill %d bytes", entryBytes);
        for (ChunkCodec.Encoded e : bodies) if (e != null) rec.put(e.bytes(), 0, e.length());
        Check.that(!rec.hasRemaining(), "write record filled exactly");
        counters.dedupHits.add(hits);
        counters.dedupMisses.add(misses);
        counters.staleAdvice.add(stale);
        counters.zeroBlocksWritten.add(zeros);
        return new LogWriter.Pending(rec, LogRecord.WRITE, entryBytes);
    }

    /** Advice from the index that names a live chunk, else NONE. Caller holds a metadata lock. */
    private long liveAdvice(BlockName name) {
        long id = index.lookup(name);
        return id != DedupIndex.NONE && chunks.isLive(id) ? id : DedupIndex.NONE;
    }

    /** Maps whole blocks [lba, lba+count) to ZERO or UNMAPPED: no data is stored, no I/O but the record. */
    void mapRange(VolumeState v, long lba, long count, boolean unmap, boolean fua) {
        meta.writeLock().lock();
        try {
            checkWritable();
            checkRange(v, lba * BLOCK_SIZE, count * BLOCK_SIZE);
            ByteBuffer rec = LogRecord.newBuffer(21);
            rec.putInt(v.id).putLong(lba).putLong(count).put((byte) (unmap ? WriteRecord.KIND_UNMAPPED : WriteRecord.KIND_ZERO));
            appendAndApply(rec, LogRecord.MAP_RANGE, rec.position() - LogRecord.HEADER_SIZE, null);
            if (!unmap) counters.zeroBlocksWritten.add(count);
        } finally { meta.writeLock().unlock(); }
        if (fua) flush();
    }

    void checkRange(VolumeState v, long offset, long length) {
        if (v.deleted) throw new InvalidRequestException("volume '" + v.name + "' was deleted");
        long size = v.size;
        if (offset < 0 || length < 0 || offset > size || length > size - offset) {
            throw new InvalidRequestException("I/O [" + offset + ", +" + length + ") is outside volume '" + v.name + "' of " + size + " bytes");
        }
    }

    public void flush() {
        if (closed) throw new InvalidRequestException("the pool is closed");
        counters.flushes.increment();
        syncLog();
    }

    private void syncLog() {
        String reason = readOnlyReason;
        if (reason != null && reason.startsWith("fsync")) throw new ReadOnlyException("the pool is read-only: " + reason);
        if (log == null) return; // read-only since open: nothing was written
        try {
            log.sync();
        } catch (IOException e) {
            fsyncFailed(e);
            throw new StorageException("flush failed: " + e, e);
        }
    }

    // ---------------------------------------------------------------- read path

    /** Reads count blocks at lba into dst[dstOff...]. Unmapped and ZERO read as zeros without I/O. */
    void readBlocks(VolumeState v, long lba, int count, byte[] dst, int dstOff) {
        Location[] locs = new Location[count];
        meta.readLock().lock();
        try {
            checkRange(v, lba * BLOCK_SIZE, (long) count * BLOCK_SIZE);
            if (v.isPoisoned(lba, count)) {
                counters.corruptReads.increment();
                throw new CorruptionException("volume " + v.name + " blocks [" + lba + ", +" + count + "): the log record of their last write is damaged (" + readOnlyReason + ")");
            }
            for (int i = 0; i < count; i++) {
                long ref = v.map.get(lba + i);
                if (BlockMap.isChunk(ref)) locs[i] = chunks.location(ref);
            }
        } finally { meta.readLock().unlock(); }
        counters.blocksRead.add(count);
        int i = 0;
        while (i < count) {
            if (locs[i] == null) {
                java.util.Arrays.fill(dst, dstOff + i * BLOCK_SIZE, dstOff + (i + 1) * BLOCK_SIZE, (byte) 0);
                i++;
                continue;
            }
            // Coalesce chunks stored one after another in a segment into one read (sequential VM image reads).
            int j = i + 1;
            while (j < count && locs[j] != null && locs[j].segment() == locs[i].segment()
                    && locs[j].offset() > locs[j - 1].offset()
                    && (long) locs[j].offset() - (locs[j - 1].offset() + locs[j - 1].length()) <= 64
                    && (long) locs[j].offset() + locs[j].length() - locs[i].offset() <= (1 << 20)) {
                j++;
            }
            readChunks(locs, i, j, dst, dstOff);
            i = j;
        }
    }

    private void readChunk(Location loc, byte[] dst, int dstOff) {
        readChunks(new Location[] {loc}, 0, 1, dst, dstOff);
    }

    /** Reads locs[from, to) (one segment, increasing offsets) with one I/O, verifies each body, decodes each. */
    private void readChunks(Location[] locs, int from, int to, byte[] dst, int dstOff) {
        Location first = locs[from];
        Location last = locs[to - 1];
        int span = last.offset() + last.length() - first.offset();
        byte[] raw = new byte[span];
        try {
            segments.read(first.segment(), first.offset(), ByteBuffer.wrap(raw));
        } catch (java.io.EOFException e) {
            counters.corruptReads.increment();
            throw new CorruptionException("chunk " + first.chunkId() + ": segment " + first.segment() + " ends before offset " + (first.offset() + span) + ": " + e.getMessage(), e);
        } catch (IOException e) {
            throw storageFailure("reading segment " + first.segment(), e);
        }
        for (int k = from; k < to; k++) {
            Location loc = locs[k];
            int at = loc.offset() - first.offset();
            int crc = Crc.of(raw, at, loc.length());
            if (crc != loc.crc()) {
                counters.corruptReads.increment();
                throw new CorruptionException(String.format("chunk %d (segment %d offset %d, %d bytes): CRC32C expected %08x, found %08x",
                        loc.chunkId(), loc.segment(), loc.offset(), loc.length(), loc.crc(), crc));
            }
            ChunkCodec.decode(loc.codec(), raw, at, loc.length(), dst, dstOff + k * BLOCK_SIZE, "chunk " + loc.chunkId());
        }
    }

    /** Block status of [lba, lba+count): runs of (hole, zero) as VolumeDevice extents, in blocks. */
    List<VolumeDevice.Extent> blockStatus(VolumeState v, long lba, long count) {
        List<VolumeDevice.Extent> out = new ArrayList<>();
        meta.readLock().lock();
        try {
            checkRange(v, lba * BLOCK_SIZE, count * BLOCK_SIZE);
            long runStart = lba;
            int runState = stateOf(v.map.get(lba));
            for (long b = lba + 1; b < lba + count && out.size() < 1024; b++) {
                int s = stateOf(v.map.get(b));
                if (s != runState) {
                    out.add(extent(b - runStart, runState));
                    runStart = b;
                    runState = s;
                }
            }
            if (out.size() < 1024) out.add(extent(lba + count - runStart, runState));
        } finally { meta.readLock().unlock(); }
        return out;
    }

    private static int stateOf(long ref) { return ref == BlockMap.UNMAPPED ? 0 : ref == BlockMap.ZERO ? 1 : 2; }

    private static VolumeDevice.Extent extent(long blocks, int state) {
        return new VolumeDevice.Extent(blocks * BLOCK_SIZE, state == 0, state != 2);
    }

    // ---------------------------------------------------------------- checkpoints

    private void scheduleCheckpoint() {
        if (checkpointRunning.compareAndSet(false, true)) {
            background.execute(() -> {
                try {
                    checkpoint();
                } catch (RuntimeException | IOException e) {
                    LOG.log(System.Logger.Level.WARNING, "periodic checkpoint failed (the log still holds everything): " + e, e);
                } finally {
                    checkpointRunning.set(false);
                }
            });
        }
    }

    /** Writes a checkpoint of the current state; the log up to it is synced first. */
    public void checkpoint() throws IOException {
        checkpointLock.lock();
        try {
            writeCheckpoint();
        } finally {
            checkpointLock.unlock();
        }
    }

    private void writeCheckpoint() throws IOException {
        byte[] image;
        long lsn;
        meta.writeLock().lock();
        try {
            if (readOnlyReason != null) return;
            Checkpoint.Position pos = new Checkpoint.Position(log.nextLsn(), log.segmentSeq(), log.tailOffset());
            image = Checkpoint.encode(superblock.poolId(), new Checkpoint.Image(pos, List.copyOf(volumesById.values()), chunks, nextVolumeId));
            lsn = pos.nextLsn();
            logBytesAtCheckpoint = log.bytesAppended();
        } finally { meta.writeLock().unlock(); }
        // The checkpoint may only become durable after the log it summarizes: sync outside the lock, writers go on.
        syncLog();
        fs.writeAtomically(Checkpoint.fileName(lsn), image);
        // Keep the newest two: an unreadable newest one falls back to the previous one (and the log).
        List<String> files = checkpointFiles();
        for (int i = 2; i < files.size(); i++) fs.delete(files.get(i));
        fs.syncDir(Checkpoint.DIR);
        checkpointBytes = fileBytes(checkpointFiles());
    }

    /** Checkpoint file names, newest first. */
    private List<String> checkpointFiles() throws IOException {
        List<String> files = new ArrayList<>();
        for (String f : fs.list(Checkpoint.DIR)) if (f.endsWith(".ckpt")) files.add(Checkpoint.DIR + "/" + f);
        files.sort(java.util.Comparator.reverseOrder());
        return files;
    }

    private long fileBytes(List<String> names) throws IOException {
        long total = 0;
        for (String n : names) {
            try (Fs.FileHandle h = fs.open(n, false)) { total += h.size(); }
        }
        return total;
    }

    // ---------------------------------------------------------------- for the checker

    <T> T withReadLock(java.util.function.Supplier<T> body) {
        meta.readLock().lock();
        try { return body.get(); } finally { meta.readLock().unlock(); }
    }

    ChunkTable chunkTable() { return chunks; }


    List<VolumeState> volumeStates() { return List.copyOf(volumesByName.values()); }

    Fs fs() { return fs; }

    /** Reads, verifies and decodes one chunk into block. */
    void readVerified(Location loc, byte[] block) { readChunk(loc, block, 0); }

    // ---------------------------------------------------------------- stats

    public PoolStats stats() {
        long indexDiskBytes;
        try {
            List<String> names = new ArrayList<>();
            for (String f : fs.list(INDEX_DIR)) names.add(INDEX_DIR + "/" + f);
            indexDiskBytes = fileBytes(names);
        } catch (IOException e) {
            indexDiskBytes = -1; // unknown; stats must not fail because a chapter file is being replaced
        }
        meta.readLock().lock();
        try {
            List<PoolStats.VolumeStats> vols = new ArrayList<>();
            for (VolumeState v : volumesByName.values()) {
                vols.add(new PoolStats.VolumeStats(v.name, v.size, v.map.mappedBlocks(), v.map.zeroBlocks()));
            }
            return new PoolStats(superblock.poolId().toString(), readOnlyReason, vols, chunks.liveChunks(), chunks.liveBytes(),
                    chunks.deadBytes(), logBytesTotal, checkpointBytes + Superblock.SIZE,
                    new PoolStats.IndexStats(index instanceof UdsIndex ? "uds" : "exact", index.entries(), index.windowEntries(),
                            index.memoryBytes(), indexDiskBytes, counters.dedupHits.sum(), counters.dedupMisses.sum(),
                            counters.staleAdvice.sum(), index.sparse(), index.rebuildRemaining()),
                    counters.blocksWritten.sum(), counters.blocksRead.sum(), counters.flushes.sum(), counters.corruptReads.sum(),
                    chunks.memoryBytes());
        } finally { meta.readLock().unlock(); }
    }

    @Override
    public void close() throws IOException {
        if (closed) return;
        try {
            if (readOnlyReason == null) {
                checkpoint();
                index.save();
            }
        } finally {
            closed = true;
            index.close();
            meta.writeLock().lock();
            try {
                if (log != null) log.close();
                segments.close();
            } finally { meta.writeLock().unlock(); }
        }
    }
}
