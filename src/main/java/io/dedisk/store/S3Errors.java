package io.dedisk.store;

import java.io.IOException;
import java.io.UncheckedIOException;
import software.amazon.awssdk.core.exception.ApiCallAttemptTimeoutException;
import software.amazon.awssdk.core.exception.ApiCallTimeoutException;
import software.amazon.awssdk.core.exception.SdkClientException;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.services.s3.model.S3Exception;

/**
 * What a failed S3 request means (S3ObjectStore sends each request once; {@link RetryingObjectStore} is the one layer
 * that retries). The SDK's own retries are off (docs/decisions.md "One retry layer"), so that every attempt is one
 * request the retrying layer sees and counts.
 *
 * Transient (a plain IOException, worth another attempt): throttling (429, 503 SlowDown), other 5xx, 408 /
 * RequestTimeout, 409 ConditionalRequestConflict (AWS: a concurrent conditional write, "retry"), 400 BadDigest and
 * XAmzContentSHA256Mismatch (the body arrived damaged and was not stored: the next attempt sends it again), attempt
 * timeouts and connection errors (any IOException under the SDK's exception). Anything else (403, 404, other 400s,
 * credentials) is final: a {@link RequestRefusedException}, unless the request makes an answer of it first (412, a
 * missing object).
 *
 * Stateless; any thread.
 */
final class S3Errors {
    /** One S3 request, which may throw the SDK's unchecked exceptions. */
    interface Request<T> {
        T run() throws IOException;
    }

    private S3Errors() {}

    /** Sends the request once; an SDK failure becomes an IOException naming the request: transient, or a refusal. */
    static <T> T once(String what, Request<T> request) throws IOException {
        try {
            return request.run();
        } catch (SdkException e) {
            if (!isTransient(e)) throw new RequestRefusedException(what + " failed: " + describe(e), e);
            throw new IOException(what + " failed: " + describe(e), e);
        } catch (UncheckedIOException e) {
            throw new IOException(what + " failed: " + e.getCause().getMessage(), e.getCause());
        }
    }

    static boolean isTransient(SdkException e) {
        if (e instanceof S3Exception s) {
            int status = s.statusCode();
            String code = s.awsErrorDetails() == null ? null : s.awsErrorDetails().errorCode();
            return status >= 500 || status == 429 || status == 408 || "RequestTimeout".equals(code) || "SlowDown".equals(code)
                    || (status == 409 && "ConditionalRequestConflict".equals(code))
                    || (status == 400 && ("BadDigest".equals(code) || "XAmzContentSHA256Mismatch".equals(code)));
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
