package io.dedisk.pool;

import io.dedisk.DediskException.InvalidRequestException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.function.Supplier;

/**
 * The pool's volume-level changes: create, delete, resize and rename a volume, each one log record
 * (VOLUME_CREATE, VOLUME_DELETE, VOLUME_RESIZE, VOLUME_RENAME; docs/format.md) that is durable when the call returns,
 * and the rules for names and sizes. {@link Snapshots} makes its records (snapshot, clone, rollback) through the
 * same {@link #mutateDurably}. Applying a record changes {@link PoolState} (see its apply methods).
 *
 * Threads: any; each change takes the pool's metadata write lock for its check, append and apply, then syncs
 * the log outside it. Invariant: a change is checked against the state under the same lock hold that appends it,
 * so two racing changes cannot both pass a check only one of them may pass (e.g. two creates of one name).
 */
final class VolumeCatalog {
    private final Pool pool;

    VolumeCatalog(Pool pool) { this.pool = pool; }

    static void validateName(String name) {
        if (name == null || name.isEmpty() || name.length() > 128 || !name.matches("[A-Za-z0-9][A-Za-z0-9._-]*")) {
            throw new InvalidRequestException("invalid volume name '" + name + "': expected 1-128 characters of letters, digits, '.', '_' or '-', starting with a letter or digit");
        }
    }

    static void validateSize(long size) {
        if (size <= 0 || size % Pool.BLOCK_SIZE != 0) {
            throw new InvalidRequestException("invalid volume size " + size + ": expected a positive multiple of " + Pool.BLOCK_SIZE + " bytes");
        }
        if (size > (8L << 50)) throw new InvalidRequestException("volume size " + size + " is larger than dedisk supports (8 PiB)");
    }

    void create(String name, long size) {
        validateName(name);
        validateSize(size);
        byte[] nameBytes = name.getBytes(StandardCharsets.UTF_8);
        mutateDurably(() -> {
            if (pool.state.volumesByName.containsKey(name)) throw new InvalidRequestException("volume '" + name + "' already exists");
            ByteBuffer rec = LogRecord.newBuffer(14 + nameBytes.length);
            rec.putInt(pool.state.nextVolumeId).putLong(size).putShort((short) nameBytes.length).put(nameBytes);
            return new PendingRecord(rec, LogRecord.VOLUME_CREATE);
        });
    }

    void delete(String name) {
        mutateDurably(() -> {
            VolumeState v = existing(name);
            ByteBuffer rec = LogRecord.newBuffer(4);
            rec.putInt(v.id);
            return new PendingRecord(rec, LogRecord.VOLUME_DELETE);
        });
    }

    void resize(String name, long size) {
        validateSize(size);
        mutateDurably(() -> {
            VolumeState v = existing(name);
            Snapshots.checkWritable(v);
            ByteBuffer rec = LogRecord.newBuffer(12);
            rec.putInt(v.id).putLong(size);
            return new PendingRecord(rec, LogRecord.VOLUME_RESIZE);
        });
    }

    void rename(String from, String to) {
        validateName(to);
        byte[] fromBytes = from.getBytes(StandardCharsets.UTF_8);
        byte[] toBytes = to.getBytes(StandardCharsets.UTF_8);
        mutateDurably(() -> {
            VolumeState v = existing(from);
            // A snapshot's name is VOLUME@SNAP: renaming either side would break that tie, so neither is renamed.
            if (v.snapshot) throw new InvalidRequestException("cannot rename '" + from + "': it is a snapshot (snapshots keep their volume's name)");
            for (String other : pool.state.volumesByName.keySet()) {
                if (other.startsWith(from + "@")) throw new InvalidRequestException("cannot rename volume '" + from + "': it has snapshots (" + other + "); delete them first");
            }
            if (pool.state.volumesByName.containsKey(to)) throw new InvalidRequestException("cannot rename volume '" + from + "' to '" + to + "': a volume named '" + to + "' exists");
            ByteBuffer rec = LogRecord.newBuffer(8 + fromBytes.length + toBytes.length);
            rec.putInt(v.id).putShort((short) fromBytes.length).put(fromBytes).putShort((short) toBytes.length).put(toBytes);
            return new PendingRecord(rec, LogRecord.VOLUME_RENAME);
        });
    }

    /** The volume named {@code name} (metadata lock held), or misuse naming the volumes there are. */
    VolumeState existing(String name) {
        VolumeState v = pool.state.volumesByName.get(name);
        if (v == null) throw new InvalidRequestException("no volume named '" + name + "' (volumes: " + String.join(", ", pool.state.volumesByName.keySet()) + ")");
        return v;
    }

    /** A record a volume-level change appends: payload in a record buffer (header space reserved) and its type. */
    record PendingRecord(ByteBuffer record, int type) {}

    /** Checks, appends and applies the record {@code build} returns under the write lock, then syncs: durable on return. */
    void mutateDurably(Supplier<PendingRecord> build) {
        pool.meta.writeLock().lock();
        try {
            pool.checkWritable();
            PendingRecord p = build.get();
            pool.appendAndApply(p.record(), p.type(), p.record().position() - LogRecord.HEADER_SIZE);
        } finally { pool.meta.writeLock().unlock(); }
        pool.syncLog();
        pool.afterMutation();
    }
}
