package io.gomem;

import io.gomem.internal.RawMemory;
import io.gomem.stats.MemStats;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import static io.gomem.GoHeapSafetyTest.runForked;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Race tests for every transition of the held-P protocol ({@code Procs}' first comment), each a
 * child JVM running many rounds (a lost race could hang or crash it) that exits 0 only if every
 * round held its invariant:
 * <ol>
 *   <li>a scope opening against the heap's close: a scope is never open on a closed heap, and a
 *       refused close changes nothing;</li>
 *   <li>scopes opening and closing against stop-the-worlds (releaseMemory, exact statistics,
 *       checkInvariants): no block has two owners, and the counts are exact at the end;</li>
 *   <li>frees into a held P's spans from its holder (plain marks) and from other threads (atomic
 *       marks) against the holder's sweeps: every slot is reclaimed exactly once;</li>
 *   <li>threads that end without closing their scope against the background thread taking them
 *       back and the heap closing;</li>
 *   <li>P slots added while threads find every P busy, against stop-the-worlds and close.</li>
 * </ol>
 */
class GoHeapLocalRaceTest {
    
    static void check(boolean ok, String what) {
        if (!ok) {
            System.out.println("FAILED: " + what);
            System.exit(3);
        }
    }

    static void join(List<Thread> ts, AtomicReference<Throwable> error) throws InterruptedException {
        for (Thread t : ts) {
            t.join();
        }
        if (error.get() != null) {
            error.get().printStackTrace(System.out);
            System.exit(4);
        }
    }

    // ───────────────────────────── 1. open against close ─────────────────────────────

    /** Child: rounds of threads opening scopes (allocating, freeing, closing) while another thread tries to close the heap. */
    static final class OpenRacingClose {
        public static void main(String[] args) throws Exception {
            int rounds = Integer.parseInt(args[0]);
            int refused = 0;
            int openedLate = 0;
            for (int r = 0; r < rounds; r++) {
                GoHeap heap = GoHeap.builder().procs(2).build();
                AtomicReference<Throwable> error = new AtomicReference<>();
                AtomicInteger used = new AtomicInteger();
                CountDownLatch go = new CountDownLatch(1);
                List<Thread> ts = new ArrayList<>();
                for (int t = 0; t < 3; t++) {
                    ts.add(TestThreads.platform(() -> {
                        GoHeapSafetyTest.await(go);
                        for (int i = 0; i < 50; i++) {
                            GoHeap.Local p;
                            try {
                                p = heap.local();
                            } catch (IllegalStateException closed) {
                                check(heap.isClosed(), "local() refused on an open heap: " + closed);
                                return;
                            }
                            try {
                                check(!heap.isClosed(), "a scope is open on a closed heap");
                                long a = p.allocate(64);
                                RawMemory.putLong(a, a);
                                check(RawMemory.getLong(a) == a, "the block changed under its owner");
                                p.free(a);
                                used.incrementAndGet();
                            } catch (Throwable e) {
                                error.compareAndSet(null, e);
                            } finally {
                                p.close();
                            }
                        }
                    }));
                }
                go.countDown();
                for (int k = 0; ; k++) {
                    try {
                        heap.close();
                        break;
                    } catch (IllegalStateException open) {
                        check(open.getMessage().contains("GoHeap.Local"), "close refused for another reason: " + open);
                        check(!heap.isClosed(), "a refused close closed the heap");
                        refused++;
                        Thread.onSpinWait();
                    }
                }
                join(ts, error);
                check(heap.isClosed(), "closed");
                if (used.get() < 150) {
                    openedLate++;
                }
            }
            System.out.println("rounds " + rounds + " refused closes " + refused + " rounds cut short by close " + openedLate);
        }
    }

    @Test
    void aScopeIsNeverOpenOnAClosedHeapAndARefusedCloseChangesNothing() throws Exception {
        String out = runForked(OpenRacingClose.class, 120, List.of(), "300");
        System.out.println(out.trim());
        assertTrue(out.contains("rounds 300"), out);
    }

    // ───────────────────────────── 2. scopes against stop-the-worlds ─────────────────────────────

