package io.dedisk.cli;

import io.dedisk.store.ObjectStore;
import io.dedisk.store.S3Location;
import io.dedisk.store.S3ObjectStore;
import java.io.IOException;
import java.net.URI;
import java.time.Duration;
import java.util.Map;

/**
 * The one place the CLI makes an object-store client from an {@code s3://BUCKET/PREFIX} URI and the environment
 * (AWS SDK v2 default chains: AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3, AWS_REGION, AWS_ACCESS_KEY_ID /
 * AWS_SECRET_ACCESS_KEY, ~/.aws profiles; path-style addressing whenever an endpoint is set; see {@link S3Location}).
 *
 * Retries: the pool's {@code RetryingObjectStore} already retries reads, listings, deletions and plain puts with
 * its own backoff, so the S3 client's own loop (which also resolves ambiguous conditional writes) is kept short:
 * attempts multiply otherwise (docs/decisions.md).
 */
final class ObjectStores {
    static final int S3_ATTEMPTS = 3;

    private ObjectStores() {}

    /** Opens a client for the URI's bucket, keys relative to its prefix. */
    static ObjectStore open(URI uri, Map<String, String> env) throws IOException {
        S3ObjectStore.Settings settings = S3ObjectStore.Settings.defaults().withRetries(S3_ATTEMPTS, Duration.ofMillis(100), Duration.ofSeconds(2));
        return S3ObjectStore.open(S3Location.parse(uri.toString()), env, settings);
    }
}
