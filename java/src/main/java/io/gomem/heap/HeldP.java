package io.gomem.heap;

import io.gomem.GoHeap;
import io.gomem.os.MemoryLimitExceededError;

/**
 * A P held by one thread for a scope (Go's {@code acquirep} … {@code releasep}): the
 * implementation of {@link GoHeap.Local}, the entry points of an M that keeps its P.
 *
 * <h2>What it owns</h2>
 * The held P's cache ({@link #cache}) from {@link #open} to {@link #close}: {@link Procs}
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
 * final); {@link #index} is {@link Procs}' (under its lock). A scope is made whole by
 * {@link #open} inside {@link Procs#openScope} and only then registered, in one hold of Procs'
 * lock (no {@code this} escapes the constructor), and {@link #close} clears {@link #cache} only
 * after {@link Procs#releaseHeld} has removed it: so {@link Procs} reads {@link #owner} and
 * {@link #cache} of any open scope under its lock (its checks, and the reclaim of a scope whose
 * owner has ended).
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

    /**
     * Opens a scope of the calling thread on {@code heap}: {@link Procs#openScope} holds a P (if
     * it can), makes the scope over it whole, then registers it, in one hold of its lock; no
     * scope half made is ever among the open ones. Throws IllegalStateException if the heap is
     * closed.
     */
    static HeldP open(Malloc heap) {
        Thread owner = Thread.currentThread();
        return heap.procs.openScope(c -> new HeldP(heap, owner, c));
    }

    /** A scope of {@code owner} holding the P of cache {@code c}, or none if {@code c} is null. Registers nothing. */
    private HeldP(Malloc heap, Thread owner, MCache c) {
        this.heap = heap;
        this.owner = owner;
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
        if (c != null) {
            c.flushCounts();
            heap.procs.releaseHeld(this, c); // cache stays set while the scope is open: Procs reads it
        }
        cache = null;
        spans = null;
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
