package io.gomem.heap;

import io.gomem.GoHeap;
import io.gomem.os.MemoryLimitExceededError;
import io.gomem.os.OsMemory;
import io.gomem.stats.MemStats;
import io.gomem.stats.StatsDump;

import javax.management.ObjectName;
import java.util.function.Function;

/**
 * The heap's entry points (Go's {@code malloc.go}): the one implementation of {@link GoHeap}.
 * It routes each request by size (tiny, small, large), zeroes inside the lease, checks bad input,
 * and frees; the components below do the work.
 *
 * <h2>Call tree</h2>
 * <pre>
 *   allocate(size)                     size → span class, then under one P lease ({@link Procs}):
 *     ├─ MCache.allocSmall(sc)         the fast path: the P's span for the class
 *     ├─ MCache.allocTiny(size)        under 16 B, not zeroed: a shared 16-byte block
 *     └─ allocateLarge                 a kept span of the P, else MHeap.allocLarge (heap lock)
 *   free(addr)                         no lease: the flat spans table → the span → its free mark
 *     └─ freeSlow                      large and tiny objects, and every error
 *   memStats()                         MStats' counters, cut under the heap lock: no stop-the-world
 *   allocChunk, freeChunk              an arena's chunks (a lease, a P's kept span or the heap), for
 *                                      the jar's JDK 25 part ({@link Views}: segments and arenas)
 * </pre>
 *
 * <h2>What it owns</h2>
 * The hot state, in its own fields so that the fast paths start one load from their data: the
 * P table the lease fast path reads ({@link #picks}, published by {@link Procs}) and the flat
 * spans table with its base ({@link #flat}, {@link #flatBase}, published by {@link MHeap}). The
 * components: {@link Procs} (who may touch heap memory), the {@link MCentral} of each span class,
 * the {@link MHeap} (with its {@link Scavenger}), the counters ({@link MStats}), what the jar's
 * JDK 25 part attaches for segments and arenas ({@link #views}), and the MXBeans registered for
 * this heap. The debug switches ({@link #EFENCE}, {@link #CLOBBERFREE}) are constants of the JVM.
 *
 * <h2>Guards</h2>
 * {@link #picks}: volatile, written only by {@link Procs#publishPicksTo} and the stop-the-world
 * (under its lock). {@link #flat}: volatile, written only by the heap under its lock, after
 * {@link #flatBase}. {@link #views}: volatile, written once under {@link #viewsLock}, which
 * {@link #close()} holds throughout, so none attaches to a closing heap. The MXBean list: this
 * object's monitor. Everything else is final; the
 * invariant of who may touch heap memory is {@link Procs}'.
 */
public final class Malloc implements GoHeap, SpanTable, Procs.Table, Background.Job, HeapEvents.StatsSource {
    /** Largest object size, and largest alignment: 8 TiB (see {@link MHeap#MAX_ALLOC}). */
    static final long MAX_ALLOC = MHeap.MAX_ALLOC;

    /**
     * {@code gomem.debug=efence} (Go's {@code GODEBUG=efence=1}): every object gets pages of its
     * own, and a free faults them for good ({@link MHeap#faultSpan}) instead of reusing them, so
     * a stale access through the address faults at once. Constant: a JIT folds it away when off.
     */
    static final boolean EFENCE = io.gomem.internal.Options.debugFlag("efence");
    /**
     * {@code gomem.debug=clobberfree} (Go's {@code GODEBUG=clobberfree=1}): a free fills the
     * object with {@link #CLOBBER_PATTERN} before the slot can be reused, so a stale read shows it.
     */
    static final boolean CLOBBERFREE = io.gomem.internal.Options.debugFlag("clobberfree");
    /** What clobberfree writes: 0xdeadbeef in every 4 bytes, as Go's. */
    static final long CLOBBER_PATTERN = 0xdeadbeefdeadbeefL;

    private volatile MCache[] picks;
    volatile MSpan[] flat;
    private long flatBase;

    final Procs procs;
    /**
     * The central span lists: {@code centrals[shard][spanClass]}, several sets (jemalloc's arenas,
     * at the level of Go's mcentral) so that Ps refilling the same class do not all queue on one
     * lock; P i refills from set {@code i % shards}. A span belongs to one set for its life in
     * use ({@link MSpan#shard}); frees from any thread go to that set. {@code central} is every
     * central of every set, for the loops over all of them.
     */
    final MCentral[][] centrals;
    final MCentral[] central;
    final MHeap heap;
    final MStats stats;
    private final HeapMXBeans mxBeans = new HeapMXBeans();
    /**
     * What the jar's JDK 25 part keeps for this heap ({@code HeapSegments}: the scope of heap
     * segments, the arenas' chunk cache and registry of open arenas), attached at its first use
     * ({@link #views(Function)}); null until then, and always below JDK 25.
     */
    private volatile Views views;
    private final Object viewsLock = new Object();

