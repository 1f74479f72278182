package io.dedisk.sim;

import io.dedisk.store.Fs;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeSet;

/**
 * The simulated twin of the filesystem ({@link Fs}), seeded and deterministic. It keeps what is durable apart from
 * what is only in the "page cache", exactly as POSIX promises: file data is durable after sync, names after a sync
 * of their directory. Faults it injects (docs/fault-model.md):
 * <ul>
 *   <li>{@link #crashAfter}: a process crash after the k-th mutating operation (the operation throws
 *       {@link SimulatedCrash}, and so does everything after it);</li>
 *   <li>{@link #machineCrash}: the state after power loss: each unsynced write is kept, dropped or torn per
 *       512-byte sector, independently (so later writes can survive earlier ones: reordering); each unsynced name
 *       change is kept or lost per name;</li>
 *   <li>EIO on reads/writes/syncs with a given probability, failing fsyncs, a capacity (ENOSPC), bit flips.</li>
 * </ul>
 * Thread-safe (synchronized), but the simulation drives it from one thread so runs replay exactly from the seed.
 */
public final class SimFs implements Fs {
    /** Thrown by every operation once the simulated process has crashed. An Error, so no catch block eats it. */
    public static final class SimulatedCrash extends Error {
        private static final long serialVersionUID = 1L;
        SimulatedCrash(long op) { super("simulated crash at I/O operation " + op); }
    }

    private static final class SimFile {
        byte[] durable = new byte[0];
        byte[] current = new byte[0];
        final List<Pending> pendingWrites = new ArrayList<>(); // unsynced writes and truncations, in order
    }

    /** An unsynced write (data at offset) or truncation (data null, offset = new size). */
    private record Pending(long offset, byte[] data) {}

    private final Random random;
    private final Map<String, SimFile> durableNames = new HashMap<>();
    private final Map<String, SimFile> currentNames = new HashMap<>();
    private final TreeSet<String> dirs = new TreeSet<>();
    private long ops;
    private long crashAt = Long.MAX_VALUE;
    private boolean crashed;
    private double ioErrorRate;
    private int failingSyncs;
    private long capacity = Long.MAX_VALUE;
    private boolean reportsFreeSpace = true;
    private volatile WriteHook writeHook;

    /**
     * Called before every file write, outside the file system's monitor, so a hook may block the writing thread alone
     * or fail the write (an IOException, as the disk would).
     */
    public interface WriteHook {
        void beforeWrite(String name, long pos, int length) throws IOException;
    }

    public SimFs(long seed) {
        this.random = new Random(seed);
        dirs.add("");
    }

    // ---------------------------------------------------------------- fault controls

    /** The process crashes when mutating operation number k (1-based, counting from now) is attempted. */
    public synchronized SimFs crashAfter(long k) { crashAt = ops + k; return this; }

    public synchronized long mutatingOps() { return ops; }

    /**
     * A new process after a process crash: the page cache (everything written, synced or not) is still there, so
     * the same instance serves on. The crashed process's pool is never used again.
     */
    public synchronized SimFs restartProcess() {
        crashed = false;
        crashAt = Long.MAX_VALUE;
        return this;
    }

    public synchronized SimFs ioErrorRate(double rate) { ioErrorRate = rate; return this; }

    public synchronized SimFs failSyncs(int count) { failingSyncs = count; return this; }

    public synchronized SimFs capacity(long bytes) { capacity = bytes; return this; }

    /**
     * Whether {@link #usableSpace} tells the truth about the capacity; when not, it reports "unknown" while writes
     * still fail at the capacity (a filesystem that someone else fills, a quota, a thin-provisioned volume).
     */
    public synchronized SimFs reportsFreeSpace(boolean reports) { reportsFreeSpace = reports; return this; }

    /** Installs (null: removes) the hook every write calls first (see {@link WriteHook}). */
    public SimFs beforeWrite(WriteHook hook) { writeHook = hook; return this; }

