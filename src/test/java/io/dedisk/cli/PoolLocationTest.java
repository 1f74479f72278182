package io.dedisk.cli;

import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.DediskException.InvalidRequestException;
import io.dedisk.pool.Pool;
import io.dedisk.sim.SimObjectStore;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * --pool as a path or an s3:// URI: parsing, the seam that makes the S3 client, the cache directory (explicit or per
 * pool under XDG_CACHE_HOME), and the CLI's lock and control files in a bucket pool's cache directory. The bucket is
 * the simulated twin (the real client is tested against S3Proxy with its own branch).
 */
class PoolLocationTest {
    @TempDir Path tmp;

    static BucketOptions cache(Path dir) {
        BucketOptions o = new BucketOptions();
        o.cache = dir;
        return o;
    }

    @Test
    void locationsAreParsedAndMisuseIsRefused() {
        assertFalse(PoolLocation.of("some/dir", BucketOptions.none()).isBucket());
        assertTrue(PoolLocation.of("s3://bucket/pools/a", BucketOptions.none()).isBucket());
        assertEquals(new ObjectStores.Bucket("bucket", "pools/a/"), ObjectStores.parse(java.net.URI.create("s3://bucket/pools/a")));
        assertEquals(new ObjectStores.Bucket("bucket", ""), ObjectStores.parse(java.net.URI.create("s3://bucket")));
        assertThrows(InvalidRequestException.class, () -> PoolLocation.of("http://host/x", BucketOptions.none()));
        InvalidRequestException e = assertThrows(InvalidRequestException.class, () -> PoolLocation.of("some/dir", cache(tmp)));
        assertTrue(e.getMessage().contains("s3:// pools"), e.getMessage());
    }

    @Test
    void withoutTheS3ClientTheSeamSaysSo() {
        PoolLocation at = PoolLocation.of("s3://bucket/p", BucketOptions.none());
        InvalidRequestException e = assertThrows(InvalidRequestException.class, at::exists);
        assertTrue(e.getMessage().startsWith("S3 client not built yet"), e.getMessage());
    }

    @Test
    void theDefaultCacheDirectoryIsPerPoolUnderTheUsersCache() {
        UUID id = UUID.randomUUID();
        PoolLocation xdg = PoolLocation.of("s3://b/p", BucketOptions.none(), uri -> null, Map.of("XDG_CACHE_HOME", "/x/cache", "HOME", "/home/u"));
        assertEquals(Path.of("/x/cache/dedisk/" + id), xdg.cacheDir(id));
        PoolLocation home = PoolLocation.of("s3://b/p", BucketOptions.none(), uri -> null, Map.of("HOME", "/home/u"));
        assertEquals(Path.of("/home/u/.cache/dedisk/" + id), home.cacheDir(id));
        assertEquals(tmp, PoolLocation.of("s3://b/p", cache(tmp), uri -> null, Map.of()).cacheDir(id));
    }

    @Test
    void aBucketPoolKeepsLockAndControlInItsCacheDirectory() throws Exception {
        SimObjectStore bucket = new SimObjectStore(1);
        Path cacheA = tmp.resolve("a"), cacheB = tmp.resolve("b");
        PoolLocation.StoreFactory sim = uri -> bucket;
        PoolDirectory.create(PoolLocation.of("s3://b/p", cache(cacheA), sim, Map.of()), new Pool.Options(1 << 20, 1 << 20, 0, false));
        assertTrue(bucket.contains("superblock"));
        PoolLocation a = PoolLocation.of("s3://b/p", cache(cacheA), sim, Map.of());
        try (PoolDirectory p = PoolDirectory.open(a, Pool.OpenOptions.defaults())) {
            p.pool.createVolume("v", 1 << 20);
            assertTrue(Files.exists(cacheA.resolve("lock")) && Files.exists(cacheA.resolve("identity")), "lock and identity in the cache directory");
            assertTrue(p.advertiseControl("127.0.0.1:1").isEmpty());
            assertEquals("127.0.0.1:1", Files.readString(cacheA.resolve("control")).trim(), "the control endpoint is advertised in the cache directory");
            assertEquals(cacheA, PoolLocation.of("s3://b/p", cache(cacheA), sim, Map.of()).localDir(),
                    "where another CLI invocation looks for it (found from the bucket's superblock)");
            InvalidRequestException second = assertThrows(InvalidRequestException.class,
                    () -> PoolDirectory.open(PoolLocation.of("s3://b/p", cache(cacheB), sim, Map.of()), Pool.OpenOptions.defaults()));
            assertTrue(second.getMessage().contains("--force"), "another host is refused: " + second.getMessage());
        }
        assertFalse(Files.exists(cacheA.resolve("control")), "the control file goes with the server");
        Path cacheC = tmp.resolve("c");
        try (PoolDirectory p = PoolDirectory.open(PoolLocation.of("s3://b/p", cache(cacheC), sim, Map.of()), Pool.OpenOptions.defaults().withReadOnly())) {
            assertEquals(java.util.List.of("v"), p.pool.volumeNames(), "closed cleanly: another host reads it, from the bucket alone");
        }
        assertFalse(Files.exists(cacheC), "a read-only open creates no cache directory");
    }
}