    /**
     * What the heap asks of the state its JDK 25 part attaches ({@code HeapSegments}): the
     * arenas' part in close, memory return and statistics, and the segments' scope.
     */
    public interface Views {
        /**
         * Before the heap closes: refuses (IllegalStateException, nothing changed) while a live
         * thread's confined arena is open; closes open shared arenas; no arena opens afterwards.
         */
        void closeArenas();

        /** After a refused close: arenas may open again. */
        void reopenArenas();

        /** Inside close's stop-the-world, before the memory goes: every heap segment dies. */
        void closeScope();

        /** Closed arenas' cached chunks back to the heap ({@link #releaseMemory()}). */
        void releaseCached();

        /** The background's periodic trim of chunk caches no arena took from. */
        void trim();

        /** {open arenas, bytes they hold, bytes cached, bytes faulted}. */
        long[] arenaFigures();
    }

    /**
     * The settings of a heap.
     *
     * @param procs              P slots (caches)
     * @param softLimit          soft limit on Ready heap bytes, Long.MAX_VALUE for none
     * @param hardLimit          hard limit on Ready heap bytes, Long.MAX_VALUE for none
     * @param retainExtraPercent the scavenger's goal: Ready at most in-use × (100 + this) / 100
     * @param cpuPercent         the background scavenger's CPU budget, percent of one CPU
     * @param maxHeld            Ps that {@link GoHeap#local()} scopes may hold at once (see {@link Procs})
     * @param shards             sets of central span lists (see {@link #centrals}); 0 for four per CPU, at most 64
     * @param maxProcs           the most P slots the heap adds while threads find every P busy (see {@link Procs})
     */
    public record Config(int procs, long softLimit, long hardLimit, int retainExtraPercent, int cpuPercent,
            int maxHeld, int shards, int maxProcs) {
        public Config {
            if (procs < 1 || procs > 4096) {
                throw new IllegalArgumentException("procs " + procs + " must be between 1 and 4096");
            }
            if (maxProcs < procs || maxProcs > 4096) {
                throw new IllegalArgumentException("maxProcs " + maxProcs + " must be between procs (" + procs + ") and 4096");
            }
            if (shards < 0 || shards > 4096) {
                throw new IllegalArgumentException("shards " + shards + " must be between 0 (default) and 4096");
            }
            if (maxHeld < 0 || maxHeld > 65536) {
                throw new IllegalArgumentException("maxHeld " + maxHeld + " must be between 0 and 65536");
            }
            new Scavenger.Config(softLimit, hardLimit, retainExtraPercent, cpuPercent); // validates
        }

        /** Defaults with {@code procs} caches and no limits. */
        public static Config of(int procs) {
            return new Config(procs, Long.MAX_VALUE, Long.MAX_VALUE, 10, 1, DEFAULT_MAX_HELD, 0, procs);
        }
    }

    /** Ps held by scopes at once, by default (see {@link GoHeap.Builder#maxLocals}). */
    public static final int DEFAULT_MAX_HELD = 256;

    private Malloc(OsMemory os, Config config) {
        this.stats = new MStats();
        this.heap = new MHeap(os, new Scavenger.Config(config.softLimit(), config.hardLimit(),
                config.retainExtraPercent(), config.cpuPercent()), stats);
        int shards = config.shards() > 0 ? config.shards()
                : Math.min(64, 4 * Runtime.getRuntime().availableProcessors());
        this.centrals = new MCentral[shards][];
        java.util.List<MCentral> all = new java.util.ArrayList<>();
        for (int i = 0; i < shards; i++) {
            centrals[i] = MCentral.forEveryClass(heap, stats, i);
            for (MCentral c : centrals[i]) {
                if (c != null) {
                    all.add(c);
                }
            }
        }
        this.central = all.toArray(new MCentral[0]);
        this.procs = new Procs(config.procs(), config.maxProcs(), config.maxHeld(), heap, centrals, stats);
    }

    /**
     * A heap over {@code os}: built, then wired (the tables published into its fields), then
     * registered with the background thread and the periodic JFR event (the JDK 25 part's
     * segments and arenas attach later, at their first use: {@link #views}). The constructor hands {@code this} to nobody.
     */
    public static Malloc create(OsMemory os, Config config) {
        Malloc m = new Malloc(os, config);
        m.heap.publishSpansTo(m);
        m.procs.publishPicksTo(m);
        Background.register(m);
        HeapEvents.register(m);
        return m;
    }

    @Override
    public void publishSpans(MSpan[] table, long base) {
        flatBase = base;
        flat = table;
    }

    @Override
    public void publishPicks(MCache[] table) {
        picks = table;
    }

    // ───────────────────────────── allocation ─────────────────────────────

