package io.dedisk.e2e;

import static io.dedisk.e2e.ServerProcess.Tools.run;
import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.store.S3ProxyFixture;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * A bucket pool's cache directory is not its home (DESIGN §3, docs/operations.md "Moving a pool"), against real
 * `dedisk serve` processes on S3Proxy: a pool stopped cleanly opens with another, empty cache directory with
 * everything flushed there, and back on its first (now stale) cache too; a pool whose cache is lost at a kill -9 is
 * refused without `--force`, opens from the bucket alone with it and checks clean, and with `--sync-to-backend` keeps
 * everything flushed.
 */
class BucketPoolLifecycleTest {
    @RegisterExtension static final S3ProxyFixture S3 = new S3ProxyFixture();
    @TempDir Path tmp;

    /** 1 MiB regions at i MiB, i < count, written with pattern first+i and flushed. */
    private static List<Integer> writeFlushed(String uri, int first, int count) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("qemu-io", "-f", "raw"));
        List<Integer> patterns = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            cmd.addAll(List.of("-c", "write -P " + (first + i) + " " + ((long) i << 20) + " 1M"));
            patterns.add(first + i);
        }
        cmd.addAll(List.of("-c", "flush", uri));
        run(cmd, 120);
        return patterns;
    }

    private static void deleteTree(Path dir) throws IOException {
        try (var files = Files.walk(dir)) {
            for (Path p : files.sorted(Comparator.reverseOrder()).toList()) Files.delete(p);
        }
    }

    /**
     * One pool through a host's life (one test: a bucket pool's create and check cost seconds each): written on host A
     * and stopped; moved to host B's empty cache; back on A's stale cache; then A's cache is lost twice at a kill -9.
     */
    @Test
    void aBucketPoolMovesBetweenCachesAndOpensFromTheBucketWhenItsCacheIsLost() throws Exception {
        TestPool hostA = TestPool.bucket(S3, tmp.resolve("cache-a"));
        TestPool hostB = hostA.withCache(tmp.resolve("cache-b"));
        ServerProcess.cli(hostA, "create", "--segment-size", "1M");
        ServerProcess.cli(hostA, "volume", "create", "vm", "--size", "64M");
        List<Integer> flushed;
        try (ServerProcess a = new ServerProcess(hostA).start()) {
            flushed = writeFlushed(a.uri("vm"), 40, 24);
        }
        // Moved: a clean stop uploads everything, the other cache starts empty, no --force is needed.
        assertFalse(Files.exists(hostB.cache()), "host B starts with no cache");
        try (ServerProcess b = new ServerProcess(hostB).start()) {
            KillNineTest.verifyFlushed(b.uri("vm"), flushed, "moved to an empty cache");
            List<Integer> moved = writeFlushed(b.uri("vm"), 80, 8);
            for (int i = 0; i < moved.size(); i++) flushed.set(i, moved.get(i));
        }
        // Back on host A, whose cache is stale now (B wrote since): it is dropped, and A reads what B wrote.
        ServerProcess server = new ServerProcess(hostA);
        try {
            // With --sync-to-backend a FLUSH returns once the data is in the bucket: the cache may go at any moment.
            server.start("--sync-to-backend");
            KillNineTest.verifyFlushed(server.uri("vm"), flushed, "moved back to the first, stale cache");
            flushed = writeFlushed(server.uri("vm"), 120, 32); // regions 0-31, all now waiting for their PUT on each FLUSH
            Process inflight = new ProcessBuilder("qemu-io", "-f", "raw", "-c", "write -P 0xee 32M 16M", server.uri("vm"))
                    .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
            Thread.sleep(150);
            server.kill9();
            inflight.waitFor();
            deleteTree(hostA.cache());
            ServerProcess.Tools.Result refused = ServerProcess.cliAllowingFailure(hostA, "serve", "--listen", "127.0.0.1:" + server.port);
            assertEquals(1, refused.exit(), "an empty cache does not own the pool: " + refused.stdout() + refused.stderr());
            assertTrue(refused.stderr().contains("--force"), refused.stderr());
            server.start("--force");
            KillNineTest.verifyFlushed(server.uri("vm"), flushed, "after the cache was lost with --sync-to-backend");

            // Without it the bucket holds a prefix of the history: the pool opens, every block old or new, never torn.
            run(120, "qemu-io", "-f", "raw", "-c", "write -P 0x33 32M 16M", "-c", "flush", server.uri("vm"));
            server.kill9();
            deleteTree(hostA.cache());
            server.start("--force");
            KillNineTest.verifyFlushed(server.uri("vm"), flushed, "the data from before, in the bucket, after a second cache loss");
            Path dump = tmp.resolve("dump.raw");
            run(120, "nbdcopy", server.uri("vm"), dump.toString());
            byte[] all = Files.readAllBytes(dump);
            for (int b = (32 << 20) / 4096; b < (48 << 20) / 4096; b++) {
                byte first = all[b * 4096];
                assertTrue(first == 0 || first == (byte) 0xee || first == 0x33, "block " + b + " is one of its writes, found " + first);
                for (int i = 1; i < 4096; i++) assertEquals(first, all[b * 4096 + i], "block " + b + " is not torn");
            }
        } finally {
            server.close();
        }
        ServerProcess.Tools.Result check = ServerProcess.cliAllowingFailure(hostA, "check");
        assertEquals(0, check.exit(), check.stdout() + check.stderr());
        assertTrue(check.stdout().contains("pool is consistent"), check.stdout());
    }
}
