package io.dedisk.nbd;

import static io.dedisk.nbd.NbdConstants.*;
import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.net.ConnectException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import org.junit.jupiter.api.Test;

/** The public lifecycle of {@link NbdServer} and many clients at once. */
class NbdServerTest {
    private static InetSocketAddress anyPort() {
        return new InetSocketAddress(InetAddress.getLoopbackAddress(), 0);
    }

    @Test
    void lifecycle() throws IOException {
        NbdServer server = new NbdServer(new MemoryVolumeProvider(new MemoryVolume("disk", 1 << 20)), anyPort());
        assertThrows(IllegalStateException.class, server::localAddress);
        server.start();
        InetSocketAddress address = server.localAddress();
        assertNotEquals(0, address.getPort());
        assertThrows(IllegalStateException.class, server::start);
        try (TestNbdClient client = TestNbdClient.negotiated(address, false)) {
            client.go("");
            assertEquals(1, server.activeConnections());
        }
        server.close();
        server.close(); // idempotent
        assertEquals(0, server.activeConnections());
        assertThrows(ConnectException.class, () -> new Socket(address.getAddress(), address.getPort()).close());
        new NbdServer(new MemoryVolumeProvider(), anyPort()).close(); // never started
    }

    @Test
    void manyConnectionsDoingRandomIoAtOnce() throws Exception {
        MemoryVolume disk = new MemoryVolume("disk", 8 << 20);
        try (NbdServer server = new NbdServer(new MemoryVolumeProvider(disk), anyPort());
             ExecutorService clients = Executors.newFixedThreadPool(8)) {
            server.start();
            List<Future<?>> results = new ArrayList<>();
            for (int c = 0; c < 8; c++) {
                int id = c;
                results.add(clients.submit((Callable<Void>) () -> {
                    // Each client owns a 1 MiB slice, writes random blocks there and reads them back pipelined.
                    try (TestNbdClient client = TestNbdClient.negotiated(server.localAddress(), id % 2 == 0)) {
                        client.go("disk");
                        Random random = new Random(id);
                        byte[] expected = new byte[1 << 20];
                        for (int round = 0; round < 20; round++) {
                            int count = 1 + random.nextInt(100);
                            for (int i = 0; i < count; i++) {
                                int offset = random.nextInt((1 << 20) - 8192);
                                byte[] data = new byte[1 + random.nextInt(8192)];
                                random.nextBytes(data);
                                System.arraycopy(data, 0, expected, offset, data.length);
                                client.write(id * (1L << 20) + offset, data);
                            }
                            for (int i = 0; i < 16; i++) {
                                client.send(0, NBD_CMD_READ, i, id * (1L << 20) + i * 65536L, 65536, null);
                            }
                            for (int i = 0; i < 16; i++) {
                                TestNbdClient.Reply reply = client.readReply();
                                assertEquals(0, reply.error());
                                int block = (int) reply.cookie();
                                byte[] want = Arrays.copyOfRange(expected, block * 65536, (block + 1) * 65536);
                                assertArrayEquals(want, reply.data(), "client " + id + " block " + block);
                            }
                        }
                        client.send(0, NBD_CMD_DISC, 0, 0, 0, null);
                        assertTrue(client.closedByServer());
                    }
                    return null;
                }));
            }
            for (Future<?> result : results) result.get();
        }
    }
}
