package io.dedisk.pool;

import io.dedisk.util.Check;
import java.util.Map;
import java.util.TreeMap;

/**
 * The segment usage table: segment sequence -> live bytes (chunk bodies and metadata pages something still
 * references). Everything else in a segment (records already checkpointed, dead chunks, superseded pages) is
 * garbage: what the cleaner chooses victims by and reclaims. Stored inline in each checkpoint root (16 bytes a
 * segment), so it is never re-derived by walking the pool; `dedisk check` recomputes it.
 *
 * Threads: changed under the pool's metadata write lock; {@link #snapshot} under the read lock.
 * Invariants: no entry is negative; a segment absent from the table has 0 live bytes.
 */
final class UsageTable {
    private final TreeMap<Long, Long> live = new TreeMap<>();

    UsageTable(Map<Long, Long> initial) {
        for (var e : initial.entrySet()) if (e.getValue() != 0) live.put(e.getKey(), e.getValue());
    }

    void add(long segment, long bytes) {
        long v = live.getOrDefault(segment, 0L) + bytes;
        Check.that(v >= 0, "segment %d live bytes %d stay >= 0", segment, v);
        if (v == 0) live.remove(segment); else live.put(segment, v);
    }

    long live(long segment) { return live.getOrDefault(segment, 0L); }

    long totalLive() {
        long t = 0;
        for (long v : live.values()) t += v;
        return t;
    }

    TreeMap<Long, Long> snapshot() { return new TreeMap<>(live); }
}
