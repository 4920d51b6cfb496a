package io.gomem;

import io.gomem.heap.Malloc;
import io.gomem.internal.Options;
import io.gomem.os.KernelView;
import io.gomem.os.MemoryLimitExceededError;
import io.gomem.os.OsMemory;
import io.gomem.os.OutOfNativeMemoryError;
import io.gomem.stats.MemStats;
import io.gomem.stats.StatsDump;

import javax.management.ObjectName;

/**
 * The part of {@link GoHeap} every JDK from 17 has: raw addresses, scopes that hold a P,
 * statistics, memory back to the OS, close. Programs use {@link GoHeap}, which extends it; on
 * JDK 25 and later {@code GoHeap} adds the {@code java.lang.foreign} API (segments and arenas).
 *
 * <p>Frees are legal from any thread. Bad input throws and changes nothing: a negative or
 * impossible size, an alignment that is not a power of two, a double free, an address this heap
 * never returned, an interior address, any use after {@link #close()}. {@link #close()} returns
 * every byte to the OS.
 *
 * <p>Running out of memory throws an {@link OutOfMemoryError}, and the heap stays usable for what
 * fits: {@link OutOfNativeMemoryError} when the kernel refuses memory (ENOMEM: an address-space
 * limit, the overcommit policy), its subclass {@link MemoryLimitExceededError} when the allocation
 * would pass the {@linkplain Builder#hardMemoryLimit hard memory limit}. Other failed system calls
 * throw {@link io.gomem.os.OsMemoryException}.
 */
public sealed interface RawHeap extends AutoCloseable permits GoHeap {
    /**
     * A scope in which the calling thread holds a P of this heap, as a Go M holds its P: opened by
     * {@link #local()}, closed by {@link #close()} (try-with-resources). Inside it, an
     * allocation from the P's cache and a free of an object in the P's own spans take no lock and
     * execute no atomic instruction: the fastest way to allocate and free from one thread.
     *
     * <pre>{@code
     * try (GoHeap.Local p = heap.local()) {
     *     long a = p.allocate(64);
     *     p.free(a);
     * }
     * }</pre>
     *
     * <ul>
     *   <li><b>Confined.</b> Only the opening thread may use it; any other thread gets
     *       {@code WrongThreadException} (JDK 19+; IllegalStateException on JDK 17 and 18). Objects it allocated may be freed by any thread, through
     *       the heap's {@link GoHeap#free(long)} or another scope; it frees any object of the heap.</li>
     *   <li><b>Held Ps are extra Ps.</b> They do not come from the {@link GoHeap#procs()} the
     *       heap's own methods share, so a thread that blocks, sleeps or is descheduled while it
     *       holds one keeps no other thread waiting, and a virtual thread holding one pins no
     *       carrier (nothing here parks while holding a monitor).</li>
     *   <li><b>What not to do while one is open:</b> keep scopes open without bound on many
     *       threads (each keeps its P's cache: at most one span per size class and up to 4 MiB of
     *       large spans), or expect {@link GoHeap#close()} to succeed: it refuses while scopes are
     *       open, naming their threads. Beyond {@link Builder#maxLocals} open at once a scope holds
     *       no P and leases one per operation ({@link #holdsP()} says which).</li>
     *   <li>Statistics and {@link GoHeap#releaseMemory()} do not reach into other threads' open
     *       scopes: counts lag by what those handed out since their last refill, and their cached
     *       spans stay theirs. A scope counts everything when it closes; a scope whose thread ends
     *       without closing it is closed by the heap's background thread within about a second.</li>
     * </ul>
     */
    sealed interface Local extends AutoCloseable permits io.gomem.heap.HeldP {
        /** As {@link GoHeap#allocate(long)}, on the held P. */
        long allocate(long size);

        /** As {@link GoHeap#allocateAligned(long, long)}, on the held P. */
        long allocateAligned(long size, long alignment);

        /** As {@link GoHeap#allocateZeroed(long)}, on the held P. */
        long allocateZeroed(long size);

        /** As {@link GoHeap#allocateZeroed(long, long)}, on the held P. */
        long allocateZeroed(long size, long alignment);

        /** As {@link GoHeap#free(long)}: an object in the held P's spans with plain stores, any other as the heap does. */
        void free(long address);

        /** As {@link GoHeap#free(long, long)}. */
        void free(long address, long size);

        /** True if this scope holds a P (false: more than {@code maxLocals} scopes were open when it opened). */
        boolean holdsP();

        /** Gives the P back (with its cached spans, for the next scope). Idempotent; the owner only. */
        @Override
        void close();
    }

    /**
     * Opens a scope in which the calling thread holds a P (see {@link Local}). One synchronised
     * acquisition; waits while a stop-the-world runs. Throws IllegalStateException if the heap is
     * closed.
     */
    Local local();

