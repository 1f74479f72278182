package io.dedisk.cli;

import io.dedisk.DediskException.InvalidRequestException;
import io.dedisk.pool.Pool;
import io.dedisk.store.OverlayFs;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * A stopped pool opened without changing it (for `dedisk report`): the pool runs on an {@link OverlayFs}, so
 * recovery, the dedup index and the closing checkpoint write only to memory, and the pool's {@code lock} file
 * is held with a *shared* lock (opened read-only, never created), which keeps a server from starting on the
 * pool meanwhile but changes nothing on disk. Threads: the caller's.
 */
final class OfflinePool implements AutoCloseable {
    final Pool pool;
    final OverlayFs fs;
    private final FileChannel lockChannel;
    private final FileLock lock;

    private OfflinePool(Pool pool, OverlayFs fs, FileChannel lockChannel, FileLock lock) {
        this.pool = pool;
        this.fs = fs;
        this.lockChannel = lockChannel;
        this.lock = lock;
    }

    static OfflinePool open(Path dir) throws IOException {
        if (!PoolDirectory.exists(dir)) throw new InvalidRequestException("no dedisk pool in " + dir);
        Path lockFile = dir.resolve(PoolDirectory.LOCK_FILE);
        FileChannel ch = null;
        FileLock lock = null;
        if (Files.exists(lockFile)) {
            ch = FileChannel.open(lockFile, StandardOpenOption.READ);
            try {
                lock = ch.tryLock(0, Long.MAX_VALUE, true);
            } catch (java.nio.channels.OverlappingFileLockException heldByThisProcess) {
                lock = null;
            }
            if (lock == null) {
                ch.close();
                throw new InvalidRequestException("pool " + dir + " is in use by another dedisk process that serves no control endpoint"
                        + " (expected a stopped pool or a running server); try again when it has finished");
            }
        }
        OverlayFs fs = new OverlayFs(dir);
        try {
            return new OfflinePool(Pool.open(fs), fs, ch, lock);
        } catch (IOException | RuntimeException e) {
            fs.close();
            if (lock != null) lock.release();
            if (ch != null) ch.close();
            throw e;
        }
    }

    @Override
    public void close() throws IOException {
        try {
            pool.close(); // its checkpoint and index save go to the overlay, i.e. nowhere
        } finally {
            fs.close();
            if (lock != null) lock.release();
            if (lockChannel != null) lockChannel.close();
        }
    }
}
