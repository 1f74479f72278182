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

    /** A pool call that may throw I/O errors. */
    private interface Call {
        void run() throws IOException;
    }

    /** Volume {@code name} holding {@code content} is created by {@code call}: a crash inside it may keep it or not. */
    private static void creating(DiskModel model, String name, DiskModel.Vol content, Call call) throws IOException {
        model.inFlight = name;
        model.inFlightCreated = content;
        call.run();
        model.volumes.put(name, content);
        done(model);
    }

    static void create(Pool pool, DiskModel model, String name, int blocks) throws IOException {
        creating(model, name, model.newVolume(blocks), () -> pool.createVolume(name, (long) blocks * DiskModel.BS));
    }

    static String snapshot(Pool pool, DiskModel model, String volume, String snap) throws IOException {
        creating(model, volume + "@" + snap, model.volumes.get(volume).derived(true), () -> pool.createSnapshot(volume, snap));
        return "snapshot " + volume + "@" + snap;
    }

    static String clone(Pool pool, DiskModel model, String snapshot, String clone) throws IOException {
        creating(model, clone, model.volumes.get(snapshot).derived(false), () -> pool.cloneSnapshot(snapshot, clone));
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