    /** Settings of a {@link GoHeap}. */
    final class Builder {
        private int procs = defaultProcs();
        private OsMemory.UnusedMode unusedMode = new OsMemory().sysUnusedMode();
        private long memoryLimit = defaultMemoryLimit();
        private long hardMemoryLimit = Options.HARD_MEMORY_LIMIT.bytesValue(1, Long.MAX_VALUE);
        private int retainExtraPercent = Options.RETAIN_EXTRA_PERCENT.intValue(0, 10_000);
        private int scavengerCpuPercent = Options.SCAVENGER_CPU_PERCENT.intValue(1, 100);
        private int maxLocals = Malloc.DEFAULT_MAX_HELD;
        private int maxProcs = defaultMaxProcs();

        Builder() {
        }

        /** The default most P slots: {@code gomem.maxProcs} if set, else 64 per available processor (see {@link #maxProcs}). */
        static int defaultMaxProcs() {
            int set = Options.MAX_PROCS.intValue(0, 4096);
            return set > 0 ? set : Math.min(4096, 64 * Runtime.getRuntime().availableProcessors());
        }

        /** The default P slots: {@code gomem.procs} if set, else four per available processor (see {@link #procs}). */
        static int defaultProcs() {
            int set = Options.PROCS.intValue(0, 4096);
            return set > 0 ? set : Math.min(4096, 4 * Runtime.getRuntime().availableProcessors());
        }

        /**
         * The default soft limit: {@code gomem.memoryLimit} if set ('off' for none), else
         * {@code gomem.memoryLimitPercent} (75) percent of the cgroup's memory limit, else none.
         */
        static long defaultMemoryLimit() {
            String v = Options.MEMORY_LIMIT.value();
            if (!v.isBlank()) {
                return Options.MEMORY_LIMIT.bytesValue(1, Long.MAX_VALUE);
            }
            long cgroup = KernelView.cgroupMemoryLimit();
            if (cgroup <= 0) {
                return Long.MAX_VALUE;
            }
            int p = Options.MEMORY_LIMIT_PERCENT.intValue(1, 100);
            return cgroup / 100 * p + cgroup % 100 * p / 100; // exact floor(cgroup * p / 100), no overflow
        }

        /**
         * Soft limit on the heap memory held Ready, in bytes (Go's GOMEMLIMIT): the background
         * scavenger keeps 5% under it and allocation returns free pages before passing it.
         * {@code Long.MAX_VALUE} for none.
         */
        public Builder memoryLimit(long bytes) {
            if (bytes <= 0) {
                throw new IllegalArgumentException("memory limit " + bytes + " must be positive (Long.MAX_VALUE for none)");
            }
            this.memoryLimit = bytes;
            return this;
        }

        /**
         * Hard limit on the heap memory held Ready, in bytes: an allocation that cannot fit under
         * it even after returning every free page fails with {@link MemoryLimitExceededError}.
         * {@code Long.MAX_VALUE} (the default) for none.
         */
        public Builder hardMemoryLimit(long bytes) {
            if (bytes <= 0) {
                throw new IllegalArgumentException("hard memory limit " + bytes + " must be positive (Long.MAX_VALUE for none)");
            }
            this.hardMemoryLimit = bytes;
            return this;
        }

        /** The scavenger's goal: Ready heap memory at most in-use × (100 + percent) / 100 (default 10). */
        public Builder retainExtraPercent(int percent) {
            if (percent < 0) {
                throw new IllegalArgumentException("retainExtraPercent " + percent + " must be >= 0");
            }
            this.retainExtraPercent = percent;
            return this;
        }

        /**
         * How many per-P caches the heap starts with (Go's GOMAXPROCS): threads share them, each
         * operation leasing one. Default: four per available processor ({@code gomem.procs}), as
         * jemalloc makes four arenas per CPU: Go sets one P per CPU because its scheduler never
         * deschedules a goroutine inside malloc, while the OS deschedules a Java thread anywhere,
         * lease held or not (measured: the server mix with 4 threads on 2 CPUs, 245 ns per op with
         * 2 Ps, 162 with 8; BENCHMARKS.md).
         */
        public Builder procs(int procs) {
            if (procs < 1 || procs > 4096) {
                throw new IllegalArgumentException("procs " + procs + " must be between 1 and 4096");
            }
            this.procs = procs;
            return this;
        }

        /**
         * The most per-P caches the heap grows to (at least {@link #procs}): a thread that finds
         * every P leased, because their holders were descheduled mid-operation (more runnable
         * threads than CPUs), adds one instead of waiting for them, so the Ps follow the number
         * of threads that allocate at once, as jemalloc's per-thread caches do. Each P holds at
         * most one span per size class and 4 MiB of freed large spans, flushed once idle.
         * Default: 64 per available processor ({@code gomem.maxProcs}); equal to procs for a
         * fixed number, as Go has.
         */
        public Builder maxProcs(int maxProcs) {
            if (maxProcs < 1 || maxProcs > 4096) {
                throw new IllegalArgumentException("maxProcs " + maxProcs + " must be between 1 and 4096");
            }
            this.maxProcs = maxProcs;
            return this;
        }

