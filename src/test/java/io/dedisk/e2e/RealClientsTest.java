package io.dedisk.e2e;

import static io.dedisk.e2e.ServerProcess.Tools.run;
import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.e2e.ServerProcess.Tools;
import io.dedisk.store.S3ProxyFixture;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.AfterParameterizedClassInvocation;
import org.junit.jupiter.params.BeforeParameterizedClassInvocation;
import org.junit.jupiter.params.Parameter;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The real NBD clients our users run, against a real `dedisk serve` process: each test gets its own volume in one
 * shared pool, so dedup across volumes is exercised too. The whole class runs twice: on a pool directory and on a
 * bucket pool (S3Proxy in this JVM, the server process reaching it through the AWS environment, its cache in tmp).
 */
@ParameterizedClass(name = "{0} pool")
@ValueSource(strings = {"directory", "bucket"})
class RealClientsTest {
    @Parameter String kind; // the pool's kind; declaring it is what hands it to start(kind)
    @TempDir static Path tmp;
    static ServerProcess server;
    static S3ProxyFixture s3;
    static Path dir; // this invocation's files


    @BeforeParameterizedClassInvocation
    static void start(String kind) throws Exception {
        if (kind.equals("bucket")) s3 = new S3ProxyFixture().start();
        dir = Files.createDirectories(tmp.resolve(kind));
        TestPool pool = TestPool.of(kind, dir, s3);
        ServerProcess.cli(pool, "create");
        for (String v : List.of("qemuio", "convert", "map", "copy", "fio", "fuse")) ServerProcess.cli(pool, "volume", "create", v, "--size", "256M");
        server = new ServerProcess(pool).start();
    }

    @AfterParameterizedClassInvocation
    static void stop() throws Exception {
        try {
            if (server != null) server.close();
        } finally {
            server = null;
            if (s3 != null) s3.close();
            s3 = null;
        }
    }

    /** A raw image with random, repeated, compressible and zero regions (a VM image in miniature). */
    static Path image(String name, long size, long seed) throws IOException { return image(dir, name, size, seed); }

    static Path image(Path dir, String name, long size, long seed) throws IOException {
        Random r = new Random(seed);
        byte[] img = new byte[(int) size];
        byte[] text = "dedisk dedupes VM images; this line repeats like a config file. ".getBytes();
        for (int off = 0; off < img.length; off += 1 << 20) {
            switch ((off >> 20) % 4) {
                case 0 -> { byte[] b = new byte[1 << 20]; r.nextBytes(b); System.arraycopy(b, 0, img, off, b.length); }
                case 1 -> { for (int i = 0; i < 1 << 20; i++) img[off + i] = text[(i + off / 4096) % text.length]; }
                case 2 -> System.arraycopy(img, 0, img, off, 1 << 20); // a duplicate of the first MiB
                default -> { } // zeros
            }
        }
        Path p = dir.resolve(name);
        Files.write(p, img);
        return p;
    }

    @Test
    void qemuIoPatternsZeroesDiscardFlush() throws Exception {
        String u = server.uri("qemuio");
        String out = run(120, "qemu-io", "-f", "raw",
                "-c", "write -P 0xab 0 1M", "-c", "read -P 0xab 0 1M",
                "-c", "write -P 0x5c 1000 5000", "-c", "read -P 0x5c 1000 5000", "-c", "read -P 0xab 0 1000",
                "-c", "write -z 4M 4M", "-c", "read -P 0 4M 4M",
                "-c", "write -z -u 32M 1M", "-c", "discard 8M 1M", "-c", "flush", u).stdout();
        assertFalse(out.contains("Pattern verification failed"), out);
        assertEquals(4, out.lines().filter(l -> l.startsWith("read ")).count(), out);
    }

    @Test
    void qemuImgConvertAndCompare() throws Exception {
        Path src = image("convert.raw", 24 << 20, 11);
        String u = server.uri("convert");
        run(180, "qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", src.toString(), u);
        Tools.Result same = run(180, "qemu-img", "compare", "-f", "raw", "-F", "raw", src.toString(), u);
        assertTrue(same.stdout().contains("Images are identical"), same.stdout());
        // Compare really compares: change one byte on the server and it must notice.
        run(60, "qemu-io", "-f", "raw", "-c", "write -P 0x01 12345 1", u);
        Tools.Result differ = Tools.runAllowingFailure(List.of("qemu-img", "compare", "-f", "raw", "-F", "raw", src.toString(), u), 180);
        assertEquals(1, differ.exit(), differ.stdout() + differ.stderr());
    }