    /** Child: threads open and close scopes, allocating stamped blocks, while another stops the world in every way. */
    static final class ScopesRacingStopTheWorld {
        public static void main(String[] args) throws Exception {
            int seconds = Integer.parseInt(args[0]);
            try (GoHeap heap = GoHeap.builder().procs(2).build()) {
                AtomicReference<Throwable> error = new AtomicReference<>();
                AtomicBoolean stop = new AtomicBoolean();
                AtomicLong ops = new AtomicLong();
                List<Thread> ts = new ArrayList<>();
                for (int t = 0; t < 3; t++) {
                    SplittableRandom rnd = new SplittableRandom(t);
                    ts.add(TestThreads.platform(() -> {
                        try {
                            while (!stop.get()) {
                                try (GoHeap.Local p = heap.local()) {
                                    long[] live = new long[64];
                                    for (int i = 0; i < live.length; i++) {
                                        live[i] = p.allocate(rnd.nextInt(8, 2048));
                                        RawMemory.putLong(live[i], ~live[i]);
                                    }
                                    for (long a : live) {
                                        check(RawMemory.getLong(a) == ~a, "a block had two owners");
                                        p.free(a);
                                    }
                                    ops.addAndGet(live.length);
                                }
                            }
                        } catch (Throwable e) {
                            error.compareAndSet(null, e);
                        }
                    }));
                }
                long end = System.nanoTime() + seconds * 1_000_000_000L;
                int stws = 0;
                int refusedChecks = 0;
                while (System.nanoTime() < end) {
                    heap.releaseMemory();
                    heap.memStatsSwept().checkInvariants();
                    heap.memStats().checkInvariants();
                    try {
                        heap.checkInvariants();
                    } catch (IllegalStateException open) {
                        check(open.getMessage().contains("other threads"), "checkInvariants failed: " + open);
                        refusedChecks++;
                    }
                    stws++;
                }
                stop.set(true);
                join(ts, error);
                MemStats st = heap.memStatsSwept();
                check(st.heapObjects() == 0 && st.mallocs() == st.frees(), "counts exact once every scope closed: " + st);
                heap.checkInvariants();
                System.out.println("ops " + ops.get() + " stop-the-worlds " + stws + " checks refused " + refusedChecks);
            }
        }
    }

    @Test
    void scopesOpeningAndClosingAgainstStopTheWorldsKeepEveryBlockOneOwnerAndTheCountsExact() throws Exception {
        String out = runForked(ScopesRacingStopTheWorld.class, 120, List.of("-Dgomem.checkInvariants=true"), "4");
        System.out.println(out.trim());
        assertTrue(out.contains("stop-the-worlds"), out);
    }

    // ───────────────────────────── 3. local and remote frees against sweeps ─────────────────────────────

    /**
     * Child: a holder allocates stamped blocks on its P, frees half itself (plain marks) and hands
     * half to two threads that free them through the heap and through scopes of their own
     * (atomic marks into the holder's spans), while it keeps allocating (its sweeps fold both).
     */
    static final class LocalAndRemoteFreesRacingSweeps {
        public static void main(String[] args) throws Exception {
            int n = Integer.parseInt(args[0]);
            try (GoHeap heap = GoHeap.builder().procs(2).build()) {
                AtomicReference<Throwable> error = new AtomicReference<>();
                ConcurrentLinkedQueue<Long> handoff = new ConcurrentLinkedQueue<>();
                AtomicBoolean done = new AtomicBoolean();
                AtomicLong remote = new AtomicLong();
                List<Thread> ts = new ArrayList<>();
                for (int t = 0; t < 2; t++) {
                    boolean scoped = t == 1;
                    ts.add(TestThreads.platform(() -> {
                        GoHeap.Local mine = scoped ? heap.local() : null;
                        try {
                            for (;;) {
                                Long a = handoff.poll();
                                if (a == null) {
                                    if (done.get() && handoff.isEmpty()) {
                                        break;
                                    }
                                    Thread.onSpinWait();
                                    continue;
                                }
                                check(RawMemory.getLong(a) == ~a, "a handed-off block was reused before its free");
                                if (mine != null) {
                                    mine.free(a);
                                } else {
                                    heap.free(a);
                                }
                                remote.incrementAndGet();
                            }
                        } catch (Throwable e) {
                            error.compareAndSet(null, e);
                        } finally {
                            if (mine != null) {
                                mine.close();
                            }
                        }
                    }));
                }
                long local = 0;
                try (GoHeap.Local p = heap.local()) {
                    SplittableRandom rnd = new SplittableRandom(7);
                    long[] ring = new long[256];
                    for (int i = 0; i < n; i++) {
                        int k = i & (ring.length - 1);
                        if (ring[k] != 0) {
                            long a = ring[k];
                            check(RawMemory.getLong(a) == ~a, "a block changed under its owner");
                            if (rnd.nextBoolean()) {
                                p.free(a);
                                local++;
                            } else {
                                handoff.add(a);
                            }
                        }
                        long a = p.allocate(16 << rnd.nextInt(4)); // 16 to 128 B: four classes, spans turn over fast
                        RawMemory.putLong(a, ~a);
                        ring[k] = a;
                    }
                    for (long a : ring) {
                        if (a != 0) {
                            p.free(a);
                            local++;
                        }
                    }
                }
                done.set(true);
                join(ts, error);
                MemStats st = heap.memStatsSwept();
                check(st.heapObjects() == 0 && st.mallocs() == n && st.frees() == n,
                        "every slot reclaimed exactly once: " + n + " allocated, " + st);
                heap.checkInvariants();
                System.out.println("allocated " + n + " freed locally " + local + " remotely " + remote.get());
            }
        }
    }

    @Test
    void localAndRemoteFreesIntoAHeldPsSpansAreEachReclaimedOnce() throws Exception {
        String out = runForked(LocalAndRemoteFreesRacingSweeps.class, 120, List.of(), "2000000");
        System.out.println(out.trim());
        assertTrue(out.contains("allocated 2000000"), out);
    }

