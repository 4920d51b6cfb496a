package io.gomem.heap;

import io.gomem.internal.Options;

import static io.gomem.heap.PageAlloc.CHUNK_BYTES;
import static io.gomem.heap.PageAlloc.PAGE_SIZE;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.locks.ReentrantLock;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Growth, first-fit allocation, free and the search hint, as tables of named cases. */
class PageAllocTest {

    /** A fake heap address: 127 TiB, a multiple of 16 GiB (one root summary entry). */
    static final long BASE = 0x7f00_0000_0000L;

    /** Address of page {@code page} of chunk {@code chunk} counted from {@link #BASE}. */
    static long pg(long chunk, long page) {
        return BASE + chunk * CHUNK_BYTES + page * PAGE_SIZE;
    }

    /** A grown range: {@code chunks} chunks from {@code base}. */
    record Grow(long base, long chunks) {}

    /** A range of pages to be in use before the case starts. */
    record Used(long addr, long npages) {}

    /** {@code alloc(npages)} must return {@code want} (0 = failure). */
    record Alloc(long npages, long want) {}

    static Grow grow(long base, long chunks) {
        return new Grow(base, chunks);
    }

    static Used used(long addr, long npages) {
        return new Used(addr, npages);
    }

    static Alloc alloc(long npages, long want) {
        return new Alloc(npages, want);
    }

    /**
     * Builds an allocator with {@code grows} and exactly the pages of {@code used} in use: every
     * grown range is allocated whole (lowest first, so first fit takes each in turn), then every page
     * not in {@code used} is freed.
     */
    static PageAlloc setup(List<Grow> grows, List<Used> used) {
        PageAlloc pa = new PageAlloc();
        for (Grow g : grows) {
            pa.grow(g.base, g.chunks * CHUNK_BYTES);
        }
        pa.checkInvariants();
        if (used.isEmpty()) {
            return pa;
        }
        List<Grow> sorted = new ArrayList<>(grows);
        sorted.sort((a, b) -> Long.compare(a.base, b.base));
        for (Grow g : sorted) {
            long pages = g.chunks * PageAlloc.CHUNK_PAGES;
            assertEquals(g.base, pa.alloc(pages), "setup: whole-range alloc");
        }
        for (Grow g : sorted) {
            long pages = g.chunks * PageAlloc.CHUNK_PAGES;
            boolean[] inUse = new boolean[(int) pages];
            for (Used u : used) {
                for (long p = 0; p < u.npages; p++) {
                    long idx = (u.addr - g.base) / PAGE_SIZE + p;
                    if (idx >= 0 && idx < pages) {
                        inUse[(int) idx] = true;
                    }
                }
            }
            for (int p = 0; p < pages; ) {
                if (inUse[p]) {
                    p++;
                    continue;
                }
                int q = p;
                while (q < pages && !inUse[q]) {
                    q++;
                }
                pa.free(g.base + p * PAGE_SIZE, q - p);
                p = q;
            }
        }
        pa.checkInvariants();
        return pa;
    }

    // =====================================================================================
    // Find / alloc
    // =====================================================================================

