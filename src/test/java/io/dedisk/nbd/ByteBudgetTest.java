package io.dedisk.nbd;

import static org.junit.jupiter.api.Assertions.*;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;

import io.dedisk.util.Check;

/** {@link ByteBudget} and the piece sizes of {@link Payload}. */
class ByteBudgetTest {
    @Test
    void acquireWaitsForARelease() throws Exception {
        ByteBudget budget = new ByteBudget(100);
        assertTrue(budget.tryAcquire(60));
        assertFalse(budget.tryAcquire(50));
        CompletableFuture<Boolean> waiter = CompletableFuture.supplyAsync(
                () -> budget.acquire(50, Long.MAX_VALUE, () -> false));
        Thread.sleep(100);
        assertFalse(waiter.isDone(), "acquire returned while the budget was spent");
        budget.release(60);
        assertTrue(waiter.get(10, TimeUnit.SECONDS));
        assertEquals(50, budget.used());
    }

    @Test
    void acquireGivesUpAtItsDeadlineOrWhenCancelled() {
        ByteBudget budget = new ByteBudget(100);
        assertTrue(budget.tryAcquire(100));
        assertFalse(budget.acquire(1, System.nanoTime() + 50_000_000L, () -> false));
        assertFalse(budget.acquire(1, Long.MAX_VALUE, () -> true));
        assertEquals(100, budget.used(), "a failed acquire took something");
    }

    @Test
    void overReleaseIsABug() {
        ByteBudget budget = new ByteBudget(100);
        assertTrue(budget.tryAcquire(10));
        assertThrows(Check.InvariantViolation.class, () -> budget.release(11));
        assertThrows(Check.InvariantViolation.class, () -> budget.tryAcquire(101));
    }

    @Test
    void payloadPiecesGrowWithWhatArrived() {
        int first = Payload.FIRST_PIECE;
        assertEquals(4096, Payload.nextPieceLength(4096, 0));
        assertEquals(first, Payload.nextPieceLength(32 << 20, 0));
        assertEquals(first, Payload.nextPieceLength(32 << 20, first));
        assertEquals(2 * first, Payload.nextPieceLength(32 << 20, 2L * first));
        assertEquals(16 << 20, Payload.nextPieceLength(32 << 20, 16 << 20));
        assertEquals(10, Payload.nextPieceLength(first + 10, first));
        // Memory held never exceeds max(first piece, twice what arrived).
        long received = 0;
        int pieces = 0;
        while (received < (32 << 20)) {
            int next = Payload.nextPieceLength(32 << 20, received);
            assertTrue(received + next <= Math.max(first, 2 * received), "piece of " + next + " after " + received);
            received += next;
            pieces++;
        }
        assertEquals(8, pieces);
        assertThrows(Check.InvariantViolation.class, () -> Payload.nextPieceLength(10, 10));
    }
}
