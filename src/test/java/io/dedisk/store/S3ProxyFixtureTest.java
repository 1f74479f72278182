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
}
