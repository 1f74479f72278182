package io.dedisk.pool;

import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.DediskException;
import io.dedisk.sim.SimFs;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Snapshots, clones, rollback and delete on the engine (SimFs): pages are shared, not copied; chunk references count
 * distinct leaf versions; forks, deletes in any order, rollback and cleaning keep `dedisk check` clean and every
 * tree's content intact, across reopen and replay.
 */
class SnapshotTest {
    static final int BS = Pool.BLOCK_SIZE;
    static final int BLOCKS = 4096; // four leaves under one interior root

    static Pool open(SimFs fs) throws Exception {
        // The smallest cache: pages are evicted and reloaded through every sharing decision.
        return Pool.open(fs, Pool.OpenOptions.defaults().withBackground(Runnable::run).withMetadataCache(0));
    }

    static Pool newPool(SimFs fs) throws Exception {
        Pool.create(fs, new Pool.Options(1 << 20, 64 << 20, 0, false));
        return open(fs);
    }

    /** Distinct-ish content: a quarter of the blocks repeat one of 16 patterns, so dedup crosses the trees too. */
    static byte[] content(Random r, int blocks) {
        byte[] b = new byte[blocks * BS];
        for (int i = 0; i < blocks; i++) {
            if (r.nextInt(4) == 0) java.util.Arrays.fill(b, i * BS, (i + 1) * BS, (byte) (1 + r.nextInt(16)));
            else for (int k = 0; k < BS; k += 8) b[i * BS + k] = (byte) r.nextInt();
        }
        return b;
    }

    static void write(Pool p, String vol, long lba, byte[] data, Map<String, byte[]> model) {
        p.volume(vol).orElseThrow().write(lba * BS, ByteBuffer.wrap(data), false);
        System.arraycopy(data, 0, model.get(vol), (int) lba * BS, data.length);
    }

    static void created(Pool p, Map<String, byte[]> model, String name, int blocks) {
        p.createVolume(name, (long) blocks * BS);
        model.put(name, new byte[blocks * BS]);
    }

    static void snapshot(Pool p, Map<String, byte[]> model, String volume, String snap) throws Exception {
        p.createSnapshot(volume, snap);
        model.put(volume + "@" + snap, model.get(volume).clone());
    }

    static void cloned(Pool p, Map<String, byte[]> model, String snapshot, String clone) {
        p.cloneSnapshot(snapshot, clone);
        model.put(clone, model.get(snapshot).clone());
    }

    static byte[] readAll(Pool p, String vol) {
        VolumeDevice d = p.volume(vol).orElseThrow();
        ByteBuffer b = ByteBuffer.allocate((int) d.size());
        d.read(0, b);
        return b.array();
    }

    static void verify(Pool p, Map<String, byte[]> model, String when) throws Exception {
        assertEquals(new java.util.TreeSet<>(model.keySet()), new java.util.TreeSet<>(p.volumeNames()), when + ": volumes");
        for (var e : model.entrySet()) assertArrayEquals(e.getValue(), readAll(p, e.getKey()), when + ": " + e.getKey());
        PoolChecker.Report rep = PoolChecker.check(p);
        assertTrue(rep.ok(), when + ":\n" + rep.toText());
    }

    static long refs(Pool p) {
        long[] n = {0};
        p.withReadLock(() -> { p.state.chunks.forEachLive(l -> n[0] += p.state.chunks.refCount(l.chunkId())); return null; });
        return n[0];
    }

