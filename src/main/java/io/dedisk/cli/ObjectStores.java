package io.dedisk.cli;

import io.dedisk.DediskException.InvalidRequestException;
import io.dedisk.store.ObjectStore;
import java.io.IOException;
import java.net.URI;
import java.util.Map;

/**
 * The one place the CLI makes an object-store client from an {@code s3://BUCKET/PREFIX} URI and the environment
 * (AWS SDK v2 default chains: AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3, AWS_REGION, AWS_ACCESS_KEY_ID /
 * AWS_SECRET_ACCESS_KEY, ~/.aws profiles; path-style addressing whenever an endpoint is set). The S3 client
 * ({@code io.dedisk.store.S3ObjectStore}) plugs in here.
 */
final class ObjectStores {
    private ObjectStores() {}

    /** Validates the URI (bucket and prefix) and opens a client for it, keys relative to the prefix. */
    static ObjectStore open(URI uri, Map<String, String> env) throws IOException {
        Bucket b = parse(uri);
        throw new InvalidRequestException("S3 client not built yet: cannot open bucket '" + b.bucket() + "' prefix '" + b.prefix()
                + "' (this dedisk has the bucket-pool engine but no S3 client; use a pool directory)");
    }

    /** An s3:// URI's bucket and key prefix (empty, or ending in '/'). */
    record Bucket(String bucket, String prefix) {}

    static Bucket parse(URI uri) {
        if (!"s3".equals(uri.getScheme()) || uri.getHost() == null || uri.getHost().isEmpty()) {
            throw new InvalidRequestException("invalid pool location '" + uri + "': expected s3://BUCKET/PREFIX or a directory path");
        }
        String path = uri.getPath() == null ? "" : uri.getPath();
        String prefix = path.startsWith("/") ? path.substring(1) : path;
        if (!prefix.isEmpty() && !prefix.endsWith("/")) prefix += "/";
        return new Bucket(uri.getHost(), prefix);
    }
}
