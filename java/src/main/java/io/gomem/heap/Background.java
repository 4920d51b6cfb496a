package io.gomem.heap;

import java.lang.ref.WeakReference;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * The one background thread of all heaps in the process ({@code gomem-background}, a daemon):
 * every {@link #PERIOD_MS} it runs each registered {@link Job} (a heap's periodic work: idle
 * caches flushed, spans swept, free pages scavenged). Go runs such work in background
 * goroutines; one shared thread keeps the cost independent of the number of heaps. It knows
 * heaps only as jobs: a heap registers itself once it is built.
 *
 * <p>Owns {@link #jobs}: weak references, so an unreachable heap is not kept alive; a closed or
 * collected heap is dropped at the next tick. Guarded by being a copy-on-write list.
 */
final class Background {
    static final long PERIOD_MS = 1000;

    /** A heap's periodic work. */
    interface Job {
        /** Runs one period's work; called by the background thread only. */
        void backgroundTick();

        /** True once the heap is closed: the job is dropped. */
        boolean isClosed();
    }

    private static final CopyOnWriteArrayList<WeakReference<Job>> jobs = new CopyOnWriteArrayList<>();
    private static final ScheduledExecutorService EXEC = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "gomem-background");
        t.setDaemon(true);
        return t;
    });

    static {
        EXEC.scheduleWithFixedDelay(Background::tick, PERIOD_MS, PERIOD_MS, TimeUnit.MILLISECONDS);
    }

    private Background() {
    }

    static void register(Job job) {
        jobs.add(new WeakReference<>(job));
    }

    /** Stops running {@code job} (tests that drive a heap's periodic work themselves). */
    static void unregister(Job job) {
        jobs.removeIf(r -> r.get() == job);
    }

    private static void tick() {
        for (WeakReference<Job> ref : jobs) {
            Job j = ref.get();
            if (j == null || j.isClosed()) {
                jobs.remove(ref);
                continue;
            }
            try {
                j.backgroundTick();
            } catch (RuntimeException | io.gomem.os.OutOfNativeMemoryError e) {
                // An Error escaping would end the scheduled task for good: no more background work.
                System.getLogger("io.gomem.heap").log(System.Logger.Level.WARNING, "background work of a heap failed", e);
            }
        }
    }
}
