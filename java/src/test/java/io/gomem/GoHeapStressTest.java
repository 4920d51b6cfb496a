package io.gomem;

import io.gomem.heap.Internals;
import io.gomem.stats.MemStats;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Supplier;
import java.util.stream.LongStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A seeded, model-checked random stress of the whole heap: several threads allocate sizes from
 * 0 B to 1 MiB (skewed small) through the raw, zeroed and aligned zeroed (heap segments') paths, free their own objects,
 * and hand objects to each other to free. The model is the set of live ranges: no two may
 * overlap, every object's pattern must be intact when it is freed, zeroed memory must read zero,
 * and at the end the heap's own recount and invariants must agree with the model.
 *
 * <p>It runs twice: on 2 platform threads, and on 8 virtual threads sharing the heap's 2 P caches.
 * Meanwhile one more thread (of the same kind) stops the world in a loop: {@code memStats()}
 * (every snapshot must keep {@link MemStats#checkInvariants()}, and its HeapObjects must lie
 * between 0 and the objects ever allocated), {@code releaseMemory()} and {@code checkInvariants()}.
 * A run that does not finish within its timeout fails naming its seed.
 *
 * <p>Operations: {@code -Dgomem.test.stress.ops} (default 10^6), half in each run; seed
 * {@code -Dgomem.test.seed}; a run's timeout {@code -Dgomem.test.stress.timeoutSeconds} (default
 * 120 s plus 120 s per 10^6 operations of the run). Each run prints one line: its ops, threads,
 * seed, elapsed time and stop-the-world calls.
 */
class GoHeapStressTest {
    /** Operations of the class, split between its two runs (each test method is one run). */
    static final long OPS = Long.getLong("gomem.test.stress.ops", 1_000_000);
    static final long RUN_OPS = OPS / 2;
    static final long SEED = Long.getLong("gomem.test.seed", 0x5eed_90_3e3L);
    static final Duration TIMEOUT = Duration.ofSeconds(Long.getLong("gomem.test.stress.timeoutSeconds",
            120 + 120 * RUN_OPS / 1_000_000));
    /** Objects the workers of a run keep live at most, all together: bounds the live set (a few hundred MiB). */
    static final int LIVE_CAP = 40_000;
    /** The heap's P caches, whatever the number of threads. */
    static final int PROCS = 2;
    /**
     * The stop-the-world thread pauses this many times as long as its last round took (at least
     * 1 ms): a round (a snapshot, a release of every free page, a full check) stops the workers
     * for all of its length, and a loop paced by 1 ms kept the world stopped most of the time
     * (measured on a loaded 2-core machine, snapshot and release alone: 44 s instead of 19 s for
     * 10^6 ops on 2 platform threads).
     */
    static final int STW_PACE = 3;

    /** A live object of the model: address, requested size, the pattern byte written into it. */
    record Obj(long addr, long size, byte pattern, boolean segment) {
    }

    /** The threads of a run: how many, and platform or virtual. */
    record Workers(String kind, int count, boolean virtual) {
        Thread start(String name, Runnable r) {
            // Platform threads are daemons, so that a hung one cannot keep the test JVM alive.
            return virtual ? TestThreads.virtual(name, r) : TestThreads.daemon(name, r);
        }
    }

    final ConcurrentSkipListMap<Long, Long> live = new ConcurrentSkipListMap<>();
    /** Objects ever allocated (counted before the heap is asked, so never behind the heap's count). */
    final AtomicLong allocated = new AtomicLong();

    static long size(SplittableRandom r) {
        int k = r.nextInt(100);
        if (k < 72) return r.nextLong(0, 257);
        if (k < 92) return r.nextLong(257, 32_769);
        if (k < 98) return r.nextLong(32_769, 262_145);
        return r.nextLong(262_145, (1 << 20) + 1);
    }

    /** Byte offsets checked for the pattern: all of a small object, a sample of a big one. */
    static long[] probes(long size, long addr) {
        if (size == 0) return new long[0];
        if (size <= 64) {
            long[] all = new long[(int) size];
            for (int i = 0; i < size; i++) all[i] = i;
            return all;
        }
        return LongStream.of(0, 1, 7, size / 3, size / 2, (addr >>> 3) % size, size - 8, size - 1).distinct().toArray();
    }

    void track(Obj o) {
        long end = o.addr + Math.max(o.size, 1);
        Map.Entry<Long, Long> below = live.floorEntry(o.addr);
        if (below != null && below.getValue() > o.addr) {
            throw new AssertionError("0x" + Long.toHexString(o.addr) + "+" + o.size + " overlaps live [0x"
                    + Long.toHexString(below.getKey()) + ", 0x" + Long.toHexString(below.getValue()) + ")");
        }
        Map.Entry<Long, Long> above = live.ceilingEntry(o.addr);
        if (above != null && above.getKey() < end) {
            throw new AssertionError("0x" + Long.toHexString(o.addr) + "+" + o.size + " overlaps live object at 0x"
                    + Long.toHexString(above.getKey()));
        }
        assertNull(live.put(o.addr, end), "address handed out twice");
    }

    Obj alloc(GoHeap heap, SplittableRandom r) {
        long size = size(r);
        int how = r.nextInt(10);
        allocated.incrementAndGet();
        long addr;
        boolean zeroed;
        boolean segment = false;
        if (how < 6) {
            addr = heap.allocate(size);
            zeroed = false;
        } else if (how < 8) {
            addr = heap.allocateZeroed(size);
            zeroed = true;
        } else {
            long align = 1L << r.nextInt(13);
            addr = heap.allocateZeroed(size, align); // the path of heap segments, freed with its size below
            if (addr % align != 0) throw new AssertionError("misaligned " + addr + " for " + align);
            zeroed = true;
            segment = true;
        }
        Obj o = new Obj(addr, size, (byte) r.nextInt(1, 256), segment);
        track(o);
        Mem m = Mem.at(addr, Math.max(size, 1));
        byte pattern = o.pattern;
        for (long off : probes(size, addr)) {
            if (zeroed && m.getByte(off) != 0) {
                throw new AssertionError("zeroed allocation of " + size + " B at 0x" + Long.toHexString(addr) + " has "
                        + m.getByte(off) + " at +" + off);
            }
            m.setByte(off, (byte) (pattern + off));
        }
        return o;
    }

    void free(GoHeap heap, Obj o) {
        Mem m = Mem.at(o.addr, Math.max(o.size, 1));
        for (long off : probes(o.size, o.addr)) {
            byte b = m.getByte(off);
            if (b != (byte) (o.pattern + off)) {
                throw new AssertionError("object of " + o.size + " B at 0x" + Long.toHexString(o.addr)
                        + " corrupted at +" + off + ": " + b + " != " + (byte) (o.pattern + off));
            }
        }
        live.remove(o.addr);
        if (o.segment) {
            heap.free(o.addr, o.size); // the sized free, as a heap segment's free
        } else {
            heap.free(o.addr);
        }
    }

    @Test
    void randomMixedOperationsOnPlatformThreadsAgreeWithTheModelWhileTheWorldStops() throws Exception {
        run(new Workers("platform", 2, false));
    }

    @Test
    void randomMixedOperationsOnVirtualThreadsSharingTwoPsAgreeWithTheModelWhileTheWorldStops() throws Exception {
        run(new Workers("virtual", 8, true));
    }

    /**
     * One worker's share of the operations: allocate, free its own, hand one to another worker,
     * free one handed to it; its live list is bounded by its share of {@link #LIVE_CAP}.
     */
    void work(GoHeap heap, int id, long ops, List<Obj> own, List<ConcurrentLinkedQueue<Obj>> handoff, AtomicLongArray progress) {
        int n = handoff.size();
        SplittableRandom r = new SplittableRandom(SEED + id);
        int cap = LIVE_CAP / n;
        for (long i = 0; i < ops; i++) {
            int op = r.nextInt(100);
            if (op < 55 || own.isEmpty()) {
                own.add(alloc(heap, r));
            } else if (op < 85) {
                free(heap, takeAny(own, r));
            } else if (op < 92) {
                Obj o = takeAny(own, r);
                handoff.get((id + 1 + (n > 2 ? r.nextInt(n - 1) : 0)) % n).add(o); // to any other worker
            } else {
                Obj o = handoff.get(id).poll();
                if (o != null) {
                    free(heap, o);
                }
            }
            if (own.size() > cap) {
                free(heap, own.remove(own.size() - 1));
            }
            progress.lazySet(id, i + 1);
        }
    }

    static Obj takeAny(List<Obj> own, SplittableRandom r) {
        int k = r.nextInt(own.size());
        Obj o = own.get(k);
        own.set(k, own.get(own.size() - 1));
        own.remove(own.size() - 1);
        return o;
    }

    void run(Workers w) throws Exception {
        int n = w.count();
        String where = w.kind() + " run of " + RUN_OPS + " ops on " + n + " threads, seed " + SEED;
        GoHeap heap = GoHeap.builder().procs(PROCS).build();
        boolean quiet = true; // false while threads may still be using the heap: then it is not closed
        try {
            List<List<Obj>> mine = new ArrayList<>();
            List<ConcurrentLinkedQueue<Obj>> handoff = new ArrayList<>();
            for (int t = 0; t < n; t++) {
                mine.add(new ArrayList<>());
                handoff.add(new ConcurrentLinkedQueue<>());
            }
            AtomicReference<Throwable> failure = new AtomicReference<>();
            CountDownLatch go = new CountDownLatch(1);
            List<Thread> threads = new ArrayList<>();
            long[] share = new long[n];
            AtomicLongArray progress = new AtomicLongArray(n);
            quiet = false;
            for (int t = 0; t < n; t++) {
                int id = t;
                share[t] = RUN_OPS / n + (id < RUN_OPS % n ? 1 : 0);
                threads.add(w.start("stress-" + w.kind() + "-" + t, () -> {
                    try {
                        go.await();
                        work(heap, id, share[id], mine.get(id), handoff, progress);
                    } catch (Throwable e) {
                        failure.compareAndSet(null, e);
                    }
                }));
            }
            // Meanwhile: one more thread stops the world in a loop, each call keeping every invariant.
            AtomicBoolean done = new AtomicBoolean();
            AtomicLong snapshots = new AtomicLong();
            AtomicLong releases = new AtomicLong();
            AtomicLong checks = new AtomicLong();
            Thread stw = w.start("stress-" + w.kind() + "-stw", () -> {
                try {
                    go.await();
                    while (!done.get()) {
                        long r0 = System.nanoTime();
                        MemStats m = heap.memStats().checkInvariants();
                        long ever = allocated.get(); // read after the snapshot: every malloc it counts is in
                        if (m.heapObjects() < 0 || m.heapObjects() > ever) {
                            throw new AssertionError("HeapObjects " + m.heapObjects() + " outside [0, " + ever
                                    + "], the objects ever allocated: " + m);
                        }
                        snapshots.incrementAndGet();
                        heap.releaseMemory();
                        releases.incrementAndGet();
                        heap.checkInvariants();
                        checks.incrementAndGet();
                        Thread.sleep(Math.max(1, STW_PACE * (System.nanoTime() - r0) / 1_000_000));
                    }
                } catch (Throwable e) {
                    failure.compareAndSet(null, e);
                }
            });
            long t0 = System.nanoTime();
            go.countDown();
            long deadline = t0 + TIMEOUT.toNanos();
            Supplier<String> state = () -> {
                StringBuilder b = new StringBuilder("stop-the-world calls: memStats " + snapshots.get() + ", releaseMemory "
                        + releases.get() + ", checkInvariants " + checks.get() + "; ops done:");
                for (int t = 0; t < n; t++) {
                    b.append(' ').append(progress.get(t)).append('/').append(share[t]);
                }
                List<Thread> all = new ArrayList<>(threads);
                all.add(stw);
                for (Thread x : all) {
                    if (x.isAlive()) {
                        b.append('\n').append(x.getName()).append(' ').append(x.getState());
                        for (StackTraceElement e : x.getStackTrace()) {
                            b.append("\n\tat ").append(e);
                        }
                    }
                }
                return b.toString();
            };
            for (Thread t : threads) {
                joinBy(t, deadline, where, state, done, failure);
            }
            done.set(true);
            joinBy(stw, deadline, where, state, done, failure);
            quiet = true;
            long ms = (System.nanoTime() - t0) / 1_000_000;
            long stwCalls = snapshots.get() + releases.get() + checks.get();
            System.out.printf("GoHeapStressTest %s: ops %d, threads %d, seed %d, elapsed %d ms, stop-the-world calls %d"
                            + " (memStats %d, releaseMemory %d, checkInvariants %d)%n",
                    w.kind(), RUN_OPS, n, SEED, ms, stwCalls, snapshots.get(), releases.get(), checks.get());
            if (failure.get() != null) {
                throw new AssertionError("a stress thread failed (" + where + ")", failure.get());
            }
            assertTrue(snapshots.get() > 0, "memStats() called while the workers ran (" + where + ")");
            assertTrue(releases.get() > 0, "releaseMemory() called while the workers ran (" + where + ")");
            assertTrue(checks.get() > 0, "checkInvariants() called while the workers ran (" + where + ")");

            long modelLive = 0;
            for (int t = 0; t < n; t++) {
                modelLive += mine.get(t).size() + handoff.get(t).size();
            }
            assertEquals(modelLive, live.size());
            assertEquals(modelLive, Internals.liveObjectsSlow(heap)[0], "heap's recount of live objects");
            MemStats m = heap.memStatsSwept().checkInvariants(); // every free counted, as in the recount
            long[] slow = Internals.liveObjectsSlow(heap);
            assertEquals(slow[0] - slow[3] + slow[2], m.heapObjects(), "MemStats agrees with the slow recount");
            assertEquals(slow[1], m.heapAlloc(), "HeapAlloc agrees with the slow recount");
            heap.checkInvariants();

            // Free everything left (not on the threads that allocated it: cross-thread), then release.
            for (int t = 0; t < n; t++) {
                for (Obj o : mine.get(t)) free(heap, o);
                for (Obj o; (o = handoff.get(t).poll()) != null; ) free(heap, o);
            }
            assertEquals(0, live.size());
            heap.releaseMemory();
            assertEquals(0, Internals.liveObjectsSlow(heap)[0]);
            assertEquals(0, Internals.counters(heap).pagesInUse(), "every page back in the page allocator");
            assertEquals(0, Internals.counters(heap).spansInUse(), "no span left");
            heap.checkInvariants();
        } finally {
            if (quiet) {
                heap.close();
            }
        }
    }

    /**
     * Joins {@code t} by {@code deadline}; past it, fails naming the run (seed included), the
     * progress and where every unfinished thread is (with a stress thread's failure, if any, as
     * the cause), and stops the stop-the-world loop. The heap is then left open: closing it could
     * wait for ever on a stuck thread.
     */
    static void joinBy(Thread t, long deadline, String where, Supplier<String> state, AtomicBoolean done,
                       AtomicReference<Throwable> failure) throws InterruptedException {
        if (TestThreads.join(t, Math.max(1, (deadline - System.nanoTime()) / 1_000_000))) {
            return;
        }
        String now = state.get();
        done.set(true);
        throw new AssertionError("hang: " + t.getName() + " not done after " + TIMEOUT.toSeconds() + " s (" + where
                + "); " + now, failure.get());
    }
}
