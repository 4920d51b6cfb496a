package io.gomem.heap;

import io.gomem.os.MemoryLimitExceededError;
import io.gomem.os.OsMemory;

import java.lang.foreign.MemorySegment;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The heap's entry points for the public API ({@code io.gomem.GoHeap}): the P slots of
 * {@link MCache}s and the allocation and free paths through them, the checks of bad input, and
 * close. The API class extends this one (so that the fast paths start at the object the caller
 * holds) and adds the public names, MemorySegment views and management; this class is the
 * machine, and its entry points are protected or package-private. It extends {@link SpanTable}
 * for the same reason: a free's first load is the flat spans table.
 *
 * <h2>P slots</h2>
 * {@link #caches} holds {@code procs} caches (default: available processors, Go's GOMAXPROCS).
 * An operation leases one ({@link #lease}) with a CAS: the cache its thread id picks in
 * {@link #picks} if the thread owns it, else ({@link #leaseSlow}) one it owns, one nobody owns
 * (which it then owns), or any free one (borrowed); if none is free it waits
 * ({@link #leaseWait}). Ownership is only a preference that keeps a thread on one cache (and
 * its spans) as Go keeps an M on a P; leases last one operation, so a thread that dies or idles
 * holds nothing, and any number of threads, virtual or not, share {@code procs} caches. The
 * background thread ({@link Background}) flushes caches that took no span for a period, and
 * forgets their owner, so spans do not sit in caches nobody uses.
 *
 * <h2>Who may touch heap memory: the lease protocol</h2>
 * Invariant: a thread touches heap memory (zeroing), or a cache, only while it holds that
 * cache's lease; {@link #close()} and every stop-the-world hold every lease. So an allocation
 * zeroes its block before it gives its lease back, and the large path (a kept span, a new one
 * from the heap, the clear) runs under one lease: after {@code close()} returns no thread
 * touches the heap's memory, and an allocation that loses the race gets IllegalStateException.
 * A free takes no lease: it touches only Java objects (the spans table, a span's marks, a
 * central's queue) and never the block; a large span it frees goes to the heap under the heap
 * lock, which refuses it once the heap is released.
 * <ul>
 *   <li>Stop-the-world ({@link #stopTheWorldIfOpen}): one at a time; points {@link #picks} at
 *       {@link #stopped}, so no operation starting now takes a lease, then takes each lease as
 *       the operation holding it ends. A thread holding a lease never stops the world.</li>
 *   <li>Back-to-back stop-the-worlds do not starve waiters: one lets a thread that has waited
 *       for a P since before the last one ended get it first, for up to about 1 ms.</li>
 *   <li>No wait spins without bound: a waiter (for a lease, or a stop-the-world for one) spins
 *       {@link #SPINS} PAUSEs, then parks for 1 µs doubling to 1 ms between tries, so a virtual
 *       thread that holds a lease and needs a carrier gets one. Threads with no P queue on
 *       {@link #waitLock} (parked) and only its holder polls.</li>
 *   <li>The hard limit: an allocation that meets it gives its lease back, releases every free
 *       page ({@link #releaseMemory}, a stop-the-world) and tries once more.</li>
 * </ul>
 *
 * <h2>Guards</h2>
 * {@link #closed}: volatile; set once by {@link #close()} while it holds every lease, which it
 * then leaves taken for good ({@link MCache#closeLease}), with {@link #picks} left at
 * {@link #stopped}: whoever holds a lease got it before the close and completes before the heap
 * goes away, so it need not read {@code closed}; whoever finds no lease reads it. {@link #picks}:
 * volatile, written by the stop-the-world under {@link #stwLock}. {@link #poller}: volatile,
 * the {@link #waitLock} holder's. Everything else is in the components' own guards.
 */
public class HeapCore extends SpanTable {
    /**
     * Largest object size, and largest alignment, gomem accepts: 8 TiB. A span's page count is
     * an {@code int}: size plus alignment padding stays under 2^31 pages of 8 KiB.
     */
    static final long MAX_ALLOC = 1L << 43;

    final MHeap heap;
    final Scavenger scavenger;
    private final MCache[] caches;
    /**
     * A power-of-two table whose entry i is {@code caches[i % procs]}, four or more entries per
     * cache: a thread's starting cache is {@code slots[threadId & (length - 1)]}, a mask instead
     * of a division (consecutive thread ids land on different caches; the oversize keeps the
     * shares within 25% of even). Immutable.
     */
    final MCache[] slots;
    /**
     * The table the lease fast path reads: {@link #slots}, or {@link #stopped} while a
     * stop-the-world is pending or running, and for good once the heap is closed. Written only
     * by the stop-the-world, under {@link #stwLock}.
     */
    private volatile MCache[] picks;
    /** As long as {@link #slots}, every entry {@link #STOPPED}: no thread's fast path gets a lease from it. */
    private final MCache[] stopped;
    /** Owned by nobody, its lease closed: the entry of {@link #stopped}. */
    private static final MCache STOPPED = new MCache(null, -1);

    static {
        STOPPED.owner = -1;
        STOPPED.closeLease();
    }

    /** One stop-the-world at a time (close is one); parks its waiters. */
    private final ReentrantLock stwLock = new ReentrantLock();
    /**
     * Threads that found no free P queue on this lock, parked; its holder alone polls for a P
     * ({@link #leaseWait}), and {@link #poller} names it so that a stop-the-world ending can wake it.
     */
    private final ReentrantLock waitLock = new ReentrantLock();
    private volatile Thread poller;
    /**
     * Stop-the-worlds ended so far (written under {@link #stwLock}), and its value when the
     * current poller began to wait: a stop-the-world lets a poller that has waited since before
     * the last one ended get its P first (bounded), so that a loop of stop-the-worlds cannot
     * starve the threads that wait for a P.
     */
    private volatile long stwEnds;
    private volatile long pollerSince;
    private volatile boolean closed;

    /**
     * The settings of a heap core.
     *
     * @param procs              P slots (caches)
     * @param softLimit          soft limit on Ready heap bytes, Long.MAX_VALUE for none
     * @param hardLimit          hard limit on Ready heap bytes, Long.MAX_VALUE for none
     * @param retainExtraPercent the scavenger's goal: Ready at most in-use × (100 + this) / 100
     * @param cpuPercent         the background scavenger's CPU budget, percent of one CPU
     */
    protected record Config(int procs, long softLimit, long hardLimit, int retainExtraPercent, int cpuPercent) {
        public Config {
            if (procs < 1 || procs > 4096) {
                throw new IllegalArgumentException("procs " + procs + " must be between 1 and 4096");
            }
        }

        /** Defaults with {@code procs} caches and no limits. */
        public static Config of(int procs) {
            return new Config(procs, Long.MAX_VALUE, Long.MAX_VALUE, 10, 1);
        }
    }

    protected HeapCore(OsMemory os, int procs) {
        this(os, Config.of(procs));
    }

    protected HeapCore(OsMemory os, Config config) {
        int procs = config.procs();
        this.heap = new MHeap(os, this);
        this.scavenger = new Scavenger(heap, config.softLimit(), config.hardLimit(), config.retainExtraPercent(),
                config.cpuPercent());
        heap.setScavenger(scavenger);
        this.caches = new MCache[procs];
        for (int i = 0; i < procs; i++) {
            caches[i] = new MCache(heap, i);
        }
        this.slots = new MCache[Integer.highestOneBit(4 * procs - 1) << 1];
        for (int i = 0; i < slots.length; i++) {
            slots[i] = caches[i % procs];
        }
        this.stopped = new MCache[slots.length];
        java.util.Arrays.fill(stopped, STOPPED);
        this.picks = slots;
        Background.register(this);
        HeapEvents.init();
    }

    /**
     * Gives back the spans of every cache that took no span since the last call and is not in
     * use right now (a busy cache is skipped, never waited for), and forgets the owner of every
     * cache whose owning thread has ended or that neither took nor swept a span since the last
     * call. Returns the caches flushed.
     * Run by the background thread every second, so caches that went idle (their threads gone
     * or quiet) do not keep spans from the rest of the heap.
     */
    int flushIdleCaches() {
        int flushed = 0;
        for (MCache c : caches) {
            if (c.tryLease()) {
                try { // a lease taken means the heap is open: close leaves every lease taken
                    if (c.refills == c.refillsAtLastCheck && c.cachedSpans() > 0) {
                        c.releaseAll();
                        flushed++;
                    }
                    boolean quiet = c.refills == c.refillsAtLastCheck && c.sweepsInPlace == c.sweepsAtLastCheck;
                    c.refillsAtLastCheck = c.refills;
                    c.sweepsAtLastCheck = c.sweepsInPlace;
                    if (c.ownerThread != null && (quiet || !c.ownerThread.isAlive())) {
                        c.owner = 0; // its owner ended or went quiet: anyone may claim it now
                        c.ownerThread = null;
                    }
                } finally {
                    c.release();
                }
            }
        }
        return flushed;
    }

    /**
     * The background thread's work each period: flush idle caches, sweep the centrals' spans
     * (so that wholly free ones go back to the page heap), then scavenge toward the goal within
     * the CPU budget.
     */
    void backgroundTick() {
        flushIdleCaches();
        for (MCentral c : heap.central) {
            if (c != null && !closed) {
                c.sweepAll();
            }
        }
        if (!closed) {
            scavenger.backgroundCycle(Background.PERIOD_MS * 1_000_000L * scavenger.cpuPercent / 100);
        }
    }

    /** Spans held by all caches now (stops the world). */
    int cachedSpans() {
        int[] n = new int[1];
        stopTheWorld(() -> {
            for (MCache c : caches) {
                n[0] += c.cachedSpans();
            }
        });
        return n[0];
    }

    public int procs() {
        return caches.length;
    }

    /**
     * Leases a P: the cache this thread's id picks if this thread owns it (one CAS), else
     * {@link #leaseSlow}. While the world stops (and after close) {@link #picks} holds only
     * {@link #STOPPED}, so every caller goes the slow way and waits.
     */
    private MCache lease() {
        long tid = Thread.currentThread().threadId();
        MCache[] t = picks;
        MCache c = t[(int) tid & (t.length - 1)];
        if (c.owner == tid && c.tryLease()) {
            return c; // no closed check: close leaves every lease taken (MCache.closeLease)
        }
        return leaseSlow(tid);
    }

    /** Caches looked at for one this thread owns, or one nobody owns, before taking any free one. */
    private static final int PROBES = 4;
    /** Tries before a waiter parks, and the longest it parks between tries. */
    private static final int SPINS = 32;
    private static final long MAX_PARK_NANOS = 1_000_000;

    /** The {@code k}-th wait of a poller: a PAUSE for the first {@link #SPINS}, then a park from 1 µs doubling to 1 ms. */
    private void backOff(int k) {
        if (k < SPINS) {
            Thread.onSpinWait();
        } else {
            LockSupport.parkNanos(this, Math.min(MAX_PARK_NANOS, 1_000L << Math.min(20, k - SPINS)));
        }
    }

    /** A free P now (see {@link #tryLeaseAny}), else waits for one ({@link #leaseWait}). */
    private MCache leaseSlow(long tid) {
        MCache c = picks == slots ? tryLeaseAny(tid) : null; // while the world stops, the Ps are its
        return c != null ? c : leaseWait(tid);
    }

    /**
     * One look for a free P for thread {@code tid}, trying caches in order from the one its id
     * picks: among the next {@link #PROBES}, one this thread owns, then one nobody owns (the
     * thread claims it); else any free one, borrowed without claiming it; null if all are
     * leased. So threads whose ids pick the same cache settle on different ones instead of
     * taking turns on one and sharing its spans (Go binds an M to a P the same way while it
     * runs), and with more threads than caches the owners keep their fast path while the others
     * borrow. The idle flush frees a cache for claiming again once its owner has ended or done
     * nothing for a period.
     */
    private MCache tryLeaseAny(long tid) {
        MCache[] cs = caches;
        int n = cs.length;
        int i = slots[(int) tid & (slots.length - 1)].id;
        int probes = Math.min(PROBES, n);
        for (int pass = 0; pass < 3; pass++) {
            for (int k = 0, j = i, m = pass < 2 ? probes : n; k < m; k++, j = j + 1 == n ? 0 : j + 1) {
                MCache c = cs[j];
                long owner = c.owner;
                boolean wanted = pass == 0 ? owner == tid : pass == 1 ? owner == 0 : true;
                if (wanted && c.tryLease()) { // then the heap is open (close keeps every lease)
                    if (pass == 1) {
                        c.owner = tid;
                        c.ownerThread = Thread.currentThread();
                    }
                    return c;
                }
            }
        }
        return null;
    }

    /**
     * Waits for a P when none is free or the world is stopping. Waiters queue on
     * {@link #waitLock}, parked (a virtual thread gives its carrier back, so a lease holder that
     * needs one gets it); the lock's holder alone polls, backing off from PAUSE to parks of up
     * to 1 ms, since a lease is given back with a plain store that wakes nobody (the fast path
     * stays free of a wake-up check). A stop-the-world that ends unparks the poller. Ignores
     * interrupts, as a lock acquisition does, and keeps the interrupt status.
     */
    private MCache leaseWait(long tid) {
        long since = stwEnds;
        waitLock.lock();
        boolean interrupted = false;
        try {
            pollerSince = since;
            poller = Thread.currentThread();
            for (int k = 0; ; k++) {
                if (picks == slots) {
                    MCache c = tryLeaseAny(tid);
                    if (c != null) {
                        return c;
                    }
                }
                if (closed) {
                    throw closedException();
                }
                backOff(k);
                interrupted |= Thread.interrupted();
            }
        } finally {
            poller = null;
            waitLock.unlock();
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }

    private static IllegalStateException closedException() {
        return new IllegalStateException("heap is closed: no allocation or free after close()");
    }

    /**
     * The raw path's fast case, kept small so that it inlines into callers: {@code size} bytes of
     * a small class, not zeroed, 8-byte aligned. Everything else goes to {@link #allocate}.
     */
    protected long allocateRaw(long size) {
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
     * The zeroed path's fast case (the MemorySegment API's), kept small like {@link #allocateRaw}:
     * 16 B to 1 KiB, alignment 1, 2, 4 or 8; the slot is cleared only if its span may hold old
     * data. Everything else goes to {@link #allocate}.
     */
    protected long allocateZeroed(long size, long align) {
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
    protected long allocate(long size, long align, boolean zero) {
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

    /** {@link #allocate} without the retry after the hard limit. */
    private long allocateOnce(long size, long align, boolean zero) {
        if (size <= SizeClasses.MAX_SMALL_SIZE && size >= 0 && align > 0 && align <= 8 && (align & (align - 1)) == 0) {
            if (!zero && size < SizeClasses.TINY_SIZE && size > 0 && (size & (align - 1)) == 0) {
                MCache c = lease();
                try {
                    return c.allocTiny(size);
                } finally {
                    c.release();
                }
            }
            // Every class size is a multiple of 8 and spans start on a page: 8-byte aligned.
            int sc = SizeClasses.spanClass(SizeClasses.sizeToClass(size), !zero);
            return allocSmall(sc, zero);
        }
        return allocateSlow(size, align, zero);
    }

    private long allocateSlow(long size, long align, boolean zero) {
        checkSize(size, align);
        if (size <= SizeClasses.MAX_SMALL_SIZE && align <= SizeClasses.PAGE_SIZE) {
            // Over-aligned small object: the smallest class whose size is a multiple of align.
            int cls = SizeClasses.sizeToClass(Math.max(size, align));
            while (cls < SizeClasses.NUM_SIZE_CLASSES && SizeClasses.classSize(cls) % align != 0) {
                cls++;
            }
            if (cls < SizeClasses.NUM_SIZE_CLASSES) {
                return allocSmall(SizeClasses.spanClass(cls, !zero), zero);
            }
        }
        return allocateLarge(size, align, zero);
    }

    /**
     * A large object: a kept span of the same page count from this P's cache, else a new span
     * from the heap; zeroed (if asked and the memory may be dirty) before the lease is given
     * back, so that close, which waits for every lease, never unmaps memory under the fill.
     */
    private long allocateLarge(long size, long align, boolean zero) {
        long npages = (size + SizeClasses.PAGE_SIZE - 1) >>> SizeClasses.PAGE_SHIFT;
        MCache c = lease();
        try {
            MSpan s = npages <= MCache.LARGE_MAX_PAGES && align <= SizeClasses.PAGE_SIZE
                    ? c.reuseLarge((int) npages, size) : null;
            if (s == null) {
                s = heap.allocLarge(size, align);
            }
            long p = s.base + s.largeOffset;
            if (zero && s.needZero) {
                clear(p, size);
            }
            return p;
        } finally {
            c.release();
        }
    }

    /**
     * One small object of span class {@code sc}, cleared if {@code zero} and its span may hold
     * old data; the clear happens under the lease (see {@link #allocateLarge}).
     */
    private long allocSmall(int sc, boolean zero) {
        MCache c = lease();
        try {
            long p = c.allocSmall(sc);
            if (zero && c.alloc[sc].needZero) { // the span that served p
                clear(p, SizeClasses.classSize(SizeClasses.sizeClassOf(sc)));
            }
            return p;
        } finally {
            c.release();
        }
    }

    /** All of memory, for zeroing small objects without creating a segment per call. */
    private static final MemorySegment ALL = MemorySegment.NULL.reinterpret(Long.MAX_VALUE);

    /** Zeroes [p, p + n) with the JDK's bulk fill of a slice of {@link #ALL} (no caller-sensitive call). */
    static void clear(long p, long n) {
        ALL.asSlice(p, n).fill((byte) 0);
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

    /** Frees what {@link #allocate} returned. Any thread. */
    public void free(long addr) {
        free(addr, 0);
    }

    /**
     * Frees what {@link #allocate} returned, refusing (IllegalArgumentException, nothing freed)
     * if {@code length} is more than the object's usable size: the segment API's free, whose
     * segment cannot be one this heap returned if it is longer than the block. Any thread.
     */
    protected void free(long addr, long length) {
        MSpan[] t = flat; // the flat spans table first (the common case), then the arena index
        long page = (addr - flatBase) >>> SizeClasses.PAGE_SHIFT;
        MSpan s = page < t.length ? (MSpan) SPANS.getAcquire(t, (int) page) : heap.spanOf(addr); // null after close
        int idx;
        if (s != null && (idx = s.slotOf(addr)) >= 0 && length <= s.elemSize) { // a small, non-tiny object's start
            if (s.markFree(idx, addr)) {
                heap.central[s.spanClass].onFree(s);
            }
            return;
        }
        freeSlow(addr, length, s);
    }

    private static IllegalArgumentException longerThanBlock(long addr, long length, long usable) {
        return new IllegalArgumentException("free of " + length + " B at 0x" + Long.toHexString(addr) + ": longer than the "
                + usable + " B usable in the block there, so not a segment this heap returned; free takes the segment"
                + " allocate returned");
    }

    /** Everything but a small object's free: large and tiny objects, and every error. */
    private void freeSlow(long addr, long length, MSpan s) {
        if (closed) {
            throw closedException();
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
                long obj = s.base + s.largeOffset;
                if (addr != obj) {
                    throw new IllegalArgumentException("free of 0x" + Long.toHexString(addr)
                            + ": an interior address of the " + s.elemSize + " B object at 0x" + Long.toHexString(obj)
                            + "; free takes the address allocate returned");
                }
                if (length > s.elemSize) {
                    throw longerThanBlock(addr, length, s.elemSize);
                }
                s.markLargeFree(addr);
                if (s.npages > MCache.LARGE_MAX_PAGES || !keepLarge(s)) {
                    heap.freeSpan(s);
                }
            }
            case MSpan.STATE_SMALL -> {
                if (s.spanClass == MHeap.TINY_SPAN_CLASS) {
                    long usable = length > 0 ? MCache.tinyUsable(s, addr) : 0;
                    if (usable > 0 && length > usable) {
                        throw longerThanBlock(addr, length, usable);
                    }
                    MCache.freeTiny(heap, s, addr);
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
            default -> throw new IllegalStateException("free of 0x" + Long.toHexString(addr)
                    + ": no live object there (double free, or never allocated)");
        }
    }

    /**
     * Offers a freed large span to this thread's P cache, if its lease is free right now (a free
     * never waits for a lease). True if the cache kept it.
     */
    private boolean keepLarge(MSpan s) {
        long tid = Thread.currentThread().threadId();
        MCache[] t = slots;
        MCache c = t[(int) tid & (t.length - 1)];
        if (c.owner != tid) {
            c = null;
            for (MCache o : caches) {
                if (o.owner == tid) {
                    c = o;
                    break;
                }
            }
            if (c == null) {
                return false; // this thread owns no cache: the heap takes the span
            }
        }
        if (c.tryLease()) {
            try {
                return c.keepLarge(s);
            } finally {
                c.release();
            }
        }
        return false;
    }

    /**
     * The usable size of the live object at {@code addr}: its slot size, the large object's
     * size, or a tiny object's own bytes (up to where the next object in its block starts), so
     * that the usable ranges of live objects never overlap. Throws for anything that is not a
     * live object's start (freed, interior, foreign).
     */
    public long usableSize(long addr) {
        if (closed) {
            throw closedException();
        }
        MSpan s = heap.spanOf(addr);
        if (s != null && s.state == MSpan.STATE_SMALL) {
            if (s.spanClass == MHeap.TINY_SPAN_CLASS) {
                long n = MCache.tinyUsable(s, addr);
                if (n > 0) {
                    return n;
                }
            } else {
                int idx = s.slotOf(addr);
                if (idx >= 0 && s.isAllocated(idx) && !s.isFreePending(idx)) {
                    return s.elemSize;
                }
            }
        } else if (s != null && s.state == MSpan.STATE_LARGE && s.largeState == 1 && addr == s.base + s.largeOffset) {
            return s.elemSize;
        }
        throw new IllegalArgumentException("usableSize of 0x" + Long.toHexString(addr)
                + ": not a live object's start (freed, an interior address, or not from this heap)");
    }

    /** Runs {@code r} while holding every P slot's lease: no allocation is in flight. */
    private void stopTheWorld(Runnable r) {
        if (!stopTheWorldIfOpen(r)) {
            throw closedException();
        }
    }

    /**
     * Runs {@code r} while holding every P slot's lease, unless the heap is closed (then returns
     * false, having run nothing). Once {@code r} has closed the heap, the leases stay taken.
     *
     * <p>The protocol: one stop-the-world at a time ({@link #stwLock}). It first points
     * {@link #picks} at {@link #stopped}, so that no operation starting now takes a lease (they
     * wait in {@link #leaseWait}); then it takes each lease as the operation holding it ends,
     * backing off to parks (a holder may be a virtual thread that needs this carrier); then runs
     * {@code r}; then gives the leases back (closes them, if {@code r} closed the heap), restores
     * {@link #picks} and wakes the poller. A thread holding a lease never stops the world (it
     * would wait for itself): the allocation paths give theirs back before they call in here.
     */
    private boolean stopTheWorldIfOpen(Runnable r) {
        stwLock.lock();
        boolean interrupted = false;
        int held = 0;
        try {
            if (closed) {
                return false;
            }
            // Fairness: a thread that has waited for a P since before the last stop-the-world
            // ended gets it first (at most about 1 ms of waiting here: a waiter that cannot run
            // soon must not hold this one up), or back-to-back stop-the-worlds would starve it.
            for (int k = 0; k < SPINS + 10 && poller != null && pollerSince < stwEnds; k++) {
                backOff(k);
                interrupted |= Thread.interrupted();
            }
            picks = stopped;
            for (MCache c : caches) {
                for (int k = 0; !c.tryLease(); k++) { // an operation in flight: it ends without us
                    backOff(k);
                    interrupted |= Thread.interrupted();
                }
                held++;
            }
            r.run(); // every lease held: the heap is open (close keeps them all)
            return true;
        } finally {
            boolean closing = closed;
            for (int i = 0; i < held; i++) {
                if (closing) {
                    caches[i].closeLease();
                } else {
                    caches[i].release();
                }
            }
            if (!closing) {
                picks = slots;
            }
            stwEnds = stwEnds + 1; // under stwLock: the only writer
            Thread p = poller;
            if (p != null) {
                LockSupport.unpark(p);
            }
            stwLock.unlock();
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /**
     * Flushes every P's cache, sweeps every span class and returns every free page to the OS
     * (Go's {@code debug.FreeOSMemory}). Returns the bytes released.
     */
    public long releaseMemory() {
        long[] released = new long[1];
        stopTheWorld(() -> {
            for (MCache c : caches) {
                c.releaseAll();
            }
            for (MCentral c : heap.central) {
                if (c != null) {
                    c.sweepAll();
                }
            }
            released[0] = scavenger.releaseAll();
            for (MCentral c : heap.central) {
                if (c != null) {
                    released[0] += c.releaseFreeOsPages(OsMemory.PAGE_SIZE);
                }
            }
        });
        return released[0];
    }

    /**
     * Live objects recomputed from every span's bitmaps (slow; quiescent only), as
     * {objects, slot bytes, live tiny blocks, live tiny objects}: objects counts each tiny object;
     * Go's and MemStats' count is {@code objects - tinyObjects + tinyBlocks}.
     */
    long[] liveObjectsSlow() {
        long[] r = new long[4];
        stopTheWorld(() -> {
            heap.forEachSpan(s -> {
                if (s.state == MSpan.STATE_LARGE) {
                    if (s.largeState == 1) {
                        r[0]++;
                        r[1] += s.elemSize;
                    }
                } else if (s.spanClass == MHeap.TINY_SPAN_CLASS) {
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
            });
        });
        return r;
    }

    /** Estimated Java-heap bytes of one MSpan (object, two 16-long bitmaps) and of one MCache. */
    static final long SPAN_BYTES = 400;
    static final long CACHE_BYTES = 3_000;
    /** Estimated metadata per arena (its spans table) and per 4 MiB chunk (bitmaps, summaries). */
    static final long ARENA_META_BYTES = 16 + 4L * MHeap.PAGES_PER_ARENA;
    static final long CHUNK_META_BYTES = 2 * 8 * 8 + 16;

    /** Per-span-class counts gathered with the world stopped and every span swept. */
    private record Tally(long[] mallocs, long[] frees, long[] spans, long tinyObjects, long keptLargeSpans,
                         MHeap.Counters counters) {
        int sizeClassOf(int sc) {
            return sc == MHeap.TINY_SPAN_CLASS ? SizeClasses.TINY_SIZE_CLASS : SizeClasses.sizeClassOf(sc);
        }
    }

    /** Sweeps every span and reads every counter; caller holds every lease. */
    private Tally tally() {
        int n = SizeClasses.NUM_SPAN_CLASSES + 1;
        long[] mallocs = new long[n];
        long[] frees = new long[n];
        long[] spans = new long[n];
        long tinyObjects = 0;
        long[] kept = new long[5];
        for (MCache c : caches) {
            kept[0] += c.largeAllocs;
            kept[1] += c.largeAllocBytes;
            kept[2] += c.largeFrees;
            kept[3] += c.largeFreeBytes;
            kept[4] += c.largeKeptSpans;
            c.dropTinyBlock(); // so that a block counts as live exactly while a tiny object in it is
            c.countAllAllocs();
            c.sweepCached();
            for (int sc = 0; sc < n; sc++) {
                mallocs[sc] += c.allocs[sc];
                frees[sc] += c.sweptInPlace[sc];
            }
            tinyObjects += c.tinyObjects;
        }
        for (int sc = 0; sc < n; sc++) {
            MCentral c = heap.central[sc];
            if (c != null) {
                c.sweepAll();
                frees[sc] += c.sweptFrees();
                spans[sc] = c.spanCount();
            }
        }
        return new Tally(mallocs, frees, spans, tinyObjects, kept[4],
                heap.counters().withKeptLarge(kept[0], kept[1], kept[2], kept[3]));
    }

    /**
     * A MemStats snapshot. Stops the world (holds every P lease) so that no allocation is in
     * flight, sweeps every span so that frees done before the call are counted, and reads the
     * page heap's and OS layer's counters under the heap lock. Frees from other threads may run
     * meanwhile; they are counted by a later snapshot.
     */
    protected io.gomem.stats.MemStats readMemStats() {
        io.gomem.stats.MemStats[] out = new io.gomem.stats.MemStats[1];
        stopTheWorld(() -> {
            Tally t = tally();
            MHeap.Counters k = t.counters();
            long[] bySizeMallocs = new long[SizeClasses.NUM_SIZE_CLASSES];
            long[] bySizeFrees = new long[SizeClasses.NUM_SIZE_CLASSES];
            for (int sc = 0; sc < t.mallocs().length; sc++) {
                int cls = t.sizeClassOf(sc);
                bySizeMallocs[cls] += t.mallocs()[sc];
                bySizeFrees[cls] += t.frees()[sc];
            }
            java.util.List<io.gomem.stats.MemStats.SizeClassStats> bySize = new java.util.ArrayList<>();
            long smallMallocs = 0;
            long smallFrees = 0;
            long heapAlloc = k.largeBytesLive();
            long totalAlloc = k.largeBytesTotal();
            for (int cls = 1; cls < SizeClasses.NUM_SIZE_CLASSES; cls++) {
                int size = SizeClasses.classSize(cls);
                bySize.add(new io.gomem.stats.MemStats.SizeClassStats(size, bySizeMallocs[cls], bySizeFrees[cls]));
                smallMallocs += bySizeMallocs[cls];
                smallFrees += bySizeFrees[cls];
                heapAlloc += (bySizeMallocs[cls] - bySizeFrees[cls]) * size;
                totalAlloc += bySizeMallocs[cls] * size;
            }
            long mallocsTotal = smallMallocs + t.tinyObjects() + k.largeAllocs();
            long freesTotal = smallFrees + t.tinyObjects() + k.largeFrees();
            long heapSys = k.mappedBytes();
            long heapInuse = (k.pagesInUse() << MHeap.PAGE_SHIFT) - k.spanReleasedBytes();
            long heapReleased = (k.scavengedPages() << MHeap.PAGE_SHIFT) + k.spanReleasedBytes();
            long mSpanInuse = k.spansInUse() * SPAN_BYTES;
            long mSpanSys = (k.spansInUse() + k.spanPool()) * SPAN_BYTES;
            long mCache = caches.length * CACHE_BYTES;
            long otherSys = k.arenas() * ARENA_META_BYTES + (heapSys / PageAlloc.CHUNK_BYTES) * CHUNK_META_BYTES;
            long sys = heapSys + mSpanSys + mCache + otherSys;
            long mappedReady = k.osReady() + mSpanSys + mCache + otherSys;
            out[0] = new io.gomem.stats.MemStats(heapAlloc, totalAlloc, heapSys, heapSys - heapInuse, heapInuse, heapReleased,
                    mallocsTotal - freesTotal, mallocsTotal, freesTotal, mSpanInuse, mSpanSys, mCache, mCache, otherSys, sys,
                    mappedReady, k.osReserved(), k.osPrepared(), k.osReady(), scavenger.softLimit, bySize);
        });
        return out[0];
    }

    /** Where in-use memory is, per size class (stops the world and sweeps, like readMemStats). */
    public io.gomem.stats.StatsDump statsDump() {
        io.gomem.stats.StatsDump[] out = new io.gomem.stats.StatsDump[1];
        stopTheWorld(() -> {
            Tally t = tally();
            MHeap.Counters k = t.counters();
            int classes = SizeClasses.NUM_SIZE_CLASSES;
            long[] spans = new long[classes];
            long[] objects = new long[classes];
            for (int sc = 0; sc < t.mallocs().length; sc++) {
                int cls = t.sizeClassOf(sc);
                spans[cls] += t.spans()[sc];
                objects[cls] += t.mallocs()[sc] - t.frees()[sc];
            }
            java.util.List<io.gomem.stats.StatsDump.Row> rows = new java.util.ArrayList<>();
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
                rows.add(new io.gomem.stats.StatsDump.Row(String.valueOf(cls), size, spans[cls], spanBytes, objects[cls],
                        objects[cls] * size));
                tSpans += spans[cls];
                tSpanBytes += spanBytes;
                tObjects += objects[cls];
                tBytes += objects[cls] * size;
            }
            long largeObjects = k.largeAllocs() - k.largeFrees();
            long largeSpanBytes = k.largePagesInUse() << MHeap.PAGE_SHIFT;
            long largeSpans = largeObjects + t.keptLargeSpans(); // spans P caches keep for reuse hold no object
            io.gomem.stats.StatsDump.Row large = new io.gomem.stats.StatsDump.Row("large", 0, largeSpans, largeSpanBytes,
                    largeObjects, k.largeBytesLive());
            io.gomem.stats.StatsDump.Row total = new io.gomem.stats.StatsDump.Row("total", 0, tSpans + largeSpans,
                    tSpanBytes + largeSpanBytes, tObjects + largeObjects, tBytes + k.largeBytesLive());
            out[0] = new io.gomem.stats.StatsDump(rows, large, total, k.pagesInUse() << MHeap.PAGE_SHIFT);
        });
        return out[0];
    }

    /** Mapped bytes, bytes in spans, and reserved bytes: a first look at the heap's footprint. */
    MHeap.Counters counters() {
        return heap.counters();
    }

    /** Checks every component's invariants (stops the world for it). */
    public void checkInvariants() {
        stopTheWorld(() -> {
            SizeClasses.checkInvariants();
            for (MCache c : caches) {
                c.checkLargeKept();
                for (MSpan s : c.alloc) {
                    if (s != MCache.EMPTY) {
                        if (s.where != MSpan.IN_CACHE || s.state != MSpan.STATE_SMALL) {
                            throw new IllegalStateException("cache " + c.id + " holds " + s + " where=" + s.where);
                        }
                        s.checkInvariants();
                    }
                }
            }
            heap.checkInvariants();
        });
    }

    public boolean isClosed() {
        return closed;
    }

    /** Returns every byte to the OS; the heap refuses all use afterwards. Idempotent. */
    public void close() {
        stopTheWorldIfOpen(() -> {
            closed = true;
            heap.releaseAll();
        });
    }
}
