package io.gomem;

import io.gomem.heap.SizeClasses;
import io.gomem.os.KernelView;
import io.gomem.os.OutOfNativeMemoryError;
import io.gomem.stats.MemStats;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Named;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Consumer;
import java.util.stream.LongStream;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** The public API end to end: sizes, alignment, zeroing, bad input, growth, release, close. */
class GoHeapTest {
    GoHeap heap = GoHeap.builder().procs(2).build();

    @AfterEach
    void close() {
        if (!heap.isClosed()) {
            heap.checkInvariants();
            heap.close();
        }
    }

    static Mem at(long p, long n) {
        return Mem.at(p, n);
    }

    static LongStream boundarySizes() {
        LongStream.Builder b = LongStream.builder();
        for (int c = 1; c < SizeClasses.NUM_SIZE_CLASSES; c++) {
            b.add(SizeClasses.classSize(c) - 1).add(SizeClasses.classSize(c)).add(SizeClasses.classSize(c) + 1);
        }
        return b.add(0).add(1).add(32768).add(32769).add(65536).add(1 << 20).add((1 << 20) + 1).build();
    }

    @ParameterizedTest(name = "size {0}")
    @MethodSource("boundarySizes")
    void everyClassBoundaryAllocatesUsableDisjointMemory(long size) {
        List<Long> ps = new ArrayList<>();
        for (int i = 0; i < 40; i++) {
            long p = heap.allocate(size);
            assertTrue(heap.usableSize(p) >= size, "usable " + heap.usableSize(p) + " >= " + size);
            at(p, Math.max(size, 1)).fill((byte) i);
            ps.add(p);
        }
        assertEquals(40, new HashSet<>(ps).size(), "distinct addresses");
        for (int i = 0; i < ps.size(); i++) {
            Mem s = at(ps.get(i), Math.max(size, 1));
            assertEquals((byte) i, s.getByte(0));
            assertEquals((byte) i, s.getByte(Math.max(size, 1) - 1), "last byte intact");
        }
        for (long p : ps) {
            heap.free(p);
        }
    }

    @Test
    void smallSizesMapToTheirClassAndLargeOnesToWholePages() {
        for (int c = 1; c < SizeClasses.NUM_SIZE_CLASSES; c++) {
            int size = SizeClasses.classSize(c);
            long p = heap.allocateZeroed(size);
            assertEquals(size, heap.usableSize(p), "class " + c);
            heap.free(p);
        }
        long big = heap.allocate(32769);
        assertEquals(32769, heap.usableSize(big));
        assertEquals(0, big % 8192, "a large object starts a page");
        heap.free(big);
    }

