package io.gomem.heap;

import io.gomem.GoHeap;

/** The heap machine's internal views, for tests outside this package (io.gomem's). */
public final class Internals {
    private Internals() {
    }

    /** The page heap's figures tests look at. */
    public record Footprint(long mappedBytes, long pagesInUse, long freePages, long scavengedPages, long spansInUse) {
    }

    private static Malloc m(GoHeap heap) {
        return (Malloc) heap;
    }

    public static Footprint counters(GoHeap heap) {
        MStats.Counters k = m(heap).heap.counters();
        return new Footprint(k.mappedBytes(), k.pagesInUse(), k.freePages(), k.scavengedPages(), k.spansInUse());
    }

    public static int cachedSpans(GoHeap heap) {
        return m(heap).cachedSpans();
    }

    /** The span holding {@code addr} as {base, limit}, or null if none does. */
    public static long[] spanBounds(GoHeap heap, long addr) {
        MSpan s = m(heap).heap.spanOf(addr);
        return s == null ? null : new long[] {s.base, s.limit()};
    }

    /** Sweeps every span class, as the background thread does each period. */
    public static void sweepCentrals(GoHeap heap) {
        m(heap).sweepCentrals();
    }

    public static long[] liveObjectsSlow(GoHeap heap) {
        return m(heap).liveObjectsSlow();
    }
}
