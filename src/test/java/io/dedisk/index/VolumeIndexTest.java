package io.dedisk.index;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class VolumeIndexTest {
    static BlockName random(SplittableRandom r) { return new BlockName(r.nextLong(), r.nextLong(), r.nextLong(), r.nextLong()); }

    /** All candidates of a name, newest first, as the index walks them. */
    static List<Long> candidates(VolumeIndex t, BlockName n, long open) {
        List<Long> list = new ArrayList<>();
        for (long c = t.newestCandidate(n, open, Long.MAX_VALUE); c >= 0; c = t.newestCandidate(n, open, c)) list.add(c);
        return list;
    }

    @Test
    void fillsToItsCapacityWithoutDroppingAndFindsEveryEntry() {
        int window = 64, perChapter = 1000;
        VolumeIndex t = new VolumeIndex((long) window * perChapter, window);
        SplittableRandom r = new SplittableRandom(1);
        List<BlockName> names = new ArrayList<>();
        long open = 0;
        // Three windows' worth: dead entries must make room for new ones.
        for (int chapter = 0; chapter < 3 * window; chapter++) {
            open = chapter + 1;
            for (int i = 0; i < perChapter; i++) {
                BlockName n = random(r);
                assertTrue(t.put(n, chapter, open));
                if (chapter >= 2 * window) names.add(n);
            }
            t.sweep(open);
        }
        assertEquals(0, t.dropped());
        for (int i = 0; i < names.size(); i++) {
            long chapter = 2 * window + i / perChapter;
            assertTrue(candidates(t, names.get(i), open).contains(chapter), "name " + i + " in chapter " + chapter);
        }
        long falseCandidates = 0;
        for (int i = 0; i < 100_000; i++) if (t.newestCandidate(random(r), open, Long.MAX_VALUE) >= 0) falseCandidates++;
        assertTrue(falseCandidates < 1000, "fingerprint collisions on misses: " + falseCandidates + " of 100000");
    }

    @Test
    void entriesExpireAndNeverComeBackAfterTheChapterNumbersWrap() {
        int window = 8;
        VolumeIndex t = new VolumeIndex(1000, window);
        BlockName n = random(new SplittableRandom(2));
        t.put(n, 0, 1);
        assertEquals(List.of(0L), candidates(t, n, 1));
        assertEquals(List.of(0L), candidates(t, n, 1 + window - 1));
        assertEquals(List.of(), candidates(t, n, 1 + window), "aged out of the window");
        // Run the chapter numbers round many times: the sweep clears the dead entry before its age wraps.
        for (long open = 2; open < 20 * (1L << t.chapterBits); open++) {
            t.sweep(open);
            assertEquals(open - 1 < window ? List.of(0L) : List.of(), candidates(t, n, open), "open chapter " + open);
        }
    }

    @Test
    void candidatesComeNewestFirst() {
        VolumeIndex t = new VolumeIndex(1000, 16);
        BlockName n = random(new SplittableRandom(3));
        for (long c : new long[] {3, 9, 5}) t.put(n, c, 10);
        assertEquals(List.of(9L, 5L, 3L), candidates(t, n, 10));
        assertEquals(List.of(5L, 3L), candidates(t, n, 10).subList(1, 3));
        assertEquals(List.of(9L, 5L), candidates(t, n, 20), "3 has aged out at open chapter 20 (window 16)");
        assertEquals(List.of(9L), candidates(t, n, 22));
    }

    @Test
    void moveKeepsOneEntryPerNameAndLeavesTwinsAlone() {
        VolumeIndex t = new VolumeIndex(1000, 100);
        BlockName hot = new BlockName(1, 2, 3, 4);
        BlockName twin = new BlockName(5, 2, 3, 6); // the same bucket and fingerprint bits
        t.put(hot, 0, 1);
        t.put(twin, 0, 1);
        for (long c = 1; c < 90; c++) {
            assertTrue(t.move(hot, c - 1, c, c + 1));
            t.sweep(c + 1);
        }
        assertEquals(List.of(89L, 0L), candidates(t, hot, 90), "hot moved along; its twin's entry stayed in chapter 0");
        assertFalse(t.move(hot, 50, 90, 91), "no entry for chapter 50 to move");
        for (long c = 1; c < 90; c++) t.putReplayed(hot, 89 - c, 90);
        assertEquals(2, candidates(t, hot, 90).size(), "a replay adds no entry beyond two per fingerprint and bucket pair");
    }
}
