package io.gomem.bench;

import io.gomem.GoHeap;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Group;
import org.openjdk.jmh.annotations.GroupThreads;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.util.concurrent.TimeUnit;

/**
 * Allocation on the heap lock while memory goes back to the OS: 2 threads allocate and free
 * 1 MiB objects (too large for a P to keep, so each allocation and free takes the heap lock),
 * writing one byte per 4 KiB page so that the pages are really backed, while one more thread
 * calls {@code releaseMemory()} back to back, which returns those pages with {@code madvise}.
 * Whether the heap lock is held across the {@code madvise} shows in the allocating threads'
 * tail. Group {@code alone}: the same 2 threads without the releasing one. Sample time.
 */
@State(Scope.Group)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED"})
public class ReleaseBench {
    static final long SIZE = 1L << 20;
    GoHeap heap;

    @Setup
    public void setup() {
        heap = GoHeap.builder().procs(2).build();
    }

    @TearDown
    public void tearDown() {
        heap.close();
    }

    private long touchOne() {
        long p = heap.allocate(SIZE);
        java.lang.foreign.MemorySegment s = MixBench.ALL.asSlice(p, SIZE);
        for (long off = 0; off < SIZE; off += 4096) {
            s.set(java.lang.foreign.ValueLayout.JAVA_BYTE, off, (byte) 1);
        }
        heap.free(p);
        return p;
    }

    @Benchmark
    @Group("withRelease")
    @GroupThreads(2)
    public long allocTouchFree() {
        return touchOne();
    }

    @Benchmark
    @Group("withRelease")
    @GroupThreads(1)
    public long release() {
        return heap.releaseMemory();
    }

    @Benchmark
    @Group("alone")
    @GroupThreads(2)
    public long allocTouchFreeAlone() {
        return touchOne();
    }
}
