package io.gomem.heap;

import io.gomem.Mem;
import io.gomem.TestThreads;
import io.gomem.os.KernelView;
import io.gomem.os.MemState;
import io.gomem.os.MemoryLimitExceededError;
import io.gomem.os.OsMemory;
import io.gomem.os.Purpose;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.ToLongFunction;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The Scavenger alone, over a PageAlloc, a real OS layer (MADV_DONTNEED: the kernel drops pages
 * at once) and a heap lock of its own, with a sink that records every OS call it is asked for
 * (and what was held during it) before making it.
 */
class ScavengerAloneTest {
    static final long PAGE = PageAlloc.PAGE_SIZE;
    static final long CHUNK = PageAlloc.CHUNK_BYTES;
    static final int CHUNK_PAGES = PageAlloc.CHUNK_PAGES;
    static final int BATCH = Scavenger.BATCH_PAGES;

    final SpinLock lock = new SpinLock();
    final PageAlloc pa = new PageAlloc(lock);
    final OsMemory os = new OsMemory(OsMemory.UnusedMode.DONTNEED);
    final Sink sink = new Sink();
    long base;
    long len;

    /** One OS call the scavenger asked for: the run, and whether the heap lock was held (by the caller, by anyone). */
    record Call(long base, long npages, boolean heldByCaller, boolean locked) {
        long limit() {
            return base + npages * PAGE;
        }
    }

    /** Records each call, then returns the run to the OS; can fail, block or sleep on request. */
    final class Sink implements PageAlloc.ScavengeSink {
        final List<Call> calls = new CopyOnWriteArrayList<>();
        volatile RuntimeException failNext;
        volatile CountDownLatch entered;
        volatile CountDownLatch proceed;
        volatile long sleepMillis;

        @Override
        public void release(long b, long npages) {
            calls.add(new Call(b, npages, lock.isHeldByCurrentThread(), lock.isLocked()));
            RuntimeException f = failNext;
            if (f != null) {
                failNext = null;
                throw f;
            }
            CountDownLatch in = entered;
            if (in != null) {
                entered = null; // the first call only
                in.countDown();
                try {
                    if (!proceed.await(30, TimeUnit.SECONDS)) {
                        throw new IllegalStateException("test never let the OS call proceed");
                    }
                } catch (InterruptedException e) {
                    throw new IllegalStateException(e);
                }
            }
            if (sleepMillis > 0) {
                try {
                    Thread.sleep(sleepMillis);
                } catch (InterruptedException e) {
                    throw new IllegalStateException(e);
                }
            }
            os.sysUnused(b, npages * PAGE);
        }

        long pages() {
            long n = 0;
            for (Call c : calls) {
                n += c.npages;
            }
            return n;
        }
    }

    @AfterEach
    void unmap() {
        CountDownLatch p = sink.proceed;
        if (p != null) {
            p.countDown(); // never leave a thread blocked in the sink
        }
        if (len > 0) {
            os.sysFree(base, len);
        }
    }

    Scavenger scavenger(long soft, long hard, int retainExtraPercent) {
        return new Scavenger(new Scavenger.Config(soft, hard, retainExtraPercent, 1), pa, os, lock, sink);
    }

    Scavenger unlimited() {
        return scavenger(Long.MAX_VALUE, Long.MAX_VALUE, 10);
    }

    /** Reserves and maps {@code chunks} 4 MiB chunks of heap memory, and grows the page allocator over them (free, scavenged). */
    void map(int chunks) {
        len = chunks * CHUNK;
        base = os.sysReserveAligned(0, len, CHUNK, Purpose.HEAP);
        os.sysMap(base, len);
        locked(() -> pa.grow(base, len));
    }

    void locked(Runnable r) {
        lock.lock();
        try {
            r.run();
        } finally {
            lock.unlock();
        }
    }

    long lockedGet(ToLongFunction<PageAlloc> f) {
        lock.lock();
        try {
            return f.applyAsLong(pa);
        } finally {
            lock.unlock();
        }
    }

    long page(int i) {
        return base + i * PAGE;
    }

