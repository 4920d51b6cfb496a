package io.gomem.heap;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * The flat spans table: entry i is the span of page {@code flatBase + i * PAGE_SIZE}. It copies
 * the arenas' own tables ({@link MHeap}'s) for every page from the heap's first arena up to the
 * newest one within {@link #FLAT_MAX_PAGES} (pages of other heaps in between map to null), so
 * that a free finds its span with one subtraction, one shift and one load.
 *
 * <p>{@link MHeap} owns it and writes it; it is a superclass of {@link HeapCore} only so that the
 * free path reaches the table one load from the heap object it starts from (each dependent load
 * on that path costs about a nanosecond, measured).
 *
 * <h2>Guards</h2>
 * Entries are written under the heap lock with release stores (together with the arena's table)
 * and read lock-free with acquire loads. The table is grown by copying under the lock and
 * republished ({@link #flat} is volatile), so a reader that got an address from an allocation sees
 * its span in whichever table it reads. {@link #flatBase} is written once, under the lock, before
 * the first nonempty table is published.
 */
class SpanTable {
    static final VarHandle SPANS = MethodHandles.arrayElementVarHandle(MSpan[].class);
    /** The flat table covers at most 64 GiB above the first arena (32 MiB of references). */
    static final long FLAT_MAX_PAGES = 1L << 23;

    volatile MSpan[] flat = new MSpan[0];
    long flatBase;
}
