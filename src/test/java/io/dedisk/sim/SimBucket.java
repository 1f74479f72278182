package io.dedisk.sim;

import io.dedisk.pool.Pool;
import io.dedisk.store.ObjectBackend;
import io.dedisk.store.ObjectStorage;
import java.io.IOException;

/**
 * A simulated bucket pool for tests: one {@link SimObjectStore} (the bucket, shared by every "host") and, per host,
 * a {@link SimFs} as its cache directory. The upload queue is driven by the test ({@link ObjectBackend.Options#asSimulated}):
 * no uploader thread, no waiting between retries, so a run replays from its seeds.
 */
final class SimBucket {
    final SimObjectStore store;

    SimBucket(SimObjectStore store) { this.store = store; }

    SimBucket(long seed) { this(new SimObjectStore(seed)); }

    /** The pool storage a host with cache directory {@code cache} sees. */
    ObjectStorage storage(SimFs cache, ObjectBackend.Options options) {
        return new ObjectStorage(store, new ObjectStorage.CacheDirs() {
            @Override public SimFs cacheFor(java.util.UUID poolId) { return cache; }
            @Override public String describe(java.util.UUID poolId) { return "sim-cache"; }
        }, options.asSimulated(), "sim://bucket");
    }

    ObjectStorage storage(SimFs cache) { return storage(cache, ObjectBackend.Options.defaults()); }

    void create(Pool.Options options) throws IOException { Pool.create(storage(new SimFs(0)), options); }

    /** Opens the pool from host {@code cache}, background work inline. */
    static Pool open(ObjectStorage storage) throws IOException { return Pool.open(storage, Pool.OpenOptions.defaults().withBackground(Runnable::run)); }

    static Pool openReadOnly(ObjectStorage storage) throws IOException {
        return Pool.open(storage, Pool.OpenOptions.defaults().withBackground(Runnable::run).withReadOnly());
    }
}
