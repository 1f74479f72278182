package io.dedisk.sim;

import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.pool.Pool;
import io.dedisk.pool.VolumeDevice;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Crash at every write point (SQLite TH3 / CrashMonkey style), with checkpoints, cleaning and gc (segment
 * deletion) in the script: run a scripted workload once to count its
 * mutating I/O operations N, then for every k in 1..N run it again with a process crash at operation k, take
 * several machine-crash states of what was unsynced at that moment, recover each, and check the model and
 * `dedisk check`. Default: {@value #DEFAULT_SAMPLES} crash states per point; -Ddedisk.crash.samples for more.
 */
class CrashPointTest {
    static final int DEFAULT_SAMPLES = 3;
    static final int SCRIPT_STEPS = 40;
    /** Volume w spans this many block-map leaves of {@link #LEAF_BLOCKS} blocks, one block written in each. */
    static final int WIDE_LEAVES = 4;
    static final int LEAF_BLOCKS = 1024;

    /**
     * The scripted workload: a volume, then seeded I/O, with a snapshot, a clone written alongside the volume, a
     * checkpoint of leaves of a wide volume, a rollback and the snapshot's delete in it. Stops with SimulatedCrash when the crash point hits.
     */
    private static void script(SimFs fs, long seed, DiskModel model, long crashAfter) throws Exception {
        Random r = new Random(seed);
        Pool.create(fs, SimulationTest.smallSegments());
        // The smallest metadata cache: its checkpoints write leaves in batches (letting writers in between), so
        // crash points land between batches too.
        Pool pool = Pool.open(fs, Pool.OpenOptions.defaults().withBackground(Runnable::run).withMetadataCache(0));
        pool.createVolume("v", 96L * DiskModel.BS);
        model.addVolume("v", 96);
        pool.createVolume("w", WIDE_LEAVES * LEAF_BLOCKS * DiskModel.BS);
        model.addVolume("w", WIDE_LEAVES * LEAF_BLOCKS);
        if (crashAfter > 0) fs.crashAfter(crashAfter);
        for (int i = 0; i < SCRIPT_STEPS; i++) {
            Workload.step(r, pool, model, i % 2 == 1 && model.volumes.containsKey("c") ? "c" : "v");
            if (i == SCRIPT_STEPS / 4) LineageOps.snapshot(pool, model, "v", "a");
            if (i == SCRIPT_STEPS / 4 + 2) LineageOps.clone(pool, model, "v@a", "c");
            if (i == SCRIPT_STEPS / 2) {
                VolumeDevice w = pool.volume("w").orElseThrow();
                for (int leaf = 0; leaf < WIDE_LEAVES; leaf++) {
                    Workload.write(w, model.volumes.get("w"), leaf * LEAF_BLOCKS * DiskModel.BS, DiskModel.content(r, DiskModel.BS), false);
                }
                pool.checkpoint();
            }
            if (i == SCRIPT_STEPS / 2 + 4) LineageOps.rollback(pool, model, "v@a");
            if (i == SCRIPT_STEPS * 3 / 4) pool.clean(2, 1.0);
            if (i == SCRIPT_STEPS * 3 / 4 + 2) LineageOps.delete(pool, model, "v@a");
        }
        // Cleaning every segment with garbage (gc alone moves only those less than 95 % live), then gc: index
        // compaction, two checkpoints, segment deletion: crash points inside all of them.
        pool.clean(Integer.MAX_VALUE, 1.0);
        pool.gc();
        pool.close();
    }

    @Test
    void everyCrashPointRecoversToAnAllowedState() throws Exception {
        int samples = Integer.getInteger("dedisk.crash.samples", DEFAULT_SAMPLES);
        long seed = Long.getLong("dedisk.crash.seed", 42);
        SimFs counting = new SimFs(seed);
        DiskModel full = new DiskModel();
        script(counting, seed, full, 0);
        long total = counting.mutatingOps();
        // Operations before the volume exists are covered by the simulation; count from the script's start.
        SimFs probe = new SimFs(seed);
        Pool.create(probe, SimulationTest.smallSegments());
        Pool setupPool = Pool.open(probe, Runnable::run);
        setupPool.createVolume("v", 96L * DiskModel.BS);
        setupPool.createVolume("w", WIDE_LEAVES * LEAF_BLOCKS * DiskModel.BS);
        long setup = probe.mutatingOps();
        long points = 0;
        long states = 0;
        for (long k = 1; k <= total - setup; k++) {
            SimFs fs = new SimFs(seed);
            DiskModel model = new DiskModel();
            try {
                script(fs, seed, model, k);
                fail("crash point " + k + " was not reached");
            } catch (SimFs.SimulatedCrash expected) {
                points++;
            }
            for (int s = 0; s < samples; s++) {
                SimFs after = fs.machineCrash(seed * 1_000_003L + k * 31 + s);
                DiskModel m = model.copy();
                try (Pool pool = SimulationTest.open(after)) {
                    m.verifyAfterCrash(pool, "crash point " + k + " of " + (total - setup) + ", state " + s);
                    SimulationTest.check(pool, seed, (int) k);
                }
                states++;
            }
        }
        assertTrue(points > 50, "the script performs enough I/O to be interesting: " + points);
        System.out.printf("crash points: %d write points x %d states = %d recoveries checked, 0 violations (seed %d)%n", points, samples, states, seed);
    }
}
