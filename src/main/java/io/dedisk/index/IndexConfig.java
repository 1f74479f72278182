package io.dedisk.index;

import io.dedisk.DediskException.InvalidRequestException;
import io.dedisk.util.Sizes;

/**
 * What the operator chooses for the UDS-style index: how much memory it may hold and whether it is sparse.
 * Everything else (chapter size, chapter count, window) follows from these two through {@link Geometry#of}.
 * Fixed when the index is created; {@link UdsIndex#open} refuses a different configuration for an existing index.
 *
 * Invariant (checked here, so every IndexConfig in the program is valid): 16 MiB ≤ memoryBytes ≤ 1 TiB. The
 * lower bound is what one dense index needs for a useful geometry (≥ 4 Ki records per chapter in 1024
 * chapters); the upper one is the largest geometry whose chapter numbers still fit the compact entries.
 */
public record IndexConfig(long memoryBytes, boolean sparse) {
    public static final long MIN_MEMORY = 16L << 20;
    public static final long MAX_MEMORY = 1L << 40;

    public IndexConfig {
        if (memoryBytes < MIN_MEMORY || memoryBytes > MAX_MEMORY) {
            throw new InvalidRequestException("index memory must be between " + Sizes.format(MIN_MEMORY) + " and "
                    + Sizes.format(MAX_MEMORY) + " (e.g. 256M, 1G), found " + memoryBytes + " bytes");
        }
    }

    /** From the operator's words: "256M", "1G", ... */
    public static IndexConfig parse(String memory, boolean sparse) { return new IndexConfig(Sizes.parse(memory), sparse); }

    @Override
    public String toString() { return Sizes.format(memoryBytes) + (sparse ? " sparse" : " dense"); }
}
