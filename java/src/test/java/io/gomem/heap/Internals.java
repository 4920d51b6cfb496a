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

    public static long[] liveObjectsSlow(HeapCore core) {
        return core.liveObjectsSlow();
    }
}
