/**
 * gomem: an off-heap memory manager built the way the Go runtime manages its heap.
 *
 * <p>Only the API packages are exported: {@code io.gomem} (the heap) and {@code io.gomem.os}
 * (the OS memory layer with Go's region state machine). The heap's components live in
 * {@code io.gomem.heap} and stay internal.
 *
 * <p>A multi-release jar: this descriptor and the base classes are compiled for JDK 17 (the
 * raw-address API, the heap, the JNI backend); {@code META-INF/versions/25} adds the Panama
 * backend and the segment and arena API. The descriptor is the same on every JDK.
 */
module io.gomem {
    requires io.gomem.bindings; // used by the JDK 25 part only (its classes live there too)
    requires jdk.unsupported;   // sun.misc.Unsafe: the JDK 17 part's memory access
    requires java.logging;
    requires transitive java.management; // GoHeap.registerMXBean returns a javax.management.ObjectName
    requires jdk.jfr;

    exports io.gomem;
    exports io.gomem.os;
    exports io.gomem.stats;
}