    /**
     * Leases a P: the cache this thread's id picks if this thread owns it (one CAS), else
     * {@link Procs#leaseSlow}. While the world stops (and after close) the table holds only a
     * sentinel whose lease is closed, so every caller goes the slow way and waits.
     */
    private MCache lease() {
        long tid = Thread.currentThread().getId(); // threadId() from JDK 19: the same value
        MCache[] t = picks;
        MCache c = t[(int) tid & (t.length - 1)];
        if (c.owner == tid && c.tryLease()) {
            return c; // no closed check: close leaves every lease taken (MCache.closeLease)
        }
        return procs.leaseSlow(tid);
    }

    /**
     * The raw path's fast case, kept small so that it inlines into callers: {@code size} bytes of
     * a small class, not zeroed, 8-byte aligned. Everything else goes to {@link #allocate(long, long, boolean)}.
     */
    @Override
    public long allocate(long size) {
        if (EFENCE) {
            return allocate(size, 1, false);
        }
        int sc;
        if (Long.compareUnsigned(size - SizeClasses.TINY_SIZE, SizeClasses.SMALL_SIZE_MAX - SizeClasses.TINY_SIZE) <= 0) {
            sc = SizeClasses.noscanSpanClass8(size);
        } else if (size > SizeClasses.SMALL_SIZE_MAX && size <= SizeClasses.MAX_SMALL_SIZE) {
            sc = SizeClasses.spanClass(SizeClasses.sizeToClass(size), true);
        } else {
            return allocate(size, 1, false);
        }
        try {
            return allocSmall(sc);
        } catch (MemoryLimitExceededError e) {
            return retryAfterLimit(size, 1, false);
        }
    }

    @Override
    public long allocateAligned(long size, long alignment) {
        return allocate(size, alignment, false);
    }

    @Override
    public long allocateZeroed(long size) {
        return allocateZeroed(size, 1);
    }

    /** One small object of span class {@code sc}, not zeroed, under a lease. */
    private long allocSmall(int sc) {
        MCache c = lease();
        try {
            return c.allocSmall(sc);
        } finally {
            c.release();
        }
    }

    /**
     * The zeroed path's fast case (the MemorySegment API's), kept small like {@link #allocate(long)}:
     * 16 B to 1 KiB, alignment 1, 2, 4 or 8; the slot is cleared only if its span may hold old
     * data. Everything else goes to {@link #allocate(long, long, boolean)}.
     */
    @Override
    public long allocateZeroed(long size, long align) {
        if (EFENCE) {
            return allocate(size, align, true);
        }
        if (Long.compareUnsigned(size - SizeClasses.TINY_SIZE, SizeClasses.SMALL_SIZE_MAX - SizeClasses.TINY_SIZE) <= 0
                && Long.compareUnsigned(align - 1, 7) <= 0 && (align & (align - 1)) == 0) {
            try {
                return allocSmall(SizeClasses.noscanSpanClass8(size) - 1, true); // the zeroing class of the size
            } catch (MemoryLimitExceededError e) {
                return retryAfterLimit(size, align, true);
            }
        }
        return allocate(size, align, true);
    }

    /**
     * {@code size} bytes (0 ≤ size ≤ {@link #MAX_ALLOC}) aligned to {@code align} (a power of two),
     * zeroed if {@code zero}; returns the address.
     */
    long allocate(long size, long align, boolean zero) {
        try {
            return allocateOnce(size, align, zero);
        } catch (MemoryLimitExceededError e) {
            return retryAfterLimit(size, align, zero);
        }
    }

    /**
     * After an allocation met the hard limit: returns every free page to the OS (the P caches
     * flushed, their kept large spans given back, every span class swept: all that frees made
     * free) and tries once more; if it still does not fit, the limit error stands.
     */
    private long retryAfterLimit(long size, long align, boolean zero) {
        releaseMemory();
        return allocateOnce(size, align, zero);
    }

    /** {@link #allocate(long, long, boolean)} without the retry after the hard limit. */
    private long allocateOnce(long size, long align, boolean zero) {
        checkSize(size, align);
        MCache c = lease();
        try {
            return allocateOn(c, size, align, zero);
        } finally {
            c.release();
        }
    }

    /**
     * Any allocation on cache {@code c}, which the caller holds (a lease for this operation, or a
     * held P): tiny, small (over-aligned ones in the smallest class whose size is a multiple of
     * the alignment) or large. Memory is zeroed (if asked and it may be dirty) before the caller
     * gives the cache back, so that close, which waits for every lease, never unmaps memory under
     * the fill. Checked sizes only ({@link #checkSize}).
     */
    long allocateOn(MCache c, long size, long align, boolean zero) {
        if (!EFENCE && size <= SizeClasses.MAX_SMALL_SIZE && align <= SizeClasses.PAGE_SIZE) {
            if (!zero && size < SizeClasses.TINY_SIZE && size > 0 && align <= 8 && (size & (align - 1)) == 0) {
                return c.allocTiny(size);
            }
            // Every class size is a multiple of 8 and spans start on a page: 8-byte aligned.
            int cls = SizeClasses.sizeToClass(Math.max(size, align));
            while (align > 8 && cls < SizeClasses.NUM_SIZE_CLASSES && SizeClasses.classSize(cls) % align != 0) {
                cls++;
            }
            if (cls < SizeClasses.NUM_SIZE_CLASSES) {
                return allocSmallOn(c, SizeClasses.spanClass(cls, !zero), zero);
            }
        }
        return allocateLargeOn(c, size, align, zero);
    }

