package io.dedisk.store;

import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.store.ObjectStore.PreconditionFailedException;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * S3ObjectStore under the pool's one retrying layer ({@link RetryingObjectStore}), on a real S3 server (S3Proxy)
 * behind {@link FlakyTcpProxy}: transient failures are retried and final ones are not, an ambiguous conditional PUT
 * (stored, reported failed) is recognised by its bytes, a dead endpoint fails in bounded time with a clear error,
 * large objects go up in parts and a failed multipart upload is aborted and retried whole.
 */
class S3ObjectStoreTest {
    @RegisterExtension
    static final S3ProxyFixture S3 = new S3ProxyFixture();

    private static byte[] bytes(String s) { return s.getBytes(StandardCharsets.UTF_8); }

    /** A retried store on a fresh prefix reached through the proxy, and a store reaching the server directly. */
    private record Pair(ObjectStore flaky, S3ObjectStore direct) implements AutoCloseable {
        @Override
        public void close() throws IOException {
            flaky.close();
            direct.close();
        }
    }

    private static Pair through(FlakyTcpProxy proxy) {
        S3Location at = S3.freshLocation();
        return new Pair(retried(S3ObjectStore.open(at, S3ProxyFixture.environment(proxy.endpoint()), S3ProxyFixture.fastSettings()), S3ProxyFixture.fastRetry()),
                S3ObjectStore.open(at, S3.environment(), S3ProxyFixture.fastSettings()));
    }

    private static ObjectStore retried(S3ObjectStore store, Retry retry) { return new RetryingObjectStore(store, retry); }

    @Test
    void resetConnectionsAreRetried() throws Exception {
        try (FlakyTcpProxy proxy = new FlakyTcpProxy(S3.endpoint()); Pair s = through(proxy)) {
            proxy.resetNext(2);
            s.flaky().put("seg/1", bytes("segment one"));
            assertEquals(2, proxy.reset.get(), "two connections were reset before the PUT went through");
            assertArrayEquals(bytes("segment one"), s.direct().get("seg/1").content());
        }
        try (FlakyTcpProxy proxy = new FlakyTcpProxy(S3.endpoint()); Pair s = through(proxy)) {
            s.direct().put("seg/1", bytes("segment one"));
            proxy.resetNext(3);
            assertArrayEquals(bytes("segment"), s.flaky().getRange("seg/1", 0, 7), "the 4th and last attempt succeeds");
            assertEquals(3, proxy.reset.get());
        }
    }

    @Test
    void throttlingIsRetriedAndAccessDeniedIsNot() throws Exception {
        try (FlakyTcpProxy proxy = new FlakyTcpProxy(S3.endpoint()); Pair s = through(proxy)) {
            s.direct().put("seg/1", bytes("segment one"));
            proxy.throttleNext(3);
            assertArrayEquals(bytes("segment one"), s.flaky().get("seg/1").content(), "503 SlowDown three times, then served");
            assertEquals(3, proxy.throttled.get());
            assertEquals(List.of("GET", "GET", "GET", "GET"), methods(proxy));

            proxy.requests.clear();
            Map<String, String> wrongKey = new HashMap<>(S3ProxyFixture.environment(proxy.endpoint()));
            wrongKey.put("AWS_SECRET_ACCESS_KEY", "not-the-secret");
            try (ObjectStore denied = retried(S3ObjectStore.open(s.direct().location(), wrongKey, S3ProxyFixture.fastSettings()), S3ProxyFixture.fastRetry())) {
                IOException e = assertThrows(RequestRefusedException.class, () -> denied.get("seg/1"));
                assertTrue(e.getMessage().contains("HTTP 403"), e.getMessage());
                assertEquals(List.of("GET"), methods(proxy), "a 403 is final: one request");
            }
        }
    }

    @Test
    void ambiguousPutIfAbsentIsRecognisedByItsBytes() throws Exception {
        try (FlakyTcpProxy proxy = new FlakyTcpProxy(S3.endpoint()); Pair s = through(proxy)) {
            proxy.loseResponseNext(1);
            String etag = s.flaky().putIfAbsent("manifest", bytes("epoch 7 writer A"));
            assertEquals(1, proxy.lost.get());
            assertEquals(List.of("PUT", "PUT", "GET"), methods(proxy),
                    "stored by the first PUT, refused (412) on the retry, read back and found identical");
            assertEquals(s.direct().get("manifest").etag(), etag, "the ETag of the object the first attempt stored");
            assertEquals(etag, s.flaky().putIfAbsent("manifest", bytes("epoch 7 writer A")),
                    "the same write again (a segment upload redone after a crash) finds its own bytes: done");
            assertThrows(PreconditionFailedException.class, () -> s.flaky().putIfAbsent("manifest", bytes("epoch 8 writer B")), "other bytes: a lost condition");
        }
    }

