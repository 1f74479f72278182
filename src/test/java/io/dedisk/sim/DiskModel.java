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
    /**
     * A volume create, delete, snapshot or clone a crash may have interrupted: after recovery the volume may exist or
     * not; if it exists and the model does not have it, it holds {@code created}.
     */
    String inFlight;
    Vol inFlightCreated;
    private int nextFamily = 1;

    static final class Vol {
        byte[] current;
        final List<List<byte[]>> candidates = new ArrayList<>();
        /** Snapshots never change. */
        boolean readOnly;
        /** Trees derived from one created volume share a family (a rollback is to a snapshot of the same family). */
        int family;

        Vol(int blocks) {
            current = new byte[blocks * BS];
            for (int b = 0; b < blocks; b++) candidates.add(new ArrayList<>(List.of(new byte[BS])));
        }

        /** A volume holding exactly this one's current content (a snapshot or clone of it), in the same family. */
        Vol derived(boolean readOnly) {
            Vol v = new Vol(blocks());
            v.current = current.clone();
            v.readOnly = readOnly;
            v.family = family;
            for (int b = 0; b < blocks(); b++) v.candidates.get(b).set(0, block(b));
            return v;
        }

        Vol copy() {
            Vol v = derived(readOnly);
            for (int b = 0; b < blocks(); b++) {
                v.candidates.get(b).clear();
                v.candidates.get(b).addAll(candidates.get(b));
            }
            return v;
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

    Vol addVolume(String name, int blocks) {
        Vol v = newVolume(blocks);
        volumes.put(name, v);
        return v;
    }

    /** A new, empty volume of its own family, not yet in the model. */
    Vol newVolume(int blocks) {
        Vol v = new Vol(blocks);
        v.family = nextFamily++;
        return v;
    }

    /** A durable volume operation returned: it synced the log, so every write before it is durable, in every volume. */
    void allFlushed() { for (Vol v : volumes.values()) v.flushed(); }

    List<String> writable() { return volumes.entrySet().stream().filter(e -> !e.getValue().readOnly).map(Map.Entry::getKey).toList(); }

    DiskModel copy() {
        DiskModel m = new DiskModel();
        for (var e : volumes.entrySet()) m.volumes.put(e.getKey(), e.getValue().copy());
        m.inFlight = inFlight;
        m.inFlightCreated = inFlightCreated == null ? null : inFlightCreated.copy();
        m.nextFamily = nextFamily;
        return m;
    }

    /** After a crash: the interrupted volume operation became durable, or not. */
    private void settle(Pool pool) {
        if (inFlight == null) return;
        boolean exists = pool.volumeNames().contains(inFlight);
        if (exists && !volumes.containsKey(inFlight)) volumes.put(inFlight, inFlightCreated);
        if (!exists) volumes.remove(inFlight);
        inFlight = null;
        inFlightCreated = null;
    }

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
        settle(pool);
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
        Map<String, String> parents = new java.util.HashMap<>();
        for (io.dedisk.pool.VolumeInfo info : pool.volumeInfos()) {
            int length = (int) info.sizeBytes();
            Vol v = new Vol(length / BS);
            v.current = readAll(pool, info.name(), length);
            v.flushed();
            v.readOnly = info.snapshot();
            v.family = nextFamily++;
            volumes.put(info.name(), v);
            if (info.parent() != null) parents.put(info.name(), info.parent());
        }
        // A snapshot or clone is in its parent's family (a deleted parent is named "-": the family is then its own).
        for (boolean changed = true; changed; ) {
            changed = false;
            for (var e : parents.entrySet()) {
                Vol parent = volumes.get(e.getValue());
                Vol v = volumes.get(e.getKey());
                if (parent != null && v.family != parent.family) {
                    v.family = parent.family;
                    changed = true;
                }
            }
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
