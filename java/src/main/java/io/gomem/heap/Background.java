package io.gomem.heap;

import java.lang.ref.WeakReference;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * The one background thread of all heaps in the process ({@code gomem-background}, a daemon):
 * every {@link #PERIOD_MS} it visits each live heap for its periodic work (giving back the spans
 * of caches that went idle). Go runs such work in background goroutines; one shared thread keeps
 * the cost independent of the number of heaps.
 *
 * <p>Owns {@link #heaps}: weak references, so an unreachable heap is not kept alive; a closed or
 * collected heap is dropped at the next tick. Guarded by being a copy-on-write list.
 */
final class Background {
    static final long PERIOD_MS = 1000;

    private static final CopyOnWriteArrayList<WeakReference<HeapCore>> heaps = new CopyOnWriteArrayList<>();
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

    static void register(HeapCore heap) {
        heaps.add(new WeakReference<>(heap));
    }

    /** Stops visiting {@code heap} (tests that drive its periodic work themselves). */
    static void unregister(HeapCore heap) {
        heaps.removeIf(r -> r.get() == heap);
    }

    /** Calls {@code f} for every registered heap that is still open. */
    static void forEachHeap(java.util.function.Consumer<HeapCore> f) {
        for (WeakReference<HeapCore> ref : heaps) {
            HeapCore h = ref.get();
            if (h != null && !h.isClosed()) {
                f.accept(h);
            }
        }
    }

    private static void tick() {
        for (WeakReference<HeapCore> ref : heaps) {
            HeapCore h = ref.get();
            if (h == null || h.isClosed()) {
                heaps.remove(ref);
                continue;
            }
            try {
                h.backgroundTick();
            } catch (RuntimeException | io.gomem.os.OutOfNativeMemoryError e) {
                // An Error escaping would end the scheduled task for good: no more background work.
                System.getLogger("io.gomem.heap").log(System.Logger.Level.WARNING, "background work of a heap failed", e);
            }
        }
    }
}
