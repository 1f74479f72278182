package io.dedisk.cli;

import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.DediskException.InvalidRequestException;
import io.dedisk.pool.Pool;
import io.dedisk.sim.SimObjectStore;
import io.dedisk.store.S3ProxyFixture;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * --pool as a path or an s3:// URI: parsing, the seam that makes the S3 client, the cache directory (explicit or per
 * pool under XDG_CACHE_HOME), and the CLI's lock and control files in a bucket pool's cache directory. The bucket is
 * the simulated twin, except in the seam's own test, which runs on S3Proxy.
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
        assertEquals(new io.dedisk.store.S3Location("bucket", "pools/a/"), io.dedisk.store.S3Location.parse("s3://bucket/pools/a"));
        assertEquals(new io.dedisk.store.S3Location("bucket", ""), io.dedisk.store.S3Location.parse("s3://bucket"));
        assertThrows(InvalidRequestException.class, () -> PoolLocation.of("http://host/x", BucketOptions.none()));
        InvalidRequestException e = assertThrows(InvalidRequestException.class, () -> PoolLocation.of("some/dir", cache(tmp)));
        assertTrue(e.getMessage().contains("s3:// pools"), e.getMessage());
    }

    /** The seam opens the real S3 client: a pool on S3Proxy is created, written, owned once, and moved to another cache. */
    @Test
    void theSeamOpensTheS3ClientOnARealServer() throws Exception {
        try (S3ProxyFixture s3 = new S3ProxyFixture().start()) {
            Map<String, String> env = s3.environment();
            String uri = "s3://" + S3ProxyFixture.BUCKET + "/pool-" + UUID.randomUUID();
            PoolLocation.StoreFactory client = u -> ObjectStores.open(u, env);
            PoolDirectory.create(PoolLocation.of(uri, cache(tmp.resolve("a")), client, env), new Pool.Options(1 << 20, 1 << 20, 0, false));
            byte[] data = new byte[64 * 4096];
            new java.util.Random(5).nextBytes(data);
            try (PoolDirectory p = PoolDirectory.open(PoolLocation.of(uri, cache(tmp.resolve("a")), client, env), Pool.OpenOptions.defaults())) {
                p.pool.createVolume("v", 1 << 20);
                p.pool.volume("v").orElseThrow().write(0, java.nio.ByteBuffer.wrap(data), false);
                // A second host while the first serves: refused, the first owns the pool.
                assertThrows(io.dedisk.DediskException.class,
                        () -> PoolDirectory.open(PoolLocation.of(uri, cache(tmp.resolve("b")), client, env), Pool.OpenOptions.defaults()).close());
            }
            // Moved: another cache directory, the bucket alone.
            try (PoolDirectory p = PoolDirectory.open(PoolLocation.of(uri, cache(tmp.resolve("c")), client, env), Pool.OpenOptions.defaults())) {
                java.nio.ByteBuffer back = java.nio.ByteBuffer.allocate(data.length);
                p.pool.volume("v").orElseThrow().read(0, back);
                assertArrayEquals(data, back.array(), "everything written before the clean stop is in the bucket");
            }
        }
    }

    @Test
    void theDefaultCacheDirectoryIsPerPoolUnderTheUsersCache() {
        UUID id = UUID.randomUUID();
        PoolLocation xdg = PoolLocation.of("s3://bkt/p", BucketOptions.none(), uri -> null, Map.of("XDG_CACHE_HOME", "/x/cache", "HOME", "/home/u"));
        assertEquals(Path.of("/x/cache/dedisk/" + id), xdg.cacheDir(id));
        PoolLocation home = PoolLocation.of("s3://bkt/p", BucketOptions.none(), uri -> null, Map.of("HOME", "/home/u"));
        assertEquals(Path.of("/home/u/.cache/dedisk/" + id), home.cacheDir(id));
        assertEquals(tmp, PoolLocation.of("s3://bkt/p", cache(tmp), uri -> null, Map.of()).cacheDir(id));
    }

    @Test
    void aBucketPoolKeepsLockAndControlInItsCacheDirectory() throws Exception {
        SimObjectStore bucket = new SimObjectStore(1);
        Path cacheA = tmp.resolve("a"), cacheB = tmp.resolve("b");
        PoolLocation.StoreFactory sim = uri -> bucket;
        PoolDirectory.create(PoolLocation.of("s3://bkt/p", cache(cacheA), sim, Map.of()), new Pool.Options(1 << 20, 1 << 20, 0, false));
        assertTrue(bucket.contains("superblock"));
        PoolLocation a = PoolLocation.of("s3://bkt/p", cache(cacheA), sim, Map.of());
        try (PoolDirectory p = PoolDirectory.open(a, Pool.OpenOptions.defaults())) {
            p.pool.createVolume("v", 1 << 20);
            assertTrue(Files.exists(cacheA.resolve("lock")) && Files.exists(cacheA.resolve("identity")), "lock and identity in the cache directory");
            assertTrue(p.advertiseControl(new ControlClient("127.0.0.1:1", "t0ken")).isEmpty());
            assertEquals("127.0.0.1:1 t0ken", Files.readString(cacheA.resolve("control")).trim(), "the control endpoint is advertised in the cache directory");
            assertEquals("rw-------", java.nio.file.attribute.PosixFilePermissions.toString(Files.getPosixFilePermissions(cacheA.resolve("control"))),
                    "only the pool's owner reads the token");
            assertEquals(cacheA, PoolLocation.of("s3://bkt/p", cache(cacheA), sim, Map.of()).localDir(),
                    "where another CLI invocation looks for it (found from the bucket's superblock)");
            InvalidRequestException second = assertThrows(InvalidRequestException.class,
                    () -> PoolDirectory.open(PoolLocation.of("s3://bkt/p", cache(cacheB), sim, Map.of()), Pool.OpenOptions.defaults()));
            assertTrue(second.getMessage().contains("--force"), "another host is refused: " + second.getMessage());
        }
        assertFalse(Files.exists(cacheA.resolve("control")), "the control file goes with the server");
        Path cacheC = tmp.resolve("c");
        try (PoolDirectory p = PoolDirectory.open(PoolLocation.of("s3://bkt/p", cache(cacheC), sim, Map.of()), Pool.OpenOptions.defaults().withReadOnly())) {
            assertEquals(java.util.List.of("v"), p.pool.volumeNames(), "closed cleanly: another host reads it, from the bucket alone");
        }
        assertFalse(Files.exists(cacheC), "a read-only open creates no cache directory");
    }
}
