package io.dedisk.sim;

import io.dedisk.pool.Pool;
import java.io.IOException;

/**
 * Snapshot, clone, rollback and delete steps applied to the pool and to the model, in the order that keeps the model
 * honest under crashes: what a crash may or may not keep is declared before the pool is called ({@link
 * DiskModel#inFlight}, or a rollback's content as a candidate of every block), and what is durable only after the
 * call returned (each of these syncs the log, so every write before it is durable too).
 */
final class LineageOps {
    private LineageOps() {}

    static void create(Pool pool, DiskModel model, String name, int blocks) {
        DiskModel.Vol v = model.newVolume(blocks);
        model.inFlight = name;
        model.inFlightCreated = v;
        pool.createVolume(name, (long) blocks * DiskModel.BS);
        model.volumes.put(name, v);
        done(model);
    }

    static String snapshot(Pool pool, DiskModel model, String volume, String snap) throws IOException {
        String name = volume + "@" + snap;
        DiskModel.Vol copy = model.volumes.get(volume).derived(true);
        model.inFlight = name;
        model.inFlightCreated = copy;
        pool.createSnapshot(volume, snap);
        model.volumes.put(name, copy);
        done(model);
        return "snapshot " + name;
    }

    static String clone(Pool pool, DiskModel model, String snapshot, String clone) {
        DiskModel.Vol copy = model.volumes.get(snapshot).derived(false);
        model.inFlight = clone;
        model.inFlightCreated = copy;
        pool.cloneSnapshot(snapshot, clone);
        model.volumes.put(clone, copy);
        done(model);
        return "clone " + snapshot + " as " + clone;
    }

    static String rollback(Pool pool, DiskModel model, String snapshot) {
        String volume = snapshot.substring(0, snapshot.indexOf('@'));
        DiskModel.Vol v = model.volumes.get(volume);
        byte[] content = model.volumes.get(snapshot).current;
        v.mayWrite(0, content.length, content);
        pool.rollback(snapshot);
        v.current = content.clone();
        model.allFlushed();
        return "rollback " + snapshot;
    }

    static String delete(Pool pool, DiskModel model, String name) {
        model.inFlight = name;
        pool.deleteVolume(name);
        model.volumes.remove(name);
        done(model);
        return "delete " + name;
    }

    private static void done(DiskModel model) {
        model.inFlight = null;
        model.inFlightCreated = null;
        model.allFlushed();
    }
}
