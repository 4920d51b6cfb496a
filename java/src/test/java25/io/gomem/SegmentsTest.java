package io.gomem;

import io.gomem.stats.MemStats;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Named;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.function.Function;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link GoHeap.Segments}, the heap as a SegmentAllocator: what its methods do when they fail. */
class SegmentsTest {
    GoHeap heap = GoHeap.builder().procs(2).build();

    @AfterEach
    void close() {
        if (!heap.isClosed()) {
            heap.checkInvariants();
            heap.close();
        }
    }

    /** A native segment whose arena was closed: any access throws IllegalStateException. */
    static MemorySegment closedSource;
    /** A segment of a confined arena owned by {@link #owner}: access from here throws WrongThreadException. */
    static MemorySegment otherThreadsSource;
    static Thread owner;
    static final CountDownLatch DONE = new CountDownLatch(1);

    @BeforeAll
    static void sources() throws Exception {
        try (Arena a = Arena.ofConfined()) {
            closedSource = a.allocate(64, 8);
        }
        CompletableFuture<MemorySegment> handed = new CompletableFuture<>();
        owner = Thread.ofPlatform().name("source-owner").start(() -> {
            try (Arena a = Arena.ofConfined()) {
                handed.complete(a.allocate(64, 8));
                DONE.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        otherThreadsSource = handed.get();
    }

    @AfterAll
    static void closeSources() throws InterruptedException {
        DONE.countDown();
        owner.join();
    }

    record Failing(Function<GoHeap.Segments, MemorySegment> call, Class<? extends Throwable> type, boolean allocatesFirst) {
    }

    private static Arguments failing(String name, Function<GoHeap.Segments, MemorySegment> call,
                                     Class<? extends Throwable> type, boolean allocatesFirst) {
        return Arguments.of(Named.of(name, new Failing(call, type, allocatesFirst)));
    }

    static Stream<Arguments> failingCalls() {
        MemorySegment nativeSource = Arena.ofAuto().allocate(64, 8);
        return Stream.of(
                failing("element sizes differ", s -> s.allocateFrom(ValueLayout.JAVA_INT,
                        MemorySegment.ofArray(new long[2]), ValueLayout.JAVA_LONG, 0, 2), IllegalArgumentException.class, true),
                failing("misaligned source", s -> s.allocateFrom(ValueLayout.JAVA_INT,
                        nativeSource, ValueLayout.JAVA_INT, 1, 2), IllegalArgumentException.class, true),
                failing("source too short", s -> s.allocateFrom(ValueLayout.JAVA_INT,
                        nativeSource, ValueLayout.JAVA_INT, 0, 100), IndexOutOfBoundsException.class, true),
                failing("negative source offset", s -> s.allocateFrom(ValueLayout.JAVA_INT,
                        nativeSource, ValueLayout.JAVA_INT, -4, 2), IndexOutOfBoundsException.class, true),
                failing("source of a closed arena", s -> s.allocateFrom(ValueLayout.JAVA_LONG,
                        closedSource, ValueLayout.JAVA_LONG, 0, 4), IllegalStateException.class, true),
                failing("confined source used from the wrong thread", s -> s.allocateFrom(ValueLayout.JAVA_LONG,
                        otherThreadsSource, ValueLayout.JAVA_LONG, 0, 4), WrongThreadException.class, true),
                failing("heap segment stored as an address", s -> s.allocateFrom(ValueLayout.ADDRESS,
                        MemorySegment.ofArray(new byte[8])), IllegalArgumentException.class, true),
                failing("negative element count", s -> s.allocateFrom(ValueLayout.JAVA_INT,
                        nativeSource, ValueLayout.JAVA_INT, 0, -1), IllegalArgumentException.class, false));
    }

    /**
     * Every failure of a SegmentAllocator method leaves the heap as it was: the block allocated
     * before the copy or check that failed is freed again, and the JDK's own exception comes out.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("failingCalls")
    void aFailingSegmentAllocatorMethodLeavesNoBlockBehind(Failing f) {
        GoHeap.Segments seg = heap.segments();
        MemorySegment keep = seg.allocate(64); // a live object, so the heap is not empty
        MemStats before = heap.memStatsSwept();
        assertThrows(f.type(), () -> f.call().apply(seg));
        MemStats after = heap.memStatsSwept();
        assertEquals(before.heapObjects(), after.heapObjects(), "live objects after the failed call");
        assertEquals(before.mallocs() + (f.allocatesFirst() ? 1 : 0), after.mallocs(), "mallocs: the call allocated");
        assertEquals(before.frees() + (f.allocatesFirst() ? 1 : 0), after.frees(), "frees: and freed again");
        heap.checkInvariants();
        seg.free(keep);
        assertEquals(0, heap.memStatsSwept().heapObjects());
    }

    static Stream<Arguments> tooLargeSegments() {
        return Stream.of(Arguments.of(100L), Arguments.of(64L), Arguments.of(100_000L), Arguments.of(3L << 20));
    }

    /**
     * A segment longer than the block at its address cannot be one this heap returned (say, a
     * segment over two adjacent blocks): free refuses it and frees nothing.
     */
    @ParameterizedTest(name = "block of {0} B")
    @MethodSource("tooLargeSegments")
    void freeRefusesASegmentLargerThanTheBlockAtItsAddress(long size) {
        GoHeap.Segments seg = heap.segments();
        MemorySegment s = seg.allocate(size);
        long usable = heap.usableSize(s.address());
        MemorySegment tooLarge = s.reinterpret(usable + 1);
        MemStats before = heap.memStatsSwept();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> seg.free(tooLarge));
        String m = e.getMessage();
        assertTrue(m.contains("0x" + Long.toHexString(s.address())) && m.contains((usable + 1) + " B")
                && m.contains(usable + " B"), m);
        MemStats after = heap.memStatsSwept();
        assertEquals(before.heapObjects(), after.heapObjects(), "nothing freed");
        assertEquals(before.frees(), after.frees(), "nothing freed");
        s.fill((byte) 1); // still ours
        seg.free(s);
        assertEquals(0, heap.memStatsSwept().heapObjects());
    }

    /** heap.segment(address): the live object's usable bytes, in the heap's scope; anything else refused. */
    @Test
    void aSegmentOverARawAllocationSeesTheSameBytes() {
        for (long size : new long[] {4, 64, 1000, 100_000}) {
            long p = heap.allocate(size);
            MemorySegment s = heap.segment(p);
            assertEquals(p, s.address());
            assertEquals(heap.usableSize(p), s.byteSize());
            assertTrue(s.byteSize() >= size);
            s.set(ValueLayout.JAVA_BYTE, size - 1, (byte) 42);
            assertEquals(42, heap.segment(p).get(ValueLayout.JAVA_BYTE, size - 1));
            if (size >= 64) {
                assertThrows(IllegalArgumentException.class, () -> heap.segment(p + 8), "an interior address");
            }
            heap.free(p);
            assertThrows(IllegalArgumentException.class, () -> heap.segment(p), "a freed object");
        }
        assertThrows(IllegalArgumentException.class, () -> heap.segment(12345), "not this heap's");
        try (GoHeap other = GoHeap.builder().procs(1).build()) {
            MemorySegment s = other.segment(other.allocate(64));
            other.close();
            assertThrows(IllegalStateException.class, () -> s.get(ValueLayout.JAVA_BYTE, 0), "dead with its heap");
        }
    }

    @Test
    void freeRefusesAHeapSegment() {
        GoHeap.Segments seg = heap.segments();
        MemorySegment s = seg.allocate(64);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> seg.free(MemorySegment.ofArray(new byte[64])));
        assertTrue(e.getMessage().contains("heap segment"), e.getMessage());
        assertEquals(1, heap.memStatsSwept().heapObjects());
        seg.free(s);
    }

    /**
     * What free cannot check, as its javadoc says: a shorter slice at offset 0 looks just like the
     * segment allocate returned, and freeing it frees the whole block.
     */
    @Test
    void aShorterSliceAtOffsetZeroFreesTheWholeBlock() {
        GoHeap.Segments seg = heap.segments();
        MemorySegment s = seg.allocate(1000);
        seg.free(s.asSlice(0, 10));
        assertEquals(0, heap.memStatsSwept().heapObjects());
        assertThrows(IllegalStateException.class, () -> seg.free(s), "the block is free already: a double free");
    }

    /** The overriding methods keep the JDK's results: each gives what an Arena gives. */
    @Test
    void everySegmentAllocatorMethodGivesWhatAnArenaGives() {
        GoHeap.Segments seg = heap.segments();
        MemorySegment src = MemorySegment.ofArray(new int[] {1, 2, 3, 4});
        try (Arena arena = Arena.ofConfined()) {
            java.util.List<Function<java.lang.foreign.SegmentAllocator, MemorySegment>> calls = java.util.List.of(
                    a -> a.allocateFrom("gomem"),
                    a -> a.allocateFrom("gømem ✓", java.nio.charset.StandardCharsets.UTF_16LE),
                    a -> a.allocateFrom(ValueLayout.JAVA_BYTE, (byte) 7),
                    a -> a.allocateFrom(ValueLayout.JAVA_CHAR, 'x'),
                    a -> a.allocateFrom(ValueLayout.JAVA_SHORT, (short) -3),
                    a -> a.allocateFrom(ValueLayout.JAVA_INT, 42),
                    a -> a.allocateFrom(ValueLayout.JAVA_FLOAT, 1.5f),
                    a -> a.allocateFrom(ValueLayout.JAVA_LONG, -1L),
                    a -> a.allocateFrom(ValueLayout.JAVA_DOUBLE, 2.25),
                    a -> a.allocateFrom(ValueLayout.ADDRESS, MemorySegment.ofAddress(0x1234)),
                    a -> a.allocateFrom(ValueLayout.JAVA_INT, src, ValueLayout.JAVA_INT, 4, 3),
                    a -> a.allocateFrom(ValueLayout.JAVA_BYTE, (byte) 1, (byte) 2),
                    a -> a.allocateFrom(ValueLayout.JAVA_SHORT, (short) 1, (short) 2),
                    a -> a.allocateFrom(ValueLayout.JAVA_CHAR, 'a', 'b'),
                    a -> a.allocateFrom(ValueLayout.JAVA_INT, 1, 2, 3),
                    a -> a.allocateFrom(ValueLayout.JAVA_FLOAT, 1f, 2f),
                    a -> a.allocateFrom(ValueLayout.JAVA_LONG, 1L, 2L),
                    a -> a.allocateFrom(ValueLayout.JAVA_DOUBLE, 1d, 2d),
                    a -> a.allocate(ValueLayout.JAVA_LONG),
                    a -> a.allocate(ValueLayout.JAVA_LONG, 5),
                    a -> a.allocate(24));
            for (int i = 0; i < calls.size(); i++) {
                MemorySegment want = calls.get(i).apply(arena);
                MemorySegment got = calls.get(i).apply(seg);
                assertEquals(want.byteSize(), got.byteSize(), "size of call " + i);
                assertEquals(-1, want.mismatch(got), "contents of call " + i);
                seg.free(got);
            }
        }
        assertEquals(0, heap.memStatsSwept().heapObjects());
    }
}
