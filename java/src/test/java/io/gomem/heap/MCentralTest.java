package io.gomem.heap;

import io.gomem.TestThreads;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
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
            if (s.releasedMask != 0) { // the free makes an OS call: the heap's rule is that no central lock is held
                if (watched != null) {
                    heldInFree.add(watched.isHeldByCurrentThread());
                }
                block();
            }
            returned.add(s);
            s.state = MSpan.STATE_FREE;
        }

        final List<Long> releasedMasks = new ArrayList<>();
        /** The central whose lock each call below is asked about (none if null). */
        volatile MCentral watched;
        /** For each freeSpan / releaseSpanPages call: whether the caller held the watched central's lock. */
        final List<Boolean> heldInFree = new CopyOnWriteArrayList<>();
        final List<Boolean> heldInRelease = new CopyOnWriteArrayList<>();
        /** If set, the next freeSpan / releaseSpanPages of a span with released pages (the OS call's stand-in) opens this and waits for {@link #proceed}. */
        volatile CountDownLatch entered;
        volatile CountDownLatch proceed;

        void block() {
            CountDownLatch in = entered;
            if (in != null) {
                entered = null;
                in.countDown();
                try {
                    if (!proceed.await(30, TimeUnit.SECONDS)) {
                        throw new IllegalStateException("the test never let the call proceed");
                    }
                } catch (InterruptedException e) {
                    throw new IllegalStateException(e);
                }
            }
        }

        @Override
        public void releaseSpanPages(MSpan s, long mask) {
            if (watched != null) {
                heldInRelease.add(watched.isHeldByCurrentThread());
            }
            block();
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

    // ───────────────────────────── no central lock across an OS call (issue 12) ─────────────────────────────

    /** A span with one object, on its first OS page, filed as partial: every other OS page of it is free. */
    MSpan partialWithOneObject() {
        MSpan s = central.cacheSpan();
        s.alloc();
        central.uncacheSpan(s);
        assertEquals(MSpan.IN_PARTIAL, s.where);
        return s;
    }

    static final long OS_PAGE = 4096;

    @Test
    void releaseFreeOsPagesHoldsNoCentralLockWhileTheHeapReleasesAndPutsTheSpansBack() {
        source.watched = central;
        MSpan f = central.cacheSpan();
        fill(f);
        central.uncacheSpan(f); // full: no free OS page, not released
        MSpan p = partialWithOneObject();
        assertEquals(OS_PAGE, central.releaseFreeOsPages(OS_PAGE), "the second OS page of the 8 KiB span");
        assertEquals(List.of(0b10L), source.releasedMasks);
        assertEquals(List.of(false), source.heldInRelease, "the central lock is not held during the release");
        assertEquals(0b10L, p.releasedMask);
        assertEquals(MSpan.IN_PARTIAL, p.where, "back in partial");
        assertEquals(MSpan.IN_FULL, f.where);
        assertEquals(2, central.spanCount());
        central.checkInvariants();
        assertSame(p, central.cacheSpan(), "handed out again");
        assertEquals(0, central.releaseFreeOsPages(OS_PAGE), "nothing left uncached with a free OS page");
    }

    @Test
    void sweepAllGivesASpanWithReleasedPagesBackWithoutTheCentralLock() {
        source.watched = central;
        MSpan s = partialWithOneObject();
        central.releaseFreeOsPages(OS_PAGE);
        freeSlot(central, s, 0);
        assertEquals(1, central.sweepAll());
        assertEquals(List.of(s), source.returned);
        assertEquals(List.of(false), source.heldInFree, "its free makes an OS call: no central lock held");
        assertEquals(0, central.spanCount());
        central.checkInvariants();
    }

    /** Runs {@code r} on a daemon thread (one stuck on a lock fails the test, not the JVM); the future completes with its result. */
    static <T> CompletableFuture<T> async(Supplier<T> r) {
        CompletableFuture<T> f = new CompletableFuture<>();
        TestThreads.daemon("test", () -> {
            try {
                f.complete(r.get());
            } catch (Throwable e) {
                f.completeExceptionally(e);
            }
        });
        return f;
    }

    @Test
    void aSpanHeldOutForItsReleaseIsNotHandedOutAndTheCentralServesMeanwhile() throws Exception {
        MSpan p = partialWithOneObject();
        source.entered = new CountDownLatch(1);
        source.proceed = new CountDownLatch(1);
        CountDownLatch entered = source.entered;
        CompletableFuture<Long> release = async(() -> central.releaseFreeOsPages(OS_PAGE));
        try {
            assertTrue(entered.await(10, TimeUnit.SECONDS), "the release started");
            assertEquals(MSpan.IN_RELEASE, p.where);
            // The central's lock is free: a refill is served meanwhile, with another span.
            MSpan other = async(central::cacheSpan).get(10, TimeUnit.SECONDS);
            assertNotSame(p, other, "the span being released is not handed out");
            central.uncacheSpan(other);
            freeSlot(central, p, 0); // frees go on (a mark)
            assertFalse(release.isDone());
        } finally {
            source.proceed.countDown();
        }
        assertEquals(OS_PAGE, release.get(10, TimeUnit.SECONDS));
        assertEquals(MSpan.IN_PARTIAL, p.where, "back in partial once released");
        assertEquals(0b10L, p.releasedMask);
        central.checkInvariants();
        assertEquals(2, central.sweepAll(), "its free is swept: it goes back to the heap, with the other (empty) span");
        assertTrue(source.returned.contains(p));
    }

    @Test
    void sweepAllReturnsOnlyOnceEveryWhollyFreeSpanAnotherSweepTookIsInTheHeap() throws Exception {
        MSpan s = partialWithOneObject();
        central.releaseFreeOsPages(OS_PAGE);
        freeSlot(central, s, 0);
        source.entered = new CountDownLatch(1);
        source.proceed = new CountDownLatch(1);
        CountDownLatch entered = source.entered;
        CompletableFuture<Integer> first = async(central::sweepAll); // takes s, gives it back to the heap with the lock dropped: blocked there
        try {
            assertTrue(entered.await(10, TimeUnit.SECONDS), "the first sweep is giving s back");
            CompletableFuture<Integer> second = async(central::sweepAll);
            Thread.sleep(300);
            assertFalse(second.isDone(), "a sweep returns only once the spans another sweep took are in the heap");
            assertEquals(List.of(), source.returned);
            source.proceed.countDown();
            second.get(10, TimeUnit.SECONDS);
            assertEquals(List.of(s), source.returned, "in the heap when the second sweep returned");
        } finally {
            source.proceed.countDown();
        }
        first.get(10, TimeUnit.SECONDS);
        central.checkInvariants();
    }
}
