package io.gomem.heap;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.function.Consumer;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * MCache alone: one P's cache over the centrals of every span class, themselves over
 * {@link MCentralTest.FakeSource} (made-up addresses, no memory, no heap). Only small classes
 * and the tiny class are used, so the cache's heap is null.
 */
class MCacheTest {
    /** The fake source, plus the tiny masks the real heap gives every tiny span. */
    static final class Source implements SpanSource {
        final MCentralTest.FakeSource fake = new MCentralTest.FakeSource();
        private final TreeMap<Long, MSpan> byBase = new TreeMap<>();

        /** Thrown by the next allocSmallSpan (as the heap throws at its hard limit), then cleared. */
        RuntimeException failNext;

        @Override
        public MSpan allocSmallSpan(int spanClass, int sizeClass, int npages) {
            RuntimeException f = failNext;
            if (f != null) {
                failNext = null;
                throw f;
            }
            MSpan s = fake.allocSmallSpan(spanClass, sizeClass, npages);
            byBase.put(s.base, s);
            if (spanClass == SizeClasses.TINY_SPAN_CLASS) {
                s.tinyMasks = new int[s.nelems];
            }
            return s;
        }

        @Override
        public void freeSpan(MSpan s) {
            fake.freeSpan(s);
        }

        @Override
        public void releaseSpanPages(MSpan s, long mask) {
            fake.releaseSpanPages(s, mask);
        }

        @Override
        public void reuseSpanPages(MSpan s) {
            fake.reuseSpanPages(s);
        }

        List<MSpan> given() {
            return fake.given;
        }

        /** The span handed out that holds {@code addr}; fails if none does. */
        MSpan spanOf(long addr) {
            Map.Entry<Long, MSpan> e = byBase.floorEntry(addr);
            if (e != null && addr < e.getValue().limit()) {
                return e.getValue();
            }
            throw new AssertionError("no span holds 0x" + Long.toHexString(addr));
        }
    }

    static final int TINY = SizeClasses.TINY_SPAN_CLASS;

    Source source;
    MStats stats;
    MCentral[] central;
    MCache cache;

    @BeforeEach
    void setUp() {
        source = new Source();
        stats = new MStats();
        central = MCentral.forEveryClass(source, stats);
        cache = new MCache(null, central, stats, 0);
        assertTrue(cache.tryLease(), "a new cache is free to lease");
    }

    @AfterEach
    void tearDown() {
        cache.release();
    }

    static int sc(int sizeClass) {
        return SizeClasses.spanClass(sizeClass, true);
    }

    /** Frees the slot at {@code addr} as a freeing thread does: mark, and tell the central if the span sits full there. */
    void free(long addr) {
        MSpan s = source.spanOf(addr);
        int idx = s.slotOf(addr);
        assertTrue(idx >= 0, "0x" + Long.toHexString(addr) + " is a slot start");
        if (s.markFree(idx, addr)) {
            central[s.spanClass].onFree(s);
        }
    }

    // ───────────────────────────── lease ─────────────────────────────

    @Test
    void theLeaseIsTakenByOneCallerAtATimeAndNeverAgainOnceClosed() {
        assertFalse(cache.tryLease(), "leased in setUp: a second lease is refused");
        cache.release();
        assertTrue(cache.tryLease(), "released: it can be leased again");
        cache.closeLease();
        assertFalse(cache.tryLease(), "closed: never leased again");
        cache.release(); // for tearDown's release to be harmless, as after a normal lease
    }

    // ───────────────────────────── small allocation and refill ─────────────────────────────

