package io.dedisk.pool;

import io.dedisk.DediskException.CorruptionException;
import io.dedisk.DediskException.InvalidRequestException;
import io.dedisk.DediskException.ReadOnlyException;
import io.dedisk.DediskException.StorageException;
import io.dedisk.store.Backend;
import io.dedisk.store.FencedException;
import io.dedisk.store.SharedBackend;
import java.io.IOException;
import java.util.UUID;
import java.util.function.Consumer;

/**
 * Who may write a pool in a bucket (DESIGN.md §4 "Ownership", SlateDB's fencing), and the log steps a bucket pool
 * adds to the directory pool's. A directory pool has none of this: its OS lock is the ownership, and every call here
 * returns at once for a backend that is not a {@link SharedBackend}.
 * <ol>
 *   <li>{@link #claim} (opening, before recovery): the cache directory's state counts only if the bucket's manifest
 *       names this cache as its owner (else another writer owned the pool since, and the cache is discarded). A
 *       manifest owned by another writer and not closed cleanly is refused unless --force (a takeover: that writer's
 *       un-uploaded writes are lost, and segments before the takeover are kept for a grace period, {@link
 *       Manifest#deletable}, since the fenced writer may still read them). The claim writes the manifest with the
 *       next epoch and this owner by a conditional write.</li>
 *   <li>{@link #fence} (after recovery): seals the log's tail — a new, empty segment if need be — and uploads it with
 *       put-if-absent. Every segment upload is put-if-absent, so a previous owner still running finds this segment
 *       where its next one would go, gets a 412 and is fenced; if this upload loses instead, another writer got there
 *       first and the open is retried. A restart of the owner itself (the same cache) does not wait for it: the
 *       cache's backlog and the fence upload in the background while the pool serves (the claim wrote to the bucket
 *       only roots the bucket holds; the cache's newer manifest is queued after its segments).</li>
 *   <li>While serving: the tail is sealed after every checkpoint (so the checkpoint's manifest can go up with its
 *       segment) and, with --sync-to-backend, on every FLUSH and FUA, which then wait for the upload.</li>
 *   <li>{@link #release} (clean close): seals the tail and writes the manifest with the owned flag cleared; the
 *       backend's close uploads both.</li>
 * </ol>
 * Threads: claim and fence run on the opening thread; the rest under the pool's rules (see each method).
 */
final class Ownership {
    private static final System.Logger LOG = System.getLogger("dedisk.ownership");
    /** A takeover whose fence segment is not known yet (before {@link #fence}): every segment predates it. */
    static final long FENCE_PENDING = Long.MAX_VALUE;

    private Ownership() {}

    /** Decides whose the pool is and takes it (see the class comment); read-only: decides only, writes nothing. */
    static void claim(Backend backend, UUID poolId, boolean readOnly) throws IOException {
        if (!(backend instanceof SharedBackend s)) return;
        Manifest stored = decode(s.storedManifest(), poolId, "the bucket's manifest");
        Manifest cached = decode(s.cachedManifest(), poolId, "the cache directory's manifest");
        boolean mine = stored != null && stored.owner().equals(s.ownerId());
        if (cached != null && !mine) {
            LOG.log(System.Logger.Level.WARNING, "the state of the cache directory is from epoch {0}; the bucket is at epoch {1} of another writer: the cache is discarded",
                    cached.epoch(), stored == null ? "none" : stored.epoch());
            s.discardCache();
            cached = null;
        }
        if (readOnly) return;
        boolean takeover = stored != null && stored.owned() && !mine;
        if (takeover && !s.force()) {
            throw new InvalidRequestException("the pool is held by another writer (owner " + stored.owner() + ", epoch " + stored.epoch()
                    + ") that has not closed it cleanly: it may still be running. If it is dead, take the pool over with --force; what it had not"
                    + " uploaded yet is then lost, and it is fenced should it still run");
        }
        if (takeover) {
            LOG.log(System.Logger.Level.WARNING, "TAKING OVER the pool from owner {0} (epoch {1}) with --force: its un-uploaded writes are lost;"
                    + " it is fenced (read-only) as soon as it next writes to the bucket", stored.owner(), stored.epoch());
        }
        Manifest base = cached != null ? cached : stored != null ? stored : Manifest.initial(poolId);
        long epoch = Math.max(base.epoch(), stored == null ? 0 : stored.epoch());
        Manifest at = new Manifest(poolId, epoch, base.newest(), base.previous(), base.owned(), base.owner(), base.fenceSegment(), base.takeoverMillis());
        Manifest next = at.claimedBy(s.ownerId(), FENCE_PENDING, System.currentTimeMillis(), takeover);
        // The bucket gets the epoch now but only roots it holds: the cache's newer roots may lie in segments that
        // still wait for upload, and go up in a manifest queued after them (so the pool serves while they upload).
        Manifest inStore = cached == null || stored == null ? next
                : new Manifest(poolId, next.epoch(), stored.newest(), stored.previous(), next.owned(), next.owner(), next.fenceSegment(), next.takeoverMillis());
        try {
            s.claim(inStore.encode(), next.encode());
        } catch (io.dedisk.store.ObjectStore.PreconditionFailedException e) {
            throw new InvalidRequestException("another writer changed the pool's manifest while this one was opening it (" + e.getMessage() + "); try again");
        }
        LOG.log(System.Logger.Level.INFO, "pool {0}: epoch {1} taken by owner {2}", poolId, next.epoch(), s.ownerId());
    }

