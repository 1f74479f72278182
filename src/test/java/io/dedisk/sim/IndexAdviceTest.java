package io.dedisk.sim;

import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.pool.Pool;
import io.dedisk.pool.PoolChecker;
import java.nio.ByteBuffer;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The UDS index keeps its advice across crashes: what it held at the checkpoint, and what the replayed log names. */
class IndexAdviceTest {
    static final int BS = DiskModel.BS;

    @Test
    void noDedupAdviceIsLostToACrash() throws Exception {
        for (boolean machine : new boolean[] {false, true}) {
            SimFs fs = new SimFs(machine ? 21 : 20);
            Pool.create(fs, new Pool.Options(1 << 20, 1L << 30, 16 << 20, false));
            byte[] data = new byte[600 * BS];
            new Random(22).nextBytes(data);
            Pool p = Pool.open(fs, Runnable::run);
            p.createVolume("a", 600L * BS);
            p.createVolume("b", 600L * BS);
            p.volume("a").orElseThrow().write(0, ByteBuffer.wrap(data, 0, 300 * BS), false);
            p.checkpoint(); // the index's open chapter becomes durable with the root
            p.volume("a").orElseThrow().write(300L * BS, ByteBuffer.wrap(data, 300 * BS, 300 * BS), true); // after it: in the log only
            long chunks = p.stats().liveChunks();
            assertEquals(600, chunks);
            Pool q = Pool.open(machine ? fs.machineCrash(23) : fs.restartProcess(), Runnable::run); // kill -9 / power loss
            q.volume("b").orElseThrow().write(0, ByteBuffer.wrap(data), true);
            assertEquals(chunks, q.stats().liveChunks(), (machine ? "machine" : "process") + " crash: every block of b is a dedup hit, none stored again");
            assertEquals(600, q.stats().index().hits());
            assertTrue(PoolChecker.check(q).ok(), PoolChecker.check(q).toText());
            q.close();
        }
    }
}
