package io.gomem.heap;

import io.gomem.Mem;

import io.gomem.TestThreads;
import io.gomem.internal.RawMemory;
import io.gomem.GoHeap;
import io.gomem.os.OsMemory;
import io.gomem.stats.MemStats;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A thread holding a P for a scope ({@link HeldP}, {@code GoHeap.local()}): the plain-store
 * paths do what the leased ones do, confinement and the scope's life are enforced, and the heap
 * (close, stop-the-world, statistics, the idle flush) stays sound around open scopes.
 */
class HeldPTest {
    
    private static Malloc heap(int procs, int maxHeld) {
        return Malloc.create(new OsMemory(), new Malloc.Config(procs, Long.MAX_VALUE, Long.MAX_VALUE, 10, 1, maxHeld, 0, procs));
    }

    private static MSpan span(Malloc m, long p) {
        return m.spanAt(p);
    }

    @Test
    void allocationsComeFromTheHeldPAndItsOwnFreesArePlainLocalMarks() {
        try (Malloc m = heap(2, 4); GoHeap.Local p = m.local()) {
            assertTrue(p.holdsP());
            HeldP h = (HeldP) p;
            long a = p.allocate(64);
            MSpan s = span(m, a);
            assertSame(h.cache(), s.cachedBy, "the span serving the scope is its P's");
            int idx = s.slotOf(a);
            p.free(a);
            assertEquals(1, s.localFrees, "a free into the P's own span is a local mark");
            assertTrue(s.isFreePending(idx));
            assertEquals(0, s.pendingFrees() - s.localFrees, "and no atomic mark");
            // A second free of it is refused, with nothing changed.
            assertThrows(IllegalStateException.class, () -> p.free(a));
            assertEquals(1, s.localFrees);
            // The slot comes back once the span is used up and swept in place.
            Set<Long> seen = new HashSet<>();
            for (int i = 0; i < s.nelems; i++) {
                long b = p.allocate(64);
                assertTrue(seen.add(b), "no address handed out twice while live");
            }
            assertTrue(seen.contains(a), "the locally freed slot is reused");
            assertEquals(0, s.localFrees);
            for (long b : seen) {
                p.free(b);
            }
            m.checkInvariants(); // the owner may check: its own scope is quiescent
        }
    }

    @Test
    void aFreeOfAnObjectInAnotherPsSpanTakesTheAtomicPath() {
        try (Malloc m = heap(2, 4)) {
            long a = m.allocate(128); // a P slot's span
            try (GoHeap.Local p = m.local()) {
                MSpan s = span(m, a);
                assertNotEquals(((HeldP) p).cache(), s.cachedBy);
                p.free(a);
                assertEquals(0, s.localFrees);
                assertEquals(1, s.pendingFrees(), "an atomic free mark");
                assertThrows(IllegalStateException.class, () -> m.free(a), "double free seen through the heap too");
            }
            m.checkInvariants();
        }
    }

    @Test
    void objectsOfAScopeMayBeFreedByAnyThreadAndAreCountedOnce() throws Exception {
        try (Malloc m = heap(2, 4)) {
            long[] ps = new long[1000];
            try (GoHeap.Local p = m.local()) {
                for (int i = 0; i < ps.length; i++) {
                    ps[i] = p.allocate(16 + (i % 64) * 16);
                }
                Thread t = TestThreads.platform(() -> {
                    for (int i = 0; i < ps.length; i += 2) {
                        m.free(ps[i]); // remote, atomic
                    }
                });
                t.join();
                for (int i = 1; i < ps.length; i += 2) {
                    p.free(ps[i]); // local or remote, by span
                }
                for (long a : ps) {
                    long x = a;
                    assertThrows(IllegalStateException.class, () -> p.free(x), "every one is freed already");
                }
            }
            MemStats st = m.memStatsSwept();
            assertEquals(st.mallocs(), st.frees(), "every object allocated in the scope counted freed once");
            assertEquals(0, st.heapObjects());
            m.checkInvariants();
        }
    }

