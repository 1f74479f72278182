package io.dedisk.nbd;

import static io.dedisk.nbd.NbdConstants.*;
import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BooleanSupplier;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import io.dedisk.DediskException;

/**
 * The resource limits of {@link NbdLimits} against misbehaving clients: connection caps, the handshake, idle,
 * payload and reply deadlines, the global budget, and buffers an idle connection gives back. Deadlines are set to
 * fractions of a second here; every wait for the server is bounded by {@link #WAIT}.
 */
class NbdLimitsTest {
    private static final int SIZE = 64 << 20;
    private static final Duration WAIT = Duration.ofSeconds(10);

    private final List<AutoCloseable> open = new ArrayList<>();
    private MemoryVolume disk;
    private NbdServer server;

    private InetSocketAddress start(NbdLimits limits) throws IOException {
        disk = new MemoryVolume("disk", SIZE);
        server = new NbdServer(new MemoryVolumeProvider(disk), new InetSocketAddress(InetAddress.getLoopbackAddress(),
                0), limits);
        server.start();
        return server.localAddress();
    }

    private static NbdLimits fast() {
        return NbdLimits.defaults().withTimeouts(Duration.ofMillis(400), Duration.ofMillis(600),
                Duration.ofMillis(400), 64L << 20);
    }

    @AfterEach
    void stop() throws Exception {
        for (AutoCloseable c : open) c.close();
        if (server != null) {
            server.close();
            assertEquals(0, server.activeConnections());
            assertEquals(0, server.budgetUsed(), "budget left in use after close");
        }
    }

    private <T extends AutoCloseable> T keep(T c) {
        open.add(c);
        return c;
    }

