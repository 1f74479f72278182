package io.dedisk.sim;

import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.DediskException;
import io.dedisk.pool.Pool;
import io.dedisk.pool.PoolChecker;
import io.dedisk.pool.VolumeDevice;
import io.dedisk.store.ObjectBackend;
import io.dedisk.store.ObjectStorage;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.SortedMap;
import org.junit.jupiter.api.Test;

/**
 * A pool in a (simulated) bucket: the object backend's read paths, upload order, cache bounds and identity, ambiguous
 * PUTs, fencing, moving a pool to another host, restart after kill -9 with the same cache, read-only opens that write
 * nothing, --sync-to-backend, listing lag, and deletion order (every state the bucket passes through opens).
 */
class ObjectPoolTest {
    static final int BS = DiskModel.BS;
    /** 1 MiB segments, so a few hundred blocks of random data span several. */
    static final Pool.Options SMALL = new Pool.Options(1 << 20, 2 << 20, 0, false);

    static byte[] random(long seed, int n) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    static byte[] read(Pool p, String vol, long off, int len) {
        ByteBuffer b = ByteBuffer.allocate(len);
        p.volume(vol).orElseThrow().read(off, b);
        return b.array();
    }

    static List<Long> bucketSegments(SimObjectStore s) {
        List<Long> out = new ArrayList<>();
        for (String k : s.snapshot().keySet()) if (k.startsWith("segments/")) out.add(Long.parseLong(k.substring(9, 25), 16));
        return out;
    }

    /** A pool with volume "v" of 1024 blocks, opened from host cache {@code cache}. */
    static Pool fresh(SimBucket b, SimFs cache) throws Exception {
        b.create(SMALL);
        Pool p = SimBucket.open(b.storage(cache));
        p.createVolume("v", 1024L * BS);
        return p;
    }

    /** {@link #fresh} with {@code data} written at 0 and flushed: an fsync in the cache, nothing uploaded (the test drives no uploads). */
    static Pool flushedNotUploaded(SimBucket b, SimFs cache, byte[] data) throws Exception {
        Pool p = fresh(b, cache);
        p.volume("v").orElseThrow().write(0, ByteBuffer.wrap(data), false);
        p.flush();
        return p;
    }

    @Test
    void sealedSegmentsUploadInOrderAndReadsComeFromCacheThenBucket() throws Exception {
        SimBucket b = new SimBucket(1);
        SimFs cache = new SimFs(1);
        ObjectStorage st = b.storage(cache, ObjectBackend.Options.defaults().withReadCache(2L << 20));
        b.create(SMALL);
        Pool p = SimBucket.open(st);
        ObjectBackend backend = st.lastOpened();
        p.createVolume("v", 1024L * BS);
        byte[] data = random(1, 600 * BS); // random: incompressible, ~2.4 MiB, several 1 MiB segments
        p.volume("v").orElseThrow().write(0, ByteBuffer.wrap(data), false);
        p.flush();
        assertTrue(p.stats().backlog().segments() >= 2, "sealed segments wait for upload: " + p.stats().backlog());
        List<Long> before = bucketSegments(b.store);
        while (backend.uploadStep()) {
            List<Long> now = bucketSegments(b.store);
            for (int i = 1; i < now.size(); i++) assertEquals(now.get(i - 1) + 1, now.get(i), "uploads in order, no gaps: " + now);
        }
        assertTrue(bucketSegments(b.store).size() > before.size());
        assertEquals(0, p.stats().backlog().segments(), "nothing sealed left to upload");
        assertTrue(cache.list("writeback").size() <= 1, "uploaded write-back files are dropped (the open tail stays): " + cache.list("writeback"));
        assertArrayEquals(data, read(p, "v", 0, data.length), "reads: bucket (ranged GET), then the read cache");
        long[] rc = backend.readCacheStats();
        assertTrue(rc[0] <= 2L << 20, "the read cache stays within its bound: " + rc[0]);
        assertTrue(rc[2] > 0, "misses went to the bucket");
        long missesBefore = rc[2];
        // Blocks 300-363 sit in the second sealed segment, read last but for the open tail's (local) ones.
        assertArrayEquals(java.util.Arrays.copyOfRange(data, 300 * BS, 364 * BS), read(p, "v", 300L * BS, 64 * BS));
        assertTrue(backend.readCacheStats()[1] > rc[1], "a second read of recent blocks hits the cache");
        assertTrue(backend.readCacheStats()[2] <= missesBefore + 1, "and does not go to the bucket again");
        p.close();
    }

