package io.dedisk.sim;

import static org.junit.jupiter.api.Assertions.fail;

import io.dedisk.pool.Pool;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The write history of the model's volumes, for the prefix check after a lost cache directory (DESIGN.md §3: the
 * bucket holds a prefix of the write history). Every change the model takes — a write, one writer's batch of a
 * group commit, a volume created or deleted — gets the next timestamp; a pool state is a prefix if there is one
 * moment T, no earlier than the last point known to be in the bucket ({@link #durable}), such that every block of
 * every volume holds its value at T (or, for the change at T itself, which may be half applied, its value just
 * after). Per-block value lists and interval intersection keep the check linear in the history.
 */
final class PrefixHistory {
    /** A value a block (or a volume's existence: its block count, -1 absent) took at a moment. */
    private record Change(long ts, long value) {}

    private final Map<String, List<Change>> existence = new TreeMap<>();
    private final Map<String, List<List<Change>>> blocks = new HashMap<>();
    private final Map<String, byte[]> seen = new HashMap<>();
    private long now;
    private long floor;

    /** Starts over from the model as it is (after a crash adopted what the pool held). */
    void reset(DiskModel model) {
        existence.clear();
        blocks.clear();
        seen.clear();
        now++;
        for (String name : model.volumes.keySet()) observe(model, name);
        floor = now;
    }

    /**
     * A restart after a crash adopted what the pool recovered: the history goes on from it, and the floor stays, since
     * the bucket may still hold an older moment (a restart serves at once and uploads its backlog in the background).
     * Moments between the floor and now include ones with writes the crash lost; the check is only weaker for them.
     */
    void restarted(DiskModel model) {
        java.util.Set<String> names = new java.util.TreeSet<>(existence.keySet());
        names.addAll(model.volumes.keySet());
        for (String name : names) observe(model, name);
    }

    /** Everything so far is in the bucket (FLUSH with --sync-to-backend, a clean close, a takeover's open). */
    void durable() { floor = now; }

    /** The model changed volume {@code name} (created, written, deleted): record the blocks that changed. */
    void observe(DiskModel model, String name) {
        now++;
        DiskModel.Vol v = model.volumes.get(name);
        List<Change> ex = existence.computeIfAbsent(name, k -> new ArrayList<>(List.of(new Change(0, -1))));
        long count = v == null ? -1 : v.blocks();
        if (ex.get(ex.size() - 1).value() != count) ex.add(new Change(now, count));
        if (v == null) {
            seen.remove(name);
            return;
        }
        byte[] before = seen.get(name);
        if (before == null || before.length != v.current.length) before = null;
        List<List<Change>> per = blocks.computeIfAbsent(name, k -> new ArrayList<>());
        for (int b = 0; b < v.blocks(); b++) {
            int from = b * DiskModel.BS, to = from + DiskModel.BS;
            if (before != null && Arrays.equals(before, from, to, v.current, from, to)) continue;
            while (per.size() <= b) per.add(new ArrayList<>());
            per.get(b).add(new Change(now, hash(v.current, from)));
        }
        seen.put(name, v.current.clone());
    }

    private static long hash(byte[] a, int off) {
        long h = 1125899906842597L;
        for (int i = off; i < off + DiskModel.BS; i += 8) {
            long w = 0;
            for (int k = 0; k < 8; k++) w = (w << 8) | (a[i + k] & 0xff);
            h = 31 * h + w;
        }
        return h;
    }

    /** Fails unless the pool's volumes are the model's at one moment in [floor, now]. */
    void verifyPrefix(Pool pool, String what) {
        List<long[]> allowed = new ArrayList<>(List.of(new long[] {floor, now}));
        for (var e : existence.entrySet()) {
            String name = e.getKey();
            boolean present = pool.volumeNames().contains(name);
            long blocksNow = present ? pool.volume(name).orElseThrow().size() / DiskModel.BS : -1;
            allowed = intersect(allowed, when(e.getValue(), blocksNow));
            if (allowed.isEmpty()) fail(what + ": volume " + name + (present ? " with " + blocksNow + " blocks" : " absent") + " at no moment since " + floor);
            if (!present) continue;
            byte[] actual = DiskModel.readAll(pool, name, (int) blocksNow * DiskModel.BS);
            List<List<Change>> per = blocks.get(name);
            for (int b = 0; b < blocksNow; b++) {
                List<Change> changes = b < per.size() ? per.get(b) : List.of(); // every block changes when its volume is created
                long h = hash(actual, b * DiskModel.BS);
                allowed = intersect(allowed, when(changes, h));
                if (allowed.isEmpty()) fail(what + ": volume " + name + " block " + b + " holds a value it never had at a moment all other blocks agree on (since " + floor + ")");
            }
        }
    }

    /** Moments at which a block (or a volume's existence) held {@code value}: from each change to it through the next change. */
    private List<long[]> when(List<Change> changes, long value) {
        List<long[]> out = new ArrayList<>();
        for (int i = 0; i < changes.size(); i++) {
            if (changes.get(i).value() != value) continue;
            long end = i + 1 < changes.size() ? changes.get(i + 1).ts() : now;
            out.add(new long[] {changes.get(i).ts(), end});
        }
        return out;
    }

    /** The intersection of two sets of closed intervals, each sorted by start; the result is merged (disjoint, sorted). */
    private static List<long[]> intersect(List<long[]> a, List<long[]> b) {
        List<long[]> x = merge(a), y = merge(b), out = new ArrayList<>();
        int i = 0, j = 0;
        while (i < x.size() && j < y.size()) {
            long lo = Math.max(x.get(i)[0], y.get(j)[0]), hi = Math.min(x.get(i)[1], y.get(j)[1]);
            if (lo <= hi) out.add(new long[] {lo, hi});
            if (x.get(i)[1] < y.get(j)[1]) i++; else j++;
        }
        return out;
    }

    /** Sorted by start, overlapping and touching intervals joined. */
    private static List<long[]> merge(List<long[]> in) {
        List<long[]> sorted = new ArrayList<>(in);
        sorted.sort((p, q) -> Long.compare(p[0], q[0]));
        List<long[]> out = new ArrayList<>();
        for (long[] iv : sorted) {
            long[] last = out.isEmpty() ? null : out.get(out.size() - 1);
            if (last != null && iv[0] <= last[1]) last[1] = Math.max(last[1], iv[1]);
            else out.add(new long[] {iv[0], iv[1]});
        }
        return out;
    }
}
