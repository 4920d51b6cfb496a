package io.gomem.heap;

import static io.gomem.heap.PageAlloc.CHUNK_BYTES;
import static io.gomem.heap.PageAlloc.CHUNK_PAGES;
import static io.gomem.heap.PageAlloc.PAGE_SIZE;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.LongStream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Random operations on a {@link PageAlloc} and, in lock step, on a deliberately naive model: one
 * boolean per page for "in use" and one for "scavenged", searched linearly. Every result is compared
 * (first-fit addresses, scavenged counts, scavenger runs, counters), and every
 * {@link #FULL_CHECK_EVERY} operations every page's bits and {@code checkInvariants()} too.
 *
 * <p>Three non-adjacent regions; the lowest one is grown a third of the way through. Operations:
 * alloc 1..600 pages, free (whole or part of a live allocation), refused double frees,
 * scavenge, scavenger claim / complete.
 *
 * <p>Operation count: {@code -Dgomem.test.pagealloc.ops} (default 200 000); the seed can be forced
 * with {@code -Dgomem.test.seed}.
 */
class PageAllocModelTest {

    private static final int FULL_CHECK_EVERY = 1000;
    private static final long BASE = PageAllocTest.BASE;

    /** {base, chunks}: the order they are grown in; the last one is grown later. */
    private static final long[][] REGIONS = {
            {BASE, 3},
            {BASE + 8 * CHUNK_BYTES, 4}, // a 5-chunk hole after the first
            {0x2000_0000_0000L, 2}, // far below, in another root entry; grown late
    };

    static LongStream seeds() {
        Long forced = Long.getLong("gomem.test.seed");
        return forced != null ? LongStream.of(forced) : LongStream.of(1, 0x5eed_cafeL);
    }

    @ParameterizedTest(name = "seed {0}")
    @MethodSource("seeds")
    void randomOperationsMatchModel(long seed) {
        int ops = Integer.getInteger("gomem.test.pagealloc.ops", 200_000);
        new Run(seed).run(ops);
    }

    /** One model run. */
    private static final class Run {
        final SplittableRandom rnd;
        final long seed;
        final PageAlloc pa = new PageAlloc();

        // Model: regions sorted by address, pages of all regions side by side.
        final int nreg = REGIONS.length;
        final long[] rbase = new long[nreg];
        final int[] rpages = new int[nreg];
        final int[] roff = new int[nreg];
        final boolean[] grown = new boolean[nreg];
        final boolean[] used;
        final boolean[] scav;
        final boolean[] claimed;

        /** Live allocations {addr, npages} . */
        final List<long[]> live = new ArrayList<>();
        /** Outstanding scavenger claims {addr, npages}. */
        final List<long[]> claims = new ArrayList<>();


        int op;
        String what = "";
        /** Operation statistics, printed at the end so a run that exercised little is visible. */
        long allocOk, allocFailed, frees, refused, scavRuns, claimsMade, completes;

        Run(long seed) {
            this.seed = seed;
            this.rnd = new SplittableRandom(seed);
            long[][] sorted = REGIONS.clone();
            java.util.Arrays.sort(sorted, (a, b) -> Long.compare(a[0], b[0]));
            int total = 0;
            for (int r = 0; r < nreg; r++) {
                rbase[r] = sorted[r][0];
                rpages[r] = (int) (sorted[r][1] * CHUNK_PAGES);
                roff[r] = total;
                total += rpages[r];
            }
            used = new boolean[total];
            scav = new boolean[total];
            claimed = new boolean[total];
        }

        void run(int ops) {
            growRegion(0);
            growRegion(1);
            for (op = 0; op < ops; op++) {
                if (op == ops / 3) {
                    growRegion(2);
                }
                step();
                compareCounters();
                if (op % FULL_CHECK_EVERY == 0) {
                    fullCheck();
                }
            }
            fullCheck();
            // Drain: free everything, then one allocation of each whole region must succeed.
            while (!claims.isEmpty()) {
                complete(claims.size() - 1);
            }
            for (long[] a : live) {
                pa.free(a[0], a[1]);
                setUsed(a[0], a[1], false);
            }
            live.clear();
            fullCheck();
            for (int r = 0; r < nreg; r++) {
                assertEquals(hex(rbase[r]), hex(pa.alloc(rpages[r])), ctx("whole region after drain"));
            }
            System.out.printf("PageAllocModelTest seed %d: %d ops: alloc %d ok / %d failed, %d frees, %d refused frees,"
                            + " %d scavenged runs, %d claims / %d completes%n",
                    seed, ops, allocOk, allocFailed, frees, refused, scavRuns, claimsMade, completes);
            assertTrue(allocOk > ops / 10 && allocFailed > 100 && refused > 100 && scavRuns > 100
                    && completes > 100 || ops < 50_000, "the run exercised every operation");
        }

        void step() {
            double usage = (double) countUsed() / Math.max(1, grownPages());
            int dice = rnd.nextInt(100);
            if (dice < (usage < 0.6 ? 45 : 25)) {
                alloc();
            } else if (dice < 75) {
                freeSome();
            } else if (dice < 78) {
                refusedFree();
            } else if (dice < 92) {
                scavenge();
            } else {
                claimOp();
            }
        }

        // ---- operations ----

        void alloc() {
            int k = rnd.nextInt(10);
            long n = k < 5 ? 1 + rnd.nextInt(8) : k < 8 ? 9 + rnd.nextInt(56) : 65 + rnd.nextInt(536);
            what = "alloc(" + n + ")";
            long want = modelFind(n);
            long wantScav = want == 0 ? 0 : countScav(want, n);
            long got = pa.alloc(n);
            assertEquals(hex(want), hex(got), ctx("first-fit address"));
            assertEquals(wantScav, pa.lastScavengedPages(), ctx("scavenged pages"));
            if (got == 0) {
                allocFailed++;
            } else {
                allocOk++;
                setUsed(got, n, true);
                setScav(got, n, false);
                live.add(new long[] {got, n});
            }
        }

        void freeSome() {
            if (live.isEmpty()) {
                return;
            }
            int i = rnd.nextInt(live.size());
            long[] a = live.get(i);
            long addr = a[0];
            long n = a[1];
            if (n > 1 && rnd.nextInt(3) == 0) {
                // Free a piece; keep what is left on either side.
                long s = rnd.nextLong(n);
                long k = 1 + rnd.nextLong(n - s);
                frees++;
                what = "free part " + PageAlloc.range(addr + s * PAGE_SIZE, k) + " of " + PageAlloc.range(addr, n);
                pa.free(addr + s * PAGE_SIZE, k);
                setUsed(addr + s * PAGE_SIZE, k, false);
                live.set(i, live.get(live.size() - 1));
                live.remove(live.size() - 1);
                if (s > 0) {
                    live.add(new long[] {addr, s});
                }
                if (s + k < n) {
                    live.add(new long[] {addr + (s + k) * PAGE_SIZE, n - s - k});
                }
            } else {
                frees++;
                what = "free " + PageAlloc.range(addr, n);
                pa.free(addr, n);
                setUsed(addr, n, false);
                live.set(i, live.get(live.size() - 1));
                live.remove(live.size() - 1);
            }
        }

        /** A free that must be refused: some page of it is free, or it is outside grown memory. */
        void refusedFree() {
            long addr;
            long n = 1 + rnd.nextInt(4);
            if (rnd.nextInt(4) == 0) {
                // In the hole after region 1 (address order), or just past the last region.
                addr = rnd.nextBoolean() ? rbase[1] + rpages[1] * PAGE_SIZE + rnd.nextInt(100) * PAGE_SIZE
                        : rbase[nreg - 1] + (rpages[nreg - 1] - 1) * PAGE_SIZE;
                n = addr == rbase[nreg - 1] + (rpages[nreg - 1] - 1) * PAGE_SIZE ? 2 : n;
            } else {
                int r = rnd.nextInt(nreg);
                if (!grown[r]) {
                    return;
                }
                long p = rnd.nextInt(rpages[r] - (int) n + 1);
                addr = rbase[r] + p * PAGE_SIZE;
                boolean anyFree = false;
                for (long q = 0; q < n; q++) {
                    anyFree |= !used[index(addr + q * PAGE_SIZE)];
                }
                if (!anyFree) {
                    return; // all in use: that free would be legal
                }
            }
            what = "refused free " + PageAlloc.range(addr, n);
            long inUse = pa.inUsePages();
            long scavenged = pa.scavengedPages();
            final long a = addr;
            final long len = n;
            assertThrows(IllegalStateException.class, () -> pa.free(a, len), ctx("must be refused"));
            refused++;
            assertEquals(inUse, pa.inUsePages(), ctx("unchanged"));
            assertEquals(scavenged, pa.scavengedPages(), ctx("unchanged"));
        }

        void scavenge() {
            long max = 1 + rnd.nextInt(rnd.nextBoolean() ? 16 : 600);
            what = "scavenge(" + max + ")";
            List<String> want = new ArrayList<>();
            long left = max;
            long[] run = new long[2];
            while (left > 0 && modelScavengeRun(left, run)) {
                want.add(PageAllocScavengeTest.run(run[0], run[1]));
                setScav(run[0], run[1], true);
                left -= run[1];
                scavRuns++;
            }
            PageAllocScavengeTest.Runs sink = new PageAllocScavengeTest.Runs();
            long got = pa.scavenge(max, sink);
            assertEquals(want, sink.runs, ctx("scavenged runs"));
            assertEquals(max - left, got, ctx("scavenged pages"));
        }

        void claimOp() {
            if (!claims.isEmpty() && rnd.nextBoolean()) {
                complete(rnd.nextInt(claims.size()));
                return;
            }
            long max = 1 + rnd.nextInt(100);
            what = "scavengeClaim(" + max + ")";
            long[] run = new long[2];
            boolean any = modelScavengeRun(max, run);
            long got = pa.scavengeClaim(max);
            if (!any) {
                assertEquals(0, got, ctx("nothing to claim"));
                return;
            }
            assertEquals(hex(run[0]), hex(got), ctx("claimed base"));
            assertEquals(run[1], pa.lastClaimPages(), ctx("claimed pages"));
            setUsed(run[0], run[1], true);
            for (long p = 0; p < run[1]; p++) {
                claimed[index(run[0] + p * PAGE_SIZE)] = true;
            }
            claims.add(run);
            claimsMade++;
        }

        void complete(int i) {
            long[] c = claims.get(i);
            boolean released = rnd.nextInt(4) != 0;
            what = "scavengeComplete(" + PageAlloc.range(c[0], c[1]) + ", " + released + ")";
            pa.scavengeComplete(c[0], c[1], released);
            setUsed(c[0], c[1], false);
            setScav(c[0], c[1], released);
            for (long p = 0; p < c[1]; p++) {
                claimed[index(c[0] + p * PAGE_SIZE)] = false;
            }
            completes++;
            claims.set(i, claims.get(claims.size() - 1));
            claims.remove(claims.size() - 1);
        }

        void growRegion(int which) {
            long base = REGIONS[which][0];
            what = "grow " + hex(base);
            pa.grow(base, REGIONS[which][1] * CHUNK_BYTES);
            for (int r = 0; r < nreg; r++) {
                if (rbase[r] == base) {
                    grown[r] = true;
                    for (int p = 0; p < rpages[r]; p++) {
                        scav[roff[r] + p] = true;
                    }
                }
            }
        }

        // ---- the naive model ----

        /** First fit by linear scan of each grown region in address order; runs never leave a region. */
        long modelFind(long n) {
            for (int r = 0; r < nreg; r++) {
                if (!grown[r]) {
                    continue;
                }
                int run = 0;
                for (int p = 0; p < rpages[r]; p++) {
                    run = used[roff[r] + p] ? 0 : run + 1;
                    if (run == n) {
                        return rbase[r] + (long) (p - n + 1) * PAGE_SIZE;
                    }
                }
            }
            return 0;
        }

        /** Highest free, unscavenged page; its run downward within its chunk, at most max pages. */
        boolean modelScavengeRun(long max, long[] out) {
            for (int r = nreg - 1; r >= 0; r--) {
                if (!grown[r]) {
                    continue;
                }
                for (int p = rpages[r] - 1; p >= 0; p--) {
                    if (!used[roff[r] + p] && !scav[roff[r] + p]) {
                        int chunkStart = p - p % CHUNK_PAGES;
                        int q = p;
                        while (q - 1 >= chunkStart && p - q + 1 < max && !used[roff[r] + q - 1] && !scav[roff[r] + q - 1]) {
                            q--;
                        }
                        out[0] = rbase[r] + (long) q * PAGE_SIZE;
                        out[1] = p - q + 1;
                        return true;
                    }
                }
            }
            return false;
        }

        int index(long addr) {
            for (int r = 0; r < nreg; r++) {
                if (addr >= rbase[r] && addr < rbase[r] + rpages[r] * PAGE_SIZE) {
                    return roff[r] + (int) ((addr - rbase[r]) / PAGE_SIZE);
                }
            }
            throw new AssertionError(ctx("address " + hex(addr) + " not in the model"));
        }

        void setUsed(long addr, long n, boolean v) {
            for (long p = 0; p < n; p++) {
                int x = index(addr + p * PAGE_SIZE);
                if (used[x] == v) {
                    throw new AssertionError(ctx("model: page " + hex(addr + p * PAGE_SIZE) + " already " + v));
                }
                used[x] = v;
            }
        }

        void setScav(long addr, long n, boolean v) {
            for (long p = 0; p < n; p++) {
                scav[index(addr + p * PAGE_SIZE)] = v;
            }
        }

        long countScav(long addr, long n) {
            long c = 0;
            for (long p = 0; p < n; p++) {
                c += scav[index(addr + p * PAGE_SIZE)] ? 1 : 0;
            }
            return c;
        }

        long grownPages() {
            long n = 0;
            for (int r = 0; r < nreg; r++) {
                n += grown[r] ? rpages[r] : 0;
            }
            return n;
        }

        long countUsed() {
            long n = 0;
            for (int r = 0; r < nreg; r++) {
                if (grown[r]) {
                    for (int p = 0; p < rpages[r]; p++) {
                        n += used[roff[r] + p] ? 1 : 0;
                    }
                }
            }
            return n;
        }

        // ---- comparisons ----

        void compareCounters() {
            long u = 0;
            long c = 0;
            long s = 0;
            for (int r = 0; r < nreg; r++) {
                if (!grown[r]) {
                    continue;
                }
                for (int p = 0; p < rpages[r]; p++) {
                    int x = roff[r] + p;
                    u += used[x] ? 1 : 0;
                    c += claimed[x] ? 1 : 0;
                    s += scav[x] ? 1 : 0;
                }
            }
            long total = grownPages();
            assertEquals(total, pa.totalPages(), ctx("totalPages"));
            assertEquals(u - c, pa.inUsePages(), ctx("inUsePages"));
            assertEquals(c, pa.claimedPages(), ctx("claimedPages"));
            assertEquals(total - u, pa.freePages(), ctx("freePages"));
            assertEquals(s, pa.scavengedPages(), ctx("scavengedPages"));
        }

        void fullCheck() {
            for (int r = 0; r < nreg; r++) {
                for (int p = 0; p < rpages[r]; p++) {
                    long addr = rbase[r] + (long) p * PAGE_SIZE;
                    boolean u = !grown[r] || used[roff[r] + p];
                    assertEquals(u, pa.isAllocated(addr), ctx("in-use bit of " + hex(addr)));
                    assertEquals(grown[r] && scav[roff[r] + p], pa.isScavenged(addr), ctx("scavenged bit of " + hex(addr)));
                }
            }
            try {
                pa.checkInvariants();
            } catch (IllegalStateException e) {
                throw new AssertionError(ctx("checkInvariants"), e);
            }
        }

        String ctx(String msg) {
            return "seed " + seed + ", op " + op + " (" + what + "): " + msg;
        }

        static String hex(long v) {
            return PageAlloc.hex(v);
        }
    }
}
