package io.gomem.heap;

/**
 * Packed summary of a run of pages: {@code (start, max, end)} free-run lengths in one {@code long}.
 *
 * <ul>
 *   <li>{@code start}: free pages at the low end of the run, counted upward from its first page;
 *   <li>{@code max}: the longest free run anywhere in it;
 *   <li>{@code end}: free pages at the high end, counted downward from its last page.
 * </ul>
 *
 * <p>Layout (Go's {@code pallocSum}): three 21-bit fields, each in {@code [0, 2^21)}.
 *
 * <pre>
 *  63  62        42 41        21 20         0
 * +---+------------+------------+------------+
 * | A |    end     |    max     |   start    |
 * +---+------------+------------+------------+
 * </pre>
 *
 * <p>A summary of a whole root-level entry (16 GiB = 2^21 pages) that is entirely free needs the
 * value 2^21 in all three fields, which does not fit in 21 bits. That one case is encoded as bit
 * 63 ("A", all-max) alone; it is the only way a field can equal {@link #MAX_PACKED}, and it can
 * only mean "all three are 2^21" (if {@code max} is 2^21 the whole entry is free, so start and end
 * are 2^21 too).
 *
 * <p>The value 0 means "no free page at all" and is what every summary of address space that was
 * never grown reads as, so runs never join across holes in the address space.
 *
 * <p>Stateless; all methods are pure functions.
 */
final class PallocSum {

    /** log2 of the largest value a field can hold: leaf level (9) + 4 levels of 3 bits. */
    static final int LOG_MAX_PACKED = PageAlloc.CHUNK_PAGES_LOG + (PageAlloc.LEVELS - 1) * 3;

    /** Largest value any field can take (only through the all-max encoding). */
    static final long MAX_PACKED = 1L << LOG_MAX_PACKED;

    private static final long FIELD_MASK = MAX_PACKED - 1;
    private static final long ALL_MAX = 1L << 63;

    /** Summary of one completely free chunk: (512, 512, 512). */
    static final long FREE_CHUNK = pack(PageAlloc.CHUNK_PAGES, PageAlloc.CHUNK_PAGES, PageAlloc.CHUNK_PAGES);

    private PallocSum() {}

    /**
     * Packs three counts. Each must be in {@code [0, MAX_PACKED]}; {@code MAX_PACKED} is accepted
     * only for {@code max}, and then stands for all three.
     */
    static long pack(long start, long max, long end) {
        if (max == MAX_PACKED) {
            return ALL_MAX;
        }
        assert start >= 0 && start < MAX_PACKED && max >= 0 && max < MAX_PACKED
                && end >= 0 && end < MAX_PACKED && start <= max && end <= max
                : "bad summary fields " + start + ", " + max + ", " + end;
        return start | (max << LOG_MAX_PACKED) | (end << (2 * LOG_MAX_PACKED));
    }

    static long start(long sum) {
        return sum < 0 ? MAX_PACKED : sum & FIELD_MASK;
    }

    static long max(long sum) {
        return sum < 0 ? MAX_PACKED : (sum >>> LOG_MAX_PACKED) & FIELD_MASK;
    }

    static long end(long sum) {
        return sum < 0 ? MAX_PACKED : (sum >>> (2 * LOG_MAX_PACKED)) & FIELD_MASK;
    }

    /**
     * Merges {@code n} summaries {@code sums[off .. off+n)} of consecutive, equally sized runs of
     * {@code 2^logPagesPerSum} pages each (the children of one tree node) into the summary of the
     * whole.
     *
     * <p>Walks left to right keeping the summary of the prefix merged so far: the prefix's start
     * grows only while the prefix is entirely free; its max can be beaten by the run that straddles
     * the boundary (prefix end + child start) or by the child's own max; its end is extended by a
     * child that is entirely free, and otherwise replaced by the child's end.
     */
    static long merge(long[] sums, int off, int n, int logPagesPerSum) {
        long childPages = 1L << logPagesPerSum;
        long first = sums[off];
        long start = start(first);
        long max = max(first);
        long end = end(first);
        for (int i = 1; i < n; i++) {
            long s = sums[off + i];
            long cs = start(s);
            long cm = max(s);
            long ce = end(s);
            if (start == (long) i << logPagesPerSum) {
                start += cs;
            }
            max = Math.max(max, Math.max(end + cs, cm));
            end = ce == childPages ? end + childPages : ce;
        }
        return pack(start, max, end);
    }

    /** Human-readable form for messages: {@code (start, max, end)}. */
    static String toString(long sum) {
        return "(" + start(sum) + ", " + max(sum) + ", " + end(sum) + ")";
    }
}
