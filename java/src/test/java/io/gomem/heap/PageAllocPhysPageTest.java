package io.gomem.heap;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.BitSet;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The scavenger over physical pages larger than the heap's 8 KiB page (Go's {@code physPageSize}
 * and {@code fillAligned}): with {@code m} pages per physical page, it releases only whole,
 * aligned groups of {@code m} pages that are all free, and every other free page stays
 * unscavenged. Covers physical pages of 4 KiB (m = 1), 16 KiB (2) and 64 KiB (8), as Go's tests
 * cover its physical page sizes.
 */
class PageAllocPhysPageTest {
    static final long BASE = PageAllocTest.BASE;

    @Test
    void fillAlignedFillsEveryGroupWithABitSet() {
        assertEquals(0L, PageAlloc.fillAligned(0L, 8));
        assertEquals(0xFFL, PageAlloc.fillAligned(0x10L, 8));
        assertEquals(0xFF00_0000_0000_00FFL, PageAlloc.fillAligned(0x0100_0000_0000_0080L, 8));
        assertEquals(0b1100L, PageAlloc.fillAligned(0b0100L, 2));
        assertEquals(0b1111_0011L, PageAlloc.fillAligned(0b1001_0001L, 2));
        assertEquals(-1L, PageAlloc.fillAligned(1L << 40, 64));
        assertEquals(0x1234_5678L, PageAlloc.fillAligned(0x1234_5678L, 1));
    }

    @Test
    void aPageSizeOutsideOneToSixtyFourPagesIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> new PageAlloc(null, 3));
        assertThrows(IllegalArgumentException.class, () -> new PageAlloc(null, 128));
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> MHeap.physPages(1L << 20));
        assertTrue(e.getMessage().contains("1048576") && e.getMessage().contains("524288"), e.getMessage());
        assertEquals(1, MHeap.physPages(4096));
        assertEquals(2, MHeap.physPages(16384));
        assertEquals(8, MHeap.physPages(65536));
    }

    /**
     * Seeded random patterns of in-use pages over two chunks: scavenging everything releases
     * exactly the groups of m that are wholly free, each run aligned to m and a multiple of m
     * long, and never a page in use.
     */
    @ParameterizedTest(name = "{0} pages per physical page")
    @ValueSource(ints = {1, 2, 8})
    void theScavengerReleasesExactlyTheWhollyFreePhysicalPages(int m) {
        SplittableRandom r = new SplittableRandom(16 + m);
        for (int round = 0; round < 30; round++) {
            int pages = 2 * (int) PageAlloc.CHUNK_PAGES;
            PageAlloc pa = new PageAlloc(null, m);
            pa.grow(BASE, 2 * PageAlloc.CHUNK_BYTES);
            for (int c = 0; c < 2; c++) {
                assertEquals(BASE + c * PageAlloc.CHUNK_BYTES, pa.alloc(PageAlloc.CHUNK_PAGES)); // all in use, unscavenged
            }
            BitSet inUse = new BitSet(pages);
            inUse.set(0, pages);
            double density = r.nextDouble();
            for (int p = 0; p < pages; p++) {
                if (r.nextDouble() > density) {
                    pa.free(BASE + ((long) p << PageAlloc.PAGE_SHIFT), 1);
                    inUse.clear(p);
                }
            }
            BitSet released = new BitSet(pages);
            pa.scavenge(Long.MAX_VALUE, (base, n) -> {
                long first = (base - BASE) >>> PageAlloc.PAGE_SHIFT;
                assertEquals(0, first % m, "a run starts on a physical page");
                assertEquals(0, n % m, "a run is whole physical pages");
                for (long p = first; p < first + n; p++) {
                    assertFalse(inUse.get((int) p), "released a page in use");
                    released.set((int) p);
                }
            });
            BitSet want = new BitSet(pages);
            for (int g = 0; g < pages; g += m) {
                if (inUse.get(g, g + m).isEmpty()) {
                    want.set(g, g + m);
                }
            }
            assertEquals(want, released, "round " + round + " (density " + density + ")");
            assertEquals(want.cardinality(), pa.scavengedPages());
            pa.checkInvariants();
        }
    }

    /**
     * Go 1.19's rule under huge-page advice: a run that reaches a huge page boundary, when the free
     * run goes down to the huge page below its start, takes that whole huge page (256 pages)
     * instead of breaking it; when an in-use page sits in that huge page, the run stays as asked.
     */
    @Test
    void aWhollyFreeHugePageIsReleasedWholeNotBroken() {
        for (int huge : new int[] {0, 256}) {
            PageAlloc pa = new PageAlloc(null, 1, huge);
            pa.grow(BASE, PageAlloc.CHUNK_BYTES);
            pa.alloc(PageAlloc.CHUNK_PAGES);
            pa.free(BASE, PageAlloc.CHUNK_PAGES); // all free, none scavenged
            java.util.List<long[]> runs = new java.util.ArrayList<>();
            pa.scavenge(16, (b, n) -> runs.add(new long[] {b, n}));
            long want = huge == 0 ? 16 : 256;
            assertEquals(1, runs.size());
            assertEquals(want, runs.get(0)[1], "pages released with huge-page pages " + huge);
            assertEquals(BASE + ((PageAlloc.CHUNK_PAGES - want) << PageAlloc.PAGE_SHIFT), runs.get(0)[0]);
            pa.checkInvariants();
        }
        PageAlloc pa = new PageAlloc(null, 1, 256);
        pa.grow(BASE, PageAlloc.CHUNK_BYTES);
        pa.alloc(PageAlloc.CHUNK_PAGES);
        pa.free(BASE + (300L << PageAlloc.PAGE_SHIFT), PageAlloc.CHUNK_PAGES - 300); // pages 0..299 stay in use
        long[] got = new long[1];
        pa.scavenge(16, (b, n) -> got[0] += n);
        assertEquals(16, got[0], "the upper huge page is not wholly free: the run stays as asked");
    }

    @Test
    void unscavengeClearsOnlyFreeScavengedPages() {
        PageAlloc pa = new PageAlloc(null, 2);
        pa.grow(BASE, PageAlloc.CHUNK_BYTES);
        long a = pa.alloc(1); // page 0 in use; page 1 free and scavenged (fresh)
        assertEquals(BASE, a);
        long before = pa.scavengedPages();
        assertEquals(1, pa.unscavenge(BASE, 2), "only page 1: page 0 is in use");
        assertFalse(pa.isScavenged(BASE + PageAlloc.PAGE_SIZE));
        assertEquals(before - 1, pa.scavengedPages());
        assertEquals(0, pa.unscavenge(BASE, 2), "nothing left to clear");
        pa.checkInvariants();
    }
}
