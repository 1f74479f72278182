package io.dedisk.store.bench;

import io.dedisk.store.S3ObjectStore;
import io.dedisk.store.S3ProxyFixture;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;

/**
 * The cost of one segment upload, without the pool around it: {@code count} put-if-absent requests of {@code size}
 * bytes (a segment's worth of half random, half compressible bytes) from one thread through {@link S3ObjectStore} to
 * S3Proxy in this JVM (objects on disk under {@code dir}), after a warm-up of as many. Prints the CPU seconds per GiB
 * uploaded of the uploading thread (the S3 client: checksum, signing, HTTP), of S3Proxy's threads (the server:
 * signature and checksum checks, ETag MD5, file writes) and of the rest of the process (GC, JIT), and the wall-clock
 * rate. A figure per side that does not depend on the pool's own work, so the client's share can be compared across
 * client settings on a shared machine (where wall-clock rates are noise).
 *
 * <pre>
 *   java -cp ... io.dedisk.store.bench.S3UploadBench [count=16] [size=16M] [scheme=https|http] [dir=/var/tmp]
 * </pre>
 */
public final class S3UploadBench {
    private S3UploadBench() {}

    public static void main(String[] args) throws Exception {
        int count = 16;
        int size = 16 << 20;
        Path base = Path.of("/var/tmp");
        boolean https = true;
        for (String a : args) {
            String[] kv = a.split("=", 2);
            switch (kv[0]) {
                case "count" -> count = Integer.parseInt(kv[1]);
                case "size" -> size = (int) io.dedisk.util.Sizes.parse(kv[1]);
                case "dir" -> base = Path.of(kv[1]);
                case "scheme" -> https = switch (kv[1]) {
                    case "http" -> false;
                    case "https" -> true;
                    default -> throw new IllegalArgumentException("scheme: expected http or https, found " + kv[1]);
                };
                default -> throw new IllegalArgumentException("unknown argument " + a);
            }
        }
        byte[] segment = new byte[size];
        Random r = new Random(5);
        r.nextBytes(segment);
        for (int i = size / 2; i < size; i++) segment[i] = (byte) ('a' + (i % 61) % 26); // the other half: text-like
        Path work = Files.createTempDirectory(base, "dedisk-upload-bench");
        try (S3ProxyFixture s3 = (https ? S3ProxyFixture.onDiskHttps(work) : S3ProxyFixture.onDisk(work)).start(); S3ObjectStore store = s3.newStore(S3ObjectStore.Settings.defaults())) {
            for (int i = 0; i < count; i++) store.putIfAbsent("warm/" + i, segment);
            Map<String, Double> g0 = BucketPoolBench.cpuByGroup();
            long t0 = System.nanoTime();
            for (int i = 0; i < count; i++) store.putIfAbsent("seg/" + i, segment);
            double seconds = (System.nanoTime() - t0) / 1e9;
            Map<String, Double> used = BucketPoolBench.minus(BucketPoolBench.cpuByGroup(), g0);
            double gib = (double) count * size / (1L << 30);
            System.out.printf(Locale.ROOT, "S3 upload bench: %d x %d MiB put-if-absent over %s, load average %s%n", count, size >> 20, https ? "https" : "http",
                    Files.readString(Path.of("/proc/loadavg")).substring(0, 14));
            System.out.printf(Locale.ROOT, "%-34s %8.1f%n", "MiB/s (wall clock)", count * (size >> 20) / seconds);
            for (var e : used.entrySet()) {
                if (e.getKey().equals(BucketPoolBench.GROUPS.get(1))) continue; // no uploader thread here: main uploads
                String g = e.getKey().equals(BucketPoolBench.GROUPS.get(0)) ? "uploading thread (S3 client)" : e.getKey();
                System.out.printf(Locale.ROOT, "%-34s %8.3f CPU s per GiB%n", g, e.getValue() / gib);
            }
        } finally {
            try (Stream<Path> s = Files.walk(work)) { s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete()); }
        }
    }
}
