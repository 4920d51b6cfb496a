package io.gomem.cli;

import io.gomem.stats.MemStats;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.locks.LockSupport;

/**
 * Samples, every interval, the kernel's RSS of this process (VmRSS of /proc/self/status), the
 * live bytes the workload holds and, for gomem, HeapInuse, HeapIdle, HeapReleased and the soft
 * limit; writes each sample as a protocol line ({@link ChurnRun}) on a daemon thread of its own.
 */
final class Sampler implements AutoCloseable {
    private static final Path STATUS = Path.of("/proc/self/status");

    private final Allocator allocator;
    private final Workload workload;
    private final PrintWriter out;
    private final long t0;
    private final Thread thread;
    private volatile boolean stopped;

    /** Starts sampling at once; times count from {@code t0} (System.nanoTime). */
    Sampler(Allocator allocator, Workload workload, PrintWriter out, long t0, int intervalMs) {
        this.allocator = allocator;
        this.workload = workload;
        this.out = out;
        this.t0 = t0;
        long period = intervalMs * 1_000_000L;
        this.thread = Thread.ofPlatform().name("churn-sampler").daemon().start(() -> {
            for (long next = t0; !stopped; ) {
                sample(workload.phase());
                next = Math.max(next + period, System.nanoTime()); // a late sample delays the next, never bunches them
                for (long left = next - System.nanoTime(); left > 0 && !stopped; left = next - System.nanoTime()) {
                    LockSupport.parkNanos(left);
                }
            }
        });
    }

    /** Takes one sample now, labelled with {@code phase}. */
    synchronized void sample(Workload.Phase phase) {
        long t = (System.nanoTime() - t0) / 1_000_000;
        MemStats m = allocator.stats();
        ChurnRun.Sample s = m == null
                ? new ChurnRun.Sample(t, phase.toString(), workload.liveBytes(), vmRss(), -1, -1, -1, -1)
                : new ChurnRun.Sample(t, phase.toString(), workload.liveBytes(), vmRss(), m.heapInuse(), m.heapIdle(),
                m.heapReleased(), m.memoryLimit() == Long.MAX_VALUE ? -1 : m.memoryLimit());
        line("sample " + s.toLine());
    }

    /** Writes one protocol line and flushes it to the parent. */
    synchronized void line(String text) {
        out.println(text);
        out.flush();
    }

    @Override
    public void close() {
        stopped = true;
        LockSupport.unpark(thread);
        try {
            thread.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** The kernel's resident set size of this process, in bytes (VmRSS). */
    static long vmRss() {
        try {
            for (String line : Files.readAllLines(STATUS)) {
                if (line.startsWith("VmRSS:")) {
                    String kb = line.substring(6).trim();
                    return Long.parseLong(kb.substring(0, kb.indexOf(' '))) * 1024;
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + STATUS, e);
        }
        throw new IllegalStateException(STATUS + " has no VmRSS line");
    }
}
