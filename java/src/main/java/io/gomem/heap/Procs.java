package io.gomem.heap;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The Ps (Go's {@code proc.go}): the P slots of {@link MCache}s and the one answer to "who may
 * touch heap memory now": leases, ownership, the idle flush, stop-the-world and close.
 *
 * <h2>P slots</h2>
 * {@link #caches} holds {@code procs} caches to start with (Go's GOMAXPROCS; the builder's default
 * is four per CPU) and grows (below).
 * An operation leases one with a CAS: the cache its thread id picks in the table the entry point
 * reads ({@link #picks}, published to it through {@link Table}) if the thread owns it (that fast
 * path runs in {@link Malloc#lease}, on the entry point's own copy of the table), else
 * ({@link #leaseSlow}) one it owns, one nobody owns (which it then owns), or any free one
 * (borrowed); if none is free it waits ({@link #leaseWait}), and a platform thread that still
 * finds none after about 20 µs adds a P ({@link #grow}, up to {@link #maxProcs}): with more
 * runnable threads than CPUs, lease holders descheduled mid-operation would otherwise hold
 * every P for a time slice. Ownership is only a preference that keeps a thread on one cache (and
 * its spans) as Go keeps an M on a P; leases last one operation, so a thread that dies or idles
 * holds nothing, and any number of threads, virtual or not, share the caches. The background thread flushes caches that took no span for a
 * period ({@link #flushIdleCaches}) and forgets their owner, so spans do not sit in caches nobody
 * uses.
 *
 * <h2>Held Ps (Go's {@code acquirep} / {@code releasep})</h2>
 * A thread may also hold a P for a scope ({@link HeldP}, {@code GoHeap.local()}): one CAS when
 * the scope opens, then every allocation and every free into the P's own spans with plain loads
 * and stores, and one release store when it closes. Held Ps are not the {@link #caches} above:
 * they come from a pool of their own ({@link #spare}, grown on demand up to {@link #maxHeld}
 * held at once), so a P held by a thread that blocks, sleeps or is descheduled never leaves
 * another thread waiting for a P. A closed scope's P goes back to the pool with its spans, for
 * the next scope to start warm; the idle flush empties spare Ps that stay unused, and takes back
 * the P of a scope whose thread ended without closing it (the thread's end happens-before
 * {@link Thread#isAlive()} returning false, so its writes are seen).
 *
 * <h2>Invariant: who may touch a held P</h2>
 * Only its holder, from {@link #openScope} until {@link #releaseHeld}: nothing else takes its
 * lease, waits for it, or revokes it. So no stop-the-world reaches an open scope: it takes every
 * lease of {@link #caches} and of {@link #spare} (the world is every P nobody holds), and acts on
 * the caller's own open scopes too (the caller is not inside one of their operations), never on
 * another thread's. {@link #openScope}, {@link #releaseHeld} and the reclaim of an ended
 * thread's P run under {@link #stwLock}, so the set of open scopes does not change while the
 * world is stopped, and {@link #close} refuses while any scope is open (naming how many, and
 * whose), with nothing changed: a closed heap has no open scope. A scope is made complete (its
 * owner and its P's cache set) before it is registered, in the same hold of {@link #stwLock}:
 * no scope registers itself from its constructor, so whoever reads {@link #open} under that lock
 * finds every scope whole ({@link #checkScopes}). What this costs is stated where
 * it shows: statistics lag by what other threads' open scopes handed out since their last
 * refill, {@code releaseMemory} cannot take back the spans they cache (at most one per size
 * class, and up to 4 MiB of large spans), and {@code checkInvariants} refuses while another
 * thread holds one.
 *
 * <h2>Invariant: who may touch heap memory</h2>
 * A thread touches heap memory (zeroing), or a cache, only while it holds that cache's lease;
 * {@link #close} and every stop-the-world hold every lease. So an allocation zeroes its block
 * before it gives its lease back, and the large path (a kept span, a new one from the heap, the
 * clear) runs under one lease: after {@code close()} returns no thread touches the heap's
 * memory, and an allocation that loses the race gets IllegalStateException. A free takes no
 * lease: it touches only Java objects (the spans table, a span's marks, a central's queue) and
 * never the block; a large span it frees goes to the heap under the heap lock, which refuses it
 * once the heap is released.
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
 * </ul>
 *
 * <h2>Guards</h2>
 * {@link #closed}: volatile; set once by {@link #close} while it holds every lease, which it
 * then leaves taken for good ({@link MCache#closeLease}), with {@link #picks} left at
 * {@link #stopped}: whoever holds a lease got it before the close and completes before the heap
 * goes away, so it need not read {@code closed}; whoever finds no lease reads it. {@link #picks}
 * (and the reader's copy): written only by the stop-the-world, under {@link #stwLock}.
 * {@link #spare}, {@link #open}, {@link #nOpen}, {@link #heldCaches}: {@link #stwLock}; a spare
 * cache's fields belong to whoever holds its lease (a stop-the-world, the idle flush, a reader
 * flushing its counts, or the scope that takes it).
 * {@link #poller}: volatile, the {@link #waitLock} holder's. {@link #caches}, {@link #slots},
 * {@link #stopped}: volatile, each version immutable, replaced only by {@link #grow} under
 * {@link #stwLock} (caches first, so a reader of slots then caches sees every id it indexes); each
 * cache's fields belong to its lease holder (see {@link MCache}). Under
 * {@code gomem.checkInvariants} the methods that need {@link #stwLock} assert that their caller
 * holds it, and the tables are checked after every change ({@link #checkLocked}).
 */
final class Procs {
    /**
     * The P slots, {@code caches[i].id == i}: replaced (copied, one longer) when a P is added
     * ({@link #grow}), under {@link #stwLock}; never shrinks.
     */
    private volatile MCache[] caches;
    /**
     * A power-of-two table whose entry i is {@code caches[i % procs]}, four or more entries per
     * cache: a thread's starting cache is {@code slots[threadId & (length - 1)]}, a mask instead
     * of a division (consecutive thread ids land on different caches; the oversize keeps the
     * shares within 25% of even). Each version is immutable; {@link #grow} publishes a new one
     * (with the new P in its thread's entry), under {@link #stwLock}.
     */
    volatile MCache[] slots;
    /** The most P slots {@link #grow} may reach. */
    private final int maxProcs;
    /**
     * The table the lease fast path reads: {@link #slots}, or {@link #stopped} while a
     * stop-the-world is pending or running, and for good once the heap is closed. Written only
     * by the stop-the-world, under {@link #stwLock}, here and in {@link #reader}.
     */
    private volatile MCache[] picks;
    /** As long as {@link #slots}, every entry {@link #STOPPED}: no thread's fast path gets a lease from it. Replaced with slots. */
    private volatile MCache[] stopped;
    /** Owned by nobody, its lease closed: the entry of {@link #stopped}. */
    private static final MCache STOPPED = new MCache(null, null, null, -1);

    static {
        STOPPED.owner = -1;
        STOPPED.closeLease();
    }

    /** The entry point's copy of {@link #picks}; set once by {@link #publishPicksTo}, before use. */
    private Table reader = Table.NONE;

    /** One stop-the-world at a time (close is one); parks its waiters. */
    private final ReentrantLock stwLock = new ReentrantLock();
    /**
     * {@code gomem.checkInvariants}: assert that {@link #stwLock} is held where the fields'
     * comments say so, and check the P tables after every change of them.
     */
    private static final boolean CHECK = io.gomem.internal.Options.CHECK_INVARIANTS.booleanValue();
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

    /** What a new held P's cache is made of. */
    private final MHeap heap;
    private final MCentral[][] centrals;
    private final MStats stats;
    /** The first held P's id (P slots are numbered from 0, held Ps from here). */
    static final int HELD_IDS = 1 << 16;
    /** Held Ps open at once, at most: a scope beyond this leases per operation ({@link HeldP}). */
    private final int maxHeld;
    /** Guarded by {@link #stwLock}: held-P caches that no scope holds now, most recently closed last. */
    private final ArrayList<MCache> spare = new ArrayList<>();
    /** Guarded by {@link #stwLock}: the open scopes, {@code open[0, nOpen)}; a scope knows its index. */
    private Scope[] open = new Scope[8];
    private int nOpen;
    /** Guarded by {@link #stwLock}: held-P caches made so far (open or spare). */
    private int heldCaches;

    /** A scope holding a P ({@link HeldP}), as the P slots see it. */
    interface Scope {
        /** The thread that opened it (final). */
        Thread owner();

        /**
         * Its P's cache: set before the scope is registered ({@link #openScope}) and unchanged
         * until {@link #releaseHeld} removes it, so readable under {@link #stwLock} for any open
         * scope (used here only by the owner, once the owner has ended, and by {@link #checkScopes}).
         */
        MCache cache();

        /** Its index among the open scopes, -1 if not open: this class's, under its lock. */
        int index();

        void index(int i);
    }

    /** Who keeps a copy of the table the lease fast path reads. */
    interface Table {
        /** The fast path's table is now {@code picks} (a release store). */
        void publishPicks(MCache[] picks);

        Table NONE = p -> { };
    }

    /**
     * {@code procs} P slots, each an {@link MCache} over {@code heap} and one set of {@code centrals} (P i: set i mod sets),
     * counting into {@code stats}; up to {@code maxHeld} more Ps held by scopes at once.
     */
    Procs(int procs, int maxProcs, int maxHeld, MHeap heap, MCentral[][] centrals, MStats stats) {
        if (procs < 1 || procs > 4096) {
            throw new IllegalArgumentException("procs " + procs + " must be between 1 and 4096");
        }
        if (maxProcs < procs || maxProcs > 4096) {
            throw new IllegalArgumentException("maxProcs " + maxProcs + " must be between procs (" + procs + ") and 4096");
        }
        this.maxProcs = maxProcs;
        if (maxHeld < 0 || maxHeld > 65536) {
            throw new IllegalArgumentException("held Ps " + maxHeld + " must be between 0 and 65536");
        }
        this.heap = heap;
        this.centrals = centrals;
        this.stats = stats;
        this.maxHeld = maxHeld;
        MCache[] cs = new MCache[procs];
        for (int i = 0; i < procs; i++) {
            cs[i] = new MCache(heap, centrals[i % centrals.length], stats, i); // P i refills from set i
        }
        MCache[] sl = new MCache[Integer.highestOneBit(4 * procs - 1) << 1];
        for (int i = 0; i < sl.length; i++) {
            sl[i] = cs[i % procs];
        }
        MCache[] st = new MCache[sl.length];
        java.util.Arrays.fill(st, STOPPED);
        this.caches = cs;
        this.slots = sl;
        this.stopped = st;
        this.picks = sl;
    }

    /** Publishes the fast path's table to {@code t} now and at every change. Once, before use. */
    void publishPicksTo(Table t) {
        stwLock.lock();
        try {
            if (reader != Table.NONE) {
                throw new IllegalStateException("the P table already has its reader");
            }
            reader = t;
            t.publishPicks(picks);
        } finally {
            stwLock.unlock();
        }
    }

    /** Points the fast path's table at {@code t}: the stop-the-world's, {@link #stwLock} held. */
    void setPicks(MCache[] t) {
        assertStw();
        picks = t;
        reader.publishPicks(t);
    }

    /** With {@link #CHECK}: the caller holds {@link #stwLock}, as the field comments require. */
    private void assertStw() {
        if (CHECK && !stwLock.isHeldByCurrentThread()) {
            throw new IllegalStateException("procs: stwLock is not held by " + Thread.currentThread());
        }
    }

    /**
     * With {@link #CHECK}, after the P tables or the held Ps change ({@link #stwLock} held): the
     * P slots are numbered in order and every slot entry is one of them; {@link #picks} is
     * {@link #slots} or {@link #stopped}; the open scopes know their index; every held-P cache
     * made is open or spare.
     */
    private void checkLocked() {
        assertStw();
        MCache[] cs = caches;
        MCache[] sl = slots;
        for (int i = 0; i < cs.length; i++) {
            check(cs[i].id == i, "P slot " + i + " has id " + cs[i].id);
        }
        check(Integer.bitCount(sl.length) == 1 && sl.length >= cs.length && stopped.length == sl.length,
                "slots table of " + sl.length + " for " + cs.length + " Ps (stopped: " + stopped.length + ")");
        for (MCache c : sl) {
            check(c.id >= 0 && c.id < cs.length && cs[c.id] == c, "a slot entry is not a P slot: " + c.id);
        }
        check(picks == sl || picks == stopped, "the fast path's table is neither the slots nor the stopped table");
        check(nOpen >= 0 && nOpen <= open.length, "open scopes " + nOpen + " of " + open.length);
        for (int i = 0; i < open.length; i++) {
            check(i < nOpen ? open[i] != null && open[i].index() == i : open[i] == null, "open scope " + i);
        }
        java.util.Set<MCache> sp = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
        for (MCache c : spare) {
            check(c.id >= HELD_IDS && sp.add(c), "a spare held P twice, or a P slot among them: " + c.id);
        }
        // Every open scope holds a P (a scope that got none is not registered): made = open + spare.
        check(nOpen + spare.size() == heldCaches, "held-P caches: " + nOpen + " open, " + spare.size() + " spare, "
                + heldCaches + " made");
    }

    private static void check(boolean ok, String what) {
        if (!ok) {
            throw new IllegalStateException("procs: " + what);
        }
    }

    int procs() {
        return caches.length;
    }

    boolean isClosed() {
        return closed;
    }

    /** The P slots (not the held Ps), for whoever holds one's lease. */
    MCache[] caches() {
        return caches;
    }

    /** Guarded by {@link #stwLock}: the caches a running stop-the-world holds (the P slots, then the spare held Ps). */
    private MCache[] world;

    /**
     * For a stop-the-world's body: every cache it may touch: the leases it holds (the P slots
     * and the spare held Ps), then the caches of the caller's own open scopes. Never another
     * thread's open scope.
     */
    MCache[] stoppedCaches() {
        if (!stwLock.isHeldByCurrentThread() || world == null) {
            throw new IllegalStateException("stoppedCaches outside a stop-the-world");
        }
        List<MCache> own = ownOpenCaches();
        if (own.isEmpty()) {
            return world;
        }
        MCache[] all = java.util.Arrays.copyOf(world, world.length + own.size());
        for (int i = 0; i < own.size(); i++) {
            all[world.length + i] = own.get(i);
        }
        return all;
    }

    /** The caches of the calling thread's open scopes. */
    private List<MCache> ownOpenCaches() {
        stwLock.lock();
        try {
            List<MCache> own = new ArrayList<>();
            Thread me = Thread.currentThread();
            for (int i = 0; i < nOpen; i++) {
                if (open[i].owner() == me) {
                    own.add(open[i].cache());
                }
            }
            return own;
        } finally {
            stwLock.unlock();
        }
    }

    /** Open scopes of threads other than the caller (see {@link #checkNoOtherScopes}). */
    int othersOpen() {
        stwLock.lock();
        try {
            int n = 0;
            for (int i = 0; i < nOpen; i++) {
                if (open[i].owner() != Thread.currentThread()) {
                    n++;
                }
            }
            return n;
        } finally {
            stwLock.unlock();
        }
    }

    /** Throws IllegalStateException for {@code what} if a thread other than the caller has an open scope. */
    void checkNoOtherScopes(String what) {
        int n = othersOpen();
        if (n > 0) {
            throw new IllegalStateException(what + ": " + n + " P(s) held by open GoHeap.Local scopes of other threads ("
                    + ownersOfOpen() + ") change under it: run it when they are closed");
        }
    }

    /** The threads of the open scopes, for messages: at most 8 named. */
    private String ownersOfOpen() {
        stwLock.lock();
        try {
            StringBuilder b = new StringBuilder();
            for (int i = 0; i < nOpen && i < 8; i++) {
                b.append(i == 0 ? "" : ", ").append(open[i].owner());
            }
            return b.append(nOpen > 8 ? ", ..." : "").toString();
        } finally {
            stwLock.unlock();
        }
    }

    // ───────────────────────────── held Ps ─────────────────────────────

    /**
     * Opens a scope of the calling thread: holds a P for it (a spare one if any is free, else a
     * new one while fewer than {@link #maxHeld} exist), makes the scope with {@code make} from
     * that P's cache (null if none can be held: the scope then leases per operation) and, if it
     * holds a P, registers it among the open scopes; all in one hold of {@link #stwLock}, so
     * that every scope in {@link #open} is complete when any thread can see it (a scope is made
     * here, never registered by its own constructor). Waits while the world is stopped; throws
     * if the heap is closed (then {@code make} is not called).
     */
    <S extends Scope> S openScope(java.util.function.Function<MCache, S> make) {
        stwLock.lock();
        try {
            if (closed) {
                throw closedException();
            }
            MCache c = null;
            for (int i = spare.size() - 1; i >= 0; i--) { // the most recently closed first: its spans are warm
                if (spare.get(i).tryLease()) { // a spare cache is leased only briefly (a flush, a reader)
                    c = spare.remove(i);
                    break;
                }
            }
            if (c == null && heldCaches < maxHeld) {
                int id = HELD_IDS + heldCaches; // apart from the P slots' ids, which index caches
                c = new MCache(heap, centrals[heldCaches % centrals.length], stats, id);
                heldCaches++;
                if (!c.tryLease()) {
                    throw new IllegalStateException("a new cache's lease was taken");
                }
            }
            S scope;
            try {
                scope = make.apply(c);
                if (c != null && (scope.cache() != c || scope.owner() != Thread.currentThread())) {
                    throw new IllegalStateException("scope " + scope + " was not made over its P by its thread");
                }
            } catch (RuntimeException | Error e) {
                if (c != null) {
                    c.release();
                    spare.add(c); // back to the pool, as it was
                }
                throw e;
            }
            if (c != null) {
                if (nOpen == open.length) {
                    open = java.util.Arrays.copyOf(open, nOpen * 2);
                }
                scope.index(nOpen);
                open[nOpen++] = scope;
            }
            if (CHECK) {
                checkLocked();
            }
            return scope;
        } finally {
            stwLock.unlock();
        }
    }

    /**
     * Ends {@code scope}, whose holder (the calling thread, or the reclaim of an ended one) has
     * flushed its counts: the P goes back to the pool with its spans, its lease given back.
     */
    void releaseHeld(Scope scope, MCache c) {
        stwLock.lock();
        try {
            removeOpen(scope);
            c.release();
            spare.add(c);
            if (CHECK) {
                checkLocked();
            }
        } finally {
            stwLock.unlock();
        }
    }

    /** Takes {@code scope} off the open scopes ({@link #stwLock} held). */
    private void removeOpen(Scope scope) {
        assertStw();
        int i = scope.index();
        if (i < 0 || i >= nOpen || open[i] != scope) {
            throw new IllegalStateException("scope " + scope + " is not open");
        }
        Scope last = open[--nOpen];
        open[i] = last;
        last.index(i);
        open[nOpen] = null;
        scope.index(-1);
    }

    /**
     * Takes back the Ps of open scopes whose thread has ended (stwLock held): the thread's end
     * happens-before isAlive() returns false, so its last writes to the cache are visible here,
     * and nobody else may use the scope (its owner check fails for every other thread).
     */
    void reclaimEnded() {
        assertStw();
        for (int i = nOpen - 1; i >= 0; i--) {
            Scope h = open[i];
            if (!h.owner().isAlive()) {
                MCache c = h.cache();
                c.adoptLease();
                c.flushCounts();
                removeOpen(h);
                c.release();
                spare.add(c);
            }
        }
        if (CHECK) {
            checkLocked();
        }
    }

    /**
     * close's refusal, asked before the heap changes anything for a close (its arenas): throws
     * the same IllegalStateException as {@link #close} while scopes of live threads are open.
     * Ended threads' scopes are taken back first, as {@link #close} does.
     */
    void checkCloseAllowed() {
        stwLock.lock();
        try {
            if (isClosed()) {
                return;
            }
            reclaimEnded();
            if (nOpen > 0) {
                throw new IllegalStateException("close: " + nOpen + " P(s) held by open GoHeap.Local scopes ("
                        + ownersOfOpen() + "): close them first; the heap stays open");
            }
        } finally {
            stwLock.unlock();
        }
    }

    /**
     * Checks the held Ps (under {@link #stwLock}; from any thread, at any time): every open scope
     * is complete (its owner and its P's cache set, its index its place), holds its P's lease,
     * and no P is both open and spare or held by two scopes; open and spare Ps are every held P
     * made so far. Throws IllegalStateException naming what is wrong.
     */
    void checkScopes() {
        stwLock.lock();
        try {
            java.util.Set<MCache> seen = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
            for (int i = 0; i < nOpen; i++) {
                Scope h = open[i];
                if (h == null || h.owner() == null || h.cache() == null || h.index() != i) {
                    throw new IllegalStateException("open scope " + i + " of " + nOpen + " is not complete: " + h
                            + (h == null ? "" : " (owner " + h.owner() + ", cache " + h.cache() + ", index " + h.index() + ")"));
                }
                if (!h.cache().isLeased() || !seen.add(h.cache())) {
                    throw new IllegalStateException("open scope " + h + ": its P " + h.cache().id
                            + (seen.contains(h.cache()) ? " is held twice" : " is not leased"));
                }
            }
            for (MCache c : spare) {
                if (!seen.add(c)) {
                    throw new IllegalStateException("P " + c.id + " is both spare and held by an open scope");
                }
            }
            if (seen.size() != heldCaches) {
                throw new IllegalStateException(nOpen + " open and " + spare.size() + " spare held Ps, but "
                        + heldCaches + " made");
            }
            for (int i = nOpen; i < open.length; i++) {
                if (open[i] != null) {
                    throw new IllegalStateException("a scope past the open ones, at " + i + ": " + open[i]);
                }
            }
        } finally {
            stwLock.unlock();
        }
    }

    /** Open scopes now (for tests and statistics). */
    int openScopes() {
        stwLock.lock();
        try {
            return nOpen;
        } finally {
            stwLock.unlock();
        }
    }

    /** Held-P caches made so far, open or spare. */
    int heldCaches() {
        stwLock.lock();
        try {
            return heldCaches;
        } finally {
            stwLock.unlock();
        }
    }

    /** The spare held-P caches now (a copy; each may be taken by a scope at any moment). */
    private MCache[] spareNow() {
        stwLock.lock();
        try {
            return spare.toArray(new MCache[0]);
        } finally {
            stwLock.unlock();
        }
    }

    static IllegalStateException closedException() {
        return MHeap.closedException();
    }

    /**
     * Tries of a waiter before it adds a P ({@link #grow}): the spins and parks of 1 to 8 µs,
     * about 20 µs in all. A holder parked on a lock mid-operation comes back within microseconds,
     * and a new P would only queue on the same lock; one descheduled by the OS is gone for a time
     * slice, milliseconds. Virtual threads never add Ps: they run on as many carriers as CPUs,
     * so a P they all find busy is held by a thread that runs, or that parked on a lock (giving
     * its carrier back), never by one the OS descheduled for a slice.
     */
    private static final int GROW_AFTER = 36;
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

    /**
     * The lease after the fast path missed: a free P now (see {@link #tryLeaseAny}), else a new
     * P ({@link #grow}), else a wait ({@link #leaseWait}).
     */
    MCache leaseSlow(long tid) {
        if (picks != slots) {
            return leaseWait(tid); // while the world stops, the Ps are its
        }
        MCache c = tryLeaseAny(tid);
        return c != null ? c : leaseWait(tid);
    }

    /**
     * Adds a P for thread {@code tid}, which found every P leased, and returns it leased and
     * owned by the thread; null if the heap has {@link #maxProcs} already, is closed, or the
     * world is stopping (then the caller waits). Every P is leased at once only when some lease
     * holders are descheduled (by the OS, or parked on a lock mid-operation): with more runnable
     * threads than CPUs, the normal state of a Java server, waiting for them costs the waiter a
     * time slice, while a new P costs its cache's arrays and, once used, one span per class.
     * So the Ps grow toward the number of threads that allocate at once (as jemalloc gives each
     * thread its cache), bounded by {@code maxProcs}; the idle flush empties the spans of Ps
     * nobody uses any more.
     */
    private MCache grow(long tid) {
        if (caches.length >= maxProcs) {
            return null;
        }
        stwLock.lock();
        try {
            MCache[] cs = caches;
            int n = cs.length;
            if (closed || n >= maxProcs || picks != slots) {
                return null;
            }
            MCache c = new MCache(heap, centrals[n % centrals.length], stats, n);
            if (!c.tryLease()) {
                throw new IllegalStateException("a new cache's lease was taken");
            }
            c.owner = tid;
            c.ownerThread = Thread.currentThread();
            cs = java.util.Arrays.copyOf(cs, n + 1);
            cs[n] = c;
            MCache[] old = slots;
            int len = old.length;
            while (len < 4 * (n + 1)) {
                len <<= 1;
            }
            MCache[] sl = new MCache[len];
            for (int i = 0; i < len; i++) {
                sl[i] = old[i & (old.length - 1)]; // every thread keeps the P its id picked (its low bits are the same)
            }
            sl[(int) tid & (len - 1)] = c; // this thread's fast path finds its new P
            MCache[] st = new MCache[len];
            java.util.Arrays.fill(st, STOPPED);
            caches = cs;
            stopped = st;
            slots = sl;
            setPicks(sl);
            if (CHECK) {
                checkLocked();
            }
            return c;
        } finally {
            stwLock.unlock();
        }
    }

    /**
     * One look for a free P for thread {@code tid}, trying caches in order from the one its id
     * picks: among the next {@link #PROBES}, one this thread owns, then one nobody owns (the
     * thread claims it); else any free one, borrowed without claiming it; null if all are
     * leased (then the caller waits, and adds a P if the wait goes on: {@link #grow}). So threads whose ids pick the same cache settle on different ones instead of
     * taking turns on one and sharing its spans (Go binds an M to a P the same way while it
     * runs), and with more threads than caches the owners keep their fast path while the others
     * borrow. The idle flush frees a cache for claiming again once its owner has ended or done
     * nothing for a period.
     */
    private MCache tryLeaseAny(long tid) {
        MCache[] sl = slots; // first: a version of slots comes with caches at least as new (grow writes caches first)
        MCache[] cs = caches;
        int n = cs.length;
        int i = sl[(int) tid & (sl.length - 1)].id;
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
     * A P whose lease is free right now, leased: the one thread {@code tid} owns if it is free,
     * else any free one, looked for from the one its id picks, without claiming it; null if all
     * are busy (this never waits). For an operation that only offers something to a P (a freed
     * large span, which any P may keep): it must not queue on the heap lock when a P could take it.
     */
    MCache tryLeaseForOffer(long tid) {
        MCache[] sl = slots; // first, as in tryLeaseAny
        MCache c = sl[(int) tid & (sl.length - 1)];
        if (c.owner == tid && c.tryLease()) {
            return c;
        }
        MCache[] cs = caches;
        for (int k = 0, j = c.id; k < cs.length; k++, j = j + 1 == cs.length ? 0 : j + 1) {
            if (cs[j].tryLease()) {
                return cs[j];
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
                    if (c == null && k >= GROW_AFTER && !io.gomem.internal.Threads.isVirtual(Thread.currentThread())) {
                        c = grow(tid); // every P still busy after a while: its holders are descheduled
                    }
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

    /**
     * Runs {@code f} on each P's cache in turn, holding that one lease (the others run on): with
     * {@code wait}, on every P, waiting for each lease as an operation holding it ends (backing
     * off to parks); without, only on the Ps whose lease is free right now. Throws if the heap
     * is closed before every P was visited (a closed heap's leases are taken for good). Never
     * called holding a lease.
     */
    void forEachP(boolean wait, java.util.function.Consumer<MCache> f) {
        boolean interrupted = false;
        try {
            for (MCache c : ownOpenCaches()) {
                if (closed) {
                    throw closedException();
                }
                f.accept(c); // the caller holds it, and is not inside one of its operations
            }
            for (MCache c : spareNow()) {
                if (c.tryLease()) { // never waited for: a spare cache leased now is being flushed, or is a scope's now
                    try {
                        f.accept(c);
                    } finally {
                        c.release();
                    }
                } else if (closed) {
                    throw closedException();
                }
            }
            for (MCache c : caches) {
                boolean got = c.tryLease();
                for (int k = 0; !got && wait && !closed; k++) {
                    backOff(k);
                    interrupted |= Thread.interrupted();
                    got = c.tryLease();
                }
                if (!got) {
                    if (closed) {
                        throw closedException();
                    }
                    continue; // busy, and not waited for
                }
                try { // a lease taken means the heap is open: close leaves every lease taken
                    f.accept(c);
                } finally {
                    c.release();
                }
            }
        } finally {
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /** Runs {@code r} while holding every P slot's lease: no allocation is in flight. Throws if closed. */
    void stopTheWorld(Runnable r) {
        if (!stopTheWorldIfOpen(r)) {
            throw closedException();
        }
    }

    /**
     * Runs {@code r} while holding every P slot's lease, unless the heap is closed (then returns
     * false, having run nothing).
     *
     * <p>The protocol: one stop-the-world at a time ({@link #stwLock}). It first points
     * {@link #picks} at {@link #stopped}, so that no operation starting now takes a lease (they
     * wait in {@link #leaseWait}); then it takes each lease as the operation holding it ends,
     * backing off to parks (a holder may be a virtual thread that needs this carrier); then runs
     * {@code r}; then gives the leases back (closes them, if this is the close), restores
     * {@link #picks} and wakes the poller. A thread holding a lease never stops the world (it
     * would wait for itself): the allocation paths give theirs back before they call in here.
     */
    boolean stopTheWorldIfOpen(Runnable r) {
        return stopTheWorld(r, false);
    }

    private boolean stopTheWorld(Runnable r, boolean close) {
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
            reclaimEnded(); // so that an ended thread's scope is in the world (spare), not open
            if (close) {
                if (nOpen > 0) {
                    throw new IllegalStateException("close: " + nOpen + " P(s) held by open GoHeap.Local scopes ("
                            + ownersOfOpen() + "): close them first; the heap stays open");
                }
            }
            setPicks(stopped);
            world = new MCache[caches.length + spare.size()];
            System.arraycopy(caches, 0, world, 0, caches.length);
            for (int i = 0; i < spare.size(); i++) {
                world[caches.length + i] = spare.get(i);
            }
            for (MCache c : world) {
                for (int k = 0; !c.tryLease(); k++) { // an operation (or a flush) in flight: it ends without us
                    backOff(k);
                    interrupted |= Thread.interrupted();
                }
                held++;
            }
            if (close) {
                closed = true; // every lease held: nobody is inside; those who come now find none
            }
            r.run();
            return true;
        } finally {
            boolean closing = closed;
            for (int i = 0; i < held; i++) {
                if (closing) {
                    world[i].closeLease();
                } else {
                    world[i].release();
                }
            }
            world = null;
            if (!closing) {
                setPicks(slots);
            }
            if (CHECK) {
                checkLocked();
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
     * Closes: stops the world for good, marks the heap closed and runs {@code release} (which
     * returns the memory), leaving every lease taken. Idempotent: false if already closed.
     */
    boolean close(Runnable release) {
        return stopTheWorld(release, true);
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
        if (stwLock.tryLock()) { // a stop-the-world running now is not waited for
            try {
                if (!closed) {
                    reclaimEnded();
                }
            } finally {
                stwLock.unlock();
            }
        }
        for (MCache c : spareNow()) {
            if (c.tryLease()) {
                try {
                    if (c.refills == c.refillsAtLastCheck && c.cachedSpans() > 0) {
                        c.releaseAll(); // no scope took it for a period: its spans go back
                        flushed++;
                    }
                    c.refillsAtLastCheck = c.refills;
                } finally {
                    c.release();
                }
            }
        }
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
     * Checks the caches a stop-the-world holds, and the caller's open scopes': each cache's spans
     * and kept large spans; and the held Ps ({@link #checkScopes}).
     */
    void checkInvariants() {
        checkScopes();
        for (MCache c : stoppedCaches()) {
            c.checkInvariants();
        }
    }
}
