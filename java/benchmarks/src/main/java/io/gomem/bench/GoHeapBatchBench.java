package io.gomem.bench;

import io.gomem.GoHeap;
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

import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * gomem in batches, as {@link MallocBatchBench} does for glibc: {@value #BATCH} raw allocations
 * of one size, then {@value #BATCH} frees in allocation order or in a fixed random order. The
 * score is per allocate + free pair.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED"})
public class GoHeapBatchBench {
    static final int BATCH = MallocBatchBench.BATCH;

    @Param({"16", "64", "256", "1024", "4096", "32768", "262144"})
    public long size;

    private GoHeap heap;
    private final long[] blocks = new long[BATCH];
    private final int[] freeOrder = new int[BATCH];

    @Setup
    public void setup() {
        heap = GoHeap.builder().build();
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
        heap.close();
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    public void inOrder() {
        long[] b = blocks;
        for (int i = 0; i < BATCH; i++) {
            b[i] = heap.allocate(size);
        }
        for (int i = 0; i < BATCH; i++) {
            heap.free(b[i]);
        }
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    public void randomOrder() {
        long[] b = blocks;
        int[] order = freeOrder;
        for (int i = 0; i < BATCH; i++) {
            b[i] = heap.allocate(size);
        }
        for (int i = 0; i < BATCH; i++) {
            heap.free(b[order[i]]);
        }
    }
}
