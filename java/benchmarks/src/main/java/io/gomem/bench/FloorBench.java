package io.gomem.bench;

import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

import java.lang.foreign.Arena;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.concurrent.TimeUnit;

/**
 * How fast can the pair be in Java at all? Two models of an allocator's fast paths, with no slow
 * path worth the name (one 16-byte class, spans that never run out of frees), that keep what
 * gomem must keep: a P cache taken with a CAS lease and given back with a release store, a free
 * from any thread as one atomic add on a two-bit mark, and the checks that refuse a foreign,
 * interior, never-allocated or double-freed address. Not an allocator: a yardstick for
 * {@link GoHeapBench#raw} (BENCHMARKS.md, "Floor").
 *
 * <ul>
 *   <li>{@code oneClass}: everything a size class needs is a constant and the cache's state sits
 *       in the cache object's own fields; a free finds its span's number in an int table and its
 *       marks in one shared array.</li>
 *   <li>{@code goShape}: Go's shape, as gomem has it: size → class through a table, the cache
 *       holds one span object per span class (free index, alloc cache and alloc count, as Go's
 *       {@code nextFreeFast} keeps them), a free loads its span object from a table of spans and
 *       checks the address against the span's fields.</li>
 *   <li>{@code goShapeOwned}: the same shape on a P the thread holds (issue 13's owned model):
 *       no lease, an owner check (the current thread against the holder), and a free into a span
 *       of the held P sets a bit of the span's local marks with plain stores. No atomic
 *       instruction at all: the floor of {@code GoHeap.Local}'s pair.</li>
 * </ul>
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED"})
public class FloorBench {
    static final VarHandle MARKS = MethodHandles.arrayElementVarHandle(long[].class);
    static final VarHandle INTS = MethodHandles.arrayElementVarHandle(int[].class);
    static final VarHandle SPANS = MethodHandles.arrayElementVarHandle(Span[].class);
    static final VarHandle LEASE;
    static final VarHandle CACHE_LEASE;
    static final VarHandle FREE_INDEX;

    static {
        try {
            MethodHandles.Lookup l = MethodHandles.lookup();
            LEASE = l.findVarHandle(OneCache.class, "lease", int.class);
            CACHE_LEASE = l.findVarHandle(GoCache.class, "lease", int.class);
            FREE_INDEX = l.findVarHandle(Span.class, "freeIndex", int.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    static final int PAGE_SHIFT = 13;
    static final int SPANS_N = 64;
    static final int SLOTS = 512;
    static final long SIZE = 16;
    static final long MAGIC = (1L << 32) / SIZE + 1;

    long heapBase;

    @Setup
    public void setup() {
        heapBase = Arena.global().allocate((long) SPANS_N << PAGE_SHIFT, 1 << PAGE_SHIFT).address();
        setupOneClass();
        setupGoShape();
    }

    @Setup(Level.Iteration)
    public void own() {
        long tid = Thread.currentThread().threadId();
        for (int i = 0; i < oneSlots.length; i++) {
            oneSlots[i].owner = tid;
            goSlots[i].owner = tid;
        }
    }

    /** Frees a mark word's slots in place and restarts the span at slot 0 (every slot was freed). */
    static void sweep(long[] marks, int from, int words) {
        for (int w = from; w < from + words; w++) {
            if ((long) MARKS.getAndSet(marks, w, 0L) == 0) {
                throw new IllegalStateException("a pair left a slot allocated");
            }
        }
    }

    // ───────────────────────── oneClass ─────────────────────────

    static final class OneCache {
        volatile int lease;
        long owner;
        long allocCache;
        int freeIndex;
        int span;
        long base;
    }

    final OneCache[] oneSlots = new OneCache[8];
    final int[] pageSpan = new int[SPANS_N];
    final int[] spanFreeIndex = new int[SPANS_N];
    final long[] oneMarks = new long[SPANS_N * (SLOTS / 32)];

    void setupOneClass() {
        for (int i = 0; i < SPANS_N; i++) {
            pageSpan[i] = i;
        }
        OneCache c = new OneCache();
        c.base = heapBase;
        c.allocCache = ~0L;
        java.util.Arrays.fill(oneSlots, c);
    }

    long oneAlloc() {
        long tid = Thread.currentThread().threadId();
        OneCache[] t = oneSlots;
        OneCache c = t[(int) tid & (t.length - 1)];
        if (c.owner != tid || !LEASE.compareAndSet(c, 0, 1)) {
            throw new IllegalStateException("the model has one thread");
        }
        try {
            long cache = c.allocCache;
            int bit = Long.numberOfTrailingZeros(cache);
            int idx = c.freeIndex + bit;
            if (bit < 64 && ((idx + 1) & 63) != 0) {
                c.allocCache = cache >>> (bit + 1);
                c.freeIndex = idx + 1;
                INTS.setRelease(spanFreeIndex, c.span, idx + 1);
                return c.base + idx * SIZE;
            }
            return oneRefill(c);
        } finally {
            LEASE.setRelease(c, 0);
        }
    }

    long oneRefill(OneCache c) {
        int idx = c.freeIndex + Long.numberOfTrailingZeros(c.allocCache);
        if (idx >= SLOTS) {
            sweep(oneMarks, c.span * (SLOTS / 32), SLOTS / 32);
            idx = 0;
        }
        c.freeIndex = idx + 1;
        c.allocCache = idx + 1 < SLOTS ? -1L : 0L; // the slots above were never handed out since the sweep
        INTS.setRelease(spanFreeIndex, c.span, idx + 1);
        return c.base + idx * SIZE;
    }

    void oneFree(long addr) {
        long page = (addr - heapBase) >>> PAGE_SHIFT;
        int[] ps = pageSpan;
        if (page >= ps.length) {
            throw new IllegalArgumentException("foreign address");
        }
        int span = ps[(int) page];
        long off = addr - heapBase - ((long) span << PAGE_SHIFT);
        int idx = (int) ((off * MAGIC) >>> 32);
        if (Integer.compareUnsigned(idx, SLOTS) >= 0 || idx * SIZE != off) {
            throw new IllegalArgumentException("interior address");
        }
        if (idx >= (int) INTS.getAcquire(spanFreeIndex, span)) {
            throw new IllegalStateException("never allocated");
        }
        markFree(oneMarks, span * (SLOTS / 32) + (idx >>> 5), idx << 1);
    }

    static void markFree(long[] marks, int w, int shift) {
        if ((marks[w] & (3L << shift)) != 0) {
            throw new IllegalStateException("double free");
        }
        long old = (long) MARKS.getAndAdd(marks, w, 1L << shift);
        if ((old & (3L << shift)) != 0) {
            throw new IllegalStateException("double free (raced)");
        }
    }

    @Benchmark
    public long oneClass() {
        long p = oneAlloc();
        oneFree(p);
        return p;
    }

    // ───────────────────────── goShape ─────────────────────────

    static final class Span {
        long base;
        long elemSize;
        int nelems;
        long divMagic;
        int smallSlots;
        int freeIndex;
        long allocCache;
        int allocCount;
        final long[] marks = new long[SLOTS / 32];
        volatile boolean notifyCentral;
        /** Owned model: frees by the holder of the P caching the span, one bit per slot, plain. */
        final long[] local = new long[SLOTS / 64];
        Object cachedBy;
    }

    static final class GoCache {
        volatile int lease;
        long owner;
        final Span[] alloc = new Span[136];
    }

    /** Size (≤ 1 KiB) / 8 → span class; only the 16-byte class (span class 2) is used. */
    static final byte[] CLASS_OF = new byte[129];
    final GoCache[] goSlots = new GoCache[8];
    volatile Span[] spans;
    volatile boolean closed;

    void setupGoShape() {
        java.util.Arrays.fill(CLASS_OF, (byte) 4);
        CLASS_OF[0] = CLASS_OF[1] = CLASS_OF[2] = 2;
        Span[] table = new Span[SPANS_N];
        GoCache c = new GoCache();
        for (int sc = 0; sc < c.alloc.length; sc++) {
            Span s = new Span();
            s.base = heapBase + ((long) (sc % SPANS_N) << PAGE_SHIFT);
            s.elemSize = SIZE;
            s.nelems = s.smallSlots = SLOTS;
            s.divMagic = MAGIC;
            s.allocCache = -1L;
            c.alloc[sc] = s;
            if (sc < SPANS_N) {
                table[sc] = s;
            }
        }
        spans = table;
        java.util.Arrays.fill(goSlots, c);
    }

    long goAlloc(long size) {
        if (Long.compareUnsigned(size - 16, 1024 - 16) > 0) {
            throw new IllegalArgumentException("the model serves 16 B to 1 KiB");
        }
        int sc = CLASS_OF[(int) (size + 7) >>> 3];
        long tid = Thread.currentThread().threadId();
        GoCache[] t = goSlots;
        GoCache c = t[(int) tid & (t.length - 1)];
        if (c.owner != tid || c.lease != 0 || !CACHE_LEASE.compareAndSet(c, 0, 1) || closed) {
            throw new IllegalStateException("the model has one thread");
        }
        try {
            Span s = c.alloc[sc];
            long cache = s.allocCache;
            int bit = Long.numberOfTrailingZeros(cache);
            int result = s.freeIndex + bit;
            if (bit < 64 && result < s.nelems && ((result + 1) & 63) != 0) {
                s.allocCache = cache >>> (bit + 1);
                FREE_INDEX.setRelease(s, result + 1);
                s.allocCount++;
                return s.base + result * s.elemSize;
            }
            return goRefill(s);
        } finally {
            CACHE_LEASE.setRelease(c, 0);
        }
    }

    static long goRefill(Span s) {
        int idx = s.freeIndex + Long.numberOfTrailingZeros(s.allocCache);
        if (idx >= s.nelems) {
            sweep(s.marks, 0, s.marks.length);
            s.allocCount = 0;
            idx = 0;
        }
        s.allocCount++;
        FREE_INDEX.setRelease(s, idx + 1);
        s.allocCache = -1L;
        return s.base + idx * s.elemSize;
    }

    void goFree(long addr) {
        Span[] t = spans;
        long page = (addr - heapBase) >>> PAGE_SHIFT;
        Span s = page < t.length ? (Span) SPANS.getAcquire(t, (int) page) : null;
        if (s == null) {
            throw new IllegalArgumentException("foreign address");
        }
        long off = addr - s.base;
        int idx = (int) ((off * s.divMagic) >>> 32);
        if (Integer.compareUnsigned(idx, s.smallSlots) >= 0 || idx * s.elemSize != off) {
            throw new IllegalArgumentException("interior address");
        }
        if (idx >= (int) FREE_INDEX.getAcquire(s)) {
            throw new IllegalStateException("never allocated");
        }
        markFree(s.marks, idx >>> 5, idx << 1);
        if (s.notifyCentral) {
            throw new IllegalStateException("the model has no central");
        }
    }

    @Benchmark
    public long goShape() {
        long p = goAlloc(SIZE);
        goFree(p);
        return p;
    }

    // ───────────────────────── goShapeOwned ─────────────────────────

    /** The held P of the owned model (its own spans), and the thread holding it. */
    GoCache owned;
    Thread holder;
    /** The owned model's spans table (page → span), as {@link #spans} is goShape's. */
    volatile Span[] ownedSpans;

    @Setup(Level.Iteration)
    public void hold() {
        if (owned == null) {
            owned = new GoCache();
            for (int sc = 0; sc < owned.alloc.length; sc++) {
                Span s = new Span();
                s.base = heapBase + ((long) (sc % SPANS_N) << PAGE_SHIFT);
                s.elemSize = SIZE;
                s.nelems = s.smallSlots = SLOTS;
                s.divMagic = MAGIC;
                s.allocCache = -1L;
                s.cachedBy = owned;
                owned.alloc[sc] = s;
            }
            Span[] table = new Span[SPANS_N];
            System.arraycopy(owned.alloc, 0, table, 0, SPANS_N);
            ownedSpans = table;
        }
        holder = Thread.currentThread();
    }

    long ownedAlloc(long size) {
        if (Thread.currentThread() != holder || Long.compareUnsigned(size - 16, 1024 - 16) > 0) {
            throw new IllegalStateException("not the holder, or not 16 B to 1 KiB");
        }
        Span s = owned.alloc[CLASS_OF[(int) (size + 7) >>> 3]];
        long cache = s.allocCache;
        int bit = Long.numberOfTrailingZeros(cache);
        int result = s.freeIndex + bit;
        if (bit < 64 && result < s.nelems && ((result + 1) & 63) != 0) {
            s.allocCache = cache >>> (bit + 1);
            FREE_INDEX.setRelease(s, result + 1); // a plain store on x86 and ARMv8 stlr: no lock
            s.allocCount++;
            return s.base + result * s.elemSize;
        }
        return ownedRefill(s);
    }

    static long ownedRefill(Span s) {
        int idx = s.freeIndex + Long.numberOfTrailingZeros(s.allocCache);
        if (idx >= s.nelems) {
            for (int w = 0; w < s.local.length; w++) {
                if (s.local[w] != -1L) {
                    throw new IllegalStateException("a pair left a slot allocated");
                }
                s.local[w] = 0;
            }
            s.allocCount = 0;
            idx = 0;
        }
        s.allocCount++;
        FREE_INDEX.setRelease(s, idx + 1);
        s.allocCache = -1L;
        return s.base + idx * s.elemSize;
    }

    void ownedFree(long addr) {
        if (Thread.currentThread() != holder) {
            throw new IllegalStateException("not the holder");
        }
        Span[] t = ownedSpans;
        long page = (addr - heapBase) >>> PAGE_SHIFT;
        Span s = page < t.length ? (Span) SPANS.getAcquire(t, (int) page) : null;
        if (s == null) {
            throw new IllegalArgumentException("foreign address");
        }
        long off = addr - s.base;
        int idx = (int) ((off * s.divMagic) >>> 32);
        if (Integer.compareUnsigned(idx, s.smallSlots) >= 0 || idx * s.elemSize != off) {
            throw new IllegalArgumentException("interior address");
        }
        if (idx >= (int) FREE_INDEX.getAcquire(s)) {
            throw new IllegalStateException("never allocated");
        }
        if (s.cachedBy != owned) {
            throw new IllegalStateException("the model frees only into its own spans");
        }
        int w = idx >>> 6;
        long bit = 1L << idx;
        long local = s.local[w];
        if ((local & bit) != 0 || (s.marks[idx >>> 5] & (3L << (idx << 1))) != 0) {
            throw new IllegalStateException("double free"); // a local mark, or another thread's atomic one
        }
        s.local[w] = local | bit;
    }

    @Benchmark
    public long goShapeOwned() {
        long p = ownedAlloc(SIZE);
        ownedFree(p);
        return p;
    }
}
