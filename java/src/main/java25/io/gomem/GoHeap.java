package io.gomem;

import io.gomem.heap.HeapSegments;
import io.gomem.heap.Malloc;
import io.gomem.os.MemoryLimitExceededError;
import io.gomem.os.OutOfNativeMemoryError;
import io.gomem.stats.MemStats;

import java.lang.foreign.AddressLayout;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SegmentAllocator;
import java.lang.foreign.ValueLayout;
import java.nio.charset.Charset;
import java.util.function.Function;

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
 *       Segments have the heap's scope: after {@link #close()} every access through one throws
 *       IllegalStateException and {@code scope().isAlive()} is false, as for a closed
 *       {@code Arena}'s segments. Using a segment after {@code free} of that segment is a
 *       use-after-free, as in C (no scope per object at this price).</li>
 *   <li><b>Arenas</b> — {@link #ofConfined()}, {@link #ofShared()}: {@link Arena}s that behave as
 *       the JDK's {@code Arena.ofConfined()} and {@code Arena.ofShared()} (confinement, zeroed
 *       memory, every segment dead after {@code close()}), with Go's user arenas underneath:
 *       bump allocation in chunks of this heap, all given back at once on close. Fully
 *       memory-safe: there is no per-object free to get wrong.</li>
 * </ul>
 *
 * <p>The methods of raw addresses, scopes, statistics and close are {@link RawHeap}'s, the part
 * every JDK from 17 has; this JDK 25 part of the jar adds segments and arenas.
 *
 * <p>Frees are legal from any thread. Bad input throws and changes nothing: a negative or
 * impossible size, an alignment that is not a power of two, a double free, an address this heap
 * never returned, an interior address, any use after {@link #close()}. {@link #close()} returns
 * every byte to the OS.
 *
 * <p>Running out of memory throws an {@link OutOfMemoryError}, and the heap stays usable for what
 * fits: {@link OutOfNativeMemoryError} when the kernel refuses memory (ENOMEM: an address-space
 * limit, the overcommit policy), its subclass {@link MemoryLimitExceededError} when the allocation
 * would pass the {@linkplain Builder#hardMemoryLimit hard memory limit}. Other failed system calls
 * throw {@link io.gomem.os.OsMemoryException}.
 *
 * <pre>{@code
 * try (GoHeap heap = GoHeap.builder().build()) {
 *     long p = heap.allocate(64);            // raw, not zeroed
 *     heap.free(p);
 *     GoHeap.Segments seg = heap.segments();
 *     MemorySegment s = seg.allocate(ValueLayout.JAVA_LONG, 10); // zeroed
 *     seg.free(s);
 *     try (Arena arena = heap.ofConfined()) {
 *         MemorySegment r = arena.allocate(ValueLayout.JAVA_INT, 100); // zeroed, freed with the arena
 *     }
 * }
 * }</pre>
 *
 * Programs using gomem must allow native access to gomem's two modules:
 * {@code --enable-native-access=io.gomem,io.gomem.bindings} on the module path,
 * {@code --enable-native-access=ALL-UNNAMED} on the class path. The program's own module needs
 * none: gomem hands out segments ({@link #segments()}, {@link #segment(long)}, the arenas), so
 * it never has to call a restricted method such as {@code MemorySegment.reinterpret} itself.
 */
public sealed interface GoHeap extends RawHeap permits Malloc {
    // The one implementation, io.gomem.heap.Malloc, is final and holds the hot state (the P table,
    // the flat spans table) in its own fields: the JIT sees one implementor and calls it directly.

    /** A builder with the defaults: procs = available processors, sysUnused mode from {@code gomem.sysUnused}. */
    static Builder builder() {
        return new Builder();
    }

    /**
     * A segment over the live object at {@code address} (what an allocate method returned), of
     * its {@linkplain #usableSize usable size}, in the heap's scope (dead after {@link #close()}).
     * Lets a program read and write raw allocations without native access of its own: no
     * {@code reinterpret} needed. Using it after the object's {@code free} is a use-after-free,
     * as with the address.
     *
     * @throws IllegalArgumentException if {@code address} is not a live object's start
     */
    default MemorySegment segment(long address) {
        return HeapSegments.of(this).segment(address);
    }

    /**
     * A new confined arena over this heap: a drop-in for {@code Arena.ofConfined()}. Only the
     * calling thread may allocate, access its segments and close it (WrongThreadException
     * otherwise); its segments are zeroed, aligned to any power of two, and after {@code close()}
     * every access throws IllegalStateException. Underneath (Go's user arenas): objects are
     * bump-allocated in chunks of this heap (64 KiB first, doubling up to 8 MiB; an object over
     * 2 MiB or aligned over 8 KiB gets a span of its own), and close gives every chunk back at
     * once, to a cache the next arenas take from first. Shown in {@link MemStats} as
     * {@code arenaInuse} and {@code arenaCached}.
     *
     * <p>The heap's {@link #close()} is refused while a confined arena of a live thread is open.
     *
     * @throws IllegalStateException if the heap is closed
     */
    default Arena ofConfined() {
        return HeapSegments.of(this).ofConfined();
    }

    /**
     * A new shared arena over this heap: a drop-in for {@code Arena.ofShared()}. Any thread may
     * allocate, access and close it; close waits, as the JDK's does, until no thread is inside an
     * access of its segments (a handshake with every thread), then gives its chunks back. The
     * heap's {@link #close()} closes open shared arenas itself.
     *
     * @throws IllegalStateException if the heap is closed
     */
    default Arena ofShared() {
        return HeapSegments.of(this).ofShared();
    }

    /** This heap as a {@link SegmentAllocator}: zeroed segments, any power-of-two alignment. */
    default Segments segments() {
        return new Segments(this);
    }

    /**
     * The MemorySegment view of a {@link GoHeap}: every segment is zeroed and aligned as asked;
     * free it with {@link #free(MemorySegment)}. Thread-safe, like the heap.
     *
     * <p>Every method either returns a segment or leaves the heap as it was: when one of
     * SegmentAllocator's {@code allocateFrom} methods fails after allocating (a source of another
     * element size, misaligned or too short, a source whose arena is closed or confined to another
     * thread, a heap segment stored as an address, ...), the block is freed again and the JDK's
     * exception is thrown as it was.
     */
    final class Segments implements SegmentAllocator {
        private final GoHeap heap;
        /** All of the address space in the heap's scope (closed with the heap): segments are slices of it. */
        private final MemorySegment memory;

        private Segments(GoHeap heap) {
            this.heap = heap;
            this.memory = HeapSegments.of(heap).memory();
        }

        /**
         * A zeroed segment of {@code byteSize} bytes aligned to {@code byteAlignment} (a power of
         * two).
         */
        @Override
        public MemorySegment allocate(long byteSize, long byteAlignment) {
            long p = heap.allocateZeroed(byteSize, byteAlignment);
            return memory.asSlice(p, byteSize); // one segment object in the heap's scope, no caller-sensitive reinterpret
        }

        /**
         * Frees the block of a segment this heap allocated: the block at {@code segment.address()}.
         * Any thread.
         *
         * <p>Checked, with nothing freed when a check fails: the segment is native (else
         * IllegalArgumentException); its address is the start of a live block of this heap (as
         * {@link GoHeap#free(long)} checks: not an interior address, not a double free, not after
         * close); its {@code byteSize()} is at most the block's {@link GoHeap#usableSize usable
         * size} (else IllegalArgumentException: a segment longer than its block, such as one over
         * two adjacent blocks, is not one this heap returned).
         *
         * <p>Not checked, because a segment does not say where it came from: that it is the very
         * segment {@code allocate} returned. A shorter slice at offset 0 looks the same, and
         * freeing it frees the whole block; so does any segment of the right address and a size
         * that fits, whatever made it.
         */
        public void free(MemorySegment segment) {
            if (!segment.isNative()) {
                throw new IllegalArgumentException("free of " + segment + ": a heap segment (over a Java array or"
                        + " buffer) is never one this heap returned");
            }
            heap.free(segment.address(), segment.byteSize());
        }

        // ── SegmentAllocator's default methods, made all-or-nothing ──
        //
        // The JDK's defaults allocate first and then copy or check (sizes, alignment, bounds, the
        // source's scope and thread, a heap segment stored as an address): when that throws, the
        // block they allocated is lost. Each override below runs the JDK's own default against a
        // Recorder, which allocates from this heap and remembers what it handed out, and frees
        // that again if the default throws: the JDK's argument checks and results are kept exactly.
        // allocate(long), allocate(MemoryLayout) and allocate(MemoryLayout, long) only allocate
        // (their checks come first), so they need no guard.

        @Override
        public MemorySegment allocateFrom(String str) {
            return guarded(a -> a.allocateFrom(str));
        }

        @Override
        public MemorySegment allocateFrom(String str, Charset charset) {
            return guarded(a -> a.allocateFrom(str, charset));
        }

        @Override
        public MemorySegment allocateFrom(ValueLayout.OfByte layout, byte value) {
            return guarded(a -> a.allocateFrom(layout, value));
        }

        @Override
        public MemorySegment allocateFrom(ValueLayout.OfChar layout, char value) {
            return guarded(a -> a.allocateFrom(layout, value));
        }

        @Override
        public MemorySegment allocateFrom(ValueLayout.OfShort layout, short value) {
            return guarded(a -> a.allocateFrom(layout, value));
        }

        @Override
        public MemorySegment allocateFrom(ValueLayout.OfInt layout, int value) {
            return guarded(a -> a.allocateFrom(layout, value));
        }

        @Override
        public MemorySegment allocateFrom(ValueLayout.OfFloat layout, float value) {
            return guarded(a -> a.allocateFrom(layout, value));
        }

        @Override
        public MemorySegment allocateFrom(ValueLayout.OfLong layout, long value) {
            return guarded(a -> a.allocateFrom(layout, value));
        }

        @Override
        public MemorySegment allocateFrom(ValueLayout.OfDouble layout, double value) {
            return guarded(a -> a.allocateFrom(layout, value));
        }

        @Override
        public MemorySegment allocateFrom(AddressLayout layout, MemorySegment value) {
            return guarded(a -> a.allocateFrom(layout, value));
        }

        @Override
        public MemorySegment allocateFrom(ValueLayout elementLayout, MemorySegment source, ValueLayout sourceElementLayout,
                                          long sourceOffset, long elementCount) {
            return guarded(a -> a.allocateFrom(elementLayout, source, sourceElementLayout, sourceOffset, elementCount));
        }

        @Override
        public MemorySegment allocateFrom(ValueLayout.OfByte elementLayout, byte... elements) {
            return guarded(a -> a.allocateFrom(elementLayout, elements));
        }

        @Override
        public MemorySegment allocateFrom(ValueLayout.OfShort elementLayout, short... elements) {
            return guarded(a -> a.allocateFrom(elementLayout, elements));
        }

        @Override
        public MemorySegment allocateFrom(ValueLayout.OfChar elementLayout, char... elements) {
            return guarded(a -> a.allocateFrom(elementLayout, elements));
        }

        @Override
        public MemorySegment allocateFrom(ValueLayout.OfInt elementLayout, int... elements) {
            return guarded(a -> a.allocateFrom(elementLayout, elements));
        }

        @Override
        public MemorySegment allocateFrom(ValueLayout.OfFloat elementLayout, float... elements) {
            return guarded(a -> a.allocateFrom(elementLayout, elements));
        }

        @Override
        public MemorySegment allocateFrom(ValueLayout.OfLong elementLayout, long... elements) {
            return guarded(a -> a.allocateFrom(elementLayout, elements));
        }

        @Override
        public MemorySegment allocateFrom(ValueLayout.OfDouble elementLayout, double... elements) {
            return guarded(a -> a.allocateFrom(elementLayout, elements));
        }

        /**
         * Runs a SegmentAllocator default against a {@link Recorder} over this heap; if it throws,
         * frees what it allocated (a failure to free is added as suppressed) and rethrows.
         */
        private MemorySegment guarded(Function<SegmentAllocator, MemorySegment> body) {
            Recorder r = new Recorder(this);
            try {
                return body.apply(r);
            } catch (Throwable t) {
                r.freeAll(t);
                throw t;
            }
        }

        /** A one-call allocator: allocates from the heap and remembers every segment it returned. */
        private static final class Recorder implements SegmentAllocator {
            private final Segments target;
            private MemorySegment first; // the JDK's defaults allocate once
            private java.util.List<MemorySegment> more;

            Recorder(Segments target) {
                this.target = target;
            }

            @Override
            public MemorySegment allocate(long byteSize, long byteAlignment) {
                MemorySegment s = target.allocate(byteSize, byteAlignment);
                if (first == null) {
                    first = s;
                } else {
                    if (more == null) {
                        more = new java.util.ArrayList<>();
                    }
                    more.add(s);
                }
                return s;
            }

            void freeAll(Throwable failure) {
                if (first != null) {
                    free(first, failure);
                }
                if (more != null) {
                    for (MemorySegment s : more) {
                        free(s, failure);
                    }
                }
            }

            private void free(MemorySegment s, Throwable failure) {
                try {
                    target.free(s);
                } catch (Throwable t) {
                    failure.addSuppressed(t);
                }
            }
        }

        /** The heap behind this view. */
        public GoHeap heap() {
            return heap;
        }
    }
}