    /** A large object on cache {@code c} (held by the caller): a kept span of the same page count, else a new span from the heap. */
    private long allocateLargeOn(MCache c, long size, long align, boolean zero) {
        long npages = (size + SizeClasses.PAGE_SIZE - 1) >>> SizeClasses.PAGE_SHIFT;
        MSpan s = npages <= MCache.LARGE_MAX_PAGES && align <= SizeClasses.PAGE_SIZE
                ? c.reuseLarge((int) npages, size) : null;
        if (s == null) {
            s = heap.allocLarge(size, align, c.shard); // counted in this P's shard: no shared atomics
        }
        long p = s.base + s.largeOffset;
        if (zero && s.needZero) {
            Memclr.clear(p, size);
        }
        return p;
    }

    /** One small object of span class {@code sc}, under a lease, cleared if {@code zero} and its span may hold old data. */
    private long allocSmall(int sc, boolean zero) {
        MCache c = lease();
        try {
            return allocSmallOn(c, sc, zero);
        } finally {
            c.release();
        }
    }

    /** {@link #allocSmall(int, boolean)} on cache {@code c}, which the caller holds. */
    static long allocSmallOn(MCache c, int sc, boolean zero) {
        long p = c.allocSmall(sc);
        if (zero && c.alloc[sc].needZero) { // the span that served p
            Memclr.clear(p, SizeClasses.classSize(SizeClasses.sizeClassOf(sc)));
        }
        return p;
    }

    static void checkSize(long size, long align) {
        if (size < 0) {
            throw new IllegalArgumentException("size " + size + " is negative: sizes are 0 to " + MAX_ALLOC + " bytes");
        }
        if (size > MAX_ALLOC) {
            throw new IllegalArgumentException("size " + size + " exceeds the largest object, " + MAX_ALLOC + " bytes (8 TiB)");
        }
        if (align <= 0 || (align & (align - 1)) != 0) {
            throw new IllegalArgumentException("alignment " + align + " is not a power of two");
        }
        if (align > MAX_ALLOC) {
            throw new IllegalArgumentException("alignment " + align + " exceeds the largest, " + MAX_ALLOC + " bytes (8 TiB)");
        }
    }

    // ───────────────────────────── free ─────────────────────────────

    @Override
    public void free(long address) {
        free(address, 0);
    }

    /**
     * Frees what an allocate method returned, refusing (IllegalArgumentException, nothing freed)
     * if {@code size} is more than the object's usable size. Any thread.
     */
    @Override
    public void free(long address, long size) {
        MSpan[] t = flat; // the flat spans table first (the common case), then the arena index
        long page = (address - flatBase) >>> SizeClasses.PAGE_SHIFT;
        MSpan s = page < t.length ? (MSpan) MHeap.SPANS.getAcquire(t, (int) page) : heap.spanOf(address); // null after close
        int idx;
        // A small, non-tiny object's start, and a size within its slot (unsigned: a negative size goes the slow way).
        if (s != null && (idx = s.slotOf(address)) >= 0 && Long.compareUnsigned(size, s.elemSize) <= 0) {
            if (CLOBBERFREE) {
                clobberSmall(s, idx, address);
            }
            if (s.markFree(idx, address)) {
                centrals[s.shard][s.spanClass].onFree(s);
            }
            return;
        }
        freeSlow(address, size, s, null);
    }

    /**
     * clobberfree: fills a small object about to be freed, if it is live (a double free is
     * refused by the free mark after this, with nothing written: the slot may be someone's now).
     * A free racing another free of the same object may write before one of them is refused.
     */
    static void clobberSmall(MSpan s, int idx, long address) {
        if (s.isAllocated(idx) && !s.isFreePending(idx)) {
            clobber(address, s.elemSize);
        }
    }

    /** Fills [p, p + n) with {@link #CLOBBER_PATTERN}. */
    static void clobber(long p, long n) {
        Memclr.fill(p, n, CLOBBER_PATTERN);
    }

    /** The span holding {@code address} (the flat table, then the arena index); null if none (and after close). */
    MSpan spanAt(long address) {
        MSpan[] t = flat;
        long page = (address - flatBase) >>> SizeClasses.PAGE_SHIFT;
        return page < t.length ? (MSpan) MHeap.SPANS.getAcquire(t, (int) page) : heap.spanOf(address);
    }

    private static IllegalArgumentException longerThanBlock(long addr, long length, long usable) {
        return new IllegalArgumentException("free of " + length + " B at 0x" + Long.toHexString(addr) + ": longer than the "
                + usable + " B usable in the block there, so not a segment this heap returned; free takes the segment"
                + " allocate returned");
    }

