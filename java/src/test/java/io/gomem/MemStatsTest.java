package io.gomem;

import io.gomem.os.KernelView;
import io.gomem.stats.MemStats;
import io.gomem.stats.StatsDump;
import jdk.jfr.Recording;
import jdk.jfr.consumer.RecordedEvent;
import jdk.jfr.consumer.RecordingFile;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import javax.management.MBeanServer;
import javax.management.ObjectName;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** MemStats, the stats dump, JMX and JFR: exact counts, invariants, agreement with the kernel. */
class MemStatsTest {
    GoHeap heap = GoHeap.builder().procs(2).build();

    @AfterEach
    void close() {
        if (!heap.isClosed()) {
            heap.close();
        }
    }

    static MemStats.SizeClassStats bySize(MemStats m, int size) {
        return m.bySize().stream().filter(c -> c.size() == size).findFirst().orElseThrow();
    }

    @Test
    void countsAreExactPerClassAndInTotal() {
        MemStats m0 = heap.memStats().checkInvariants();
        assertEquals(0, m0.heapObjects());
        assertEquals(0, m0.heapAlloc());
        List<Long> ps = new ArrayList<>();
        for (int i = 0; i < 100; i++) {
            ps.add(heap.allocate(100)); // class 112
        }
        for (int i = 0; i < 3; i++) {
            ps.add(heap.allocate(100_000)); // large
        }
        MemStats m1 = heap.memStats().checkInvariants();
        assertEquals(100, bySize(m1, 112).mallocs());
        assertEquals(103, m1.mallocs());
        assertEquals(103, m1.heapObjects());
        assertEquals(100 * 112 + 3 * 100_000, m1.heapAlloc());
        assertEquals(m1.heapAlloc(), m1.totalAlloc());
        for (int i = 0; i < 40; i++) {
            heap.free(ps.get(i));
        }
        heap.free(ps.get(100));
        MemStats m2 = heap.memStatsSwept().checkInvariants();
        assertEquals(40, bySize(m2, 112).frees(), "frees are counted once the snapshot has swept");
        assertEquals(41, m2.frees());
        assertEquals(62, m2.heapObjects());
        assertEquals(60 * 112 + 2 * 100_000, m2.heapAlloc());
        assertEquals(m2.heapObjects(), io.gomem.heap.Internals.liveObjectsSlow(heap)[0], "the slow recount agrees with the counters");
    }

    @Test
    void tinyObjectsCountAsGoCountsThem() {
        List<Long> tiny = new ArrayList<>();
        for (int i = 0; i < 8; i++) {
            tiny.add(heap.allocate(2)); // eight 2-byte objects fill one 16-byte block
        }
        MemStats m = heap.memStats().checkInvariants();
        assertEquals(1 + 8, m.mallocs(), "the block, and each tiny object");
        assertEquals(8, m.frees(), "tiny objects count as freed at once");
        assertEquals(1, m.heapObjects(), "the block is the live object");
        long one = heap.allocate(3); // a block the cache is still filling
        tiny.forEach(heap::free);
        heap.free(one);
        assertEquals(0, heap.memStatsSwept().checkInvariants().heapObjects(),
                "no block counts once no tiny object in it is live, even the cache's current one");
    }

    @Test
    void theOsLayerAndThePageAllocatorAgreeByteForByte() {
        List<Long> ps = new ArrayList<>();
        for (int i = 0; i < 3000; i++) {
            long p = heap.allocate(10_000);
            Mem.at(p, 10_000).fill((byte) 1);
            ps.add(p);
        }
        MemStats m1 = heap.memStats().checkInvariants();
        assertEquals(m1.heapReleased(), m1.osPrepared(), "every released byte is Prepared in the OS layer");
        for (int i = 0; i < ps.size(); i += 2) {
            heap.free(ps.get(i));
        }
        long released = heap.releaseMemory();
        MemStats m2 = heap.memStats().checkInvariants();
        assertTrue(released > 10L << 20, "released " + released);
        assertEquals(m2.heapReleased(), m2.osPrepared());
        assertTrue(m2.heapReleased() > m1.heapReleased());
        // Reuse: released pages come back Ready through sysUsed, and the counters follow.
        for (int i = 0; i < 1000; i++) {
            heap.allocate(10_000);
        }
        MemStats m3 = heap.memStats().checkInvariants();
        assertEquals(m3.heapReleased(), m3.osPrepared());
        assertTrue(m3.heapReleased() < m2.heapReleased());
        heap.checkInvariants();
    }

