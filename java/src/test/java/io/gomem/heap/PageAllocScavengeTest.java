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

import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Scavenged bits: growth, allocation reports, the scavenger's search and the claim protocol. */
class PageAllocScavengeTest {

    /** Records the runs handed to the sink, as "base+npages" strings for readable diffs. */
    static final class Runs implements PageAlloc.ScavengeSink {
        final List<String> runs = new ArrayList<>();

        @Override
        public void release(long base, long npages) {
            runs.add(run(base, npages));
        }
    }

    static String run(long base, long npages) {
        return PageAlloc.hex(base) + "+" + npages;
    }

    @Test
    void grownPagesAreFreeAndScavenged() {
        PageAlloc pa = setup(List.of(grow(BASE, 2), grow(pg(4, 0), 1)), List.of());
        assertEquals(1536, pa.scavengedPages());
        assertTrue(pa.isScavenged(pg(0, 0)));
        assertTrue(pa.isScavenged(pg(4, 511)));
        assertFalse(pa.isScavenged(pg(2, 0)), "hole");
        Runs sink = new Runs();
        assertEquals(0, pa.scavenge(1000, sink), "nothing to scavenge in fresh memory");
        assertEquals(List.of(), sink.runs);
    }

    /** Allocations then their reported scavenged counts. */
    static Stream<Arguments> allocReportCases() {
        return Stream.of(
                Arguments.of("fresh pages are all scavenged", new long[][] {{5, 5}, {512, 512}}),
                Arguments.of("freed pages come back unscavenged", new long[][] {{5, 5}, {-5, 0}, {5, 0}}),
                Arguments.of("mix of freed and fresh", new long[][] {{5, 5}, {-5, 0}, {10, 5}}),
                Arguments.of("run across a chunk boundary", new long[][] {{500, 500}, {-500, 0}, {530, 30}}));
    }

