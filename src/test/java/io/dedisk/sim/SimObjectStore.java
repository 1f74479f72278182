package io.dedisk.sim;

import io.dedisk.store.ObjectStore;
import java.io.IOException;
import java.nio.file.NoSuchFileException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.TreeMap;
import java.util.HashMap;
import java.util.Map;

/**
 * The simulated twin of {@link ObjectStore}, seeded and deterministic: a sorted map of objects with the faults of
 * a real object store injected at given rates: plain errors (503 / timeouts), ambiguous outcomes (the put is
 * stored but the caller sees an error), lost conditional writes (412 although nothing was there — another
 * writer raced and won), and simulated latency counted in virtual milliseconds (no sleeping: runs stay fast and
 * replayable).
 */
public final class SimObjectStore implements ObjectStore {
    private final TreeMap<String, byte[]> objects = new TreeMap<>();
    private final Map<String, String> etags = new HashMap<>();
    private long nextEtag = 1;
    private final Random random;
    private double errorRate;
    private double ambiguousRate;
    private double lostConditionalRate;
    private long virtualMillis;

    public SimObjectStore(long seed) { random = new Random(seed); }

    public synchronized SimObjectStore errorRate(double r) { errorRate = r; return this; }
    public synchronized SimObjectStore ambiguousRate(double r) { ambiguousRate = r; return this; }
    public synchronized SimObjectStore lostConditionalRate(double r) { lostConditionalRate = r; return this; }

    /** Virtual time the requests so far would have taken (1–50 ms each). */
    public synchronized long virtualMillis() { return virtualMillis; }

    public synchronized boolean contains(String key) { return objects.containsKey(key); }

    private void request(String what) throws IOException {
        virtualMillis += 1 + random.nextInt(50);
        if (errorRate > 0 && random.nextDouble() < errorRate) throw new IOException("simulated 503 SlowDown on " + what);
    }

    private void ambiguous(String what) throws IOException {
        if (ambiguousRate > 0 && random.nextDouble() < ambiguousRate) throw new IOException("simulated timeout after " + what + " was stored");
    }

    private String store(String key, byte[] content) {
        objects.put(key, content.clone());
        String etag = "\"" + (nextEtag++) + "\"";
        etags.put(key, etag);
        return etag;
    }

    @Override
    public synchronized void put(String key, byte[] content) throws IOException {
        request("PUT " + key);
        store(key, content);
        ambiguous("PUT " + key);
    }

    @Override
    public synchronized String putIfAbsent(String key, byte[] content) throws IOException {
        request("PUT If-None-Match " + key);
        if (objects.containsKey(key)) throw new PreconditionFailedException(key, "it exists");
        if (lostConditionalRate > 0 && random.nextDouble() < lostConditionalRate) throw new PreconditionFailedException(key, "simulated lost race");
        String etag = store(key, content);
        ambiguous("PUT If-None-Match " + key);
        return etag;
    }

    @Override
    public synchronized String replaceIfMatch(String key, byte[] content, String etag) throws IOException {
        request("PUT If-Match " + key);
        String current = etags.get(key);
        if (current == null || !current.equals(etag)) throw new PreconditionFailedException(key, "expected ETag " + etag + ", found " + current);
        if (lostConditionalRate > 0 && random.nextDouble() < lostConditionalRate) throw new PreconditionFailedException(key, "simulated lost race");
        String next = store(key, content);
        ambiguous("PUT If-Match " + key);
        return next;
    }

    @Override
    public synchronized Versioned get(String key) throws IOException {
        request("GET " + key);
        byte[] o = objects.get(key);
        return o == null ? null : new Versioned(o.clone(), etags.get(key));
    }

    @Override
    public synchronized byte[] getRange(String key, long offset, int length) throws IOException {
        request("GET " + key);
        byte[] o = objects.get(key);
        if (o == null) throw new NoSuchFileException(key);
        if (offset >= o.length) return new byte[0];
        return Arrays.copyOfRange(o, (int) offset, (int) Math.min(o.length, offset + length));
    }

    @Override
    public synchronized List<Info> list(String prefix) throws IOException {
        request("LIST " + prefix);
        List<Info> out = new ArrayList<>();
        for (var e : objects.subMap(prefix, prefix + Character.MAX_VALUE).entrySet()) out.add(new Info(e.getKey(), e.getValue().length));
        return out;
    }

    @Override
    public synchronized void delete(String key) throws IOException {
        request("DELETE " + key);
        objects.remove(key);
        etags.remove(key);
    }
}
