package io.dedisk.util;

import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.net.InetSocketAddress;

/**
 * Makes the JDK HTTP servers dedisk runs (the control endpoint, the metrics endpoint) with TCP_NODELAY on their
 * connections. The JDK's server leaves Nagle's algorithm on unless the system property
 * {@value #NODELAY_PROPERTY} is true, and an answer written in pieces (headers, then a streamed line, then the end)
 * then waits for the client's delayed ACK: ~40 ms per streaming control call on loopback, which was a fifth of a
 * served `dedisk import` of a small image (docs/decisions.md, "CLI start").
 *
 * The JDK reads the property once, when its server configuration class loads, so every dedisk HTTP server is made
 * here. Threads: any.
 */
public final class HttpServers {
    public static final String NODELAY_PROPERTY = "sun.net.httpserver.nodelay";

    private HttpServers() {}

    public static HttpServer create(InetSocketAddress address, int backlog) throws IOException {
        System.setProperty(NODELAY_PROPERTY, "true");
        return HttpServer.create(address, backlog);
    }
}
