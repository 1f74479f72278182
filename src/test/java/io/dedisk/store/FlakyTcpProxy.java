package io.dedisk.store;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Predicate;
import java.util.regex.Pattern;

/**
 * A TCP proxy on 127.0.0.1 in front of an HTTP server that breaks the next connections on request, the way a
 * network or an overloaded server does:
 * <ul>
 * <li>{@link #resetNext}: accept, then reset at once — the request is never served (a transient failure);</li>
 * <li>{@link #breakRequests}: reset the connection of matching requests before forwarding them;</li>
 * <li>{@link #stripConditionalHeaders}: remove If-None-Match / If-Match, as a server without conditional writes
 * ignores them (needs a server that does not check signatures: {@link S3ProxyFixture#unauthenticated});</li>
 * <li>{@link #throttleNext}: answer matching requests with 503 SlowDown, as S3 does under load;</li>
 * <li>{@link #corruptNextBodies}: flip one byte in the body of the next PUTs, as a bad NIC or memory does (the
 * request still reaches the server: only a checksum or signature over the body can tell);</li>
 * <li>{@link #loseResponseNext}: forward the request, let the server act on it, then reset the connection
 * instead of forwarding the final response (an interim "100 Continue" still passes) — the ambiguous outcome:
 * stored, but the client sees an error.</li>
 * </ul>
 * Threads: an acceptor and two pumps per connection, all virtual; the counters are safe from any thread.
 */
final class FlakyTcpProxy implements AutoCloseable {
    private final ServerSocket server;
    private final InetSocketAddress target;
    private final AtomicInteger toReset = new AtomicInteger();
    private final AtomicInteger toLose = new AtomicInteger();
    final AtomicInteger reset = new AtomicInteger();
    final AtomicInteger lost = new AtomicInteger();
    private final AtomicInteger toThrottle = new AtomicInteger();
    private final AtomicInteger toCorrupt = new AtomicInteger();
    final AtomicInteger corrupted = new AtomicInteger();
    final AtomicInteger throttled = new AtomicInteger();
    private static final byte[] SLOW_DOWN = slowDown();
    /** Request lines ("PUT /bucket/key?partNumber=1&uploadId=...") in the order the proxy saw them. */
    final List<String> requests = new CopyOnWriteArrayList<>();
    private final List<Socket> sockets = new CopyOnWriteArrayList<>();
    private static final Pattern REQUEST_LINE = Pattern.compile("^(GET|PUT|POST|DELETE|HEAD) (/[^ ]*)");
    private volatile Predicate<String> broken = r -> false;
    private volatile boolean stripConditions;
    private static final Pattern CONDITION_HEADER = Pattern.compile("(?im)^If-(None-)?Match:[^\r\n]*\r\n");

    FlakyTcpProxy(URI target) throws IOException {
        this.target = new InetSocketAddress(target.getHost(), target.getPort());
        server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        Thread.ofVirtual().name("flaky-proxy-accept").start(this::acceptLoop);
    }

    URI endpoint() { return URI.create("http://127.0.0.1:" + server.getLocalPort()); }

    void resetNext(int connections) { toReset.set(connections); }

    void loseResponseNext(int connections) { toLose.set(connections); }

    /** From now on removes If-None-Match and If-Match from every request: a server that ignores them. */
    void stripConditionalHeaders() { stripConditions = true; }

    /** Answers the next requests with S3's throttling error itself, without forwarding them. */
    void throttleNext(int requests) { toThrottle.set(requests); }

    /** Flips a byte of the body of each of the next PUT requests (once per request) on its way to the server. */
    void corruptNextBodies(int requests) { toCorrupt.set(requests); }

    /** Resets the connection of every request whose request line matches, before the server sees it. */
    void breakRequests(Predicate<String> requestLine) { broken = requestLine; }

    private static boolean take(AtomicInteger budget) { return budget.getAndUpdate(n -> Math.max(0, n - 1)) > 0; }

    private void acceptLoop() {
        while (!server.isClosed()) {
            try {
                Socket client = server.accept();
                if (take(toReset)) {
                    reset.incrementAndGet();
                    abort(client);
                    continue;
                }
                boolean lose = take(toLose);
                Socket upstream = new Socket(target.getAddress(), target.getPort());
                sockets.add(client);
                sockets.add(upstream);
                Thread.ofVirtual().start(() -> pump(client, upstream, true, false));
                Thread.ofVirtual().start(() -> pump(upstream, client, false, lose));
            } catch (IOException e) {
                if (!server.isClosed()) throw new IllegalStateException("flaky proxy accept failed", e);
            }
        }
    }

