package io.dedisk.cli;

import io.dedisk.DediskException.StorageException;
import io.dedisk.pool.Pool;
import io.dedisk.pool.VolumeDevice;
import io.dedisk.util.Check;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongConsumer;

/**
 * The import of a raw image by the process that holds the pool: read the file's data ({@link FileExtents}: holes
 * are not read) and write it straight into the
 * volume, with no NBD hop and no qemu-img (docs/decisions.md has the measurements). Offline the CLI runs it on the
 * pool it opened; through a server, the server runs it ({@link ServedRawImport}). All-zero 4 KiB blocks are
 * skipped (the fresh volume reads zeros there already), so holes and zeros cost nothing, as with qemu-img's
 * --target-is-zero. A short last block is padded with zeros (the volume is the size rounded up to 4 KiB).
 *
 * Threads: one worker per CPU (at least two), each taking the next 1 MiB piece; the volume is thread-safe and the
 * pool groups concurrent writes. The caller's thread waits for every worker (also when one fails or {@code check}
 * stops them), then flushes; nothing writes into the volume after {@link #copy} returns or throws.
 */
final class RawImageCopy {
    static final int PIECE = 1 << 20;
    private static final int BS = Pool.BLOCK_SIZE;
    private static final byte[] ZERO = new byte[BS];

    private final FileChannel in;
    private final FileExtents extents;
    private final long size;
    private final VolumeDevice volume;
    private final LongConsumer progress;
    private final Runnable check;
    private final AtomicLong next = new AtomicLong(), done = new AtomicLong();
    private final AtomicBoolean failed = new AtomicBoolean(); // one worker failed: the others stop at their next piece

    private RawImageCopy(FileChannel in, FileExtents extents, long size, VolumeDevice volume, LongConsumer progress, Runnable check) {
        this.in = in;
        this.extents = extents;
        this.size = size;
        this.volume = volume;
        this.progress = progress;
        this.check = check;
    }

    /**
     * Copies the first {@code size} bytes of {@code in} into {@code volume}, reading only the pieces that meet
     * {@code extents} (the rest are holes); {@code progress} gets the bytes done so far (from the workers, so not
     * always in order), {@code check} runs before each piece and stops the copy by throwing.
     */
    static void copy(FileChannel in, FileExtents extents, long size, VolumeDevice volume, LongConsumer progress, Runnable check)
            throws IOException, InterruptedException {
        Check.that(size <= volume.size(), "the image (%d bytes) fits the volume (%d bytes)", size, volume.size());
        RawImageCopy job = new RawImageCopy(in, extents, size, volume, progress, check);
        int workers = Math.max(2, Runtime.getRuntime().availableProcessors());
        try (ExecutorService pool = Executors.newFixedThreadPool(workers, Thread.ofPlatform().name("import-", 0).factory())) {
            List<Future<?>> running = new ArrayList<>();
            for (int w = 0; w < workers; w++) running.add(pool.submit(job::work));
            for (Future<?> f : running) {
                try {
                    f.get();
                } catch (ExecutionException e) {
                    // not cancel(true): an interrupt would close the shared channel under the other workers
                    if (e.getCause() instanceof RuntimeException r) throw r;
                    if (e.getCause() instanceof IOException io) throw io;
                    throw new StorageException("import worker failed: " + e.getCause(), e.getCause());
                }
            }
        }
        volume.flush();
    }

    /** One worker: the next piece until none is left, the copy failed elsewhere, or {@code check} throws. */
    private Void work() throws IOException {
        try {
            byte[] buf = new byte[PIECE];
            for (long off; !failed.get() && (off = next.getAndAdd(PIECE)) < size; ) {
                check.run();
                int len = (int) Math.min(PIECE, size - off);
                if (!extents.hasData(off, len)) { // a hole: the fresh volume reads zeros there already
                    progress.accept(done.addAndGet(len));
                    continue;
                }
                readFully(in, buf, len, off);
                int padded = (len + BS - 1) / BS * BS;
                Arrays.fill(buf, len, padded, (byte) 0);
                writeNonZeroRuns(volume, off, buf, padded);
                progress.accept(done.addAndGet(len));
            }
            return null;
        } catch (RuntimeException | IOException e) {
            failed.set(true);
            throw e;
        }
    }

    private static void readFully(FileChannel in, byte[] buf, int len, long off) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(buf, 0, len);
        while (b.hasRemaining()) {
            if (in.read(b, off + b.position()) < 0) throw new IOException("the image ended at " + (off + b.position()) + " bytes, expected " + (off + len));
        }
    }

    /** Writes each run of blocks that are not all zero, as one write. */
    private static void writeNonZeroRuns(VolumeDevice volume, long off, byte[] buf, int length) {
        int run = -1;
        for (int at = 0; at <= length; at += BS) {
            boolean zero = at == length || Arrays.mismatch(buf, at, at + BS, ZERO, 0, BS) < 0;
            if (!zero && run < 0) run = at;
            if (zero && run >= 0) {
                volume.write(off + run, ByteBuffer.wrap(buf, run, at - run), false);
                run = -1;
            }
        }
    }
}
