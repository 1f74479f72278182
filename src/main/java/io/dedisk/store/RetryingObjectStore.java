package io.dedisk.store;

import java.io.IOException;
import java.nio.file.NoSuchFileException;
import java.util.List;

/**
 * An {@link ObjectStore} that retries failed requests whose repetition is harmless, with exponential backoff and
 * jitter (SlateDB's retrying object store): reads, listings, deletions and plain puts of immutable objects. The
 * conditional writes are not retried here: whether a 412 after a failed attempt is our own earlier write is for the
 * caller to decide ({@link UploadQueue} compares the object's bytes). A 412 and a missing object are answers, not
 * failures, and are never retried; nor is a {@link RequestRefusedException} (403, 400, a missing bucket).
 *
 * Threads: as the store it wraps (thread-safe).
 */
final class RetryingObjectStore implements ObjectStore {
    private final ObjectStore store;
    private final UploadQueue.Sleeper sleeper;

    RetryingObjectStore(ObjectStore store, UploadQueue.Sleeper sleeper) {
        this.store = store;
        this.sleeper = sleeper;
    }

    private interface Call<T> {
        T run() throws IOException;
    }

    private <T> T retried(String what, Call<T> call) throws IOException {
        for (int attempt = 1; ; attempt++) {
            try {
                return call.run();
            } catch (PreconditionFailedException | NoSuchFileException | RequestRefusedException answer) {
                throw answer; // an answer, or a refusal (403, missing bucket) no repetition changes
            } catch (IOException e) {
                if (attempt >= UploadQueue.ATTEMPTS) throw new IOException(what + " failed " + attempt + " times: " + e.getMessage(), e);
                UploadQueue.backoff(sleeper, attempt);
            }
        }
    }

    @Override
    public void put(String key, byte[] content) throws IOException { retried("PUT " + key, () -> { store.put(key, content); return null; }); }

    @Override
    public String putIfAbsent(String key, byte[] content) throws IOException { return store.putIfAbsent(key, content); }

    @Override
    public String replaceIfMatch(String key, byte[] content, String etag) throws IOException { return store.replaceIfMatch(key, content, etag); }

    @Override
    public Versioned get(String key) throws IOException { return retried("GET " + key, () -> store.get(key)); }

    @Override
    public byte[] getRange(String key, long offset, int length) throws IOException { return retried("GET " + key, () -> store.getRange(key, offset, length)); }

    @Override
    public List<Info> list(String prefix) throws IOException { return retried("LIST " + prefix, () -> store.list(prefix)); }

    @Override
    public void delete(String key) throws IOException { retried("DELETE " + key, () -> { store.delete(key); return null; }); }

    @Override
    public void close() throws IOException { store.close(); }
}
