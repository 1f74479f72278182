package io.dedisk.cli;

import static org.junit.jupiter.api.Assertions.*;

import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The data extents of real sparse files (SEEK_DATA / SEEK_HOLE on the test machine's filesystem). */
class FileExtentsTest {
    @TempDir Path tmp;

    @Test
    void holesAreFoundAndDataIsNeverMissed() throws Exception {
        Path f = tmp.resolve("sparse.raw");
        int mib = 1 << 20;
        try (RandomAccessFile out = new RandomAccessFile(f.toFile(), "rw")) {
            out.setLength(64L * mib);
            out.seek(0);
            out.write(new byte[] {1});
            out.seek(20L * mib + 4096);
            out.write(new byte[2 * mib]);
            out.seek(64L * mib - 1);
            out.write(new byte[] {7});
        }
        FileExtents e = FileExtents.of(f, Files.size(f));
        assertTrue(e.hasData(0, mib), "the first byte");
        assertTrue(e.hasData(20L * mib, mib) && e.hasData(22L * mib, mib), "written zeros are data, also where they start or end inside a piece");
        assertTrue(e.hasData(63L * mib, mib), "the last byte");
        assertFalse(e.hasData(8L * mib, mib), "a hole");
        assertFalse(e.hasData(40L * mib, 20L * mib), "a long hole");
        assertTrue(e.dataBytes() >= 2 * mib + 2 && e.dataBytes() < 16L * mib, "data extents: " + e.dataBytes());
        FileExtents head = FileExtents.of(f, 10L * mib);
        assertFalse(head.hasData(10L * mib, mib), "extents stop at the size asked for");
        assertTrue(head.dataBytes() < 10L * mib);

        Path empty = tmp.resolve("hole.raw");
        try (RandomAccessFile out = new RandomAccessFile(empty.toFile(), "rw")) { out.setLength(8L * mib); }
        assertEquals(0, FileExtents.of(empty, 8L * mib).dataBytes(), "a file that is one hole has no data");
        assertFalse(FileExtents.of(empty, 8L * mib).hasData(0, 8L * mib));
    }

    @Test
    void unknownExtentsMeanEverythingIsData() {
        FileExtents all = FileExtents.of(tmp.resolve("missing"), 5L << 20);
        assertTrue(all.hasData(0, 1) && all.hasData((5L << 20) - 1, 1), "a file that cannot be opened: everything is data");
        assertEquals(5L << 20, all.dataBytes());
        assertFalse(all.hasData(5L << 20, 1), "nothing past the size");
    }
}
