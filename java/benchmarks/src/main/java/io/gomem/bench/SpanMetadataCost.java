package io.gomem.bench;

import io.gomem.GoHeap;
import io.gomem.stats.MemStats;
import jdk.jfr.Recording;
import jdk.jfr.consumer.RecordedEvent;
import jdk.jfr.consumer.RecordingFile;

import java.io.IOException;
import java.lang.management.GarbageCollectorMXBean;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryUsage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

/**
 * What gomem's span records cost the Java heap and its collector (issue 12; not a JMH benchmark).
 * Makes {@code --spans} spans (10<sup>6</sup> by default) through the public API and keeps them:
 * <ul>
 *   <li>{@code --kind small}: objects of 8 KiB, the size class whose span is one page holding one
 *       object, so every allocation makes a span (7.6 GiB of address space for 10<sup>6</sup>);</li>
 *   <li>{@code --kind large}: objects of 40 KiB, each a large span of 5 pages (38 GiB).</li>
 * </ul>
 * The memory is mapped but never written, so it takes no resident memory (the program prints the
 * resident bytes of the mappings that hold the spans, from /proc/self/smaps). Around the
 * allocation it measures, once without the spans and once with them:
 * <ul>
 *   <li>the Java heap in use after a full collection ({@code System.gc()}, twice), from
 *       {@code MemoryMXBean}: the difference divided by the span count is the Java-heap bytes per
 *       span, everything the heap keeps for them included (span records, arena spans tables, the
 *       flat spans table, the page allocator's bitmaps);</li>
 *   <li>the pauses of {@code --young} young collections (made by allocating garbage) and of
 *       {@code --full} full ones ({@code System.gc()}), from JFR's {@code jdk.GarbageCollection}
 *       events (nanosecond durations, where the GC MXBeans give milliseconds). Run with
 *       {@code -Xlog:gc} to have the collector's own lines too; the program prints a marker line
 *       before each phase so that they can be told apart.</li>
 * </ul>
 *
 * <pre>
 * java -Xlog:gc -Xmx4g --enable-native-access=ALL-UNNAMED -cp java/benchmarks/target/benchmarks.jar \
 *     io.gomem.bench.SpanMetadataCost [--kind small|large] [--spans N] [--young K] [--full F]
 * </pre>
 * The kernel must let the process map the address space: {@code vm.overcommit_memory} 0 or 1
 * (the program prints it; with 2, use fewer spans and extrapolate).
 */
public final class SpanMetadataCost {
    private SpanMetadataCost() {
    }

