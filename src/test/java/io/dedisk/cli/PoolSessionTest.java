package io.dedisk.cli;

import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.nbd.NbdTls;
import java.net.InetSocketAddress;
import org.junit.jupiter.api.Test;

/** What the server tells import/export about its NBD listener, and the dedup share the progress bar shows. */
class PoolSessionTest {
    @Test
    void aWildcardListenerIsReachedOnLoopbackAndTheTlsModeIsNamed() {
        assertEquals("127.0.0.1:10809 OFF\n", PoolSession.describeListener(new InetSocketAddress("0.0.0.0", 10809), NbdTls.Mode.OFF));
        assertEquals("127.0.0.2:7 REQUIRE\n", PoolSession.describeListener(new InetSocketAddress("127.0.0.2", 7), NbdTls.Mode.REQUIRE));
    }

    @Test
    void dedupShareCountsHitsAmongNonZeroBlocksSinceTheStart() {
        PoolSession.Counters before = new PoolSession.Counters(100, 10, 90);
        PoolSession.Counters after = new PoolSession.Counters(400, 160, 140);
        PoolSession.Counters delta = after.minus(before);
        assertEquals(new PoolSession.Counters(300, 150, 50), delta);
        assertEquals(0.75, delta.dedupShare(), 1e-9);
        assertEquals("dedup 75% of 200 blocks", TransferProgress.describe(delta));
        assertEquals(0, new PoolSession.Counters(5, 0, 0).dedupShare(), "zeros only: no share, no division by zero");
    }
}