    static Stream<Arguments> smallClasses() {
        return Stream.of(
                Arguments.of("8 B, 1024 slots: crosses 64-slot cache words", 1),
                Arguments.of("24 B, 341 slots: a partial last word", 3),
                Arguments.of("512 B, 16 slots", 26),
                Arguments.of("27264 B, 3 slots in a 10-page span", 65),
                Arguments.of("32 KiB, 1 slot in a 4-page span", 67));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("smallClasses")
    void allocSmallHandsOutDistinctSlotsOfTheClassAndRefillsWhenTheSpanIsExhausted(String name, int sizeClass) {
        int sc = sc(sizeClass);
        int n = SizeClasses.classObjects(sizeClass);
        long size = SizeClasses.classSize(sizeClass);
        Set<Long> seen = new HashSet<>();
        List<MSpan> cachedAfterEach = new ArrayList<>();
        for (int i = 0; i < 2 * n + 1; i++) {
            long p = cache.allocSmall(sc);
            assertTrue(seen.add(p), "slot 0x" + Long.toHexString(p) + " handed out twice");
            MSpan s = source.spanOf(p);
            assertEquals(sc, s.spanClass, "the slot comes from a span of the class asked for");
            assertSame(s, cache.alloc[sc], "and from the span the cache holds for it");
            // Slots in slot order, from a fresh span: the i-th object of the span is slot i % n.
            assertEquals(s.base + (i % n) * size, p, "object " + i);
            cachedAfterEach.add(s);
        }
        List<MSpan> given = source.given();
        assertEquals(3, given.size(), "one span per n objects: two refills after the first");
        for (int i = 0; i < 2 * n + 1; i++) {
            assertSame(given.get(i / n), cachedAfterEach.get(i), "object " + i + " is in span " + i / n);
        }
        // The exhausted spans went back to the central (full, armed for a free); the third is cached.
        for (int k = 0; k < 2; k++) {
            assertEquals(MSpan.IN_FULL, given.get(k).where, "span " + k);
            assertTrue(given.get(k).notifyCentral, "span " + k + " armed");
            assertEquals(n, given.get(k).allocCount);
        }
        assertEquals(MSpan.IN_CACHE, given.get(2).where);
        assertEquals(1, given.get(2).allocCount);
        assertEquals(3, cache.refills);
        assertEquals(0, cache.sweepsInPlace);
        assertEquals(3, central[sc].spanCount());
        assertEquals(1, cache.cachedSpans());
        cache.checkInvariants();
        central[sc].checkInvariants();
    }

    @Test
    void theScanAndNoscanVariantsOfOneSizeClassAreDifferentSpans() {
        long a = cache.allocSmall(SizeClasses.spanClass(26, true));
        long b = cache.allocSmall(SizeClasses.spanClass(26, false));
        assertNotSame(source.spanOf(a), source.spanOf(b));
        assertEquals(SizeClasses.spanClass(26, false), source.spanOf(b).spanClass);
        assertEquals(2, cache.cachedSpans());
    }

    @Test
    void aRefillTakesAPartialSpanFromTheCentralBeforeANewOne() {
        int sc = sc(26);
        int n = SizeClasses.classObjects(26);
        List<Long> first = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            first.add(cache.allocSmall(sc));
        }
        cache.allocSmall(sc); // span 0 full, back to the central; span 1 cached
        MSpan s0 = source.given().get(0);
        free(first.get(7)); // the first free of a full span tells the central
        assertEquals(MSpan.IN_FULL, s0.where, "queued, moved at the central's next operation");
        for (int i = 1; i < n; i++) {
            cache.allocSmall(sc); // exhaust span 1
        }
        long p = cache.allocSmall(sc);
        assertEquals(first.get(7), p, "the refill got span 0 back, swept: its freed slot is reused");
        assertEquals(2, source.given().size(), "no third span");
        assertSame(s0, cache.alloc[sc]);
        assertEquals(MSpan.IN_FULL, source.given().get(1).where);
    }

    static Stream<Arguments> pendingFrees() {
        int n = SizeClasses.classObjects(26);
        List<Integer> everyOther = new ArrayList<>();
        List<Integer> all = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            all.add(i);
            if (i % 2 == 1) {
                everyOther.add(i);
            }
        }
        return Stream.of(
                Arguments.of("one slot in the middle", List.of(5)),
                Arguments.of("the first and the last", List.of(0, n - 1)),
                Arguments.of("every other slot", everyOther),
                Arguments.of("every slot", all));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("pendingFrees")
    void anExhaustedSpanWithPendingFreesIsSweptInPlaceAndReused(String name, List<Integer> freed) {
        int sc = sc(26);
        int n = SizeClasses.classObjects(26);
        long size = SizeClasses.classSize(26);
        for (int i = 0; i < n; i++) {
            cache.allocSmall(sc);
        }
        MSpan s = cache.alloc[sc];
        for (int idx : freed) {
            assertFalse(s.markFree(idx, s.base + idx * size), "a cached span tells no central");
        }
        // The next allocations take exactly the freed slots, lowest first, from the same span.
        for (int idx : freed) {
            assertEquals(s.base + idx * size, cache.allocSmall(sc), "freed slot " + idx);
            assertSame(s, cache.alloc[sc]);
        }
        assertEquals(1, source.given().size(), "no refill from the central");
        assertEquals(1, cache.refills);
        assertEquals(1, cache.sweepsInPlace);
        assertEquals(MSpan.IN_CACHE, s.where);
        // Kept by the cache at the sweep (no shared atomics every span's worth of pairs): nothing
        // counted yet; a flush counts the span's allocations and what the sweep reclaimed together.
        long[] c0 = stats.cut();
        assertEquals(0, c0[MStats.MALLOCS + sc]);
        assertEquals(0, c0[MStats.FREES + sc]);
        assertEquals(n, cache.allocs[sc], "the allocations before the sweep, kept by the cache");
        assertEquals(freed.size(), cache.sweptInPlace[sc]);
        MSpan cached = cache.alloc[sc];
        int sinceSweep = cached.allocCount - cached.cachedAllocCount;
        cache.flushCounts();
        long[] c = stats.cut();
        assertEquals(n + sinceSweep, c[MStats.MALLOCS + sc]);
        assertEquals(0, cache.allocs[sc]);
        assertEquals(0, cache.sweptInPlace[sc]);
        c[MStats.MALLOCS + sc] -= sinceSweep; // compare with the figures at the sweep
        c[MStats.LIVE_OBJECTS] -= sinceSweep;
        c[MStats.LIVE_BYTES] -= sinceSweep * size;
        assertEquals(n, c[MStats.MALLOCS + sc]);
        assertEquals(freed.size(), c[MStats.FREES + sc]);
        assertEquals(n - freed.size(), c[MStats.LIVE_OBJECTS]);
        assertEquals((n - freed.size()) * size, c[MStats.LIVE_BYTES]);
        cache.checkInvariants();
        // Full again, no frees pending: now a refill.
        cache.allocSmall(sc);
        assertEquals(2, source.given().size());
        assertEquals(MSpan.IN_FULL, s.where);
        assertEquals(1, cache.sweepsInPlace);
    }

