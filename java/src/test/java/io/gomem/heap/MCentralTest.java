package io.gomem.heap;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** MCentral alone, over a fake span source: no memory, no syscalls. */
class MCentralTest {
    /** Hands out spans at made-up addresses and records what comes back. */
    static final class FakeSource implements SpanSource {
        long next = 0x7f00_0000_0000L;
        final List<MSpan> given = new ArrayList<>();
        final List<MSpan> returned = new ArrayList<>();

        @Override
        public MSpan allocSmallSpan(int spanClass, int sizeClass, int npages) {
            MSpan s = new MSpan();
            s.initSmall(next, npages, spanClass, sizeClass, false);
            next += (long) npages << SizeClasses.PAGE_SHIFT;
            given.add(s);
            return s;
        }

        @Override
        public void freeSpan(MSpan s) {
            returned.add(s);
            s.state = MSpan.STATE_FREE;
        }

        final List<Long> releasedMasks = new ArrayList<>();

        @Override
        public void releaseSpanPages(MSpan s, long mask) {
            releasedMasks.add(mask);
            s.releasedMask |= mask;
        }

        @Override
        public void reuseSpanPages(MSpan s) {
            s.releasedMask = 0;
        }
    }

    static final int SIZE_CLASS = 26; // 512 B, 16 slots per span
    FakeSource source;
    MStats stats;
    MCentral central;

    @BeforeEach
    void setUp() {
        source = new FakeSource();
        stats = new MStats();
        central = new MCentral(source, stats, SizeClasses.spanClass(SIZE_CLASS, true), SIZE_CLASS);
    }

    static void fill(MSpan s) {
        while (s.alloc() != 0) {
            // take every slot
        }
    }

    static void freeSlot(MCentral c, MSpan s, int idx) {
        if (s.markFree(idx, s.base + idx * s.elemSize)) {
            c.onFree(s);
        }
    }

    @Test
    void anEmptyCentralGetsANewSpanFromTheSource() {
        MSpan s = central.cacheSpan();
        assertEquals(1, source.given.size());
        assertEquals(MSpan.IN_CACHE, s.where);
        assertEquals(1, central.spanCount());
        central.checkInvariants();
    }

    @Test
    void aFullSpanWaitsInTheFullSetUntilAFreeReachesIt() {
        MSpan s = central.cacheSpan();
        fill(s);
        central.uncacheSpan(s);
        assertEquals(MSpan.IN_FULL, s.where);
        assertTrue(s.notifyCentral);
        central.checkInvariants();
        MSpan other = central.cacheSpan();
        assertNotSame(s, other, "a full span is not handed out");
        fill(other);
        central.uncacheSpan(other);

        freeSlot(central, s, 5);
        assertEquals(MSpan.IN_FULL, s.where, "the first free queues it (no lock) ...");
        central.checkInvariants();
        assertEquals(MSpan.IN_PARTIAL, s.where, "... and the next operation under the lock moves it to partial");
        MSpan again = central.cacheSpan();
        assertSame(s, again);
        assertEquals(s.base + 5 * s.elemSize, again.alloc(), "swept: the freed slot is reused");
        assertEquals(2, source.given.size());
    }

    @Test
    void aPartlyUsedSpanIsHandedOutAgain() {
        MSpan s = central.cacheSpan();
        s.alloc();
        s.alloc();
        central.uncacheSpan(s);
        assertEquals(MSpan.IN_PARTIAL, s.where);
        assertSame(s, central.cacheSpan());
        assertEquals(s.base + 2 * s.elemSize, s.alloc());
    }

    @Test
    void aSpanWithNoLiveObjectGoesBackToTheSource() {
        MSpan s = central.cacheSpan();
        s.alloc();
        s.alloc();
        freeSlot(central, s, 0);
        freeSlot(central, s, 1);
        central.uncacheSpan(s);
        assertEquals(List.of(), source.returned, "kept for the next cacheSpan until a sweepAll");
        assertEquals(MSpan.IN_PARTIAL, s.where);
        assertEquals(1, central.sweepAll());
        assertEquals(List.of(s), source.returned);
        assertEquals(0, central.spanCount());
    }

    @Test
    void anEmptiedSpanIsHandedOutAgainWithoutTheSource() {
        MSpan s = central.cacheSpan();
        fill(s);
        for (int i = 0; i < s.nelems; i++) {
            freeSlot(central, s, i);
        }
        central.uncacheSpan(s);
        assertSame(s, central.cacheSpan());
        assertEquals(1, source.given.size(), "no new span taken");
        assertEquals(List.of(), source.returned);
    }

    @Test
    void sweepAllReturnsEveryWhollyFreePartialSpan() {
        List<MSpan> spans = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            MSpan s = central.cacheSpan();
            fill(s);
            spans.add(s);
        }
        for (MSpan s : spans) {
            central.uncacheSpan(s);
        }
        // Empty the first two completely, the third partly.
        for (int k = 0; k < 2; k++) {
            for (int i = 0; i < spans.get(k).nelems; i++) {
                freeSlot(central, spans.get(k), i);
            }
        }
        freeSlot(central, spans.get(2), 0);
        assertEquals(2, central.sweepAll());
        assertEquals(List.of(spans.get(0), spans.get(1)), source.returned);
        assertEquals(MSpan.IN_PARTIAL, spans.get(2).where);
        assertEquals(spans.get(2).nelems - 1, central.uncachedLiveObjects());
        assertEquals(2 * spans.get(0).nelems + 1, stats.cut()[MStats.FREES + central.spanClass], "sweeps count their frees");
        central.checkInvariants();
    }

    @Test
    void freesThatArriveBeforeTheSpanIsFiledFullAreNotLost() {
        MSpan s = central.cacheSpan();
        fill(s);
        // A free lands while the span is still cached: no central is told, the bit is pending.
        assertEquals(false, s.markFree(3, s.base + 3 * s.elemSize));
        central.uncacheSpan(s); // the sweep takes it: partial, not full
        assertEquals(MSpan.IN_PARTIAL, s.where);
        assertSame(s, central.cacheSpan());
        assertEquals(s.base + 3 * s.elemSize, s.alloc());
    }
}
