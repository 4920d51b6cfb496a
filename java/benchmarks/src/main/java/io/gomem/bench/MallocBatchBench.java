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
import org.openjdk.jmh.annotations.Warmup;

/**
 * glibc {@code malloc} in batches: {@value #BATCH} allocations of one size, then
 * {@value #BATCH} frees, either in allocation order ({@code inOrder}) or in a fixed random
 * order ({@code randomOrder}, a permutation drawn once per trial with a fixed seed). Unlike
 * the pair benchmark, the allocator must hold a thousand live blocks and cannot hand the same
 * block back each time, so this shows bin and tcache behaviour. The score is per
 * malloc + free pair ({@code @OperationsPerInvocation(1000)}). Plain downcall handles.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED"})
public class MallocBatchBench {

    static final int BATCH = 1000;
    static final NativeAllocator GLIBC = MallocBench.GLIBC;

    @Param({"16", "64", "256", "1024", "4096", "32768", "262144"})
    public long size;

    private final long[] blocks = new long[BATCH];
    private final int[] freeOrder = new int[BATCH];

    @Setup
    public void setup() throws Throwable {
        GLIBC.checkUsable("malloc/free should always be found in the default lookup");
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

    @Benchmark
    @OperationsPerInvocation(BATCH)
    public void inOrder() throws Throwable {
        long[] b = blocks;
        for (int i = 0; i < BATCH; i++) {
            b[i] = (long) GLIBC.malloc().invokeExact(size);
        }
        for (int i = 0; i < BATCH; i++) {
            GLIBC.free().invokeExact(b[i]);
        }
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    public void randomOrder() throws Throwable {
        long[] b = blocks;
        int[] order = freeOrder;
        for (int i = 0; i < BATCH; i++) {
            b[i] = (long) GLIBC.malloc().invokeExact(size);
        }
        for (int i = 0; i < BATCH; i++) {
            GLIBC.free().invokeExact(b[order[i]]);
        }
    }
}
