package io.dedisk.nbd;

import static org.junit.jupiter.api.Assertions.*;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Runs the real NBD clients (libnbd tools, qemu, fio) for the NBD layer's tests: in a working directory, with the
 * Debian tools first on the PATH, a 60 s limit, stdout and stderr kept apart. A missing tool fails the test with
 * the Debian package to install.
 */
final class ClientTools {
    private static final Map<String, String> DEBIAN_PACKAGES = Map.of(
            "nbdinfo", "libnbd-bin", "nbdcopy", "libnbd-bin", "nbdsh", "python3-libnbd",
            "qemu-io", "qemu-utils", "qemu-img", "qemu-utils", "fio", "fio");
    /** Subprocesses find the Debian tools (and the python3 that has the nbd module) first. */
    private static final String PATH = "/usr/bin:/bin:" + System.getenv().getOrDefault("PATH", "");

    private final Path dir;

    ClientTools(Path dir) { this.dir = dir; }

    record Run(int exit, String out, String err) {
        String all() {
            return "exit " + exit + "\n--- stdout\n" + out + "\n--- stderr\n" + err;
        }
    }

    /** Runs the command and requires exit status 0. */
    Run ok(String... command) throws Exception {
        Run run = run(command);
        assertEquals(0, run.exit(), String.join(" ", command) + " failed:\n" + run.all());
        return run;
    }

    Run run(String... command) throws Exception {
        requireTool(command[0]);
        Path out = Files.createTempFile(dir, "out", ".txt");
        Path err = Files.createTempFile(dir, "err", ".txt");
        ProcessBuilder builder = new ProcessBuilder(command).directory(dir.toFile())
                .redirectOutput(out.toFile()).redirectError(err.toFile());
        builder.environment().put("PATH", PATH);
        builder.environment().put("LIBNBD_DEBUG", "0");
        Process process = builder.start();
        if (!process.waitFor(60, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            fail(String.join(" ", command) + " did not finish within 60 s; stderr:\n" + Files.readString(err));
        }
        return new Run(process.exitValue(), Files.readString(out), Files.readString(err));
    }

    private static void requireTool(String tool) {
        for (String directory : PATH.split(File.pathSeparator)) {
            if (!directory.isEmpty() && Files.isExecutable(Path.of(directory, tool))) return;
        }
        String pkg = DEBIAN_PACKAGES.getOrDefault(tool, "providing " + tool);
        fail(tool + " is not installed: install the Debian package " + pkg + " (apt-get install " + pkg + ")");
    }
}
