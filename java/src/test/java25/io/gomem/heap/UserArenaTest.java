package io.gomem.heap;

import io.gomem.os.KernelView;
import io.gomem.os.OsMemory;
import io.gomem.stats.MemStats;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The arenas' machinery (Go's user arenas): chunk sizes and growth, spans of their own for big
 * and over-aligned objects, zeroing only what may be dirty, the chunk cache (reuse, budget,
 * trim, releaseMemory), MemStats' arena figures, frees of arena memory refused, and the heap's
 * close with arenas open. The JDK contract itself is {@code ArenaContractTest}'s.
 */
class UserArenaTest {
    final Malloc m = Malloc.create(new OsMemory(), Malloc.Config.of(1));

    UserArenaTest() {
        Background.unregister(m); // trims happen when the tests say
    }

    @AfterEach
    void close() {
        m.close();
    }

    static final long K = 1024;

    MemStats stats() {
        return m.memStats().checkInvariants();
    }

    @Test
    void chunksStartAt64KiBAndDoubleUpTo8MiB() {
        try (Arena a = m.ofConfined()) {
            assertEquals(0, stats().arenaInuse(), "an arena takes no chunk before its first allocation");
            a.allocate(100);
            assertEquals(64 * K, stats().arenaInuse());
            assertEquals(1, stats().arenas());
            long held = 64 * K;
            long chunk = 64 * K;
            for (int i = 0; i < 9; i++) { // fill each chunk with 1 KiB objects until the next one comes
                long before = stats().arenaInuse();
                while (stats().arenaInuse() == before) {
                    a.allocate(1024, 8);
                }
                chunk = Math.min(chunk * 2, 8 * K * K);
                held += chunk;
                assertEquals(held, stats().arenaInuse(), "chunk " + (i + 2) + " is " + chunk + " B");
            }
        }
        MemStats after = stats();
        assertEquals(0, after.arenas());
        assertEquals(0, after.arenaInuse());
    }

    @Test
    void bigAndOverAlignedObjectsGetSpansOfTheirOwnAndGoBackToTheHeap() {
        try (Arena a = m.ofConfined()) {
            MemorySegment big = a.allocate(3 * K * K); // over a quarter chunk
            assertEquals(0, big.address() & (SizeClasses.PAGE_SIZE - 1));
            MemorySegment aligned = a.allocate(64, 1 << 20);
            assertEquals(0, aligned.address() & ((1 << 20) - 1));
            MemorySegment small = a.allocate(64);
            assertTrue(stats().arenaInuse() >= 3 * K * K + 64 * K + 8 * K, "" + stats().arenaInuse());
            big.fill((byte) 1);
            aligned.fill((byte) 2);
            small.fill((byte) 3);
            assertEquals(1, big.get(ValueLayout.JAVA_BYTE, 3 * K * K - 1));
        }
        assertEquals(64 * K, stats().arenaCached(), "only the chunk is cached; the own spans went back to the heap");
    }

    @Test
    void aClosedArenasChunkServesTheNextArenaZeroed() {
        long first;
        try (Arena a = m.ofConfined()) {
            MemorySegment s = a.allocate(4096);
            first = s.address();
            s.fill((byte) 0x5A);
            a.allocate(10_000).fill((byte) 0x5B);
        }
        assertEquals(64 * K, stats().arenaCached());
        try (Arena b = m.ofConfined()) {
            MemorySegment s = b.allocate(20_000);
            assertEquals(first, s.address(), "the cached chunk is taken first");
            assertEquals(0, stats().arenaCached());
            for (long i = 0; i < s.byteSize(); i += 8) {
                assertEquals(0, s.get(ValueLayout.JAVA_LONG_UNALIGNED, i), "byte " + i);
            }
            MemorySegment t = b.allocate(30_000); // above the old dirty mark: fresh from the kernel, still zero
            assertEquals(0, t.get(ValueLayout.JAVA_LONG, t.byteSize() - 8));
        }
    }

