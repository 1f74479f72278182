package io.dedisk.cli;

import io.dedisk.DediskException.InvalidRequestException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

/**
 * SIGINT/SIGTERM during an import or export: a shutdown hook stops what runs the copy (qemu-img, or the served
 * import's request: the server stops when its client goes), then waits (30 s at most)
 * for the command to clean up (delete the incomplete volume or file, close the pool), since the JVM ends when the
 * hook returns. The command calls {@link #finished} when its cleanup is done, interrupted or not.
 *
 * Threads: {@link #started}, {@link #check} and {@link #finished} on the command's thread; the hook on the JVM's.
 */
final class Interruption {
    private final String what;
    private final AtomicReference<Runnable> copier = new AtomicReference<>();
    private final CountDownLatch finished = new CountDownLatch(1);
    private volatile boolean interrupted;
    private final Thread hook = new Thread(this::interrupt, "dedisk-interrupt");

    Interruption(String what) {
        this.what = what;
        Runtime.getRuntime().addShutdownHook(hook);
    }

    private void interrupt() {
        interrupted = true;
        Runnable stop = copier.get();
        try {
            if (stop != null) stop.run();
            finished.await(30, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** The copy is running; {@code stop} ends it (from the hook's thread). */
    void started(Runnable stop) { copier.set(stop); }

    void started(Process p) {
        started(() -> {
            try {
                QemuImg.stop(p);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
    }

    /** Throws when the command was interrupted (qemu-img may have ended "successfully" when stopped). */
    void check() {
        if (interrupted) throw new InvalidRequestException("the " + what + " was interrupted");
    }

    void finished() {
        finished.countDown();
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException shuttingDown) {
            // the hook is running: it is waiting for exactly this
        }
    }
}