    @Test
    void aSnapshotSharesEveryPageAndTouchesNoChunk() throws Exception {
        SimFs fs = new SimFs(1);
        Map<String, byte[]> model = new HashMap<>();
        Random r = new Random(1);
        try (Pool p = newPool(fs)) {
            created(p, model, "v", BLOCKS);
            write(p, "v", 0, content(r, BLOCKS), model);
            p.checkpoint();
            long refsBefore = refs(p);
            long pagesBefore = p.stats().pageBytes();
            snapshot(p, model, "v", "s");
            assertEquals(refsBefore, refs(p), "a snapshot adds no chunk reference");
            p.checkpoint();
            assertEquals(pagesBefore, p.stats().pageBytes(), "nor a page: the snapshot's root is the volume's");
            assertTrue(p.volume("v@s").orElseThrow().readOnly(), "snapshots are read-only");
            // A write after the snapshot forks one leaf: its 1024 entries gain a reference each (the copy's).
            write(p, "v", 5, content(r, 1), model);
            assertEquals(refsBefore + 1024, refs(p), "the fork of one leaf");
            verify(p, model, "after a write to the origin");
            assertThrows(DediskException.ReadOnlyException.class, () -> p.volume("v@s").orElseThrow().write(0, ByteBuffer.allocate(BS), false));
            assertThrows(DediskException.ReadOnlyException.class, () -> p.volume("v@s").orElseThrow().trim(0, BS, false));
            assertThrows(DediskException.InvalidRequestException.class, () -> p.createSnapshot("v@s", "x"), "no snapshot of a snapshot");
            assertThrows(DediskException.InvalidRequestException.class, () -> p.cloneSnapshot("v", "c"), "clones are of snapshots");
        }
        try (Pool p = open(fs)) { verify(p, model, "after reopen"); }
    }

    @Test
    void clonesForkOnlyWhatTheyWriteAndClonesOfClonesWork() throws Exception {
        SimFs fs = new SimFs(2);
        Map<String, byte[]> model = new HashMap<>();
        Random r = new Random(2);
        try (Pool p = newPool(fs)) {
            created(p, model, "base", BLOCKS);
            write(p, "base", 0, content(r, BLOCKS), model);
            snapshot(p, model, "base", "gold");
            for (int i = 0; i < 5; i++) {
                cloned(p, model, "base@gold", "vm" + i);
            }
            write(p, "vm0", 100, content(r, 3), model);
            write(p, "vm1", 2048, content(r, 1100), model); // across two leaves
            p.volume("vm2").orElseThrow().trim(0, 1024L * BS, false); // a whole shared leaf dropped
            java.util.Arrays.fill(model.get("vm2"), 0, 1024 * BS, (byte) 0);
            snapshot(p, model, "vm1", "upgrade");
            cloned(p, model, "vm1@upgrade", "deep");
            write(p, "deep", 4000, content(r, 50), model);
            verify(p, model, "before a checkpoint");
            p.checkpoint();
            verify(p, model, "after a checkpoint");
            Map<String, VolumeInfo> info = new HashMap<>();
            for (VolumeInfo i : p.volumeInfos()) info.put(i.name(), i);
            assertEquals("base@gold", info.get("vm3").parent());
            assertEquals("base", info.get("base@gold").parent());
            assertEquals("vm1@upgrade", info.get("deep").parent());
            assertEquals(0, info.get("vm3").aloneBytes(), "an untouched clone holds nothing alone");
            // 50 fresh blocks (a quarter of them repeat patterns the others hold), compressed, and its forked leaf.
            assertTrue(info.get("deep").aloneBytes() >= 30L * 1024 + MetaPage.MIN_RECORD_BYTES, "the clone's fresh data is its alone: " + info.get("deep").aloneBytes());
            assertTrue(info.get("deep").aloneBytes() < 50L * BS + 4 * MetaPage.MAX_RECORD_BYTES, "and only that: " + info.get("deep").aloneBytes());
        }
        try (Pool p = open(fs)) { verify(p, model, "after reopen"); }
    }

