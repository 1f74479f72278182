package io.dedisk.cli;

import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.pool.Pool;
import io.dedisk.store.S3ProxyFixture;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import java.util.UUID;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * `dedisk import` and `dedisk export` on a pool in a bucket (S3Proxy on 127.0.0.1): a raw image with holes goes in
 * offline, comes back out byte for byte through qemu-img (which needs the qemu-utils package, as the other
 * import tests), and is still there when the pool is opened from the bucket with another, empty cache directory.
 */
class BucketImportExportTest {
    @TempDir Path tmp;

    @Test
    void importAndExportWorkOnABucketPool() throws Exception {
        Path raw = tmp.resolve("src.raw");
        byte[] data = new byte[3 << 20];
        new Random(8).nextBytes(data);
        try (RandomAccessFile f = new RandomAccessFile(raw.toFile(), "rw")) {
            f.setLength(16 << 20);
            f.seek(4 << 20);
            f.write(data); // holes before and after
        }
        try (S3ProxyFixture s3 = new S3ProxyFixture().start()) {
            Map<String, String> env = s3.environment();
            String uri = "s3://" + S3ProxyFixture.BUCKET + "/pool-" + UUID.randomUUID();
            PoolLocation.StoreFactory client = u -> ObjectStores.open(u, env);
            PoolDirectory.create(PoolLocation.of(uri, PoolLocationTest.cache(tmp.resolve("a")), client, env), new Pool.Options(1 << 20, 1 << 20, 0, false));
            try (PoolLocation at = PoolLocation.of(uri, PoolLocationTest.cache(tmp.resolve("a")), client, env)) {
                String summary = ImageImport.run(at, raw, "golden", null, null, false, false);
                assertTrue(summary.contains("golden"), summary);
            }
            Path out = tmp.resolve("out.raw");
            try (PoolLocation at = PoolLocation.of(uri, PoolLocationTest.cache(tmp.resolve("b")), client, env)) {
                ImageExport.run(at, "golden", out, "raw", false, false);
            }
            assertArrayEquals(Files.readAllBytes(raw), Files.readAllBytes(out), "exported from another host's empty cache: the image as imported");
        }
    }
}
