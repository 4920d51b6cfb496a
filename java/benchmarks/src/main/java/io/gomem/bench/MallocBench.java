package io.gomem.bench;

import java.util.concurrent.TimeUnit;
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
import org.openjdk.jmh.annotations.Threads;
import org.openjdk.jmh.annotations.Warmup;

/**
 * glibc {@code malloc} immediately followed by {@code free} of the same block, through FFM
 * downcalls: once through a plain downcall handle (the thread changes to native state and
 * back) and once through a handle linked with {@code Linker.Option.critical(false)} (no state
 * change, no safepoint poll; allowed because malloc/free neither block for long nor call back
 * into Java). One op = one malloc + one free. The {@code *2t} variants run the same pair on two
 * threads at once (glibc gives each thread its own tcache and, under contention, its own arena).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED"})
public class MallocBench {

    static final NativeAllocator GLIBC = Glibc.PLAIN;
    static final NativeAllocator GLIBC_CRITICAL = Glibc.CRITICAL;

    @Param({"16", "64", "256", "1024", "4096", "32768", "262144"})
    public long size;

    @Setup
    public void setup() throws Throwable {
        GLIBC.checkUsable(Glibc.FIX);
        GLIBC_CRITICAL.checkUsable(Glibc.FIX);
    }

    @Benchmark
    public void malloc() throws Throwable {
        long p = (long) GLIBC.malloc().invokeExact(size);
        GLIBC.free().invokeExact(p);
    }

    @Benchmark
    public void mallocCritical() throws Throwable {
        long p = (long) GLIBC_CRITICAL.malloc().invokeExact(size);
        GLIBC_CRITICAL.free().invokeExact(p);
    }

    @Benchmark
    @Threads(2)
    public void malloc2t() throws Throwable {
        malloc();
    }

    @Benchmark
    @Threads(2)
    public void mallocCritical2t() throws Throwable {
        mallocCritical();
    }
}
