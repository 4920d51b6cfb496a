package io.gomem.heap;

import io.gomem.GoHeap;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * The JDK 25 part of a heap: what {@link GoHeap}'s segment and arena methods need and the heap
 * itself (the jar's JDK 17 part) cannot hold, attached to the {@link Malloc} at the first such
 * call ({@link Malloc#views}).
 *
 * <h2>What it owns</h2>
 * <ul>
 *   <li>{@link #scope}: the scope of every segment {@link GoHeap#segments()} and
 *       {@link GoHeap#segment(long)} make, a shared arena the heap closes before it unmaps its
 *       memory ({@link #closeScope}), so that an access through such a segment after close
 *       throws IllegalStateException (the JDK's promise for a segment whose memory is gone)
 *       instead of faulting. Closing a shared arena waits for every thread inside an access of
 *       it (a handshake), so no access is in flight when the memory goes.</li>
 *   <li>{@link #memory}: all of the address space in that scope; a heap segment is a slice of it
 *       (no allocation but the slice, no restricted call per segment).</li>
 *   <li>{@link #chunks}: the arenas' chunk cache and registry of open arenas ({@link UserArena}).</li>
 * </ul>
 *
 * <p>Guards: everything is final; {@link UserArena.Chunks} guards its own state. Made once per
 * heap under the heap's views lock; the heap's close holds that lock while it calls in.
 */
public final class HeapSegments implements Malloc.Views {
    private final Malloc heap;
    private final Arena scope = Arena.ofShared();
    @SuppressWarnings("restricted") // gomem is a native-access module: see the README
    private final MemorySegment memory = MemorySegment.NULL.reinterpret(Long.MAX_VALUE, scope, null);
    private final UserArena.Chunks chunks;

    private HeapSegments(Malloc heap) {
        this.heap = heap;
        this.chunks = new UserArena.Chunks(new ChunkSource(heap), heap.centrals.length);
    }

    /** The segments' and arenas' state of {@code heap}, attached at the first call. */
    public static HeapSegments of(GoHeap heap) {
        return (HeapSegments) ((Malloc) heap).views(HeapSegments::new);
    }

    /** All of memory in the heap's scope: {@link GoHeap.Segments} slices it. */
    public MemorySegment memory() {
        return memory;
    }

    /** The live object at {@code address} as a segment in the heap's scope. */
    public MemorySegment segment(long address) {
        return memory.asSlice(address, heap.usableSize(address)); // usableSize refuses anything but a live object's start
    }

    public Arena ofConfined() {
        return chunks.open(false);
    }

    public Arena ofShared() {
        return chunks.open(true);
    }

    @Override
    public void closeArenas() {
        chunks.closeAll();
    }

    @Override
    public void reopenArenas() {
        chunks.reopen();
    }

    @Override
    public void closeScope() {
        scope.close();
    }

    @Override
    public void releaseCached() {
        chunks.releaseCached();
    }

    @Override
    public void trim() {
        chunks.trim();
    }

    @Override
    public long[] arenaFigures() {
        return chunks.figures();
    }

    /** The arenas' way to the heap's chunk calls (a separate object: no half-built {@code this} escapes). */
    private static final class ChunkSource implements UserArena.Source {
        private final Malloc heap;

        ChunkSource(Malloc heap) {
            this.heap = heap;
        }

        @Override
        public MSpan allocChunk(long bytes, long align) {
            return heap.allocChunk(bytes, align);
        }

        @Override
        public void freeChunk(MSpan s) {
            heap.freeChunk(s);
        }

        @Override
        public void faultChunk(MSpan s) {
            heap.faultChunk(s);
        }
    }
}
