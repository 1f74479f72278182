package io.dedisk.store.bench;

import io.dedisk.index.BlockName;
import io.dedisk.pool.ChunkCodec;
import io.dedisk.pool.Pool;
import io.dedisk.pool.VolumeDevice;
import io.dedisk.sim.SimObjectStore;
import io.dedisk.store.LocalFs;
import io.dedisk.store.ObjectBackend;
import io.dedisk.store.ObjectStorage;
import io.dedisk.store.ObjectStore;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadInfo;
import java.lang.management.ThreadMXBean;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.UUID;
import java.util.stream.Stream;

/**
 * The bucket pool against the directory pool, same run, same synthetic VM image (zeros, duplicates, text-like and
 * random blocks, seeded): import speed (1 MiB writes, one FLUSH), warm reads (second pass), FLUSH latency after a
 * 4 KiB write (directory; bucket; bucket with --sync-to-backend), and the bucket's bytes against the ideal (exact
 * 4 KiB dedup + per-block LZ4). The bucket is S3Proxy in this JVM on loopback through the real S3 client
 * ({@code bucket=s3proxy}, the default: objects on disk under the work directory, over https as AWS is reached, or
 * {@code scheme=http}; its request handling shares the CPUs with the pool, so the import window's CPU seconds are
 * printed per thread group), or an in-memory object store with a fixed latency per request
 * ({@code bucket=memory latencyMs=2}).
 *
 * <pre>
 *   bench/bucket.sh [bucket=s3proxy|memory] [scheme=https|http] [size=1G] [latencyMs=2] [flushes=200] [rounds=2] [dir=/var/tmp]
 * </pre>
 */
public final class BucketPoolBench {
    private static final int BS = Pool.BLOCK_SIZE;

    private BucketPoolBench() {}

    /** An in-memory bucket whose every request takes {@code latencyMs} (sleeping: the uploader and readers wait, as on a network). */
    static ObjectStore slow(SimObjectStore store, long latencyMs) {
        return new ObjectStore() {
            private void delay() throws IOException {
                try { Thread.sleep(latencyMs); } catch (InterruptedException e) { Thread.currentThread().interrupt(); throw new IOException(e); }
            }
            @Override public void put(String k, byte[] c) throws IOException { delay(); store.put(k, c); }
            @Override public String putIfAbsent(String k, byte[] c) throws IOException { delay(); return store.putIfAbsent(k, c); }
            @Override public String replaceIfMatch(String k, byte[] c, String e) throws IOException { delay(); return store.replaceIfMatch(k, c, e); }
            @Override public Versioned get(String k) throws IOException { delay(); return store.get(k); }
            @Override public byte[] getRange(String k, long o, int l) throws IOException { delay(); return store.getRange(k, o, l); }
            @Override public List<Info> list(String p) throws IOException { delay(); return store.list(p); }
            @Override public void delete(String k) throws IOException { delay(); store.delete(k); }
        };
    }

    /** 1 MiB of the synthetic image at position {@code mib}: per 4 KiB, 40 % zeros, 20 % repeats, 20 % text, 20 % random. */
    static byte[] imageMiB(long seed, int mib) {
        Random r = new Random(seed * 1_000_003L + mib);
        byte[] out = new byte[1 << 20];
        for (int off = 0; off < out.length; off += BS) {
            int kind = r.nextInt(10);
            if (kind < 4) continue;
            if (kind < 6) { // a block that occurs elsewhere in the image: one of 4096 shared patterns
                Random p = new Random(r.nextInt(4096));
                byte[] b = new byte[BS];
                p.nextBytes(b);
                System.arraycopy(b, 0, out, off, BS);
            } else if (kind < 8) {
                byte[] line = ("Dec  1 23:07:17 host kernel: [" + r.nextInt(1_000_000) + "] eth0: link up, 1000 Mbps\n").getBytes();
                for (int i = 0; i < BS; i++) out[off + i] = line[i % line.length];
            } else {
                byte[] b = new byte[BS];
                r.nextBytes(b);
                System.arraycopy(b, 0, out, off, BS);
            }
        }
        return out;
    }

    record Run(String name, double importMiBs, double readMiBs, double flushMedianMs, double flushP99Ms, long storedBytes, double importCpuS, double readCpuS,
            Map<String, Double> importCpuByGroup) {}

    /** Where the bucket runs: a fresh, empty store per call, and the bytes a store holds. */
    interface Buckets extends AutoCloseable {
        ObjectStore fresh() throws Exception;

        long bytes(ObjectStore store) throws IOException;

        @Override default void close() throws Exception { }
    }

