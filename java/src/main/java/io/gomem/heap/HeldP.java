package io.gomem.heap;

import io.gomem.GoHeap;
import io.gomem.os.MemoryLimitExceededError;

/**
 * A P held by one thread for a scope (Go's {@code acquirep} … {@code releasep}): the
 * implementation of {@link GoHeap.Local}, the entry points of an M that keeps its P.
 *
 * <h2>What it owns</h2>
 * The held P's cache ({@link #cache}) from the constructor to {@link #close}: {@link Procs}
 * gives it with one lease taken (the one synchronised step) and never takes it back while the
 * scope is open (see the held-P invariant there). So an allocation is the cache's fast path with
 * no lease, and a free of an object in one of this P's own spans ({@link MSpan#cachedBy} is
 * {@link #cache}) marks it with plain stores ({@link MSpan#markFreeLocal}); a free of anything
 * else takes the atomic path any thread takes. No operation here executes a locked instruction
 * unless it leaves the fast path (a refill, the central, the heap, a remote or large free, a
 * tiny object).
 *
 * <h2>Invariants</h2>
 * <ul>
 *   <li>Confinement: only {@link #owner} uses the scope. Every operation compares the current
 *       thread with {@link #holder}, which is the owner while the scope is open and holds a P and
 *       null otherwise, so one compare refuses (WrongThreadException; IllegalStateException below JDK 19) a call from another thread,
 *       and sends a closed scope or one with no P to the slow path.</li>
 *   <li>A scope that could not hold a P (more than {@code maxLocals} open at once) is still a
 *       working scope: each of its operations leases a P as the heap's own methods do.</li>
 *   <li>Closing gives the P back with its spans (the next scope starts warm) after counting
 *       what it handed out, so that statistics are exact for a closed scope. A scope whose
 *       thread ends without closing it is closed by the heap's background thread.</li>
 * </ul>
 *
 * <h2>Guards</h2>
 * Every field but {@link #index} belongs to {@link #owner} ({@link #owner}, {@link #heap} are
 * final); {@link #index} is {@link Procs}' (under its lock). {@link Procs} reads {@link #cache}
 * of an open scope only once its owner has ended.
 */
public final class HeldP implements GoHeap.Local, Procs.Scope {
    private final Malloc heap;
    private final Thread owner;
    /** The owner while open with a P, else null: the fast paths' one check. */
    private Thread holder;
    /** The held P's cache; null once closed, or if no P could be held. */
    private MCache cache;
    /** Its span per span class ({@link MCache#alloc}, a final array), one load nearer the fast path. */
    private MSpan[] spans;
    private boolean closed;
    /** Procs' index of this scope among the open ones (under its lock); -1 when not open. */
    private int index = -1;

    HeldP(Malloc heap) {
        this.heap = heap;
        this.owner = Thread.currentThread();
        MCache c = heap.procs.acquireHeld(this);
        this.cache = c;
        this.spans = c != null ? c.alloc : null;
        this.holder = c != null ? owner : null;
    }

    @Override
    public Thread owner() {
        return owner;
    }

    @Override
    public MCache cache() {
        return cache;
    }

    @Override
    public int index() {
        return index;
    }

    @Override
    public void index(int i) {
        index = i;
    }

    @Override
    public boolean holdsP() {
        checkOwner("holdsP");
        return cache != null;
    }

    // ───────────────────────────── allocation ─────────────────────────────

    /** 16 B to 1 KiB from the held P's span with no lease; everything else through {@link #allocate(long, long, boolean)}. */
    @Override
    public long allocate(long size) {
        if (!Malloc.EFENCE && Thread.currentThread() == holder
                && Long.compareUnsigned(size - SizeClasses.TINY_SIZE, SizeClasses.SMALL_SIZE_MAX - SizeClasses.TINY_SIZE) <= 0) {
            long p = spans[SizeClasses.noscanSpanClass8(size)].nextFreeFast();
            if (p != 0) {
                return p;
            }
        }
        return allocate(size, 1, false);
    }

    @Override
    public long allocateAligned(long size, long alignment) {
        return allocate(size, alignment, false);
    }

    @Override
    public long allocateZeroed(long size) {
        return allocate(size, 1, true);
    }

    @Override
    public long allocateZeroed(long size, long alignment) {
        return allocate(size, alignment, true);
    }

    /** Any allocation: on the held P, or with a lease per operation if none is held. */
    private long allocate(long size, long align, boolean zero) {
        MCache c = checkOwner("allocate");
        if (c == null) {
            return heap.allocate(size, align, zero);
        }
        Malloc.checkSize(size, align);
        try {
            return heap.allocateOn(c, size, align, zero);
        } catch (MemoryLimitExceededError e) {
            heap.releaseMemory(); // this P's spans too: its holder is here, between operations
            return heap.allocateOn(c, size, align, zero);
        }
    }

    // ───────────────────────────── free ─────────────────────────────

    @Override
    public void free(long address) {
        free(address, 0);
    }

    /**
     * Frees what any allocate method of this heap returned. An object in one of this P's spans is
     * marked with plain stores; any other object as the heap's {@link GoHeap#free} does.
     */
    @Override
    public void free(long address, long size) {
        if (Thread.currentThread() == holder) {
            MCache c = cache;
            MSpan s = heap.spanAt(address);
            int idx;
            if (s != null && (idx = s.slotOf(address)) >= 0 && Long.compareUnsigned(size, s.elemSize) <= 0) {
                if (Malloc.CLOBBERFREE) {
                    Malloc.clobberSmall(s, idx, address);
                }
                if (s.cachedBy == c) {
                    s.markFreeLocal(idx, address);
                } else if (s.markFree(idx, address)) {
                    heap.centrals[s.shard][s.spanClass].onFree(s);
                }
                return;
            }
            heap.freeSlow(address, size, s, c);
            return;
        }
        checkOwner("free");
        heap.free(address, size); // open, with no P held
    }

    // ───────────────────────────── scope ─────────────────────────────

    /**
     * Ends the scope: what the P handed out is counted and the P goes back to the heap with its
     * spans. Idempotent; only the owner may close.
     */
    @Override
    public void close() {
        if (Thread.currentThread() != owner) {
            throw wrongThread("close");
        }
        if (closed) {
            return;
        }
        closed = true;
        holder = null;
        MCache c = cache;
        cache = null;
        spans = null;
        if (c != null) {
            c.flushCounts();
            heap.procs.releaseHeld(this, c);
        }
    }

    /** The slow paths' check: the owner's thread, an open scope. Returns the held cache, or null if none is held. */
    private MCache checkOwner(String op) {
        if (Thread.currentThread() != owner) {
            throw wrongThread(op);
        }
        if (closed) {
            throw new IllegalStateException("GoHeap.Local of " + owner + " is closed: no " + op + " after close()");
        }
        return cache;
    }

    private RuntimeException wrongThread(String op) {
        return io.gomem.internal.Threads.wrongThread(op + " on the GoHeap.Local of " + owner + " from " + Thread.currentThread()
                + ": a scope is confined to the thread that opened it (free from any thread through the heap)");
    }

    @Override
    public String toString() {
        return "GoHeap.Local[" + owner + (closed ? ", closed" : cache != null ? ", P " + cache.id : ", no P held") + "]";
    }
}
