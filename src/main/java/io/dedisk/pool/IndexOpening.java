package io.dedisk.pool;

import io.dedisk.DediskException.CorruptionException;
import io.dedisk.index.BlockName;
import io.dedisk.index.DedupIndex;
import io.dedisk.index.ExactIndex;
import io.dedisk.index.IndexConfig;
import io.dedisk.index.UdsIndex;
import io.dedisk.store.Fs;
import io.dedisk.store.NoSpaceLeftException;
import java.io.IOException;

/**
 * How a pool's dedup index opens: which index (the superblock's choice), what a damaged or unopenable one becomes
 * (its answers are only advice, so never a reason not to open the pool), and the exact index's rebuild from the
 * chunk table. Stateless; called once by the pool's constructor, before any other thread sees the pool.
 */
final class IndexOpening {
    private static final System.Logger LOG = System.getLogger("dedisk.pool");

    private IndexOpening() {}

    /**
     * Opens the dedup index. Read-only (`check`, offline `stats`): the UDS index is opened without writing a byte.
     * Writable: its answers are only advice, so an index whose header is damaged is discarded and started empty
     * (dedup restarts from nothing; no data is at risk, and with its files gone none of its advice, nor the chunk
     * ids it named, can come back). On a full disk, where the index cannot even open, the pool serves with an
     * in-memory index for this run; chunk ids then continue above every id the files may still advise.
     */
    static DedupIndex open(Fs fs, Superblock sb, boolean readOnly) throws IOException {
        if (sb.indexMemory() == 0) return new ExactIndex();
        IndexConfig config = new IndexConfig(sb.indexMemory(), sb.sparseIndex());
        if (readOnly) {
            try {
                return UdsIndex.openReadOnly(fs, Pool.INDEX_DIR, config);
            } catch (CorruptionException e) {
                LOG.log(System.Logger.Level.WARNING, "dedup index unreadable (advice lost, no data): {0}", e.getMessage());
                return new ExactIndex();
            }
        }
        try {
            return UdsIndex.open(fs, Pool.INDEX_DIR, config);
        } catch (CorruptionException e) {
            LOG.log(System.Logger.Level.ERROR, "dedup index discarded and started empty: {0}", e.getMessage());
            for (String f : fs.list(Pool.INDEX_DIR)) fs.delete(Pool.INDEX_DIR + "/" + f);
            fs.syncDir(Pool.INDEX_DIR);
            return UdsIndex.open(fs, Pool.INDEX_DIR, config);
        } catch (NoSpaceLeftException e) {
            long maxId = UdsIndex.verify(fs, Pool.INDEX_DIR, config).maxChunkId();
            LOG.log(System.Logger.Level.WARNING, "the disk is full: dedup index kept in memory for this run ({0})", e.getMessage());
            ExactIndex inMemory = new ExactIndex();
            inMemory.reserveIdsThrough(maxId);
            return inMemory;
        }
    }

    /** Names every live chunk into the exact index. A chunk that fails verification is left out (its reads fail). */
    static void rebuildExact(PoolState state, ReadPath reads, DedupIndex index) {
        byte[] block = new byte[Pool.BLOCK_SIZE];
        long[] corrupt = {0};
        state.chunks.forEachLive(loc -> {
            try {
                reads.readVerified(loc, block);
                index.insert(BlockName.of(block, 0, Pool.BLOCK_SIZE), loc.chunkId());
            } catch (CorruptionException e) {
                corrupt[0]++;
                LOG.log(System.Logger.Level.ERROR, "corrupt chunk found while opening (its blocks will read as I/O errors): {0}", e.getMessage());
            }
        });
        if (corrupt[0] > 0) LOG.log(System.Logger.Level.ERROR, "{0} corrupt chunks; run ''dedisk check'' for the affected volumes and LBAs", corrupt[0]);
    }
}
