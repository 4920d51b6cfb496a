package io.gomem.heap;

import java.util.concurrent.locks.ReentrantLock;

/**
 * The runtime's locks (the heap lock and each {@link MCentral}'s): a {@link ReentrantLock} that
 * spins briefly before it parks, as Go's runtime locks do (a few rounds of PAUSE, then the
 * futex). The critical sections are short (a span filed and another handed out, a page run
 * found), so a thread that finds the lock taken usually gets it within a microsecond, while
 * parking costs two context switches each time two threads meet. Measured on the server-mix
 * benchmark: context switches fall from about 100k to 40k per run (the time per op on two
 * cores varies too much from run to run to credit it with a number).
 *
 * <p>Owns no state of its own; reentrant and unfair, as {@link ReentrantLock}.
 */
final class SpinLock extends ReentrantLock {
    private static final long serialVersionUID = 1L;
    /** PAUSEs before parking. */
    private static final int SPINS = 64;

    @Override
    public void lock() {
        if (tryLock()) {
            return;
        }
        for (int i = 0; i < SPINS; i++) {
            Thread.onSpinWait();
            if (!isLocked() && tryLock()) {
                return;
            }
        }
        super.lock();
    }
}