    @Test
    void invariantsHoldInSnapshotsTakenUnderLoad() throws Exception {
        AtomicBoolean stop = new AtomicBoolean();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        List<Thread> ts = new ArrayList<>();
        for (int t = 0; t < 2; t++) {
            int id = t;
            ts.add(TestThreads.platform(() -> {
                SplittableRandom r = new SplittableRandom(id);
                List<Long> live = new ArrayList<>();
                try {
                    while (!stop.get()) {
                        if (live.size() < 2000 && (live.isEmpty() || r.nextBoolean())) {
                            live.add(heap.allocate(r.nextLong(0, 70_000)));
                        } else {
                            int k = r.nextInt(live.size());
                            heap.free(live.get(k));
                            live.set(k, live.get(live.size() - 1));
                            live.remove(live.size() - 1);
                        }
                    }
                    live.forEach(heap::free);
                } catch (Throwable e) {
                    failure.compareAndSet(null, e);
                }
            }));
        }
        for (int i = 0; i < 60; i++) {
            heap.memStats().checkInvariants();
            if (i % 20 == 0) {
                heap.releaseMemory();
            }
        }
        stop.set(true);
        for (Thread t : ts) {
            t.join();
        }
        assertNull(failure.get());
        MemStats end = heap.memStatsSwept().checkInvariants();
        assertEquals(0, end.heapObjects());
        assertEquals(0, io.gomem.heap.Internals.liveObjectsSlow(heap)[0]);
    }

    @Test
    void statsDumpAddsUpToItsTotals() {
        SplittableRandom r = new SplittableRandom(3);
        List<Long> ps = new ArrayList<>();
        for (int i = 0; i < 5000; i++) {
            ps.add(heap.allocate(r.nextLong(1, 50_000)));
        }
        for (int i = 0; i < ps.size(); i += 3) {
            heap.free(ps.get(i));
        }
        StatsDump d = heap.statsDump().checkTotals();
        MemStats m = heap.memStats();
        assertEquals(m.heapObjects(), d.total().objects());
        assertEquals(m.heapAlloc(), d.total().bytesInUse());
        String text = d.toText();
        assertTrue(text.lines().count() == d.classes().size() + 4, text); // header, classes, large, total, arenas
        assertTrue(text.lines().reduce((a, b) -> b).orElseThrow().startsWith("arenas: 0 open"), text);
        assertTrue(text.contains("total") && text.contains("large"), text);
    }

    @Test
    void mxBeanShowsTheStatsAndGoesAwayOnClose() throws Exception {
        ObjectName on = heap.registerMXBean("test-" + System.nanoTime());
        long p = heap.allocate(1000);
        MBeanServer server = ManagementFactory.getPlatformMBeanServer();
        assertEquals(1L, server.getAttribute(on, "HeapObjects"));
        assertEquals(1024L, server.getAttribute(on, "HeapAlloc"));
        assertEquals(2, server.getAttribute(on, "Procs"));
        heap.free(p);
        heap.memStatsSwept(); // the free counts once swept (the background thread sweeps every second)
        assertEquals(0L, server.getAttribute(on, "HeapObjects"));
        javax.management.AttributeList all = server.getAttributes(on, new String[] {"HeapObjects", "Mallocs", "Frees"});
        assertEquals(3, all.size(), "one poll, one snapshot: " + all);
        Object dump = server.invoke(on, "statsDump", new Object[0], new String[0]);
        assertTrue(dump.toString().contains("total"));
        heap.close();
        assertFalse(server.isRegistered(on));
    }

