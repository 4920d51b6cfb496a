package io.gomem.heap;

import io.gomem.stats.MemStats;
import io.gomem.stats.StatsDump;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The heap's statistics (Go's {@code mstats.go}): counters kept the way Go keeps
 * {@code heapStats} (its {@code consistentHeapStats}), so that a reader takes a consistent
 * snapshot without stopping the world, and the {@link MemStats} and {@link StatsDump} built from
 * a snapshot.
 *
 * <h2>What is counted, and where</h2>
 * One list of counters ({@link #MALLOCS} ... {@link #LIVE_BYTES}), each updated on a slow path
 * only, never by the allocation or free fast path:
 * <ul>
 *   <li>per span class: slots handed out ({@link #MALLOCS}; a P counts what its cached span
 *       handed out when the span leaves it, or when a reader flushes it, as Go counts at
 *       refill), slots reclaimed by sweeps ({@link #FREES}; a free counts once swept), spans
 *       ({@link #SPANS}, by the heap under its lock);</li>
 *   <li>tiny objects (a malloc and a free at once, as Go counts them), large objects and their
 *       bytes, allocated and freed, and the pages of large spans;</li>
 *   <li>two gauges kept apart from the per-class counts they must agree with: live objects and
 *       live bytes. A {@link MemStats} takes HeapObjects and HeapAlloc from them, Mallocs and
 *       Frees from the counts, so its invariant {@code heapObjects == mallocs - frees} can
 *       fail.</li>
 * </ul>
 *
 * <h2>Consistency without stopping the world</h2>
 * Each P counts into its own {@link Shard} (plain adds, one fence a section: see there): a P's
 * slot counts when its span leaves it or a reader flushes it, and the sweeps its refills do in
 * its central. Writers with no P (the heap under its lock, sweeps by the background thread, a
 * large free) share one more pair of sets with atomic adds:
 * writers add to one of two delta sets inside a section ({@link #begin} / {@link #end}):
 * {@code begin} announces the writer in the set {@link #gen} names (an atomic increment of
 * that set's writer count) and re-reads {@code gen}, retrying if it moved; adds are atomic (two
 * writers may share a set); {@code end} withdraws. A reader ({@link #cut}) flips {@code gen},
 * waits for the old set's writers to leave (they never block inside a section: backing off to
 * parks), folds the old set into {@link #totals} and clears it. Every section that
 * happened-before the flip is in the snapshot and none that started after it; the heap cuts
 * while it holds its lock, where every page-level figure changes, so the page figures read in
 * that hold agree with the counts (a span's objects are never counted before its pages).
 * Invariant: a set's counts are written only between a writer's announcement in it and its
 * withdrawal, and read only by a reader who saw its writer count at zero after flipping away
 * from it.
 *
 * <h2>Guards</h2>
 * {@link #deltas}: atomic adds inside a section; cleared by the reader under {@link #readLock}
 * (the set is then idle). {@link #gen}: volatile, written under {@link #readLock}.
 * {@link #writers}: atomic. {@link #totals}: {@link #readLock}. A shard's sets: its P's lease
 * holder inside a section; folded and cleared by a cut once its sequence number is even. Under
 * {@code gomem.checkInvariants} each of these is asserted where it is written.
 */
final class MStats {
    static final int NSC = SizeClasses.NUM_SPAN_CLASSES + 1;
    /** Slots handed out, per span class (tiny blocks under the tiny class). */
    static final int MALLOCS = 0;
    /** Slots reclaimed by sweeps, per span class. */
    static final int FREES = MALLOCS + NSC;
    /** Spans in use, per span class (cached, partial or full). */
    static final int SPANS = FREES + NSC;
    static final int TINY_OBJECTS = SPANS + NSC;
    static final int LARGE_ALLOCS = TINY_OBJECTS + 1;
    static final int LARGE_ALLOC_BYTES = LARGE_ALLOCS + 1;
    static final int LARGE_FREES = LARGE_ALLOC_BYTES + 1;
    static final int LARGE_FREE_BYTES = LARGE_FREES + 1;
    /** Pages of large spans in use (kept ones included). */
    static final int LARGE_PAGES = LARGE_FREE_BYTES + 1;
    /** Freed large spans P caches keep for reuse. */
    static final int LARGE_KEPT_SPANS = LARGE_PAGES + 1;
    /** Gauges: live objects (a tiny block is one) and their bytes (slot sizes; a large object's own size). */
    static final int LIVE_OBJECTS = LARGE_KEPT_SPANS + 1;
    static final int LIVE_BYTES = LIVE_OBJECTS + 1;
    static final int N = LIVE_BYTES + 1;

    private static final VarHandle LONGS = MethodHandles.arrayElementVarHandle(long[].class);
    private static final VarHandle INTS = MethodHandles.arrayElementVarHandle(int[].class);
    /** Writer counts of the two sets, on separate cache lines: index {@code set * PAD}. */
    private static final int PAD = 16;

    private final long[][] deltas = {new long[N], new long[N]};
    private final int[] writers = new int[2 * PAD];
    private volatile int gen;
    private final ReentrantLock readLock = new ReentrantLock();
    private final long[] totals = new long[N];
    /**
     * {@code gomem.checkInvariants}: assert the guards the comment names: {@link #totals} under
     * {@link #readLock}; adds only inside a section (the shared sets: the sections this thread
     * has open, per set, in {@link #OPEN}; a shard: its sequence number, and its P's lease).
     */
    private static final boolean CHECK = io.gomem.internal.Options.CHECK_INVARIANTS.booleanValue();
    /** With {@link #CHECK} only: sections of the shared sets the current thread has open, per set. */
    private static final ThreadLocal<int[]> OPEN = CHECK ? ThreadLocal.withInitial(() -> new int[2]) : null;
    /**
     * The Ps' own shards ({@link #newShard}): registered when a P is made (with the heap, when a
     * P slot is added, when a held P is made), read by cuts. A cut reads this after its flip, so a
     * shard it does not see was registered after the flip, and its first section reads the new
     * {@link #gen}: nothing of it belongs in that cut.
     */
    private volatile Shard[] shards = new Shard[0];

    /**
     * A P's own counters (Go keeps a sequence number per P for the same purpose): written only
     * by whoever holds that P's lease, so with plain adds, inside a section marked by the shard's
     * sequence number: odd while a section is open. {@link Shard#begin} stores the odd number
     * (volatile, so that it is visible before {@link #gen} is read: the one fence of a section)
     * and reads {@code gen}; {@link Shard#end} stores the even number with release semantics. A
     * cut flips {@code gen}, then reads each shard's number and, if it is odd, waits for it to
     * change: a section that read the old {@code gen} announced itself before the flip, so the
     * cut sees it open and waits for its end; one that begins after the flip reads the new
     * {@code gen}, so a P counting back to back cannot hold a cut up. No atomic
     * read-modify-write, and no cache line shared with another P: the refills and flushes of two
     * Ps do not meet here (on the shared counters they cost the 2- and 4-thread mix 15–25%).
     */
    final class Shard {
        private final long[][] d = {new long[N], new long[N]};
        private long pad0, pad1, pad2, pad3, pad4, pad5, pad6, pad7;
        /** Odd while a section is open. Written by the P's lease holder only; read by cuts. */
        private volatile int seq;
        /** The set the open section adds to (the lease holder's). */
        private int g;
        /**
         * With {@link #CHECK} only: whether a P's lease guards this shard (a cache's: see
         * {@link #newShard(boolean)}), and who holds that lease now (kept by {@link MCache}'s lease).
         */
        private final boolean leased;
        Thread holder;
        private long pad8, pad9, pad10, pad11, pad12, pad13, pad14, pad15;

        Shard(boolean leased) {
            this.leased = leased;
        }

        void begin() {
            if (CHECK) {
                assertHolder();
                if ((seq & 1) != 0) {
                    throw new IllegalStateException("mstats: a section opened inside another of the same shard");
                }
            }
            seq = seq + 1; // volatile store: ordered before the read of gen below
            g = gen;
        }

        void add(int i, long v) {
            if (CHECK) {
                assertInSection();
            }
            d[g][i] += v;
        }

        void end() {
            if (CHECK) {
                assertInSection();
            }
            SEQ.setRelease(this, seq + 1);
        }

        /** With {@link #CHECK}: the sets are written by the lease holder, inside a section. */
        private void assertInSection() {
            assertHolder();
            if ((seq & 1) == 0) {
                throw new IllegalStateException("mstats: a P shard written outside a section by " + Thread.currentThread());
            }
        }

        private void assertHolder() {
            if (leased && holder != Thread.currentThread()) {
                throw new IllegalStateException("mstats: a P shard written by " + Thread.currentThread()
                        + " without its P's lease (held by " + holder + ")");
            }
        }
    }

    private static final VarHandle SEQ;

    static {
        try {
            SEQ = MethodHandles.lookup().findVarHandle(Shard.class, "seq", int.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /** A new shard with no lease to check (see {@link #newShard(boolean)}). */
    Shard newShard() {
        return newShard(false);
    }

    /**
     * A new shard; a cut may run meanwhile (see {@link #shards}). A P's is {@code leased}: under
     * {@link #CHECK} only its lease holder may write it (its {@link MCache} keeps {@link Shard#holder}).
     */
    synchronized Shard newShard(boolean leased) {
        Shard sh = new Shard(leased);
        Shard[] a = java.util.Arrays.copyOf(shards, shards.length + 1);
        a[a.length - 1] = sh;
        shards = a;
        return sh;
    }

    /** A sweep of class {@code sc} that handed out and reclaimed slots, counted in shard {@code sh} (its P's lease held). */
    static void countSweep(Shard sh, int sc, long handedOut, long reclaimed, long size) {
        sh.begin();
        sh.add(MALLOCS + sc, handedOut);
        sh.add(FREES + sc, reclaimed);
        sh.add(LIVE_OBJECTS, handedOut - reclaimed);
        sh.add(LIVE_BYTES, (handedOut - reclaimed) * size);
        sh.end();
    }

    /** Opens a section: returns the set to add to; {@link #end} it, with nothing that blocks in between. */
    int begin() {
        for (;;) {
            int g = gen;
            INTS.getAndAdd(writers, g * PAD, 1);
            if (gen == g) {
                if (CHECK) {
                    OPEN.get()[g]++;
                }
                return g;
            }
            INTS.getAndAdd(writers, g * PAD, -1); // a reader flipped meanwhile: write to the new set
        }
    }

    /** Adds {@code v} to counter {@code i} of set {@code g} (inside a section). */
    void add(int g, int i, long v) {
        if (CHECK && OPEN.get()[g] <= 0) {
            throw new IllegalStateException("mstats: counter " + i + " of set " + g + " written outside a section by "
                    + Thread.currentThread());
        }
        LONGS.getAndAdd(deltas[g], i, v);
    }

    void end(int g) {
        if (CHECK && --OPEN.get()[g] < 0) {
            OPEN.get()[g] = 0;
            throw new IllegalStateException("mstats: a section of set " + g + " ended that " + Thread.currentThread()
                    + " did not open");
        }
        INTS.getAndAdd(writers, g * PAD, -1);
    }

    /** One counter in a section of its own. */
    void count(int i, long v) {
        int g = begin();
        add(g, i, v);
        end(g);
    }


    /** {@code n} slots of span class {@code sc} ({@code size} bytes each) reclaimed by a sweep. */
    void countFrees(int sc, long n, long size) {
        if (n != 0) {
            int g = begin();
            add(g, FREES + sc, n);
            add(g, LIVE_OBJECTS, -n);
            add(g, LIVE_BYTES, -n * size);
            end(g);
        }
    }

    /**
     * An in-place sweep of a cached span of class {@code sc}: {@code handedOut} slots it handed
     * out since last counted, then {@code reclaimed} slots the sweep freed, in one section.
     */
    void countSweep(int sc, long handedOut, long reclaimed, long size) {
        int g = begin();
        add(g, MALLOCS + sc, handedOut);
        add(g, FREES + sc, reclaimed);
        add(g, LIVE_OBJECTS, handedOut - reclaimed);
        add(g, LIVE_BYTES, (handedOut - reclaimed) * size);
        end(g);
    }

    /**
     * A large object's span made ({@code sign} +1) or freed (−1) with its object of {@code size}
     * bytes and {@code npages} pages: in {@code sh} when the caller holds that P's lease, else in
     * the shared sets (the heap calls it under its lock, in the hold that changes the pages).
     */
    void countLargeSpan(Shard sh, int sign, long size, long npages) {
        int objects = sign > 0 ? LARGE_ALLOCS : LARGE_FREES;
        int bytes = sign > 0 ? LARGE_ALLOC_BYTES : LARGE_FREE_BYTES;
        if (sh != null) {
            sh.begin();
            sh.add(objects, 1);
            sh.add(bytes, size);
            sh.add(LIVE_OBJECTS, sign);
            sh.add(LIVE_BYTES, sign * size);
            sh.add(LARGE_PAGES, sign * npages);
            sh.end();
        } else {
            int g = begin();
            add(g, objects, 1);
            add(g, bytes, size);
            add(g, LIVE_OBJECTS, sign);
            add(g, LIVE_BYTES, sign * size);
            add(g, LARGE_PAGES, sign * npages);
            end(g);
        }
    }


    /** Adds set {@code d} to the totals and clears it (readLock held; no writer is in it). */
    private void fold(long[] d) {
        if (CHECK && !readLock.isHeldByCurrentThread()) {
            throw new IllegalStateException("mstats: the totals folded without the read lock by " + Thread.currentThread());
        }
        for (int i = 0; i < N; i++) {
            totals[i] += d[i];
            d[i] = 0;
        }
    }

    /**
     * A consistent snapshot of every counter: flips the set writers use, waits for the old set's
     * writers, folds it into the totals. The heap calls it holding its lock (see the class comment).
     */
    long[] cut() {
        readLock.lock();
        try {
            int old = gen;
            gen = old ^ 1;
            for (int k = 0; (int) INTS.getVolatile(writers, old * PAD) != 0; k++) {
                if (k < 64) {
                    Thread.onSpinWait();
                } else {
                    LockSupport.parkNanos(this, 1_000L << Math.min(10, k - 64)); // a preempted writer: up to 1 ms
                }
            }
            fold(deltas[old]);
            for (Shard sh : shards) {
                // Wait for the section open now, if any, to end: not for the number to be even, which
                // a P counting back to back might never show (a section begun after the flip adds to
                // the new set, so the next one need not be waited for).
                int open = sh.seq;
                for (int k = 0; (open & 1) != 0 && sh.seq == open; k++) {
                    if (k < 64) {
                        Thread.onSpinWait();
                    } else {
                        LockSupport.parkNanos(this, 1_000L << Math.min(10, k - 64));
                    }
                }
                fold(sh.d[old]);
            }
            return totals.clone();
        } finally {
            readLock.unlock();
        }
    }

    // ───────────────────────────── snapshots ─────────────────────────────

    /**
     * The page heap's and OS layer's figures, read under the heap lock with no scavenger run in
     * flight, so that they agree with each other to the byte; with the counters cut in the same
     * hold ({@link #counts}).
     */
    record Counters(long mappedBytes, long totalPages, long pagesInUse, long scavengedPages,
                    long spansInUse, long reservedBytes, long arenas, long osReserved, long osPrepared, long osReady,
                    long spanReleasedBytes, long maskedSpansInUse, long spansPooled, long maskedSpansPooled,
                    long flatTablePages, long[] counts) {

        long count(int i) {
            return counts[i];
        }

        long largeBytesLive() {
            return counts[LARGE_ALLOC_BYTES] - counts[LARGE_FREE_BYTES];
        }

        long largePagesInUse() {
            return counts[LARGE_PAGES];
        }

        long largeAllocs() {
            return counts[LARGE_ALLOCS];
        }

        long largeFrees() {
            return counts[LARGE_FREES];
        }

        long freePages() {
            return totalPages - pagesInUse;
        }
    }

    /** Span class {@code sc}'s size class (the tiny class is the 16-byte class). */
    static int sizeClassOf(int sc) {
        return sc == SizeClasses.TINY_SPAN_CLASS ? SizeClasses.TINY_SIZE_CLASS : SizeClasses.sizeClassOf(sc);
    }

    /**
     * The Java-heap bytes of the heap's metadata, for a MemStats: a span record's, the tiny masks
     * some records carry, the caches and centrals, and the rest (arenas' spans tables, the flat
     * table, the page allocator). Measured from the running JVM's object layout ({@link Metadata}).
     */
    record MetaBytes(long span, long tinyMasks, long caches, long other) {
    }

    /**
     * A MemStats from one snapshot; {@code memoryLimit} is the soft limit in force, {@code arenas}
     * the arenas' figures ({@link Malloc.Views#arenaFigures}: read beside the snapshot, not in it).
     */
    static MemStats memStats(Counters k, MetaBytes meta, long memoryLimit, long[] arenas) {
        long[] c = k.counts();
        long[] bySizeMallocs = new long[SizeClasses.NUM_SIZE_CLASSES];
        long[] bySizeFrees = new long[SizeClasses.NUM_SIZE_CLASSES];
        for (int sc = 0; sc < NSC; sc++) {
            int cls = sizeClassOf(sc);
            bySizeMallocs[cls] += c[MALLOCS + sc];
            bySizeFrees[cls] += c[FREES + sc];
        }
        List<MemStats.SizeClassStats> bySize = new ArrayList<>();
        long smallMallocs = 0;
        long smallFrees = 0;
        long totalAlloc = c[LARGE_ALLOC_BYTES];
        for (int cls = 1; cls < SizeClasses.NUM_SIZE_CLASSES; cls++) {
            int size = SizeClasses.classSize(cls);
            bySize.add(new MemStats.SizeClassStats(size, bySizeMallocs[cls], bySizeFrees[cls]));
            smallMallocs += bySizeMallocs[cls];
            smallFrees += bySizeFrees[cls];
            totalAlloc += bySizeMallocs[cls] * size;
        }
        long tiny = c[TINY_OBJECTS];
        long mallocs = smallMallocs + tiny + c[LARGE_ALLOCS];
        long frees = smallFrees + tiny + c[LARGE_FREES];
        long heapSys = k.mappedBytes();
        long heapInuse = (k.pagesInUse() << SizeClasses.PAGE_SHIFT) - k.spanReleasedBytes();
        long heapIdle = (k.freePages() << SizeClasses.PAGE_SHIFT) + k.spanReleasedBytes(); // the page allocator's count, not heapSys - heapInuse
        long heapReleased = (k.scavengedPages() << SizeClasses.PAGE_SHIFT) + k.spanReleasedBytes();
        long mSpanInuse = k.spansInUse() * meta.span() + k.maskedSpansInUse() * meta.tinyMasks();
        long mSpanSys = mSpanInuse + k.spansPooled() * meta.span() + k.maskedSpansPooled() * meta.tinyMasks();
        long metaAll = mSpanSys + meta.caches() + meta.other();
        long sys = k.osPrepared() + k.osReady() + metaAll; // the OS layer's count, not heapSys + the rest
        long mappedReady = k.osReady() + metaAll;
        return new MemStats(c[LIVE_BYTES], totalAlloc, heapSys, heapIdle, heapInuse, heapReleased, c[LIVE_OBJECTS],
                mallocs, frees, mSpanInuse, mSpanSys, meta.caches(), meta.caches(), meta.other(), sys, mappedReady,
                k.osReserved(), k.osPrepared(), k.osReady(), memoryLimit, arenas[0], arenas[1], arenas[2], arenas[3], bySize);
    }

    /** Where in-use memory is, per size class, from one snapshot. */
    static StatsDump statsDump(Counters k, long[] arenas) {
        long[] c = k.counts();
        int classes = SizeClasses.NUM_SIZE_CLASSES;
        long[] spans = new long[classes];
        long[] objects = new long[classes];
        for (int sc = 0; sc < NSC; sc++) {
            int cls = sizeClassOf(sc);
            spans[cls] += c[SPANS + sc];
            objects[cls] += c[MALLOCS + sc] - c[FREES + sc];
        }
        List<StatsDump.Row> rows = new ArrayList<>();
        long tSpans = 0;
        long tSpanBytes = 0;
        long tObjects = 0;
        long tBytes = 0;
        for (int cls = 1; cls < classes; cls++) {
            if (spans[cls] == 0 && objects[cls] == 0) {
                continue;
            }
            long size = SizeClasses.classSize(cls);
            long spanBytes = spans[cls] * SizeClasses.classSpanBytes(cls);
            rows.add(new StatsDump.Row(String.valueOf(cls), size, spans[cls], spanBytes, objects[cls], objects[cls] * size));
            tSpans += spans[cls];
            tSpanBytes += spanBytes;
            tObjects += objects[cls];
            tBytes += objects[cls] * size;
        }
        long largeObjects = k.largeAllocs() - k.largeFrees();
        long largeSpanBytes = k.largePagesInUse() << SizeClasses.PAGE_SHIFT;
        long largeSpans = largeObjects + c[LARGE_KEPT_SPANS]; // spans P caches keep for reuse hold no object
        StatsDump.Row large = new StatsDump.Row("large", 0, largeSpans, largeSpanBytes, largeObjects, k.largeBytesLive());
        StatsDump.Row total = new StatsDump.Row("total", 0, tSpans + largeSpans, tSpanBytes + largeSpanBytes,
                tObjects + largeObjects, tBytes + k.largeBytesLive());
        return new StatsDump(rows, large, total, k.pagesInUse() << SizeClasses.PAGE_SHIFT,
                new StatsDump.Arenas(arenas[0], arenas[1], arenas[2], arenas[3]));
    }
}
