package io.dedisk.store;

import io.dedisk.util.Check;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;
import software.amazon.awssdk.awscore.retry.AwsRetryStrategy;
import software.amazon.awssdk.core.ResponseBytes;
import software.amazon.awssdk.core.checksums.RequestChecksumCalculation;
import software.amazon.awssdk.core.checksums.ResponseChecksumValidation;
import software.amazon.awssdk.core.sync.RequestBody;
import software.amazon.awssdk.http.ContentStreamProvider;
import software.amazon.awssdk.http.apache5.Apache5HttpClient;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.S3ClientBuilder;
import software.amazon.awssdk.services.s3.model.ChecksumAlgorithm;
import software.amazon.awssdk.services.s3.model.CompletedPart;
import software.amazon.awssdk.services.s3.model.GetObjectResponse;
import software.amazon.awssdk.services.s3.model.ListObjectsV2Response;
import software.amazon.awssdk.services.s3.model.NoSuchKeyException;
import software.amazon.awssdk.services.s3.model.S3Exception;
import software.amazon.awssdk.services.s3.model.S3Object;

/**
 * {@link ObjectStore} on S3 and S3-compatible servers (AWS SDK v2, sync, Apache 5 HTTP client). Owns the mapping
 * of the interface's calls to S3 requests under one {@link S3Location} (bucket + key prefix):
 * <ul>
 * <li>put: one PutObject up to {@link Settings#partSize}, else a multipart upload of partSize parts, up to
 * partConcurrency of them at once on virtual threads (aborted on failure, so no parts are left behind by this
 * process);</li>
 * <li>putIfAbsent / replaceIfMatch: PutObject with {@code If-None-Match: *} / {@code If-Match: etag}; 412 (and 404
 * for If-Match on a missing key) is a {@link PreconditionFailedException};</li>
 * <li>getRange: GetObject with a Range header; a range past the end gives fewer (or no) bytes;</li>
 * <li>list: ListObjectsV2 pages of {@link Settings#listPageSize} keys.</li>
 * </ul>
 * Integrity in flight: each PUT and part carries {@code x-amz-checksum-crc32c} of its bytes, which the server
 * recomputes and refuses on mismatch (400 BadDigest, transient: sent again); over http:// the SDK also signs the payload
 * (SigV4 streaming signatures, SHA-256 per 128 KiB chunk, which it cannot be told not to), over https:// it sends
 * UNSIGNED-PAYLOAD and TLS guards the bytes. What is read back is checked by the segments' own CRCs.
 *
 * Every call sends its requests once (SDK retries off): a failure is a plain IOException when it is worth another
 * attempt, a {@link RequestRefusedException} when it is final ({@link S3Errors}). Retrying, and resolving an ambiguous
 * conditional PUT, is the pool's one retrying layer's ({@link RetryingObjectStore}); a multipart put whose part fails
 * is aborted and fails whole, and is retried whole there.
 *
 * Threads: thread-safe (the SDK client is); each call blocks its caller for its requests.
 */
public final class S3ObjectStore implements ObjectStore {
    /** The smallest part S3 accepts (except the last). */
    public static final int MIN_PART_SIZE = 5 << 20;
    private static final String OCTETS = "application/octet-stream";

    /** Tuning: multipart part size and parallelism, listing page, HTTP timeouts and pool size. */
    public record Settings(int partSize, int partConcurrency, int listPageSize, Duration connectTimeout, Duration socketTimeout, Duration attemptTimeout,
            int maxConnections) {
        public Settings {
            Check.that(partSize >= MIN_PART_SIZE, "S3 part size %d is below S3's minimum %d", partSize, MIN_PART_SIZE);
            Check.that(partConcurrency >= 1, "S3 part concurrency %d < 1", partConcurrency);
            Check.that(listPageSize >= 1 && listPageSize <= 1000, "S3 list page size %d outside [1, 1000]", listPageSize);
            Check.that(maxConnections >= 1, "S3 max connections %d < 1", maxConnections);
        }

        /**
         * 8 MiB parts (a 16 MiB segment = 2 parts), up to 4 uploading at once, 5 s to connect, 30 s of socket silence or
         * 2 min per request before giving up on it.
         */
        public static Settings defaults() {
            return new Settings(8 << 20, 4, 1000, Duration.ofSeconds(5), Duration.ofSeconds(30), Duration.ofMinutes(2), 64);
        }

        public Settings withListPageSize(int n) {
            return new Settings(partSize, partConcurrency, n, connectTimeout, socketTimeout, attemptTimeout, maxConnections);
        }

        public Settings withTimeouts(Duration connect, Duration socket, Duration attempt) {
            return new Settings(partSize, partConcurrency, listPageSize, connect, socket, attempt, maxConnections);
        }
    }