    @Test
    void aRefillThatFailsLeavesNoSpanCachedAndTheOldOneFiledAndCounted() {
        int sc = sc(26);
        int n = SizeClasses.classObjects(26);
        for (int i = 0; i < n; i++) {
            cache.allocSmall(sc);
        }
        MSpan old = cache.alloc[sc];
        RuntimeException refused = new RuntimeException("no span");
        source.failNext = refused;
        assertSame(refused, assertThrows(RuntimeException.class, () -> cache.allocSmall(sc)));
        assertSame(MCache.EMPTY, cache.alloc[sc], "the span given back is not kept");
        assertEquals(MSpan.IN_FULL, old.where, "it is filed in its central");
        assertEquals(0, cache.cachedSpans());
        assertEquals(n, stats.cut()[MStats.MALLOCS + sc], "and its allocations were counted as it left");
        cache.checkInvariants();
        central[sc].checkInvariants();
        long p = cache.allocSmall(sc); // the source recovered
        assertEquals(2, source.given().size());
        assertSame(source.given().get(1), source.spanOf(p));
    }

    // ───────────────────────────── counting ─────────────────────────────

    @Test
    void theFastPathCountsNothingUntilFlushCounts() {
        int sc = sc(26);
        for (int i = 0; i < 3; i++) {
            cache.allocSmall(sc);
        }
        for (int i = 0; i < 5; i++) {
            cache.allocTiny(1);
        }
        long[] c = stats.cut();
        assertEquals(0, c[MStats.MALLOCS + sc], "not counted while the span is cached");
        assertEquals(0, c[MStats.TINY_OBJECTS]);
        assertEquals(0, c[MStats.LIVE_OBJECTS]);
        cache.flushCounts();
        c = stats.cut();
        assertEquals(3, c[MStats.MALLOCS + sc]);
        assertEquals(1, c[MStats.MALLOCS + TINY], "one tiny block");
        assertEquals(5, c[MStats.TINY_OBJECTS]);
        assertEquals(4, c[MStats.LIVE_OBJECTS], "three objects and one tiny block");
        assertEquals(3 * 512 + 16, c[MStats.LIVE_BYTES]);
        cache.flushCounts();
        assertArrayEquals(c, stats.cut(), "a second flush with nothing new counts nothing");
        cache.allocSmall(sc);
        cache.allocTiny(1);
        assertArrayEquals(c, stats.cut(), "still lagging");
        cache.flushCounts();
        c = stats.cut();
        assertEquals(4, c[MStats.MALLOCS + sc]);
        assertEquals(6, c[MStats.TINY_OBJECTS]);
    }

    static final int[] RANDOM_CLASSES = {1, 3, 5, 26, 41, 65, 67};

