package io.dedisk.e2e;

import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.e2e.ServerProcess.Tools;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * `dedisk import`, `export` and `volume rename` as operators run them, offline and through a running server, with
 * real qemu-img images (raw and qcow2 with data, repeats, zeros and holes): round trips compared by qemu-img
 * compare, holes and zeros costing nothing, dedup across imports, and no half volume after a failed or killed import.
 */
class ImportExportTest {
    static final int BS = 4096;
    @TempDir Path tmp;
    Path pool;
    Path raw;
    Path qcow2;
    /** Non-zero 4 KiB blocks of the image, and how many of them are distinct. */
    long dataBlocks;
    long distinctBlocks;

    @BeforeEach
    void images() throws Exception {
        pool = tmp.resolve("pool");
        assertEquals(0, CliTest.dedisk("create", "--pool", pool.toString(), "--segment-size", "1M", "--index-memory", "exact").exit());
        // 64 MiB: 6 MiB random at 0, 2 MiB of it again at 20M, written zeros at 30M, text at 40M, holes elsewhere.
        raw = tmp.resolve("src.raw");
        Random r = new Random(10);
        byte[] random = new byte[6 << 20];
        r.nextBytes(random);
        byte[] text = new byte[3 << 20];
        byte[] line = "golden image line, compresses well\n".getBytes();
        for (int i = 0; i < text.length; i++) text[i] = line[i % line.length];
        try (RandomAccessFile f = new RandomAccessFile(raw.toFile(), "rw")) {
            f.setLength(64 << 20);
            f.seek(0);
            f.write(random);
            f.seek(20 << 20);
            f.write(random, 0, 2 << 20);
            f.seek(30 << 20);
            f.write(new byte[1 << 20]);
            f.seek(40 << 20);
            f.write(text);
        }
        byte[] all = Files.readAllBytes(raw);
        Set<String> distinct = new HashSet<>();
        for (int off = 0; off < all.length; off += BS) {
            byte[] b = Arrays.copyOfRange(all, off, off + BS);
            if (Arrays.equals(b, new byte[BS])) continue;
            dataBlocks++;
            distinct.add(Arrays.toString(java.security.MessageDigest.getInstance("SHA-256").digest(b)));
        }
        distinctBlocks = distinct.size();
        qcow2 = tmp.resolve("src.qcow2");
        Tools.run(60, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw.toString(), qcow2.toString());
    }

    static Tools.Result dedisk(String... args) throws Exception { return CliTest.dedisk(args); }

    static long statsField(Path pool, String field) throws Exception {
        String json = dedisk("stats", "--pool", pool.toString(), "--json").stdout();
        Matcher m = Pattern.compile("\"" + field + "\":(\\d+)").matcher(json);
        assertTrue(m.find(), field + " in " + json);
        return Long.parseLong(m.group(1));
    }

    static void assertSameImage(Path source, String sourceFormat, String copy, String copyFormat) throws Exception {
        Tools.Result cmp = Tools.runAllowingFailure(List.of("qemu-img", "compare", "-f", sourceFormat, "-F", copyFormat, source.toString(), copy), 60);
        assertEquals(0, cmp.exit(), "qemu-img compare " + source + " " + copy + ": " + cmp.stdout() + cmp.stderr());
    }

    /** Bytes the file occupies on disk (holes take none). */
    static long allocated(Path file) throws Exception {
        return Long.parseLong(Tools.run(10, "stat", "-c", "%b", file.toString()).stdout().trim()) * 512;
    }

