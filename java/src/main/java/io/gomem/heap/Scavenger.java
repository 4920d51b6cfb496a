package io.gomem.heap;

import io.gomem.internal.Options;
import io.gomem.os.MemState;
import io.gomem.os.MemoryLimitExceededError;
import io.gomem.os.OsMemory;
import io.gomem.os.Purpose;

import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Returns free heap pages to the OS (Go's scavenger, {@code mgcscavenge.go}): in the background,
 * paced to a small CPU budget, down to a goal; synchronously on the allocation path when the heap
 * would pass its soft memory limit; and all at once on request ({@link #releaseAll()}).
 *
 * <p>It sits below {@link MHeap}, which owns it: it works on the heap's {@link PageAlloc} and
 * {@link OsMemory} under the heap lock it is given, and calls nothing above them.
 *
 * <h2>Goal</h2>
 * Ready heap memory ("retained", what the OS layer holds Ready for the heap) should be at most
 * {@code inUse × (100 + retainExtraPercent) / 100}, and at most 95% of the soft memory limit
 * (Go leaves the same 5% of headroom under GOMEMLIMIT). {@code inUse} is the bytes in spans.
 *
 * <h2>The heap lock is not held across a system call</h2>
 * As Go does, every path claims runs of free pages under the lock ({@link PageAlloc#scavengeClaim}:
 * the pages count as in use, so nobody allocates them), drops the lock for the {@code madvise},
 * and takes it again to free the runs as scavenged ({@link PageAlloc#scavengeComplete}; as they
 * were, if the call failed). The background cycle and {@link #releaseAll()} claim a run of at
 * most {@link #BATCH_PAGES} at a time; {@link #makeRoom}, on the allocation path when the heap
 * would pass a limit, claims what the request needs (Go 1.19+ also scavenges on that path after
 * unlocking) and checks again once the lock is back, so the hard limit stays exact: every check
 * first waits for the claims in flight ({@link #awaitClaims}), whose pages the OS layer still
 * counts Ready. Allocation goes on meanwhile. The heap announces its own OS calls on heap memory
 * made with the lock dropped ({@link #beginOsCall}), and they are waited for the same way.
 *
 * <h2>Guards</h2>
 * The configuration is final. {@link #inFlight} and {@link #stopped}: the heap lock. Invariant:
 * while {@code inFlight > 0} some run is claimed and its OS call may be running, so
 * {@link #stop()} (before the heap unmaps its memory) and {@link #awaitClaims()} (before a
 * reading of counters that must agree with the OS layer) wait on {@link #claimsDone} for it to
 * reach zero, parked. A cycle's figures go out as a JFR event, a scavtrace line and a DEBUG log
 * line, and are not kept.
 */
final class Scavenger {
    /** Pages released per claim (one heap-lock hold, one OS call): 512 KiB. */
    static final int BATCH_PAGES = 64;

    private static final boolean SCAVTRACE = Options.debugFlag("scavtrace");
    private static final boolean CHECK = Options.CHECK_INVARIANTS.booleanValue();
    private static final System.Logger LOG = System.getLogger("io.gomem.heap");

    /**
     * The scavenger's settings.
     *
     * @param softLimit          soft limit on Ready heap bytes, Long.MAX_VALUE for none
     * @param hardLimit          hard limit on Ready heap bytes, Long.MAX_VALUE for none
     * @param retainExtraPercent the goal: Ready at most in-use × (100 + this) / 100
     * @param cpuPercent         the background cycle's CPU budget, percent of one CPU
     */
    record Config(long softLimit, long hardLimit, int retainExtraPercent, int cpuPercent) {
        Config {
            if (softLimit <= 0 || hardLimit <= 0) {
                throw new IllegalArgumentException("memory limits must be positive: soft " + softLimit + ", hard " + hardLimit);
            }
            if (retainExtraPercent < 0 || cpuPercent < 1 || cpuPercent > 100) {
                throw new IllegalArgumentException("retainExtraPercent " + retainExtraPercent + " must be >= 0 and cpuPercent "
                        + cpuPercent + " within 1..100");
            }
        }

        /** No limits, Go's defaults otherwise (10% extra retained, 1% of a CPU). */
        static final Config NONE = new Config(Long.MAX_VALUE, Long.MAX_VALUE, 10, 1);
    }

    private final PageAlloc pageAlloc;
    private final OsMemory os;
    /**
     * Returns a run to the OS: {@code os.sysUnused}, or under huge-page advice the heap's
     * {@link MHeap.HugeAdvice} (built before this scavenger, over the OS layer alone); a test may
     * watch the calls, and what is held during them.
     */
    private final PageAlloc.ScavengeSink unused;
    private final ReentrantLock lock;
    private final Condition claimsDone;
    final long softLimit;
    final long hardLimit;
    final int retainExtraPercent;
    final int cpuPercent;
    /** Guarded by {@link #lock}: claims whose OS call has not completed. */
    private int inFlight;
    /** Guarded by {@link #lock}: set by {@link #stop()}; no run is claimed or released after. */
    private boolean stopped;

    Scavenger(Config config, PageAlloc pageAlloc, OsMemory os, ReentrantLock heapLock) {
        this(config, pageAlloc, os, heapLock, (b, np) -> os.sysUnused(b, np << PageAlloc.PAGE_SHIFT));
    }

    /** A scavenger that returns runs of pages to the OS with {@code unused} (base, pages). */
    Scavenger(Config config, PageAlloc pageAlloc, OsMemory os, ReentrantLock heapLock, PageAlloc.ScavengeSink unused) {
        this.pageAlloc = pageAlloc;
        this.os = os;
        this.unused = unused;
        this.lock = heapLock;
        this.claimsDone = heapLock.newCondition();
        this.softLimit = config.softLimit();
        this.hardLimit = config.hardLimit();
        this.retainExtraPercent = config.retainExtraPercent();
        this.cpuPercent = config.cpuPercent();
    }

    private void assertLocked() {
        if (CHECK && !lock.isHeldByCurrentThread()) {
            throw new IllegalStateException("scavenger: the heap lock is not held by " + Thread.currentThread());
        }
    }

    /** Ready heap bytes now (heap lock held). */
    long retained() {
        assertLocked();
        return os.bytes(MemState.READY, Purpose.HEAP);
    }

    /** The retained-bytes goal now (heap lock held). */
    long goal() {
        assertLocked();
        long inUse = pageAlloc.inUsePages() << PageAlloc.PAGE_SHIFT;
        long g = inUse + inUse / 100 * retainExtraPercent;
        if (softLimit != Long.MAX_VALUE) {
            g = Math.min(g, softLimit / 100 * 95);
        }
        return g;
    }

    /**
     * One background cycle: releases free pages toward the goal for at most {@code budgetNanos}.
     * Returns bytes released. Heap lock not held.
     */
    long backgroundCycle(long budgetNanos) {
        long start = System.nanoTime();
        long released = 0;
        for (;;) {
            long want;
            lock.lock();
            try {
                long excess = retained() - goal();
                if (stopped || excess <= 0) {
                    break;
                }
                want = Math.min(BATCH_PAGES, (excess + PageAlloc.PAGE_SIZE - 1) >>> PageAlloc.PAGE_SHIFT);
            } finally {
                lock.unlock();
            }
            long n = releaseOneRun(want);
            released += n << PageAlloc.PAGE_SHIFT;
            if (n == 0 || System.nanoTime() - start > budgetNanos) {
                break;
            }
        }
        lock.lock();
        try {
            record(released, retained(), goal(), System.nanoTime() - start, "background");
        } finally {
            lock.unlock();
        }
        return released;
    }

    /**
     * Releases every free page now (Go's debug.FreeOSMemory after its GC), run by run with the
     * lock dropped for each OS call; returns bytes released. Heap lock not held.
     */
    long releaseAll() {
        long start = System.nanoTime();
        long pages = 0;
        for (long n; (n = releaseOneRun(BATCH_PAGES)) > 0; ) {
            pages += n;
        }
        lock.lock();
        try {
            // A run the background cycle claimed is not released until its call completes: wait,
            // so that every page free when this began is back with the OS when it returns.
            awaitClaims();
            record(pages << PageAlloc.PAGE_SHIFT, retained(), goal(), System.nanoTime() - start, "release");
        } finally {
            lock.unlock();
        }
        return pages << PageAlloc.PAGE_SHIFT;
    }

    /**
     * Claims the highest run of at most {@code maxPages} free, unscavenged pages under the lock,
     * returns it to the OS with the lock dropped, and frees it again as scavenged. Returns the
     * run's pages (0 if there was none, or the scavenger is stopped). If the OS call throws, the
     * run goes back as it was and the exception propagates.
     */
    private long releaseOneRun(long maxPages) {
        long base;
        long n;
        lock.lock();
        try {
            if (stopped) {
                return 0;
            }
            base = pageAlloc.scavengeClaim(maxPages);
            if (base == 0) {
                return 0;
            }
            n = pageAlloc.lastClaimPages();
            inFlight++;
        } finally {
            lock.unlock();
        }
        boolean ok = false;
        try {
            unused.release(base, n);
            ok = true;
        } finally {
            lock.lock();
            try {
                pageAlloc.scavengeComplete(base, n, ok);
                if (--inFlight == 0) {
                    claimsDone.signalAll();
                }
            } finally {
                lock.unlock();
            }
        }
        return n;
    }

    /**
     * On the allocation path (heap lock held, once): before taking {@code bytes} more Ready
     * memory, release free pages so that Ready memory stays under the soft limit, and refuse with
     * MemoryLimitExceededError if it cannot stay under the hard limit. Pessimistic (it assumes
     * every page taken was scavenged), which makes the hard check exact: once every free page is
     * released, every page taken will be.
     *
     * <p>The release is Go's (1.19+) allocation-path scavenge, with the heap lock dropped: the
     * runs to release are claimed under the lock ({@link PageAlloc#scavengeClaim}: nobody
     * allocates them, and {@link #awaitClaims} waits for them), the lock is dropped for the OS
     * calls, retaken to complete the claims, and the check starts again from the figures then
     * (other threads may have allocated or freed meanwhile). It ends when the request fits, or
     * nothing is left to claim (then refused past the hard limit; past the soft limit alone, let
     * through). So the caller must read nothing it read before the call as still true after it.
     */
    void makeRoom(long bytes) {
        assertLocked();
        long limit = Math.min(softLimit, hardLimit);
        if (limit == Long.MAX_VALUE) {
            return;
        }
        long released = 0;
        try {
            for (;;) {
                if (stopped) {
                    return;
                }
                awaitClaims(); // a run in flight is Ready in the OS layer's count until its call completes
                long ready = retained();
                if (ready + bytes <= limit) {
                    return;
                }
                long want = (ready + bytes - limit + PageAlloc.PAGE_SIZE - 1) >>> PageAlloc.PAGE_SHIFT;
                long[] runs = claim(want);
                if (runs.length == 0) {
                    if (ready + bytes > hardLimit) {
                        throw new MemoryLimitExceededError(hardLimit, ready, bytes);
                    }
                    return; // past the soft limit alone, with nothing left to release: it goes through
                }
                released += releaseClaimed(runs) << PageAlloc.PAGE_SHIFT;
            }
        } finally {
            record(released, retained(), limit - bytes, 0, "sync");
        }
    }

    /**
     * Claims runs of free, unscavenged pages, highest first, up to {@code pages} in all (lock
     * held); each counts as in flight until {@link #releaseClaimed} completes it. As
     * {base, pages} pairs.
     */
    private long[] claim(long pages) {
        long[] runs = new long[8];
        int n = 0;
        for (long got = 0; got < pages; ) {
            long base = pageAlloc.scavengeClaim(pages - got);
            if (base == 0) {
                break;
            }
            if (n == runs.length) {
                runs = java.util.Arrays.copyOf(runs, 2 * n);
            }
            runs[n++] = base;
            runs[n++] = pageAlloc.lastClaimPages();
            got += pageAlloc.lastClaimPages();
            inFlight++;
        }
        return java.util.Arrays.copyOf(runs, n);
    }

    /**
     * Returns the claimed {@code runs} to the OS with the lock dropped, then completes each claim
     * (as released, or as it was if its call failed or was not made) in one hold of the lock.
     * Lock held once on entry and on return; if a call throws, the exception propagates after
     * every claim is completed. Returns the pages released.
     */
    private long releaseClaimed(long[] runs) {
        if (CHECK && lock.getHoldCount() != 1) {
            throw new IllegalStateException("scavenger: makeRoom drops the heap lock for its OS calls, but it is held "
                    + lock.getHoldCount() + " times");
        }
        int ok = 0;
        lock.unlock();
        try {
            for (; ok < runs.length; ok += 2) {
                unused.release(runs[ok], runs[ok + 1]);
            }
        } finally {
            lock.lock();
            for (int i = 0; i < runs.length; i += 2) {
                pageAlloc.scavengeComplete(runs[i], runs[i + 1], i < ok);
                inFlight--;
            }
            if (inFlight == 0) {
                claimsDone.signalAll();
            }
        }
        long pages = 0;
        for (int i = 1; i < runs.length; i += 2) {
            pages += runs[i];
        }
        return pages;
    }

    /**
     * Announces an OS call on heap memory that the caller makes with the heap lock dropped (heap
     * lock held now): {@link #awaitClaims} and {@link #stop} wait for its {@link #endOsCall}.
     * False, with nothing announced, once the scavenger is stopped (the heap is being released).
     */
    boolean beginOsCall() {
        assertLocked();
        if (stopped) {
            return false;
        }
        inFlight++;
        return true;
    }

    /** The announced OS call is done (heap lock held). */
    void endOsCall() {
        assertLocked();
        if (--inFlight == 0) {
            claimsDone.signalAll();
        }
    }

    /** Whether {@link #stop()} was called (heap lock held): the heap is being released. */
    boolean isStopped() {
        assertLocked();
        return stopped;
    }

    /** Waits (heap lock held, parked on it) until no claimed run is in flight. */
    void awaitClaims() {
        assertLocked();
        while (inFlight > 0) {
            claimsDone.awaitUninterruptibly();
        }
    }

    /** Stops for good (heap lock held): waits for runs in flight, then claims nothing more. */
    void stop() {
        assertLocked();
        stopped = true;
        awaitClaims();
    }

    /** Reports one cycle (heap lock held). */
    private void record(long released, long retained, long goal, long nanos, String kind) {
        if (released == 0 && !"background".equals(kind)) {
            return;
        }
        HeapEvents.Scavenge e = new HeapEvents.Scavenge();
        if (e.shouldCommit()) {
            e.kind = kind;
            e.released = released;
            e.retained = retained;
            e.goal = goal;
            e.workNanos = nanos;
            e.commit();
        }
        if (released > 0 || SCAVTRACE) {
            String line = "scav " + kind + ": released " + (released >> 10) + " KiB, retained " + (retained >> 10)
                    + " KiB, goal " + (goal >> 10) + " KiB, in use " + ((pageAlloc.inUsePages() << PageAlloc.PAGE_SHIFT) >> 10)
                    + " KiB, " + nanos / 1000 + " us";
            if (SCAVTRACE) {
                System.err.println("gomem: " + line);
            }
            if (LOG.isLoggable(System.Logger.Level.DEBUG)) {
                LOG.log(System.Logger.Level.DEBUG, line);
            }
        }
    }
}