    /**
     * Everything but a small object's free: large and tiny objects, and every error. {@code held}:
     * the cache of the caller's held P, or null.
     */
    void freeSlow(long addr, long length, MSpan s, MCache held) {
        if (procs.isClosed()) {
            throw Procs.closedException();
        }
        if (length < 0) {
            throw new IllegalArgumentException("free of 0x" + Long.toHexString(addr) + " with size " + length
                    + ": a size is never negative");
        }
        if (s == null) {
            throw heap.isMapped(addr)
                    ? new IllegalStateException("free of 0x" + Long.toHexString(addr) + ": no live object there"
                            + " (a double free of an object whose pages went back to the heap, or never allocated)")
                    : new IllegalArgumentException("free of 0x" + Long.toHexString(addr)
                            + ": not an address this heap returned (no span of this heap holds it)");
        }
        switch (s.state) {
            case MSpan.STATE_LARGE -> {
                if (s.largeState == MSpan.LARGE_ARENA) {
                    throw MSpan.arenaMemory(addr);
                }
                long obj = s.base + s.largeOffset;
                if (addr != obj) {
                    throw new IllegalArgumentException("free of 0x" + Long.toHexString(addr)
                            + ": an interior address of the " + s.elemSize + " B object at 0x" + Long.toHexString(obj)
                            + "; free takes the address allocate returned");
                }
                if (length > s.elemSize) {
                    throw longerThanBlock(addr, length, s.elemSize);
                }
                if (CLOBBERFREE && s.largeState == MSpan.LARGE_LIVE) {
                    clobber(addr, s.elemSize);
                }
                s.markLargeFree(addr);
                if (EFENCE) {
                    heap.faultSpan(s); // never reused: a stale access faults
                    return;
                }
                if (held != null) {
                    freeLargeOn(held, s);
                } else {
                    freeLarge(s);
                }
            }
            case MSpan.STATE_SMALL -> {
                if (s.spanClass == SizeClasses.TINY_SPAN_CLASS) {
                    long usable = length > 0 ? MCache.tinyUsable(s, addr) : 0;
                    if (usable > 0 && length > usable) {
                        throw longerThanBlock(addr, length, usable);
                    }
                    if (CLOBBERFREE) {
                        long live = MCache.tinyUsable(s, addr); // 0 unless a live tiny object starts here
                        if (live > 0) {
                            clobber(addr, live);
                        }
                    }
                    MCache.freeTiny(centrals[s.shard][SizeClasses.TINY_SPAN_CLASS], s, addr);
                    return;
                }
                if (s.slotOf(addr) >= 0) {
                    throw longerThanBlock(addr, length, s.elemSize);
                }
                long off = addr - s.base;
                long start = s.base + Math.min(off / s.elemSize, s.nelems - 1) * s.elemSize;
                throw new IllegalArgumentException("free of 0x" + Long.toHexString(addr)
                        + ": an interior address (the " + s.elemSize + " B slot starts at 0x" + Long.toHexString(start)
                        + "); free takes the address allocate returned");
            }
            case MSpan.STATE_FAULTED -> throw s.largeState == MSpan.LARGE_QUARANTINED
                    ? new IllegalArgumentException("free of 0x" + Long.toHexString(addr) + ": memory of a closed arena"
                            + " (faulted and quarantined by gomem.debug=arenafault)")
                    : new IllegalStateException("double free of 0x" + Long.toHexString(addr) + ": the object was freed"
                            + " before (gomem.debug=efence keeps a freed object's pages faulted)");
            default -> throw new IllegalStateException("free of 0x" + Long.toHexString(addr)
                    + ": no live object there (double free, or never allocated)");
        }
    }

    /**
     * The span of a large object just freed: kept by this thread's own P cache, or any P whose
     * lease is free right now (a free never waits for a lease), if it fits; else back to the
     * heap, counted in that P's shard while a lease is held (in the shared counters without one).
     */
    private void freeLarge(MSpan s) {
        MCache c = procs.tryLeaseForOffer(Thread.currentThread().getId());
        if (c == null) {
            heap.freeSpan(s);
            return;
        }
        try {
            freeLargeOn(c, s);
        } finally {
            c.release();
        }
    }

    /** The span of a large object just freed, on cache {@code c} (held by the caller): kept there if it fits, else back to the heap. */
    private void freeLargeOn(MCache c, MSpan s) {
        if (s.npages > MCache.LARGE_MAX_PAGES || !c.keepLarge(s)) {
            heap.freeSpan(s, c.shard);
        }
    }

