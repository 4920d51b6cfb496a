package io.gomem;

import io.gomem.heap.Internals;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Races and bad input that once crashed the JVM, hung, handed one block to two owners, passed a
 * limit or answered wrongly: one test per defect, named after the behaviour it guarantees. Tests
 * that could crash or hang the JVM run their workload in a child JVM and assert on its exit.
 */
class GoHeapSafetyTest {

    // ───────────────────────────── child JVMs ─────────────────────────────

    /** Runs {@code main} of {@code cls} in a child JVM; returns its output, failing on a non-zero exit or a timeout. */
    static String runForked(Class<?> cls, int timeoutSeconds, List<String> jvmArgs, String... args)
            throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add("--enable-native-access=ALL-UNNAMED");
        cmd.add("-XX:+UseSerialGC");
        cmd.add("-Xmx512m");
        cmd.addAll(jvmArgs);
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(cls.getName());
        cmd.addAll(List.of(args));
        Path out = Files.createTempFile("gomem-child", ".out");
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(out.toFile()).start();
            if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                p.descendants().forEach(ProcessHandle::destroyForcibly);
                p.destroyForcibly().waitFor();
                fail(cls.getSimpleName() + " made no progress for " + timeoutSeconds + " s (hung):\n" + tail(Files.readString(out)));
            }
            String text = Files.readString(out, StandardCharsets.UTF_8);
            assertEquals(0, p.exitValue(), cls.getSimpleName() + " exited with " + p.exitValue()
                    + (p.exitValue() == 134 || text.contains("SIGSEGV") ? " (crashed)" : "") + ":\n" + tail(text));
            return text;
        } finally {
            Files.deleteIfExists(out);
        }
    }

    private static String tail(String s) {
        return s.length() > 4000 ? "..." + s.substring(s.length() - 4000) : s;
    }

    // ───────────────────────────── 1. close racing allocations ─────────────────────────────

    /**
     * Child: rounds of two threads allocating zeroed memory (1 MiB raw, segments of 1 KiB to
     * 256 KiB) while a third closes the heap. Exit 0: no crash, and every failure was the
     * closed heap's IllegalStateException.
     */
    static final class CloseRacingZeroedAllocations {
        public static void main(String[] args) throws Exception {
            int rounds = Integer.parseInt(args[0]);
            AtomicLong allocations = new AtomicLong();
            for (int round = 0; round < rounds; round++) {
                GoHeap heap = GoHeap.builder().procs(2).build();
                CountDownLatch go = new CountDownLatch(1);
                AtomicInteger unexpected = new AtomicInteger();
                List<Thread> ts = new ArrayList<>();
                for (int t = 0; t < 2; t++) {
                    int id = t;
                    ts.add(TestThreads.platform(() -> {
                        await(go);
                        SplittableRandom r = new SplittableRandom(id);
                        try {
                            for (;;) {
                                if (id == 0) {
                                    long p = heap.allocateZeroed(1 << 20);
                                    heap.free(p);
                                } else {
                                    long s = heap.allocateZeroed(1024L << r.nextInt(9), 8); // what a heap segment takes
                                    heap.free(s);
                                }
                                allocations.incrementAndGet();
                            }
                        } catch (IllegalStateException e) {
                            if (!heap.isClosed()) {
                                unexpected.incrementAndGet();
                                e.printStackTrace();
                            }
                        }
                    }));
                }
                go.countDown();
                Thread.sleep(ThreadLocalRandom.current().nextInt(3));
                heap.close();
                for (Thread t : ts) {
                    t.join();
                }
                if (unexpected.get() != 0) {
                    System.exit(3);
                }
            }
            System.out.println("rounds " + rounds + ", allocations " + allocations.get());
        }
    }

    @Test
    void closeRacingZeroedAllocationsNeverTouchesUnmappedMemory() throws Exception {
        String out = runForked(CloseRacingZeroedAllocations.class, 120, List.of(), "200");
        assertTrue(out.contains("rounds 200"), out);
    }

    static void await(CountDownLatch l) {
        try {
            l.await();
        } catch (InterruptedException e) {
            throw new RuntimeException(e);
        }
    }

    // ───────────────────────────── 2. stop-the-world with virtual threads ─────────────────────────────

    /**
     * A platform thread that takes the heap lock all the time (large objects of their own span,
     * allocated and freed): virtual threads that meet it on a lock while holding a P lease park,
     * and need a carrier back to give the lease up.
     */
    static Thread heapLockHammer(GoHeap heap, AtomicBoolean running) {
        return TestThreads.daemon("test", () -> {
            while (running.get()) {
                try {
                    heap.free(heap.allocate(2 << 20));
                } catch (IllegalStateException closed) {
                    return;
                }
            }
        });
    }

    /**
     * Child: virtual threads allocate and free (small, tiny and large) while other virtual threads
     * call memStats, releaseMemory and checkInvariants, and a platform thread keeps the heap lock
     * busy; on one carrier if the JVM is so started. Exit 0 once all the work is done.
     */
    static final class VirtualThreadsStopTheWorld {
        public static void main(String[] args) throws Exception {
            int workers = Integer.parseInt(args[0]);
            int opsEach = Integer.parseInt(args[1]);
            int statsCalls = Integer.parseInt(args[2]);
            GoHeap heap = GoHeap.builder().procs(2).build();
            AtomicBoolean running = new AtomicBoolean(true);
            Thread hammer = heapLockHammer(heap, running);
            List<Thread> ts = new ArrayList<>();
            for (int t = 0; t < workers; t++) {
                int id = t;
                ts.add(TestThreads.virtual(() -> {
                    SplittableRandom r = new SplittableRandom(id);
                    long[] live = new long[16];
                    for (int i = 0; i < opsEach; i++) {
                        int k = r.nextInt(live.length);
                        if (live[k] != 0) {
                            heap.free(live[k]);
                        }
                        int kind = r.nextInt(100);
                        live[k] = heap.allocate(kind < 5 ? 40_000 : kind < 30 ? 1 + r.nextInt(15) : 16 + r.nextInt(2000));
                        if (r.nextInt(64) == 0) {
                            Thread.yield();
                        }
                    }
                    for (long p : live) {
                        if (p != 0) {
                            heap.free(p);
                        }
                    }
                }));
            }
            for (int t = 0; t < 3; t++) {
                int id = t;
                ts.add(TestThreads.virtual(() -> {
                    for (int i = 0; i < statsCalls; i++) {
                        switch (id) {
                            case 0 -> heap.memStats();
                            case 1 -> heap.releaseMemory();
                            default -> heap.checkInvariants();
                        }
                    }
                }));
            }
            for (Thread t : ts) {
                t.join();
            }
            running.set(false);
            hammer.join();
            if (heap.memStatsSwept().heapObjects() != 0) {
                System.out.println("objects left: " + heap.memStatsSwept().heapObjects());
                System.exit(4);
            }
            heap.checkInvariants();
            heap.close();
            System.out.println("done");
        }
    }

    @Test
    void stopTheWorldMakesProgressWithVirtualThreadsOnOneCarrier() throws Exception {
        String out = runForked(VirtualThreadsStopTheWorld.class, 120,
                List.of("-Djdk.virtualThreadScheduler.parallelism=1", "-Djdk.virtualThreadScheduler.maxPoolSize=1"),
                "64", "20000", "200");
        assertTrue(out.contains("done"), out);
    }

    @Test
    void stopTheWorldMakesProgressWithVirtualThreadsOnEveryCarrier() throws Exception {
        String out = runForked(VirtualThreadsStopTheWorld.class, 120, List.of(), "64", "20000", "200");
        assertTrue(out.contains("done"), out);
    }

    /**
     * Child: 10,000 virtual threads allocate and free while a platform thread reads memStats
     * every 50 ms; every thread must finish its work.
     */
    static final class ManyVirtualThreadsAndPeriodicStats {
        public static void main(String[] args) throws Exception {
            int threads = Integer.parseInt(args[0]);
            int opsEach = Integer.parseInt(args[1]);
            GoHeap heap = GoHeap.builder().procs(2).build();
            AtomicBoolean running = new AtomicBoolean(true);
            Thread hammer = heapLockHammer(heap, running);
            AtomicInteger snapshots = new AtomicInteger();
            Thread stats = TestThreads.platform(() -> {
                while (running.get()) {
                    heap.memStats();
                    snapshots.incrementAndGet();
                    try {
                        Thread.sleep(50);
                    } catch (InterruptedException e) {
                        return;
                    }
                }
            });
            List<Thread> ts = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int id = t;
                ts.add(TestThreads.virtual(() -> {
                    long[] live = new long[8];
                    for (int i = 0; i < opsEach; i++) {
                        int k = i & 7;
                        if (live[k] != 0) {
                            heap.free(live[k]);
                        }
                        live[k] = heap.allocate(16 + ((i * 31 + id) & 4095));
                    }
                    for (long p : live) {
                        heap.free(p);
                    }
                }));
            }
            for (Thread t : ts) {
                t.join();
            }
            running.set(false);
            stats.join();
            hammer.join();
            heap.close();
            System.out.println("done, snapshots " + snapshots.get());
        }
    }

    @Test
    void tenThousandVirtualThreadsProgressWhileStatsStopTheWorld() throws Exception {
        String out = runForked(ManyVirtualThreadsAndPeriodicStats.class, 120, List.of(), "10000", "2000");
        assertTrue(out.contains("done"), out);
        out = runForked(ManyVirtualThreadsAndPeriodicStats.class, 120,
                List.of("-Djdk.virtualThreadScheduler.parallelism=1", "-Djdk.virtualThreadScheduler.maxPoolSize=1"),
                "10000", "1000");
        assertTrue(out.contains("done"), out);
    }

    // ───────────────────────────── 3. racing frees of one object ─────────────────────────────

    @Test
    void eightThreadsFreeingOneObjectAtOnceFreeItOnceAndSpareItsNeighbours() throws Exception {
        try (GoHeap heap = GoHeap.builder().procs(2).build()) {
            int n = 4096;
            long[] p = new long[n];
            for (int i = 0; i < n; i++) {
                p[i] = heap.allocate(16);
            }
            int threads = 8;
            AtomicInteger freed = new AtomicInteger();
            AtomicInteger refused = new AtomicInteger();
            CountDownLatch go = new CountDownLatch(1);
            List<Thread> ts = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                ts.add(TestThreads.platform(() -> {
                    await(go);
                    for (int i = 0; i < n; i += 2) { // every other object: the odd ones are live neighbours
                        try {
                            heap.free(p[i]);
                            freed.incrementAndGet();
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
            assertEquals(n / 2, freed.get(), "each object freed exactly once");
            assertEquals((threads - 1) * n / 2, refused.get());
            assertEquals(n / 2, heap.memStatsSwept().heapObjects(), "the live neighbours are all still live");
            for (int i = 1; i < n; i += 2) {
                assertEquals(16, heap.usableSize(p[i]), "live neighbour " + i);
                heap.free(p[i]);
            }
            assertEquals(0, heap.memStatsSwept().heapObjects());
            heap.checkInvariants();
        }
    }

    // ───────────────────────────── 4. every object inside its span ─────────────────────────────

    @Test
    void everySizeAndAlignmentLiesInsideItsOwnSpan() {
        long[] sizes = {0, 1, 8, 15, 16, 100, 1024, 8191, 8192, 8193, 32768, 32769, 65536, 100_000};
        try (GoHeap heap = GoHeap.builder().procs(1).build()) {
            for (long size : sizes) {
                for (int shift = 0; shift <= 22; shift++) {
                    long align = 1L << shift;
                    for (boolean segment : new boolean[] {false, true}) { // "segment": the zeroed path heap segments take
                        long p = segment ? heap.allocateZeroed(size, align) : heap.allocateAligned(size, align);
                        long neighbour = heap.allocate(Math.max(size, 1));
                        String what = (segment ? "segment" : "raw") + " size " + size + " align " + align + " at 0x" + Long.toHexString(p);
                        assertEquals(0, p % align, what);
                        long[] span = Internals.spanBounds(heap, p);
                        assertTrue(span != null && p >= span[0] && p < span[1] && p + size <= span[1],
                                what + " lies outside its span " + (span == null ? "none" : "[0x" + Long.toHexString(span[0])
                                        + ", 0x" + Long.toHexString(span[1]) + ")"));
                        heap.free(p);
                        assertTrue(heap.usableSize(neighbour) >= Math.max(size, 1), what + ": the neighbour is still live");
                        heap.free(neighbour);
                    }
                }
            }
            heap.checkInvariants();
            assertEquals(0, heap.memStatsSwept().heapObjects());
        }
    }

    // ───────────────────────────── 5, 6. the hard limit ─────────────────────────────

    @Test
    void hardLimitServesMemoryThatFreesReturnedToCachesAndCentrals() {
        long hard = 64L << 20;
        for (int run = 0; run < 5; run++) {
            try (GoHeap heap = GoHeap.builder().procs(2).hardMemoryLimit(hard).build()) {
                SplittableRandom r = new SplittableRandom(run);
                List<Long> ps = new ArrayList<>();
                try {
                    for (;;) {
                        ps.add(heap.allocate(16 + r.nextInt(4000))); // small objects: their free pages stay in spans
                    }
                } catch (io.gomem.os.MemoryLimitExceededError full) {
                    assertTrue(full.getMessage().contains("hard"), full.toString());
                }
                ps.forEach(heap::free);
                long p = heap.allocate(1 << 20); // everything is free again
                heap.free(p);
                long q = heap.allocate(hard / 2);
                heap.free(q);
                heap.checkInvariants();
            }
        }
    }

    @Test
    void pagesReleasedInsideSpansComeBackOnlyWithinTheHardLimit() {
        long hard = 64L << 20;
        try (GoHeap heap = GoHeap.builder().procs(1).hardMemoryLimit(hard).build()) {
            SplittableRandom r = new SplittableRandom(11);
            List<Long> ps = new ArrayList<>();
            for (long live = 0; live < 48L << 20; ) {
                long size = 16 + r.nextInt(4080);
                ps.add(heap.allocate(size));
                live += size;
            }
            // Free a random 90%: spans keep a few objects and many free OS pages, which
            // releaseMemory returns to the OS inside the spans.
            List<Long> kept = new ArrayList<>();
            for (long p : ps) {
                if (r.nextInt(10) == 0) {
                    kept.add(p);
                } else {
                    heap.free(p);
                }
            }
            heap.releaseMemory();
            assertTrue(heap.memStats().osReady() <= hard);
            // Take the rest up to the limit with large objects, then allocate small ones: the spans'
            // released pages are made Ready as they are reused, and that too must stay within the
            // limit (it reached 68.5 MiB under 64).
            List<Long> again = new ArrayList<>();
            try {
                for (;;) {
                    again.add(heap.allocate(1 << 20));
                }
            } catch (io.gomem.os.MemoryLimitExceededError full) {
                assertTrue(full.getMessage().contains("hard"), full.toString());
            }
            try {
                for (;;) {
                    again.add(heap.allocate(16 + r.nextInt(4080)));
                    if ((again.size() & 1023) == 0) {
                        assertTrue(heap.memStats().osReady() <= hard, "Ready " + heap.memStats().osReady() + " > " + hard);
                    }
                }
            } catch (io.gomem.os.MemoryLimitExceededError full) {
                assertTrue(full.getMessage().contains("hard"), full.toString());
            }
            assertTrue(heap.memStats().osReady() <= hard, "Ready " + heap.memStats().osReady() + " > " + hard);
            heap.checkInvariants();
            kept.forEach(heap::free);
            again.forEach(heap::free);
            heap.releaseMemory();
            assertTrue(heap.memStats().osReady() <= hard);
            heap.checkInvariants();
        }
    }

    @Test
    void aSpanFreedWithPagesReleasedInsideItMakesNoPageReady() {
        try (GoHeap heap = GoHeap.builder().procs(1).build()) {
            List<Long> ps = new ArrayList<>();
            for (int i = 0; i < 20_000; i++) {
                ps.add(heap.allocate(1024)); // eight to a page: released pages inside spans are likely
            }
            SplittableRandom r = new SplittableRandom(9);
            List<Long> kept = new ArrayList<>();
            for (long p : ps) {
                if (r.nextInt(20) == 0) {
                    kept.add(p);
                } else {
                    heap.free(p);
                }
            }
            heap.releaseMemory(); // returns the free OS pages inside the spans that keep an object
            long ready = heap.memStats().osReady();
            assertTrue(heap.memStats().heapReleased() > 0);
            kept.forEach(heap::free);
            Internals.sweepCentrals(heap); // the spans go back to the page heap with their released pages
            assertTrue(heap.memStats().osReady() <= ready, "freeing made pages Ready: " + heap.memStats().osReady() + " > " + ready);
            heap.checkInvariants(); // free pages: Prepared exactly where the page allocator says scavenged
            assertEquals(0, heap.memStatsSwept().heapObjects());
        }
    }

    // ───────────────────────────── 7. releaseMemory and the background sweep ─────────────────────────────

    @Test
    void releaseMemoryLeavesNoFreePageReadyWhileTheBackgroundSweeps() throws Exception {
        try (GoHeap heap = GoHeap.builder().procs(2).build()) {
            AtomicBoolean running = new AtomicBoolean(true);
            Thread sweeper = TestThreads.platform(() -> {
                while (running.get()) {
                    Internals.sweepCentrals(heap); // what the background thread does every second
                }
            });
            try {
                SplittableRandom r = new SplittableRandom(3);
                for (int round = 0; round < 60; round++) {
                    List<Long> ps = new ArrayList<>();
                    for (int i = 0; i < 4000; i++) {
                        ps.add(heap.allocate(16 + r.nextInt(2000)));
                    }
                    ps.forEach(heap::free);
                    heap.releaseMemory();
                    Internals.Footprint k = Internals.counters(heap);
                    assertEquals(k.freePages(), k.scavengedPages(), "round " + round + ": free pages left Ready after releaseMemory: "
                            + (k.freePages() - k.scavengedPages()));
                }
            } finally {
                running.set(false);
                sweeper.join();
            }
        }
    }

    // ───────────────────────────── 8. usable sizes ─────────────────────────────

    @Test
    void usableSizesOfLiveObjectsNeverOverlap() {
        try (GoHeap heap = GoHeap.builder().procs(1).build()) {
            long p1 = heap.allocate(4);
            long p2 = heap.allocate(4);
            long p3 = heap.allocate(3);
            assertEquals(4, heap.usableSize(p1));
            assertTrue(p1 + heap.usableSize(p1) <= p2, "p1's usable range ends before p2");
            assertTrue(p2 + heap.usableSize(p2) <= p3, "p2's usable range ends before p3");
            assertTrue(heap.usableSize(p3) >= 3);
            SplittableRandom r = new SplittableRandom(5);
            List<long[]> live = new ArrayList<>();
            for (int i = 0; i < 20_000; i++) {
                long size = r.nextInt(4) == 0 ? 1 + r.nextInt(15) : r.nextInt(3000);
                long p = heap.allocate(size);
                live.add(new long[] {p, heap.usableSize(p), size});
                if (r.nextInt(3) == 0) {
                    int k = r.nextInt(live.size());
                    heap.free(live.get(k)[0]);
                    live.set(k, live.get(live.size() - 1));
                    live.remove(live.size() - 1);
                }
            }
            live.sort((a, b) -> Long.compare(a[0], b[0]));
            for (int i = 0; i < live.size(); i++) {
                long[] o = live.get(i);
                assertTrue(o[1] >= o[2], "usable " + o[1] + " < asked " + o[2]);
                assertEquals(o[1], heap.usableSize(o[0]), "usable size changed while live");
                if (i + 1 < live.size()) {
                    assertTrue(o[0] + o[1] <= live.get(i + 1)[0], "usable ranges overlap at 0x" + Long.toHexString(o[0]));
                }
            }
        }
    }

    @Test
    void usableSizeRefusesFreedAndInteriorAddresses() {
        try (GoHeap heap = GoHeap.builder().procs(1).build()) {
            long tiny = heap.allocate(4);
            long small = heap.allocate(64);
            long large = heap.allocate(100_000);
            long keep = heap.allocate(64);
            assertThrows(IllegalArgumentException.class, () -> heap.usableSize(small + 8), "interior of a small object");
            assertThrows(IllegalArgumentException.class, () -> heap.usableSize(large + 8), "interior of a large object");
            assertThrows(IllegalArgumentException.class, () -> heap.usableSize(tiny + 1), "inside a tiny object");
            heap.free(tiny);
            heap.free(small);
            heap.free(large);
            assertThrows(IllegalArgumentException.class, () -> heap.usableSize(tiny), "freed tiny");
            assertThrows(IllegalArgumentException.class, () -> heap.usableSize(small), "freed small, not swept");
            assertThrows(IllegalArgumentException.class, () -> heap.usableSize(large), "freed large");
            heap.releaseMemory();
            assertThrows(IllegalArgumentException.class, () -> heap.usableSize(small), "freed small, swept");
            assertEquals(64, heap.usableSize(keep));
            heap.close();
            assertThrows(IllegalStateException.class, () -> heap.usableSize(keep), "after close");
        }
    }

    // ───────────────────────────── 9. the largest sizes ─────────────────────────────

    @Test
    void sizesUpToTheDocumentedMaximumAreServedOrRefusedAsOutOfMemory() throws IOException {
        Assumptions.assumeFalse(Files.readString(Path.of("/proc/sys/vm/overcommit_memory")).trim().equals("1"),
                "with vm.overcommit_memory=1 the kernel maps 8 TiB and the test would fill the Java heap with its metadata");
        long max = 1L << 43;
        try (GoHeap heap = GoHeap.builder().procs(1).build()) {
            for (long size : new long[] {1L << 41, (1L << 44) >>> 1, max}) {
                try {
                    heap.free(heap.allocate(size));
                } catch (OutOfMemoryError e) {
                    assertTrue(e.getMessage().contains("ENOMEM"), e.getMessage());
                }
                long p = heap.allocate(64); // still usable
                heap.free(p);
            }
            for (long size : new long[] {max + 1, 1L << 44, 1L << 46}) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> heap.allocate(size));
                assertTrue(e.getMessage().contains("size " + size) && e.getMessage().contains(String.valueOf(max)), e.getMessage());
            }
            assertThrows(IllegalArgumentException.class, () -> heap.allocateAligned(8, max << 1));
            heap.checkInvariants();
        }
    }

    // ───────────────────────────── 12. clear errors ─────────────────────────────

    @Test
    void aDoubleFreeOfALargeObjectSaysDoubleFree() {
        try (GoHeap heap = GoHeap.builder().procs(1).build()) {
            long p = heap.allocate(4 << 20); // too large to be kept by the cache: its pages go back to the heap
            heap.free(p);
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> heap.free(p));
            assertTrue(e.getMessage().contains("double free"), e.getMessage());
            long q = heap.allocate(100_000); // kept by the cache when freed
            heap.free(q);
            e = assertThrows(IllegalStateException.class, () -> heap.free(q));
            assertTrue(e.getMessage().contains("double free"), e.getMessage());
            heap.checkInvariants();
        }
    }
}