    @Test
    void offlineImportOfRawAndQcow2IsSparseDedupedAndExportsBackIdentical() throws Exception {
        Tools.Result a = dedisk("import", "--pool", pool.toString(), raw.toString(), "a");
        assertEquals(0, a.exit(), a.stderr());
        assertTrue(a.stdout().contains("imported " + raw + " (raw, 64.0 MiB) into volume a offline, read directly,"), a.stdout());
        assertTrue(a.stderr().contains("import a") && a.stderr().contains("64/64MiB"), "a progress bar on stderr: " + a.stderr());
        assertEquals(dataBlocks, statsField(pool, "mappedBlocks"), "only data blocks are mapped: holes and zeros cost nothing");
        assertEquals(0, statsField(pool, "zeroBlocks"), "zero blocks are not even sent");
        assertEquals(distinctBlocks, statsField(pool, "uniqueChunks"), "the repeated 2 MiB is stored once");

        Tools.Result b = dedisk("import", "--pool", pool.toString(), "--no-progress", qcow2.toString(), "b");
        assertEquals(0, b.exit(), b.stderr());
        assertTrue(b.stdout().contains("(qcow2, 64.0 MiB) into volume b offline, qemu-img over NBD,"), b.stdout());
        assertTrue(b.stdout().contains(String.format(java.util.Locale.ROOT, "dedup 100%% of %,d blocks", dataBlocks)), "the same image again is all duplicates: " + b.stdout());
        assertFalse(b.stderr().contains("64/64MiB"), "--no-progress: " + b.stderr());
        assertEquals(distinctBlocks, statsField(pool, "uniqueChunks"), "the second import stores no chunk");

        Path outRaw = tmp.resolve("a.raw"), outQcow = tmp.resolve("b.qcow2");
        Tools.Result ea = dedisk("export", "--pool", pool.toString(), "a", outRaw.toString());
        assertEquals(0, ea.exit(), ea.stderr());
        assertSameImage(raw, "raw", outRaw.toString(), "raw");
        assertTrue(allocated(outRaw) <= dataBlocks * BS, "sparse export: " + allocated(outRaw) + " bytes allocated for " + dataBlocks * BS + " of data");
        assertEquals(0, dedisk("export", "--pool", pool.toString(), "--format", "qcow2", "--no-progress", "b", outQcow.toString()).exit());
        assertSameImage(raw, "raw", outQcow.toString(), "qcow2");
        assertEquals("qcow2", Tools.run(10, "qemu-img", "info", "--output=json", outQcow.toString()).stdout().replaceAll("(?s).*\"format\": \"([^\"]+)\".*", "$1"));

        Tools.Result exists = dedisk("export", "--pool", pool.toString(), "a", outRaw.toString());
        assertEquals(1, exists.exit());
        assertTrue(exists.stderr().contains("exists; use --force"), exists.stderr());
        assertEquals(0, dedisk("export", "--pool", pool.toString(), "--force", "--no-progress", "b", outRaw.toString()).exit());
        assertSameImage(raw, "raw", outRaw.toString(), "raw");
        assertFalse(Files.exists(tmp.resolve("a.raw.part")), "no temporary file left");
        Tools.Result check = dedisk("check", "--pool", pool.toString());
        assertEquals(0, check.exit(), check.stdout());
    }

