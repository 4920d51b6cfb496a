package io.gomem.heap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Summaries ({@link PallocSum}) and chunk bitmaps ({@link PallocBits}), checked by brute force. */
class PageAllocSumTest {

    private static final long M = PallocSum.MAX_PACKED;

    // ---- packing ----

    static Stream<Arguments> packCases() {
        return Stream.of(
                Arguments.of("all zero", 0L, 0L, 0L),
                Arguments.of("free chunk", 512L, 512L, 512L),
                Arguments.of("start only", 7L, 7L, 0L),
                Arguments.of("end only", 0L, 9L, 9L),
                Arguments.of("max inside", 1L, 300L, 2L),
                Arguments.of("largest plain values", M - 1, M - 1, M - 1),
                Arguments.of("mixed large", M - 1, M - 1, 0L),
                Arguments.of("all max (special encoding)", M, M, M));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("packCases")
    void packRoundTrips(String name, long start, long max, long end) {
        long s = PallocSum.pack(start, max, end);
        assertEquals(start, PallocSum.start(s), "start");
        assertEquals(max, PallocSum.max(s), "max");
        assertEquals(end, PallocSum.end(s), "end");
    }

    @Test
    void allMaxIsBit63Alone() {
        assertEquals(1L << 63, PallocSum.pack(M, M, M));
        assertEquals(2_097_152L, M, "2^21 pages = 16 GiB, one root entry");
        assertEquals(0L, PallocSum.pack(0, 0, 0), "zero means nothing free");
    }

    // ---- merge: children of 2^9 pages (leaf chunks), as the L3 level does ----

    private static long s(long start, long max, long end) {
        return PallocSum.pack(start, max, end);
    }

    static Stream<Arguments> mergeCases() {
        long free = PallocSum.FREE_CHUNK;
        return Stream.of(
                Arguments.of("all full", new long[] {0, 0, 0, 0, 0, 0, 0, 0}, s(0, 0, 0)),
                Arguments.of("all free", new long[] {free, free, free, free, free, free, free, free}, s(4096, 4096, 4096)),
                Arguments.of("first free only", new long[] {free, 0, 0, 0, 0, 0, 0, 0}, s(512, 512, 0)),
                Arguments.of("last free only", new long[] {0, 0, 0, 0, 0, 0, 0, free}, s(0, 512, 512)),
                Arguments.of("straddle beats inner max",
                        new long[] {s(0, 100, 100), s(200, 200, 0), 0, 0, 0, 0, 0, 0}, s(0, 300, 0)),
                Arguments.of("inner max beats straddle",
                        new long[] {s(0, 10, 5), s(5, 400, 0), 0, 0, 0, 0, 0, 0}, s(0, 400, 0)),
                Arguments.of("start extends through free children",
                        new long[] {free, free, s(30, 30, 0), 0, 0, 0, 0, 0}, s(1054, 1054, 0)),
                Arguments.of("start stops at first partial child",
                        new long[] {free, s(30, 100, 1), free, 0, 0, 0, 0, 0}, s(542, 542, 0)),
                Arguments.of("end extends back through free children",
                        new long[] {0, 0, 0, 0, 0, s(0, 3, 3), free, free}, s(0, 1027, 1027)),
                Arguments.of("straddle across a whole free child",
                        new long[] {0, s(0, 20, 20), free, s(40, 40, 0), 0, 0, 0, 0}, s(0, 572, 0)),
                Arguments.of("run across every boundary",
                        new long[] {s(1, 1, 1), s(2, 2, 2), s(3, 3, 3), s(4, 4, 4), s(5, 5, 5), s(6, 6, 6), s(7, 7, 7), s(8, 8, 8)},
                        s(1, 15, 8)));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("mergeCases")
    void merge(String name, long[] children, long want) {
        long got = PallocSum.merge(children, 0, 8, PageAlloc.CHUNK_PAGES_LOG);
        assertEquals(PallocSum.toString(want), PallocSum.toString(got));
    }

    @Test
    void mergeAtRootProducesAllMax() {
        // Eight fully free L1 entries (2^18 pages each) make one fully free root entry: 2^21.
        long l1Free = PallocSum.pack(1L << 18, 1L << 18, 1L << 18);
        long[] kids = {l1Free, l1Free, l1Free, l1Free, l1Free, l1Free, l1Free, l1Free};
        assertEquals(1L << 63, PallocSum.merge(kids, 0, 8, 18));
        kids[7] = PallocSum.pack(5, 5, 0);
        long got = PallocSum.merge(kids, 0, 8, 18);
        assertEquals(7 * (1L << 18) + 5, PallocSum.start(got));
        assertEquals(0, PallocSum.end(got));
    }

    @Test
    void mergeMatchesBruteForceOnRandomBitmaps() {
        SplittableRandom rnd = new SplittableRandom(7);
        for (int iter = 0; iter < 2000; iter++) {
            long[] bits = new long[8 * 8]; // 8 chunks
            randomBitmap(rnd, bits);
            long[] sums = new long[8];
            for (int c = 0; c < 8; c++) {
                sums[c] = PallocBits.summarize(bits, c * 8);
            }
            long got = PallocSum.merge(sums, 0, 8, PageAlloc.CHUNK_PAGES_LOG);
            long want = bruteSummary(bits, 0, 8 * 512);
            assertEquals(PallocSum.toString(want), PallocSum.toString(got), "iteration " + iter);
        }
    }

    // ---- summarize ----

    static Stream<Arguments> summarizeCases() {
        return Stream.of(
                Arguments.of("empty", new int[][] {}, s(512, 512, 512)),
                Arguments.of("full", new int[][] {{0, 512}}, s(0, 0, 0)),
                Arguments.of("first page used", new int[][] {{0, 1}}, s(0, 511, 511)),
                Arguments.of("last page used", new int[][] {{511, 1}}, s(511, 511, 0)),
                Arguments.of("middle used", new int[][] {{100, 312}}, s(100, 100, 100)),
                Arguments.of("run inside one word", new int[][] {{0, 3}, {20, 492}}, s(0, 17, 0)),
                Arguments.of("run across words", new int[][] {{0, 60}, {70, 442}}, s(0, 10, 0)),
                Arguments.of("every other page", alternating(), s(1, 1, 0)),
                Arguments.of("63 free inside a word", new int[][] {{0, 64}, {64, 1}, {128, 384}}, s(0, 63, 0)),
                Arguments.of("interior beats ends", new int[][] {{2, 1}, {10, 1}, {200, 1}, {509, 1}}, s(2, 308, 2)),
                Arguments.of("interior inside one word wins", new int[][] {{0, 64}, {64, 1}, {70, 1}, {100, 412}}, s(0, 29, 0)));
    }

    private static int[][] alternating() {
        int[][] r = new int[256][];
        for (int i = 0; i < 256; i++) {
            r[i] = new int[] {2 * i + 1, 1};
        }
        return r;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("summarizeCases")
    void summarize(String name, int[][] used, long want) {
        long[] bits = new long[8];
        for (int[] u : used) {
            PallocBits.setRange(bits, 0, u[0], u[1]);
        }
        assertEquals(PallocSum.toString(want), PallocSum.toString(PallocBits.summarize(bits, 0)));
        assertEquals(PallocSum.toString(bruteSummary(bits, 0, 512)), PallocSum.toString(PallocBits.summarize(bits, 0)));
    }

    @Test
    void summarizeMatchesBruteForce() {
        SplittableRandom rnd = new SplittableRandom(11);
        for (int iter = 0; iter < 20000; iter++) {
            long[] bits = new long[8];
            randomBitmap(rnd, bits);
            assertEquals(PallocSum.toString(bruteSummary(bits, 0, 512)), PallocSum.toString(PallocBits.summarize(bits, 0)),
                    "iteration " + iter);
        }
    }

    // ---- find, findBitRange64, ranges ----

    @Test
    void findMatchesBruteForce() {
        SplittableRandom rnd = new SplittableRandom(13);
        for (int iter = 0; iter < 20000; iter++) {
            long[] bits = new long[8];
            randomBitmap(rnd, bits);
            int npages = rnd.nextInt(4) == 0 ? 1 + rnd.nextInt(512) : 1 + rnd.nextInt(70);
            int from = rnd.nextInt(3) == 0 ? rnd.nextInt(512) : 0;
            assertEquals(bruteFind(bits, npages, from), PallocBits.find(bits, 0, npages, from),
                    "iteration " + iter + " npages " + npages + " from " + from);
            assertEquals(bruteFind(bits, 1, from), PallocBits.firstFree(bits, 0, from), "firstFree, iteration " + iter);
        }
    }

    static Stream<Arguments> bitRangeCases() {
        return Stream.of(
                Arguments.of("none", 0L, 1, 64),
                Arguments.of("bit 0", 1L, 1, 0),
                Arguments.of("all 64", -1L, 64, 0),
                Arguments.of("63 of 64 high", -2L, 63, 1),
                Arguments.of("63 wanted 64", -2L, 64, 64),
                Arguments.of("skip short run", 0b1110_0110L, 3, 5),
                Arguments.of("top bits only", 0xF000_0000_0000_0000L, 4, 60),
                Arguments.of("top bits too short", 0xF000_0000_0000_0000L, 5, 64));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("bitRangeCases")
    void findBitRange64(String name, long c, int n, int want) {
        assertEquals(want, Math.min(64, PallocBits.findBitRange64(c, n)));
    }

    @Test
    void rangesMatchBruteForce() {
        SplittableRandom rnd = new SplittableRandom(17);
        for (int iter = 0; iter < 5000; iter++) {
            long[] bits = new long[8];
            randomBitmap(rnd, bits);
            int i = rnd.nextInt(512);
            int n = 1 + rnd.nextInt(512 - i);
            int want = 0;
            for (int k = i; k < i + n; k++) {
                want += bit(bits, k);
            }
            assertEquals(want, PallocBits.popcountRange(bits, 0, i, n));
            long[] set = bits.clone();
            PallocBits.setRange(set, 0, i, n);
            long[] clr = bits.clone();
            PallocBits.clearRange(clr, 0, i, n);
            for (int k = 0; k < 512; k++) {
                boolean in = k >= i && k < i + n;
                assertEquals(in ? 1 : bit(bits, k), bit(set, k), "set bit " + k);
                assertEquals(in ? 0 : bit(bits, k), bit(clr, k), "clear bit " + k);
            }
        }
    }

    // ---- brute-force references ----

    static int bit(long[] bits, int k) {
        return (int) (bits[k >>> 6] >>> (k & 63)) & 1;
    }

    /** Random bitmap with long runs of both kinds, so every branch is hit. */
    static void randomBitmap(SplittableRandom rnd, long[] bits) {
        int mode = rnd.nextInt(4);
        int total = bits.length * 64;
        int k = 0;
        boolean used = rnd.nextBoolean();
        while (k < total) {
            int len = switch (mode) {
                case 0 -> 1 + rnd.nextInt(3);
                case 1 -> 1 + rnd.nextInt(70);
                case 2 -> 1 + rnd.nextInt(600);
                default -> rnd.nextBoolean() ? 1 : 1 + rnd.nextInt(200);
            };
            for (int e = Math.min(total, k + len); k < e; k++) {
                if (used) {
                    bits[k >>> 6] |= 1L << (k & 63);
                }
            }
            used = !used;
        }
    }

    static long bruteSummary(long[] bits, int off, int npages) {
        int start = 0;
        while (start < npages && bit(bits, off * 64 + start) == 0) {
            start++;
        }
        int end = 0;
        while (end < npages && bit(bits, off * 64 + npages - 1 - end) == 0) {
            end++;
        }
        int max = 0;
        int cur = 0;
        for (int k = 0; k < npages; k++) {
            cur = bit(bits, off * 64 + k) == 0 ? cur + 1 : 0;
            max = Math.max(max, cur);
        }
        return PallocSum.pack(start, max, end);
    }

    static int bruteFind(long[] bits, int npages, int from) {
        int run = 0;
        for (int k = from; k < 512; k++) {
            run = bit(bits, k) == 0 ? run + 1 : 0;
            if (run == npages) {
                return k - npages + 1;
            }
        }
        return -1;
    }

    @Test
    void bruteSummaryIsSane() {
        long[] bits = new long[8];
        assertTrue(PallocSum.max(bruteSummary(bits, 0, 512)) == 512);
    }
}