    private static Manifest decode(byte[] bytes, UUID poolId, String what) {
        if (bytes == null) return null;
        try {
            return Manifest.decode(bytes, poolId);
        } catch (CorruptionException e) {
            throw new CorruptionException(what + ": " + e.getMessage(), e);
        }
    }

    /**
     * Fences previous owners (see the class comment) and tells the pool when this writer is fenced itself; returns the
     * manifest the checkpointer continues from (with the takeover's fence segment now known).
     */
    static Manifest fence(Backend backend, LogWriter log, Manifest manifest, Consumer<String> fenced) throws IOException {
        if (!(backend instanceof SharedBackend s)) return manifest;
        s.whenFenced(fenced);
        long seq = log.sealNow(true);
        // A restart of the pool's owner (this cache) has nobody to fence: no other writer took the pool since (the
        // bucket's manifest still names this cache), and the cache's lock excludes a second process on it. Its fence
        // segment uploads after its backlog, in the background. Any other open waits: a previous owner that may still
        // run elsewhere must be fenced before this one serves.
        boolean restart = manifest != null && s.storedManifest() != null
                && decode(s.storedManifest(), manifest.poolId(), "the bucket's manifest").owner().equals(s.ownerId());
        if (!restart) s.awaitStored(seq);
        if (manifest == null || manifest.fenceSegment() != FENCE_PENDING) return manifest;
        return new Manifest(manifest.poolId(), manifest.epoch(), manifest.newest(), manifest.previous(), manifest.owned(), manifest.owner(), seq, manifest.takeoverMillis());
    }

    /** After a checkpoint synced the log: seal the tail so the checkpoint's manifest can go up (no waiting). */
    static void afterCheckpointSync(Pool pool) {
        if (!(pool.backend instanceof SharedBackend) || pool.log == null) return;
        seal(pool);
    }

    /** FLUSH and FUA with --sync-to-backend: seal the tail and wait until it is in the bucket. */
    static void flushToBackend(Pool pool) {
        if (!(pool.backend instanceof SharedBackend s) || !s.syncToBackend() || pool.log == null) return;
        long seq = seal(pool);
        try {
            s.awaitStored(seq);
        } catch (FencedException e) {
            throw new ReadOnlyException("the pool is read-only: fenced: " + e.getMessage());
        } catch (IOException e) {
            // The data is safe in the cache directory and uploads go on: this FLUSH fails, the pool does not.
            throw new StorageException("flush: the bucket did not take segment " + seq + ": " + e.getMessage(), e);
        }
    }

    private static long seal(Pool pool) {
        pool.meta.writeLock().lock();
        try {
            return pool.log.sealNow(false);
        } catch (IOException e) {
            pool.enterReadOnly("sealing the log's tail failed (" + e + "); what reached the disk is unknown");
            throw new StorageException("sealing the log's tail failed: " + e, e);
        } finally {
            pool.meta.writeLock().unlock();
        }
    }

    /** A clean close of a bucket pool's writer, after its last checkpoint: seal, and the manifest no longer owned. */
    static void release(Pool pool) throws IOException {
        if (!(pool.backend instanceof SharedBackend) || pool.log == null) return;
        seal(pool);
        pool.checkpointer().writeClosedManifest();
    }

    /**
     * How long after a forced takeover the segments from before it are kept ({@link Manifest#deletable}); 0 for a
     * directory pool, which nobody takes over.
     */
    static long takeoverGraceMillis(Backend backend) { return backend instanceof SharedBackend s ? s.takeoverGraceMillis() : 0; }

    /** The un-uploaded backlog for stats, or null for a directory pool. */
    static SharedBackend.Backlog backlog(Backend backend) { return backend instanceof SharedBackend s ? s.backlog() : null; }

}
