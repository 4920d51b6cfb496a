package io.gomem.heap;

import io.gomem.os.MemState;
import io.gomem.os.OsMemory;
import io.gomem.os.Purpose;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The page heap (Go's {@code mheap}): arenas of address space, the page allocator over them, the
 * spans made from their pages, and the table that finds the span of any address.
 *
 * <h2>What it owns</h2>
 * <ul>
 *   <li>Arenas: 64 MiB reservations ({@link #ARENA_BYTES}, aligned to 64 MiB) got from the OS
 *       layer at Go-style hint addresses (kernel's choice when a hint is taken), mapped Reserved →
 *       Prepared in 4 MiB chunk steps as the heap grows ({@link #grow}). A request larger than
 *       an arena gets a contiguous multi-arena reservation.</li>
 *   <li>The {@link PageAlloc} over every mapped chunk; pages it hands out that were scavenged are
 *       made Ready ({@code sysUsedWherePrepared}) before a span may use them, so only Ready
 *       memory ever leaves the heap.</li>
 *   <li>The spans table: for every page of every arena, the span that holds it (null if none),
 *       found in O(1): in the flat table ({@link #flat}) that covers the arenas reserved above
 *       the heap's first one (the usual case: hints make them contiguous), else through the
 *       two-level arena index ({@link #arenaL1}). Growth of the flat table is published to the
 *       {@link SpanTable} it is given (the heap's entry point, whose frees read it).</li>
 *   <li>Counters of what lies where (large objects, spans, OS pages released inside in-use spans),
 *       read together by {@link #counters()}; the {@link Scavenger} below it, which enforces
 *       the limits and returns free pages to the OS.</li>
 *   <li>A pool of recycled {@link MSpan} objects. (The span classes' {@link MCentral}s sit
 *       above the heap and call down into it; the heap calls no central.)</li>
 *   <li>The physical page (Go's {@code physPageSize}, {@link #physPages} heap pages): an
 *       allocation makes Ready the whole physical pages it touches ({@link #makeReady}), and the
 *       page allocator's scavenger releases whole physical pages only.</li>
 *   <li>Faulted spans ({@link #faultSpan}: efence, arenafault), counted in {@link #faultedPages}
 *       and kept out of HeapSys and HeapInuse; and, under {@code gomem.hugePages=advise}, the
 *       huge-page advice of each chunk ({@link #advice}, a {@link HugeAdvice}, which is also
 *       the sink the scavenger returns runs through).</li>
 * </ul>
 *
 * <h2>Invariants</h2>
 * Every page of a live span maps to that span in the spans table and is allocated in the page
 * allocator; every other page maps to null. Pages in use ({@code pageAlloc.inUsePages()}) equal
 * the pages of live spans. Every chunk handed to the page allocator is Prepared or Ready: a page
 * is Prepared exactly when the page allocator marks it scavenged, or when it is an OS page of an
 * in-use span set in that span's {@link MSpan#releasedMask} (counted in spanReleasedBytes); the
 * pages of a faulted span are Reserved. Within one physical page the scavenged marks are all set
 * or all clear.
 *
 * <h2>Guards</h2>
 * {@link #lock} (the heap lock) guards the page allocator, the arena list and cursor, the span
 * pool, the writes of the spans table and {@link #faultedPages}; {@link #advice} guards its own
 * set (the scavenger adds to it with the lock dropped). Span table reads are lock-free: entries are published
 * with release stores and read with acquire loads; a span's layout fields are written before it
 * is published. Lock order: MCentral → heap → OS layer (a central may call in holding its lock;
 * the heap never calls a central). {@link #spanReleasedBytes} and a span's
 * {@link MSpan#releasedMask}: the heap lock, written by whoever has the span.
 *
 * <h2>System calls and the heap lock</h2>
 * Returning memory to the OS and taking it back never holds the heap lock across the system
 * call: the scavenger's runs ({@link Scavenger}: claimed first), a span's free OS pages
 * ({@link #releaseSpanPages}), the rest of a freed span's partly released heap pages
 * ({@link #freeSpan(MSpan, MStats.Shard)}), a span's released pages made Ready again
 * ({@link #reuseSpanPages}) and a faulted span ({@link #faultSpan}). The pages are the caller's
 * (claimed in the page allocator, or in a span the caller has), and the call is announced to the
 * scavenger ({@link Scavenger#beginOsCall}), so that the limit check, a reading of the counters,
 * a check and the heap's release wait for it ({@link Scavenger#awaitClaims}); the figures change
 * in the hold that retakes the lock. Those paths take the lock once: one that holds it more
 * than once would keep it across the call (asserted under {@code gomem.checkInvariants}).
 * Three calls stay under the lock, each for its reason: {@link #grow} (sysReserve, sysMap and
 * the new chunks' huge-page advice), as in Go, whose {@code mheap.grow} maps with the heap lock
 * held: the arena cursor and the page allocator's growth move with the mapping, and mapping with
 * the lock dropped would let every allocation that finds no free page grow the heap again while
 * the first maps; {@link #makeReady} (sysUsed of the scavenged pages a new span takes), which
 * makes no system call unless {@code gomem.sysUnused=harddecommit}, and which, with physical
 * pages larger than the heap page, also makes Ready free pages sharing a physical page with the
 * span, that only the lock keeps from being allocated or claimed meanwhile; and
 * {@link #hugeAdvice} (advice, {@code gomem.hugePages=advise} only). {@link #releaseAll}'s
 * munmap runs at close, with no operation in flight.
 */
public final class MHeap implements SpanSource {
    static final int PAGE_SHIFT = SizeClasses.PAGE_SHIFT;
    static final long PAGE_SIZE = SizeClasses.PAGE_SIZE;
    /** log2 of an arena's size: 64 MiB, Go's heapArenaBytes on 64-bit Linux. */
    static final int ARENA_SHIFT = 26;
    static final long ARENA_BYTES = 1L << ARENA_SHIFT;
    static final int PAGES_PER_ARENA = (int) (ARENA_BYTES / PAGE_SIZE);
    /** Bits of arena index: 48-bit addresses. */
    private static final int ARENA_L1_BITS = 10;
    /**
     * Largest object size, and largest alignment, the heap accepts: 8 TiB. A span's page count is
     * an {@code int}: size plus alignment padding stays under 2^31 pages of 8 KiB.
     */
    static final long MAX_ALLOC = 1L << 43;
    private static final int ARENA_L2_BITS = 48 - ARENA_SHIFT - ARENA_L1_BITS;
    /** Where the first arena hint points, as Go's 0x00c0 << 32 on amd64. */
    private static final long FIRST_HINT = 0x00c0L << 32;
    /** Next hint for any heap in this process: each heap gets its own address range when it can. */
    private static final AtomicLong NEXT_HINT = new AtomicLong(FIRST_HINT);


    /** One arena's metadata: the span of each of its pages. */
    static final class HeapArena {
        final long base;
        final MSpan[] spans = new MSpan[PAGES_PER_ARENA];

        HeapArena(long base) {
            this.base = base;
        }
    }

    /**
     * {@code gomem.checkInvariants}: check what each operation changed, in the hold that changed it
     * (a span made or freed, a span's pages released or reused, a span faulted, the heap grown),
     * and that the heap lock is held wherever the fields' comments say so.
     */
    private static final boolean CHECK = io.gomem.internal.Options.CHECK_INVARIANTS.booleanValue();

    final OsMemory os;
    final ReentrantLock lock = new SpinLock();
    /**
     * Pages per physical page: 1 unless the OS page (Go's physPageSize) is larger than the heap's
     * 8 KiB page; then the scavenger releases whole physical pages only, and an allocation makes
     * Ready the whole physical pages it touches (see {@link #makeReady}).
     */
    private final int physPages;
    final PageAlloc pageAlloc;

    /** {@code gomem.hugePages=advise}: heap chunks are advised MADV_HUGEPAGE (see {@link #hugeAdvice}). */
    private final boolean hugeAdvise;
    /**
     * Under {@link #hugeAdvise}: the huge-page advice of each chunk (see {@link HugeAdvice}),
     * and the sink through which the scavenger returns runs to the OS; null when off.
     */
    private final HugeAdvice advice;
    /** Whether scavenged pages read back as zero (false with MADV_FREE). */
    private final boolean scavengedIsZero;

    static final VarHandle SPANS = MethodHandles.arrayElementVarHandle(MSpan[].class);
    /** The flat table covers at most 64 GiB above the first arena (32 MiB of references). */
    static final long FLAT_MAX_PAGES = 1L << 23;
    /**
     * The flat spans table: entry i is the span of page {@code flatBase + i * PAGE_SIZE}, for
     * every page from the heap's first arena up to the newest one within {@link #FLAT_MAX_PAGES}
     * (pages of other mappings in between map to null), so that a lookup is one subtraction,
     * one shift and one load. Entries are written under the lock with release stores (with the
     * arena's own table) and read lock-free with acquire loads. Grown by copying under the lock
     * and republished (volatile, and to {@link #reader}): a reader that got an address from an
     * allocation sees its span in whichever table it reads. {@link #flatBase} is written once,
     * under the lock, before the first nonempty table is published.
     */
    private volatile MSpan[] flat = new MSpan[0];
    private long flatBase;
    /**
     * Who else reads the flat table: the heap's entry point keeps it in its own fields, one load
     * from a free's start. Set once by {@link #publishSpansTo}, before the heap serves anyone.
     */
    private SpanTable reader = SpanTable.NONE;

    /** Arena index L1 → L2 arrays; written under lock (release), read lock-free (acquire). */
    private final HeapArena[][] arenaL1 = new HeapArena[1 << ARENA_L1_BITS][];
    private static final VarHandle L1 = MethodHandles.arrayElementVarHandle(HeapArena[][].class);
    private static final VarHandle L2 = MethodHandles.arrayElementVarHandle(HeapArena[].class);

    // Guarded by lock.
    /** Every reservation: base, length. */
    private final List<long[]> reservations = new ArrayList<>();
    /** Mapped-so-far cursor inside the newest reservation, and its end. */
    private long curBase;
    private long curEnd;
    private final ArrayDeque<MSpan> spanPool = new ArrayDeque<>();
    private long spansInUse;
    /**
     * Span records in use, and in {@link #spanPool}, that carry tiny masks (a span that once served
     * the tiny class keeps them): a record's Java-heap size is fixed but for those masks, so these
     * counts and {@link #spansInUse} / the pool's size give the bytes the records take.
     */
    private long maskedInUse;
    private long maskedPooled;
    private long mappedBytes;
    /** Bytes of OS pages inside in-use spans returned to the OS (see {@link MSpan#releasedMask}). */
    private long spanReleasedBytes;
    /** Pages of faulted spans ({@link MSpan#STATE_FAULTED}): allocated in the page allocator, Reserved in the OS layer. */
    private long faultedPages;
    /** Set by {@link #releaseAll()}: the heap's memory is gone; no span may be made any more. */
    private boolean released;

    /** Returns free pages to the OS and enforces the memory limits; owned by this heap, below it. */
    final Scavenger scavenger;
    /**
     * The heap's counters: spans per class, large objects and their pages are counted here,
     * under the heap lock, in the same hold as the page-level change (see {@link MStats}).
     */
    final MStats stats;

    /** A heap with no memory limits. */
    MHeap(OsMemory os) {
        this(os, Scavenger.Config.NONE, new MStats());
    }

    /** A heap over {@code os} within {@code limits}, counting into {@code stats}. */
    MHeap(OsMemory os, Scavenger.Config limits, MStats stats) {
        this.physPages = physPages(OsMemory.PAGE_SIZE); // refuses a page size it cannot serve, before anything is made
        this.hugeAdvise = hugePagesOption(); // refuses a bad value at heap creation, naming it
        this.pageAlloc = new PageAlloc(lock, physPages, hugeAdvise ? (int) (OsMemory.HUGE_PAGE_SIZE / PAGE_SIZE) : 0);
        this.os = os;
        this.stats = stats;
        this.scavengedIsZero = os.sysUnusedMode() != OsMemory.UnusedMode.FREE;
        this.advice = hugeAdvise ? new HugeAdvice(os) : null;
        // The scavenger gets what it needs built first (the advice over the OS layer alone), never
        // a lambda over this heap, which is not whole yet: nothing escapes this constructor.
        this.scavenger = advice == null ? new Scavenger(limits, pageAlloc, os, lock)
                : new Scavenger(limits, pageAlloc, os, lock, advice);
    }

    /**
     * Publishes the flat spans table to {@code r} now and whenever it grows. Called once, before
     * the heap serves any allocation.
     */
    void publishSpansTo(SpanTable r) {
        lock.lock();
        try {
            if (reader != SpanTable.NONE) {
                throw new IllegalStateException("the spans table already has its reader");
            }
            reader = r;
            r.publishSpans(flat, flatBase);
        } finally {
            lock.unlock();
        }
    }

    // ───────────────────────────── span lookup (lock-free) ─────────────────────────────

    /** The span holding {@code addr}, or null if no live span of this heap holds it. */
    MSpan spanOf(long addr) {
        MSpan[] t = flat;
        long page = (addr - flatBase) >>> PAGE_SHIFT;
        if (page < t.length) {
            return (MSpan) SPANS.getAcquire(t, (int) page);
        }
        return spanOfArena(addr);
    }

    /** {@link #spanOf} outside the flat table. */
    private MSpan spanOfArena(long addr) {
        HeapArena a = arenaFor(addr);
        if (a == null) {
            return null;
        }
        return (MSpan) SPANS.getAcquire(a.spans, (int) ((addr - a.base) >>> PAGE_SHIFT));
    }

    /** The arena holding {@code addr} through the two-level index, or null. Lock-free. */
    private HeapArena arenaFor(long addr) {
        if (addr <= 0 || (addr >>> 48) != 0) {
            return null;
        }
        long ai = addr >>> ARENA_SHIFT;
        HeapArena[] l2 = (HeapArena[]) L1.getAcquire(arenaL1, (int) (ai >>> ARENA_L2_BITS));
        if (l2 == null) {
            return null;
        }
        return (HeapArena) L2.getAcquire(l2, (int) (ai & ((1 << ARENA_L2_BITS) - 1)));
    }

    private HeapArena arenaOf(long addr) {
        long ai = addr >>> ARENA_SHIFT;
        HeapArena[] l2 = arenaL1[(int) (ai >>> ARENA_L2_BITS)];
        return l2 == null ? null : l2[(int) (ai & ((1 << ARENA_L2_BITS) - 1))];
    }

    private void setSpans(long base, int npages, MSpan s) {
        assertLocked();
        for (long p = base, end = base + ((long) npages << PAGE_SHIFT); p < end; ) {
            HeapArena a = arenaOf(p);
            int from = (int) ((p - a.base) >>> PAGE_SHIFT);
            int to = (int) Math.min(PAGES_PER_ARENA, from + ((end - p) >>> PAGE_SHIFT));
            for (int i = from; i < to; i++) {
                SPANS.setRelease(a.spans, i, s);
            }
            p = a.base + ((long) to << PAGE_SHIFT);
        }
        MSpan[] t = flat;
        long first = (base - flatBase) >>> PAGE_SHIFT;
        if (first < t.length) {
            for (int i = (int) first, end = (int) Math.min(t.length, first + npages); i < end; i++) {
                SPANS.setRelease(t, i, s);
            }
        }
    }

    /** Extends the flat spans table over a new reservation when it lies close above the first; lock held. */
    private void coverFlat(long base, long len) {
        assertLocked();
        MSpan[] t = flat;
        if (t.length == 0 && flatBase == 0) {
            flatBase = base;
        }
        if (base < flatBase) {
            return;
        }
        long need = (base + len - flatBase) >>> PAGE_SHIFT;
        if (need <= t.length || need > FLAT_MAX_PAGES) {
            return;
        }
        // Grow geometrically so that a heap growing arena by arena copies O(total) references.
        int n = (int) Math.min(FLAT_MAX_PAGES, Math.max(need, 2L * t.length));
        MSpan[] g = java.util.Arrays.copyOf(t, n); // the new pages have no spans yet
        flat = g;
        reader.publishSpans(g, flatBase);
    }

    // ───────────────────────────── spans ─────────────────────────────

    /** A new span of {@code npages} for a small span class; its pages are Ready. */
    @Override
    public MSpan allocSmallSpan(int spanClass, int sizeClass, int npages) {
        lock.lock();
        try {
            long base = allocPages(npages);
            boolean clean = pageAlloc.lastScavengedPages() == npages && scavengedIsZero;
            makeReady(base, npages);
            if (hugeAdvise) {
                hugeAdvice(base);
            }
            MSpan s = newSpan();
            s.initSmall(base, npages, spanClass, sizeClass, !clean);
            if (spanClass == SizeClasses.TINY_SPAN_CLASS && (s.tinyMasks == null || s.tinyMasks.length < s.nelems)) {
                s.tinyMasks = new int[s.nelems];
            }
            setSpans(base, npages, s);
            spansInUse++;
            maskedInUse += s.tinyMasks != null ? 1 : 0;
            stats.count(MStats.SPANS + spanClass, 1);
            if (CHECK) {
                checkSpanLocked(s, base, npages, true);
            }
            return s;
        } finally {
            lock.unlock();
        }
    }

    /**
     * A span holding one large object of {@code size} bytes aligned to {@code align} (a power of
     * two); the object starts at {@code base + largeOffset}.
     */
    MSpan allocLarge(long size, long align) {
        return allocLarge(size, align, null);
    }

    /** {@link #allocLarge(long, long)}, counted in {@code shard} (the caller's P's, its lease held) if not null. */
    MSpan allocLarge(long size, long align, MStats.Shard shard) {
        if (size < 0 || size > MAX_ALLOC || align < 1 || align > MAX_ALLOC || (align & (align - 1)) != 0) {
            throw new IllegalArgumentException("large object of " + size + " B aligned to " + align
                    + ": size and alignment must be within 0.." + MAX_ALLOC + " and the alignment a power of two");
        }
        // Room for the object at its aligned start within the span: a zero-size object still
        // takes a byte, so that its address lies inside its own span, not at the next one's base.
        long extra = align > PAGE_SIZE ? align - PAGE_SIZE : 0;
        long bytes = Math.max(size, 1) + extra;
        int npages = (int) ((bytes + PAGE_SIZE - 1) >>> PAGE_SHIFT); // < 2^31: both terms are at most MAX_ALLOC
        lock.lock();
        try {
            long base = allocPages(npages);
            boolean clean = pageAlloc.lastScavengedPages() == npages && scavengedIsZero;
            makeReady(base, npages);
            if (hugeAdvise) {
                hugeAdvice(base);
            }
            long off = ((base + align - 1) & -align) - base;
            MSpan s = newSpan();
            s.initLarge(base, npages, size, off, !clean);
            setSpans(base, npages, s);
            spansInUse++;
            maskedInUse += s.tinyMasks != null ? 1 : 0;
            stats.countLargeSpan(shard, +1, size, npages);
            if (CHECK) {
                checkSpanLocked(s, base, npages, true);
            }
            return s;
        } finally {
            lock.unlock();
        }
    }

    /** Returns a span's pages to the page allocator. */
    @Override
    public void freeSpan(MSpan s) {
        freeSpan(s, null);
    }

    /**
     * {@link #freeSpan(MSpan)}, counting a large object's free in {@code shard} (the caller's P's,
     * its lease held) if not null. A span some of whose OS pages were released while in use
     * first has the other OS pages of those heap pages released, with the heap lock dropped for
     * the calls ({@link #releaseUnlocked}): the span is the caller's, its pages still allocated,
     * so nobody else touches them meanwhile; then it is freed in the same hold that retakes the lock.
     */
    void freeSpan(MSpan s, MStats.Shard shard) {
        long rest = s.releasedMask == 0 ? 0 : readyInReleasedPages(s.releasedMask, s.npages);
        lock.lock();
        try {
            if (rest != 0 && !released && !releaseUnlocked(s, rest)) {
                return; // the scavenger stopped: the heap is being released, its pages with it
            }
            freeSpanLocked(s, true, shard);
        } finally {
            lock.unlock();
        }
    }

    /**
     * The OS pages of a span's heap pages that have some OS page released ({@code mask}) but are
     * not released themselves: what must go to the OS before those heap pages go back scavenged.
     */
    private static long readyInReleasedPages(long mask, int npages) {
        int perPage = (int) (PAGE_SIZE / OsMemory.PAGE_SIZE);
        long pageBits = perPage >= 64 ? -1L : (1L << perPage) - 1;
        long rest = 0;
        for (int p = 0; p < npages && p * perPage < 64; p++) {
            long bits = (mask >>> (p * perPage)) & pageBits;
            if (bits != 0) {
                rest |= (~bits & pageBits) << (p * perPage);
            }
        }
        return rest;
    }

    /**
     * Returns the OS pages in {@code mask} of span {@code s} (the caller's: no other thread
     * touches them) to the OS with the heap lock dropped: announced to the scavenger
     * ({@link Scavenger#beginOsCall}) so that a reading of the counters, a limit check and the
     * heap's release wait for it; {@link MSpan#releasedMask} and {@link #spanReleasedBytes}
     * take the pages that went, in the hold that retakes the lock. Heap lock held once on entry
     * and on return (also when the OS call throws). False, with nothing done, if the scavenger
     * is stopped (the heap is being released).
     */
    private boolean releaseUnlocked(MSpan s, long mask) {
        assertLocked();
        if (!scavenger.beginOsCall()) {
            return false;
        }
        unlockForOsCall();
        long done = 0;
        try {
            for (long m = mask; m != 0; ) {
                int first = Long.numberOfTrailingZeros(m);
                int run = Long.numberOfTrailingZeros(~(m >>> first));
                if (hugeAdvise) {
                    advice.markSparse(s.base + first * OsMemory.PAGE_SIZE, run * OsMemory.PAGE_SIZE);
                }
                os.sysUnused(s.base + first * OsMemory.PAGE_SIZE, run * OsMemory.PAGE_SIZE);
                done |= runBits(first, run);
                m &= ~runBits(first, run);
            }
        } finally {
            lock.lock();
            s.releasedMask |= done;
            spanReleasedBytes += Long.bitCount(done) * OsMemory.PAGE_SIZE;
            scavenger.endOsCall();
        }
        return true;
    }

    /**
     * Faults a large span whose object was just freed (or a closed arena's span) for good: its
     * pages go Ready → Reserved ({@code sysFault}, PROT_NONE), so any access faults, and stay
     * allocated in the page allocator and in the spans table, so they are never reused and a
     * free of them is diagnosed. Counted as the object's free, then out of HeapSys and HeapInuse
     * (the OS layer holds the pages Reserved). For {@code gomem.debug=efence} and {@code arenafault}.
     */
    void faultSpan(MSpan s) {
        lock.lock();
        try {
            if (released || !scavenger.beginOsCall()) {
                return; // the heap is released (or being released): its pages go anyway
            }
            // The span is the freer's (its object's free won the CAS): its pages stay allocated and
            // mapped to it while the lock is dropped for the call, so nobody else touches them.
            unlockForOsCall();
            boolean ok = false;
            try {
                os.sysFault(s.base, (long) s.npages << PAGE_SHIFT);
                ok = true;
            } finally {
                lock.lock();
                if (ok) {
                    stats.countLargeSpan(null, -1, s.elemSize, s.npages);
                    spanReleasedBytes -= Long.bitCount(s.releasedMask) * OsMemory.PAGE_SIZE; // none: only small spans release
                    s.releasedMask = 0;
                    s.state = MSpan.STATE_FAULTED;
                    faultedPages += s.npages;
                }
                scavenger.endOsCall();
            }
            if (CHECK) {
                checkFaultedLocked(s);
            }
        } finally {
            lock.unlock();
        }
    }

    /**
     * Returns the pages of a large span an {@link MCache} kept after its object was freed: that
     * free was counted by the cache, so only the pages change hands here.
     */
    void freeKeptLargeSpan(MSpan s) {
        lock.lock();
        try {
            freeSpanLocked(s, false, null);
        } finally {
            lock.unlock();
        }
    }

    private void freeSpanLocked(MSpan s, boolean countObject, MStats.Shard shard) {
        assertLocked();
        if (released) {
            return; // a free that raced with close: the pages are gone already
        }
        if (s.releasedMask != 0 && readyInReleasedPages(s.releasedMask, s.npages) != 0) {
            throw new IllegalStateException("mheap: freeing " + s + " with Ready OS pages beside released ones (mask 0x"
                    + Long.toHexString(s.releasedMask) + "): they go to the OS, with the lock dropped, before the free");
        }
        if (s.state == MSpan.STATE_LARGE && countObject) {
            stats.countLargeSpan(shard, -1, s.elemSize, s.npages);
        } else {
            int g = stats.begin();
            if (s.state == MSpan.STATE_LARGE) {
                stats.add(g, MStats.LARGE_KEPT_SPANS, -1); // a kept span: its object's free was counted when kept
                stats.add(g, MStats.LARGE_PAGES, -s.npages);
            } else {
                stats.add(g, MStats.SPANS + s.spanClass, -1);
            }
            stats.end(g);
        }
        setSpans(s.base, s.npages, null);
        if (s.releasedMask != 0) {
            freeReleasedSpanPages(s);
        } else {
            pageAlloc.free(s.base, s.npages);
        }
        boolean masked = s.tinyMasks != null;
        maskedInUse -= masked ? 1 : 0;
        s.smallSlots = 0;
        s.state = MSpan.STATE_FREE;
        spansInUse--;
        if (spanPool.size() < 4096) {
            s.next = s.prev = null;
            spanPool.push(s);
            maskedPooled += masked ? 1 : 0;
        }
        if (CHECK) {
            checkSpanLocked(s, s.base, s.npages, false);
        }
    }

    /**
     * Drops the heap lock for an OS call announced to the scavenger. Held more than once, it would
     * stay held across the call: refused under {@link #CHECK}.
     */
    private void unlockForOsCall() {
        if (CHECK && lock.getHoldCount() != 1) {
            throw new IllegalStateException("mheap: the heap lock is dropped for an OS call, but "
                    + Thread.currentThread() + " holds it " + lock.getHoldCount() + " times");
        }
        lock.unlock();
    }

    /** With {@link #CHECK}: the caller holds the heap lock, as the field comments require. */
    private void assertLocked() {
        if (CHECK && !lock.isHeldByCurrentThread()) {
            throw new IllegalStateException("mheap: the heap lock is not held by " + Thread.currentThread());
        }
    }

    /**
     * With {@code gomem.checkInvariants}, after a span is faulted (heap lock held): its pages are
     * Reserved, still allocated in the page allocator and mapped to it; the count of faulted pages
     * covers them.
     */
    private void checkFaultedLocked(MSpan s) {
        assertLocked();
        if (s.state != MSpan.STATE_FAULTED) {
            return; // the OS call failed: the span is as it was
        }
        for (int i = 0; i < s.npages; i++) {
            long addr = s.base + ((long) i << PAGE_SHIFT);
            if (spanOf(addr) != s || !pageAlloc.isAllocated(addr)) {
                throw new IllegalStateException("faulted " + s + ": page 0x" + Long.toHexString(addr) + " maps to "
                        + spanOf(addr) + ", allocated " + pageAlloc.isAllocated(addr));
            }
        }
        if (!os.isState(s.base, (long) s.npages << PAGE_SHIFT, MemState.RESERVED)) {
            throw new IllegalStateException("faulted " + s + " is not Reserved in the OS layer");
        }
        if (faultedPages < s.npages || faultedPages > pageAlloc.inUsePages()) {
            throw new IllegalStateException("mheap: faulted pages " + faultedPages + " (span of " + s.npages
                    + ", pages in use " + pageAlloc.inUsePages() + ")");
        }
    }

    /**
     * With {@code gomem.checkInvariants}, after a span is made or freed (heap lock held): the part
     * of {@link #checkInvariants} that the change touched. Every page of {@code [base, +npages)}
     * maps to {@code s} (live) or to nothing (freed) in both spans tables, is allocated or free in
     * the page allocator accordingly, and has the OS state that says: Ready in a live span unless
     * released inside it; Prepared exactly where the page allocator marks it scavenged once free.
     */
    private void checkSpanLocked(MSpan s, long base, int npages, boolean live) {
        if (!lock.isHeldByCurrentThread()) {
            throw new IllegalStateException("mheap: span check without the heap lock");
        }
        MSpan want = live ? s : null;
        for (int i = 0; i < npages; i++) {
            long addr = base + ((long) i << PAGE_SHIFT);
            HeapArena a = arenaOf(addr);
            MSpan inArena = a == null ? null : a.spans[(int) ((addr - a.base) >>> PAGE_SHIFT)];
            long fp = (addr - flatBase) >>> PAGE_SHIFT;
            MSpan inFlat = fp < flat.length ? flat[(int) fp] : want;
            if (inArena != want || inFlat != want) {
                throw new IllegalStateException("spans table: page 0x" + Long.toHexString(addr) + " maps to " + inArena
                        + " (flat: " + inFlat + "), not " + want);
            }
            if (pageAlloc.isAllocated(addr) != live) {
                throw new IllegalStateException("page 0x" + Long.toHexString(addr) + " of " + s + " is "
                        + (live ? "free" : "allocated") + " in the page allocator");
            }
            for (long q = addr; q < addr + PAGE_SIZE; q += OsMemory.PAGE_SIZE) {
                int k = (int) ((q - base) / OsMemory.PAGE_SIZE);
                MemState st = live ? (k < 64 && (s.releasedMask & (1L << k)) != 0 ? MemState.PREPARED : MemState.READY)
                        : pageAlloc.isScavenged(addr) ? MemState.PREPARED : MemState.READY;
                if (os.stateAt(q) != st) {
                    throw new IllegalStateException("OS page 0x" + Long.toHexString(q) + " of " + (live ? "" : "freed ") + s
                            + " is " + os.stateAt(q) + ", not " + st);
                }
            }
        }
        if (spansInUse < 0 || maskedInUse < 0 || maskedInUse > spansInUse || maskedPooled < 0 || maskedPooled > spanPool.size()) {
            throw new IllegalStateException("mheap counters: spans " + spansInUse + ", with tiny masks " + maskedInUse
                    + ", pooled " + spanPool.size() + " (with masks " + maskedPooled + ")");
        }
    }

    /**
     * Frees the pages of a span some of whose OS pages were released while it was in use, without
     * making any page Ready (a free must not pass the limits): each heap page with a released OS
     * page goes back to the page allocator scavenged (its other OS pages were released before,
     * with the lock dropped: {@link #freeSpan(MSpan, MStats.Shard)}); the other pages go back as
     * they are. No system call. Lock held.
     */
    private void freeReleasedSpanPages(MSpan s) {
        assertLocked();
        int perPage = (int) (PAGE_SIZE / OsMemory.PAGE_SIZE);
        long pageBits = perPage == 64 ? -1L : (1L << perPage) - 1;
        long mask = s.releasedMask;
        for (int p = 0; p < s.npages; ) {
            boolean scavenged = ((mask >>> (p * perPage)) & pageBits) != 0;
            int q = p + 1;
            while (q < s.npages && (((mask >>> (q * perPage)) & pageBits) != 0) == scavenged) {
                q++;
            }
            long base = s.base + ((long) p << PAGE_SHIFT);
            if (scavenged) {
                spanReleasedBytes -= Long.bitCount(mask & runBits(p * perPage, (q - p) * perPage)) * OsMemory.PAGE_SIZE;
                pageAlloc.freeScavenged(base, q - p);
            } else {
                pageAlloc.free(base, q - p);
            }
            p = q;
        }
        s.releasedMask = 0;
    }

    /**
     * Returns the OS pages in {@code mask} of an in-use span that no cache holds to the OS. The
     * heap lock is not held across the system calls ({@link #releaseUnlocked}): the span's slots
     * are its central's, which holds it out of its sets meanwhile (neither lock held: see
     * {@link MCentral#releaseFreeOsPages}), so its pages are no one else's.
     */
    @Override
    public void releaseSpanPages(MSpan s, long mask) {
        lock.lock();
        try {
            if (released || s.state != MSpan.STATE_SMALL) {
                return;
            }
            long fresh = mask & ~s.releasedMask;
            if (fresh != 0 && releaseUnlocked(s, fresh) && CHECK) {
                checkSpanLocked(s, s.base, s.npages, true);
            }
        } finally {
            lock.unlock();
        }
    }

    /**
     * Makes a span's released OS pages Ready again before a cache uses it, within the limits
     * (like every path that makes pages Ready): throws the hard limit's error with nothing
     * changed. The span is the calling cache's: the room is made ({@link Scavenger#makeRoom},
     * which may drop the lock for its own OS calls), then the pages are made Ready with the lock
     * dropped, announced to the scavenger so that the next limit check (which waits for it)
     * counts them.
     */
    @Override
    public void reuseSpanPages(MSpan s) {
        lock.lock();
        try {
            if (released) {
                throw closedException();
            }
            scavenger.makeRoom(Long.bitCount(s.releasedMask) * OsMemory.PAGE_SIZE);
            if (released || !scavenger.beginOsCall()) {
                throw closedException();
            }
            long mask = s.releasedMask;
            unlockForOsCall();
            long done = 0;
            try {
                for (long m = mask; m != 0; ) {
                    int first = Long.numberOfTrailingZeros(m);
                    int run = Long.numberOfTrailingZeros(~(m >>> first));
                    os.sysUsed(s.base + first * OsMemory.PAGE_SIZE, run * OsMemory.PAGE_SIZE);
                    done |= runBits(first, run);
                    m &= ~runBits(first, run);
                }
            } finally {
                lock.lock();
                s.releasedMask &= ~done;
                spanReleasedBytes -= Long.bitCount(done) * OsMemory.PAGE_SIZE;
                scavenger.endOsCall();
            }
            if (CHECK) {
                checkSpanLocked(s, s.base, s.npages, true);
            }
        } finally {
            lock.unlock();
        }
    }

    private static long runBits(int first, int length) {
        return (length == 64 ? -1L : (1L << length) - 1) << first;
    }

    private MSpan newSpan() {
        assertLocked();
        MSpan s = spanPool.poll();
        if (s == null) {
            return new MSpan();
        }
        maskedPooled -= s.tinyMasks != null ? 1 : 0;
        return s;
    }

    /**
     * npages contiguous free pages, growing the heap if needed; lock held (once: making room under
     * the limits may drop it for the scavenger's OS calls, so nothing is read before that).
     */
    private long allocPages(int npages) {
        assertLocked();
        if (released) {
            throw closedException();
        }
        scavenger.makeRoom((long) npages << PAGE_SHIFT);
        if (released || scavenger.isStopped()) {
            throw closedException(); // released while the lock was dropped
        }
        long base = pageAlloc.alloc(npages);
        if (base == 0) {
            grow(npages);
            base = pageAlloc.alloc(npages);
            if (base == 0) {
                throw new IllegalStateException("page allocator found no run of " + npages
                        + " pages right after growing the heap for it");
            }
        }
        return base;
    }

    private void makeReady(long base, int npages) {
        assertLocked();
        if (pageAlloc.lastScavengedPages() > 0) {
            long end = base + ((long) npages << PAGE_SHIFT);
            if (physPages > 1) {
                // The OS works in whole physical pages: the free pages sharing one with this run are
                // made Ready with it, and stop counting as scavenged.
                long lo = base & -OsMemory.PAGE_SIZE;
                long hi = (end + OsMemory.PAGE_SIZE - 1) & -OsMemory.PAGE_SIZE;
                pageAlloc.unscavenge(lo, (base - lo) >>> PAGE_SHIFT);
                pageAlloc.unscavenge(end, (hi - end) >>> PAGE_SHIFT);
                base = lo;
                end = hi;
            }
            os.sysUsedWherePrepared(base, end - base);
        }
    }

    static boolean hugePagesOption() {
        String v = io.gomem.internal.Options.HUGE_PAGES.value().trim().toLowerCase(java.util.Locale.ROOT);
        return switch (v) {
            case "", "off" -> false;
            case "advise" -> true;
            default -> throw io.gomem.internal.Options.HUGE_PAGES.refused(v, "expected 'off' or 'advise'");
        };
    }

    /**
     * Under huge-page advice, after a span was made at {@code base} (heap lock held): a sparse
     * chunk that is now dense (7/8 of its pages in use) is advised MADV_HUGEPAGE again.
     */
    private void hugeAdvice(long base) {
        assertLocked();
        long c = base & -PageAlloc.CHUNK_BYTES;
        if (advice.isSparse(c) && pageAlloc.inUsePagesOfChunk(c) * 8 >= PageAlloc.CHUNK_PAGES * 7) {
            advice.dense(c);
        }
    }

    /**
     * Under {@code gomem.hugePages=advise}: the chunks (by base) advised MADV_NOHUGEPAGE because
     * pages in them went back to the OS, as Go 1.21 does, so that the kernel does not collapse
     * them back while they are sparse; the heap advises such a chunk MADV_HUGEPAGE again when an
     * allocation makes it dense ({@link #hugeAdvice}). It is also the {@link Scavenger}'s sink:
     * a run goes back to the OS after its chunks are marked sparse. Built over the OS layer
     * alone, before the scavenger, so that the heap hands no lambda over itself to a component
     * while it is being built.
     *
     * <p>Guards: {@link #sparse} is a concurrent set, and each chunk is advised only by whoever
     * adds it to (or removes it from) the set: the scavenger adds with the heap lock dropped for
     * its OS call, the heap removes under its lock. Advice is best effort: a chunk holding a
     * faulted span (debug modes) is not advised.
     */
    static final class HugeAdvice implements PageAlloc.ScavengeSink {
        private final OsMemory os;
        private final java.util.Set<Long> sparse = java.util.concurrent.ConcurrentHashMap.newKeySet();

        HugeAdvice(OsMemory os) {
            this.os = os;
        }

        /** The scavenger's sink: marks the run's chunks sparse, then returns the run to the OS. */
        @Override
        public void release(long base, long npages) {
            markSparse(base, npages << PAGE_SHIFT);
            os.sysUnused(base, npages << PAGE_SHIFT);
        }

        /**
         * Before {@code [base, base + len)} goes back to the OS: each chunk it touches is advised
         * MADV_NOHUGEPAGE once (until it is dense again).
         */
        void markSparse(long base, long len) {
            for (long c = base & -PageAlloc.CHUNK_BYTES; c < base + len; c += PageAlloc.CHUNK_BYTES) {
                if (sparse.add(c)) {
                    adviseQuietly(c, false);
                }
            }
        }

        /** Whether the chunk at {@code chunk} is marked sparse now. */
        boolean isSparse(long chunk) {
            return !sparse.isEmpty() && sparse.contains(chunk);
        }

        /** The chunk at {@code chunk} is dense again: advised MADV_HUGEPAGE, if it was sparse. */
        void dense(long chunk) {
            if (sparse.remove(chunk)) {
                adviseQuietly(chunk, true);
            }
        }

        /** Chunks marked sparse now. */
        int sparseChunks() {
            return sparse.size();
        }

        private void adviseQuietly(long chunk, boolean huge) {
            try {
                if (huge) {
                    os.sysHugePage(chunk, PageAlloc.CHUNK_BYTES);
                } else {
                    os.sysNoHugePage(chunk, PageAlloc.CHUNK_BYTES);
                }
            } catch (IllegalStateException e) {
                // a Reserved (faulted) page in the chunk: no advice for it
            }
        }
    }

    /** What every use of a closed heap throws (here, the lowest layer that meets it: a run released while the heap closed). */
    static IllegalStateException closedException() {
        return new IllegalStateException("heap is closed: no allocation or free after close()");
    }

    /**
     * Heap pages per physical page of {@code physPage} bytes; IllegalStateException for a page
     * size the heap cannot serve (over 64 pages, 512 KiB: a physical page must fit in a chunk's
     * bitmap word, as in Go's scavenger).
     */
    static int physPages(long physPage) {
        if (physPage <= PAGE_SIZE) {
            return 1;
        }
        if (Long.bitCount(physPage) != 1 || physPage > 64 * PAGE_SIZE) {
            throw new IllegalStateException("the OS page size " + physPage + " bytes cannot be served: gomem supports"
                    + " physical pages that are powers of two up to " + 64 * PAGE_SIZE + " bytes (64 heap pages of "
                    + PAGE_SIZE + " bytes)");
        }
        return (int) (physPage / PAGE_SIZE);
    }

    /**
     * Adds at least {@code npages} of mapped memory to the page allocator: from the current
     * arena's unmapped tail if it fits, else from a new reservation (and the old tail is mapped
     * too, so nothing reserved goes unused). Lock held (package-private for the check's test).
     */
    void grow(long npages) {
        assertLocked();
        long need = ((npages << PAGE_SHIFT) + PageAlloc.CHUNK_BYTES - 1) & -PageAlloc.CHUNK_BYTES;
        long reservedNow = 0;
        if (curEnd - curBase < need) {
            if (curEnd > curBase) {
                mapChunks(curBase, curEnd - curBase);
                curBase = curEnd; // mapped now: if the reservation below fails, it must not be mapped again
            }
            long len = (need + ARENA_BYTES - 1) & -ARENA_BYTES;
            long base = reserve(len);
            reservedNow = len;
            curBase = base;
            curEnd = base + len;
        }
        mapChunks(curBase, need);
        curBase += need;
        HeapEvents.HeapGrow e = new HeapEvents.HeapGrow();
        if (e.shouldCommit()) {
            e.mapped = need;
            e.reserved = reservedNow;
            e.heapMapped = mappedBytes;
            e.commit();
        }
    }

    private void mapChunks(long base, long len) {
        assertLocked();
        os.sysMap(base, len);
        if (hugeAdvise) {
            os.sysHugePage(base, len);
        }
        indexArenas(base, len);
        pageAlloc.grow(base, len);
        mappedBytes += len;
        if (CHECK) {
            checkGrownLocked(base, len);
        }
    }

    /**
     * With {@code gomem.checkInvariants}, after {@code [base, base + len)} was mapped into the
     * heap (lock held): it is Prepared in the OS layer, grown in the page allocator, every page
     * free and scavenged, with no span and an arena index; the page allocator's pages add up to
     * the bytes mapped.
     */
    private void checkGrownLocked(long base, long len) {
        assertLocked();
        if (!os.isState(base, len, MemState.PREPARED)) {
            throw new IllegalStateException("mheap: grown range [0x" + Long.toHexString(base) + ", +" + len + ") is not Prepared");
        }
        if (!pageAlloc.isGrown(base, len)) {
            throw new IllegalStateException("mheap: grown range [0x" + Long.toHexString(base) + ", +" + len
                    + ") is not in the page allocator");
        }
        for (long p = base; p < base + len; p += PAGE_SIZE) {
            if (pageAlloc.isAllocated(p) || !pageAlloc.isScavenged(p) || arenaFor(p) == null || spanOf(p) != null) {
                throw new IllegalStateException("mheap: grown page 0x" + Long.toHexString(p) + ": allocated "
                        + pageAlloc.isAllocated(p) + ", scavenged " + pageAlloc.isScavenged(p) + ", span " + spanOf(p));
            }
        }
        if (pageAlloc.totalPages() << PAGE_SHIFT != mappedBytes) {
            throw new IllegalStateException("mheap: the page allocator holds " + pageAlloc.totalPages() + " pages, "
                    + mappedBytes + " bytes are mapped");
        }
    }

    /** Reserves len bytes (a multiple of the arena size) at a hint, else where the kernel likes. */
    private long reserve(long len) {
        assertLocked();
        long hint = NEXT_HINT.getAndAdd(len);
        long base;
        if ((hint >>> 47) == 0) {
            base = os.sysReserveAligned(hint, len, ARENA_BYTES, Purpose.HEAP);
        } else {
            base = os.sysReserveAligned(0, len, ARENA_BYTES, Purpose.HEAP);
        }
        reservations.add(new long[] {base, len});
        coverFlat(base, len);
        return base;
    }

    /**
     * Gives every arena of {@code [base, base + len)} that has none its spans table, once the
     * range is mapped: a reservation's arenas get metadata as they are used, so a huge request
     * the OS refuses costs no Java heap. Lock held.
     */
    private void indexArenas(long base, long len) {
        assertLocked();
        for (long a = base & -ARENA_BYTES; a < base + len; a += ARENA_BYTES) {
            long ai = a >>> ARENA_SHIFT;
            int i1 = (int) (ai >>> ARENA_L2_BITS);
            HeapArena[] l2 = arenaL1[i1];
            if (l2 == null) {
                l2 = new HeapArena[1 << ARENA_L2_BITS];
                L1.setRelease(arenaL1, i1, l2);
            }
            int i2 = (int) (ai & ((1 << ARENA_L2_BITS) - 1));
            if (l2[i2] == null) {
                L2.setRelease(l2, i2, new HeapArena(a));
            }
        }
    }

    /** True if {@code addr} lies in memory this heap has mapped (whether or not a span holds it). */
    boolean isMapped(long addr) {
        lock.lock();
        try {
            return !released && arenaFor(addr) != null && pageAlloc.isGrown(addr & -PAGE_SIZE, PAGE_SIZE);
        } finally {
            lock.unlock();
        }
    }

    // ───────────────────────────── scavenging ─────────────────────────────

    /** One paced background scavenger cycle of at most {@code budgetNanos} (heap lock not held). */
    long scavengeBackground(long budgetNanos) {
        return scavenger.backgroundCycle(budgetNanos);
    }

    /** Returns every free page to the OS (heap lock not held across the system calls); bytes released. */
    long releaseFreePages() {
        return scavenger.releaseAll();
    }

    /** Unmaps every reservation: the heap is unusable afterwards. */
    void releaseAll() {
        lock.lock();
        try {
            scavenger.stop(); // no run in flight from here on: the reservations may go
            for (long[] r : reservations) {
                os.sysFree(r[0], r[1]);
            }
            reservations.clear();
            curBase = curEnd = 0;
            released = true;
            // Forget every arena, so that a lookup after close finds nothing.
            for (int i = 0; i < arenaL1.length; i++) {
                L1.setRelease(arenaL1, i, null);
            }
            flat = new MSpan[0];
            reader.publishSpans(flat, flatBase);
        } finally {
            lock.unlock();
        }
    }

    // ───────────────────────────── stats and checks ─────────────────────────────

    /** Calls {@code f} once for every live span (heap lock held while walking). */
    void forEachSpan(java.util.function.Consumer<MSpan> f) {
        lock.lock();
        try {
            MSpan last = null;
            for (long[] r : reservations) {
                for (long a = r[0]; a < r[0] + r[1]; a += ARENA_BYTES) {
                    HeapArena ar = arenaOf(a);
                    if (ar == null) {
                        continue; // not mapped yet: no span there
                    }
                    for (MSpan s : ar.spans) {
                        if (s != null && s != last) {
                            f.accept(s);
                            last = s;
                        }
                    }
                }
            }
        } finally {
            lock.unlock();
        }
    }

    /**
     * The page heap's and OS layer's figures and, in the same hold of the heap lock, a cut of the
     * heap's counters ({@link MStats#cut}): every OS transition of heap memory and every page
     * counted in a span happens under this lock, and no scavenger run is in flight, so all of it
     * agrees to the byte. Allocation's fast path never takes this lock.
     */
    MStats.Counters counters() {
        lock.lock();
        try {
            scavenger.awaitClaims(); // so that the OS layer's figures agree with the page allocator's
            long reserved = 0;
            for (long[] r : reservations) {
                reserved += r[1];
            }
            // Faulted spans (debug modes) are neither mapped nor in use: their pages are Reserved.
            return new MStats.Counters(mappedBytes - (faultedPages << PAGE_SHIFT), pageAlloc.totalPages() - faultedPages,
                    pageAlloc.inUsePages() - faultedPages,
                    pageAlloc.scavengedPages(), spansInUse, reserved, reserved / ARENA_BYTES,
                    os.bytes(MemState.RESERVED, Purpose.HEAP), os.bytes(MemState.PREPARED, Purpose.HEAP),
                    os.bytes(MemState.READY, Purpose.HEAP), spanReleasedBytes, maskedInUse, spanPool.size(), maskedPooled,
                    flat.length, stats.cut());
        } finally {
            lock.unlock();
        }
    }

    /**
     * Calls {@code f} for every live span and then reads {@link #counters()}, in one hold of the
     * heap lock: no span goes to or from the page heap in between (a recount to compare with the
     * counters).
     */
    MStats.Counters recount(java.util.function.Consumer<MSpan> f) {
        lock.lock();
        try {
            forEachSpan(f);
            return counters();
        } finally {
            lock.unlock();
        }
    }

    /**
     * Checks the page allocator, the spans table against it, and the OS view of every chunk.
     * Call with no allocation in flight.
     */
    void checkInvariants() {
        lock.lock();
        try {
            checkInvariantsLocked();
        } finally {
            lock.unlock();
        }
    }

    private void checkInvariantsLocked() {
        {
            scavenger.awaitClaims();
            pageAlloc.checkInvariants();
            long spanPages = 0;
            long faulted = 0;
            MSpan last = null;
            for (long[] r : reservations) {
                for (long a = r[0]; a < r[0] + r[1]; a += ARENA_BYTES) {
                    HeapArena ar = arenaOf(a);
                    if (ar == null) {
                        continue; // not mapped yet: no span there
                    }
                    for (int i = 0; i < PAGES_PER_ARENA; i++) {
                        MSpan s = ar.spans[i];
                        long addr = a + ((long) i << PAGE_SHIFT);
                        MSpan[] flat = this.flat;
                        long fp = (addr - flatBase) >>> PAGE_SHIFT;
                        if (fp < flat.length && flat[(int) fp] != s) {
                            throw new IllegalStateException("flat spans table: page 0x" + Long.toHexString(addr) + " maps to "
                                    + flat[(int) fp] + ", the arena's table to " + s);
                        }
                        if (s != null && s.state == MSpan.STATE_FAULTED) {
                            for (long q = addr; q < addr + PAGE_SIZE; q += OsMemory.PAGE_SIZE) {
                                if (os.stateAt(q) != MemState.RESERVED) {
                                    throw new IllegalStateException("OS page 0x" + Long.toHexString(q) + " of faulted " + s
                                            + " is " + os.stateAt(q) + ", not Reserved");
                                }
                            }
                            if (!pageAlloc.isAllocated(addr)) {
                                throw new IllegalStateException("page 0x" + Long.toHexString(addr) + " of " + s + " is free in the page allocator");
                            }
                            spanPages++;
                            faulted++;
                        } else if (s != null) {
                            if (s.state == MSpan.STATE_FREE || addr < s.base || addr >= s.limit()) {
                                throw new IllegalStateException("spans table: page 0x" + Long.toHexString(addr) + " maps to " + s);
                            }
                            if (!pageAlloc.isAllocated(addr)) {
                                throw new IllegalStateException("page 0x" + Long.toHexString(addr) + " of " + s + " is free in the page allocator");
                            }
                            for (long q = addr; q < addr + PAGE_SIZE; q += OsMemory.PAGE_SIZE) {
                                int k = (int) ((q - s.base) / OsMemory.PAGE_SIZE);
                                MemState want = (s.releasedMask & (1L << k)) != 0 ? MemState.PREPARED : MemState.READY;
                                if (os.stateAt(q) != want) {
                                    throw new IllegalStateException("OS page 0x" + Long.toHexString(q) + " of " + s + " is "
                                            + os.stateAt(q) + ", not " + want);
                                }
                            }
                            spanPages++;
                            if (s != last) {
                                last = s;
                            }
                        } else if (pageAlloc.isGrown(addr, PAGE_SIZE) && !pageAlloc.isAllocated(addr)) {
                            // A free page is Prepared exactly when the page allocator says scavenged.
                            MemState want = pageAlloc.isScavenged(addr) ? MemState.PREPARED : MemState.READY;
                            for (long q = addr; q < addr + PAGE_SIZE; q += OsMemory.PAGE_SIZE) {
                                if (os.stateAt(q) != want) {
                                    throw new IllegalStateException("OS page 0x" + Long.toHexString(q) + " of a free page is "
                                            + os.stateAt(q) + ", but the page allocator marks it " + (want == MemState.PREPARED
                                            ? "scavenged" : "not scavenged"));
                                }
                            }
                        }
                    }
                }
            }
            if (spanPages != pageAlloc.inUsePages()) { // no run is claimed: awaitClaims() above
                throw new IllegalStateException("pages of live spans " + spanPages + " != pages in use "
                        + pageAlloc.inUsePages());
            }
            if (faulted != faultedPages) {
                throw new IllegalStateException("pages of faulted spans " + faulted + " != counted " + faultedPages);
            }
            if (maskedInUse < 0 || maskedInUse > spansInUse || maskedPooled < 0 || maskedPooled > spanPool.size()) {
                throw new IllegalStateException("span records with tiny masks: " + maskedInUse + " of " + spansInUse
                        + " in use, " + maskedPooled + " of " + spanPool.size() + " pooled");
            }
            os.checkInvariants();
        }
    }
}
