package io.dedisk.store;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The bucket pool's read cache on a real directory: reads across pieces and blocks return the segment's bytes, checked
 * by the cache or left to the caller's check; concurrent misses on a block make one GET; a read-only cache keeps
 * fetched blocks in memory, not on disk; an entry left torn (its file written without sync, then damaged) is dropped
 * and fetched again, by the cache's own check or, for a caller that checks, by its refetch.
 */
class ObjectReadCacheTest {
    @TempDir Path tmp;
    static final UUID POOL = new UUID(1, 2);
    final byte[] segment = new byte[3 * ObjectReadCache.BLOCK + 12345];
    final AtomicInteger fetches = new AtomicInteger();

    ObjectReadCacheTest() { new Random(7).nextBytes(segment); }

    byte[] fetch(long seq, long offset, int length) {
        fetches.incrementAndGet();
        int n = (int) Math.min(length, segment.length - offset);
        return java.util.Arrays.copyOfRange(segment, (int) offset, (int) offset + n);
    }

    byte[] read(ObjectReadCache c, long pos, int n) throws Exception {
        ByteBuffer b = ByteBuffer.allocate(n);
        c.read(5, pos, b, this::fetch);
        return b.array();
    }

    byte[] readForCallerCheck(ObjectReadCache c, long pos, int n) throws Exception {
        ByteBuffer b = ByteBuffer.allocate(n + 7).position(3).limit(3 + n); // not at the buffer's start: the read honours position and limit
        c.readForCallerCheck(5, pos, b, this::fetch);
        assertEquals(3 + n, b.position());
        return java.util.Arrays.copyOfRange(b.array(), 3, 3 + n);
    }

    @Test
    void randomReadsReturnTheSegmentsBytesAndHitsNeedNoFetch() throws Exception {
        ObjectReadCache c = new ObjectReadCache(new LocalFs(tmp), POOL, 64L << 20, false);
        Random r = new Random(8);
        for (int i = 0; i < 2000; i++) {
            int n = 1 + r.nextInt(i % 10 == 0 ? 200_000 : 9000);
            long pos = r.nextInt(segment.length - n);
            byte[] got = i % 2 == 0 ? read(c, pos, n) : readForCallerCheck(c, pos, n);
            assertArrayEquals(java.util.Arrays.copyOfRange(segment, (int) pos, (int) pos + n), got, "read " + n + " at " + pos);
        }
        assertEquals(4, fetches.get(), "one fetch per 1 MiB block, every later read a hit");
        c.close();
    }

    @Test
    void aDamagedEntryReachesOnlyACheckingCallerAndItsRefetchRepairsIt() throws Exception {
        ObjectReadCache c = new ObjectReadCache(new LocalFs(tmp), POOL, 64L << 20, false);
        read(c, ObjectReadCache.BLOCK, 10);
        c.close();
        Path entry = tmp.resolve(ObjectReadCache.DIR).resolve(ObjectReadCache.fileName(5, 1));
        byte[] file = Files.readAllBytes(entry);
        file[4096 + 5000] ^= 1;
        Files.write(entry, file);
        ObjectReadCache again = new ObjectReadCache(new LocalFs(tmp), POOL, 64L << 20, false);
        long pos = ObjectReadCache.BLOCK + 4000;
        byte[] expected = java.util.Arrays.copyOfRange(segment, (int) pos, (int) pos + 3000);
        int before = fetches.get();
        assertFalse(java.util.Arrays.equals(expected, readForCallerCheck(again, pos, 3000)), "unchecked: the damaged bytes, for the caller's check to find");
        assertEquals(before, fetches.get(), "a hit");
        ByteBuffer b = ByteBuffer.allocate(3000);
        again.refetch(5, pos, b, this::fetch);
        assertArrayEquals(expected, b.array(), "fetched again from the store");
        assertEquals(before + 1, fetches.get());
        assertArrayEquals(expected, readForCallerCheck(again, pos, 3000), "the entry was replaced");
        assertEquals(before + 1, fetches.get(), "the replaced entry is a hit");
        again.close();
    }

    @Test
    void concurrentMissesOnABlockMakeOneFetch() throws Exception {
        ObjectReadCache c = new ObjectReadCache(new LocalFs(tmp), POOL, 64L << 20, false);
        CountDownLatch go = new CountDownLatch(1);
        Thread[] readers = new Thread[8];
        AtomicInteger wrong = new AtomicInteger();
        for (int t = 0; t < readers.length; t++) {
            int off = t * 4096;
            readers[t] = Thread.ofPlatform().start(() -> {
                try {
                    go.await();
                    if (!java.util.Arrays.equals(java.util.Arrays.copyOfRange(segment, off, off + 4096), read(c, off, 4096))) wrong.incrementAndGet();
                } catch (Exception e) {
                    wrong.incrementAndGet();
                }
            });
        }
        go.countDown();
        for (Thread t : readers) t.join();
        assertEquals(0, wrong.get());
        assertTrue(fetches.get() <= 2, "misses at once on one block share the first one's fetch (a late one may find none in flight): " + fetches.get());
        c.close();
    }

    @Test
    void aReadOnlyCacheKeepsFetchedBlocksInMemoryOnly() throws Exception {
        ObjectReadCache c = new ObjectReadCache(new LocalFs(tmp), POOL, 64L << 20, true);
        for (int i = 0; i < 256; i++) assertArrayEquals(java.util.Arrays.copyOfRange(segment, i * 4096, i * 4096 + 100), read(c, i * 4096L, 100));
        assertEquals(1, fetches.get(), "a scan of one block is one GET");
        assertFalse(Files.exists(tmp.resolve(ObjectReadCache.DIR)), "read-only writes nothing");
    }

    @Test
    void aTornEntryIsDroppedAndFetchedAgain() throws Exception {
        ObjectReadCache c = new ObjectReadCache(new LocalFs(tmp), POOL, 64L << 20, false);
        read(c, 0, 10);
        c.close();
        Path entry = tmp.resolve(ObjectReadCache.DIR).resolve(ObjectReadCache.fileName(5, 0));
        byte[] file = Files.readAllBytes(entry);
        for (int damage = 0; damage < 2; damage++) {
            byte[] torn = file.clone();
            if (damage == 0) java.util.Arrays.fill(torn, 0, 4096, (byte) 0); // the header of a file a crash left unwritten
            else torn[4096 + 70_000] ^= 1; // a data piece
            Files.write(entry, torn);
            ObjectReadCache again = new ObjectReadCache(new LocalFs(tmp), POOL, 64L << 20, false);
            int before = fetches.get();
            assertArrayEquals(java.util.Arrays.copyOfRange(segment, 69_000, 72_000), read(again, 69_000, 3000), "damage " + damage);
            assertEquals(before + 1, fetches.get(), "the damaged entry was fetched again");
            again.close();
        }
    }
}
