package io.gomem.heap;

/**
 * Where an {@link MCentral} gets new spans and returns empty ones: the {@link MHeap} in
 * production, a table of fake spans in tests (so that MCentral is testable without a syscall).
 */
interface SpanSource {
    /** A new span of {@code npages} pages for {@code spanClass} (of size class {@code sizeClass}), Ready. */
    MSpan allocSmallSpan(int spanClass, int sizeClass, int npages);

    /** Takes back a span with no live object. */
    void freeSpan(MSpan s);
}