    static Buckets memory(long latencyMs) {
        java.util.Map<ObjectStore, SimObjectStore> backing = new java.util.IdentityHashMap<>();
        return new Buckets() {
            @Override public ObjectStore fresh() {
                SimObjectStore s = new SimObjectStore(backing.size());
                ObjectStore slowed = slow(s, latencyMs);
                backing.put(slowed, s);
                return slowed;
            }
            @Override public long bytes(ObjectStore store) { return backing.get(store).snapshot().values().stream().mapToLong(x -> x.length).sum(); }
        };
    }

    static Buckets s3proxy(Path objects, boolean https) throws Exception {
        Files.createDirectories(objects);
        io.dedisk.store.S3ProxyFixture s3 = (https ? io.dedisk.store.S3ProxyFixture.onDiskHttps(objects) : io.dedisk.store.S3ProxyFixture.onDisk(objects)).start();
        return new Buckets() {
            @Override public ObjectStore fresh() { return s3.newStore(io.dedisk.store.S3ObjectStore.Settings.defaults()); }
            @Override public long bytes(ObjectStore store) throws IOException { return store.list("").stream().mapToLong(ObjectStore.Info::size).sum(); }
            @Override public void close() throws Exception { s3.close(); }
        };
    }

    /** CPU seconds of this process so far (pool, client and an in-JVM S3Proxy alike). */
    static double cpuSeconds() {
        return ((com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean()).getProcessCpuTime() / 1e9;
    }

    /**
     * The groups a CPU breakdown names, in print order: Java threads by name; the JVM's own threads by their Linux
     * thread names ("GC Thread#0", "G1 Conc#0", "C2 CompilerThre"...); "JVM, other" is the rest of the process's CPU.
     */
    static final List<String> GROUPS = List.of("pool (writer, checkpoints)", "uploader (S3 client)", "S3Proxy (server)", "JVM: GC",
            "JVM: JIT compilers", "JVM: other");

    static String group(String thread) {
        if (thread.startsWith("dedisk-upload")) return GROUPS.get(1);
        if (thread.startsWith("S3Proxy") || thread.startsWith("qtp")) return GROUPS.get(2);
        return GROUPS.get(0);
    }

    /** CPU seconds so far per group: each live platform thread's, and the process's rest as "JVM". */
    static Map<String, Double> cpuByGroup() {
        ThreadMXBean threads = ManagementFactory.getThreadMXBean();
        Map<String, Double> out = new LinkedHashMap<>();
        for (String g : GROUPS) out.put(g, 0.0);
        double javaThreads = 0;
        for (ThreadInfo t : threads.getThreadInfo(threads.getAllThreadIds())) {
            if (t == null) continue;
            long ns = threads.getThreadCpuTime(t.getThreadId());
            if (ns < 0) continue;
            out.merge(group(t.getThreadName()), ns / 1e9, Double::sum);
            javaThreads += ns / 1e9;
        }
        double gc = 0, jit = 0;
        // Linux only (as the benches are): each thread's utime + stime in clock ticks, by its name.
        try (Stream<Path> tasks = Files.list(Path.of("/proc/self/task"))) {
            for (Path task : tasks.toList()) {
                String name, stat;
                try {
                    name = Files.readString(task.resolve("comm")).strip();
                    stat = Files.readString(task.resolve("stat"));
                } catch (IOException gone) {
                    continue; // the thread ended
                }
                String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
                double seconds = (Long.parseLong(f[11]) + Long.parseLong(f[12])) / 100.0; // fields 14, 15; USER_HZ 100
                if (name.startsWith("GC Thread") || name.startsWith("G1 ")) gc += seconds;
                else if (name.startsWith("C1 Compiler") || name.startsWith("C2 Compiler")) jit += seconds;
            }
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        out.put(GROUPS.get(3), gc);
        out.put(GROUPS.get(4), jit);
        out.put(GROUPS.get(5), cpuSeconds() - javaThreads - gc - jit);
        return out;
    }

    static Map<String, Double> minus(Map<String, Double> after, Map<String, Double> before) {
        Map<String, Double> out = new LinkedHashMap<>();
        after.forEach((g, s) -> out.put(g, s - before.getOrDefault(g, 0.0)));
        return out;
    }

    public static void main(String[] args) throws Exception {
        long size = 1L << 30; // a VM image's size: at 256 MiB the import took 0.3 s and JIT and GC moved the ratio by tenths
        long latency = 2;
        int flushes = 200;
        int rounds = 2;
        Path base = Path.of("/var/tmp");
        String bucketKind = "s3proxy";
        String scheme = "https";
        for (String a : args) {
            String[] kv = a.split("=", 2);
            switch (kv[0]) {
                case "size" -> size = io.dedisk.util.Sizes.parse(kv[1]);
                case "latencyMs" -> latency = Long.parseLong(kv[1]);
                case "flushes" -> flushes = Integer.parseInt(kv[1]);
                case "dir" -> base = Path.of(kv[1]);
                case "rounds" -> rounds = Integer.parseInt(kv[1]);
                case "bucket" -> bucketKind = kv[1];
                case "scheme" -> {
                    if (!kv[1].equals("http") && !kv[1].equals("https")) throw new IllegalArgumentException("scheme: expected http or https, found " + kv[1]);
                    scheme = kv[1];
                }
                default -> throw new IllegalArgumentException("unknown argument " + a);
            }
        }
        int mibs = (int) (size >> 20);
        Path work = Files.createTempDirectory(base, "dedisk-bucket-bench");
        try (Buckets buckets = switch (bucketKind) {
            case "s3proxy" -> s3proxy(work.resolve("s3proxy"), scheme.equals("https"));
            case "memory" -> memory(latency);
            default -> throw new IllegalArgumentException("bucket: expected s3proxy or memory, found " + bucketKind);
        }) {
            long ideal = ideal(mibs);
            // Warm-up (JIT), not printed: one small round of each kind, so neither measured run pays for compilation.
            run("warm-up", Math.min(mibs, 32), 20, work.resolve("warm-dir"), null, false);
            run("warm-up", Math.min(mibs, 32), 20, work.resolve("warm-cache"), buckets.fresh(), false);
            // A 32 MiB round uploads two segments: too few requests for the JIT to finish with the S3 client's and
            // S3Proxy's paths, which then compiled during the measured import (0.3 CPU s of C2 in the window). A
            // serving pool pays that once; the bench measures the steady state, as it does for the directory pool.
            warmRequests(buckets.fresh());
            // Interleaved rounds, best of each kind: the machine is shared, and whichever runs first would be favoured.
            Run dir = null, b = null;
            long bucketBytes = 0;
            for (int round = 0; round < rounds; round++) {
                dir = best(dir, run("directory", mibs, flushes, work.resolve("dir" + round), null, false));
                ObjectStore bucket = buckets.fresh();
                b = best(b, run("bucket", mibs, flushes, work.resolve("cache" + round), bucket, false));
                bucketBytes = buckets.bytes(bucket);
            }
            Run sync = run("bucket --sync-to-backend", 0, flushes, work.resolve("cache-sync"), buckets.fresh(), true);
            System.out.printf(Locale.ROOT, "bucket pool bench: image %d MiB (ideal %.1f MiB), bucket %s, %d flushes%n", mibs, ideal / 1048576.0,
                    bucketKind.equals("memory") ? "in memory, " + latency + " ms per request" : "S3Proxy in this JVM on loopback (" + scheme + ", objects on disk)", flushes);
            System.out.printf(Locale.ROOT, "%-34s %12s %12s %12s%n", "figure", "directory", "bucket", "ratio");
            System.out.printf(Locale.ROOT, "%-34s %12.1f %12.1f %11.2fx  (target >= 0.8)%n", "import MiB/s", dir.importMiBs(), b.importMiBs(), b.importMiBs() / dir.importMiBs());
            System.out.printf(Locale.ROOT, "%-34s %12.1f %12.1f %11.2fx  (target >= 0.9)%n", "warm read MiB/s", dir.readMiBs(), b.readMiBs(), b.readMiBs() / dir.readMiBs());
            System.out.printf(Locale.ROOT, "%-34s %12.2f %12.2f %11.2fx%n", "import CPU s (process)", dir.importCpuS(), b.importCpuS(), b.importCpuS() / dir.importCpuS());
            for (String g : GROUPS) System.out.printf(Locale.ROOT, "  %-32s %12.2f %12.2f%n", g, dir.importCpuByGroup().get(g), b.importCpuByGroup().get(g));
            System.out.printf(Locale.ROOT, "%-34s %12.2f %12.2f %11.2fx%n", "warm read CPU s (process)", dir.readCpuS(), b.readCpuS(), b.readCpuS() / dir.readCpuS());
            System.out.printf(Locale.ROOT, "%-34s %12.3f %12.3f %11.2fx%n", "FLUSH after 4 KiB write, median ms", dir.flushMedianMs(), b.flushMedianMs(), b.flushMedianMs() / dir.flushMedianMs());
            System.out.printf(Locale.ROOT, "%-34s %12.3f %12.3f%n", "FLUSH p99 ms", dir.flushP99Ms(), b.flushP99Ms());
            System.out.printf(Locale.ROOT, "%-34s %12s %12.3f  (p99 %.3f; waits for a PUT)%n", "FLUSH --sync-to-backend median ms", "", sync.flushMedianMs(), sync.flushP99Ms());
            System.out.printf(Locale.ROOT, "%-34s %12.1f %12.1f %11.2fx ideal (target <= 1.05)%n", "stored MiB (dir: segments; bucket)", dir.storedBytes() / 1048576.0,
                    bucketBytes / 1048576.0, (double) bucketBytes / ideal);
        } finally {
            try (Stream<Path> s = Files.walk(work)) { s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete()); }
        }
    }

    /** Segment-sized and chunk-sized requests, enough for the JIT to compile the request path (no-op in memory). */
    static void warmRequests(ObjectStore store) throws IOException {
        byte[] segment = imageMiB(9, 0);
        for (int i = 0; i < 48; i++) {
            store.putIfAbsent("warm/" + i, segment);
            for (int j = 0; j < 32; j++) store.getRange("warm/" + i, (long) j * 32768, 4096);
        }
        for (int i = 0; i < 48; i++) store.delete("warm/" + i);
    }

    /** The better figures of two runs of one kind (stored bytes are the same every time). */
    static Run best(Run a, Run b) {
        if (a == null) return b;
        Run fasterImport = a.importMiBs() >= b.importMiBs() ? a : b, fasterRead = a.readMiBs() >= b.readMiBs() ? a : b;
        return new Run(a.name(), fasterImport.importMiBs(), fasterRead.readMiBs(), Math.min(a.flushMedianMs(), b.flushMedianMs()),
                Math.min(a.flushP99Ms(), b.flushP99Ms()), a.storedBytes(), fasterImport.importCpuS(), fasterRead.readCpuS(), fasterImport.importCpuByGroup());
    }

    static long ideal(int mibs) {
        Set<BlockName> seen = new HashSet<>();
        byte[] zero = new byte[BS];
        long ideal = 0;
        for (int m = 0; m < mibs; m++) {
            byte[] d = imageMiB(7, m);
            for (int off = 0; off < d.length; off += BS) {
                if (Arrays.equals(d, off, off + BS, zero, 0, BS)) continue;
                if (seen.add(BlockName.of(d, off, BS))) ideal += ChunkCodec.storedLength(d, off);
            }
        }
        return ideal;
    }

    static Run run(String name, int mibs, int flushes, Path dir, ObjectStore store, boolean sync) throws Exception {
        Files.createDirectories(dir);
        io.dedisk.store.PoolStorage storage = store == null ? new io.dedisk.store.DirectoryStorage(new LocalFs(dir))
                : new ObjectStorage(store, new ObjectStorage.CacheDirs() {
                    @Override public LocalFs cacheFor(UUID id) { return new LocalFs(dir); }
                    @Override public String describe(UUID id) { return dir.toString(); }
                }, ObjectBackend.Options.defaults().withSyncToBackend(sync).withReadCache(2L * mibs << 20), name);
        Pool.create(storage, Pool.Options.defaults());
        double importRate = 0, readRate = 0, importCpu = 0, readCpu = 0;
        Map<String, Double> importGroups = Map.of();
        long stored;
        double[] lat = new double[flushes];
        try (Pool p = Pool.open(storage, Pool.OpenOptions.defaults())) {
            long volume = Math.max(mibs, 64) * (1L << 20) + (64L << 20);
            p.createVolume("img", volume);
            VolumeDevice v = p.volume("img").orElseThrow();
            if (mibs > 0) {
                byte[][] image = new byte[mibs][];
                for (int m = 0; m < mibs; m++) image[m] = imageMiB(7, m); // made before the clock starts: not the pool's CPU
                Map<String, Double> g0 = cpuByGroup();
                double c0 = cpuSeconds();
                long t0 = System.nanoTime();
                for (int m = 0; m < mibs; m++) v.write((long) m << 20, ByteBuffer.wrap(image[m]), false);
                v.flush();
                importRate = mibs / ((System.nanoTime() - t0) / 1e9);
                importCpu = cpuSeconds() - c0;
                importGroups = minus(cpuByGroup(), g0);
                ByteBuffer buf = ByteBuffer.allocate(1 << 20);
                for (int pass = 0; pass < 2; pass++) { // the first pass warms the caches (the read cache, for a bucket)
                    double c1 = cpuSeconds();
                    long r0 = System.nanoTime();
                    for (int m = 0; m < mibs; m++) {
                        buf.clear();
                        v.read((long) m << 20, buf);
                    }
                    readRate = mibs / ((System.nanoTime() - r0) / 1e9);
                    readCpu = cpuSeconds() - c1;
                }
            }
            Random r = new Random(3);
            byte[] block = new byte[BS];
            for (int i = 0; i < flushes; i++) {
                r.nextBytes(block);
                v.write(volume - (64L << 20) + (long) r.nextInt(16384) * BS, ByteBuffer.wrap(block), false);
                long f0 = System.nanoTime();
                v.flush();
                lat[i] = (System.nanoTime() - f0) / 1e6;
            }
            stored = p.stats().logBytes();
        }
        Arrays.sort(lat);
        return new Run(name, importRate, readRate, lat[lat.length / 2], lat[(int) (lat.length * 0.99)], stored, importCpu, readCpu, importGroups);
    }
}