    /**
     * Orders of deleting a family (20 of the 120, seeded; -Ddedisk.snap.orders=120 for all): each delete releases
     * at least what it alone held, the checker stays clean, and at the end nothing is left.
     */
    @Test
    void deletesInAnyOrderReleaseExactlyWhatWasHeldAlone() throws Exception {
        List<String> names = List.of("v", "v@s", "c", "c@t", "d");
        List<List<String>> orders = new ArrayList<>();
        permute(new ArrayList<>(names), 0, orders);
        java.util.Collections.shuffle(orders, new Random(10));
        orders = orders.subList(0, Integer.getInteger("dedisk.snap.orders", 20));
        int seed = 0;
        for (List<String> order : orders) {
            SimFs fs = new SimFs(seed);
            Random r = new Random(seed++);
            Map<String, byte[]> model = new HashMap<>();
            try (Pool p = newPool(fs)) {
                created(p, model, "v", 2048);
                write(p, "v", 0, content(r, 2048), model);
                snapshot(p, model, "v", "s");
                cloned(p, model, "v@s", "c");
                write(p, "c", 10, content(r, 20), model);
                write(p, "v", 1500, content(r, 20), model);
                snapshot(p, model, "c", "t");
                cloned(p, model, "c@t", "d");
                write(p, "d", 1030, content(r, 5), model);
                if (seed % 2 == 0) p.checkpoint(); // half the orders start from durable (shared) pages, half from dirty ones
                for (String name : order) {
                    p.checkpoint(); // the durable page bytes are compared: every change before the delete is in them
                    long alone = 0;
                    for (VolumeInfo i : p.volumeInfos()) if (i.name().equals(name)) alone = i.aloneBytes();
                    // The chunk table's leaves are rewritten with the references a delete drops, and an encoded
                    // page's size follows its content: only chunk bodies and block-map pages are compared.
                    long liveBefore = p.stats().dataBytes() + p.stats().pageBytes() - chunkTableBytes(p);
                    p.deleteVolume(name);
                    model.remove(name);
                    p.checkpoint();
                    long liveAfter = p.stats().dataBytes() + p.stats().pageBytes() - chunkTableBytes(p);
                    assertTrue(liveBefore - liveAfter >= alone, "deleting " + name + " (order " + order + ") gave back "
                            + (liveBefore - liveAfter) + " bytes, it held " + alone + " alone");
                    verify(p, model, "order " + order + " after deleting " + name);
                }
                assertEquals(0, p.stats().liveChunks(), "order " + order + ": no chunk outlives its family");
                assertEquals(chunkTableBytes(p), p.stats().pageBytes(), "order " + order + ": nor a map page (the chunk table's are left)");
                assertEquals(java.util.Set.of(PoolState.CHUNK_TREE), p.state.families.keySet(), "order " + order + ": no family is left");
            }
            try (Pool p = open(fs)) { verify(p, model, "order " + order + " after reopen"); }
        }
    }

    private static void permute(List<String> a, int k, List<List<String>> out) {
        if (k == a.size()) { out.add(List.copyOf(a)); return; }
        for (int i = k; i < a.size(); i++) {
            java.util.Collections.swap(a, k, i);
            permute(a, k + 1, out);
            java.util.Collections.swap(a, k, i);
        }
    }

    @Test
    void rollbackBringsTheSnapshotBackAndKeepsItsClones() throws Exception {
        SimFs fs = new SimFs(3);
        Map<String, byte[]> model = new HashMap<>();
        Random r = new Random(3);
        try (Pool p = newPool(fs)) {
            created(p, model, "vm", BLOCKS);
            write(p, "vm", 0, content(r, 3000), model);
            snapshot(p, model, "vm", "pre");
            cloned(p, model, "vm@pre", "copy");
            write(p, "vm", 200, content(r, 2000), model);
            p.volume("vm").orElseThrow().writeZeroes(0, 100L * BS, true, false);
            java.util.Arrays.fill(model.get("vm"), 0, 100 * BS, (byte) 0);
            p.rollback("vm@pre");
            model.put("vm", model.get("vm@pre").clone());
            verify(p, model, "after rollback");
            write(p, "vm", 3500, content(r, 10), model);
            verify(p, model, "a write after rollback");
            p.deleteVolume("vm@pre");
            model.remove("vm@pre");
            verify(p, model, "the snapshot deleted, its clone and the rolled-back volume keep what they need");
            assertThrows(DediskException.InvalidRequestException.class, () -> p.rollback("vm@pre"));
            assertThrows(DediskException.InvalidRequestException.class, () -> p.rollback("vm"));
        }
        try (Pool p = open(fs)) { verify(p, model, "after reopen"); }
    }