    @Test
    void damagedReadCacheEntriesAreFetchedAgainNotReportedAsCorruption() throws Exception {
        SimBucket b = new SimBucket(2);
        SimFs cache = new SimFs(2);
        ObjectStorage st = b.storage(cache, ObjectBackend.Options.defaults());
        b.create(SMALL);
        Pool p = SimBucket.open(st);
        ObjectBackend backend = st.lastOpened();
        p.createVolume("v", 1024L * BS);
        byte[] data = random(2, 600 * BS);
        p.volume("v").orElseThrow().write(0, ByteBuffer.wrap(data), false);
        p.flush();
        backend.drainUploads();
        assertArrayEquals(data, read(p, "v", 0, data.length), "first read: from the bucket, kept in the read cache");
        List<String> entries = cache.list("readcache");
        assertFalse(entries.isEmpty());
        for (String e : entries) { // a byte in the middle of each entry's data: inside a chunk body (random data fills the segments)
            long size = cache.fileSize("readcache/" + e);
            cache.flipBit("readcache/" + e, 4096 + (size - 4096) / 2, 3);
        }
        long missesBefore = backend.readCacheStats()[2];
        assertArrayEquals(data, read(p, "v", 0, data.length), "the chunks' own CRC found the damage, and the bucket's bytes were served");
        assertEquals(0, p.stats().corruptReads(), "a damaged cache is not a damaged pool");
        assertTrue(backend.readCacheStats()[2] > missesBefore, "the damaged entries were fetched again");
        p.close();
    }

    @Test
    void aRestartWithABacklogServesBeforeTheBacklogIsUploadedAndTheBucketStaysAPrefix() throws Exception {
        SimBucket b = new SimBucket(20);
        SimFs cache = new SimFs(20);
        byte[] data = random(20, 600 * BS);
        flushedNotUploaded(b, cache, data); // kill -9 now: sealed segments and the tail wait in the cache
        List<Long> inBucket = bucketSegments(b.store);
        ObjectStorage st = b.storage(cache.restartProcess());
        Pool q = SimBucket.open(st); // the simulation uploads only when driven: an open that waited for the backlog would have driven it
        assertEquals(inBucket, bucketSegments(b.store), "the open uploaded nothing");
        assertTrue(q.stats().backlog().segments() >= 3, "the backlog (and the fence) wait for the uploader: " + q.stats().backlog());
        assertArrayEquals(data, read(q, "v", 0, data.length), "served from the cache meanwhile");
        try (Pool fromBucket = SimBucket.openReadOnly(b.storage(new SimFs(21)))) {
            assertTrue(PoolChecker.check(fromBucket).ok(), "the claim's manifest names only roots the bucket holds");
        }
        st.lastOpened().drainUploads();
        assertEquals(0, q.stats().backlog().segments());
        q.close();
        try (Pool moved = SimBucket.openReadOnly(b.storage(new SimFs(22)))) {
            assertArrayEquals(data, read(moved, "v", 0, data.length), "everything flushed is in the bucket once the backlog is up");
        }
    }

    @Test
    void aCacheDirectoryOfAnotherPoolIsRefused() throws Exception {
        SimFs cache = new SimFs(2);
        SimBucket a = new SimBucket(2);
        fresh(a, cache).close();
        SimBucket other = new SimBucket(3);
        other.create(SMALL);
        DediskException.InvalidRequestException e = assertThrows(DediskException.InvalidRequestException.class, () -> SimBucket.open(other.storage(cache)));
        assertTrue(e.getMessage().contains("belongs to pool"), e.getMessage());
    }

