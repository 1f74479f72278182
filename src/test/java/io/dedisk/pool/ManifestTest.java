package io.dedisk.pool;

import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.DediskException.CorruptionException;
import io.dedisk.util.Crc;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.UUID;
import org.junit.jupiter.api.Test;

/** The manifest's encoding (version 3), the version 2 it still reads, and the takeover grace rule. */
class ManifestTest {
    static final UUID POOL = new UUID(1, 2), OWNER = new UUID(3, 4);

    @Test
    void roundTripsAndRefusesDamage() {
        Manifest m = new Manifest(POOL, 7, new Manifest.RootRef(5L << 32 | 100, 300, 0x1234), Manifest.RootRef.NONE, true, OWNER, 9, 1000);
        byte[] bytes = m.encode();
        assertEquals(Manifest.SIZE, bytes.length);
        assertEquals(m, Manifest.decode(bytes, POOL));
        assertThrows(CorruptionException.class, () -> Manifest.decode(bytes, new UUID(9, 9)), "another pool's manifest");
        byte[] flipped = bytes.clone();
        flipped[50] ^= 1;
        assertThrows(CorruptionException.class, () -> Manifest.decode(flipped, POOL), "a bit flip fails the CRC");
        byte[] flags = bytes.clone();
        ByteBuffer.wrap(flags).order(ByteOrder.LITTLE_ENDIAN).putInt(12, 2).putInt(108, 0);
        ByteBuffer.wrap(flags).order(ByteOrder.LITTLE_ENDIAN).putInt(108, Crc.of(flags, 0, 108));
        assertThrows(CorruptionException.class, () -> Manifest.decode(flags, POOL), "unknown flags are refused");
    }

    @Test
    void aVersion2ManifestReadsAsAPoolNobodyHolds() {
        ByteBuffer b = ByteBuffer.allocate(80).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(Manifest.MAGIC).putInt(2).putInt(0).putLong(1).putLong(2).putLong(4);
        b.putLong(3L << 32 | 64).putInt(200).putInt(0xabc).putLong(0).putInt(0).putInt(0).putInt(0);
        b.putInt(Crc.of(b.array(), 0, 76));
        Manifest m = Manifest.decode(b.array(), POOL);
        assertEquals(4, m.epoch());
        assertEquals(new Manifest.RootRef(3L << 32 | 64, 200, 0xabc), m.newest());
        assertFalse(m.owned());
        assertEquals(Manifest.NO_OWNER, m.owner());
    }

    @Test
    void segmentsBeforeATakeoverWaitForTheGracePeriod() {
        Manifest taken = Manifest.initial(POOL).claimedBy(OWNER, 10, 1_000_000, true);
        assertTrue(taken.owned() && taken.epoch() == 1 && taken.owner().equals(OWNER));
        long grace = io.dedisk.store.ObjectBackend.Options.DEFAULT_TAKEOVER_GRACE_MILLIS;
        assertFalse(taken.deletable(10, 1_000_000 + grace - 1, grace), "the fence segment and those before it wait");
        assertTrue(taken.deletable(11, 1_000_000, grace), "segments after the fence do not");
        assertTrue(taken.deletable(3, 1_000_000 + grace, grace), "after the grace period, all may go");
        Manifest reopened = taken.closed().claimedBy(OWNER, 20, 2_000_000, false);
        assertEquals(10, reopened.fenceSegment(), "a reopen that takes nothing over keeps the last takeover's fence");
        assertFalse(reopened.closed().owned());
    }
}