    /** The log replayed over snapshot, clone, fork and rollback records rebuilds a consistent state (no checkpoint in between). */
    @Test
    void replayAfterACrashRebuildsTheFamily() throws Exception {
        SimFs fs = new SimFs(4);
        Map<String, byte[]> model = new HashMap<>();
        Random r = new Random(4);
        Pool p = newPool(fs);
        created(p, model, "v", BLOCKS);
        write(p, "v", 0, content(r, BLOCKS), model);
        snapshot(p, model, "v", "a");
        write(p, "v", 1000, content(r, 100), model);
        cloned(p, model, "v@a", "c");
        write(p, "c", 3000, content(r, 100), model);
        p.rollback("v@a");
        model.put("v", model.get("v@a").clone());
        write(p, "v", 10, content(r, 1), model);
        p.flush();
        fs.restartProcess(); // the process dies: no checkpoint since the snapshot
        try (Pool q = open(fs)) { verify(q, model, "after replay"); }
        try (Pool q = open(fs)) { verify(q, model, "after the replay's checkpoint"); }
    }

    /** Cleaning moves a shared page once for every tree holding it: the segments do not grow with the number of clones. */
    @Test
    void cleaningKeepsSharedPagesShared() throws Exception {
        SimFs fs = new SimFs(5);
        Map<String, byte[]> model = new HashMap<>();
        Random r = new Random(5);
        try (Pool p = newPool(fs)) {
            created(p, model, "gold", 16384); // 16 leaves
            write(p, "gold", 0, content(r, 16384), model);
            snapshot(p, model, "gold", "img");
            for (int i = 0; i < 10; i++) {
                cloned(p, model, "gold@img", "c" + i);
            }
            p.checkpoint();
            int pagesBefore = pageVersions(p);
            for (int round = 0; round < 2; round++) {
                // Every segment with anything to clean, twice: shared leaves are moved, each time once.
                p.clean(Integer.MAX_VALUE, 1.0);
                p.checkpoint();
                p.checkpoint();
            }
            int pagesAfter = pageVersions(p);
            assertTrue(p.stats().log().pagesRewritten() > 0, "the cleaner moved pages");
            // 11 trees share 16 leaves; their roots (interior) become private copies: at most a page each more.
            assertTrue(pagesAfter <= pagesBefore + 12, "page versions " + pagesBefore + " -> " + pagesAfter);
            verify(p, model, "after cleaning");
        }
        try (Pool p = open(fs)) { verify(p, model, "after reopen"); }
    }

    /** Growing a volume adds levels on top of the shared pages, shrinking it drops leaves it shares: its snapshot keeps them. */
    @Test
    void resizingAVolumeKeepsItsSnapshotIntact() throws Exception {
        SimFs fs = new SimFs(6);
        Map<String, byte[]> model = new HashMap<>();
        Random r = new Random(6);
        try (Pool p = newPool(fs)) {
            created(p, model, "v", 2048);
            write(p, "v", 0, content(r, 2048), model);
            p.checkpoint();
            snapshot(p, model, "v", "s");
            long grown = 600 * 1024; // 600 leaves: the map grows from height 1 to height 2
            p.resizeVolume("v", grown * BS);
            byte[] tail = content(r, 10);
            p.volume("v").orElseThrow().write((grown - 10) * BS, ByteBuffer.wrap(tail), false);
            ByteBuffer head = ByteBuffer.allocate(2048 * BS), end = ByteBuffer.allocate(10 * BS);
            p.volume("v").orElseThrow().read(0, head);
            p.volume("v").orElseThrow().read((grown - 10) * BS, end);
            assertArrayEquals(model.get("v"), head.array(), "the shared leaves under the new levels");
            assertArrayEquals(tail, end.array());
            assertArrayEquals(model.get("v@s"), readAll(p, "v@s"));
            assertTrue(PoolChecker.check(p).ok(), PoolChecker.check(p).toText());
            p.checkpoint();
            p.resizeVolume("v", 1000L * BS);
            model.put("v", java.util.Arrays.copyOf(model.get("v"), 1000 * BS));
            verify(p, model, "after shrinking below the snapshot's second leaf");
            assertThrows(DediskException.ReadOnlyException.class, () -> p.resizeVolume("v@s", 4096L * BS));
        }
        try (Pool p = open(fs)) { verify(p, model, "after reopen"); }
    }

