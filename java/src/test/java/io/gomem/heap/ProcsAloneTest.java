package io.gomem.heap;

import io.gomem.TestThreads;
import io.gomem.os.MemState;
import io.gomem.os.OsMemory;
import io.gomem.os.Purpose;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link Procs} alone: no Malloc, a small page heap over a real OS layer, one set of centrals and
 * the counters, and a {@link Procs.Table} and {@link Procs.Scope}s of the test's own. Leases,
 * P growth, stop-the-world, forEachP, held Ps (scopes) and close, each checked by what other
 * threads can and cannot get, never by how long anything took. Every wait here is bounded: a
 * thread that should have finished is joined with a timeout and reported if it did not.
 */
class ProcsAloneTest {
    final OsMemory os = new OsMemory(OsMemory.UnusedMode.DONTNEED);
    final MStats stats = new MStats();
    final MHeap heap = new MHeap(os, Scavenger.Config.NONE, stats);
    final MCentral[][] centrals = {MCentral.forEveryClass(heap, stats, 0)};
    final List<Thread> started = new ArrayList<>();
    /** Latches the test's threads wait on: counted down at teardown too, so a failed test leaves no thread holding a lease. */
    final List<CountDownLatch> latches = new ArrayList<>();
    Procs procs;

    /** The fast path's tables as published, in order. */
    static final class Reader implements Procs.Table {
        final List<MCache[]> tables = Collections.synchronizedList(new ArrayList<>());

        @Override
        public void publishPicks(MCache[] picks) {
            tables.add(picks);
        }

        MCache[] last() {
            synchronized (tables) {
                return tables.get(tables.size() - 1);
            }
        }
    }

    /** A scope as Procs sees one: its owner, its P's cache, its index (Procs'). */
    static final class Scope implements Procs.Scope {
        final Thread owner;
        final MCache cache;
        int index = -1;

        Scope(Thread owner, MCache cache) {
            this.owner = owner;
            this.cache = cache;
        }

        @Override
        public Thread owner() {
            return owner;
        }

        @Override
        public MCache cache() {
            return cache;
        }

        @Override
        public int index() {
            return index;
        }

        @Override
        public void index(int i) {
            index = i;
        }
    }

    final Reader reader = new Reader();

    Procs procs(int n, int maxProcs, int maxHeld) {
        procs = new Procs(n, maxProcs, maxHeld, heap, centrals, stats);
        procs.publishPicksTo(reader);
        return procs;
    }

    /** Opens a scope of the calling thread. */
    Scope open() {
        return procs.openScope(c -> new Scope(Thread.currentThread(), c));
    }

    /** Closes a scope of the calling thread, as HeldP.close does. */
    void close(Scope s) {
        s.cache.flushCounts();
        procs.releaseHeld(s, s.cache);
    }

    CountDownLatch latch() {
        CountDownLatch l = new CountDownLatch(1);
        latches.add(l);
        return l;
    }

    Thread start(Runnable r) {
        Thread t = TestThreads.daemon("test", r);
        started.add(t);
        return t;
    }

    static void join(Thread t) throws InterruptedException {
        t.join(TimeUnit.SECONDS.toMillis(30));
        assertFalse(t.isAlive(), t + " is still waiting: a bounded wait did not end");
    }

