package io.gomem;

import io.gomem.stats.MemStats;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import static io.gomem.GoHeapLocalRaceTest.check;
import static io.gomem.GoHeapSafetyTest.runForked;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Race tests for the arenas' protocols ({@code UserArena}'s invariants), each a child JVM running
 * many rounds (a lost race could crash it: memory given back while a segment still reaches it)
 * that exits 0 only if every round held:
 * <ol>
 *   <li>a shared arena used by several threads while another closes it: an allocation either
 *       completes before the close or throws "Already closed"; every access after the close
 *       throws IllegalStateException; no segment is ever written by anyone but its allocator;</li>
 *   <li>the heap closing while threads use shared arenas and open and close confined ones: the
 *       close is refused (nothing changed) while a live thread's confined arena is open, and once
 *       it succeeds every arena operation throws IllegalStateException, never a fault;</li>
 *   <li>threads opening and closing arenas against the chunk cache's trims, releaseMemory,
 *       statistics and checkInvariants: no chunk has two owners (each arena's segments keep its
 *       signature until it closes), and the figures come back to zero.</li>
 * </ol>
 */
class GoHeapArenaRaceTest {

    /** Signatures on segments (the race tests' check and join are GoHeapLocalRaceTest's). */
    static final class Util {
        static void join(List<Thread> ts, AtomicReference<Throwable> error) throws InterruptedException {
            GoHeapLocalRaceTest.join(ts, error);
        }

        /** Writes {@code sig} into the first 8 bytes of {@code s} and, if they do not overlap them, its last 8. */
        static void sign(MemorySegment s, long sig) {
            if (s.byteSize() >= 8) {
                s.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, sig);
            }
            if (s.byteSize() >= 16) {
                s.set(ValueLayout.JAVA_LONG_UNALIGNED, s.byteSize() - 8, sig);
            }
        }

        static boolean signed(MemorySegment s, long sig) {
            return (s.byteSize() < 8 || s.get(ValueLayout.JAVA_LONG_UNALIGNED, 0) == sig)
                    && (s.byteSize() < 16 || s.get(ValueLayout.JAVA_LONG_UNALIGNED, s.byteSize() - 8) == sig);
        }

