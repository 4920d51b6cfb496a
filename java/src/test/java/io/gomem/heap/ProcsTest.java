package io.gomem.heap;

import io.gomem.TestThreads;
import io.gomem.os.OsMemory;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Which P cache a thread's operations land on: threads claim caches and keep to them. */
class ProcsTest {
    final Malloc core = Malloc.create(new OsMemory(), Malloc.Config.of(2));

    ProcsTest() {
        Background.unregister(core); // the tests call flushIdleCaches themselves, at known moments
    }

    @AfterEach
    void close() {
        core.close();
    }

    /** Starts {@code t} and waits for it. */
    private static void runOn(Thread t) throws InterruptedException {
        t.start();
        t.join();
    }

    /** The cache {@code t}'s id picks if {@code t} owns it, else the first other one it owns, else null. */
    private MCache ownedBy(Thread t) {
        MCache home = core.procs.slots[(int) (t.getId() & (core.procs.slots.length - 1))];
        if (home.owner == t.getId()) {
            return home;
        }
        for (MCache c : core.procs.slots) {
            if (c.owner == t.getId()) {
                return c;
            }
        }
        return null;
    }

    @Test
    void threadsWhoseIdsPickTheSameCacheSettleOnDifferentCaches() throws Exception {
        int mask = core.procs.slots.length - 1;
        long[] got = new long[3];
        Thread a = new Thread(() -> got[0] = core.allocate(64));
        // Thread ids are handed out in order: make threads until one picks the same slot as a.
        Thread b;
        do {
            b = new Thread(() -> got[1] = core.allocate(64));
        } while ((b.getId() & mask) != (a.getId() & mask));
        MCache picked = core.procs.slots[(int) (a.getId() & mask)];
        runOn(a);
        assertSame(picked, ownedBy(a), "the first thread claims the cache its id picks");
        runOn(b);
        MCache ofB = ownedBy(b);
        assertNotSame(picked, ofB, "the second thread, whose id picks the same cache, claims the free one");
        assertSame(picked, ownedBy(a), "and leaves the first thread's cache to it");

        // The two objects come from the spans of two different caches.
        MSpan sa = core.heap.spanOf(got[0]);
        MSpan sb = core.heap.spanOf(got[1]);
        assertNotSame(sa, sb);
        assertSame(sa, picked.alloc[sa.spanClass]);
        assertSame(sb, ofB.alloc[sb.spanClass]);

        // A third thread on the same slot finds both caches owned: it borrows one and works,
        // and the owners keep theirs.
        Thread third;
        do {
            third = new Thread(() -> got[2] = core.allocate(64));
        } while ((third.getId() & mask) != (a.getId() & mask));
        runOn(third);
        assertTrue(got[2] != 0);
        assertTrue(ownedBy(third) == null, "a borrower claims nothing");
        assertSame(picked, ownedBy(a));
        assertSame(ofB, ownedBy(b));
        core.free(got[0]);
        core.free(got[1]);
        core.free(got[2]);
        core.checkInvariants();
    }

    @Test
    void theIdleFlushKeepsABusyOwnerAndForgetsAQuietOrEndedOne() throws Exception {
        java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
        java.util.concurrent.atomic.AtomicBoolean pause = new java.util.concurrent.atomic.AtomicBoolean();
        java.util.concurrent.atomic.AtomicBoolean paused = new java.util.concurrent.atomic.AtomicBoolean();
        Thread a = TestThreads.platform(() -> {
            while (!stop.get()) {
                if (!pause.get()) {
                    core.free(core.allocate(64)); // sweeps its span in place every 128 pairs
                } else {
                    paused.set(true); // no operation in flight until pause is cleared
                    Thread.onSpinWait();
                }
            }
        });
        while (ownedBy(a) == null) {
            Thread.sleep(1);
        }
        MCache c = ownedBy(a);
        core.procs.flushIdleCaches();
        Thread.sleep(50);
        core.procs.flushIdleCaches();
        assertSame(c, ownedBy(a), "busy (sweeping in place): it keeps its cache");

        pause.set(true);
        while (!paused.get()) { // its last operation has ended (a sleep here failed under load:
            Thread.sleep(1);    // the flush skipped the cache while a descheduled operation held it)
        }
        core.procs.flushIdleCaches(); // notes the counts (the background thread may have done it)
        core.procs.flushIdleCaches(); // nothing since: quiet
        assertEquals(0, c.owner, "quiet, although alive: the cache is anyone's");
        assertEquals(0, c.cachedSpans());

        pause.set(false);
        while (ownedBy(a) == null) {
            Thread.sleep(1); // claims a cache again
        }
        stop.set(true);
        a.join();
        core.procs.flushIdleCaches();
        assertTrue(ownedBy(a) == null, "ended: forgotten");
        core.checkInvariants();
    }

