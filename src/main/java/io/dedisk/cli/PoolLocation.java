package io.dedisk.cli;

import io.dedisk.DediskException.InvalidRequestException;
import io.dedisk.pool.Pool;
import io.dedisk.pool.Superblock;
import io.dedisk.store.DirectoryStorage;
import io.dedisk.store.Fs;
import io.dedisk.store.LocalFs;
import io.dedisk.store.ObjectStorage;
import io.dedisk.store.ObjectStore;
import io.dedisk.store.PoolStorage;
import io.dedisk.store.S3Location;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.UUID;

/**
 * Where a pool named by {@code --pool} lives: a directory path, or {@code s3://BUCKET/PREFIX} with a local cache
 * directory. Gives the pool's storage and its local directory, where the CLI keeps the ownership lock, the control
 * endpoint file and the stats history: the pool directory itself, or the bucket pool's cache directory (so
 * {@code dedisk stats --pool s3://...} finds the server running on this host).
 *
 * Threads: the CLI's. The object-store client is opened once, on first use, and closed with the location.
 */
final class PoolLocation implements AutoCloseable {
    /** Makes the object-store client for a URI (the real seam: {@link ObjectStores#open}; tests pass a simulated store). */
    interface StoreFactory {
        ObjectStore open(URI uri) throws IOException;
    }

    private final String spec;
    private final Path directory;
    private final URI uri;
    private final BucketOptions bucket;
    private final StoreFactory factory;
    private final Map<String, String> env;
    private ObjectStore store;

    private PoolLocation(String spec, Path directory, URI uri, BucketOptions bucket, StoreFactory factory, Map<String, String> env) {
        this.spec = spec;
        this.directory = directory;
        this.uri = uri;
        this.bucket = bucket;
        this.factory = factory;
        this.env = env;
    }

    /** {@code --pool} as given: a path, or an s3:// URI whose client comes from the environment. */
    static PoolLocation of(String spec, BucketOptions bucket) {
        Map<String, String> env = System.getenv();
        return of(spec, bucket, uri -> ObjectStores.open(uri, env), env);
    }

    static PoolLocation of(String spec, BucketOptions bucket, StoreFactory factory, Map<String, String> env) {
        if (spec.startsWith("s3://")) {
            S3Location.parse(spec); // bucket and prefix rules, with a clear message
            URI uri = URI.create(spec);
            return new PoolLocation(spec, null, uri, bucket, factory, env);
        }
        if (spec.contains("://")) throw new InvalidRequestException("invalid pool location '" + spec + "': expected s3://BUCKET/PREFIX or a directory path");
        if (bucket.anySet()) throw new InvalidRequestException("--cache, --read-cache, --sync-to-backend and --force are for s3:// pools; " + spec + " is a pool directory");
        return new PoolLocation(spec, Path.of(spec), null, bucket, factory, env);
    }

    static PoolLocation directory(Path dir) { return new PoolLocation(dir.toString(), dir, null, BucketOptions.none(), null, Map.of()); }

    boolean isBucket() { return uri != null; }

    /** The pool directory (null for a bucket pool). */
    Path directory() { return directory; }

    @Override
    public String toString() { return spec; }

    private ObjectStore store() throws IOException {
        if (store == null) store = factory.open(uri);
        return store;
    }

    PoolStorage storage() throws IOException {
        if (!isBucket()) return new DirectoryStorage(new LocalFs(directory));
        return new ObjectStorage(store(), new ObjectStorage.CacheDirs() {
            @Override public Fs cacheFor(UUID poolId) { return new LocalFs(cacheDir(poolId)); }
            @Override public String describe(UUID poolId) { return cacheDir(poolId).toString(); }
        }, bucket.toOptions(), spec);
    }

    boolean exists() throws IOException { return storage().readSuperblock() != null; }

    /**
     * The local directory of the CLI's files: the pool directory, or the cache directory of the bucket pool (which
     * needs the pool id, from the bucket's superblock); null when there is no pool.
     */
    Path localDir() throws IOException {
        if (!isBucket()) return directory;
        byte[] sb = storage().readSuperblock();
        return sb == null ? null : cacheDir(Superblock.decode(sb).poolId());
    }

    /** --cache, else ${XDG_CACHE_HOME:-~/.cache}/dedisk/POOL-ID. */
    Path cacheDir(UUID poolId) {
        if (bucket.cache != null) return bucket.cache;
        String xdg = env.get("XDG_CACHE_HOME");
        Path base = xdg != null && !xdg.isEmpty() ? Path.of(xdg) : Path.of(env.getOrDefault("HOME", System.getProperty("user.home")), ".cache");
        return base.resolve("dedisk").resolve(poolId.toString());
    }

    /** Creates the pool: an empty or new directory, or an empty bucket prefix. */
    void create(Pool.Options options) throws IOException {
        if (!isBucket()) {
            if (Files.exists(directory) && !Files.isDirectory(directory)) throw new InvalidRequestException(directory + " exists and is not a directory");
            Files.createDirectories(directory);
        } else if (store() instanceof io.dedisk.store.S3ObjectStore s3) {
            s3.checkConditionalWrites(); // ownership rests on them: refuse a server that ignores If-None-Match / If-Match
        }
        Pool.create(storage(), options);
    }

    @Override
    public void close() throws IOException {
        ObjectStore s = store;
        store = null; // closed once, whoever closes first (the pool handle or the command)
        if (s != null) s.close();
    }
}
