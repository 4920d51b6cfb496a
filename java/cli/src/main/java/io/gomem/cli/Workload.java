package io.gomem.cli;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.Phaser;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.LockSupport;

/**
 * The churn workload on one allocator (after Zavrtanik and Mihelič 2017): seeded, in paced
 * phases, on worker threads that each own a share of the live size. {@code grow} allocates
 * until the live size is reached, {@code free} frees a random fraction of the blocks,
 * {@code regrow} allocates back to the live size, {@code drain} frees everything, and
 * {@code release} asks the allocator to return its memory, then idles. Every block is written
 * once per 4 KiB page, so that the pages it lies on are resident. Each phase is paced to take its
 * share of the duration (work spread evenly over it); a phase whose work takes longer runs longer.
 */
final class Workload {
    enum Phase {
        GROW(0.30), FREE(0.15), REGROW(0.25), DRAIN(0.10), RELEASE(0.20);

        final double share;

        Phase(double share) {
            this.share = share;
        }

        @Override
        public String toString() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    /** What the workload tells as it goes. */
    interface Listener {
        void phaseStarted(Phase phase);

        /** Called when the phase's time is up, before the next phase starts. */
        void phaseEnded(Phase phase);
    }

    /** All of memory, to write blocks at their raw addresses. */
    @SuppressWarnings("restricted") // the churn child runs with --enable-native-access=ALL-UNNAMED
    private static final MemorySegment MEMORY = MemorySegment.NULL.reinterpret(Long.MAX_VALUE);
    private static final long PAGE = 4096;

    private final WorkloadOptions options;
    private final Allocator allocator;
    private final LongAdder live = new LongAdder();
    private final LongAdder refused = new LongAdder();
    private final Phaser phaser;
    private volatile Phase phase = Phase.GROW;
    private volatile long phaseStart;
    private volatile long phaseEnd;
    private volatile Throwable failure;
    private long releaseNanos;

    Workload(WorkloadOptions options, Allocator allocator) {
        this.options = options;
        this.allocator = allocator;
        this.phaser = new Phaser(1 + options.threads);
    }

    /** Bytes of the blocks allocated and not yet freed (their sizes as asked). */
    long liveBytes() {
        return live.sum();
    }

    Phase phase() {
        return phase;
    }

    /** Allocations the allocator refused (OutOfMemoryError: a hard limit, or no memory). */
    long refusals() {
        return refused.sum();
    }

    /** How long the allocator's release call took. */
    long releaseNanos() {
        return releaseNanos;
    }

    /** Runs every phase in turn; throws what a worker threw. */
    void run(Listener listener) throws InterruptedException {
        List<Thread> workers = new ArrayList<>();
        long share = options.live / options.threads;
        for (int i = 0; i < options.threads; i++) {
            long target = i == 0 ? options.live - share * (options.threads - 1) : share;
            Worker w = new Worker(new SplittableRandom(options.seed * 1_000_003 + i), target);
            workers.add(Thread.ofPlatform().name("churn-" + i).daemon().start(w::run));
        }
        for (Phase p : Phase.values()) {
            phaseStart = System.nanoTime();
            phaseEnd = phaseStart + (long) (options.duration.toNanos() * p.share);
            phase = p;
            listener.phaseStarted(p);
            if (p == Phase.RELEASE) {
                long t = System.nanoTime();
                allocator.release();
                releaseNanos = System.nanoTime() - t;
            } else if (phaser.arriveAndAwaitAdvance() < 0 || phaser.arriveAndAwaitAdvance() < 0) {
                break; // a worker failed and terminated the phaser
            }
            sleepUntil(phaseEnd);
            listener.phaseEnded(p);
        }
        for (Thread t : workers) {
            t.join();
        }
        if (failure != null) {
            throw new IllegalStateException("workload failed on " + allocator.name() + ": " + failure, failure);
        }
    }

    private static void sleepUntil(long deadline) {
        for (long left = deadline - System.nanoTime(); left > 0; left = deadline - System.nanoTime()) {
            LockSupport.parkNanos(left);
        }
    }

    /** Paces the current phase: waits while more than {@code done} of its work is ahead of its clock. */
    private void pace(double done) {
        long due = phaseStart + (long) ((phaseEnd - phaseStart) * done);
        long ahead = due - System.nanoTime();
        if (ahead > 1_000_000) {
            LockSupport.parkNanos(ahead);
        }
    }

    /** One worker thread: its blocks (address and size), its share of the live size, its random stream. */
    private final class Worker {
        private final SplittableRandom rng;
        private final long target;
        private long[] addresses = new long[1024];
        private int[] sizes = new int[1024];
        private int count;
        private long bytes;

        Worker(SplittableRandom rng, long target) {
            this.rng = rng;
            this.target = target;
        }

        void run() {
            for (Phase p : List.of(Phase.GROW, Phase.FREE, Phase.REGROW, Phase.DRAIN)) {
                if (phaser.arriveAndAwaitAdvance() < 0) {
                    return;
                }
                try {
                    switch (p) {
                        case GROW, REGROW -> grow();
                        case FREE -> free((int) Math.round(count * options.freeFraction));
                        default -> {
                            free(count);
                            allocator.flushThread();
                        }
                    }
                } catch (Throwable t) {
                    failure = t;
                    phaser.forceTermination();
                    return;
                }
                if (phaser.arriveAndAwaitAdvance() < 0) {
                    return;
                }
            }
        }

        private void grow() {
            long from = bytes;
            long need = target - from;
            while (bytes < target) {
                long size = options.sizes.sample(rng);
                long p;
                try {
                    p = allocator.allocate(size);
                } catch (OutOfMemoryError refusedNow) {
                    refused.increment();
                    return; // a hard limit: this phase grows no further
                }
                for (long off = 0; off < size; off += PAGE) {
                    MEMORY.set(ValueLayout.JAVA_BYTE, p + off, (byte) 1);
                }
                MEMORY.set(ValueLayout.JAVA_BYTE, p + size - 1, (byte) 1);
                if (count == addresses.length) {
                    addresses = Arrays.copyOf(addresses, count * 2);
                    sizes = Arrays.copyOf(sizes, count * 2);
                }
                addresses[count] = p;
                sizes[count++] = (int) size;
                bytes += size;
                live.add(size);
                pace((double) (bytes - from) / need);
            }
        }

        /** Frees {@code n} blocks chosen at random. */
        private void free(int n) {
            for (int i = 0; i < n; i++) {
                int j = rng.nextInt(count);
                allocator.free(addresses[j]);
                bytes -= sizes[j];
                live.add(-sizes[j]);
                count--;
                addresses[j] = addresses[count];
                sizes[j] = sizes[count];
                pace((double) (i + 1) / n);
            }
        }
    }
}
