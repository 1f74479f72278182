package io.dedisk.cli;

import io.dedisk.store.ObjectStore;
import io.dedisk.store.S3Location;
import io.dedisk.store.S3ObjectStore;
import java.io.IOException;
import java.net.URI;
import java.util.Map;

/**
 * The one place the CLI makes an object-store client from an {@code s3://BUCKET/PREFIX} URI and the environment
 * (AWS SDK v2 default chains: AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3, AWS_REGION, AWS_ACCESS_KEY_ID /
 * AWS_SECRET_ACCESS_KEY, ~/.aws profiles; path-style addressing whenever an endpoint is set; see {@link S3Location}).
 *
 * The client sends each request once: the pool's {@code RetryingObjectStore} is the one retrying layer
 * (docs/decisions.md "One retry layer").
 */
final class ObjectStores {
    private ObjectStores() {}

    /** Opens a client for the URI's bucket, keys relative to its prefix. */
    static ObjectStore open(URI uri, Map<String, String> env) throws IOException {
        return S3ObjectStore.open(S3Location.parse(uri.toString()), env, S3ObjectStore.Settings.defaults());
    }
}