    @Test
    void ambiguousPutsAreRetriedAndMoveThePoolIntact() throws Exception {
        SimBucket b = new SimBucket(new SimObjectStore(4).ambiguousRate(0.5));
        b.store.ambiguousRate(0);
        Pool p = fresh(b, new SimFs(4));
        b.store.ambiguousRate(0.5).errorRate(0.2); // every other put is stored but reported failed; one in five fails
        byte[] data = random(4, 400 * BS);
        p.volume("v").orElseThrow().write(0, ByteBuffer.wrap(data), false);
        p.close(); // uploads everything: retries see 412 on their own objects and compare them
        b.store.ambiguousRate(0).errorRate(0);
        try (Pool q = SimBucket.open(b.storage(new SimFs(5)))) { // another host, an empty cache
            assertArrayEquals(data, read(q, "v", 0, data.length), "everything written before the clean stop is in the bucket");
            assertTrue(PoolChecker.check(q).ok());
        }
    }

    /** A fresh pool in b with 300 random blocks at LBA 0, closed cleanly; returns them. */
    static byte[] writtenAndClosed(SimBucket b, long seed) throws Exception {
        Pool p = fresh(b, new SimFs(seed));
        byte[] data = random(seed, 300 * BS);
        p.volume("v").orElseThrow().write(0, ByteBuffer.wrap(data), false);
        p.close();
        return data;
    }

    @Test
    void aPoolMovesToAnotherHostWithAnEmptyCache() throws Exception {
        SimBucket b = new SimBucket(6);
        byte[] data = writtenAndClosed(b, 6);
        try (Pool q = SimBucket.open(b.storage(new SimFs(7)))) {
            assertArrayEquals(data, read(q, "v", 0, data.length));
            q.volume("v").orElseThrow().write(0, ByteBuffer.wrap(new byte[BS]), false);
        }
        try (Pool r = SimBucket.open(b.storage(new SimFs(8)))) {
            assertArrayEquals(new byte[BS], read(r, "v", 0, BS), "and back again");
        }
    }

    /** Back to the first host, whose cache another writer superseded: it is dropped and the pool opens and writes. */
    @Test
    void aPoolMovesBackToItsFirstNowStaleCache() throws Exception {
        SimFs first = new SimFs(10);
        SimBucket b = new SimBucket(10);
        try (Pool p = fresh(b, first)) {
            p.volume("v").orElseThrow().write(0, ByteBuffer.wrap(random(10, 300 * BS)), false);
        }
        byte[] moved = random(11, 100 * BS);
        try (Pool q = SimBucket.open(b.storage(new SimFs(11)))) {
            q.volume("v").orElseThrow().write(0, ByteBuffer.wrap(moved), false);
        }
        try (Pool r = SimBucket.open(b.storage(first))) {
            assertArrayEquals(moved, read(r, "v", 0, moved.length), "what the other host wrote, not the stale cache's");
            r.volume("v").orElseThrow().write(0, ByteBuffer.wrap(new byte[BS]), true);
            assertTrue(PoolChecker.check(r).ok());
        }
        try (Pool again = SimBucket.open(b.storage(first))) {
            assertArrayEquals(new byte[BS], read(again, "v", 0, BS), "writes after the stale cache was dropped are kept");
        }
    }

    @Test
    void theSameCacheReopensAfterKill9WithoutForceAndLosesNothingFlushed() throws Exception {
        SimBucket b = new SimBucket(9);
        SimFs cache = new SimFs(9);
        byte[] data = random(9, 300 * BS);
        Pool p = flushedNotUploaded(b, cache, data);
        // kill -9: the pool is abandoned; another host is refused, the same cache directory is not.
        assertThrows(DediskException.InvalidRequestException.class, () -> SimBucket.open(b.storage(new SimFs(10))));
        try (Pool q = SimBucket.open(b.storage(cache.machineCrash(11)))) {
            assertArrayEquals(data, read(q, "v", 0, data.length), "the cache replays what was flushed");
            assertTrue(PoolChecker.check(q).ok());
        }
    }

