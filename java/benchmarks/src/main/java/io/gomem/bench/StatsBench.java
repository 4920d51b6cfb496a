package io.gomem.bench;

import io.gomem.GoHeap;
import io.gomem.stats.MemStats;
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
 * What {@code memStats()} costs while 4 threads allocate and free (16 B pairs, each on its own
 * P; 4 Ps), and what it costs them: in group {@code withStats} one more thread takes snapshots
 * back to back; group {@code alone} is the same 4 threads without it. Sample time, so that the
 * allocating threads' tail (p99.9, p99.99, max) shows any pause a snapshot causes. On this
 * 2-core machine the 5 threads share 2 cores: a thread's time includes time descheduled, in both
 * groups alike. Group {@code withStats1} is one allocating thread and the reader, two threads
 * on two cores, so that neither is descheduled for the other: the snapshot's own cost.
 */
@State(Scope.Group)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED"})
public class StatsBench {
    GoHeap heap;

    @Setup
    public void setup() {
        heap = GoHeap.builder().procs(4).build();
    }

    @TearDown
    public void tearDown() {
        heap.close();
    }

    @Benchmark
    @Group("withStats")
    @GroupThreads(4)
    public long allocFree() {
        long p = heap.allocate(16);
        heap.free(p);
        return p;
    }

    @Benchmark
    @Group("withStats")
    @GroupThreads(1)
    public MemStats memStats() {
        return heap.memStats();
    }

    @Benchmark
    @Group("withStats1")
    @GroupThreads(1)
    public long allocFree1() {
        long p = heap.allocate(16);
        heap.free(p);
        return p;
    }

    @Benchmark
    @Group("withStats1")
    @GroupThreads(1)
    public MemStats memStats1() {
        return heap.memStats();
    }

    @Benchmark
    @Group("alone")
    @GroupThreads(4)
    public long allocFreeAlone() {
        long p = heap.allocate(16);
        heap.free(p);
        return p;
    }
}
