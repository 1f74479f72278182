package io.dedisk.pool;

import io.dedisk.DediskException;
import io.dedisk.DediskException.CorruptionException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * `dedisk check` (like vdoaudit / e2fsck -n): an audit of a pool opened read-only (nothing is truncated, written,
 * deleted or saved; a test hashes every file before and after). It loads every page of every tree (each verified
 * against the CRC its parent holds and naming its family), checks that pages shared by snapshots and clones sit at
 * one place in every tree that holds them, recounts every reference from the block maps (a leaf version shared by
 * several trees counts once) and compares it with the stored refcounts, recomputes every segment's live bytes and compares them with the usage table, reads and verifies
 * (CRC32C, decode) every live chunk, walks every segment verifying records, LSN chains, seals and bodies, and
 * verifies the manifest and both roots it names, and the dedup index's files (damage there is advice lost).
 *
 * A repair (`--repair`, not built yet) would: drop map entries whose chunk is unreadable (they then read as zeros,
 * reported per LBA), rewrite refcounts from the recount, truncate the log at the first damaged record of a sealed
 * segment and write a fresh checkpoint, as vdoforcerebuild does.
 *
 * Threads: runs alone on a pool opened for it (holds the metadata read lock while it walks the trees).
 */
public final class PoolChecker {
    private PoolChecker() {}

