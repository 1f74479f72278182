package io.dedisk.sim;

import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.store.ObjectStore;
import io.dedisk.store.ObjectStore.PreconditionFailedException;
import java.io.IOException;
import org.junit.jupiter.api.Test;

/** The object-store twin behaves like S3 and injects exactly the faults it claims, reproducibly from its seed. */
class SimObjectStoreTest {
    @Test
    void semanticsAndConditionalPut() throws IOException {
        SimObjectStore s = new SimObjectStore(1);
        s.put("seg/1", new byte[] {1, 2, 3, 4});
        assertArrayEquals(new byte[] {2, 3}, s.getRange("seg/1", 1, 2));
        assertArrayEquals(new byte[] {4}, s.getRange("seg/1", 3, 10), "a range past the end is cut");
        s.putIfAbsent("lease/1", new byte[] {9});
        assertThrows(PreconditionFailedException.class, () -> s.putIfAbsent("lease/1", new byte[] {8}), "the second writer is fenced");
        assertArrayEquals(new byte[] {9}, s.getRange("lease/1", 0, 1));
        ObjectStore.Versioned m = s.get("lease/1");
        String next = s.replaceIfMatch("lease/1", new byte[] {7}, m.etag());
        assertThrows(PreconditionFailedException.class, () -> s.replaceIfMatch("lease/1", new byte[] {6}, m.etag()), "a stale ETag loses");
        assertEquals(next, s.get("lease/1").etag());
        assertArrayEquals(new byte[] {7}, s.get("lease/1").content());
        assertNull(s.get("missing"));
        s.put("seg/2", new byte[1]);
        assertEquals(java.util.List.of("seg/1", "seg/2"), s.list("seg/").stream().map(i -> i.key()).toList());
        s.delete("seg/1");
        s.delete("seg/1");
        assertThrows(java.nio.file.NoSuchFileException.class, () -> s.getRange("seg/1", 0, 1));
        assertTrue(s.virtualMillis() > 0);
    }

    @Test
    void ambiguousPutsAreStoredDespiteTheError() {
        SimObjectStore s = new SimObjectStore(2).ambiguousRate(1.0);
        assertThrows(IOException.class, () -> s.put("k", new byte[] {1}));
        assertTrue(s.contains("k"), "an ambiguous outcome: reported failed, but stored");
    }

    @Test
    void injectedFaultsAreReproducibleFromTheSeed() {
        assertEquals(outcomes(7), outcomes(7));
        assertNotEquals(outcomes(7), outcomes(8));
    }

    private static String outcomes(long seed) {
        SimObjectStore s = new SimObjectStore(seed).errorRate(0.3).lostConditionalRate(0.2);
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < 64; i++) {
            try {
                s.putIfAbsent("k" + i, new byte[] {1});
                b.append('.');
            } catch (PreconditionFailedException e) {
                b.append('P');
            } catch (IOException e) {
                b.append('E');
            }
        }
        assertTrue(b.indexOf("P") >= 0 && b.indexOf("E") >= 0 && b.indexOf(".") >= 0, b.toString());
        return b.toString();
    }
}