    private static void await(String what, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) fail("not within " + WAIT + ": " + what);
            Thread.sleep(10);
        }
    }

    /** A raw socket from a chosen loopback address; true if the server closed it without a greeting. */
    private static boolean refusedFrom(InetSocketAddress server, String localAddress) throws IOException {
        try (Socket s = new Socket(server.getAddress(), server.getPort(), InetAddress.getByName(localAddress), 0)) {
            s.setSoTimeout((int) WAIT.toMillis());
            InputStream in = s.getInputStream();
            try {
                return in.read() < 0;
            } catch (java.net.SocketException e) {
                return true; // reset
            }
        }
    }

    @Test
    void connectionsOverTheServerOrPerClientLimitAreClosedAtOnce() throws Exception {
        InetSocketAddress address = start(NbdLimits.defaults().withMaxConnections(3, 2));
        keep(TestNbdClient.negotiated(address, false));
        keep(TestNbdClient.negotiated(address, false));
        await("two connections", () -> server.activeConnections() == 2);
        assertTrue(refusedFrom(address, "127.0.0.1"), "third connection from 127.0.0.1 was not refused");
        assertEquals(1, server.refusedConnections());
        // Another address is under its own limit, until the server-wide one is reached.
        Socket other = keep(new Socket(address.getAddress(), address.getPort(), InetAddress.getByName("127.0.0.2"), 0));
        other.setSoTimeout((int) WAIT.toMillis());
        assertEquals(0x4e, other.getInputStream().read(), "first greeting byte 'N' of NBDMAGIC");
        await("three connections", () -> server.activeConnections() == 3);
        assertTrue(refusedFrom(address, "127.0.0.3"), "fourth connection was not refused");
        assertEquals(2, server.refusedConnections());
        // Closing one makes room again, and the slot is counted for its address only.
        open.removeFirst().close();
        await("two connections", () -> server.activeConnections() == 2);
        try (TestNbdClient again = TestNbdClient.negotiated(address, false)) {
            again.go("disk");
            assertEquals(4096, again.read(0, 4096).length);
        }
    }

    @Test
    void aClientStalledMidHandshakeIsDisconnected() throws Exception {
        InetSocketAddress address = start(fast());
        try (TestNbdClient stalled = new TestNbdClient(address); TestNbdClient half = new TestNbdClient(address)) {
            half.clientFlags(NBD_FLAG_C_FIXED_NEWSTYLE);
            half.sendRaw(new byte[] {0x49, 0x48}); // two bytes of IHAVEOPT, then nothing
            assertTrue(stalled.closedByServer(), "no client flags: still connected");
            assertTrue(half.closedByServer(), "half an option: still connected");
        }
        await("no connections", () -> server.activeConnections() == 0);
    }

    @Test
    void anIdleConnectionIsClosedButNotOneWithARequestInFlight() throws Exception {
        InetSocketAddress address = start(fast());
        disk.delay((op, offset) -> op == MemoryVolume.Op.READ && offset == 0 ? 1500 : 0);
        try (TestNbdClient busy = TestNbdClient.negotiated(address, false);
             TestNbdClient idle = TestNbdClient.negotiated(address, false)) {
            busy.go("disk");
            idle.go("disk");
            assertEquals(4096, idle.read(8192, 4096).length);
            // The slow read outlasts the idle timeout: it is in flight, so the connection stays.
            assertEquals(4096, busy.read(0, 4096).length);
            assertTrue(idle.closedByServer(), "idle connection still open");
            assertTrue(busy.closedByServer(), "connection idle after its read still open");
        }
    }

    @Test
    void aDeclaredWriteWhosePayloadNeverComesHoldsNoMemoryAndTimesOut() throws Exception {
        InetSocketAddress address = start(fast());
        List<TestNbdClient> stalled = new ArrayList<>();
        for (int i = 0; i < 7; i++) {
            TestNbdClient c = keep(TestNbdClient.negotiated(address, false));
            c.go("disk");
            c.send(0, NBD_CMD_WRITE, i, 0, MAX_PAYLOAD, null); // 32 MiB declared, none sent
            stalled.add(c);
        }
        TestNbdClient dripping = keep(TestNbdClient.negotiated(address, false));
        dripping.go("disk");
        dripping.send(0, NBD_CMD_WRITE, 99, 0, MAX_PAYLOAD, new byte[1 << 20]); // 1 MiB of 32, then nothing
        await("all stalled writers are waiting", () -> server.budgetUsed() > 0);
        // Header charges plus the pieces the dripping client filled: far below the 7 x 32 MiB declared.
        long used = server.budgetUsed();
        assertTrue(used < (4L << 20), "budget in use " + used + " with stalled writers");
        try (TestNbdClient good = TestNbdClient.negotiated(address, true)) {
            good.go("disk");
            good.write(1 << 20, new byte[65536]);
            assertEquals(65536, good.read(1 << 20, 65536).length);
        }
        for (TestNbdClient c : stalled) assertTrue(c.closedByServer(), "stalled writer still connected");
        assertTrue(dripping.closedByServer(), "dripping writer still connected");
        await("budget back", () -> server.budgetUsed() == 0);
    }

    @Test
    void aClientThatNeverReadsItsRepliesIsDisconnected() throws Exception {
        InetSocketAddress address = start(fast());
        try (TestNbdClient deaf = TestNbdClient.negotiated(address, false)) {
            deaf.go("disk");
            try {
                for (int i = 0; i < 400; i++) deaf.send(0, NBD_CMD_READ, i, 0, 1 << 20, null);
            } catch (IOException e) {
                // The server may already have closed: that is the point.
            }
            await("deaf client disconnected", () -> server.activeConnections() == 0);
        }
        await("budget back", () -> server.budgetUsed() == 0);
    }

    @Test
    void anIdleConnectionGivesItsLargeInputBufferBack() throws Exception {
        InetSocketAddress address = start(NbdLimits.defaults());
        try (TestNbdClient client = TestNbdClient.negotiated(address, false)) {
            client.go("disk");
            // 100 pipelined headers fill the small input buffer: the reader borrows a large one.
            for (int i = 0; i < 100; i++) client.send(0, NBD_CMD_READ, i, i * 4096L, 4096, null);
            for (int i = 0; i < 100; i++) assertEquals(0, client.readReply().error());
            await("idle connection holds no budget", () -> server.budgetUsed() == 0);
            assertEquals(1, server.activeConnections());
            assertEquals(4096, client.read(0, 4096).length);
        }
    }

    @Test
    void aConnectionThatRunsOutOfMemoryDoesNotTakeOthersOrTheAcceptLoopDown() throws Exception {
        MemoryVolume volume = new MemoryVolume("disk", 1 << 20);
        MemoryVolumeProvider inner = new MemoryVolumeProvider(volume);
        io.dedisk.pool.VolumeProvider provider = new io.dedisk.pool.VolumeProvider() {
            @Override
            public List<String> volumeNames() {
                throw new OutOfMemoryError("simulated: Cannot reserve 131072 bytes of direct buffer memory");
            }

            @Override
            public java.util.Optional<io.dedisk.pool.VolumeDevice> volume(String name) {
                return inner.volume(name);
            }
        };
        server = new NbdServer(provider, new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
        server.start();
        InetSocketAddress address = server.localAddress();
        try (TestNbdClient bystander = TestNbdClient.negotiated(address, false)) {
            bystander.go("disk");
            for (int i = 0; i < 20; i++) {
                try (TestNbdClient victim = TestNbdClient.negotiated(address, false)) {
                    victim.sendOption(IHAVEOPT, NBD_OPT_LIST, new byte[0]);
                    assertTrue(victim.closedByServer(), "connection out of memory not closed");
                }
            }
            assertEquals(4096, bystander.read(0, 4096).length);
            try (TestNbdClient later = TestNbdClient.negotiated(address, false)) {
                later.go("disk");
                assertEquals(4096, later.read(0, 4096).length);
            }
        }
    }

    @Test
    void connectionsBeyondThePlatformReadersAreServedOnVirtualOnes() throws Exception {
        InetSocketAddress address = start(NbdLimits.defaults());
        int count = NbdConnection.PLATFORM_READERS + 8;
        List<TestNbdClient> clients = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            TestNbdClient c = keep(TestNbdClient.negotiated(address, false));
            c.go("disk");
            clients.add(c);
        }
        // Platform threads only (virtual ones are not listed); the hand-off follows the NBD_OPT_GO reply.
        await("all platform reader slots taken", () -> platformReaders() == NbdConnection.PLATFORM_READERS);
        Thread.sleep(100);
        assertEquals(NbdConnection.PLATFORM_READERS, platformReaders(), "platform reader threads beyond the cap");
        for (int i = 0; i < count; i++) {
            byte[] data = new byte[4096];
            data[0] = (byte) i;
            clients.get(i).write(i * 4096L, data);
        }
        for (int i = 0; i < count; i++) assertEquals((byte) i, clients.get(i).read(i * 4096L, 4096)[0], "client " + i);
    }

    private static long platformReaders() {
        return Thread.getAllStackTraces().keySet().stream().filter(t -> t.getName().startsWith("nbd-conn ")).count();
    }

    @Test
    void limitsAreValidatedWithExpectedAndFoundValues() {
        var e = assertThrows(DediskException.InvalidRequestException.class,
                () -> NbdLimits.defaults().withMaxConnections(0, 1));
        assertTrue(e.getMessage().contains("found 0"), e.getMessage());
        assertThrows(DediskException.InvalidRequestException.class,
                () -> NbdLimits.defaults().withInflight(64L << 20, 1L << 20));
        assertThrows(DediskException.InvalidRequestException.class,
                () -> NbdLimits.defaults().withTimeouts(Duration.ZERO, Duration.ZERO, Duration.ofSeconds(1), 1));
        assertEquals(Duration.ZERO, NbdLimits.defaults().withTimeouts(Duration.ofSeconds(1), Duration.ZERO,
                Duration.ofSeconds(1), 1).idleTimeout(), "idle timeout 0 means off");
        NbdLimits limits = NbdLimits.defaults().withTimeouts(Duration.ofSeconds(1), Duration.ZERO,
                Duration.ofSeconds(2), 1L << 20);
        assertEquals(Duration.ofSeconds(34).toNanos(), limits.transferNanos(32L << 20));
    }

    @Test
    void unusedSocketReadTimesOutOnlyOnTheClientSide() throws Exception {
        // Sanity check of the helper used above: a server that keeps the connection shows no end of stream.
        InetSocketAddress address = start(NbdLimits.defaults());
        try (Socket s = new Socket(address.getAddress(), address.getPort())) {
            s.setSoTimeout(300);
            InputStream in = s.getInputStream();
            assertEquals(18, in.readNBytes(18).length, "greeting");
            assertThrows(SocketTimeoutException.class, in::read);
        }
    }
}