    /**
     * Copies from → to, noting request lines when fromClient; with loseResponse, resets both at the first
     * response that is not "100 Continue".
     */
    private void pump(Socket from, Socket to, boolean fromClient, boolean loseResponse) {
        byte[] buf = new byte[64 << 10];
        // A PUT to damage was seen: flip its body's byte at this offset (past an aws-chunked chunk header of about
        // 90 bytes, into the data), counting down as the body arrives; -1 when none.
        int flipAt = -1;
        try (InputStream in = from.getInputStream(); OutputStream out = to.getOutputStream()) {
            int n;
            while ((n = in.read(buf)) > 0) {
                int pass = n;
                String request = fromClient ? requestLine(buf, n) : null;
                if (request != null) flipAt = -1; // a body shorter than the offset is left alone, not the next request
                if (request != null && request.startsWith("PUT ") && take(toCorrupt)) flipAt = 1000;
                if (flipAt >= 0) {
                    int body = request != null ? headerEnd(buf, n) : 0;
                    if (body + flipAt < n) {
                        buf[body + flipAt] ^= 0x40;
                        flipAt = -1;
                        corrupted.incrementAndGet();
                    } else {
                        flipAt -= n - body;
                    }
                }
                if (request != null && broken.test(request)) {
                    abort(to);
                    abort(from);
                    return;
                }
                if (request != null && take(toThrottle)) {
                    throttled.incrementAndGet();
                    abort(to);
                    from.getOutputStream().write(SLOW_DOWN);
                    from.close();
                    return;
                }
                if (loseResponse) {
                    pass = interimLength(buf, n);
                    if (pass < n) {
                        out.write(buf, 0, pass);
                        out.flush();
                        lost.incrementAndGet();
                        abort(to);
                        abort(from);
                        return;
                    }
                }
                if (request != null && stripConditions) {
                    String head = new String(buf, 0, n, StandardCharsets.ISO_8859_1);
                    out.write(CONDITION_HEADER.matcher(head).replaceAll("").getBytes(StandardCharsets.ISO_8859_1));
                } else {
                    out.write(buf, 0, pass);
                }
                out.flush();
            }
            to.shutdownOutput();
        } catch (IOException closed) {
            abort(to);
        }
    }

    /** The request line starting the chunk (noted in {@link #requests}), or null when it continues a body. */
    private String requestLine(byte[] buf, int n) {
        var m = REQUEST_LINE.matcher(new String(buf, 0, Math.min(n, 1024), StandardCharsets.ISO_8859_1));
        if (!m.find()) return null;
        String line = m.group(1) + " " + m.group(2);
        requests.add(line);
        return line;
    }

    /** Where the body starts in a chunk that starts with a request's headers (n when the body is not in it). */
    private static int headerEnd(byte[] buf, int n) {
        int end = new String(buf, 0, n, StandardCharsets.ISO_8859_1).indexOf("\r\n\r\n");
        return end < 0 ? n : end + 4;
    }

    /** How many leading bytes of the chunk are interim "HTTP/1.1 100 ..." responses (forwarded untouched). */
    private static int interimLength(byte[] buf, int n) {
        String s = new String(buf, 0, n, StandardCharsets.ISO_8859_1);
        int at = 0;
        while (s.startsWith("HTTP/1.1 100", at)) {
            int end = s.indexOf("\r\n\r\n", at);
            if (end < 0) return at;
            at = end + 4;
        }
        return at;
    }

    private static byte[] slowDown() {
        String body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
        return ("HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nContent-Length: " + body.length() + "\r\nConnection: close\r\n\r\n" + body)
                .getBytes(StandardCharsets.ISO_8859_1);
    }

    /** Closes with a TCP reset (SO_LINGER 0), as a crashed peer or a middlebox does. */
    private static void abort(Socket s) {
        try {
            s.setSoLinger(true, 0);
            s.close();
        } catch (IOException ignored) {
            // already gone
        }
    }

    @Override
    public void close() throws IOException {
        server.close();
        for (Socket s : sockets) abort(s);
    }
}
