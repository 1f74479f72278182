package io.dedisk.index;

import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;

class PageCacheTest {
    static byte[] page(int tag) {
        byte[] p = new byte[ChapterFile.PAGE];
        p[0] = (byte) tag;
        return p;
    }

    @Test
    void holdsAtMostItsCapacityAndGivesRecentlyUsedPagesASecondChance() {
        PageCache cache = new PageCache(3);
        for (int k = 0; k < 3; k++) cache.put(k, page(k));
        assertEquals(3 * PageCache.PAGE_COST, cache.memoryBytes());
        // A full lap clears every referenced bit, then the hand evicts page 0; page 1 stays.
        cache.put(3, page(3));
        assertNull(cache.get(0));
        assertEquals(1, cache.get(1)[0]);
        // Page 1 was just used: the next eviction passes it over and takes page 2.
        cache.put(4, page(4));
        assertNull(cache.get(2));
        assertEquals(1, cache.get(1)[0]);
        assertEquals(3, cache.get(3)[0]);
        assertEquals(4, cache.get(4)[0]);
        assertEquals(PageCache.bytesFor(3), cache.memoryBytes());
        cache.put(4, page(99));
        assertEquals(4, cache.get(4)[0], "a page already cached is kept");
    }
}