    /**
     * The usable size of the live object at {@code address}: its slot size, the large object's
     * size, or a tiny object's own bytes (up to where the next object in its block starts), so
     * that the usable ranges of live objects never overlap. Throws for anything that is not a
     * live object's start (freed, interior, foreign).
     */
    @Override
    public long usableSize(long address) {
        if (procs.isClosed()) {
            throw Procs.closedException();
        }
        MSpan s = heap.spanOf(address);
        if (s != null && s.state == MSpan.STATE_SMALL) {
            if (s.spanClass == SizeClasses.TINY_SPAN_CLASS) {
                long n = MCache.tinyUsable(s, address);
                if (n > 0) {
                    return n;
                }
            } else {
                int idx = s.slotOf(address);
                if (idx >= 0 && s.isAllocated(idx) && !s.isFreePending(idx)) {
                    return s.elemSize;
                }
            }
        } else if (s != null && s.state == MSpan.STATE_LARGE && s.largeState == 1 && address == s.base + s.largeOffset) {
            return s.elemSize;
        }
        throw new IllegalArgumentException("usableSize of 0x" + Long.toHexString(address)
                + ": not a live object's start (freed, an interior address, or not from this heap)");
    }

    /**
     * The state the jar's JDK 25 part keeps for this heap, made by {@code make} at the first call
     * (once: later calls return it). Throws IllegalStateException if the heap is closed; waits
     * while it closes.
     */
    public Views views(Function<Malloc, Views> make) {
        Views v = views;
        if (v != null) {
            return v;
        }
        synchronized (viewsLock) {
            if (views == null) {
                if (isClosed()) {
                    throw new IllegalStateException("heap is closed");
                }
                views = make.apply(this);
            }
            return views;
        }
    }

    /** {open arenas, bytes they hold, bytes cached, bytes faulted}: zeros with no arenas' state attached. */
    private long[] arenaFigures() {
        Views v = views;
        return v == null ? new long[4] : v.arenaFigures();
    }

    // ───────────────────────────── memory back to the OS ─────────────────────────────

    /**
     * Flushes every P's cache, sweeps every span class and returns every free page to the OS
     * (Go's {@code debug.FreeOSMemory}). The caches are flushed and the classes swept with the
     * world stopped; the pages go back after it restarts, with neither the heap lock nor a
     * central lock held across any system call, so allocation runs meanwhile. Returns the bytes
     * released.
     */
    @Override
    public long releaseMemory() {
        Views v = views;
        if (v != null) {
            v.releaseCached(); // to the heap first: the P caches may keep some, flushed next
        }
        procs.stopTheWorld(() -> {
            for (MCache c : procs.stoppedCaches()) {
                c.releaseAll();
            }
            sweepCentrals();
        });
        long released = heap.releaseFreePages();
        for (MCentral c : central) {
            if (c != null) {
                released += c.releaseFreeOsPages(OsMemory.PAGE_SIZE);
            }
        }
        return released;
    }

    /** Sweeps every span class, so that wholly free spans go back to the page heap. */
    void sweepCentrals() {
        for (MCentral c : central) {
            if (c != null && !procs.isClosed()) {
                c.sweepAll();
            }
        }
    }

    // ───────────────────────────── statistics ─────────────────────────────

    /**
     * The Java-heap bytes of this heap's metadata, measured from the JVM's object layout
     * ({@link Metadata}): a span record (and the tiny masks some carry), the P caches with the
     * centrals, and the rest: the arenas' spans tables, the flat table, the page allocator's
     * chunks (Go counts the last in OtherSys too).
     */
    private MStats.MetaBytes metaBytes(MStats.Counters k) {
        long masks = Metadata.arrayBytes(int.class, SizeClasses.classObjects(SizeClasses.TINY_SIZE_CLASS));
        long caches = (procs.procs() + procs.heldCaches()) * Metadata.cacheBytes()
                + Metadata.centralBytes() * central.length;
        long other = k.arenas() * Metadata.arenaBytes() + Metadata.arrayBytes(MSpan.class, k.flatTablePages())
                + (k.mappedBytes() / PageAlloc.CHUNK_BYTES) * Metadata.chunkBytes();
        return new MStats.MetaBytes(Metadata.spanBytes(), masks, caches, other);
    }

    /**
     * The counters cut now (see {@link MStats}): no stop-the-world, no sweep. A P whose lease is
     * free is flushed first (what its cached spans handed out is counted), one P at a time; a
     * busy one is not waited for, and counts what it handed out at its next refill or flush.
     * With {@code exact}, every P is flushed (waiting for each lease in turn) and swept in place,
     * and every span class swept, before the cut: frees done before the call are then counted.
     */
    MStats.Counters snapshot(boolean exact) {
        if (procs.isClosed()) {
            throw Procs.closedException();
        }
        procs.forEachP(exact, c -> {
            if (exact) {
                c.dropTinyBlock(); // a tiny block counts as live exactly while a tiny object in it is
                c.sweepCached();
            }
            c.flushCounts();
        });
        if (exact) {
            sweepCentrals();
        }
        return heap.counters();
    }

    @Override
    public MemStats memStats() {
        return memStatsOf(snapshot(false));
    }

