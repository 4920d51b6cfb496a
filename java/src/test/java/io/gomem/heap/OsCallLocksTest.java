package io.gomem.heap;

import io.gomem.os.OsMemory;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Issue 12: releaseMemory, the background sweep and scavenge, and the reuse of a span's released
 * pages make no system call holding the heap lock or a central lock, over spans with OS pages
 * released inside them. Every OS call the heap makes is watched ({@link OsCallWatch}), with what
 * the calling thread held during it.
 */
class OsCallLocksTest {
    /** 1 KiB objects: a one-page span of 8, so 4 on each 4 KiB OS page. */
    static final long OBJ = 1024;
    static final long PAGE = SizeClasses.PAGE_SIZE;

    Malloc m;
    OsCallWatch watch;

    @BeforeEach
    void setUp() {
        assumeTrue(OsMemory.PAGE_SIZE < PAGE, "OS pages smaller than the heap's: only then are OS pages released inside spans");
        m = Malloc.create(new OsMemory(OsMemory.UnusedMode.DONTNEED), Malloc.Config.of(1));
        Background.unregister(m); // the background tick runs when the test says
        watch = OsCallWatch.of(m);
    }

    @AfterEach
    void tearDown() {
        if (watch != null) {
            watch.close();
        }
        if (m != null) {
            m.close();
        }
    }

    List<Long> allocate(int n) {
        List<Long> a = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            a.add(m.allocate(OBJ));
        }
        return a;
    }

    /** Frees every object but the first of each heap page (on the page's first OS page); returns the ones kept. */
    List<Long> freeAllButFirstOfEachPage(List<Long> objs) {
        List<Long> kept = new ArrayList<>();
        for (long a : objs) {
            if ((a & (PAGE - 1)) == 0) {
                kept.add(a);
            } else {
                m.free(a);
            }
        }
        return kept;
    }

    void freeAll(List<Long> objs) {
        for (long a : objs) {
            m.free(a);
        }
    }

    List<OsCallWatch.Call> inPhase(String phase, String name) {
        return watch.calls.stream().filter(c -> c.phase().equals(phase) && c.name().equals(name)).toList();
    }

    @Test
    void releaseMemoryTheBackgroundTickAndReuseMakeNoSystemCallUnderTheHeapOrACentralLock() {
        int spans = 64;
        watch.phase = "allocate";
        List<Long> objs = allocate(spans * 8);

        watch.phase = "release free OS pages inside spans";
        List<Long> kept = freeAllButFirstOfEachPage(objs);
        assertEquals(spans, kept.size());
        m.releaseMemory(); // each span's second OS page goes back: the heap page is half released
        assertFalse(inPhase(watch.phase, "sysUnused").isEmpty(), "the free OS pages were released");

        watch.phase = "release spans freed with released pages";
        freeAll(kept);
        m.releaseMemory(); // the sweep frees the spans: the rest of each half-released page goes to the OS
        assertFalse(inPhase(watch.phase, "sysUnused").isEmpty(), "the other halves of the pages were released");

        watch.phase = "allocate again";
        objs = allocate(spans * 8);
        kept = freeAllButFirstOfEachPage(objs);
        m.releaseMemory();

        watch.phase = "reuse released pages";
        List<Long> again = allocate(spans * 7); // exactly the free slots of the spans with released pages
        assertFalse(inPhase(watch.phase, "sysUsed").isEmpty(), "the released pages were made Ready again");
        freeAll(again);
        m.releaseMemory();

        watch.phase = "background sweep of spans freed with released pages";
        freeAll(kept);
        m.backgroundTick(); // sweeps every class, then scavenges toward the goal
        assertFalse(inPhase(watch.phase, "sysUnused").isEmpty(), "the background sweep released the other halves");

        // Allocation may hold the heap lock while it grows the heap or makes a new span's pages
        // Ready (see MHeap's comment); nothing else may hold a lock across a system call.
        List<String> violations = watch.calls.stream()
                .filter(c -> !c.held().isEmpty() && (!c.phase().startsWith("allocate") || c.name().equals("sysUnused")))
                .map(c -> c.phase() + ": " + c.held() + " held across " + c.name())
                .distinct().toList();
        assertEquals(List.of(), violations);
        m.checkInvariants();
    }

    /** Under a soft limit, an allocation releases free pages to make room: with no lock held during the calls. */
    @Test
    void makingRoomUnderTheLimitReleasesWithNoLockHeld() {
        m.close();
        watch.close();
        long limit = 4L << 20;
        m = Malloc.create(new OsMemory(OsMemory.UnusedMode.DONTNEED), new Malloc.Config(1, limit, Long.MAX_VALUE, 10, 1,
                Malloc.DEFAULT_MAX_HELD, 0, 1));
        Background.unregister(m);
        watch = OsCallWatch.of(m);
        long big = m.allocate(3L << 20);
        m.free(big); // 3 MiB free and Ready (a large free keeps no span this size)
        watch.phase = "room";
        long other = m.allocate(2L << 20); // 5 MiB Ready would pass the limit: free pages go first
        List<OsCallWatch.Call> released = inPhase("room", "sysUnused");
        assertFalse(released.isEmpty(), "free pages were released to make room");
        for (OsCallWatch.Call c : released) {
            assertTrue(c.held().isEmpty(), "held " + c.held() + " across " + c.line());
        }
        m.free(other);
        m.checkInvariants();
    }
}
