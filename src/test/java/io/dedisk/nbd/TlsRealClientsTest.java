package io.dedisk.nbd;

import static org.junit.jupiter.api.Assertions.*;

import java.io.File;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * TLS against the clients users run (GnuTLS inside both): libnbd's nbdinfo with an nbds:// URI, qemu-img and
 * qemu-io with a tls-creds-x509 object, and plain clients refused by a server that requires TLS. Certificates
 * are made with openssl ({@link TestCertificates}). A missing tool fails the test with its Debian package.
 */
@Tag("clients")
class TlsRealClientsTest {
    private static final int SIZE = 16 << 20;
    private static final Map<String, String> DEBIAN_PACKAGES = Map.of("nbdinfo", "libnbd-bin", "qemu-img",
            "qemu-utils", "qemu-io", "qemu-utils");
    private static final String PATH = "/usr/bin:/bin:" + System.getenv().getOrDefault("PATH", "");

    @TempDir
    Path dir;

    private TestCertificates certs;
    private MemoryVolume disk;
    private NbdServer server;
    private int port;

    private record Run(int exit, String out, String err) {
        String all() {
            return "exit " + exit + "\n--- stdout\n" + out + "\n--- stderr\n" + err;
        }
    }

    @BeforeEach
    void start() throws Exception {
        certs = TestCertificates.make(dir);
        disk = new MemoryVolume("disk", SIZE);
        NbdTls tls = NbdTls.load(NbdTls.Mode.REQUIRE, certs.serverCert, certs.serverKey, certs.caCert, true,
                List.of("CN=qemu:*", "CN=reader:disk"));
        server = new NbdServer(new MemoryVolumeProvider(disk, new MemoryVolume("secret", 1 << 20)),
                new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), NbdLimits.defaults(), tls);
        server.start();
        port = server.localAddress().getPort();
    }

    @AfterEach
    void stop() throws InterruptedException {
        TransmissionTest.awaitNoConnections(server);
        server.close();
    }

    @Test
    void nbdinfoOverTlsWithAClientCertificate() throws Exception {
        Path reader = certs.client("reader", "reader");
        String out = ok("nbdinfo", "nbds://127.0.0.1:" + port + "/disk?tls-certificates=" + reader).out();
        assertTrue(out.contains("export-size: " + SIZE), out);
        // The reader's certificate may open "disk" only.
        Run refused = run("nbdinfo", "nbds://127.0.0.1:" + port + "/secret?tls-certificates=" + reader);
        assertNotEquals(0, refused.exit(), refused.all());
    }

    @Test
    void qemuImgAndQemuIoOverTls() throws Exception {
        Path qemu = certs.client("qemu", "qemu");
        String object = "tls-creds-x509,id=tls0,dir=" + qemu + ",endpoint=client";
        String image = "driver=nbd,host=127.0.0.1,port=" + port + ",export=disk,tls-creds=tls0";
        String info = ok("qemu-img", "info", "--object", object, "--image-opts", image).out();
        assertTrue(info.contains("virtual size: 16 MiB"), info);
        Run io = ok("qemu-io", "--object", object, "--image-opts", image,
                "-c", "write -P 0x5a 1M 1M", "-c", "read -P 0x5a 1M 1M", "-c", "flush");
        assertFalse(io.out().contains("failed"), io.all());
        assertEquals((byte) 0x5a, disk.snapshot((1 << 20) + 12345, 1)[0]);
    }

    @Test
    void plainClientsAreRefused() throws Exception {
        Run nbdinfo = run("nbdinfo", "nbd://127.0.0.1:" + port + "/disk");
        assertNotEquals(0, nbdinfo.exit(), nbdinfo.all());
        // libnbd reports NBD_REP_ERR_TLS_REQD as "Operation not supported" on its plain connection.
        assertTrue(nbdinfo.out().contains("without TLS") && nbdinfo.err().contains("opt_go"), nbdinfo.all());
        Run qemu = run("qemu-img", "info", "nbd://127.0.0.1:" + port + "/disk");
        assertNotEquals(0, qemu.exit(), qemu.all());
        assertTrue(qemu.err().contains("TLS"), qemu.all());
        // A certificate from the right CA but without a CN in the allow list opens nothing.
        Path stranger = certs.client("stranger", "stranger");
        Run other = run("nbdinfo", "nbds://127.0.0.1:" + port + "/disk?tls-certificates=" + stranger);
        assertNotEquals(0, other.exit(), other.all());
    }

    private Run ok(String... command) throws Exception {
        Run run = run(command);
        assertEquals(0, run.exit(), String.join(" ", command) + " failed:\n" + run.all());
        return run;
    }

    private Run run(String... command) throws Exception {
        requireTool(command[0]);
        List<String> args = new ArrayList<>(Arrays.asList(command));
        Path out = Files.createTempFile(dir, "out", ".txt");
        Path err = Files.createTempFile(dir, "err", ".txt");
        ProcessBuilder builder = new ProcessBuilder(args).directory(dir.toFile())
                .redirectOutput(out.toFile()).redirectError(err.toFile());
        builder.environment().put("PATH", PATH);
        Process process = builder.start();
        if (!process.waitFor(60, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            fail(String.join(" ", command) + " did not finish within 60 s; stderr:\n" + Files.readString(err));
        }
        return new Run(process.exitValue(), Files.readString(out), Files.readString(err));
    }

    private static void requireTool(String tool) {
        for (String directory : PATH.split(File.pathSeparator)) {
            if (!directory.isEmpty() && Files.isExecutable(Path.of(directory, tool))) return;
        }
        fail(tool + " is not installed: install the Debian package " + DEBIAN_PACKAGES.get(tool));
    }
}