    // ───────────────────────────── stop-the-world, forEachP, close ─────────────────────────────

    /** Holds {@code c}'s lease on another thread until {@code release} counts down. */
    private static Thread holdLease(MCache c, java.util.concurrent.CountDownLatch held,
                                    java.util.concurrent.CountDownLatch release) {
        return TestThreads.platform(() -> {
            while (!c.tryLease()) {
                Thread.onSpinWait();
            }
            held.countDown();
            try {
                release.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } finally {
                c.release();
            }
        });
    }

    @Test
    void stopTheWorldWaitsForTheOperationInFlightAndKeepsNewOnesOut() throws Exception {
        MCache c = core.procs.caches()[0];
        var held = new java.util.concurrent.CountDownLatch(1);
        var release = new java.util.concurrent.CountDownLatch(1);
        Thread holder = holdLease(c, held, release);
        held.await();
        var ran = new java.util.concurrent.atomic.AtomicBoolean();
        var duringStw = new java.util.concurrent.atomic.AtomicLong(-1);
        Thread stw = TestThreads.platform(() -> core.procs.stopTheWorld(() -> {
            ran.set(true);
            // Every lease is ours: an operation that starts now cannot get one.
            for (MCache o : core.procs.caches()) {
                duringStw.set(o.tryLease() ? 1 : 0);
            }
        }));
        Thread.sleep(100);
        assertTrue(!ran.get(), "the world stopped while an operation held a P");
        release.countDown();
        stw.join(10_000);
        holder.join();
        assertTrue(ran.get(), "it stopped once the operation ended");
        assertEquals(0, duringStw.get(), "no lease free while the world is stopped");
        core.free(core.allocate(64)); // and the world runs again
    }

    @Test
    void forEachPSkipsABusyPUnlessToldToWait() throws Exception {
        MCache busy = core.procs.caches()[1];
        var held = new java.util.concurrent.CountDownLatch(1);
        var release = new java.util.concurrent.CountDownLatch(1);
        Thread holder = holdLease(busy, held, release);
        held.await();
        java.util.List<MCache> seen = new java.util.ArrayList<>();
        core.procs.forEachP(false, seen::add);
        assertEquals(java.util.List.of(core.procs.caches()[0]), seen, "the busy P is skipped, not waited for");
        java.util.List<MCache> all = java.util.Collections.synchronizedList(new java.util.ArrayList<>());
        Thread waiter = TestThreads.platform(() -> core.procs.forEachP(true, all::add));
        Thread.sleep(50);
        assertEquals(1, all.size(), "waits at the busy P");
        release.countDown();
        waiter.join(10_000);
        holder.join();
        assertEquals(2, all.size());
    }