    @Test
    void aSecondWriterIsRefusedAndWithForceFencesTheFirst() throws Exception {
        SimBucket b = new SimBucket(12);
        b.create(SMALL);
        ObjectStorage aStorage = b.storage(new SimFs(12));
        Pool a = SimBucket.open(aStorage);
        ObjectBackend aBackend = aStorage.lastOpened();
        a.createVolume("v", 1024L * BS);
        VolumeDevice av = a.volume("v").orElseThrow();
        byte[] first = random(12, 100 * BS);
        av.write(0, ByteBuffer.wrap(first), false);
        a.checkpoint(); // seals the tail: its segment and manifest can go up
        aBackend.drainUploads();
        DediskException.InvalidRequestException refused = assertThrows(DediskException.InvalidRequestException.class,
                () -> SimBucket.open(b.storage(new SimFs(13))));
        assertTrue(refused.getMessage().contains("--force"), refused.getMessage());
        Pool bPool = SimBucket.open(b.storage(new SimFs(14), ObjectBackend.Options.defaults().withForce(true)));
        SortedMap<String, byte[]> afterTakeover = b.store.snapshot();
        // a does not know yet; its next bucket request meets b's fence.
        av.write(200L * BS, ByteBuffer.wrap(random(13, 300 * BS)), false); // fills and seals segments: uploads are due
        a.flush(); // acknowledged locally: the --force warning's loss
        assertThrows(io.dedisk.store.FencedException.class, () -> { while (true) aBackend.uploadStep(); }, "the fenced writer's upload fails");
        assertNotNull(a.readOnlyReason(), "the fenced writer is read-only");
        assertTrue(a.readOnlyReason().contains("fenced"), a.readOnlyReason());
        assertThrows(DediskException.ReadOnlyException.class, () -> av.write(0, ByteBuffer.wrap(new byte[BS]), false), "its writes fail");
        assertThrows(DediskException.class, av::flush, "its flushes fail");
        assertArrayEquals(first, read(a, "v", 0, first.length), "its reads go on");
        assertThrows(io.dedisk.store.FencedException.class, a::close, "its stop reports the fence");
        SortedMap<String, byte[]> now = b.store.snapshot();
        assertEquals(afterTakeover.keySet(), now.keySet(), "nothing the fenced writer wrote reached the bucket");
        for (String k : now.keySet()) assertArrayEquals(afterTakeover.get(k), now.get(k), k + " unchanged");
        assertArrayEquals(first, read(bPool, "v", 0, first.length), "the new owner has what the old one had uploaded");
        bPool.close();
    }

    @Test
    void aConflictingSegmentInTheBucketFencesTheWriter() throws Exception {
        SimBucket b = new SimBucket(15);
        SimFs cache = new SimFs(15);
        ObjectStorage st = b.storage(cache);
        b.create(SMALL);
        Pool p = SimBucket.open(st);
        p.createVolume("v", 1024L * BS);
        long next = bucketSegments(b.store).stream().mapToLong(Long::longValue).max().orElse(0) + 1;
        b.store.putIfAbsent(String.format("segments/%016x.seg", next), new byte[] {1, 2, 3}); // another writer's segment
        p.volume("v").orElseThrow().write(0, ByteBuffer.wrap(random(15, 400 * BS)), false);
        assertThrows(io.dedisk.store.FencedException.class, () -> { while (true) st.lastOpened().uploadStep(); });
        assertNotNull(p.readOnlyReason());
        assertThrows(DediskException.class, p::flush, "a FLUSH of a fenced writer fails");
        assertArrayEquals(new byte[] {1, 2, 3}, b.store.snapshot().get(String.format("segments/%016x.seg", next)));
    }