    public static void main(String[] args) throws Exception {
        String kind = "small";
        int spans = 1_000_000;
        int young = 10;
        int full = 3;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--kind" -> kind = args[++i];
                case "--spans" -> spans = Integer.parseInt(args[++i]);
                case "--young" -> young = Integer.parseInt(args[++i]);
                case "--full" -> full = Integer.parseInt(args[++i]);
                default -> {
                    System.err.println("usage: SpanMetadataCost [--kind small|large] [--spans N] [--young K] [--full F]");
                    System.exit(2);
                }
            }
        }
        long size = switch (kind) {
            case "small" -> 8192;
            case "large" -> 40960;
            default -> throw new IllegalArgumentException("--kind small or large, not " + kind);
        };
        System.out.println("# SpanMetadataCost: " + spans + " " + kind + " spans of " + size + " B objects; JVM "
                + Runtime.version() + ", " + ManagementFactory.getRuntimeMXBean().getInputArguments());
        System.out.println("# vm.overcommit_memory = " + readFirstLine("/proc/sys/vm/overcommit_memory")
                + "; load average " + readFirstLine("/proc/loadavg") + "; collectors: " + ManagementFactory.getGarbageCollectorMXBeans().stream().map(GarbageCollectorMXBean::getName).toList());

        Recording gcEvents = new Recording();
        gcEvents.enable("jdk.GarbageCollection").withThreshold(Duration.ZERO);
        gcEvents.start();
        List<Phase> phases = new ArrayList<>();

        long[] addrs = new long[spans];
        GoHeap heap = GoHeap.builder().memoryLimit(Long.MAX_VALUE).build(); // no scavenging: nothing is resident anyway
        heap.free(heap.allocate(size)); // the heap's first arena and tables exist before the baseline
        youngGcs(3); // warm the garbage loop

        long usedWithout = usedAfterFullGc();
        phases.add(measurePauses("without spans", young, full));

        long t0 = System.nanoTime();
        for (int i = 0; i < spans; i++) {
            addrs[i] = heap.allocate(size);
        }
        long allocNs = System.nanoTime() - t0;
        MemStats m = heap.memStats();

        long usedWith = usedAfterFullGc();
        long lo = Long.MAX_VALUE;
        long hi = 0;
        for (long a : addrs) {
            lo = Math.min(lo, a);
            hi = Math.max(hi, a + size);
        }
        long[] resident = residentIn(lo, hi);
        phases.add(measurePauses("with " + spans + " spans", young, full));

        for (long a : addrs) {
            heap.free(a);
        }
        heap.close();
        heap = null;
        long usedClosed = usedAfterFullGc();

        gcEvents.stop();
        Path jfr = Files.createTempFile("span-metadata", ".jfr");
        gcEvents.dump(jfr);
        gcEvents.close();
        List<RecordedEvent> events = RecordingFile.readAllEvents(jfr);
        Files.delete(jfr);

        System.out.println();
        System.out.printf("RESULT allocate %d spans: %.0f ns per span%n", spans, (double) allocNs / spans);
        System.out.printf("RESULT gomem HeapSys %,d B (%,d MiB mapped), MSpanSys (estimate) %,d B, MCacheSys %,d B, OtherSys %,d B%n",
                m.heapSys(), m.heapSys() >> 20, m.mSpanSys(), m.mCacheSys(), m.otherSys());
        System.out.printf("RESULT Java heap used after full GC: without %,d B, with %,d B, after close %,d B%n",
                usedWithout, usedWith, usedClosed);
        System.out.printf("RESULT Java heap per span: %.1f B (everything the heap keeps for them)%n",
                (double) (usedWith - usedWithout) / spans);
        System.out.printf("RESULT resident memory of the mappings holding the spans [0x%x, 0x%x): %,d B of %,d B mapped"
                + " (from /proc/self/smaps)%n", lo, hi, resident[0], resident[1]);
        for (Phase p : phases) {
            p.report(events);
        }
        System.out.println("# load average at the end: " + readFirstLine("/proc/loadavg")
                + " (other processes' CPU use lengthens the pauses: 2 parallel GC threads on 2 cores)");
    }

    /** A measured phase: its young and full collections are the GC events that started in it. */
    private record Phase(String name, Instant youngStart, Instant fullStart, Instant end) {
        void report(List<RecordedEvent> events) {
            List<RecordedEvent> youngs = new ArrayList<>();
            List<RecordedEvent> fulls = new ArrayList<>();
            for (RecordedEvent e : events) {
                if (!e.getEventType().getName().equals("jdk.GarbageCollection")) {
                    continue;
                }
                Instant t = e.getStartTime();
                if (!t.isBefore(youngStart) && t.isBefore(fullStart)) {
                    youngs.add(e);
                } else if (!t.isBefore(fullStart) && t.isBefore(end)) {
                    fulls.add(e);
                }
            }
            System.out.println("RESULT " + name + ": young collections (garbage allocation)");
            print(youngs);
            System.out.println("RESULT " + name + ": full collections (System.gc())");
            print(fulls);
        }

        private static void print(List<RecordedEvent> es) {
            List<Double> pauses = new ArrayList<>();
            for (RecordedEvent e : es) {
                double pause = ms(e.getDuration("sumOfPauses"));
                System.out.printf("  GC %-4d %-14s %-28s pauses %8.3f ms (longest %8.3f ms), collection %8.3f ms%n",
                        e.getInt("gcId"), e.getString("name"), e.getString("cause"), pause, ms(e.getDuration("longestPause")),
                        ms(e.getDuration()));
                if (pause > 0) {
                    pauses.add(pause);
                }
            }
            if (!pauses.isEmpty()) {
                pauses.sort(null);
                System.out.printf("  pauses: min %.3f ms, median %.3f ms, max %.3f ms over %d collections%n",
                        pauses.getFirst(), pauses.get(pauses.size() / 2), pauses.getLast(), pauses.size());
            }
        }
    }

    private static double ms(Duration d) {
        return d.toNanos() / 1e6;
    }

    /** Runs {@code young} young collections, then {@code full} full ones, with marker lines for -Xlog:gc. */
    private static Phase measurePauses(String name, int young, int full) {
        System.out.println("### phase: " + name + ": " + young + " young collections");
        Instant youngStart = Instant.now();
        youngGcs(young);
        settle();
        System.out.println("### phase: " + name + ": " + full + " full collections (System.gc())");
        Instant fullStart = Instant.now();
        for (int i = 0; i < full; i++) {
            System.gc();
        }
        settle();
        Instant end = Instant.now();
        System.out.println("### phase: " + name + ": end");
        return new Phase(name, youngStart, fullStart, end);
    }

    /** Lets a collection that ended just now be stamped before the phase boundary. */
    private static void settle() {
        try {
            Thread.sleep(100);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** A sink the garbage loop writes to, so that the allocations are not eliminated. */
    static volatile Object sink;

    /** Allocates short-lived garbage until the first collector (the young one) has run {@code n} more times. */
    private static void youngGcs(int n) {
        GarbageCollectorMXBean youngBean = ManagementFactory.getGarbageCollectorMXBeans().getFirst();
        Object[] ring = new Object[256]; // 1 MiB survives each collection: a little live young data
        long target = youngBean.getCollectionCount() + n;
        int i = 0;
        while (youngBean.getCollectionCount() < target) {
            ring[i++ & 255] = new byte[4096];
            if ((i & 1023) == 0) {
                sink = ring;
            }
        }
    }

    /** Java heap in use after two full collections. */
    private static long usedAfterFullGc() {
        System.gc();
        System.gc();
        MemoryUsage u = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage();
        return u.getUsed();
    }

    /**
     * Resident and mapped bytes of the mappings of {@code [lo, hi)} (the parts inside it), from
     * /proc/self/smaps; {-1, -1} if it cannot be read.
     */
    private static long[] residentIn(long lo, long hi) {
        long rss = 0;
        long mapped = 0;
        boolean in = false;
        long start = 0;
        long end = 0;
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/smaps"))) {
                int dash = line.indexOf('-');
                int space = line.indexOf(' ');
                if (dash > 0 && space > dash && line.substring(0, dash).chars().allMatch(c -> Character.digit(c, 16) >= 0)) {
                    start = Long.parseUnsignedLong(line.substring(0, dash), 16);
                    end = Long.parseUnsignedLong(line.substring(dash + 1, space), 16);
                    in = start < hi && end > lo;
                    if (in) {
                        mapped += Math.min(end, hi) - Math.max(start, lo);
                    }
                } else if (in && line.startsWith("Rss:")) {
                    // Rss of the whole mapping: an upper bound if the mapping reaches past [lo, hi).
                    rss += Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
                }
            }
        } catch (IOException | RuntimeException e) {
            return new long[] {-1, -1};
        }
        return new long[] {rss, mapped};
    }

    private static String readFirstLine(String file) {
        try {
            return Files.readAllLines(Path.of(file)).getFirst().trim();
        } catch (IOException | RuntimeException e) {
            return "unknown (" + e + ")";
        }
    }
}
