package io.dedisk.e2e;

import static org.junit.jupiter.api.Assertions.*;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * A real `dedisk` server process for end-to-end tests, started from the test classpath exactly as the launcher
 * starts it, plus helpers to run the real NBD clients (qemu-io, qemu-img, nbdcopy, nbdinfo, fio) against it. The pool is a
directory or a bucket pool ({@link TestPool}): its environment reaches the bucket, its options name the cache.
 * A missing client fails the test with the Debian package to install (scripts/test.sh installs them).
 */
final class ServerProcess implements AutoCloseable {
    final TestPool pool;
    final int port;
    private Process process;
    private Path log;
    private int starts;

    ServerProcess(Path pool) throws IOException { this(TestPool.directory(pool)); }

    ServerProcess(TestPool pool) throws IOException {
        this.pool = pool;
        this.port = freePort();
    }

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) { return s.getLocalPort(); }
    }

    String uri(String volume) { return "nbd://127.0.0.1:" + port + "/" + volume; }

    static List<String> dediskCommand(String... args) {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-Xmx1g", "-cp", System.getProperty("java.class.path"), "io.dedisk.cli.Main"));
        cmd.addAll(List.of(args));
        return cmd;
    }

    /** Runs a dedisk CLI command to completion and returns its stdout; fails the test on a non-zero exit. */
    static String cli(String... args) throws IOException, InterruptedException {
        return Tools.run(dediskCommand(args), 120).stdout();
    }

    /** The same for the pool, in its environment: {@code cli(pool, "volume", "create", "v")} appends {@code --pool ...}. */
    static String cli(TestPool pool, String... command) throws IOException, InterruptedException {
        return Tools.run(dediskCommand(pool, command), pool.env(), 120).stdout();
    }

    static Tools.Result cliAllowingFailure(TestPool pool, String... command) throws IOException, InterruptedException {
        return Tools.runAllowingFailure(dediskCommand(pool, command), pool.env(), 120);
    }

    /** The command, then the pool's options (picocli takes options after positional parameters). */
    private static List<String> dediskCommand(TestPool pool, String... command) {
        List<String> all = new ArrayList<>(List.of(command));
        all.addAll(List.of(pool.args()));
        return dediskCommand(all.toArray(String[]::new));
    }

    ServerProcess start() throws IOException, InterruptedException { return start(new String[0]); }

    /** Starts `dedisk serve` with more options, e.g. "--metrics", "127.0.0.1:PORT". */
    ServerProcess start(String... extraArgs) throws IOException, InterruptedException {
        log = pool.logDir().resolve("server-" + port + "-" + (++starts) + ".log");
        List<String> args = new ArrayList<>(List.of("serve", "--listen", "127.0.0.1:" + port));
        args.addAll(List.of(extraArgs));
        ProcessBuilder pb = new ProcessBuilder(dediskCommand(pool, args.toArray(String[]::new)));
        pb.environment().putAll(pool.env());
        pb.redirectErrorStream(true);
        pb.redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
        process = pb.start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (System.nanoTime() < deadline) {
            if (!process.isAlive()) fail("dedisk serve exited with " + process.exitValue() + ":\n" + Files.readString(log));
            if (Files.exists(log) && Files.readString(log).contains("dedisk: serving pool")) return this;
            Thread.sleep(50);
        }
        fail("dedisk serve did not start within 60 s:\n" + Files.readString(log));
        return this;
    }

    /** kill -9: no shutdown hook, no checkpoint, no flush. */
    void kill9() throws InterruptedException, IOException {
        process.destroyForcibly();
        assertTrue(process.waitFor(30, TimeUnit.SECONDS), "server died after SIGKILL");
    }

    long pid() { return process.pid(); }

    @Override
    public void close() throws IOException, InterruptedException {
        if (process != null && process.isAlive()) {
            process.destroy(); // SIGTERM: clean shutdown (checkpoint)
            if (!process.waitFor(60, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                fail("dedisk serve did not stop within 60 s of SIGTERM");
            }
        }
    }

    String log() throws IOException { return Files.readString(log); }

    /** External tools. */
    static final class Tools {
        record Result(int exit, String stdout, String stderr) {}

        static Result run(List<String> cmd, int timeoutSeconds) throws IOException, InterruptedException {
            return run(cmd, Map.of(), timeoutSeconds);
        }

        static Result run(int timeoutSeconds, String... cmd) throws IOException, InterruptedException {
            return run(List.of(cmd), timeoutSeconds);
        }

        static Result run(List<String> cmd, Map<String, String> env, int timeoutSeconds) throws IOException, InterruptedException {
            Result r = runAllowingFailure(cmd, env, timeoutSeconds);
            if (r.exit != 0) fail(String.join(" ", cmd) + " exited " + r.exit + "\nstdout: " + r.stdout + "\nstderr: " + r.stderr);
            return r;
        }

        static Result runAllowingFailure(List<String> cmd, int timeoutSeconds) throws IOException, InterruptedException {
            return runAllowingFailure(cmd, Map.of(), timeoutSeconds);
        }

        static Result runAllowingFailure(List<String> cmd, Map<String, String> env, int timeoutSeconds) throws IOException, InterruptedException {
            requireTool(cmd.get(0));
            ProcessBuilder pb = new ProcessBuilder(cmd);
            pb.environment().putAll(env);
            pb.environment().put("PATH", "/usr/sbin:/usr/bin:/sbin:/bin:" + System.getenv().getOrDefault("PATH", ""));
            Process p = pb.start();
            var out = readAsync(p.getInputStream());
            var err = readAsync(p.getErrorStream());
            if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                fail(String.join(" ", cmd) + " did not finish within " + timeoutSeconds + " s");
            }
            return new Result(p.exitValue(), out.get(), err.get());
        }

        private static java.util.function.Supplier<String> readAsync(java.io.InputStream in) {
            StringBuilder b = new StringBuilder();
            Thread t = Thread.ofVirtual().start(() -> {
                try (BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
                    String line;
                    while ((line = r.readLine()) != null) synchronized (b) { b.append(line).append('\n'); }
                } catch (IOException ignored) {
                    // the process ended; what was read is what there is
                }
            });
            return () -> {
                try { t.join(); } catch (InterruptedException e) { Thread.currentThread().interrupt(); }
                synchronized (b) { return b.toString(); }
            };
        }

        static void requireTool(String tool) {
            if (tool.startsWith("/")) return;
            for (String dir : List.of("/usr/bin", "/usr/sbin", "/bin", "/sbin")) if (Files.isExecutable(Path.of(dir, tool))) return;
            String pkg = switch (tool) {
                case "qemu-io", "qemu-img", "qemu-nbd" -> "qemu-utils";
                case "nbdinfo", "nbdcopy", "nbdfuse" -> "libnbd-bin";
                case "nbdsh" -> "python3-libnbd";
                case "nbdkit" -> "nbdkit";
                case "fio" -> "fio";
                case "fusermount3" -> "fuse3";
                case "promtool" -> "prometheus";
                case "chromium" -> "chromium";
                default -> "the package providing " + tool;
            };
            fail(tool + " is not installed: install the Debian package " + pkg + " (scripts/test.sh does this)");
        }
    }
}
