package io.gomem.bench;

import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Group;
import org.openjdk.jmh.annotations.GroupThreads;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;
import org.openjdk.jmh.infra.Control;

/**
 * Cross-thread frees, per allocator: one thread allocates blocks of one size and hands them
 * through a bounded lock-free ring ({@link SpscRing}, {@value #RING} slots, no allocation) to a
 * second thread, which frees them. JMH group {@code xthread}: method {@code alloc} on one thread,
 * {@code free} on the other. Every block is freed on a thread other than the one that allocated
 * it: the case per-thread caches handle worst (glibc returns it to the allocating thread's arena
 * under that arena's lock, jemalloc to its tcache then the owning arena's bin, gomem to the
 * freeing thread's P cache or the span's central list).
 *
 * <p>The two methods are coupled through the ring, so both settle at the period of the slower
 * side: the group score (the average of both methods' ns/op, which JMH reports as the primary
 * result, with {@code :alloc} and {@code :free} as secondary results) is the time to pass one
 * block from allocation to free when the two run in parallel on two cores. A side that finds the
 * ring full (empty) spins; once JMH ends the iteration ({@code Control.stopMeasurement}) it gives
 * up instead, the producer freeing its block itself, so neither can block the other forever.
 */
@State(Scope.Group)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow"})
public class CrossThreadBench {

    static final int RING = 1024;

    @Param({"gomem", "malloc", "mallocCritical", "jemalloc", "jemallocCritical", "unsafe"})
    public String allocator;

    @Param({"16", "64", "1024"})
    public long size;

    private Allocator alloc;
    private SpscRing ring;

    @Setup(Level.Trial)
    public void setup() throws Throwable {
        alloc = Allocator.create(allocator);
        if (!alloc.threadSafe()) {
            alloc.close();
            throw new IllegalArgumentException(allocator + " cannot free on another thread in this harness");
        }
        ring = new SpscRing(RING);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        ring.drain(alloc::free);
        alloc.close();
    }

    @Benchmark
    @Group("xthread")
    @GroupThreads(1)
    public void alloc(Control control) {
        long p = alloc.allocate(size);
        while (!ring.offer(p)) {
            if (control.stopMeasurement) {
                alloc.free(p);
                return;
            }
            Thread.onSpinWait();
        }
    }

    @Benchmark
    @Group("xthread")
    @GroupThreads(1)
    public void free(Control control) {
        long p;
        while ((p = ring.poll()) == 0) {
            if (control.stopMeasurement) {
                return;
            }
            Thread.onSpinWait();
        }
        alloc.free(p);
    }
}
