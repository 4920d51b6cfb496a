package io.gomem.bench;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
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
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Threads;
import org.openjdk.jmh.annotations.Warmup;
import org.openjdk.jmh.infra.ThreadParams;

/**
 * A server-like mix in the spirit of larson, per allocator: {@code mix2t} runs 2 threads,
 * {@code mix4t} 4 (on this 2-core machine, 2 per core), {@code mix16t} 16 (8 per core), {@code mix1t} one (a baseline without
 * contention, where the hand-off below goes from the thread to itself). Each thread owns a table of
 * {@value #SLOTS} slots, filled at setup. One op: pick a random slot, free the block in it (if
 * any), allocate a block of a random size, write its first 8 bytes (as any user would) and leave
 * it in the slot, where it lives until that slot is picked again. Sizes are skewed small:
 * 80% 16–256 B, 15% 257 B–4 KiB, 5% 4 KiB–64 KiB (uniform within each band; mean about
 * 2.2 KiB, so a table holds about 9 MiB). About one op in 16 also moves the new block to the
 * next thread (thread i sends to thread i+1 mod n through an {@link SpscRing}) and puts in the
 * slot whatever the previous thread sent instead (or leaves it empty): blocks received that way
 * are later freed by a thread other than the one that allocated them, so roughly 6% of frees are
 * cross-thread. Randomness is an inline xorshift per thread (no allocation, same cost for every
 * allocator). The score is ns per op (one free + one allocate + the table and ring work) per
 * thread; with more threads than cores, a thread's op includes time spent descheduled.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow"})
public class MixBench {

    static final int SLOTS = 4096; // a power of two: the slot is 12 bits of the random number
    static final int RING = 256;
    /** Everything, for writing the first word of a block by address. */
    @SuppressWarnings("restricted")
    static final MemorySegment ALL = MemorySegment.NULL.reinterpret(Long.MAX_VALUE);

    @Param({"gomem", "gomemLocal", "malloc", "mallocCritical", "jemalloc", "jemallocCritical", "unsafe"})
    public String allocator;

    Allocator alloc;
    /** rings[i]: thread i-1 (mod n) sends, thread i receives. */
    SpscRing[] rings;
    /** The rings are drained and the allocator closed after every thread's table is torn down (see {@link ClosesLast}). */
    final ClosesLast closing = new ClosesLast(this::closeAll);

    @Setup(Level.Trial)
    public void setup(org.openjdk.jmh.infra.BenchmarkParams params) throws Throwable {
        alloc = Allocator.create(allocator);
        if (!alloc.threadSafe() || !alloc.addresses()) {
            alloc.close();
            throw new IllegalArgumentException(allocator + " cannot run the mix (needs addresses and any-thread frees)");
        }
        rings = new SpscRing[params.getThreads()];
        for (int i = 0; i < rings.length; i++) {
            rings[i] = new SpscRing(RING);
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        closing.benchmarkTornDown();
    }

    /** Frees what the rings hold and closes the allocator, once, after every table is torn down. */
    synchronized void closeAll() {
        if (rings == null) {
            return;
        }
        for (SpscRing r : rings) {
            r.drain(alloc::free);
        }
        rings = null;
        alloc.close();
    }

    /** One thread's table, random state and rings. */
    @State(Scope.Thread)
    public static class Table {
        final long[] slots = new long[SLOTS];
        long random;
        SpscRing in;
        SpscRing out;
        /** This thread's allocator ({@link Allocator#forThread()}), and the benchmark's. */
        Allocator alloc;
        Allocator shared;
        MixBench bench;

        @Setup(Level.Trial)
        public void setup(MixBench bench, ThreadParams thread) {
            int i = thread.getThreadIndex();
            int n = thread.getThreadCount();
            this.bench = bench;
            bench.closing.threadSetUp();
            in = bench.rings[i];
            out = bench.rings[(i + 1) % n];
            shared = bench.alloc;
            alloc = shared.forThread();
            random = 0x9E3779B97F4A7C15L * (i + 1);
            for (int s = 0; s < SLOTS; s++) {
                long r = next();
                long p = alloc.allocate(size(r));
                ALL.set(ValueLayout.JAVA_LONG_UNALIGNED, p, r);
                slots[s] = p;
            }
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            for (int s = 0; s < SLOTS; s++) {
                if (slots[s] != 0) {
                    alloc.free(slots[s]);
                    slots[s] = 0;
                }
            }
            if (alloc != shared) {
                alloc.close(); // this thread's scope (gomemLocal)
            }
            bench.closing.threadTornDown();
        }

        /** xorshift64*. */
        long next() {
            long x = random;
            x ^= x >>> 12;
            x ^= x << 25;
            x ^= x >>> 27;
            random = x;
            return x * 0x2545F4914F6CDD1DL;
        }
    }

    /** The size for random bits {@code r}: bits 8–23 pick the band, bits 24–39 the size in it. */
    static long size(long r) {
        long band = ((r >>> 8) & 0xFFFF) * 100 >>> 16; // 0..99
        long u = (r >>> 24) & 0xFFFF;
        if (band < 80) {
            return 16 + (u * 241 >>> 16); // 16..256
        } else if (band < 95) {
            return 257 + (u * 3840 >>> 16); // 257..4096
        } else {
            return 4097 + (u * 61440 >>> 16); // 4097..65536
        }
    }

    static long op(Allocator a, Table t) {
        long r = t.next();
        int slot = (int) (r >>> 52); // 12 bits
        long old = t.slots[slot];
        if (old != 0) {
            a.free(old);
        }
        long p = a.allocate(size(r));
        ALL.set(ValueLayout.JAVA_LONG_UNALIGNED, p, r);
        if ((r & 0xF) == 0 && t.out.offer(p)) { // one op in 16: hand the new block to the next thread
            p = t.in.poll(); // and keep what the previous thread sent, if anything
        }
        t.slots[slot] = p;
        return p;
    }

    /** One thread: no contention; the handed-off blocks come back to the same thread. A baseline for the others. */
    @Benchmark
    @Threads(1)
    public long mix1t(Table t) {
        return op(t.alloc, t);
    }

    @Benchmark
    @Threads(2)
    public long mix2t(Table t) {
        return op(t.alloc, t);
    }

    @Benchmark
    @Threads(4)
    public long mix4t(Table t) {
        return op(t.alloc, t);
    }

    /** Sixteen threads on this 2-core machine: 8 runnable threads per core, a Java server's usual state. */
    @Benchmark
    @Threads(16)
    public long mix16t(Table t) {
        return op(t.alloc, t);
    }
}
