package io.gomem.jcstress;

import io.gomem.GoHeap;
import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.L_Result;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

/**
 * {@code close()} racing a zeroed 1 MiB allocation whose span must be cleared. The allocation
 * holds its P's lease while it clears the block, and close takes every lease before it unmaps
 * the heap: so the allocation either completes, clearing mapped memory, before close unmaps
 * anything, or finds the heap closed and throws IllegalStateException. A clear of unmapped memory
 * would kill the forked VM with SIGSEGV, which jcstress reports as an error and
 * {@link RunJcstress} turns into a failed build.
 *
 * <p>Each state has its own heap of one P. Its constructor allocates 1 MiB (a large span, fresh
 * pages, which need no clear) and frees it, so that the span the actor gets back is marked as
 * holding old data and {@code allocateZeroed} clears the whole MiB (first touches included)
 * under its lease: the widest window the zeroing path has for a racing close.
 */
@JCStressTest
@Outcome(id = "allocated", expect = ACCEPTABLE, desc = "the allocation and its clear ran before close took the lease")
@Outcome(id = "refused", expect = ACCEPTABLE, desc = "close took the lease first: the allocation throws IllegalStateException")
@Outcome(expect = FORBIDDEN, desc = "anything else")
@State
public class CloseVsZeroedAllocation {
    static final long SIZE = 1 << 20;

    private final GoHeap heap = GoHeap.builder().procs(1).build();

    public CloseVsZeroedAllocation() {
        heap.free(heap.allocate(SIZE)); // the span goes back dirty: the next zeroed allocation clears it
    }

    @Actor
    public void allocate(L_Result r) {
        try {
            heap.allocateZeroed(SIZE);
            r.r1 = "allocated";
        } catch (IllegalStateException closed) {
            r.r1 = "refused";
        }
    }

    @Actor
    public void close() {
        heap.close();
    }
}
