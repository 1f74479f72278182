package io.dedisk.store;

import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.store.ObjectStore.Info;
import io.dedisk.store.ObjectStore.PreconditionFailedException;
import io.dedisk.store.ObjectStore.Versioned;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * What every {@link ObjectStore} promises, asserted once and run against each implementation (the simulated twin
 * and S3 on a real server), so the twin the engine's simulations run on cannot drift from S3's behaviour.
 * Subclasses hand out stores on an empty namespace.
 */
abstract class ObjectStoreContract {
    private final List<ObjectStore> opened = new ArrayList<>();

    /** A store with no objects, listing at most pageSize keys per request where the implementation pages. */
    protected abstract ObjectStore newStore(int listPageSize) throws Exception;

    private ObjectStore store() throws Exception { return store(1000); }

    private ObjectStore store(int listPageSize) throws Exception {
        ObjectStore s = newStore(listPageSize);
        opened.add(s);
        return s;
    }

    @AfterEach
    void closeStores() throws IOException {
        for (ObjectStore s : opened) s.close();
    }

    private static byte[] bytes(String s) { return s.getBytes(StandardCharsets.UTF_8); }

    private static byte[] random(long seed, int n) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    @Test
    void putThenGetAndRangesCutAtTheEnd() throws Exception {
        ObjectStore s = store();
        s.put("seg/1", bytes("0123456789"));
        Versioned v = s.get("seg/1");
        assertArrayEquals(bytes("0123456789"), v.content());
        assertNotNull(v.etag());
        assertArrayEquals(bytes("345"), s.getRange("seg/1", 3, 3));
        assertArrayEquals(bytes("789"), s.getRange("seg/1", 7, 100), "a range past the end returns the bytes up to the end");
        assertArrayEquals(new byte[0], s.getRange("seg/1", 10, 4), "a range starting at the end is empty");
        assertArrayEquals(new byte[0], s.getRange("seg/1", 50, 4), "a range starting past the end is empty");
        assertArrayEquals(new byte[0], s.getRange("seg/1", 2, 0));
        s.put("seg/1", bytes("replaced"));
        assertArrayEquals(bytes("replaced"), s.get("seg/1").content(), "put replaces");
    }

    @Test
    void emptyObject() throws Exception {
        ObjectStore s = store();
        s.put("empty", new byte[0]);
        assertArrayEquals(new byte[0], s.get("empty").content());
        assertArrayEquals(new byte[0], s.getRange("empty", 0, 16));
        assertEquals(List.of(new Info("empty", 0)), s.list(""));
    }

    @Test
    void missingObjects() throws Exception {
        ObjectStore s = store();
        assertNull(s.get("nope"));
        assertThrows(NoSuchFileException.class, () -> s.getRange("nope", 0, 1));
        assertThrows(NoSuchFileException.class, () -> s.getRange("nope", 0, 0), "a zero-length read of a missing object still fails");
        s.delete("nope");
        assertEquals(List.of(), s.list(""));
    }

    @Test
    void deleteIsIdempotent() throws Exception {
        ObjectStore s = store();
        s.put("a", bytes("x"));
        s.put("b", bytes("y"));
        s.delete("a");
        s.delete("a");
        assertNull(s.get("a"));
        assertThrows(NoSuchFileException.class, () -> s.getRange("a", 0, 1));
        assertEquals(List.of(new Info("b", 1)), s.list(""));
    }

    @Test
    void listIsSortedWithSizesAndFiltersByPrefix() throws Exception {
        ObjectStore s = store();
        List<String> keys = new ArrayList<>(List.of("seg/00000003", "seg/00000001", "seg/00000010", "seg/00000002", "manifest", "segx"));
        Collections.shuffle(keys, new Random(5));
        for (String k : keys) s.put(k, new byte[k.length() + 3]);
        assertEquals(List.of(new Info("seg/00000001", 15), new Info("seg/00000002", 15), new Info("seg/00000003", 15), new Info("seg/00000010", 15)),
                s.list("seg/"));
        assertEquals(List.of("manifest", "seg/00000001", "seg/00000002", "seg/00000003", "seg/00000010", "segx"),
                s.list("").stream().map(Info::key).toList());
        assertEquals(List.of("segx"), s.list("segx").stream().map(Info::key).toList());
        assertEquals(List.of(), s.list("nothing/"));
    }

    @Test
    void listPagesThroughManyKeys() throws Exception {
        ObjectStore s = store(7);
        List<Info> expected = new ArrayList<>();
        for (int i = 0; i < 25; i++) {
            String k = String.format("p/%03d", i);
            s.put(k, new byte[i]);
            expected.add(new Info(k, i));
        }
        assertEquals(expected, s.list("p/"), "25 keys over pages of 7");
    }

    @Test
    void putIfAbsentStoresOnce() throws Exception {
        ObjectStore s = store();
        String etag = s.putIfAbsent("manifest", bytes("epoch 1"));
        assertEquals(etag, s.get("manifest").etag(), "putIfAbsent returns the stored object's ETag");
        assertThrows(PreconditionFailedException.class, () -> s.putIfAbsent("manifest", bytes("epoch 2")), "the key exists");
        assertThrows(PreconditionFailedException.class, () -> s.putIfAbsent("manifest", bytes("epoch 1")), "even with the same bytes");
        assertArrayEquals(bytes("epoch 1"), s.get("manifest").content(), "the refused write changed nothing");
    }

    @Test
    void replaceIfMatchNeedsTheCurrentEtag() throws Exception {
        ObjectStore s = store();
        String first = s.putIfAbsent("manifest", bytes("epoch 1"));
        String second = s.replaceIfMatch("manifest", bytes("epoch 2"), first);
        assertNotEquals(first, second);
        Versioned now = s.get("manifest");
        assertArrayEquals(bytes("epoch 2"), now.content());
        assertEquals(second, now.etag(), "replaceIfMatch returns the new ETag");
        assertThrows(PreconditionFailedException.class, () -> s.replaceIfMatch("manifest", bytes("epoch 3"), first), "a stale ETag loses");
        assertArrayEquals(bytes("epoch 2"), s.get("manifest").content(), "the lost write changed nothing");
        assertThrows(PreconditionFailedException.class, () -> s.replaceIfMatch("absent", bytes("x"), second), "no object, no match");
        assertNull(s.get("absent"));
        assertEquals(s.replaceIfMatch("manifest", bytes("epoch 3"), second), s.get("manifest").etag());
    }

    @Test
    void largeObjectIsByteExact() throws Exception {
        ObjectStore s = store();
        byte[] big = random(9, (20 << 20) + 123); // above S3ObjectStore's 8 MiB part size: three parts there
        s.put("seg/big", big);
        assertArrayEquals(big, s.get("seg/big").content());
        int boundary = 8 << 20;
        assertArrayEquals(Arrays.copyOfRange(big, boundary - 10, boundary + 10), s.getRange("seg/big", boundary - 10, 20), "across a part boundary");
        assertArrayEquals(Arrays.copyOfRange(big, big.length - 5, big.length), s.getRange("seg/big", big.length - 5, 4096));
        assertEquals(List.of(new Info("seg/big", big.length)), s.list("seg/"));
    }
}
