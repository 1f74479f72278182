package io.dedisk.pool;

import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.DediskException.InvalidRequestException;
import io.dedisk.store.LocalFs;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** `volume rename`: one durable VOLUME_RENAME record, replayed after a crash, kept by checkpoints; names in use refused. */
class VolumeRenameTest {
    static final int BS = Pool.BLOCK_SIZE;
    @TempDir Path dir;

    Pool open() throws IOException { return Pool.open(new LocalFs(dir)); }

    @Test
    void renameKeepsTheDataAndSurvivesACrashAndACheckpoint() throws IOException {
        Pool.create(new LocalFs(dir), new Pool.Options(1 << 20, 1 << 20, 16 << 20, false));
        byte[] data = new byte[64 * BS];
        new Random(3).nextBytes(data);
        Pool p = open();
        p.createVolume("img.importing", 1 << 20);
        p.createVolume("other", 1 << 20);
        VolumeDevice handle = p.volume("img.importing").orElseThrow();
        handle.write(0, ByteBuffer.wrap(data), false);
        p.renameVolume("img.importing", "img");
        assertEquals(List.of("img", "other"), p.volumeNames());
        assertTrue(p.volume("img.importing").isEmpty());
        // A handle opened under the old name (an NBD connection) goes on working on the renamed volume.
        assertEquals("img", handle.name());
        handle.write(64L * BS, ByteBuffer.wrap(data, 0, BS), false);
        handle.flush();
        // No close: the rename is replayed from the log.
        try (Pool q = open()) {
            assertEquals(List.of("img", "other"), q.volumeNames());
            assertArrayEquals(data, PoolTest.read(q.volume("img").orElseThrow(), 0, data.length));
            assertArrayEquals(java.util.Arrays.copyOf(data, BS), PoolTest.read(q.volume("img").orElseThrow(), 64L * BS, BS));
            q.renameVolume("img", "img2");
        } // clean close: the new name is in the checkpoint root, the record is not replayed
        try (Pool q = open()) {
            assertEquals(List.of("img2", "other"), q.volumeNames());
            assertArrayEquals(data, PoolTest.read(q.volume("img2").orElseThrow(), 0, data.length));
            assertTrue(PoolChecker.check(q).ok(), PoolChecker.check(q).toText());
        }
    }

    @Test
    void refusesNamesInUseUnknownVolumesAndInvalidNames() throws IOException {
        Pool.create(new LocalFs(dir), new Pool.Options(1 << 20, 1 << 20, 16 << 20, false));
        try (Pool p = open()) {
            p.createVolume("a", 1 << 20);
            p.createVolume("b", 1 << 20);
            InvalidRequestException inUse = assertThrows(InvalidRequestException.class, () -> p.renameVolume("a", "b"));
            assertTrue(inUse.getMessage().contains("a volume named 'b' exists"), inUse.getMessage());
            assertThrows(InvalidRequestException.class, () -> p.renameVolume("missing", "c"));
            assertThrows(InvalidRequestException.class, () -> p.renameVolume("a", "bad name"));
            assertEquals(List.of("a", "b"), p.volumeNames());
        }
    }

    @Test
    void snapshotsAndVolumesWithSnapshotsAreNotRenamed() throws IOException {
        Pool.create(new LocalFs(dir), new Pool.Options(1 << 20, 1 << 20, 16 << 20, false));
        try (Pool p = open()) {
            p.createVolume("gold", 1 << 20);
            p.createSnapshot("gold", "v1");
            assertThrows(InvalidRequestException.class, () -> p.renameVolume("gold", "silver"), "its snapshot is named gold@v1");
            assertThrows(InvalidRequestException.class, () -> p.renameVolume("gold@v1", "v1"), "a snapshot keeps its volume's name");
            p.cloneSnapshot("gold@v1", "vm1");
            p.renameVolume("vm1", "vm2"); // a clone is an ordinary volume
            assertEquals(List.of("gold", "gold@v1", "vm2"), p.volumeNames().stream().sorted().toList());
        }
    }
}
