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
 * in {@link #partial} ({@code IN_PARTIAL}), or in the full list ({@code IN_FULL}, with
 * {@link MSpan#notifyCentral} armed so that its first free moves it back). {@link #spans} counts
 * the spans of this class in all three places.
 *
 * <h2>Guards</h2>
 * {@link #lock} guards every field but {@link #notified} (CAS only) and the
 * {@code where/next/prev} fields of the spans here; {@link MSpan#notifiedNext} belongs to whoever
 * pushed the span until the drain, which holds the lock.
 * New spans are got from the heap after unlocking; sweepAll gives empty spans back, and
 * releasing a span's free OS pages takes the heap lock, inside this one: the lock order is
 * MCentral → heap → OS layer.
 */
final class MCentral {
    final int spanClass;
    final int sizeClass;
    final int npages;
    private final SpanSource heap;
    private final ReentrantLock lock = new SpinLock();
    /** Guarded by lock. */
    private final ArrayDeque<MSpan> partial = new ArrayDeque<>();
    /** Guarded by lock. */
    private MSpan fullHead;
    /** Guarded by lock: spans of this class anywhere (cached, partial, full). */
    private long spans;
    /** Guarded by lock: objects reclaimed by sweeps here (Go's frees, counted when swept). */
    private long sweptFrees;
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

    MCentral(SpanSource heap, int spanClass, int sizeClass) {
        this.heap = heap;
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
        MSpan got = null;
        lock.lock();
        try {
            drainNotified();
            if (old != null) {
                fileLocked(old);
            }
            MSpan s;
            while ((s = partial.pollFirst()) != null) {
                sweptFrees += s.sweep();
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
            return got;
        }
        MSpan s = heap.allocSmallSpan(spanClass, sizeClass, npages);
        lock.lock();
        try {
            spans++;
        } finally {
            lock.unlock();
        }
        return s;
    }

    /** Takes back a span an MCache held (see {@link #exchangeSpan}). */
    void uncacheSpan(MSpan s) {
        lock.lock();
        try {
            drainNotified();
            fileLocked(s);
        } finally {
            lock.unlock();
        }
    }

    private void fileLocked(MSpan s) {
        sweptFrees += s.sweep();
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
     * The spans go back before the lock is given up (the lock order allows the heap lock inside
     * this one): a releaseMemory that sweeps this class after a concurrent sweep (the background
     * thread's) then finds every span it freed already in the page heap, to be returned to the OS.
     */
    int sweepAll() {
        int freed = 0;
        lock.lock();
        try {
            drainNotified();
            int n = partial.size();
            for (int i = 0; i < n; i++) {
                MSpan s = partial.pollFirst();
                sweptFrees += s.sweep();
                if (s.allocCount == 0) {
                    spans--;
                    freed++;
                    heap.freeSpan(s);
                } else if (s.allocCount < s.nelems) {
                    partial.addLast(s);
                } else {
                    addFull(s);
                }
            }
        } finally {
            lock.unlock();
        }
        return freed;
    }

    /**
     * Returns to the OS every OS page of an uncached span of this class on which no object lies
     * (Go never does this: it returns only whole free spans; for small objects freed at random it
     * is what brings the footprint near the live bytes). Returns the bytes released.
     */
    long releaseFreeOsPages(long osPageSize) {
        long bytes = 0;
        lock.lock();
        try {
            drainNotified();
            for (MSpan s : partial) {
                bytes += releaseFreeOsPages(s, osPageSize);
            }
            for (MSpan s = fullHead; s != null; s = s.next) {
                bytes += releaseFreeOsPages(s, osPageSize);
            }
        } finally {
            lock.unlock();
        }
        return bytes;
    }

    private long releaseFreeOsPages(MSpan s, long osPageSize) {
        long fresh = s.freeOsPages(osPageSize) & ~s.releasedMask;
        if (fresh != 0) {
            heap.releaseSpanPages(s, fresh);
            return Long.bitCount(fresh) * osPageSize;
        }
        return 0;
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

    /** Objects reclaimed by sweeps of this class so far. */
    long sweptFrees() {
        lock.lock();
        try {
            return sweptFrees;
        } finally {
            lock.unlock();
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