    @Override
    public MemStats memStatsSwept() {
        return memStatsOf(snapshot(true));
    }

    private MemStats memStatsOf(MStats.Counters k) {
        return MStats.memStats(k, metaBytes(k), heap.scavenger.softLimit, arenaFigures());
    }

    @Override
    public StatsDump statsDump() {
        return MStats.statsDump(snapshot(true), arenaFigures());
    }

    @Override
    public MemStats periodicMemStats() {
        return memStats();
    }

    @Override
    public StatsDump periodicStatsDump() {
        return MStats.statsDump(snapshot(false), arenaFigures());
    }

    /**
     * Go's {@code ReadMemStatsSlow}: with the world stopped, every cache flushed and every span
     * swept, and every central's lock held (so that no sweep runs), recounts from the spans what
     * the counters say, and throws IllegalStateException naming the first figure that differs.
     * A large object counts as live until its span goes back to the heap or into a P's keep.
     */
    private void crossCheckCounters() {
        procs.checkNoOtherScopes("checkInvariants"); // the world stopped: no scope opens or closes meanwhile
        MCache[] all = procs.stoppedCaches();
        for (MCache c : all) {
            c.dropTinyBlock();
            c.sweepCached();
            c.flushCounts();
        }
        sweepCentrals();
        java.util.List<MCentral> locked = new java.util.ArrayList<>();
        try {
            for (MCentral c : central) {
                if (c != null) {
                    c.lockForCheck();
                    locked.add(c);
                }
            }
            java.util.Set<MSpan> kept = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
            for (MCache c : all) {
                c.forEachKeptLarge(kept::add);
            }
            long[] live = new long[MStats.NSC];
            long[] spans = new long[MStats.NSC];
            long[] large = new long[4]; // live objects, live bytes, pages, kept spans
            long[] small = new long[2]; // live objects, live bytes
            MStats.Counters k = heap.recount(s -> {
                if (s.state == MSpan.STATE_FAULTED) {
                    return; // neither an object nor a span's pages any more (see MHeap.faultSpan)
                }
                if (s.state == MSpan.STATE_LARGE) {
                    large[2] += s.npages;
                    if (kept.contains(s)) {
                        large[3]++;
                    } else {
                        large[0]++;
                        large[1] += s.elemSize;
                    }
                } else {
                    spans[s.spanClass]++;
                    live[s.spanClass] += s.allocCount;
                    small[0] += s.allocCount;
                    small[1] += s.allocCount * s.elemSize;
                }
            });
            long[] c = k.counts();
            for (int sc = 0; sc < MStats.NSC; sc++) {
                checkCount("live objects of span class " + sc, c[MStats.MALLOCS + sc] - c[MStats.FREES + sc], live[sc]);
                checkCount("spans of span class " + sc, c[MStats.SPANS + sc], spans[sc]);
            }
            checkCount("live objects", c[MStats.LIVE_OBJECTS], small[0] + large[0]);
            checkCount("live bytes", c[MStats.LIVE_BYTES], small[1] + large[1]);
            checkCount("live large objects", c[MStats.LARGE_ALLOCS] - c[MStats.LARGE_FREES], large[0]);
            checkCount("pages of large spans", c[MStats.LARGE_PAGES], large[2]);
            checkCount("kept large spans", c[MStats.LARGE_KEPT_SPANS], large[3]);
            memStatsOf(k).checkInvariants();
            MStats.statsDump(k, arenaFigures()).checkTotals();
        } finally {
            for (MCentral c : locked) {
                c.unlockForCheck();
            }
        }
    }

    private static void checkCount(String what, long counted, long recounted) {
        if (counted != recounted) {
            throw new IllegalStateException("MemStats counters: " + what + " counted " + counted + ", recounted from the spans "
                    + recounted);
        }
    }

    /**
     * Live objects recomputed from every span's bitmaps (slow; world stopped), as
     * {objects, slot bytes, live tiny blocks, live tiny objects}: objects counts each tiny object;
     * Go's and MemStats' count is {@code objects - tinyObjects + tinyBlocks}. Pending frees count
     * as freed.
     */
    long[] liveObjectsSlow() {
        long[] r = new long[4];
        procs.stopTheWorld(() -> heap.forEachSpan(s -> {
            if (s.state == MSpan.STATE_FAULTED) {
                return;
            }
            if (s.state == MSpan.STATE_LARGE) {
                if (s.largeState == MSpan.LARGE_LIVE || s.largeState == MSpan.LARGE_ARENA) {
                    r[0]++;
                    r[1] += s.elemSize;
                }
            } else if (s.spanClass == SizeClasses.TINY_SPAN_CLASS) {
                for (int i = 0; i < s.nelems; i++) {
                    int live = MCache.tinyLive(s, i);
                    r[0] += live;
                    r[3] += live;
                }
                long blocks = s.allocCount - s.pendingFrees();
                r[2] += blocks;
                r[1] += blocks * s.elemSize;
            } else {
                long live = s.allocCount - s.pendingFrees();
                r[0] += live;
                r[1] += live * s.elemSize;
            }
        }));
        return r;
    }

