package io.gomem.heap;

import jdk.jfr.Category;
import jdk.jfr.DataAmount;
import jdk.jfr.Description;
import jdk.jfr.Event;
import jdk.jfr.FlightRecorder;
import jdk.jfr.Label;
import jdk.jfr.Name;
import jdk.jfr.Period;
import jdk.jfr.StackTrace;
import jdk.jfr.Timespan;

/**
 * The heap's JFR events, named in reverse-domain style. Each is created and committed only on
 * slow paths (span refill, heap growth, scavenging) or periodically; when no recording enables
 * them, {@code shouldCommit()} is false and the JIT removes the event object, so they cost
 * nothing on the allocation fast path.
 */
final class HeapEvents {
    private HeapEvents() {
    }

    /** An MCache took a span from its MCentral (a partial one, or a new one from the heap). */
    @Name("io.gomem.SpanRefill")
    @Label("gomem Span Refill")
    @Category({"gomem", "Heap"})
    @StackTrace(false)
    static final class SpanRefill extends Event {
        @Label("Span Class")
        int spanClass;
        @Label("Object Size")
        @DataAmount
        long objectSize;
        @Label("Free Slots")
        int freeSlots;
        @Label("P")
        int p;
    }

    /** The heap mapped more memory (and possibly reserved a new arena). */
    @Name("io.gomem.HeapGrow")
    @Label("gomem Heap Growth")
    @Category({"gomem", "Heap"})
    @StackTrace(false)
    static final class HeapGrow extends Event {
        @Label("Mapped")
        @DataAmount
        long mapped;
        @Label("New Reservation")
        @DataAmount
        long reserved;
        @Label("Heap Mapped")
        @DataAmount
        long heapMapped;
    }

    /** One scavenger cycle (background, synchronous under the limit, or releaseMemory). */
    @Name("io.gomem.Scavenge")
    @Label("gomem Scavenge")
    @Category({"gomem", "Scavenger"})
    @StackTrace(false)
    static final class Scavenge extends Event {
        @Label("Kind")
        String kind;
        @Label("Released")
        @DataAmount
        long released;
        @Label("Retained")
        @DataAmount
        long retained;
        @Label("Goal")
        @DataAmount
        long goal;
        @Label("Work Time")
        @Timespan
        long workNanos;
    }

    /** A periodic snapshot of every live heap's main MemStats figures. */
    @Name("io.gomem.MemStats")
    @Label("gomem MemStats")
    @Category({"gomem", "Heap"})
    @Description("Periodic MemStats of each live gomem heap")
    @Period("1 s")
    @StackTrace(false)
    static final class MemStatsEvent extends Event {
        @Label("Heap")
        int heap;
        @Label("Heap Alloc")
        @DataAmount
        long heapAlloc;
        @Label("Heap Sys")
        @DataAmount
        long heapSys;
        @Label("Heap Idle")
        @DataAmount
        long heapIdle;
        @Label("Heap In Use")
        @DataAmount
        long heapInuse;
        @Label("Heap Released")
        @DataAmount
        long heapReleased;
        @Label("Heap Objects")
        long heapObjects;
        @Label("Mallocs")
        long mallocs;
        @Label("Frees")
        long frees;
        @Label("Sys")
        @DataAmount
        long sys;
        @Label("Mapped Ready")
        @DataAmount
        long mappedReady;
    }

    /**
     * A periodic row of the stats dump (one event per size class with spans or objects, and one
     * for large objects, per heap): where in-use memory is, as {@code heap.statsDump()} says,
     * from counters that do not stop the world (frees count once their spans are swept).
     */
    @Name("io.gomem.SizeClass")
    @Label("gomem Size Class")
    @Category({"gomem", "Heap"})
    @Description("Periodic per-size-class dump of each live gomem heap: spans, objects and bytes in use")
    @Period("10 s")
    @StackTrace(false)
    static final class SizeClassEvent extends Event {
        @Label("Heap")
        int heap;
        @Label("Class")
        String sizeClass;
        @Label("Object Size")
        @DataAmount
        long objectSize;
        @Label("Spans")
        long spans;
        @Label("Span Bytes")
        @DataAmount
        long spanBytes;
        @Label("Objects")
        long objects;
        @Label("Bytes In Use")
        @DataAmount
        long bytesInUse;
    }

    /** A heap whose MemStats the periodic event reports. */
    interface StatsSource {
        /** A snapshot that does not stop the world; IllegalStateException once the heap is closed. */
        io.gomem.stats.MemStats periodicMemStats();

        /** The stats dump from counters that do not stop the world; IllegalStateException once closed. */
        io.gomem.stats.StatsDump periodicStatsDump();

        boolean isClosed();
    }

    /** Heaps the periodic event reports: weak references, dropped once closed or collected. */
    private static final java.util.concurrent.CopyOnWriteArrayList<java.lang.ref.WeakReference<StatsSource>> SOURCES =
            new java.util.concurrent.CopyOnWriteArrayList<>();

    /** Reports {@code h} in the periodic MemStats event (registers the event on first use). */
    static void register(StatsSource h) {
        SOURCES.add(new java.lang.ref.WeakReference<>(h));
    }

    static {
        FlightRecorder.addPeriodicEvent(MemStatsEvent.class, HeapEvents::emitMemStats);
        FlightRecorder.addPeriodicEvent(SizeClassEvent.class, HeapEvents::emitSizeClasses);
    }

    private static void emitSizeClasses() {
        for (java.lang.ref.WeakReference<StatsSource> ref : SOURCES) {
            StatsSource h = ref.get();
            if (h == null || h.isClosed() || !new SizeClassEvent().shouldCommit()) {
                continue;
            }
            io.gomem.stats.StatsDump d;
            try {
                d = h.periodicStatsDump();
            } catch (IllegalStateException closed) {
                continue;
            }
            java.util.List<io.gomem.stats.StatsDump.Row> rows = new java.util.ArrayList<>(d.classes());
            rows.add(d.large());
            for (io.gomem.stats.StatsDump.Row r : rows) {
                SizeClassEvent e = new SizeClassEvent();
                e.heap = System.identityHashCode(h);
                e.sizeClass = r.name();
                e.objectSize = r.objectSize();
                e.spans = r.spans();
                e.spanBytes = r.spanBytes();
                e.objects = r.objects();
                e.bytesInUse = r.bytesInUse();
                e.commit();
            }
        }
    }

    private static void emitMemStats() {
        for (java.lang.ref.WeakReference<StatsSource> ref : SOURCES) {
            StatsSource h = ref.get();
            if (h == null || h.isClosed()) {
                SOURCES.remove(ref);
                continue;
            }
            MemStatsEvent e = new MemStatsEvent();
            if (!e.shouldCommit()) {
                return;
            }
            io.gomem.stats.MemStats m;
            try {
                m = h.periodicMemStats();
            } catch (IllegalStateException closed) {
                continue;
            }
            e.heap = System.identityHashCode(h);
            e.heapAlloc = m.heapAlloc();
            e.heapSys = m.heapSys();
            e.heapIdle = m.heapIdle();
            e.heapInuse = m.heapInuse();
            e.heapReleased = m.heapReleased();
            e.heapObjects = m.heapObjects();
            e.mallocs = m.mallocs();
            e.frees = m.frees();
            e.sys = m.sys();
            e.mappedReady = m.mappedReady();
            e.commit();
        }
    }
}
