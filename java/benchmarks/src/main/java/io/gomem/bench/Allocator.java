package io.gomem.bench;

import io.gomem.GoHeap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import java.util.Arrays;

/**
 * The allocators the workload benchmarks ({@link BatchBench}, {@link CrossThreadBench},
 * {@link MixBench}) and {@link Footprint} compare, behind one small interface so every workload
 * is written once and run per allocator with {@code @Param("allocator")}.
 *
 * <p>Each implementation is its own final class with its downcall handles in
 * {@code static final} fields, so the JIT treats them as constants exactly as in the pair
 * benchmarks ({@link MallocBench}, ...). {@link #create} instantiates only the one asked for; JMH
 * runs every {@code @Param} value in its own fork, so a call site sees a single receiver class and
 * is inlined (a monomorphic guard of a compare and a branch).
 *
 * <p>Names ({@link #create}):
 * <ul>
 *   <li>{@code gomem}: {@link GoHeap#allocate(long)} / {@link GoHeap#free(long)}, the raw API (not
 *       zeroed), on one heap with the default settings;</li>
 *   <li>{@code gomemLocal}: the same heap, each benchmark thread in a {@link GoHeap#local()}
 *       scope of its own ({@link #forThread()}), as jemalloc gives each thread its cache;</li>
 *   <li>{@code malloc}, {@code mallocCritical}: glibc through plain / {@code critical(false)}
 *       handles ({@link Glibc});</li>
 *   <li>{@code jemalloc}, {@code jemallocCritical}: the same into {@code libjemalloc2}
 *       ({@link Jemalloc});</li>
 *   <li>{@code unsafe}: {@code sun.misc.Unsafe.allocateMemory} / {@code freeMemory}
 *       ({@link UnsafeMemory}; the fork needs {@code --sun-misc-unsafe-memory-access=allow});</li>
 *   <li>{@code nettyPooled}: {@code PooledByteBufAllocator.DEFAULT.directBuffer(size)} /
 *       {@code release()}. A ByteBuf is an object, not an address, so the "address" this returns
 *       is a handle into a table of ByteBufs kept by the adapter (a few ns of bookkeeping, single
 *       threaded: {@link #threadSafe()} is false and the multi-threaded workloads refuse it).</li>
 * </ul>
 * Every allocation of every implementation returns a nonzero value.
 */
interface Allocator extends AutoCloseable {

    /** Allocates {@code size} bytes (not zeroed); returns the address (a handle for {@code nettyPooled}), never 0. */
    long allocate(long size);

    /** Frees what {@link #allocate} returned. */
    void free(long address);

    /** Whether {@link #allocate} returns addresses (false: handles that cannot be dereferenced). */
    default boolean addresses() {
        return true;
    }

    /** Whether {@link #allocate} and {@link #free} may be called from any thread. */
    default boolean threadSafe() {
        return true;
    }

    /**
     * What one benchmark thread calls, from that thread (its setup), closed by it at its
     * teardown: this allocator itself, or (gomemLocal) a scope holding a P for the thread.
     */
    default Allocator forThread() {
        return this;
    }

    /** Releases what the allocator holds for this instance (gomem: closes the heap). */
    @Override
    default void close() {
    }

    /** The allocator called {@code name} (see the class comment), checked with one allocate/free of 64 bytes. */
    static Allocator create(String name) throws Throwable {
        Allocator a = switch (name) {
            case "gomem" -> new GoMem(GoHeap.builder().build(), false);
            case "gomemLocal" -> new GoMem(GoHeap.builder().build(), true);
            case "malloc" -> {
                Glibc.PLAIN.checkUsable(Glibc.FIX);
                yield new Malloc();
            }
            case "mallocCritical" -> {
                Glibc.CRITICAL.checkUsable(Glibc.FIX);
                yield new MallocCritical();
            }
            case "jemalloc" -> {
                Jemalloc.check();
                yield new JemallocPlain();
            }
            case "jemallocCritical" -> {
                Jemalloc.check();
                yield new JemallocCritical();
            }
            case "unsafe" -> {
                UnsafeMemory.check();
                yield new UnsafeAllocator();
            }
            case "nettyPooled" -> new NettyPooled();
            default -> throw new IllegalArgumentException("unknown allocator '" + name
                    + "': gomem, gomemLocal, malloc, mallocCritical, jemalloc, jemallocCritical, unsafe, nettyPooled");
        };
        long p = a.allocate(64);
        if (p == 0) {
            throw new IllegalStateException(name + ": allocate(64) returned 0");
        }
        a.free(p);
        return a;
    }

