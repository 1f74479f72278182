package io.dedisk.cli;

import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.DediskException;
import io.dedisk.pool.Pool;
import java.io.IOException;
import java.net.HttpURLConnection;
import java.net.URI;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The control endpoint's token (a real HTTP server on loopback over a real pool): a request without it or with a
 * wrong one is answered 403 and changes nothing; and the streaming answer's last line carries a failure's status.
 */
class ControlServerTest {
    @TempDir Path tmp;

    /** Sends op to the endpoint with the given token header (null: none); returns the status. */
    static int send(ControlClient right, String op, String token) throws Exception {
        HttpURLConnection c = (HttpURLConnection) URI.create("http://" + right.address + "/" + op).toURL().openConnection();
        if (token != null) c.setRequestProperty(ControlServer.TOKEN_HEADER, token);
        try {
            return c.getResponseCode();
        } finally {
            c.disconnect();
        }
    }

    @Test
    void requestsWithoutTheRightTokenAreRefusedAndChangeNothing() throws Exception {
        PoolDirectory.create(tmp.resolve("pool"), new Pool.Options(1 << 20, 1 << 20, 0, false));
        try (PoolDirectory p = PoolDirectory.open(tmp.resolve("pool")); ControlServer control = new ControlServer(p.pool)) {
            control.start();
            ControlClient right = control.client();
            String create = "volume/create?name=v&size=1M";
            assertEquals(403, send(right, create, null), "no token");
            assertEquals(403, send(right, create, ""), "an empty token");
            String token = right.fileLine().trim().split(" ")[1];
            assertEquals(64, token.length(), "32 random bytes in hex");
            String wrong = (token.charAt(0) == 'a' ? "b" : "a") + token.substring(1);
            assertEquals(403, send(right, create, wrong), "a token differing in one character");
            assertEquals(403, send(right, create, token + "0"), "a longer token");
            assertEquals(List.of(), p.pool.volumeNames(), "no refused request created a volume");

            DediskException refused = assertThrows(DediskException.class,
                    () -> new ControlClient(right.address, wrong).call("volume/create", Map.of("name", "v", "size", "1M")));
            assertTrue(refused.getMessage().contains("refused the control token"), refused.getMessage());
            assertEquals(List.of(), p.pool.volumeNames());

            assertEquals("created volume v (1.0 MiB)\n", right.call("volume/create", Map.of("name", "v", "size", "1M")));
            assertEquals(List.of("v"), p.pool.volumeNames());
            try (ControlServer other = new ControlServer(p.pool)) {
                assertNotEquals(token, other.client().fileLine().trim().split(" ")[1], "each server makes its own token");
            }
        }
    }

    @Test
    void aStreamingOperationSendsLinesThenHowItEnded() throws Exception {
        PoolDirectory.create(tmp.resolve("pool"), new Pool.Options(1 << 20, 1 << 20, 0, false));
        try (PoolDirectory p = PoolDirectory.open(tmp.resolve("pool")); ControlServer control = new ControlServer(p.pool)) {
            control.registerStreaming("count", args -> {
                if (args.containsKey("decline")) throw new ControlServer.Declined("not here");
                return out -> {
                    for (int i = 0; i < 3; i++) out.line("line " + i);
                    if (args.containsKey("fail")) throw new DediskException.InvalidRequestException("failed after three");
                };
            });
            control.start();
            ControlClient c = control.client();
            List<String> lines = new ArrayList<>();
            c.stream("count", Map.of(), lines::add, stop -> {});
            assertEquals(List.of("line 0", "line 1", "line 2"), lines);
            lines.clear();
            var failed = assertThrows(DediskException.InvalidRequestException.class, () -> c.stream("count", Map.of("fail", "1"), lines::add, stop -> {}));
            assertEquals("failed after three", failed.getMessage());
            assertEquals(3, lines.size(), "the lines before the failure arrived");
            var declined = assertThrows(ControlClient.DeclinedException.class, () -> c.stream("count", Map.of("decline", "1"), lines::add, stop -> {}));
            assertEquals("not here", declined.getMessage());
            assertEquals(403, send(c, "count", null), "streaming operations need the token too");
            // Lines written one by one must not wait for the client's delayed ACK (Nagle): the JDK server's switch.
            assertEquals("true", System.getProperty(io.dedisk.util.HttpServers.NODELAY_PROPERTY));
        }
    }