    @Test
    void throughTheServerImportExportAndRenameSurviveAKill() throws Exception {
        try (ServerProcess server = new ServerProcess(pool).start()) {
            Tools.Result q = dedisk("import", "--pool", pool.toString(), qcow2.toString(), "golden");
            assertEquals(0, q.exit(), q.stderr());
            assertTrue(q.stdout().matches("(?s).*into volume golden through the server \\(control [0-9.:]+\\), qemu-img over NBD,.*"), q.stdout());
            assertSameImage(raw, "raw", server.uri("golden"), "raw");
            Tools.Result r = dedisk("import", "--pool", pool.toString(), "--no-progress", "--size", "128M", raw.toString(), "copy");
            assertEquals(0, r.exit(), r.stderr());
            assertTrue(r.stdout().contains("dedup 100%"), r.stdout());
            assertTrue(dedisk("volume", "list", "--pool", pool.toString()).stdout().matches("(?s).*copy +volume +128\\.0 MiB.*"), "--size sets the volume size");
            assertEquals(distinctBlocks, statsField(pool, "uniqueChunks"));
            Path out = tmp.resolve("served.raw");
            assertEquals(0, dedisk("export", "--pool", pool.toString(), "--no-progress", "golden", out.toString()).exit());
            assertSameImage(raw, "raw", out.toString(), "raw");

            Tools.Result inUse = dedisk("volume", "rename", "--pool", pool.toString(), "golden", "copy");
            assertEquals(1, inUse.exit());
            assertTrue(inUse.stderr().contains("a volume named 'copy' exists"), inUse.stderr());
            Tools.Result renamed = dedisk("volume", "rename", "--pool", pool.toString(), "golden", "base");
            assertEquals(0, renamed.exit(), renamed.stderr());
            assertTrue(renamed.stdout().contains("renamed volume golden to base"), renamed.stdout());
            assertSameImage(raw, "raw", server.uri("base"), "raw");
            // A client connected to "copy" while it is renamed: its connection goes on, on the renamed volume.
            String renameCopy = String.join("\n", ServerProcess.dediskCommand("volume", "rename", "--pool", pool.toString(), "copy", "copy2"));
            String script = String.join("\n",
                    "import os, subprocess",
                    "h.pwrite(b'\\x5a' * 4096, 0)",
                    "subprocess.run(os.environ['RENAME'].split('\\n'), check=True, stdout=subprocess.DEVNULL)",
                    "h.pwrite(b'\\x5b' * 4096, 4096)",
                    "h.flush()",
                    "assert h.pread(8192, 0) == b'\\x5a' * 4096 + b'\\x5b' * 4096",
                    "print('connection kept')");
            ProcessBuilder nbdsh = new ProcessBuilder("/usr/bin/nbdsh", "-u", server.uri("copy"), "-c", script).redirectErrorStream(true);
            nbdsh.environment().put("RENAME", renameCopy);
            nbdsh.environment().put("PATH", "/usr/bin:/bin"); // nbdsh needs the system python3 (its nbd module)
            Process sh = nbdsh.start();
            String said = new String(sh.getInputStream().readAllBytes());
            assertTrue(sh.waitFor(60, TimeUnit.SECONDS) && sh.exitValue() == 0 && said.contains("connection kept"), said);
            Tools.run(60, "qemu-io", "-f", "raw", "-c", "read -P 0x5a 0 4k", "-c", "read -P 0x5b 4k 4k", server.uri("copy2"));
            assertFalse(Tools.run(60, "nbdinfo", "--list", "nbd://127.0.0.1:" + server.port).stdout().contains("export=\"copy\""), "new connections see the new name");
            server.kill9(); // the renames were durable when the commands returned
            server.start();
            String list = dedisk("volume", "list", "--pool", pool.toString()).stdout();
            assertTrue(list.contains("base ") && list.contains("copy2 ") && !list.contains("golden"), list);
            assertSameImage(raw, "raw", server.uri("base"), "raw");
        }
        // Offline rename, then the pool is consistent.
        assertEquals(0, dedisk("volume", "rename", "--pool", pool.toString(), "base", "golden").exit());
        assertTrue(dedisk("volume", "list", "--pool", pool.toString()).stdout().contains("golden "));
        assertEquals(0, dedisk("check", "--pool", pool.toString()).exit());
    }

