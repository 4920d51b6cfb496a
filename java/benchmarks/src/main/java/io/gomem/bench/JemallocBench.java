package io.gomem.bench;

import java.lang.foreign.Arena;
import java.lang.foreign.Linker;
import java.lang.foreign.SymbolLookup;
import java.nio.file.Files;
import java.nio.file.Path;
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
 * the library loaded with {@code SymbolLookup.libraryLookup} (Debian's {@code libjemalloc2};
 * only the benchmark's calls go to it, the JVM itself keeps glibc). Plain and
 * {@code critical(false)} handles, one and two threads, as in {@link MallocBench}.
 *
 * <p>Two things must be in place, or {@code @Setup} fails with a message saying which:
 * <ul>
 *   <li>the library: {@code apt-get install libjemalloc2} (path
 *       {@value #DEFAULT_PATH}; another one with {@code -Dgomem.bench.jemalloc=PATH});</li>
 *   <li>room for its initial-exec TLS: loading it after start-up fails with "cannot allocate
 *       memory in static TLS block" unless the JVM was started with
 *       {@code GLIBC_TUNABLES=glibc.rtld.optional_static_tls=16384} in its environment. glibc
 *       reads tunables only when a process starts and JMH 1.37 cannot set a fork's
 *       environment, so set it for the JMH launcher, whose environment the forks inherit:
 *       {@code java/benchmarks/run.sh} does that.</li>
 * </ul>
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED"})
@SuppressWarnings("restricted") // libraryLookup: native access is granted to the fork
public class JemallocBench {

    static final String DEFAULT_PATH = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2";
    static final String TUNABLE = "GLIBC_TUNABLES=glibc.rtld.optional_static_tls=16384";

    static final NativeAllocator JEMALLOC;
    static final NativeAllocator JEMALLOC_CRITICAL;

    static {
        Path path = Path.of(System.getProperty("gomem.bench.jemalloc", DEFAULT_PATH));
        NativeAllocator plain;
        NativeAllocator critical;
        if (!Files.exists(path)) {
            plain = NativeAllocator.failed("jemalloc", path + " does not exist");
            critical = plain;
        } else {
            try {
                SymbolLookup lookup = SymbolLookup.libraryLookup(path, Arena.global());
                plain = NativeAllocator.bind("jemalloc", lookup);
                critical = NativeAllocator.bind("jemalloc (critical)", lookup, Linker.Option.critical(false));
            } catch (IllegalArgumentException | IllegalCallerException e) {
                // The JDK's message omits dlerror(); for libjemalloc2 it is almost always
                // "cannot allocate memory in static TLS block" (no tunable at JVM start).
                plain = NativeAllocator.failed("jemalloc", "loading " + path + " failed (" + e.getMessage()
                        + "); if the file is fine, dlopen most likely ran out of static TLS space");
                critical = plain;
            }
        }
        JEMALLOC = plain;
        JEMALLOC_CRITICAL = critical;
    }

    @Param({"16", "64", "256", "1024", "4096", "32768", "262144"})
    public long size;

    @Setup
    public void setup() throws Throwable {
        String fix = "Install it with `apt-get install libjemalloc2` (or point -Dgomem.bench.jemalloc at the .so), and"
                + " start the JMH launcher with " + TUNABLE + " in its environment (java/benchmarks/run.sh does);"
                + " this JVM has GLIBC_TUNABLES=" + System.getenv("GLIBC_TUNABLES");
        JEMALLOC.checkUsable(fix);
        JEMALLOC_CRITICAL.checkUsable(fix);
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
