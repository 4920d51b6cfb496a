package io.gomem.heap;

import io.gomem.TestThreads;
import org.junit.jupiter.api.Named;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.stream.IntStream;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** MSpan alone: slot allocation, the alloc cache, marks and sweeps. No memory is touched. */
class MSpanTest {
    static final long BASE = 0x7f00_0000_0000L;

    static MSpan span(int sizeClass) {
        MSpan s = new MSpan();
        s.initSmall(BASE, SizeClasses.classPages(sizeClass), SizeClasses.spanClass(sizeClass, true), sizeClass, false);
        return s;
    }

    static Stream<Arguments> classes() {
        return Stream.of(
                Arguments.of(Named.of("class 1: 8 B, 1024 slots (16 words)", 1)),
                Arguments.of(Named.of("class 2: 16 B, 512 slots", 2)),
                Arguments.of(Named.of("class 5: 48 B, 170 slots (partial last word)", 5)),
                Arguments.of(Named.of("class 26: 512 B, 16 slots", 26)),
                Arguments.of(Named.of("class 67: 32 KiB, 1 slot", 67)));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("classes")
    void freshSpanHandsOutEverySlotInAddressOrderThenZero(int sizeClass) {
        MSpan s = span(sizeClass);
        int n = SizeClasses.classObjects(sizeClass);
        for (int i = 0; i < n; i++) {
            assertEquals(BASE + (long) i * SizeClasses.classSize(sizeClass), s.alloc(), "slot " + i);
        }
        assertEquals(0, s.alloc(), "full");
        assertEquals(n, s.allocCount);
        s.checkInvariants();
    }

    @Test
    void fastPathStopsAtEveryWordBoundary() {
        MSpan s = span(1);
        for (int i = 0; i < 63; i++) {
            assertEquals(BASE + i * 8L, s.nextFreeFast());
        }
        assertEquals(0, s.nextFreeFast(), "slot 63 ends a word: the slow path takes it");
        assertEquals(BASE + 63 * 8L, s.alloc());
        assertEquals(BASE + 64 * 8L, s.nextFreeFast(), "next word, fast again");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("classes")
    void freedSlotsComeBackAfterASweepLowestFirst(int sizeClass) {
        MSpan s = span(sizeClass);
        int n = SizeClasses.classObjects(sizeClass);
        long size = SizeClasses.classSize(sizeClass);
        for (int i = 0; i < n; i++) {
            s.alloc();
        }
        List<Integer> freed = IntStream.range(0, n).filter(i -> i % 3 == 1 || i == n - 1).boxed().toList();
        for (int i : freed) {
            assertFalse(s.markFree(i, BASE + i * size), "a cached span tells no central");
        }
        assertEquals(freed.size(), s.pendingFrees());
        assertEquals(0, s.alloc(), "frees are not reused before a sweep");
        assertEquals(freed.size(), s.sweep());
        assertEquals(n - freed.size(), s.allocCount);
        for (int i : freed) {
            assertEquals(BASE + i * size, s.alloc());
        }
        assertEquals(0, s.alloc());
        s.checkInvariants();
    }

    @Test
    void sweepOfAPartlyUsedSpanKeepsWhatWasHandedOutBelowFreeIndex() {
        MSpan s = span(5);
        for (int i = 0; i < 100; i++) {
            s.alloc();
        }
        s.markFree(10, BASE + 10 * 48);
        s.markFree(99, BASE + 99 * 48);
        assertEquals(2, s.sweep());
        assertEquals(98, s.allocCount);
        assertEquals(BASE + 10 * 48, s.alloc());
        assertEquals(BASE + 99 * 48, s.alloc());
        assertEquals(BASE + 100 * 48, s.alloc(), "then the never-used slots");
        s.checkInvariants();
    }

    record BadFree(int allocated, int[] frees, int bad, String mention) {
    }

    static Stream<Arguments> badFrees() {
        return Stream.of(
                Arguments.of(Named.of("double free before sweep", new BadFree(10, new int[] {3}, 3, "double free"))),
                Arguments.of(Named.of("slot never handed out", new BadFree(10, new int[] {}, 20, "no live object"))),
                Arguments.of(Named.of("slot at freeIndex", new BadFree(10, new int[] {}, 10, "no live object"))));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("badFrees")
    void badFreesAreRefusedAndChangeNothing(BadFree b) {
        MSpan s = span(2);
        for (int i = 0; i < b.allocated(); i++) {
            s.alloc();
        }
        for (int f : b.frees()) {
            s.markFree(f, BASE + f * 16L);
        }
        int pending = s.pendingFrees();
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> s.markFree(b.bad(), BASE + b.bad() * 16L));
        assertTrue(e.getMessage().contains(b.mention()) && e.getMessage().contains(Long.toHexString(BASE + b.bad() * 16L)),
                e.getMessage());
        assertEquals(pending, s.pendingFrees());
        s.checkInvariants();
    }

    @Test
    void doubleFreeAfterTheSweepIsRefusedToo() {
        MSpan s = span(2);
        s.alloc();
        s.alloc();
        s.markFree(0, BASE);
        s.sweep();
        assertThrows(IllegalStateException.class, () -> s.markFree(0, BASE));
    }

    @Test
    void slotOfRejectsInteriorAndTailAddresses() {
        MSpan s = span(5); // 48 B × 170 = 8160 of 8192 bytes: 32 bytes of tail
        assertEquals(0, s.slotOf(BASE));
        assertEquals(2, s.slotOf(BASE + 96));
        assertEquals(-1, s.slotOf(BASE + 97));
        assertEquals(-1, s.slotOf(BASE + 47));
        assertEquals(-1, s.slotOf(BASE + 8160), "tail waste is no slot");
        assertEquals(169, s.slotOf(BASE + 169 * 48));
        assertEquals(-1, s.slotOf(BASE - 48));
    }

    @Test
    void armNotifyReportsFreesThatAlreadyArrived() {
        MSpan s = span(67);
        s.alloc();
        assertFalse(s.armNotify());
        assertTrue(s.notifyCentral);
        assertTrue(s.markFree(0, BASE), "the first free of an armed span tells the central");
        assertFalse(s.notifyCentral);
        MSpan t = span(67);
        t.alloc();
        t.markFree(0, BASE);
        assertTrue(t.armNotify(), "frees before arming: the span is not full");
    }

    @Test
    void concurrentFreesFromManyThreadsAreAllSwept() throws Exception {
        MSpan s = span(1);
        for (int i = 0; i < 1024; i++) {
            s.alloc();
        }
        int threads = 4;
        CountDownLatch go = new CountDownLatch(1);
        List<Thread> ts = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            int id = t;
            ts.add(TestThreads.platform(() -> {
                try {
                    go.await();
                } catch (InterruptedException e) {
                    throw new RuntimeException(e);
                }
                for (int i = id; i < 1024; i += threads) {
                    s.markFree(i, BASE + i * 8L);
                }
            }));
        }
        go.countDown();
        for (Thread t : ts) {
            t.join();
        }
        assertEquals(1024, s.pendingFrees());
        assertEquals(1024, s.sweep());
        assertEquals(0, s.allocCount);
        s.checkInvariants();
    }

    @Test
    void aFreeSetsOnlyItsOwnSlotsMark() {
        MSpan s = span(1);
        for (int i = 0; i < 64; i++) {
            s.alloc();
        }
        s.markFree(4, BASE + 4 * 8L);
        for (int w = 0; w < s.freeBits.length; w++) {
            assertEquals(w == MSpan.FREE_PAD ? 1L << 4 : 0L, s.freeBits[w], "word " + w);
        }
        assertThrows(IllegalStateException.class, () -> s.markFree(4, BASE + 4 * 8L));
        assertEquals(1L << 4, s.freeBits[MSpan.FREE_PAD], "a refused second free leaves the mark as it was");
        assertEquals(1, s.pendingFrees());
    }

    @Test
    void fourFreesOfOneSlotPastTheCheckAtOnceSetOneMarkAndNoOther() {
        // The interleaving that broke the two-bit count: four frees of slot 4 all pass the check
        // before any marks (four atomic adds of one to a two-bit field carry into slot 5's mark).
        MSpan s = span(1);
        for (int i = 0; i < 64; i++) {
            s.alloc();
        }
        boolean[] won = new boolean[4];
        for (int k = 0; k < 4; k++) {
            won[k] = s.setMark(4);
        }
        assertArrayEquals(new boolean[] {true, false, false, false}, won, "exactly one free wins");
        for (int i = 0; i < 64; i++) {
            assertEquals(i == 4, s.isFreePending(i), "slot " + i);
        }
        s.checkInvariants();
        assertEquals(1, s.sweep(), "one object reclaimed");
        assertTrue(s.isAllocated(5), "the neighbour is still live");
        assertEquals(63, s.allocCount);
    }

    @Test
    void eightRacingFreesOfEverySlotFreeEachOnceAndNeverReachANeighbour() throws Exception {
        for (int round = 0; round < 20; round++) {
            MSpan s = span(1);
            for (int i = 0; i < 1024; i++) {
                s.alloc();
            }
            // Eight frees of one object racing at once: with two-bit counts added atomically, the
            // fourth carried into the next slot's mark (a lost free and a live neighbour reclaimed).
            int threads = 8;
            CountDownLatch go = new CountDownLatch(1);
            java.util.concurrent.atomic.AtomicInteger ok = new java.util.concurrent.atomic.AtomicInteger();
            java.util.concurrent.atomic.AtomicInteger refused = new java.util.concurrent.atomic.AtomicInteger();
            List<Thread> ts = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                ts.add(TestThreads.platform(() -> {
                    try {
                        go.await();
                    } catch (InterruptedException e) {
                        throw new RuntimeException(e);
                    }
                    for (int i = 0; i < 1024; i++) {
                        try {
                            s.markFree(i, BASE + i * 8L);
                            ok.incrementAndGet();
                        } catch (IllegalStateException e) {
                            refused.incrementAndGet();
                        }
                    }
                }));
            }
            go.countDown();
            for (Thread t : ts) {
                t.join();
            }
            assertEquals(1024, ok.get(), "each slot freed exactly once");
            assertEquals(1024 * (threads - 1), refused.get());
            assertEquals(1024, s.pendingFrees());
            s.checkInvariants(); // every mark is 1, and none outside the span
            assertEquals(1024, s.sweep());
            assertEquals(0, s.allocCount);
        }
    }

    @Test
    void largeSpanRefusesASecondFree() {
        MSpan s = new MSpan();
        s.initLarge(BASE, 5, 40_000, 0, false);
        s.markLargeFree(BASE);
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> s.markLargeFree(BASE));
        assertTrue(e.getMessage().contains("double free"));
    }
}