    /** Seeded random arenas of random sizes and alignments: every segment zero, aligned, disjoint from the others. */
    @Test
    void randomArenasHandOutZeroedAlignedDisjointSegments() {
        SplittableRandom r = new SplittableRandom(14);
        for (int round = 0; round < 40; round++) {
            try (Arena a = r.nextBoolean() ? m.ofConfined() : m.ofShared()) {
                List<MemorySegment> segs = new ArrayList<>();
                for (int i = 0, n = r.nextInt(1, 200); i < n; i++) {
                    long size = r.nextInt(8) == 0 ? r.nextLong(0, 300_000) : r.nextLong(0, 2000);
                    long align = 1L << r.nextInt(r.nextInt(10) == 0 ? 21 : 7);
                    MemorySegment s = a.allocate(size, align);
                    assertEquals(size, s.byteSize());
                    assertEquals(0, s.address() & (align - 1), "aligned to " + align);
                    for (long k = 0; k + 8 <= size; k += Math.max(8, size / 64) & -8L) {
                        assertEquals(0, s.get(ValueLayout.JAVA_LONG_UNALIGNED, k), "zero at " + k + " of " + size);
                    }
                    s.fill((byte) (i + 1));
                    segs.add(s);
                }
                for (int i = 0; i < segs.size(); i++) {
                    MemorySegment s = segs.get(i);
                    if (s.byteSize() > 0) {
                        assertEquals((byte) (i + 1), s.get(ValueLayout.JAVA_BYTE, 0), "segment " + i + " overwritten");
                        assertEquals((byte) (i + 1), s.get(ValueLayout.JAVA_BYTE, s.byteSize() - 1), "segment " + i + " overwritten");
                    }
                }
            }
        }
        assertEquals(0, stats().arenaInuse());
        m.checkInvariants();
    }

    /** Sizes near Long.MAX_VALUE must not wrap the bump pointer: OutOfMemoryError, and the arena goes on zeroed. */
    @Test
    void hugeRequestsThrowOutOfMemoryAndLeaveTheArenaWhole() {
        try (Arena a = m.ofConfined()) {
            a.allocate(100).fill((byte) 1);
            for (long size : new long[] {Long.MAX_VALUE, Long.MAX_VALUE - 7, Long.MAX_VALUE - (1 << 20), 1L << 50}) {
                assertThrows(OutOfMemoryError.class, () -> a.allocate(size, 8), "size " + size);
            }
            assertThrows(OutOfMemoryError.class, () -> a.allocate(1, 1L << 62));
            MemorySegment s = a.allocate(256, 16);
            assertEquals(0, s.get(ValueLayout.JAVA_LONG, 0));
            s.fill((byte) 2);
        }
        try (Arena b = m.ofConfined()) {
            MemorySegment s = b.allocate(4096);
            for (long i = 0; i < 4096; i += 8) {
                assertEquals(0, s.get(ValueLayout.JAVA_LONG, i), "byte " + i);
            }
        }
        m.checkInvariants();
    }

    @Test
    void theCacheKeepsAtMostItsBudgetPerStripe() {
        List<Arena> open = new ArrayList<>();
        for (int i = 0; i < 200; i++) {
            Arena a = m.ofConfined();
            a.allocate(8);
            open.add(a);
        }
        assertEquals(200 * 64 * K, stats().arenaInuse());
        for (Arena a : open) {
            a.close();
        }
        assertTrue(stats().arenaCached() <= UserArena.STRIPE_BUDGET, "" + stats().arenaCached());
        assertEquals(UserArena.STRIPE_BUDGET, stats().arenaCached(), "one thread: one stripe, filled to its budget");
        m.checkInvariants();
    }

    @Test
    void cachedChunksGoBackToTheHeapWhenIdleOrOnReleaseMemory() {
        try (Arena a = m.ofConfined()) {
            a.allocate(8);
        }
        assertEquals(64 * K, stats().arenaCached());
        m.backgroundTick(); // the stripe was used in this period: kept
        assertEquals(64 * K, stats().arenaCached());
        m.backgroundTick(); // a whole period unused: back to the heap
        assertEquals(0, stats().arenaCached());
        try (Arena a = m.ofConfined()) {
            a.allocate(8);
        }
        assertEquals(64 * K, stats().arenaCached());
        m.releaseMemory();
        assertEquals(0, stats().arenaCached());
        long inUse = stats().heapInuse();
        assertEquals(0, inUse, "no span left in use after releaseMemory");
    }