    @ParameterizedTest(name = "alignment {0}")
    @ValueSource(longs = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 8192, 16384, 65536, 1 << 20, 4 << 20})
    void zeroedAllocationsHonourEveryPowerOfTwoAlignment(long align) {
        for (long size : new long[] {1, 24, 48, 100, 3000, 9000, 40000}) {
            long q = heap.allocateZeroed(size, align);
            assertEquals(0, q % align, size + " B at 0x" + Long.toHexString(q) + " aligned to " + align);
            assertEquals(-1, at(q, size).firstNonZero(), "zeroed");
            at(q, size).fill((byte) 0x7f);
            heap.free(q, size);
        }
        long p = heap.allocateAligned(100, align);
        assertEquals(0, p % align);
        heap.free(p);
    }

    @Test
    void zeroedAllocationsAreZeroedEvenWhenMemoryIsReused() {
        for (long size : new long[] {8, 16, 100, 4096, 32768, 100_000}) {
            for (int round = 0; round < 3; round++) {
                List<Long> all = new ArrayList<>();
                for (int i = 0; i < 300; i++) {
                    long q = heap.allocateZeroed(size);
                    Mem s = at(q, size);
                    for (long off = 0; off < size; off += 8) {
                        assertEquals(0, s.getByte(off), "zeroed at +" + off + " of " + size + " B");
                    }
                    s.fill((byte) 0xee);
                    all.add(q);
                }
                all.forEach(heap::free);
                heap.releaseMemory(); // sweeps, so the next round reuses the dirty slots
            }
        }
    }

    // ───────────── bad input ─────────────

    record Bad(Consumer<GoHeap> call, Class<? extends RuntimeException> type, String mention) {
    }

    static Stream<Arguments> badInput() {
        return Stream.of(
                bad("negative size", h -> h.allocate(-1), IllegalArgumentException.class, "size -1"),
                bad("size past 64 TiB", h -> h.allocate(1L << 47), IllegalArgumentException.class, "size " + (1L << 47)),
                bad("Long.MAX_VALUE size", h -> h.allocate(Long.MAX_VALUE), IllegalArgumentException.class, "exceeds"),
                bad("alignment 3", h -> h.allocateAligned(8, 3), IllegalArgumentException.class, "alignment 3"),
                bad("alignment 0", h -> h.allocateZeroed(8, 0), IllegalArgumentException.class, "alignment 0"),
                bad("negative zeroed size", h -> h.allocateZeroed(-5, 8), IllegalArgumentException.class, "size -5"),
                bad("double free small", h -> {
                    long p = h.allocate(64);
                    h.free(p);
                    h.free(p);
                }, IllegalStateException.class, "double free"),
                bad("double free small after sweep", h -> {
                    long p = h.allocate(64);
                    h.free(p);
                    h.releaseMemory();
                    h.free(p);
                }, RuntimeException.class, "0x"),
                bad("double free large", h -> {
                    long p = h.allocate(100_000);
                    h.free(p);
                    h.free(p);
                }, RuntimeException.class, "0x"),
                bad("double free tiny", h -> {
                    long p = h.allocate(5);
                    long q = h.allocate(5);
                    h.free(p);
                    h.free(p);
                    h.free(q);
                }, IllegalStateException.class, "tiny"),
                bad("interior address small", h -> h.free(h.allocate(48) + 8), IllegalArgumentException.class, "interior"),
                bad("interior address large", h -> h.free(h.allocate(100_000) + 4096), IllegalArgumentException.class, "interior"),
                bad("foreign address", h -> h.free(0x1000), IllegalArgumentException.class, "not an address this heap returned"),
                bad("another mapping's address", h -> {
                    io.gomem.os.OsMemory os = new io.gomem.os.OsMemory(io.gomem.os.OsMemory.UnusedMode.DONTNEED);
                    long a = os.sysAlloc(io.gomem.os.OsMemory.PAGE_SIZE, io.gomem.os.Purpose.OTHER);
                    try {
                        h.free(a);
                    } finally {
                        os.sysFree(a, io.gomem.os.OsMemory.PAGE_SIZE);
                    }
                }, IllegalArgumentException.class, "not an address"),
                bad("never-allocated slot", h -> {
                    long p = h.allocate(256);
                    h.free(p + 256 * 5);
                }, IllegalStateException.class, "no live object"));
    }

    private static Arguments bad(String name, Consumer<GoHeap> call, Class<? extends RuntimeException> type, String mention) {
        return Arguments.of(Named.of(name, new Bad(call, type, mention)));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("badInput")
    void badInputThrowsAClearExceptionAndTheHeapStaysConsistent(Bad b) {
        long keep = heap.allocate(64);
        at(keep, 64).fill((byte) 0x33);
        RuntimeException e = assertThrows(b.type(), () -> b.call().accept(heap));
        assertTrue(e.getMessage().contains(b.mention()), "message '" + e.getMessage() + "' names " + b.mention());
        heap.checkInvariants();
        assertEquals(0x33, at(keep, 64).getByte(63));
        heap.free(keep);
        long again = heap.allocate(64); // still usable
        heap.free(again);
        heap.checkInvariants();
    }

    @Test
    void everyUseAfterCloseFailsClearly() {
        long p = heap.allocate(64);
        heap.close();
        assertTrue(heap.isClosed());
        for (Runnable r : List.<Runnable>of(() -> heap.allocate(8), () -> heap.free(p), () -> heap.allocateZeroed(8),
                heap::releaseMemory, heap::checkInvariants, () -> heap.allocate(1 << 20))) {
            IllegalStateException e = assertThrows(IllegalStateException.class, r::run);
            assertTrue(e.getMessage().contains("closed"), e.getMessage());
        }
        heap.close(); // idempotent
    }

    private static java.util.Set<javax.management.ObjectName> beansNamed(String name) throws Exception {
        return java.lang.management.ManagementFactory.getPlatformMBeanServer().queryNames(
                new javax.management.ObjectName("io.gomem:type=GoHeap,name=" + javax.management.ObjectName.quote(name)), null);
    }

    @Test
    void registeringTheMXBeanAfterCloseThrowsAndRegistersNothing() throws Exception {
        String name = "after-close-" + System.nanoTime();
        heap.close();
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> heap.registerMXBean(name));
        assertTrue(e.getMessage().contains("closed") && e.getMessage().contains(name), e.getMessage());
        assertEquals(Set.of(), beansNamed(name));
    }

    @Test
    void registeringTheMXBeanRacingCloseNeverLeavesABeanBehind() throws Exception {
        for (int i = 0; i < 200; i++) {
            GoHeap h = GoHeap.builder().procs(1).build();
            String name = "race-" + i + "-" + System.nanoTime();
            java.util.concurrent.CyclicBarrier go = new java.util.concurrent.CyclicBarrier(2);
            Thread register = TestThreads.platform(() -> {
                try {
                    go.await();
                    h.registerMXBean(name);
                } catch (IllegalStateException closed) {
                    assertTrue(closed.getMessage().contains("closed"), closed.getMessage());
                } catch (Exception ex) {
                    throw new AssertionError(ex);
                }
            });
            go.await();
            h.close();
            register.join();
            assertEquals(Set.of(), beansNamed(name), "round " + i + ": a bean outlived close()");
        }
    }

    @Test
    void closeUnregistersTheMXBean() throws Exception {
        String name = "closed-" + System.nanoTime();
        heap.registerMXBean(name);
        assertEquals(1, beansNamed(name).size());
        heap.close();
        assertEquals(Set.of(), beansNamed(name));
    }

    /** {@code -Dgomem.memoryLimit=0} or {@code -Dgomem.hardMemoryLimit=0}: refused, naming the property. */
    @ParameterizedTest
    @ValueSource(strings = {"gomem.memoryLimit", "gomem.hardMemoryLimit"})
    void aZeroLimitPropertyIsRefusedNamingIt(String property) {
        String old = System.getProperty(property);
        System.setProperty(property, "0");
        try {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> GoHeap.builder().build().close());
            assertTrue(e.getMessage().contains(property + "=0") && e.getMessage().contains("at least 1"), e.getMessage());
        } finally {
            if (old == null) {
                System.clearProperty(property);
            } else {
                System.setProperty(property, old);
            }
        }
    }

    // ───────────── growth, release, close: ask the kernel ─────────────

    @Test
    void growsBeyondOneArenaAndCloseUnmapsEverything() {
        List<Long> ps = new ArrayList<>();
        long live = 0;
        int i = 0;
        while (live < 160L << 20) {
            long size = (i++ % 3 == 0) ? 4L << 20 : 24_576;
            long p = heap.allocate(size);
            at(p, size).setLong(size - 8, p);
            ps.add(p);
            live += size;
        }
        Set<Long> arenas = new HashSet<>();
        for (long p : ps) {
            arenas.add(p >>> 26);
            long size = heap.usableSize(p);
            assertEquals(p, at(p, size).getLong(size - 8));
        }
        assertTrue(arenas.size() >= 3, "spans " + arenas.size() + " arenas");
        assertTrue(io.gomem.heap.Internals.counters(heap).mappedBytes() >= 160L << 20);
        heap.checkInvariants();
        heap.close();
        for (long a : arenas) {
            assertTrue(KernelView.mappings(a << 26, 1L << 26).isEmpty(), "arena 0x" + Long.toHexString(a << 26) + " unmapped");
        }
    }

    /**
     * A heap whose growth the kernel refuses (an object of twice RAM plus swap: the reservation is
     * address space only and succeeds, mapping it read-write is refused by the overcommit policy)
     * throws OutOfNativeMemoryError, an OutOfMemoryError, and goes on serving what fits.
     */
    @Test
    void growthTheKernelRefusesIsOutOfNativeMemoryErrorAndTheHeapStaysUsable() throws Exception {
        long size = io.gomem.os.Overcommit.unmappableLength();
        assumeTrue(size > 0, "vm.overcommit_memory=1 maps any size");
        long keep = heap.allocate(100_000);
        at(keep, 100_000).fill((byte) 0x5a);
        MemStats before = heap.memStats();
        Throwable e = assertThrows(Throwable.class, () -> heap.allocate(size));
        OutOfNativeMemoryError oom = assertInstanceOf(OutOfNativeMemoryError.class, e);
        assertInstanceOf(OutOfMemoryError.class, oom);
        assertEquals("ENOMEM", oom.errnoName());
        assertEquals("mmap", oom.syscall());
        assertTrue(oom.getMessage().contains("ENOMEM (Cannot allocate memory)"), oom.getMessage());
        heap.checkInvariants();
        MemStats after = heap.memStats().checkInvariants();
        assertEquals(before.heapObjects(), after.heapObjects());
        assertEquals(before.mallocs(), after.mallocs());
        assertEquals(before.heapAlloc(), after.heapAlloc());
        // What fits still does, in new address space as well as in the old.
        List<Long> ps = new ArrayList<>();
        for (int i = 0; i < 100; i++) {
            long p = heap.allocate(i % 2 == 0 ? 1 << 20 : 100 + i);
            at(p, 64).fill((byte) i);
            ps.add(p);
        }
        assertEquals(0x5a, at(keep, 100_000).getByte(99_999));
        ps.forEach(heap::free);
        heap.free(keep);
        heap.checkInvariants();
        assertEquals(0, heap.memStats().heapObjects());
    }

    @Test
    void releaseMemoryReturnsFreePagesToTheKernel() {
        List<Long> ps = new ArrayList<>();
        for (int i = 0; i < 2000; i++) {
            long p = heap.allocate(16_384);
            at(p, 16_384).fill((byte) 1);
            ps.add(p);
        }
        long lo = ps.stream().mapToLong(Long::longValue).min().orElseThrow() & -(1L << 26);
        long before = KernelView.residentBytes(lo, 1L << 26);
        assertTrue(before >= 30L << 20, "resident before: " + before);
        ps.forEach(heap::free);
        long released = heap.releaseMemory();
        long after = KernelView.residentBytes(lo, 1L << 26);
        assertTrue(released >= 30L << 20, "released " + released);
        assertTrue(after < 1L << 20, "resident after release: " + after);
        heap.checkInvariants();
        // Scavenged pages come back Ready and usable.
        long p = heap.allocate(16_384);
        at(p, 16_384).fill((byte) 2);
        heap.free(p);
    }

    @Test
    void cachesOfThreadsThatWentAwayGiveTheirSpansBack() throws Exception {
        List<Long> ps = java.util.Collections.synchronizedList(new ArrayList<>());
        List<Thread> ts = new ArrayList<>();
        for (int t = 0; t < 4; t++) {
            ts.add(TestThreads.platform(() -> {
                for (int i = 1; i <= 40; i++) {
                    ps.add(heap.allocate(i * 64L));
                }
            }));
        }
        for (Thread t : ts) {
            t.join();
        }
        assertTrue(io.gomem.heap.Internals.cachedSpans(heap) > 0);
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (io.gomem.heap.Internals.cachedSpans(heap) > 0 && System.nanoTime() < deadline) {
            Thread.sleep(100); // the background thread flushes idle caches every second
        }
        assertEquals(0, io.gomem.heap.Internals.cachedSpans(heap), "idle caches flushed by the background thread");
        ps.forEach(heap::free);
        heap.checkInvariants();
    }

    /**
     * One thread allocates, another frees, as fast as they can: the owner's in-place sweeps race
     * with the other thread's frees of the same span all the time. Every free must succeed.
     */
    @Test
    void freesFromAnotherThreadRacingWithTheOwnersSweepsAllSucceed() throws Exception {
        java.util.concurrent.ArrayBlockingQueue<Long> q = new java.util.concurrent.ArrayBlockingQueue<>(4096);
        int n = 2_000_000;
        java.util.concurrent.atomic.AtomicReference<Throwable> failure = new java.util.concurrent.atomic.AtomicReference<>();
        Thread consumer = TestThreads.platform(() -> {
            try {
                for (int i = 0; i < n; i++) {
                    heap.free(q.take());
                }
            } catch (Throwable e) {
                failure.set(e);
            }
        });
        try {
            for (int i = 0; i < n && failure.get() == null; i++) {
                long p = heap.allocate(64);
                while (!q.offer(p, 10, java.util.concurrent.TimeUnit.MILLISECONDS)) {
                    if (failure.get() != null) {
                        break;
                    }
                }
            }
        } finally {
            consumer.join(30_000);
        }
        if (failure.get() != null) {
            throw new AssertionError("a cross-thread free failed", failure.get());
        }
        heap.releaseMemory();
        assertEquals(0, io.gomem.heap.Internals.liveObjectsSlow(heap)[0]);
    }

    @Test
    void manyThreadsShareTheBoundedCaches() throws Exception {
        List<Thread> ts = new ArrayList<>();
        List<Long> fromThreads = java.util.Collections.synchronizedList(new ArrayList<>());
        for (int t = 0; t < 200; t++) {
            ts.add(TestThreads.virtual(() -> {
                for (int i = 0; i < 50; i++) {
                    fromThreads.add(heap.allocate(8 + i * 8));
                }
            }));
        }
        for (Thread t : ts) {
            t.join();
        }
        assertEquals(10_000, new HashSet<>(fromThreads).size());
        fromThreads.forEach(heap::free); // freed by a thread that allocated none of them
        heap.releaseMemory();
        assertEquals(0, io.gomem.heap.Internals.liveObjectsSlow(heap)[0]);
        // Virtual threads never add Ps (see Procs.GROW_AFTER): 200 of them share the two.
        assertEquals(2, heap.procs());
    }

    /**
     * A large object of up to 64 pages freed by a thread that owns a cache keeps its span there;
     * the next large allocation of the same page count on that thread gets it back without the
     * heap, and every count stays exact meanwhile.
     */
    @Test
    void aFreedLargeObjectsSpanServesTheNextAllocationOfItsPageCount() {
        long p = heap.allocate(40_000); // 5 pages
        at(p, 40_000).fill((byte) 7);
        heap.free(p);
        IllegalStateException twice = assertThrows(IllegalStateException.class, () -> heap.free(p));
        assertTrue(twice.getMessage().contains("double free"), twice.getMessage());
        assertThrows(IllegalArgumentException.class, () -> heap.usableSize(p));
        io.gomem.stats.MemStats m = heap.memStats().checkInvariants();
        assertEquals(0, m.heapObjects());
        assertEquals(0, m.heapAlloc());
        assertEquals(1, m.mallocs());
        assertEquals(1, m.frees());
        assertEquals(5 * 8192, m.heapInuse(), "the kept span is in use for the page heap");
        heap.statsDump().checkTotals();

        long q = heap.allocateZeroed(40_500); // 5 pages again: the kept span, zeroed
        assertEquals(p, q);
        assertEquals(40_500, heap.usableSize(q));
        for (long off = 0; off < 40_500; off += 8) {
            assertEquals(0L, at(q, 40_504).getLong(off), "zeroed at " + off);
        }
        m = heap.memStats().checkInvariants();
        assertEquals(1, m.heapObjects());
        assertEquals(40_500, m.heapAlloc());
        assertEquals(2, m.mallocs());
        assertEquals(80_500, m.totalAlloc());
        heap.statsDump().checkTotals();
        heap.checkInvariants();

        long r = heap.allocate(50_000); // 7 pages: nothing kept of that size, from the heap
        assertTrue(r != q);
        heap.free(q);
        heap.free(r);
        heap.checkInvariants();
        heap.releaseMemory(); // gives kept spans back: no page in use afterwards
        assertEquals(0, io.gomem.heap.Internals.counters(heap).pagesInUse());
        assertEquals(0, heap.memStats().checkInvariants().heapInuse());
        heap.checkInvariants();
    }

    /** Spans over 64 pages go back to the heap at once. */
    @Test
    void bigLargeObjectsGoBackToTheHeapAtOnce() {
        long p = heap.allocate(600_000); // 74 pages
        heap.free(p);
        assertEquals(0, io.gomem.heap.Internals.counters(heap).pagesInUse(), "the 74-page span is back in the page heap");
        assertEquals(0, io.gomem.heap.Internals.cachedSpans(heap));
        assertEquals(0, heap.memStats().heapInuse());
        heap.checkInvariants();
    }
}