    /** A server that requires TLS on NBD: a raw image is still imported (the server reads it); what needs qemu-img over NBD is refused, leaving nothing. */
    @Test
    void aServerRequiringTlsImportsRawImagesAndRefusesWhatNeedsQemuImg() throws Exception {
        io.dedisk.nbd.TestCertificates certs = io.dedisk.nbd.TestCertificates.make(Files.createDirectories(tmp.resolve("certs")));
        try (ServerProcess server = new ServerProcess(pool).start("--tls=require", "--tls-cert", certs.serverCert.toString(), "--tls-key", certs.serverKey.toString())) {
            Tools.Result a = dedisk("import", "--pool", pool.toString(), "--no-progress", raw.toString(), "a");
            assertEquals(0, a.exit(), a.stderr());
            assertTrue(a.stdout().contains("read by the server"), a.stdout());
            Tools.Result q = dedisk("import", "--pool", pool.toString(), "--no-progress", qcow2.toString(), "q");
            assertEquals(1, q.exit(), q.stdout());
            assertTrue(q.stderr().contains("requires TLS on NBD (--tls=require)"), q.stderr());
            Tools.Result e = dedisk("export", "--pool", pool.toString(), "--no-progress", "a", tmp.resolve("out.raw").toString());
            assertEquals(1, e.exit(), e.stdout());
            assertTrue(e.stderr().contains("requires TLS on NBD (--tls=require)"), e.stderr());
            String volumes = dedisk("volume", "list", "--pool", pool.toString()).stdout();
            assertTrue(volumes.contains("a ") && !volumes.contains("q.importing") && !volumes.contains("q "), volumes);
        }
        assertEquals(0, dedisk("check", "--pool", pool.toString()).exit());
    }