    /**
     * Lays out the pages from {@code base}: 'U' in use (Ready, touched), 'F' free and not
     * scavenged (Ready, touched: what a freed span leaves), 'S' free and scavenged (Prepared);
     * pages past the pattern stay fresh (free, scavenged, Prepared).
     */
    void layout(String pattern) {
        int n = pattern.length();
        if (n == 0) {
            return;
        }
        lock.lock();
        try {
            assertEquals(base, pa.alloc(n), "a fresh mapping: the layout starts at its base");
            assertEquals(n, pa.lastScavengedPages());
        } finally {
            lock.unlock();
        }
        os.sysUsed(base, n * PAGE);
        Mem m = Mem.at(base, n * PAGE);
        for (long off = 0; off < n * PAGE; off += OsMemory.PAGE_SIZE) {
            m.setByte(off, (byte) 1);
        }
        for (int i = 0; i < n; ) {
            char c = pattern.charAt(i);
            int j = i;
            while (j < n && pattern.charAt(j) == c) {
                j++;
            }
            long b = page(i);
            long np = j - i;
            switch (c) {
                case 'U' -> { }
                case 'F' -> locked(() -> pa.free(b, np));
                case 'S' -> {
                    os.sysUnused(b, np * PAGE);
                    locked(() -> pa.freeScavenged(b, np));
                }
                default -> throw new IllegalArgumentException("layout char " + c);
            }
            i = j;
        }
    }

    static long count(String pattern, char c) {
        return pattern.chars().filter(x -> x == c).count();
    }

    /**
     * The runs the scavenger must release for {@code pattern}: every maximal run of 'F' pages
     * cut at chunk boundaries, highest first, each taken from its top in pieces of at most
     * {@code batch} pages. As {base, npages}.
     */
    List<List<Long>> expectedRuns(String pattern, int batch) {
        List<List<Long>> out = new ArrayList<>();
        int i = pattern.length() - 1;
        while (i >= 0) {
            if (pattern.charAt(i) != 'F') {
                i--;
                continue;
            }
            int top = i; // highest page of the run
            int lo = i;
            while (lo - 1 >= 0 && pattern.charAt(lo - 1) == 'F' && (lo % CHUNK_PAGES) != 0) {
                lo--;
            }
            for (int t = top; t >= lo; t -= batch) {
                int n = Math.min(batch, t - lo + 1);
                out.add(List.of(page(t - n + 1), (long) n));
            }
            i = lo - 1;
        }
        return out;
    }

    /** The highest {@code pages} free, unscavenged pages of {@code pattern}, run by run from the top (the synchronous path). */
    List<List<Long>> topPages(String pattern, long pages) {
        List<List<Long>> out = new ArrayList<>();
        for (List<Long> run : expectedRuns(pattern, Integer.MAX_VALUE)) {
            if (pages == 0) {
                break;
            }
            long n = Math.min(pages, run.get(1));
            out.add(List.of(run.get(0) + (run.get(1) - n) * PAGE, n));
            pages -= n;
        }
        return out;
    }

    List<List<Long>> calls() {
        List<List<Long>> out = new ArrayList<>();
        for (Call c : sink.calls) {
            out.add(List.of(c.base, c.npages));
        }
        return out;
    }

    long readyBytes() {
        return os.bytes(MemState.READY, Purpose.HEAP);
    }

    // ───────────────────────────── releaseAll ─────────────────────────────

    static String random(long seed, int pages) {
        SplittableRandom rnd = new SplittableRandom(seed);
        StringBuilder sb = new StringBuilder();
        String kinds = "UFS";
        while (sb.length() < pages) {
            char c = kinds.charAt(rnd.nextInt(3));
            int run = 1 + rnd.nextInt(rnd.nextBoolean() ? 8 : 150);
            sb.append(String.valueOf(c).repeat(Math.min(run, pages - sb.length())));
        }
        return sb.toString();
    }

