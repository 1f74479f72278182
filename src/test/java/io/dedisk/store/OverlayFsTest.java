package io.dedisk.store;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The copy-on-write overlay: behaves like a filesystem (checked against a model) and never touches the disk. */
class OverlayFsTest {
    @TempDir Path dir;

    static Map<String, byte[]> snapshot(Path root) throws Exception {
        Map<String, byte[]> out = new HashMap<>();
        try (var s = Files.walk(root)) {
            for (Path p : s.filter(Files::isRegularFile).toList()) out.put(root.relativize(p).toString(), Files.readAllBytes(p));
        }
        return out;
    }

    @Test
    void randomOperationsMatchAModelAndLeaveTheDiskAlone() throws Exception {
        for (long seed = 1; seed <= 20; seed++) {
            Path root = Files.createDirectories(dir.resolve("s" + seed));
            Files.createDirectories(root.resolve("sub"));
            SplittableRandom r = new SplittableRandom(seed);
            Map<String, byte[]> model = new HashMap<>();
            for (String name : List.of("a", "b", "sub/c")) {
                byte[] content = new byte[r.nextInt(1, 5000)];
                r.nextBytes(content);
                Files.write(root.resolve(name), content);
                model.put(name, content);
            }
            Map<String, byte[]> before = snapshot(root);
            List<String> names = List.of("a", "b", "sub/c", "d", "sub/e");
            try (OverlayFs fs = new OverlayFs(root)) {
                for (int op = 0; op < 300; op++) {
                    String name = names.get(r.nextInt(names.size()));
                    String why = "seed " + seed + " op " + op + " on " + name;
                    switch (r.nextInt(7)) {
                        case 0, 1 -> { // write
                            byte[] data = new byte[r.nextInt(1, 3000)];
                            r.nextBytes(data);
                            long pos = r.nextInt(6000);
                            try (var h = fs.open(name, true)) { h.write(pos, ByteBuffer.wrap(data)); }
                            byte[] old = model.getOrDefault(name, new byte[0]);
                            byte[] now = Arrays.copyOf(old, (int) Math.max(old.length, pos + data.length));
                            System.arraycopy(data, 0, now, (int) pos, data.length);
                            model.put(name, now);
                        }
                        case 2 -> { // truncate (shrink or grow)
                            if (!model.containsKey(name)) continue;
                            int size = r.nextInt(7000);
                            try (var h = fs.open(name, false)) { h.truncate(size); }
                            model.put(name, Arrays.copyOf(model.get(name), size));
                        }
                        case 3 -> { fs.delete(name); model.remove(name); }
                        case 4 -> { // rename over another name
                            String to = names.get(r.nextInt(names.size()));
                            if (!model.containsKey(name) || to.equals(name)) continue;
                            fs.rename(name, to);
                            model.put(to, model.remove(name));
                        }
                        default -> { // read back a random range and check list/exists
                            assertEquals(model.containsKey(name), fs.exists(name), why);
                            if (!model.containsKey(name)) continue;
                            byte[] expected = model.get(name);
                            try (var h = fs.open(name, false)) {
                                assertEquals(expected.length, h.size(), why);
                                int pos = r.nextInt(expected.length + 1);
                                ByteBuffer got = ByteBuffer.allocate(r.nextInt(1, 8000));
                                int n = h.read(pos, got);
                                assertEquals(Math.min(got.capacity(), expected.length - pos), n, why);
                                assertArrayEquals(Arrays.copyOfRange(expected, pos, pos + n), Arrays.copyOf(got.array(), n), why);
                            }
                        }
                    }
                    List<String> top = model.keySet().stream().filter(n -> !n.contains("/")).sorted().toList();
                    assertEquals(top, fs.list(""), "list of the root, " + why);
                    assertEquals(model.keySet().stream().filter(n -> n.startsWith("sub/")).map(n -> n.substring(4)).sorted().toList(), fs.list("sub"), why);
                }
                for (var e : model.entrySet()) assertArrayEquals(e.getValue(), fs.readAll(e.getKey()), "final content of " + e.getKey());
                fs.writeAtomically("sub/new", new byte[] {1, 2, 3});
                assertArrayEquals(new byte[] {1, 2, 3}, fs.readAll("sub/new"));
            }
            Map<String, byte[]> after = snapshot(root);
            assertEquals(before.keySet(), after.keySet(), "no file created or deleted on disk, seed " + seed);
            for (String k : before.keySet()) assertArrayEquals(before.get(k), after.get(k), "disk file " + k + " unchanged, seed " + seed);
        }
    }

    @Test
    void missingFileIsReportedAndUseAfterCloseIsABug() throws Exception {
        OverlayFs fs = new OverlayFs(dir);
        assertThrows(java.nio.file.NoSuchFileException.class, () -> fs.open("nothing", false));
        assertThrows(IllegalArgumentException.class, () -> fs.open("../escape", true));
        fs.close();
        assertThrows(io.dedisk.util.Check.InvariantViolation.class, () -> fs.open("x", true));
    }
}
