package io.gomem.bench;

import java.lang.invoke.MethodHandle;
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
 * {@code sun.misc.Unsafe.allocateMemory} immediately followed by {@code freeMemory}: the JDK's
 * own path to malloc/free (argument checks, then a VM call into {@code os::malloc}, which adds
 * NMT bookkeeping when native memory tracking is on), reached through {@link UnsafeMemory}.
 * The fork passes {@code --sun-misc-unsafe-memory-access=allow}; on a JDK that no longer allows
 * these methods, {@code @Setup} fails saying so. The {@code *2t} variant runs on two threads.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow"})
public class UnsafeBench {

    private static final MethodHandle ALLOCATE = UnsafeMemory.ALLOCATE;
    private static final MethodHandle FREE = UnsafeMemory.FREE;

    @Param({"16", "64", "256", "1024", "4096", "32768", "262144"})
    public long size;

    @Setup
    public void setup() throws Throwable {
        UnsafeMemory.check();
    }

    @Benchmark
    public void unsafe() throws Throwable {
        long p = (long) ALLOCATE.invokeExact(size);
        FREE.invokeExact(p);
    }

    @Benchmark
    @Threads(2)
    public void unsafe2t() throws Throwable {
        unsafe();
    }
}