    @Test
    void ambiguousReplaceIfMatchIsRecognisedByItsBytes() throws Exception {
        try (FlakyTcpProxy proxy = new FlakyTcpProxy(S3.endpoint()); Pair s = through(proxy)) {
            String first = s.direct().putIfAbsent("manifest", bytes("epoch 1"));
            proxy.loseResponseNext(1);
            String second = s.flaky().replaceIfMatch("manifest", bytes("epoch 2"), first);
            assertEquals(List.of("PUT", "PUT", "GET"), methods(proxy));
            assertEquals(s.direct().get("manifest").etag(), second);
            assertArrayEquals(bytes("epoch 2"), s.direct().get("manifest").content());
        }
    }

    @Test
    void aTransientFailureThenAnotherWritersObjectIsStillALostCondition() throws Exception {
        try (FlakyTcpProxy proxy = new FlakyTcpProxy(S3.endpoint()); Pair s = through(proxy)) {
            s.direct().putIfAbsent("manifest", bytes("epoch 8 writer B"));
            proxy.resetNext(1);
            assertThrows(PreconditionFailedException.class, () -> s.flaky().putIfAbsent("manifest", bytes("epoch 8 writer A")),
                    "the retry's 412 is read back: other bytes, so another writer won");
            assertEquals(1, proxy.reset.get());
            assertArrayEquals(bytes("epoch 8 writer B"), s.direct().get("manifest").content());
        }
    }