    /** Waits (bounded) until the reader's table is the stopped one: a stop-the-world (or close) has begun. */
    void awaitStopping() throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (reader.last()[0].id != -1) {
            assertTrue(System.nanoTime() < deadline, "no stop-the-world began");
            Thread.sleep(1);
        }
    }

    @AfterEach
    void closeAndUnmap() throws Exception {
        latches.forEach(CountDownLatch::countDown);
        if (procs != null && !procs.isClosed()) {
            // Wakes any thread still waiting for a P (it finds the heap closed). Bounded: a failed
            // test may have left a lease taken, and then the heap is left mapped.
            Thread closer = TestThreads.daemon("test", () -> procs.close(() -> { }));
            closer.join(TimeUnit.SECONDS.toMillis(30));
            assertFalse(closer.isAlive(), "the close waits for a lease the test left taken");
        }
        for (Thread t : started) {
            join(t);
        }
        heap.releaseAll();
        for (MemState st : new MemState[] {MemState.RESERVED, MemState.PREPARED, MemState.READY}) {
            assertEquals(0, os.bytes(st, Purpose.HEAP), "after releaseAll nothing of the heap is " + st);
        }
    }

    // ───────────────────────────── the slots ─────────────────────────────

    static Stream<Arguments> badCounts() {
        return Stream.of(
                Arguments.of("no P", 0, 1, 0),
                Arguments.of("over 4096 Ps", 4097, 4097, 0),
                Arguments.of("maxProcs under procs", 4, 3, 0),
                Arguments.of("maxProcs over 4096", 1, 4097, 0),
                Arguments.of("negative maxHeld", 1, 1, -1),
                Arguments.of("maxHeld over 65536", 1, 1, 65537));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("badCounts")
    void theConstructorRefusesBadCounts(String name, int n, int maxProcs, int maxHeld) {
        assertThrows(IllegalArgumentException.class, () -> new Procs(n, maxProcs, maxHeld, heap, centrals, stats));
    }

    @ParameterizedTest(name = "procs {0}")
    @MethodSource("slotCounts")
    void theSlotsAreThePsInOrderAndTheTablePicksEachEvenly(int n) {
        Procs p = procs(n, n, 0);
        assertEquals(n, p.procs());
        MCache[] cs = p.caches();
        for (int i = 0; i < n; i++) {
            assertEquals(i, cs[i].id);
            assertEquals(0, cs[i].owner, "nobody owns a new P");
        }
        MCache[] sl = p.slots;
        assertEquals(1, Integer.bitCount(sl.length), "a power of two: a mask picks the slot");
        assertTrue(sl.length >= 4 * n, "four or more entries per P: " + sl.length);
        for (int i = 0; i < sl.length; i++) {
            assertSame(cs[i % n], sl[i]);
        }
        assertEquals(1, reader.tables.size(), "the reader got the table once, at publishPicksTo");
        assertSame(sl, reader.last());
        assertThrows(IllegalStateException.class, () -> p.publishPicksTo(new Reader()), "one reader");
    }

    static Stream<Integer> slotCounts() {
        return Stream.of(1, 2, 3, 5, 8);
    }

    // ───────────────────────────── leases ─────────────────────────────

    @Test
    void aLeaseIsExclusiveAndItsReleaseMakesItAvailable() throws Exception {
        procs(1, 1, 0);
        MCache c = procs.caches()[0];
        assertTrue(c.tryLease());
        assertFalse(c.tryLease(), "leased: not again, not even by its holder");
        AtomicBoolean other = new AtomicBoolean(true);
        join(start(() -> other.set(c.tryLease())));
        assertFalse(other.get(), "nor by another thread");
        assertNull(procs.tryLeaseForOffer(7), "an offer finds no free P and does not wait");

        // A thread that needs a P waits for the one P (maxProcs 1: none is added) and gets it once released.
        AtomicReference<MCache> got = new AtomicReference<>();
        CountDownLatch asking = latch();
        Thread waiter = start(() -> {
            asking.countDown();
            got.set(procs.leaseSlow(Thread.currentThread().getId()));
        });
        asking.await();
        Thread.sleep(20);
        assertNull(got.get(), "no P while the one P is leased");
        assertEquals(1, procs.procs(), "maxProcs 1: no P added");
        c.release();
        join(waiter);
        assertSame(c, got.get(), "released: the waiter got it");
        assertFalse(c.tryLease(), "and holds it");
        c.release();
        assertTrue(c.tryLease(), "released again: free");
        c.release();
    }

    @Test
    void aThreadClaimsAFreePKeepsToItAndOthersBorrowWithoutClaiming() throws Exception {
        procs(2, 2, 0);
        MCache[] cs = procs.caches();
        long a = 1001;
        long b = 1002;
        MCache ofA = procs.leaseSlow(a);
        assertEquals(a, ofA.owner, "a P nobody owns is claimed");
        ofA.release();
        assertSame(ofA, procs.leaseSlow(a), "its owner gets it again");
        MCache ofB = procs.leaseSlow(b); // a's P is leased: b claims the other
        assertNotSame(ofA, ofB);
        assertEquals(b, ofB.owner);
        ofA.release();
        ofB.release();
        assertTrue(ofB.tryLease()); // b's P busy: a third thread borrows a's without claiming it
        MCache borrowed = procs.leaseSlow(1003);
        assertSame(ofA, borrowed);
        assertEquals(a, borrowed.owner, "a borrower claims nothing");
        borrowed.release();
        ofB.release();
        assertEquals(Set.of(cs[0], cs[1]), Set.of(ofA, ofB));
    }

    // ───────────────────────────── P growth ─────────────────────────────

    /** Leases a P on a new platform thread and keeps it until {@code release} counts down. */
    Thread leaseAndHold(AtomicReference<MCache> got, CountDownLatch release) {
        return start(() -> {
            MCache c = procs.leaseSlow(Thread.currentThread().getId());
            got.set(c);
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
    void aPlatformThreadThatFindsEveryPBusyAddsOneUpToMaxProcsThenWaits() throws Exception {
        procs(1, 3, 0);
        MCache first = procs.caches()[0];
        assertTrue(first.tryLease());
        CountDownLatch release = latch();
        List<AtomicReference<MCache>> got = new ArrayList<>();
        for (int i = 0; i < 2; i++) {
            AtomicReference<MCache> g = new AtomicReference<>();
            got.add(g);
            Thread t = leaseAndHold(g, release);
            while (g.get() == null && t.isAlive()) {
                Thread.onSpinWait();
            }
            MCache added = g.get();
            assertEquals(i + 1, added.id, "a P added for the thread");
            assertEquals(t.getId(), added.owner, "owned by the thread that added it");
            assertEquals(i + 2, procs.procs());
            MCache[] published = reader.last();
            assertSame(procs.slots, published, "the reader has the new table");
            assertSame(added, published[(int) t.getId() & (published.length - 1)], "whose entry for the thread is its P");
        }
        // maxProcs reached: the next thread waits for a P instead of adding one.
        AtomicReference<MCache> third = new AtomicReference<>();
        Thread waiter = start(() -> third.set(procs.leaseSlow(Thread.currentThread().getId())));
        Thread.sleep(20);
        assertNull(third.get(), "every P leased, none may be added");
        assertEquals(3, procs.procs(), "bounded by maxProcs");
        first.release();
        join(waiter);
        assertSame(first, third.get());
        third.get().release();
        release.countDown();
        assertEquals(3, procs.procs());
    }

    @Test
    void aVirtualThreadNeverAddsAP() throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(TestThreads.virtualThreadsExist(), "virtual threads: JDK 21+");
        procs(1, 4, 0);
        MCache only = procs.caches()[0];
        assertTrue(only.tryLease());
        AtomicReference<MCache> got = new AtomicReference<>();
        Thread v = TestThreads.virtual(() -> got.set(procs.leaseSlow(Thread.currentThread().getId())));
        started.add(v);
        Thread.sleep(20);
        assertNull(got.get());
        assertEquals(1, procs.procs(), "a virtual thread waits for a P: it runs on a carrier, never descheduled mid-slice");
        only.release();
        join(v);
        assertSame(only, got.get());
        only.release();
    }

    // ───────────────────────────── stop-the-world ─────────────────────────────

    @Test
    void stopTheWorldTakesEveryPAfterTheLeaseInFlightIsReleasedAndKeepsNewOnesOut() throws Exception {
        procs(3, 3, 4);
        Scope own = open(); // this thread's scope: its P is in the stopped world too
        Scope spareOne = open();
        close(spareOne); // a spare held P
        MCache busy = procs.caches()[1];
        assertTrue(busy.tryLease()); // an operation in flight
        AtomicBoolean ran = new AtomicBoolean();
        AtomicReference<List<MCache>> during = new AtomicReference<>();
        AtomicReference<MCache[]> picksDuring = new AtomicReference<>();
        AtomicBoolean anyFree = new AtomicBoolean();
        Thread stw = start(() -> procs.stopTheWorld(() -> {
            ran.set(true);
            during.set(List.of(procs.stoppedCaches()));
            picksDuring.set(reader.last());
            for (MCache c : procs.caches()) {
                if (c.tryLease()) {
                    anyFree.set(true);
                    c.release();
                }
            }
        }));
        awaitStopping();
        Thread.sleep(20);
        assertFalse(ran.get(), "the world does not stop while an operation holds a P");
        // While it waits, the fast path's table is the stopped one: no operation starting now gets a lease from it.
        for (MCache c : reader.last()) {
            assertEquals(-1, c.id, "the reader's table while the world stops: the sentinel only");
            assertFalse(c.tryLease());
        }
        busy.release();
        join(stw);
        assertTrue(ran.get());
        assertFalse(anyFree.get(), "no P slot free while the world is stopped");
        List<MCache> world = during.get();
        for (MCache c : procs.caches()) {
            assertTrue(world.contains(c), "P " + c.id + " in the world");
        }
        assertTrue(world.contains(spareOne.cache), "the spare held P too");
        assertFalse(world.contains(own.cache), "another thread's open scope is never in the world");
        assertEquals(procs.caches().length + 1, world.size(), "the world: the P slots and the spare P");
        assertSame(procs.slots, reader.last(), "the table is back after");
        for (MCache c : procs.caches()) {
            assertTrue(c.tryLease(), "every lease given back");
            c.release();
        }
        assertThrows(IllegalStateException.class, procs::stoppedCaches, "outside a stop-the-world");
        close(own);
    }

    @Test
    void theCallersOwnOpenScopesAreInItsStoppedWorld() {
        procs(1, 1, 4);
        Scope own = open();
        List<MCache> seen = new ArrayList<>();
        procs.stopTheWorld(() -> seen.addAll(List.of(procs.stoppedCaches())));
        assertTrue(seen.contains(own.cache), "the caller is not inside its own scope's operation: its P is the caller's to touch");
        procs.stopTheWorld(procs::checkInvariants);
        close(own);
    }

    @Test
    void aStopTheWorldThatIsInterruptedWhileWaitingStillWaitsAndKeepsTheInterrupt() throws Exception {
        procs(1, 1, 0);
        MCache c = procs.caches()[0];
        assertTrue(c.tryLease());
        AtomicBoolean ran = new AtomicBoolean();
        AtomicBoolean interruptedAfter = new AtomicBoolean();
        Thread stw = start(() -> {
            procs.stopTheWorld(() -> ran.set(true));
            interruptedAfter.set(Thread.currentThread().isInterrupted());
        });
        Thread.sleep(10);
        stw.interrupt();
        Thread.sleep(10);
        assertFalse(ran.get(), "an interrupt does not break the wait for the lease");
        c.release();
        join(stw);
        assertTrue(ran.get());
        assertTrue(interruptedAfter.get(), "the interrupt status is kept");
    }

    @Test
    void aThreadThatAsksForAPWhileTheWorldIsStoppedWaitsForItsEnd() throws Exception {
        procs(2, 2, 0);
        CountDownLatch inside = latch();
        CountDownLatch end = latch();
        Thread stw = start(() -> procs.stopTheWorld(() -> {
            inside.countDown();
            try {
                end.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }));
        inside.await();
        AtomicReference<MCache> got = new AtomicReference<>();
        Thread waiter = start(() -> got.set(procs.leaseSlow(Thread.currentThread().getId())));
        Thread.sleep(20);
        assertNull(got.get(), "no P while the world is stopped");
        assertEquals(2, procs.procs(), "and none added");
        end.countDown();
        join(stw);
        join(waiter);
        assertTrue(got.get() != null);
        got.get().release();
    }

    // ───────────────────────────── forEachP ─────────────────────────────

    @Test
    void forEachPVisitsEveryPOnceSkippingBusyOnesUnlessToldToWait() throws Exception {
        procs(3, 3, 4);
        AtomicReference<Scope> others = new AtomicReference<>();
        CountDownLatch opened = latch();
        CountDownLatch done = latch();
        Thread other = start(() -> {
            Scope s = open();
            others.set(s);
            opened.countDown();
            try {
                done.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            close(s);
        });
        opened.await();
        Scope own = open();
        Scope sp = open();
        close(sp); // a spare held P
        MCache busy = procs.caches()[2];
        assertTrue(busy.tryLease());

        List<MCache> now = new ArrayList<>();
        procs.forEachP(false, now::add);
        Set<MCache> once = Collections.newSetFromMap(new IdentityHashMap<>());
        once.addAll(now);
        assertEquals(now.size(), once.size(), "each P once");
        assertEquals(Set.of(own.cache, sp.cache, procs.caches()[0], procs.caches()[1]), Set.copyOf(now),
                "the caller's scope, the spare, the free slots; not the busy slot, never another thread's scope");
        assertFalse(now.contains(others.get().cache));

        List<MCache> all = Collections.synchronizedList(new ArrayList<>());
        CountDownLatch asked = latch();
        Thread waiting = start(() -> {
            asked.countDown();
            procs.forEachP(true, all::add);
        });
        asked.await();
        Thread.sleep(20);
        assertFalse(all.contains(busy), "waits at the busy P");
        busy.release();
        join(waiting);
        assertEquals(Set.of(sp.cache, procs.caches()[0], procs.caches()[1], busy), Set.copyOf(all),
                "with wait, every P slot and the spare (that thread has no scope of its own)");
        done.countDown();
        join(other);
        close(own);
    }

    // ───────────────────────────── held Ps (scopes) ─────────────────────────────

    @Test
    void openScopeMakesTheScopeWholeBeforeRegisteringItAndTakesItsPOutOfTheWorld() {
        procs(1, 1, 2);
        AtomicReference<MCache> given = new AtomicReference<>();
        Scope s = procs.openScope(c -> {
            given.set(c);
            assertEquals(0, procs.openScopes(), "not registered while it is being made");
            assertTrue(c.isLeased(), "its P comes leased");
            return new Scope(Thread.currentThread(), c);
        });
        assertSame(given.get(), s.cache);
        assertEquals(Procs.HELD_IDS, s.cache.id, "held Ps are numbered apart from the slots");
        assertEquals(1, procs.openScopes());
        assertEquals(0, s.index);
        procs.checkScopes();
        List<MCache> world = new ArrayList<>();
        procs.forEachP(true, world::add);
        assertEquals(List.of(s.cache, procs.caches()[0]), world, "the caller's own scope, then the slot");
        procs.stopTheWorld(() -> assertEquals(List.of(procs.caches()[0], s.cache), List.of(procs.stoppedCaches()),
                "stopped: the slot, then the caller's own scope"));

        close(s);
        assertEquals(0, procs.openScopes());
        assertEquals(-1, s.index);
        assertFalse(s.cache.isLeased(), "back in the pool, free");
        Scope again = open();
        assertSame(s.cache, again.cache, "the spare P, warm, goes to the next scope");
        assertEquals(1, procs.heldCaches());
        close(again);
        procs.checkScopes();
    }

    @Test
    void aScopeThatFailsToBeMadeOrIsMadeOverAnotherPIsNeverRegistered() {
        procs(1, 1, 2);
        IllegalStateException boom = new IllegalStateException("boom");
        assertSame(boom, assertThrows(IllegalStateException.class, () -> procs.openScope(c -> {
            throw boom;
        })));
        assertEquals(0, procs.openScopes());
        assertEquals(1, procs.heldCaches(), "the P made for it ...");
        procs.checkScopes(); // ... is spare and free
        Scope ok = open();
        assertEquals(Procs.HELD_IDS, ok.cache.id, "and serves the next scope");

        MCache other = procs.caches()[0];
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> procs.openScope(c -> new Scope(Thread.currentThread(), other)));
        assertTrue(e.getMessage().contains("not made over its P"), e.getMessage());
        e = assertThrows(IllegalStateException.class, () -> procs.openScope(c -> new Scope(new Thread(() -> { }), c)));
        assertTrue(e.getMessage().contains("by its thread"), e.getMessage());
        assertEquals(1, procs.openScopes(), "only the good one");
        procs.checkScopes();
        close(ok);
        assertEquals(2, procs.heldCaches());
        procs.checkScopes();
    }

    @Test
    void beyondMaxHeldAScopeGetsNoPAndIsNotRegistered() {
        procs(1, 1, 1);
        Scope a = open();
        Scope b = open();
        assertTrue(a.cache != null);
        assertNull(b.cache, "maxHeld 1: the second scope holds none (it leases per operation)");
        assertEquals(1, procs.openScopes());
        assertEquals(-1, b.index);
        close(a);
        procs(1, 1, 0);
        assertNull(open().cache, "maxHeld 0: no held Ps");
        assertEquals(0, procs.heldCaches());
    }

    @Test
    void theScopeOfAThreadThatEndedIsTakenBackByTheIdleFlush() throws Exception {
        procs(1, 1, 2);
        AtomicReference<Scope> left = new AtomicReference<>();
        join(start(() -> left.set(open()))); // never closed
        assertEquals(1, procs.openScopes());
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> procs.checkNoOtherScopes("x"));
        assertTrue(e.getMessage().contains(left.get().owner.toString()), e.getMessage());
        procs.flushIdleCaches();
        assertEquals(0, procs.openScopes());
        assertEquals(-1, left.get().index);
        procs.checkScopes();
        Scope next = open();
        assertSame(left.get().cache, next.cache, "the ended thread's P serves the next scope");
        close(next);
    }

    /**
     * Issue 12 at this level: threads open and close scopes in a loop (more than maxHeld, so some
     * hold none) while another checks that every open scope is whole and takes part in
     * stop-the-worlds and forEachP; nothing waits for another thread's scope.
     */
    @Test
    void scopesOpeningAndClosingRaceWithStopTheWorldForEachPAndChecks() throws Exception {
        procs(2, 2, 2);
        AtomicBoolean stop = new AtomicBoolean();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        long[] rounds = new long[1];
        Thread checker = start(() -> {
            try {
                for (long k = 0; !stop.get(); k++) {
                    procs.checkScopes();
                    if ((k & 7) == 0) {
                        procs.stopTheWorld(procs::checkInvariants);
                        procs.forEachP((k & 8) == 0, c -> { });
                    }
                    rounds[0]++;
                }
            } catch (Throwable t) {
                failure.compareAndSet(null, t);
            }
        });
        List<Thread> openers = new ArrayList<>();
        for (int t = 0; t < 3; t++) {
            openers.add(start(() -> {
                try {
                    for (int i = 0; i < 20_000 && failure.get() == null; i++) {
                        Scope s = open();
                        if (s.cache != null) {
                            close(s);
                        } else {
                            MCache c = procs.leaseSlow(Thread.currentThread().getId()); // no P held: lease per operation
                            c.release();
                        }
                    }
                } catch (Throwable e) {
                    failure.compareAndSet(null, e);
                }
            }));
        }
        for (Thread t : openers) {
            join(t);
        }
        stop.set(true);
        join(checker);
        if (failure.get() != null) {
            throw new AssertionError("a check failed while scopes opened and closed", failure.get());
        }
        assertTrue(rounds[0] > 0);
        assertEquals(0, procs.openScopes());
        assertEquals(2, procs.heldCaches(), "maxHeld Ps made at most");
        procs.checkScopes();
    }

    // ───────────────────────────── close ─────────────────────────────

    @Test
    void closeIsRefusedWhileAScopeIsOpenThenClosesForGoodOnce() throws Exception {
        procs(2, 2, 2);
        Scope s = open();
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> procs.close(() -> { }));
        assertTrue(e.getMessage().contains("1 P(s) held") && e.getMessage().contains(Thread.currentThread().toString()),
                e.getMessage());
        assertThrows(IllegalStateException.class, procs::checkCloseAllowed);
        assertFalse(procs.isClosed(), "refused: nothing changed");
        for (MCache c : procs.caches()) {
            assertTrue(c.tryLease(), "every slot still free");
            c.release();
        }
        assertSame(procs.slots, reader.last(), "and the fast path's table back");
        close(s);

        procs.checkCloseAllowed();
        int[] runs = new int[1];
        assertTrue(procs.close(() -> runs[0]++));
        assertFalse(procs.close(() -> runs[0]++), "a second close does nothing");
        assertEquals(1, runs[0]);
        assertTrue(procs.isClosed());
        for (MCache c : procs.caches()) {
            assertFalse(c.tryLease(), "a closed heap's P is never leased again");
        }
        assertFalse(s.cache.tryLease(), "nor its spare held P");
        for (MCache c : reader.last()) {
            assertEquals(-1, c.id, "the fast path's table stays the stopped one");
        }
        assertThrows(IllegalStateException.class, this::open);
        assertThrows(IllegalStateException.class, () -> procs.leaseSlow(1));
        assertThrows(IllegalStateException.class, () -> procs.forEachP(false, c -> { }));
        assertThrows(IllegalStateException.class, () -> procs.stopTheWorld(() -> { }));
        assertFalse(procs.stopTheWorldIfOpen(() -> runs[0]++));
        assertEquals(1, runs[0]);
        procs.checkCloseAllowed(); // closed: nothing to refuse
    }

    @Test
    void aThreadWaitingForAPWhenTheHeapClosesGetsTheClosedException() throws Exception {
        procs(1, 1, 0);
        MCache c = procs.caches()[0];
        assertTrue(c.tryLease());
        Thread closer = start(() -> procs.close(() -> { }));
        awaitStopping(); // the close waits for the one P; from here no thread may take a lease
        AtomicReference<Throwable> thrown = new AtomicReference<>();
        Thread waiter = start(() -> {
            try {
                procs.leaseSlow(Thread.currentThread().getId()).release();
            } catch (Throwable t) {
                thrown.set(t);
            }
        });
        Thread.sleep(20); // the waiter waits for a P (or has not started: the same outcome)
        c.release();
        join(closer);
        join(waiter);
        assertTrue(procs.isClosed());
        assertTrue(thrown.get() instanceof IllegalStateException && thrown.get().getMessage().contains("closed"),
                String.valueOf(thrown.get()));
    }
}