        /**
         * How many {@link #local()} scopes may hold a P at once (default 256): each open
         * scope keeps its P's cache, so this bounds their memory; a scope opened beyond it works
         * without a P of its own (one lease per operation). 0 turns held Ps off.
         */
        public Builder maxLocals(int n) {
            if (n < 0 || n > 65536) {
                throw new IllegalArgumentException("maxLocals " + n + " must be between 0 and 65536");
            }
            this.maxLocals = n;
            return this;
        }

        /** How freed pages go back to the OS: MADV_DONTNEED (default), MADV_FREE, or hard decommit. */
        public Builder sysUnusedMode(OsMemory.UnusedMode mode) {
            this.unusedMode = java.util.Objects.requireNonNull(mode, "mode");
            return this;
        }

        public GoHeap build() {
            GoHeap heap = Malloc.create(new OsMemory(unusedMode), new Malloc.Config(procs, memoryLimit, hardMemoryLimit,
                    retainExtraPercent, scavengerCpuPercent, maxLocals, Options.CENTRAL_SHARDS.intValue(0, 4096),
                    Math.max(procs, maxProcs)));
            LOG.log(System.Logger.Level.DEBUG, () -> "gomem heap: procs " + procs + ", soft limit "
                    + limitText(memoryLimit) + ", hard limit " + limitText(hardMemoryLimit) + "\n" + Options.describeEffective());
            return heap;
        }

        private static final System.Logger LOG = System.getLogger("io.gomem");

        private static String limitText(long v) {
            return v == Long.MAX_VALUE ? "none" : v + " B";
        }
    }

    /**
     * Allocates {@code size} bytes (0 to 8 TiB), not zeroed, aligned to 8 bytes at least (objects
     * under 16 bytes may share a 16-byte block, aligned to their size's largest power-of-two
     * factor, as with Go's tiny allocator). Returns the address. Use {@link #allocateAligned}
     * for more.
     */
    long allocate(long size);

    /** Allocates {@code size} bytes aligned to {@code alignment} (a power of two), not zeroed. */
    long allocateAligned(long size, long alignment);

    /** Allocates {@code size} zeroed bytes. */
    long allocateZeroed(long size);

    /** Allocates {@code size} zeroed bytes aligned to {@code alignment} (a power of two). */
    long allocateZeroed(long size, long alignment);

    /** Frees what an allocate method returned. Any thread. */
    void free(long address);

    /**
     * Frees what an allocate method returned, checking its size (a sized free, as C23's
     * {@code free_sized} and jemalloc's {@code sdallocx}): refused with IllegalArgumentException,
     * nothing freed, if {@code size} is more than the object's {@linkplain #usableSize usable
     * size}. Any thread.
     */
    void free(long address, long size);

    /** The bytes usable at {@code address}, an object this heap returned (at least what was asked). */
    long usableSize(long address);

    /**
     * A statistics snapshot with Go's MemStats fields (see {@link MemStats} for the invariants
     * every snapshot keeps). Does not stop the world or sweep: the heap's counters are kept the
     * way Go keeps its heap statistics and read in one consistent cut. Allocations count from
     * the allocation; a free counts once its span is swept (by the owner of the span, or the
     * background thread within a second), as in Go. {@link #memStatsSwept()} sweeps first.
     */
    MemStats memStats();

    /**
     * {@link #memStats()} after sweeping every span, so that every free done before the call is
     * counted (Go's ReadMemStats after a collection). Waits for each P in turn, never for all
     * at once: allocation is not stopped.
     */
    MemStats memStatsSwept();

    /** Where in-use memory is, per size class; its rows add up to its totals. Sweeps first, like {@link #memStatsSwept()}. */
    StatsDump statsDump();

    /**
     * Registers this heap's {@link GoHeapMXBean} with the platform MBean server as
     * {@code io.gomem:type=GoHeap,name=<name>}; it is unregistered by {@link #close()}.
     * Returns the object name.
     *
     * @throws IllegalStateException if the heap is closed (or being closed), or the name is taken
     */
    ObjectName registerMXBean(String name);

    /** Returns every free page to the OS now (Go's {@code debug.FreeOSMemory}); the bytes released. */
    long releaseMemory();

    /**
     * Checks every component's invariants, and recounts from the spans what the statistics
     * say; throws IllegalStateException on the first violation. Stops the world while it runs.
     */
    void checkInvariants();

    /** The number of per-P caches. */
    int procs();

    boolean isClosed();

    /**
     * Returns every byte to the OS; every later call fails with IllegalStateException, and every
     * segment of the heap and of its arenas is dead. Idempotent. Refused (IllegalStateException,
     * nothing changed) while {@link #local()} scopes are open, or a confined arena of a live thread
     * (JDK 25: {@code GoHeap.ofConfined()}; only its thread may close it); open shared arenas are
     * closed here.
     */
    @Override
    void close();
}
