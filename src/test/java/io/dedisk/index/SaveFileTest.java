package io.dedisk.index;

import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.DediskException.CorruptionException;
import io.dedisk.store.Fs;
import io.dedisk.store.LocalFs;
import io.dedisk.util.Crc;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The save file's size follows what the index holds; it round-trips exactly; any damage is detected. */
@Timeout(120)
class SaveFileTest {
    @TempDir Path tmp;

    Fs fs() { return new LocalFs(tmp); }

    static long size(Fs fs, String name) throws IOException {
        try (Fs.FileHandle h = fs.open(name, false)) {
            return h.size();
        }
    }

    /** What diskBytes must equal: the sizes of all files in the directory. */
    static long filesBytes(Fs fs, String dir) throws IOException {
        long total = 0;
        for (String f : fs.list(dir)) total += size(fs, dir + "/" + f);
        return total;
    }

    @Test
    void saveOfANearlyEmptyIndexIsSmall() throws IOException {
        Fs fs = fs();
        // The default configuration (128 MiB dense): the old format saved its tables whole, ≈ 123 MiB.
        IndexConfig config = IndexConfig.parse("128M", false);
        List<BlockName> names = UdsIndexTest.names(1, 7736); // the kill -9 workload's live chunks
        try (UdsIndex index = UdsIndex.open(fs, "index", config)) {
            index.save();
            long empty = size(fs, "index/" + SaveFile.FILE);
            assertTrue(empty < 1024, "the save of an empty index is " + empty + " bytes");
            for (int i = 0; i < names.size(); i++) index.insert(names.get(i), 1 + i);
            index.save();
            long save = size(fs, "index/" + SaveFile.FILE);
            assertTrue(save < (64 << 10) + 64L * index.entries(), "save of " + index.entries() + " entries is " + save + " bytes");
            assertEquals(filesBytes(fs, "index"), index.diskBytes());
        }
        try (UdsIndex index = UdsIndex.open(fs, "index", config)) {
            assertEquals(0, index.rebuildRemaining());
            for (int i = 0; i < names.size(); i++) assertEquals(1 + i, index.lookup(names.get(i)));
        }
    }

    @Test
    void saveWithClosedChaptersStaysProportionalToTheEntries() throws IOException {
        Fs fs = fs();
        IndexConfig config = IndexConfig.parse("16M", false);
        long tableBytes;
        try (UdsIndex index = UdsIndex.open(fs, "index", config)) {
            int c = index.geometry().chapterRecords();
            tableBytes = VolumeIndex.bytesFor(index.geometry().fullTableEntries(), index.geometry().denseChapters());
            List<BlockName> names = UdsIndexTest.names(2, 10 * c + 100);
            for (int i = 0; i < names.size(); i++) index.insert(names.get(i), 1 + i);
            index.save();
            long save = size(fs, "index/" + SaveFile.FILE);
            assertEquals(10L * c + 100, index.entries());
            // Volume index entries ≈ 6 B, open records ≈ 36 B, chapter summaries ≈ 12 B each.
            assertTrue(save < (64 << 10) + 8L * index.entries(), "save of " + index.entries() + " entries is " + save + " bytes");
            assertTrue(save < tableBytes / 10, "save " + save + " against tables of " + tableBytes);
            assertEquals(filesBytes(fs, "index"), index.diskBytes());
        }
    }

    /** Every live entry comes back in its bucket, the sweep cursor too; the open chapter and summaries as saved. */
    @Test
    void roundTripIsExact() throws IOException {
        Fs fs = fs();
        for (boolean sparse : new boolean[] {false, true}) {
            Geometry g = sparse ? Geometry.sized(true, 40, 4, 256, 16, 3) : Geometry.sized(false, 16, 15, 256, 16, 0);
            String dir = "index-" + sparse;
            long[][][] before;
            long[] cursors;
            long entries, max;
            SplittableRandom r = new SplittableRandom(3);
            try (UdsIndex index = UdsIndex.open(fs, dir, g)) {
                // Three windows' worth with refreshes: dead entries, moved entries, a full table, cuckoo kicks.
                List<BlockName> names = UdsIndexTest.names(4, (int) (3 * g.windowEntries()));
                for (int i = 0; i < names.size(); i++) {
                    index.insert(names.get(i), 1 + i);
                    if (i > 1000 && r.nextInt(4) == 0) {
                        int j = i - 1 - r.nextInt(1000);
                        index.insert(names.get(j), 1 + j);
                    }
                }
                before = snapshot(index);
                cursors = Arrays.stream(index.tables()).mapToLong(VolumeIndex::sweepCursor).toArray();
                entries = index.entries();
                max = index.maxChunkId();
                index.save();
            }
            try (UdsIndex index = UdsIndex.open(fs, dir, g)) {
                assertEquals(0, index.rebuildRemaining(), "loaded from the save");
                assertEquals(entries, index.entries());
                assertEquals(max, index.maxChunkId());
                assertArrayEquals(cursors, Arrays.stream(index.tables()).mapToLong(VolumeIndex::sweepCursor).toArray());
                long[][][] after = snapshot(index);
                for (int t = 0; t < before.length; t++) {
                    for (int b = 0; b < before[t].length; b++) assertArrayEquals(before[t][b], after[t][b], "table " + t + " bucket " + b);
                }
            }
        }
    }