    @Test
    void aServedRawImportIsReadByTheServerSparseDedupedAndIdentical() throws Exception {
        try (ServerProcess server = new ServerProcess(pool).start()) {
            // The control file (docs/format.md): "ADDRESS TOKEN\n", readable by the pool's owner only.
            Path control = pool.resolve("control");
            assertTrue(Files.readString(control).matches("127\\.0\\.0\\.1:[0-9]+ [0-9a-f]{64}\n"), Files.readString(control));
            assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(control)));
            Tools.Result a = dedisk("import", "--pool", pool.toString(), raw.toString(), "a");
            assertEquals(0, a.exit(), a.stderr());
            assertTrue(a.stdout().matches("(?s)imported " + Pattern.quote(raw.toString()) + " \\(raw, 64\\.0 MiB\\) into volume a through the server \\(control [0-9.:]+\\), read by the server,.*"), a.stdout());
            assertTrue(a.stderr().contains("import a") && a.stderr().contains("64/64MiB"), "the server's progress reaches the bar: " + a.stderr());
            Matcher read = Pattern.compile("imported " + Pattern.quote(raw.toString()) + " into a\\.importing \\(67108864 bytes, read by the server; (\\d+) bytes of data extents\\)")
                    .matcher(server.log());
            assertTrue(read.find(), server.log());
            long extents = Long.parseLong(read.group(1));
            assertTrue(extents >= dataBlocks * BS && extents < 64 << 20, "the holes were found (SEEK_DATA) and not read: " + extents + " bytes of data extents");
            assertSameImage(raw, "raw", server.uri("a"), "raw");
            assertEquals(dataBlocks, statsField(pool, "mappedBlocks"), "only data blocks are mapped: holes and zeros cost nothing");
            assertEquals(0, statsField(pool, "zeroBlocks"), "zero blocks are not even written");
            assertEquals(distinctBlocks, statsField(pool, "uniqueChunks"), "the repeated 2 MiB is stored once");
            // A relative path: the CLI names the file absolutely (the server's directory is not the CLI's).
            ProcessBuilder relative = new ProcessBuilder(ServerProcess.dediskCommand("import", "--pool", pool.toString(), "--no-progress", raw.getFileName().toString(), "b"))
                    .directory(tmp.toFile()).redirectErrorStream(true);
            Process r = relative.start();
            String said = new String(r.getInputStream().readAllBytes());
            assertTrue(r.waitFor(60, TimeUnit.SECONDS) && r.exitValue() == 0, said);
            assertTrue(said.contains("read by the server") && said.contains(String.format(java.util.Locale.ROOT, "dedup 100%% of %,d blocks", dataBlocks)), said);
            assertSameImage(raw, "raw", server.uri("b"), "raw");
            assertFalse(dedisk("volume", "list", "--pool", pool.toString()).stdout().contains(".importing"));
        }
        assertEquals(0, dedisk("check", "--pool", pool.toString()).exit());
    }

    @Test
    void aKilledServedImportStopsTheServersCopyAndLeavesNoVolume() throws Exception {
        // 512 MiB of distinct (compressible) blocks: long enough to kill the CLI in the middle of the copy.
        Path big = tmp.resolve("big.raw");
        long size = 512L << 20;
        try (var out = java.nio.channels.FileChannel.open(big, java.nio.file.StandardOpenOption.CREATE_NEW, java.nio.file.StandardOpenOption.WRITE)) {
            java.nio.ByteBuffer piece = java.nio.ByteBuffer.allocate(1 << 20);
            for (long off = 0; off < size; off += piece.capacity()) {
                piece.clear();
                for (int b = 0; b < piece.capacity(); b += BS) piece.putLong(b, off + b + 1);
                while (piece.hasRemaining()) out.write(piece, off + piece.position());
            }
        }
        try (ServerProcess server = new ServerProcess(pool).start()) {
            Path log = tmp.resolve("killed-import.log");
            Process cli = start(Map.of(), log, "import", "--pool", pool.toString(), big.toString(), "v");
            Pattern progressed = Pattern.compile("\\b([1-9][0-9]*)/512MiB");
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (!progressed.matcher(Files.readString(log)).find()) {
                assertTrue(cli.isAlive() && System.nanoTime() < deadline, "the import shows progress: " + Files.readString(log));
                Thread.sleep(20);
            }
            cli.destroyForcibly().waitFor();
            long stopDeadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            Pattern stopped = Pattern.compile("the import of " + Pattern.quote(big.toString()) + " into v\\.importing stopped after (\\d+) of (\\d+) bytes: the client went away");
            Matcher m;
            while (!(m = stopped.matcher(server.log())).find()) {
                assertFalse(server.log().contains("imported " + big), "the copy ended before the kill; the test needs a larger image: " + server.log());
                assertTrue(System.nanoTime() < stopDeadline, "the server stopped its copy within 10 s of the kill: " + server.log());
                Thread.sleep(50);
            }
            assertTrue(Long.parseLong(m.group(1)) < size, "stopped before the end: " + m.group());
            long written = statsField(pool, "blocksWritten");
            Thread.sleep(1000);
            assertEquals(written, statsField(pool, "blocksWritten"), "nothing is written after the copy stopped");
            String list = dedisk("volume", "list", "--pool", pool.toString()).stdout();
            assertTrue(list.contains("v.importing") && !list.matches("(?s).*\\nv +.*"), "no VOLUME, only the clearly named incomplete one: " + list);
            Tools.Result again = dedisk("import", "--pool", pool.toString(), big.toString(), "v");
            assertTrue(again.exit() == 1 && again.stderr().contains("volume 'v.importing' exists: an import into 'v' is running or was interrupted"), again.stderr());
        }
    }

    /**
     * The server cannot read what the CLI names: the CLI runs in a mount namespace of its own (unshare, as root)
     * where FILE is on a tmpfs. First nothing is at that path for the server, then another file is: both times the
     * server declines and the CLI copies with qemu-img over NBD, saying why.
     */
    @Test
    void whenTheServerCannotReadTheFileTheImportFallsBackToQemuImg() throws Exception {
        Tools.Result unshare = Tools.runAllowingFailure(List.of("unshare", "-m", "--propagation", "private", "true"), 10);
        org.junit.jupiter.api.Assumptions.assumeTrue(unshare.exit() == 0, "needs unshare -m (root): " + unshare.stderr());
        Path hidden = Files.createDirectory(tmp.resolve("hidden"));
        Path inside = hidden.resolve("image.raw");
        List<String> cmd = new ArrayList<>(List.of("unshare", "-m", "--propagation", "private", "sh", "-c",
                "mount -t tmpfs none \"$0\" && cp \"$1\" \"$0/image.raw\" && shift && exec \"$@\"", hidden.toString(), raw.toString()));
        try (ServerProcess server = new ServerProcess(pool).start()) {
            List<String> missing = new ArrayList<>(cmd);
            missing.addAll(ServerProcess.dediskCommand("import", "--pool", pool.toString(), "--no-progress", inside.toString(), "a"));
            Tools.Result a = Tools.runAllowingFailure(missing, 120);
            assertEquals(0, a.exit(), a.stderr());
            assertTrue(a.stdout().contains("qemu-img over NBD (the server (user " + System.getProperty("user.name") + ") cannot open " + inside), a.stdout());
            assertSameImage(raw, "raw", server.uri("a"), "raw");

            Files.write(inside, new byte[64 << 20]); // what the server sees at that path: zeros
            List<String> decoy = new ArrayList<>(cmd);
            decoy.addAll(ServerProcess.dediskCommand("import", "--pool", pool.toString(), "--no-progress", inside.toString(), "b"));
            Tools.Result b = Tools.runAllowingFailure(decoy, 120);
            assertEquals(0, b.exit(), b.stderr());
            assertTrue(b.stdout().contains("qemu-img over NBD (the server (user " + System.getProperty("user.name") + ") sees another file at " + inside), b.stdout());
            assertSameImage(raw, "raw", server.uri("b"), "raw");
            assertEquals(2 * dataBlocks, statsField(pool, "mappedBlocks"), "the fallback is sparse too");
        }
    }

    /** A stand-in for qemu-img: `info` is the real one, `convert` runs {@code convert} (shell) instead. */
    Map<String, String> fakeQemuImg(String convert) throws Exception {
        Path script = tmp.resolve("fake-qemu-img");
        Files.writeString(script, "#!/bin/sh\nif [ \"$1\" = convert ]; then\n" + convert + "\nfi\nexec /usr/bin/qemu-img \"$@\"\n");
        Files.setPosixFilePermissions(script, PosixFilePermissions.fromString("rwxr-xr-x"));
        return Map.of("DEDISK_QEMU_IMG", script.toString());
    }

    /** Starts the dedisk CLI with more environment, its stdout and stderr going to {@code log}. */
    Process start(Map<String, String> env, Path log, String... args) throws Exception {
        ProcessBuilder pb = new ProcessBuilder(ServerProcess.dediskCommand(args));
        pb.environment().putAll(env);
        pb.redirectErrorStream(true);
        pb.redirectOutput(log.toFile());
        return pb.start();
    }

    /** Runs the dedisk CLI with more environment; its stdout and stderr are the result's stderr. */
    Tools.Result run(Map<String, String> env, String... args) throws Exception {
        Path log = tmp.resolve("cli-" + System.nanoTime() + ".log");
        Process p = start(env, log, args);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "dedisk " + String.join(" ", args) + " finished");
        return new Tools.Result(p.exitValue(), "", Files.readString(log));
    }

    /** Starts an import whose qemu-img convert only sleeps; returns once it sleeps (the volume is being imported). */
    Process startUntilConverting(String pool) throws Exception {
        Process p = start(fakeQemuImg("exec sleep 60"), tmp.resolve("import-" + System.nanoTime() + ".log"), "import", "--pool", pool, "--no-progress", qcow2.toString(), "v");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (p.descendants().noneMatch(h -> h.info().commandLine().orElse("").contains("sleep 60"))) {
            assertTrue(p.isAlive() && System.nanoTime() < deadline, "the import reached qemu-img convert");
            Thread.sleep(50);
        }
        return p;
    }

    @Test
    void badInputsAndFailedOrKilledImportsLeaveNoHalfVolume() throws Exception {
        String p = pool.toString();
        Tools.Result missing = dedisk("import", "--pool", p, tmp.resolve("nope.img").toString(), "v");
        assertEquals(1, missing.exit());
        assertTrue(missing.stderr().contains("no such file: " + tmp.resolve("nope.img")), missing.stderr());
        Tools.Result wrongFormat = dedisk("import", "--pool", p, "--format", "qcow2", raw.toString(), "v");
        assertEquals(1, wrongFormat.exit());
        assertTrue(wrongFormat.stderr().contains("cannot read " + raw + " as a disk image in format qcow2"), wrongFormat.stderr());
        Tools.Result small = dedisk("import", "--pool", p, "--size", "1M", raw.toString(), "v");
        assertTrue(small.exit() == 1 && small.stderr().contains("smaller than the image's virtual size"), small.stderr());
        Tools.Result noTool = run(Map.of("DEDISK_QEMU_IMG", tmp.resolve("no-qemu-img").toString()), "import", "--pool", p, raw.toString(), "v");
        assertEquals(1, noTool.exit());
        assertTrue(noTool.stderr().contains("import and export need qemu-img; install the Debian package qemu-utils"), noTool.stderr());
        assertEquals(0, dedisk("volume", "create", "--pool", p, "taken", "--size", "1M").exit());
        Tools.Result exists = dedisk("import", "--pool", p, raw.toString(), "taken");
        assertEquals(1, exists.exit());
        assertTrue(exists.stderr().contains("volume 'taken' exists"), exists.stderr());
        Tools.Result replaced = dedisk("import", "--pool", p, "--replace", "--no-progress", raw.toString(), "taken");
        assertEquals(0, replaced.exit(), replaced.stderr());
        assertTrue(dedisk("volume", "list", "--pool", p).stdout().matches("(?s).*taken +volume +64\\.0 MiB.*"), "--replace put the image in its place");
        assertEquals(0, dedisk("volume", "delete", "--pool", p, "taken").exit());
        Tools.Result noVolume = dedisk("export", "--pool", p, "nothere", tmp.resolve("x.raw").toString());
        assertTrue(noVolume.exit() == 1 && noVolume.stderr().contains("no volume named 'nothere'"), noVolume.stderr());

        // qemu-img writes the whole image, then fails: the incomplete volume is deleted. (qcow2: offline, a raw
        // image is copied without qemu-img.)
        Tools.Result failed = run(fakeQemuImg("/usr/bin/qemu-img \"$@\"; echo 'qemu-img: simulated failure' >&2; exit 1"), "import", "--pool", p, qcow2.toString(), "v");
        assertEquals(1, failed.exit(), failed.stderr());
        assertTrue(failed.stderr().contains("qemu-img convert failed (exit 1): qemu-img: simulated failure"), failed.stderr());
        String list = dedisk("volume", "list", "--pool", p).stdout();
        assertFalse(list.contains("v "), "no half volume: " + list);
        assertFalse(list.contains("v.importing"), "the incomplete volume was deleted: " + list);

        // SIGTERM (Ctrl-C alike) while qemu-img runs: qemu-img is stopped and the incomplete volume deleted.
        Process stopped = startUntilConverting(p);
        stopped.destroy();
        assertTrue(stopped.waitFor(60, TimeUnit.SECONDS));
        assertNotEquals(0, stopped.exitValue());
        list = dedisk("volume", "list", "--pool", p).stdout();
        assertFalse(list.contains("v.importing") || list.contains("v "), "an interrupted import leaves nothing: " + list);

        // The import process is killed (kill -9) while qemu-img runs: VOLUME does not exist, only VOLUME.importing.
        Process killed = startUntilConverting(p);
        List<ProcessHandle> children = new ArrayList<>(killed.descendants().toList());
        killed.destroyForcibly().waitFor();
        children.forEach(ProcessHandle::destroyForcibly);
        list = dedisk("volume", "list", "--pool", p).stdout();
        assertTrue(list.contains("v.importing") && !list.matches("(?s).*\\nv +.*"), list);
        Tools.Result again = dedisk("import", "--pool", p, raw.toString(), "v");
        assertEquals(1, again.exit());
        assertTrue(again.stderr().contains("volume 'v.importing' exists: an import into 'v' is running or was interrupted"), again.stderr());
        assertEquals(0, dedisk("volume", "delete", "--pool", p, "v.importing").exit());
        assertEquals(0, dedisk("import", "--pool", p, "--no-progress", raw.toString(), "v").exit());
        Tools.Result check = dedisk("check", "--pool", p);
        assertEquals(0, check.exit(), check.stdout());
    }
}