    static Stream<Arguments> layouts() {
        return Stream.of(
                Arguments.of("one run of 200 free pages: four batches", 1, "U".repeat(10) + "F".repeat(200)),
                Arguments.of("runs between pages in use", 1, "F".repeat(30) + "U".repeat(5) + "F".repeat(100) + "U" + "F".repeat(3)),
                Arguments.of("scavenged pages split runs", 1, "F".repeat(70) + "S".repeat(10) + "F".repeat(70)),
                Arguments.of("a run across a chunk boundary is cut there", 2, "U".repeat(400) + "F".repeat(300)),
                Arguments.of("exactly one batch", 1, "U" + "F".repeat(BATCH)),
                Arguments.of("one page more than a batch", 1, "U" + "F".repeat(BATCH + 1)),
                Arguments.of("nothing free and unscavenged", 1, "U".repeat(20) + "S".repeat(20)),
                Arguments.of("random layout, seed 1", 2, random(1, 2 * CHUNK_PAGES)),
                Arguments.of("random layout, seed 2", 2, random(2, 2 * CHUNK_PAGES)),
                Arguments.of("random layout, seed 3", 2, random(3, 2 * CHUNK_PAGES - 77)));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("layouts")
    void releaseAllReleasesEveryFreeUnscavengedPageHighestFirstInBatchesWithoutTheLock(String name, int chunks, String pattern) {
        map(chunks);
        layout(pattern);
        Scavenger s = unlimited();
        long free = count(pattern, 'F');
        long used = count(pattern, 'U');
        long scavengedBefore = lockedGet(PageAlloc::scavengedPages);
        for (int i = 0; i < pattern.length(); i++) {
            if (pattern.charAt(i) == 'F') {
                assertEquals(PAGE, KernelView.residentBytes(page(i), PAGE), "free page " + i + " is resident before");
            }
        }

        assertEquals(free * PAGE, s.releaseAll());

        assertEquals(expectedRuns(pattern, BATCH), calls(), "runs, highest first, at most " + BATCH + " pages each");
        long prev = Long.MAX_VALUE;
        for (Call c : sink.calls) {
            assertFalse(c.heldByCaller, "the heap lock is not held across the OS call " + c);
            assertFalse(c.locked, "nobody holds the heap lock during " + c);
            assertTrue(c.npages >= 1 && c.npages <= BATCH, c.toString());
            assertTrue(c.limit() <= prev, "highest first: " + c);
            assertEquals(c.base >>> PageAlloc.CHUNK_SHIFT, (c.limit() - 1) >>> PageAlloc.CHUNK_SHIFT, "within one chunk: " + c);
            prev = c.base;
        }
        lock.lock();
        try {
            assertEquals(scavengedBefore + free, pa.scavengedPages());
            assertEquals(pa.totalPages() - used, pa.scavengedPages(), "every free page is scavenged now");
            assertEquals(0, pa.claimedPages());
            assertEquals(used, pa.inUsePages());
            for (int i = 0; i < pattern.length(); i++) {
                char c = pattern.charAt(i);
                assertEquals(c == 'U', pa.isAllocated(page(i)), "page " + i + " (" + c + ") allocated");
                assertEquals(c != 'U', pa.isScavenged(page(i)), "page " + i + " (" + c + ") scavenged");
            }
            pa.checkInvariants();
        } finally {
            lock.unlock();
        }
        for (int i = 0; i < pattern.length(); i++) {
            char c = pattern.charAt(i);
            if (c != 'S') {
                assertEquals(c == 'U' ? PAGE : 0, KernelView.residentBytes(page(i), PAGE), "page " + i + " (" + c + ") resident");
            }
        }
        assertEquals(used * PAGE, readyBytes());

        int n = sink.calls.size();
        assertEquals(0, s.releaseAll(), "nothing left");
        assertEquals(n, sink.calls.size());
    }

    // ───────────────────────────── background cycle ─────────────────────────────

    static Stream<Arguments> goals() {
        long kib = 1024;
        return Stream.of(
                Arguments.of("down to in use + 10%", "U".repeat(100) + "F".repeat(300), 10, Long.MAX_VALUE),
                Arguments.of("already at the goal: nothing", "U".repeat(100) + "F".repeat(5), 10, Long.MAX_VALUE),
                Arguments.of("nothing in use: goal 0", "F".repeat(50), 10, Long.MAX_VALUE),
                Arguments.of("retain no extra", "U".repeat(64) + "S" + "F".repeat(64), 0, Long.MAX_VALUE),
                Arguments.of("a soft limit lowers the goal to 95% of it", "U".repeat(100) + "F".repeat(300), 10, 900 * kib),
                Arguments.of("a soft limit above the goal changes nothing", "U".repeat(100) + "F".repeat(300), 10, 1024 * kib),
                Arguments.of("a goal below what is in use: every free page goes", "U".repeat(100) + "F".repeat(50), 10, 400 * kib));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("goals")
    void backgroundCycleReleasesDownToTheGoalWithoutTheLock(String name, String pattern, int extra, long soft) {
        map(1);
        layout(pattern);
        Scavenger s = scavenger(soft, Long.MAX_VALUE, extra);
        long inUse = count(pattern, 'U') * PAGE;
        long free = count(pattern, 'F') * PAGE;
        long goal = inUse + inUse / 100 * extra;
        if (soft != Long.MAX_VALUE) {
            goal = Math.min(goal, soft / 100 * 95);
        }
        long g = goal;
        assertEquals(goal, lockedGet(p -> s.goal()));
        long retainedBefore = readyBytes();
        assertEquals(inUse + free, retainedBefore);

        long released = s.backgroundCycle(Long.MAX_VALUE);

        long retained = readyBytes();
        assertEquals(retainedBefore - released, retained);
        assertEquals(released, sink.pages() * PAGE);
        for (Call c : sink.calls) {
            assertFalse(c.heldByCaller, "the heap lock is not held across the OS call " + c);
            assertFalse(c.locked, c.toString());
            assertTrue(c.npages <= BATCH, c.toString());
        }
        if (retainedBefore <= goal) {
            assertEquals(0, released, "at or under the goal: nothing to do");
            assertEquals(List.of(), sink.calls);
        } else if (inUse <= goal) {
            assertTrue(retained <= goal, "retained " + retained + " reached the goal " + goal);
            assertTrue(retained > goal - PAGE, "retained " + retained + ": no more than the excess released (goal " + goal + ")");
        } else {
            assertEquals(free, released, "the goal is out of reach: every free page released");
            assertEquals(inUse, retained);
        }
        // One run of free pages in each layout: released downward from its top, without a gap.
        long top = page(pattern.lastIndexOf('F') + 1);
        for (Call c : sink.calls) {
            assertEquals(top, c.limit(), "highest first, contiguous: " + c);
            top = c.base;
        }
        assertEquals(g, lockedGet(p -> s.goal()), "nothing in use changed");
        locked(pa::checkInvariants);
    }

    @Test
    void backgroundCycleStopsWhenItsBudgetIsSpent() {
        map(1);
        layout("F".repeat(300)); // goal 0: five batches to release
        Scavenger s = unlimited();
        sink.sleepMillis = 3;
        long released = s.backgroundCycle(5_000_000L); // 5 ms; every call takes at least 3
        assertTrue(sink.calls.size() >= 1 && sink.calls.size() <= 2,
                sink.calls.size() + " calls: the cycle ends after the run that spends its budget");
        assertEquals(sink.pages() * PAGE, released);
        assertTrue(released < 300 * PAGE, "stopped short of the goal");

        int before = sink.calls.size();
        long one = s.backgroundCycle(0);
        assertEquals(before + 1, sink.calls.size(), "budget 0: one run per cycle");
        assertEquals(BATCH * PAGE, one);

        sink.sleepMillis = 0;
        long total = released + one;
        for (int i = 0; i < 10; i++) {
            total += s.backgroundCycle(0);
        }
        assertEquals(300 * PAGE, total, "cycle after cycle, down to the goal");
        assertEquals(0, readyBytes());
    }

    // ───────────────────────────── makeRoom ─────────────────────────────

    static final long NONE = Long.MAX_VALUE;

    /** {@code name, pattern, soft, hard, request (pages), refused?, pages released}. */
    static Stream<Arguments> rooms() {
        String u10f20 = "U".repeat(10) + "F".repeat(20); // 30 pages Ready
        String u25f5 = "U".repeat(25) + "F".repeat(5);
        return Stream.of(
                Arguments.of("the excess is released", u10f20, NONE, 32 * PAGE, 8, false, 6),
                Arguments.of("it fits: nothing released", u10f20, NONE, 40 * PAGE, 8, false, 0),
                Arguments.of("exactly at the hard limit", u10f20, NONE, 38 * PAGE, 8, false, 0),
                Arguments.of("no room even after releasing every free page", u25f5, NONE, 32 * PAGE, 8, true, 5),
                Arguments.of("nothing free to release", "U".repeat(30), NONE, 32 * PAGE, 8, true, 0),
                Arguments.of("a soft limit alone releases but never refuses", u25f5, 32 * PAGE, NONE, 8, false, 5),
                Arguments.of("soft under hard: released down to the soft limit", u10f20, 24 * PAGE, 40 * PAGE, 8, false, 14),
                Arguments.of("soft under hard: past soft, within hard", u25f5, 24 * PAGE, 40 * PAGE, 8, false, 5),
                Arguments.of("no limits: nothing, however large", u10f20, NONE, NONE, 1L << 27, false, 0));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("rooms")
    void makeRoomReleasesWithTheLockDroppedAndRefusesPastTheHardLimit(String name, String pattern, long soft, long hard, long pages,
                                                               boolean refused, long releasedPages) {
        map(1);
        layout(pattern);
        Scavenger s = scavenger(soft, hard, 10);
        long readyBefore = readyBytes();
        long scavBefore = lockedGet(PageAlloc::scavengedPages);
        long bytes = pages * PAGE;
        lock.lock();
        try {
            if (refused) {
                MemoryLimitExceededError e = assertThrows(MemoryLimitExceededError.class, () -> s.makeRoom(bytes));
                assertEquals(hard, e.limit());
                assertEquals(bytes, e.requested());
                assertEquals(readyBytes(), e.ready());
            } else {
                s.makeRoom(bytes);
            }
        } finally {
            lock.unlock();
        }
        assertEquals(releasedPages, sink.pages());
        assertEquals(readyBefore - releasedPages * PAGE, readyBytes());
        assertEquals(scavBefore + releasedPages, lockedGet(PageAlloc::scavengedPages));
        for (Call c : sink.calls) {
            assertFalse(c.heldByCaller, "the synchronous path drops the heap lock for the OS call: " + c);
            assertFalse(c.locked, "nobody holds the heap lock during " + c);
        }
        assertTrue(lock.tryLock(), "the lock is given back");
        try {
            assertEquals(0, pa.claimedPages(), "every claim completed");
        } finally {
            lock.unlock();
        }
        assertEquals(topPages(pattern, releasedPages), calls(), "the highest free pages went");
        locked(pa::checkInvariants);
    }

    // ───────────────────────────── who holds the lock ─────────────────────────────

    enum Entry { RELEASE_ALL, BACKGROUND_CYCLE, MAKE_ROOM }

    /** Runs one entry point as the heap calls it (makeRoom with the lock held, the others without), with a hard limit that makeRoom must make room under. */
    long run(Scavenger s, Entry e) {
        return switch (e) {
            case RELEASE_ALL -> s.releaseAll();
            case BACKGROUND_CYCLE -> s.backgroundCycle(Long.MAX_VALUE);
            case MAKE_ROOM -> {
                lock.lock();
                try {
                    s.makeRoom(8 * PAGE);
                    yield 0;
                } finally {
                    lock.unlock();
                }
            }
        };
    }

    static Stream<Arguments> entries() {
        return Stream.of(
                Arguments.of(Entry.RELEASE_ALL, false),
                Arguments.of(Entry.BACKGROUND_CYCLE, false),
                Arguments.of(Entry.MAKE_ROOM, false));
    }

    @ParameterizedTest(name = "{0}: heap lock held during the OS call = {1}")
    @MethodSource("entries")
    void theHeapLockIsNeverHeldDuringTheOsCall(Entry e, boolean held) {
        map(1);
        layout("U".repeat(10) + "F".repeat(100)); // 110 pages Ready; the goal is 11
        Scavenger s = scavenger(Long.MAX_VALUE, 50 * PAGE, 10);
        run(s, e);
        assertFalse(sink.calls.isEmpty(), "some run was released");
        for (Call c : sink.calls) {
            assertEquals(held, c.heldByCaller, c.toString());
            assertEquals(held, c.locked, c.toString());
        }
    }

    /**
     * makeRoom drops the lock for its OS call: other threads take the lock meanwhile, and a
     * second allocation's limit check waits for the claim in flight (its pages are still Ready in
     * the OS layer's count), then sees them released: the hard limit stays exact.
     */
    @Test
    void aLimitCheckWaitsForTheRoomInFlightAndCountsWhatItReleased() throws Exception {
        map(1);
        layout("U".repeat(10) + "F".repeat(100)); // 110 pages Ready
        Scavenger s = scavenger(Long.MAX_VALUE, 50 * PAGE, 10);
        CountDownLatch in = new CountDownLatch(1);
        sink.proceed = new CountDownLatch(1);
        sink.entered = in;
        CompletableFuture<Void> first = new CompletableFuture<>();
        TestThreads.daemon("room-1", () -> {
            try {
                locked(() -> s.makeRoom(8 * PAGE)); // 60 pages to release: blocks in the sink
                first.complete(null);
            } catch (Throwable t) {
                first.completeExceptionally(t);
            }
        });
        assertTrue(in.await(10, TimeUnit.SECONDS), "the OS call started");
        assertTrue(lock.tryLock(5, TimeUnit.SECONDS), "the heap lock is free during makeRoom's OS call");
        try {
            assertEquals(68, pa.claimedPages(), "the pages it needs are claimed: nobody allocates them");
        } finally {
            lock.unlock();
        }
        CountDownLatch second = underLockOnAnotherThread(() -> s.makeRoom(8 * PAGE));
        assertFalse(second.await(300, TimeUnit.MILLISECONDS), "the second check waits for the claim in flight");
        sink.proceed.countDown();
        first.get(10, TimeUnit.SECONDS);
        assertTrue(second.await(10, TimeUnit.SECONDS));
        assertEquals(68, sink.pages(), "the second found room: 42 pages Ready, 8 more fit under 50");
        assertEquals(42 * PAGE, readyBytes());
        locked(pa::checkInvariants);
    }

    // ───────────────────────────── a failing OS call ─────────────────────────────

    @ParameterizedTest(name = "{0}")
    @MethodSource("entries")
    void aFailingOsCallLeavesTheRunFreeAndUnscavengedAndPropagates(Entry e, boolean ignored) {
        map(1);
        layout("U".repeat(10) + "F".repeat(100));
        Scavenger s = scavenger(Long.MAX_VALUE, 50 * PAGE, 10);
        long readyBefore = readyBytes();
        long scavBefore = lockedGet(PageAlloc::scavengedPages);
        RuntimeException boom = new RuntimeException("madvise failed");
        sink.failNext = boom;

        RuntimeException thrown = assertThrows(RuntimeException.class, () -> run(s, e));
        assertSame(boom, thrown, "the OS call's exception propagates as it is");
        assertEquals(1, sink.calls.size());
        Call failed = sink.calls.get(0);
        lock.lock();
        try {
            for (long p = failed.base; p < failed.limit(); p += PAGE) {
                assertFalse(pa.isAllocated(p), "page 0x" + Long.toHexString(p) + " of the failed run is free again");
                assertFalse(pa.isScavenged(p), "and not scavenged");
            }
            assertEquals(0, pa.claimedPages());
            assertEquals(scavBefore, pa.scavengedPages());
            assertEquals(10, pa.inUsePages());
            pa.checkInvariants();
        } finally {
            lock.unlock();
        }
        assertEquals(readyBefore, readyBytes(), "nothing was released");
        // No claim is left in flight: a reader does not wait.
        assertTimeoutPreemptively(Duration.ofSeconds(10), () -> locked(s::awaitClaims));

        // The failed run is tried again next time, and goes.
        sink.calls.clear();
        assertEquals(100 * PAGE, s.releaseAll());
        for (long p = failed.base; p < failed.limit(); p += PAGE) {
            long q = p;
            assertTrue(sink.calls.stream().anyMatch(c -> c.base <= q && q < c.limit()), "page 0x" + Long.toHexString(p) + " of the failed run went this time");
        }
        assertEquals(10 * PAGE, readyBytes());
    }

    // ───────────────────────────── a run in flight ─────────────────────────────

    /** Starts {@code s.releaseAll()} on another thread and waits until its first OS call blocks in the sink. */
    CompletableFuture<Long> releaseAllBlocked(Scavenger s) throws InterruptedException {
        CountDownLatch in = new CountDownLatch(1);
        sink.proceed = new CountDownLatch(1);
        sink.entered = in;
        CompletableFuture<Long> f = new CompletableFuture<>();
        // Daemon threads here: one stuck on a lock a broken scavenger leaked must fail the test, not hang the JVM.
        Thread t = TestThreads.daemon("scavenger", () -> {
            try {
                f.complete(s.releaseAll());
            } catch (Throwable e) {
                f.completeExceptionally(e);
            }
        });
        assertTrue(in.await(10, TimeUnit.SECONDS), "the OS call started");
        assertTrue(t.isAlive());
        return f;
    }

    /** Starts {@code r} on a thread that holds the heap lock around it; the returned latch opens when it is done. */
    CountDownLatch underLockOnAnotherThread(Runnable r) {
        CountDownLatch done = new CountDownLatch(1);
        TestThreads.daemon("lock-holder", () -> {
            lock.lock();
            try {
                r.run();
            } finally {
                lock.unlock();
                done.countDown();
            }
        });
        return done;
    }

    @Test
    void allocationGoesOnWhileARunIsInFlightAndAwaitClaimsWaitsForIt() throws Exception {
        map(1);
        layout("U".repeat(10) + "F".repeat(200)); // F: pages 10..209
        Scavenger s = unlimited();
        CompletableFuture<Long> result = releaseAllBlocked(s);
        Call inFlight = sink.calls.get(0);
        assertEquals(List.of(page(210 - BATCH), (long) BATCH), List.of(inFlight.base, inFlight.npages), "the top batch");

        // The lock is free during the call: this thread allocates other pages meanwhile.
        assertTrue(lock.tryLock(5, TimeUnit.SECONDS), "the heap lock is free while the OS call runs");
        long got;
        try {
            assertEquals(BATCH, pa.claimedPages(), "the run is claimed: in use for everyone else");
            got = pa.alloc(32);
            assertEquals(page(10), got, "first fit, below the claimed run");
            long big = pa.alloc(300); // fresh pages above the layout, not the claimed ones
            assertEquals(page(210), big);
            assertEquals(300, pa.lastScavengedPages());
            pa.freeScavenged(big, 300); // never made Ready: back as they were
            pa.checkInvariants();
        } finally {
            lock.unlock();
        }

        // A reader that needs the OS layer to agree waits for the run; it parks, leaving the lock free.
        CountDownLatch awaited = underLockOnAnotherThread(s::awaitClaims);
        assertFalse(awaited.await(300, TimeUnit.MILLISECONDS), "awaitClaims returned while the run was in flight");
        assertTrue(lock.tryLock(5, TimeUnit.SECONDS), "awaitClaims waits without holding the lock");
        lock.unlock();
        assertFalse(result.isDone());

        sink.proceed.countDown();
        assertTrue(awaited.await(10, TimeUnit.SECONDS), "awaitClaims returns once the call completed");
        long released = result.get(10, TimeUnit.SECONDS);
        assertEquals((200 - 32) * PAGE, released, "the in-flight run and every free page left, not the ones allocated meanwhile");
        lock.lock();
        try {
            assertEquals(0, pa.claimedPages());
            for (long p = inFlight.base; p < inFlight.limit(); p += PAGE) {
                assertTrue(pa.isScavenged(p));
            }
            pa.free(got, 32);
            pa.checkInvariants();
        } finally {
            lock.unlock();
        }
        assertEquals(0, KernelView.residentBytes(inFlight.base, BATCH * PAGE), "the run in flight was released");
    }

    @Test
    void stopWaitsForTheRunInFlightAndNothingIsReleasedAfter() throws Exception {
        map(1);
        String pattern = "U".repeat(10) + "F".repeat(200);
        layout(pattern);
        Scavenger s = scavenger(Long.MAX_VALUE, 20 * PAGE, 10);
        CompletableFuture<Long> result = releaseAllBlocked(s);

        CountDownLatch stopped = underLockOnAnotherThread(s::stop);
        assertFalse(stopped.await(300, TimeUnit.MILLISECONDS), "stop returned while a run was in flight");
        sink.proceed.countDown();
        assertTrue(stopped.await(10, TimeUnit.SECONDS), "stop returns once the call completed");
        assertEquals(BATCH * PAGE, result.get(10, TimeUnit.SECONDS), "the run in flight completes; no other is claimed");
        assertEquals(1, sink.calls.size());

        long ready = readyBytes();
        assertEquals(0, s.releaseAll());
        assertEquals(0, s.backgroundCycle(Long.MAX_VALUE));
        lock.lock();
        try {
            s.makeRoom(100 * PAGE); // past the hard limit, with free pages: a stopped scavenger does nothing
            assertFalse(s.beginOsCall(), "no OS call may be announced after stop");
            assertEquals(200 - BATCH, pa.freePages() - pa.scavengedPages(), "the other free pages stay unscavenged");
        } finally {
            lock.unlock();
        }
        assertEquals(1, sink.calls.size(), "nothing more was released");
        assertEquals(ready, readyBytes());
    }

    /**
     * Issue 12: under huge-page advice the heap handed its scavenger a lambda over itself while
     * it was being built. It now builds the advice ({@link MHeap.HugeAdvice}) over the OS layer
     * alone, first, and hands that: here it serves a scavenger with no heap at all. The run
     * released goes back to the OS and its chunk is marked sparse, once; a chunk made dense is
     * unmarked.
     */
    @Test
    void theHugePageAdviceIsASinkOfItsOwnThatNeedsNoHeap() {
        map(2);
        layout("U".repeat(CHUNK_PAGES - BATCH) + "F".repeat(BATCH)); // chunk 0 ends in a free run; chunk 1 is fresh
        MHeap.HugeAdvice advice = new MHeap.HugeAdvice(os);
        Scavenger s = new Scavenger(new Scavenger.Config(Long.MAX_VALUE, Long.MAX_VALUE, 10, 1), pa, os, lock, advice);
        assertEquals(BATCH * PAGE, s.releaseAll());
        assertTrue(os.isState(page(CHUNK_PAGES - BATCH), BATCH * PAGE, MemState.PREPARED), "the run went back to the OS");
        assertTrue(os.isState(base, (CHUNK_PAGES - BATCH) * PAGE, MemState.READY), "and nothing else");
        assertTrue(advice.isSparse(base));
        assertFalse(advice.isSparse(base + CHUNK), "nothing released from the fresh chunk");
        assertEquals(1, advice.sparseChunks());
        advice.markSparse(base + CHUNK - PAGE, 2 * PAGE); // a range over both chunks
        assertTrue(advice.isSparse(base + CHUNK));
        assertEquals(2, advice.sparseChunks(), "each chunk marked once");
        advice.dense(base);
        assertFalse(advice.isSparse(base));
        advice.dense(base); // not sparse: nothing to do
        assertEquals(1, advice.sparseChunks());
        locked(pa::checkInvariants);
    }
}
