package io.dedisk.cli;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

import io.dedisk.DediskException.InvalidRequestException;
import io.dedisk.nbd.NbdLimits;
import io.dedisk.nbd.NbdTls;
import io.dedisk.util.Sizes;
import picocli.CommandLine.Option;

/**
 * The NBD limit and TLS flags of {@code serve} and {@code run} (a picocli mixin, so Main only names it), turned
 * into {@link NbdLimits} and {@link NbdTls}. Defaults are NbdLimits' and are documented in docs/operations.md. Parsed on the main thread,
 * once, before the server starts.
 */
final class NbdOptions {
    @Option(names = "--max-connections", paramLabel = "N", description = "Open NBD connections, server-wide (default "
            + NbdLimits.DEFAULT_MAX_CONNECTIONS + ").")
    int maxConnections = NbdLimits.DEFAULT_MAX_CONNECTIONS;

    @Option(names = "--max-connections-per-client", paramLabel = "N",
            description = "Open NBD connections per client IP address (default "
                    + NbdLimits.DEFAULT_MAX_CONNECTIONS_PER_CLIENT + ").")
    int maxConnectionsPerClient = NbdLimits.DEFAULT_MAX_CONNECTIONS_PER_CLIENT;

    @Option(names = "--handshake-timeout", paramLabel = "TIME",
            description = "Time a client has from connecting to the end of negotiation (default 10s).")
    String handshakeTimeout = "10s";

    @Option(names = "--idle-timeout", paramLabel = "TIME",
            description = "Close a connection with nothing in flight after this long without a request; 0 = never "
                    + "(default 1h).")
    String idleTimeout = "1h";

    @Option(names = "--payload-timeout", paramLabel = "TIME",
            description = "Grace a request's write data (or a reply) has to cross the wire, on top of its length at "
                    + "--min-payload-rate (default 10s).")
    String payloadTimeout = "10s";

    @Option(names = "--min-payload-rate", paramLabel = "SIZE",
            description = "Bytes per second a client must at least send write data at and read replies at (default 1M).")
    String minPayloadRate = "1M";

    @Option(names = "--inflight-per-connection", paramLabel = "SIZE",
            description = "Request data one connection may have in flight (default 64M).")
    String inflightPerConnection = "64M";

    @Option(names = "--inflight-total", paramLabel = "SIZE",
            description = "Request memory of all connections together; readers wait beyond it (default 160M).")
    String inflightTotal = "160M";

    @Option(names = "--tls", paramLabel = "MODE", description = "off, on (clients may use NBD_OPT_STARTTLS) or "
            + "require (plain clients get NBD_REP_ERR_TLS_REQD); default: on if --tls-cert is given, else off.")
    String tls;

    @Option(names = "--tls-cert", paramLabel = "FILE", description = "Server certificate chain (PEM).")
    Path tlsCert;

    @Option(names = "--tls-key", paramLabel = "FILE",
            description = "Server private key (PEM, PKCS#8 'BEGIN PRIVATE KEY'; convert others with "
                    + "openssl pkcs8 -topk8 -nocrypt).")
    Path tlsKey;

    @Option(names = "--tls-ca", paramLabel = "FILE", description = "CA certificates client certificates must chain to.")
    Path tlsCa;

    @Option(names = "--tls-verify-clients", description = "Require a client certificate signed by --tls-ca.")
    boolean tlsVerifyClients;

    @Option(names = "--tls-allow", paramLabel = "CN=NAME:EXPORT[,EXPORT...]",
            description = "Exports a client certificate CN may open (* for all); repeatable. Implies "
                    + "--tls-verify-clients; CNs not listed open nothing.")
    List<String> tlsAllow = new ArrayList<>();

    NbdTls toTls() throws IOException {
        String mode = tls != null ? tls : tlsCert != null ? "on" : "off";
        NbdTls.Mode parsed = switch (mode.toLowerCase(Locale.ROOT)) {
            case "off" -> NbdTls.Mode.OFF;
            case "on" -> NbdTls.Mode.ON;
            case "require" -> NbdTls.Mode.REQUIRE;
            default -> throw new InvalidRequestException("invalid --tls '" + mode + "': expected off, on or require");
        };
        if (parsed == NbdTls.Mode.OFF && (tlsCert != null || !tlsAllow.isEmpty() || tlsVerifyClients)) {
            throw new InvalidRequestException("--tls=off with TLS options given; drop them or use --tls=on|require");
        }
        NbdTls loaded = NbdTls.load(parsed, tlsCert, tlsKey, tlsCa, tlsVerifyClients, tlsAllow);
        loaded.warmUp();
        return loaded;
    }

    NbdLimits toLimits() {
        return NbdLimits.defaults()
                .withMaxConnections(maxConnections, maxConnectionsPerClient)
                .withTimeouts(duration("--handshake-timeout", handshakeTimeout), duration("--idle-timeout", idleTimeout),
                        duration("--payload-timeout", payloadTimeout), Sizes.parse(minPayloadRate))
                .withInflight(Sizes.parse(inflightPerConnection), Sizes.parse(inflightTotal));
    }

    /** "500ms", "10s", "15m", "1h", "2d", or a bare number of seconds. */
    static Duration duration(String flag, String text) {
        String s = text.trim().toLowerCase(Locale.ROOT);
        try {
            if (s.endsWith("ms")) return Duration.ofMillis(Long.parseLong(s.substring(0, s.length() - 2)));
            char unit = s.isEmpty() ? ' ' : s.charAt(s.length() - 1);
            String number = Character.isDigit(unit) ? s : s.substring(0, s.length() - 1);
            long n = Long.parseLong(number);
            if (n < 0) throw new NumberFormatException("negative");
            return switch (unit) {
                case 's' -> Duration.ofSeconds(n);
                case 'm' -> Duration.ofMinutes(n);
                case 'h' -> Duration.ofHours(n);
                case 'd' -> Duration.ofDays(n);
                default -> {
                    if (!Character.isDigit(unit)) throw new NumberFormatException("unit " + unit);
                    yield Duration.ofSeconds(n);
                }
            };
        } catch (NumberFormatException | StringIndexOutOfBoundsException e) {
            throw new InvalidRequestException("invalid " + flag + " '" + text
                    + "': expected a duration such as 500ms, 10s, 15m, 1h or 0");
        }
    }
}
