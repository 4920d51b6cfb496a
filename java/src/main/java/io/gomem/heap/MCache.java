package io.gomem.heap;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * A per-P allocation cache (Go's {@code mcache}): one span per span class to allocate from with
 * no lock, plus the tiny allocator.
 *
 * <h2>Call tree</h2>
 * <pre>
 *   allocSmall(spanClass)
 *     └─ alloc[spanClass].nextFreeFast()          ← the fast path: ctz, shift, add; no lock
 *          └─ refill(spanClass)                   ← span exhausted (or cache word crossing)
 *               ├─ span.alloc()                   ← next word of the alloc bits
 *               ├─ span.sweep()                   ← frees came back: reuse the span in place
 *               └─ central.exchangeSpan(old)      ← MCentral lock, once: files the old span,
 *                                                   hands out a partial one, else MHeap (heap lock)
 *   allocTiny(size)                               ← bump inside the current 16 B block
 *     └─ allocSmall(TINY_SPAN_CLASS)              ← a new block
 * </pre>
 *
 * <h2>Tiny blocks</h2>
 * Objects under 16 bytes with no zeroing share 16-byte blocks (Go's tiny allocator). A block's
 * mask in {@link MSpan#tinyMasks} has bit k set while the tiny object at offset k is live, bit
 * {@link #TINY_OWNED} while it is this cache's current block, and bit {@code 16 + e} for every
 * object that ends at offset e &lt; 16 (set with the object, never cleared until the block is
 * reused): objects are placed in address order, so a live object's end is the first end bit
 * after its start, or 16 ({@link #tinyUsable}). Whoever clears the last start bit and the owned
 * bit (a freeing thread, or this cache moving to a new block) frees the block's slot in its span.
 *
 * <h2>Freed large objects</h2>
 * A large object of at most {@link #LARGE_MAX_PAGES} pages freed by a thread that gets this
 * cache's lease without waiting keeps its span here (up to {@link #LARGE_BUDGET_PAGES} pages in
 * all), and the next large allocation of the same page count reuses it with no heap lock: what
 * jemalloc's thread cache does for sizes above its small classes. Go frees large spans to the heap
 * at once, under the heap lock; with explicit frees at allocation rates, two threads doing so
 * would meet on that lock all the time. A kept span stays in use for the page heap (its pages are
 * not free there and not scavenged) and is in state large with its object freed, so a second free
 * of the old address is still refused. The background thread's idle flush, releaseMemory and a
 * memory limit give kept spans back to the heap.
 *
 * <h2>Guards</h2>
 * Every field but {@link #lease} belongs to whoever holds the lease: one thread at a time takes
 * it with a CAS ({@link #tryLease}) for the length of one operation and gives it back with a
 * release store, so the cache needs no lock and is never tied to a Java thread (no leak when
 * threads die, no growth with virtual threads): its {@link #owner} is only the thread that
 * tries it first, and other threads read that field without the lease. {@link #lease} is CAS /
 * volatile only.
 */
final class MCache extends MCacheOwnerPad {
    static final int TINY_OWNED = 1 << 16;
    /** The start bits and the owned bit: the block's slot is free once these are all clear. */
    private static final int TINY_LIVE = TINY_OWNED | (TINY_OWNED - 1);
    private static final VarHandle LEASE;
    private static final VarHandle MASKS = MethodHandles.arrayElementVarHandle(int[].class);

    static {
        try {
            LEASE = MethodHandles.lookup().findVarHandle(MCache.class, "lease", int.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /** A span with no slots: the initial occupant of every class, so the fast path needs no null check. */
    static final MSpan EMPTY = new MSpan();

    static {
        EMPTY.nelems = 0;
        EMPTY.allocCache = 0;
    }

    /** The heap, for kept large spans given back; the centrals of every span class (shared, immutable). */
    private final MHeap heap;
    private final MCentral[] central;
    final int id;
    /** Lease holder only. Current span per span class (plus the tiny class); EMPTY if none. */
    final MSpan[] alloc = new MSpan[SizeClasses.NUM_SPAN_CLASSES + 1];
    /**
     * Where this cache counts (see {@link MStats}). The fast path counts nothing: a cached span's
     * {@code allocCount - cachedAllocCount} is counted when the span leaves the cache, before it
     * is swept in place, and when a statistics reader flushes the cache ({@link #flushCounts};
     * Go counts at refill the same way).
     */
    private final MStats stats;
    /** This P's own counters in {@link #stats} (null for the stop-the-world sentinel, which never counts). */
    final MStats.Shard shard;
    /**
     * Lease holder only, per span class, not yet counted: slots handed out by spans that were
     * swept in place since, and slots those sweeps reclaimed. An in-place sweep happens every
     * span's worth of allocations; counting it into the shared counters each time (their atomics)
     * cost 1–2 ns per pair at 256 B, so it is kept here until the class's span leaves the cache or
     * a reader flushes the cache. Both halves go out together ({@link #countAllocs}), so a
     * snapshot lags by what this P did since, and stays consistent.
     */
    final long[] allocs = new long[SizeClasses.NUM_SPAN_CLASSES + 1];
    final long[] sweptInPlace = new long[SizeClasses.NUM_SPAN_CLASSES + 1];
    /** Lease holder only. Tiny objects handed out (a malloc and a free at once, as Go counts them), and how many are counted. */
    private long tinyObjects;
    private long tinyObjectsCounted;
    /**
     * Lease holder only, not yet counted: large objects served from kept spans and their bytes,
     * large objects whose spans were kept at free and their bytes, and the change in kept spans.
     * Counted with the rest by {@link #flushCounts} (before a kept span goes back to the heap, whose
     * count of kept spans must not run ahead of this cache's): the kept-span path stays free of
     * the shared counters' atomics.
     */
    private long largeAllocs;
    private long largeAllocBytes;
    private long largeFrees;
    private long largeFreeBytes;
    private long keptDelta;

    // Tiny allocator state: lease holder only.
    private long tiny;
    private int tinyOffset;
    private MSpan tinySpan;
    private int tinyIdx;

    /** Lease holder only: spans taken from centrals so far, and the count at the last idle check. */
    long refills;
    long refillsAtLastCheck;
    /**
     * Lease holder only: in-place sweeps so far, and the count at the last idle check. Not a
     * reason to keep spans (a span given back and taken again does better for a producer that
     * another thread frees behind), but a sign of life that keeps the cache's owner.
     */
    long sweepsInPlace;
    long sweepsAtLastCheck;

    /** Kept large spans: page counts up to this (objects up to 512 KiB), ... */
    static final int LARGE_MAX_PAGES = 64;
    /**
     * ... and at most this many pages in all (4 MiB per P; Go's per-P page cache holds 512 KiB).
     * Raised from 1 MiB in issue 13: with 16 threads on 2 CPUs, the server mix's large objects
     * that missed a 1 MiB keep queued on the heap lock behind descheduled holders (mix16t with
     * scopes: 893 ns per op with 1 MiB, 708 with 4 MiB, jemalloc 571 / 566 in the same runs).
     */
    static final int LARGE_BUDGET_PAGES = 512;
    /** Lease holder only. Kept large spans by page count, linked through {@link MSpan#next}. */
    private final MSpan[] largeKept = new MSpan[LARGE_MAX_PAGES + 1];
    /** Lease holder only. Pages in {@link #largeKept}, and spans. */
    int largeKeptPages;
    int largeKeptSpans;

    /** 0 free, 1 leased, {@link #CLOSED} for good. CAS to take, release store to give back. */
    private volatile int lease;
    /** {@code gomem.checkInvariants} ({@link io.gomem.internal.Options#CHECK_INVARIANTS}): check after every change. */
    private static final boolean CHECK = io.gomem.internal.Options.CHECK_INVARIANTS.booleanValue();
    /** With {@link #CHECK} only: the thread that holds the lease, for the owner-only assertion. */
    private Thread holder;

    MCache(MHeap heap, MCentral[] central, MStats stats, int id) {
        this.heap = heap;
        this.central = central;
        this.stats = stats;
        this.shard = stats == null ? null : stats.newShard(true);
        this.id = id;
        java.util.Arrays.fill(alloc, EMPTY);
    }

    boolean tryLease() {
        if (lease == 0 && LEASE.compareAndSet(this, 0, 1)) {
            if (CHECK) {
                holder = Thread.currentThread();
                if (shard != null) {
                    shard.holder = holder;
                }
            }
            return true;
        }
        return false;
    }

    void release() {
        if (CHECK) {
            holder = null;
            if (shard != null) {
                shard.holder = null;
            }
        }
        LEASE.setRelease(this, 0);
    }

    /**
     * The lease changes holder without being given back (the P of a scope whose thread ended,
     * taken back by the heap): only the owner-only assertion's bookkeeping changes.
     */
    void adoptLease() {
        if (CHECK) {
            holder = Thread.currentThread();
            if (shard != null) {
                shard.holder = holder;
            }
        }
    }

    /** With {@code gomem.checkInvariants}: the fields below the lease belong to its holder only. */
    private void assertLeased() {
        if (CHECK && holder != Thread.currentThread()) {
            throw new IllegalStateException("cache " + id + " used by " + Thread.currentThread()
                    + " without its lease (held by " + holder + ")");
        }
    }

    /** Whether the lease is taken now (or closed for good): for checks, a racy answer unless the caller holds it. */
    boolean isLeased() {
        return lease != 0;
    }

    /** Leaves the lease taken for good (the heap closed while its closer held it): no operation gets this cache again. */
    void closeLease() {
        LEASE.setRelease(this, CLOSED);
    }

    /** The lease word of a closed heap's caches. */
    static final int CLOSED = 2;

    /** One slot of {@code spanClass}; its address. Never 0 (throws if the heap cannot grow). */
    long allocSmall(int spanClass) {
        long p = alloc[spanClass].nextFreeFast();
        if (p == 0) {
            p = refill(spanClass);
        }
        return p;
    }

    /** Counts what the span cached for {@code spanClass} handed out since it was last counted. */
    void countAllocs(int spanClass) {
        MSpan s = alloc[spanClass];
        long handedOut = allocs[spanClass] + s.allocCount - s.cachedAllocCount;
        long reclaimed = sweptInPlace[spanClass];
        if (handedOut != 0 || reclaimed != 0) {
            MStats.countSweep(shard, spanClass, handedOut, reclaimed, SizeClasses.classSize(MStats.sizeClassOf(spanClass)));
        }
        allocs[spanClass] = 0;
        sweptInPlace[spanClass] = 0;
        s.cachedAllocCount = s.allocCount;
    }

    /**
     * Counts everything this cache handed out and has not counted yet (lease held): what its
     * cached spans handed out, and its tiny objects. After it, the counters are exact for this P.
     */
    void flushCounts() {
        assertLeased();
        for (int sc = 0; sc < alloc.length; sc++) {
            if (alloc[sc] != EMPTY) {
                countAllocs(sc);
            }
        }
        if (tinyObjects != tinyObjectsCounted || largeAllocs != 0 || largeFrees != 0 || keptDelta != 0) {
            MStats.Shard sh = shard;
            sh.begin();
            sh.add(MStats.TINY_OBJECTS, tinyObjects - tinyObjectsCounted);
            sh.add(MStats.LARGE_ALLOCS, largeAllocs);
            sh.add(MStats.LARGE_ALLOC_BYTES, largeAllocBytes);
            sh.add(MStats.LARGE_FREES, largeFrees);
            sh.add(MStats.LARGE_FREE_BYTES, largeFreeBytes);
            sh.add(MStats.LARGE_KEPT_SPANS, keptDelta);
            sh.add(MStats.LIVE_OBJECTS, largeAllocs - largeFrees);
            sh.add(MStats.LIVE_BYTES, largeAllocBytes - largeFreeBytes);
            sh.end();
            tinyObjectsCounted = tinyObjects;
            largeAllocs = largeAllocBytes = largeFrees = largeFreeBytes = keptDelta = 0;
        }
    }

    private long refill(int spanClass) {
        assertLeased();
        MSpan s = alloc[spanClass];
        long p = s.alloc();
        if (p != 0) {
            return p;
        }
        // Exhausted. Frees may have come back to it meanwhile (the common alloc/free pattern):
        // the owner may sweep its own span and go on with it, with no lock at all.
        if (s != EMPTY && s.hasPendingFrees()) {
            sweepInPlace(spanClass);
            sweepsInPlace++;
            p = s.alloc();
            if (p != 0) {
                return p;
            }
        }
        MCentral c = central[spanClass];
        MSpan old = null;
        if (s != EMPTY) {
            countAllocs(spanClass);
            alloc[spanClass] = EMPTY; // if the exchange throws, we must not keep a span we gave back
            s.cachedBy = null; // swept above if it had local frees: none are left
            old = s;
        }
        s = c.exchangeSpan(old, shard);
        s.cachedBy = this;
        s.cachedAllocCount = s.allocCount;
        alloc[spanClass] = s;
        refills++;
        HeapEvents.SpanRefill e = new HeapEvents.SpanRefill();
        if (e.shouldCommit()) {
            e.spanClass = spanClass;
            e.objectSize = s.elemSize;
            e.freeSlots = s.nelems - s.allocCount;
            e.p = id;
            e.commit();
        }
        p = s.alloc();
        if (p == 0) {
            throw new IllegalStateException("mcentral returned a full span " + s);
        }
        if (CHECK) {
            checkInvariants();
        }
        return p;
    }

    /** A tiny object of {@code size} bytes (1..15), not zeroed, aligned as its size suggests. */
    long allocTiny(long size) {
        int off = tinyOffset;
        if ((size & 7) == 0) {
            off = (off + 7) & ~7;
        } else if ((size & 3) == 0) {
            off = (off + 3) & ~3;
        } else if ((size & 1) == 0) {
            off = (off + 1) & ~1;
        }
        if (tiny != 0 && off + size <= SizeClasses.TINY_SIZE) {
            MASKS.getAndBitwiseOr(tinySpan.tinyMasks, tinyIdx, (1 << off) | tinyEnd(off + (int) size));
            tinyOffset = (int) (off + size);
            tinyObjects++;
            return tiny + off;
        }
        long block = allocSmall(SizeClasses.TINY_SPAN_CLASS);
        MSpan s = alloc[SizeClasses.TINY_SPAN_CLASS];
        int idx = (int) ((block - s.base) >>> 4);
        MASKS.setVolatile(s.tinyMasks, idx, TINY_OWNED | 1 | tinyEnd((int) size));
        dropTinyBlock();
        tiny = block;
        tinySpan = s;
        tinyIdx = idx;
        tinyOffset = (int) size;
        tinyObjects++;
        return block;
    }

    /** Gives up the current tiny block; frees its slot if no tiny object in it is live. */
    void dropTinyBlock() {
        if (tiny != 0) {
            int old = (int) MASKS.getAndBitwiseAnd(tinySpan.tinyMasks, tinyIdx, ~TINY_OWNED);
            if ((old & TINY_LIVE) == TINY_OWNED) {
                freeTinyBlock(central[SizeClasses.TINY_SPAN_CLASS], tinySpan, tinyIdx);
            }
            tiny = 0;
            tinySpan = null;
        }
    }

    /**
     * Frees the tiny object at {@code addr} in tiny span {@code s}. Any thread. Throws
     * IllegalStateException for a double free or an address with no live tiny object.
     */
    static void freeTiny(MCentral tinyCentral, MSpan s, long addr) {
        long off = addr - s.base;
        int idx = (int) (off >>> 4);
        int bit = 1 << (int) (off & 15);
        if (off < 0 || idx >= s.nelems) {
            throw new IllegalArgumentException("free of 0x" + Long.toHexString(addr) + ": not an object of this heap");
        }
        int[] masks = s.tinyMasks;
        for (;;) {
            int old = (int) MASKS.getVolatile(masks, idx);
            if ((old & bit) == 0) {
                throw new IllegalStateException("free of 0x" + Long.toHexString(addr)
                        + ": no live tiny object starts there (double free, or an interior or never-allocated address)");
            }
            int now = old & ~bit;
            if (MASKS.compareAndSet(masks, idx, old, now)) {
                if ((now & TINY_LIVE) == 0) {
                    freeTinyBlock(tinyCentral, s, idx);
                }
                return;
            }
        }
    }

    private static void freeTinyBlock(MCentral tinyCentral, MSpan s, int idx) {
        if (s.markFree(idx, s.base + ((long) idx << 4))) {
            tinyCentral.onFree(s);
        }
    }

    /** The end bit of a tiny object ending at offset {@code end} (1..16); none for 16, the block's end. */
    private static int tinyEnd(int end) {
        return end < SizeClasses.TINY_SIZE ? 1 << (16 + end) : 0;
    }

    /**
     * The bytes of the live tiny object at {@code addr} in tiny span {@code s}, from its start to
     * the next end bit (or the block's end); 0 if no live tiny object starts there. Any thread.
     */
    static long tinyUsable(MSpan s, long addr) {
        long off = addr - s.base;
        int idx = (int) (off >>> 4);
        int k = (int) (off & 15);
        if (off < 0 || idx >= s.nelems) {
            return 0;
        }
        int m = (int) MASKS.getVolatile(s.tinyMasks, idx);
        if ((m & (1 << k)) == 0) {
            return 0;
        }
        int ends = (m >>> 16) & ~1 & (-1 << (k + 1)); // bit e: an object ends at e, for e > k
        return (ends == 0 ? SizeClasses.TINY_SIZE : Integer.numberOfTrailingZeros(ends)) - k;
    }

    /** Live tiny objects in block {@code idx} of tiny span {@code s}. */
    static int tinyLive(MSpan s, int idx) {
        return Integer.bitCount((int) MASKS.getVolatile(s.tinyMasks, idx) & (TINY_OWNED - 1));
    }

    /** Sweeps every span this cache holds, in place (lease held); counts what was reclaimed. */
    void sweepCached() {
        assertLeased();
        for (int sc = 0; sc < alloc.length; sc++) {
            MSpan s = alloc[sc];
            if (s != EMPTY && s.hasPendingFrees()) {
                sweepInPlace(sc);
            }
        }
    }

    /** Sweeps the span cached for {@code spanClass} where it is: its allocations counted first, its reclaimed slots after. */
    private void sweepInPlace(int spanClass) {
        MSpan s = alloc[spanClass];
        allocs[spanClass] += s.allocCount - s.cachedAllocCount; // before the sweep changes allocCount
        sweptInPlace[spanClass] += s.sweep();
        s.cachedAllocCount = s.allocCount;
    }

    /**
     * A kept large span of exactly {@code npages}, made over into a new large object of
     * {@code size} bytes at its base (its memory not zeroed: {@code needZero} is set); null if none
     * is kept. Lease held.
     */
    MSpan reuseLarge(int npages, long size) {
        assertLeased();
        MSpan s = largeKept[npages];
        if (s == null) {
            return null;
        }
        largeKept[npages] = s.next;
        s.next = null;
        largeKeptPages -= npages;
        largeKeptSpans--;
        s.initLarge(s.base, s.npages, size, 0, true);
        keptDelta--;
        largeAllocs++;
        largeAllocBytes += size;
        return s;
    }

    /**
     * Keeps the span of a large object just freed (its {@code largeState} already 0) if it is small
     * enough and the budget allows; false if the caller must free it to the heap. Lease held.
     */
    boolean keepLarge(MSpan s) {
        assertLeased();
        int np = s.npages;
        if (np > LARGE_MAX_PAGES || largeKeptPages + np > LARGE_BUDGET_PAGES) {
            return false;
        }
        s.next = largeKept[np];
        largeKept[np] = s;
        largeKeptPages += np;
        largeKeptSpans++;
        keptDelta++;
        largeFrees++;
        largeFreeBytes += s.elemSize;
        return true;
    }

    /** Gives every kept large span back to the heap (lease held); returns the pages given back. */
    long releaseLarge() {
        flushCounts(); // the heap uncounts each kept span it takes back: this cache's count of them goes first
        long pages = 0;
        for (int np = 1; np <= LARGE_MAX_PAGES; np++) {
            for (MSpan s = largeKept[np]; s != null; ) {
                MSpan n = s.next;
                s.next = null;
                largeKeptPages -= np;
                largeKeptSpans--;
                pages += np;
                heap.freeKeptLargeSpan(s);
                s = n;
            }
            largeKept[np] = null;
        }
        return pages;
    }

    /** Calls {@code f} for each kept large span (lease held). */
    void forEachKeptLarge(java.util.function.Consumer<MSpan> f) {
        assertLeased();
        for (int np = 1; np <= LARGE_MAX_PAGES; np++) {
            for (MSpan s = largeKept[np]; s != null; s = s.next) {
                f.accept(s);
            }
        }
    }

    /** Checks the kept large spans (lease held, quiescent). */
    void checkLargeKept() {
        int pages = 0;
        int spans = 0;
        for (int np = 1; np <= LARGE_MAX_PAGES; np++) {
            for (MSpan s = largeKept[np]; s != null; s = s.next) {
                if (s.state != MSpan.STATE_LARGE || s.largeState != 0 || s.npages != np) {
                    throw new IllegalStateException("cache " + id + " keeps " + s + " in its " + np + "-page list (largeState "
                            + s.largeState + ")");
                }
                pages += np;
                spans++;
            }
        }
        if (pages != largeKeptPages || spans != largeKeptSpans) {
            throw new IllegalStateException("cache " + id + " keeps " + spans + " large spans of " + pages + " pages, counted "
                    + largeKeptSpans + " of " + largeKeptPages);
        }
    }

    /** Gives every cached span back to its central, and kept large spans to the heap (lease held): the cache holds nothing after. */
    void releaseAll() {
        assertLeased();
        releaseLarge();
        dropTinyBlock();
        flushCounts();
        for (int sc = 0; sc < alloc.length; sc++) {
            MSpan s = alloc[sc];
            if (s != EMPTY) {
                if (s.localFrees != 0) {
                    sweepInPlace(sc); // local marks are this holder's to fold: none may leave the cache
                }
                countAllocs(sc);
                alloc[sc] = EMPTY;
                s.cachedBy = null;
                central[sc].uncacheSpan(s, shard);
            }
        }
    }

    /**
     * Checks the cache (lease held): every cached span is small, marked as cached, and sound;
     * the kept large spans agree with their counts.
     */
    void checkInvariants() {
        assertLeased();
        checkLargeKept();
        for (MSpan s : alloc) {
            if (s != EMPTY) {
                if (s.where != MSpan.IN_CACHE || s.state != MSpan.STATE_SMALL) {
                    throw new IllegalStateException("cache " + id + " holds " + s + " where=" + s.where);
                }
                s.checkInvariants();
            }
        }
    }

    @Override
    public String toString() {
        return "P " + id;
    }

    /** Spans this cache holds (lease held). */
    int cachedSpans() {
        int n = largeKeptSpans;
        for (MSpan s : alloc) {
            if (s != EMPTY) {
                n++;
            }
        }
        return n;
    }
}

/**
 * {@link MCache#owner} on a cache line of its own: threads looking for their cache read the
 * owners of caches other threads lease on every operation; beside the lease word, each such read
 * would pull the line away from that thread (measured: two threads, each pairing allocations and
 * frees on its own cache, fell from 14 to 50–200 ns a pair once their caches swapped owners).
 */
abstract class MCacheOwner {
    /**
     * The id of the thread that claimed this cache last (0: nobody): the thread tries it first,
     * others try it last. Written by the lease holder; read by anyone without a lease, where a
     * stale value only changes which cache is tried first.
     */
    long owner;
    /**
     * The claiming thread itself, so that the idle flush forgets the owner once it has ended (a
     * strong reference: at most one ended thread per cache stays reachable, until the next
     * claim). Lease holder only.
     */
    Thread ownerThread;
}

/** Sixty-four bytes between {@link MCacheOwner#owner} and the fields of {@link MCache}. */
abstract class MCacheOwnerPad extends MCacheOwner {
    long pad0, pad1, pad2, pad3, pad4, pad5, pad6, pad7;
}
