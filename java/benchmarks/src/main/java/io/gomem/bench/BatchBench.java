package io.gomem.bench;

import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Allocations in batches, per allocator ({@link Allocator}): {@value #BATCH} allocations of one
 * size, then {@value #BATCH} frees, either in allocation order ({@code inOrder}) or in a fixed
 * random order ({@code randomOrder}, a permutation drawn once per trial with a fixed seed).
 * Unlike the pair benchmarks, the allocator must hold a thousand live blocks and cannot hand the
 * same block back each time, so this shows how its caches and free lists behave. The score is
 * per allocate + free pair ({@code @OperationsPerInvocation(1000)}). Single thread.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow"})
public class BatchBench {

    static final int BATCH = 1000;

    @Param({"gomem", "malloc", "mallocCritical", "jemalloc", "jemallocCritical", "unsafe", "nettyPooled"})
    public String allocator;

    @Param({"16", "64", "256", "1024", "4096", "32768", "262144"})
    public long size;

    private Allocator alloc;
    private final long[] blocks = new long[BATCH];
    private final int[] freeOrder = new int[BATCH];

    @Setup
    public void setup() throws Throwable {
        alloc = Allocator.create(allocator);
        for (int i = 0; i < BATCH; i++) {
            freeOrder[i] = i;
        }
        SplittableRandom random = new SplittableRandom(42);
        for (int i = BATCH - 1; i > 0; i--) {
            int j = random.nextInt(i + 1);
            int t = freeOrder[i];
            freeOrder[i] = freeOrder[j];
            freeOrder[j] = t;
        }
    }

    @TearDown
    public void tearDown() {
        alloc.close();
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    public void inOrder() {
        Allocator a = alloc;
        long[] b = blocks;
        long s = size;
        for (int i = 0; i < BATCH; i++) {
            b[i] = a.allocate(s);
        }
        for (int i = 0; i < BATCH; i++) {
            a.free(b[i]);
        }
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    public void randomOrder() {
        Allocator a = alloc;
        long[] b = blocks;
        int[] order = freeOrder;
        long s = size;
        for (int i = 0; i < BATCH; i++) {
            b[i] = a.allocate(s);
        }
        for (int i = 0; i < BATCH; i++) {
            a.free(b[order[i]]);
        }
    }
}
