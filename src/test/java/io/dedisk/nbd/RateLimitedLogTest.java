package io.dedisk.nbd;

import static io.dedisk.nbd.NbdConstants.*;
import static org.junit.jupiter.api.Assertions.*;

import java.lang.System.Logger.Level;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.ResourceBundle;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;
import java.util.logging.Handler;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

import org.junit.jupiter.api.Test;

/** {@link RateLimitedLog} on a fake clock, and the server's log under the NBD_OPT_LIST flood of issue 8. */
class RateLimitedLogTest {
    /** A System.Logger that records the lines it is given. */
    static final class Recorder implements System.Logger {
        final List<String> lines = new ArrayList<>();

        @Override public String getName() { return "recorder"; }
        @Override public boolean isLoggable(Level level) { return level.getSeverity() >= Level.INFO.getSeverity(); }
        @Override public synchronized void log(Level level, ResourceBundle bundle, String msg, Throwable thrown) {
            lines.add(msg);
        }
        @Override public synchronized void log(Level level, ResourceBundle bundle, String format, Object... params) {
            lines.add(format);
        }
    }

    @Test
    void firstBurstThenOneLinePerIntervalWithTheCount() {
        Recorder out = new Recorder();
        AtomicLong now = new AtomicLong();
        RateLimitedLog log = new RateLimitedLog(out, 3, 10, now::get, null, "p: ");
        for (int i = 0; i < 100; i++) log.log(Level.WARNING, "line " + i);
        assertEquals(List.of("p: line 0", "p: line 1", "p: line 2"), out.lines);
        now.set(9);
        log.log(Level.WARNING, "still suppressed");
        assertEquals(3, out.lines.size());
        now.set(10);
        log.log(Level.WARNING, "after the interval");
        assertEquals("p: after the interval [98 similar lines suppressed]", out.lines.get(3));
        log.log(Level.WARNING, "suppressed again");
        log.log(Level.DEBUG, "not loggable: neither emitted nor counted");
        assertEquals(99, log.suppressed());
        log.close(Level.INFO);
        assertEquals("p: 99 log lines of this connection were suppressed in all", out.lines.get(4));
        assertEquals(5, out.lines.size());
    }

    @Test
    void aLimiterQuietForLongLetsABurstThroughAgainButNeverMore() {
        Recorder out = new Recorder();
        AtomicLong now = new AtomicLong();
        RateLimitedLog log = new RateLimitedLog(out, 2, 10, now::get, null, "");
        for (int i = 0; i < 5; i++) log.log(Level.WARNING, "a" + i);
        assertEquals(List.of("a0", "a1"), out.lines);
        now.set(1_000_000);
        for (int i = 0; i < 5; i++) log.log(Level.WARNING, "b" + i);
        assertEquals(List.of("a0", "a1", "b0 [3 similar lines suppressed]", "b1"), out.lines,
                "a burst of 2 after the quiet span, not 100,000 intervals' worth");
    }

    @Test
    void theParentBoundsManyChildren() {
        Recorder out = new Recorder();
        AtomicLong now = new AtomicLong();
        RateLimitedLog server = new RateLimitedLog(out, 4, 1000, now::get, null, "");
        for (int c = 0; c < 10; c++) {
            RateLimitedLog connection = server.child("peer" + c);
            for (int i = 0; i < 10; i++) connection.log(Level.WARNING, "w" + i);
        }
        assertEquals(4, out.lines.size(), String.join("\n", out.lines));
        assertTrue(out.lines.getFirst().startsWith("peer0: "));
    }

    @Test
    void everyLineIsOneLineWithTheFailureOnIt() {
        Recorder out = new Recorder();
        RateLimitedLog log = new RateLimitedLog(out, 10, 10, () -> 0, null, "");
        log.log(Level.WARNING, "export 'a\nFAKE: forged line\u2028x'");
        log.log(Level.ERROR, () -> "failed", new IllegalStateException("bad\nthing"));
        assertEquals("export 'a\\x0aFAKE: forged line\\x28x'", out.lines.get(0));
        assertTrue(out.lines.get(1).startsWith("failed: java.lang.IllegalStateException: bad\\x0athing at "),
                out.lines.get(1));
        assertEquals(-1, out.lines.get(1).indexOf('\n'));
        assertTrue(RateLimitedLog.oneLine("x".repeat(10_000)).length() < 2100);
    }

    @Test
    void optionListFloodWritesAFewLinesNotAMegabyte() throws Exception {
        Logger jul = Logger.getLogger("dedisk.nbd");
        AtomicLong bytes = new AtomicLong();
        AtomicLong lines = new AtomicLong();
        Handler counter = new Handler() {
            @Override public void publish(LogRecord record) {
                lines.incrementAndGet();
                bytes.addAndGet(String.valueOf(record.getMessage()).length() + 40);
            }
            @Override public void flush() {}
            @Override public void close() {}
        };
        jul.addHandler(counter);
        int connections = 8;
        int options = 5_000;
        try (NbdServer server = new NbdServer(new MemoryVolumeProvider(new MemoryVolume("disk", 1 << 20)),
                new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
             ExecutorService clients = Executors.newFixedThreadPool(connections)) {
            server.start();
            List<Future<Integer>> refused = new ArrayList<>();
            for (int c = 0; c < connections; c++) {
                refused.add(clients.submit(() -> {
                    int errors = 0;
                    try (TestNbdClient client = TestNbdClient.negotiated(server.localAddress(), false)) {
                        byte[] junk = new byte[64];
                        for (int i = 0; i < options; i++) {
                            List<TestNbdClient.OptionReply> replies = client.option(NBD_OPT_LIST, junk);
                            if (replies.getLast().type() == NBD_REP_ERR_INVALID) errors++;
                        }
                    }
                    return errors;
                }));
            }
            for (Future<Integer> f : refused) assertEquals(options, f.get(), "every flooded option is refused");
            TransmissionTest.awaitNoConnections(server);
        } finally {
            jul.removeHandler(counter);
        }
        // 8 x 5,000 refusals: each connection logs connect, 5 warnings, disconnect and a summary.
        assertTrue(lines.get() <= connections * 10 + 4, lines.get() + " log lines");
        assertTrue(bytes.get() < 20_000, bytes.get() + " bytes of log");
    }
}
