package io.dedisk.store;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The fixture's environment is all a child process needs: a JVM started with only those variables (as the e2e
 * tests start `dedisk serve`) reads what this one wrote, through the SDK's own reading of the process environment.
 */
class S3ProxyFixtureTest {
    @RegisterExtension
    static final S3ProxyFixture S3 = new S3ProxyFixture();

    /** The child: prints the object named by its arguments, read from the location they name. */
    public static void main(String[] args) throws Exception {
        try (S3ObjectStore s = S3ObjectStore.open(S3Location.parse(args[0]), System.getenv(), S3ObjectStore.Settings.defaults())) {
            System.out.print(new String(s.get(args[1]).content(), StandardCharsets.UTF_8));
        }
    }

    @Test
    void aChildProcessReachesTheServerWithTheFixturesEnvironment() throws Exception {
        try (S3ObjectStore s = S3.newStore()) {
            s.put("hello", "from the test JVM".getBytes(StandardCharsets.UTF_8));
            ProcessBuilder pb = new ProcessBuilder(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                    "-cp", System.getProperty("java.class.path"), S3ProxyFixtureTest.class.getName(), s.location().toString(), "hello"));
            pb.environment().keySet().removeIf(k -> k.startsWith("AWS_"));
            pb.environment().put("AWS_CONFIG_FILE", "/nonexistent"); // this machine's profiles must not matter
            pb.environment().putAll(S3.environment());
            pb.redirectErrorStream(true);
            Process p = pb.start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertTrue(p.waitFor(60, TimeUnit.SECONDS));
            assertEquals(0, p.exitValue(), out);
            assertEquals("from the test JVM", out, "and nothing else: no SLF4J or SDK noise on the console");
        }
    }

    /** The https child: an on-disk server over TLS (which sets the child's trust store), one object up and back. */
    static final class HttpsChild {
        public static void main(String[] args) throws Exception {
            Path dir = Path.of(args[0]);
            byte[] segment = new byte[3 << 20];
            new java.util.Random(1).nextBytes(segment);
            try (S3ProxyFixture s3 = S3ProxyFixture.onDiskHttps(dir).start(); S3ObjectStore s = s3.newStore()) {
                if (!s3.endpoint().getScheme().equals("https")) throw new AssertionError("endpoint " + s3.endpoint());
                s.putIfAbsent("seg/1", segment);
                if (!java.util.Arrays.equals(segment, s.get("seg/1").content())) throw new AssertionError("read back other bytes");
                try (var files = java.nio.file.Files.walk(dir.resolve(S3ProxyFixture.BUCKET))) {
                    long size = files.filter(f -> f.getFileName().toString().equals("1")).mapToLong(f -> f.toFile().length()).sum();
                    System.out.print("stored " + size + " bytes on disk");
                }
            }
        }
    }

    /**
     * The benchmarks' server (objects on disk, https with a self-signed certificate) works end to end: in a child JVM,
     * because it replaces that JVM's default trust store.
     */
    @Test
    void theOnDiskHttpsServerStoresObjectsAsFiles(@org.junit.jupiter.api.io.TempDir Path dir) throws Exception {
        ProcessBuilder pb = new ProcessBuilder(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", System.getProperty("java.class.path"), HttpsChild.class.getName(), dir.toString()));
        pb.redirectErrorStream(true);
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), out);
        assertEquals("stored " + (3 << 20) + " bytes on disk", out);
    }
}