    /** What the audit found: problems (the pool is not sound) and counts of what was verified. */
    public record Report(List<String> problems, List<String> notes, long volumes, long mappedBlocks, long chunksVerified,
                         long pages, long segments, long records, long roots) {
        public boolean ok() { return problems.isEmpty(); }

        public String toText() {
            StringBuilder b = new StringBuilder();
            b.append(String.format("checked %d volumes, %d mapped blocks, %d chunks, %d metadata pages, %d segments (%d records), %d checkpoint roots%n",
                    volumes, mappedBlocks, chunksVerified, pages, segments, records, roots));
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
        long[] counts = pool.withReadLock(() -> auditTrees(pool, problems));
        long chunksVerified = auditChunks(pool, problems);
        long[] log = auditLog(pool, problems, notes);
        long roots = auditRoots(pool, problems);
        auditIndex(pool, problems, notes);
        if (problems.size() > MAX_REPORTED) {
            int more = problems.size() - MAX_REPORTED;
            problems.subList(MAX_REPORTED, problems.size()).clear();
            problems.add("... and " + more + " more");
        }
        return new Report(problems, notes, counts[0], counts[1], chunksVerified, counts[2], log[0], log[1], roots);
    }

    /**
     * Loads every page, recounts references and live bytes per segment; returns {volumes, mapped blocks, pages}.
     */
    private static long[] auditTrees(Pool pool, List<String> problems) {
        PoolState state = pool.state;
        ChunkTable chunks = state.chunks;
        Map<Long, Long> recount = new HashMap<>();
        TreeMap<Long, Long> live = new TreeMap<>();
        long[] mapped = {0};
        long[] zero = {0};
        long pages = 0;
        // Shared pages: a durable version is counted once however many family members hold it (its leaf's entries
        // once in the refcounts, its bytes once in the usage), sits at one (level, index) in every member (the
        // family's shape), and is not descended into again. Changed copies (dirty) are each tree's own.
        Map<Long, Long> placeOf = new HashMap<>(); // address -> level << 56 | index
        java.util.Set<Long> versions = new java.util.HashSet<>();
        Map<Long, Integer> pageBytes = new HashMap<>(); // address -> record length
        for (PageTree tree : state.trees()) {
            long[] n = {0};
            try {
                tree.walk(r -> {
                    if (r.address() == 0) return true;
                    long place = (long) r.level() << 56 | r.index();
                    Long other = placeOf.putIfAbsent(r.address(), place);
                    if (other != null && other != place) {
                        problems.add("tree " + tree.tree + ": page at segment " + MetaPage.segmentOf(r.address()) + " offset " + MetaPage.offsetOf(r.address())
                                + " is its level " + r.level() + " index " + r.index() + ", but level " + (other >>> 56) + " index " + (other & ((1L << 56) - 1))
                                + " of another member of family " + tree.family.id + " (shapes differ)");
                        return false;
                    }
                    return !r.version() || versions.add(r.address());
                }, p -> {
                    n[0]++;
                    if (p.address != 0) pageBytes.put(p.address, p.length);
                    if (p.kind == MetaPage.KIND_MAP_LEAF) BlockMap.forEachEntry(p, (i, ref) -> {
                        if (BlockMap.isChunk(ref)) recount.merge(ref, 1L, Long::sum);
                    });
                });
            } catch (DediskException e) {
                problems.add("tree " + tree.tree + ": " + e.getMessage());
            }
            pages += n[0];
        }
        for (var e : pageBytes.entrySet()) live.merge(MetaPage.segmentOf(e.getKey()), (long) e.getValue(), Long::sum);
        List<VolumeState> volumes = pool.volumeStates();
        for (VolumeState v : volumes) {
            long[] vm = {0, 0};
            try {
                v.map.forEachMapped((lba, ref) -> {
                    if (ref == BlockMap.ZERO) { vm[1]++; return; }
                    if (!BlockMap.isChunk(ref)) { problems.add("volume " + v.name + " LBA " + lba + ": invalid reference " + ref); return; }
                    vm[0]++;
                    if (lba >= v.map.blocks()) problems.add("volume " + v.name + " LBA " + lba + " beyond its " + v.map.blocks() + " blocks is mapped");
                    if (!chunks.isLive(ref)) problems.add("volume " + v.name + " LBA " + lba + " references chunk " + ref + ", which does not exist");
                });
            } catch (DediskException e) {
                problems.add("volume " + v.name + ": block map unreadable: " + e.getMessage());
            }
            if (vm[0] != v.map.mappedBlocks() || vm[1] != v.map.zeroBlocks()) {
                problems.add("volume " + v.name + ": counts " + v.map.mappedBlocks() + " mapped / " + v.map.zeroBlocks() + " zero, but the map holds "
                        + vm[0] + " / " + vm[1]);
            }
            mapped[0] += vm[0];
            zero[0] += vm[1];
        }
        long[] liveChunks = {0, 0};
        long[] histogram = new long[ChunkTable.HISTOGRAM_BUCKETS];
        chunks.forEachLive(loc -> {
            liveChunks[0]++;
            int refs = chunks.refCount(loc.chunkId());
            if (refs > 0) histogram[ChunkTable.bucket(refs)]++;
            liveChunks[1] += loc.length();
            live.merge(loc.segment(), (long) loc.length(), Long::sum);
            long expected = recount.getOrDefault(loc.chunkId(), 0L);
            int stored = chunks.refCount(loc.chunkId());
            if (stored != expected) problems.add("chunk " + loc.chunkId() + ": refcount " + stored + ", but " + expected + " entries of distinct leaf versions reference it");
            if (loc.chunkId() >= chunks.nextId()) problems.add("chunk " + loc.chunkId() + " is at or above the next id " + chunks.nextId());
        });
        if (liveChunks[0] != chunks.liveChunks() || liveChunks[1] != chunks.liveBytes()) {
            problems.add("chunk table: counts " + chunks.liveChunks() + " live chunks of " + chunks.liveBytes() + " bytes, but holds "
                    + liveChunks[0] + " of " + liveChunks[1]);
        }
        if (!java.util.Arrays.equals(histogram, chunks.histogram())) {
            problems.add("chunk table: reference-count histogram " + java.util.Arrays.toString(chunks.histogram()) + ", recounted "
                    + java.util.Arrays.toString(histogram));
        }
        TreeMap<Long, Long> stored = state.usage.snapshot();
        if (!stored.equals(live)) {
            for (long seq : new java.util.TreeSet<>(union(stored, live))) {
                long s = stored.getOrDefault(seq, 0L), r = live.getOrDefault(seq, 0L);
                if (s != r) problems.add("usage table: segment " + seq + " has " + s + " live bytes recorded, " + r + " recomputed");
            }
        }
        return new long[] {volumes.size(), mapped[0], pages};
    }

    private static java.util.Set<Long> union(Map<Long, Long> a, Map<Long, Long> b) {
        java.util.Set<Long> s = new java.util.HashSet<>(a.keySet());
        s.addAll(b.keySet());
        return s;
    }

    private static long auditChunks(Pool pool, List<String> problems) {
        List<ChunkTable.Location> live = new ArrayList<>();
        pool.withReadLock(() -> { pool.state.chunks.forEachLive(live::add); return null; });
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
            v.map.forEachMapped((lba, ref) -> {
                if (ref == chunkId && refs.size() < 10) refs.add(v.name + " LBA " + lba);
            });
        }
        return String.join(", ", refs);
    }

