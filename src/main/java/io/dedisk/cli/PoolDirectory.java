package io.dedisk.cli;

import io.dedisk.DediskException.InvalidRequestException;
import io.dedisk.pool.Pool;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Optional;

/**
 * A pool opened by this process, at a {@link PoolLocation}: takes the ownership lock (file {@code lock} in the
 * location's local directory — the pool directory, or a bucket pool's cache directory — an OS file lock, so a second
 * dedisk process on it is refused instead of corrupting it; a bucket pool is also owned through its manifest's epoch,
 * across hosts) and, while serving, advertises the control endpoint in {@code control} there ("ADDRESS TOKEN\n",
 * mode 0600) so other CLI invocations can ask the running server.
 */
final class PoolDirectory implements AutoCloseable {
    static final String LOCK_FILE = "lock";
    static final String CONTROL_FILE = "control";

    /** The local directory: the pool directory, or the bucket pool's cache directory. */
    final Path dir;
    final Pool pool;
    private final PoolLocation location;
    private final FileChannel lockChannel;
    private final FileLock lock;

    private PoolDirectory(Path dir, Pool pool, PoolLocation location, FileChannel lockChannel, FileLock lock) {
        this.dir = dir;
        this.pool = pool;
        this.location = location;
        this.lockChannel = lockChannel;
        this.lock = lock;
    }

    static void create(Path dir, Pool.Options options) throws IOException { create(PoolLocation.directory(dir), options); }

    static void create(PoolLocation location, Pool.Options options) throws IOException {
        Path dir = location.directory();
        if (dir != null) {
            if (Files.exists(dir.resolve("superblock"))) throw new InvalidRequestException("a dedisk pool already exists in " + dir);
            if (Files.isDirectory(dir)) {
                try (var s = Files.list(dir)) {
                    if (s.findAny().isPresent()) throw new InvalidRequestException(dir + " is not empty; dedisk creates pools only in new or empty directories");
                }
            }
        }
        location.create(options);
    }

    static boolean exists(Path dir) { return Files.exists(dir.resolve("superblock")); }

    /** Opens the pool for exclusive use; fails clearly when another process holds it. */
    static PoolDirectory open(Path dir) throws IOException { return open(PoolLocation.directory(dir), Pool.OpenOptions.defaults()); }

    static PoolDirectory open(Path dir, Pool.OpenOptions options) throws IOException { return open(PoolLocation.directory(dir), options); }

    /**
     * Opens the pool. Writable: takes the ownership lock exclusively. Read-only (`check`, offline `stats`): opens
     * nothing for writing — a shared lock on the existing lock file keeps a server from starting meanwhile, and a
     * pool that was never served here (no lock file) has no server to fear.
     */
    static PoolDirectory open(PoolLocation location, Pool.OpenOptions options) throws IOException {
        Path dir = location.localDir();
        if (dir == null || !location.isBucket() && !exists(dir)) {
            throw new InvalidRequestException("no dedisk pool in " + location + " (create one with: dedisk create --pool " + location + ")");
        }
        if (location.isBucket() && !options.readOnly()) Files.createDirectories(dir);
        Path lockFile = dir.resolve(LOCK_FILE);
        FileChannel ch = null;
        FileLock lock = null;
        if (!options.readOnly() || Files.exists(lockFile)) {
            ch = options.readOnly() ? FileChannel.open(lockFile, StandardOpenOption.READ)
                    : FileChannel.open(lockFile, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
            try {
                lock = ch.tryLock(0, Long.MAX_VALUE, options.readOnly());
            } catch (java.nio.channels.OverlappingFileLockException heldByThisProcess) {
                lock = null;
            }
            if (lock == null) {
                ch.close();
                throw new InvalidRequestException("pool " + location + " is in use by another dedisk process or pool handle"
                        + runningControl(dir).map(a -> " (serving, control at " + a + ")").orElse(""));
            }
        }
        try {
            return new PoolDirectory(dir, Pool.open(location.storage(), options), location, ch, lock);
        } catch (IOException | RuntimeException e) {
            if (lock != null) lock.release();
            if (ch != null) ch.close();
            throw e;
        }
    }

    /** The control endpoint of the server holding the pool at this location, if one runs on this host. */
    static Optional<ControlClient> runningControl(PoolLocation location) throws IOException {
        Path dir = location.localDir();
        return dir == null ? Optional.empty() : runningControl(dir);
    }

    /** The control endpoint of the server holding the pool whose local directory is dir, if one is running. */
    static Optional<ControlClient> runningControl(Path dir) {
        Path control = dir.resolve(CONTROL_FILE);
        if (!Files.exists(control)) return Optional.empty();
        try (FileChannel ch = FileChannel.open(dir.resolve(LOCK_FILE), StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
            FileLock probe = ch.tryLock();
            if (probe != null) { // nobody holds the pool: the control file is left over from a crash
                probe.release();
                return Optional.empty();
            }
            return Optional.of(ControlClient.parse(Files.readString(control)));
        } catch (IOException | java.nio.channels.OverlappingFileLockException e) {
            return Optional.empty();
        }
    }

    /**
     * Writes the control address and token for other CLI invocations, readable by this user only (mode 0600, from
     * its creation on: the token lets its holder make the server read files). On a full disk this fails: the server
     * still serves (reads need no space), only the CLI cannot reach it, which the returned message says.
     */
    Optional<String> advertiseControl(ControlClient control) {
        Path tmp = dir.resolve(CONTROL_FILE + ".tmp");
        try {
            Files.deleteIfExists(tmp); // a leftover might have other permissions
            try (var out = Files.newByteChannel(tmp, java.util.EnumSet.of(StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE),
                    PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")))) {
                ByteBuffer line = ByteBuffer.wrap(control.fileLine().getBytes(StandardCharsets.US_ASCII));
                while (line.hasRemaining()) out.write(line);
            }
            Files.move(tmp, dir.resolve(CONTROL_FILE), java.nio.file.StandardCopyOption.ATOMIC_MOVE, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            return Optional.empty();
        } catch (IOException e) {
            try {
                Files.deleteIfExists(tmp);
            } catch (IOException ignored) {
                // nothing more to do: the temporary name is harmless and replaced next time
            }
            return Optional.of("the control address could not be written (" + e.getMessage() + "): 'dedisk stats' and 'volume' commands cannot reach this server");
        }
    }

    @Override
    public void close() throws IOException {
        try {
            if (lock != null && !lock.isShared()) Files.deleteIfExists(dir.resolve(CONTROL_FILE));
            pool.close();
        } finally {
            if (lock != null) lock.release();
            if (lockChannel != null) lockChannel.close();
            location.close();
        }
    }
}
