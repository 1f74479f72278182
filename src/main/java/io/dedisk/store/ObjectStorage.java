package io.dedisk.store;

import io.dedisk.DediskException.InvalidRequestException;
import java.io.IOException;
import java.util.UUID;

/**
 * A pool in an object-store bucket (under a key prefix the {@link ObjectStore} applies): the superblock, manifest and
 * segments in the bucket, everything local (dedup index, write-back and read cache, the CLI's lock and control files)
 * in a cache directory picked by the pool id ({@link CacheDirs}: {@code --cache DIR}, or one per pool under the
 * user's cache directory). See {@link ObjectBackend} for the layout and the upload order.
 *
 * Threads: used by the opening thread only.
 */
public final class ObjectStorage implements PoolStorage {
    /** Where the cache directory of a pool is, as an Fs (LocalFs; SimFs in the simulation). */
    public interface CacheDirs {
        Fs cacheFor(UUID poolId) throws IOException;

        /** The directory's name for messages. */
        String describe(UUID poolId);
    }

    private final ObjectStore store;
    private final CacheDirs caches;
    private final ObjectBackend.Options options;
    private final String where;
    private ObjectBackend opened;

    /** {@code where} names the bucket location in messages (e.g. s3://bucket/prefix). */
    public ObjectStorage(ObjectStore store, CacheDirs caches, ObjectBackend.Options options, String where) {
        this.store = new RetryingObjectStore(store, options.retry()); // the one retrying layer: the pool's every request goes through it
        this.caches = caches;
        this.options = options;
        this.where = where;
    }

    @Override
    public byte[] readSuperblock() throws IOException {
        ObjectStore.Versioned v = store.get(ObjectBackend.SUPERBLOCK);
        return v == null ? null : v.content();
    }

    @Override
    public void create(byte[] superblock) throws IOException {
        if (store.get(ObjectBackend.SUPERBLOCK) != null) throw new InvalidRequestException("a dedisk pool already exists at " + where);
        if (!store.list("").isEmpty()) throw new InvalidRequestException(where + " is not empty; dedisk creates pools only under an empty prefix");
        try {
            store.putIfAbsent(ObjectBackend.SUPERBLOCK, superblock); // our own ambiguous put counts as done
        } catch (ObjectStore.PreconditionFailedException e) {
            throw new InvalidRequestException("another dedisk created a pool at " + where + " at the same time");
        }
    }

    @Override
    public Opened open(UUID poolId, boolean readOnly) throws IOException {
        Fs cache = caches.cacheFor(poolId);
        CacheIdentity identity = CacheIdentity.openOrCreate(cache, poolId, readOnly, caches.describe(poolId));
        opened = new ObjectBackend(store, cache, poolId, identity, readOnly, options);
        return new Opened(opened, cache);
    }

    /** The backend the last {@link #open} made (the simulation drives its upload queue). */
    public ObjectBackend lastOpened() { return opened; }
}
