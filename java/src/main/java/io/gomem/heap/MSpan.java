package io.gomem.heap;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * A run of whole 8 KiB pages: either one large object, or the slots of one size class.
 *
 * <h2>What it owns</h2>
 * The allocation state of its slots. A small span hands slots out from {@link #freeIndex}
 * upwards, finding the next free one in {@link #allocCache} with one count-trailing-zeros (Go's
 * {@code nextFreeFast}); {@link #nextFreeIndex()} refills the cache from {@link #allocBits}.
 *
 * <h2>Frees: mark, then sweep</h2>
 * Java has no collector, but the shape of Go's sweep fits explicit frees from any thread: a free
 * only sets the slot's bit in {@link #freeBits} (one atomic OR, from any thread; see
 * {@link #markFree}); the slot is reclaimed later, when whoever owns the span sweeps
 * it ({@link #sweep()}), which folds the pending frees into {@link #allocBits} and starts handing
 * slots out from index 0 again. A free by the thread that holds the P caching the span (the
 * span's {@link #cachedBy}) needs no atomic: it sets the slot's bit in {@link #localBits}, which
 * only that holder writes, with plain stores (mimalloc's local free list beside its thread-free
 * list; {@link #markFreeLocal}); the sweep folds both.
 *
 * <h2>Invariants</h2>
 * <ul>
 *   <li>A slot {@code i} of a small span is allocated iff {@code i < freeIndex} or its bit in
 *       {@link #allocBits} is set, and it is not yet reclaimed while its mark in
 *       {@link #freeBits} is set. A free is legal only for an allocated slot whose mark is
 *       zero; anything else is a double free or a foreign address.</li>
 *   <li>{@code allocCache} holds the complement of the alloc bits from {@code freeIndex} up to
 *       the end of its 64-slot word, shifted so that bit 0 is slot {@code freeIndex}.</li>
 *   <li>After {@link #sweep()}, {@code freeIndex == 0}, {@code allocCount} is the number of set
 *       alloc bits, and a mark set while it ran is kept for the next sweep.</li>
 * </ul>
 *
 * <h2>Guards</h2>
 * <ul>
 *   <li>Layout fields ({@link #base}, {@link #npages}, {@link #spanClass}, {@link #elemSize},
 *       {@link #nelems}): written by the heap under its lock before the span is published in the
 *       spans table (a release store), then read-only until the span is freed.</li>
 *   <li>Slot state ({@link #freeIndex}, {@link #allocCache}, {@link #allocBits},
 *       {@link #allocCount}, {@link #needZero}): the owner only: the {@link MCache} that caches
 *       the span (whose P slot the caller leases), or its {@link MCentral} under its lock while
 *       the span is not cached. {@link #freeIndex} is also read by freeing threads, so it is
 *       written with release semantics; a freer that obtained the address from an allocation
 *       (happens-before) sees an index above the slot or the slot's alloc bit.</li>
 *   <li>{@link #freeBits}: set by any thread with an atomic OR only (a plain read may only
 *       decide whether to try one); cleared by the owner's sweep, which takes each word with an
 *       atomic exchange for zero.</li>
 *   <li>{@link #localBits}, {@link #localFrees}: slot state, the owner only (plain); set only
 *       while the span is cached, by the cache's holder, and emptied by a sweep before the span
 *       leaves the cache (see {@link MCache#releaseAll}). Other threads read them only to
 *       diagnose a double free, where a stale value costs a diagnosis, never a slot.</li>
 *   <li>{@link #cachedBy}: the {@link MCache} caching the span, or null: written only by that
 *       cache's lease holder, when it takes the span and before it gives it back. A holder reads
 *       its own cache there only if the span is in it now: every write of that cache's identity
 *       is its holder's, and every holder took the lease after the previous one gave it back.</li>
 *   <li>{@link #notifyCentral}, {@link #largeState}: any thread, volatile/CAS.</li>
 *   <li>{@link #where}, {@link #next}, {@link #prev}: the span class's {@link MCentral} lock;
 *       for a freed large span an {@link MCache} keeps, {@link #next} links its kept list and
 *       belongs to that cache's lease holder.</li>
 * </ul>
 */
final class MSpan {
    static final int STATE_FREE = 0;
    static final int STATE_SMALL = 1;
    static final int STATE_LARGE = 2;
    /**
     * Faulted for good (PROT_NONE) and never reused: a freed object under {@code gomem.debug=efence},
     * or a closed arena's chunk under {@code gomem.debug=arenafault}. Its pages stay allocated in
     * the page allocator and its entries in the spans table, so that a free of it is diagnosed.
     */
    static final int STATE_FAULTED = 3;

    /** {@link #largeState}: the object is live. */
    static final int LARGE_LIVE = 1;
    /** {@link #largeState}: the span is an arena's chunk (or an arena's own span): no free takes it. */
    static final int LARGE_ARENA = 2;
    /** {@link #largeState}: a closed arena's chunk, quarantined (gomem.debug=arenafault). */
    static final int LARGE_QUARANTINED = 3;

    /**
     * Where a small span is, for its MCentral: cached by an MCache, in its partial or full set, or
     * held out of both by the central while the heap returns its free OS pages ({@link MCentral#releaseFreeOsPages}).
     */
    static final int IN_CACHE = 0;
    static final int IN_PARTIAL = 1;
    static final int IN_FULL = 2;
    static final int IN_RELEASE = 3;

    private static final VarHandle WORDS = MethodHandles.arrayElementVarHandle(long[].class);
    private static final VarHandle FREE_INDEX;
    private static final VarHandle NOTIFY;
    private static final VarHandle LARGE;

    static {
        try {
            MethodHandles.Lookup l = MethodHandles.lookup();
            FREE_INDEX = l.findVarHandle(MSpan.class, "freeIndex", int.class);
            NOTIFY = l.findVarHandle(MSpan.class, "notifyCentral", boolean.class);
            LARGE = l.findVarHandle(MSpan.class, "largeState", int.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    // Layout: set under the heap lock, read-only while in use.
    long base;
    int npages;
    /** Span class (size class × 2 + noscan), or -1 for a large span. */
    int spanClass;
    int sizeClass;
    long elemSize;
    int nelems;
    /** For a large span: the offset of the one object from {@link #base} (nonzero when over-aligned). */
    long largeOffset;
    /**
     * {@link #STATE_FREE}, {@link #STATE_SMALL}, {@link #STATE_LARGE}, {@link #STATE_FAULTED}: written under the heap lock
     * before the span is published in the spans table (release store) or after it is removed;
     * read lock-free by frees after their acquire load of the table, so a plain field suffices.
     */
    int state;

    /**
     * Set with the layout: the slot count if frees of this span take the small-object fast path
     * (a small span of a class other than tiny), else 0; and Go's divMagic for the class, so that
     * a free finds the slot index with one multiply and no table.
     */
    int smallSlots;
    long divMagic;

    // Slot state: owner only.
    int freeIndex;
    long allocCache;
    final long[] allocBits = new long[SizeClasses.MAX_OBJECTS_PER_SPAN / 64];
    int allocCount;
    /** The owning MCache's lease holder only: allocCount when last counted (MCache#countAllocs). */
    int cachedAllocCount;
    /** True if the span's memory may hold old data, so zeroed allocations must clear it. */
    boolean needZero;
    /** Frees by the caching P's holder, not yet swept: one bit per slot, as {@link #allocBits}. */
    final long[] localBits = new long[SizeClasses.MAX_OBJECTS_PER_SPAN / 64];
    /** Bits set in {@link #localBits}. */
    int localFrees;
    /**
     * The cache holding this span, or null (see the class comment for who writes it); compared
     * by identity only, so typed Object: a span knows nothing of the caches above it.
     */
    Object cachedBy;

    // Any thread.
    /**
     * The free marks: one bit per slot, slot i at bit {@code i % 64} of word
     * {@code FREE_PAD + i / 64}; set means freed, not yet swept. A free sets its bit with one
     * atomic OR, so the mark is idempotent: however many frees of one object race, they set the
     * same bit, exactly one of them sees it clear, and no free can reach another slot's mark (a
     * two-bit count added atomically could carry into the next slot when four frees of one
     * object raced). The sweep takes each word with an atomic exchange for zero, so a free that
     * lands meanwhile is in the word it takes or stays for the next sweep. (A byte per slot, set
     * with an exchange, measured 1–2 ns slower per allocate/free pair at 16 B: the sweep then
     * clears each mark with its own store.)
     */
    final long[] freeBits = new long[FREE_PAD + SizeClasses.MAX_OBJECTS_PER_SPAN / 64 + FREE_PAD];
    /**
     * Unused words on each side of the free marks: frees write them from any thread, so they must
     * share no cache line with another span's fields, which another thread writes on every
     * allocation (measured: two threads each allocating and freeing in their own span ran 3.5
     * times slower when the spans happened to lie next to each other on the Java heap).
     */
    static final int FREE_PAD = 8;
    /** Set while the span sits in its central's full set: the first free must tell the central. */
    volatile boolean notifyCentral;
    /**
     * Large spans: {@link #LARGE_LIVE} while the object is live, 0 once freed (CAS guards double
     * frees), {@link #LARGE_ARENA} while an arena holds the span, {@link #LARGE_QUARANTINED} once
     * a closed arena's span is faulted.
     */
    volatile int largeState;
    /** Tiny blocks (tiny span class only): per 16-byte slot, bit k = tiny object at offset k live,
     * bit 16 = the block is some MCache's current tiny block. Any thread, atomic only. */
    int[] tinyMasks;

    /**
     * OS pages of this in-use span returned to the OS while no object was on them (bit k = the
     * k-th OS page from {@link #base}). Written under the heap lock by whoever has the span: its
     * central, holding it out of its sets ({@link MCentral#releaseFreeOsPages}), the cache about
     * to use it, or the heap freeing it; the OS calls themselves run with neither lock held. Such
     * pages are Prepared, and are made Ready again before the span is cached; a freed span's
     * heap pages with any released OS page go back to the heap wholly released.
     */
    long releasedMask;

    /**
     * Small spans: which shard of central lists ({@link MCentral#shard}) owns the span: set by that
     * central when it takes the span from the heap, before any cache sees it; fixed until the
     * span goes back to the heap. A free tells that central, whoever frees.
     */
    int shard;

    /** The link of {@link MCentral}'s notified stack: the pusher's until the drain (lock held). */
    MSpan notifiedNext;

    // MCentral lock.
    int where;
    MSpan next;
    MSpan prev;

    /** Sets the span up for a small size class; the caller holds the heap lock. */
    void initSmall(long base, int npages, int spanClass, int sizeClass, boolean needZero) {
        this.base = base;
        this.npages = npages;
        this.spanClass = spanClass;
        this.sizeClass = sizeClass;
        this.elemSize = SizeClasses.classSize(sizeClass);
        this.nelems = SizeClasses.classObjects(sizeClass);
        this.smallSlots = spanClass == SizeClasses.TINY_SPAN_CLASS ? 0 : nelems;
        this.divMagic = SizeClasses.divMagic(sizeClass) & 0xFFFF_FFFFL;
        this.largeOffset = 0;
        this.needZero = needZero;
        java.util.Arrays.fill(allocBits, 0L);
        java.util.Arrays.fill(freeBits, 0L);
        java.util.Arrays.fill(localBits, 0L);
        this.localFrees = 0;
        this.cachedBy = null;
        this.allocCount = 0;
        this.freeIndex = 0;
        this.allocCache = ~0L;
        this.notifyCentral = false;
        this.releasedMask = 0;
        this.where = IN_CACHE;
        this.next = this.prev = null;
        this.state = STATE_SMALL;
    }

    /** Sets the span up for one large object at {@code base + largeOffset}; heap lock held. */
    void initLarge(long base, int npages, long size, long largeOffset, boolean needZero) {
        this.base = base;
        this.npages = npages;
        this.spanClass = -1;
        this.sizeClass = 0;
        this.elemSize = size;
        this.nelems = 1;
        this.smallSlots = 0;
        this.divMagic = 0;
        this.largeOffset = largeOffset;
        this.needZero = needZero;
        this.allocCount = 1;
        this.largeState = 1;
        this.state = STATE_LARGE;
    }

    long limit() {
        return base + ((long) npages << SizeClasses.PAGE_SHIFT);
    }

    // ───────────────────────────── allocation (owner) ─────────────────────────────

    /**
     * The fast path: the next free slot's address from the cache, or 0 if the cache is empty or
     * the slot would cross into a new 64-slot word (then {@link #nextFreeIndex()} refills).
     */
    long nextFreeFast() {
        int bit = Long.numberOfTrailingZeros(allocCache);
        if (bit < 64) {
            int result = freeIndex + bit;
            if (result < nelems) {
                int next = result + 1;
                if ((next & 63) == 0 && next != nelems) {
                    return 0;
                }
                allocCache >>>= bit + 1;
                FREE_INDEX.setRelease(this, next);
                allocCount++;
                return base + result * elemSize;
            }
        }
        return 0;
    }

    /**
     * The slow path: the index of the next free slot at or above {@link #freeIndex}, or
     * {@link #nelems} if the span is full; refills {@link #allocCache} and moves
     * {@link #freeIndex} to the slot. The caller then takes it with {@link #take(int)}.
     */
    int nextFreeIndex() {
        int idx = freeIndex;
        if (idx >= nelems) {
            return nelems;
        }
        long cache = allocCache;
        int bit = Long.numberOfTrailingZeros(cache);
        while (bit == 64) {
            // Move to the next word.
            idx = (idx + 64) & ~63;
            if (idx >= nelems) {
                FREE_INDEX.setRelease(this, nelems);
                return nelems;
            }
            cache = ~allocBits[idx >>> 6];
            bit = Long.numberOfTrailingZeros(cache);
        }
        int result = idx + bit;
        if (result >= nelems) {
            FREE_INDEX.setRelease(this, nelems);
            return nelems;
        }
        allocCache = cache >>> bit;
        FREE_INDEX.setRelease(this, result);
        return result;
    }

    /** Takes slot {@code idx}, which {@link #nextFreeIndex()} just returned; returns its address. */
    long take(int idx) {
        int next = idx + 1;
        if ((next & 63) == 0) {
            allocCache = next < nelems ? ~allocBits[next >>> 6] : 0L;
        } else {
            allocCache >>>= 1;
        }
        FREE_INDEX.setRelease(this, next);
        allocCount++;
        return base + idx * elemSize;
    }

    /** Allocates one slot, fast or slow path; 0 if the span is full. */
    long alloc() {
        long p = nextFreeFast();
        if (p != 0) {
            return p;
        }
        int idx = nextFreeIndex();
        return idx < nelems ? take(idx) : 0;
    }

    // ───────────────────────────── frees (any thread) ─────────────────────────────

    /**
     * The slot index of {@code addr} if this is a small, non-tiny span and {@code addr} a slot's
     * start; else -1 (for every other kind of span {@link #smallSlots} is 0). One multiply by
     * the class's divMagic and one unsigned compare: the free fast path.
     */
    int slotOf(long addr) {
        long off = addr - base;
        int idx = (int) ((off * divMagic) >>> 32);
        return Integer.compareUnsigned(idx, smallSlots) < 0 && idx * elemSize == off ? idx : -1;
    }

    boolean isAllocated(int idx) {
        if (idx < (int) FREE_INDEX.getAcquire(this)) {
            return true;
        }
        return (allocBits[idx >>> 6] & (1L << idx)) != 0;
    }

    /** True if slot {@code idx} is marked free but not yet swept (a local mark is exact for the owner only). */
    boolean isFreePending(int idx) {
        return (((long) WORDS.getVolatile(freeBits, FREE_PAD + (idx >>> 6)) | localBits[idx >>> 6]) & (1L << idx)) != 0;
    }

    /**
     * Marks slot {@code idx} free. Returns normally if the slot was allocated and not yet freed;
     * throws IllegalStateException (a double free, or a slot never handed out) otherwise, with
     * nothing changed. Returns true if the span's central must be told (first free of a full span).
     * What this cannot see (see the package overview): a second free after the slot was swept and
     * handed out again frees the new object, as in C; a second free racing with the sweep that
     * reclaims the first may leave a mark that frees the slot's next object. Neither touches
     * another slot.
     */
    boolean markFree(int idx, long addr) {
        // Check first, then mark: once the mark is set, the owner may sweep it (and the slot) at any
        // moment, so a check after the mark could see our own free already reclaimed.
        if (!isAllocated(idx)) {
            throw notLive(addr);
        }
        if (((freeBits[FREE_PAD + (idx >>> 6)] | localBits[idx >>> 6]) & (1L << idx)) != 0) {
            throw doubleFree(addr); // the common double free: nothing written
        }
        if (!setMark(idx)) {
            throw doubleFree(addr); // a second free raced past the check with the first: same bit, nothing to undo
        }
        return notifyCentral && NOTIFY.compareAndSet(this, true, false);
    }

    /**
     * {@link #markFree} by the holder of the P caching this span ({@link #cachedBy} is its
     * cache): the same checks, then a plain store into {@link #localBits}; nothing to tell the
     * central (a cached span is in no set). Throws as {@link #markFree} does, with nothing
     * changed. A racing remote free of the same slot (itself a double free) leaves both marks,
     * and the sweep reclaims the slot once.
     */
    void markFreeLocal(int idx, long addr) {
        if (!isAllocated(idx)) {
            throw notLive(addr);
        }
        int w = idx >>> 6;
        long bit = 1L << idx;
        long local = localBits[w];
        if (((freeBits[FREE_PAD + w] | local) & bit) != 0) {
            throw doubleFree(addr);
        }
        localBits[w] = local | bit;
        localFrees++;
    }

    /**
     * The atomic step of a free that passed the checks: sets slot {@code idx}'s mark; true if
     * this call set it, false if a racing free already had. However many frees of one slot get
     * here at once, exactly one wins and no other slot's mark changes.
     */
    boolean setMark(int idx) {
        long bit = 1L << idx;
        return ((long) WORDS.getAndBitwiseOr(freeBits, FREE_PAD + (idx >>> 6), bit) & bit) == 0;
    }

    /** The marks of slots {@code 64 * w} to {@code 64 * w + 63} (any thread; a volatile read). */
    private long marks(int w) {
        return (long) WORDS.getVolatile(freeBits, FREE_PAD + w);
    }

    // Cold: exception building kept out of the hot methods so that they stay small and inline.
    private IllegalStateException doubleFree(long addr) {
        return new IllegalStateException("double free of 0x" + Long.toHexString(addr)
                + ": the object (" + elemSize + " B slot) was already freed");
    }

    private static IllegalStateException notLive(long addr) {
        return new IllegalStateException("free of 0x" + Long.toHexString(addr)
                + ": no live object there (never allocated, or already freed and reclaimed)");
    }

    /** Arms {@link #notifyCentral} as the span enters the full set; true if frees already arrived. */
    boolean armNotify() {
        notifyCentral = true; // a volatile write, then volatile reads of the marks (Dekker with markFree)
        for (int w = 0, words = (nelems + 63) >>> 6; w < words; w++) {
            if (marks(w) != 0) {
                return NOTIFY.compareAndSet(this, true, false);
            }
        }
        return false;
    }

    /** Large span: marks the object freed; throws on a double free, or on an arena's span. */
    void markLargeFree(long addr) {
        if (!LARGE.compareAndSet(this, LARGE_LIVE, 0)) {
            throw largeState == LARGE_ARENA ? arenaMemory(addr)
                    : new IllegalStateException("double free of 0x" + Long.toHexString(addr)
                    + ": the large object (" + elemSize + " B) was already freed");
        }
    }

    /** The error for a free (or usableSize) of memory an arena holds. */
    static IllegalArgumentException arenaMemory(long addr) {
        return new IllegalArgumentException("free of 0x" + Long.toHexString(addr) + ": memory of an arena"
                + " (heap.ofConfined() / ofShared()); an arena's memory is freed all at once by closing the arena");
    }

    /** A span just made for an arena (its object not yet handed to anyone): marks it as the arena's. */
    void markArenaChunk() {
        largeState = LARGE_ARENA;
    }

    /** An arena gives its span back: arena → {@code to} (0: free, or {@link #LARGE_QUARANTINED}). */
    void unmarkArenaChunk(int to) {
        if (!LARGE.compareAndSet(this, LARGE_ARENA, to)) {
            throw new IllegalStateException("internal: " + this + " is not an arena's (state " + largeState + ")");
        }
    }

    // ───────────────────────────── sweep (owner) ─────────────────────────────

    /**
     * Folds pending frees into the alloc bits, recounts, and restarts allocation at slot 0.
     * Returns the number of objects reclaimed. Owner only: the lease holder of the MCache caching
     * the span, or the central under its lock when no cache holds it.
     */
    int sweep() {
        int words = (nelems + 63) >>> 6;
        // Slots below freeIndex were handed out without setting their alloc bits: set them now.
        int fi = freeIndex;
        for (int w = 0; w < (fi >>> 6); w++) {
            allocBits[w] = ~0L;
        }
        if ((fi & 63) != 0) {
            allocBits[fi >>> 6] |= (1L << fi) - 1;
        }
        int reclaimed = 0;
        int count = 0;
        boolean local = localFrees != 0;
        for (int w = 0; w < words; w++) {
            long f = marks(w) != 0 ? (long) WORDS.getAndSet(freeBits, FREE_PAD + w, 0L) : 0L;
            if (local) {
                f |= localBits[w];
                localBits[w] = 0;
            }
            if (f != 0) {
                // A mark on a slot that is not allocated is a double free that raced a sweep: dropped.
                long live = f & allocBits[w];
                allocBits[w] &= ~live;
                reclaimed += Long.bitCount(live);
            }
        }
        localFrees = 0;
        for (int w = 0; w < words; w++) {
            count += Long.bitCount(allocBits[w]);
        }
        if (reclaimed > 0) {
            needZero = true;
        }
        allocCount = count;
        allocCache = ~allocBits[0];
        FREE_INDEX.setRelease(this, 0);
        return reclaimed;
    }

    /** True if some free is waiting for a sweep (any thread; a snapshot; local frees exact for the owner only). */
    boolean hasPendingFrees() {
        if (localFrees != 0) {
            return true;
        }
        for (int w = 0, words = (nelems + 63) >>> 6; w < words; w++) {
            if (marks(w) != 0) {
                return true;
            }
        }
        return false;
    }

    /**
     * The OS pages of this span (bit k = k-th page of {@code osPageSize} bytes from base) on which
     * no allocated slot lies, counting a slot with a pending free as allocated. Owner only, swept.
     */
    long freeOsPages(long osPageSize) {
        int shift = Long.numberOfTrailingZeros(osPageSize);
        int pages = (int) (((long) npages << SizeClasses.PAGE_SHIFT) >>> shift);
        if (pages > 64 || pages < 1) {
            return 0;
        }
        long used = 0;
        for (int w = 0, words = (nelems + 63) >>> 6; w < words; w++) {
            long bits = allocBits[w];
            while (bits != 0) {
                int i = (w << 6) + Long.numberOfTrailingZeros(bits);
                bits &= bits - 1;
                long start = i * elemSize;
                int first = (int) (start >>> shift);
                int last = (int) ((start + elemSize - 1) >>> shift);
                used |= (last - first == 63 ? -1L : ((1L << (last - first + 1)) - 1)) << first;
            }
        }
        long all = pages == 64 ? -1L : (1L << pages) - 1;
        return all & ~used;
    }


    /** Objects whose free is pending (any thread; a snapshot). */
    int pendingFrees() {
        int n = localFrees;
        for (int w = 0, words = (nelems + 63) >>> 6; w < words; w++) {
            n += Long.bitCount(marks(w));
        }
        return n;
    }

    /** Checks the slot-state invariants; owner only, at a quiescent point. */
    void checkInvariants() {
        if (state == STATE_SMALL) {
            int count = 0;
            for (int i = 0; i < nelems; i++) {
                if (i < freeIndex || (allocBits[i >>> 6] & (1L << i)) != 0) {
                    count++;
                }
                if (isFreePending(i) && !isAllocated(i)) {
                    throw new IllegalStateException(this + ": slot " + i + " free-pending but not allocated");
                }
            }
            if (count != allocCount) {
                throw new IllegalStateException(this + ": allocCount " + allocCount + " but " + count + " slots allocated");
            }
            int local = 0;
            for (int w = 0; w < localBits.length; w++) {
                local += Long.bitCount(localBits[w]);
            }
            if (local != localFrees || (localFrees != 0 && (cachedBy == null || where != IN_CACHE))) {
                throw new IllegalStateException(this + ": " + local + " local free marks, " + localFrees + " counted, cached by "
                        + (cachedBy == null ? "none" : cachedBy) + " (local marks only while cached)");
            }
            for (int w = 0; w < freeBits.length; w++) {
                long outside = w < FREE_PAD || w >= FREE_PAD + (nelems + 63) / 64 ? -1L
                        : w == FREE_PAD + nelems / 64 ? -1L << nelems : 0; // bits of no slot of this span
                if ((freeBits[w] & outside) != 0) {
                    throw new IllegalStateException(this + ": free marks outside the span's " + nelems
                            + " slots in word " + w + ": " + Long.toHexString(freeBits[w] & outside));
                }
            }
        }
    }

    @Override
    public String toString() {
        return "span[0x" + Long.toHexString(base) + " +" + npages + "p " + (state == STATE_LARGE
                ? (largeState == LARGE_ARENA ? "arena " : "large ") + elemSize + " B" : state == STATE_FAULTED ? "faulted"
                : state == STATE_SMALL ? "class " + sizeClass + " (" + elemSize + " B) " + allocCount + "/" + nelems : "free") + "]";
    }
}
