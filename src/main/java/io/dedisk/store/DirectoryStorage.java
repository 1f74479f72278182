package io.dedisk.store;

import io.dedisk.DediskException.InvalidRequestException;
import java.io.IOException;
import java.util.UUID;

/**
 * A pool in one local directory (the embedded default): file {@code superblock}, the {@link DirectoryBackend}'s
 * {@code manifest} and {@code segments/}, and the local files (index, lock, control) side by side in it. The
 * directory's OS lock (taken by the CLI) is the ownership: there is no epoch to claim.
 *
 * Threads: used by the opening thread only.
 */
public final class DirectoryStorage implements PoolStorage {
    public static final String SUPERBLOCK = "superblock";

    private final Fs fs;

    public DirectoryStorage(Fs fs) { this.fs = fs; }

    @Override
    public byte[] readSuperblock() throws IOException { return fs.exists(SUPERBLOCK) ? fs.readAll(SUPERBLOCK) : null; }

    @Override
    public void create(byte[] superblock) throws IOException {
        if (fs.exists(SUPERBLOCK)) throw new InvalidRequestException("a dedisk pool already exists here");
        if (!fs.list("").isEmpty() || !fs.list(DirectoryBackend.SEGMENTS).isEmpty()) {
            throw new InvalidRequestException("the pool directory is not empty; dedisk only creates pools in new or empty directories");
        }
        DirectoryBackend.initialize(fs);
        fs.writeAtomically(SUPERBLOCK, superblock);
    }

    @Override
    public Opened open(UUID poolId, boolean readOnly) { return new Opened(new DirectoryBackend(fs), fs); }
}
