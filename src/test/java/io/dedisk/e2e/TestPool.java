package io.dedisk.e2e;

import io.dedisk.store.ObjectStore;
import io.dedisk.store.S3Location;
import io.dedisk.store.S3ObjectStore;
import io.dedisk.store.S3ProxyFixture;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Where an end-to-end test's pool lives, so one test runs on both kinds: a pool directory, or an s3:// prefix on an
 * S3Proxy in the test JVM with a local cache directory. It gives the `--pool` arguments (and `--cache` for a bucket
 * pool), the environment a dedisk process needs to reach the bucket, a directory for server logs, and the names of
 * the pool's segments (files or objects) so tests can see what GC deleted.
 *
 * Immutable; any thread.
 */
record TestPool(String spec, Path cache, Map<String, String> env, Path logDir) {
    /** A pool directory (which does not exist yet). */
    static TestPool directory(Path dir) { return new TestPool(dir.toString(), null, Map.of(), dir.getParent()); }

    /** A pool on a fresh prefix of the fixture's bucket, cached in {@code cache}. */
    static TestPool bucket(S3ProxyFixture s3, Path cache) {
        return new TestPool("s3://" + S3ProxyFixture.BUCKET + "/" + s3.freshLocation().prefix(), cache, s3.environment(), cache.getParent());
    }

    /** By name, for parameterised tests: "directory" or "bucket" (the fixture must be started for a bucket). */
    static TestPool of(String kind, Path tmp, S3ProxyFixture s3) {
        return switch (kind) {
            case "directory" -> directory(tmp.resolve("pool"));
            case "bucket" -> bucket(s3, tmp.resolve("cache"));
            default -> throw new IllegalArgumentException("pool kind: expected directory or bucket, found " + kind);
        };
    }

    boolean isBucket() { return cache != null; }

    /** The same bucket pool on this host with another cache directory (another host, or a lost cache). */
    TestPool withCache(Path otherCache) {
        if (!isBucket()) throw new IllegalStateException("a pool directory has no cache: " + spec);
        return new TestPool(spec, otherCache, env, logDir);
    }

    /** {@code --pool SPEC} (and {@code --cache DIR}). */
    String[] args() {
        List<String> a = new ArrayList<>(List.of("--pool", spec));
        if (isBucket()) a.addAll(List.of("--cache", cache.toString()));
        return a.toArray(String[]::new);
    }

    /** The segment names (e.g. 0000000000000001.seg) the backend holds. */
    List<String> segmentNames() throws IOException {
        if (!isBucket()) {
            try (var files = Files.list(Path.of(spec).resolve("segments"))) {
                return files.map(p -> p.getFileName().toString()).sorted().toList();
            }
        }
        try (ObjectStore store = S3ObjectStore.open(S3Location.parse(spec), env, S3ProxyFixture.fastSettings())) {
            String prefix = "segments/";
            return store.list(prefix).stream().map(i -> i.key().substring(prefix.length())).sorted().toList();
        }
    }
}
