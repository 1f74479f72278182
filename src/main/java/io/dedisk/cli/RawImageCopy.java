package io.dedisk.cli;

import io.dedisk.DediskException.StorageException;
import io.dedisk.pool.Pool;
import io.dedisk.pool.VolumeDevice;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.DoubleConsumer;

/**
 * The offline import of a raw image: read the file and write it straight into the volume of the pool opened in
 * this process, with no NBD hop and no qemu-img (docs/decisions.md has the measurement). All-zero 4 KiB blocks are
 * skipped (the fresh volume reads zeros there already), so holes and zeros cost nothing, as with qemu-img's
 * --target-is-zero. A short last block is padded with zeros (the volume is the size rounded up to 4 KiB).
 *
 * Threads: one worker per CPU (at least two), each taking the next 1 MiB piece; the volume is thread-safe and the
 * pool groups concurrent writes. The caller's thread waits, then flushes.
 */
final class RawImageCopy {
    static final int PIECE = 1 << 20;
    private static final int BS = Pool.BLOCK_SIZE;
    private static final byte[] ZERO = new byte[BS];

    private RawImageCopy() {}

    /** Copies {@code size} bytes of {@code file} into {@code volume}; {@code progress} gets the share done. */
    static void copy(Path file, long size, VolumeDevice volume, DoubleConsumer progress, Interruption stop) throws IOException, InterruptedException {
        int workers = Math.max(2, Runtime.getRuntime().availableProcessors());
        AtomicLong next = new AtomicLong(), done = new AtomicLong();
        try (FileChannel in = FileChannel.open(file, StandardOpenOption.READ);
                ExecutorService pool = Executors.newFixedThreadPool(workers, Thread.ofPlatform().name("import-", 0).factory())) {
            List<Future<?>> running = new ArrayList<>();
            for (int w = 0; w < workers; w++) {
                running.add(pool.submit(() -> {
                    byte[] buf = new byte[PIECE];
                    for (long off; (off = next.getAndAdd(PIECE)) < size; ) {
                        stop.check();
                        int len = (int) Math.min(PIECE, size - off);
                        readFully(in, buf, len, off);
                        int padded = (len + BS - 1) / BS * BS;
                        Arrays.fill(buf, len, padded, (byte) 0);
                        writeNonZeroRuns(volume, off, buf, padded);
                        progress.accept((double) done.addAndGet(len) / size);
                    }
                    return null;
                }));
            }
            for (Future<?> f : running) {
                try {
                    f.get();
                } catch (ExecutionException e) {
                    running.forEach(r -> r.cancel(true));
                    if (e.getCause() instanceof RuntimeException r) throw r;
                    if (e.getCause() instanceof IOException io) throw io;
                    throw new StorageException("import worker failed: " + e.getCause(), e.getCause());
                }
            }
        }
        volume.flush();
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
