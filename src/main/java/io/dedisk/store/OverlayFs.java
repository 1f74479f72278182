package io.dedisk.store;

import io.dedisk.util.Check;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Stream;

/**
 * A directory seen read-only through an in-memory, copy-on-write layer: reads see the files on disk plus
 * whatever was written, truncated, created, renamed or deleted through this Fs; nothing ever reaches the disk
 * (files on disk are opened with READ only). It lets code that opens a pool for writing (recovery truncates a
 * torn tail, close writes a checkpoint) run on a stopped pool without changing one byte of it: `dedisk report`
 * on an offline pool.
 *
 * Each file is a {@link Node}: a visible prefix of its file on disk (none for a new file) and non-overlapping
 * written extents over it, sorted by offset; bytes in neither read as zeros (as a sparse file's would).
 * Memory grows with what is written, never with what is read.
 *
 * Threads: all methods may be called from any thread; names are guarded by this object, each node's content by
 * the node. Invariant per node: extents lie within [0, size), do not overlap, and baseLength ≤ size.
 */
public final class OverlayFs implements Fs, AutoCloseable {
    private final Path root;
    // Guarded by this: names created or opened through this Fs, and names on disk hidden by delete/rename.
    private final Map<String, Node> nodes = new HashMap<>();
    private final Set<String> hidden = new HashSet<>();
    private final Set<String> dirs = new HashSet<>();
    private final List<FileChannel> channels = new ArrayList<>();
    private boolean closed;

    public OverlayFs(Path root) {
        this.root = root.toAbsolutePath().normalize();
    }

    private Path resolve(String name) {
        Path p = name.isEmpty() ? root : root.resolve(name).normalize();
        if (!p.startsWith(root)) throw new IllegalArgumentException("path escapes the pool directory: " + name);
        return p;
    }

    private static String parent(String name) {
        int slash = name.lastIndexOf('/');
        return slash < 0 ? "" : name.substring(0, slash);
    }

    /** The node for name: one already known, or the file on disk taken into the overlay; null when absent. */
    private synchronized Node node(String name) throws IOException {
        Check.that(!closed, "OverlayFs used after close");
        Node n = nodes.get(name);
        if (n != null || hidden.contains(name)) return n;
        Path p = resolve(name);
        if (!Files.isRegularFile(p)) return null;
        FileChannel ch = FileChannel.open(p, StandardOpenOption.READ);
        channels.add(ch);
        n = new Node(ch, ch.size());
        nodes.put(name, n);
        return n;
    }

    @Override
    public synchronized FileHandle open(String name, boolean create) throws IOException {
        Node n = node(name);
        if (n == null) {
            if (!create) throw new NoSuchFileException(resolve(name).toString());
            n = new Node(null, 0);
            nodes.put(name, n);
        }
        return n;
    }

    @Override
    public synchronized boolean exists(String name) throws IOException {
        if (nodes.containsKey(name) || dirs.contains(name)) return true;
        if (hidden.contains(name)) return false;
        return Files.exists(resolve(name));
    }

    @Override
    public synchronized List<String> list(String dir) throws IOException {
        TreeSet<String> names = new TreeSet<>();
        Path d = resolve(dir);
        if (Files.isDirectory(d)) {
            try (Stream<Path> s = Files.list(d)) {
                s.filter(Files::isRegularFile).forEach(p -> names.add(p.getFileName().toString()));
            }
        }
        String prefix = dir.isEmpty() ? "" : dir + "/";
        names.removeIf(n -> hidden.contains(prefix + n) && !nodes.containsKey(prefix + n));
        for (String name : nodes.keySet()) if (parent(name).equals(dir)) names.add(name.substring(prefix.length()));
        return new ArrayList<>(names);
    }

    @Override
    public synchronized void mkdirs(String dir) { dirs.add(dir); }

    @Override
    public synchronized void delete(String name) throws IOException {
        nodes.remove(name);
        hidden.add(name);
    }

    @Override
    public synchronized void rename(String from, String to) throws IOException {
        Node n = node(from);
        if (n == null) throw new NoSuchFileException(resolve(from).toString());
        nodes.remove(from);
        hidden.add(from);
        nodes.put(to, n);
    }

    @Override
    public void syncDir(String dir) {}

    @Override
    public long usableSpace() { return Long.MAX_VALUE; }

    /** Bytes held in memory by written extents (for tests and logs). */
    public synchronized long overlayBytes() {
        long total = 0;
        for (Node n : nodes.values()) total += n.extentBytes();
        return total;
    }

