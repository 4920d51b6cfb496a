package io.gomem.os;

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
 * One OS call through each backend ({@code backend}: {@code jni}, or {@code panama} on JDK 25), on
 * one JVM: {@code madvise(MADV_DONTNEED)} of one page that is resident (written just before, so
 * the kernel has a page to drop each time: the write's page fault is in the figure, the same for
 * both backends), {@code madvise} of one page already released (the call alone), {@code madvise}
 * of zero bytes (the kernel returns at once: the crossing itself), and
 * {@code mincore} of 1 MiB (256 pages, the vector copied into a Java array). In package
 * {@code io.gomem.os} to reach the backends, which are not API.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 2, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED"})
public class OsCallBench {
    static final long MIB = 1L << 20;

    @Param({"jni", "panama"})
    public String backend;

    Syscalls.Backend b;
    long region;
    long page;
    byte[] vec;

    @Setup
    public void setup() {
        b = Syscalls.choose(backend);
        page = Syscalls.OS_PAGE_SIZE;
        region = b.mmap(0, MIB, Syscalls.PROT_READ | Syscalls.PROT_WRITE, Syscalls.MAP_PRIVATE | Syscalls.MAP_ANONYMOUS);
        if (region < 0) {
            throw new IllegalStateException("mmap: errno " + -region);
        }
        for (long a = region; a < region + MIB; a += page) {
            io.gomem.internal.RawMemory.putByte(a, (byte) 1);
        }
        vec = new byte[(int) (MIB / page)];
        System.out.println("# Java " + Runtime.version() + ", backend " + b.name());
    }

    @TearDown
    public void tearDown() {
        b.munmap(region, MIB);
    }

    /** Writes a byte to the page (a fault: the page was dropped), then drops it. */
    @Benchmark
    public int madviseResidentPage() {
        io.gomem.internal.RawMemory.putByte(region, (byte) 1);
        return b.madvise(region, page, Syscalls.MADV_DONTNEED);
    }

    /** madvise of a page with nothing to drop: the call's own cost. */
    @Benchmark
    public int madviseReleasedPage() {
        return b.madvise(region + page, page, Syscalls.MADV_DONTNEED);
    }

    /** madvise of zero bytes: the kernel returns at once, so this is the way in and out (downcall or JNI, syscall entry). */
    @Benchmark
    public int madviseZeroBytes() {
        return b.madvise(region, 0, Syscalls.MADV_DONTNEED);
    }

    @Benchmark
    public byte[] mincore1MiB() {
        int errno = b.mincore(region, MIB, vec);
        if (errno != 0) {
            throw new IllegalStateException("mincore: errno " + errno);
        }
        return vec;
    }
}