    /** Flips one bit of a file's durable and cached content (cold-data corruption). */
    public synchronized void flipBit(String name, long offset, int bit) {
        SimFile f = currentNames.get(name);
        if (f == null) throw new IllegalArgumentException("no file " + name);
        if (offset < f.durable.length) f.durable[(int) offset] ^= (byte) (1 << bit);
        if (offset < f.current.length) f.current[(int) offset] ^= (byte) (1 << bit);
    }

    public synchronized long fileSize(String name) {
        SimFile f = currentNames.get(name);
        return f == null ? -1 : f.current.length;
    }

    /**
     * The filesystem as a machine crash leaves it: durable state plus a random selection of the unsynced writes,
     * some torn per 512-byte sector, and a random selection of the unsynced name changes. This instance is dead
     * afterwards (its process crashed too).
     */
    public synchronized SimFs machineCrash(long seed) {
        Random r = new Random(seed);
        SimFs after = new SimFs(seed ^ 0x5DEECE66DL);
        after.dirs.addAll(dirs);
        Map<SimFile, SimFile> survived = new HashMap<>();
        TreeSet<String> names = new TreeSet<>(durableNames.keySet());
        names.addAll(currentNames.keySet());
        for (String name : names) {
            SimFile d = durableNames.get(name);
            SimFile c = currentNames.get(name);
            SimFile chosen = d == c || c == null || r.nextBoolean() ? d : c;
            if (chosen == null) continue;
            SimFile copy = survived.computeIfAbsent(chosen, f -> afterCrash(f, r));
            after.durableNames.put(name, copy);
            after.currentNames.put(name, copy);
        }
        crashed = true;
        return after;
    }

    private static SimFile afterCrash(SimFile f, Random r) {
        byte[] content = f.durable.clone();
        // Replay pending operations against the durable image, each one kept, dropped or torn.
        for (Pending w : f.pendingWrites) {
            int fate = r.nextInt(10);
            if (w.data() == null) { // truncation
                if (fate < 6) content = Arrays.copyOf(content, (int) w.offset());
                continue;
            }
            if (fate >= 8) continue; // dropped
            int off = (int) w.offset();
            int len = w.data().length;
            // Decide each 512-byte sector first (kept whole, or a torn write's random subset), then grow the file
            // once to the last kept sector and copy.
            List<int[]> kept = new ArrayList<>();
            for (int s = off; s < off + len; s = (s / 512 + 1) * 512) {
                int end = Math.min(off + len, (s / 512 + 1) * 512);
                if (fate < 5 || r.nextBoolean()) kept.add(new int[] {s, end});
            }
            if (kept.isEmpty()) continue;
            int last = kept.get(kept.size() - 1)[1];
            if (content.length < last) content = Arrays.copyOf(content, last);
            for (int[] k : kept) System.arraycopy(w.data(), k[0] - off, content, k[0], k[1] - k[0]);
        }
        SimFile out = new SimFile();
        out.durable = content;
        out.current = content.clone();
        return out;
    }

    // ---------------------------------------------------------------- Fs

    private void mutating() throws IOException {
        checkAlive();
        ops++;
        if (ops >= crashAt) {
            crashed = true;
            throw new SimulatedCrash(ops);
        }
        if (ioErrorRate > 0 && random.nextDouble() < ioErrorRate) throw new IOException("simulated EIO (op " + ops + ")");
    }

    private void checkAlive() {
        if (crashed) throw new SimulatedCrash(ops);
    }

    private static String dirOf(String name) {
        int slash = name.lastIndexOf('/');
        return slash < 0 ? "" : name.substring(0, slash);
    }

    @Override
    public synchronized FileHandle open(String name, boolean create) throws IOException {
        checkAlive();
        SimFile f = currentNames.get(name);
        if (f == null) {
            if (!create) throw new FileNotFoundException(name);
            if (!dirs.contains(dirOf(name))) throw new FileNotFoundException("no directory for " + name);
            mutating();
            f = new SimFile();
            currentNames.put(name, f);
        }
        return new Handle(f, name);
    }

    @Override
    public synchronized boolean exists(String name) {
        checkAlive();
        return currentNames.containsKey(name) || dirs.contains(name);
    }