    /** Closes the files on disk; the overlay's content is dropped. */
    @Override
    public synchronized void close() throws IOException {
        closed = true;
        IOException first = null;
        for (FileChannel ch : channels) {
            try { ch.close(); } catch (IOException e) { if (first == null) first = e; }
        }
        channels.clear();
        nodes.clear();
        if (first != null) throw first;
    }

    /** One file: a prefix of a file on disk plus written extents. Its handles are itself. */
    private static final class Node implements FileHandle {
        private final FileChannel base;
        private final TreeMap<Long, byte[]> extents = new TreeMap<>();
        private long baseLength;
        private long size;

        Node(FileChannel base, long baseLength) {
            this.base = base;
            this.baseLength = baseLength;
            this.size = baseLength;
        }

        @Override
        public synchronized int read(long pos, ByteBuffer dst) throws IOException {
            Check.that(pos >= 0, "read at negative offset %d", pos);
            if (pos >= size) return 0;
            int n = (int) Math.min(dst.remaining(), size - pos);
            byte[] out = new byte[n];
            long fromBase = Math.min(pos + n, baseLength) - pos;
            if (fromBase > 0) {
                ByteBuffer b = ByteBuffer.wrap(out, 0, (int) fromBase);
                while (b.hasRemaining()) {
                    int r = base.read(b, pos + b.position());
                    if (r < 0) break; // the file on disk shrank under us: the rest reads as zeros
                }
            }
            Long start = extents.floorKey(pos);
            for (var e : (start == null ? extents : extents.tailMap(start, true)).entrySet()) {
                long es = e.getKey();
                if (es >= pos + n) break;
                byte[] data = e.getValue();
                long from = Math.max(es, pos), to = Math.min(es + data.length, pos + n);
                if (to > from) System.arraycopy(data, (int) (from - es), out, (int) (from - pos), (int) (to - from));
            }
            dst.put(out);
            return n;
        }

        @Override
        public synchronized void write(long pos, ByteBuffer src) {
            Check.that(pos >= 0, "write at negative offset %d", pos);
            byte[] data = new byte[src.remaining()];
            src.get(data);
            if (data.length == 0) return;
            long end = pos + data.length;
            cut(pos, end);
            extents.put(pos, data);
            size = Math.max(size, end);
            checkInvariants();
        }

        /** Removes [from, to) from the extents, keeping the parts of extents outside it. */
        private void cut(long from, long to) {
            var before = extents.lowerEntry(from);
            if (before != null) {
                long bs = before.getKey();
                byte[] bd = before.getValue();
                if (bs + bd.length > from) {
                    extents.put(bs, java.util.Arrays.copyOf(bd, (int) (from - bs)));
                    if (bs + bd.length > to) extents.put(to, java.util.Arrays.copyOfRange(bd, (int) (to - bs), bd.length));
                }
            }
            var inside = extents.subMap(from, true, to, false);
            // Copied out first: TreeMap reuses its entry objects while removing (their keys change under us).
            List<Map.Entry<Long, byte[]>> covered = new ArrayList<>();
            for (var e : inside.entrySet()) covered.add(Map.entry(e.getKey(), e.getValue()));
            inside.clear();
            for (var e : covered) {
                long es = e.getKey();
                byte[] ed = e.getValue();
                if (es + ed.length > to) extents.put(to, java.util.Arrays.copyOfRange(ed, (int) (to - es), ed.length));
            }
        }

        @Override
        public void sync() {}

        @Override
        public synchronized long size() { return size; }

        @Override
        public synchronized void truncate(long newSize) {
            Check.that(newSize >= 0, "truncate to negative size %d", newSize);
            if (newSize < size) {
                cut(newSize, Long.MAX_VALUE);
                baseLength = Math.min(baseLength, newSize);
            }
            size = newSize;
            checkInvariants();
        }

        synchronized long extentBytes() {
            long total = 0;
            for (byte[] d : extents.values()) total += d.length;
            return total;
        }

        private void checkInvariants() {
            Check.that(baseLength <= size, "overlay file: base prefix %d beyond size %d", baseLength, size);
            var last = extents.lastEntry();
            Check.that(last == null || last.getKey() + last.getValue().length <= size, "overlay file: extent beyond size %d", size);
        }

        @Override
        public void close() {} // the channel on disk is shared by every handle of this node; OverlayFs.close closes it
    }
}
