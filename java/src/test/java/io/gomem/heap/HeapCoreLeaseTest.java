package io.gomem.heap;

import io.gomem.os.OsMemory;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Which P cache a thread's operations land on: threads claim caches and keep to them. */
class HeapCoreLeaseTest {
    final HeapCore core = new HeapCore(new OsMemory(), 2);

    @AfterEach
    void close() {
        core.close();
    }

    /** Starts {@code t} and waits for it. */
    private static void runOn(Thread t) throws InterruptedException {
        t.start();
        t.join();
    }

    private MCache ownedBy(Thread t) {
        MCache found = null;
        for (MCache c : core.slots) {
            if (c.owner == t.threadId()) {
                assertTrue(found == null || found == c, "one cache per thread");
                found = c;
            }
        }
        return found;
    }

    @Test
    void threadsWhoseIdsPickTheSameCacheSettleOnDifferentCaches() throws Exception {
        int mask = core.slots.length - 1;
        long[] got = new long[3];
        Thread a = Thread.ofPlatform().unstarted(() -> got[0] = core.allocateRaw(64));
        // Thread ids are handed out in order: make threads until one picks the same slot as a.
        Thread b;
        do {
            b = Thread.ofPlatform().unstarted(() -> got[1] = core.allocateRaw(64));
        } while ((b.threadId() & mask) != (a.threadId() & mask));
        MCache picked = core.slots[(int) (a.threadId() & mask)];
        runOn(a);
        assertSame(picked, ownedBy(a), "the first thread claims the cache its id picks");
        runOn(b);
        MCache ofB = ownedBy(b);
        assertNotSame(picked, ofB, "the second thread, whose id picks the same cache, claims the free one");
        assertSame(picked, ownedBy(a), "and leaves the first thread's cache to it");

        // The two objects come from the spans of two different caches.
        MSpan sa = core.heap.spanOf(got[0]);
        MSpan sb = core.heap.spanOf(got[1]);
        assertNotSame(sa, sb);
        assertSame(sa, picked.alloc[sa.spanClass]);
        assertSame(sb, ofB.alloc[sb.spanClass]);

        // A third thread on the same slot finds both caches owned: it takes one over and works.
        Thread third;
        do {
            third = Thread.ofPlatform().unstarted(() -> got[2] = core.allocateRaw(64));
        } while ((third.threadId() & mask) != (a.threadId() & mask));
        runOn(third);
        assertTrue(got[2] != 0);
        assertTrue(ownedBy(third) != null, "the third thread owns the cache it took over");
        core.free(got[0]);
        core.free(got[1]);
        core.free(got[2]);
        core.checkInvariants();
    }

    @Test
    void theIdleFlushKeepsALiveOwnerAndForgetsAnEndedOne() throws Exception {
        java.util.concurrent.CountDownLatch done = new java.util.concurrent.CountDownLatch(1);
        long[] got = new long[1];
        Thread a = Thread.ofPlatform().start(() -> {
            got[0] = core.allocateRaw(64);
            try {
                done.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        while (ownedBy(a) == null) {
            Thread.sleep(1);
        }
        MCache c = ownedBy(a);
        core.flushIdleCaches(); // notes the refill count (the background thread may get there first)
        core.flushIdleCaches(); // no refill since: idle, flushed
        assertEquals(0, c.cachedSpans(), "idle: its spans went back");
        assertSame(c, ownedBy(a), "the owner lives: it keeps its cache");
        done.countDown();
        a.join();
        core.flushIdleCaches();
        assertEquals(0, c.owner, "the owner has ended: the cache is anyone's");
        core.free(got[0]);
        core.checkInvariants();
    }
}
