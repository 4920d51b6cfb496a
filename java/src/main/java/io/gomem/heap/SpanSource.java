package io.gomem.heap;

/**
 * Where an {@link MCentral} gets new spans and returns empty ones: the {@link MHeap} in
 * production, a table of fake spans in tests (so that MCentral is testable without a syscall).
 */
interface SpanSource {
    /** A new span of {@code npages} pages for {@code spanClass} (of size class {@code sizeClass}), Ready. */
    MSpan allocSmallSpan(int spanClass, int sizeClass, int npages);

    /**
     * Takes back a span with no live object. Makes a system call (with the heap lock dropped) only
     * if the span has released OS pages ({@link MSpan#releasedMask}): call it holding no central
     * lock then.
     */
    void freeSpan(MSpan s);

    /**
     * Returns the OS pages in {@code mask} of an in-use span no cache holds to the OS (heap lock
     * taken inside, dropped for the system calls). The caller holds the span out of every set
     * and holds no central lock.
     */
    void releaseSpanPages(MSpan s, long mask);

    /**
     * Makes every released OS page of the span Ready again, before it is used (heap lock taken
     * inside, dropped for the system calls). The caller holds no central lock.
     */
    void reuseSpanPages(MSpan s);
}