    @Test
    void deadEndpointFailsInBoundedTimeNamingKeyAttemptsAndCause() throws Exception {
        int port;
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) { port = s.getLocalPort(); }
        Retry three = Retry.defaults().withAttempts(3, Duration.ofMillis(10), Duration.ofMillis(40));
        try (ObjectStore dead = retried(S3ObjectStore.open(new S3Location("nowhere", "pool/"), S3ProxyFixture.environment(URI.create("http://127.0.0.1:" + port)),
                S3ProxyFixture.fastSettings()), three)) {
            IOException e = assertTimeoutPreemptively(Duration.ofSeconds(30), () -> assertThrows(IOException.class, () -> dead.put("seg/1", bytes("x"))));
            assertFalse(e instanceof PreconditionFailedException || e instanceof RequestRefusedException, "a transient failure, retried to the bound: " + e);
            assertTrue(e.getMessage().contains("PUT pool/seg/1") && e.getMessage().contains("after 3 attempts"), e.getMessage());
            assertTrue(e.getMessage().contains("Connection refused"), "names the last cause: " + e.getMessage());
        }
    }

    @Test
    void conditionalWritesAreProvenOrTheServerIsRefused() throws Exception {
        try (S3ObjectStore s = S3.newStore()) {
            s.checkConditionalWrites();
            assertEquals(List.of(), s.list(""), "the probe object is deleted");
        }
        try (S3ProxyFixture open = S3ProxyFixture.unauthenticated().start(); FlakyTcpProxy proxy = new FlakyTcpProxy(open.endpoint());
                S3ObjectStore s = S3ObjectStore.open(open.freshLocation(), S3ProxyFixture.environment(proxy.endpoint()), S3ProxyFixture.fastSettings())) {
            s.checkConditionalWrites();
            proxy.stripConditionalHeaders();
            RequestRefusedException e = assertThrows(RequestRefusedException.class, s::checkConditionalWrites);
            assertTrue(e.getMessage().contains("ignores If-None-Match"), e.getMessage());
            assertEquals(List.of(), s.list(""), "the probe object is deleted");
        }
    }

    /**
     * A body damaged on its way is refused by the server, not stored: every PUT and part carries x-amz-checksum-crc32c,
     * which S3Proxy (as S3) recomputes over the body it receives. The server here checks no signature, so the
     * checksum is the only guard (over https the SDK does not sign the payload either): before the checksum header,
     * the damaged bytes were stored and acknowledged. The refusal is worth another attempt, which sends the bytes again.
     */
    @Test
    void aBodyDamagedInFlightIsRefusedByTheServerAndSentAgain() throws Exception {
        byte[] segment = new byte[256 << 10];
        new Random(11).nextBytes(segment);
        try (S3ProxyFixture open = S3ProxyFixture.unauthenticated().start(); FlakyTcpProxy proxy = new FlakyTcpProxy(open.endpoint())) {
            S3Location at = open.freshLocation();
            try (S3ObjectStore once = S3ObjectStore.open(at, S3ProxyFixture.environment(proxy.endpoint()), S3ProxyFixture.fastSettings());
                    S3ObjectStore direct = S3ObjectStore.open(at, open.environment(), S3ProxyFixture.fastSettings())) {
                proxy.corruptNextBodies(1);
                IOException e = assertThrows(IOException.class, () -> once.putIfAbsent("seg/1", segment));
                assertEquals(1, proxy.corrupted.get(), "one byte of the body was flipped on the way");
                assertTrue(e.getMessage().contains("BadDigest"), e.getMessage());
                assertFalse(e instanceof RequestRefusedException, "damage in flight is transient, worth another attempt: " + e);
                assertNull(direct.get("seg/1"), "nothing was stored");

                ObjectStore retried = retried(once, S3ProxyFixture.fastRetry());
                proxy.corruptNextBodies(1);
                retried.putIfAbsent("seg/2", segment);
                assertEquals(2, proxy.corrupted.get());
                assertArrayEquals(segment, direct.get("seg/2").content(), "the second attempt's bytes were stored");

                byte[] big = new byte[16 << 20]; // two 8 MiB parts, sent at once: whichever goes first is damaged
                new Random(12).nextBytes(big);
                proxy.requests.clear();
                proxy.corruptNextBodies(1); // the first part
                retried.put("seg/big", big);
                assertEquals(3, proxy.corrupted.get());
                assertEquals(List.of("POST", "PUT", "PUT", "DELETE", "POST", "PUT", "PUT", "POST"), methods(proxy),
                        "the damaged part was refused, the upload aborted and the put retried whole");
                assertArrayEquals(big, direct.get("seg/big").content());
            }
        }
    }

    /** Over http:// the SDK signs the payload as well: a server checking signatures refuses a damaged body either way. */
    @Test
    void aSigningServerRefusesADamagedBodyToo() throws Exception {
        byte[] segment = new byte[256 << 10];
        new Random(13).nextBytes(segment);
        try (FlakyTcpProxy proxy = new FlakyTcpProxy(S3.endpoint()); Pair s = through(proxy)) {
            proxy.corruptNextBodies(1);
            try (S3ObjectStore once = S3ObjectStore.open(s.direct().location(), S3ProxyFixture.environment(proxy.endpoint()), S3ProxyFixture.fastSettings())) {
                // The refusal is SignatureDoesNotMatch or BadDigest, or, when the server answers before the body
                // has all arrived and closes the connection, no answer at all: the put fails either way.
                assertThrows(IOException.class, () -> once.putIfAbsent("seg/1", segment));
            }
            assertEquals(1, proxy.corrupted.get());
            assertNull(s.direct().get("seg/1"), "nothing was stored");
        }
    }

    @Test
    void missingBucketIsAFinalErrorNotAMissingObject() throws Exception {
        try (S3ObjectStore s = S3ObjectStore.open(new S3Location("no-such-bucket", ""), S3.environment(), S3ProxyFixture.fastSettings())) {
            IOException e = assertThrows(RequestRefusedException.class, () -> s.getRange("seg/1", 0, 1), "a missing bucket is a configuration error");
            assertTrue(e.getMessage().contains("NoSuchBucket"), e.getMessage());
        }
    }

    @Test
    void largeObjectsGoUpInPartsAndFailedUploadsAreAborted() throws Exception {
        byte[] big = new byte[(17 << 20) + 1];
        new Random(3).nextBytes(big);
        try (FlakyTcpProxy proxy = new FlakyTcpProxy(S3.endpoint()); Pair s = through(proxy)) {
            s.flaky().put("seg/big", big);
            assertEquals(List.of("POST", "PUT", "PUT", "PUT", "POST"), methods(proxy), "create, three 8 MiB parts, complete");
            assertArrayEquals(big, s.direct().get("seg/big").content());

            proxy.requests.clear();
            proxy.breakRequests(r -> r.contains("partNumber=2"));
            IOException e = assertThrows(IOException.class, () -> s.flaky().put("seg/big2", big));
            assertTrue(e.getMessage().contains("UploadPart 2/3") && e.getMessage().contains("after 4 attempts"), e.getMessage());
            assertEquals(4, methods(proxy).stream().filter("DELETE"::equals).count(), "each attempt's upload was aborted, and the put retried whole");
            assertEquals("DELETE", methods(proxy).getLast(), "the upload was aborted");
            assertNull(s.direct().get("seg/big2"));
            try (var raw = s.direct().location().clientBuilder(S3.environment()).build()) {
                assertEquals(List.of(), raw.listMultipartUploads(b -> b.bucket(S3ProxyFixture.BUCKET).prefix(s.direct().location().prefix())).uploads(),
                        "no parts left behind");
            }
        }
    }

    private static List<String> methods(FlakyTcpProxy proxy) {
        return proxy.requests.stream().map(r -> r.substring(0, r.indexOf(' '))).toList();
    }
}
