package io.gomem.heap;

import io.gomem.TestThreads;
import io.gomem.os.OsMemory;
import io.gomem.stats.MemStats;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The heap's counters alone (sections and cuts), the MemStats built from them, and how a heap reads them. */
class MStatsTest {

    @Test
    void aCutHoldsEverySectionThatEndedBeforeIt() {
        MStats s = new MStats();
        s.countSweep(4, 10, 0, 32);
        s.countFrees(4, 3, 32);
        s.countLargeSpan(null, +1, 100_000, 13);
        long[] c = s.cut();
        assertEquals(10, c[MStats.MALLOCS + 4]);
        assertEquals(3, c[MStats.FREES + 4]);
        assertEquals(7 + 1, c[MStats.LIVE_OBJECTS]);
        assertEquals(7 * 32 + 100_000, c[MStats.LIVE_BYTES]);
        s.countLargeSpan(null, -1, 100_000, 13);
        long[] d = s.cut();
        assertEquals(7, d[MStats.LIVE_OBJECTS], "the second cut adds what came after the first");
        assertEquals(1, d[MStats.LARGE_FREES]);
        assertEquals(10, d[MStats.MALLOCS + 4], "and keeps what the first folded in");
    }

    /**
     * The protocol's invariant: a section's adds land in one cut, never split between two. Writers
     * add +1 to counters A and B (or -1 to both) in one section; a reader cuts all the while. A
     * cut that saw A without B (a writer's set folded while it was inside) breaks A == B.
     */
    /** One writer's section: adds {@code v} to counters a and b, maybe pausing between the two adds. */
    interface Section {
        void write(int a, int b, long v, boolean pause);
    }

    /**
     * Three writers, each with the section {@code writerFor} gives it, race a reader that cuts
     * for a second; every cut must hold a == b. Returns the number of cuts.
     */
    private static long raceCuts(MStats s, java.util.function.IntFunction<Section> writerFor) throws Exception {
        int a = MStats.MALLOCS + 7;
        int b = MStats.FREES + 7;
        AtomicBoolean stop = new AtomicBoolean();
        List<Thread> writers = new ArrayList<>();
        for (int w = 0; w < 3; w++) {
            Section section = writerFor.apply(w);
            long seed = w;
            writers.add(TestThreads.platform(() -> {
                SplittableRandom r = new SplittableRandom(seed);
                while (!stop.get()) {
                    section.write(a, b, r.nextInt(4) == 0 ? -1 : 1, r.nextInt(8) == 0);
                }
            }));
        }
        long cuts = 0;
        long deadline = System.nanoTime() + 1_000_000_000L;
        try {
            while (System.nanoTime() < deadline) {
                long[] c = s.cut();
                assertEquals(c[a], c[b], "cut " + cuts + ": a section was split between two cuts");
                cuts++;
            }
        } finally {
            stop.set(true);
            for (Thread t : writers) {
                t.join();
            }
        }
        long[] c = s.cut();
        assertEquals(c[a], c[b]);
        return cuts;
    }

    @Test
    void concurrentSectionsNeverSplitAcrossCuts() throws Exception {
        MStats s = new MStats();
        long cuts = raceCuts(s, w -> (a, b, v, pause) -> {
            int g = s.begin();
            s.add(g, a, v);
            if (pause) {
                Thread.onSpinWait(); // widen the window between the two adds
            }
            s.add(g, b, v);
            s.end(g);
        });
        assertTrue(cuts > 1000, "enough cuts raced the writers: " + cuts);
    }

    /** The same for the Ps' own shards: one writer each (its lease holder), plain adds, a sequence number. */
    @Test
    void sectionsInThePsShardsNeverSplitAcrossCuts() throws Exception {
        MStats s = new MStats();
        long cuts = raceCuts(s, w -> {
            MStats.Shard sh = s.newShard();
            return (a, b, v, pause) -> {
                sh.begin();
                sh.add(a, v);
                if (pause) {
                    Thread.onSpinWait();
                }
                sh.add(b, v);
                sh.end();
            };
        });
        assertTrue(cuts > 100, "enough cuts raced the writers (each waits for a section a descheduled writer left open): " + cuts);
    }

