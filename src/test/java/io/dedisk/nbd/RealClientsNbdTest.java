package io.dedisk.nbd;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The server against the NBD clients our users run: libnbd's nbdinfo, nbdcopy and nbdsh, qemu-io and qemu-img,
 * and fio's nbd engine. A missing tool fails the test with the Debian package to install (scripts install them;
 * these tests are never skipped silently).
 */
@Tag("clients")
class RealClientsNbdTest {
    private static final int SIZE = 64 << 20;
    private static final int MIB = 1 << 20;

    @TempDir
    Path dir;

    private ClientTools tools;

    private MemoryVolume disk;
    private MemoryVolume readOnly;
    private NbdServer server;
    private String base;

    @BeforeEach
    void start() throws IOException {
        tools = new ClientTools(dir);
        disk = new MemoryVolume("disk", SIZE);
        readOnly = new MemoryVolume("ro", MIB, true);
        server = new NbdServer(new MemoryVolumeProvider(disk, readOnly),
                new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
        server.start();
        base = "nbd://127.0.0.1:" + server.localAddress().getPort() + "/";
    }

    @AfterEach
    void stop() throws InterruptedException {
        TransmissionTest.awaitNoConnections(server); // clients disconnected cleanly, nothing left behind
        server.close();
    }

    @Test
    void nbdinfoListShowsEveryExportWithItsCapabilities() throws Exception {
        String out = ok("nbdinfo", "--list", base).out();
        for (String expected : List.of("export=\"disk\"", "export=\"ro\"", "export-size: " + SIZE, "is_read_only: true",
                "is_read_only: false", "can_multi_conn: true", "can_fast_zero: true", "can_df: true",
                "block_size_minimum: 1", "block_size_preferred: 4096", "block_size_maximum: 33554432",
                "base:allocation")) {
            assertTrue(out.contains(expected), "nbdinfo --list lacks '" + expected + "':\n" + out);
        }
    }

    @Test
    void nbdinfoMapShowsDataZeroesAndHoles() throws Exception {
        disk.write(0, ByteBuffer.wrap(random(MIB, 1)), false);
        disk.writeZeroes(MIB, MIB, false, false);
        List<List<String>> map = ok("nbdinfo", "--map", base + "disk").out().lines()
                .map(line -> List.of(line.trim().split("\\s+"))).toList();
        assertEquals(List.of(
                List.of("0", "" + MIB, "0", "data"),
                List.of("" + MIB, "" + MIB, "2", "zero"),
                List.of("" + 2 * MIB, "" + (SIZE - 2 * MIB), "3", "hole,zero")), map);
    }

    @Test
    void qemuIoWritesReadsZeroesDiscardsAndFlushes() throws Exception {
        ClientTools.Run run = ok("qemu-io", "-f", "raw", base + "disk",
                "-c", "write -P 0xab 0 1M", "-c", "read -P 0xab 0 1M",
                "-c", "write -P 0xcd -f 1M 1M", "-c", "write -z 1M 64k", "-c", "read -P 0 1M 64k",
                "-c", "write -P 0x11 3M 1M", "-c", "discard 3M 1M",
                "-c", "write -P 0x22 5000 3000", "-c", "read -P 0x22 5000 3000",
                "-c", "flush");
        assertFalse(run.out().contains("failed"), run.all());
        byte[] first = disk.snapshot(0, MIB);
        for (int i = 0; i < MIB; i++) {
            byte expected = (byte) (i >= 5000 && i < 8000 ? 0x22 : 0xab);
            if (first[i] != expected) fail("byte " + i + " is " + first[i] + ", expected " + expected);
        }
        assertArrayEquals(new byte[64 << 10], disk.snapshot(MIB, 64 << 10));
        assertEquals((byte) 0xcd, disk.snapshot(MIB + (64 << 10), 1)[0]);
        assertFalse(disk.isAllocated(3 * MIB), "discarded block still allocated");
        assertTrue(disk.flushes() >= 1);
        assertTrue(disk.fuaWrites() >= 1, "write -f must reach the device with FUA");
        ok("qemu-io", "-r", "-f", "raw", base + "ro", "-c", "read -P 0 0 1M");
    }

    @Test
    void qemuImgConvertAndCompare() throws Exception {
        Path source = image("source.raw");
        ok("qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", source.toString(), base + "disk");
        assertTrue(ok("qemu-img", "compare", "-f", "raw", "-F", "raw", source.toString(), base + "disk").out()
                .contains("Images are identical"));
        Path copy = dir.resolve("copy.raw");
        ok("qemu-img", "convert", "-f", "raw", "-O", "raw", base + "disk", copy.toString());
        assertEquals(-1, Files.mismatch(source, copy));
    }

    @Test
    void nbdcopyRoundTrip() throws Exception {
        Path source = image("source.raw");
        ok("nbdcopy", "--flush", source.toString(), base + "disk");
        assertTrue(disk.flushes() >= 1);
        Path copy = dir.resolve("copy.raw");
        ok("nbdcopy", base + "disk", copy.toString());
        assertEquals(-1, Files.mismatch(source, copy));
        assertFalse(disk.isAllocated(40 * MIB), "zero areas of the source should stay holes");
    }

    @Test
    void fioRandomWritesVerifyWithCrc32c() throws Exception {
        ClientTools.Run run = ok("fio", "--name=verify", "--ioengine=nbd", "--uri=" + base + "disk", "--rw=randwrite", "--bs=4k",
                "--size=16M", "--iodepth=32", "--verify=crc32c", "--do_verify=1", "--verify_fatal=1");
        assertTrue(run.out().contains("err= 0"), run.all());
        assertFalse(run.out().contains("verify: bad"), run.all());
    }

    @Test
    void nbdshSeesProtocolErrorsAndBlockStatus() throws Exception {
        disk.write(0, ByteBuffer.wrap(random(8192, 2)), false);
        String script = """
                h.add_meta_context("base:allocation")
                h.connect_uri("%s")
                h.set_strict_mode(0)
                size = h.get_size()
                for name, call in [("read", lambda: h.pread(512, size)),
                                   ("write", lambda: h.pwrite(b"x" * 1024, size - 512)),
                                   ("zero", lambda: h.zero(4096, size))]:
                    try:
                        call()
                        print(name, "ok")
                    except nbd.Error as e:
                        print(name, nbd.Error.__name__, e.errno)
                extents = []
                h.block_status(size, 0, lambda meta, off, ents, err: extents.append((meta, list(ents))))
                print("extents", extents)
                one = []
                h.block_status(size, 0, lambda meta, off, ents, err: one.append(list(ents)), nbd.CMD_FLAG_REQ_ONE)
                print("one", one)
                h.shutdown()
                """.formatted(base + "disk");
        ClientTools.Run run = ok("nbdsh", "-c", script);
        assertTrue(run.out().contains("read Error EINVAL"), run.all());
        assertTrue(run.out().contains("write Error ENOSPC"), run.all());
        assertTrue(run.out().contains("zero Error ENOSPC"), run.all());
        assertTrue(run.out().contains("extents [('base:allocation', [8192, 0, " + (SIZE - 8192) + ", 3])]"), run.all());
        assertTrue(run.out().contains("one [[8192, 0]]"), run.all());
    }

    /** A 64 MiB raw image: random data with zero runs in between and a zero tail. */
    private Path image(String name) throws IOException {
        Path path = dir.resolve(name);
        try (RandomAccessFile file = new RandomAccessFile(path.toFile(), "rw")) {
            file.setLength(SIZE);
            long[][] dataRanges = {{0, 4 * MIB}, {8 * MIB + 4096, 3 * MIB}, {20 * MIB - 512, 4096},
                                   {30 * MIB, 2 * MIB}};
            for (long[] range : dataRanges) {
                file.seek(range[0]);
                file.write(random((int) range[1], range[0]));
            }
        }
        return path;
    }

    private static byte[] random(int length, long seed) {
        byte[] bytes = new byte[length];
        new Random(seed).nextBytes(bytes);
        return bytes;
    }

    private ClientTools.Run ok(String... command) throws Exception { return tools.ok(command); }

    private ClientTools.Run run(String... command) throws Exception { return tools.run(command); }
}
