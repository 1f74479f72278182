package io.dedisk.store;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * The real filesystem under a root directory (the embedded default pool store). Thread-safe: FileChannel
 * positional I/O is safe for concurrent use.
 */
public final class LocalFs implements Fs {
    private final Path root;

    public LocalFs(Path root) {
        this.root = root.toAbsolutePath().normalize();
    }

    public Path root() { return root; }

    private Path resolve(String name) {
        Path p = name.isEmpty() ? root : root.resolve(name).normalize();
        if (!p.startsWith(root)) throw new IllegalArgumentException("path escapes the pool directory: " + name);
        return p;
    }

    @Override
    public FileHandle open(String name, boolean create) throws IOException {
        Path p = resolve(name);
        try {
            FileChannel ch = create
                    ? FileChannel.open(p, StandardOpenOption.READ, StandardOpenOption.WRITE, StandardOpenOption.CREATE)
                    : FileChannel.open(p, StandardOpenOption.READ, StandardOpenOption.WRITE);
            return new LocalHandle(ch);
        } catch (IOException e) {
            throw NoSpaceLeftException.classify(e);
        }
    }

    @Override
    public boolean exists(String name) { return Files.exists(resolve(name)); }

    @Override
    public List<String> list(String dir) throws IOException {
        Path d = resolve(dir);
        if (!Files.isDirectory(d)) return List.of();
        try (Stream<Path> s = Files.list(d)) {
            List<String> names = new ArrayList<>();
            s.filter(Files::isRegularFile).forEach(p -> names.add(p.getFileName().toString()));
            names.sort(null);
            return names;
        }
    }

    @Override
    public void mkdirs(String dir) throws IOException { Files.createDirectories(resolve(dir)); }

    @Override
    public void delete(String name) throws IOException {
        try {
            Files.delete(resolve(name));
        } catch (NoSuchFileException e) {
            // already gone: deletion is idempotent
        }
    }

    @Override
    public void rename(String from, String to) throws IOException {
        try {
            Files.move(resolve(from), resolve(to), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw NoSpaceLeftException.classify(e);
        }
    }

    @Override
    public void syncDir(String dir) throws IOException {
        try (FileChannel ch = FileChannel.open(resolve(dir), StandardOpenOption.READ)) {
            ch.force(true);
        }
    }

    @Override
    public long usableSpace() throws IOException { return Files.getFileStore(root).getUsableSpace(); }

    private record LocalHandle(FileChannel ch) implements FileHandle {
        @Override
        public int read(long pos, ByteBuffer dst) throws IOException {
            int total = 0;
            while (dst.hasRemaining()) {
                int n = ch.read(dst, pos + total);
                if (n < 0) break;
                total += n;
            }
            return total;
        }

        @Override
        public void write(long pos, ByteBuffer src) throws IOException {
            long p = pos;
            try {
                while (src.hasRemaining()) p += ch.write(src, p);
            } catch (IOException e) {
                throw NoSpaceLeftException.classify(e);
            }
        }

        @Override
        public void sync() throws IOException {
            try {
                ch.force(false);
            } catch (IOException e) {
                throw NoSpaceLeftException.classify(e);
            }
        }

        @Override
        public long size() throws IOException { return ch.size(); }

        @Override
        public void truncate(long size) throws IOException { ch.truncate(size); }

        @Override
        public void close() throws IOException { ch.close(); }
    }
}
