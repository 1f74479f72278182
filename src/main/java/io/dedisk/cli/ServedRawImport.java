package io.dedisk.cli;

import io.dedisk.DediskException;
import io.dedisk.DediskException.InvalidRequestException;
import io.dedisk.pool.Pool;
import io.dedisk.pool.VolumeDevice;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.FutureTask;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongConsumer;

/**
 * A served import of a raw image, read by the server: `dedisk import` through a running server asks it (control
 * operation {@value #OPERATION}: file, volume, size, the file's identity) to copy FILE into VOLUME.importing with
 * {@link RawImageCopy}, the copy an offline import runs, so the image crosses no socket and no qemu-img. The server
 * answers while it copies with a line {@code progress BYTES} every {@value #PROGRESS_MILLIS} ms (the CLI's progress
 * bar); a line it cannot send means the client went away (Ctrl-C, kill -9), and the copy stops at the workers' next
 * 1 MiB piece. The server declines (409, {@link ControlServer.Declined}) when it cannot open the file, or the file it
 * opens is not the one the CLI named (another mount namespace, a container): the CLI then copies with qemu-img over
 * NBD and says why. Creating, renaming and deleting VOLUME.importing stay the CLI's ({@link ImageImport}).
 *
 * Threads: the server side runs each copy on a virtual thread (its workers are RawImageCopy's) while the request's
 * thread sends progress; {@link #close} (server stop) stops every copy and waits for it, before the pool closes.
 * The client side runs on the command's thread.
 */
final class ServedRawImport implements AutoCloseable {
    static final String OPERATION = "import/raw";
    static final int PROGRESS_MILLIS = 200;
    private static final System.Logger LOG = System.getLogger("dedisk.serve");

    private final Pool pool;
    /** The copies running now, each with the flag that stops it. */
    private final Map<FutureTask<Void>, AtomicBoolean> running = new ConcurrentHashMap<>();
    private volatile boolean closed;

    ServedRawImport(Pool pool) { this.pool = pool; }

    /** The identity of a file as the CLI and the server each see it (device and inode on Linux), or "" if unknown. */
    static String identity(Path file) throws IOException {
        Object key = Files.readAttributes(file, BasicFileAttributes.class).fileKey();
        return key == null ? "" : key.toString();
    }

    // ------------------------------------------------------------------ server side

    /** The server's side of {@value #OPERATION}: checks and opens; the body copies. */
    ControlServer.Streaming.Body start(Map<String, String> args) throws IOException {
        if (closed) throw new DediskException("the server is stopping");
        Path file = Path.of(required(args, "file"));
        if (!file.isAbsolute()) throw new InvalidRequestException("file '" + file + "' must be an absolute path (the server's directory is not the CLI's)");
        String name = required(args, "volume");
        long size = parseSize(required(args, "size"));
        VolumeDevice volume = pool.volume(name).orElseThrow(() -> new InvalidRequestException("no volume named '" + name + "'"));
        if (size > volume.size()) throw new InvalidRequestException("the image (" + size + " bytes) is larger than volume '" + name + "' (" + volume.size() + " bytes)");
        String user = System.getProperty("user.name");
        FileChannel in;
        try {
            in = FileChannel.open(file, StandardOpenOption.READ);
        } catch (IOException | SecurityException e) {
            throw new ControlServer.Declined("the server (user " + user + ") cannot open " + file + ": " + e);
        }
        try {
            String expected = args.getOrDefault("identity", "");
            if (!expected.isEmpty() && !expected.equals(identity(file))) {
                throw new ControlServer.Declined("the server (user " + user + ") sees another file at " + file + " (another mount namespace or container?)");
            }
            if (in.size() < size) throw new InvalidRequestException(file + " holds " + in.size() + " bytes; expected at least " + size);
        } catch (IOException | RuntimeException e) {
            in.close();
            throw e;
        }
        FileExtents extents = FileExtents.of(file, size); // never throws: all of the file when its extents cannot be learned
        return new ControlServer.Streaming.Body() {
            @Override
            public void stream(ControlServer.Lines out) throws IOException { copy(in, extents, file, size, volume, out); }

            @Override
            public void close() throws IOException { in.close(); } // streamed or not: the server closes every body
        };
    }

