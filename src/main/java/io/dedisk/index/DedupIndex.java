package io.dedisk.index;

/**
 * The dedup index: block name -> chunk id, as advice. An answer may be stale (the chunk died) or, for lossy
 * indexes, missing; the pool checks that an advised chunk is live before sharing it, so wrong advice costs a
 * missed dedup and nothing else.
 *
 * Threads: called under the pool's metadata lock; implementations need no locking of their own.
 */
public interface DedupIndex {
    long NONE = -1;

    /** The chunk id last posted for this name, or {@link #NONE}. */
    long lookup(BlockName name);

    /** Posts (name -> chunkId), replacing an older entry for the name. */
    void insert(BlockName name, long chunkId);

    /** Entries held now. */
    long entries();

    /** Memory held by the index, in bytes (what it really holds, not a configured figure). */
    long memoryBytes();
}
