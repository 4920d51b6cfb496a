package io.gomem.bench;

import io.gomem.GoHeap;
import io.gomem.stats.MemStats;
import jdk.jfr.EventType;
import jdk.jfr.FlightRecorder;
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
 *     io.gomem.bench.SpanMetadataCost [--kind small|large] [--spans N] [--young K] [--full F] [--histogram LINES]
 * </pre>
 * {@code --histogram LINES} prints the top of the Java heap's class histogram with the spans live
 * (what {@code jcmd PID GC.class_histogram} prints), to attribute the bytes.
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
        int histogram = 0;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--kind" -> kind = args[++i];
                case "--spans" -> spans = Integer.parseInt(args[++i]);
                case "--young" -> young = Integer.parseInt(args[++i]);
                case "--full" -> full = Integer.parseInt(args[++i]);
                case "--histogram" -> histogram = Integer.parseInt(args[++i]);
                default -> {
                    System.err.println("usage: SpanMetadataCost [--kind small|large] [--spans N] [--young K] [--full F] [--histogram LINES]");
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

        List<Phase> phases = new ArrayList<>();
        long[] addrs = new long[spans];
        GoHeap heap = GoHeap.builder().memoryLimit(Long.MAX_VALUE).build(); // no scavenging: nothing is resident anyway
        heap.free(heap.allocate(size)); // the heap's first arena and tables exist before the baseline
        heap.memStats();
        youngGcs(3); // warm the garbage loop

        // Only the collections: an event type left at its defaults would be recorded too, gomem's
        // own (one io.gomem.SpanRefill per span made here) included.
        Recording gcEvents = new Recording();
        for (EventType t : FlightRecorder.getFlightRecorder().getEventTypes()) {
            gcEvents.disable(t.getName());
        }
        for (String gomem : List.of("io.gomem.SpanRefill", "io.gomem.HeapGrow", "io.gomem.Scavenge", "io.gomem.MemStats")) {
            gcEvents.disable(gomem); // if not registered yet
        }
        gcEvents.enable("jdk.GarbageCollection").withThreshold(Duration.ZERO);
        gcEvents.start();
        System.out.println("# young collector: " + youngCollector().getName());

        long usedWithout = usedAfterFullGc();
        phases.add(measurePauses("without spans", young, full));

        System.out.println("### phase: allocating " + spans + " spans");
        Instant allocStart = Instant.now();
        long t0 = System.nanoTime();
        for (int i = 0; i < spans; i++) {
            addrs[i] = heap.allocate(size);
        }
        long allocNs = System.nanoTime() - t0;
        Instant allocEnd = Instant.now();
        System.out.println("### phase: allocating " + spans + " spans: end");
        MemStats m = heap.memStats();

        long usedWith = usedAfterFullGc();
        long lo = Long.MAX_VALUE;
        long hi = 0;
        for (long a : addrs) {
            lo = Math.min(lo, a);
            hi = Math.max(hi, a + size);
        }
        long[] resident = residentIn(lo, hi);
        if (histogram > 0) {
            printHistogram(histogram);
        }
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
        System.out.println("RESULT while allocating the " + spans + " spans (" + allocNs / 1_000_000 + " ms):");
        Phase.print(Phase.between(events, allocStart, allocEnd));
        System.out.println("# load average at the end: " + readFirstLine("/proc/loadavg")
                + " (other processes' CPU use lengthens the pauses: 2 parallel GC threads on 2 cores)");
    }

    /** A measured phase: its young and full collections are the GC events that started in it. */
    private record Phase(String name, Instant youngStart, Instant fullStart, Instant end) {
        void report(List<RecordedEvent> events) {
            System.out.println("RESULT " + name + ": young collections (garbage allocation)");
            print(between(events, youngStart, fullStart));
            System.out.println("RESULT " + name + ": full collections (System.gc())");
            print(between(events, fullStart, end));
        }

        /** The collections that started in {@code [from, to)}. */
        static List<RecordedEvent> between(List<RecordedEvent> events, Instant from, Instant to) {
            List<RecordedEvent> out = new ArrayList<>();
            for (RecordedEvent e : events) {
                Instant t = e.getStartTime();
                if (e.getEventType().getName().equals("jdk.GarbageCollection") && !t.isBefore(from) && t.isBefore(to)) {
                    out.add(e);
                }
            }
            return out;
        }

        static void print(List<RecordedEvent> es) {
            double sum = 0;
            List<Double> pauses = new ArrayList<>();
            for (RecordedEvent e : es) {
                double pause = ms(e.getDuration("sumOfPauses"));
                System.out.printf("  GC %-4d %-14s %-28s pauses %8.3f ms (longest %8.3f ms), collection %8.3f ms%n",
                        e.getInt("gcId"), e.getString("name"), e.getString("cause"), pause, ms(e.getDuration("longestPause")),
                        ms(e.getDuration()));
                if (pause > 0) {
                    pauses.add(pause);
                    sum += pause;
                }
            }
            if (!pauses.isEmpty()) {
                pauses.sort(null);
                System.out.printf("  pauses: min %.3f ms, median %.3f ms, max %.3f ms, total %.3f ms over %d collections%n",
                        pauses.getFirst(), pauses.get(pauses.size() / 2), pauses.getLast(), sum, pauses.size());
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

    /**
     * The first {@code lines} lines of the Java heap's class histogram (live objects: it runs a
     * full collection), through the DiagnosticCommand MBean ({@code jcmd GC.class_histogram}).
     */
    private static void printHistogram(int lines) throws Exception {
        Object out = ManagementFactory.getPlatformMBeanServer().invoke(
                new javax.management.ObjectName("com.sun.management:type=DiagnosticCommand"), "gcClassHistogram",
                new Object[] {new String[0]}, new String[] {String[].class.getName()});
        String[] rows = out.toString().split("\n");
        System.out.println("# class histogram with the spans (first " + lines + " rows):");
        for (int i = 0; i < Math.min(lines + 2, rows.length); i++) {
            System.out.println("# " + rows[i]);
        }
        System.out.println("# " + rows[rows.length - 1]);
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

    /**
     * The collector that runs young collections: G1's "G1 Young Generation", Parallel's "PS
     * Scavenge", Serial's "Copy", generational ZGC's "ZGC Minor Cycles"; the first one otherwise.
     */
    private static GarbageCollectorMXBean youngCollector() {
        List<GarbageCollectorMXBean> beans = ManagementFactory.getGarbageCollectorMXBeans();
        for (GarbageCollectorMXBean b : beans) {
            String n = b.getName();
            if (n.contains("Young") || n.contains("Scavenge") || n.equals("Copy") || n.contains("Minor Cycles")) {
                return b;
            }
        }
        return beans.getFirst();
    }

    /**
     * Allocates short-lived garbage until the young collector has run {@code n} more times (or a
     * minute has passed: then says so).
     */
    private static void youngGcs(int n) {
        GarbageCollectorMXBean young = youngCollector();
        Object[] ring = new Object[256]; // 1 MiB survives each collection: a little live young data
        long target = young.getCollectionCount() + n;
        long deadline = System.nanoTime() + 60_000_000_000L;
        int i = 0;
        while (young.getCollectionCount() < target) {
            ring[i++ & 255] = new byte[4096];
            if ((i & 1023) == 0) {
                sink = ring;
                if (System.nanoTime() > deadline) {
                    System.out.println("# " + young.getName() + " ran " + (n - (target - young.getCollectionCount()))
                            + " of " + n + " collections in a minute: going on");
                    return;
                }
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
