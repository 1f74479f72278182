package io.dedisk.e2e;

import static io.dedisk.e2e.ServerProcess.Tools.run;
import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.store.S3ProxyFixture;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The durability contract against the real server: data written and flushed survives `kill -9`; a write in
 * flight at the kill leaves each 4 KiB block either old or new, never torn or foreign. Each cycle writes a
 * flushed region, starts an unflushed writer, kills the server at a random moment, restarts and verifies
 * everything written so far. Each cycle also overwrites a region with fresh random data, so the background cleaner
 * and checkpoints are at work when the kill lands. At the end, `dedisk gc` and `dedisk check` must leave a sound pool
 * whose first segments are gone. It runs on a pool directory and on a bucket pool (S3Proxy in this JVM; the restart
 * reuses the cache directory, which replays what was flushed but not yet uploaded). The cycle counts are
 * -Ddedisk.killCycles (default 3) and -Ddedisk.bucketKillCycles (default 2: a bucket pool opens slower); the long
 * run uses 200 and 50.
 */
class KillNineTest {
    @TempDir Path tmp;

    @ParameterizedTest(name = "{0} pool")
    @ValueSource(strings = {"directory", "bucket"})
    void flushedWritesSurviveKill9(String kind) throws Exception {
        try (S3ProxyFixture s3 = new S3ProxyFixture()) {
            if (kind.equals("bucket")) s3.start();
            int cycles = kind.equals("bucket") ? Integer.getInteger("dedisk.bucketKillCycles", 2) : Integer.getInteger("dedisk.killCycles", 3);
            killCycles(TestPool.of(kind, tmp, s3), cycles);
        }
    }

    private void killCycles(TestPool pool, int cycles) throws Exception {
        long seed = Long.getLong("dedisk.seed", System.nanoTime());
        Random r = new Random(seed);
        ServerProcess.cli(pool, "create", "--segment-size", "1M", "--checkpoint-interval", "4M");
        ServerProcess.cli(pool, "volume", "create", "vm", "--size", "128M");
        ServerProcess server = new ServerProcess(pool);
        // Flushed region i (1 MiB at i MiB, i < 64) holds flushedPatterns[i]; later cycles reuse regions, so a region
        // is checked against its latest flushed pattern. [64M, 128M) belongs to the unflushed and churn writers.
        List<Integer> flushedPatterns = new ArrayList<>();
        try {
            for (int cycle = 0; cycle < cycles; cycle++) {
                server.start();
                String u = server.uri("vm");
                verifyFlushed(u, flushedPatterns, "seed " + seed + " cycle " + cycle);
                int pattern = 1 + cycle % 250;
                // A flushed region per cycle at 1 MiB * (cycle mod 64), 1 MiB long.
                int region = cycle % 64;
                long off = (long) region << 20;
                run(120, "qemu-io", "-f", "raw", "-c", "write -P " + pattern + " " + off + " 1M", "-c", "flush", u);
                if (region < flushedPatterns.size()) flushedPatterns.set(region, pattern); else flushedPatterns.add(pattern);
                // Fresh random overwrites of [96M, 128M), flushed: garbage for the cleaner, which then runs while we kill.
                run(120, "fio", "--name=churn", "--ioengine=nbd", "--uri=" + u, "--rw=randwrite", "--bs=64k", "--size=32M",
                        "--offset=96M", "--io_size=8M", "--refill_buffers", "--randrepeat=0", "--iodepth=8", "--end_fsync=1",
                        "--output=/dev/null");
                // An unflushed writer on [64M, 96M): every block is either its old content or 0xee afterwards.
                Process inflight = new ProcessBuilder("qemu-io", "-f", "raw", "-c", "write -P 0xee 64M 32M", u)
                        .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
                Thread.sleep(r.nextInt(400));
                server.kill9();
                inflight.waitFor();
            }
            server.start();
            verifyFlushed(server.uri("vm"), flushedPatterns, "seed " + seed + " final");
            Path dump = tmp.resolve("dump.raw");
            run(120, "nbdcopy", server.uri("vm"), dump.toString());
            byte[] all = Files.readAllBytes(dump);
            for (int b = (64 << 20) / 4096; b < (96 << 20) / 4096; b++) {
                byte first = all[b * 4096];
                assertTrue(first == 0 || first == (byte) 0xee, "block " + b + " is old or new, found " + first);
                for (int i = 1; i < 4096; i++) assertEquals(first, all[b * 4096 + i], "block " + b + " is not torn (seed " + seed + ")");
            }
            ServerProcess.cli(pool, "gc");
            verifyFlushed(server.uri("vm"), flushedPatterns, "seed " + seed + " after gc");
        } finally {
            server.close();
        }
        // A clean shutdown after all those crashes leaves a pool that opens and adds up, and GC deleted segments.
        String stats = ServerProcess.cli(pool, "stats", "--json");
        assertTrue(stats.contains("\"mode\":\"normal\""), stats);
        assertFalse(pool.segmentNames().contains("0000000000000001.seg"), "cleaned segments were deleted: " + pool.segmentNames());
        ServerProcess.Tools.Result check = ServerProcess.cliAllowingFailure(pool, "check");
        assertEquals(0, check.exit(), check.stdout() + check.stderr());
    }

    /** Region i (1 MiB at i MiB) reads as patterns[i]. */
    static void verifyFlushed(String uri, List<Integer> patterns, String what) throws Exception {
        if (patterns.isEmpty()) return;
        List<String> cmd = new ArrayList<>(List.of("qemu-io", "-f", "raw", "-r"));
        for (int i = 0; i < patterns.size(); i++) cmd.addAll(List.of("-c", "read -P " + patterns.get(i) + " " + ((long) i << 20) + " 1M"));
        cmd.add(uri);
        String out = run(cmd, 120).stdout();
        assertFalse(out.contains("Pattern verification failed"), what + ": flushed data lost\n" + out);
        assertEquals(patterns.size(), out.lines().filter(l -> l.startsWith("read ")).count(), what + "\n" + out);
    }
}
