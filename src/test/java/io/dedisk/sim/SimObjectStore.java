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
 * replayable). Also: listing lag (the newest puts are not listed yet, though readable), faults for keys with a given
 * prefix only, a kill switch (the store is unreachable: every request fails) and a process crash at the k-th
 * mutating request ({@link SimFs.SimulatedCrash}, thrown after the request took effect when it is a put: a crash
 * between the store's answer and the caller's next step).
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
    private int listingLag;
    private final java.util.ArrayDeque<String> recentPuts = new java.util.ArrayDeque<>();
    private String faultPrefix = "";
    private boolean down;
    private long mutations;
    private long crashAt = Long.MAX_VALUE;
    private long requests;
    private long deletes;

    public SimObjectStore(long seed) { random = new Random(seed); }

    public synchronized SimObjectStore errorRate(double r) { errorRate = r; return this; }
    public synchronized SimObjectStore ambiguousRate(double r) { ambiguousRate = r; return this; }
    public synchronized SimObjectStore lostConditionalRate(double r) { lostConditionalRate = r; return this; }

    /** The last {@code puts} objects stored are left out of listings (they are readable by key). */
    public synchronized SimObjectStore listingLag(int puts) { listingLag = puts; return this; }

    /** The error, ambiguous and lost-conditional rates apply only to keys starting with {@code prefix}. */
    public synchronized SimObjectStore faultsOnlyFor(String prefix) { faultPrefix = prefix; return this; }

    /** The kill switch: while down, every request fails (connection refused). */
    public synchronized SimObjectStore down(boolean isDown) { down = isDown; return this; }

    /** The process crashes at the k-th put, conditional put or delete from now (1-based). */
    public synchronized SimObjectStore crashAfter(long k) { crashAt = mutations + k; return this; }

    /** A new process after a crash: the store itself lost nothing. */
    public synchronized SimObjectStore restartProcess() { crashAt = Long.MAX_VALUE; return this; }

    /** Requests served so far (tests assert a read-only open made no mutating one: see {@link #mutations}). */
    public synchronized long requests() { return requests; }

    /** Objects deleted so far (deletions of a missing object included). */
    public synchronized long deletes() { return deletes; }

    /** Puts, conditional puts and deletes attempted so far. */
    public synchronized long mutations() { return mutations; }

    /** Every object and its bytes (tests compare bucket states). */
    public synchronized java.util.SortedMap<String, byte[]> snapshot() {
        java.util.TreeMap<String, byte[]> out = new java.util.TreeMap<>();
        objects.forEach((k, v) -> out.put(k, v.clone()));
        return out;
    }

    /** Removes an object behind the pool's back (tests). */
    public synchronized void remove(String key) {
        objects.remove(key);
        etags.remove(key);
    }

    /** Virtual time the requests so far would have taken (1–50 ms each). */
    public synchronized long virtualMillis() { return virtualMillis; }

    public synchronized boolean contains(String key) { return objects.containsKey(key); }

    private void request(String what, String key) throws IOException {
        requests++;
        virtualMillis += 1 + random.nextInt(50);
        if (down) throw new java.net.ConnectException("simulated: the object store is unreachable (" + what + ")");
        if (errorRate > 0 && key.startsWith(faultPrefix) && random.nextDouble() < errorRate) throw new IOException("simulated 503 SlowDown on " + what);
    }

    private void mutation(String what, String key) throws IOException {
        mutations++;
        if (mutations > crashAt) throw new SimFs.SimulatedCrash(mutations);
        request(what, key);
    }

    /** After a put took effect: the crash armed for it, else maybe an ambiguous outcome. */
    private void ambiguous(String what, String key) throws IOException {
        if (mutations == crashAt) throw new SimFs.SimulatedCrash(mutations);
        if (ambiguousRate > 0 && key.startsWith(faultPrefix) && random.nextDouble() < ambiguousRate) throw new IOException("simulated timeout after " + what + " was stored");
    }

    private boolean lostRace(String key) {
        return lostConditionalRate > 0 && key.startsWith(faultPrefix) && random.nextDouble() < lostConditionalRate;
    }

    private String store(String key, byte[] content) {
        recentPuts.remove(key);
        recentPuts.addLast(key);
        while (recentPuts.size() > listingLag) recentPuts.removeFirst();
        objects.put(key, content.clone());
        String etag = "\"" + (nextEtag++) + "\"";
        etags.put(key, etag);
        return etag;
    }

    @Override
    public synchronized void put(String key, byte[] content) throws IOException {
        mutation("PUT " + key, key);
        store(key, content);
        ambiguous("PUT " + key, key);
    }

    @Override
    public synchronized String putIfAbsent(String key, byte[] content) throws IOException {
        mutation("PUT If-None-Match " + key, key);
        if (objects.containsKey(key)) throw new PreconditionFailedException(key, "it exists");
        if (lostRace(key)) throw new PreconditionFailedException(key, "simulated lost race");
        String etag = store(key, content);
        ambiguous("PUT If-None-Match " + key, key);
        return etag;
    }

    @Override
    public synchronized String replaceIfMatch(String key, byte[] content, String etag) throws IOException {
        mutation("PUT If-Match " + key, key);
        String current = etags.get(key);
        if (current == null || !current.equals(etag)) throw new PreconditionFailedException(key, "expected ETag " + etag + ", found " + current);
        if (lostRace(key)) throw new PreconditionFailedException(key, "simulated lost race");
        String next = store(key, content);
        ambiguous("PUT If-Match " + key, key);
        return next;
    }

    @Override
    public synchronized Versioned get(String key) throws IOException {
        request("GET " + key, key);
        byte[] o = objects.get(key);
        return o == null ? null : new Versioned(o.clone(), etags.get(key));
    }

    @Override
    public synchronized byte[] getRange(String key, long offset, int length) throws IOException {
        request("GET " + key, key);
        byte[] o = objects.get(key);
        if (o == null) throw new NoSuchFileException(key);
        if (offset >= o.length) return new byte[0];
        return Arrays.copyOfRange(o, (int) offset, (int) Math.min(o.length, offset + length));
    }

    @Override
    public synchronized List<Info> list(String prefix) throws IOException {
        request("LIST " + prefix, prefix);
        List<Info> out = new ArrayList<>();
        for (var e : objects.subMap(prefix, prefix + Character.MAX_VALUE).entrySet()) {
            if (!recentPuts.contains(e.getKey())) out.add(new Info(e.getKey(), e.getValue().length));
        }
        return out;
    }

    @Override
    public synchronized void delete(String key) throws IOException {
        mutation("DELETE " + key, key);
        recentPuts.remove(key);
        objects.remove(key);
        etags.remove(key);
        deletes++;
        if (mutations == crashAt) throw new SimFs.SimulatedCrash(mutations);
    }
}