    /** Random allocations and frees over several classes: the counters agree with what happened. */
    @ParameterizedTest(name = "seed {0}")
    @ValueSource(longs = {1, 2, 3, 20240611})
    void countsAreExactAfterFlushCountsAndFreesCountWhatSweepsReclaimed(long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        Map<Integer, Long> mallocs = new HashMap<>();
        Map<Integer, Long> marked = new HashMap<>();
        List<Long> live = new ArrayList<>();
        for (int op = 0; op < 20_000; op++) {
            if (live.isEmpty() || rnd.nextInt(100) < 60) {
                int sc = sc(RANDOM_CLASSES[rnd.nextInt(RANDOM_CLASSES.length)]);
                live.add(cache.allocSmall(sc));
                mallocs.merge(sc, 1L, Long::sum);
            } else {
                int i = rnd.nextInt(live.size());
                long p = live.get(i);
                live.set(i, live.get(live.size() - 1));
                live.remove(live.size() - 1);
                free(p);
                marked.merge(source.spanOf(p).spanClass, 1L, Long::sum);
            }
            if (op % 5000 == 0) {
                long[] c = stats.cut();
                for (int sc : mallocs.keySet()) {
                    assertTrue(c[MStats.MALLOCS + sc] <= mallocs.get(sc), "counts lag, never lead");
                }
            }
        }
        cache.flushCounts();
        checkCounts(stats.cut(), mallocs, marked, true);
        cache.checkInvariants();

        // Give everything back and sweep every central: every marked free is reclaimed now.
        cache.releaseAll();
        for (MCentral c : central) {
            if (c != null) {
                c.sweepAll();
                c.checkInvariants();
            }
        }
        long[] c = stats.cut();
        checkCounts(c, mallocs, marked, false);
        long liveBytes = 0;
        for (long p : live) {
            liveBytes += source.spanOf(p).elemSize;
        }
        assertEquals(live.size(), c[MStats.LIVE_OBJECTS]);
        assertEquals(liveBytes, c[MStats.LIVE_BYTES]);
    }

    /** Checks per-class counts; frees either may still be pending in spans ({@code pendingAllowed}) or must all be reclaimed. */
    private void checkCounts(long[] c, Map<Integer, Long> mallocs, Map<Integer, Long> marked, boolean pendingAllowed) {
        Map<Integer, Long> pending = new HashMap<>();
        long allocated = 0;
        for (MSpan s : source.given()) {
            if (s.state == MSpan.STATE_SMALL) {
                pending.merge(s.spanClass, (long) s.pendingFrees(), Long::sum);
                allocated += s.allocCount;
            }
        }
        long liveObjects = 0;
        long liveBytes = 0;
        for (int sc = 0; sc < MStats.NSC; sc++) {
            long m = mallocs.getOrDefault(sc, 0L);
            long p = pending.getOrDefault(sc, 0L);
            if (!pendingAllowed) {
                assertEquals(0, p, "span class " + sc + ": no free pending after every span was swept");
            }
            assertEquals(m, c[MStats.MALLOCS + sc], "mallocs of span class " + sc);
            assertEquals(marked.getOrDefault(sc, 0L) - p, c[MStats.FREES + sc], "frees of span class " + sc);
            long objs = c[MStats.MALLOCS + sc] - c[MStats.FREES + sc];
            liveObjects += objs;
            liveBytes += objs * SizeClasses.classSize(MStats.sizeClassOf(sc));
        }
        assertEquals(liveObjects, c[MStats.LIVE_OBJECTS], "live objects = mallocs - frees");
        assertEquals(liveBytes, c[MStats.LIVE_BYTES], "live bytes = per-class (mallocs - frees) x size");
        assertEquals(allocated, c[MStats.LIVE_OBJECTS], "live objects = slots allocated in every span");
        assertEquals(0, c[MStats.TINY_OBJECTS]);
        assertEquals(0, c[MStats.LARGE_ALLOCS]);
    }

    // ───────────────────────────── tiny allocator ─────────────────────────────