    @Test
    void aFreeOfArenaMemoryIsRefusedAndChangesNothing() {
        try (Arena a = m.ofConfined()) {
            MemorySegment s = a.allocate(64);
            MemorySegment t = a.allocate(64);
            s.fill((byte) 9);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> m.free(s.address()));
            assertTrue(e.getMessage().contains("memory of an arena"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> m.free(t.address()));
            assertThrows(IllegalArgumentException.class, () -> m.usableSize(s.address()));
            assertEquals(9, s.get(ValueLayout.JAVA_BYTE, 63));
            assertEquals(0, a.allocate(64).get(ValueLayout.JAVA_LONG, 0));
            m.checkInvariants();
        }
    }

    @Test
    void theHeapCloseIsRefusedWhileALiveThreadsConfinedArenaIsOpen() {
        Arena a = m.ofConfined();
        MemorySegment s = a.allocate(64);
        IllegalStateException e = assertThrows(IllegalStateException.class, m::close);
        assertTrue(e.getMessage().contains("confined arena") && e.getMessage().contains(Thread.currentThread().toString()),
                e.getMessage());
        assertFalse(m.isClosed());
        s.set(ValueLayout.JAVA_INT, 0, 5); // nothing changed: the arena and the heap still work
        a.allocate(64);
        m.free(m.allocate(64));
        try (Arena b = m.ofShared()) {
            b.allocate(8);
        }
        a.close();
        m.close();
        assertTrue(m.isClosed());
        assertThrows(IllegalStateException.class, m::ofConfined);
        assertThrows(IllegalStateException.class, m::ofShared);
    }

    /** A close refused for an open scope changes nothing: the shared arenas it would close stay open. */
    @Test
    void aCloseRefusedForAnOpenScopeLeavesSharedArenasOpen() {
        Arena shared = m.ofShared();
        MemorySegment s = shared.allocate(8);
        io.gomem.GoHeap.Local local = m.local();
        IllegalStateException e = assertThrows(IllegalStateException.class, m::close);
        assertTrue(e.getMessage().contains("GoHeap.Local"), e.getMessage());
        assertTrue(shared.scope().isAlive());
        s.set(ValueLayout.JAVA_LONG, 0, 7);
        shared.allocate(8);
        local.close();
        shared.close();
        m.close();
        assertTrue(m.isClosed());
    }

    @Test
    void theHeapCloseClosesSharedArenasAndForgetsArenasOfEndedThreads() throws Exception {
        Arena shared = m.ofShared();
        MemorySegment s = shared.allocate(64);
        Arena[] orphan = new Arena[1];
        Thread t = Thread.ofPlatform().start(() -> {
            orphan[0] = m.ofConfined();
            orphan[0].allocate(64);
        });
        t.join();
        assertEquals(2, stats().arenas());
        m.close();
        assertFalse(shared.scope().isAlive());
        assertThrows(IllegalStateException.class, () -> s.get(ValueLayout.JAVA_BYTE, 0));
        assertThrows(IllegalStateException.class, shared::close, "closed by the heap already");
        assertThrows(IllegalStateException.class, () -> shared.allocate(8));
    }

    @Test
    void arenaChunksCountAsLargeObjectsInTheHeapsFigures() {
        MemStats before = m.memStatsSwept();
        Arena a = m.ofShared();
        a.allocate(100);
        MemStats open = m.memStatsSwept();
        assertEquals(before.heapObjects() + 1, open.heapObjects());
        assertEquals(before.heapAlloc() + 64 * K, open.heapAlloc());
        a.close();
        MemStats closed = m.memStatsSwept();
        assertEquals(open.heapAlloc(), closed.heapAlloc(), "a cached chunk stays allocated in the heap");
        assertEquals(64 * K, closed.arenaCached());
        m.checkInvariants();
        String dump = m.statsDump().toText();
        assertTrue(dump.contains("arenas: 0 open, 0 B in their chunks, 65536 B of chunks cached"), dump);
    }

    @Test
    void aFreshChunkIsNotClearedAndItsPagesStayUntouchedUntilUsed() throws Exception {
        String thp = java.nio.file.Files.readString(java.nio.file.Path.of("/sys/kernel/mm/transparent_hugepage/enabled"));
        org.junit.jupiter.api.Assumptions.assumeFalse(thp.contains("[always]"), "THP always: one touch may back 2 MiB");
        try (Arena a = m.ofConfined()) {
            MemorySegment s = a.allocate(8);
            s.set(ValueLayout.JAVA_LONG, 0, 1);
            MemorySegment t = a.allocate(40 * K); // zero, and not cleared: fresh from the kernel
            assertEquals(0, t.get(ValueLayout.JAVA_LONG, 8 * K));
            long chunk = s.address();
            // Pages of a chunk fresh from the kernel that no allocation reached stay non-resident:
            // nothing cleared them (Go's needzero).
            assertEquals(4096, KernelView.residentBytes(chunk + 8 * K, 48 * K), "only the page read in the second object");
            assertNotEquals(0, KernelView.residentBytes(chunk, 4096));
        }
    }