    @Test
    void everySizeAndAlignmentWorksOnAHeldPAndZeroedMemoryIsZero() {
        SplittableRandom r = new SplittableRandom(13);
        try (Malloc m = heap(1, 2); GoHeap.Local p = m.local()) {
            List<long[]> live = new ArrayList<>();
            for (int i = 0; i < 4000; i++) {
                long size = switch (r.nextInt(4)) {
                    case 0 -> r.nextLong(1, 16);
                    case 1 -> r.nextLong(16, 1025);
                    case 2 -> r.nextLong(1025, 32769);
                    default -> r.nextLong(32769, 600_000);
                };
                long align = 1L << r.nextInt(13);
                boolean zero = r.nextBoolean();
                long a = zero ? p.allocateZeroed(size, align) : p.allocateAligned(size, align);
                assertEquals(0, a % Math.min(align, 8192), "alignment " + align);
                Mem seg = Mem.at(a, size);
                if (zero) {
                    assertEquals(-1, seg.firstNonZero(), "zeroed " + size + " B");
                }
                seg.fill((byte) 0x5a);
                live.add(new long[] {a, size});
                if (r.nextInt(3) == 0) {
                    long[] v = live.remove(r.nextInt(live.size()));
                    p.free(v[0], v[1]);
                }
            }
            for (long[] v : live) {
                p.free(v[0]);
            }
            MemStats st = m.memStatsSwept();
            assertEquals(0, st.heapObjects());
            m.checkInvariants();
        }
    }