    /** Spans held by all caches now (stops the world). */
    int cachedSpans() {
        int[] n = new int[1];
        procs.stopTheWorld(() -> {
            for (MCache c : procs.stoppedCaches()) {
                n[0] += c.cachedSpans();
            }
        });
        return n[0];
    }

    // ───────────────────────────── checks, background, close ─────────────────────────────

    /**
     * Checks every component's invariants with the world stopped: each P's cache, each central,
     * the page heap and the OS layer, and the counters against a recount from the spans. The
     * static size-class table is checked once per JVM, outside the stop-the-world.
     */
    @Override
    public void checkInvariants() {
        SizeClasses.checkInvariantsOnce();
        procs.stopTheWorld(() -> {
            procs.checkInvariants();
            for (MCentral c : central) {
                if (c != null) {
                    c.checkInvariants();
                }
            }
            heap.checkInvariants();
            crossCheckCounters();
        });
    }

    /**
     * The background thread's work each period: flush idle caches, sweep the centrals' spans
     * (so that wholly free ones go back to the page heap), then scavenge toward the goal within
     * the CPU budget.
     */
    @Override
    public void backgroundTick() {
        Views v = views;
        if (v != null) {
            v.trim();
        }
        procs.flushIdleCaches();
        sweepCentrals();
        if (!procs.isClosed()) {
            heap.scavengeBackground(Background.PERIOD_MS * 1_000_000L * heap.scavenger.cpuPercent / 100);
        }
    }

    @Override
    public int procs() {
        return procs.procs();
    }

    /**
     * A scope in which the calling thread holds a P (see {@link HeldP}): one synchronised
     * acquisition now, plain loads and stores per operation after. Throws if the heap is closed.
     */
    @Override
    public GoHeap.Local local() {
        return HeldP.open(this);
    }

    /** Scopes open now, and held-P caches made so far (for tests and the note on memory per thread). */
    int openScopes() {
        return procs.openScopes();
    }

    @Override
    public boolean isClosed() {
        return procs.isClosed();
    }

    @Override
    public ObjectName registerMXBean(String name) {
        return mxBeans.register(this, name);
    }

    /**
     * Returns every byte to the OS; the heap refuses all use afterwards. Idempotent. Refused
     * (IllegalStateException, nothing changed, the MXBeans still registered) while
     * {@link #local()} scopes or a live thread's confined arenas are open; open shared arenas
     * are closed first ({@link Views#closeArenas}). Holds {@link #viewsLock} throughout, so that
     * no segments' scope or arena registry attaches to a closing heap.
     */
    @Override
    public void close() {
        synchronized (viewsLock) {
            procs.checkCloseAllowed(); // open scopes refuse the close before anything changes
            Views v = views;
            if (v != null) {
                v.closeArenas(); // refuses while a live thread's confined arena is open; closes shared arenas
            }
            try {
                procs.close(() -> {
                    if (v != null) {
                        v.closeScope(); // every access through a heap segment throws from here on, none is in flight
                    }
                    heap.releaseAll();
                });
            } catch (RuntimeException e) {
                if (v != null) {
                    v.reopenArenas(); // refused (open scopes): arenas may open again
                }
                throw e;
            }
        }
        mxBeans.closeAll(); // after: a refused close leaves them registered
    }

    // ───────────────────────────── arenas (for the JDK 25 part) ─────────────────────────────

    /** A large span for an arena, from this thread's P (a kept span of the size, else the heap), marked as the arena's. */
    MSpan allocChunk(long bytes, long align) {
        try {
            return allocChunkOnce(bytes, align);
        } catch (MemoryLimitExceededError e) {
            releaseMemory();
            return allocChunkOnce(bytes, align);
        }
    }

    private MSpan allocChunkOnce(long bytes, long align) {
        checkSize(bytes, align);
        MCache c = lease();
        try {
            long npages = (bytes + SizeClasses.PAGE_SIZE - 1) >>> SizeClasses.PAGE_SHIFT;
            MSpan s = npages <= MCache.LARGE_MAX_PAGES && align <= SizeClasses.PAGE_SIZE
                    ? c.reuseLarge((int) npages, bytes) : null;
            if (s == null) {
                s = heap.allocLarge(bytes, align, c.shard);
            }
            s.markArenaChunk(); // before anyone has the address: no free can take it
            return s;
        } finally {
            c.release();
        }
    }

    /** An arena's span back to the heap: kept by a P if it fits, as a freed large object's. */
    void freeChunk(MSpan s) {
        s.unmarkArenaChunk(0);
        freeLarge(s);
    }

    /** A closed arena's span faulted for good (arenafault). */
    void faultChunk(MSpan s) {
        s.unmarkArenaChunk(MSpan.LARGE_QUARANTINED);
        heap.faultSpan(s);
    }
}