    /** A sound snapshot, and a way to break each MemStats invariant with one figure counted apart. */
    record Broken(String name, Consumer<long[]> counts, long mappedDelta, long totalPagesDelta, long osReadyDelta,
                  long scavengedDelta, String message) {
        @Override
        public String toString() {
            return name;
        }
    }

    static Stream<Broken> brokenFigures() {
        return Stream.of(
                new Broken("live objects counted apart from mallocs and frees", c -> c[MStats.LIVE_OBJECTS]++, 0, 0, 0, 0,
                        "HeapObjects"),
                new Broken("page allocator's pages disagree with the mapped bytes", c -> { }, 0, 1, 0, 0, "HeapIdle"),
                new Broken("OS layer's Ready bytes disagree with the mapped bytes", c -> { }, 0, 0, 8192, 0, "Sys"),
                new Broken("released pages disagree with the OS layer", c -> { }, 0, 0, 0, 1, "mapped-ready"),
                new Broken("live bytes beyond the pages in spans", c -> c[MStats.LIVE_BYTES] += 1 << 20, 0, 0, 0, 0, "HeapAlloc"),
                new Broken("more frees than mallocs in a class", c -> {
                    c[MStats.FREES + 4] += 15;
                    c[MStats.LIVE_OBJECTS] -= 15;
                }, 0, 0, 0, 0, "frees 15 > mallocs 10"));
    }

    /** 4 MiB mapped, 2 pages in use by one span of span class 4 holding 10 objects of 32 B; 100 pages scavenged. */
    private static MStats.Counters counters(Broken b) {
        long[] c = new long[MStats.N];
        c[MStats.MALLOCS + 4] = 10;
        c[MStats.LIVE_OBJECTS] = 10;
        c[MStats.LIVE_BYTES] = 320;
        c[MStats.SPANS + 4] = 1;
        long mapped = 4L << 20;
        long pages = mapped >>> SizeClasses.PAGE_SHIFT;
        long scavenged = 100;
        long prepared = scavenged << SizeClasses.PAGE_SHIFT;
        if (b != null) {
            b.counts().accept(c);
            mapped += b.mappedDelta();
            pages += b.totalPagesDelta();
            scavenged += b.scavengedDelta();
        }
        long ready = mapped - prepared + (b == null ? 0 : b.osReadyDelta());
        return new MStats.Counters(mapped, pages, 2, scavenged, 1, 64L << 20, 1, (64L << 20) - mapped, prepared, ready, 0,
                0, 3, 1, 8192, c);
    }

    static final MStats.MetaBytes META = new MStats.MetaBytes(552, 2064, 3300, 40_000);

    @Test
    void aSoundSnapshotKeepsEveryInvariant() {
        MStats.memStats(counters(null), META, Long.MAX_VALUE, new long[4]).checkInvariants();
    }

    /** Every MemStats invariant can fail: its two sides are counted by different components. */
    @ParameterizedTest
    @MethodSource("brokenFigures")
    void everyInvariantCatchesAFigureCountedWrong(Broken b) {
        MemStats m = MStats.memStats(counters(b), META, Long.MAX_VALUE, new long[4]);
        IllegalStateException e = assertThrows(IllegalStateException.class, m::checkInvariants);
        assertTrue(e.getMessage().contains(b.message()), e.getMessage());
    }

    // ───────────────────────────── a heap's reading of them ─────────────────────────────

    private static Malloc heap(int procs) {
        Malloc m = Malloc.create(new OsMemory(), Malloc.Config.of(procs));
        Background.unregister(m); // the tests decide when spans are swept
        return m;
    }

    /** MSpanSys and friends are the records' measured sizes times their counts (the pool included). */
    @Test
    void metadataFiguresAreRecordsTimesTheirMeasuredSize() {
        MemStats m = MStats.memStats(counters(null), META, Long.MAX_VALUE, new long[4]);
        assertEquals(552, m.mSpanInuse(), "one span in use, no masks");
        assertEquals(552 + 3 * 552 + 2064, m.mSpanSys(), "and three pooled, one of them with tiny masks");
        assertEquals(3300, m.mCacheSys());
        assertEquals(40_000, m.otherSys());
    }

