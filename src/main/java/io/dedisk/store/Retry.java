package io.dedisk.store;

import io.dedisk.util.Check;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.time.Duration;
import java.util.concurrent.ThreadLocalRandom;

/**
 * How often and how patiently a bucket request is tried: the one retry policy of a bucket pool, applied by the one
 * retrying layer ({@link RetryingObjectStore}; docs/decisions.md "One retry layer").
 *
 * Semantics: a request is sent at most {@code attempts} times (1: never retried). Before attempt n + 1 the caller
 * waits a uniform random time in [0, min(cap, base·2^(n-1))): full jitter (AWS architecture blog, "Exponential Backoff
 * And Jitter"), so a crowd of clients does not retry in lock step. The defaults (8 attempts, 100 ms doubling to 10 s)
 * wait at most about 40 s in all before a request fails for good.
 *
 * Immutable; any thread.
 */
public record Retry(int attempts, Duration base, Duration cap, Sleeper sleeper) {
    /** Waits between attempts (the simulation's does not wait, so it replays exactly and fast). */
    public interface Sleeper {
        void sleep(long nanos) throws InterruptedException;
    }

    public Retry {
        Check.that(attempts >= 1, "retry attempts must be >= 1, found %d", attempts);
        Check.that(!base.isNegative() && cap.compareTo(base) >= 0, "retry backoff base %s must be in [0, cap %s]", base, cap);
    }

    public static Retry defaults() { return new Retry(8, Duration.ofMillis(100), Duration.ofSeconds(10), nanos -> Thread.sleep(Duration.ofNanos(nanos))); }

    /** The same attempts, without waiting between them (the deterministic simulation). */
    public Retry withoutWaiting() { return new Retry(attempts, base, cap, nanos -> { }); }

    public Retry withAttempts(int n, Duration newBase, Duration newCap) { return new Retry(n, newBase, newCap, sleeper); }

    /** Waits before the attempt after failed attempt number {@code failed} (counted from 1). */
    public void pause(String what, int failed) throws InterruptedIOException {
        long ceiling = Math.min(cap.toNanos(), base.toNanos() << Math.min(failed - 1, 30));
        sleep(what, ceiling <= 0 ? 0 : ThreadLocalRandom.current().nextLong(ceiling));
    }

    private void sleep(String what, long nanos) throws InterruptedIOException {
        try {
            sleeper.sleep(nanos);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException(what + ": interrupted while waiting to retry");
        }
    }

    /** One attempt of a request; {@code attempt} counts from 1. */
    public interface Attempt<T> {
        T run(int attempt) throws IOException;
    }

    /** Whether a failure is worth another attempt: an answer (412, a missing object), a refusal or an interrupt is not. */
    public static boolean isTransient(IOException e) {
        return !(e instanceof ObjectStore.PreconditionFailedException || e instanceof java.nio.file.NoSuchFileException
                || e instanceof RequestRefusedException || e instanceof InterruptedIOException || e instanceof FencedException);
    }

    /**
     * Runs the request until it succeeds, fails for good, or used all attempts; then an IOException naming the request,
     * the attempts and the last cause.
     */
    public <T> T run(String what, Attempt<T> attempt) throws IOException {
        for (int n = 1; ; n++) {
            try {
                return attempt.run(n);
            } catch (IOException e) {
                if (!isTransient(e)) throw e;
                if (n >= attempts) throw new IOException(what + " failed after " + n + " attempts; last error: " + e.getMessage(), e);
            }
            pause(what, n);
        }
    }
}
