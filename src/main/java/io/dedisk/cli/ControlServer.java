package io.dedisk.cli;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.dedisk.DediskException;
import io.dedisk.pool.Pool;
import io.dedisk.util.HttpServers;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.Map;
import java.util.concurrent.Executors;

/**
 * The running server's control endpoint (HTTP on loopback, an ephemeral port advertised with its token in the
 * pool's {@code control} file, mode 0600): lets `dedisk stats`, `volume ...` and `import` work while the pool is
 * served, since only one process may hold a pool. Every request must carry the token (random, 32 bytes, made at
 * start) in {@value #TOKEN_HEADER}, or it is answered 403 and runs nothing: the endpoint makes the server read
 * files (a served import), so only who can read the control file (the pool's owner) may use it.
 *
 * A request runs one {@link PoolCommands} operation or a registered one and returns its text; misuse answers 400
 * with the error message, a {@link Declined} operation 409, other failures 500. A {@link Streaming} operation
 * answers 200 with chunked lines while it runs, the last one {@value #STREAM_OK} or {@value #STREAM_ERROR}STATUS
 * MESSAGE (the status the failure would have had), since the status line went out before the work.
 *
 * Threads: one virtual thread per request.
 */
final class ControlServer implements AutoCloseable {
    static final String TOKEN_HEADER = "X-Dedisk-Token";
    static final String STREAM_OK = "ok";
    static final String STREAM_ERROR = "error ";

    /** An operation the serving process adds beside {@link PoolCommands} (e.g. the savings report). */
    interface Operation {
        String run(Map<String, String> args) throws IOException;
    }

    /** Where a streaming operation writes its lines; a client gone makes {@link #line} throw an IOException. */
    interface Lines {
        void line(String text) throws IOException;
    }

    /**
     * An operation that reports while it runs. {@link #start} checks its arguments and may refuse (exceptions map as
     * for {@link Operation}) before anything is sent; the returned body then streams. The server closes every body
     * it was given once, streamed or not (a client gone before the answer's headers went out): what {@code start}
     * opened for the body (a served import's file) is released in {@link Body#close}.
     */
    interface Streaming {
        Body start(Map<String, String> args) throws IOException;

        interface Body extends AutoCloseable {
            void stream(Lines out) throws IOException;

            @Override
            default void close() throws IOException {}
        }
    }

    /** The operation cannot be done by this server (e.g. it cannot read the named file); the client has another way. */
    static final class Declined extends DediskException {
        private static final long serialVersionUID = 1L;
        Declined(String message) { super(message); }
    }

    private final HttpServer http;
    private final byte[] token;
    private final Map<String, Operation> extra = new java.util.concurrent.ConcurrentHashMap<>();
    private final Map<String, Streaming> streaming = new java.util.concurrent.ConcurrentHashMap<>();

    ControlServer(Pool pool) throws IOException {
        byte[] random = new byte[32];
        new SecureRandom().nextBytes(random);
        token = HexFormat.of().formatHex(random).getBytes(StandardCharsets.US_ASCII);
        http = HttpServers.create(new InetSocketAddress("127.0.0.1", 0), 16);
        http.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
        http.createContext("/", exchange -> handle(pool, exchange));
    }

    /** Adds operation {@code op} (the request path without its slash); call before {@link #start}. */
    void register(String op, Operation operation) { extra.put(op, operation); }

    /** Adds a streaming operation; call before {@link #start}. */
    void registerStreaming(String op, Streaming operation) { streaming.put(op, operation); }

    void start() { http.start(); }

    /** How a client reaches this endpoint (what the control file holds). */
    ControlClient client() { return new ControlClient("127.0.0.1:" + http.getAddress().getPort(), new String(token, StandardCharsets.US_ASCII)); }

    private boolean authorised(HttpExchange ex) {
        String sent = ex.getRequestHeaders().getFirst(TOKEN_HEADER);
        return sent != null && MessageDigest.isEqual(token, sent.getBytes(StandardCharsets.US_ASCII)); // constant time
    }

    private void handle(Pool pool, HttpExchange ex) throws IOException {
        int status;
        String body;
        Streaming.Body streamed = null;
        try {
            if (!authorised(ex)) {
                answer(ex, 403, "missing or wrong " + TOKEN_HEADER + " (the token is in the pool's control file)\n");
                return;
            }
            Map<String, String> q = query(ex.getRequestURI().getRawQuery());
            String op = ex.getRequestURI().getPath().substring(1);
            Operation added = extra.get(op);
            Streaming lines = streaming.get(op);
            if (lines != null) {
                streamed = lines.start(q);
                body = "";
            } else {
                body = added != null ? added.run(q) : PoolCommands.run(pool, op, q);
            }
            status = 200;
        } catch (RuntimeException | IOException e) {
            status = statusOf(e);
            body = (status == 500 ? e.toString() : e.getMessage()) + "\n";
        }
        if (streamed == null) {
            answer(ex, status, body);
            return;
        }
        try (Streaming.Body open = streamed) {
            ex.getResponseHeaders().set("Content-Type", "text/plain; charset=utf-8");
            ex.sendResponseHeaders(200, 0); // chunked
            stream(ex, open);
        } catch (IOException clientGone) {
            // the client went away (a body that was streaming saw it too and stopped); nobody is left to tell
        }
    }

    private static void stream(HttpExchange ex, Streaming.Body streamed) throws IOException {
        try (OutputStream out = ex.getResponseBody()) {
            Lines sink = text -> {
                out.write((text + "\n").getBytes(StandardCharsets.UTF_8));
                out.flush();
            };
            String last;
            try {
                streamed.stream(sink);
                last = STREAM_OK;
            } catch (RuntimeException | IOException e) {
                int s = statusOf(e);
                last = STREAM_ERROR + s + " " + (s == 500 ? e.toString() : e.getMessage()).replace('\n', ' ');
            }
            sink.line(last);
        }
    }

    private static int statusOf(Exception e) {
        if (e instanceof DediskException.InvalidRequestException || e instanceof DediskException.ReadOnlyException) return 400;
        if (e instanceof Declined) return 409;
        return 500;
    }

    private static void answer(HttpExchange ex, int status, String body) throws IOException {
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", "text/plain; charset=utf-8");
        ex.sendResponseHeaders(status, bytes.length);
        try (var out = ex.getResponseBody()) { out.write(bytes); }
    }

    private static Map<String, String> query(String raw) {
        Map<String, String> q = new HashMap<>();
        if (raw == null || raw.isEmpty()) return q;
        for (String kv : raw.split("&")) {
            int eq = kv.indexOf('=');
            String k = URLDecoder.decode(eq < 0 ? kv : kv.substring(0, eq), StandardCharsets.UTF_8);
            String v = eq < 0 ? "" : URLDecoder.decode(kv.substring(eq + 1), StandardCharsets.UTF_8);
            q.put(k, v);
        }
        return q;
    }

    @Override
    public void close() { http.stop(0); }
}
