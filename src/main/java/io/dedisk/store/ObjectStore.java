package io.dedisk.store;

import java.io.IOException;
import java.util.List;

/**
 * The object store as dedisk uses it for pools in a bucket (DESIGN.md §4): immutable objects (sealed segments,
 * the superblock) that are put once, read by range, listed and deleted, and one object replaced in place only by
 * a conditional write (the manifest: fencing, SlateDB-style). Keys are relative to the pool's prefix.
 *
 * Implementations: {@code S3ObjectStore} (AWS SDK v2; S3 and S3-compatible servers) and the simulated twin
 * (tests: SimObjectStore), which injects the faults of a real store: errors, latency, ambiguous outcomes (stored
 * but reported failed), 412s, listing lag.
 *
 * Errors: {@link PreconditionFailedException} for a lost condition (HTTP 412), {@link java.nio.file.NoSuchFileException}
 * for a missing object, any other IOException for a failed or ambiguous request (the caller may retry: every put
 * of an immutable object writes the same bytes under the same key).
 * Threads: implementations are thread-safe.
 */
public interface ObjectStore extends AutoCloseable {
    /** An object as listed: its key and size in bytes. */
    record Info(String key, long size) {}

    /** An object's bytes and the entity tag (ETag) a conditional replace names. */
    record Versioned(byte[] content, String etag) {}

    /** Stores the object, replacing any object of that key. May fail after storing it (an ambiguous outcome). */
    void put(String key, byte[] content) throws IOException;

    /** Stores the object only if no object has this key, and returns its ETag; else {@link PreconditionFailedException}. */
    String putIfAbsent(String key, byte[] content) throws IOException;

    /**
     * Replaces the object only if its current ETag is {@code etag} (If-Match), and returns the new ETag; else
     * (changed, or gone) {@link PreconditionFailedException}.
     */
    String replaceIfMatch(String key, byte[] content, String etag) throws IOException;

    /** The whole object with its ETag, or null when it does not exist. */
    Versioned get(String key) throws IOException;

    /** Bytes [offset, offset+length) of the object, fewer at its end; NoSuchFileException when it does not exist. */
    byte[] getRange(String key, long offset, int length) throws IOException;

    /** Objects whose keys start with prefix, sorted by key. */
    List<Info> list(String prefix) throws IOException;

    /** Deletes the object; deleting a missing object succeeds. */
    void delete(String key) throws IOException;

    @Override
    default void close() throws IOException { }

    /** A conditional write lost: the key exists (If-None-Match) or has another ETag (If-Match) — HTTP 412. */
    final class PreconditionFailedException extends IOException {
        private static final long serialVersionUID = 1L;
        public PreconditionFailedException(String key, String why) { super("conditional write of object " + key + " refused: " + why); }
    }
}