    /** {@code sizes} allocated in order; {@code blocks[i]} and {@code offsets[i]}: object i's block (numbered in order of use) and offset. */
    static Stream<Arguments> tinyPlacements() {
        return Stream.of(
                Arguments.of("odd sizes pack byte by byte", new int[] {1, 1, 1, 3}, new int[] {0, 0, 0, 0}, new int[] {0, 1, 2, 3}),
                Arguments.of("an odd size after an even one is not aligned", new int[] {2, 1, 1}, new int[] {0, 0, 0}, new int[] {0, 2, 3}),
                Arguments.of("an even size aligns to 2", new int[] {1, 2, 1, 6}, new int[] {0, 0, 0, 0}, new int[] {0, 2, 4, 6}),
                Arguments.of("a multiple of 4 aligns to 4", new int[] {1, 4, 3, 12}, new int[] {0, 0, 0, 1}, new int[] {0, 4, 8, 0}),
                Arguments.of("a multiple of 8 aligns to 8", new int[] {1, 8}, new int[] {0, 0}, new int[] {0, 8}),
                Arguments.of("12 aligns to 4, not 8", new int[] {2, 12}, new int[] {0, 0}, new int[] {0, 4}),
                Arguments.of("two 8s fill a block exactly", new int[] {8, 8, 1}, new int[] {0, 0, 1}, new int[] {0, 8, 0}),
                Arguments.of("15 and 1 fill a block exactly", new int[] {15, 1, 1}, new int[] {0, 0, 1}, new int[] {0, 15, 0}),
                Arguments.of("7 then 8 aligns to 8 and still fits", new int[] {7, 8}, new int[] {0, 0}, new int[] {0, 8}),
                Arguments.of("9 then 8: aligned to 16, no room: a new block", new int[] {9, 8}, new int[] {0, 1}, new int[] {0, 0}),
                Arguments.of("13 then 4: aligned to 16, no room", new int[] {13, 4, 4}, new int[] {0, 1, 1}, new int[] {0, 0, 4}),
                Arguments.of("12 then 5 does not fit though 4 bytes are left", new int[] {12, 5, 3}, new int[] {0, 1, 1}, new int[] {0, 0, 5}),
                Arguments.of("a new block is packed from its start", new int[] {15, 2, 1, 8}, new int[] {0, 1, 1, 1}, new int[] {0, 0, 2, 8}));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("tinyPlacements")
    void allocTinyPacksObjectsInto16ByteBlocksWithTheAlignmentOfTheirSize(String name, int[] sizes, int[] blocks, int[] offsets) {
        List<Long> blockBases = new ArrayList<>();
        long[] addrs = new long[sizes.length];
        for (int i = 0; i < sizes.length; i++) {
            long p = cache.allocTiny(sizes[i]);
            addrs[i] = p;
            long block = p & ~15L;
            if (!blockBases.contains(block)) {
                blockBases.add(block);
            }
            assertEquals(blocks[i], blockBases.indexOf(block), "object " + i + " (" + sizes[i] + " B): block");
            assertEquals(offsets[i], p - block, "object " + i + " (" + sizes[i] + " B): offset");
            MSpan s = source.spanOf(p);
            assertEquals(TINY, s.spanClass, "tiny blocks come from the tiny span class");
        }
        // Every object is live, its usable size is its own size, and each block counts its objects.
        Map<Long, Integer> perBlock = new LinkedHashMap<>();
        for (int i = 0; i < sizes.length; i++) {
            MSpan s = source.spanOf(addrs[i]);
            assertEquals(sizes[i], MCache.tinyUsable(s, addrs[i]), "usable bytes of object " + i);
            perBlock.merge(addrs[i] & ~15L, 1, Integer::sum);
        }
        for (Map.Entry<Long, Integer> e : perBlock.entrySet()) {
            MSpan s = source.spanOf(e.getKey());
            assertEquals(e.getValue(), MCache.tinyLive(s, (int) ((e.getKey() - s.base) >>> 4)));
        }
        cache.flushCounts();
        long[] c = stats.cut();
        assertEquals(sizes.length, c[MStats.TINY_OBJECTS]);
        assertEquals(blockBases.size(), c[MStats.MALLOCS + TINY], "blocks are the tiny class's slots");
    }

    @Test
    void tinyUsableFreeTinyAndDoubleFreeRefusal() {
        long a = cache.allocTiny(3);
        long b = cache.allocTiny(4);
        MSpan s = source.spanOf(a);
        int idx = (int) ((a - s.base) >>> 4);
        assertEquals(a + 4, b);
        assertEquals(3, MCache.tinyUsable(s, a));
        assertEquals(4, MCache.tinyUsable(s, b));
        assertEquals(0, MCache.tinyUsable(s, a + 1), "interior of a");
        assertEquals(0, MCache.tinyUsable(s, a + 3), "the alignment gap");
        assertEquals(0, MCache.tinyUsable(s, b + 4), "past the last object");
        assertEquals(0, MCache.tinyUsable(s, s.base + 16L * (s.nelems - 1)), "a block never handed out");
        assertEquals(0, MCache.tinyUsable(s, s.base + 16L * s.nelems), "past the span's blocks");
        assertEquals(0, MCache.tinyUsable(s, s.base - 16), "below the span");

        MCache.freeTiny(central[TINY], s, a);
        assertEquals(0, MCache.tinyUsable(s, a), "freed");
        assertEquals(4, MCache.tinyUsable(s, b), "its neighbour is untouched");
        assertEquals(1, MCache.tinyLive(s, idx));
        IllegalStateException dbl = assertThrows(IllegalStateException.class, () -> MCache.freeTiny(central[TINY], s, a));
        assertTrue(dbl.getMessage().contains("double free"), dbl.getMessage());
        assertEquals(1, MCache.tinyLive(s, idx), "a refused free changes nothing");
        assertEquals(4, MCache.tinyUsable(s, b));
        assertThrows(IllegalStateException.class, () -> MCache.freeTiny(central[TINY], s, b + 1), "interior address");
        assertThrows(IllegalStateException.class, () -> MCache.freeTiny(central[TINY], s, a + 3), "gap");
        assertThrows(IllegalStateException.class, () -> MCache.freeTiny(central[TINY], s, s.base + 16L * 7), "never-allocated block");
        assertThrows(IllegalArgumentException.class, () -> MCache.freeTiny(central[TINY], s, s.base + 16L * s.nelems),
                "past the span's blocks");
        assertFalse(s.isFreePending(idx), "the block is still the cache's current one, with b live");
        MCache.freeTiny(central[TINY], s, b);
        assertEquals(0, MCache.tinyLive(s, idx));
        assertFalse(s.isFreePending(idx), "no object live, but still the current block: not freed");
    }

    @Test
    void aBlockIsFreedWhenItsLastObjectIsFreedOnceItIsNotTheCurrentBlock() {
        long a0 = cache.allocTiny(8);
        long a1 = cache.allocTiny(8);
        long b0 = cache.allocTiny(1); // block A is full: B is the current block now
        MSpan s = source.spanOf(a0);
        int blockA = (int) ((a0 - s.base) >>> 4);
        int blockB = (int) ((b0 - s.base) >>> 4);
        assertEquals(blockA, (int) ((a1 - s.base) >>> 4));
        assertTrue(blockB != blockA);

        MCache.freeTiny(central[TINY], s, a1);
        assertFalse(s.isFreePending(blockA), "a0 is still live");
        MCache.freeTiny(central[TINY], s, a0);
        assertTrue(s.isFreePending(blockA), "last object of a block that is not current: its slot is freed");
        assertFalse(s.isFreePending(blockB));

        // The current block: its last object freed leaves it alone until the cache moves on.
        MCache.freeTiny(central[TINY], s, b0);
        assertFalse(s.isFreePending(blockB), "current block: kept");
        long c0 = cache.allocTiny(2);
        assertEquals(b0 + 2, c0, "the current block goes on being packed after its objects were freed");
        MCache.freeTiny(central[TINY], s, c0);
        long d0 = cache.allocTiny(15); // offset 3 + 15 > 16: a new block; B is dropped, and freed
        int blockD = (int) ((d0 - s.base) >>> 4);
        assertTrue(blockD != blockB);
        assertTrue(s.isFreePending(blockB), "dropped with no live object: freed");

        // dropTinyBlock: with a live object the block stays until that object is freed.
        cache.dropTinyBlock();
        assertFalse(s.isFreePending(blockD), "d0 is live");
        MCache.freeTiny(central[TINY], s, d0);
        assertTrue(s.isFreePending(blockD), "not current and now empty: freed by the free");
        assertEquals(3, s.pendingFrees(), "blocks A, B and D");
    }

    @Test
    void aFreedBlockIsReusedWithAFreshMaskAfterAnInPlaceSweep() {
        long x = cache.allocTiny(3); // block 0: objects ending at 3 and 8
        long y = cache.allocTiny(4);
        MSpan s = source.spanOf(x);
        assertEquals(s.base, x);
        for (int i = 1; i < s.nelems; i++) {
            long p = cache.allocTiny(12); // 12 never fits after 12 bytes: one block each
            assertEquals(s.base + 16L * i, p);
        }
        MCache.freeTiny(central[TINY], s, x);
        MCache.freeTiny(central[TINY], s, y);
        assertTrue(s.isFreePending(0));
        long z = cache.allocTiny(12); // the span is exhausted: swept in place, block 0 reused
        assertEquals(s.base, z);
        assertSame(s, cache.alloc[TINY]);
        assertEquals(1, source.given().size());
        assertEquals(1, cache.sweepsInPlace);
        assertEquals(12, MCache.tinyUsable(s, z), "the old end bits (3 and 8) are gone with the reuse");
        assertEquals(1, MCache.tinyLive(s, 0));
        cache.flushCounts();
        long[] c = stats.cut();
        assertEquals(s.nelems + 1, c[MStats.MALLOCS + TINY]);
        assertEquals(1, c[MStats.FREES + TINY]);
        assertEquals(s.nelems + 2, c[MStats.TINY_OBJECTS]);
        assertEquals(s.nelems, c[MStats.LIVE_OBJECTS], "live tiny blocks");
    }

    // ───────────────────────────── kept large spans ─────────────────────────────

    long nextLarge = 0x7e00_0000_0000L;

    /** A large span whose object was allocated (counted, as the heap counts it) and then freed. */
    MSpan freedLarge(int npages, long size) {
        MSpan s = new MSpan();
        s.initLarge(nextLarge, npages, size, 0, false);
        nextLarge += (long) npages << SizeClasses.PAGE_SHIFT;
        stats.countLargeSpan(null, +1, size, npages);
        s.markLargeFree(s.base);
        return s;
    }

    @Test
    void freedLargeSpansAreKeptWithinTheBudgetAndReusedByPageCount() {
        MSpan four = freedLarge(4, 30_000);
        assertTrue(cache.keepLarge(four));
        assertEquals(4, cache.largeKeptPages);
        assertEquals(1, cache.cachedSpans(), "a kept span counts as held");
        assertEquals(0, stats.cut()[MStats.LARGE_KEPT_SPANS], "counted by the cache, not yet in the shared counters");
        cache.flushCounts();
        long[] c = stats.cut();
        assertEquals(1, c[MStats.LARGE_KEPT_SPANS]);
        assertEquals(1, c[MStats.LARGE_FREES]);
        assertEquals(30_000, c[MStats.LARGE_FREE_BYTES]);
        assertEquals(0, c[MStats.LIVE_OBJECTS], "the object's free is counted when its span is kept");
        assertEquals(0, c[MStats.LIVE_BYTES]);

        assertFalse(cache.keepLarge(freedLarge(MCache.LARGE_MAX_PAGES + 1, 600_000)), "too many pages to keep");
        assertTrue(cache.keepLarge(freedLarge(MCache.LARGE_MAX_PAGES, 500_000)));
        // Fill up to the budget exactly with spans of at most LARGE_MAX_PAGES, the last one's page
        // count unlike the others' (so that reuseLarge of that count finds it alone).
        int fills = 0;
        MSpan fill = null;
        for (int left = MCache.LARGE_BUDGET_PAGES - 4 - MCache.LARGE_MAX_PAGES; left > 0; ) {
            int np = left > MCache.LARGE_MAX_PAGES ? MCache.LARGE_MAX_PAGES : left;
            if (left > MCache.LARGE_MAX_PAGES && left - np < 5) {
                np = left - 5; // keep a last fill of 5 or more pages, not 4 (the first span's count)
            }
            fill = freedLarge(np, np * 8192L - 100);
            assertTrue(cache.keepLarge(fill), "up to the budget exactly");
            left -= np;
            fills++;
        }
        assertTrue(fill.npages != 4 && fill.npages != MCache.LARGE_MAX_PAGES || fills == 1, "the last fill's count is its own");
        assertEquals(MCache.LARGE_BUDGET_PAGES, cache.largeKeptPages);
        assertFalse(cache.keepLarge(freedLarge(1, 8192)), "past the budget");
        assertEquals(2 + fills, cache.largeKeptSpans);
        cache.checkInvariants();

        assertNull(cache.reuseLarge(3, 20_000), "no kept span of 3 pages");
        MSpan again = cache.reuseLarge(4, 20_000);
        assertSame(four, again);
        assertEquals(20_000, again.elemSize, "made over for the new object");
        assertEquals(1, again.largeState, "live again");
        assertTrue(again.needZero, "its memory holds the old object");
        assertEquals(0, again.largeOffset);
        assertEquals(MCache.LARGE_BUDGET_PAGES - 4, cache.largeKeptPages);
        cache.flushCounts();
        c = stats.cut();
        assertEquals(1 + fills, c[MStats.LARGE_KEPT_SPANS]);
        assertEquals(5 + fills, c[MStats.LARGE_ALLOCS], "those counted by the fake heap, and one by the reuse");
        assertEquals(20_000, c[MStats.LIVE_BYTES] - (600_000 + 8192), "the live bytes: the two refused objects and the reused one");
        cache.checkInvariants();

        MSpan kept = cache.reuseLarge(fill.npages, 1);
        assertSame(fill, kept);
        kept.largeState = 0;
        kept.next = null;
        assertTrue(cache.keepLarge(kept));
        kept.largeState = 1; // a kept span whose object is live: corrupt
        assertThrows(IllegalStateException.class, cache::checkInvariants);
        kept.largeState = 0;
        cache.checkInvariants();
        // Empty the lists, so that nothing needs the (absent) heap.
        assertSame(fill, cache.reuseLarge(fill.npages, 1));
        assertNotNull(cache.reuseLarge(MCache.LARGE_MAX_PAGES, 1));
        while (cache.reuseLarge(MCache.LARGE_MAX_PAGES, 1) != null) {
            // the other full-size fills
        }
        assertEquals(0, cache.largeKeptPages);
        assertEquals(0, cache.cachedSpans());
    }

    // ───────────────────────────── releaseAll ─────────────────────────────

    @Test
    void releaseAllReturnsEverySpanToItsCentralAndCountsEverything() {
        int[] classes = {1, 26, 65};
        Map<Integer, Integer> allocated = new HashMap<>();
        List<Long> objs = new ArrayList<>();
        for (int cls : classes) {
            int n = SizeClasses.classObjects(cls) + 1; // one refill each
            for (int i = 0; i < n; i++) {
                objs.add(cache.allocSmall(sc(cls)));
            }
            allocated.put(sc(cls), n);
        }
        long t = cache.allocTiny(5);
        MSpan tinySpan = source.spanOf(t);
        int tinyBlock = (int) ((t - tinySpan.base) >>> 4);
        MCache.freeTiny(central[TINY], tinySpan, t); // current block, no object live: freed only when dropped
        free(objs.get(objs.size() - 1)); // pending in the cached span of class 65
        assertEquals(classes.length + 1, cache.cachedSpans());

        cache.releaseAll();

        assertEquals(0, cache.cachedSpans());
        for (int sc = 0; sc < cache.alloc.length; sc++) {
            assertSame(MCache.EMPTY, cache.alloc[sc], "span class " + sc);
        }
        for (MSpan s : source.given()) {
            assertTrue(s.where == MSpan.IN_PARTIAL || s.where == MSpan.IN_FULL, s + " is filed in its central, where=" + s.where);
        }
        assertEquals(0, tinySpan.allocCount, "the dropped tiny block was freed and swept as the span went back");
        assertFalse(tinySpan.isFreePending(tinyBlock));
        long[] c = stats.cut(); // no flushCounts: releaseAll counted
        for (Map.Entry<Integer, Integer> e : allocated.entrySet()) {
            assertEquals((long) e.getValue(), c[MStats.MALLOCS + e.getKey()], "span class " + e.getKey());
        }
        assertEquals(1, c[MStats.FREES + sc(65)], "the pending free, swept as the span was filed");
        assertEquals(1, c[MStats.MALLOCS + TINY]);
        assertEquals(1, c[MStats.FREES + TINY]);
        assertEquals(1, c[MStats.TINY_OBJECTS]);
        long liveObjects = objs.size() - 1;
        assertEquals(liveObjects, c[MStats.LIVE_OBJECTS]);
        for (MCentral m : central) {
            if (m != null) {
                m.checkInvariants();
            }
        }
        cache.checkInvariants();

        // The next allocation of class 65 takes the partial span back: no new span.
        int given = source.given().size();
        long again = cache.allocSmall(sc(65));
        assertEquals(objs.get(objs.size() - 1), again, "the freed slot of the partial span");
        assertEquals(given, source.given().size());
    }

    // ───────────────────────────── checkInvariants ─────────────────────────────

    static Stream<Arguments> corruptions() {
        return Stream.of(
                Arguments.of("a cached span marked partial", (Consumer<MCacheTest>) t -> t.cached().where = MSpan.IN_PARTIAL),
                Arguments.of("a cached span marked full", (Consumer<MCacheTest>) t -> t.cached().where = MSpan.IN_FULL),
                Arguments.of("a cached span in state large", (Consumer<MCacheTest>) t -> t.cached().state = MSpan.STATE_LARGE),
                Arguments.of("a cached span in state free", (Consumer<MCacheTest>) t -> t.cached().state = MSpan.STATE_FREE),
                Arguments.of("allocCount off by one", (Consumer<MCacheTest>) t -> t.cached().allocCount++),
                Arguments.of("a free mark on a slot never handed out", (Consumer<MCacheTest>) t -> t.cached().setMark(10)),
                Arguments.of("a free mark past the span's slots", (Consumer<MCacheTest>) t -> t.cached().setMark(16)),
                Arguments.of("kept large pages miscounted", (Consumer<MCacheTest>) t -> t.cache.largeKeptPages = 1),
                Arguments.of("kept large spans miscounted", (Consumer<MCacheTest>) t -> t.cache.largeKeptSpans = 1));
    }

    /** The span cached for class 26 (16 slots), with 3 slots handed out. */
    MSpan cached() {
        return cache.alloc[sc(26)];
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("corruptions")
    void checkInvariantsPassesOnASoundCacheAndFailsOnACorruptOne(String name, Consumer<MCacheTest> corrupt) {
        for (int i = 0; i < 3; i++) {
            cache.allocSmall(sc(26));
        }
        for (int i = 0; i < 70; i++) {
            cache.allocSmall(sc(1));
        }
        cache.allocTiny(3);
        free(cache.alloc[sc(26)].base + 512); // a pending free is sound
        assertDoesNotThrow(cache::checkInvariants);
        corrupt.accept(this);
        assertThrows(IllegalStateException.class, cache::checkInvariants, name);
    }
}
