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
    void badValuesSayWhatWasExpected() {
        var e = assertThrows(InvalidRequestException.class, () -> NbdOptions.duration("--idle-timeout", "soon"));
        assertTrue(e.getMessage().contains("--idle-timeout 'soon'") && e.getMessage().contains("expected"),
                e.getMessage());
        assertThrows(InvalidRequestException.class, () -> NbdOptions.duration("--idle-timeout", "-5s"));
        assertEquals(Duration.ofHours(1), NbdOptions.duration("x", "1h"));
        assertEquals(Duration.ofSeconds(30), NbdOptions.duration("x", "30"));
    }
}
