/**
 * gomem: an off-heap memory manager built the way the Go runtime manages its heap.
 *
 * <p>Only the API packages are exported: {@code io.gomem} (the heap) and {@code io.gomem.os}
 * (the OS memory layer with Go's region state machine). The heap's components live in
 * {@code io.gomem.heap} and stay internal.
 */
module io.gomem {
    requires io.gomem.bindings;
    requires java.logging;
    requires transitive java.management; // GoHeap.registerMXBean returns a javax.management.ObjectName
    requires jdk.jfr;

    exports io.gomem;
    exports io.gomem.os;
    exports io.gomem.stats;
}
