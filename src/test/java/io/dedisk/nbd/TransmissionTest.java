package io.dedisk.nbd;

import static io.dedisk.nbd.NbdConstants.*;
import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Random;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import io.dedisk.DediskException;
import io.dedisk.nbd.TestNbdClient.Reply;

/** The transmission phase: commands, validation, error mapping, pipelining, disconnects. */
class TransmissionTest {
    private static final int SIZE = 1 << 20;

    private MemoryVolume disk;
    private MemoryVolume readOnly;
    private NbdServer server;
    private InetSocketAddress address;

    @BeforeEach
    void start() throws IOException {
        disk = new MemoryVolume("disk", SIZE);
        readOnly = new MemoryVolume("ro", 64 << 10, true);
        server = new NbdServer(new MemoryVolumeProvider(disk, readOnly),
                new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
        server.start();
        address = server.localAddress();
    }

    @AfterEach
    void stop() {
        server.close();
        assertEquals(0, server.activeConnections());
    }

    /** A client in transmission on {@code export}; structured replies and base:allocation if asked. */
    private TestNbdClient open(String export, boolean structured, boolean blockStatus) throws IOException {
        TestNbdClient client = TestNbdClient.negotiated(address, structured);
        if (blockStatus) {
            client.expectAck(client.option(NBD_OPT_SET_META_CONTEXT, TestNbdClient.metaData(export, BASE_ALLOCATION)));
        }
        client.go(export);
        return client;
    }

    private static byte[] random(int length, long seed) {
        byte[] bytes = new byte[length];
        new Random(seed).nextBytes(bytes);
        return bytes;
    }

    @ParameterizedTest(name = "structured={0}")
    @ValueSource(booleans = {false, true})
    void writeThenReadBack(boolean structured) throws IOException {
        try (TestNbdClient client = open("disk", structured, false)) {
            byte[] data = random(3 * 4096 + 17, 1);
            client.write(4093, data);
            assertArrayEquals(data, client.read(4093, data.length));
            assertArrayEquals(data, disk.snapshot(4093, data.length));
            Reply reply = client.request(NBD_CMD_FLAG_DF | NBD_CMD_FLAG_FUA, NBD_CMD_READ, 0, 65536, null);
            if (structured) {
                assertEquals(NBD_REPLY_TYPE_OFFSET_DATA, reply.chunkType());
                assertTrue(reply.done());
                assertEquals(0, reply.dataOffset());
                assertArrayEquals(disk.snapshot(0, 65536), reply.data());
            } else {
                assertEquals(NBD_EINVAL, reply.error(), "DF is not valid without structured replies");
            }
        }
    }

    @Test
    void largeReadAndWriteAtTheMaximumPayload() throws IOException {
        MemoryVolume big = new MemoryVolume("big", 40 << 20);
        try (NbdServer bigServer = new NbdServer(new MemoryVolumeProvider(big),
                new InetSocketAddress(InetAddress.getLoopbackAddress(), 0))) {
            bigServer.start();
            try (TestNbdClient client = TestNbdClient.negotiated(bigServer.localAddress(), true)) {
                client.go("big");
                byte[] data = random(MAX_PAYLOAD, 2);
                client.write(4096, data);
                assertArrayEquals(data, client.read(4096, MAX_PAYLOAD));
                Reply tooLong = client.request(0, NBD_CMD_READ, 0, MAX_PAYLOAD + 1, null);
                assertEquals(NBD_EOVERFLOW, tooLong.error());
            }
        }
    }

    @Test
    void outOfRangeReadIsEinvalWithAMessage() throws IOException {
        try (TestNbdClient client = open("disk", true, false)) {
            Reply reply = client.request(0, NBD_CMD_READ, SIZE - 4096, 8192, null);
            assertEquals(NBD_REPLY_TYPE_ERROR, reply.chunkType());
            assertTrue(reply.done());
            assertEquals(NBD_EINVAL, reply.error());
            assertTrue(reply.message().contains("beyond end"), reply.message());
            assertEquals(NBD_EINVAL, client.request(0, NBD_CMD_READ, -4096, 4096, null).error(), "offset near 2^64");
            assertEquals(NBD_EINVAL, client.request(0, NBD_CMD_TRIM, SIZE, 1, null).error());
            assertEquals(NBD_EINVAL, client.request(0, NBD_CMD_CACHE, SIZE - 1, 2, null).error());
        }
        try (TestNbdClient client = open("disk", false, false)) {
            Reply reply = client.request(0, NBD_CMD_READ, SIZE, 512, null);
            assertFalse(reply.structured());
            assertEquals(NBD_EINVAL, reply.error());
            assertNull(reply.data());
            assertEquals(512, client.read(SIZE - 512, 512).length);
        }
    }

    @Test
    void writeBeyondEndIsEnospcAndTheStreamStaysInSync() throws IOException {
        try (TestNbdClient client = open("disk", false, false)) {
            byte[] data = random(8192, 3);
            assertEquals(NBD_ENOSPC, client.request(0, NBD_CMD_WRITE, SIZE - 4096, data.length, data).error());
            assertEquals(NBD_ENOSPC, client.request(0, NBD_CMD_WRITE, Long.MAX_VALUE, data.length, data).error());
            assertEquals(NBD_ENOSPC, client.request(0, NBD_CMD_WRITE_ZEROES, SIZE - 4096, 8192, null).error());
            assertFalse(disk.isAllocated(SIZE - 4096));
            client.write(0, data);
            assertArrayEquals(data, client.read(0, data.length));
        }
    }

    @Test
    void unknownCommandsAndFlagsAreEinval() throws IOException {
        try (TestNbdClient client = open("disk", false, false)) {
            assertEquals(NBD_EINVAL, client.request(0, 42, 0, 4096, null).error());
            assertEquals(NBD_EINVAL, client.request(0, 8, 0, 4096, null).error(), "NBD_CMD_RESIZE is not served");
            assertEquals(NBD_EINVAL, client.request(NBD_CMD_FLAG_NO_HOLE, NBD_CMD_READ, 0, 4096, null).error());
            assertEquals(NBD_EINVAL, client.request(NBD_CMD_FLAG_REQ_ONE, NBD_CMD_WRITE, 0, 4, new byte[4]).error());
            assertEquals(NBD_EINVAL, client.request(1 << 5, NBD_CMD_TRIM, 0, 4096, null).error());
            assertEquals(NBD_EINVAL, client.request(NBD_CMD_FLAG_DF, NBD_CMD_WRITE_ZEROES, 0, 4096, null).error());
            assertEquals(NBD_EINVAL, client.request(0, NBD_CMD_FLUSH, 0, 4096, null).error());
            assertFalse(disk.isAllocated(0), "the refused write must not have happened");
            assertArrayEquals(new byte[4096], client.read(0, 4096));
        }
    }

    @Test
    void zeroLengthRequestsAreEinval() throws IOException {
        try (TestNbdClient client = open("disk", false, false)) {
            int[] types = {NBD_CMD_READ, NBD_CMD_WRITE, NBD_CMD_TRIM, NBD_CMD_CACHE, NBD_CMD_WRITE_ZEROES};
            for (int type : types) {
                assertEquals(NBD_EINVAL, client.request(0, type, 0, 0, null).error(), Request.commandName(type));
            }
            assertEquals(0, client.request(0, NBD_CMD_FLUSH, 0, 0, null).error());
        }
    }

    @Test
    void structuredErrorsCarryMessages() throws IOException {
        try (TestNbdClient client = open("disk", true, false)) {
            Reply flags = client.request(NBD_CMD_FLAG_NO_HOLE, NBD_CMD_READ, 0, 4096, null);
            assertEquals(NBD_REPLY_TYPE_ERROR, flags.chunkType());
            assertEquals(NBD_EINVAL, flags.error());
            assertTrue(flags.message().contains("flags"), flags.message());
            Reply noContext = client.request(0, NBD_CMD_BLOCK_STATUS, 0, 4096, null);
            assertEquals(NBD_EINVAL, noContext.error());
            assertTrue(noContext.message().contains("NBD_OPT_SET_META_CONTEXT"), noContext.message());
            Reply ok = client.request(0, NBD_CMD_FLUSH, 0, 0, null);
            assertEquals(0, ok.error());
        }
    }

    @Test
    void badRequestMagicClosesOnlyThatConnection() throws IOException {
        try (TestNbdClient good = open("disk", false, false); TestNbdClient bad = open("disk", false, false)) {
            bad.sendRaw(ByteBuffer.allocate(28).putInt(0xdeadbeef).array());
            assertTrue(bad.closedByServer());
            good.write(0, new byte[] {1, 2, 3});
            try (TestNbdClient another = open("disk", true, false)) {
                assertArrayEquals(new byte[] {1, 2, 3}, another.read(0, 3));
            }
        }
    }

    @Test
    void oversizedWritePayloadClosesTheConnection() throws IOException {
        try (TestNbdClient client = open("disk", false, false)) {
            client.send(0, NBD_CMD_WRITE, 1, 0, MAX_PAYLOAD + 1L, null);
            assertTrue(client.closedByServer());
        }
    }

    @Test
    void pipelinedRequestsCompleteOutOfOrderWithTheirCookies() throws IOException {
        // Requests on even blocks take 40 ms, odd blocks are immediate: replies must overtake each other.
        disk.delay((op, offset) -> (offset / 4096) % 2 == 0 ? 40 : 0);
        try (TestNbdClient client = open("disk", true, false)) {
            List<Long> sent = new ArrayList<>();
            for (int i = 0; i < 64; i++) {
                client.send(0, NBD_CMD_WRITE, 1000 + i, i * 4096L, 4096, random(4096, 100 + i));
                sent.add(1000L + i);
            }
            List<Long> answered = new ArrayList<>();
            for (int i = 0; i < 64; i++) {
                Reply reply = client.readReply();
                assertEquals(0, reply.error());
                answered.add(reply.cookie());
            }
            assertEquals(new HashSet<>(sent), new HashSet<>(answered));
            assertNotEquals(sent, answered, "replies should complete out of order");

            sent.clear();
            answered.clear();
            for (int i = 0; i < 64; i++) {
                client.send(0, NBD_CMD_READ, 2000 + i, i * 4096L, 4096, null);
                sent.add(2000L + i);
            }
            for (int i = 0; i < 64; i++) {
                Reply reply = client.readReply();
                assertEquals(0, reply.error());
                assertTrue(reply.done());
                int block = (int) (reply.cookie() - 2000);
                assertEquals(block * 4096L, reply.dataOffset());
                assertArrayEquals(random(4096, 100 + block), reply.data(), "block " + block);
                answered.add(reply.cookie());
            }
            assertEquals(new HashSet<>(sent), new HashSet<>(answered));
            assertNotEquals(sent, answered, "replies should complete out of order");
        }
    }

    @Test
    void moreRequestsThanTheInFlightLimitAreAllAnswered() throws IOException {
        disk.delay((op, offset) -> 2);
        try (TestNbdClient client = open("disk", false, false)) {
            int requests = 5 * NbdConnection.INFLIGHT_UNITS;
            for (int i = 0; i < requests; i++) client.send(0, NBD_CMD_READ, i, (i % 256) * 4096L, 4096, null);
            HashSet<Long> answered = new HashSet<>();
            for (int i = 0; i < requests; i++) {
                Reply reply = client.readReply();
                assertEquals(0, reply.error());
                assertTrue(answered.add(reply.cookie()));
            }
            assertEquals(requests, answered.size());
        }
    }

    @Test
    void blockStatusReportsHolesAndZeroes() throws IOException {
        try (TestNbdClient client = open("disk", true, true)) {
            client.write(0, random(8192, 4));                                             // blocks 0-1: data
            client.request(NBD_CMD_FLAG_NO_HOLE, NBD_CMD_WRITE_ZEROES, 8192, 4096, null);  // block 2: allocated zero
            // block 3..: hole
            long[][] expected = {{8192, 0}, {4096, NBD_STATE_ZERO}, {SIZE - 12288, NBD_STATE_HOLE | NBD_STATE_ZERO}};
            Reply all = client.request(0, NBD_CMD_BLOCK_STATUS, 0, SIZE, null);
            assertEquals(NBD_REPLY_TYPE_BLOCK_STATUS, all.chunkType());
            assertTrue(all.done());
            assertEquals(BASE_ALLOCATION_ID, all.contextId());
            assertArrayEquals(expected, all.descriptors());

            Reply one = client.request(NBD_CMD_FLAG_REQ_ONE, NBD_CMD_BLOCK_STATUS, 4096, 65536, null);
            assertArrayEquals(new long[][] {{4096, 0}}, one.descriptors());
            Reply oneShort = client.request(NBD_CMD_FLAG_REQ_ONE, NBD_CMD_BLOCK_STATUS, 20480, 100, null);
            assertArrayEquals(new long[][] {{100, NBD_STATE_HOLE | NBD_STATE_ZERO}}, oneShort.descriptors());

            // A device that answers one 4 KiB extent per call: the server asks again and merges equal neighbours.
            disk.blockStatusShape(1, 4096);
            assertArrayEquals(expected, client.request(0, NBD_CMD_BLOCK_STATUS, 0, SIZE, null).descriptors());
            assertArrayEquals(new long[][] {{8192, 0}},
                    client.request(NBD_CMD_FLAG_REQ_ONE, NBD_CMD_BLOCK_STATUS, 0, SIZE, null).descriptors());

            assertEquals(NBD_EINVAL, client.request(0, NBD_CMD_BLOCK_STATUS, SIZE - 4096, 8192, null).error());
        }
    }

    @Test
    void blockStatusIsCappedInDescriptors() throws IOException {
        try (TestNbdClient client = open("disk", true, true)) {
            for (int block = 0; block < SIZE / 4096; block += 2) client.write(block * 4096L, new byte[] {1});
            Reply reply = client.request(0, NBD_CMD_BLOCK_STATUS, 0, SIZE, null);
            assertEquals(SIZE / 4096, reply.descriptors().length); // 256 alternating runs, under the cap
            MemoryVolume huge = new MemoryVolume("huge", 64 << 20);
            try (NbdServer hugeServer = new NbdServer(new MemoryVolumeProvider(huge),
                    new InetSocketAddress(InetAddress.getLoopbackAddress(), 0))) {
                hugeServer.start();
                try (TestNbdClient c = TestNbdClient.negotiated(hugeServer.localAddress(), true)) {
                    c.expectAck(c.option(NBD_OPT_SET_META_CONTEXT, TestNbdClient.metaData("huge", BASE_ALLOCATION)));
                    c.go("huge");
                    for (int block = 0; block < (64 << 20) / 4096; block += 2) {
                        huge.write(block * 4096L, ByteBuffer.wrap(new byte[] {1}), false);
                    }
                    Reply capped = c.request(0, NBD_CMD_BLOCK_STATUS, 0, 64 << 20, null);
                    assertEquals(MAX_BLOCK_STATUS_DESCRIPTORS, capped.descriptors().length);
                    for (int i = 0; i < MAX_BLOCK_STATUS_DESCRIPTORS; i++) {
                        long status = i % 2 == 0 ? 0 : NBD_STATE_HOLE | NBD_STATE_ZERO;
                        assertArrayEquals(new long[] {4096, status}, capped.descriptors()[i], "descriptor " + i);
                    }
                }
            }
        }
    }

    @Test
    void writeZeroesTrimFlushFuaAndCache() throws IOException {
        try (TestNbdClient client = open("disk", false, false)) {
            client.write(0, random(16384, 5));
            assertEquals(0, client.request(0, NBD_CMD_WRITE_ZEROES, 0, 4096, null).error());
            assertFalse(disk.isAllocated(0), "WRITE_ZEROES without NO_HOLE may trim");
            assertEquals(0, client.request(NBD_CMD_FLAG_NO_HOLE, NBD_CMD_WRITE_ZEROES, 4096, 4096, null).error());
            assertTrue(disk.isAllocated(4096), "NO_HOLE keeps the block allocated");
            int fastFua = NBD_CMD_FLAG_FAST_ZERO | NBD_CMD_FLAG_FUA;
            assertEquals(0, client.request(fastFua, NBD_CMD_WRITE_ZEROES, 8192, 4096, null).error());
            assertArrayEquals(new byte[12288], client.read(0, 12288));
            assertEquals(0, client.request(0, NBD_CMD_TRIM, 12288, 4096, null).error());
            assertFalse(disk.isAllocated(12288));
            int flushes = disk.flushes();
            assertEquals(0, client.request(0, NBD_CMD_FLUSH, 0, 0, null).error());
            assertEquals(flushes + 1, disk.flushes());
            assertEquals(0, client.request(NBD_CMD_FLAG_FUA, NBD_CMD_WRITE, 0, 3, new byte[3]).error());
            assertEquals(1, disk.fuaWrites());
            assertEquals(0, client.request(0, NBD_CMD_CACHE, 0, SIZE, null).error());
        }
    }

    @Test
    void readOnlyExportRefusesWritesWithEperm() throws IOException {
        try (TestNbdClient client = open("ro", true, false)) {
            Reply write = client.request(0, NBD_CMD_WRITE, 0, 4096, new byte[4096]);
            assertEquals(NBD_EPERM, write.error());
            assertEquals(NBD_EPERM, client.request(0, NBD_CMD_TRIM, 0, 4096, null).error());
            assertEquals(NBD_EPERM, client.request(0, NBD_CMD_WRITE_ZEROES, 0, 4096, null).error());
            assertEquals(4096, client.read(0, 4096).length);
            assertEquals(0, client.request(0, NBD_CMD_FLUSH, 0, 0, null).error());
        }
    }

    @Test
    void deviceExceptionsMapToNbdErrorsAndDoNotKillTheConnection() throws IOException {
        disk.fault((op, offset) -> switch ((int) (offset / 4096)) {
            case 1 -> new DediskException.CorruptionException("block 1 checksum mismatch");
            case 2 -> new DediskException.StorageException("disk on fire", new IOException("EIO"));
            case 3 -> new DediskException.NoSpaceException("pool full", null);
            case 4 -> new DediskException.ReadOnlyException("pool went read-only");
            case 5 -> new DediskException.InvalidRequestException("nope");
            case 6 -> new AssertionError("a bug");
            case 7 -> new IllegalStateException("another bug");
            default -> null;
        });
        try (TestNbdClient client = open("disk", true, false)) {
            int[] expected = {0, NBD_EIO, NBD_EIO, NBD_ENOSPC, NBD_EPERM, NBD_EINVAL, NBD_EIO, NBD_EIO};
            for (int block = 1; block < expected.length; block++) {
                Reply read = client.request(0, NBD_CMD_READ, block * 4096L, 4096, null);
                assertEquals(expected[block], read.error(), "read of block " + block);
                assertTrue(read.done());
                Reply write = client.request(0, NBD_CMD_WRITE, block * 4096L, 4096, new byte[4096]);
                assertEquals(expected[block], write.error(), "write of block " + block);
            }
            Reply corrupt = client.request(0, NBD_CMD_READ, 4096, 4096, null);
            assertTrue(corrupt.message().contains("checksum mismatch"), corrupt.message());
            assertEquals(4096, client.read(0, 4096).length);
        }
        try (TestNbdClient client = open("disk", false, false)) {
            assertEquals(NBD_EIO, client.request(0, NBD_CMD_READ, 6 * 4096, 4096, null).error());
            assertEquals(4096, client.read(0, 4096).length);
        }
    }

    @Test
    void discWaitsForInFlightRepliesThenCloses() throws IOException {
        disk.delay((op, offset) -> op == MemoryVolume.Op.WRITE ? 100 : 0);
        try (TestNbdClient client = open("disk", false, false)) {
            for (int i = 0; i < 8; i++) client.send(0, NBD_CMD_WRITE, i, i * 4096L, 4096, random(4096, i));
            client.send(0, NBD_CMD_DISC, 99, 0, 0, null);
            for (int i = 0; i < 8; i++) assertEquals(0, client.readReply().error());
            assertTrue(client.closedByServer());
        }
        for (int i = 0; i < 8; i++) assertArrayEquals(random(4096, i), disk.snapshot(i * 4096, 4096));
    }

    @Test
    void clientVanishingMidRequestIsCleanedUp() throws Exception {
        try (TestNbdClient client = open("disk", false, false)) {
            client.send(0, NBD_CMD_WRITE, 1, 0, 65536, new byte[1000]);
        }
        awaitNoConnections(server);
    }

    @Test
    void serverCloseEndsIdleAndBusyConnections() throws Exception {
        java.util.concurrent.CountDownLatch reading = new java.util.concurrent.CountDownLatch(1);
        disk.delay((op, offset) -> {
            if (op != MemoryVolume.Op.READ) return 0;
            reading.countDown();
            return 200;
        });
        TestNbdClient idle = open("disk", false, false);
        TestNbdClient busy = open("disk", false, false);
        TestNbdClient haggling = TestNbdClient.negotiated(address, false);
        busy.send(0, NBD_CMD_READ, 7, 0, 4096, null);
        // The request must be in flight (being served), not still in the socket: closing a socket with unread bytes
        // resets it, and the reply would never arrive.
        assertTrue(reading.await(10, java.util.concurrent.TimeUnit.SECONDS), "the server started the read");
        assertEquals(3, server.activeConnections());
        server.close();
        assertEquals(0, server.activeConnections());
        Reply reply = busy.readReply();
        assertEquals(7, reply.cookie(), "in-flight request answered before the close");
        assertEquals(0, reply.error());
        for (TestNbdClient client : List.of(idle, busy, haggling)) {
            assertTrue(client.closedByServer());
            client.close();
        }
    }

    @Test
    void severalConnectionsShareAnExport() throws IOException {
        try (TestNbdClient a = open("disk", true, false); TestNbdClient b = open("disk", false, false)) {
            byte[] data = random(4096, 6);
            a.write(8192, data);
            assertEquals(0, a.request(0, NBD_CMD_FLUSH, 0, 0, null).error());
            assertArrayEquals(data, b.read(8192, 4096));
        }
    }

    static void awaitNoConnections(NbdServer server) throws InterruptedException {
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (server.activeConnections() > 0 && System.nanoTime() < deadline) Thread.sleep(10);
        assertEquals(0, server.activeConnections());
    }
}