    @Test
    void nbdinfoMapShowsDataAndHoles() throws Exception {
        String u = server.uri("map");
        run(60, "qemu-io", "-f", "raw", "-c", "write -P 0x11 0 1M", "-c", "write -P 0x22 8M 64k", "-c", "write -z 16M 1M", u);
        String map = run(60, "nbdinfo", "--map", u).stdout();
        // nbdinfo --map prints: offset length type description
        List<String[]> rows = map.lines().map(String::trim).filter(l -> !l.isEmpty()).map(l -> l.split("\\s+")).toList();
        assertEquals(0, Long.parseLong(rows.get(0)[0]));
        assertEquals(1 << 20, Long.parseLong(rows.get(0)[1]));
        assertEquals("0", rows.get(0)[2], "data extent: " + map);
        assertEquals("3", rows.get(1)[2], "hole+zero after the data: " + map);
        assertTrue(map.contains((8 << 20) + " "), "extent at 8M: " + map);
        String totals = run(60, "nbdinfo", "--map", "--totals", u).stdout();
        assertTrue(totals.lines().anyMatch(l -> l.trim().startsWith(((1 << 20) + (64 << 10)) + " ")), "data total 1M+64k: " + totals);
        String list = run(60, "nbdinfo", "--list", "nbd://127.0.0.1:" + server.port).stdout();
        for (String v : List.of("qemuio", "convert", "map", "copy", "fio", "fuse")) assertTrue(list.contains("export=\"" + v + "\""), list);
    }

    @Test
    void nbdcopyRoundTrip() throws Exception {
        Path src = image("copy.raw", 32 << 20, 12);
        String u = server.uri("copy");
        run(180, "nbdcopy", "--flush", src.toString(), u);
        Path back = dir.resolve("copy-back.raw");
        run(180, "nbdcopy", u, back.toString());
        byte[] expected = Files.readAllBytes(src);
        byte[] got = Files.readAllBytes(back);
        assertEquals(256L << 20, got.length, "nbdcopy copies the whole volume");
        assertEquals(-1, java.util.Arrays.mismatch(expected, java.util.Arrays.copyOf(got, expected.length)));
        assertTrue(java.util.Arrays.equals(new byte[got.length - expected.length], java.util.Arrays.copyOfRange(got, expected.length, got.length)),
                "the rest of the volume reads as zeros");
    }

    @Test
    void fioRandomWriteVerifyCrc32c() throws Exception {
        String u = server.uri("fio");
        String out = run(300, "fio", "--name=verify", "--ioengine=nbd", "--uri=" + u, "--rw=randwrite", "--bs=4k",
                "--size=32M", "--iodepth=16", "--verify=crc32c", "--verify_fatal=1", "--do_verify=1", "--output-format=terse").stdout();
        // terse v3: field 5 is the error code
        String[] fields = out.lines().filter(l -> l.startsWith("3;")).findFirst().orElseThrow(() -> new AssertionError(out)).split(";");
        assertEquals("0", fields[4], "fio error: " + out);
    }

    @Test
    void nbdfuseLoopMountExt4() throws Exception {
        boolean root = "root".equals(System.getProperty("user.name"));
        org.junit.jupiter.api.Assumptions.assumeTrue(root && Files.exists(Path.of("/dev/fuse")),
                "nbdfuse + loop mount needs root and /dev/fuse");
        Path mnt = Files.createDirectories(dir.resolve("fuse"));
        Path disk = mnt.resolve("disk");
        Files.createFile(disk);
        Process fuse = new ProcessBuilder("nbdfuse", disk.toString(), server.uri("fuse")).redirectErrorStream(true).start();
        try {
            for (int i = 0; i < 100 && Files.size(disk) == 0; i++) Thread.sleep(100);
            assertEquals(256L << 20, Files.size(disk), "nbdfuse exposes the volume as a file");
            run(120, "mkfs.ext4", "-q", "-F", disk.toString());
            Path m = Files.createDirectories(dir.resolve("m"));
            run(60, "mount", "-o", "loop", disk.toString(), m.toString());
            try {
                Files.write(m.resolve("hello.txt"), "hello from dedisk\n".repeat(1000).getBytes());
                Files.copy(image("fuse-file.raw", 4 << 20, 13), m.resolve("blob"));
            } finally {
                run(60, "umount", m.toString());
            }
            run(120, "e2fsck", "-fn", disk.toString());
        } finally {
            Tools.runAllowingFailure(List.of("fusermount3", "-u", disk.toString()), 30);
            fuse.waitFor();
        }
    }
}