    @Test
    void readOnlyOpensWriteNothingToTheBucketOrTheCache() throws Exception {
        SimBucket b = new SimBucket(16);
        SimFs cache = new SimFs(16);
        Pool p = fresh(b, cache);
        p.volume("v").orElseThrow().write(0, ByteBuffer.wrap(random(16, 100 * BS)), false);
        p.flush(); // kill -9 now: an owned manifest, a backlog in the cache
        SimFs after = cache.machineCrash(17);
        long mutations = b.store.mutations(), fsOps = after.mutatingOps();
        long stored = bucketSegments(b.store).stream().mapToLong(Long::longValue).max().orElse(0), waiting = 0;
        int files = 0;
        for (String f : after.list("writeback")) {
            if (Long.parseLong(f.substring(0, 16), 16) <= stored) continue; // uploaded (a machine crash may bring a deleted file back)
            waiting += after.fileSize("writeback/" + f);
            files++;
        }
        try (Pool q = SimBucket.openReadOnly(b.storage(after))) {
            assertTrue(PoolChecker.check(q).ok());
            io.dedisk.store.SharedBackend.Backlog backlog = q.stats().backlog();
            assertEquals(files, backlog.segments(), "offline stats show the cache's un-uploaded segments: " + backlog);
            assertEquals(waiting, backlog.bytes());
            assertTrue(waiting > 100 * BS / 2, "the flushed writes wait there: " + waiting);
            assertTrue(q.stats().toText().contains("in the cache directory"), q.stats().toText());
        }
        SimFs empty = new SimFs(18);
        try (Pool q = SimBucket.openReadOnly(b.storage(empty))) {
            assertTrue(PoolChecker.check(q).ok());
        }
        assertEquals(mutations, b.store.mutations(), "no put or delete");
        assertEquals(fsOps, after.mutatingOps(), "no change in the cache directory");
        assertEquals(0, empty.mutatingOps(), "no file created in an empty cache directory");
    }

    @Test
    void syncToBackendFlushesReachTheBucketSoALostCacheLosesNothingFlushed() throws Exception {
        SimBucket b = new SimBucket(19);
        b.create(SMALL);
        Pool p = SimBucket.open(b.storage(new SimFs(19), ObjectBackend.Options.defaults().withSyncToBackend(true)));
        p.createVolume("v", 1024L * BS);
        byte[] data = random(19, 50 * BS);
        p.volume("v").orElseThrow().write(0, ByteBuffer.wrap(data), false);
        p.flush();
        byte[] fua = random(20, BS);
        p.volume("v").orElseThrow().write(100L * BS, ByteBuffer.wrap(fua), true);
        assertEquals(0, p.stats().backlog().segments(), "FLUSH and FUA returned with nothing waiting");
        // The cache directory is lost with the host: another host takes over with --force.
        try (Pool q = SimBucket.open(b.storage(new SimFs(21), ObjectBackend.Options.defaults().withForce(true)))) {
            assertArrayEquals(data, read(q, "v", 0, data.length));
            assertArrayEquals(fua, read(q, "v", 100L * BS, BS));
            assertTrue(PoolChecker.check(q).ok());
        }
    }

    @Test
    void newestSegmentsNotYetListedAreFoundByKey() throws Exception {
        SimBucket b = new SimBucket(22);
        byte[] data = writtenAndClosed(b, 22);
        b.store.listingLag(3);
        try (Pool q = SimBucket.open(b.storage(new SimFs(23)))) {
            assertArrayEquals(data, read(q, "v", 0, data.length));
        }
    }

    @Test
    void everyStateTheBucketPassesThroughOpensFromTheBucketAlone() throws Exception {
        SimBucket b = new SimBucket(24);
        SimFs cache = new SimFs(24);
        b.create(SMALL);
        ObjectStorage st = b.storage(cache);
        Pool p = SimBucket.open(st);
        ObjectBackend backend = st.lastOpened();
        p.createVolume("v", 256L * BS);
        Random r = new Random(24);
        int states = 0;
        for (int round = 0; round < 6; round++) {
            // Overwrite the same blocks: garbage for the cleaner, deletions for the queue.
            p.volume("v").orElseThrow().write(0, ByteBuffer.wrap(random(r.nextLong(), 200 * BS)), false);
            p.gc();
            while (backend.uploadStep()) {
                states++;
                byte[] manifest = b.store.snapshot().get("manifest");
                SimObjectStore copy = new SimObjectStore(states);
                for (var e : b.store.snapshot().entrySet()) copy.put(e.getKey(), e.getValue());
                try (Pool q = SimBucket.openReadOnly(new SimBucket(copy).storage(new SimFs(states)))) {
                    PoolChecker.Report rep = PoolChecker.check(q);
                    assertTrue(rep.ok(), "bucket state " + states + " (manifest " + (manifest != null) + "): " + rep.toText());
                }
            }
        }
        assertTrue(states > 10, "the queue went through many states: " + states);
        assertTrue(p.stats().log().segmentsDeleted() > 0, "segments were deleted");
        p.close();
        assertTrue(bucketSegments(b.store).size() < 12, "deleted segments left the bucket: " + bucketSegments(b.store));
    }