    @Test
    void memStatsDoesNotStopTheWorld() {
        Malloc m = heap(2);
        try {
            long p = m.allocate(64);
            MCache[] cs = m.procs.caches();
            for (MCache c : cs) {
                assertTrue(c.tryLease(), "nobody else uses this heap");
            }
            try {
                // A stop-the-world would wait for these leases, which this very thread holds: forever.
                MemStats s = assertTimeoutPreemptively(Duration.ofSeconds(10), m::memStats, "memStats waited for a P");
                s.checkInvariants();
                assertTrue(s.heapInuse() >= 8192, "the span's page is counted: " + s.heapInuse());
            } finally {
                for (MCache c : cs) {
                    c.release();
                }
            }
            assertEquals(1, m.memStats().heapObjects(), "with the P free, the object is counted");
            m.free(p);
        } finally {
            m.close();
        }
    }

    @Test
    void aFreeCountsOnceSwept() {
        Malloc m = heap(1);
        try {
            long p = m.allocate(100);
            assertEquals(1, m.memStats().heapObjects());
            m.free(p);
            MemStats unswept = m.memStats().checkInvariants();
            assertEquals(1, unswept.heapObjects(), "a free is counted when its span is swept, as in Go");
            assertEquals(0, unswept.frees());
            MemStats swept = m.memStatsSwept().checkInvariants();
            assertEquals(0, swept.heapObjects());
            assertEquals(1, swept.frees());
        } finally {
            m.close();
        }
    }

    /** Go's ReadMemStatsSlow: checkInvariants recounts from the spans and names a counter that drifted. */
    @Test
    void theCrossCheckFindsACounterThatDrifted() {
        Malloc m = heap(1);
        try {
            List<Long> ps = new ArrayList<>();
            for (int i = 0; i < 300; i++) {
                ps.add(m.allocate(48));
            }
            ps.add(m.allocate(100_000));
            m.checkInvariants();
            m.stats.countSweep(5, 1, 0, 48); // one slot counted that no span handed out
            IllegalStateException e = assertThrows(IllegalStateException.class, m::checkInvariants);
            assertTrue(e.getMessage().contains("recounted from the spans"), e.getMessage());
            m.stats.countFrees(5, 1, 48); // square it again
            m.checkInvariants();
            m.stats.count(MStats.LARGE_PAGES, 1);
            e = assertThrows(IllegalStateException.class, m::checkInvariants);
            assertTrue(e.getMessage().contains("pages of large spans"), e.getMessage());
        } finally {
            m.close();
        }
    }

    /** {@code gomem.checkInvariants}: the pom's check-invariants execution sets it; the checks below exist only then. */
    static final boolean CHECK = io.gomem.internal.Options.CHECK_INVARIANTS.booleanValue();

    @Test
    void countersAreWrittenOnlyInsideASectionAndAPsShardOnlyByItsLeaseHolder() throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(CHECK, "only with -Dgomem.checkInvariants=true");
        MStats s = new MStats();
        assertThrows(IllegalStateException.class, () -> s.add(0, MStats.MALLOCS, 1), "a shared set outside a section");
        assertThrows(IllegalStateException.class, () -> s.end(0), "a section never opened");
        int g = s.begin();
        s.add(g, MStats.MALLOCS, 1);
        s.end(g);
        assertEquals(1, s.cut()[MStats.MALLOCS]);

        MStats.Shard free = s.newShard();
        assertThrows(IllegalStateException.class, () -> free.add(MStats.MALLOCS, 1), "a shard outside a section");

        MCache c = new MCache(null, null, s, 0);
        assertThrows(IllegalStateException.class, c.shard::begin, "a P's shard without its lease");
        assertTrue(c.tryLease());
        try {
            MStats.countSweep(c.shard, 4, 2, 1, 32); // the lease holder, in a section: fine
            Thread other = TestThreads.platform(() ->
                    assertThrows(IllegalStateException.class, c.shard::begin, "another thread, while this one holds the lease"));
            other.join();
        } finally {
            c.release();
        }
        assertThrows(IllegalStateException.class, c.shard::begin, "once the lease is given back");
        assertEquals(2, s.cut()[MStats.MALLOCS + 4]);
    }
}
