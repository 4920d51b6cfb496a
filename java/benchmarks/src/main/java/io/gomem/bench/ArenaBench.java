package io.gomem.bench;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Threads;
import org.openjdk.jmh.annotations.Warmup;
import org.openjdk.jmh.infra.Blackhole;

/**
 * One {@code java.lang.foreign} arena per allocation: open, {@code allocate(size)}, close.
 * This is what code without a pool pays for one native block with a lifetime it controls.
 * Note that {@code Arena.allocate} zeroes the block (the JDK mallocs, then clears it) and
 * aligns it, so large sizes include a memset that malloc-based peers skip.
 * {@code confined}: {@code Arena.ofConfined()}, closed by its owner thread.
 * {@code shared}: {@code Arena.ofShared()}, whose close runs a thread-local handshake with
 * every Java thread to make sure none is still using the memory: far slower, so it runs fewer
 * iterations. The {@code *2t} variants run on two threads at once.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED"})
public class ArenaBench {

    @Param({"16", "64", "256", "1024", "4096", "32768", "262144"})
    public long size;

    @Benchmark
    public void confined(Blackhole bh) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment s = arena.allocate(size);
            bh.consume(s);
        }
    }

    @Benchmark
    @Warmup(iterations = 2, time = 1)
    @Measurement(iterations = 3, time = 1)
    public void shared(Blackhole bh) {
        try (Arena arena = Arena.ofShared()) {
            MemorySegment s = arena.allocate(size);
            bh.consume(s);
        }
    }

    @Benchmark
    @Threads(2)
    public void confined2t(Blackhole bh) {
        confined(bh);
    }

    @Benchmark
    @Threads(2)
    @Warmup(iterations = 2, time = 1)
    @Measurement(iterations = 3, time = 1)
    public void shared2t(Blackhole bh) {
        shared(bh);
    }
}
