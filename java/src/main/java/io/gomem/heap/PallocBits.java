package io.gomem.heap;

/**
 * Operations on one chunk's 512-bit page bitmap, stored as {@link #WORDS} consecutive
 * {@code long}s at {@code a[off .. off+8)}; bit {@code i} is page {@code i} of the chunk, bit
 * {@code i % 64} of word {@code i / 64}.
 *
 * <p>{@link PageAlloc} keeps two such bitmaps per chunk side by side: the allocation bitmap
 * (1 = in use, 0 = free; Go's {@code pallocBits}) and the scavenged bitmap (1 = released to the
 * OS; Go's {@code pallocData.scavenged}). The search and summary functions read the allocation
 * bitmap; the range functions work on either.
 *
 * <p>Stateless; callers own the arrays and guard them.
 */
final class PallocBits {

    /** Words per bitmap: 512 pages / 64. */
    static final int WORDS = PageAlloc.CHUNK_PAGES / 64;

    private PallocBits() {}

    /** Sets bits {@code [i, i+n)}, {@code n >= 1}. */
    static void setRange(long[] a, int off, int i, int n) {
        int j = i + n - 1;
        int wi = i >>> 6;
        int wj = j >>> 6;
        if (wi == wj) {
            a[off + wi] |= mask(i & 63, n);
            return;
        }
        a[off + wi] |= -1L << (i & 63);
        for (int w = wi + 1; w < wj; w++) {
            a[off + w] = -1L;
        }
        a[off + wj] |= -1L >>> (63 - (j & 63));
    }

    /** Clears bits {@code [i, i+n)}, {@code n >= 1}. */
    static void clearRange(long[] a, int off, int i, int n) {
        int j = i + n - 1;
        int wi = i >>> 6;
        int wj = j >>> 6;
        if (wi == wj) {
            a[off + wi] &= ~mask(i & 63, n);
            return;
        }
        a[off + wi] &= ~(-1L << (i & 63));
        for (int w = wi + 1; w < wj; w++) {
            a[off + w] = 0;
        }
        a[off + wj] &= ~(-1L >>> (63 - (j & 63)));
    }

    /** Number of set bits in {@code [i, i+n)}, {@code n >= 1}. */
    static int popcountRange(long[] a, int off, int i, int n) {
        int j = i + n - 1;
        int wi = i >>> 6;
        int wj = j >>> 6;
        if (wi == wj) {
            return Long.bitCount(a[off + wi] & mask(i & 63, n));
        }
        int c = Long.bitCount(a[off + wi] & (-1L << (i & 63)));
        for (int w = wi + 1; w < wj; w++) {
            c += Long.bitCount(a[off + w]);
        }
        return c + Long.bitCount(a[off + wj] & (-1L >>> (63 - (j & 63))));
    }

    /** Number of set bits in the whole bitmap. */
    static int popcount(long[] a, int off) {
        int c = 0;
        for (int w = 0; w < WORDS; w++) {
            c += Long.bitCount(a[off + w]);
        }
        return c;
    }

    /** {@code n} ones starting at bit {@code shift}; {@code shift + n <= 64}, {@code n >= 1}. */
    static long mask(int shift, int n) {
        return (-1L >>> (64 - n)) << shift;
    }

    /**
     * Summarises an allocation bitmap as {@code (start, max, end)} free-run lengths.
     *
     * <p>One pass over the words: a word that is all free extends the current run by 64; otherwise
     * its trailing free bits close the current run (the first closed run is {@code start}), the free
     * runs strictly inside it are measured one at a time, and its leading free bits open the next
     * run. Whatever run is open at the end is {@code end}.
     */
    static long summarize(long[] a, int off) {
        long start = -1;
        long max = 0;
        long cur = 0;
        for (int w = 0; w < WORDS; w++) {
            long x = a[off + w];
            if (x == 0) {
                cur += 64;
                continue;
            }
            int tz = Long.numberOfTrailingZeros(x);
            cur += tz;
            if (start < 0) {
                start = cur;
            }
            max = Math.max(max, cur);
            max = Math.max(max, longestInteriorRun(x >>> tz));
            cur = Long.numberOfLeadingZeros(x);
        }
        if (start < 0) {
            return PallocSum.FREE_CHUNK;
        }
        max = Math.max(max, cur);
        return PallocSum.pack(start, max, cur);
    }

    /**
     * Longest run of 0 bits in {@code y} that lies below its highest 1 bit; bit 0 of {@code y}
     * must be 1.
     */
    private static int longestInteriorRun(long y) {
        int best = 0;
        while (y != -1L) {
            y >>>= Long.numberOfTrailingZeros(~y); // drop the ones; < 64 because y != -1
            if (y == 0) {
                break; // only the leading zeros were left: that is the next run, not interior
            }
            int zeros = Long.numberOfTrailingZeros(y);
            best = Math.max(best, zeros);
            y >>>= zeros;
        }
        return best;
    }

    /**
     * Index of the first bit of the lowest run of {@code n} consecutive 1 bits in {@code c}, or
     * 64 if there is none; {@code 1 <= n <= 64}.
     *
     * <p>Each step ANDs {@code c} with itself shifted down, so that bit {@code i} stays set only if
     * the run starting at {@code i} is long enough; the covered length doubles per step.
     */
    static int findBitRange64(long c, int n) {
        long p = c;
        int covered = 1;
        while (covered < n && p != 0) {
            int step = Math.min(covered, n - covered);
            p &= p >>> step;
            covered += step;
        }
        return Long.numberOfTrailingZeros(p);
    }

    /**
     * First-fit search of an allocation bitmap: index of the lowest page of the first run of
     * {@code npages} free pages that starts at or above {@code from}, or -1 if none;
     * {@code 1 <= npages <= 512}.
     */
    static int find(long[] a, int off, int npages, int from) {
        int runStart = 0;
        int runLen = 0;
        for (int w = from >>> 6; w < WORDS; w++) {
            long x = a[off + w];
            if (w == from >>> 6) {
                x |= ~(-1L << (from & 63)); // pages below 'from' count as in use
            }
            if (x == -1L) {
                runLen = 0;
                continue;
            }
            if (x == 0) {
                if (runLen == 0) {
                    runStart = w << 6;
                }
                runLen += 64;
                if (runLen >= npages) {
                    return runStart;
                }
                continue;
            }
            int tz = Long.numberOfTrailingZeros(x);
            if (runLen + tz >= npages) {
                return runLen == 0 ? w << 6 : runStart;
            }
            if (npages <= 64) {
                int j = findBitRange64(~x, npages);
                if (j < 64) {
                    return (w << 6) + j;
                }
            }
            runLen = Long.numberOfLeadingZeros(x);
            runStart = (w << 6) + 64 - runLen;
        }
        return -1;
    }

    /** Index of the first free page at or above {@code from}, or -1 if none. */
    static int firstFree(long[] a, int off, int from) {
        for (int w = from >>> 6; w < WORDS; w++) {
            long x = a[off + w];
            if (w == from >>> 6) {
                x |= ~(-1L << (from & 63));
            }
            if (x != -1L) {
                return (w << 6) + Long.numberOfTrailingZeros(~x);
            }
        }
        return -1;
    }
}
