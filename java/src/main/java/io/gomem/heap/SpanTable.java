package io.gomem.heap;

/**
 * A reader of the heap's flat spans table ({@link MHeap#publishSpansTo}): the heap's entry point
 * keeps the table and its base in its own fields, so that a free finds its span one load from
 * the object it starts from (each dependent load on that path costs about a nanosecond,
 * measured). {@link MHeap} calls {@link #publishSpans} under the heap lock whenever the table is
 * replaced (grown, or emptied at close); the entries themselves are written into the shared
 * array with release stores and read with acquire loads.
 */
interface SpanTable {
    /**
     * The table is now {@code flat}: entry i is the span of page {@code flatBase + i * 8 KiB}.
     * Implementations store {@code flatBase} first and then {@code flat} with a release (volatile)
     * store, so a reader that sees the table sees its base.
     */
    void publishSpans(MSpan[] flat, long flatBase);

    /** No reader. */
    SpanTable NONE = (flat, base) -> { };
}
