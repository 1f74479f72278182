package io.dedisk.sim;

import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.pool.Pool;
import io.dedisk.pool.PoolChecker;
import java.io.IOException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Deque;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Deterministic simulation of the durability contract (DESIGN.md §3), VOPR-style: the pool runs on {@link SimFs},
 * driven by a seeded random workload with concurrent writers and background work scheduled by the seed ({@link
 * Life}), and checked against {@link DiskModel}. Every run replays exactly from its seed; a seed that ever fails is
 * added to {@link #REGRESSION_SEEDS}.
 *
 * Default run: {@value #DEFAULT_SEEDS} random seeds x {@value #DEFAULT_STEPS} steps, plus the regression seeds.
 * Long run: -Ddedisk.sim.seeds=N -Ddedisk.sim.steps=M (scripts/long-test.sh).
 */
class SimulationTest {
    static final int DEFAULT_SEEDS = 24;
    static final int DEFAULT_STEPS = 400;
    /** Seeds that once found a bug; they run forever. */
    static final long[] REGRESSION_SEEDS = {
        3521235917903L, // a crash inside a volume create: the model must allow either outcome
        2438217242406L, // a SEAL only in the page cache after a process crash, lost in a later machine crash behind a durable next segment
    };

    /** Small segments and checkpoint interval so rotation and checkpoints happen often; a small UDS index. */
    static Pool.Options smallSegments() { return new Pool.Options(1 << 20, 2 << 20, 16 << 20, false); }

    /** Odd seeds run the exact index, even seeds the UDS index (dense, or sparse every fourth seed). */
    static Pool.Options forSeed(long seed) {
        if ((seed & 1) == 1) return new Pool.Options(1 << 20, 1 << 20, 0, false);
        return new Pool.Options(1 << 20, 1 << 20, 16 << 20, (seed & 3) == 2);
    }

    static Pool open(SimFs fs) throws IOException { return Pool.open(fs, Runnable::run); }

    static final int DEFAULT_BUCKET_SEEDS = 8;
    static final int DEFAULT_BUCKET_STEPS = 300;
    /** Bucket seeds that once failed; they run forever (with 400 steps). */
    static final long[] BUCKET_REGRESSION_SEEDS = {
        5032L, // a crash while the new host took the pool over after a lost cache: recovery must check a prefix again
        21525783384618L, // a restart serves before its backlog is up: the cache lost after it leaves the older prefix
    };

    /**
     * The same lives on a pool in a simulated bucket (faulty: errors, ambiguous puts, listing lag, crash points in
     * the store), with the upload queue stepped by the seed and one more fault: the cache directory lost with its
     * host, after which the pool (taken over with --force) must read as a prefix of the write history — with
     * --sync-to-backend (odd seeds) one that includes every completed FLUSH and FUA.
     */
    @Test
    void bucketPoolsWithCrashesAndCacheLossMatchTheModel() throws Exception {
        int seeds = Integer.getInteger("dedisk.sim.bucketSeeds", DEFAULT_BUCKET_SEEDS);
        int steps = Integer.getInteger("dedisk.sim.steps", DEFAULT_BUCKET_STEPS);
        long base = Long.getLong("dedisk.sim.base", System.nanoTime());
        long[] totals = new long[Life.COUNTERS];
        long deletions = 0;
        List<long[]> runs = new ArrayList<>(); // seed, steps
        for (long s : BUCKET_REGRESSION_SEEDS) runs.add(new long[] {s, Math.max(steps, 400)});
        for (int i = 0; i < seeds; i++) runs.add(new long[] {base + i, steps});
        for (long[] run : runs) {
            long seed = run[0];
            SimObjectStore store = new SimObjectStore(seed).errorRate(0.02).ambiguousRate(0.02).listingLag(2);
            long[] c = new Life(seed, store, (seed & 1) == 1).run((int) run[1]);
            for (int k = 0; k < totals.length; k++) totals[k] += c[k];
            deletions += store.deletes();
        }
        System.out.printf("bucket simulation: %d seeds x %d steps (+ regression seeds), %d crashes recovered (%d inside work), %d cache directories lost,"
                        + " %d upload steps, %d checkpoints (%d steps taken inside them), %d cleanings, %d segments deleted from the bucket, 0 violations (first seed %d)%n",
                seeds, steps, totals[0], totals[1], totals[7], totals[8], totals[4], totals[9], totals[5], deletions, base);
    }

    @Test
    void randomWorkloadsWithCrashesMatchTheModel() throws Exception {
        int seeds = Integer.getInteger("dedisk.sim.seeds", DEFAULT_SEEDS);
        int steps = Integer.getInteger("dedisk.sim.steps", DEFAULT_STEPS);
        long base = Long.getLong("dedisk.sim.base", System.nanoTime());
        List<Long> all = new ArrayList<>();
        for (long s : REGRESSION_SEEDS) all.add(s);
        for (int i = 0; i < seeds; i++) all.add(base + i);
        long[] totals = new long[Life.COUNTERS];
        for (long seed : all) {
            long[] c = new Life(seed).run(steps);
            for (int i = 0; i < totals.length; i++) totals[i] += c[i];
        }
        System.out.printf("simulation: %d seeds x %d steps, %d crashes recovered (%d inside background work or a group commit), "
                        + "%d concurrent group commits, %d background tasks, %d checkpoints (%d steps taken inside them), %d cleanings, "
                        + "%d snapshot/clone/rollback/deletes, 0 violations (first random seed %d)%n",
                all.size(), steps, totals[0], totals[1], totals[2], totals[3], totals[4], totals[9], totals[5], totals[6], base);
    }

    /**
     * One simulated life of a pool, VOPR-style. Concurrency is scheduled by the seed: up to four writers each
     * prepare a batch (named, compressed, no lock) and later commit it, alone or in a group with others, in any
     * order; background tasks (sync-ahead, periodic checkpoints) queue up and run at seeded moments; checkpoints,
     * cleaning and gc run as steps (and writers, cleaning and lineage steps run inside a checkpoint, between its
     * batches of pages); snapshots, clones of them (written like any volume), rollbacks and deletes of
     * either come and go; and a crash can be armed to land a few I/O operations into any of them. Every volume,
     * snapshot and clone is read back against the model after every recovery.
     */
    static final class Life {
        static final int COUNTERS = 10;
        final long seed;
        final Random r;
        /** The steps taken inside checkpoints draw from their own sequence, so the seed's other steps stay as they were. */
        final Random race;
        SimFs fs;
        Pool pool;
        /** The bucket, for a bucket pool (null: a directory pool), its backend as opened last, and the prefix history. */
        final SimObjectStore store;
        final boolean syncToBackend;
        io.dedisk.store.ObjectBackend backend;
        final PrefixHistory history = new PrefixHistory();
        final DiskModel model = new DiskModel();
        final Deque<Runnable> background = new ArrayDeque<>();
        final List<Writer> pending = new ArrayList<>();
        // crashes, crashes inside, groups, tasks, checkpoints, cleanings, lineage ops, cache losses, uploads, steps inside checkpoints
        final long[] counters = new long[COUNTERS];
        String last = "start";
        /** A lineage step is under way: no steps inside its checkpoint (see {@link #inCheckpoint}). */
        boolean inLineage;
        /** Snapshot and clone names are never reused: one that a crash lost stays lost. */
        int nextSnapshot, nextClone;
        /** A cache directory was lost and the new host's open had not finished: recovery checks a prefix, not the model. */
        boolean cacheLossInFlight;

        /** A writer's prepared batch: whole blocks of {@code volume} at {@code lba}. */
        record Writer(String volume, int lba, byte[] data, Pool.PreparedWrite prepared) {}

        Life(long seed) { this(seed, null, false); }

        Life(long seed, SimObjectStore store, boolean syncToBackend) {
            this.seed = seed;
            this.r = new Random(seed);
            this.race = new Random(~seed);
            this.fs = new SimFs(seed);
            this.store = store;
            this.syncToBackend = syncToBackend;
        }

        Pool openPool() throws IOException { return openPool(false); }

        Pool openPool(boolean force) throws IOException {
            background.clear();
            pending.clear();
            // The smallest metadata cache: pages are evicted and reloaded, and dirty pages queue checkpoints often.
            Pool.OpenOptions options = Pool.OpenOptions.defaults().withBackground(background::add).withMetadataCache(0);
            Pool p;
            if (store == null) {
                p = Pool.open(fs, options);
            } else {
                io.dedisk.store.ObjectStorage storage = new SimBucket(store).storage(fs, io.dedisk.store.ObjectBackend.Options.defaults()
                        .withReadCache(3L << 20).withSyncToBackend(syncToBackend).withForce(force).withTakeoverGrace(0));
                p = Pool.open(storage, options);
                backend = storage.lastOpened();
            }
            p.betweenCheckpointBatches(this::inCheckpoint);
            return p;
        }

        /**
         * Runs between a checkpoint's batches of leaves, where the server lets writers in: by the seed, a group
         * commit, a writer's prepare, a write/zero/trim/flush, cleaning, or a clone, rollback or delete (not a
         * snapshot: it starts with a checkpoint of its own, which in the server waits for this one).
         */
        void inCheckpoint() {
            // A snapshot's own checkpoint: the model took the snapshot's content when the call began.
            if (inLineage || race.nextInt(100) >= 40) return;
            String outer = last;
            try {
                int event = race.nextInt(100);
                List<String> names = model.writable();
                if (event < 30) {
                    commitSome();
                } else if (event < 45 && pending.size() < 4 && !names.isEmpty()) {
                    prepare(race);
                } else if (event < 80 && !names.isEmpty()) {
                    String name = names.get(race.nextInt(names.size()));
                    last = Workload.step(race, pool, model, name);
                    if (store != null) {
                        if (last.equals("flush") || last.endsWith(" fua")) observeDurably(name); else history.observe(model, name);
                    }
                } else if (event < 90) {
                    last = "clean";
                    counters[5]++;
                    pool.clean(1, 0.95);
                } else {
                    lineage(false);
                }
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
            counters[9]++;
            last = last + " inside " + outer;
        }

        long[] run(int steps) throws Exception {
            if (store == null) Pool.create(fs, forSeed(seed)); else new SimBucket(store).create(forSeed(seed));
            pool = openPool();
            try {
                for (int step = 0; step < steps; step++) {
                    boolean armed = r.nextInt(100) < 4;
                    if (armed) fs.crashAfter(1 + r.nextInt(40));
                    if (armed && store != null && r.nextBoolean()) store.crashAfter(1 + r.nextInt(6));
                    try {
                        step(step);
                    } catch (SimFs.SimulatedCrash crash) {
                        counters[1]++;
                        recover(step, "a crash inside " + last);
                    }
                    if (armed) fs.crashAfter(Long.MAX_VALUE / 2);
                    if (armed && store != null) store.restartProcess();
                }
                commitAll();
                pool.close();
                pool = openPool();
                model.verifyExact(pool, "seed " + seed + " at the end");
                check(pool, seed, steps);
                pool.close();
            } catch (AssertionError | RuntimeException e) {
                throw new AssertionError("simulation seed " + seed + " failed (rerun with -Ddedisk.sim.base=" + seed + " -Ddedisk.sim." + (store == null ? "seeds" : "bucketSeeds")
                        + "=1), last step "
                        + last + ": " + e.getMessage(), e);
            }
            return counters;
        }

        /** After a crash (armed or chosen): a machine crash or a process restart, then the model and `dedisk check`. */
        void recover(int step, String what) throws IOException {
            counters[0]++;
            if (r.nextBoolean()) fs = fs.machineCrash(r.nextLong()); else fs.restartProcess();
            if (store != null) store.restartProcess();
            if (cacheLossInFlight) { // the crash hit the new host while it took the pool over: it tries again
                takeOverAfterCacheLoss(step);
                return;
            }
            pool = openPool();
            model.verifyAfterCrash(pool, "seed " + seed + " step " + step + " after " + what);
            check(pool, seed, step);
            history.restarted(model); // what was recovered uploads in the background: the bucket may be older
        }

        /** A bucket pool's own events: upload steps, and the cache directory lost with its host. True when one ran. */
        boolean bucketStep(int step) throws Exception {
            int event = r.nextInt(100);
            if (event < 15) {
                last = "upload steps";
                for (int i = 1 + r.nextInt(4); i > 0; i--) {
                    counters[8]++;
                    backend.uploadStep();
                }
                return true;
            }
            if (event < 17) {
                last = "cache directory lost";
                counters[7]++;
                fs = new SimFs(r.nextLong());
                cacheLossInFlight = true;
                takeOverAfterCacheLoss(step);
                return true;
            }
            return false;
        }

        /** Another host takes the pool over with --force (the dead one never closed it); the bucket must be a prefix. */
        void takeOverAfterCacheLoss(int step) throws IOException {
            pool = openPool(true);
            cacheLossInFlight = false;
            history.verifyPrefix(pool, "seed " + seed + " step " + step + " after the cache directory was lost"
                    + (syncToBackend ? " (--sync-to-backend: every FLUSH and FUA must be there)" : ""));
            model.adopt(pool);
            history.reset(model);
            check(pool, seed, step);
        }

        void step(int step) throws Exception {
            if (store != null && bucketStep(step)) return;
            int event = r.nextInt(100);
            if (model.writable().isEmpty() || event < 2) {
                String name = "v" + r.nextInt(4);
                commitAll(); // a volume change waits for the writers in flight
                if (model.volumes.containsKey(name)) {
                    last = "delete " + name;
                    LineageOps.delete(pool, model, name);
                    observeDurably(name);
                } else {
                    last = "create " + name;
                    LineageOps.create(pool, model, name, 16 + r.nextInt(200));
                    observeDurably(name);
                }
                return;
            }
            if (event < 4) { // machine crash between operations
                last = "machine crash";
                fs = fs.machineCrash(r.nextLong());
                pool = openPool();
                model.verifyAfterCrash(pool, "seed " + seed + " step " + step + " after machine crash");
                check(pool, seed, step);
                history.restarted(model);
                counters[0]++;
                return;
            }
            if (event < 5) { // process crash: the page cache survives, so everything written must
                last = "process crash";
                pool = openPool();
                model.verifyExact(pool, "seed " + seed + " step " + step + " after process crash");
                check(pool, seed, step);
                history.restarted(model);
                counters[0]++;
                return;
            }
            if (event < 6) { // clean restart
                last = "clean restart";
                commitAll();
                pool.close();
                pool = openPool();
                model.verifyExact(pool, "seed " + seed + " step " + step + " after clean restart");
                history.reset(model);
                return;
            }
            if (event < 14) { // a background task that was queued (sync-ahead, periodic checkpoint) runs now
                if (background.isEmpty()) return;
                last = "background task";
                counters[3]++;
                background.poll().run();
                return;
            }
            if (event < 16) {
                last = "checkpoint";
                counters[4]++;
                pool.checkpoint();
                return;
            }
            if (event < 17) {
                last = "clean";
                counters[5]++;
                pool.clean(1 + r.nextInt(3), 0.95);
                return;
            }
            if (event < 18) { // the background cleaner's round: clean to the garbage target, two checkpoints, delete
                last = "maintenance round";
                if (pool.maintenance()) counters[5]++;
                return;
            }
            if (event < 19) { // every segment with garbage cleaned (gc alone skips those 95 % live or more), then gc
                last = "clean all + gc";
                counters[5]++;
                pool.clean(Integer.MAX_VALUE, 1.0);
                pool.gc();
                return;
            }
            if (event < 32) { // a writer prepares a batch; it lands later
                if (pending.size() >= 4) { commitSome(); return; }
                prepare(r);
                return;
            }
            if (event < 40) { commitSome(); return; }
            if (event < 44) { lineage(true); return; }
            List<String> names = model.writable();
            String name = names.get(r.nextInt(names.size()));
            last = Workload.step(r, pool, model, name);
            if (store == null) return;
            if (last.equals("flush") || last.endsWith(" fua")) observeDurably(name); else history.observe(model, name);
        }

        /** A writer prepares a batch of a writable volume; it lands later ({@link #commitSome}). */
        void prepare(Random rnd) {
            List<String> names = model.writable();
            String name = names.get(rnd.nextInt(names.size()));
            DiskModel.Vol v = model.volumes.get(name);
            int lba = rnd.nextInt(v.blocks());
            int count = 1 + rnd.nextInt(Math.min(32, v.blocks() - lba));
            byte[] data = DiskModel.content(rnd, count * DiskModel.BS);
            last = "prepare " + name + " " + lba + "+" + count;
            pending.add(new Writer(name, lba, data, pool.prepareWrite(name, lba, data)));
        }

        /** The model changed volume {@code name} by an operation that, with --sync-to-backend, waited for the bucket. */
        void observeDurably(String name) {
            if (store == null) return;
            history.observe(model, name);
            if (syncToBackend) history.durable();
        }

        /** A snapshot of a volume or clone (unless not {@code withSnapshots}), a clone of a snapshot, a rollback to one, or the delete of one of them. */
        void lineage(boolean withSnapshots) throws IOException {
            inLineage = true;
            try {
                lineageStep(withSnapshots);
            } finally {
                inLineage = false;
            }
        }

        private void lineageStep(boolean withSnapshots) throws IOException {
            Random rnd = withSnapshots ? r : race;
            commitAll(); // like a volume change, it waits for the writers in flight
            counters[6]++;
            List<String> writable = model.writable();
            List<String> snapshots = model.volumes.keySet().stream().filter(n -> model.volumes.get(n).readOnly).toList();
            List<String> clones = model.volumes.keySet().stream().filter(n -> n.startsWith("c")).toList();
            int op = withSnapshots ? rnd.nextInt(5) : 2 + rnd.nextInt(3);
            if (op <= 1 && snapshots.size() < 6) {
                String volume = writable.get(rnd.nextInt(writable.size()));
                String snap = "s" + nextSnapshot++;
                last = "snapshot " + volume + "@" + snap;
                LineageOps.snapshot(pool, model, volume, snap);
                observeDurably(volume + "@" + snap);
            } else if (op == 2 && !snapshots.isEmpty() && clones.size() < 4) {
                String clone = "c" + nextClone++;
                String snapshot = snapshots.get(rnd.nextInt(snapshots.size()));
                last = "clone " + snapshot + " as " + clone;
                LineageOps.clone(pool, model, snapshot, clone);
                observeDurably(clone);
            } else if (op == 3 && !snapshots.isEmpty()) {
                String snapshot = snapshots.get(rnd.nextInt(snapshots.size()));
                DiskModel.Vol volume = model.volumes.get(snapshot.substring(0, snapshot.indexOf('@')));
                if (volume == null || volume.family != model.volumes.get(snapshot).family) return; // taken of a deleted volume
                last = "rollback " + snapshot;
                LineageOps.rollback(pool, model, snapshot);
                observeDurably(snapshot.substring(0, snapshot.indexOf('@')));
            } else {
                List<String> derived = new ArrayList<>(snapshots);
                derived.addAll(clones);
                if (derived.isEmpty()) return;
                String name = derived.get(rnd.nextInt(derived.size()));
                last = "delete " + name;
                LineageOps.delete(pool, model, name);
                observeDurably(name);
            }
        }

        /** Commits a random subset of the prepared writers as one group, in a random order. */
        void commitSome() {
            if (pending.isEmpty()) return;
            List<Writer> group = new ArrayList<>();
            Collections.shuffle(pending, r);
            int n = 1 + r.nextInt(pending.size());
            for (int i = 0; i < n; i++) group.add(pending.remove(pending.size() - 1));
            commit(group);
        }

        void commitAll() {
            List<Writer> group = new ArrayList<>(pending);
            pending.clear();
            if (!group.isEmpty()) commit(group);
        }

        private void commit(List<Writer> group) {
            last = "group commit of " + group.size();
            counters[2]++;
            List<Pool.PreparedWrite> prepared = new ArrayList<>();
            for (Writer w : group) {
                prepared.add(w.prepared());
                // In flight from here: a crash during the commit may or may not keep it (whole blocks).
                DiskModel.Vol v = model.volumes.get(w.volume());
                byte[] after = v.current.clone();
                System.arraycopy(w.data(), 0, after, w.lba() * DiskModel.BS, w.data().length);
                v.mayWrite((long) w.lba() * DiskModel.BS, w.data().length, after);
            }
            pool.commitWrites(prepared);
            for (Writer w : group) { // applied in group order: a later writer of the same block wins
                DiskModel.Vol v = model.volumes.get(w.volume());
                System.arraycopy(w.data(), 0, v.current, w.lba() * DiskModel.BS, w.data().length);
                if (store != null) history.observe(model, w.volume()); // one record per writer: a prefix may end between them
            }
        }
    }

    static void check(Pool pool, long seed, int step) throws IOException {
        PoolChecker.Report report = PoolChecker.check(pool);
        assertTrue(report.ok(), "seed " + seed + " step " + step + ": dedisk check found problems:\n" + report.toText());
    }
}
