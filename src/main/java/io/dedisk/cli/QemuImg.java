package io.dedisk.cli;

import io.dedisk.DediskException;
import io.dedisk.DediskException.InvalidRequestException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.function.DoubleConsumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * qemu-img, the outside tool import and export run (it reads and writes every image format qemu knows): {@link
 * #info} learns an image's format and virtual size, {@link #convert} copies, reporting progress from the "(x/100%)"
 * lines `-p` prints. The binary is $DEDISK_QEMU_IMG, else qemu-img on PATH (Debian: qemu-utils).
 *
 * Threads: each call runs one process and blocks the caller until it ends; stderr is collected on a virtual thread.
 */
final class QemuImg {
    private QemuImg() {}

    /** What `qemu-img info` says about an image. */
    record Info(String format, long virtualSize) {}

    static String binary() {
        String b = System.getenv("DEDISK_QEMU_IMG");
        return b == null || b.isBlank() ? "qemu-img" : b;
    }

    private static final Pattern FORMAT = Pattern.compile("\"format\":\\s*\"([^\"]+)\"");
    private static final Pattern VIRTUAL_SIZE = Pattern.compile("\"virtual-size\":\\s*(\\d+)");
    private static final Pattern PROGRESS = Pattern.compile("\\((\\d+(?:\\.\\d+)?)/100%\\)");

    /** Format (detected when {@code format} is null) and virtual size of {@code image} (a file or an nbd:// URI). */
    static Info info(String image, String format) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(binary(), "info", "--output=json"));
        if (format != null) cmd.addAll(List.of("-f", format));
        cmd.add(image);
        Process p = start(cmd);
        var err = collect(p.getErrorStream());
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        int exit = p.waitFor();
        if (exit != 0) {
            throw new InvalidRequestException("cannot read " + image + " as a disk image" + (format != null ? " in format " + format : "")
                    + ": " + err.get().trim());
        }
        Matcher f = FORMAT.matcher(out), s = VIRTUAL_SIZE.matcher(out);
        if (!f.find() || !s.find()) throw new DediskException("qemu-img info " + image + ": expected \"format\" and \"virtual-size\" in its JSON, found: " + out);
        return new Info(f.group(1), Long.parseLong(s.group(1)));
    }

    /**
     * Runs `qemu-img convert -p ARGS...` to the end; {@code progress} gets the share done (0..1) as it moves,
     * {@code started} the process (so a signal handler can stop it). A non-zero exit throws with qemu-img's message.
     */
    static void convert(List<String> args, DoubleConsumer progress, Consumer<Process> started) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(binary(), "convert", "-p"));
        cmd.addAll(args);
        Process p = start(cmd);
        started.accept(p);
        var err = collect(p.getErrorStream());
        readProgress(p.getInputStream(), progress);
        int exit = p.waitFor();
        if (exit != 0) {
            String why = err.get().trim();
            throw new DediskException("qemu-img convert failed (exit " + exit + ")" + (why.isEmpty() ? "" : ": " + why));
        }
    }

    /** qemu-img ends each progress update with a carriage return. */
    private static void readProgress(InputStream in, DoubleConsumer progress) throws IOException {
        StringBuilder line = new StringBuilder();
        int c;
        while ((c = in.read()) >= 0) {
            if (c != '\r' && c != '\n') { line.append((char) c); continue; }
            Matcher m = PROGRESS.matcher(line);
            if (m.find()) progress.accept(Double.parseDouble(m.group(1)) / 100);
            line.setLength(0);
        }
    }

    private static Process start(List<String> cmd) {
        try {
            return new ProcessBuilder(cmd).start();
        } catch (IOException e) {
            throw new InvalidRequestException("cannot run " + cmd.get(0) + " (" + e.getMessage() + "): import and export need qemu-img;"
                    + " install the Debian package qemu-utils, or set DEDISK_QEMU_IMG to its path");
        }
    }

    private static java.util.function.Supplier<String> collect(InputStream in) {
        StringBuilder b = new StringBuilder();
        Thread t = Thread.ofVirtual().start(() -> {
            try {
                b.append(new String(in.readAllBytes(), StandardCharsets.UTF_8));
            } catch (IOException ignored) {
                // the process is gone; what it said is what there is
            }
        });
        return () -> {
            try {
                if (!t.join(java.time.Duration.ofSeconds(10))) return "(no message)";
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            return b.toString();
        };
    }

    /** Stops a running qemu-img (an interrupted import): SIGTERM, then SIGKILL if it lingers. */
    static void stop(Process p) throws InterruptedException {
        p.destroy();
        if (!p.waitFor(5, TimeUnit.SECONDS)) p.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
    }
}
