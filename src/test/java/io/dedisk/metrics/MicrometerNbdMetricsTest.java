package io.dedisk.metrics;

import static org.junit.jupiter.api.Assertions.*;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** NBD events become the right counters, histograms and gauges; hostile codes cannot create new series. */
class MicrometerNbdMetricsTest {
    @Test
    void requestsAreCountedByTypeAndResult() {
        SimpleMeterRegistry r = new SimpleMeterRegistry();
        MicrometerNbdMetrics m = new MicrometerNbdMetrics(r);
        m.requestDone(1, 0, 2_000_000, 65536);   // write ok
        m.requestDone(1, 0, 3_000_000, 4096);    // write ok
        m.requestDone(0, 0, 1_000_000, 8192);    // read ok
        m.requestDone(0, 5, 1_000_000, 8192);    // read EIO: no bytes transferred
        m.requestDone(1, 28, 1_000_000, 4096);   // write ENOSPC
        m.requestDone(4242, 22, 1_000, 0);       // unknown command, EINVAL
        m.requestDone(3, 4242, 1_000, 0);        // flush, unknown error value
        assertEquals(2, r.get("dedisk.nbd.requests").tags("type", "write", "result", "ok").counter().count());
        assertEquals(1, r.get("dedisk.nbd.requests").tags("type", "read", "result", "eio").counter().count());
        assertEquals(1, r.get("dedisk.nbd.requests").tags("type", "write", "result", "enospc").counter().count());
        assertEquals(1, r.get("dedisk.nbd.requests").tags("type", "other", "result", "einval").counter().count());
        assertEquals(1, r.get("dedisk.nbd.requests").tags("type", "flush", "result", "other").counter().count());
        assertEquals(65536 + 4096, r.get("dedisk.nbd.transferred").tags("type", "write").counter().count());
        assertEquals(8192, r.get("dedisk.nbd.transferred").tags("type", "read").counter().count());
        var latency = r.get("dedisk.nbd.request.duration").tags("type", "write", "result", "ok").timer();
        assertEquals(2, latency.count());
        assertEquals(5.0, latency.totalTime(TimeUnit.MILLISECONDS), 1e-9);
        assertEquals(6, r.get("dedisk.nbd.requests").counters().size(), "one series per (type, result) seen");
    }

    @Test
    void connectionsAndTlsHandshakes() {
        SimpleMeterRegistry r = new SimpleMeterRegistry();
        MicrometerNbdMetrics m = new MicrometerNbdMetrics(r);
        m.connectionOpened();
        m.connectionOpened();
        m.connectionClosed();
        m.tlsHandshake(true);
        m.tlsHandshake(false);
        m.tlsHandshake(false);
        assertEquals(2, r.get("dedisk.nbd.connections.opened").counter().count());
        assertEquals(1, r.get("dedisk.nbd.connections.active").gauge().value());
        assertEquals(1, r.get("dedisk.nbd.tls.handshakes").tags("result", "ok").counter().count());
        assertEquals(2, r.get("dedisk.nbd.tls.handshakes").tags("result", "failed").counter().count());
        m.connectionClosed();
        assertThrows(io.dedisk.util.Check.InvariantViolation.class, m::connectionClosed, "more closes than opens is a bug");
    }

    @Test
    void codeMappingIsClosed() {
        assertEquals(0, MicrometerNbdMetrics.typeIndex(0));
        assertEquals(7, MicrometerNbdMetrics.typeIndex(7));
        assertEquals(8, MicrometerNbdMetrics.typeIndex(8));
        assertEquals(8, MicrometerNbdMetrics.typeIndex(-1));
        assertEquals(0, MicrometerNbdMetrics.resultIndex(0));
        assertEquals(9, MicrometerNbdMetrics.resultIndex(-1));
        assertEquals(9, MicrometerNbdMetrics.resultIndex(99999));
    }
}