    /** Each bucket's live entries, sorted (their slot order carries no meaning). */
    static long[][][] snapshot(UdsIndex index) {
        VolumeIndex[] tables = index.tables();
        long open = index.openChapterNumber();
        long[][][] out = new long[tables.length][][];
        for (int t = 0; t < tables.length; t++) {
            VolumeIndex v = tables[t];
            out[t] = new long[(int) v.buckets][];
            long[] values = new long[v.slotsPerBucket];
            for (int b = 0; b < v.buckets; b++) {
                int n = v.liveEntries(b, open, values);
                out[t][b] = Arrays.copyOf(values, n);
                Arrays.sort(out[t][b]);
            }
        }
        return out;
    }

    @Test
    void everyFlippedBitIsDetected() throws IOException {
        Fs fs = fs();
        Geometry g = Geometry.sized(false, 4, 3, 64, 16, 0);
        try (UdsIndex index = UdsIndex.open(fs, "index", g)) {
            List<BlockName> names = UdsIndexTest.names(5, 64 * 2 + 20);
            for (int i = 0; i < names.size(); i++) index.insert(names.get(i), 1 + i);
            index.save();
        }
        String name = "index/" + SaveFile.FILE;
        byte[] good = fs.readAll(name);
        IndexHeader header = IndexHeader.decode(fs.readAll("index/" + IndexHeader.FILE), "header");
        assertNotNull(load(fs, header, g), "the good save loads");
        SplittableRandom r = new SplittableRandom(6);
        for (int off = 0; off < good.length; off++) {
            byte[] bad = good.clone();
            bad[off] ^= (byte) (1 << r.nextInt(8));
            fs.writeAtomically(name, bad);
            int at = off;
            assertThrows(CorruptionException.class, () -> load(fs, header, g), "bit flipped at " + at);
        }
        fs.writeAtomically(name, Arrays.copyOf(good, good.length - 1));
        assertThrows(CorruptionException.class, () -> load(fs, header, g), "truncated");
    }

    private static SaveFile.Loaded load(Fs fs, IndexHeader header, Geometry g) throws IOException {
        VolumeIndex table = new VolumeIndex(g.fullTableEntries(), g.denseChapters());
        return SaveFile.load(fs, "index", header.indexId(), g, -1, new OpenChapter(g.chapterRecords()), new VolumeIndex[] {table});
    }

    @Test
    void anIndexOfAnotherFormatVersionIsRefusedWithAClearMessage() throws IOException {
        Fs fs = fs();
        IndexConfig config = IndexConfig.parse("16M", false);
        try (UdsIndex index = UdsIndex.open(fs, "index", config)) {
            index.save();
        }
        byte[] header = fs.readAll("index/" + IndexHeader.FILE);
        ByteBuffer b = ByteBuffer.wrap(header).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(8, 1);
        b.putInt(IndexHeader.SIZE - 4, Crc.of(header, 0, IndexHeader.SIZE - 4));
        fs.writeAtomically("index/" + IndexHeader.FILE, header);
        CorruptionException e = assertThrows(CorruptionException.class, () -> UdsIndex.open(fs, "index", config));
        assertTrue(e.getMessage().contains("index format version expected 2 (the only one this dedisk reads), found 1"), e.getMessage());
    }

    @Test
    void diskBytesFollowsEveryWriteAndDelete() throws IOException {
        Fs fs = fs();
        Geometry g = Geometry.sized(false, 4, 3, 64, 16, 0);
        List<BlockName> names = UdsIndexTest.names(7, 64 * 9 + 10);
        try (UdsIndex index = UdsIndex.open(fs, "index", g)) {
            assertEquals(filesBytes(fs, "index"), index.diskBytes());
            assertEquals(IndexHeader.SIZE, index.diskBytes());
            for (int i = 0; i < names.size(); i++) {
                index.insert(names.get(i), 1 + i);
                if (i % 64 == 63 || i == names.size() - 1) assertEquals(filesBytes(fs, "index"), index.diskBytes(), "after insert " + i);
            }
            index.save();
            assertEquals(filesBytes(fs, "index"), index.diskBytes());
            index.save();
            assertEquals(filesBytes(fs, "index"), index.diskBytes());
        }
        fs.writeAtomically("index/stray.tmp", new byte[1000]); // an interrupted write: deleted at open
        try (UdsIndex index = UdsIndex.open(fs, "index", g)) {
            assertFalse(fs.exists("index/stray.tmp"));
            assertEquals(filesBytes(fs, "index"), index.diskBytes());
        }
    }
}
