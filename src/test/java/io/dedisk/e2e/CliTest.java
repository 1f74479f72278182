package io.dedisk.e2e;

import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.e2e.ServerProcess.Tools;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The operator's CLI: errors, stats and volume changes while served, fencing of a second process, check. */
class CliTest {
    @TempDir Path tmp;

    static Tools.Result dedisk(String... args) throws Exception {
        return Tools.runAllowingFailure(ServerProcess.dediskCommand(args), 120);
    }

    @Test
    void lifecycleErrorsAndServedOperations() throws Exception {
        Path pool = tmp.resolve("pool");
        assertEquals(0, dedisk("create", "--pool", pool.toString()).exit());
        Tools.Result again = dedisk("create", "--pool", pool.toString());
        assertEquals(1, again.exit());
        assertTrue(again.stderr().contains("already exists"), again.stderr());
        Files.createDirectories(tmp.resolve("busy"));
        Files.writeString(tmp.resolve("busy/file"), "x");
        assertTrue(dedisk("create", "--pool", tmp.resolve("busy").toString()).stderr().contains("not empty"));
        Tools.Result badSize = dedisk("volume", "create", "--pool", pool.toString(), "a", "--size", "ten gigs");
        assertEquals(1, badSize.exit());
        assertTrue(badSize.stderr().contains("invalid size"), badSize.stderr());
        assertTrue(dedisk("volume", "create", "--pool", pool.toString(), "a", "--size", "1000").stderr().contains("multiple of 4096"));
        assertEquals(0, dedisk("volume", "create", "--pool", pool.toString(), "a", "--size", "64M").exit());

        try (ServerProcess server = new ServerProcess(pool).start()) {
            // While served, the CLI asks the server; a second process cannot open the pool.
            assertEquals(0, dedisk("volume", "create", "--pool", pool.toString(), "b", "--size", "32M").exit());
            String list = dedisk("volume", "list", "--pool", pool.toString()).stdout();
            assertTrue(list.contains("a ") && list.contains("b "), list);
            Tools.run(60, "qemu-io", "-f", "raw", "-c", "write -P 7 0 1M", "-c", "flush", server.uri("b"));
            Tools.run(60, "qemu-io", "-f", "raw", "-c", "write -P 7 0 1M", "-c", "flush", server.uri("a"));
            String json = dedisk("stats", "--pool", pool.toString(), "--json").stdout();
            assertTrue(json.contains("\"mappedBlocks\":512"), json);
            assertTrue(json.contains("\"uniqueChunks\":1,"), "2 MiB of one pattern is one chunk: " + json);
            String text = dedisk("stats", "--pool", pool.toString()).stdout();
            assertTrue(text.contains("dedup ratio") && text.contains("512.00"), text);
            Tools.Result fenced = dedisk("check", "--pool", pool.toString());
            assertEquals(1, fenced.exit());
            assertTrue(fenced.stderr().contains("in use by another dedisk process"), fenced.stderr());
            assertEquals(0, dedisk("volume", "delete", "--pool", pool.toString(), "b").exit());
            assertTrue(Tools.run(60, "nbdinfo", "--list", "nbd://127.0.0.1:" + server.port).stdout().contains("export=\"a\""));
        }
        Tools.Result check = dedisk("check", "--pool", pool.toString());
        assertEquals(0, check.exit(), check.stdout() + check.stderr());
        assertTrue(check.stdout().contains("pool is consistent"), check.stdout());
        // Damage a sealed record body and check must say so (exit 1).
        Path seg = pool.resolve("segments").resolve("0000000000000001.seg");
        byte[] bytes = Files.readAllBytes(seg);
        bytes[bytes.length - 10] ^= 0x40;
        Files.write(seg, bytes);
        Tools.Result damaged = dedisk("check", "--pool", pool.toString());
        assertEquals(1, damaged.exit(), damaged.stdout());
        assertTrue(damaged.stdout().contains("PROBLEM"), damaged.stdout());
    }
}
