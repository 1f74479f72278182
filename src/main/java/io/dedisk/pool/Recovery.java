package io.dedisk.pool;

import io.dedisk.DediskException.CorruptionException;
import io.dedisk.index.DedupIndex;
import io.dedisk.store.Backend;
import io.dedisk.util.ByteSource;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;

/**
 * Opening a pool: the manifest names the newest checkpoint root (and the one before it, the fallback); the root
 * gives the tree roots, counters and usage table; the log after the root is replayed through {@link
 * PoolState#apply}. So restart costs the checkpoint interval, not the pool size. Decision table for each record
 * position (docs/fault-model.md): a record that verifies with the expected LSN is applied; anything else in the
 * last segment is the torn or unsynced tail and the log ends there; anything else in a sealed segment is damage:
 * the pool opens read-only with what was replayed, and every block a later record names is poisoned.
 *
 * Threads: runs once, on the opening thread, before anyone else sees the pool. Reads only: it never writes.
 */
final class Recovery {
    private static final System.Logger LOG = System.getLogger("dedisk.recovery");

    /** What opening found: the state, where the log continues (null: damaged, do not append), why read-only. */
    record Recovered(PoolState state, LogPosition end, String damage, Manifest manifest, Manifest.RootRef rootUsed, long recordsReplayed) {}

    private Recovery() {}

    /** {@code index} receives the names of chunks created in the replayed log; null to post none (read-only open). */
    static Recovered recover(Backend backend, UUID poolId, MetadataCache cache, DedupIndex index) throws IOException {
        PageTree.PageReader pages = (address, dst) -> backend.read(MetaPage.segmentOf(address), MetaPage.offsetOf(address), dst);
        byte[] mbytes = backend.readManifest();
        Manifest manifest = mbytes == null ? null : Manifest.decode(mbytes, poolId);
        CheckpointRoot root = CheckpointRoot.empty();
        LogPosition start = new LogPosition(1, 0, 1);
        Manifest.RootRef used = Manifest.RootRef.NONE;
        if (manifest != null && manifest.newest().present()) {
            List<Manifest.RootRef> refs = new ArrayList<>(List.of(manifest.newest()));
            if (manifest.previous().present()) refs.add(manifest.previous());
            CorruptionException failure = null;
            for (Manifest.RootRef ref : refs) {
                try {
                    RootAt r = readRoot(backend, poolId, ref);
                    root = r.root();
                    start = r.after();
                    used = ref;
                    failure = null;
                    break;
                } catch (CorruptionException e) {
                    LOG.log(System.Logger.Level.WARNING, "checkpoint root unusable, trying the previous one: {0}", e.getMessage());
                    failure = e;
                }
            }
            if (failure != null) throw new CorruptionException("no usable checkpoint root: " + failure.getMessage(), failure);
        }
        PoolState state = new PoolState(root, cache, pages, index);
        Replay replay = new Replay(backend, poolId, state);
        LogPosition end = replay.run(start);
        return new Recovered(state, end, replay.damage, manifest, used, replay.applied);
    }

    record RootAt(CheckpointRoot root, LogPosition after) {}

    /** Reads and verifies the ROOT record a manifest names. */
    static RootAt readRoot(Backend backend, UUID poolId, Manifest.RootRef ref) throws IOException {
        long seq = MetaPage.segmentOf(ref.address());
        long off = MetaPage.offsetOf(ref.address());
        String where = "checkpoint root at segment " + seq + " offset " + off;
        if (ref.length() < LogRecord.HEADER_SIZE || ref.length() > LogRecord.HEADER_SIZE + LogRecord.MAX_PAYLOAD) {
            throw new CorruptionException(where + ": manifest gives a record length of " + ref.length());
        }
        ByteBuffer buf = ByteBuffer.allocate(ref.length());
        try {
            backend.read(seq, off, buf);
        } catch (java.io.EOFException | java.nio.file.NoSuchFileException | java.io.FileNotFoundException e) {
            throw new CorruptionException(where + ": not there (" + e.getMessage() + ")", e);
        }
        LogRecord.Header h = LogRecord.Header.parseUntrusted(buf.duplicate());
        if (h == null || h.type() != LogRecord.ROOT || h.length() + LogRecord.HEADER_SIZE != ref.length() || h.crc() != ref.crc() || !h.verify(buf.duplicate())) {
            throw new CorruptionException(where + ": no ROOT record with the manifest's length " + ref.length() + " and CRC32C " + Integer.toHexString(ref.crc()));
        }
        CheckpointRoot root = CheckpointRoot.decode(buf.slice(LogRecord.HEADER_SIZE, h.length()).order(ByteOrder.LITTLE_ENDIAN));
        return new RootAt(root, new LogPosition(seq, off + ref.length(), h.lsn() + 1));
    }

    /** The replay of the log after a root. */
    private static final class Replay {
        private final Backend backend;
        private final UUID poolId;
        private final PoolState state;
        String damage;
        long applied;

