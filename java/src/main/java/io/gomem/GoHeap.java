package io.gomem;

import io.gomem.heap.HeapCore;
import io.gomem.os.OsMemory;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.SegmentAllocator;

/**
 * An off-heap memory manager built the way the Go runtime manages its heap: size classes, spans,
 * per-P caches, central span lists and a radix-tree page allocator over 64 MiB arenas, all on an
 * OS layer with Go's region state machine.
 *
 * <p>Two ways in:
 * <ul>
 *   <li><b>Raw addresses</b> — {@link #allocate(long)} / {@link #free(long)}: malloc-like, the
 *       memory is <em>not</em> zeroed, no Java object is created.</li>
 *   <li><b>Memory segments</b> — {@link #segments()}, a {@link SegmentAllocator}, and its
 *       {@link Segments#free(MemorySegment)}: the memory <em>is zeroed</em>,
 *       as Java code expects of a SegmentAllocator, and any power-of-two alignment is honoured.
 *       Segments are unbounded views with the global scope: they do not know when their memory is
 *       freed, so using one after {@code free} or {@link #close()} is a use-after-free, as in C.</li>
 * </ul>
 *
 * <p>Frees are legal from any thread. Bad input throws and changes nothing: a negative or
 * impossible size, an alignment that is not a power of two, a double free, an address this heap
 * never returned, an interior address, any use after {@link #close()}. {@link #close()} returns
 * every byte to the OS.
 *
 * <pre>{@code
 * try (GoHeap heap = GoHeap.builder().build()) {
 *     long p = heap.allocate(64);            // raw, not zeroed
 *     heap.free(p);
 *     GoHeap.Segments seg = heap.segments();
 *     MemorySegment s = seg.allocate(ValueLayout.JAVA_LONG, 10); // zeroed
 *     seg.free(s);
 * }
 * }</pre>
 *
 * Programs using gomem must allow native access: {@code --enable-native-access=io.gomem} on the
 * module path, {@code --enable-native-access=ALL-UNNAMED} on the class path.
 */
public final class GoHeap implements AutoCloseable {
    private final HeapCore core;
    private final Segments segments;

    private GoHeap(Builder b) {
        this.core = new HeapCore(new OsMemory(b.unusedMode), b.procs);
        this.segments = new Segments(this);
    }

    /** A builder with the defaults: procs = available processors, sysUnused mode from {@code gomem.sysUnused}. */
    public static Builder builder() {
        return new Builder();
    }

    /** Settings of a {@link GoHeap}. */
    public static final class Builder {
        private int procs = Runtime.getRuntime().availableProcessors();
        private OsMemory.UnusedMode unusedMode = new OsMemory().sysUnusedMode();

        private Builder() {
        }

        /**
         * How many per-P caches the heap keeps (Go's GOMAXPROCS): threads share them, so more
         * threads than this never means more caches. Default: available processors.
         */
        public Builder procs(int procs) {
            if (procs < 1 || procs > 4096) {
                throw new IllegalArgumentException("procs " + procs + " must be between 1 and 4096");
            }
            this.procs = procs;
            return this;
        }

        /** How freed pages go back to the OS: MADV_DONTNEED (default), MADV_FREE, or hard decommit. */
        public Builder sysUnusedMode(OsMemory.UnusedMode mode) {
            this.unusedMode = java.util.Objects.requireNonNull(mode, "mode");
            return this;
        }

        public GoHeap build() {
            return new GoHeap(this);
        }
    }

    /**
     * Allocates {@code size} bytes (0 to 64 TiB), not zeroed, aligned to 8 bytes at least (objects
     * under 16 bytes may share a 16-byte block, aligned to their size's largest power-of-two
     * factor, as with Go's tiny allocator). Returns the address. Use {@link #allocateAligned}
     * for more.
     */
    public long allocate(long size) {
        return core.allocateRaw(size);
    }

    /** Allocates {@code size} bytes aligned to {@code alignment} (a power of two), not zeroed. */
    public long allocateAligned(long size, long alignment) {
        HeapCoreChecks.check(size, alignment);
        return core.allocate(size, alignment, false);
    }

    /** Allocates {@code size} zeroed bytes. */
    public long allocateZeroed(long size) {
        return core.allocate(size, 1, true);
    }

    /** Frees what an allocate method returned. Any thread. */
    public void free(long address) {
        core.free(address);
    }

    /** This heap as a {@link SegmentAllocator}: zeroed segments, any power-of-two alignment. */
    public Segments segments() {
        return segments;
    }

    /**
     * The MemorySegment view of a {@link GoHeap}: every segment is zeroed and aligned as asked;
     * free it with {@link #free(MemorySegment)}. Thread-safe, like the heap.
     */
    public static final class Segments implements SegmentAllocator {
        private final GoHeap heap;

        private Segments(GoHeap heap) {
            this.heap = heap;
        }

        /**
         * A zeroed segment of {@code byteSize} bytes aligned to {@code byteAlignment} (a power of
         * two).
         */
        @Override
        public MemorySegment allocate(long byteSize, long byteAlignment) {
            HeapCoreChecks.check(byteSize, byteAlignment);
            long p = heap.core.allocate(byteSize, byteAlignment, true);
            return MemorySegment.ofAddress(p).reinterpret(byteSize);
        }

        /** Frees a segment this heap allocated (by its address). */
        public void free(MemorySegment segment) {
            heap.core.free(segment.address());
        }

        /** The heap behind this view. */
        public GoHeap heap() {
            return heap;
        }
    }

    /** The bytes usable at {@code address}, an object this heap returned (at least what was asked). */
    public long usableSize(long address) {
        return core.usableSize(address);
    }

    /** Returns every free page to the OS now (Go's {@code debug.FreeOSMemory}); the bytes released. */
    public long releaseMemory() {
        return core.releaseMemory();
    }

    /** Checks every component's invariants; throws IllegalStateException on the first violation. */
    public void checkInvariants() {
        core.checkInvariants();
    }

    /** The number of per-P caches. */
    public int procs() {
        return core.procs();
    }

    public boolean isClosed() {
        return core.isClosed();
    }

    /** Returns every byte to the OS; every later call fails with IllegalStateException. */
    @Override
    public void close() {
        core.close();
    }

    /** Package-private access for tests in io.gomem. */
    HeapCore core() {
        return core;
    }
}
