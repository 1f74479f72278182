package io.dedisk.store;

import java.io.IOException;
import java.util.Arrays;
import java.util.List;

/**
 * The one layer that retries bucket requests (SlateDB's retrying object store): every call of the store it wraps is
 * tried as its {@link Retry} policy says, and the store below tries each request once ({@link S3ObjectStore}; the
 * simulated twin). A 412, a missing object, a refusal (403, a missing bucket: {@link RequestRefusedException}) are
 * answers and pass through at once; any other IOException is a failure worth another attempt.
 *
 * <b>Ambiguity rule</b>, here once for every store and caller: a conditional write that gets 412 while the object holds
 * exactly the bytes being written succeeds, with that object's ETag. The 412 is then our own write: an earlier attempt
 * of this call that was stored but reported failed (a lost response, a timeout), or the same write made before a crash
 * (a segment upload redone after a restart). Sound because every conditional payload dedisk writes is unique to its
 * writer (segments are named by sequence and fenced by epoch; the manifest carries its writer's epoch and owner), so
 * equal bytes cannot be another writer's.
 *
 * Threads: as the store it wraps (thread-safe).
 */
final class RetryingObjectStore implements ObjectStore {
    private final ObjectStore store;
    private final Retry retry;

    RetryingObjectStore(ObjectStore store, Retry retry) {
        this.store = store;
        this.retry = retry;
    }

    @Override
    public void put(String key, byte[] content) throws IOException { retry.run("PUT " + key, n -> { store.put(key, content); return null; }); }

    @Override
    public String putIfAbsent(String key, byte[] content) throws IOException {
        return retry.run("PUT If-None-Match " + key, n -> ownWrite(key, content, () -> store.putIfAbsent(key, content)));
    }

    @Override
    public String replaceIfMatch(String key, byte[] content, String etag) throws IOException {
        return retry.run("PUT If-Match " + key, n -> ownWrite(key, content, () -> store.replaceIfMatch(key, content, etag)));
    }

    private interface Write {
        String run() throws IOException;
    }

    /** The write's ETag; on 412, the stored object's if it holds exactly {@code content} (see the class comment). */
    private String ownWrite(String key, byte[] content, Write write) throws IOException {
        try {
            return write.run();
        } catch (PreconditionFailedException lost) {
            Versioned there = store.get(key);
            if (there != null && Arrays.equals(there.content(), content)) return there.etag();
            throw lost;
        }
    }

    @Override
    public Versioned get(String key) throws IOException { return retry.run("GET " + key, n -> store.get(key)); }

    @Override
    public byte[] getRange(String key, long offset, int length) throws IOException { return retry.run("GET " + key, n -> store.getRange(key, offset, length)); }

    @Override
    public List<Info> list(String prefix) throws IOException { return retry.run("LIST " + prefix, n -> store.list(prefix)); }

    @Override
    public void delete(String key) throws IOException { retry.run("DELETE " + key, n -> { store.delete(key); return null; }); }

    @Override
    public void close() throws IOException { store.close(); }
}