    /**
     * A snapshot taken while a writer writes blocks 0, 1, 2, ... in order holds every write completed before the call
     * and is one point in that sequence: blocks [0, k) new, the rest old, for some k at least the completed count.
     */
    @Test
    void aSnapshotOfAVolumeBeingWrittenIsOnePointInItsWrites() throws Exception {
        SimFs fs = new SimFs(7);
        try (Pool p = newPool(fs)) {
            int blocks = 3000;
            p.createVolume("v", (long) blocks * BS);
            VolumeDevice v = p.volume("v").orElseThrow();
            java.util.concurrent.atomic.AtomicInteger completed = new java.util.concurrent.atomic.AtomicInteger();
            Thread writer = Thread.ofPlatform().start(() -> {
                for (int b = 0; b < blocks; b++) {
                    byte[] d = new byte[BS];
                    java.util.Arrays.fill(d, (byte) (1 + b % 250));
                    ByteBuffer.wrap(d).putInt(b);
                    v.write((long) b * BS, ByteBuffer.wrap(d), false);
                    completed.set(b + 1);
                }
            });
            while (completed.get() < 200) Thread.onSpinWait();
            int before = completed.get();
            p.createSnapshot("v", "mid");
            writer.join();
            byte[] snap = readAll(p, "v@mid");
            int k = 0;
            while (k < blocks && ByteBuffer.wrap(snap, k * BS, 4).getInt() == k && snap[k * BS + 4] == (byte) (1 + k % 250)) k++;
            assertTrue(k >= before, "the snapshot holds the " + before + " writes completed before it, it holds " + k);
            for (int b = k; b < blocks; b++) assertEquals(-1, java.util.Arrays.mismatch(snap, b * BS, (b + 1) * BS, new byte[BS], 0, BS), "block " + b + " after the point is as before: empty");
            assertTrue(PoolChecker.check(p).ok(), PoolChecker.check(p).toText());
        }
    }

    /** The checker counts a leaf shared by a clone once: one reference too many or too few on a shared chunk is found. */
    @Test
    void theCheckerRecountsSharedLeavesOnce() throws Exception {
        SimFs fs = new SimFs(8);
        Map<String, byte[]> model = new HashMap<>();
        try (Pool p = newPool(fs)) {
            created(p, model, "v", 1024);
            write(p, "v", 0, content(new Random(8), 16), model);
            snapshot(p, model, "v", "s");
            cloned(p, model, "v@s", "c");
            verify(p, model, "three trees over one leaf");
            long chunk = p.withReadLock(() -> p.state.volumesByName.get("c").map.get(3));
            p.meta.writeLock().lock();
            try { p.state.chunks.increment(chunk); } finally { p.meta.writeLock().unlock(); }
            PoolChecker.Report r = PoolChecker.check(p);
            assertFalse(r.ok(), "a reference no leaf version holds is found");
            assertTrue(r.problems().stream().anyMatch(m -> m.startsWith("chunk " + chunk + ": refcount 2, but 1 entries")), r.toText());
        }
    }

    /** Distinct durable page versions the pool's trees reference (a shared version counts once). */
    private static int pageVersions(Pool p) {
        java.util.Set<Long> addresses = new java.util.HashSet<>();
        p.withReadLock(() -> {
            for (PageTree t : p.state.trees()) t.walk(ref -> addresses.add(ref.address()) || ref.address() == 0, pg -> { });
            return null;
        });
        addresses.remove(0L);
        return addresses.size();
    }

    /** Bytes of the chunk table's durable pages. */
    private static long chunkTableBytes(Pool p) {
        long[] bytes = {0};
        p.withReadLock(() -> { p.state.chunks.tree().walk(ref -> true, pg -> bytes[0] += pg.length); return null; });
        return bytes[0];
    }
}
