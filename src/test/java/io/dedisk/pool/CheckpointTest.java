package io.dedisk.pool;

import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.DediskException.CorruptionException;
import java.util.List;
import java.util.UUID;
import org.junit.jupiter.api.Test;

class CheckpointTest {
    @Test
    void roundTripAndCorruptionDetected() {
        UUID pool = UUID.randomUUID();
        ChunkTable chunks = new ChunkTable();
        VolumeState v = new VolumeState(1, "vol", 4096L * 5000);
        for (int i = 0; i < 3000; i++) {
            long id = chunks.allocateId();
            chunks.create(id, 1 + i / 1000, 48 + i * 100, 100, ChunkCodec.LZ4, i);
            chunks.increment(id);
            v.map.set(i, id);
        }
        v.map.set(4000, BlockMap.ZERO);
        Checkpoint.Position pos = new Checkpoint.Position(77, 3, 1234);
        byte[] bytes = Checkpoint.encode(pool, new Checkpoint.Image(pos, List.of(v), chunks, 2));
        Checkpoint.Image back = Checkpoint.decode(bytes, pool, "test");
        assertEquals(pos, back.position());
        assertEquals(3000, back.chunks().liveChunks());
        assertEquals(chunks.location(1500), back.chunks().location(1500));
        VolumeState w = back.volumes().get(0);
        assertEquals("vol", w.name);
        assertEquals(3000, w.map.mappedBlocks());
        assertEquals(1, w.map.zeroBlocks());
        assertEquals(v.map.get(2999), w.map.get(2999));
        for (int flip : new int[] {0, 20, bytes.length / 2, bytes.length - 1}) {
            byte[] bad = bytes.clone();
            bad[flip] ^= 0x10;
            assertThrows(CorruptionException.class, () -> Checkpoint.decode(bad, pool, "test"), "flip at " + flip);
        }
        assertThrows(CorruptionException.class, () -> Checkpoint.decode(bytes, UUID.randomUUID(), "test"));
    }
}
