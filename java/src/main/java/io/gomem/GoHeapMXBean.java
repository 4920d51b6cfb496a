package io.gomem;

/**
 * The JMX view of a {@link GoHeap} (register it with {@link GoHeap#registerMXBean(String)}):
 * the main MemStats figures as attributes and two operations. One poll is one snapshot: the
 * attributes a client reads together ({@code getAttributes}, as JConsole and most exporters do)
 * come from one {@link GoHeap#memStats()}, which does not stop the world.
 */
public interface GoHeapMXBean {
    long getHeapAlloc();

    long getTotalAlloc();

    long getHeapSys();

    long getHeapIdle();

    long getHeapInuse();

    long getHeapReleased();

    long getHeapObjects();

    long getMallocs();

    long getFrees();

    long getSys();

    long getMappedReady();

    /** The soft memory limit on Ready bytes; Long.MAX_VALUE if none. */
    long getMemoryLimit();

    int getProcs();

    /** Returns every free page to the OS now; the bytes released. */
    long releaseMemory();

    /** The per-size-class stats dump, as text. */
    String statsDump();
}
