package io.dedisk.store;

import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.DediskException.InvalidRequestException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import software.amazon.awssdk.auth.credentials.AwsCredentials;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Client;

/** s3:// URIs parse by AWS's rules, and the client is configured from the environment as every AWS tool does. */
class S3LocationTest {
    @TempDir
    Path dir;

    @Test
    void parsesBucketAndNormalisesThePrefix() {
        assertEquals(new S3Location("my-bucket", ""), S3Location.parse("s3://my-bucket"));
        assertEquals(new S3Location("my-bucket", ""), S3Location.parse("s3://my-bucket/"));
        assertEquals(new S3Location("my.bucket-1", "pools/vm/"), S3Location.parse("s3://my.bucket-1/pools/vm"));
        assertEquals(new S3Location("b12", "a/b/"), S3Location.parse("s3://b12/a/b/"));
        S3Location l = S3Location.parse("s3://b12/a/b");
        assertEquals("s3://b12/a/b/", l.toString());
        assertEquals(l, S3Location.parse(l.toString()), "toString parses back");
        assertEquals("a/b/seg/1", l.key("seg/1"));
        assertEquals("seg/1", l.name("a/b/seg/1"));
        assertEquals(new S3Location("b12", "a/b/t1/"), l.resolve("t1"));
        assertTrue(S3Location.isS3Uri("s3://x"));
        assertFalse(S3Location.isS3Uri("/var/lib/dedisk"));
    }

    @ParameterizedTest
    @ValueSource(strings = {"s3:/bucket", "http://bucket/x", "s3://", "s3:///x", "s3://AB-bucket", "s3://ab", "s3://a..b", "s3://-bucket",
        "s3://bucket-", "s3://192.168.1.1", "s3://xn--bucket", "s3://b_ucket", "s3://bucket/a//b", "s3://bucket/../x", "s3://bucket/a/./b",
        "s3://bucket/a b", "s3://user@bucket/x", "s3://bucket:9000/x", "s3://bucket/x?versionId=1", "s3://bucket/x#f"})
    void rejectsBadUrisWithAReason(String uri) {
        InvalidRequestException e = assertThrows(InvalidRequestException.class, () -> S3Location.parse(uri));
        assertTrue(e.getMessage().contains("'"), "the message quotes what it found: " + e.getMessage());
    }

    /** An environment that reads no file of this machine's user. */
    private Map<String, String> env(String... pairs) {
        Map<String, String> env = new HashMap<>(Map.of("AWS_CONFIG_FILE", dir.resolve("none-config").toString(),
                "AWS_SHARED_CREDENTIALS_FILE", dir.resolve("none-credentials").toString()));
        for (int i = 0; i < pairs.length; i += 2) env.put(pairs[i], pairs[i + 1]);
        return env;
    }

    private static String url(S3Client c) {
        return c.utilities().getUrl(b -> b.bucket("my-bucket").key("pool/seg/1")).toString();
    }

    @Test
    void anEndpointMeansPathStyleAndADefaultRegion() {
        try (S3Client c = new S3Location("my-bucket", "pool/").clientBuilder(env("AWS_ENDPOINT_URL", "http://minio.local:9000")).build()) {
            assertEquals(URI.create("http://minio.local:9000"), c.serviceClientConfiguration().endpointOverride().orElseThrow());
            assertEquals("http://minio.local:9000/my-bucket/pool/seg/1", url(c), "path-style: the server has no bucket sub-domains");
            assertEquals(Region.US_EAST_1, c.serviceClientConfiguration().region());
        }
    }

    @Test
    void theS3SpecificEndpointWinsAndARegionIsKept() {
        try (S3Client c = new S3Location("my-bucket", "").clientBuilder(env("AWS_ENDPOINT_URL", "http://other:1", "AWS_ENDPOINT_URL_S3",
                "https://s3.example.net", "AWS_REGION", "eu-central-1")).build()) {
            assertEquals("https://s3.example.net/my-bucket/pool/seg/1", url(c));
            assertEquals(Region.EU_CENTRAL_1, c.serviceClientConfiguration().region());
        }
    }

    @Test
    void withoutAnEndpointItIsAwsVirtualHosted() {
        try (S3Client c = new S3Location("my-bucket", "").clientBuilder(env("AWS_REGION", "eu-west-1")).build()) {
            assertTrue(c.serviceClientConfiguration().endpointOverride().isEmpty());
            assertEquals("https://my-bucket.s3.eu-west-1.amazonaws.com/pool/seg/1", url(c));
        }
        try (S3Client c = new S3Location("my-bucket", "").clientBuilder(env("AWS_REGION", "eu-west-1", "AWS_ENDPOINT_URL", "http://x:1",
                "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")).build()) {
            assertEquals("https://my-bucket.s3.eu-west-1.amazonaws.com/pool/seg/1", url(c), "configured endpoints ignored on request");
        }
    }

    @Test
    void aProfileGivesRegionEndpointAndCredentials() throws Exception {
        Path config = Files.writeString(dir.resolve("config"), """
                [default]
                region = ap-south-1
                [profile lab]
                region = eu-north-1
                endpoint_url = http://ceph.lab:7480
                """);
        Path credentials = Files.writeString(dir.resolve("credentials"), """
                [lab]
                aws_access_key_id = LABKEY
                aws_secret_access_key = LABSECRET
                """);
        Map<String, String> env = env("AWS_CONFIG_FILE", config.toString(), "AWS_SHARED_CREDENTIALS_FILE", credentials.toString(), "AWS_PROFILE", "lab");
        try (S3Client c = new S3Location("my-bucket", "").clientBuilder(env).build()) {
            assertEquals(Region.EU_NORTH_1, c.serviceClientConfiguration().region());
            assertEquals("http://ceph.lab:7480/my-bucket/pool/seg/1", url(c), "the profile's endpoint_url, path-style");
            AwsCredentials k = (AwsCredentials) c.serviceClientConfiguration().credentialsProvider().resolveIdentity().join();
            assertEquals("LABKEY", k.accessKeyId());
        }
        env.remove("AWS_PROFILE");
        try (S3Client c = new S3Location("my-bucket", "").clientBuilder(env).build()) {
            assertEquals(Region.AP_SOUTH_1, c.serviceClientConfiguration().region(), "the default profile");
            assertTrue(c.serviceClientConfiguration().endpointOverride().isEmpty());
        }
    }

    @Test
    void keysInTheEnvironmentAreUsed() {
        try (S3Client c = new S3Location("my-bucket", "").clientBuilder(env("AWS_ENDPOINT_URL", "http://127.0.0.1:1", "AWS_ACCESS_KEY_ID", "ENVKEY",
                "AWS_SECRET_ACCESS_KEY", "ENVSECRET")).build()) {
            AwsCredentials k = (AwsCredentials) c.serviceClientConfiguration().credentialsProvider().resolveIdentity().join();
            assertEquals("ENVKEY", k.accessKeyId());
            assertEquals("ENVSECRET", k.secretAccessKey());
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"minio:9000", "ftp://x", "http://", "http://a b"})
    void aBadEndpointIsRefusedNamingTheVariable(String value) {
        InvalidRequestException e = assertThrows(InvalidRequestException.class,
                () -> new S3Location("my-bucket", "").clientBuilder(env("AWS_ENDPOINT_URL", value)));
        assertTrue(e.getMessage().startsWith("AWS_ENDPOINT_URL must be") && e.getMessage().contains(value), e.getMessage());
    }
}
