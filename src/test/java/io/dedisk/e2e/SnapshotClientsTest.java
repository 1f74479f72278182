package io.dedisk.e2e;

import static io.dedisk.e2e.ServerProcess.Tools.run;
import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.e2e.ServerProcess.Tools;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The golden-image workflow with real clients against a real `dedisk serve`, every step through the running server:
 * import an image, snapshot it, clone it, write the clone with qemu-io, compare the snapshot's export with the image
 * (qemu-img compare), map the clone (nbdinfo --map), be refused a write to the snapshot, roll back, delete the
 * snapshot under its clone, and end with `dedisk check` clean.
 */
class SnapshotClientsTest {
    @TempDir Path tmp;

    static String cli(Path pool, String... args) throws Exception {
        String[] all = new String[args.length + 2];
        System.arraycopy(args, 0, all, 0, args.length);
        all[args.length] = "--pool";
        all[args.length + 1] = pool.toString();
        Tools.Result r = Tools.runAllowingFailure(ServerProcess.dediskCommand(all), 120);
        assertEquals(0, r.exit(), String.join(" ", args) + ": " + r.stdout() + r.stderr());
        return r.stdout();
    }

    static boolean identical(Path image, String uri) throws Exception {
        Tools.Result r = Tools.runAllowingFailure(List.of("qemu-img", "compare", "-f", "raw", "-F", "raw", image.toString(), uri), 180);
        assertTrue(r.exit() == 0 || r.exit() == 1, r.stdout() + r.stderr());
        return r.exit() == 0;
    }

    /** nbdinfo --map's extents as "offset length description" lines. */
    static List<String> map(String uri) throws Exception {
        return run(60, "nbdinfo", "--map", uri).stdout().lines().map(l -> l.trim().replaceAll("\\s+", " ")).toList();
    }

    /** The description of the extent holding byte {@code offset} in nbdinfo --map lines ("offset length type description"). */
    static String extentAt(List<String> map, long offset) {
        for (String l : map) {
            String[] f = l.split(" ", 4);
            long start = Long.parseLong(f[0]), length = Long.parseLong(f[1]);
            if (offset >= start && offset < start + length) return f[3];
        }
        throw new AssertionError("no extent holds offset " + offset + ": " + map);
    }

    @Test
    void goldenImageSnapshotCloneRollbackDelete() throws Exception {
        Path pool = tmp.resolve("pool");
        Path image = RealClientsTest.image(tmp, "gold.raw", 24 << 20, 7);
        ServerProcess.cli("create", "--pool", pool.toString());
        ServerProcess.cli("volume", "create", "--pool", pool.toString(), "gold", "--size", "24M");
        try (ServerProcess server = new ServerProcess(pool).start()) {
            run(180, "qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", image.toString(), server.uri("gold"));
            cli(pool, "snapshot", "create", "gold", "base");
            // Writes after the snapshot change the volume, never the snapshot.
            run(60, "qemu-io", "-f", "raw", "-c", "write -P 0x42 0 2M", "-c", "flush", server.uri("gold"));
            assertTrue(identical(image, server.uri("gold@base")), "the snapshot's export is the image it was taken from");
            assertFalse(identical(image, server.uri("gold")), "the volume was written after it");

            // A write to the snapshot's export is refused: it is exported read-only.
            assertTrue(run(60, "nbdinfo", server.uri("gold@base")).stdout().contains("is_read_only: true"));
            Tools.Result refused = Tools.runAllowingFailure(List.of("qemu-io", "-f", "raw", "-c", "write -P 1 0 4k", server.uri("gold@base")), 60);
            String said = refused.stdout() + refused.stderr();
            assertTrue(refused.exit() != 0 || said.contains("ermission") || said.contains("ead-only") || said.contains("not permitted"), "write to a snapshot: " + said);
            assertTrue(identical(image, server.uri("gold@base")), "and it stays as it was");

            // A clone: the snapshot's map until written; qemu-io writes and reads it.
            cli(pool, "clone", "gold@base", "vm1");
            assertEquals(map(server.uri("gold@base")), map(server.uri("vm1")), "a new clone maps like its snapshot");
            assertTrue(map(server.uri("vm1")).stream().anyMatch(l -> l.contains("hole")), "holes of the image stay holes");
            String out = run(60, "qemu-io", "-f", "raw", "-c", "write -P 0x77 3M 1M", "-c", "read -P 0x77 3M 1M", "-c", "flush", server.uri("vm1")).stdout();
            assertFalse(out.contains("Pattern verification failed"), out);
            assertTrue(extentAt(map(server.uri("gold@base")), 3 << 20).contains("hole"), "MiB 3 of the image is zeros");
            assertEquals("data", extentAt(map(server.uri("vm1")), 3 << 20), "the clone's write is data: " + map(server.uri("vm1")));
            assertTrue(identical(image, server.uri("gold@base")), "the snapshot under the written clone");

            String list = cli(pool, "volume", "list");
            assertTrue(list.lines().anyMatch(l -> l.startsWith("vm1 ") && l.contains("clone") && l.endsWith("gold@base")), list);
            assertTrue(list.lines().anyMatch(l -> l.startsWith("gold@base ") && l.contains("snapshot") && l.endsWith("gold")), list);
            assertTrue(cli(pool, "snapshot", "list", "gold").contains("gold@base"));

            // Rollback through the server: the volume is the image again, for clients already connected too.
            cli(pool, "volume", "rollback", "gold@base");
            assertTrue(identical(image, server.uri("gold")), "rolled back");

            // The snapshot under a clone can be deleted: the clone keeps what it needs.
            cli(pool, "snapshot", "delete", "gold", "base");
            assertFalse(cli(pool, "volume", "list").contains("gold@base "));
            out = run(60, "qemu-io", "-f", "raw", "-c", "read -P 0x77 3M 1M", server.uri("vm1")).stdout();
            assertFalse(out.contains("Pattern verification failed"), out);
        }
        Tools.Result check = Tools.runAllowingFailure(ServerProcess.dediskCommand("check", "--pool", pool.toString()), 120);
        assertEquals(0, check.exit(), check.stdout() + check.stderr());
    }
}
