package io.gomem.heap;

import static io.gomem.heap.PageAllocTest.BASE;
import static io.gomem.heap.PageAllocTest.grow;
import static io.gomem.heap.PageAllocTest.pg;
import static io.gomem.heap.PageAllocTest.setup;
import static io.gomem.heap.PageAllocTest.used;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** {@link PageCache} and {@link PageAlloc#allocToCache} / {@link PageAlloc#flush}. */
class PageCacheTest {

    /** Bit mask of pages {@code [from, from+n)}. */
    static long bits(int from, int n) {
        return PallocBits.mask(from, n);
    }

    /** Fill cases: pages in use beforehand, then the expected block base and free mask. */
    static Stream<Arguments> fillCases() {
        return Stream.of(
                Arguments.of("fresh chunk: whole first block", List.of(), pg(0, 0), -1L),
                Arguments.of("first block partly used", List.of(used(pg(0, 0), 10), used(pg(0, 20), 1)), pg(0, 0),
                        ~(bits(0, 10) | bits(20, 1))),
                Arguments.of("first block full: second block", List.of(used(pg(0, 0), 64), used(pg(0, 70), 2)), pg(0, 64),
                        ~bits(6, 2)),
                Arguments.of("first chunk full: next chunk", List.of(used(pg(0, 0), 512 + 130)), pg(1, 128),
                        ~bits(0, 2)),
                Arguments.of("only the last page of the heap is free", List.of(used(pg(0, 0), 1023)), pg(1, 448),
                        bits(63, 1)));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("fillCases")
    void fill(String name, List<PageAllocTest.Used> used, long wantBase, long wantFree) {
        PageAlloc pa = setup(List.of(grow(BASE, 2)), used);
        long inUse = pa.inUsePages();
        long scav = pa.scavengedPages();
        PageCache c = new PageCache();
        pa.allocToCache(c);
        assertEquals(PageAlloc.hex(wantBase), PageAlloc.hex(c.base()));
        assertEquals(Long.toHexString(wantFree), Long.toHexString(c.freeMask()));
        // setup() frees everything not in use, so none of it is scavenged; a fresh heap is all scavenged.
        long wantScav = used.isEmpty() ? wantFree : 0;
        assertEquals(Long.toHexString(wantScav), Long.toHexString(c.scavMask()));
        assertEquals(inUse + Long.bitCount(wantFree), pa.inUsePages(), "cached pages are in use for the page allocator");
        assertEquals(scav - Long.bitCount(wantScav), pa.scavengedPages());
        for (int i = 0; i < 64; i++) {
            assertTrue(pa.isAllocated(wantBase + i * PageAlloc.PAGE_SIZE), "page " + i + " of the block");
        }
        pa.checkInvariants();
    }

    @Test
    void allocFromCache() {
        PageAlloc pa = setup(List.of(grow(BASE, 1)), List.of(used(pg(0, 3), 1), used(pg(0, 10), 5)));
        PageCache c = new PageCache();
        pa.allocToCache(c);
        assertEquals(pg(0, 0), c.alloc(1));
        assertEquals(pg(0, 1), c.alloc(2));
        assertEquals(pg(0, 4), c.alloc(6), "first run of 6 after the used page 3");
        assertEquals(pg(0, 15), c.alloc(16));
        assertEquals(0, c.alloc(64), "no run of 64 left");
        assertEquals(64 - 1 - 5 - 1 - 2 - 6 - 16, c.freePages());
        assertEquals(pg(0, 31), c.alloc(33));
        assertTrue(c.isEmpty());
        assertEquals(0, c.alloc(1));
        assertThrows(IllegalArgumentException.class, () -> c.alloc(65));
        assertThrows(IllegalArgumentException.class, () -> c.alloc(0));
    }

    @Test
    void cacheReportsScavengedPages() {
        PageAlloc pa = setup(List.of(grow(BASE, 1)), List.of());
        assertEquals(BASE, pa.alloc(4));
        pa.free(BASE, 2); // pages 0-1 now free and unscavenged, 2-3 in use, 4.. fresh (scavenged)
        PageCache c = new PageCache();
        pa.allocToCache(c);
        assertEquals(~bits(2, 2), c.freeMask());
        assertEquals(~bits(0, 4), c.scavMask());
        assertEquals(pg(0, 0), c.alloc(2));
        assertEquals(0, c.lastScavengedPages());
        assertEquals(pg(0, 4), c.alloc(3));
        assertEquals(3, c.lastScavengedPages());
        assertEquals(64 - 2 - 2 - 3, c.scavengedPages());
    }

    @Test
    void flushReturnsPagesAndKeepsScavengedBits() {
        PageAlloc pa = setup(List.of(grow(BASE, 1)), List.of());
        assertEquals(BASE, pa.alloc(8));
        pa.free(BASE, 8); // pages 0-7 unscavenged, 8.. scavenged
        long total = pa.totalPages();
        PageCache c = new PageCache();
        pa.allocToCache(c);
        long a = c.alloc(10); // pages 0-9: 8 unscavenged + 2 scavenged
        assertEquals(pg(0, 0), a);
        assertEquals(2, c.lastScavengedPages());
        pa.flush(c);
        assertTrue(c.isEmpty());
        assertEquals(10, pa.inUsePages());
        assertEquals(total - 10, pa.freePages());
        assertEquals(512 - 10, pa.scavengedPages(), "the cache's scavenged bits came back");
        assertTrue(pa.isScavenged(pg(0, 10)));
        assertTrue(pa.isScavenged(pg(0, 63)));
        assertFalse(pa.isAllocated(pg(0, 10)));
        pa.checkInvariants();
        // The flushed pages are found again by first fit.
        assertEquals(pg(0, 10), pa.alloc(54));
        assertEquals(54, pa.lastScavengedPages());
        pa.free(a, 10);
        pa.checkInvariants();
    }

    @Test
    void secondCacheTakesTheNextBlock() {
        PageAlloc pa = setup(List.of(grow(BASE, 1)), List.of());
        PageCache c1 = new PageCache();
        PageCache c2 = new PageCache();
        pa.allocToCache(c1);
        pa.allocToCache(c2);
        assertEquals(pg(0, 0), c1.base());
        assertEquals(pg(0, 64), c2.base());
        assertEquals(pg(0, 128), pa.alloc(1), "page allocator continues after the cached blocks");
        pa.flush(c1);
        assertEquals(pg(0, 0), pa.alloc(1), "flushed block is first fit again");
        pa.checkInvariants();
    }

    @Test
    void emptyHeapGivesEmptyCache() {
        PageAlloc pa = setup(List.of(grow(BASE, 1)), List.of(used(pg(0, 0), 512)));
        PageCache c = new PageCache();
        pa.allocToCache(c);
        assertTrue(c.isEmpty());
        pa.flush(c); // flushing an empty cache is a no-op
        pa.checkInvariants();
        PageAlloc none = new PageAlloc();
        none.allocToCache(c);
        assertTrue(c.isEmpty());
    }

    @Test
    void misuseIsRefused() {
        PageAlloc pa = setup(List.of(grow(BASE, 1)), List.of());
        PageCache c = new PageCache();
        pa.allocToCache(c);
        assertThrows(IllegalStateException.class, () -> pa.allocToCache(c), "filling a non-empty cache");
        pa.free(pg(0, 5), 1); // someone freed a page the cache still holds
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> pa.flush(c));
        assertTrue(e.getMessage().contains("already free"), e.getMessage());
    }
}
