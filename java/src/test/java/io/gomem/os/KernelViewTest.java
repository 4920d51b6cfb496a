package io.gomem.os;

import io.gomem.Mem;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * KernelView's per-page residency against pages this test writes itself: exact for any part of a
 * mapping, whatever the kernel merged that mapping with, where a per-mapping Rss (smaps) is not.
 */
class KernelViewTest {
    static final long PAGE = OsMemory.PAGE_SIZE;
    static final long HALF = 16 * PAGE;

    OsMemory os;
    long guarded;
    long a;
    long b;

    /** Two adjacent halves a and b made Ready by separate calls, between guard pages. */
    @BeforeEach
    void mapTwoHalves() {
        os = new OsMemory(OsMemory.UnusedMode.DONTNEED);
        guarded = os.sysReserve(0, 2 * HALF + 2 * PAGE, Purpose.OTHER);
        a = guarded + PAGE;
        b = a + HALF;
        for (long h : new long[] {a, b}) {
            os.sysMap(h, HALF);
            os.sysUsed(h, HALF);
        }
    }

    @AfterEach
    void release() {
        if (os.stateAt(guarded) != MemState.NONE) {
            os.sysFree(guarded, 2 * HALF + 2 * PAGE);
        }
    }

    private static void write(long addr, long pages) {
        Mem s = Mem.at(addr, pages * PAGE);
        for (long i = 0; i < pages; i++) {
            s.setByte(i * PAGE, (byte) 1);
        }
    }

    @Test
    void residencyOfPartOfAMappingCountsOnlyThatPart() {
        write(a, HALF / PAGE);
        write(b + 2 * PAGE, 3);
        List<KernelView.Mapping> maps = KernelView.mappings(b, HALF);
        String vmas = maps.toString();
        assertEquals(3 * PAGE, KernelView.rssBytes(b, HALF), "pagemap Rss of b; mappings holding it: " + vmas);
        assertEquals(3 * PAGE, KernelView.pages(b, HALF).present(), vmas);
        assertEquals(3 * PAGE, KernelView.residentBytes(b, HALF), "mincore of b; " + vmas);
        assertEquals(HALF, KernelView.rssBytes(a, HALF));
        assertEquals(HALF + 3 * PAGE, KernelView.rssBytes(a, 2 * HALF));
        assertEquals(2 * PAGE, KernelView.rssBytes(b + 3 * PAGE, 4 * PAGE), "2 of the 4 pages from b+3 were written");
        assertEquals(PAGE, KernelView.rssBytes(b + 4 * PAGE, 1), "a partial page counts whole");
        assertEquals(0, KernelView.rssBytes(b, 2 * PAGE));
        assertEquals(0, KernelView.rssBytes(b, 0));
        assertEquals(0, KernelView.pages(b, HALF).swapped());
    }

    @Test
    void layoutCutsMappingsToTheRange() {
        os.sysFault(b, HALF);
        List<KernelView.Mapping> layout = KernelView.layout(a + 4 * PAGE, HALF);
        assertEquals(List.of(new KernelView.Mapping(a + 4 * PAGE, b, "rw-p"),
                new KernelView.Mapping(b, b + 4 * PAGE, "---p")), layout);
        // mappings gives them whole: the rw-p one begins at a, after the guard page.
        assertEquals(new KernelView.Mapping(a, b, "rw-p"), KernelView.mappings(a + 4 * PAGE, HALF).get(0));
    }

    @Test
    void unmappedPagesAreNeitherPresentNorSwapped() {
        write(a, 2);
        os.sysFree(guarded, 2 * HALF + 2 * PAGE);
        assertEquals(new KernelView.Pages(0, 0, 0), KernelView.pages(guarded, 2 * HALF + 2 * PAGE));
    }

    @Test
    void anUnalignedAddressOrANegativeLengthIsRefusedWithTheValue() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> KernelView.pages(a + 8, PAGE));
        assertTrue(e.getMessage().contains(Long.toHexString(a + 8)) && e.getMessage().contains(Long.toString(PAGE)),
                e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> KernelView.residentBytes(a, -PAGE));
        assertTrue(e.getMessage().contains("length -" + PAGE), e.getMessage());
    }

    @Test
    void theZeroPageProbeAgreesWithAReadOfAReadyPage() {
        boolean zeroPage = KernelView.readFaultMapsZeroPage();
        byte v = Mem.at(b, 1).getByte(0);
        assertEquals(0, v);
        assertEquals(PAGE, KernelView.pages(b, PAGE).present(), "a page read is mapped");
        assertEquals(zeroPage ? 0 : PAGE, KernelView.rssBytes(b, PAGE), "zero page shared: " + zeroPage);
        write(b, 1);
        assertEquals(PAGE, KernelView.rssBytes(b, PAGE), "written, the page has a frame of its own");
    }
}
