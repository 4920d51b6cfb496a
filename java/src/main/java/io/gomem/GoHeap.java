package io.gomem;

import io.gomem.heap.Malloc;

/**
 * An off-heap memory manager built the way the Go runtime manages its heap: size classes, spans,
 * per-P caches, central span lists and a radix-tree page allocator over 64 MiB arenas, all on an
 * OS layer with Go's region state machine. Its methods are {@link RawHeap}'s.
 *
 * <p>This is the JDK 17 part of the jar: raw addresses ({@link #allocate(long)} /
 * {@link #free(long)}: malloc-like, not zeroed, no Java object created), scopes that hold a P
 * ({@link #local()}), statistics, {@link #releaseMemory()} and {@link #close()}. On JDK 25 and
 * later the jar's {@code META-INF/versions/25} part has a {@code GoHeap} that adds segments and
 * arenas ({@code segments()}, {@code segment(long)}, {@code ofConfined()}, {@code ofShared()}),
 * which need {@code java.lang.foreign}.
 *
 * <pre>{@code
 * try (GoHeap heap = GoHeap.builder().build()) {
 *     long p = heap.allocate(64);            // raw, not zeroed
 *     heap.free(p);
 * }
 * }</pre>
 *
 * Programs using gomem must allow native access to gomem's modules (its JNI library below JDK
 * 25): {@code --enable-native-access=io.gomem,io.gomem.bindings} on the module path,
 * {@code --enable-native-access=ALL-UNNAMED} on the class path (JDK 17 and 21 accept the flag;
 * JDK 24+ warns without it).
 */
public sealed interface GoHeap extends RawHeap permits Malloc {
    // The one implementation, io.gomem.heap.Malloc, is final and holds the hot state (the P table,
    // the flat spans table) in its own fields: the JIT sees one implementor and calls it directly.

    /** A builder with the defaults: procs = available processors, sysUnused mode from {@code gomem.sysUnused}. */
    static Builder builder() {
        return new Builder();
    }
}
