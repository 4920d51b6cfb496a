package io.gomem;

import org.junit.jupiter.api.Test;

import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * checkInvariants() stops the world, but a small object's free takes no P lease and goes on
 * meanwhile: a minimal reproduction of its check racing the first free of a full span (the free
 * disarms the span and queues it for its central while the check walks the full list).
 */
class GoHeapCheckInvariantsUnderFreesTest {
    @Test
    void checkInvariantsHoldsWhileAnotherThreadFreesSmallObjects() throws Exception {
        try (GoHeap heap = GoHeap.builder().procs(1).build()) {
            AtomicBoolean done = new AtomicBoolean();
            AtomicReference<Throwable> failure = new AtomicReference<>();
            AtomicLong checks = new AtomicLong();
            Thread checker = TestThreads.platform(() -> {
                try {
                    while (!done.get()) {
                        heap.checkInvariants();
                        checks.incrementAndGet();
                    }
                } catch (Throwable e) {
                    failure.set(e);
                }
            });
            long[] objs = new long[20_000];
            for (int round = 0; round < 20 && failure.get() == null; round++) {
                for (int i = 0; i < objs.length; i++) {
                    objs[i] = heap.allocate(4096); // 2 per one-page span: the spans fill and go to the full list
                }
                for (long p : objs) {
                    heap.free(p); // each full span's first free disarms it and queues it for its central
                }
            }
            done.set(true);
            assertTrue(TestThreads.join(checker, 60_000), "checkInvariants() loop did not stop within 60 s");
            assertNull(failure.get(), () -> "after " + checks.get() + " checks: " + failure.get());
            assertTrue(checks.get() > 0);
        }
    }
}