    static Stream<Arguments> allocCases() {
        long far = 0x0000_1000_0000_0000L; // 16 TiB: a different root entry from BASE
        long high = 0x7fff_ffc0_0000L; // last chunk below 2^47
        return Stream.of(
                Arguments.of("single page, then the next", List.of(grow(BASE, 1)), List.of(),
                        List.of(alloc(1, pg(0, 0)), alloc(1, pg(0, 1)), alloc(1, pg(0, 2)))),
                Arguments.of("exact chunk", List.of(grow(BASE, 1)), List.of(),
                        List.of(alloc(512, pg(0, 0)), alloc(1, 0))),
                Arguments.of("two exact chunks", List.of(grow(BASE, 2)), List.of(),
                        List.of(alloc(512, pg(0, 0)), alloc(512, pg(1, 0)), alloc(1, 0))),
                Arguments.of("chunk-sized run after one page is taken", List.of(grow(BASE, 2)), List.of(used(pg(0, 0), 1)),
                        List.of(alloc(512, pg(0, 1)), alloc(512, 0), alloc(1, pg(1, 1)))),
                Arguments.of("run straddles a chunk boundary", List.of(grow(BASE, 2)), List.of(used(pg(0, 0), 500)),
                        List.of(alloc(20, pg(0, 500)), alloc(1, pg(1, 8)))),
                Arguments.of("run spans three chunks", List.of(grow(BASE, 3)), List.of(used(pg(0, 0), 10)),
                        List.of(alloc(1024, pg(0, 10)), alloc(502, pg(2, 10)), alloc(1, 0))),
                Arguments.of("run crosses a 32 MiB (L3) boundary", List.of(grow(BASE, 16)), List.of(used(pg(0, 0), 7 * 512 + 100)),
                        List.of(alloc(4096, pg(7, 100)), alloc(413, 0), alloc(412, pg(15, 100)), alloc(1, 0))),
                Arguments.of("non-adjacent arenas never form one run",
                        List.of(grow(BASE, 1), grow(pg(2, 0), 1)), List.of(),
                        List.of(alloc(513, 0), alloc(300, pg(0, 0)), alloc(300, pg(2, 0)), alloc(212, pg(0, 300)),
                                alloc(213, 0), alloc(212, pg(2, 300)), alloc(1, 0))),
                Arguments.of("non-adjacent arenas: free ends and starts do not join",
                        List.of(grow(BASE, 1), grow(pg(2, 0), 1)), List.of(used(pg(0, 0), 500), used(pg(2, 12), 500)),
                        List.of(alloc(13, 0), alloc(12, pg(0, 500)), alloc(12, pg(2, 0)), alloc(1, 0))),
                Arguments.of("adjacent separately grown ranges do join",
                        List.of(grow(BASE, 1), grow(pg(1, 0), 1)), List.of(),
                        List.of(alloc(1024, pg(0, 0)), alloc(1, 0))),
                Arguments.of("adjacent grown out of order do join",
                        List.of(grow(pg(1, 0), 1), grow(BASE, 1), grow(pg(2, 0), 1)), List.of(),
                        List.of(alloc(1536, pg(0, 0)))),
                Arguments.of("lowest arena wins even if grown last",
                        List.of(grow(BASE, 1), grow(far, 1)), List.of(),
                        List.of(alloc(1, far), alloc(512, BASE), alloc(511, far + PAGE_SIZE), alloc(1, 0))),
                Arguments.of("first fit, not best fit",
                        List.of(grow(BASE, 1)),
                        List.of(used(pg(0, 0), 10), used(pg(0, 13), 10), used(pg(0, 28), 10), used(pg(0, 40), 472)),
                        List.of(alloc(2, pg(0, 10)), alloc(2, pg(0, 23)), alloc(3, pg(0, 25)), alloc(1, pg(0, 12)),
                                alloc(2, pg(0, 38)), alloc(1, 0))),
                Arguments.of("fragmented chunks: only the run across into the free chunk fits",
                        List.of(grow(BASE, 3)), everyOtherPage(0, 2),
                        List.of(alloc(2, pg(1, 511)), alloc(1, pg(0, 1)), alloc(1, pg(0, 3)), alloc(600, 0), alloc(510, pg(2, 1)))),
                Arguments.of("large run inside a chunk with holes",
                        List.of(grow(BASE, 1)), List.of(used(pg(0, 0), 1), used(pg(0, 100), 1), used(pg(0, 300), 212)),
                        List.of(alloc(150, pg(0, 101)), alloc(70, pg(0, 1)), alloc(50, 0), alloc(29, pg(0, 71)))),
                Arguments.of("run of exactly 64 inside bitmap words",
                        List.of(grow(BASE, 1)), List.of(used(pg(0, 0), 70), used(pg(0, 134), 378)),
                        List.of(alloc(65, 0), alloc(64, pg(0, 70)))),
                Arguments.of("exhaustion returns 0",
                        List.of(grow(BASE, 1)), List.of(used(pg(0, 0), 510)),
                        List.of(alloc(2, pg(0, 510)), alloc(1, 0), alloc(7, 0))),
                Arguments.of("npages beyond everything",
                        List.of(grow(BASE, 1), grow(far, 2)), List.of(),
                        List.of(alloc(1537, 0), alloc(1L << 40, 0), alloc(1025, 0), alloc(1024, far))),
                Arguments.of("addresses up to 2^47 and down to 1 GiB",
                        List.of(grow(high, 1), grow(0x4000_0000L, 1)), List.of(),
                        List.of(alloc(512, 0x4000_0000L), alloc(3, high), alloc(509, high + 3 * PAGE_SIZE), alloc(1, 0))));
    }

