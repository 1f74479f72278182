package io.dedisk.store;

import io.dedisk.util.Check;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.io.UncheckedIOException;
import java.time.Duration;
import java.util.concurrent.ThreadLocalRandom;
import software.amazon.awssdk.core.exception.ApiCallAttemptTimeoutException;
import software.amazon.awssdk.core.exception.ApiCallTimeoutException;
import software.amazon.awssdk.core.exception.SdkClientException;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.services.s3.model.S3Exception;

/**
 * The retry loop of {@link S3ObjectStore}: which failures are transient, and how long to wait between attempts.
 * The SDK's own retries are off (docs/decisions.md "S3 client: own retries"), so that each attempt is visible
 * here: a conditional write needs to know whether an earlier attempt of the same call may have stored the object.
 *
 * Transient: throttling (429, 503 SlowDown), other 5xx, 408 / RequestTimeout, 409 ConditionalRequestConflict
 * (AWS: a concurrent conditional write, "retry"), attempt timeouts and connection errors (any IOException under
 * the SDK's exception). Anything else (403, 404, 400, 412, credentials) is final at once: a
 * {@link RequestRefusedException} (or the answer the attempt makes of it: 412, missing object).
 * Waits: full jitter (AWS architecture blog, "Exponential Backoff And Jitter"): attempt n sleeps a uniform random
 * time in [0, min(cap, base·2^(n-1))), so a crowd of clients does not retry in lock step.
 *
 * Immutable; any thread (each call runs its own loop on the caller's thread).
 */
final class S3Retry {
    /** One attempt of a request; {@code attempt} counts from 1, and > 1 means an earlier attempt failed transiently. */
    interface Attempt<T> {
        T run(int attempt) throws IOException;
    }

    private final int maxAttempts;
    private final Duration base;
    private final Duration cap;

    S3Retry(int maxAttempts, Duration base, Duration cap) {
        Check.that(maxAttempts >= 1, "S3 retry attempts must be >= 1, found %d", maxAttempts);
        Check.that(!base.isNegative() && base.compareTo(cap) <= 0, "S3 backoff base %s must be in [0, cap %s]", base, cap);
        this.maxAttempts = maxAttempts;
        this.base = base;
        this.cap = cap;
    }

    /**
     * Runs the request until it succeeds, fails finally, or used all attempts; then an IOException naming the
     * request, the attempts and the last cause. IOExceptions the attempt throws itself (412, missing object)
     * pass through untouched.
     */
    <T> T run(String what, Attempt<T> attempt) throws IOException {
        SdkException last = null;
        for (int n = 1; n <= maxAttempts; n++) {
            try {
                return attempt.run(n);
            } catch (SdkException e) {
                if (!isTransient(e)) throw new RequestRefusedException(what + " failed: " + describe(e), e);
                last = e;
            } catch (UncheckedIOException e) {
                throw new IOException(what + " failed: " + e.getCause().getMessage(), e.getCause());
            }
            if (n < maxAttempts) sleep(what, n);
        }
        throw new IOException(what + " failed after " + maxAttempts + " attempts; last error: " + describe(last), last);
    }

    private void sleep(String what, int attempt) throws InterruptedIOException {
        long ceiling = Math.min(cap.toNanos(), base.toNanos() << Math.min(attempt - 1, 30));
        long nanos = ceiling <= 0 ? 0 : ThreadLocalRandom.current().nextLong(ceiling);
        try {
            Thread.sleep(Duration.ofNanos(nanos));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException(what + " interrupted while waiting to retry");
        }
    }

    static boolean isTransient(SdkException e) {
        if (e instanceof S3Exception s) {
            int status = s.statusCode();
            String code = s.awsErrorDetails() == null ? null : s.awsErrorDetails().errorCode();
            return status >= 500 || status == 429 || status == 408 || "RequestTimeout".equals(code) || "SlowDown".equals(code)
                    || (status == 409 && "ConditionalRequestConflict".equals(code));
        }
        if (e instanceof ApiCallAttemptTimeoutException || e instanceof ApiCallTimeoutException) return true;
        if (e instanceof SdkClientException) {
            for (Throwable t = e.getCause(); t != null; t = t.getCause()) if (t instanceof IOException) return true;
            return e.retryable();
        }
        return false;
    }

    static String describe(SdkException e) {
        if (e instanceof S3Exception s && s.awsErrorDetails() != null) {
            return "HTTP " + s.statusCode() + " " + s.awsErrorDetails().errorCode() + ": " + s.awsErrorDetails().errorMessage();
        }
        Throwable root = e;
        while (root.getCause() != null) root = root.getCause();
        return root == e ? e.getMessage() : e.getMessage() + " (" + root + ")";
    }
}
