package io.gomem.bench;

import io.gomem.GoHeap;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Threads;
import org.openjdk.jmh.annotations.Warmup;

import java.lang.foreign.MemorySegment;
import java.util.concurrent.TimeUnit;

/**
 * gomem's allocate immediately followed by free of the same object, through the raw-address API
 * ({@code raw}: not zeroed, no Java object) and through the MemorySegment API ({@code segment}:
 * zeroed, one MemorySegment per allocation). One op = one allocate + one free. The {@code *2t}
 * variants run the same pair on two threads sharing one heap (two P caches). Same sizes as
 * {@link MallocBench}, to be read side by side with it.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED"})
public class GoHeapBench {

    @Param({"16", "64", "256", "1024", "4096", "32768", "262144"})
    public long size;

    GoHeap heap;
    GoHeap.Segments segments;

    @Setup
    public void setup() {
        heap = GoHeap.builder().build();
        segments = heap.segments();
    }

    /** The heap closes after this state's teardown and the last scope's (see {@link ClosesLast}). */
    final ClosesLast closing = new ClosesLast(() -> heap.close());

    @TearDown
    public void tearDown() {
        closing.benchmarkTornDown();
    }

    @Benchmark
    public long raw() {
        long p = heap.allocate(size);
        heap.free(p);
        return p;
    }

    @Benchmark
    public MemorySegment segment() {
        MemorySegment s = segments.allocate(size, 8);
        segments.free(s);
        return s;
    }

    /** A thread's held P ({@link GoHeap#local()}), opened and closed on the benchmark thread itself. */
    @State(Scope.Thread)
    public static class Held {
        GoHeap.Local local;

        GoHeapBench bench;

        @Setup(Level.Trial)
        public void open(GoHeapBench b) {
            bench = b;
            b.closing.threadSetUp();
            local = b.heap.local();
        }

        @TearDown(Level.Trial)
        public void close() {
            local.close();
            bench.closing.threadTornDown();
        }
    }

    /** The pair on a P the thread holds: no lease, and the free is a local (plain) mark. */
    @Benchmark
    public long held(Held h) {
        long p = h.local.allocate(size);
        h.local.free(p);
        return p;
    }

    @Benchmark
    @Threads(2)
    public long held2t(Held h) {
        long p = h.local.allocate(size);
        h.local.free(p);
        return p;
    }

    @Benchmark
    @Threads(2)
    public long raw2t() {
        long p = heap.allocate(size);
        heap.free(p);
        return p;
    }

    @Benchmark
    @Threads(2)
    public MemorySegment segment2t() {
        MemorySegment s = segments.allocate(size, 8);
        segments.free(s);
        return s;
    }
}
