package io.gomem.bench;

import io.gomem.GoHeap;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Threads;
import org.openjdk.jmh.annotations.Warmup;

import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * {@link BatchBench}'s batches (1000 allocations of one size, then 1000 frees in allocation or a
 * fixed random order) on one heap shared by the benchmark threads, each thread in a
 * {@link GoHeap#local()} scope of its own ({@code held*}) or on the heap's own methods
 * ({@code raw*}); the {@code 2t} variants run two threads at once, so the per-thread score against
 * the one-thread score shows what two threads cost each other. Score: per allocate + free pair.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED"})
public class HeldBatchBench {
    static final int BATCH = 1000;

    @Param({"16", "256", "1024", "4096"})
    public long size;

    GoHeap heap;

    @Setup
    public void setup() {
        heap = GoHeap.builder().build();
    }

    /** The heap closes after this state's teardown and the last scope's (see {@link ClosesLast}). */
    final ClosesLast closing = new ClosesLast(() -> heap.close());

    @TearDown
    public void tearDown() {
        closing.benchmarkTornDown();
    }

    /** One thread's scope (opened and closed on the thread itself), blocks and free order. */
    @State(Scope.Thread)
    public static class Mine {
        GoHeap.Local local;
        final long[] blocks = new long[BATCH];
        final int[] order = new int[BATCH];

        HeldBatchBench bench;

        @Setup(Level.Trial)
        public void open(HeldBatchBench b) {
            bench = b;
            b.closing.threadSetUp();
            local = b.heap.local();
            for (int i = 0; i < BATCH; i++) {
                order[i] = i;
            }
            SplittableRandom random = new SplittableRandom(42);
            for (int i = BATCH - 1; i > 0; i--) {
                int j = random.nextInt(i + 1);
                int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
        }

        @TearDown(Level.Trial)
        public void close() {
            local.close();
            bench.closing.threadTornDown();
        }
    }

    static void heldBatch(GoHeap.Local a, long[] b, int[] order, long s) {
        for (int i = 0; i < BATCH; i++) {
            b[i] = a.allocate(s);
        }
        for (int i = 0; i < BATCH; i++) {
            a.free(b[order == null ? i : order[i]]);
        }
    }

    static void rawBatch(GoHeap a, long[] b, int[] order, long s) {
        for (int i = 0; i < BATCH; i++) {
            b[i] = a.allocate(s);
        }
        for (int i = 0; i < BATCH; i++) {
            a.free(b[order == null ? i : order[i]]);
        }
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    public void heldInOrder(Mine m) {
        heldBatch(m.local, m.blocks, null, size);
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    @Threads(2)
    public void heldInOrder2t(Mine m) {
        heldBatch(m.local, m.blocks, null, size);
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    public void heldRandomOrder(Mine m) {
        heldBatch(m.local, m.blocks, m.order, size);
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    @Threads(2)
    public void heldRandomOrder2t(Mine m) {
        heldBatch(m.local, m.blocks, m.order, size);
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    public void rawInOrder(Mine m) {
        rawBatch(heap, m.blocks, null, size);
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    @Threads(2)
    public void rawInOrder2t(Mine m) {
        rawBatch(heap, m.blocks, null, size);
    }
}
