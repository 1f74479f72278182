package io.dedisk.cli;

import io.dedisk.DediskException.InvalidRequestException;
import io.dedisk.store.ObjectBackend;
import io.dedisk.util.Sizes;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** The options of a pool in a bucket (s3://), on every command that takes --pool; refused for a pool directory. */
final class BucketOptions {
    @Option(names = "--cache", paramLabel = "DIR",
            description = "Cache directory of an s3:// pool: write-back segments, read cache, dedup index (default ${XDG_CACHE_HOME:-~/.cache}/dedisk/POOL-ID).")
    Path cache;
    @Option(names = "--read-cache", paramLabel = "SIZE", description = "Read cache of an s3:// pool on local disk (default 1G).") String readCache;
    @Option(names = "--sync-to-backend", description = "s3:// pools: FLUSH and FUA return only once the data is in the bucket (default: once in the cache).")
    boolean syncToBackend;
    @Option(names = "--force", description = "s3:// pools: take the pool over from an owner that did not close it (it is fenced; what it had not uploaded is lost).")
    boolean force;

    static BucketOptions none() { return new BucketOptions(); }

    boolean anySet() { return cache != null || readCache != null || syncToBackend || force; }

    ObjectBackend.Options toOptions() {
        long rc = readCache == null ? ObjectBackend.Options.DEFAULT_READ_CACHE : Sizes.parse(readCache);
        if (rc < 0) throw new InvalidRequestException("--read-cache must not be negative, got " + readCache);
        return ObjectBackend.Options.defaults().withReadCache(rc).withSyncToBackend(syncToBackend).withForce(force);
    }
}
