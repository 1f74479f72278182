package io.dedisk.cli;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.dedisk.DediskException;
import io.dedisk.pool.Pool;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.Executors;

/**
 * The running server's control endpoint (HTTP on loopback, an ephemeral port advertised in the pool's
 * {@code control} file): lets `dedisk stats` and `dedisk volume ...` work while the pool is served, since only one
 * process may hold a pool. Every request runs one {@link PoolCommands} operation and returns its text output;
 * misuse answers 400 with the error message, other failures 500.
 */
final class ControlServer implements AutoCloseable {
    /** An operation the serving process adds beside {@link PoolCommands} (e.g. the savings report). */
    interface Operation {
        String run(Map<String, String> args) throws IOException;
    }

    private final HttpServer http;
    private final Map<String, Operation> extra = new java.util.concurrent.ConcurrentHashMap<>();

    ControlServer(Pool pool) throws IOException {
        http = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 16);
        http.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
        http.createContext("/", exchange -> handle(pool, exchange));
    }

    /** Adds operation {@code op} (the request path without its slash); call before {@link #start}. */
    void register(String op, Operation operation) { extra.put(op, operation); }

    void start() { http.start(); }

    String address() { return "127.0.0.1:" + http.getAddress().getPort(); }

    private void handle(Pool pool, HttpExchange ex) throws IOException {
        int status;
        String body;
        try {
            Map<String, String> q = query(ex.getRequestURI().getRawQuery());
            String op = ex.getRequestURI().getPath().substring(1);
            Operation added = extra.get(op);
            body = added != null ? added.run(q) : PoolCommands.run(pool, op, q);
            status = 200;
        } catch (DediskException.InvalidRequestException | DediskException.ReadOnlyException e) {
            status = 400;
            body = e.getMessage() + "\n";
        } catch (RuntimeException | IOException e) {
            status = 500;
            body = e + "\n";
        }
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
