package io.gomem.bench;

import io.gomem.GoHeap;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.TimeUnit;

import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;
import org.openjdk.jmh.infra.Blackhole;

/**
 * gomem's arenas ({@code heap.ofConfined()}, {@code heap.ofShared()}) against the JDK's
 * ({@code Arena.ofConfined()}, {@code Arena.ofShared()}) doing the same work, in the same run:
 * <ul>
 *   <li>{@code thousand*}: open an arena, 1000 allocations of {@code size} bytes (zeroed, one
 *       segment each, each consumed), close. Reported per allocation.</li>
 *   <li>{@code request*}: one arena per request: open, 10 allocations of 16 B to 4 KiB (the
 *       sizes of {@link #REQUEST}, 8.1 KiB in all), close. Reported per request. The shared
 *       variants' close is a handshake with every thread (the JDK's, in both).</li>
 *   <li>{@code empty*Shared}: a shared arena opened and closed, nothing allocated: the
 *       handshake's floor, paid once per arena by both.</li>
 * </ul>
 * Run {@code request*} and {@code empty*} with one {@code size} (they do not use it).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED"})
public class UserArenaBench {

    @Param({"16", "64", "256", "1024"})
    public long size;

    /** The sizes of one request's allocations: 16 B to 4 KiB, spread as a request's buffers and records are. */
    static final long[] REQUEST = {16, 24, 48, 64, 100, 256, 512, 1000, 2048, 4096};

    GoHeap heap;

    @Setup
    public void setup() {
        heap = GoHeap.builder().build();
    }

    @TearDown
    public void tearDown() {
        heap.close();
    }

    private void thousand(Arena a, Blackhole bh) {
        try (a) {
            for (int i = 0; i < 1000; i++) {
                bh.consume(a.allocate(size));
            }
        }
    }

    @Benchmark
    @OperationsPerInvocation(1000)
    public void thousandJdkConfined(Blackhole bh) {
        thousand(Arena.ofConfined(), bh);
    }

    @Benchmark
    @OperationsPerInvocation(1000)
    public void thousandJdkShared(Blackhole bh) {
        thousand(Arena.ofShared(), bh);
    }

    @Benchmark
    @OperationsPerInvocation(1000)
    public void thousandGomemConfined(Blackhole bh) {
        thousand(heap.ofConfined(), bh);
    }

    @Benchmark
    @OperationsPerInvocation(1000)
    public void thousandGomemShared(Blackhole bh) {
        thousand(heap.ofShared(), bh);
    }

    private static MemorySegment request(Arena a) {
        MemorySegment last = null;
        try (a) {
            for (long n : REQUEST) {
                last = a.allocate(n);
            }
        }
        return last;
    }

    @Benchmark
    public MemorySegment requestJdkConfined() {
        return request(Arena.ofConfined());
    }

    @Benchmark
    public MemorySegment requestGomemConfined() {
        return request(heap.ofConfined());
    }

    /** The floor of a shared arena: open and close with no allocation (the JDK's close is a handshake with every thread). */
    @Benchmark
    public void emptyJdkShared() {
        Arena.ofShared().close();
    }

    @Benchmark
    public void emptyGomemShared() {
        heap.ofShared().close();
    }

    @Benchmark
    public MemorySegment requestJdkShared() {
        return request(Arena.ofShared());
    }

    @Benchmark
    public MemorySegment requestGomemShared() {
        return request(heap.ofShared());
    }
}
