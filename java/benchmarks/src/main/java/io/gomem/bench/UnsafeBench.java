package io.gomem.bench;

import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.lang.reflect.Field;
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
 * NMT bookkeeping when native memory tracking is on). Reached by reflection on
 * {@code theUnsafe} so nothing is compiled against the internal API. These methods are
 * deprecated for removal (JEP 471) and warn on first use from JDK 24 (JEP 498); the fork
 * passes {@code --sun-misc-unsafe-memory-access=allow}. On a JDK that no longer allows them,
 * {@code @Setup} fails saying so. The {@code *2t} variant runs on two threads.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow"})
public class UnsafeBench {

    private static final MethodHandle ALLOCATE;
    private static final MethodHandle FREE;
    private static final String ERROR;

    static {
        MethodHandle allocate = null;
        MethodHandle free = null;
        String error = null;
        try {
            Class<?> unsafeClass = Class.forName("sun.misc.Unsafe");
            Field theUnsafe = unsafeClass.getDeclaredField("theUnsafe");
            theUnsafe.setAccessible(true);
            Object unsafe = theUnsafe.get(null);
            MethodHandles.Lookup lookup = MethodHandles.lookup();
            allocate = lookup.findVirtual(unsafeClass, "allocateMemory", MethodType.methodType(long.class, long.class))
                    .bindTo(unsafe);
            free = lookup.findVirtual(unsafeClass, "freeMemory", MethodType.methodType(void.class, long.class))
                    .bindTo(unsafe);
        } catch (ReflectiveOperationException | RuntimeException e) {
            error = e.toString();
        }
        ALLOCATE = allocate;
        FREE = free;
        ERROR = error;
    }

    @Param({"16", "64", "256", "1024", "4096", "32768", "262144"})
    public long size;

    @Setup
    public void setup() throws Throwable {
        if (ERROR != null) {
            throw new IllegalStateException("sun.misc.Unsafe is not reachable on this JDK (" + ERROR
                    + "); skip UnsafeBench");
        }
        try {
            long p = (long) ALLOCATE.invokeExact(64L);
            FREE.invokeExact(p);
        } catch (UnsupportedOperationException e) {
            throw new IllegalStateException("this JDK refuses sun.misc.Unsafe memory access (" + e.getMessage()
                    + "); run with --sun-misc-unsafe-memory-access=allow or skip UnsafeBench", e);
        }
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