    @Test
    void theControlFileLineRoundTripsAndAnEmptyOneIsAClearError() {
        ControlClient c = ControlClient.parse("127.0.0.1:5 abc\n");
        assertEquals("127.0.0.1:5", c.address);
        assertEquals("127.0.0.1:5 abc\n", c.fileLine());
        var empty = assertThrows(DediskException.InvalidRequestException.class, () -> ControlClient.parse(" \n"));
        assertTrue(empty.getMessage().contains("control file is empty"), empty.getMessage());
    }

    /**
     * A control call is sent once even when its answer never comes: HttpURLConnection resends a GET (and a buffered
     * POST) by itself when reading the answer fails, which would run a create, a delete or an import twice.
     */
    @Test
    void aCallWhoseAnswerIsLostIsNotSentAgain() throws Exception {
        try (java.net.ServerSocket listener = new java.net.ServerSocket(0, 8, java.net.InetAddress.getLoopbackAddress())) {
            java.util.concurrent.atomic.AtomicInteger requests = new java.util.concurrent.atomic.AtomicInteger();
            Thread server = Thread.ofVirtual().start(() -> {
                try {
                    listener.setSoTimeout(3000);
                    while (true) {
                        try (java.net.Socket s = listener.accept()) {
                            s.getInputStream().read(new byte[4096]); // the request; then the connection drops, no answer
                            requests.incrementAndGet();
                        }
                    }
                } catch (IOException ended) {
                    // the accept timed out: no more requests
                }
            });
            ControlClient c = new ControlClient("127.0.0.1:" + listener.getLocalPort(), "token");
            assertThrows(IOException.class, () -> c.call("volume/delete", Map.of("name", "v")));
            server.join();
            assertEquals(1, requests.get(), "requests the server saw");
        }
    }

    /**
     * What a streaming operation's start opened (a served import's file) is released by the body's close, which the
     * server calls once for every body: streamed to the end, failed, or with its client gone in the middle.
     */
    @Test
    void everyStreamingBodyIsClosedOnceWhateverTheClientDoes() throws Exception {
        PoolDirectory.create(tmp.resolve("pool"), new Pool.Options(1 << 20, 1 << 20, 0, false));
        java.util.concurrent.atomic.AtomicInteger started = new java.util.concurrent.atomic.AtomicInteger(), closed = new java.util.concurrent.atomic.AtomicInteger();
        java.util.concurrent.CountDownLatch goneSeen = new java.util.concurrent.CountDownLatch(1);
        try (PoolDirectory p = PoolDirectory.open(tmp.resolve("pool")); ControlServer control = new ControlServer(p.pool)) {
            control.registerStreaming("lines", args -> {
                started.incrementAndGet();
                return new ControlServer.Streaming.Body() {
                    @Override
                    public void stream(ControlServer.Lines out) throws IOException {
                        if (args.containsKey("fail")) throw new DediskException.InvalidRequestException("no");
                        int n = Integer.parseInt(args.getOrDefault("lines", "2"));
                        try {
                            for (int i = 0; i < n; i++) {
                                out.line("line " + i);
                                Thread.sleep(2);
                            }
                        } catch (IOException gone) {
                            goneSeen.countDown();
                            throw gone;
                        } catch (InterruptedException e) {
                            throw new IOException(e);
                        }
                    }

                    @Override
                    public void close() { closed.incrementAndGet(); }
                };
            });
            control.start();
            ControlClient c = control.client();
            c.stream("lines", Map.of(), line -> {}, stop -> {});
            assertThrows(DediskException.InvalidRequestException.class, () -> c.stream("lines", Map.of("fail", "1"), line -> {}, stop -> {}));
            // a client that reads one line and goes: the body's next lines fail, it stops, and is closed
            java.util.concurrent.atomic.AtomicReference<Runnable> hangUp = new java.util.concurrent.atomic.AtomicReference<>();
            assertThrows(IOException.class, () -> c.stream("lines", Map.of("lines", "1000000"), line -> hangUp.get().run(), hangUp::set));
            assertTrue(goneSeen.await(30, java.util.concurrent.TimeUnit.SECONDS), "the body saw its client go");
            long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(30);
            while (closed.get() < 3 && System.nanoTime() < deadline) Thread.sleep(10);
            assertEquals(3, started.get());
            assertEquals(3, closed.get(), "bodies closed");
        }
    }
}
