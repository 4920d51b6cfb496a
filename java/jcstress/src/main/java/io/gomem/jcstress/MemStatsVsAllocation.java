package io.gomem.jcstress;

import io.gomem.GoHeap;
import io.gomem.stats.MemStats;
import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.Arbiter;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.JJJ_Result;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

/**
 * {@code memStats()} racing the first allocation (64 bytes) of a fresh heap. That allocation
 * takes a span of one 8 KiB page from the page heap into its P's cache (the page counted under
 * the heap lock), then hands out its object; the object is counted when the P is flushed. The
 * snapshot does not stop the world: it flushes the P if its lease is free, then cuts the
 * counters under the heap lock. So it may see nothing yet, the page without its object (the P
 * was busy: its object counts at the next flush), or both; never an object without its page
 * (heapAlloc above heapInuse: a torn snapshot). The result is (heapObjects, heapAlloc, heapInuse).
 *
 * <p>Each state has its own heap of one P, closed by the arbiter: jcstress runs the actors of
 * different states at once, so a heap shared between states would count their objects too.
 */
@JCStressTest
@Outcome(id = "0, 0, 0", expect = ACCEPTABLE, desc = "the snapshot came first")
@Outcome(id = "0, 0, 8192", expect = ACCEPTABLE, desc = "the span was taken; its object counts at the P's next flush")
@Outcome(id = "1, 64, 8192", expect = ACCEPTABLE, desc = "the allocation came first")
@Outcome(expect = FORBIDDEN, desc = "a torn snapshot: an object counted without its page, or a figure half-written")
@State
public class MemStatsVsAllocation {
    private final GoHeap heap = GoHeap.builder().procs(1).build();

    @Actor
    public void allocate() {
        heap.allocate(64);
    }

    @Actor
    public void memStats(JJJ_Result r) {
        MemStats m = heap.memStats();
        r.r1 = m.heapObjects();
        r.r2 = m.heapAlloc();
        r.r3 = m.heapInuse();
    }

    @Arbiter
    public void close() {
        heap.close();
    }
}
