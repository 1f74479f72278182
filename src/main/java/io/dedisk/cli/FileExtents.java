package io.dedisk.cli;

import io.dedisk.util.Check;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Where a sparse file holds data: its data extents, from lseek(SEEK_DATA / SEEK_HOLE) through the C library (the
 * JDK has no such call). A raw image import reads only the 1 MiB pieces that meet an extent: a hole reads as zeros
 * and would be skipped block by block anyway, after the kernel zero-filled it and the copy scanned it (the
 * benchmark images are 45-60 % holes). Unknown extents (no such call, a filesystem without them, any error) mean
 * "all data": the copy is then what it was, never wrong.
 *
 * Immutable; any thread. Extents are sorted, disjoint, non-empty, within [0, size).
 */
final class FileExtents {
    private static final int SEEK_DATA = 3, SEEK_HOLE = 4, ENXIO = 6, O_RDONLY = 0;

    private final long[] starts;
    private final long[] ends;

    private FileExtents(long[] starts, long[] ends) {
        for (int i = 0; i < starts.length; i++) {
            Check.that(starts[i] < ends[i] && (i == 0 || ends[i - 1] <= starts[i]), "extents sorted, disjoint and non-empty");
        }
        this.starts = starts;
        this.ends = ends;
    }

    /** Everything is data. */
    static FileExtents all(long size) { return size == 0 ? new FileExtents(new long[0], new long[0]) : new FileExtents(new long[] {0}, new long[] {size}); }

    /** Whether [off, off + len) meets data. */
    boolean hasData(long off, long len) {
        int i = Arrays.binarySearch(ends, off); // the first extent ending after off
        i = i >= 0 ? i + 1 : -i - 1;
        return i < starts.length && starts[i] < off + len;
    }

    /** Bytes in extents (for the log line). */
    long dataBytes() {
        long sum = 0;
        for (int i = 0; i < starts.length; i++) sum += ends[i] - starts[i];
        return sum;
    }

    /** The data extents of the first {@code size} bytes of {@code file}; all of it when they cannot be learned. */
    static FileExtents of(Path file, long size) {
        try {
            return Native.extents(file, size);
        } catch (RuntimeException | LinkageError e) {
            return all(size); // no native access, no such call: read everything, as without this class
        }
    }

    /** The C calls, bound on first use. */
    private static final class Native {
        static final Linker LINKER = Linker.nativeLinker();
        static final StructLayout STATE = Linker.Option.captureStateLayout();
        static final VarHandle ERRNO = STATE.varHandle(java.lang.foreign.MemoryLayout.PathElement.groupElement("errno"));
        static final MethodHandle OPEN = LINKER.downcallHandle(LINKER.defaultLookup().find("open").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT), Linker.Option.firstVariadicArg(2));
        static final MethodHandle LSEEK = LINKER.downcallHandle(LINKER.defaultLookup().find("lseek").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT), Linker.Option.captureCallState("errno"));
        static final MethodHandle CLOSE = LINKER.downcallHandle(LINKER.defaultLookup().find("close").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));

        static FileExtents extents(Path file, long size) {
            try (Arena arena = Arena.ofConfined()) {
                int fd = (int) OPEN.invokeExact(arena.allocateFrom(file.toString()), O_RDONLY, 0);
                if (fd < 0) return all(size);
                try {
                    MemorySegment state = arena.allocate(STATE);
                    long[] starts = new long[16], ends = new long[16];
                    int n = 0;
                    for (long off = 0; off < size; ) {
                        long data = (long) LSEEK.invokeExact(state, fd, off, SEEK_DATA);
                        if (data < 0) {
                            if ((int) ERRNO.get(state, 0L) == ENXIO) break; // no data after off
                            return all(size);
                        }
                        if (data >= size) break;
                        long hole = (long) LSEEK.invokeExact(state, fd, data, SEEK_HOLE);
                        if (hole <= data) return all(size);
                        if (n == starts.length) {
                            starts = Arrays.copyOf(starts, 2 * n);
                            ends = Arrays.copyOf(ends, 2 * n);
                        }
                        starts[n] = data;
                        ends[n++] = Math.min(hole, size);
                        off = hole;
                    }
                    return new FileExtents(Arrays.copyOf(starts, n), Arrays.copyOf(ends, n));
                } finally {
                    int ignored = (int) CLOSE.invokeExact(fd); // read-only: nothing to lose
                }
            } catch (RuntimeException | Error e) {
                throw e;
            } catch (Throwable t) {
                throw new IllegalStateException("lseek through the C library: " + t, t);
            }
        }
    }
}
