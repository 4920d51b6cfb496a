package io.gomem.heap;

import io.gomem.Mem;
import io.gomem.os.KernelView;
import io.gomem.os.MemState;
import io.gomem.os.MemoryLimitExceededError;
import io.gomem.os.OsMemory;
import io.gomem.os.Purpose;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Consumer;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * MHeap alone, over a real OS layer (sysUnused with MADV_DONTNEED, so that the kernel's view
 * changes at once): spans, the spans table and its publication, the counters, the hard limit,
 * returning free pages to the OS and unmapping. Every heap here holds a few pages.
 */
class MHeapTest {
    static final long PAGE = SizeClasses.PAGE_SIZE;
    static final long KIB = 1L << 10;
    static final long MIB = 1L << 20;
    static final long CHUNK = PageAlloc.CHUNK_BYTES;

    final OsMemory os = new OsMemory(OsMemory.UnusedMode.DONTNEED);
    MHeap heap = new MHeap(os);

    @AfterEach
    void unmap() {
        if (heap != null) {
            heap.releaseAll();
        }
        for (MemState st : new MemState[] {MemState.RESERVED, MemState.PREPARED, MemState.READY}) {
            assertEquals(0, os.bytes(st, Purpose.HEAP), "after releaseAll nothing of the heap is " + st);
        }
    }

    /** A heap with a hard (and soft) limit. */
    MHeap limited(long soft, long hard) {
        heap.releaseAll();
        heap = new MHeap(os, new Scavenger.Config(soft, hard, 10, 1), new MStats());
        return heap;
    }

    static int sc(int sizeClass) {
        return SizeClasses.spanClass(sizeClass, true);
    }

    MSpan small(int sizeClass) {
        return heap.allocSmallSpan(sc(sizeClass), sizeClass, SizeClasses.classPages(sizeClass));
    }

    static Mem mem(long addr, long len) {
        return Mem.at(addr, len);
    }

    /** Every figure of a reading of the counters, comparable with equals. */
    static List<Object> figures(MStats.Counters k) {
        return List.of(k.mappedBytes(), k.totalPages(), k.pagesInUse(), k.scavengedPages(), k.spansInUse(),
                k.reservedBytes(), k.arenas(), k.osReserved(), k.osPrepared(), k.osReady(), k.spanReleasedBytes(),
                k.maskedSpansInUse(), k.spansPooled(), k.maskedSpansPooled(), k.flatTablePages(), Arrays.toString(k.counts()));
    }

    /** Checks that every page of {@code s} maps to it, and the pages around it do not. */
    void assertMapped(MSpan s) {
        for (long p = s.base; p < s.limit(); p += PAGE) {
            assertSame(s, heap.spanOf(p), "page 0x" + Long.toHexString(p) + " of " + s);
            assertSame(s, heap.spanOf(p + PAGE - 1), "last byte of page 0x" + Long.toHexString(p));
        }
        assertNotEqualsSpan(s, heap.spanOf(s.base - 1), "the byte below");
        assertNotEqualsSpan(s, heap.spanOf(s.limit()), "the byte past the end");
    }

    static void assertNotEqualsSpan(MSpan s, MSpan other, String what) {
        assertTrue(other != s, what + " of " + s + " maps to it");
    }

    void assertUnmapped(long base, int npages) {
        for (int i = 0; i < npages; i++) {
            assertNull(heap.spanOf(base + i * PAGE), "page " + i + " after the free");
        }
    }

    // ───────────────────────────── small spans ─────────────────────────────

