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
 * jemalloc's {@code malloc} immediately followed by {@code free}, through FFM downcalls into
 * the library loaded by {@link Jemalloc} (Debian's {@code libjemalloc2}; only the benchmark's
 * calls go to it, the JVM itself keeps glibc). Plain and {@code critical(false)} handles, one
 * and two threads, as in {@link MallocBench}. Needs the library and
 * {@code GLIBC_TUNABLES=glibc.rtld.optional_static_tls=16384} in the launcher's environment
 * ({@code java/benchmarks/run.sh} sets it); otherwise {@code @Setup} fails saying what to do.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED"})
public class JemallocBench {

    static final NativeAllocator JEMALLOC = Jemalloc.PLAIN;
    static final NativeAllocator JEMALLOC_CRITICAL = Jemalloc.CRITICAL;

    @Param({"16", "64", "256", "1024", "4096", "32768", "262144"})
    public long size;

    @Setup
    public void setup() throws Throwable {
        Jemalloc.check();
    }
    @Benchmark
    public void jemalloc() throws Throwable {
        long p = (long) JEMALLOC.malloc().invokeExact(size);
        JEMALLOC.free().invokeExact(p);
    }

    @Benchmark
    public void jemallocCritical() throws Throwable {
        long p = (long) JEMALLOC_CRITICAL.malloc().invokeExact(size);
        JEMALLOC_CRITICAL.free().invokeExact(p);
    }

    @Benchmark
    @Threads(2)
    public void jemalloc2t() throws Throwable {
        jemalloc();
    }

    @Benchmark
    @Threads(2)
    public void jemallocCritical2t() throws Throwable {
        jemallocCritical();
    }
}