    /**
     * One MXBean poll is one snapshot: while two threads allocate and free, every
     * {@code getAttributes} of HeapObjects, Mallocs and Frees satisfies HeapObjects = Mallocs −
     * Frees, which separate snapshots per attribute would break (the three are counted apart).
     */
    @Test
    void oneMxBeanPollIsOneConsistentSnapshotUnderLoad() throws Exception {
        ObjectName on = heap.registerMXBean("poll-" + System.nanoTime());
        MBeanServer server = ManagementFactory.getPlatformMBeanServer();
        java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
        List<Thread> churn = new ArrayList<>();
        for (int t = 0; t < 2; t++) {
            churn.add(TestThreads.platform(() -> {
                long[] live = new long[64];
                int i = 0;
                while (!stop.get()) {
                    if (live[i] != 0) {
                        heap.free(live[i]);
                    }
                    live[i] = heap.allocate(16 + 16 * (i % 8));
                    i = (i + 1) % live.length;
                }
                for (long p : live) {
                    if (p != 0) {
                        heap.free(p);
                    }
                }
            }));
        }
        try {
            long changed = 0;
            long lastMallocs = -1;
            for (int poll = 0; poll < 2000; poll++) {
                javax.management.AttributeList all = server.getAttributes(on, new String[] {"HeapObjects", "Mallocs", "Frees"});
                long objects = (Long) ((javax.management.Attribute) all.get(0)).getValue();
                long mallocs = (Long) ((javax.management.Attribute) all.get(1)).getValue();
                long frees = (Long) ((javax.management.Attribute) all.get(2)).getValue();
                assertEquals(mallocs - frees, objects, "poll " + poll + ": " + all);
                changed += mallocs != lastMallocs ? 1 : 0;
                lastMallocs = mallocs;
            }
            assertTrue(changed > 10, "the figures moved while polled: " + changed + " polls saw new Mallocs");
        } finally {
            stop.set(true);
            for (Thread t : churn) {
                t.join();
            }
        }
    }

    @Test
    void jfrRecordsTransitionsRefillsGrowthScavengingAndPeriodicStats() throws Exception {
        Path file = Files.createTempFile("gomem", ".jfr");
        List<Long> live = new ArrayList<>();
        try (Recording rec = new Recording()) {
            for (String e : List.of("io.gomem.OsTransition", "io.gomem.SpanRefill", "io.gomem.HeapGrow", "io.gomem.Scavenge")) {
                rec.enable(e);
            }
            rec.enable("io.gomem.MemStats").withPeriod(java.time.Duration.ofMillis(100));
            rec.enable("io.gomem.SizeClass").withPeriod(java.time.Duration.ofMillis(100));
            rec.start();
            for (int i = 0; i < 300; i++) {
                live.add(heap.allocate(64)); // live through the recording: the per-class event sees them
            }
            List<Long> ps = new ArrayList<>();
            for (int i = 0; i < 2000; i++) {
                ps.add(heap.allocate(5000));
            }
            ps.forEach(heap::free);
            heap.releaseMemory();
            Thread.sleep(400);
            rec.stop();
            rec.dump(file);
        }
        live.forEach(heap::free);
        Set<String> seen = new HashSet<>();
        boolean sawSysMap = false;
        long class64 = 0;
        for (RecordedEvent e : RecordingFile.readAllEvents(file)) {
            seen.add(e.getEventType().getName());
            if (e.getEventType().getName().equals("io.gomem.OsTransition") && "sysMap".equals(e.getString("call"))) {
                sawSysMap = true;
            }
            if (e.getEventType().getName().equals("io.gomem.SizeClass") && e.getLong("objectSize") == 64) {
                class64 = Math.max(class64, e.getLong("objects"));
            }
        }
        Files.delete(file);
        assertTrue(seen.containsAll(List.of("io.gomem.OsTransition", "io.gomem.SpanRefill", "io.gomem.HeapGrow",
                "io.gomem.Scavenge", "io.gomem.MemStats", "io.gomem.SizeClass")), "events seen: " + seen);
        assertTrue(sawSysMap);
        assertTrue(class64 >= 300, "the per-class event counts the 300 live 64 B objects: " + class64);
    }

    @Test
    void kernelResidencyFollowsReleaseMemory() {
        List<Long> ps = new ArrayList<>();
        for (int i = 0; i < 1000; i++) {
            long p = heap.allocate(64 * 1024);
            Mem.at(p, 64 * 1024).fill((byte) 1);
            ps.add(p);
        }
        long lo = ps.stream().mapToLong(Long::longValue).min().orElseThrow() & -(64L << 20);
        long hi = ps.stream().mapToLong(Long::longValue).max().orElseThrow() + (64 << 10);
        long before = KernelView.residentBytes(lo, ((hi + (64L << 20) - 1) & -(64L << 20)) - lo);
        ps.forEach(heap::free);
        heap.releaseMemory();
        long after = KernelView.residentBytes(lo, ((hi + (64L << 20) - 1) & -(64L << 20)) - lo);
        MemStats m = heap.memStats().checkInvariants();
        assertTrue(before >= 60L << 20 && after < 1L << 20, "resident " + before + " -> " + after);
        assertTrue(m.osReady() <= after + (1L << 20), "OS layer Ready " + m.osReady() + " vs resident " + after);
    }
}