    @Test
    void closeLeavesEveryLeaseTakenForGoodAndRunsOnce() {
        long p = core.allocate(64);
        int[] runs = new int[1];
        assertTrue(core.procs.close(() -> {
            runs[0]++;
            core.heap.releaseAll();
        }));
        assertTrue(!core.procs.close(() -> runs[0]++), "a second close does nothing");
        assertEquals(1, runs[0]);
        for (MCache c : core.procs.caches()) {
            assertTrue(!c.tryLease(), "a closed heap's P is never leased again");
        }
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> core.allocate(64));
        assertTrue(e.getMessage().contains("closed"), e.getMessage());
        assertThrows(IllegalStateException.class, () -> core.procs.forEachP(false, c -> { }));
        assertThrows(IllegalStateException.class, () -> core.procs.stopTheWorld(() -> { }));
        assertTrue(p != 0);
    }
    /**
     * Ps added under contention are bounded and left behind by ended threads: rounds of platform
     * threads, more than the CPUs, allocate and free and end; between rounds the idle flush
     * forgets their owners and empties the Ps, so later rounds claim those Ps instead of adding
     * more, and no span stays cached once every thread has ended.
     */
    @Test
    void psAddedForBusyThreadsAreBoundedAndReusedAfterTheThreadsEnd() throws Exception {
        int threads = 6;
        try (Malloc m = Malloc.create(new OsMemory(), new Malloc.Config(1, Long.MAX_VALUE, Long.MAX_VALUE, 10, 1,
                Malloc.DEFAULT_MAX_HELD, 0, 32))) {
            Background.unregister(m);
            int afterFirst = 0;
            for (int round = 0; round < 8; round++) {
                java.util.List<Thread> ts = new java.util.ArrayList<>();
                for (int t = 0; t < threads; t++) {
                    ts.add(TestThreads.platform(() -> {
                        long[] live = new long[64];
                        for (int i = 0; i < 20_000; i++) {
                            int k = i & 63;
                            if (live[k] != 0) {
                                m.free(live[k]);
                            }
                            live[k] = m.allocate(16 + (i % 97) * 8);
                        }
                        for (long a : live) {
                            m.free(a);
                        }
                    }));
                }
                for (Thread t : ts) {
                    t.join();
                }
                assertTrue(m.procs() <= 1 + threads * (round + 1) && m.procs() <= 32, "procs " + m.procs());
                if (round == 0) {
                    afterFirst = m.procs();
                }
                m.procs.flushIdleCaches(); // counts the period: the Ps took spans in it
                m.procs.flushIdleCaches(); // a quiet period: spans back, owners forgotten
                for (MCache c : m.procs.caches()) {
                    assertEquals(0, c.owner, "the owner of P " + c.id + " ended and was forgotten");
                }
            }
            // Threads of later rounds claim the Ps the ended ones left (only a thread that finds
            // every P busy for a while adds one): the count stays near the first round's.
            assertTrue(m.procs() <= afterFirst + threads, "procs " + m.procs() + " after 8 rounds, " + afterFirst + " after 1");
            assertEquals(0, m.cachedSpans(), "no span cached once the threads ended and the Ps were flushed");
            assertEquals(0, m.memStatsSwept().heapObjects());
            m.checkInvariants();
            System.out.println("P slots: " + afterFirst + " after the first round of " + threads + " threads, "
                    + m.procs() + " after 8");
        }
    }

    /** {@code gomem.checkInvariants}: the pom's check-invariants execution sets it; the checks below exist only then. */
    static final boolean CHECK = io.gomem.internal.Options.CHECK_INVARIANTS.booleanValue();

    @Test
    void whatStwLockGuardsIsAssertedHeld() {
        org.junit.jupiter.api.Assumptions.assumeTrue(CHECK, "only with -Dgomem.checkInvariants=true");
        IllegalStateException e = assertThrows(IllegalStateException.class, core.procs::reclaimEnded, "the open scopes");
        assertTrue(e.getMessage().contains("stwLock"), e.getMessage());
        e = assertThrows(IllegalStateException.class, () -> core.procs.setPicks(core.procs.slots), "the fast path's table");
        assertTrue(e.getMessage().contains("stwLock"), e.getMessage());
        core.checkInvariants(); // nothing changed
    }
}
