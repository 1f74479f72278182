package io.dedisk.pool;

import io.dedisk.DediskException.CorruptionException;
import io.dedisk.store.Fs;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * `dedisk check` (like vdoaudit / e2fsck -n): an offline audit of an opened pool. It re-derives every reference
 * count from the block maps and compares it with the chunk table, verifies that every map entry names a live
 * chunk, reads and verifies (CRC32C, decode) every live chunk, walks the whole log verifying every record, LSN
 * chain and chunk body, and verifies the checkpoints. It changes nothing.
 *
 * A repair (`--repair`, not built yet) would: drop map entries whose chunk is unreadable (they then read as
 * zeros, reported per LBA), rewrite refcounts from the recount, truncate the log at the first damaged record of
 * a sealed segment and write a fresh checkpoint, as vdoforcerebuild does.
 *
 * Threads: runs alone on a pool opened for it (holds the metadata read lock while it walks the maps).
 */
public final class PoolChecker {
    private PoolChecker() {}

    /** What the audit found: problems (the pool is not sound) and counts of what was verified. */
    public record Report(List<String> problems, List<String> notes, long volumes, long mappedBlocks, long chunksVerified,
                         long segments, long records, long checkpoints) {
        public boolean ok() { return problems.isEmpty(); }

        public String toText() {
            StringBuilder b = new StringBuilder();
            b.append(String.format("checked %d volumes, %d mapped blocks, %d chunks, %d segments (%d records), %d checkpoints%n",
                    volumes, mappedBlocks, chunksVerified, segments, records, checkpoints));
            for (String n : notes) b.append("note: ").append(n).append('\n');
            for (String p : problems) b.append("PROBLEM: ").append(p).append('\n');
            b.append(ok() ? "pool is consistent\n" : problems.size() + " problem(s) found\n");
            return b.toString();
        }
    }

    private static final int MAX_REPORTED = 100;

    public static Report check(Pool pool) throws IOException {
        List<String> problems = new ArrayList<>();
        List<String> notes = new ArrayList<>();
        if (pool.readOnlyReason() != null) problems.add("pool opened read-only: " + pool.readOnlyReason());
        long[] counts = pool.withReadLock(() -> auditReferences(pool, problems));
        long chunksVerified = auditChunks(pool, problems);
        long[] log = auditLog(pool, problems, notes);
        long checkpoints = auditCheckpoints(pool, problems);
        if (problems.size() > MAX_REPORTED) {
            int more = problems.size() - MAX_REPORTED;
            problems.subList(MAX_REPORTED, problems.size()).clear();
            problems.add("... and " + more + " more");
        }
        return new Report(problems, notes, counts[0], counts[1], chunksVerified, log[0], log[1], checkpoints);
    }

    /** Recounts references from the maps; returns {volumes, mapped blocks}. */
    private static long[] auditReferences(Pool pool, List<String> problems) {
        ChunkTable chunks = pool.chunkTable();
        Map<Long, Long> recount = new HashMap<>();
        long mapped = 0;
        List<VolumeState> volumes = pool.volumeStates();
        for (VolumeState v : volumes) {
            for (int p = 0; p < v.map.pageCount(); p++) {
                long[] page = v.map.page(p);
                if (page == null) continue;
                for (int i = 0; i < page.length; i++) {
                    long ref = page[i];
                    if (!BlockMap.isChunk(ref)) continue;
                    mapped++;
                    long lba = (long) p * BlockMap.PAGE_SIZE + i;
                    if (!chunks.isLive(ref)) problems.add("volume " + v.name + " LBA " + lba + " references chunk " + ref + ", which does not exist");
                    else recount.merge(ref, 1L, Long::sum);
                }
            }
        }
        chunks.forEachLive(loc -> {
            long expected = recount.getOrDefault(loc.chunkId(), 0L);
            int stored = chunks.refCount(loc.chunkId());
            if (stored != expected) problems.add("chunk " + loc.chunkId() + ": refcount " + stored + ", but " + expected + " map entries reference it");
        });
        return new long[] {volumes.size(), mapped};
    }

    private static long auditChunks(Pool pool, List<String> problems) {
        List<ChunkTable.Location> live = new ArrayList<>();
        pool.withReadLock(() -> { pool.chunkTable().forEachLive(live::add); return null; });
        byte[] block = new byte[Pool.BLOCK_SIZE];
        for (ChunkTable.Location loc : live) {
            try {
                pool.readVerified(loc, block);
            } catch (CorruptionException e) {
                problems.add(e.getMessage() + "; referenced by " + pool.withReadLock(() -> referencesOf(pool, loc.chunkId())));
            }
        }
        return live.size();
    }

    private static String referencesOf(Pool pool, long chunkId) {
        List<String> refs = new ArrayList<>();
        for (VolumeState v : pool.volumeStates()) {
            for (long lba = 0; lba < v.map.blocks() && refs.size() < 10; lba++) {
                if (v.map.page((int) (lba >>> BlockMap.PAGE_SHIFT)) == null) { lba |= BlockMap.PAGE_SIZE - 1; continue; }
                if (v.map.get(lba) == chunkId) refs.add(v.name + " LBA " + lba);
            }
        }
        return String.join(", ", refs);
    }

    /** Walks every segment from the first; returns {segments, records}. */
    private static long[] auditLog(Pool pool, List<String> problems, List<String> notes) throws IOException {
        Fs fs = pool.fs();
        List<String> files = fs.list(LogWriter.DIR);
        long lsn = 1;
        long records = 0;
        long expectedSeq = 1;
        for (int i = 0; i < files.size(); i++) {
            long seq = LogWriter.segmentSeqOf(files.get(i));
            if (seq != expectedSeq) problems.add("log: segment " + expectedSeq + " is missing (next is " + seq + ")");
            expectedSeq = seq + 1;
            byte[] data = fs.readAll(LogWriter.segmentName(seq));
            long offset = 0;
            boolean sealed = false;
            while (offset < data.length) {
                LogReader.RecordAt r;
                try {
                    r = LogReader.readRecord(data, offset, lsn, seq, pool.poolId());
                } catch (CorruptionException e) {
                    problems.add(e.getMessage());
                    break;
                }
                if (r == null) {
                    problems.add("log: segment " + seq + " offset " + offset + ": no valid record with LSN " + lsn + " (damaged or misplaced)");
                    break;
                }
                records++;
                lsn++;
                offset = r.end();
                if (r.type() == LogRecord.WRITE && !LogReader.bodiesIntact(r)) {
                    notes.add("log: segment " + seq + " record LSN " + r.lsn() + " holds a chunk body that fails its CRC (harmless if the chunk is dead)");
                }
                if (r.type() == LogRecord.SEAL) { sealed = true; break; }
            }
            boolean last = i == files.size() - 1;
            if (!last && !sealed) problems.add("log: segment " + seq + " is not the tail but has no SEAL record");
            if (sealed && offset != data.length) problems.add("log: segment " + seq + " has " + (data.length - offset) + " bytes after its SEAL");
        }
        return new long[] {files.size(), records};
    }

    private static long auditCheckpoints(Pool pool, List<String> problems) throws IOException {
        Fs fs = pool.fs();
        long n = 0;
        for (String f : fs.list(Checkpoint.DIR)) {
            if (!f.endsWith(".ckpt")) continue;
            n++;
            try {
                Checkpoint.decode(fs.readAll(Checkpoint.DIR + "/" + f), pool.poolId(), Checkpoint.DIR + "/" + f);
            } catch (CorruptionException e) {
                problems.add(e.getMessage());
            }
        }
        return n;
    }
}