        Replay(Backend backend, UUID poolId, PoolState state) {
            this.backend = backend;
            this.poolId = poolId;
            this.state = state;
        }

        private byte[] readSegment(long seq) throws IOException {
            long size = backend.segmentBytes(seq);
            if (size > Integer.MAX_VALUE - 16) throw new CorruptionException("log: segment " + seq + " holds " + size + " bytes, more than a segment can");
            ByteBuffer b = ByteBuffer.allocate((int) size);
            backend.read(seq, 0, b);
            return b.array();
        }

        /** Replays from start to the end of the log; returns where the log continues, or null when it is damaged. */
        LogPosition run(LogPosition start) throws IOException {
            List<Long> seqs = new ArrayList<>(backend.segments());
            seqs.removeIf(s -> s < start.segment());
            for (int i = 1; i < seqs.size(); i++) {
                if (seqs.get(i) != seqs.get(i - 1) + 1) {
                    throw new CorruptionException("log: segment " + (seqs.get(i - 1) + 1) + " is missing (found " + seqs.get(i) + " after " + seqs.get(i - 1) + ")");
                }
            }
            if (seqs.isEmpty() || seqs.get(0) != start.segment()) {
                if (start.offset() != 0) throw new CorruptionException("log: segment " + start.segment() + " named by the checkpoint is missing");
                return start;
            }
            long lsn = start.nextLsn();
            for (int i = 0; i < seqs.size(); i++) {
                long seq = seqs.get(i);
                boolean last = i == seqs.size() - 1;
                byte[] data = readSegment(seq);
                long offset = i == 0 ? start.offset() : 0;
                LogReader.WalkEnd end = LogReader.walk(data, offset, lsn, seq, poolId, r -> {
                        // In the tail segment, unsynced writes may have torn chunk bodies the record CRC does not
                        // cover: such a record is the torn end of the log, not corruption.
                    if (last && !LogReader.bodiesIntact(r)) return false;
                    if (r.type() == LogRecord.SEAL) return true;
                    try {
                        state.apply(r.type(), r.payload(), r.covered(), seq, r.payloadOffset(), null);
                        applied++;
                        } catch (CorruptionException e) {
                            throw new CorruptionException("log: segment " + seq + " record LSN " + r.lsn() + " at offset " + (r.payloadOffset() - LogRecord.HEADER_SIZE) + ": " + e.getMessage(), e);
                        }
                        return true;
                    });
                lsn = end.nextLsn();
                if (!end.sealed()) {
                    if (!last) {
                        containLogDamage(seqs.subList(i, seqs.size()), end.offset(), "sealed segment " + seq + " has an invalid record at offset " + end.offset() + " (LSN " + lsn + " expected)");
                        return null;
                    }
                    return new LogPosition(seq, end.offset(), lsn);
                }
                if (last) return new LogPosition(seq + 1, 0, lsn);
            }
            throw new IllegalStateException("unreachable");
        }

        /**
         * Damage in a sealed (synced) part of the log: what follows cannot be applied, since it may depend on what
         * was lost. Every block a later record (found by scanning for verified record headers past the damage) or
         * the damaged record's claimed range would change is poisoned: its reads fail rather than return stale data.
         */
        private void containLogDamage(List<Long> segmentsFromDamage, long damageOffset, String what) throws IOException {
            damage = "log damage: " + what + "; blocks written after it read as I/O errors";
            long poisoned = 0;
            byte[] first = readSegment(segmentsFromDamage.get(0));
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
                byte[] data = i == 0 ? first : readSegment(seq);
                long p = i == 0 ? damageOffset + 1 : 0;
                while (p + LogRecord.HEADER_SIZE <= data.length) {
                    LogReader.RecordAt r;
                    try {
                        r = LogReader.readRecord(data, p, LogReader.ANY_LSN, seq, poolId);
                    } catch (CorruptionException e) {
                        r = null;
                    }
                    if (r == null) { p++; continue; }
                    poisoned += poisonTargets(r);
                    p = r.end();
                }
            }
            LOG.log(System.Logger.Level.ERROR, "pool {0}: {1}; {2} blocks poisoned", poolId, what, poisoned);
        }

        /** Poisons the blocks a WRITE or MAP_RANGE record targets; returns how many. */
        private long poisonTargets(LogReader.RecordAt r) {
            if (r.type() != LogRecord.WRITE && r.type() != LogRecord.MAP_RANGE) return 0;
            ByteSource in = new ByteSource(r.payload(), "record");
            int volumeId = in.getInt();
            long first = in.getLong();
            long count = r.type() == LogRecord.WRITE ? in.getInt() : in.getLong();
            VolumeState v = state.volumesById.get(volumeId);
            if (v == null || count <= 0) return 0;
            v.poison(first, count);
            return count;
        }
    }
}
