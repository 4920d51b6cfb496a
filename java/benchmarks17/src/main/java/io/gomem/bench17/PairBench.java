package io.gomem.bench17;

import io.gomem.GoHeap;
import io.gomem.os.OsMemory;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.util.concurrent.TimeUnit;

/**
 * The raw allocate + free pair (16 B to 1 KiB, one thread), through the heap's own methods
 * ({@code raw}) and on a held P ({@code held}), compiled for JDK 17 so that one jar runs it on
 * JDK 17 (the jar's base: JNI backend, Unsafe) and on JDK 25 (the Panama part). The fast path
 * makes no OS call, so the backend should not show; what differs is the JIT of each JDK.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 2, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED"})
public class PairBench {
    @Param({"16", "256", "1024"})
    public long size;

    GoHeap heap;
    GoHeap.Local local;

    @Setup
    public void setup() {
        heap = GoHeap.builder().build();
        local = heap.local();
        System.out.println("# Java " + Runtime.version() + ", OS backend " + OsMemory.backend());
    }

    @TearDown
    public void tearDown() {
        local.close();
        heap.close();
    }

    @Benchmark
    public long raw() {
        long p = heap.allocate(size);
        heap.free(p);
        return p;
    }

    @Benchmark
    public long held() {
        long p = local.allocate(size);
        local.free(p);
        return p;
    }
}
