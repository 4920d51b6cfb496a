package io.gomem.heap;

import io.gomem.internal.Options;
import io.gomem.os.MemState;
import io.gomem.os.MemoryLimitExceededError;
import io.gomem.os.Purpose;

/**
 * Returns free heap pages to the OS (Go's scavenger, {@code mgcscavenge.go}): in the background,
 * paced to a small CPU budget, down to a goal; synchronously on the allocation path when the heap
 * would pass its soft memory limit; and all at once on request ({@link #releaseAll()}).
 *
 * <h2>Goal</h2>
 * Ready heap memory ("retained", what the OS layer holds Ready for the heap) should be at most
 * {@code inUse × (100 + retainExtraPercent) / 100}, and at most 95% of the soft memory limit
 * (Go leaves the same 5% of headroom under GOMEMLIMIT). {@code inUse} is the bytes in spans.
 *
 * <h2>Pacing</h2>
 * Each background cycle may work for {@code period × cpuPercent / 100} (10 ms a second at the
 * default 1%), releasing {@link #BATCH_PAGES} pages per heap-lock hold, highest addresses first.
 *
 * <h2>Guards</h2>
 * Only final configuration: a cycle's figures go out as a JFR event, a scavtrace line and a
 * DEBUG log line, and are not kept. Every method takes the heap lock, or requires it.
 */
final class Scavenger {
    /** Pages released per heap-lock hold: 512 KiB. */
    static final int BATCH_PAGES = 64;

    private static final boolean SCAVTRACE = Options.debugFlag("scavtrace");
    private static final System.Logger LOG = System.getLogger("io.gomem.heap");

    private final MHeap heap;
    final long softLimit;
    final long hardLimit;
    final int retainExtraPercent;
    final int cpuPercent;

    Scavenger(MHeap heap, long softLimit, long hardLimit, int retainExtraPercent, int cpuPercent) {
        if (softLimit <= 0 || hardLimit <= 0) {
            throw new IllegalArgumentException("memory limits must be positive: soft " + softLimit + ", hard " + hardLimit);
        }
        if (retainExtraPercent < 0 || cpuPercent < 1 || cpuPercent > 100) {
            throw new IllegalArgumentException("retainExtraPercent " + retainExtraPercent + " must be >= 0 and cpuPercent "
                    + cpuPercent + " within 1..100");
        }
        this.heap = heap;
        this.softLimit = softLimit;
        this.hardLimit = hardLimit;
        this.retainExtraPercent = retainExtraPercent;
        this.cpuPercent = cpuPercent;
    }

    /** Ready heap bytes now (heap lock held). */
    private long retained() {
        return heap.os.bytes(MemState.READY, Purpose.HEAP);
    }

    /** The retained-bytes goal now (heap lock held). */
    long goal() {
        long inUse = heap.pageAlloc.inUsePages() << MHeap.PAGE_SHIFT;
        long g = inUse + inUse / 100 * retainExtraPercent;
        if (softLimit != Long.MAX_VALUE) {
            g = Math.min(g, softLimit / 100 * 95);
        }
        return g;
    }

    /**
     * One background cycle: releases free pages toward the goal for at most {@code budgetNanos}.
     * Returns bytes released.
     */
    long backgroundCycle(long budgetNanos) {
        long start = System.nanoTime();
        long released = 0;
        long retained;
        long goal;
        for (;;) {
            heap.lock.lock();
            try {
                if (heap.isReleased()) {
                    return released;
                }
                retained = retained();
                goal = goal();
                if (retained <= goal) {
                    break;
                }
                long pages = Math.min(BATCH_PAGES, (retained - goal + MHeap.PAGE_SIZE - 1) >>> MHeap.PAGE_SHIFT);
                long n = heap.scavengeLocked(pages);
                released += n << MHeap.PAGE_SHIFT;
                if (n == 0) {
                    retained = retained();
                    break; // nothing free left to release
                }
            } finally {
                heap.lock.unlock();
            }
            if (System.nanoTime() - start > budgetNanos) {
                heap.lock.lock();
                try {
                    retained = retained();
                    goal = goal();
                } finally {
                    heap.lock.unlock();
                }
                break;
            }
        }
        record(released, retained, goal, System.nanoTime() - start, "background");
        return released;
    }

    /** Releases every free page now (Go's debug.FreeOSMemory after its GC); returns bytes released. */
    long releaseAll() {
        long start = System.nanoTime();
        heap.lock.lock();
        try {
            long n = heap.scavengeLocked(Long.MAX_VALUE) << MHeap.PAGE_SHIFT;
            record(n, retained(), goal(), System.nanoTime() - start, "release");
            return n;
        } finally {
            heap.lock.unlock();
        }
    }

    /**
     * On the allocation path (heap lock held): before taking {@code bytes} more Ready memory,
     * release free pages so that Ready memory stays under the soft limit, and refuse with
     * MemoryLimitExceededError if it cannot stay under the hard limit. Pessimistic (it
     * assumes every page taken was scavenged), which makes the hard check exact: once every free
     * page is released, every page taken will be.
     */
    void makeRoom(long bytes) {
        assert heap.lock.isHeldByCurrentThread();
        long limit = Math.min(softLimit, hardLimit);
        if (limit == Long.MAX_VALUE) {
            return;
        }
        long ready = retained();
        if (ready + bytes > limit) {
            long excess = ready + bytes - limit;
            long n = heap.scavengeLocked((excess + MHeap.PAGE_SIZE - 1) >>> MHeap.PAGE_SHIFT);
            record(n << MHeap.PAGE_SHIFT, retained(), limit - bytes, 0, "sync");
            ready = retained();
            if (ready + bytes > hardLimit) {
                throw new MemoryLimitExceededError(hardLimit, ready, bytes);
            }
        }
    }

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
                    + " KiB, goal " + (goal >> 10) + " KiB, in use " + ((heap.pageAlloc.inUsePages() << MHeap.PAGE_SHIFT) >> 10)
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
