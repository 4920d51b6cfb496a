package io.gomem.heap;

import io.gomem.GoHeap;
import io.gomem.GoHeapMXBean;
import io.gomem.stats.MemStats;

import javax.management.AttributeList;
import javax.management.JMException;
import javax.management.MBeanServer;
import javax.management.ObjectName;
import javax.management.StandardMBean;
import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.List;

/**
 * The {@link GoHeapMXBean}s registered for one heap, unregistered when it closes.
 *
 * <p>One poll is one snapshot: a client that reads several attributes at once
 * ({@code getAttributes}, as JConsole and exporters do) gets them all from one
 * {@link GoHeap#memStats()}; a lone {@code getAttribute} takes its own.
 *
 * <p>Guards: {@link #names} and {@link #closed}, this object's monitor. Invariant: once
 * {@link #closeAll} has run, no bean is registered for the heap.
 */
final class HeapMXBeans {
    private final List<ObjectName> names = new ArrayList<>();
    private boolean closed;

    /**
     * Registers a bean for {@code heap} as {@code io.gomem:type=GoHeap,name=<name>}.
     *
     * @throws IllegalStateException if the heap is closed (or being closed), or the name is taken
     */
    synchronized ObjectName register(GoHeap heap, String name) {
        if (closed) {
            throw new IllegalStateException("heap is closed: cannot register the GoHeap MXBean '" + name
                    + "' after close(), nothing would unregister it");
        }
        try {
            ObjectName on = new ObjectName("io.gomem:type=GoHeap,name=" + ObjectName.quote(name));
            ManagementFactory.getPlatformMBeanServer().registerMBean(new Bean(heap), on);
            names.add(on);
            return on;
        } catch (JMException e) {
            throw new IllegalStateException("cannot register the GoHeap MXBean '" + name + "': " + e.getMessage(), e);
        }
    }

    /** Unregisters every bean; none can be registered afterwards. */
    synchronized void closeAll() {
        closed = true;
        MBeanServer server = ManagementFactory.getPlatformMBeanServer();
        for (ObjectName on : names) {
            try {
                server.unregisterMBean(on);
            } catch (JMException ignored) {
                // already gone
            }
        }
        names.clear();
    }

    /** The bean: attributes from a snapshot pinned for the length of one {@code getAttributes}. */
    private static final class Bean extends StandardMBean implements GoHeapMXBean {
        private final GoHeap heap;
        /** The snapshot of the {@code getAttributes} call running on this thread, if any. */
        private final ThreadLocal<MemStats> pinned = new ThreadLocal<>();

        Bean(GoHeap heap) {
            super(GoHeapMXBean.class, true);
            this.heap = heap;
        }

        @Override
        public AttributeList getAttributes(String[] attributes) {
            pinned.set(heap.memStats());
            try {
                return super.getAttributes(attributes);
            } finally {
                pinned.remove();
            }
        }

        private MemStats m() {
            MemStats m = pinned.get();
            return m != null ? m : heap.memStats();
        }

        @Override public long getHeapAlloc() { return m().heapAlloc(); }
        @Override public long getTotalAlloc() { return m().totalAlloc(); }
        @Override public long getHeapSys() { return m().heapSys(); }
        @Override public long getHeapIdle() { return m().heapIdle(); }
        @Override public long getHeapInuse() { return m().heapInuse(); }
        @Override public long getHeapReleased() { return m().heapReleased(); }
        @Override public long getHeapObjects() { return m().heapObjects(); }
        @Override public long getMallocs() { return m().mallocs(); }
        @Override public long getFrees() { return m().frees(); }
        @Override public long getSys() { return m().sys(); }
        @Override public long getMappedReady() { return m().mappedReady(); }
        @Override public long getMemoryLimit() { return m().memoryLimit(); }
        @Override public int getProcs() { return heap.procs(); }
        @Override public long releaseMemory() { return heap.releaseMemory(); }
        @Override public String statsDump() { return heap.statsDump().toText(); }
    }
}