    /** Walks every segment; returns {segments, records}. Segments may be missing below the first (deleted by GC). */
    private static long[] auditLog(Pool pool, List<String> problems, List<String> notes) throws IOException {
        List<Long> seqs = pool.backend.segments();
        long records = 0;
        long lsn = LogReader.ANY_LSN;
        for (int i = 0; i < seqs.size(); i++) {
            long seq = seqs.get(i);
            boolean last = i == seqs.size() - 1;
            if (i > 0 && seq != seqs.get(i - 1) + 1) {
                if (seq > pool.checkpointDeletionLimit()) problems.add("log: segment " + (seqs.get(i - 1) + 1) + " is missing (next is " + seq + ")");
                lsn = LogReader.ANY_LSN;
            }
            ByteBuffer buf = ByteBuffer.allocate((int) pool.backend.segmentBytes(seq));
            pool.backend.read(seq, 0, buf);
            byte[] data = buf.array();
            long[] n = {0};
            LogReader.WalkEnd end;
            try {
                end = LogReader.walk(data, 0, lsn, seq, pool.poolId(), r -> {
                    n[0]++;
                    if (!LogReader.bodiesIntact(r)) {
                        notes.add("log: segment " + seq + " record LSN " + r.lsn() + " holds a chunk body that fails its CRC (harmless if the chunk is dead or moved)");
                    }
                    return true;
                });
            } catch (CorruptionException e) {
                problems.add(e.getMessage());
                continue;
            }
            records += n[0];
            lsn = end.nextLsn();
            if (!end.sealed() && end.offset() < data.length) {
                problems.add("log: segment " + seq + " offset " + end.offset() + ": no valid record" + (lsn == LogReader.ANY_LSN ? "" : " with LSN " + lsn) + " (damaged or misplaced)");
            }
            if (!last && !end.sealed()) problems.add("log: segment " + seq + " is not the tail but has no SEAL record");
            if (end.sealed() && end.offset() != data.length) problems.add("log: segment " + seq + " has " + (data.length - end.offset()) + " bytes after its SEAL");
        }
        return new long[] {seqs.size(), records};
    }

    /** Verifies the dedup index's files without opening them for writing: damage there is advice lost, not data. */
    private static void auditIndex(Pool pool, List<String> problems, List<String> notes) {
        Superblock sb = pool.superblock();
        if (sb.indexMemory() == 0) return; // the exact index has no files: it is rebuilt from the chunks at open
        io.dedisk.index.IndexVerifier.Report r = io.dedisk.index.UdsIndex.verify(pool.fs, Pool.INDEX_DIR,
                new io.dedisk.index.IndexConfig(sb.indexMemory(), sb.sparseIndex()));
        for (io.dedisk.index.IndexVerifier.Problem p : r.problems()) problems.add("dedup index (advice lost, no data at risk): " + p);
        notes.add("dedup index: " + r.chapters() + " chapters, " + r.entries() + " entries, " + r.diskBytes() + " bytes verified");
    }

    /** Verifies the manifest and the roots it names; returns how many roots verified. */
    private static long auditRoots(Pool pool, List<String> problems) throws IOException {
        byte[] bytes = pool.backend.readManifest();
        if (bytes == null) return 0;
        Manifest m;
        try {
            m = Manifest.decode(bytes, pool.poolId());
        } catch (CorruptionException e) {
            problems.add(e.getMessage());
            return 0;
        }
        long n = 0;
        for (Manifest.RootRef ref : List.of(m.newest(), m.previous())) {
            if (!ref.present()) continue;
            try {
                Recovery.readRoot(pool.backend, pool.poolId(), ref);
                n++;
            } catch (CorruptionException e) {
                problems.add((ref == m.newest() ? "newest " : "previous ") + e.getMessage());
            }
        }
        return n;
    }
}
