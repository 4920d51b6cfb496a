package io.gomem.heap;

/** The heap machine's internal views, for tests outside this package (io.gomem's). */
public final class Internals {
    private Internals() {
    }

    public static MHeap.Counters counters(HeapCore core) {
        return core.counters();
    }

    public static int cachedSpans(HeapCore core) {
        return core.cachedSpans();
    }

    /** The span holding {@code addr} as {base, limit}, or null if none does. */
    public static long[] spanBounds(HeapCore core, long addr) {
        MSpan s = core.heap.spanOf(addr);
        return s == null ? null : new long[] {s.base, s.limit()};
    }

    /** Sweeps every span class, as the background thread does each period. */
    public static void sweepCentrals(HeapCore core) {
        for (MCentral c : core.heap.central) {
            if (c != null) {
                c.sweepAll();
            }
        }
    }

    public static long[] liveObjectsSlow(HeapCore core) {
        return core.liveObjectsSlow();
    }
}
