package io.dedisk.store;

import java.io.IOException;
import java.util.UUID;
import java.util.function.Consumer;

/**
 * A backend other processes (on other hosts) can open too — an object store — so ownership is not an OS lock but an
 * epoch in the manifest taken by conditional write (DESIGN.md §4 "Ownership", SlateDB's fencing). The pool decides
 * ownership from the manifests this interface shows it ({@code io.dedisk.pool.Ownership}); the backend does the
 * conditional writes and reports a lost one.
 *
 * Two manifests exist: the one in the store (what every host sees) and the one this host's cache wrote last, which
 * may be ahead of the store (its upload waits for the segments its root lies in). {@link #readManifest} gives the
 * cached one unless {@link #discardCache} was called.
 *
 * Threads: as {@link Backend}; {@link #whenFenced}'s consumer runs on whichever thread found the fence.
 */
public interface SharedBackend extends Backend {
    /** This writer's identity (its cache directory's), written into the manifest it owns. */
    UUID ownerId();

    /** Whether opening may take the pool from an owner that did not close it (--force). */
    boolean force();

    /** How long after a forced takeover the segments before it are kept (the fenced writer may still read them). */
    long takeoverGraceMillis();

    /** Whether FLUSH waits for the store (--sync-to-backend) rather than for the local cache. */
    boolean syncToBackend();

    /** The store's manifest as found at open, or null. */
    byte[] storedManifest();

    /** The newest manifest this cache wrote, or null. */
    byte[] cachedManifest();

    /**
     * The cache belongs to an epoch another writer has superseded: its write-back segments and manifest are not
     * part of the pool any more and are dropped (read-only: only ignored), and the pool opens from the store.
     */
    void discardCache() throws IOException;

    /**
     * Takes the pool: replaces the store's manifest by {@code forStore} only if it is still the one found at open (or
     * creates it when there was none), and keeps {@code forCache} as the cached manifest; when the two differ (the
     * cache's roots are newer, in segments not uploaded yet), {@code forCache} is queued to go up after the cache's
     * sealed segments, which upload in the background. {@link ObjectStore.PreconditionFailedException} when another
     * writer changed the store's manifest meanwhile.
     */
    void claim(byte[] forStore, byte[] forCache) throws IOException;

    /** Returns once segments up to {@code seq} are in the store; {@link FencedException} when this writer lost the pool. */
    void awaitStored(long seq) throws IOException;

    /** Called once, with the reason, when this writer finds it has been fenced. */
    void whenFenced(Consumer<String> reason);

    /** What is sealed but not yet in the store. */
    Backlog backlog();

    /** Segments waiting for upload, their bytes, and how long the oldest has waited (-1: unknown, a read-only open). */
    record Backlog(long segments, long bytes, long oldestAgeMillis) {}
}
