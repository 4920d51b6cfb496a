package io.gomem;

import io.gomem.os.KernelView;
import io.gomem.os.MemoryLimitExceededError;
import io.gomem.os.OutOfNativeMemoryError;
import io.gomem.stats.MemStats;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The scavenger and the memory limits, checked against the kernel's view of the heap's pages. */
class ScavengerTest {
    static final long MIB = 1L << 20;

    /** Resident bytes of every arena the given objects lie in. */
    static long resident(List<long[]> objs) {
        java.util.TreeSet<Long> arenas = new java.util.TreeSet<>();
        for (long[] o : objs) {
            for (long a = o[0] >>> 26; a <= (o[0] + Math.max(o[1], 1) - 1) >>> 26; a++) {
                arenas.add(a);
            }
        }
        long sum = 0;
        for (long a : arenas) {
            sum += KernelView.residentBytes(a << 26, 1L << 26);
        }
        return sum;
    }

    static long[] alloc(GoHeap h, long size) {
        long p = h.allocate(size);
        Mem s = Mem.at(p, Math.max(size, 1));
        for (long off = 0; off < size; off += 4096) {
            s.setByte(off, (byte) 1);
        }
        if (size > 0) {
            s.setByte(size - 1, (byte) 1);
        }
        return new long[] {p, size};
    }

    @Test
    void theBackgroundScavengerAloneBringsRetainedMemoryToItsGoal() throws Exception {
        try (GoHeap h = GoHeap.builder().procs(2).build()) {
            List<long[]> all = new ArrayList<>();
            for (int i = 0; i < 2048; i++) {
                all.add(alloc(h, 64 * 1024)); // 128 MiB
            }
            List<long[]> keep = new ArrayList<>(all.subList(0, 128)); // 8 MiB stay live
            all.subList(128, all.size()).forEach(o -> h.free(o[0]));
            long before = resident(all);
            assertTrue(before >= 120 * MIB, "resident before: " + before);
            long deadline = System.nanoTime() + 30_000_000_000L;
            long goal = 0;
            long ready = Long.MAX_VALUE;
            while (System.nanoTime() < deadline) {
                MemStats m = h.memStats().checkInvariants();
                ready = m.osReady();
                goal = m.heapInuse() + m.heapInuse() / 10;
                if (ready <= goal) {
                    break;
                }
                Thread.sleep(250);
            }
            assertTrue(ready <= goal, "Ready " + ready + " reached the goal " + goal + " in time");
            long after = resident(all);
            assertTrue(after <= goal + 4 * MIB, "the kernel agrees: resident " + after + " <= goal " + goal);
            keep.forEach(o -> h.free(o[0]));
        }
    }

    /** A seeded churn: live set up to 40 MiB, half freed at random whenever it is reached; returns the peak Ready bytes. */
    static long churn(GoHeap h) {
        SplittableRandom r = new SplittableRandom(11);
        List<long[]> live = new ArrayList<>();
        long liveBytes = 0;
        long total = 0;
        long maxReady = 0;
        int ops = 0;
        while (total < 512 * MIB) {
            if (liveBytes < 40 * MIB) {
                long size = r.nextInt(10) == 0 ? r.nextLong(100_000, 1_000_000) : r.nextLong(16, 16_384);
                long[] o = alloc(h, size);
                live.add(o);
                liveBytes += size;
                total += size;
            } else {
                for (int i = 0; i < live.size() / 2; i++) {
                    int k = r.nextInt(live.size());
                    h.free(live.get(k)[0]);
                    liveBytes -= live.get(k)[1];
                    live.set(k, live.get(live.size() - 1));
                    live.remove(live.size() - 1);
                }
            }
            if (++ops % 1000 == 0) {
                maxReady = Math.max(maxReady, h.memStats().checkInvariants().osReady());
            }
        }
        maxReady = Math.max(maxReady, h.memStats().checkInvariants().osReady());
        live.forEach(o -> h.free(o[0]));
        return maxReady;
    }

    @Test
    void underASoftLimitReadyMemoryStaysUnderItWhileChurning() {
        long unlimited;
        try (GoHeap h = GoHeap.builder().procs(2).memoryLimit(Long.MAX_VALUE).build()) {
            unlimited = churn(h);
        }
        long limit = unlimited / 4 * 3; // well below what the same churn holds with no limit
        try (GoHeap h = GoHeap.builder().procs(2).memoryLimit(limit).build()) {
            assertEquals(limit, h.memStats().memoryLimit());
            long limited = churn(h);
            System.out.printf("soft limit: peak Ready %d KiB with no limit, %d KiB under a limit of %d KiB%n",
                    unlimited >> 10, limited >> 10, limit >> 10);
            assertTrue(limited <= limit + 4 * MIB, "Ready peaked at " + limited + " under a limit of " + limit);
        }
    }