    private static List<Used> everyOtherPage(int firstChunk, int chunks) {
        List<Used> u = new ArrayList<>();
        for (long p = 0; p < chunks * 512L; p += 2) {
            u.add(used(pg(firstChunk, p), 1));
        }
        return u;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("allocCases")
    void alloc(String name, List<Grow> grows, List<Used> used, List<Alloc> allocs) {
        PageAlloc pa = setup(grows, used);
        for (int k = 0; k < allocs.size(); k++) {
            Alloc a = allocs.get(k);
            long inUse = pa.inUsePages();
            long got = pa.alloc(a.npages);
            assertEquals(hex(a.want), hex(got), "alloc #" + k + " of " + a.npages + " pages");
            assertEquals(inUse + (got == 0 ? 0 : a.npages), pa.inUsePages(), "inUsePages after alloc #" + k);
            pa.checkInvariants();
        }
    }

    @Test
    void runLongerThanARootEntry() {
        // 32 GiB = two root entries (16 GiB each) of 2^21 pages; the all-max summary encoding is used.
        long base = 0x0000_4000_0000_0000L;
        PageAlloc pa = new PageAlloc();
        pa.grow(base, 32L << 30);
        long root = base >>> PageAlloc.LEVEL_SHIFT[0];
        assertEquals(1L << 63, pa.summaryAt(0, root), "fully free root entry");
        assertEquals(1L << 63, pa.summaryAt(0, root + 1));
        assertEquals(base, pa.alloc(1));
        assertEquals(PallocSum.pack(0, (1L << 21) - 1, (1L << 21) - 1), pa.summaryAt(0, root));
        long big = (1L << 21) + 5;
        assertEquals(base + PAGE_SIZE, pa.alloc(big), "run crossing the root boundary");
        assertEquals(base + (big + 1) * PAGE_SIZE, pa.alloc(1));
        pa.free(base + PAGE_SIZE, big);
        assertEquals(base + PAGE_SIZE, pa.alloc(1L << 21), "freed run found again");
        pa.checkInvariants();
    }

    // =====================================================================================
    // Free
    // =====================================================================================

    @Test
    void freeMergesBack() {
        PageAlloc pa = setup(List.of(grow(BASE, 2)), List.of());
        long[] pages = new long[1024];
        for (int i = 0; i < 1024; i++) {
            pages[i] = pa.alloc(1);
            assertEquals(pg(0, i), pages[i]);
        }
        assertEquals(0, pa.alloc(1));
        SplittableRandom rnd = new SplittableRandom(3);
        for (int i = pages.length - 1; i > 0; i--) {
            int j = rnd.nextInt(i + 1);
            long t = pages[i];
            pages[i] = pages[j];
            pages[j] = t;
        }
        for (long p : pages) {
            pa.free(p, 1);
        }
        pa.checkInvariants();
        assertEquals(0, pa.inUsePages());
        assertEquals(pg(0, 0), pa.alloc(1024), "all the single frees merged back into one run");
    }

    @Test
    void freeOfPartsOfAnAllocation() {
        PageAlloc pa = setup(List.of(grow(BASE, 1)), List.of());
        assertEquals(pg(0, 0), pa.alloc(100));
        pa.free(pg(0, 10), 5);
        pa.free(pg(0, 90), 10);
        assertEquals(pg(0, 10), pa.alloc(5));
        assertEquals(pg(0, 90), pa.alloc(11), "the freed tail joins the free space after it");
        pa.checkInvariants();
    }

    static Stream<Arguments> refusedFrees() {
        return Stream.of(
                Arguments.of("double free of one page", pg(0, 20), 1L, "already free"),
                Arguments.of("range that is partly free", pg(0, 95), 10L, "already free"),
                Arguments.of("range that is wholly free", pg(0, 200), 3L, "already free"),
                Arguments.of("beyond grown memory", pg(5, 0), 1L, "outside grown memory"),
                Arguments.of("straddles the end of grown memory", pg(1, 500), 20L, "outside grown memory"),
                Arguments.of("in the hole between arenas", pg(2, 7), 1L, "outside grown memory"),
                Arguments.of("from one arena across the hole into the next", pg(1, 511), 600L, "outside grown memory"),
                Arguments.of("below all grown memory", BASE - PAGE_SIZE, 1L, "outside grown memory"),
                Arguments.of("address zero", 0L, 1L, "outside grown memory"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("refusedFrees")
    void freeRefused(String name, long base, long npages, String why) {
        // Chunks 0-1 and 3 grown; pages [0, 100) of chunk 0 in use, [0, 600) of chunk 3's arena too.
        PageAlloc pa = setup(List.of(grow(BASE, 2), grow(pg(3, 0), 2)),
                List.of(used(pg(0, 0), 100), used(pg(1, 400), 112), used(pg(3, 0), 600)));
        pa.free(pg(0, 20), 1);
        Snapshot before = Snapshot.of(pa, List.of(grow(BASE, 2), grow(pg(3, 0), 2)));
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> pa.free(base, npages));
        assertTrue(e.getMessage().contains(why), e.getMessage());
        assertTrue(e.getMessage().contains(PageAlloc.hex(base)), "message names the range: " + e.getMessage());
        assertEquals(before, Snapshot.of(pa, List.of(grow(BASE, 2), grow(pg(3, 0), 2))), "state unchanged");
        pa.checkInvariants();
    }

    @Test
    void freeRejectsBadArguments() {
        PageAlloc pa = setup(List.of(grow(BASE, 1)), List.of());
        pa.alloc(4);
        assertThrows(IllegalArgumentException.class, () -> pa.free(BASE + 1, 1));
        assertThrows(IllegalArgumentException.class, () -> pa.free(BASE, 0));
        assertThrows(IllegalArgumentException.class, () -> pa.alloc(0));
        assertThrows(IllegalArgumentException.class, () -> pa.alloc(-3));
    }

    // =====================================================================================
    // Grow
    // =====================================================================================

    @Test
    void growCountsFreeAndScavenged() {
        PageAlloc pa = new PageAlloc();
        assertEquals(0, pa.alloc(1), "nothing grown yet");
        pa.grow(BASE, 16 * CHUNK_BYTES);
        pa.grow(BASE + 64 * CHUNK_BYTES, 16 * CHUNK_BYTES);
        assertEquals(2 * 16 * 512, pa.totalPages());
        assertEquals(pa.totalPages(), pa.freePages());
        assertEquals(pa.totalPages(), pa.scavengedPages());
        assertEquals(0, pa.inUsePages());
        assertTrue(pa.isGrown(BASE, 16 * CHUNK_BYTES));
        assertFalse(pa.isGrown(BASE, 17 * CHUNK_BYTES));
        assertFalse(pa.isGrown(BASE + 20 * CHUNK_BYTES, PAGE_SIZE));
        pa.checkInvariants();
    }

    static Stream<Arguments> badGrows() {
        return Stream.of(
                Arguments.of("unaligned base", BASE + PAGE_SIZE, CHUNK_BYTES, IllegalArgumentException.class),
                Arguments.of("unaligned size", BASE, CHUNK_BYTES + PAGE_SIZE, IllegalArgumentException.class),
                Arguments.of("zero size", BASE, 0L, IllegalArgumentException.class),
                Arguments.of("base zero", 0L, CHUNK_BYTES, IllegalArgumentException.class),
                Arguments.of("past 2^48", (1L << 48) - CHUNK_BYTES, 2 * CHUNK_BYTES, IllegalArgumentException.class),
                Arguments.of("overlaps grown", BASE + CHUNK_BYTES, 4 * CHUNK_BYTES, IllegalStateException.class),
                Arguments.of("same range again", BASE, 2 * CHUNK_BYTES, IllegalStateException.class),
                Arguments.of("covers grown", BASE - CHUNK_BYTES, 8 * CHUNK_BYTES, IllegalStateException.class));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("badGrows")
    void growRefused(String name, long base, long bytes, Class<? extends Throwable> type) {
        PageAlloc pa = new PageAlloc();
        pa.grow(BASE, 2 * CHUNK_BYTES);
        assertThrows(type, () -> pa.grow(base, bytes));
        assertEquals(1024, pa.totalPages());
        pa.checkInvariants();
    }

    // =====================================================================================
    // Search hint
    // =====================================================================================

    /** A step: alloc (npages > 0, expecting want) or free (npages < 0 pages at want). */
    record Step(long npages, long addr) {}

    static Step a(long npages, long want) {
        return new Step(npages, want);
    }

    static Step f(long addr, long npages) {
        return new Step(-npages, addr);
    }

    static Stream<Arguments> hintCases() {
        return Stream.of(
                Arguments.of("free below the hint is found again",
                        List.of(a(1, pg(0, 0)), a(1, pg(0, 1)), a(1, pg(0, 2)), a(1, pg(0, 3)), f(pg(0, 1), 1),
                                a(1, pg(0, 1)), a(1, pg(0, 4)))),
                Arguments.of("free in an earlier full chunk",
                        List.of(a(512, pg(0, 0)), a(512, pg(1, 0)), a(1, pg(2, 0)), f(pg(0, 300), 2),
                                a(1, pg(0, 300)), a(1, pg(0, 301)), a(1, pg(2, 1)))),
                Arguments.of("large alloc skips a small hole that stays findable",
                        List.of(a(10, pg(0, 0)), f(pg(0, 2), 3), a(4, pg(0, 10)), a(3, pg(0, 2)), a(1, pg(0, 14)))),
                Arguments.of("failed large alloc does not hide small holes",
                        List.of(a(1536, pg(0, 0)), f(pg(1, 5), 1), a(2, 0), a(1, pg(1, 5)), a(1, 0))),
                Arguments.of("free in a lower chunk after the hint moved to the top",
                        List.of(a(1535, pg(0, 0)), a(1, pg(2, 511)), f(pg(0, 0), 1), f(pg(2, 100), 1),
                                a(1, pg(0, 0)), a(1, pg(2, 100)), a(1, 0))),
                Arguments.of("exhausted heap then one free",
                        List.of(a(1536, pg(0, 0)), a(1, 0), f(pg(1, 77), 1), a(1, pg(1, 77)), a(1, 0))));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("hintCases")
    void hint(String name, List<Step> steps) {
        PageAlloc pa = setup(List.of(grow(BASE, 3)), List.of());
        for (int k = 0; k < steps.size(); k++) {
            Step s = steps.get(k);
            if (s.npages > 0) {
                assertEquals(hex(s.addr), hex(pa.alloc(s.npages)), "step " + k + ": alloc " + s.npages);
            } else {
                pa.free(s.addr, -s.npages);
            }
            pa.checkInvariants(); // includes: no free page below searchAddr
        }
    }

    @Test
    void hintMovesUpWithAllocations() {
        PageAlloc pa = setup(List.of(grow(BASE, 2)), List.of());
        assertEquals(BASE, pa.searchAddr());
        pa.alloc(512);
        assertTrue(pa.searchAddr() >= pg(0, 511), "hint left the full chunk behind: " + hex(pa.searchAddr()));
        pa.free(pg(0, 7), 1);
        assertEquals(pg(0, 7), pa.searchAddr());
    }

    @Test
    void heapLockIsAsserted() {
        ReentrantLock lock = new ReentrantLock();
        PageAlloc pa = new PageAlloc(lock);
        boolean assertionsOn = false;
        assert assertionsOn = true;
        lock.lock();
        try {
            pa.grow(BASE, CHUNK_BYTES);
            assertEquals(BASE, pa.alloc(1));
        } finally {
            lock.unlock();
        }
        if (assertionsOn || Options.CHECK_INVARIANTS.booleanValue()) {
            // -ea: an AssertionError; gomem.checkInvariants: an IllegalStateException naming the thread
            Throwable t = assertThrows(Throwable.class, () -> pa.alloc(1));
            assertTrue(t instanceof AssertionError || t instanceof IllegalStateException, t.toString());
        }
    }

    // =====================================================================================
    // Helpers
    // =====================================================================================

    static String hex(long v) {
        return PageAlloc.hex(v);
    }

    /** Every page's in-use and scavenged bit plus the counters, for "state unchanged" checks. */
    record Snapshot(String bits, long inUse, long free, long scavenged, long total) {
        static Snapshot of(PageAlloc pa, List<Grow> grows) {
            StringBuilder sb = new StringBuilder();
            for (Grow g : grows) {
                for (long p = 0; p < g.chunks * 512; p++) {
                    long addr = g.base + p * PAGE_SIZE;
                    sb.append(pa.isAllocated(addr) ? 'U' : pa.isScavenged(addr) ? 's' : '.');
                }
            }
            return new Snapshot(sb.toString(), pa.inUsePages(), pa.freePages(), pa.scavengedPages(), pa.totalPages());
        }

        @Override
        public String toString() {
            return "Snapshot[inUse=" + inUse + ", free=" + free + ", scavenged=" + scavenged + ", total=" + total
                    + ", bits hash=" + Arrays.hashCode(bits.toCharArray()) + "]";
        }
    }
}
