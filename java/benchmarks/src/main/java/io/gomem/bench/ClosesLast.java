package io.gomem.bench;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * Runs a benchmark-scoped close (a heap's, an allocator's) once both the benchmark state's
 * teardown and the teardown of every thread state that uses it have run: JMH may tear the
 * benchmark state down before some threads' states (seen with 16 threads), whose blocks and
 * {@code local()} scopes must go first (a heap refuses to close while scopes are open). The
 * close must be idempotent: with the two teardowns racing, both may run it.
 */
final class ClosesLast {
    private final AtomicInteger threads = new AtomicInteger();
    private volatile boolean tornDown;
    private final Runnable close;

    ClosesLast(Runnable close) {
        this.close = close;
    }

    /** A thread state that needs the resource was set up. */
    void threadSetUp() {
        threads.incrementAndGet();
    }

    /** That thread state's teardown is done with the resource. */
    void threadTornDown() {
        if (threads.decrementAndGet() == 0 && tornDown) {
            close.run();
        }
    }

    /** The benchmark state's teardown. */
    void benchmarkTornDown() {
        tornDown = true;
        if (threads.get() == 0) {
            close.run();
        }
    }
}