    private final S3Client s3;
    private final S3Location location;
    private final Settings settings;

    private S3ObjectStore(S3Client s3, S3Location location, Settings settings) {
        this.s3 = s3;
        this.location = location;
        this.settings = settings;
    }

    /** A store at location, reached as the environment says ({@link S3Location#clientBuilder}). */
    public static S3ObjectStore open(S3Location location, Map<String, String> env, Settings settings) {
        S3ClientBuilder b = location.clientBuilder(env);
        b.httpClientBuilder(Apache5HttpClient.builder().maxConnections(settings.maxConnections())
                .connectionTimeout(settings.connectTimeout()).socketTimeout(settings.socketTimeout()))
                .overrideConfiguration(b.overrideConfiguration().toBuilder()
                        .retryStrategy(AwsRetryStrategy.doNotRetry()).apiCallAttemptTimeout(settings.attemptTimeout()).build())
                // Every body carries the x-amz-checksum-crc32c header computed here (crc32c), which the server
                // checks as the body arrives; the SDK's own default (2.30+) is a CRC32 in an aws-chunked trailer,
                // which some S3-compatible servers refuse, and would checksum the bytes a second time.
                // docs/decisions.md "S3 upload integrity and cost".
                .requestChecksumCalculation(RequestChecksumCalculation.WHEN_REQUIRED)
                .responseChecksumValidation(ResponseChecksumValidation.WHEN_REQUIRED);
        return new S3ObjectStore(b.build(), location, settings);
    }

    public S3Location location() { return location; }

    @Override
    public void put(String key, byte[] content) throws IOException {
        if (content.length > settings.partSize()) {
            putMultipart(key, content);
            return;
        }
        String k = location.key(key);
        String crc = crc32c(content, 0, content.length);
        S3Errors.once("PUT " + k, () -> s3.putObject(b -> b.bucket(location.bucket()).key(k).contentType(OCTETS).checksumCRC32C(crc),
                body(content, 0, content.length)));
    }

    private void putMultipart(String key, byte[] content) throws IOException {
        String k = location.key(key);
        String uploadId = S3Errors.once("CreateMultipartUpload " + k,
                () -> s3.createMultipartUpload(b -> b.bucket(location.bucket()).key(k).contentType(OCTETS).checksumAlgorithm(ChecksumAlgorithm.CRC32_C)).uploadId());
        try {
            List<CompletedPart> parts = uploadParts(k, uploadId, content);
            S3Errors.once("CompleteMultipartUpload " + k, () -> s3.completeMultipartUpload(b -> b.bucket(location.bucket()).key(k).uploadId(uploadId)
                    .multipartUpload(m -> m.parts(parts))).eTag());
        } catch (IOException | RuntimeException e) {
            abort(k, uploadId, e);
            throw e;
        }
    }

    /** Uploads the parts, up to partConcurrency at once; on the first part that fails, stops the others. */
    private List<CompletedPart> uploadParts(String k, String uploadId, byte[] content) throws IOException {
        int size = settings.partSize();
        int count = (int) ((content.length + (long) size - 1) / size);
        Semaphore slots = new Semaphore(settings.partConcurrency());
        List<Future<CompletedPart>> done = new ArrayList<>(count);
        try (ExecutorService uploads = Executors.newVirtualThreadPerTaskExecutor()) {
            for (int i = 0; i < count; i++) {
                int part = i + 1;
                int off = i * size;
                int len = Math.min(size, content.length - off);
                done.add(uploads.submit(() -> {
                    slots.acquire();
                    try {
                        String crc = crc32c(content, off, len);
                        String etag = S3Errors.once("UploadPart " + part + "/" + count + " of " + k, () -> s3.uploadPart(
                                b -> b.bucket(location.bucket()).key(k).uploadId(uploadId).partNumber(part).contentLength((long) len).checksumCRC32C(crc),
                                body(content, off, len)).eTag());
                        return CompletedPart.builder().partNumber(part).eTag(etag).checksumCRC32C(crc).build();
                    } finally {
                        slots.release();
                    }
                }));
            }
            List<CompletedPart> parts = new ArrayList<>(count);
            try {
                for (int i = 0; i < count; i++) parts.add(result(done.get(i)));
            } catch (IOException | RuntimeException e) {
                uploads.shutdownNow(); // interrupts the other parts' requests
                throw e;
            }
            return parts;
        }
    }