        static boolean isZero(MemorySegment s) {
            return s.byteSize() < 8 || (s.get(ValueLayout.JAVA_LONG_UNALIGNED, 0) == 0
                    && s.get(ValueLayout.JAVA_LONG_UNALIGNED, s.byteSize() - 8) == 0);
        }
    }

    // ───────────────────────────── 1. a shared arena against its close ─────────────────────────────

    static final class SharedRacingClose {
        public static void main(String[] args) throws Exception {
            int rounds = Integer.parseInt(args[0]);
            int refusedAllocs = 0;
            int refusedAccesses = 0;
            try (GoHeap heap = GoHeap.builder().procs(2).build()) {
                for (int r = 0; r < rounds; r++) {
                    Arena arena = heap.ofShared();
                    AtomicReference<Throwable> error = new AtomicReference<>();
                    AtomicBoolean closed = new AtomicBoolean();
                    AtomicInteger allocRefused = new AtomicInteger();
                    AtomicInteger accessRefused = new AtomicInteger();
                    CountDownLatch go = new CountDownLatch(1);
                    List<Thread> ts = new ArrayList<>();
                    for (int t = 0; t < 3; t++) {
                        long seed = r * 10L + t;
                        ts.add(Thread.ofPlatform().start(() -> {
                            GoHeapSafetyTest.await(go);
                            SplittableRandom rnd = new SplittableRandom(seed);
                            List<MemorySegment> mine = new ArrayList<>();
                            try {
                                for (int i = 0; i < 2000; i++) {
                                    MemorySegment s;
                                    try {
                                        s = arena.allocate(rnd.nextLong(1, 3000), 8);
                                    } catch (IllegalStateException e) {
                                        check(closed.get() && e.getMessage().equals("Already closed"), "allocate refused on an open arena: " + e);
                                        allocRefused.incrementAndGet();
                                        break;
                                    }
                                    try {
                                        check(Util.isZero(s), "an arena segment is not zero");
                                        Util.sign(s, seed);
                                        mine.add(s);
                                        for (MemorySegment m : mine) {
                                            check(Util.signed(m, seed), "a segment was written by another owner");
                                        }
                                    } catch (IllegalStateException e) {
                                        check(closed.get(), "an access refused on an open arena: " + e);
                                        accessRefused.incrementAndGet();
                                        break;
                                    }
                                }
                            } catch (Throwable e) {
                                error.compareAndSet(null, e);
                            }
                        }));
                    }
                    go.countDown();
                    Thread.sleep(r % 3);
                    closed.set(true); // before the close: a refusal seen by a thread is after this
                    arena.close();
                    Util.join(ts, error);
                    check(!arena.scope().isAlive(), "a closed arena is alive");
                    refusedAllocs += allocRefused.get();
                    refusedAccesses += accessRefused.get();
                    MemStats st = heap.memStats().checkInvariants();
                    check(st.arenas() == 0 && st.arenaInuse() == 0, "arena figures after close: " + st.arenas() + " / " + st.arenaInuse());
                }
                heap.checkInvariants();
            }
            System.out.println("rounds " + rounds + ", allocations refused " + refusedAllocs + ", accesses refused " + refusedAccesses);
        }
    }

    @Test
    void aSharedArenaUsedByThreadsWhileAnotherClosesIt() throws Exception {
        String out = runForked(SharedRacingClose.class, 300, List.of(), "150");
        assertTrue(out.contains("rounds 150"), out);
    }

    // ───────────────────────────── 2. the heap's close against arenas ─────────────────────────────

    static final class HeapCloseRacingArenas {
        public static void main(String[] args) throws Exception {
            int rounds = Integer.parseInt(args[0]);
            int refusedCloses = 0;
            for (int r = 0; r < rounds; r++) {
                GoHeap heap = GoHeap.builder().procs(2).build();
                AtomicReference<Throwable> error = new AtomicReference<>();
                AtomicBoolean closed = new AtomicBoolean();
                CountDownLatch go = new CountDownLatch(1);
                List<Thread> ts = new ArrayList<>();
                Arena shared = heap.ofShared();
                for (int t = 0; t < 3; t++) {
                    boolean confined = t == 0;
                    ts.add(Thread.ofPlatform().start(() -> {
                        GoHeapSafetyTest.await(go);
                        try {
                            for (int i = 0; i < 300 && !closed.get(); i++) {
                                try {
                                    if (confined) {
                                        try (Arena a = heap.ofConfined()) {
                                            a.allocate(100).fill((byte) 1);
                                        }
                                    } else {
                                        MemorySegment s = shared.allocate(64);
                                        s.fill((byte) 2);
                                        check(s.get(ValueLayout.JAVA_BYTE, 63) == 2, "lost a write");
                                    }
                                } catch (IllegalStateException e) {
                                    check(closed.get() || heap.isClosed(), "refused on an open heap: " + e);
                                    break;
                                }
                            }
                        } catch (Throwable e) {
                            error.compareAndSet(null, e);
                        }
                    }));
                }
                go.countDown();
                while (true) {
                    try {
                        closed.set(true);
                        heap.close();
                        break;
                    } catch (IllegalStateException refused) {
                        check(refused.getMessage().contains("confined arena"), "close refused for another reason: " + refused);
                        check(!heap.isClosed(), "a refused close closed the heap");
                        closed.set(false);
                        refusedCloses++;
                        Thread.onSpinWait();
                    }
                }
                Util.join(ts, error);
                check(!shared.scope().isAlive(), "the heap's close left a shared arena alive");
                try {
                    shared.allocate(8);
                    check(false, "allocate on a closed heap's arena returned");
                } catch (IllegalStateException expected) {
                    // closed with the heap
                }
            }
            System.out.println("rounds " + rounds + ", closes refused " + refusedCloses);
        }
    }

    @Test
    void theHeapClosingWhileThreadsUseArenas() throws Exception {
        String out = runForked(HeapCloseRacingArenas.class, 300, List.of(), "150");
        assertTrue(out.contains("rounds 150"), out);
    }

    // ───────────────────────────── 3. owners of chunks ─────────────────────────────

    static final class ChunksHaveOneOwner {
        public static void main(String[] args) throws Exception {
            int perThread = Integer.parseInt(args[0]);
            try (GoHeap heap = GoHeap.builder().procs(2).build()) {
                AtomicReference<Throwable> error = new AtomicReference<>();
                AtomicBoolean done = new AtomicBoolean();
                List<Thread> ts = new ArrayList<>();
                for (int t = 0; t < 4; t++) {
                    long tid = t;
                    ts.add(Thread.ofPlatform().start(() -> {
                        SplittableRandom rnd = new SplittableRandom(tid);
                        try {
                            for (int i = 0; i < perThread; i++) {
                                long sig = (tid << 32) | i;
                                try (Arena a = rnd.nextBoolean() ? heap.ofConfined() : heap.ofShared()) {
                                    List<MemorySegment> segs = new ArrayList<>();
                                    for (int k = 0, n = rnd.nextInt(1, 60); k < n; k++) {
                                        long size = rnd.nextInt(20) == 0 ? rnd.nextLong(1, 600_000) : rnd.nextLong(1, 4096);
                                        MemorySegment s = a.allocate(size, 1L << rnd.nextInt(8));
                                        check(Util.isZero(s), "an arena segment is not zero");
                                        Util.sign(s, sig);
                                        segs.add(s);
                                    }
                                    for (MemorySegment s : segs) {
                                        check(Util.signed(s, sig), "a chunk has two owners: a segment changed under its arena");
                                    }
                                }
                            }
                        } catch (Throwable e) {
                            error.compareAndSet(null, e);
                        }
                    }));
                }
                Thread meddler = Thread.ofPlatform().start(() -> {
                    try {
                        for (int i = 0; !done.get(); i++) {
                            switch (i % 3) {
                                case 0 -> heap.releaseMemory();
                                case 1 -> heap.memStats().checkInvariants();
                                default -> heap.checkInvariants();
                            }
                        }
                    } catch (Throwable e) {
                        error.compareAndSet(null, e);
                    }
                });
                Util.join(ts, error);
                done.set(true);
                Util.join(List.of(meddler), error);
                MemStats st = heap.memStatsSwept().checkInvariants();
                check(st.arenas() == 0 && st.arenaInuse() == 0, "arena figures at the end: " + st);
                heap.checkInvariants();
                heap.releaseMemory();
                check(heap.memStats().arenaCached() == 0 && heap.memStats().heapInuse() == 0,
                        "releaseMemory left spans in use: " + heap.memStats());
            }
            System.out.println("arenas " + 4 * perThread);
        }
    }

    @Test
    void arenasOpeningAndClosingAgainstTrimsReleasesAndChecks() throws Exception {
        String out = runForked(ChunksHaveOneOwner.class, 300, List.of("-Dgomem.checkInvariants=true"), "400");
        assertTrue(out.contains("arenas 1600"), out);
    }
}
