package io.gomem;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The segment API end to end (JDK 25): alignment, zeroing of reused memory, the allocator's helpers, use after close. */
class GoHeapSegmentApiTest {
    GoHeap heap = GoHeap.builder().procs(2).build();

    @AfterEach
    void close() {
        if (!heap.isClosed()) {
            heap.checkInvariants();
            heap.close();
        }
    }

    @ParameterizedTest(name = "alignment {0}")
    @ValueSource(longs = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 8192, 16384, 65536, 1 << 20, 4 << 20})
    void segmentsHonourEveryPowerOfTwoAlignment(long align) {
        GoHeap.Segments seg = heap.segments();
        for (long size : new long[] {1, 24, 48, 100, 3000, 9000, 40000}) {
            MemorySegment s = seg.allocate(size, align);
            assertEquals(0, s.address() % align, size + " B at 0x" + Long.toHexString(s.address()) + " aligned to " + align);
            assertEquals(size, s.byteSize());
            s.fill((byte) 0x7f);
            seg.free(s);
        }
        long p = heap.allocateAligned(100, align);
        assertEquals(0, p % align);
        heap.free(p);
    }

    @Test
    void segmentsAreZeroedEvenWhenMemoryIsReused() {
        GoHeap.Segments seg = heap.segments();
        for (long size : new long[] {8, 16, 100, 4096, 32768, 100_000}) {
            for (int round = 0; round < 3; round++) {
                List<MemorySegment> all = new ArrayList<>();
                for (int i = 0; i < 300; i++) {
                    MemorySegment s = seg.allocate(size);
                    for (long off = 0; off < size; off += 8) {
                        assertEquals(0, s.get(ValueLayout.JAVA_BYTE, off), "zeroed at +" + off + " of " + size + " B");
                    }
                    s.fill((byte) 0xee);
                    all.add(s);
                }
                all.forEach(seg::free);
                heap.releaseMemory(); // sweeps, so the next round reuses the dirty slots
            }
        }
    }

    @Test
    void segmentAllocatorHelpersWork() {
        GoHeap.Segments seg = heap.segments();
        MemorySegment s = seg.allocateFrom(ValueLayout.JAVA_INT, 1, 2, 3);
        assertArrayEquals(new int[] {1, 2, 3}, s.toArray(ValueLayout.JAVA_INT));
        MemorySegment str = seg.allocateFrom("gomem");
        assertEquals("gomem", str.getString(0));
        seg.free(s);
        seg.free(str);
    }

    @Test
    void segmentBadInputIsRefusedAndTheHeapStaysConsistent() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> heap.segments().allocate(8, 0));
        assertTrue(e.getMessage().contains("alignment 0"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> heap.segments().allocate(-5, 8));
        assertTrue(e.getMessage().contains("size -5"), e.getMessage());
        try (java.lang.foreign.Arena a = java.lang.foreign.Arena.ofConfined()) {
            MemorySegment foreign = a.allocate(64);
            e = assertThrows(IllegalArgumentException.class, () -> heap.segments().free(foreign));
            assertTrue(e.getMessage().contains("not an address"), e.getMessage());
        }
        heap.checkInvariants();
    }

    /**
     * The segments' state attaches to a heap at its first use ({@code Malloc.views}) under the
     * lock close holds throughout: a first segment or arena racing close either fails with
     * IllegalStateException or gets a scope that close then closes, never a live scope over
     * unmapped memory. 300 rounds of a first use on one thread against close on another.
     */
    @Test
    void aFirstSegmentRacingCloseNeverOutlivesTheHeap() throws Exception {
        for (int round = 0; round < 300; round++) {
            GoHeap h = GoHeap.builder().procs(1).build();
            long p = h.allocate(64);
            java.util.concurrent.CountDownLatch go = new java.util.concurrent.CountDownLatch(1);
            java.util.concurrent.atomic.AtomicReference<Object> got = new java.util.concurrent.atomic.AtomicReference<>();
            boolean arena = round % 2 == 1;
            Thread user = TestThreads.platform(() -> {
                try {
                    go.await();
                    got.set(arena ? h.ofShared() : h.segment(p));
                } catch (IllegalStateException e) {
                    got.set(e);
                } catch (Throwable t) {
                    got.set(new AssertionError("unexpected", t));
                }
            });
            go.countDown();
            h.close();
            user.join();
            Object r = got.get();
            if (r instanceof IllegalStateException e) {
                assertTrue(e.getMessage().contains("closed"), e.getMessage());
            } else if (r instanceof MemorySegment s) {
                assertTrue(!s.scope().isAlive(), "round " + round + ": a heap segment outlived its heap's close");
            } else if (r instanceof java.lang.foreign.Arena a) {
                assertTrue(!a.scope().isAlive(), "round " + round + ": an arena outlived its heap's close");
            } else {
                throw new AssertionError("round " + round + ": " + r, r instanceof Throwable t ? t : null);
            }
        }
    }

    @Test
    void segmentsFailClearlyAfterClose() {
        GoHeap.Segments seg = heap.segments();
        heap.close();
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> seg.allocate(8));
        assertTrue(e.getMessage().contains("closed"), e.getMessage());
        e = assertThrows(IllegalStateException.class, () -> heap.ofConfined());
        assertTrue(e.getMessage().contains("closed"), e.getMessage());
    }
}
