package io.dedisk.store;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.NoSuchFileException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The one retry policy: a request is sent at most {@code attempts} times, answers and refusals are not retried, and the
 * waits between attempts stay under the full-jitter ceilings (base doubling to the cap).
 */
class RetryTest {
    final List<Long> waits = new ArrayList<>();
    final Retry retry = new Retry(5, Duration.ofMillis(100), Duration.ofMillis(300), waits::add);

    @Test
    void aTransientFailureIsRetriedUpToTheAttemptsWithCappedJitteredWaits() {
        int[] sent = {0};
        IOException e = assertThrows(IOException.class, () -> retry.run("GET k", n -> {
            sent[0]++;
            assertEquals(sent[0], n, "attempts count from 1");
            throw new IOException("connection reset " + n);
        }));
        assertEquals(5, sent[0], "5 attempts, no more");
        assertTrue(e.getMessage().contains("GET k failed after 5 attempts") && e.getMessage().contains("connection reset 5"), e.getMessage());
        assertEquals(4, waits.size(), "a wait between attempts, none after the last");
        long[] ceilings = {100, 200, 300, 300};
        for (int i = 0; i < 4; i++) assertTrue(waits.get(i) >= 0 && waits.get(i) < Duration.ofMillis(ceilings[i]).toNanos(), "wait " + i + ": " + waits);
    }

    @Test
    void answersAndRefusalsAreNotRetried() {
        for (IOException answer : List.of(new ObjectStore.PreconditionFailedException("k", "exists"), new NoSuchFileException("k"),
                new RequestRefusedException("HTTP 403", null), new java.io.InterruptedIOException("stop"), new FencedException("fenced"))) {
            int[] sent = {0};
            IOException e = assertThrows(IOException.class, () -> retry.run("PUT k", n -> {
                sent[0]++;
                throw answer;
            }));
            assertSame(answer, e, "passed through untouched");
            assertEquals(1, sent[0], answer.getClass().getSimpleName() + " is final");
        }
        assertEquals(List.of(), waits);
    }

    @Test
    void aRequestThatSucceedsLateReturnsItsResult() throws Exception {
        assertEquals("ok", retry.run("GET k", n -> {
            if (n < 3) throw new IOException("503 SlowDown");
            return "ok";
        }));
        assertEquals(2, waits.size());
    }
}
