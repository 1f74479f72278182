package io.dedisk.nbd;

import static io.dedisk.nbd.NbdConstants.*;
import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;


import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.dedisk.DediskException;

/**
 * NBD_OPT_STARTTLS with the JDK's TLS on both ends: the three modes, client certificates mapped to exports, PEM
 * loading, and data integrity over TLS. Real clients (qemu, libnbd) are in {@link TlsRealClientsTest}.
 */
class TlsTest {
    @TempDir
    static Path dir;
    private static TestCertificates certs;
    private static Path alice;
    private static Path mallory;
    private static Path anonymous;

    private NbdServer server;
    private MemoryVolume disk;

    @BeforeAll
    static void certificates() throws Exception {
        certs = TestCertificates.make(dir);
        alice = certs.client("alice", "alice");
        mallory = certs.client("mallory", "mallory");
        anonymous = certs.client("anonymous", null);
    }

    private InetSocketAddress start(NbdTls.Mode mode, boolean verify, List<String> allow) throws IOException {
        NbdTls tls = NbdTls.load(mode, certs.serverCert, certs.serverKey, verify || !allow.isEmpty() ? certs.caCert
                : null, verify, allow);
        disk = new MemoryVolume("disk", 8 << 20);
        server = new NbdServer(new MemoryVolumeProvider(disk, new MemoryVolume("other", 1 << 20)),
                new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), NbdLimits.defaults(), tls);
        server.start();
        return server.localAddress();
    }

    @AfterEach
    void stop() throws InterruptedException {
        if (server != null) {
            TransmissionTest.awaitNoConnections(server);
            server.close();
            assertEquals(0, server.budgetUsed());
        }
    }

    private static TestNbdClient tlsClient(InetSocketAddress address, Path clientDir) throws Exception {
        TestNbdClient client = TestNbdClient.negotiated(address, false);
        client.expectAck(client.option(NBD_OPT_STARTTLS, new byte[0]));
        client.startTls(TestCertificates.clientContext(clientDir));
        return client;
    }

    @Test
    void requireModeRefusesPlainOptionsWithTlsReqdAndServesOverTls() throws Exception {
        InetSocketAddress address = start(NbdTls.Mode.REQUIRE, false, List.of());
        try (TestNbdClient plain = TestNbdClient.negotiated(address, false)) {
            for (int option : new int[] {NBD_OPT_LIST, NBD_OPT_GO, NBD_OPT_INFO, NBD_OPT_STRUCTURED_REPLY, 99}) {
                List<TestNbdClient.OptionReply> replies = plain.option(option, option == NBD_OPT_GO
                        ? TestNbdClient.infoData("disk") : new byte[0]);
                assertEquals(NBD_REP_ERR_TLS_REQD, replies.getLast().type(), "option " + option);
            }
            plain.expectAck(plain.option(NBD_OPT_ABORT, new byte[0]));
        }
        try (TestNbdClient plain = TestNbdClient.negotiated(address, false)) {
            plain.sendOption(IHAVEOPT, NBD_OPT_EXPORT_NAME, "disk".getBytes(StandardCharsets.UTF_8));
            assertTrue(plain.closedByServer(), "NBD_OPT_EXPORT_NAME without TLS must end the session");
        }
        try (TestNbdClient client = tlsClient(address, anonymous)) {
            assertEquals("TLSv1.3", client.tlsProtocol());
            client.expectAck(client.option(NBD_OPT_STRUCTURED_REPLY, new byte[0]));
            List<TestNbdClient.OptionReply> again = client.option(NBD_OPT_STARTTLS, new byte[0]);
            assertEquals(NBD_REP_ERR_INVALID, again.getLast().type(), "second STARTTLS");
            assertEquals(8 << 20, client.go("disk").size());
            roundTrip(client, 1);
        }
    }

    @Test
    void onModeServesPlainAndTlsClients() throws Exception {
        InetSocketAddress address = start(NbdTls.Mode.ON, false, List.of());
        try (TestNbdClient plain = TestNbdClient.negotiated(address, true)) {
            plain.go("disk");
            plain.write(0, new byte[4096]);
        }
        try (TestNbdClient client = TestNbdClient.negotiated(address, false)) {
            List<TestNbdClient.OptionReply> withData = client.option(NBD_OPT_STARTTLS, new byte[] {1});
            assertEquals(NBD_REP_ERR_INVALID, withData.getLast().type(), "STARTTLS with data");
            client.expectAck(client.option(NBD_OPT_STARTTLS, new byte[0]));
            client.startTls(TestCertificates.clientContext(anonymous));
            client.go("other");
            assertEquals(4096, client.read(0, 4096).length);
        }
    }

    @Test
    void structuredRepliesNegotiatedBeforeTlsAreForgotten() throws Exception {
        InetSocketAddress address = start(NbdTls.Mode.ON, false, List.of());
        try (TestNbdClient client = TestNbdClient.negotiated(address, true)) {
            client.expectAck(client.option(NBD_OPT_STARTTLS, new byte[0]));
            client.startTls(TestCertificates.clientContext(anonymous));
            client.go("disk");
            TestNbdClient.Reply reply = client.request(0, NBD_CMD_READ, 0, 4096, null);
            assertFalse(reply.structured(), "structured reply from a choice made before TLS");
        }
    }

    @Test
    void clientCertificatesMapToTheExportsTheyMayOpen() throws Exception {
        InetSocketAddress address = start(NbdTls.Mode.REQUIRE, true, List.of("CN=alice:disk"));
        try (TestNbdClient client = tlsClient(address, alice)) {
            List<TestNbdClient.OptionReply> list = client.option(NBD_OPT_LIST, new byte[0]);
            assertEquals(2, list.size(), "one NBD_REP_SERVER (disk) and the ACK");
            assertTrue(new String(list.getFirst().data(), StandardCharsets.UTF_8).endsWith("disk"));
            List<TestNbdClient.OptionReply> other = client.option(NBD_OPT_GO, TestNbdClient.infoData("other"));
            assertEquals(NBD_REP_ERR_POLICY, other.getLast().type());
            assertTrue(other.getLast().text().contains("CN=alice"), other.getLast().text());
            client.go("disk");
            roundTrip(client, 2);
        }
        try (TestNbdClient client = tlsClient(address, mallory)) {
            List<TestNbdClient.OptionReply> refused = client.option(NBD_OPT_GO, TestNbdClient.infoData("disk"));
            assertEquals(NBD_REP_ERR_POLICY, refused.getLast().type(), "a CN not in the list opens nothing");
            assertFalse(refused.getLast().text().contains("other"), "refusal names exports the CN may not see");
        }
        // Without a certificate the TLS handshake itself fails: the server requires one.
        TestNbdClient client = TestNbdClient.negotiated(address, false);
        try (client) {
            client.expectAck(client.option(NBD_OPT_STARTTLS, new byte[0]));
            assertThrows(IOException.class, () -> {
                client.startTls(TestCertificates.clientContext(anonymous));
                client.go("disk"); // TLS 1.3: the refusal of the certificate may only show on first use
            });
        }
    }

    @Test
    void aClientThatBreaksOffTheTlsHandshakeIsDisconnected() throws Exception {
        InetSocketAddress address = start(NbdTls.Mode.REQUIRE, false, List.of());
        try (TestNbdClient client = TestNbdClient.negotiated(address, false)) {
            client.expectAck(client.option(NBD_OPT_STARTTLS, new byte[0]));
            client.sendRaw("this is not a ClientHello".getBytes(StandardCharsets.US_ASCII));
            assertTrue(client.closedByServer());
        }
    }

    @Test
    void largeRequestsCrossTlsIntact() throws Exception {
        InetSocketAddress address = start(NbdTls.Mode.REQUIRE, false, List.of());
        try (TestNbdClient client = tlsClient(address, anonymous)) {
            client.expectAck(client.option(NBD_OPT_STRUCTURED_REPLY, new byte[0]));
            client.go("disk");
            byte[] big = new byte[4 << 20];
            new Random(7).nextBytes(big);
            client.write(1 << 20, big);
            assertArrayEquals(big, client.read(1 << 20, big.length));
            assertArrayEquals(big, disk.snapshot(1 << 20, big.length));
            // Pipelined small requests over TLS.
            for (int i = 0; i < 64; i++) client.send(0, NBD_CMD_READ, i, i * 4096L, 4096, null);
            for (int i = 0; i < 64; i++) assertEquals(0, client.readReply().error());
            client.send(0, NBD_CMD_DISC, 0, 0, 0, null);
            assertTrue(client.closedByServer());
        }
    }

    @Test
    void pemLoadingNamesTheProblemAndTheFix() throws Exception {
        Path traditional = dir.resolve("traditional-key.pem");
        certs.openssl("ec", "-in", "server-key.pem", "-out", traditional.toString());
        assertTrue(Files.readString(traditional).contains("BEGIN EC PRIVATE KEY"));
        var e = assertThrows(DediskException.InvalidRequestException.class,
                () -> NbdTls.load(NbdTls.Mode.ON, certs.serverCert, traditional, null, false, List.of()));
        assertTrue(e.getMessage().contains("openssl pkcs8 -topk8 -nocrypt"), e.getMessage());
        var noCert = assertThrows(DediskException.InvalidRequestException.class,
                () -> NbdTls.load(NbdTls.Mode.ON, certs.serverKey, certs.serverKey, null, false, List.of()));
        assertTrue(noCert.getMessage().contains("expected at least one '-----BEGIN CERTIFICATE-----'"),
                noCert.getMessage());
        assertThrows(DediskException.InvalidRequestException.class,
                () -> NbdTls.load(NbdTls.Mode.ON, certs.serverCert, certs.serverKey, null, true, List.of()),
                "client verification without a CA");
        var rule = assertThrows(DediskException.InvalidRequestException.class,
                () -> NbdTls.parseAllow(List.of("alice:disk")));
        assertTrue(rule.getMessage().contains("expected CN=name:export"), rule.getMessage());
        assertEquals(java.util.Set.of("a", "b"), NbdTls.parseAllow(List.of("CN=x:a,b")).get("x"));
        assertEquals(NbdTls.Mode.OFF, NbdTls.load(NbdTls.Mode.OFF, null, null, null, false, List.of()).mode());
    }

    private static void roundTrip(TestNbdClient client, int seed) throws IOException {
        byte[] data = new byte[65536];
        new Random(seed).nextBytes(data);
        client.write(65536, data);
        assertArrayEquals(data, client.read(65536, data.length));
    }

    @Test
    void warmUpTalksToTheServersEngine() throws Exception {
        NbdTls tls = NbdTls.load(NbdTls.Mode.REQUIRE, certs.serverCert, certs.serverKey, certs.caCert, true, List.of());
        new TlsWarmUp(tls.newEngine()).warmUp(); // throws if the in-memory client and server could not talk
    }
}