    /** {@code gomem.checkInvariants}: the pom's check-invariants execution sets it; the checks below exist only then. */
    static final boolean CHECK = io.gomem.internal.Options.CHECK_INVARIANTS.booleanValue();

    @Test
    void anArenasBumpStateIsAssertedToBeItsOwnersOrItsMonitorHolders() throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(CHECK, "only with -Dgomem.checkInvariants=true");
        try (Arena confined = m.ofConfined(); Arena shared = m.ofShared()) {
            UserArena c = (UserArena) confined;
            UserArena sh = (UserArena) shared;
            c.bump(8, 8); // the owner: fine
            java.util.concurrent.CompletableFuture<Throwable> other = new java.util.concurrent.CompletableFuture<>();
            Thread.ofPlatform().start(() -> {
                try {
                    c.bump(8, 8);
                    other.complete(null);
                } catch (Throwable t) {
                    other.complete(t);
                }
            }).join();
            Throwable t = other.get();
            assertTrue(t instanceof IllegalStateException && t.getMessage().contains("owner"), String.valueOf(t));
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> sh.bump(8, 8), "without the monitor");
            assertTrue(e.getMessage().contains("monitor"), e.getMessage());
            synchronized (sh) {
                sh.bump(8, 8); // its monitor held: fine
            }
        }
        stats(); // the arenas closed cleanly
    }

    /** A source that records what it hands out and takes back, over the heap's own. */
    static final class Recording implements UserArena.Source {
        final Malloc to;
        final List<MSpan> allocated = new ArrayList<>();
        final List<MSpan> freed = new ArrayList<>();

        Recording(Malloc to) {
            this.to = to;
        }

        @Override
        public MSpan allocChunk(long bytes, long align) {
            MSpan s = to.allocChunk(bytes, align);
            allocated.add(s);
            return s;
        }

        @Override
        public void freeChunk(MSpan s) {
            freed.add(s);
            to.freeChunk(s);
        }

        @Override
        public void faultChunk(MSpan s) {
            to.faultChunk(s);
        }
    }

    /**
     * Issue 12: the heap built its Chunks handing them itself, half built, as their source. Now
     * Chunks take a whole source when made (HeapSegments makes one over the heap, which is whole
     * by then), and refuse none.
     */
    @Test
    void chunksAreMadeWithAWholeSource() {
        assertThrows(NullPointerException.class, () -> new UserArena.Chunks(null, 2));
        Recording r = new Recording(m);
        UserArena.Chunks c = new UserArena.Chunks(r, 2);
        assertSame(r, c.source());
        try (Arena a = c.open(false)) {
            a.allocate(100);
        }
        assertEquals(1, r.allocated.size(), "the first chunk came from the source");
    }

    /**
     * Issue 12: a stripe was built with the Chunks building it, half built. A stripe now knows no
     * Chunks: what it drains goes back through the Chunks' source, on the idle trim and on
     * releaseCached.
     */
    @Test
    void cachedChunksGoBackThroughTheChunksSource() {
        Recording r = new Recording(m);
        UserArena.Chunks c = new UserArena.Chunks(r, 1);
        try (Arena a = c.open(false)) {
            a.allocate(100);
        }
        assertEquals(1, r.allocated.size());
        assertEquals(List.of(), r.freed, "a closed arena's chunk is cached");
        assertEquals(64 * K, c.figures()[2]);
        c.trim(); // the stripe was used in this period: kept
        assertEquals(List.of(), r.freed);
        c.trim(); // a whole period unused: back through the source
        assertEquals(r.allocated, r.freed);
        assertEquals(0, c.figures()[2]);
        try (Arena a = c.open(true)) {
            a.allocate(100);
        }
        assertEquals(2, r.allocated.size());
        c.releaseCached();
        assertEquals(r.allocated, r.freed);
        assertEquals(0, c.figures()[2]);
        m.checkInvariants();
    }
}