    @Override
    public synchronized List<String> list(String dir) {
        checkAlive();
        List<String> out = new ArrayList<>();
        String prefix = dir.isEmpty() ? "" : dir + "/";
        for (String n : currentNames.keySet()) {
            if (n.startsWith(prefix) && n.indexOf('/', prefix.length()) < 0) out.add(n.substring(prefix.length()));
        }
        out.sort(null);
        return out;
    }

    @Override
    public synchronized void mkdirs(String dir) throws IOException {
        mutating();
        dirs.add(dir);
    }

    @Override
    public synchronized void delete(String name) throws IOException {
        mutating();
        currentNames.remove(name);
    }

    @Override
    public synchronized void rename(String from, String to) throws IOException {
        mutating();
        SimFile f = currentNames.remove(from);
        if (f == null) throw new FileNotFoundException(from);
        currentNames.put(to, f);
    }

    @Override
    public synchronized void syncDir(String dir) throws IOException {
        mutating();
        String prefix = dir.isEmpty() ? "" : dir + "/";
        durableNames.keySet().removeIf(n -> n.startsWith(prefix) && n.indexOf('/', prefix.length()) < 0 && !currentNames.containsKey(n));
        for (var e : currentNames.entrySet()) {
            String n = e.getKey();
            if (n.startsWith(prefix) && n.indexOf('/', prefix.length()) < 0) durableNames.put(n, e.getValue());
        }
    }

    @Override
    public synchronized long usableSpace() {
        return capacity == Long.MAX_VALUE || !reportsFreeSpace ? Long.MAX_VALUE : capacity - usedBytes();
    }

    /** Bytes held by all files (what the capacity limit counts). */
    public synchronized long usedBytes() {
        long used = 0;
        for (SimFile f : currentNames.values()) used += f.current.length;
        return used;
    }

    private final class Handle implements FileHandle {
        private final SimFile f;
        private final String name;
        private boolean closed;

        Handle(SimFile f, String name) { this.f = f; this.name = name; }

        @Override
        public int read(long pos, ByteBuffer dst) throws IOException {
            synchronized (SimFs.this) {
                checkAlive();
                open();
                if (ioErrorRate > 0 && random.nextDouble() < ioErrorRate) throw new IOException("simulated EIO reading " + name);
                if (pos >= f.current.length) return 0;
                int n = (int) Math.min(dst.remaining(), f.current.length - pos);
                dst.put(f.current, (int) pos, n);
                return n;
            }
        }

        @Override
        public void write(long pos, ByteBuffer src) throws IOException {
            WriteHook hook = writeHook;
            if (hook != null) hook.beforeWrite(name, pos, src.remaining());
            synchronized (SimFs.this) {
                open();
                mutating();
                int len = src.remaining();
                long end = pos + len;
                if (end > f.current.length && capacity != Long.MAX_VALUE && usedBytes() + end - f.current.length > capacity) {
                    throw new io.dedisk.store.NoSpaceLeftException("No space left on device (simulated, writing " + name + ")", null);
                }
                if (end > f.current.length) f.current = Arrays.copyOf(f.current, (int) end);
                byte[] data = new byte[len];
                src.get(data);
                System.arraycopy(data, 0, f.current, (int) pos, len);
                f.pendingWrites.add(new Pending(pos, data));
            }
        }

        @Override
        public void sync() throws IOException {
            synchronized (SimFs.this) {
                open();
                mutating();
                if (failingSyncs > 0) {
                    failingSyncs--;
                    throw new IOException("simulated fsync failure (EIO) on " + name);
                }
                f.durable = f.current.clone();
                f.pendingWrites.clear();
            }
        }

        @Override
        public long size() throws IOException {
            synchronized (SimFs.this) {
                checkAlive();
                open();
                return f.current.length;
            }
        }

        @Override
        public void truncate(long size) throws IOException {
            synchronized (SimFs.this) {
                open();
                mutating();
                f.current = Arrays.copyOf(f.current, (int) size);
                f.pendingWrites.add(new Pending(size, null));
            }
        }

        /** As FileChannel: every operation on a closed handle fails. */
        private void open() throws IOException {
            if (closed) throw new java.nio.channels.ClosedChannelException();
        }

        @Override
        public void close() {
            synchronized (SimFs.this) { closed = true; }
        }
    }
}
