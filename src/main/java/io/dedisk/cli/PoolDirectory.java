package io.dedisk.cli;

import io.dedisk.DediskException.InvalidRequestException;
import io.dedisk.pool.Pool;
import io.dedisk.store.LocalFs;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Optional;

/**
 * A pool in a local directory, opened by this process: takes the ownership lock (file {@code lock}, an OS file
 * lock, so a second dedisk process on the pool is refused instead of corrupting it) and, while serving,
 * advertises the control endpoint in {@code control} so other CLI invocations can ask the running server.
 */
final class PoolDirectory implements AutoCloseable {
    static final String LOCK_FILE = "lock";
    static final String CONTROL_FILE = "control";

    final Path dir;
    final Pool pool;
    private final FileChannel lockChannel;
    private final FileLock lock;

    private PoolDirectory(Path dir, Pool pool, FileChannel lockChannel, FileLock lock) {
        this.dir = dir;
        this.pool = pool;
        this.lockChannel = lockChannel;
        this.lock = lock;
    }

    static void create(Path dir, Pool.Options options) throws IOException {
        if (Files.exists(dir.resolve("superblock"))) throw new InvalidRequestException("a dedisk pool already exists in " + dir);
        if (Files.exists(dir) && !Files.isDirectory(dir)) throw new InvalidRequestException(dir + " exists and is not a directory");
        if (Files.isDirectory(dir)) {
            try (var s = Files.list(dir)) {
                if (s.findAny().isPresent()) throw new InvalidRequestException(dir + " is not empty; dedisk creates pools only in new or empty directories");
            }
        }
        Files.createDirectories(dir);
        Pool.create(new LocalFs(dir), options);
    }

    static boolean exists(Path dir) { return Files.exists(dir.resolve("superblock")); }

    /** Opens the pool for exclusive use; fails clearly when another process holds it. */
    static PoolDirectory open(Path dir) throws IOException { return open(dir, Pool.OpenOptions.defaults()); }

    /**
     * Opens the pool. Writable: takes the ownership lock exclusively. Read-only (`check`, offline `stats`): opens
     * nothing for writing — a shared lock on the existing lock file keeps a server from starting meanwhile, and a
     * pool that was never served (no lock file) has no server to fear.
     */
    static PoolDirectory open(Path dir, Pool.OpenOptions options) throws IOException {
        if (!exists(dir)) throw new InvalidRequestException("no dedisk pool in " + dir + " (create one with: dedisk create --pool " + dir + ")");
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
                throw new InvalidRequestException("pool " + dir + " is in use by another dedisk process or pool handle"
                        + runningControl(dir).map(a -> " (serving, control at " + a + ")").orElse(""));
            }
        }
        try {
            return new PoolDirectory(dir, Pool.open(new LocalFs(dir), options), ch, lock);
        } catch (IOException | RuntimeException e) {
            if (lock != null) lock.release();
            if (ch != null) ch.close();
            throw e;
        }
    }

    /** The control address of the server holding this pool, if one is running. */
    static Optional<String> runningControl(Path dir) {
        Path control = dir.resolve(CONTROL_FILE);
        if (!Files.exists(control)) return Optional.empty();
        try (FileChannel ch = FileChannel.open(dir.resolve(LOCK_FILE), StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
            FileLock probe = ch.tryLock();
            if (probe != null) { // nobody holds the pool: the control file is left over from a crash
                probe.release();
                return Optional.empty();
            }
            return Optional.of(Files.readString(control).trim());
        } catch (IOException | java.nio.channels.OverlappingFileLockException e) {
            return Optional.empty();
        }
    }

    /**
     * Writes the control address for other CLI invocations. On a full disk this fails: the server still serves
     * (reads need no space), only the CLI cannot reach it, which the returned message says.
     */
    Optional<String> advertiseControl(String address) {
        Path tmp = dir.resolve(CONTROL_FILE + ".tmp");
        try {
            Files.writeString(tmp, address + "\n");
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
        }
    }
}