    @Test
    void aScopeIsConfinedToItsThreadAndDeadAfterClose() throws Exception {
        try (Malloc m = heap(2, 4)) {
            GoHeap.Local p = m.local();
            long a = p.allocate(32);
            AtomicReference<Throwable> seen = new AtomicReference<>();
            Thread t = TestThreads.platform(() -> {
                List<Runnable> uses = List.of(() -> p.allocate(32), () -> p.allocate(100_000), () -> p.allocateZeroed(8),
                        () -> p.free(a), p::close, p::holdsP);
                for (Runnable u : uses) {
                    try {
                        u.run();
                        seen.set(new AssertionError("another thread used the scope"));
                    } catch (RuntimeException expected) {
                        if (expected.getClass() != TestThreads.wrongThreadException()) {
                            seen.set(expected);
                        } // else refused
                    } catch (Throwable e) {
                        seen.set(e);
                    }
                }
            });
            t.join();
            if (seen.get() != null) {
                throw new AssertionError(seen.get());
            }
            p.free(a); // nothing happened to it
            p.close();
            p.close(); // idempotent
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> p.allocate(32));
            assertTrue(e.getMessage().contains("closed"), e.getMessage());
            assertThrows(IllegalStateException.class, () -> p.free(a));
            assertEquals(0, m.openScopes());
        }
    }

    @Test
    void closeOfTheHeapIsRefusedWhileAScopeIsOpenAndChangesNothing() {
        Malloc m = heap(2, 4);
        javax.management.ObjectName bean = m.registerMXBean("heldp-refused-close");
        javax.management.MBeanServer server = java.lang.management.ManagementFactory.getPlatformMBeanServer();
        GoHeap.Local p = m.local();
        long a = p.allocate(48);
        IllegalStateException e = assertThrows(IllegalStateException.class, m::close);
        assertTrue(e.getMessage().contains("1 P(s) held") && e.getMessage().contains(Thread.currentThread().toString()),
                e.getMessage());
        assertFalse(m.isClosed());
        assertTrue(server.isRegistered(bean), "a refused close leaves the MXBean registered");
        RawMemory.putLong(a, 42L); // the memory is still there
        p.free(a);
        p.close();
        m.close();
        assertTrue(m.isClosed());
        assertFalse(server.isRegistered(bean));
        assertThrows(IllegalStateException.class, m::local);
    }

    @Test
    void beyondMaxLocalsAScopeWorksWithoutAPOfItsOwn() {
        try (Malloc m = heap(2, 1); GoHeap.Local p1 = m.local(); GoHeap.Local p2 = m.local()) {
            assertTrue(p1.holdsP());
            assertFalse(p2.holdsP());
            long a = p2.allocate(64);
            long b = p1.allocate(64);
            p1.free(a);
            p2.free(b);
            p2.close();
            m.checkInvariants();
        }
        try (Malloc m = heap(2, 0); GoHeap.Local p = m.local()) {
            assertFalse(p.holdsP(), "maxLocals 0: no held Ps");
            p.free(p.allocate(10));
        }
    }

    @Test
    void aClosedScopesPGoesBackWarmAndIsReusedByTheNextScope() {
        try (Malloc m = heap(1, 4)) {
            MCache first;
            long a;
            try (GoHeap.Local p = m.local()) {
                first = ((HeldP) p).cache();
                a = p.allocate(256);
            }
            try (GoHeap.Local p = m.local()) {
                assertSame(first, ((HeldP) p).cache(), "the spare P, with its spans");
                assertSame(first, span(m, a).cachedBy);
                p.free(a);
                assertEquals(1, span(m, a).localFrees);
            }
            assertEquals(1, m.procs.heldCaches());
            assertEquals(1, m.memStatsSwept().mallocs() - m.memStatsSwept().frees() + 1, "one object allocated, freed");
            m.checkInvariants();
        }
    }

    @Test
    void theScopeOfAThreadThatEndedWithoutClosingIsTakenBack() throws Exception {
        try (Malloc m = heap(1, 4)) {
            long[] kept = new long[1];
            Thread t = TestThreads.platform(() -> {
                GoHeap.Local p = m.local();
                kept[0] = p.allocate(512);
                p.allocate(700_000); // a large one too
                // never closed
            });
            t.join();
            assertEquals(1, m.openScopes());
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> m.procs.checkNoOtherScopes("x"));
            assertTrue(e.getMessage().contains(t.toString()), e.getMessage());
            m.procs.flushIdleCaches(); // the background thread's period
            assertEquals(0, m.openScopes());
            m.free(kept[0]);
            m.checkInvariants();
        } // and the heap closes
    }

    @Test
    void checkInvariantsIsRefusedWhileAnotherThreadHoldsAScopeAndStatsLagOnlyByIt() throws Exception {
        try (Malloc m = heap(2, 4)) {
            java.util.concurrent.CountDownLatch opened = new java.util.concurrent.CountDownLatch(1);
            java.util.concurrent.CountDownLatch done = new java.util.concurrent.CountDownLatch(1);
            long[] a = new long[1];
            Thread t = TestThreads.platform(() -> {
                try (GoHeap.Local p = m.local()) {
                    a[0] = p.allocate(24);
                    opened.countDown();
                    done.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            });
            assertTrue(opened.await(10, TimeUnit.SECONDS));
            IllegalStateException e = assertThrows(IllegalStateException.class, m::checkInvariants);
            assertTrue(e.getMessage().contains("other threads"), e.getMessage());
            MemStats during = m.memStats(); // not waiting for the scope, consistent
            during.checkInvariants();
            assertTrue(m.releaseMemory() >= 0); // never waits for the scope either
            done.countDown();
            t.join();
            MemStats after = m.memStatsSwept();
            assertEquals(1, after.heapObjects(), "counted at the scope's close");
            m.free(a[0]);
            m.checkInvariants();
        }
    }

    @Test
    void aSeededRandomMixOfScopesHeapCallsAndThreadsKeepsEveryObjectItsOwn() throws Exception {
        SplittableRandom seeds = new SplittableRandom(20261201);
        try (Malloc m = heap(2, 3)) {
            int threads = 4;
            List<Thread> ts = new ArrayList<>();
            List<Throwable> errors = java.util.Collections.synchronizedList(new ArrayList<>());
            java.util.concurrent.ConcurrentLinkedQueue<Long> handoff = new java.util.concurrent.ConcurrentLinkedQueue<>();
            for (int t = 0; t < threads; t++) {
                SplittableRandom r = seeds.split();
                ts.add(TestThreads.platform(() -> {
                    try {
                        Map<Long, Long> live = new HashMap<>(); // address -> stamp written into it
                        GoHeap.Local p = null;
                        for (int i = 0; i < 20_000; i++) {
                            int op = r.nextInt(100);
                            if (op < 3) {
                                if (p == null) {
                                    p = m.local();
                                } else {
                                    p.close();
                                    p = null;
                                }
                            } else if (op < 55 || live.isEmpty()) {
                                long size = r.nextInt(10) == 0 ? r.nextLong(1025, 70_000) : r.nextLong(8, 1025);
                                long a = p != null ? p.allocate(size) : m.allocate(size);
                                long stamp = r.nextLong();
                                RawMemory.putLong(a, stamp);
                                if (live.put(a, stamp) != null) {
                                    throw new AssertionError("0x" + Long.toHexString(a) + " handed out twice");
                                }
                            } else if (op < 60) {
                                Long h = handoff.poll();
                                if (h != null) {
                                    if (p != null) {
                                        p.free(h);
                                    } else {
                                        m.free(h);
                                    }
                                }
                            } else {
                                long a = live.keySet().iterator().next();
                                long stamp = live.remove(a);
                                if (RawMemory.getLong(a) != stamp) {
                                    throw new AssertionError("0x" + Long.toHexString(a) + " overwritten by another owner");
                                }
                                if (op < 65) {
                                    handoff.add(a);
                                } else if (p != null) {
                                    p.free(a);
                                } else {
                                    m.free(a);
                                }
                            }
                        }
                        for (long a : live.keySet()) {
                            m.free(a);
                        }
                        if (p != null) {
                            p.close();
                        }
                    } catch (Throwable e) {
                        errors.add(e);
                    }
                }));
            }
            for (Thread t : ts) {
                t.join();
            }
            if (!errors.isEmpty()) {
                throw new AssertionError(errors.get(0));
            }
            for (Long h; (h = handoff.poll()) != null; ) {
                m.free(h);
            }
            MemStats st = m.memStatsSwept();
            assertEquals(0, st.heapObjects(), st.toString());
            m.checkInvariants();
        }
    }

    /**
     * Issue 12: the scope's constructor registered it among the open ones, then set its P; a
     * thread reading the open scopes (under Procs' lock) could find one with no P. Threads open
     * and close scopes in a loop (more than maxLocals, so some hold none) while another checks
     * every open scope is whole, stops the world and runs forEachP.
     */
    @Test
    void everyOpenScopeIsWholeWhileOthersOpenAndCloseAndTheWorldStops() throws Exception {
        try (Malloc m = heap(2, 2)) {
            Background.unregister(m);
            java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
            AtomicReference<Throwable> failure = new AtomicReference<>();
            long[] checks = new long[1];
            Thread checker = TestThreads.platform(() -> {
                try {
                    for (long k = 0; !stop.get(); k++) {
                        m.procs.checkScopes();
                        if ((k & 15) == 0) {
                            m.procs.stopTheWorld(m.procs::checkScopes);
                            m.procs.forEachP((k & 16) == 0, c -> { });
                        }
                        checks[0]++;
                    }
                } catch (Throwable t) {
                    failure.compareAndSet(null, t);
                }
            });
            List<Thread> openers = new ArrayList<>();
            for (int t = 0; t < 3; t++) {
                openers.add(TestThreads.platform(() -> {
                    try {
                        for (int i = 0; i < 20_000 && failure.get() == null; i++) {
                            try (GoHeap.Local l = m.local()) {
                                l.free(l.allocate(16 + (i % 64) * 8));
                            }
                        }
                    } catch (Throwable e) {
                        failure.compareAndSet(null, e);
                    }
                }));
            }
            for (Thread t : openers) {
                t.join();
            }
            stop.set(true);
            checker.join();
            if (failure.get() != null) {
                throw new AssertionError("a scope was seen half made, or an operation failed", failure.get());
            }
            assertTrue(checks[0] > 0);
            assertEquals(0, m.openScopes());
            assertEquals(2, m.procs.heldCaches(), "maxLocals Ps held at most, then reused");
            m.checkInvariants();
        }
    }
}
