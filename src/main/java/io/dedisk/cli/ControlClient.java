package io.dedisk.cli;

import io.dedisk.DediskException;
import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.Map;

/**
 * The CLI's side of {@link ControlServer}: runs one pool operation in the serving process and returns its text.
 * A 400 (misuse: unknown volume, name in use...) becomes an InvalidRequestException with the server's message.
 * Stateless; any thread.
 */
final class ControlClient {
    private ControlClient() {}

    static String call(String control, String op, Map<String, String> args) throws IOException, InterruptedException {
        StringBuilder q = new StringBuilder();
        for (var e : args.entrySet()) {
            q.append(q.isEmpty() ? "?" : "&").append(URLEncoder.encode(e.getKey(), StandardCharsets.UTF_8)).append('=')
                    .append(URLEncoder.encode(e.getValue(), StandardCharsets.UTF_8));
        }
        HttpResponse<String> r;
        try (HttpClient http = HttpClient.newHttpClient()) {
            r = http.send(HttpRequest.newBuilder(URI.create("http://" + control + "/" + op + q)).build(), HttpResponse.BodyHandlers.ofString());
        }
        if (r.statusCode() == 400) throw new DediskException.InvalidRequestException(r.body().trim());
        if (r.statusCode() != 200) throw new DediskException("server at " + control + ": " + r.body().trim());
        return r.body();
    }
}
