package io.gomem.heap;

import java.util.ArrayDeque;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The spans of one span class that no {@link MCache} holds (Go's {@code mcentral}).
 *
 * <h2>What it owns</h2>
 * Two sets: {@link #partial}, spans that may have free slots (some not yet swept), and the full
 * set ({@link #fullHead}, an intrusive list), spans with no free slot when they were last swept.
 * A span moves full → partial on the first free that reaches it after it became full (the freer
 * is told by {@link MSpan#markFree} and pushes it on {@link #notified}, a lock-free stack that
 * the next operation under the lock drains, so a free never waits for the lock); a span with no
 * live object goes back to the {@link SpanSource} (the {@link MHeap}) at the next
 * {@link #sweepAll}, so that its pages can serve any class.
 *
 * <h2>Invariants</h2>
 * A span of this class is in exactly one place: cached by one MCache ({@code where == IN_CACHE}),
 * in {@link #partial} ({@code IN_PARTIAL}), in the full list ({@code IN_FULL}, with
 * {@link MSpan#notifyCentral} armed so that its first free moves it back), or held out of both
 * by {@link #releaseFreeOsPages} while the heap returns its free OS pages ({@code IN_RELEASE}).
 * {@link #spans} counts the spans of this class in all four places. A span on the
 * {@link #notified} queue is disarmed, and is armed again only after a drain took it off.
 *
 * <h2>Guards</h2>
 * {@link #lock} guards every field but {@link #notified} (CAS only) and the
 * {@code where/next/prev} fields of the spans here; {@link MSpan#notifiedNext} belongs to whoever
 * pushed the span until the drain, which holds the lock.
 * No system call is made holding this lock: new spans are got from the heap after unlocking
 * (and a span's released pages made Ready again, {@link SpanSource#reuseSpanPages}); a span's
 * free OS pages are returned with the span held out of the sets and the lock dropped; sweepAll
 * gives empty spans back to the heap under this lock (the heap lock inside it: the lock order
 * is MCentral → heap → OS layer) only when their free makes no system call, and the others
 * after unlocking.
 */
final class MCentral {
    final int spanClass;
    final int sizeClass;
    /** Which set of centrals this is (see {@link Malloc}: each P refills from one set). */
    final int shard;
    final int npages;
    private final SpanSource heap;
    private final ReentrantLock lock = new SpinLock();
    /** Guarded by lock. */
    private final ArrayDeque<MSpan> partial = new ArrayDeque<>();
    /** Guarded by lock. */
    private MSpan fullHead;
    /** Guarded by lock: spans of this class anywhere (cached, partial, full, held out for a release). */
    private long spans;
    /**
     * Guarded by lock: wholly free spans a {@link #sweepAll} took out of the sets and gives back
     * to the heap with the lock dropped; {@link #returned} is signalled when it reaches zero.
     */
    private int returning;
    private final java.util.concurrent.locks.Condition returned = lock.newCondition();
    /** Where sweeps count the objects they reclaim (Go's frees, counted when swept). */
    private final MStats stats;
    /** {@code gomem.checkInvariants}: check this central after every change, and that its lock guards what it says. */
    private static final boolean CHECK = io.gomem.internal.Options.CHECK_INVARIANTS.booleanValue();
    /** Full spans a free reached, waiting to move to partial: a Treiber stack, CAS only. */
    private volatile MSpan notified;
    private static final java.lang.invoke.VarHandle NOTIFIED;

    static {
        try {
            NOTIFIED = java.lang.invoke.MethodHandles.lookup().findVarHandle(MCentral.class, "notified", MSpan.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /** One central per span class, plus the tiny class, over {@code heap}; null for size class 0. */
    static MCentral[] forEveryClass(SpanSource heap, MStats stats) {
        return forEveryClass(heap, stats, 0);
    }

    /** {@link #forEveryClass(SpanSource, MStats)} as shard {@code shard}. */
    static MCentral[] forEveryClass(SpanSource heap, MStats stats, int shard) {
        MCentral[] central = new MCentral[SizeClasses.NUM_SPAN_CLASSES + 1];
        for (int sc = 0; sc < central.length; sc++) {
            central[sc] = sc == SizeClasses.TINY_SPAN_CLASS ? new MCentral(heap, stats, sc, SizeClasses.TINY_SIZE_CLASS, shard)
                    : SizeClasses.sizeClassOf(sc) == 0 ? null : new MCentral(heap, stats, sc, SizeClasses.sizeClassOf(sc), shard);
        }
        return central;
    }

    MCentral(SpanSource heap, MStats stats, int spanClass, int sizeClass) {
        this(heap, stats, spanClass, sizeClass, 0);
    }

    MCentral(SpanSource heap, MStats stats, int spanClass, int sizeClass, int shard) {
        this.shard = shard;
        this.heap = heap;
        this.stats = stats;
        this.spanClass = spanClass;
        this.sizeClass = sizeClass;
        this.npages = SizeClasses.classPages(sizeClass);
    }

    /**
     * A span with at least one free slot, for an MCache to own: a swept partial span, or a new
     * one from the heap.
     */
    MSpan cacheSpan() {
        return exchangeSpan(null);
    }

    /**
     * Takes back the span an MCache held ({@code old}, or null) and hands it one with a free
     * slot, under one hold of the lock (a refill's two steps). {@code old} is swept and filed as
     * partial or full; a span with no live object stays in the partial set, ready for the next
     * refill; {@link #sweepAll} (run by the background thread every second, and by releaseMemory
     * and MemStats) gives such spans back to the heap. Handing them straight back would make a
     * cache that empties and refills a span churn through the heap lock and the page allocator.
     */
    MSpan exchangeSpan(MSpan old) {
        return exchangeSpan(old, null);
    }

    /**
     * {@link #exchangeSpan(MSpan)} for a cache whose P's counters are {@code shard} (its lease
     * held): the sweeps done here count there, with no atomic on the shared counters.
     */
    MSpan exchangeSpan(MSpan old, MStats.Shard shard) {
        MSpan got = null;
        lock.lock();
        try {
            drainNotified();
            if (old != null) {
                fileLocked(old, shard);
            }
            MSpan s;
            while ((s = partial.pollFirst()) != null) {
                sweep(s, shard);
                if (s.allocCount < s.nelems) {
                    s.where = MSpan.IN_CACHE;
                    got = s;
                    break;
                }
                addFull(s); // became full again: frees seen were all swept already
            }
        } finally {
            lock.unlock();
        }
        if (got != null) {
            if (got.releasedMask != 0) {
                try {
                    heap.reuseSpanPages(got); // the cache's now: no other thread touches its slots
                } catch (RuntimeException | Error e) { // the limit refused it: it stays here, as it was
                    lock.lock();
                    try {
                        got.where = MSpan.IN_PARTIAL;
                        partial.addFirst(got);
                    } finally {
                        lock.unlock();
                    }
                    throw e;
                }
            }
            if (CHECK) {
                checkInvariants();
            }
            return got;
        }
        MSpan s = heap.allocSmallSpan(spanClass, sizeClass, npages);
        s.shard = this.shard; // before any cache has it: its frees come here
        lock.lock();
        try {
            spans++;
        } finally {
            lock.unlock();
        }
        if (CHECK) {
            checkInvariants();
        }
        return s;
    }

    /** With {@link #CHECK}: the caller holds this central's lock, as the field comments require. */
    private void assertLocked() {
        if (CHECK && !lock.isHeldByCurrentThread()) {
            throw new IllegalStateException("mcentral " + spanClass + ": lock not held by " + Thread.currentThread());
        }
    }

    /** Takes back a span an MCache held (see {@link #exchangeSpan}). */
    void uncacheSpan(MSpan s) {
        uncacheSpan(s, null);
    }

    /** {@link #uncacheSpan(MSpan)}, counting the sweep in {@code shard} (the caller's P's, lease held). */
    void uncacheSpan(MSpan s, MStats.Shard shard) {
        lock.lock();
        try {
            drainNotified();
            fileLocked(s, shard);
        } finally {
            lock.unlock();
        }
    }

    private void fileLocked(MSpan s, MStats.Shard shard) {
        assertLocked();
        sweep(s, shard);
        if (s.allocCount < s.nelems) {
            s.where = MSpan.IN_PARTIAL;
            partial.addFirst(s); // the most recently used span is handed out first
        } else {
            addFull(s);
        }
    }

    /**
     * A free reached a span in the full set (the freer won {@link MSpan#markFree}'s notify, so
     * this happens once per stay in the full set): queue it to move to partial. Any thread, no lock.
     */
    void onFree(MSpan s) {
        MSpan h;
        do {
            h = notified;
            s.notifiedNext = h;
        } while (!NOTIFIED.compareAndSet(this, h, s));
    }

    /** Moves every queued span from the full set to partial; lock held. */
    private void drainNotified() {
        MSpan top = notified == null ? null : (MSpan) NOTIFIED.getAndSet(this, null);
        MSpan h = null;
        while (top != null) { // reverse: spans move in the order their frees came
            MSpan n = top.notifiedNext;
            top.notifiedNext = h;
            h = top;
            top = n;
        }
        while (h != null) {
            MSpan n = h.notifiedNext;
            h.notifiedNext = null;
            if (h.where == MSpan.IN_FULL) {
                removeFull(h);
                h.where = MSpan.IN_PARTIAL;
                partial.addLast(h);
            }
            h = n;
        }
    }

    /**
     * Sweeps every partial span and returns wholly free ones to the heap; returns spans released.
     * A span with no OS page released inside it goes back before the lock is given up (the lock
     * order allows the heap lock inside this one; that free makes no system call). One with
     * released pages goes back after: its free returns the rest of those heap pages to the OS
     * ({@link MHeap#freeSpan(MSpan, MStats.Shard)}), and no OS call is made holding this lock.
     * Such spans count in {@link #returning} until they are in the heap, and every sweepAll waits
     * for that count to reach zero before it returns: a releaseMemory that sweeps this class after
     * a concurrent sweep (the background thread's) then finds every span it freed already in the
     * page heap, to be returned to the OS.
     */
    int sweepAll() {
        int freed = 0;
        MSpan[] later = null;
        int nlater = 0;
        lock.lock();
        try {
            drainNotified();
            int n = partial.size();
            for (int i = 0; i < n; i++) {
                MSpan s = partial.pollFirst();
                sweep(s, null);
                if (s.allocCount == 0) {
                    spans--;
                    freed++;
                    if (s.releasedMask == 0) {
                        heap.freeSpan(s);
                    } else {
                        if (later == null || nlater == later.length) {
                            later = later == null ? new MSpan[8] : java.util.Arrays.copyOf(later, 2 * nlater);
                        }
                        later[nlater++] = s;
                    }
                } else if (s.allocCount < s.nelems) {
                    partial.addLast(s);
                } else {
                    addFull(s);
                }
            }
            returning += nlater;
        } finally {
            lock.unlock();
        }
        try {
            giveBack(later, nlater);
        } finally {
            lock.lock();
            try {
                returning -= nlater;
                if (returning == 0) {
                    returned.signalAll();
                }
                while (returning > 0) {
                    returned.awaitUninterruptibly(); // another sweep's spans on their way to the heap
                }
            } finally {
                lock.unlock();
            }
        }
        if (CHECK) {
            checkInvariants();
        }
        return freed;
    }

    /** Frees {@code n} spans no set holds any more to the heap (lock not held): every one, then the first exception. */
    private void giveBack(MSpan[] spans, int n) {
        RuntimeException failed = null;
        for (int i = 0; i < n; i++) {
            try {
                heap.freeSpan(spans[i]);
            } catch (RuntimeException e) {
                if (failed == null) {
                    failed = e;
                } else {
                    failed.addSuppressed(e);
                }
            }
        }
        if (failed != null) {
            throw failed;
        }
    }

    /**
     * Returns to the OS every OS page of an uncached span of this class on which no object lies
     * (Go never does this: it returns only whole free spans; for small objects freed at random it
     * is what brings the footprint near the live bytes). Returns the bytes released.
     *
     * <p>No lock is held across the system calls: under the lock, each span with such pages is
     * taken out of its set ({@link MSpan#IN_RELEASE}: no cache gets it, no sweep frees it, so its
     * free slots stay free and its pages are no one else's); the heap returns its pages with
     * neither lock held; then it goes back, one lock hold per span: to the full set (re-armed, so
     * a free that came meanwhile moves it to partial) or to partial. A refill of this class
     * meanwhile takes another span. Frees of its objects go on as ever (marks).
     */
    long releaseFreeOsPages(long osPageSize) {
        if (osPageSize > SizeClasses.PAGE_SIZE) {
            return 0; // a physical page larger than a heap page may straddle two spans: left to the scavenger
        }
        MSpan[] out;
        long[] masks;
        boolean[] wasFull;
        int n = 0;
        lock.lock();
        try {
            drainNotified();
            int max = partial.size();
            for (MSpan s = fullHead; s != null; s = s.next) {
                max++;
            }
            out = new MSpan[max];
            masks = new long[max];
            wasFull = new boolean[max];
            for (java.util.Iterator<MSpan> it = partial.iterator(); it.hasNext(); ) {
                MSpan s = it.next();
                long fresh = s.freeOsPages(osPageSize) & ~s.releasedMask;
                if (fresh != 0) {
                    it.remove();
                    s.where = MSpan.IN_RELEASE;
                    out[n] = s;
                    masks[n++] = fresh;
                }
            }
            for (MSpan s = fullHead, next; s != null; s = next) {
                next = s.next;
                long fresh = s.freeOsPages(osPageSize) & ~s.releasedMask;
                if (fresh != 0) {
                    removeFull(s);
                    s.where = MSpan.IN_RELEASE;
                    out[n] = s;
                    masks[n] = fresh;
                    wasFull[n++] = true;
                }
            }
        } finally {
            lock.unlock();
        }
        long bytes = 0;
        int i = 0;
        try {
            for (; i < n; i++) {
                try {
                    heap.releaseSpanPages(out[i], masks[i]);
                    bytes += Long.bitCount(masks[i]) * osPageSize;
                } finally {
                    putBack(out[i], wasFull[i]);
                }
            }
        } finally {
            for (i++; i < n; i++) { // an OS call threw: the spans not yet released go back as they are
                putBack(out[i], wasFull[i]);
            }
        }
        return bytes;
    }

    /**
     * A span {@link #releaseFreeOsPages} held out goes back to the set it came from. The drain
     * first: a full span a free queued while it was out must be off the queue before it is armed
     * again (or a second free could push it while it is still there).
     */
    private void putBack(MSpan s, boolean full) {
        lock.lock();
        try {
            drainNotified();
            if (full) {
                addFull(s);
            } else {
                s.where = MSpan.IN_PARTIAL;
                partial.addLast(s);
            }
        } finally {
            lock.unlock();
        }
    }

    private void addFull(MSpan s) {
        s.where = MSpan.IN_FULL;
        s.prev = null;
        s.next = fullHead;
        if (fullHead != null) {
            fullHead.prev = s;
        }
        fullHead = s;
        if (s.armNotify()) {
            // Frees arrived between the sweep and arming: it is not full after all.
            removeFull(s);
            s.where = MSpan.IN_PARTIAL;
            partial.addLast(s);
        }
    }

    private void removeFull(MSpan s) {
        if (s.prev != null) {
            s.prev.next = s.next;
        } else {
            fullHead = s.next;
        }
        if (s.next != null) {
            s.next.prev = s.prev;
        }
        s.next = s.prev = null;
    }

    /** Sweeps {@code s} (lock held) and counts what it reclaimed: in {@code shard} if the caller holds a P, else in the shared counters. */
    private void sweep(MSpan s, MStats.Shard shard) {
        assertLocked();
        int n = s.sweep();
        if (n == 0) {
            return;
        }
        if (shard != null) {
            MStats.countSweep(shard, spanClass, 0, n, s.elemSize);
        } else {
            stats.countFrees(spanClass, n, s.elemSize);
        }
    }

    /** Spans of this class (cached, partial or full). */
    long spanCount() {
        lock.lock();
        try {
            return spans;
        } finally {
            lock.unlock();
        }
    }

    /** Live objects in uncached spans, counting pending frees as freed (a quiescent figure). */
    long uncachedLiveObjects() {
        lock.lock();
        try {
            long n = 0;
            drainNotified();
            for (MSpan s : partial) {
                n += s.allocCount - s.pendingFrees();
            }
            for (MSpan s = fullHead; s != null; s = s.next) {
                n += s.allocCount - s.pendingFrees();
            }
            return n;
        } finally {
            lock.unlock();
        }
    }

    /** Whether the calling thread holds this central's lock (for assertions and tests). */
    boolean isHeldByCurrentThread() {
        return lock.isHeldByCurrentThread();
    }

    /** Takes this central's lock for a check that must see no sweep (see {@link Malloc}'s cross-check); lock order holds. */
    void lockForCheck() {
        lock.lock();
        drainNotified();
    }

    void unlockForCheck() {
        lock.unlock();
    }

    /** Checks set membership and each uncached span; call when no MCache is mid-operation. */
    void checkInvariants() {
        lock.lock();
        try {
            drainNotified();
            for (MSpan s : partial) {
                check(s.where == MSpan.IN_PARTIAL && s.spanClass == spanClass, s, "in partial");
                s.checkInvariants();
            }
            for (MSpan s = fullHead; s != null; s = s.next) {
                check(s.where == MSpan.IN_FULL && s.spanClass == spanClass, s, "in full");
                // Only a free disarms a full span (after setting its mark), then queues it: a span
                // found disarmed has a free in flight, and its mark stays until this central sweeps it.
                check(s.notifyCentral || s.pendingFrees() > 0, s, "full, not armed, and no free marked it");
                s.checkInvariants();
            }
        } finally {
            lock.unlock();
        }
    }

    private static void check(boolean ok, MSpan s, String what) {
        if (!ok) {
            throw new IllegalStateException("mcentral: " + s + " " + what + " (where=" + s.where + ")");
        }
    }
}