    @Test
    void afterAForcedTakeoverSegmentsFromBeforeItAreKeptForTheFencedWritersReads() throws Exception {
        SimBucket b = new SimBucket(25);
        Pool a = fresh(b, new SimFs(25));
        a.volume("v").orElseThrow().write(0, ByteBuffer.wrap(random(25, 600 * BS)), false);
        a.checkpoint();
        a.close(); // its segments are all in the bucket; now a dies while owning the pool again:
        Pool again = SimBucket.open(b.storage(new SimFs(26)));
        again.volume("v").orElseThrow().write(0, ByteBuffer.wrap(random(26, 8 * BS)), true);
        List<Long> beforeTakeover = bucketSegments(b.store);
        ObjectStorage st = b.storage(new SimFs(27), ObjectBackend.Options.defaults().withForce(true));
        try (Pool taker = SimBucket.open(st)) {
            // Overwrite everything: every pre-takeover segment becomes garbage, and gc cleans it.
            taker.volume("v").orElseThrow().write(0, ByteBuffer.wrap(random(27, 600 * BS)), false);
            int cleaned = taker.clean(Integer.MAX_VALUE, 1.0); // every segment with garbage, as far as the fence allows
            taker.gc();
            assertTrue(cleaned > 0, "the cleaner moved the live data out");
            taker.checkpoint();
            st.lastOpened().drainUploads();
            List<Long> now = bucketSegments(b.store);
            assertTrue(now.containsAll(beforeTakeover), "no segment from before the takeover is deleted within the grace period: before "
                    + beforeTakeover + ", now " + now);
        }
    }

    @Test
    void writeBackFilesAMachineCrashBringsBackAfterTheirUploadAreDropped() throws Exception {
        int resurrected = 0;
        for (long seed = 30; seed < 38; seed++) {
            SimBucket b = new SimBucket(seed);
            SimFs cache = new SimFs(seed);
            ObjectStorage st = b.storage(cache);
            b.create(SMALL);
            Pool p = SimBucket.open(st);
            p.createVolume("v", 1024L * BS);
            byte[] data = random(seed, 600 * BS);
            p.volume("v").orElseThrow().write(0, ByteBuffer.wrap(data), false);
            p.checkpoint();
            st.lastOpened().drainUploads(); // the write-back files are deleted, their names not yet synced
            p.volume("v").orElseThrow().write(0, ByteBuffer.wrap(data), false); // the same data again: dedup, no garbage
            p.volume("v").orElseThrow().write(0, ByteBuffer.wrap(random(seed + 100, 300 * BS)), false); // garbage: gc deletes segments
            byte[] now = java.util.Arrays.copyOf(random(seed + 100, 300 * BS), 600 * BS);
            System.arraycopy(data, 300 * BS, now, 300 * BS, 300 * BS);
            p.clean(Integer.MAX_VALUE, 1.0); // every segment with garbage (gc alone skips those 95 % live or more)
            p.gc();
            p.flush();
            st.lastOpened().drainUploads();
            SimFs after = cache.machineCrash(seed);
            List<Long> bucketNow = bucketSegments(b.store);
            for (String f : after.list("writeback")) {
                long seq = Long.parseLong(f.substring(0, 16), 16);
                if (!bucketNow.contains(seq) && seq < bucketNow.get(bucketNow.size() - 1)) resurrected++;
            }
            try (Pool q = SimBucket.open(b.storage(after))) {
                assertArrayEquals(now, read(q, "v", 0, now.length), "seed " + seed);
                assertTrue(PoolChecker.check(q).ok());
            }
        }
        assertTrue(resurrected > 0, "some crash brought back the write-back file of a segment uploaded and deleted since");
    }
}