    /** {npages > 0, wantScav}: alloc; {-npages, _}: free the allocation just made. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("allocReportCases")
    void allocReportsScavengedPages(String name, long[][] steps) {
        PageAlloc pa = setup(List.of(grow(BASE, 2)), List.of());
        long last = 0;
        for (long[] s : steps) {
            if (s[0] > 0) {
                last = pa.alloc(s[0]);
                assertTrue(last != 0);
                assertEquals(s[1], pa.lastScavengedPages(), "scavenged pages in alloc of " + s[0]);
                for (long p = 0; p < s[0]; p++) {
                    assertFalse(pa.isScavenged(last + p * PageAlloc.PAGE_SIZE), "allocated pages lose the scavenged bit");
                }
            } else {
                pa.free(last, -s[0]);
            }
            pa.checkInvariants();
        }
        assertEquals(pa.scavengedPages(), countScavenged(pa, BASE, 1024));
    }

    /** Scavenge requests on one state; runs are expected highest first, cut at chunk boundaries. */
    static Stream<Arguments> scavengeCases() {
        return Stream.of(
                Arguments.of("partial run from the top of the highest", 4L,
                        List.of(run(pg(1, 106), 4))),
                Arguments.of("highest run, then the next lower", 16L,
                        List.of(run(pg(1, 100), 10), run(pg(0, 14), 6))),
                Arguments.of("everything", 1000L,
                        List.of(run(pg(1, 100), 10), run(pg(0, 10), 10), run(pg(0, 0), 2))),
                Arguments.of("one page", 1L, List.of(run(pg(1, 109), 1))));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("scavengeCases")
    void scavengeHighestFirst(String name, long maxPages, List<String> want) {
        PageAlloc pa = twoChunksWithHoles();
        long before = pa.scavengedPages();
        Runs sink = new Runs();
        long got = pa.scavenge(maxPages, sink);
        assertEquals(want, sink.runs);
        long total = want.stream().mapToLong(r -> Long.parseLong(r.substring(r.indexOf('+') + 1))).sum();
        assertEquals(total, got);
        assertEquals(before + total, pa.scavengedPages());
        pa.checkInvariants();
    }

    /** 2 chunks all in use except [0,2) and [10,20) of chunk 0 and [100,110) of chunk 1, all unscavenged. */
    private static PageAlloc twoChunksWithHoles() {
        PageAlloc pa = setup(List.of(grow(BASE, 2)), List.of());
        assertEquals(BASE, pa.alloc(1024));
        pa.free(pg(0, 0), 2);
        pa.free(pg(0, 10), 10);
        pa.free(pg(1, 100), 10);
        assertEquals(0, pa.scavengedPages());
        return pa;
    }

    @Test
    void scavengeContinuesWhereItStoppedAndStopsWhenDone() {
        PageAlloc pa = twoChunksWithHoles();
        Runs sink = new Runs();
        assertEquals(5, pa.scavenge(5, sink));
        assertEquals(5, pa.scavenge(5, sink));
        assertEquals(10, pa.scavenge(10, sink));
        assertEquals(2, pa.scavenge(10, sink));
        assertEquals(0, pa.scavenge(10, sink));
        assertEquals(List.of(run(pg(1, 105), 5), run(pg(1, 100), 5), run(pg(0, 10), 10), run(pg(0, 0), 2)), sink.runs);
        assertEquals(0, pa.scavAddr(), "cursor says nothing is left");
        pa.free(pg(1, 300), 3); // a free above the cursor makes work again
        assertEquals(3, pa.scavenge(10, sink));
        assertEquals(run(pg(1, 300), 3), sink.runs.get(sink.runs.size() - 1));
        pa.checkInvariants();
    }

    @Test
    void scavengeCutsRunsAtChunkBoundariesAndSkipsHoles() {
        PageAlloc pa = setup(List.of(grow(BASE, 2), grow(pg(3, 0), 1)), List.of());
        assertEquals(BASE, pa.alloc(1024));
        assertEquals(pg(3, 0), pa.alloc(512));
        pa.free(pg(0, 500), 20); // across the chunk 0/1 boundary
        pa.free(pg(3, 0), 4); // bottom of the higher arena
        Runs sink = new Runs();
        assertEquals(24, pa.scavenge(100, sink));
        assertEquals(List.of(run(pg(3, 0), 4), run(pg(1, 0), 8), run(pg(0, 500), 12)), sink.runs);
        pa.checkInvariants();
    }

    static Stream<Arguments> wordBoundaryCases() {
        return Stream.of(
                Arguments.of("run across two bitmap words", new long[][] {{40, 90}}, 1000L,
                        List.of(run(pg(0, 40), 90))),
                Arguments.of("run stops at an in-use page at bit 0 of a word", new long[][] {{0, 64}, {65, 75}}, 1000L,
                        List.of(run(pg(0, 65), 75), run(pg(0, 0), 64))),
                Arguments.of("run over a whole word and more", new long[][] {{63, 130}}, 1000L,
                        List.of(run(pg(0, 63), 130))),
                Arguments.of("cap inside the top word", new long[][] {{10, 200}}, 3L,
                        List.of(run(pg(0, 207), 3))),
                Arguments.of("cap exactly at a word boundary", new long[][] {{10, 200}}, 18L,
                        List.of(run(pg(0, 192), 18))));
    }

    /** One chunk all in use, then {from, npages} ranges freed; scavenge(max) must report these runs. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("wordBoundaryCases")
    void scavengeRunsAcrossBitmapWords(String name, long[][] freed, long max, List<String> want) {
        PageAlloc pa = setup(List.of(grow(BASE, 1)), List.of());
        assertEquals(BASE, pa.alloc(512));
        for (long[] f : freed) {
            pa.free(pg(0, f[0]), f[1]);
        }
        Runs sink = new Runs();
        pa.scavenge(max, sink);
        assertEquals(want, sink.runs);
        pa.checkInvariants();
    }

    @Test
    void scavengedPagesAreReportedWhenAllocatedAgain() {
        PageAlloc pa = twoChunksWithHoles();
        pa.scavenge(3, new Runs()); // scavenges [107, 110) of chunk 1
        assertEquals(pg(0, 0), pa.alloc(2));
        assertEquals(0, pa.lastScavengedPages());
        assertEquals(pg(0, 10), pa.alloc(10));
        assertEquals(0, pa.lastScavengedPages());
        assertEquals(pg(1, 100), pa.alloc(10));
        assertEquals(3, pa.lastScavengedPages());
        assertEquals(0, pa.scavengedPages());
        pa.checkInvariants();
    }

    @Test
    void sinkFailureLeavesTheRunUnscavenged() {
        PageAlloc pa = twoChunksWithHoles();
        RuntimeException boom = new RuntimeException("madvise failed");
        assertThrows(RuntimeException.class, () -> pa.scavenge(100, (b, n) -> {
            throw boom;
        }));
        assertEquals(0, pa.scavengedPages());
        pa.checkInvariants();
        Runs sink = new Runs();
        assertEquals(22, pa.scavenge(100, sink));
    }

    @Test
    void claimProtocol() {
        PageAlloc pa = twoChunksWithHoles();
        long free = pa.freePages();
        long claimed = pa.scavengeClaim(4);
        assertEquals(pg(1, 106), claimed);
        assertEquals(4, pa.lastClaimPages());
        assertEquals(4, pa.claimedPages());
        assertEquals(free - 4, pa.freePages(), "claimed pages are not free");
        pa.checkInvariants();

        // While claimed (heap lock dropped in real use), allocation cannot get those pages.
        assertEquals(pg(0, 10), pa.alloc(10));
        assertEquals(pg(1, 100), pa.alloc(6));
        assertEquals(pg(0, 0), pa.alloc(1));
        assertEquals(0, pa.alloc(2), "only pg(0, 1) is free; the claimed run is not");
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> pa.free(pg(1, 105), 2));
        assertTrue(e.getMessage().contains("claimed"), e.getMessage());

        pa.scavengeComplete(claimed, 4, true);
        assertEquals(0, pa.claimedPages());
        assertEquals(4, pa.scavengedPages());
        assertTrue(pa.isScavenged(pg(1, 109)));
        assertThrows(IllegalStateException.class, () -> pa.scavengeComplete(claimed, 4, true), "completed twice");
        pa.checkInvariants();
    }

    @Test
    void claimNotReleasedComesBackUnscavenged() {
        PageAlloc pa = twoChunksWithHoles();
        long b = pa.scavengeClaim(100);
        assertEquals(pg(1, 100), b);
        assertEquals(10, pa.lastClaimPages());
        pa.scavengeComplete(b, 10, false);
        assertEquals(0, pa.scavengedPages());
        pa.checkInvariants();
        Runs sink = new Runs();
        pa.scavenge(10, sink);
        assertEquals(List.of(run(pg(1, 100), 10)), sink.runs, "found again");
    }

    @Test
    void claimWithNothingToDo() {
        PageAlloc pa = setup(List.of(grow(BASE, 1)), List.of(used(pg(0, 0), 512)));
        assertEquals(0, pa.scavengeClaim(10));
        assertEquals(0, pa.lastClaimPages());
    }

    static long countScavenged(PageAlloc pa, long base, long npages) {
        long n = 0;
        for (long p = 0; p < npages; p++) {
            if (pa.isScavenged(base + p * PageAlloc.PAGE_SIZE)) {
                n++;
            }
        }
        return n;
    }
}
