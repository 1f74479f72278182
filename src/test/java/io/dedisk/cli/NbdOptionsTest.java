package io.dedisk.cli;

import static org.junit.jupiter.api.Assertions.*;

import java.time.Duration;

import org.junit.jupiter.api.Test;

import io.dedisk.DediskException.InvalidRequestException;
import io.dedisk.nbd.NbdLimits;
import picocli.CommandLine;

/** The serve flags for NBD limits: defaults equal {@link NbdLimits#defaults()}, values parse, bad ones are named. */
class NbdOptionsTest {
    @Test
    void defaultsAreTheDocumentedLimits() {
        assertEquals(NbdLimits.defaults(), new NbdOptions().toLimits());
    }

    @Test
    void flagsParse() {
        NbdOptions options = new NbdOptions();
        new CommandLine(options).parseArgs("--max-connections", "20000", "--max-connections-per-client", "15000",
                "--handshake-timeout", "500ms", "--idle-timeout", "0", "--payload-timeout", "2m",
                "--min-payload-rate", "4M", "--inflight-per-connection", "32M", "--inflight-total", "1G");
        NbdLimits limits = options.toLimits();
        assertEquals(20000, limits.maxConnections());
        assertEquals(15000, limits.maxConnectionsPerClient());
        assertEquals(Duration.ofMillis(500), limits.handshakeTimeout());
        assertEquals(Duration.ZERO, limits.idleTimeout());
        assertEquals(Duration.ofMinutes(2), limits.payloadGrace());
        assertEquals(4L << 20, limits.minPayloadRate());
        assertEquals(32L << 20, limits.connectionInflightBytes());
        assertEquals(1L << 30, limits.globalInflightBytes());
    }

    @Test
    void tlsFlagsAreCheckedBeforeAnythingIsLoaded() throws Exception {
        assertEquals(io.dedisk.nbd.NbdTls.Mode.OFF, new NbdOptions().toTls().mode(), "no TLS flag: TLS off");
        NbdOptions bad = new NbdOptions();
        new CommandLine(bad).parseArgs("--tls", "maybe");
        var e = assertThrows(InvalidRequestException.class, bad::toTls);
        assertTrue(e.getMessage().contains("expected off, on or require"), e.getMessage());
        NbdOptions contradictory = new NbdOptions();
        new CommandLine(contradictory).parseArgs("--tls", "off", "--tls-cert", "c.pem", "--tls-key", "k.pem");
        assertThrows(InvalidRequestException.class, contradictory::toTls);
        NbdOptions noKey = new NbdOptions();
        new CommandLine(noKey).parseArgs("--tls", "require");
        var missing = assertThrows(InvalidRequestException.class, noKey::toTls);
        assertTrue(missing.getMessage().contains("needs --tls-cert and --tls-key"), missing.getMessage());
    }

    @Test
    void badValuesSayWhatWasExpected() {
        var e = assertThrows(InvalidRequestException.class, () -> NbdOptions.duration("--idle-timeout", "soon"));
        assertTrue(e.getMessage().contains("--idle-timeout 'soon'") && e.getMessage().contains("expected"),
                e.getMessage());
        assertThrows(InvalidRequestException.class, () -> NbdOptions.duration("--idle-timeout", "-5s"));
        assertEquals(Duration.ofHours(1), NbdOptions.duration("x", "1h"));
        assertEquals(Duration.ofSeconds(30), NbdOptions.duration("x", "30"));
    }
}
