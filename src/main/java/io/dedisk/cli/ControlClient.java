package io.dedisk.cli;

import io.dedisk.DediskException;
import io.dedisk.util.Check;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.HttpURLConnection;
import java.net.URI;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.function.Consumer;

/**
 * The CLI's side of {@link ControlServer}: runs one pool operation in the serving process and returns its text.
 * Built from the pool's {@code control} file ({@link #parse}: "ADDRESS TOKEN"); every request carries the token in
 * {@value ControlServer#TOKEN_HEADER}. Answers: 400 (misuse: unknown volume, name in use...) becomes an
 * InvalidRequestException with the server's message; 409 a {@link DeclinedException} (the server cannot do this
 * here, the caller has another way); anything else but 200 a DediskException.
 *
 * Immutable; any thread.
 */
final class ControlClient {
    /** The server declined an operation it cannot do from where it runs (e.g. it cannot read the named file). */
    static final class DeclinedException extends DediskException {
        private static final long serialVersionUID = 1L;
        DeclinedException(String message) { super(message); }
    }

    final String address;
    private final String token;

    ControlClient(String address, String token) {
        Check.that(!address.isBlank() && !address.contains(" "), "a control address without spaces");
        this.address = address;
        this.token = token;
    }

    /** The control file's content: the address and the token, separated by a space. */
    static ControlClient parse(String controlFile) {
        String[] parts = controlFile.trim().split(" ", 2);
        if (parts[0].isEmpty()) throw new DediskException.InvalidRequestException("the pool's control file is empty; expected ADDRESS TOKEN");
        return new ControlClient(parts[0], parts.length == 2 ? parts[1].trim() : "");
    }

    /** What the control file holds for this endpoint. */
    String fileLine() { return address + " " + token + "\n"; }

    @Override
    public String toString() { return address; }

    String call(String op, Map<String, String> args) throws IOException, InterruptedException {
        HttpURLConnection c = open(op, args);
        try {
            int status = c.getResponseCode();
            String body;
            try (var in = status < 400 ? c.getInputStream() : c.getErrorStream()) {
                body = in == null ? "" : new String(in.readAllBytes(), StandardCharsets.UTF_8);
            }
            if (status != 200) throw failure(status, body);
            return body;
        } finally {
            c.disconnect();
        }
    }

    /**
     * Runs a streaming operation ({@link ControlServer.Streaming}): each line but the last goes to {@code lines} as
     * it arrives; the last says how it ended ("ok", or "error STATUS MESSAGE", thrown as {@link #call} would).
     * {@code started} gets a way to end the request from another thread (an interruption: the server sees the
     * client go and stops). A connection that ends without the last line throws an IOException.
     */
    void stream(String op, Map<String, String> args, Consumer<String> lines, Consumer<Runnable> started) throws IOException {
        HttpURLConnection c = open(op, args);
        started.accept(c::disconnect);
        try {
            int status = c.getResponseCode();
            if (status != 200) {
                try (var in = c.getErrorStream()) { throw failure(status, in == null ? "" : new String(in.readAllBytes(), StandardCharsets.UTF_8)); }
            }
            try (BufferedReader in = new BufferedReader(new InputStreamReader(c.getInputStream(), StandardCharsets.UTF_8))) {
                for (String line; (line = in.readLine()) != null; ) {
                    if (line.equals(ControlServer.STREAM_OK)) return;
                    if (line.startsWith(ControlServer.STREAM_ERROR)) {
                        String[] p = line.substring(ControlServer.STREAM_ERROR.length()).split(" ", 2);
                        throw failure(Integer.parseInt(p[0]), p.length == 2 ? p[1] : "");
                    }
                    lines.accept(line);
                }
            }
            throw new IOException("the server at " + address + " ended " + op + " without saying how it ended");
        } finally {
            c.disconnect();
        }
    }

    private HttpURLConnection open(String op, Map<String, String> args) throws IOException {
        StringBuilder q = new StringBuilder();
        for (var e : args.entrySet()) {
            q.append(q.isEmpty() ? "?" : "&").append(URLEncoder.encode(e.getKey(), StandardCharsets.UTF_8)).append('=')
                    .append(URLEncoder.encode(e.getValue(), StandardCharsets.UTF_8));
        }
        // HttpURLConnection, not java.net.http: a one-shot CLI pays ~0.6 s of CPU to start the latter (measured).
        HttpURLConnection c = (HttpURLConnection) URI.create("http://" + address + "/" + op + q).toURL().openConnection();
        c.setRequestProperty(ControlServer.TOKEN_HEADER, token);
        // A POST in streaming mode: HttpURLConnection silently sends a GET (or a buffered POST) again when reading its
        // answer fails, and an operation must run at most once (a create, a delete, an import).
        c.setRequestMethod("POST");
        c.setDoOutput(true);
        c.setFixedLengthStreamingMode(0);
        c.getOutputStream().close();
        return c;
    }

    private DediskException failure(int status, String body) {
        return switch (status) {
            case 400 -> new DediskException.InvalidRequestException(body.trim());
            case 409 -> new DeclinedException(body.trim());
            case 403 -> new DediskException("the server at " + address + " refused the control token (" + body.trim()
                    + "); the pool's control file belongs to another server run, or was changed");
            default -> new DediskException("server at " + address + ": " + body.trim());
        };
    }
}
