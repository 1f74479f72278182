package io.dedisk.nbd;

import static io.dedisk.nbd.NbdConstants.*;
import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.util.List;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import io.dedisk.nbd.TestNbdClient.Export;
import io.dedisk.nbd.TestNbdClient.OptionReply;

/** Option haggling, driven byte by byte with {@link TestNbdClient}. */
class HandshakeTest {
    private static final int SIZE = 1 << 20;

    private NbdServer server;
    private InetSocketAddress address;

    @BeforeEach
    void start() throws IOException {
        MemoryVolumeProvider volumes = new MemoryVolumeProvider(new MemoryVolume("default", SIZE),
                new MemoryVolume("other", 256 << 10), new MemoryVolume("ro", 64 << 10, true));
        server = new NbdServer(volumes, new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
        server.start();
        address = server.localAddress();
    }

    @AfterEach
    void stop() {
        server.close();
        assertEquals(0, server.activeConnections());
    }

    @Test
    void greetingAdvertisesFixedNewstyleAndNoZeroes() throws IOException {
        try (TestNbdClient client = new TestNbdClient(address)) {
            assertEquals(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES, client.handshakeFlags());
        }
    }

    @Test
    void clientWithoutFixedNewstyleIsDisconnected() throws IOException {
        try (TestNbdClient client = new TestNbdClient(address)) {
            client.clientFlags(0);
            assertTrue(client.closedByServer());
        }
    }

    @Test
    void clientWithUnknownFlagIsDisconnected() throws IOException {
        try (TestNbdClient client = new TestNbdClient(address)) {
            client.clientFlags(NBD_FLAG_C_FIXED_NEWSTYLE | 1 << 5);
            assertTrue(client.closedByServer());
        }
    }

    @Test
    void unsupportedOptionsAreRefusedAndGoStillWorks() throws IOException {
        try (TestNbdClient client = TestNbdClient.negotiated(address, false)) {
            for (int option : new int[] {NBD_OPT_STARTTLS, NBD_OPT_EXTENDED_HEADERS, 4, 99, 0x7fffffff}) {
                List<OptionReply> replies = client.option(option, new byte[] {1, 2, 3});
                assertEquals(1, replies.size());
                assertEquals(NBD_REP_ERR_UNSUP, replies.getFirst().type(), "option " + option);
                assertEquals(option, replies.getFirst().option());
            }
            Export export = client.go("default");
            assertEquals(SIZE, export.size());
            assertEquals(4096, client.read(SIZE / 2, 4096).length);
        }
    }

    @Test
    void oversizedOptionIsSkippedWithTooBig() throws IOException {
        try (TestNbdClient client = TestNbdClient.negotiated(address, false)) {
            List<OptionReply> replies = client.option(NBD_OPT_GO, new byte[MAX_OPTION_DATA + 1]);
            assertEquals(NBD_REP_ERR_TOO_BIG, replies.getLast().type());
            assertEquals(SIZE, client.go("default").size());
        }
    }

    @Test
    void badOptionMagicClosesTheConnection() throws IOException {
        try (TestNbdClient client = TestNbdClient.negotiated(address, false)) {
            client.sendOption(0x1234_5678_9abc_def0L, NBD_OPT_LIST, new byte[0]);
            assertTrue(client.closedByServer());
        }
    }

    @Test
    void listReturnsEveryExportThenAck() throws IOException {
        try (TestNbdClient client = TestNbdClient.negotiated(address, false)) {
            List<OptionReply> replies = client.option(NBD_OPT_LIST, new byte[0]);
            assertEquals(List.of(NBD_REP_SERVER, NBD_REP_SERVER, NBD_REP_SERVER, NBD_REP_ACK),
                    types(replies));
            List<String> names = replies.subList(0, 3).stream().map(r -> {
                ByteBuffer b = ByteBuffer.wrap(r.data());
                byte[] name = new byte[b.getInt()];
                b.get(name);
                return new String(name, UTF_8);
            }).toList();
            assertEquals(List.of("default", "other", "ro"), names);
            assertEquals(NBD_REP_ERR_INVALID, client.option(NBD_OPT_LIST, new byte[] {0}).getLast().type());
        }
    }

    @Test
    void infoReportsExportNameDescriptionAndBlockSizeWithoutEnteringTransmission() throws IOException {
        try (TestNbdClient client = TestNbdClient.negotiated(address, false)) {
            List<OptionReply> replies = client.option(NBD_OPT_INFO,
                    TestNbdClient.infoData("other", NBD_INFO_NAME, NBD_INFO_DESCRIPTION, NBD_INFO_BLOCK_SIZE, 77));
            client.expectAck(replies);
            Export export = TestNbdClient.export(replies);
            assertEquals(256 << 10, export.size());
            int expectedFlags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_TRIM
                    | NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_SEND_FAST_ZERO | NBD_FLAG_CAN_MULTI_CONN
                    | NBD_FLAG_SEND_CACHE;
            assertEquals(expectedFlags, export.flags());
            assertEquals("other", new String(info(export, NBD_INFO_NAME), UTF_8));
            assertTrue(new String(info(export, NBD_INFO_DESCRIPTION), UTF_8).contains("other"));
            assertBlockSize(info(export, NBD_INFO_BLOCK_SIZE));
            // Still in option haggling: the block size is sent even when not asked for, then GO works.
            List<OptionReply> plain = client.option(NBD_OPT_INFO, TestNbdClient.infoData("other"));
            assertBlockSize(info(TestNbdClient.export(plain), NBD_INFO_BLOCK_SIZE));
            assertNull(info(TestNbdClient.export(plain), NBD_INFO_NAME));
            assertEquals(256 << 10, client.go("other").size());
        }
    }

    @Test
    void infoAndGoErrors() throws IOException {
        try (TestNbdClient client = TestNbdClient.negotiated(address, false)) {
            List<OptionReply> unknown = client.option(NBD_OPT_GO, TestNbdClient.infoData("nope"));
            assertEquals(List.of(NBD_REP_ERR_UNKNOWN), types(unknown));
            assertTrue(unknown.getFirst().text().contains("nope"), unknown.getFirst().text());
            assertEquals(NBD_REP_ERR_INVALID, client.option(NBD_OPT_INFO, new byte[] {0, 0, 0}).getLast().type());
            byte[] nameTooLong = ByteBuffer.allocate(6).putInt(100).putShort((short) 0).array();
            assertEquals(NBD_REP_ERR_INVALID, client.option(NBD_OPT_GO, nameTooLong).getLast().type());
            byte[] trailing = ByteBuffer.allocate(9).putInt(0).putShort((short) 1).putShort((short) 0).put((byte) 1)
                    .array();
            assertEquals(NBD_REP_ERR_INVALID, client.option(NBD_OPT_GO, trailing).getLast().type());
            assertEquals(SIZE, client.go("default").size());
        }
    }

    @Test
    void emptyNameSelectsTheDefaultExport() throws IOException {
        try (TestNbdClient client = TestNbdClient.negotiated(address, false)) {
            Export export = client.go("", NBD_INFO_NAME);
            assertEquals(SIZE, export.size());
            assertEquals("default", new String(info(export, NBD_INFO_NAME), UTF_8));
        }
    }

    @Test
    void exportNameWithAndWithoutZeroes() throws IOException {
        try (TestNbdClient client = TestNbdClient.negotiated(address, false)) {
            Export export = client.exportName("other", true);
            assertEquals(256 << 10, export.size());
            assertEquals(0, export.flags() & NBD_FLAG_SEND_DF);
            assertArrayEquals(new byte[4096], client.read(0, 4096));
        }
        try (TestNbdClient client = new TestNbdClient(address)) {
            client.clientFlags(NBD_FLAG_C_FIXED_NEWSTYLE);
            Export export = client.exportName("", false);
            assertEquals(SIZE, export.size());
            assertArrayEquals(new byte[512], client.read(0, 512));
        }
    }

    @Test
    void exportNameOfUnknownExportClosesTheConnection() throws IOException {
        try (TestNbdClient client = TestNbdClient.negotiated(address, false)) {
            client.sendOption(IHAVEOPT, NBD_OPT_EXPORT_NAME, "nope".getBytes(UTF_8));
            assertTrue(client.closedByServer());
        }
    }

    @Test
    void abortIsAcknowledgedThenClosed() throws IOException {
        try (TestNbdClient client = TestNbdClient.negotiated(address, false)) {
            client.expectAck(client.option(NBD_OPT_ABORT, new byte[0]));
            assertTrue(client.closedByServer());
        }
    }

    @Test
    void structuredRepliesOnceOnlyAndEnableDf() throws IOException {
        try (TestNbdClient client = TestNbdClient.negotiated(address, false)) {
            assertEquals(NBD_REP_ERR_INVALID, client.option(NBD_OPT_STRUCTURED_REPLY, new byte[] {1}).getLast().type());
            client.expectAck(client.option(NBD_OPT_STRUCTURED_REPLY, new byte[0]));
            assertEquals(NBD_REP_ERR_INVALID, client.option(NBD_OPT_STRUCTURED_REPLY, new byte[0]).getLast().type());
            assertNotEquals(0, client.go("default").flags() & NBD_FLAG_SEND_DF);
        }
    }

    @Test
    void readOnlyExportIsFlagged() throws IOException {
        try (TestNbdClient client = TestNbdClient.negotiated(address, false)) {
            assertNotEquals(0, client.go("ro").flags() & NBD_FLAG_READ_ONLY);
        }
    }

    @Test
    void setMetaContextNeedsStructuredReplies() throws IOException {
        try (TestNbdClient client = TestNbdClient.negotiated(address, false)) {
            List<OptionReply> replies = client.option(NBD_OPT_SET_META_CONTEXT,
                    TestNbdClient.metaData("default", BASE_ALLOCATION));
            assertEquals(List.of(NBD_REP_ERR_INVALID), types(replies));
        }
    }

    @Test
    void listMetaContextQueries() throws IOException {
        try (TestNbdClient client = TestNbdClient.negotiated(address, true)) {
            String[][] matching = {{}, {"base:"}, {BASE_ALLOCATION}, {"qemu:dirty-bitmap:x", "base:"}};
            for (String[] queries : matching) {
                List<OptionReply> replies = client.option(NBD_OPT_LIST_META_CONTEXT,
                        TestNbdClient.metaData("", queries));
                assertEquals(List.of(NBD_REP_META_CONTEXT, NBD_REP_ACK), types(replies), List.of(queries).toString());
                assertMetaContext(replies.getFirst(), 0);
            }
            for (String[] queries : new String[][] {{"qemu:"}, {"base:other"}, {"x-foo:bar"}}) {
                List<OptionReply> replies = client.option(NBD_OPT_LIST_META_CONTEXT,
                        TestNbdClient.metaData("", queries));
                assertEquals(List.of(NBD_REP_ACK), types(replies), List.of(queries).toString());
            }
            assertEquals(NBD_REP_ERR_INVALID, client.option(NBD_OPT_LIST_META_CONTEXT,
                    TestNbdClient.metaData("", "nocolon")).getLast().type());
            assertEquals(NBD_REP_ERR_UNKNOWN, client.option(NBD_OPT_LIST_META_CONTEXT,
                    TestNbdClient.metaData("nope")).getLast().type());
        }
    }

    @Test
    void setMetaContextSelectsBaseAllocationOnly() throws IOException {
        try (TestNbdClient client = TestNbdClient.negotiated(address, true)) {
            List<OptionReply> wildcard = client.option(NBD_OPT_SET_META_CONTEXT,
                    TestNbdClient.metaData("default", "base:"));
            assertEquals(List.of(NBD_REP_ACK), types(wildcard));
            List<OptionReply> replies = client.option(NBD_OPT_SET_META_CONTEXT,
                    TestNbdClient.metaData("default", "qemu:foo", BASE_ALLOCATION, BASE_ALLOCATION));
            assertEquals(List.of(NBD_REP_META_CONTEXT, NBD_REP_ACK), types(replies));
            assertMetaContext(replies.getFirst(), BASE_ALLOCATION_ID);
            assertEquals(NBD_REP_ERR_UNKNOWN, client.option(NBD_OPT_SET_META_CONTEXT,
                    TestNbdClient.metaData("nope", BASE_ALLOCATION)).getLast().type());
            byte[] truncated = ByteBuffer.allocate(12).putInt(0).putInt(1).putInt(40).array();
            assertEquals(NBD_REP_ERR_INVALID, client.option(NBD_OPT_SET_META_CONTEXT, truncated).getLast().type());
        }
    }

    private static List<Integer> types(List<OptionReply> replies) {
        return replies.stream().map(OptionReply::type).toList();
    }

    private static void assertMetaContext(OptionReply reply, int id) {
        ByteBuffer b = ByteBuffer.wrap(reply.data());
        assertEquals(id, b.getInt());
        assertEquals(BASE_ALLOCATION, UTF_8.decode(b).toString());
    }

    private static void assertBlockSize(byte[] info) {
        assertNotNull(info, "NBD_INFO_BLOCK_SIZE missing");
        ByteBuffer b = ByteBuffer.wrap(info);
        assertEquals(14, info.length + 2);
        assertEquals(MIN_BLOCK_SIZE, b.getInt());
        assertEquals(4096, b.getInt());
        assertEquals(32 << 20, b.getInt());
    }

    /** The payload (after the type) of the NBD_REP_INFO of this type, or null. */
    private static byte[] info(Export export, int type) {
        for (byte[] info : export.infos()) {
            ByteBuffer b = ByteBuffer.wrap(info);
            if (b.getShort() == type) {
                byte[] rest = new byte[b.remaining()];
                b.get(rest);
                return rest;
            }
        }
        return null;
    }
}
