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

    static long jsonLong(String json, String key) {
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("\"" + key + "\":(\\d+)").matcher(json);
        assertTrue(m.find(), key + " in " + json);
        return Long.parseLong(m.group(1));
    }

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

    /** SHA-256 of every file of the pool, by name: what "changes no byte" is checked against. */
    static java.util.Map<String, String> hashes(Path pool) throws Exception {
        java.util.Map<String, String> out = new java.util.TreeMap<>();
        try (var files = Files.walk(pool)) {
            for (Path f : (Iterable<Path>) files.filter(Files::isRegularFile)::iterator) {
                byte[] d = java.security.MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(f));
                out.put(pool.relativize(f).toString(), java.util.HexFormat.of().formatHex(d));
            }
        }
        return out;
    }

    @Test
    void gcThroughTheServerReclaimsAndCheckAndStatsChangeNoByte() throws Exception {
        Path pool = tmp.resolve("pool");
        assertEquals(0, dedisk("create", "--pool", pool.toString(), "--segment-size", "1M", "--index-memory", "exact").exit());
        assertEquals(0, dedisk("volume", "create", "--pool", pool.toString(), "v", "--size", "8M").exit());
        try (ServerProcess server = new ServerProcess(pool).start()) {
            for (int pass = 0; pass < 3; pass++) {
                Path data = tmp.resolve("data" + pass);
                byte[] random = new byte[8 << 20];
                new java.util.Random(pass).nextBytes(random);
                Files.write(data, random);
                Tools.run(120, "nbdcopy", "--flush", data.toString(), server.uri("v"));
            }
            Tools.Result gc = dedisk("gc", "--pool", pool.toString());
            assertEquals(0, gc.exit(), gc.stderr());
            assertTrue(gc.stdout().matches("(?s)cleaned [0-9]+ segments; segments hold .+, .+ before \\(.+ not live: .*"), gc.stdout());
            String json = dedisk("stats", "--pool", pool.toString(), "--json").stdout();
            assertFalse(json.contains("\"segmentsDeleted\":0,"), "gc deleted segments: " + json);
            // 24 MiB written over 8 MiB: what gc leaves is garbage in segments 95 % live or more, and the open segment
            long garbage = jsonLong(json, "garbageBytes"), segments = jsonLong(json, "segmentBytes");
            assertTrue(garbage <= segments / 20 + (1 << 20), "garbage left " + garbage + " of " + segments + " segment bytes: " + json);
            Tools.run(120, "nbdcopy", server.uri("v"), tmp.resolve("back").toString());
        }
        assertArrayEquals(Files.readAllBytes(tmp.resolve("data2")), Files.readAllBytes(tmp.resolve("back")), "gc kept the data");
        var before = hashes(pool);
        Tools.Result check = dedisk("check", "--pool", pool.toString());
        assertEquals(0, check.exit(), check.stdout() + check.stderr());
        assertEquals(0, dedisk("stats", "--pool", pool.toString()).exit());
        assertEquals(0, dedisk("volume", "list", "--pool", pool.toString()).exit());
        assertEquals(before, hashes(pool), "check, stats and volume list change no byte of the pool");
    }
}
