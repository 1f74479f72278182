package io.dedisk.store;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicInteger;
import org.gaul.s3proxy.BlobStores;
import org.gaul.s3proxy.S3Proxy;
import org.gaul.s3proxy.auth.AuthenticationType;
import org.gaul.s3proxy.blobstore.BlobStore;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * A real S3 server for tests: S3Proxy 4.x in this JVM on 127.0.0.1 and an ephemeral port, in-memory ("transient"
 * provider) or in a directory ({@link #onDisk}: "filesystem" provider, for benchmarks, so the bucket's bytes are not
 * in this JVM's heap), AWS SigV2/V4 authentication with fixed test keys, one bucket. Use it as a JUnit 5 extension, one
 * server per test class:
 *
 * <pre>
 * &#64;RegisterExtension static final S3ProxyFixture S3 = new S3ProxyFixture();
 * ... S3.newStore() ...                      // an S3ObjectStore on a fresh, empty prefix
 * ... pb.environment().putAll(S3.environment()) ...   // a child process (dedisk serve) reaching the same server
 * </pre>
 * or standalone with {@link #start()} and {@link #close()}.
 *
 * S3Proxy evaluates If-None-Match atomically in its blob store; If-Match is emulated inside its process (read the
 * ETag, then write), which is atomic enough for tests whose only writers go through this one server.
 *
 * Threads: start and close on the test thread; everything else from any thread.
 */
public final class S3ProxyFixture implements BeforeAllCallback, AfterAllCallback, AutoCloseable {
    public static final String ACCESS_KEY = "dedisk-test-access";
    public static final String SECRET_KEY = "dedisk-test-secret";
    public static final String BUCKET = "dedisk-test";
    public static final String REGION = "us-east-1";

    private static final AtomicInteger PREFIXES = new AtomicInteger();
    private final AuthenticationType authentication;
    /** Where the objects live: null for memory. */
    private final Path directory;
    /** Served over https with a self-signed certificate for 127.0.0.1 ({@link #trustThisServer}). */
    private final boolean https;
    private Path keyStore;
    private BlobStore blobs;
    private S3Proxy proxy;
    private URI endpoint;

    /** A server checking SigV2/V4 signatures made with the test keys. */
    public S3ProxyFixture() { this(AuthenticationType.AWS_V2_OR_V4, null, false); }

    private S3ProxyFixture(AuthenticationType authentication, Path directory, boolean https) {
        this.authentication = authentication;
        this.directory = directory;
        this.https = https;
    }

    /** A server that checks no signature, so a test may rewrite requests on their way (see FlakyTcpProxy). */
    public static S3ProxyFixture unauthenticated() { return new S3ProxyFixture(AuthenticationType.NONE, null, false); }

    /**
     * A server checking signatures that keeps its objects as files under {@code directory} (which must exist), as a
     * real server keeps them on its disks: the in-memory provider would hold the whole bucket in this JVM's heap,
     * and its garbage collection would be charged to the pool under test.
     */
    public static S3ProxyFixture onDisk(Path directory) { return new S3ProxyFixture(AuthenticationType.AWS_V2_OR_V4, directory, false); }

    /**
     * The same over https://, as AWS S3 is reached: the SDK then sends UNSIGNED-PAYLOAD (TLS guards the body, the
     * server checks its x-amz-checksum-crc32c) instead of signing every byte. The certificate is self-signed for
     * 127.0.0.1 and made at start with the JDK's keytool; {@link #start} makes this JVM trust it (its default trust
     * store becomes the certificate's key store), so use it only in a JVM of its own, such as a benchmark's.
     */
    public static S3ProxyFixture onDiskHttps(Path directory) { return new S3ProxyFixture(AuthenticationType.AWS_V2_OR_V4, directory, true); }

    /** Starts the server and creates the bucket. */
    public S3ProxyFixture start() throws Exception {
        if (proxy != null) return this;
        Properties p = new Properties();
        p.setProperty("jclouds.identity", ACCESS_KEY);
        p.setProperty("jclouds.credential", SECRET_KEY);
        if (directory != null) p.setProperty("jclouds.filesystem.basedir", directory.toString());
        blobs = BlobStores.create(directory == null ? "transient" : "filesystem", p);
        S3Proxy.Builder builder = S3Proxy.builder().blobStore(blobs).awsAuthentication(authentication, ACCESS_KEY, SECRET_KEY);
        if (https) {
            keyStore = selfSignedKeyStore();
            builder.secureEndpoint(URI.create("https://127.0.0.1:0")).keyStore(keyStore.toString(), SECRET_KEY);
            System.setProperty("javax.net.ssl.trustStore", keyStore.toString());
            System.setProperty("javax.net.ssl.trustStorePassword", SECRET_KEY);
            System.setProperty("javax.net.ssl.trustStoreType", "PKCS12");
        } else {
            builder.endpoint(URI.create("http://127.0.0.1:0"));
        }
        proxy = builder.build();
        proxy.start();
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (!"STARTED".equals(proxy.getState())) {
            if (System.nanoTime() > deadline) throw new IllegalStateException("S3Proxy did not start within 30 s: state " + proxy.getState());
            Thread.sleep(10);
        }
        endpoint = https ? URI.create("https://127.0.0.1:" + proxy.getSecurePort()) : URI.create("http://127.0.0.1:" + proxy.getPort());
        blobs.createContainer(BUCKET);
        return this;
    }

    /** A PKCS12 key store (password: the secret key) with a new EC key and a self-signed certificate for 127.0.0.1. */
    private static Path selfSignedKeyStore() throws IOException, InterruptedException {
        Path dir = Files.createTempDirectory("dedisk-s3proxy-tls");
        Path store = dir.resolve("server.p12");
        Path keytool = Path.of(System.getProperty("java.home"), "bin", "keytool");
        Process p = new ProcessBuilder(keytool.toString(), "-genkeypair", "-alias", "s3proxy", "-keyalg", "EC", "-groupname", "secp256r1",
                "-dname", "CN=127.0.0.1", "-ext", "san=ip:127.0.0.1", "-validity", "2", "-storetype", "PKCS12",
                "-keystore", store.toString(), "-storepass", SECRET_KEY, "-keypass", SECRET_KEY).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        if (p.waitFor() != 0 || !Files.exists(store)) throw new IOException("keytool could not make a key store: " + out);
        return store;
    }

    @Override
    public void beforeAll(ExtensionContext context) throws Exception { start(); }

    @Override
    public void afterAll(ExtensionContext context) throws Exception { close(); }

    @Override
    public void close() throws IOException {
        if (proxy == null) return;
        try {
            proxy.stop();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted stopping S3Proxy");
        } catch (Exception e) {
            throw new IOException("S3Proxy did not stop", e);
        } finally {
            blobs.close();
            proxy = null;
            if (keyStore != null) {
                Files.deleteIfExists(keyStore);
                Files.deleteIfExists(keyStore.getParent());
            }
        }
    }

    public URI endpoint() { return endpoint; }

    /** What a process needs to reach this server: AWS_ENDPOINT_URL, the keys, the region. */
    public Map<String, String> environment() { return environment(endpoint); }

    /** The same credentials, but through another endpoint (e.g. a fault-injecting TCP proxy in front of this one). */
    public static Map<String, String> environment(URI endpoint) {
        return Map.of("AWS_ENDPOINT_URL", endpoint.toString(), "AWS_ACCESS_KEY_ID", ACCESS_KEY, "AWS_SECRET_ACCESS_KEY", SECRET_KEY,
                "AWS_REGION", REGION);
    }

    /** A prefix no other test of this JVM uses, in the fixture's bucket. */
    public S3Location freshLocation() {
        return new S3Location(BUCKET, "").resolve("t" + PREFIXES.incrementAndGet() + "-" + Long.toHexString(System.nanoTime()));
    }

    /** Settings that fail fast: 2 s to connect, 10 s per request. */
    public static S3ObjectStore.Settings fastSettings() {
        return S3ObjectStore.Settings.defaults().withTimeouts(Duration.ofSeconds(2), Duration.ofSeconds(10), Duration.ofSeconds(10));
    }

    /** A retry policy that fails fast: 4 attempts with 10..80 ms of backoff. */
    public static Retry fastRetry() { return Retry.defaults().withAttempts(4, Duration.ofMillis(10), Duration.ofMillis(80)); }

    /** A store on a fresh, empty prefix. */
    public S3ObjectStore newStore() { return newStore(fastSettings()); }

    public S3ObjectStore newStore(S3ObjectStore.Settings settings) { return S3ObjectStore.open(freshLocation(), environment(), settings); }
}
