package io.dedisk.sim;

import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.pool.Pool;
import io.dedisk.pool.VolumeDevice;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;

/**
 * The plain in-memory disk the pool is checked against. Per volume it keeps the current bytes (what reads must
 * return while nothing crashes) and, per 4 KiB block, the contents a crash may leave: the value at the last
 * completed FLUSH (or FUA) plus every value written since, including a write that was in flight at the crash.
 */
final class DiskModel {
    static final int BS = Pool.BLOCK_SIZE;
    /** Few distinct block contents, so dedup, refcounts and stale advice are exercised hard. */
    private static final int PATTERNS = 6;

    final Map<String, Vol> volumes = new TreeMap<>();

    static final class Vol {
        byte[] current;
        final List<List<byte[]>> candidates = new ArrayList<>();

        Vol(int blocks) {
            current = new byte[blocks * BS];
            for (int b = 0; b < blocks; b++) candidates.add(new ArrayList<>(List.of(new byte[BS])));
        }

        int blocks() { return current.length / BS; }

        byte[] block(int b) { return Arrays.copyOfRange(current, b * BS, (b + 1) * BS); }

        /** Before an operation changes [off, off+len): what it will write may or may not survive a crash. */
        void mayWrite(long off, long len, byte[] after) {
            for (long b = off / BS; b < (off + len + BS - 1) / BS; b++) {
                candidates.get((int) b).add(Arrays.copyOfRange(after, (int) b * BS, (int) (b + 1) * BS));
            }
        }

        /** The operation completed durably (FUA) for these blocks: older values can no longer come back. */
        void durable(long off, long len) {
            for (long b = off / BS; b < (off + len + BS - 1) / BS; b++) {
                List<byte[]> c = candidates.get((int) b);
                c.clear();
                c.add(block((int) b));
            }
        }

        void flushed() { durable(0, current.length); }
    }

    void addVolume(String name, int blocks) { volumes.put(name, new Vol(blocks)); }

    /** Block content generator: zeros, a few shared patterns, random, or compressible text. */
    static byte[] content(Random r, int length) {
        byte[] out = new byte[length];
        for (int off = 0; off < length; off += BS) {
            int n = Math.min(BS, length - off);
            int kind = r.nextInt(10);
            if (kind == 0) continue; // zeros
            if (kind <= 5) {
                int p = r.nextInt(PATTERNS);
                for (int i = 0; i < n; i++) out[off + i] = (byte) (p * 31 + i / 64);
            } else if (kind <= 8) {
                byte[] b = new byte[n];
                r.nextBytes(b);
                System.arraycopy(b, 0, out, off, n);
            } else {
                byte[] text = ("log line " + r.nextInt(1000) + " of a guest's syslog\n").getBytes();
                for (int i = 0; i < n; i++) out[off + i] = text[i % text.length];
            }
        }
        return out;
    }

    /** Reads every volume of the pool and requires each block to be one of its crash candidates; adopts it. */
    void verifyAfterCrash(Pool pool, String what) {
        assertEquals(volumes.keySet(), new java.util.TreeSet<>(pool.volumeNames()), what + ": volumes");
        for (var e : volumes.entrySet()) {
            Vol v = e.getValue();
            byte[] actual = readAll(pool, e.getKey(), v.current.length);
            for (int b = 0; b < v.blocks(); b++) {
                byte[] got = Arrays.copyOfRange(actual, b * BS, (b + 1) * BS);
                boolean allowed = v.candidates.get(b).stream().anyMatch(c -> Arrays.equals(c, got));
                if (!allowed) fail(what + ": volume " + e.getKey() + " block " + b + " holds content that was never written there since the last flush "
                        + "(first bytes " + (got[0] & 0xff) + "," + (got[1] & 0xff) + "; " + v.candidates.get(b).size() + " candidates)");
            }
            v.current = actual;
            v.flushed();
        }
    }

    /** After a lost cache directory (checked by {@link PrefixHistory}): the pool's volumes and contents become the model. */
    void adopt(Pool pool) {
        volumes.clear();
        for (String name : pool.volumeNames()) {
            int length = (int) pool.volume(name).orElseThrow().size();
            Vol v = new Vol(length / BS);
            v.current = readAll(pool, name, length);
            v.flushed();
            volumes.put(name, v);
        }
    }

    /** Without a machine crash, every completed write is visible: the pool must equal the model exactly. */
    void verifyExact(Pool pool, String what) {
        assertEquals(volumes.keySet(), new java.util.TreeSet<>(pool.volumeNames()), what + ": volumes");
        for (var e : volumes.entrySet()) {
            byte[] actual = readAll(pool, e.getKey(), e.getValue().current.length);
            int at = Arrays.mismatch(actual, e.getValue().current);
            assertEquals(-1, at, what + ": volume " + e.getKey() + " differs at byte " + at + " (block " + (at / BS) + ")");
        }
    }

    static byte[] readAll(Pool pool, String name, int length) {
        VolumeDevice d = pool.volume(name).orElseThrow(() -> new AssertionError("volume " + name + " missing"));
        ByteBuffer b = ByteBuffer.allocate(length);
        d.read(0, b);
        return b.array();
    }
}
