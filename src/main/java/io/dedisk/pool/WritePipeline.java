package io.dedisk.pool;

import io.dedisk.index.BlockName;
import io.dedisk.index.DedupIndex;
import io.dedisk.util.Check;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * The write path of whole 4 KiB blocks (DESIGN.md §2): zero detection, naming (SHA-256), dedup against the index
 * (live advice only), LZ4, and group commit of WRITE records into the log, then apply.
 *
 * Concurrency (docs/decisions.md "Concurrency", "Group commit"): each writer names and compresses its batch on its
 * own thread without locks ({@link #prepare}), queues it and takes the metadata write lock; whoever holds the lock
 * plans every queued batch and appends them with one write per segment ({@link #commitQueued}), then applies them
 * in order. Identical concurrent writes meet under the lock, so never two chunks for one content. The simulation
 * calls {@link #prepare} and {@link #commit} as separate steps to interleave writers deterministically.
 */
final class WritePipeline {
    /**
     * Blocks per write record the pipeline makes: bounds the time the write lock is held and the record size. 64
     * blocks (256 KiB) keeps a record and the heap copy of its blocks under G1's humongous threshold (half a 1 MiB
     * region): 1 MiB batches made every large write two humongous allocations (docs/decisions.md, "Write path
     * allocation"). Group commit still writes many records per syscall.
     */
    static final int BATCH_BLOCKS = 64;
    /** Blocks one WRITE record may hold (the format's bound, what replay accepts; pools written with 256-block batches). */
    static final int RECORD_MAX_BLOCKS = 256;
    /** Bytes of records one group commit gathers before writing (bounds the lock hold time). */
    static final long GROUP_BYTES = 4 << 20;

    private final Pool pool;
    private final ConcurrentLinkedQueue<PendingWrite> queue = new ConcurrentLinkedQueue<>();

    WritePipeline(Pool pool) {
        this.pool = pool;
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
        /** The index's live advice when prepared (NONE: none, or not asked for a repeat within the batch). */
        final long[] advice;
        /** Guarded by the metadata write lock. */
        boolean done;
        RuntimeException failure;

        PendingWrite(VolumeState volume, long lba, byte[] buf, int off, int count, BlockName[] names, ChunkCodec.Encoded[] encoded, long[] advice) {
            this.volume = volume;
            this.lba = lba;
            this.buf = buf;
            this.off = off;
            this.count = count;
            this.names = names;
            this.encoded = encoded;
            this.advice = advice;
        }
    }

    /** Names the blocks and compresses the likely-new ones, outside any exclusive lock. */
    PendingWrite prepare(VolumeState v, long lba, byte[] buf, int off, int count) {
        BlockName[] names = new BlockName[count];
        for (int i = 0; i < count; i++) {
            int o = off + i * Pool.BLOCK_SIZE;
            if (!ChunkCodec.isZero(buf, o)) names[i] = BlockName.of(buf, o, Pool.BLOCK_SIZE);
        }
        // Which blocks will likely need storing: compress those outside the lock. The advice is kept for the commit,
        // which asks the index again only for blocks that had none (a concurrent writer may have stored them since).
        boolean[] likelyNew = new boolean[count];
        long[] advice = new long[count];
        java.util.Arrays.fill(advice, DedupIndex.NONE);
        Set<BlockName> firstInBatch = new HashSet<>();
        pool.meta.readLock().lock();
        try {
            for (int i = 0; i < count; i++) {
                if (names[i] == null || !firstInBatch.add(names[i])) continue;
                advice[i] = liveAdvice(names[i]);
                likelyNew[i] = advice[i] == DedupIndex.NONE;
            }
        } finally { pool.meta.readLock().unlock(); }
        ChunkCodec.Encoded[] encoded = new ChunkCodec.Encoded[count];
        byte[] scratch = ChunkCodec.scratch();
        for (int i = 0; i < count; i++) if (likelyNew[i]) encoded[i] = ChunkCodec.encode(buf, off + i * Pool.BLOCK_SIZE, scratch);
        return new PendingWrite(v, lba, buf, off, count, names, encoded, advice);
    }

    /** Advice from the index that names a live chunk, else NONE. Caller holds a metadata lock. */
    private long liveAdvice(BlockName name) {
        long id = pool.index.lookup(name);
        return id != DedupIndex.NONE && pool.state.chunks.isLive(id) ? id : DedupIndex.NONE;
    }

    /**
     * Queues prepared batches and waits until they are committed, by this thread or by another writer that took
     * the lock first and committed the whole queue (group commit). Throws the first batch's failure.
     */
    void commit(List<PendingWrite> batches) {
        queue.addAll(batches);
        pool.meta.writeLock().lock();
        try {
            for (PendingWrite b : batches) while (!b.done) commitQueued(); // a long queue takes several groups
        } finally { pool.meta.writeLock().unlock(); }
        for (PendingWrite b : batches) {
            Check.that(b.done, "a queued write is committed or failed before its writer returns");
            if (b.failure != null) throw b.failure;
        }
        pool.afterMutation();
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
        final Set<Long> released = new HashSet<>();
        final Map<BlockKey, Long> remapped = new HashMap<>();
    }

    /**
     * Group commit, run by whichever writer holds the write lock: drains the queue, plans one WRITE record per
     * batch, appends them all with one write per segment, then applies them in order and releases their writers.
     */
    private void commitQueued() {
        Check.that(pool.meta.isWriteLockedByCurrentThread(), "commit under the metadata write lock");
        List<PendingWrite> group = new ArrayList<>();
        List<LogWriter.Pending> records = new ArrayList<>();
        GroupPlan plan = new GroupPlan();
        long groupBytes = 0;
        PendingWrite w;
        while (groupBytes < GROUP_BYTES && (w = queue.poll()) != null) {
            try {
                pool.checkWritable();
                pool.checkRange(w.volume, w.lba * Pool.BLOCK_SIZE, (long) w.count * Pool.BLOCK_SIZE);
                Snapshots.checkWritable(w.volume);
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
        LogWriter.Appended appended = pool.log.appendAll(records);
        for (int i = 0; i < group.size(); i++) {
            PendingWrite g = group.get(i);
            g.done = true;
            if (i >= appended.written()) {
                g.failure = pool.storageFailure("appending to the log", appended.error());
                continue;
            }
            ByteBuffer rec = records.get(i).buffer();
            pool.appended(rec.limit());
            ByteBuffer payload = rec.duplicate().position(LogRecord.HEADER_SIZE).slice().order(ByteOrder.LITTLE_ENDIAN);
            try {
                pool.applyAppended(LogRecord.WRITE, payload, records.get(i).covered(), appended.segments()[i], appended.offsets()[i] + LogRecord.HEADER_SIZE, g.names);
            } catch (RuntimeException e) {
                g.failure = e; // the pool is read-only now; the rest of the group fails with it
                for (int k = i + 1; k < group.size(); k++) {
                    group.get(k).done = true;
                    group.get(k).failure = e;
                }
                return;
            }
            pool.counters.blocksWritten.add(g.count);
        }
    }

    /** Decides each block of a batch (zero, dedup hit, or new chunk) and encodes its WRITE record: entries, then bodies. */
    private LogWriter.Pending planWrite(PendingWrite w, GroupPlan plan) {
        int count = w.count;
        int[] kinds = new int[count];
        long[] refs = new long[count];
        ChunkCodec.Encoded[] bodies = new ChunkCodec.Encoded[count];
        List<Long> releasedHere = new ArrayList<>();
        // The batch joins the plan only once it is planned whole: a batch that fails half way leaves no trace.
        Map<BlockName, Long> createdHere = new HashMap<>();
        Map<BlockKey, Long> remappedHere = new HashMap<>();
        int entryBytes = WriteRecord.FIXED_BYTES;
        int bodyBytes = 0;
        long hits = 0, misses = 0, stale = 0, zeros = 0;
        byte[] scratch = null;
        for (int i = 0; i < count; i++) {
            BlockKey key = new BlockKey(w.volume.id, w.lba + i);
            Long remapped = remappedHere.containsKey(key) ? remappedHere.get(key) : plan.remapped.get(key);
            releasedHere.add(remapped != null ? remapped : w.volume.map.get(w.lba + i));
            BlockName name = w.names[i];
            if (name == null) {
                kinds[i] = WriteRecord.KIND_ZERO;
                refs[i] = BlockMap.ZERO;
                entryBytes += 1;
                zeros++;
                remappedHere.put(key, refs[i]);
                continue;
            }
            Long created = createdHere.containsKey(name) ? createdHere.get(name) : plan.created.get(name);
            // Advice from prepare stands while its chunk lives (chunk ids are never reused, so a live id still names
            // this content); otherwise the index is asked again under the lock.
            long prepared = w.advice[i];
            long advice = created != null ? created
                    : prepared != DedupIndex.NONE && pool.state.chunks.isLive(prepared) ? prepared : pool.index.lookup(name);
            boolean usable = advice != DedupIndex.NONE && !plan.released.contains(advice) && (created != null || pool.state.chunks.isLive(advice));
            if (usable) {
                kinds[i] = WriteRecord.KIND_EXISTING;
                refs[i] = advice;
                entryBytes += 9;
                hits++;
            } else {
                if (advice != DedupIndex.NONE && created == null && !pool.state.chunks.isLive(advice)) stale++;
                pool.checkFreshSpace(); // fresh data needs space; duplicates and zeros do not
                misses++;
                kinds[i] = WriteRecord.KIND_NEW;
                refs[i] = pool.state.chunks.allocateId();
                if (w.encoded[i] == null && scratch == null) scratch = ChunkCodec.scratch();
                bodies[i] = w.encoded[i] != null ? w.encoded[i] : ChunkCodec.encode(w.buf, w.off + i * Pool.BLOCK_SIZE, scratch);
                createdHere.put(name, refs[i]);
                entryBytes += WriteRecord.NEW_ENTRY_BYTES;
                bodyBytes += bodies[i].length();
            }
            remappedHere.put(key, refs[i]);
        }
        plan.created.putAll(createdHere);
        plan.remapped.putAll(remappedHere);
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
        for (ChunkCodec.Encoded e : bodies) if (e != null) rec.put(e.bytes(), e.off(), e.length());
        Check.that(!rec.hasRemaining(), "write record filled exactly");
        pool.counters.dedupHits.add(hits);
        pool.counters.dedupMisses.add(misses);
        pool.counters.staleAdvice.add(stale);
        pool.counters.zeroBlocksWritten.add(zeros);
        return new LogWriter.Pending(rec, LogRecord.WRITE, entryBytes);
    }
}
