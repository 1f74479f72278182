package io.dedisk.store;

import java.io.IOException;
import java.util.List;

/**
 * The object store as dedisk will use it for pools that outgrow one machine (DESIGN.md §4): immutable objects
 * (sealed segments, checkpoints, index chapters) that are put once, read by range, listed and deleted, plus a
 * conditional put for fencing (a second writer loses with {@link PreconditionFailedException}, S3's 412).
 * The S3 implementation (AWS SDK v2) arrives with the S3 backend; the simulated twin (tests: SimObjectStore)
 * already injects its faults: errors, latency, ambiguous outcomes (stored but reported failed), lost
 * conditional writes.
 *
 * Threads: implementations are thread-safe.
 */
public interface ObjectStore {
    /** Stores the object, replacing any object of that key. May fail after storing it (an ambiguous outcome). */
    void put(String key, byte[] content) throws IOException;

    /** Stores the object only if no object has this key; else throws {@link PreconditionFailedException}. */
    void putIfAbsent(String key, byte[] content) throws IOException;

    /** Bytes [offset, offset+length) of the object, fewer at its end; NoSuchFileException when it does not exist. */
    byte[] getRange(String key, long offset, int length) throws IOException;

    /** Keys that start with prefix, sorted. */
    List<String> list(String prefix) throws IOException;

    /** Deletes the object; deleting a missing object succeeds. */
    void delete(String key) throws IOException;

    /** A conditional put lost: the key exists (HTTP 412). */
    final class PreconditionFailedException extends IOException {
        private static final long serialVersionUID = 1L;
        public PreconditionFailedException(String key) { super("object " + key + " already exists (precondition failed)"); }
    }
}