    static Stream<Arguments> smallClasses() {
        return Stream.of(
                Arguments.of("8 B objects, one page", sc(1), 1),
                Arguments.of("512 B objects, one page", sc(26), 26),
                Arguments.of("27264 B objects, 10 pages", sc(65), 65),
                Arguments.of("32 KiB objects, 4 pages", sc(67), 67),
                Arguments.of("tiny blocks", SizeClasses.TINY_SPAN_CLASS, SizeClasses.TINY_SIZE_CLASS));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("smallClasses")
    void allocSmallSpanMapsEveryPageToTheSpanUntilItIsFreed(String name, int spanClass, int sizeClass) {
        int npages = SizeClasses.classPages(sizeClass);
        MSpan s = heap.allocSmallSpan(spanClass, sizeClass, npages);
        assertEquals(MSpan.STATE_SMALL, s.state);
        assertEquals(npages, s.npages);
        assertEquals(spanClass, s.spanClass);
        assertEquals(SizeClasses.classObjects(sizeClass), s.nelems);
        assertEquals(0, s.base % PAGE);
        if (spanClass == SizeClasses.TINY_SPAN_CLASS) {
            assertNotNull(s.tinyMasks, "a tiny span gets its masks");
            assertTrue(s.tinyMasks.length >= s.nelems);
        }
        assertMapped(s);
        assertTrue(os.isState(s.base, npages * PAGE, MemState.READY), "only Ready memory leaves the heap");
        for (long p = s.base; p < s.limit(); p += OsMemory.PAGE_SIZE) {
            mem(p, 1).setByte(0, (byte) 7); // usable
        }
        MStats.Counters k = heap.counters();
        assertEquals(npages, k.pagesInUse());
        assertEquals(1, k.spansInUse());
        assertEquals(1, k.count(MStats.SPANS + spanClass));
        assertEquals(CHUNK, k.mappedBytes(), "one 4 MiB chunk mapped");
        assertEquals(CHUNK / PAGE - npages, k.scavengedPages(), "the rest of the fresh chunk is scavenged");
        assertEquals(npages * PAGE, k.osReady());
        assertEquals(CHUNK - npages * PAGE, k.osPrepared());
        assertEquals(s.tinyMasks != null ? 1 : 0, k.maskedSpansInUse(), "a span record with tiny masks is counted apart");
        heap.checkInvariants();

        long base = s.base;
        heap.freeSpan(s);
        assertEquals(MSpan.STATE_FREE, s.state);
        assertUnmapped(base, npages);
        k = heap.counters();
        assertEquals(0, k.pagesInUse());
        assertEquals(0, k.spansInUse());
        assertEquals(0, k.count(MStats.SPANS + spanClass));
        assertEquals(CHUNK / PAGE - npages, k.scavengedPages(), "freed pages go back unscavenged");
        assertEquals(npages * PAGE, k.osReady(), "and stay Ready");
        assertEquals(0, k.maskedSpansInUse());
        assertEquals(1, k.spansPooled(), "the span record is pooled");
        assertEquals(s.tinyMasks != null ? 1 : 0, k.maskedSpansPooled());
        heap.checkInvariants();

        MSpan again = heap.allocSmallSpan(spanClass, sizeClass, npages);
        assertSame(s, again, "the pooled record is reused");
        assertEquals(base, again.base, "first fit: the same pages");
        assertTrue(again.needZero, "reused Ready pages may hold old data");
        assertMapped(again);
        heap.checkInvariants();
    }

    // ───────────────────────────── large spans ─────────────────────────────

    static Stream<Arguments> largeObjects() {
        return Stream.of(
                Arguments.of("one byte", 1L, 1L),
                Arguments.of("zero bytes still get a page", 0L, 1L),
                Arguments.of("exactly one page", PAGE, 8L),
                Arguments.of("one byte over a page", PAGE + 1, 16L),
                Arguments.of("three pages, page aligned", 3 * PAGE, PAGE),
                Arguments.of("10000 B aligned to 16 KiB", 10_000L, 16 * KIB),
                Arguments.of("5000 B aligned to 64 KiB", 5000L, 64 * KIB),
                Arguments.of("100000 B aligned to 1 MiB", 100_000L, MIB),
                Arguments.of("1 MiB aligned to 1 MiB", MIB, MIB),
                Arguments.of("2 MiB + 1 aligned to 2 MiB", 2 * MIB + 1, 2 * MIB));
    }

    static long pagesFor(long bytes) {
        return (bytes + PAGE - 1) / PAGE;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("largeObjects")
    void allocLargeAlignsTheObjectInsideItsSpan(String name, long size, long align) {
        // One page first, so that the next free page is not aligned to anything above 8 KiB.
        MSpan first = heap.allocLarge(PAGE, 1);
        MSpan s = heap.allocLarge(size, align);
        assertEquals(first.limit(), s.base, "first fit: right after the first span");
        long obj = s.base + s.largeOffset;
        long bytes = Math.max(size, 1);
        assertEquals(0, obj % align, "object at 0x" + Long.toHexString(obj) + " aligned to " + align);
        assertTrue(s.largeOffset >= 0 && obj + bytes <= s.limit(), "the object lies inside its span " + s);
        long slack = align > PAGE ? align / PAGE - 1 : 0;
        assertTrue(s.npages <= pagesFor(bytes) + slack, s.npages + " pages: no more than the object and the alignment need");
        assertEquals(MSpan.STATE_LARGE, s.state);
        assertEquals(size, s.elemSize);
        assertEquals(1, s.largeState, "the object is live");
        assertSame(s, heap.spanOf(obj));
        assertSame(s, heap.spanOf(obj + bytes - 1));
        assertMapped(s);
        mem(obj, bytes).setByte(0, (byte) 1);
        mem(obj, bytes).setByte(bytes - 1, (byte) 1);

        MStats.Counters k = heap.counters();
        assertEquals(2, k.largeAllocs());
        assertEquals(PAGE + size, k.count(MStats.LARGE_ALLOC_BYTES));
        assertEquals(2, k.count(MStats.LIVE_OBJECTS));
        assertEquals(PAGE + size, k.count(MStats.LIVE_BYTES));
        assertEquals(1 + s.npages, k.largePagesInUse());
        assertEquals(1 + s.npages, k.pagesInUse());
        assertEquals(2, k.spansInUse());
        heap.checkInvariants();

        heap.freeSpan(s);
        assertUnmapped(s.base, s.npages);
        k = heap.counters();
        assertEquals(1, k.largeFrees());
        assertEquals(size, k.count(MStats.LARGE_FREE_BYTES));
        assertEquals(1, k.count(MStats.LIVE_OBJECTS));
        assertEquals(PAGE, k.count(MStats.LIVE_BYTES));
        assertEquals(1, k.largePagesInUse());
        assertEquals(1, k.pagesInUse());
        assertEquals(PAGE, k.largeBytesLive());
        heap.checkInvariants();
    }

    static Stream<Arguments> badLargeRequests() {
        return Stream.of(
                Arguments.of("negative size", -1L, 1L),
                Arguments.of("size over MAX_ALLOC", MHeap.MAX_ALLOC + 1, 1L),
                Arguments.of("alignment 0", 1L, 0L),
                Arguments.of("alignment not a power of two", 1L, 3L),
                Arguments.of("negative alignment", 1L, -8L),
                Arguments.of("alignment over MAX_ALLOC", 1L, 2 * MHeap.MAX_ALLOC));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("badLargeRequests")
    void allocLargeRefusesBadArgumentsAndChangesNothing(String name, long size, long align) {
        small(26);
        List<Object> before = figures(heap.counters());
        assertThrows(IllegalArgumentException.class, () -> heap.allocLarge(size, align));
        assertEquals(before, figures(heap.counters()));
    }

    // ───────────────────────────── random mix ─────────────────────────────

    static final int[] CLASSES = {1, 5, 26, 41, 65, 67};
    static final long[] ALIGNS = {1, 8, 4096, PAGE, 64 * KIB};

    @ParameterizedTest(name = "seed {0}")
    @ValueSource(longs = {7, 11, 31337})
    void randomSpansNeverOverlapAndTheCountersFollowThem(long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        List<MSpan> live = new ArrayList<>();
        for (int op = 0; op < 400; op++) {
            int r = rnd.nextInt(100);
            if (r < 40 || live.isEmpty()) {
                live.add(small(CLASSES[rnd.nextInt(CLASSES.length)]));
            } else if (r < 65) {
                live.add(heap.allocLarge(rnd.nextLong(0, 200 * KIB), ALIGNS[rnd.nextInt(ALIGNS.length)]));
            } else {
                MSpan s = live.remove(rnd.nextInt(live.size()));
                long base = s.base;
                int np = s.npages;
                heap.freeSpan(s);
                assertUnmapped(base, np);
            }
            if (op % 40 == 39) {
                checkAgainst(live);
            }
        }
        checkAgainst(live);
        for (MSpan s : live) {
            heap.freeSpan(s);
        }
        live.clear();
        checkAgainst(live);
    }

    private void checkAgainst(List<MSpan> live) {
        List<MSpan> sorted = new ArrayList<>(live);
        sorted.sort(Comparator.comparingLong(s -> s.base));
        for (int i = 0; i + 1 < sorted.size(); i++) {
            assertTrue(sorted.get(i).limit() <= sorted.get(i + 1).base, sorted.get(i) + " overlaps " + sorted.get(i + 1));
        }
        long pages = 0;
        long largePages = 0;
        long largeObjects = 0;
        long largeBytes = 0;
        Map<Integer, Long> perClass = new HashMap<>();
        for (MSpan s : live) {
            assertSame(s, heap.spanOf(s.base));
            assertSame(s, heap.spanOf(s.limit() - 1));
            pages += s.npages;
            if (s.state == MSpan.STATE_LARGE) {
                largePages += s.npages;
                largeObjects++;
                largeBytes += s.elemSize;
            } else {
                perClass.merge(s.spanClass, 1L, Long::sum);
            }
        }
        MStats.Counters k = heap.counters();
        assertEquals(pages, k.pagesInUse());
        assertEquals(live.size(), k.spansInUse());
        assertEquals(largePages, k.largePagesInUse());
        assertEquals(largeObjects, k.count(MStats.LIVE_OBJECTS), "the heap counts large objects only");
        assertEquals(largeBytes, k.count(MStats.LIVE_BYTES));
        for (int sc = 0; sc < MStats.NSC; sc++) {
            assertEquals(perClass.getOrDefault(sc, 0L), k.count(MStats.SPANS + sc), "spans of class " + sc);
        }
        assertEquals(k.totalPages() * PAGE, k.mappedBytes());
        assertEquals(k.mappedBytes(), k.osPrepared() + k.osReady(), "every mapped byte is Prepared or Ready");
        heap.checkInvariants();
    }

    // ───────────────────────────── the spans table's reader ─────────────────────────────

    /** Records every table published. */
    static final class Recorder implements SpanTable {
        final List<MSpan[]> tables = new ArrayList<>();
        final List<Long> bases = new ArrayList<>();

        @Override
        public void publishSpans(MSpan[] flat, long flatBase) {
            tables.add(flat);
            bases.add(flatBase);
        }

        MSpan at(int i, long addr) {
            return tables.get(i)[(int) ((addr - bases.get(i)) >>> SizeClasses.PAGE_SHIFT)];
        }
    }

    @Test
    void publishSpansToPublishesTheTableNowAndWhenItGrowsAndOnlyOnce() {
        Recorder r = new Recorder();
        heap.publishSpansTo(r);
        assertEquals(1, r.tables.size(), "published at once");
        assertEquals(0, r.tables.get(0).length, "a heap with no arena has an empty table");

        Recorder other = new Recorder();
        assertThrows(IllegalStateException.class, () -> heap.publishSpansTo(other));
        assertThrows(IllegalStateException.class, () -> heap.publishSpansTo(r));
        assertEquals(List.of(), other.tables, "the refused reader got nothing");

        MSpan a = heap.allocLarge(PAGE, 1);
        assertEquals(2, r.tables.size(), "the first arena: a new table");
        assertEquals(0, a.base % MHeap.ARENA_BYTES, "the first span opens the arena");
        assertEquals(a.base, r.bases.get(1));
        assertTrue(r.tables.get(1).length >= MHeap.PAGES_PER_ARENA, "covers the whole arena");
        assertSame(a, r.at(1, a.base), "entries are written into the published table");

        MSpan b = small(26);
        MSpan c = heap.allocLarge(MIB, 1); // more spans in the same arena: no new table
        assertEquals(2, r.tables.size());
        assertSame(b, r.at(1, b.base));
        assertSame(c, r.at(1, c.limit() - 1));
        heap.freeSpan(b);
        assertNull(r.at(1, b.base), "and cleared in it");

        // Past the arena: a new reservation. At the next hint it lies above the first, and the
        // table grows over it; if the kernel put it elsewhere, the arena index finds it.
        MSpan d = heap.allocLarge(65 * MIB, 1);
        assertSame(d, heap.spanOf(d.base));
        assertSame(d, heap.spanOf(d.limit() - 1));
        long flatBase = r.bases.get(1);
        if (d.base > flatBase && d.limit() - flatBase <= MHeap.FLAT_MAX_PAGES * PAGE) {
            assertEquals(3, r.tables.size(), "the table grew over the new reservation");
            assertEquals(flatBase, r.bases.get(2), "from the same base");
            assertTrue(r.tables.get(2).length > r.tables.get(1).length);
            assertSame(d, r.at(2, d.base));
            assertSame(d, r.at(2, d.limit() - 1));
            assertSame(a, r.at(2, a.base), "old entries are copied over");
            assertSame(c, r.at(2, c.base));
        } else {
            assertEquals(2, r.tables.size(), "a reservation the flat table cannot cover: no new table");
        }
        heap.checkInvariants();

        int n = r.tables.size();
        heap.releaseAll();
        heap = null;
        assertEquals(n + 1, r.tables.size(), "close publishes an empty table");
        assertEquals(0, r.tables.get(n).length);
    }

    // ───────────────────────────── counters ─────────────────────────────

    @Test
    void countersFollowSpansPagesAndTheOsLayer() {
        MStats.Counters k = heap.counters();
        assertEquals(List.of(0L, 0L, 0L, 0L, 0L, 0L, 0L, 0L, 0L, 0L, 0L, 0L, 0L), figures(k).subList(0, 13));
        assertArrayEquals(new long[MStats.N], k.counts());

        MSpan s1 = small(26);
        k = heap.counters();
        assertEquals(CHUNK, k.mappedBytes());
        assertEquals(CHUNK / PAGE, k.totalPages());
        assertEquals(1, k.pagesInUse());
        assertEquals(1, k.spansInUse());
        assertEquals(CHUNK / PAGE - 1, k.scavengedPages());
        assertEquals(MHeap.ARENA_BYTES, k.reservedBytes());
        assertEquals(1, k.arenas());
        assertEquals(MHeap.ARENA_BYTES - CHUNK, k.osReserved());
        assertEquals(CHUNK - PAGE, k.osPrepared());
        assertEquals(PAGE, k.osReady());
        assertEquals(1, k.count(MStats.SPANS + sc(26)));

        MSpan s2 = small(26);
        MSpan s3 = small(65);
        MSpan big = heap.allocLarge(100_000, 1); // 13 pages
        k = heap.counters();
        assertEquals(1 + 1 + 10 + 13, k.pagesInUse());
        assertEquals(4, k.spansInUse());
        assertEquals(2, k.count(MStats.SPANS + sc(26)));
        assertEquals(1, k.count(MStats.SPANS + sc(65)));
        assertEquals(1, k.largeAllocs());
        assertEquals(100_000, k.count(MStats.LARGE_ALLOC_BYTES));
        assertEquals(13, k.largePagesInUse());
        assertEquals(1, k.count(MStats.LIVE_OBJECTS));
        assertEquals(100_000, k.count(MStats.LIVE_BYTES));
        assertEquals(25 * PAGE, k.osReady());
        assertEquals(CHUNK / PAGE - 25, k.scavengedPages());
        assertEquals(4, k.spansInUse());
        assertEquals((s1.tinyMasks != null ? 1 : 0) + (s2.tinyMasks != null ? 1 : 0) + (s3.tinyMasks != null ? 1 : 0)
                + (big.tinyMasks != null ? 1 : 0), k.maskedSpansInUse());
        heap.checkInvariants();

        heap.freeSpan(s1);
        heap.freeSpan(big);
        k = heap.counters();
        assertEquals(11, k.pagesInUse());
        assertEquals(2, k.spansInUse());
        assertEquals(1, k.count(MStats.SPANS + sc(26)));
        assertEquals(1, k.largeFrees());
        assertEquals(100_000, k.count(MStats.LARGE_FREE_BYTES));
        assertEquals(0, k.largePagesInUse());
        assertEquals(0, k.count(MStats.LIVE_OBJECTS));
        assertEquals(0, k.count(MStats.LIVE_BYTES));
        assertEquals(25 * PAGE, k.osReady(), "freed pages stay Ready until scavenged");
        assertEquals(CHUNK / PAGE - 25, k.scavengedPages());
        assertEquals(14, k.freePages() - k.scavengedPages(), "14 free pages are not scavenged");
        heap.checkInvariants();

        MSpan huge = heap.allocLarge(5 * MIB, 1); // more than the chunk has left: two chunks more
        k = heap.counters();
        assertEquals(3 * CHUNK, k.mappedBytes());
        assertEquals(3 * CHUNK / PAGE, k.totalPages());
        assertEquals(11 + huge.npages, k.pagesInUse());
        assertEquals(MHeap.ARENA_BYTES - 3 * CHUNK, k.osReserved());
        assertEquals(k.mappedBytes(), k.osPrepared() + k.osReady());
        heap.checkInvariants();
    }

    // ───────────────────────────── the hard limit ─────────────────────────────

    /** A refused allocation changes nothing; the heap goes on serving what fits. */
    @Test
    void theHardLimitRefusesAnAllocationAndChangesNothing() {
        limited(Long.MAX_VALUE, 256 * KIB);
        List<Object> fresh = figures(heap.counters());
        MemoryLimitExceededError e = assertThrows(MemoryLimitExceededError.class, () -> heap.allocLarge(512 * KIB, 1));
        assertEquals(256 * KIB, e.limit());
        assertEquals(512 * KIB, e.requested());
        assertEquals(0, e.ready());
        assertEquals(fresh, figures(heap.counters()), "a fresh heap refused: not even grown");

        MSpan big = heap.allocLarge(200 * KIB, 1); // 25 pages
        List<Object> before = figures(heap.counters());
        e = assertThrows(MemoryLimitExceededError.class, () -> small(65)); // 10 pages more: 280 KiB
        assertEquals(200 * KIB, e.ready());
        assertEquals(10 * PAGE, e.requested());
        assertEquals(before, figures(heap.counters()), "nothing changed");
        assertThrows(MemoryLimitExceededError.class, () -> heap.allocLarge(57 * KIB, 1), "8 pages: 264 KiB");
        assertEquals(before, figures(heap.counters()));
        heap.checkInvariants();

        MSpan s = small(26); // one page: 208 KiB
        MSpan t = heap.allocLarge(48 * KIB, 1); // six: exactly 256 KiB
        MStats.Counters k = heap.counters();
        assertEquals(256 * KIB, k.osReady());
        assertThrows(MemoryLimitExceededError.class, () -> heap.allocLarge(1, 1), "at the limit, one page more is refused");
        assertEquals(figures(k), figures(heap.counters()));
        heap.freeSpan(s);
        heap.freeSpan(t);
        heap.freeSpan(big);
        heap.checkInvariants();
    }

    @Test
    void theHardLimitReleasesFreePagesToMakeRoom() {
        limited(Long.MAX_VALUE, 256 * KIB);
        MSpan big = heap.allocLarge(200 * KIB, 1); // 25 pages Ready
        heap.freeSpan(big); // free, still Ready
        MStats.Counters k = heap.counters();
        assertEquals(200 * KIB, k.osReady());
        long scavenged = k.scavengedPages();
        // 104 KiB more would make 304 KiB: six free pages (48 KiB) go back to the OS first.
        MSpan s = heap.allocLarge(100_000, 1);
        assertEquals(13, s.npages);
        k = heap.counters();
        assertEquals(scavenged + 6, k.scavengedPages(), "exactly the excess was released");
        assertTrue(k.osReady() <= 256 * KIB, "Ready " + k.osReady());
        assertEquals(19 * PAGE, k.osReady(), "13 pages in use and 6 free ones stay Ready");
        heap.checkInvariants();
    }

    /**
     * When even releasing every free page leaves no room, the allocation is refused and nothing
     * is allocated; the free pages were released on the way (the scavenger releases before it
     * knows whether that is enough), which changes only the Ready/scavenged figures.
     */
    @Test
    void aRefusalAfterReleasingEveryFreePageAllocatesNothing() {
        limited(Long.MAX_VALUE, 256 * KIB);
        MSpan big = heap.allocLarge(200 * KIB, 1); // 25 pages, kept
        MSpan gone = heap.allocLarge(40 * KIB, 1); // 5 pages, freed below: Ready 240 KiB
        heap.freeSpan(gone);
        MStats.Counters before = heap.counters();
        MemoryLimitExceededError e = assertThrows(MemoryLimitExceededError.class, () -> heap.allocLarge(64 * KIB, 1));
        MStats.Counters after = heap.counters();
        assertEquals(200 * KIB, e.ready(), "every free page released, still no room");
        assertEquals(before.scavengedPages() + 5, after.scavengedPages());
        assertEquals(before.osReady() - 40 * KIB, after.osReady());
        assertEquals(before.osPrepared() + 40 * KIB, after.osPrepared());
        // Everything else is as it was.
        assertEquals(before.pagesInUse(), after.pagesInUse());
        assertEquals(before.spansInUse(), after.spansInUse());
        assertEquals(before.mappedBytes(), after.mappedBytes());
        assertEquals(before.totalPages(), after.totalPages());
        assertArrayEquals(before.counts(), after.counts());
        assertSame(big, heap.spanOf(big.base));
        heap.checkInvariants();
    }

    @Test
    void aSoftLimitAloneReleasesFreePagesButRefusesNothing() {
        limited(256 * KIB, Long.MAX_VALUE);
        MSpan big = heap.allocLarge(200 * KIB, 1);
        heap.freeSpan(big);
        MSpan s = assertDoesNotThrow(() -> heap.allocLarge(512 * KIB, 1));
        MStats.Counters k = heap.counters();
        assertEquals(512 * KIB, k.osReady(), "every free page was released; the object is past the soft limit");
        assertEquals(k.freePages(), k.scavengedPages());
        heap.freeSpan(s);
        heap.checkInvariants();
    }

    // ───────────────────────────── returning pages to the OS ─────────────────────────────

    @Test
    void releaseFreePagesReturnsFreedPagesToTheOsAndTheKernelAgrees() {
        MSpan keep = heap.allocLarge(64 * KIB, 1);
        MSpan victim = heap.allocLarge(128 * KIB, 1);
        long vBase = victim.base;
        long vLen = victim.npages * PAGE;
        mem(keep.base, 64 * KIB).fill((byte) 1);
        mem(vBase, vLen).fill((byte) 2);
        assertEquals(vLen, KernelView.residentBytes(vBase, vLen), "touched: resident");
        assertEquals(vLen, KernelView.rssBytes(vBase, vLen));

        heap.freeSpan(victim);
        assertEquals(vLen, KernelView.residentBytes(vBase, vLen), "a free alone releases nothing");
        assertEquals(CHUNK / PAGE - 8 - 16, heap.counters().scavengedPages(), "the freed pages are not scavenged");

        assertEquals(vLen, heap.releaseFreePages(), "exactly the freed pages: the rest of the chunk is scavenged already");
        assertEquals(0, KernelView.residentBytes(vBase, vLen), "the kernel took them back");
        assertTrue(os.isState(vBase, vLen, MemState.PREPARED));
        assertEquals(64 * KIB, KernelView.residentBytes(keep.base, 64 * KIB), "the live span keeps its memory");
        assertEquals(1, mem(keep.base, 64 * KIB).getByte(64 * KIB - 1), "and its contents");
        MStats.Counters k = heap.counters();
        assertEquals(k.freePages(), k.scavengedPages(), "every free page is scavenged");
        assertEquals(64 * KIB, k.osReady());
        assertEquals(0, heap.releaseFreePages(), "nothing left to release");
        heap.checkInvariants();

        // Allocated again, the pages are made Ready and read as zero.
        MSpan back = heap.allocLarge(128 * KIB, 1);
        assertEquals(vBase, back.base);
        assertFalse(back.needZero, "wholly scavenged with DONTNEED: known zero");
        assertTrue(os.isState(vBase, vLen, MemState.READY));
        assertEquals(0, mem(vBase, vLen).getByte(0));
        assertEquals(0, mem(vBase, vLen).getByte(vLen - 1));
        heap.checkInvariants();
    }

    // ───────────────────────────── OS pages released inside an in-use span ─────────────────────────────

    static Stream<Arguments> releasedMasks() {
        return Stream.of(
                Arguments.of("one OS page", 1L << 3),
                Arguments.of("both OS pages of one heap page", 3L << 4),
                Arguments.of("a run across heap pages", 0x7eL),
                Arguments.of("every other OS page", 0x55555L),
                Arguments.of("every OS page", (1L << 20) - 1));
    }

    /** A 10-page span of class 65 (20 OS pages of 4 KiB); {@code mask} bit k: its k-th OS page. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("releasedMasks")
    void osPagesReleasedInsideASpanAreCountedReusedAndFreedScavenged(String name, long mask) {
        long os4k = OsMemory.PAGE_SIZE;
        int perPage = (int) (PAGE / os4k);
        MSpan s = small(65);
        int osPages = (int) (s.npages * PAGE / os4k);
        assertTrue(mask >>> osPages == 0);
        mem(s.base, s.npages * PAGE).fill((byte) 3);
        MStats.Counters before = heap.counters();

        heap.releaseSpanPages(s, mask);
        assertEquals(mask, s.releasedMask);
        MStats.Counters k = heap.counters();
        assertEquals(Long.bitCount(mask) * os4k, k.spanReleasedBytes());
        assertEquals(before.osReady() - Long.bitCount(mask) * os4k, k.osReady());
        assertEquals(before.pagesInUse(), k.pagesInUse(), "the span's pages stay in use");
        for (int i = 0; i < osPages; i++) {
            boolean released = (mask >>> i & 1) != 0;
            long q = s.base + i * os4k;
            assertEquals(released ? MemState.PREPARED : MemState.READY, os.stateAt(q), "OS page " + i);
            assertEquals(released ? 0 : os4k, KernelView.residentBytes(q, os4k), "OS page " + i + " resident");
        }
        heap.checkInvariants();
        heap.releaseSpanPages(s, mask);
        assertEquals(k.spanReleasedBytes(), heap.counters().spanReleasedBytes(), "released twice, counted once");

        heap.reuseSpanPages(s);
        assertEquals(0, s.releasedMask);
        k = heap.counters();
        assertEquals(0, k.spanReleasedBytes());
        assertEquals(before.osReady(), k.osReady());
        assertTrue(os.isState(s.base, s.npages * PAGE, MemState.READY));
        heap.checkInvariants();

        // Released again, then freed: a heap page with any released OS page goes back scavenged (its
        // other OS page released too, with no page made Ready), the others go back as they are.
        heap.releaseSpanPages(s, mask);
        long base = s.base;
        int npages = s.npages;
        long scavenged = heap.counters().scavengedPages();
        heap.freeSpan(s);
        k = heap.counters();
        int touched = 0;
        heap.lock.lock();
        try {
            for (int p = 0; p < npages; p++) {
                boolean any = (mask >>> (p * perPage) & ((1L << perPage) - 1)) != 0;
                touched += any ? 1 : 0;
                long a = base + p * PAGE;
                assertEquals(any, heap.pageAlloc.isScavenged(a), "heap page " + p + " scavenged");
                assertEquals(any ? MemState.PREPARED : MemState.READY, os.stateAt(a), "heap page " + p);
                assertEquals(any ? MemState.PREPARED : MemState.READY, os.stateAt(a + PAGE - os4k), "heap page " + p + ", last OS page");
            }
        } finally {
            heap.lock.unlock();
        }
        assertEquals(scavenged + touched, k.scavengedPages());
        assertEquals(0, k.spanReleasedBytes());
        assertEquals(before.osReady() - touched * PAGE, k.osReady());
        heap.checkInvariants();
    }

    @Test
    void reusingReleasedSpanPagesPastTheHardLimitIsRefusedWithNothingChanged() {
        limited(Long.MAX_VALUE, 80 * KIB + 8 * KIB); // the span (80 KiB) and one page more
        MSpan s = small(65);
        heap.releaseSpanPages(s, 0xffL); // 32 KiB back to the OS
        MSpan other = heap.allocLarge(32 * KIB, 1); // Ready: 48 + 32 = 80 KiB
        List<Object> before = figures(heap.counters());
        assertThrows(MemoryLimitExceededError.class, () -> heap.reuseSpanPages(s), "32 KiB more would make 112 KiB");
        assertEquals(0xffL, s.releasedMask, "still released");
        assertEquals(before, figures(heap.counters()));
        heap.freeSpan(other);
        heap.reuseSpanPages(s); // room now: the freed pages are released to make it
        assertEquals(0, s.releasedMask);
        assertTrue(heap.counters().osReady() <= 88 * KIB);
        heap.checkInvariants();
    }

    // ───────────────────────────── no system call under the heap lock (issue 12) ─────────────────────────────

    /**
     * Releasing a span's free OS pages, making them Ready again, freeing a span with released
     * pages (the rest of those heap pages go to the OS), faulting a span and scavenging: no system
     * call holds the heap lock. Only making a new span's pages Ready and growing the heap may
     * (see MHeap's comment).
     */
    @Test
    void noSystemCallOnTheReleaseReuseFreeAndFaultPathsHoldsTheHeapLock() {
        org.junit.jupiter.api.Assumptions.assumeTrue(OsMemory.PAGE_SIZE < PAGE, "OS pages inside heap pages");
        try (OsCallWatch w = OsCallWatch.of(heap)) {
            w.phase = "allocate";
            MSpan s = small(65); // 10 pages, 20 OS pages of 4 KiB
            MSpan big = heap.allocLarge(3 * PAGE, 1);
            MSpan gone = heap.allocLarge(5 * PAGE, 1);
            w.phase = "release";
            heap.releaseSpanPages(s, 0x55555L); // every other OS page: each heap page half released
            w.phase = "reuse";
            heap.reuseSpanPages(s);
            w.phase = "release";
            heap.releaseSpanPages(s, 0x55555L);
            w.phase = "free";
            heap.freeSpan(s); // the other halves go to the OS, then the pages back scavenged
            heap.freeSpan(gone);
            w.phase = "fault";
            heap.faultSpan(big);
            w.phase = "scavenge";
            heap.scavengeBackground(Long.MAX_VALUE);
            heap.releaseFreePages();

            for (String[] want : new String[][] {{"release", "sysUnused"}, {"reuse", "sysUsed"}, {"free", "sysUnused"},
                    {"fault", "sysFault"}, {"scavenge", "sysUnused"}}) {
                assertTrue(w.calls.stream().anyMatch(c -> c.phase().equals(want[0]) && c.name().equals(want[1])),
                        want[1] + " in phase " + want[0] + ": " + w.calls);
            }
            assertEquals(List.of(), w.calls.stream().filter(c -> !c.phase().equals("allocate") && !c.held().isEmpty())
                    .map(c -> c.phase() + ": " + c.held() + " held across " + c.name()).distinct().toList());
        }
        heap.checkInvariants();
    }

    @Test
    void makingRoomUnderTheHardLimitReleasesWithTheHeapLockDropped() {
        limited(Long.MAX_VALUE, 256 * KIB);
        MSpan big = heap.allocLarge(200 * KIB, 1);
        heap.freeSpan(big);
        try (OsCallWatch w = OsCallWatch.of(heap)) {
            MSpan s = heap.allocLarge(100_000, 1); // six free pages go to the OS first
            List<OsCallWatch.Call> released = w.named("sysUnused");
            assertEquals(1, released.size(), "one run: " + w.calls);
            assertEquals(List.of(), released.get(0).held(), "the heap lock is dropped for " + released.get(0).line());
            heap.freeSpan(s);
        }
        heap.checkInvariants();
    }

    // ───────────────────────────── releaseAll ─────────────────────────────

    @Test
    void releaseAllUnmapsEverythingAndTheHeapRefusesToAllocateAfter() {
        MSpan s = small(26);
        MSpan big = heap.allocLarge(300 * KIB, 1);
        long arena = s.base & -MHeap.ARENA_BYTES;
        assertEquals("rw-p", KernelView.permsAt(s.base));
        heap.releaseAll();
        MHeap closed = heap;
        heap = null;

        assertNull(closed.spanOf(s.base));
        assertNull(closed.spanOf(big.base));
        assertNull(closed.spanOf(big.limit() - 1));
        assertFalse(closed.isMapped(s.base));
        assertEquals(MemState.NONE, os.stateAt(s.base));
        assertEquals(List.of(), KernelView.mappings(arena, MHeap.ARENA_BYTES), "the kernel has nothing mapped in the arena");
        assertThrows(IllegalStateException.class, () -> closed.allocSmallSpan(sc(26), 26, 1));
        assertThrows(IllegalStateException.class, () -> closed.allocLarge(PAGE, 1));
        assertThrows(IllegalStateException.class, () -> closed.reuseSpanPages(s));
        assertDoesNotThrow(() -> closed.freeSpan(big), "a free racing with close is ignored");
        assertEquals(0, closed.releaseFreePages(), "the scavenger is stopped");
        assertNull(closed.spanOf(s.base));
    }

    // ───────────────────────────── checkInvariants can fail ─────────────────────────────

    static Stream<Arguments> corruptions() {
        return Stream.of(
                Arguments.of("a live span's page returned to the OS behind the heap's back",
                        (Consumer<MHeapTest>) t -> t.os.sysUnused(t.victim.base, OsMemory.PAGE_SIZE)),
                Arguments.of("a live span's pages freed in the page allocator", (Consumer<MHeapTest>) t -> {
                    t.heap.lock.lock();
                    try {
                        t.heap.pageAlloc.free(t.victim.base, t.victim.npages);
                    } finally {
                        t.heap.lock.unlock();
                    }
                }),
                Arguments.of("a free page made Ready behind the heap's back",
                        (Consumer<MHeapTest>) t -> t.os.sysUsed(t.victim.limit() + 4 * PAGE, PAGE)),
                Arguments.of("a span record marked free while mapped", (Consumer<MHeapTest>) t -> t.victim.state = MSpan.STATE_FREE));
    }

    MSpan victim;

    @ParameterizedTest(name = "{0}")
    @MethodSource("corruptions")
    void checkInvariantsFailsWhenTheHeapDisagreesWithItself(String name, Consumer<MHeapTest> corrupt) {
        small(26);
        victim = heap.allocLarge(3 * PAGE, 1);
        small(1);
        assertDoesNotThrow(heap::checkInvariants);
        corrupt.accept(this);
        assertThrows(IllegalStateException.class, heap::checkInvariants, name);
    }

    /** {@code gomem.checkInvariants}: the pom's check-invariants execution sets it; the checks below exist only then. */
    static final boolean CHECK = io.gomem.internal.Options.CHECK_INVARIANTS.booleanValue();

    /** {@code name}, and how to break the rule: the check must throw IllegalStateException mentioning {@code what}. */
    static Stream<Arguments> brokenRules() {
        long os4k = OsMemory.PAGE_SIZE;
        return Stream.of(
                Arguments.of("grow without the heap lock (refused before it reserves anything)", "mheap: the heap lock",
                        (Consumer<MHeapTest>) t -> {
                            try {
                                t.heap.grow(1);
                            } finally {
                                assertEquals(0, t.heap.counters().reservedBytes(), "nothing reserved");
                            }
                        }),
                Arguments.of("a span's OS page made Prepared behind the heap's back, seen after releaseSpanPages", "OS page",
                        (Consumer<MHeapTest>) t -> {
                            MSpan s = t.small(65);
                            t.os.sysUnused(s.base + 3 * os4k, os4k);
                            t.heap.releaseSpanPages(s, 1L);
                        }),
                Arguments.of("... after reuseSpanPages", "OS page", (Consumer<MHeapTest>) t -> {
                    MSpan s = t.small(65);
                    t.heap.releaseSpanPages(s, 1L);
                    t.os.sysUnused(s.base + 3 * os4k, os4k);
                    t.heap.reuseSpanPages(s);
                }),
                Arguments.of("a span's pages freed behind the heap's back, seen after faultSpan", "allocated false",
                        (Consumer<MHeapTest>) t -> {
                            MSpan big = t.heap.allocLarge(3 * PAGE, 1);
                            t.heap.lock.lock();
                            try {
                                t.heap.pageAlloc.free(big.base, big.npages);
                            } finally {
                                t.heap.lock.unlock();
                            }
                            t.heap.faultSpan(big);
                        }),
                Arguments.of("the page allocator grown behind the heap's back, seen when the heap grows", "mapped",
                        (Consumer<MHeapTest>) t -> {
                            t.heap.lock.lock();
                            try {
                                t.heap.pageAlloc.grow(0x7e00_0000_0000L, CHUNK); // never mapped: no allocation may land there
                            } finally {
                                t.heap.lock.unlock();
                            }
                            t.heap.allocLarge(2 * CHUNK, 1); // larger than that chunk: the heap grows
                        }));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("brokenRules")
    void checkInvariantsAssertsTheLockAndChecksWhatEachOperationChanged(String name, String what, Consumer<MHeapTest> broken) {
        org.junit.jupiter.api.Assumptions.assumeTrue(CHECK, "only with -Dgomem.checkInvariants=true");
        org.junit.jupiter.api.Assumptions.assumeTrue(OsMemory.PAGE_SIZE < PAGE, "OS pages inside heap pages");
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> broken.accept(this));
        assertTrue(e.getMessage().contains(what), e.getMessage());
    }
}