    private void copy(FileChannel in, FileExtents extents, Path file, long size, VolumeDevice volume, ControlServer.Lines out) throws IOException {
        AtomicBoolean stop = new AtomicBoolean();
        AtomicLong done = new AtomicLong();
        FutureTask<Void> copy = new FutureTask<>(() -> {
            RawImageCopy.copy(in, extents, size, volume, bytes -> done.accumulateAndGet(bytes, Math::max), () -> {
                if (stop.get()) throw new CancellationException("stopped");
            });
            return null;
        });
        running.put(copy, stop);
        try {
            if (closed) stop.set(true); // close() ran between start and here
            Thread.ofVirtual().name("served-import").start(copy);
            while (true) {
                try {
                    copy.get(PROGRESS_MILLIS, TimeUnit.MILLISECONDS);
                    LOG.log(Level.INFO, "imported " + file + " into " + volume.name() + " (" + size + " bytes, read by the server; " + extents.dataBytes()
                            + " bytes of data extents)");
                    out.line("progress " + done.get()); // the whole image, also when it took less than one interval
                    return;
                } catch (TimeoutException stillCopying) {
                    try {
                        out.line("progress " + done.get());
                    } catch (IOException clientGone) {
                        stop.set(true);
                        awaitQuietly(copy);
                        LOG.log(Level.WARNING, "the import of " + file + " into " + volume.name() + " stopped after " + done.get() + " of " + size
                                + " bytes: the client went away");
                        throw clientGone;
                    }
                } catch (ExecutionException e) {
                    LOG.log(Level.WARNING, "the import of " + file + " into " + volume.name() + " failed after " + done.get() + " of " + size + " bytes: "
                            + e.getCause());
                    if (e.getCause() instanceof CancellationException && closed) throw new DediskException("the server is stopping");
                    if (e.getCause() instanceof RuntimeException r) throw r;
                    if (e.getCause() instanceof IOException io) throw io;
                    throw new DediskException("the import of " + file + " failed: " + e.getCause(), e.getCause());
                } catch (InterruptedException e) {
                    stop.set(true);
                    awaitQuietly(copy);
                    Thread.currentThread().interrupt();
                    throw new IOException("interrupted", e);
                }
            }
        } finally {
            running.remove(copy);
        }
    }

    private static void awaitQuietly(FutureTask<Void> copy) {
        boolean interrupted = false;
        while (true) {
            try {
                copy.get();
                break;
            } catch (ExecutionException expected) {
                break; // it stopped, one way or the other
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) Thread.currentThread().interrupt();
    }

    /** Server stop: every copy stops, and has stopped writing when this returns. */
    @Override
    public void close() {
        closed = true;
        running.values().forEach(s -> s.set(true));
        running.keySet().forEach(ServedRawImport::awaitQuietly);
    }

    private static String required(Map<String, String> args, String key) {
        String v = args.get(key);
        if (v == null || v.isEmpty()) throw new InvalidRequestException("missing argument '" + key + "'");
        return v;
    }

    private static long parseSize(String s) {
        try {
            long v = Long.parseLong(s);
            if (v > 0) return v;
        } catch (NumberFormatException e) {
            // the message below
        }
        throw new InvalidRequestException("invalid size '" + s + "': expected a positive number of bytes");
    }

    // ------------------------------------------------------------------ client side

    /**
     * Asks the server to copy {@code file} (raw, its first {@code size} bytes) into {@code volume}: empty when done,
     * else why the server declined (the caller copies another way). {@code progress} gets the bytes done.
     */
    static Optional<String> copy(ControlClient control, Path file, long size, String volume, LongConsumer progress, Interruption stop) throws IOException {
        Path absolute = file.toAbsolutePath();
        Map<String, String> args = Map.of("file", absolute.toString(), "volume", volume, "size", Long.toString(size), "identity", identity(absolute));
        try {
            control.stream(OPERATION, args, line -> {
                if (line.startsWith("progress ")) progress.accept(Long.parseLong(line.substring("progress ".length())));
            }, stop::started);
            return Optional.empty();
        } catch (ControlClient.DeclinedException e) {
            return Optional.of(e.getMessage());
        } catch (IOException e) {
            stop.check(); // an interruption closed the request: say that, not the socket's error
            throw e;
        }
    }
}
