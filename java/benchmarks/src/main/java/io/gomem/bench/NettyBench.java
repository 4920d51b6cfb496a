package io.gomem.bench;

import io.netty.buffer.AdaptiveByteBufAllocator;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.util.internal.PlatformDependent;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
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
 * Netty's direct-buffer allocators: {@code directBuffer(size)} then {@code release()}, as a
 * Netty user gets and returns a pooled off-heap buffer. {@code pooled}:
 * {@code PooledByteBufAllocator.DEFAULT} (jemalloc-style arenas, thread caches for sizes up to
 * 32 KiB by default). {@code adaptive}: {@code AdaptiveByteBufAllocator} with its default
 * settings (magazines of size-classed chunks). Netty's defaults give thread-local caches only
 * to its own event-loop threads ({@code FastThreadLocalThread}), so from a JMH worker thread
 * both go to shared structures; {@code pooledCached} and {@code adaptiveCached} build the
 * same allocators with caching for all threads ({@code useCacheForAllThreads},
 * {@code useCacheForNonEventLoopThreads}), which is what Netty's own I/O threads get and the
 * closer match to gomem's per-processor caches. The {@code *2t} variants run on two threads.
 * The fork allows {@code sun.misc.Unsafe} memory access so Netty takes its usual fast path on
 * JDK 25 instead of printing a warning; the effective Netty settings are printed at setup.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow"})
public class NettyBench {

    static final ByteBufAllocator POOLED = PooledByteBufAllocator.DEFAULT;
    static final ByteBufAllocator ADAPTIVE = new AdaptiveByteBufAllocator();
    static final ByteBufAllocator POOLED_CACHED = new PooledByteBufAllocator(true,
            PooledByteBufAllocator.defaultNumHeapArena(), PooledByteBufAllocator.defaultNumDirectArena(),
            PooledByteBufAllocator.defaultPageSize(), PooledByteBufAllocator.defaultMaxOrder(),
            PooledByteBufAllocator.defaultSmallCacheSize(), PooledByteBufAllocator.defaultNormalCacheSize(), true);
    static final ByteBufAllocator ADAPTIVE_CACHED = new AdaptiveByteBufAllocator(true, true);

    @Param({"16", "64", "256", "1024", "4096", "32768", "262144"})
    public int size;

    @Setup(Level.Trial)
    public void setup() {
        System.out.println("netty: hasUnsafe=" + PlatformDependent.hasUnsafe()
                + " directBufferPreferred=" + PlatformDependent.directBufferPreferred()
                + " pooled.useCacheForAllThreads=" + PooledByteBufAllocator.defaultUseCacheForAllThreads()
                + " pooled.directArenas=" + PooledByteBufAllocator.defaultNumDirectArena()
                + " pooled.chunkSize=" + (PooledByteBufAllocator.defaultPageSize() << PooledByteBufAllocator.defaultMaxOrder()));
        release(POOLED.directBuffer(size));
        release(ADAPTIVE.directBuffer(size));
        release(POOLED_CACHED.directBuffer(size));
        release(ADAPTIVE_CACHED.directBuffer(size));
    }

    private static void release(ByteBuf buf) {
        if (!buf.isDirect()) {
            throw new IllegalStateException("expected a direct buffer, got " + buf);
        }
        buf.release();
    }

    @Benchmark
    public boolean pooled() {
        return POOLED.directBuffer(size).release();
    }

    @Benchmark
    public boolean adaptive() {
        return ADAPTIVE.directBuffer(size).release();
    }

    @Benchmark
    public boolean pooledCached() {
        return POOLED_CACHED.directBuffer(size).release();
    }

    @Benchmark
    public boolean adaptiveCached() {
        return ADAPTIVE_CACHED.directBuffer(size).release();
    }

    @Benchmark
    @Threads(2)
    public boolean pooled2t() {
        return pooled();
    }

    @Benchmark
    @Threads(2)
    public boolean adaptive2t() {
        return adaptive();
    }

    @Benchmark
    @Threads(2)
    public boolean pooledCached2t() {
        return pooledCached();
    }

    @Benchmark
    @Threads(2)
    public boolean adaptiveCached2t() {
        return adaptiveCached();
    }
}
