package io.dedisk.nbd;

import static org.junit.jupiter.api.Assertions.*;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.List;

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

    @TempDir
    Path dir;

    private ClientTools tools;

    private TestCertificates certs;
    private MemoryVolume disk;
    private NbdServer server;
    private int port;

    @BeforeEach
    void start() throws Exception {
        tools = new ClientTools(dir);
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
        ClientTools.Run refused = run("nbdinfo", "nbds://127.0.0.1:" + port + "/secret?tls-certificates=" + reader);
        assertNotEquals(0, refused.exit(), refused.all());
    }

    @Test
    void qemuImgAndQemuIoOverTls() throws Exception {
        Path qemu = certs.client("qemu", "qemu");
        String object = "tls-creds-x509,id=tls0,dir=" + qemu + ",endpoint=client";
        String image = "driver=nbd,host=127.0.0.1,port=" + port + ",export=disk,tls-creds=tls0";
        String info = ok("qemu-img", "info", "--object", object, "--image-opts", image).out();
        assertTrue(info.contains("virtual size: 16 MiB"), info);
        ClientTools.Run io = ok("qemu-io", "--object", object, "--image-opts", image,
                "-c", "write -P 0x5a 1M 1M", "-c", "read -P 0x5a 1M 1M", "-c", "flush");
        assertFalse(io.out().contains("failed"), io.all());
        assertEquals((byte) 0x5a, disk.snapshot((1 << 20) + 12345, 1)[0]);
    }

    @Test
    void plainClientsAreRefused() throws Exception {
        ClientTools.Run nbdinfo = run("nbdinfo", "nbd://127.0.0.1:" + port + "/disk");
        assertNotEquals(0, nbdinfo.exit(), nbdinfo.all());
        // libnbd reports NBD_REP_ERR_TLS_REQD as "Operation not supported" on its plain connection.
        assertTrue(nbdinfo.out().contains("without TLS") && nbdinfo.err().contains("opt_go"), nbdinfo.all());
        ClientTools.Run qemu = run("qemu-img", "info", "nbd://127.0.0.1:" + port + "/disk");
        assertNotEquals(0, qemu.exit(), qemu.all());
        assertTrue(qemu.err().contains("TLS"), qemu.all());
        // A certificate from the right CA but without a CN in the allow list opens nothing.
        Path stranger = certs.client("stranger", "stranger");
        ClientTools.Run other = run("nbdinfo", "nbds://127.0.0.1:" + port + "/disk?tls-certificates=" + stranger);
        assertNotEquals(0, other.exit(), other.all());
    }

    private ClientTools.Run ok(String... command) throws Exception { return tools.ok(command); }

    private ClientTools.Run run(String... command) throws Exception { return tools.run(command); }
}
