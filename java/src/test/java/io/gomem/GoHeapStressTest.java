package io.gomem;

import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.LongStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A seeded, model-checked random stress of the whole heap: several threads allocate sizes from
 * 0 B to 1 MiB (skewed small) through the raw, zeroed and segment paths, free their own objects,
 * and hand objects to each other to free. The model is the set of live ranges: no two may
 * overlap, every object's pattern must be intact when it is freed, zeroed memory must read zero,
 * and at the end the heap's own recount and invariants must agree with the model.
 *
 * <p>Operations: {@code -Dgomem.test.stress.ops} (default 10^6), seed {@code -Dgomem.test.seed}.
 */
class GoHeapStressTest {
    static final long OPS = Long.getLong("gomem.test.stress.ops", 1_000_000);
    static final long SEED = Long.getLong("gomem.test.seed", 0x5eed_90_3e3L);
    static final int THREADS = 2;

    /** A live object of the model: address, requested size, the pattern byte written into it. */
    record Obj(long addr, long size, byte pattern, boolean segment) {
    }

    final ConcurrentSkipListMap<Long, Long> live = new ConcurrentSkipListMap<>();
    final List<ConcurrentLinkedQueue<Obj>> handoff = List.of(new ConcurrentLinkedQueue<>(), new ConcurrentLinkedQueue<>());

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
            MemorySegment s = heap.segments().allocate(size, align);
            addr = s.address();
            if (addr % align != 0) throw new AssertionError("misaligned " + addr + " for " + align);
            zeroed = true;
            segment = true;
        }
        Obj o = new Obj(addr, size, (byte) r.nextInt(1, 256), segment);
        track(o);
        MemorySegment m = MemorySegment.ofAddress(addr).reinterpret(Math.max(size, 1));
        byte pattern = o.pattern;
        for (long off : probes(size, addr)) {
            if (zeroed && m.get(ValueLayout.JAVA_BYTE, off) != 0) {
                throw new AssertionError("zeroed allocation of " + size + " B at 0x" + Long.toHexString(addr) + " has "
                        + m.get(ValueLayout.JAVA_BYTE, off) + " at +" + off);
            }
            m.set(ValueLayout.JAVA_BYTE, off, (byte) (pattern + off));
        }
        return o;
    }

    void free(GoHeap heap, Obj o) {
        MemorySegment m = MemorySegment.ofAddress(o.addr).reinterpret(Math.max(o.size, 1));
        for (long off : probes(o.size, o.addr)) {
            byte b = m.get(ValueLayout.JAVA_BYTE, off);
            if (b != (byte) (o.pattern + off)) {
                throw new AssertionError("object of " + o.size + " B at 0x" + Long.toHexString(o.addr)
                        + " corrupted at +" + off + ": " + b + " != " + (byte) (o.pattern + off));
            }
        }
        live.remove(o.addr);
        if (o.segment) {
            heap.segments().free(MemorySegment.ofAddress(o.addr));
        } else {
            heap.free(o.addr);
        }
    }

    @Test
    void randomMixedOperationsAgreeWithTheModel() throws Exception {
        try (GoHeap heap = GoHeap.builder().procs(2).build()) {
            List<List<Obj>> mine = List.of(new ArrayList<>(), new ArrayList<>());
            AtomicReference<Throwable> failure = new AtomicReference<>();
            CyclicBarrier phase = new CyclicBarrier(THREADS + 1);
            List<Thread> threads = new ArrayList<>();
            for (int t = 0; t < THREADS; t++) {
                int id = t;
                threads.add(Thread.ofPlatform().name("stress-" + t).start(() -> {
                    SplittableRandom r = new SplittableRandom(SEED + id);
                    List<Obj> own = mine.get(id);
                    try {
                        for (long i = 0; i < OPS / THREADS; i++) {
                            int op = r.nextInt(100);
                            if (op < 55 || own.isEmpty()) {
                                own.add(alloc(heap, r));
                            } else if (op < 85) {
                                int k = r.nextInt(own.size());
                                Obj o = own.get(k);
                                own.set(k, own.getLast());
                                own.removeLast();
                                free(heap, o);
                            } else if (op < 92) {
                                int k = r.nextInt(own.size());
                                Obj o = own.get(k);
                                own.set(k, own.getLast());
                                own.removeLast();
                                handoff.get(1 - id).add(o);
                            } else {
                                Obj o = handoff.get(id).poll();
                                if (o != null) {
                                    free(heap, o);
                                }
                            }
                            if (own.size() > 20_000) { // keep the live set bounded (~ a few hundred MiB at most)
                                free(heap, own.removeLast());
                            }
                        }
                    } catch (Throwable e) {
                        failure.compareAndSet(null, e);
                    }
                    try {
                        phase.await();
                    } catch (Exception e) {
                        failure.compareAndSet(null, e);
                    }
                }));
            }
            // Meanwhile: MemStats snapshots, each of which must keep every invariant.
            java.util.concurrent.atomic.AtomicBoolean done = new java.util.concurrent.atomic.AtomicBoolean();
            java.util.concurrent.atomic.AtomicLong snapshots = new java.util.concurrent.atomic.AtomicLong();
            Thread stats = Thread.ofPlatform().name("stress-stats").start(() -> {
                try {
                    while (!done.get()) {
                        heap.memStats().checkInvariants();
                        snapshots.incrementAndGet();
                        Thread.sleep(5);
                    }
                } catch (Throwable e) {
                    failure.compareAndSet(null, e);
                }
            });
            phase.await();
            for (Thread t : threads) {
                t.join();
            }
            done.set(true);
            stats.join();
            assertTrue(snapshots.get() > 0, "MemStats snapshots taken under load");
            if (failure.get() != null) {
                throw new AssertionError("a stress thread failed (seed " + SEED + ")", failure.get());
            }
            long modelLive = mine.get(0).size() + mine.get(1).size() + handoff.get(0).size() + handoff.get(1).size();
            assertEquals(modelLive, live.size());
            assertEquals(modelLive, io.gomem.heap.Internals.liveObjectsSlow(heap.core())[0], "heap's recount of live objects");
            io.gomem.stats.MemStats m = heap.memStats().checkInvariants();
            long[] slow = io.gomem.heap.Internals.liveObjectsSlow(heap.core());
            assertEquals(slow[0] - slow[3] + slow[2], m.heapObjects(), "MemStats agrees with the slow recount");
            assertEquals(slow[1], m.heapAlloc(), "HeapAlloc agrees with the slow recount");
            heap.checkInvariants();

            // Free everything left (from the other thread's list: cross-thread), then release.
            for (int t = 0; t < THREADS; t++) {
                for (Obj o : mine.get(t)) free(heap, o);
                for (Obj o; (o = handoff.get(t).poll()) != null; ) free(heap, o);
            }
            assertEquals(0, live.size());
            heap.releaseMemory();
            assertEquals(0, io.gomem.heap.Internals.liveObjectsSlow(heap.core())[0]);
            assertEquals(0, io.gomem.heap.Internals.counters(heap.core()).pagesInUse(), "every page back in the page allocator");
            assertEquals(0, io.gomem.heap.Internals.counters(heap.core()).spansInUse(), "no span left");
            heap.checkInvariants();
        }
    }
}