    /** Rethrows what a downcall threw (malloc and free throw nothing; this keeps the interface unchecked). */
    static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException r) {
            throw r;
        }
        if (t instanceof Error e) {
            throw e;
        }
        throw new IllegalStateException(t);
    }

    /** gomem's raw API on one heap; with {@code scoped} ({@code gomemLocal}), each thread through a scope of its own. */
    final class GoMem implements Allocator {
        final GoHeap heap;
        final boolean scoped;

        GoMem(GoHeap heap, boolean scoped) {
            this.heap = heap;
            this.scoped = scoped;
        }

        @Override
        public Allocator forThread() {
            return scoped ? new Scope(heap.local()) : this;
        }

        /** One thread's scope; frees of blocks another thread sent go through it too (any object of the heap). */
        static final class Scope implements Allocator {
            final GoHeap.Local local;

            Scope(GoHeap.Local local) {
                this.local = local;
            }

            @Override
            public long allocate(long size) {
                return local.allocate(size);
            }

            @Override
            public void free(long address) {
                local.free(address);
            }

            @Override
            public void close() {
                local.close();
            }
        }

        @Override
        public long allocate(long size) {
            return heap.allocate(size);
        }

        @Override
        public void free(long address) {
            heap.free(address);
        }

        @Override
        public void close() {
            heap.close();
        }
    }

    final class Malloc implements Allocator {
        @Override
        public long allocate(long size) {
            try {
                return (long) Glibc.PLAIN.malloc().invokeExact(size);
            } catch (Throwable t) {
                throw rethrow(t);
            }
        }

        @Override
        public void free(long address) {
            try {
                Glibc.PLAIN.free().invokeExact(address);
            } catch (Throwable t) {
                throw rethrow(t);
            }
        }
    }

    final class MallocCritical implements Allocator {
        @Override
        public long allocate(long size) {
            try {
                return (long) Glibc.CRITICAL.malloc().invokeExact(size);
            } catch (Throwable t) {
                throw rethrow(t);
            }
        }

        @Override
        public void free(long address) {
            try {
                Glibc.CRITICAL.free().invokeExact(address);
            } catch (Throwable t) {
                throw rethrow(t);
            }
        }
    }

    final class JemallocPlain implements Allocator {
        @Override
        public long allocate(long size) {
            try {
                return (long) Jemalloc.PLAIN.malloc().invokeExact(size);
            } catch (Throwable t) {
                throw rethrow(t);
            }
        }

        @Override
        public void free(long address) {
            try {
                Jemalloc.PLAIN.free().invokeExact(address);
            } catch (Throwable t) {
                throw rethrow(t);
            }
        }
    }

    final class JemallocCritical implements Allocator {
        @Override
        public long allocate(long size) {
            try {
                return (long) Jemalloc.CRITICAL.malloc().invokeExact(size);
            } catch (Throwable t) {
                throw rethrow(t);
            }
        }

        @Override
        public void free(long address) {
            try {
                Jemalloc.CRITICAL.free().invokeExact(address);
            } catch (Throwable t) {
                throw rethrow(t);
            }
        }
    }

    final class UnsafeAllocator implements Allocator {
        @Override
        public long allocate(long size) {
            try {
                return (long) UnsafeMemory.ALLOCATE.invokeExact(size);
            } catch (Throwable t) {
                throw rethrow(t);
            }
        }

        @Override
        public void free(long address) {
            try {
                UnsafeMemory.FREE.invokeExact(address);
            } catch (Throwable t) {
                throw rethrow(t);
            }
        }
    }

    /**
     * Netty's default pooled allocator (no thread cache for non-event-loop threads, as
     * {@code NettyBench.pooled}); handles are 1 + an index into a table of live ByteBufs, with a
     * stack of free indices. Single-threaded.
     */
    final class NettyPooled implements Allocator {
        private ByteBuf[] bufs = new ByteBuf[1024];
        private int[] freeIndices = new int[1024];
        private int freeCount;
        private int used;

        @Override
        public long allocate(long size) {
            int i;
            if (freeCount > 0) {
                i = freeIndices[--freeCount];
            } else {
                if (used == bufs.length) {
                    bufs = Arrays.copyOf(bufs, used * 2);
                    freeIndices = Arrays.copyOf(freeIndices, used * 2);
                }
                i = used++;
            }
            bufs[i] = PooledByteBufAllocator.DEFAULT.directBuffer((int) size);
            return i + 1;
        }

        @Override
        public void free(long handle) {
            int i = (int) handle - 1;
            bufs[i].release();
            bufs[i] = null;
            freeIndices[freeCount++] = i;
        }

        @Override
        public boolean addresses() {
            return false;
        }

        @Override
        public boolean threadSafe() {
            return false;
        }
    }
}