    @Test
    void aHardLimitRefusesWithAnOutOfMemoryErrorAndTheHeapStaysUsable() {
        long hard = 48 * MIB;
        try (GoHeap h = GoHeap.builder().procs(1).hardMemoryLimit(hard).build()) {
            List<long[]> live = new ArrayList<>();
            Throwable t = assertThrows(Throwable.class, () -> {
                for (int i = 0; i < 1000; i++) {
                    live.add(alloc(h, MIB));
                }
            });
            MemoryLimitExceededError e = assertInstanceOf(MemoryLimitExceededError.class, t);
            assertInstanceOf(OutOfMemoryError.class, e);
            assertInstanceOf(OutOfNativeMemoryError.class, e);
            assertEquals(hard, e.limit());
            assertTrue(e.ready() + e.requested() > hard, "ready " + e.ready() + " + requested " + e.requested());
            assertEquals(e.requested(), e.length());
            assertEquals("allocate", e.call());
            assertNull(e.syscall());
            assertEquals(0, e.errno());
            assertNull(e.errnoName());
            assertTrue(e.getMessage().contains("hard limit of " + hard + " B") && e.getMessage().contains("gomem.hardMemoryLimit"),
                    e.getMessage());
            assertTrue(live.size() >= 40 && live.size() <= 48, "fitted " + live.size() + " MiB under 48 MiB");
            MemStats m = h.memStats().checkInvariants();
            assertTrue(m.osReady() <= hard, "Ready " + m.osReady());
            h.checkInvariants();
            for (int i = 0; i < live.size(); i += 2) {
                h.free(live.get(i)[0]);
            }
            for (int i = 0; i < 10; i++) {
                h.free(alloc(h, MIB)[0]); // fits again
            }
            h.checkInvariants();
        }
    }

    /**
     * Large spans kept by the P caches count against the hard limit; when the heap needs their
     * pages to stay under it, the caches give them back first.
     */
    @Test
    void keptLargeSpansGoBackWhenTheHardLimitNeedsTheirPages() {
        long hard = 24 * MIB;
        try (GoHeap h = GoHeap.builder().procs(1).hardMemoryLimit(hard).build()) {
            List<long[]> big = new ArrayList<>();
            assertThrows(MemoryLimitExceededError.class, () -> {
                for (int i = 0; i < 1000; i++) {
                    big.add(alloc(h, 15 * 8192)); // 15 pages: kept when freed
                }
            });
            List<long[]> filler = new ArrayList<>();
            assertThrows(MemoryLimitExceededError.class, () -> {
                for (int i = 0; i < 1000; i++) {
                    filler.add(alloc(h, 13 * 8192)); // fill what is left: under 13 free pages remain
                }
            });
            for (int i = 0; i < 4; i++) {
                h.free(big.remove(big.size() - 1)[0]); // 60 pages, kept by the cache
            }
            assertEquals(4, io.gomem.heap.Internals.cachedSpans(h), "the four spans are kept (no small span is in use)");
            for (int i = 0; i < 4; i++) {
                filler.add(alloc(h, 13 * 8192)); // needs the kept pages: fits only if they go back
            }
            MemStats m = h.memStats().checkInvariants();
            assertTrue(m.osReady() <= hard, "Ready " + m.osReady());
            h.checkInvariants();
            big.forEach(b -> h.free(b[0]));
            filler.forEach(b -> h.free(b[0]));
            h.checkInvariants();
        }
    }

    @Test
    void scavtracePrintsOneLinePerScavengerCycle() throws Exception {
        java.nio.file.Path err = java.nio.file.Files.createTempFile("gomem-scavtrace", ".err");
        Process p = new ProcessBuilder(java.nio.file.Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-Dgomem.debug=scavtrace", "-cp", System.getProperty("java.class.path"),
                "io.gomem.demo.Demo").redirectError(err.toFile()).start();
        p.getInputStream().readAllBytes();
        assertTrue(p.waitFor(60, java.util.concurrent.TimeUnit.SECONDS));
        assertEquals(0, p.exitValue());
        List<String> lines = java.nio.file.Files.readAllLines(err);
        java.nio.file.Files.delete(err);
        assertTrue(lines.stream().anyMatch(l -> l.matches("gomem: scav release: released \\d+ KiB, retained \\d+ KiB, goal \\d+ KiB, in use \\d+ KiB, \\d+ us")),
                "a scavtrace line for releaseMemory in " + lines);
        assertTrue(lines.stream().noneMatch(l -> l.startsWith("gomem: sys")), "only the switch asked for");
    }

    /**
     * The footprint churn of the issue: fill 256 MiB with random sizes 16 B – 4 KiB, free a
     * random 90 %, release. glibc with malloc_trim reaches 2.76x here; gomem returns the free OS
     * pages inside in-use spans too, and must stay at or under 2.5x.
     */
    @Test
    void footprintAfterFreeingNinetyPercentStaysNearTheLiveBytes() {
        try (GoHeap h = GoHeap.builder().procs(1).build()) {
            SplittableRandom r = new SplittableRandom(42);
            List<long[]> objs = new ArrayList<>();
            long total = 0;
            while (total < 256 * MIB) {
                long[] o = alloc(h, r.nextLong(16, 4097));
                objs.add(o);
                total += o[1];
            }
            List<long[]> all = new ArrayList<>(objs);
            Collections.shuffle(objs, new Random(7));
            int keep = objs.size() / 10;
            long liveBytes = 0;
            for (int i = 0; i < objs.size(); i++) {
                if (i < keep) {
                    liveBytes += objs.get(i)[1];
                } else {
                    h.free(objs.get(i)[0]);
                }
            }
            h.releaseMemory();
            long rss = resident(all);
            double ratio = (double) rss / liveBytes;
            System.out.printf("footprint: live %.1f MiB, resident %.1f MiB, ratio %.2f%n", liveBytes / 1048576.0,
                    rss / 1048576.0, ratio);
            assertTrue(ratio <= 2.5, "resident/live " + ratio);
            h.memStats().checkInvariants();
            h.checkInvariants();
            for (int i = 0; i < keep; i++) {
                Mem s = Mem.at(objs.get(i)[0], objs.get(i)[1]);
                assertEquals(1, s.getByte(objs.get(i)[1] - 1), "live data survived the release");
            }
        }
    }
}
