package io.dedisk.pool;

/**
 * One line of `dedisk volume list` / `snapshot list`: a volume, snapshot or clone, what it was derived from
 * ({@code parent}: the volume a snapshot was taken of, the snapshot a clone was made from; null for none, "-" when
 * that one was deleted since), and {@code aloneBytes}: what deleting it would give back — the stored bytes of the
 * chunks referenced only through leaves no other tree holds, plus the metadata pages only it holds.
 */
public record VolumeInfo(String name, long sizeBytes, long mappedBlocks, boolean snapshot, String parent, long aloneBytes) {
    public long logicalUsedBytes() { return mappedBlocks * Pool.BLOCK_SIZE; }
}