    private static CompletedPart result(Future<CompletedPart> part) throws IOException {
        try {
            return part.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted waiting for a part upload");
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof IOException io) throw io;
            if (cause instanceof RuntimeException re) throw re;
            if (cause instanceof Error err) throw err;
            throw new IOException("part upload failed", cause);
        }
    }

    /** Best effort: a failed abort leaves an incomplete upload for the bucket's lifecycle rule to remove. */
    private void abort(String k, String uploadId, Exception failure) {
        try {
            s3.abortMultipartUpload(b -> b.bucket(location.bucket()).key(k).uploadId(uploadId));
        } catch (RuntimeException e) {
            failure.addSuppressed(e);
        }
    }

    @Override
    public String putIfAbsent(String key, byte[] content) throws IOException {
        String k = location.key(key);
        String crc = crc32c(content, 0, content.length);
        return S3Errors.once("PUT If-None-Match " + k, () -> {
            try {
                return s3.putObject(b -> b.bucket(location.bucket()).key(k).contentType(OCTETS).ifNoneMatch("*").checksumCRC32C(crc), body(content, 0, content.length)).eTag();
            } catch (S3Exception e) {
                if (e.statusCode() != 412) throw e;
                throw new PreconditionFailedException(k, "an object with this key exists");
            }
        });
    }

    @Override
    public String replaceIfMatch(String key, byte[] content, String etag) throws IOException {
        String k = location.key(key);
        String crc = crc32c(content, 0, content.length);
        return S3Errors.once("PUT If-Match " + k, () -> {
            try {
                return s3.putObject(b -> b.bucket(location.bucket()).key(k).contentType(OCTETS).ifMatch(etag).checksumCRC32C(crc), body(content, 0, content.length)).eTag();
            } catch (S3Exception e) {
                // AWS answers If-Match on a missing key with 404 NoSuchKey; S3Proxy with 412.
                if (e.statusCode() != 412 && !missing(e)) throw e;
                throw new PreconditionFailedException(k, e.statusCode() == 412 ? "expected ETag " + etag + ", the object has another" : "expected ETag " + etag + ", the object does not exist");
            }
        });
    }

    /**
     * Proves that the server honours If-None-Match and If-Match, which fencing rests on: a server that ignores them
     * (older S3-compatible servers do) would let two writers replace the manifest. Writes one probe object under
     * the prefix, and deletes it. A RequestRefusedException names the header the server ignored.
     */
    public void checkConditionalWrites() throws IOException {
        String probe = ".dedisk-conditional-write-probe-" + UUID.randomUUID();
        ObjectStore retried = new RetryingObjectStore(this, Retry.defaults()); // each probe write has its own bytes: any 412 is the server's answer
        try {
            String etag = retried.putIfAbsent(probe, bytes("1"));
            expectLost(() -> retried.putIfAbsent(probe, bytes("2")), "If-None-Match: * on an existing object");
            expectLost(() -> retried.replaceIfMatch(probe, bytes("3"), "\"00000000000000000000000000000000\""), "If-Match with a stale ETag");
            retried.replaceIfMatch(probe, bytes("4"), etag);
        } finally {
            retried.delete(probe);
        }
    }

    private interface Write {
        void run() throws IOException;
    }

    private void expectLost(Write write, String what) throws IOException {
        try {
            write.run();
        } catch (PreconditionFailedException expected) {
            return;
        }
        throw new RequestRefusedException("S3 server at " + location + " ignores " + what + " (expected HTTP 412, the write succeeded):"
                + " it lacks the conditional writes dedisk's pool ownership needs", null);
    }

    private static byte[] bytes(String s) { return s.getBytes(StandardCharsets.UTF_8); }

    @Override
    public Versioned get(String key) throws IOException {
        String k = location.key(key);
        return S3Errors.once("GET " + k, () -> {
            try {
                ResponseBytes<GetObjectResponse> r = s3.getObjectAsBytes(b -> b.bucket(location.bucket()).key(k));
                byte[] bytes = r.asByteArrayUnsafe();
                Long declared = r.response().contentLength();
                if (declared != null && declared != bytes.length) throw new IOException("GET " + k + ": expected " + declared + " bytes, received " + bytes.length);
                return new Versioned(bytes, r.response().eTag());
            } catch (S3Exception e) {
                if (missing(e)) return null;
                throw e;
            }
        });
    }

    @Override
    public byte[] getRange(String key, long offset, int length) throws IOException {
        Check.that(offset >= 0 && length >= 0, "range read of %s at offset %d length %d", key, offset, length);
        String k = location.key(key);
        // A zero-length read still asks for one byte: HTTP has no empty range, and a missing object must still fail.
        long last = offset + Math.max(length, 1) - 1;
        byte[] got = S3Errors.once("GET " + k + " bytes " + offset + "-" + last, () -> {
            try {
                ResponseBytes<GetObjectResponse> r = s3.getObjectAsBytes(b -> b.bucket(location.bucket()).key(k).range("bytes=" + offset + "-" + last));
                byte[] bytes = r.asByteArrayUnsafe();
                if (r.response().contentRange() != null) return bytes;
                // No Content-Range: the server sent the whole object (allowed by RFC 9110); cut the range out.
                return offset >= bytes.length ? new byte[0] : Arrays.copyOfRange(bytes, (int) offset, (int) Math.min(bytes.length, last + 1));
            } catch (S3Exception e) {
                if (e.statusCode() == 416) return new byte[0]; // the range starts at or past the end
                if (missing(e)) throw new NoSuchFileException(k, null, "no such object in bucket " + location.bucket());
                throw e;
            }
        });
        if (got.length > Math.max(length, 1)) throw new IOException("GET " + k + " bytes " + offset + "-" + last + ": expected at most " + length + " bytes, received " + got.length);
        return got.length > length ? Arrays.copyOf(got, length) : got;
    }

    @Override
    public List<Info> list(String prefix) throws IOException {
        String p = location.key(prefix);
        List<Info> out = new ArrayList<>();
        String token = null;
        do {
            String t = token;
            ListObjectsV2Response page = S3Errors.once("LIST " + p, () -> s3.listObjectsV2(
                    b -> b.bucket(location.bucket()).prefix(p).maxKeys(settings.listPageSize()).continuationToken(t)));
            for (S3Object o : page.contents()) out.add(new Info(location.name(o.key()), o.size()));
            token = Boolean.TRUE.equals(page.isTruncated()) ? page.nextContinuationToken() : null;
        } while (token != null);
        // S3 orders by UTF-8 bytes; the interface promises String order (the same for the ASCII keys dedisk writes).
        out.sort(Comparator.comparing(Info::key));
        return out;
    }

    @Override
    public void delete(String key) throws IOException {
        String k = location.key(key);
        S3Errors.once("DELETE " + k, () -> {
            try {
                return s3.deleteObject(b -> b.bucket(location.bucket()).key(k));
            } catch (S3Exception e) {
                if (missing(e)) return null;
                throw e;
            }
        });
    }

    @Override
    public void close() { s3.close(); }

    /** A missing key (not a missing bucket: that is a configuration error, and final). */
    private static boolean missing(S3Exception e) {
        if (e instanceof NoSuchKeyException) return true;
        String code = e.awsErrorDetails() == null ? null : e.awsErrorDetails().errorCode();
        return e.statusCode() == 404 && !"NoSuchBucket".equals(code) && !"NoSuchUpload".equals(code);
    }

    /**
     * The x-amz-checksum-crc32c value of the bytes (base64 of the big-endian CRC32C): the server recomputes it as the
     * body arrives and refuses the request (400 BadDigest) when they differ, so no damaged byte is stored.
     */
    static String crc32c(byte[] content, int off, int len) {
        int v = io.dedisk.util.Crc.of(content, off, len);
        return Base64.getEncoder().encodeToString(new byte[] {(byte) (v >>> 24), (byte) (v >>> 16), (byte) (v >>> 8), (byte) v});
    }

    /** The bytes as a request body without copying them (each attempt re-reads the array). */
    private static RequestBody body(byte[] content, int off, int len) {
        return RequestBody.fromContentProvider(ContentStreamProvider.fromInputStreamSupplier(() -> new ByteArrayInputStream(content, off, len)), len, OCTETS);
    }
}