    // ───────────────────────────── 4. ended threads against the reclaim and close ─────────────────────────────

    /** Child: rounds of threads (platform and virtual) that open a scope, allocate and end without closing it; then the heap closes. */
    static final class EndedThreadsRacingReclaimAndClose {
        public static void main(String[] args) throws Exception {
            int rounds = Integer.parseInt(args[0]);
            long refused = 0;
            for (int r = 0; r < rounds; r++) {
                GoHeap heap = GoHeap.builder().procs(1).build();
                ConcurrentLinkedQueue<Long> kept = new ConcurrentLinkedQueue<>();
                AtomicReference<Throwable> error = new AtomicReference<>();
                List<Thread> ts = new ArrayList<>();
                for (int t = 0; t < 4; t++) {
                    TestThreads.Starter b = t % 2 == 0 ? TestThreads::platform : TestThreads::virtual;
                    ts.add(b.start(() -> {
                        try {
                            GoHeap.Local p = heap.local(); // never closed: the thread just ends
                            kept.add(p.allocate(100));
                            p.free(p.allocate(200_000));
                        } catch (Throwable e) {
                            error.compareAndSet(null, e);
                        }
                    }));
                }
                Thread stats = TestThreads.platform(() -> {
                    for (int i = 0; i < 20; i++) {
                        heap.memStats().checkInvariants();
                        heap.releaseMemory();
                    }
                });
                join(ts, error);
                stats.join();
                for (long a : kept) {
                    heap.free(a);
                }
                // Every scope's thread has ended: close takes their Ps back and succeeds.
                heap.close();
                check(heap.isClosed(), "closed after its scopes' threads ended");
            }
            System.out.println("rounds " + rounds + " refused " + refused);
        }
    }

    @Test
    void scopesOfEndedThreadsAreTakenBackAndTheHeapCloses() throws Exception {
        String out = runForked(EndedThreadsRacingReclaimAndClose.class, 120, List.of(), "200");
        System.out.println(out.trim());
        assertTrue(out.contains("rounds 200"), out);
    }

    // ───────────────────────────── 5. P slots added against stop-the-worlds ─────────────────────────────

    /**
     * Child: more allocating threads than P slots (one to start), virtual and platform, so that
     * threads keep finding every P busy and add Ps, while another thread stops the world and the
     * heap finally closes under them.
     */
    static final class GrowthRacingStopTheWorld {
        public static void main(String[] args) throws Exception {
            int rounds = Integer.parseInt(args[0]);
            int maxSeen = 0;
            for (int r = 0; r < rounds; r++) {
                GoHeap heap = GoHeap.builder().procs(1).maxProcs(8).build();
                AtomicReference<Throwable> error = new AtomicReference<>();
                List<Thread> ts = new ArrayList<>();
                boolean touch = r % 2 == 0; // odd rounds close under the threads: they must not touch memory then
                for (int t = 0; t < 12; t++) {
                    TestThreads.Starter b = t % 3 == 0 ? TestThreads::virtual : TestThreads::platform;
                    SplittableRandom rnd = new SplittableRandom(r * 100L + t);
                    ts.add(b.start(() -> {
                        try {
                            long[] live = new long[32];
                            for (int i = 0; i < 400; i++) {
                                int k = i & 31;
                                if (live[k] != 0) {
                                    if (touch) {
                                        check(RawMemory.getLong(live[k]) == ~live[k], "a block had two owners");
                                    }
                                    heap.free(live[k]);
                                }
                                long a = heap.allocate(rnd.nextInt(4) == 0 ? rnd.nextInt(33_000, 70_000) : rnd.nextInt(8, 1024));
                                if (touch) {
                                    RawMemory.putLong(a, ~a);
                                }
                                live[k] = a;
                            }
                            for (long a : live) {
                                heap.free(a);
                            }
                        } catch (IllegalStateException closed) {
                            // the close below may overtake a thread: only the closed heap's refusal is expected
                            if (!heap.isClosed()) {
                                error.compareAndSet(null, closed);
                            }
                        } catch (Throwable e) {
                            error.compareAndSet(null, e);
                        }
                    }));
                }
                for (int i = 0; i < 5; i++) {
                    heap.releaseMemory();
                    heap.memStatsSwept().checkInvariants();
                }
                if (r % 2 == 0) {
                    join(ts, error);
                    heap.checkInvariants();
                    MemStats st = heap.memStatsSwept();
                    check(st.heapObjects() == 0, "every block freed: " + st);
                }
                maxSeen = Math.max(maxSeen, heap.procs());
                check(heap.procs() <= 8, "procs " + heap.procs() + " over maxProcs 8");
                heap.close(); // on odd rounds, under the threads
                join(ts, error);
            }
            System.out.println("rounds " + rounds + " most P slots " + maxSeen);
        }
    }

    @Test
    void pSlotsAddedUnderContentionStayBoundedAndSoundAgainstStopTheWorldsAndClose() throws Exception {
        String out = runForked(GrowthRacingStopTheWorld.class, 120, List.of(), "60");
        System.out.println(out.trim());
        assertTrue(out.contains("rounds 60"), out);
    }
}
