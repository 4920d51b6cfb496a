package io.gomem;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Named;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;
import java.lang.foreign.*;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.nio.ByteOrder;
import java.nio.charset.Charset;
import java.nio.charset.StandardCharsets;
import java.util.*;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.*;
import java.util.stream.Stream;

import static java.lang.foreign.ValueLayout.*;
import static java.util.Map.entry;
import static org.junit.jupiter.api.Assertions.*;

/**
 * The {@link Arena} contract, checked on four kinds of arena side by side: the JDK's
 * {@code Arena.ofConfined()} / {@code Arena.ofShared()} and gomem's {@code heap.ofConfined()} /
 * {@code heap.ofShared()}, which must be drop-ins for them. The checks re-express, as our own code,
 * the facts that OpenJDK's {@code test/jdk/java/foreign} tests check of arenas, scopes and allocators
 * (TestScope, TestSegments, TestSegmentAllocators, TestScopedOperations, TestMemorySession,
 * TestSharedAccess, TestHandshake, TestDowncallScope): sizes, alignments, zeroing (also of reused
 * memory), the SegmentAllocator defaults, confinement, the closed state, the exceptions of bad
 * requests, {@code reinterpret} cleanup actions, scopes, virtual-thread owners.
 *
 * <p>Where a case is about which exception (or none) an operation gives, about bytes written or
 * about an order, the test does the same on a JDK arena of the same kind (the "twin") and asserts
 * the same outcome: the JDK is the reference (for the JDK kinds, the JDK against itself). Every
 * test closes every arena it opens: the heap's close, after all tests, is refused while a confined
 * gomem arena of a live thread is open. Tests run in name order, so that a failure that leaves
 * the heap's chunk cache wrong shows in its own test first.
 */
@TestMethodOrder(MethodOrderer.MethodName.class)
class ArenaContractTest {
    static GoHeap heap;

    @BeforeAll
    static void openHeap() {
        heap = GoHeap.builder().build();
    }

    @AfterAll
    static void closeHeap() {
        heap.checkInvariants();
        heap.close();
    }

    /** One kind of arena under test: {@link #open()} one, or its {@link #twin()}, the JDK arena it must behave as. */
    record Kind(boolean confined, Function<GoHeap, Arena> factory) {
        Arena open() {
            return factory.apply(heap);
        }

        Arena twin() {
            return confined ? Arena.ofConfined() : Arena.ofShared();
        }
    }

    static Stream<Named<Kind>> kinds() {
        return Stream.of(Named.of("jdk confined", new Kind(true, h -> Arena.ofConfined())),
                Named.of("jdk shared", new Kind(false, h -> Arena.ofShared())),
                Named.of("gomem confined", new Kind(true, GoHeap::ofConfined)),
                Named.of("gomem shared", new Kind(false, GoHeap::ofShared)));
    }

    /** A test run once for each kind, named after it. */
    @Retention(RetentionPolicy.RUNTIME)
    @Target(ElementType.METHOD)
    @ParameterizedTest(name = "{0}")
    @MethodSource("io.gomem.ArenaContractTest#kinds")
    @interface EachKind {
    }

    static final long MIB = 1 << 20;
    static final MemorySegment ZEROS = MemorySegment.ofArray(new byte[(int) (6 * MIB)]);

    static void assertZero(MemorySegment s, String what) {
        assertEquals(-1, s.mismatch(ZEROS.asSlice(0, s.byteSize())), what + ": memory not zeroed");
    }

    /** What {@code op} throws (its simple class name), or "none". */
    static String outcome(Runnable op) {
        try {
            op.run();
            return "none";
        } catch (Throwable t) {
            return t.getClass().getSimpleName();
        }
    }

    /** The outcome of each named operation on {@code a}, by name. */
    static Map<String, String> outcomes(Map<String, Consumer<Arena>> ops, Arena a) {
        Map<String, String> r = new TreeMap<>();
        ops.forEach((name, op) -> r.put(name, outcome(() -> op.accept(a))));
        return r;
    }

    /** Runs {@code op} on a platform thread of its own and returns its outcome. */
    static String onOtherThread(Runnable op) throws InterruptedException {
        String[] r = new String[1];
        Thread.ofPlatform().start(() -> r[0] = outcome(op)).join();
        return r[0];
    }

    static final MemorySegment HEAP_INTS = MemorySegment.ofArray(new int[] {1, 2, 3, 4});

    /** Operations on an arena and one of its segments (64 bytes, 8-aligned), as TestScopedOperations lists them. */
    static final Map<String, BiConsumer<Arena, MemorySegment>> OPS = Map.ofEntries(
            entry("allocate(100, 1)", (a, s) -> a.allocate(100, 1)),
            entry("allocate(4096, 1 MiB)", (a, s) -> a.allocate(4096, MIB)),
            entry("allocate(3 MiB)", (a, s) -> a.allocate(3 * MIB)),
            entry("allocate(-1)", (a, s) -> a.allocate(-1)),
            entry("allocateFrom(byte)", (a, s) -> a.allocateFrom(JAVA_BYTE, (byte) 1)),
            entry("allocateFrom(address)", (a, s) -> a.allocateFrom(ADDRESS, MemorySegment.ofAddress(42))),
            entry("allocateFrom(int[])", (a, s) -> a.allocateFrom(JAVA_INT, 1, 2)),
            entry("allocateFrom(String, UTF-16)", (a, s) -> a.allocateFrom("hi", StandardCharsets.UTF_16)),
            entry("allocateFrom(5 args)", (a, s) -> a.allocateFrom(JAVA_INT, HEAP_INTS, JAVA_INT, 0, 4)),
            entry("get", (a, s) -> s.get(JAVA_INT, 0)),
            entry("get past the end", (a, s) -> s.get(JAVA_INT, 62)),
            entry("set", (a, s) -> s.set(JAVA_LONG, 8, 5L)),
            entry("fill", (a, s) -> s.fill((byte) 1)),
            entry("copyFrom", (a, s) -> s.copyFrom(HEAP_INTS)),
            entry("toArray", (a, s) -> s.toArray(JAVA_BYTE)),
            entry("getString", (a, s) -> s.getString(0)),
            entry("asSlice then get", (a, s) -> s.asSlice(4, 4).get(JAVA_BYTE, 0)),
            entry("asByteBuffer then get", (a, s) -> s.asByteBuffer().get(0)),
            entry("var handle get", (a, s) -> { int x = (int) JAVA_INT.varHandle().get(s, 0L); }),
            entry("asSlice", (a, s) -> s.asSlice(0, 4)), // no access
            entry("asSlice past the end", (a, s) -> s.asSlice(0, 65)),
            entry("scope().isAlive()", (a, s) -> s.scope().isAlive()),
            entry("isAccessibleBy", (a, s) -> s.isAccessibleBy(Thread.currentThread())));

    static Map<String, String> opOutcomes(Arena a, MemorySegment s) {
        Map<String, String> r = new TreeMap<>();
        OPS.forEach((name, op) -> r.put(name, outcome(() -> op.accept(a, s))));
        return r;
    }

    // ──────────────────────────── allocation ────────────────────────────

    /** Sizes from 0 to over 2 MiB at alignments 1 to 1 MiB (small sizes up to 256 MiB): size, alignment, zeroed, native. */
    @EachKind
    void allocatesAnySizeAtAnyAlignment(Kind kind) {
        long[] sizes = {0, 1, 7, 8, 9, 100, 1000, 4095, 4096, 4097, 70_000, 2 * MIB - 1, 2 * MIB, 2 * MIB + 1, 5 * MIB};
        for (int shift = 0; shift <= 28; shift++) {
            long align = 1L << shift;
            try (Arena arena = kind.open()) {
                for (long size : sizes) {
                    if (shift > 20 && size > 4096) {
                        break;
                    }
                    String what = "size " + size + " align " + align;
                    MemorySegment s = arena.allocate(size, align);
                    assertEquals(size, s.byteSize(), what);
                    assertEquals(0, s.address() % align, what + ": misaligned");
                    assertTrue(s.isNative() && !s.isMapped() && !s.isReadOnly() && s.heapBase().isEmpty(), what);
                    assertEquals(arena.scope(), s.scope(), what);
                    assertZero(s, what);
                    s.fill((byte) 0xA5); // dirty: later arenas may get this memory back
                }
                MemorySegment s = arena.allocate(16); // not mapped: nothing to load or force
                assertThrows(UnsupportedOperationException.class, s::load);
                assertThrows(UnsupportedOperationException.class, s::force);
            }
        }
    }

    /** Zero-length segments (TestSegments): size 0, aligned, distinct non-zero addresses as the JDK's. */
    @EachKind
    void zeroLengthSegments(Kind kind) {
        try (Arena arena = kind.open()) {
            List<MemorySegment> all = List.of(arena.allocate(0, 1), arena.allocate(MemoryLayout.sequenceLayout(0, JAVA_INT)),
                    arena.allocate(0, 4), arena.allocate(0), arena.allocate(JAVA_LONG, 0),
                    arena.allocateFrom(JAVA_INT, new int[0]), arena.allocate(0, 64 * 1024));
            long[] aligns = {1, 4, 4, 1, 8, 4, 64 * 1024};
            for (int i = 0; i < all.size(); i++) {
                MemorySegment s = all.get(i);
                assertTrue(s.byteSize() == 0 && s.address() != 0 && s.address() % aligns[i] == 0 && s.scope().equals(arena.scope()), s.toString());
            }
            assertEquals(all.size(), all.stream().mapToLong(MemorySegment::address).distinct().count(), "distinct addresses");
        }
    }

    /** Memory is zero also when it comes back to a new arena: allocate, dirty, close, again (TestScope.testZeroed). */
    @EachKind
    void memoryIsZeroedAlsoWhenReused(Kind kind) {
        Random rnd = new Random(7);
        for (int round = 0; round < 8; round++) {
            try (Arena arena = kind.open()) {
                for (int i = 0; i < 300; i++) {
                    long size = switch (rnd.nextInt(10)) {
                        case 0 -> rnd.nextInt(70_000);
                        case 1 -> i % 50 == 0 ? 2 * MIB + rnd.nextInt(1 << 20) : rnd.nextInt(9000);
                        default -> rnd.nextInt(600);
                    };
                    long align = 1L << rnd.nextInt(i % 40 == 0 ? 17 : 7);
                    MemorySegment s = arena.allocate(size, align);
                    assertZero(s, "round " + round + ", allocation " + i + ": size " + size + " align " + align);
                    s.fill((byte) -1);
                }
                assertZero(arena.allocate(8102, Long.BYTES), "round " + round);
            }
        }
    }

    /** Segments of one arena, and of two arenas open at once, are disjoint, aligned, and keep what is written. */
    @EachKind
    void segmentsDoNotOverlap(Kind kind) {
        Random rnd = new Random(42);
        try (Arena one = kind.open(); Arena two = kind.open()) {
            List<MemorySegment> segs = new ArrayList<>();
            for (int i = 0; i < 1500; i++) {
                int r = rnd.nextInt(100);
                long size = r == 0 ? 2 * MIB + rnd.nextInt(1 << 20) : r < 10 ? rnd.nextInt(70_000) : r < 15 ? 0 : rnd.nextInt(300);
                long align = r == 1 ? MIB : 1L << rnd.nextInt(r < 20 ? 17 : 5);
                MemorySegment s = (i % 3 == 0 ? two : one).allocate(size, align);
                assertEquals(0, s.address() % align);
                segs.add(s.fill((byte) (i + 1)));
            }
            for (int i = 0; i < segs.size(); i++) {
                MemorySegment s = segs.get(i);
                if (s.byteSize() > 0) {
                    assertEquals((byte) (i + 1), s.get(JAVA_BYTE, 0), "segment " + i + " overwritten");
                    assertEquals((byte) (i + 1), s.get(JAVA_BYTE, s.byteSize() - 1), "segment " + i + " overwritten");
                }
            }
            assertDisjoint(segs);
        }
    }

    /** No two segments share a byte (a zero-length one counts as one byte: the JDK gives it an address of its own). */
    static void assertDisjoint(List<MemorySegment> segs) {
        List<MemorySegment> sorted = new ArrayList<>(segs);
        sorted.sort(Comparator.comparingLong(MemorySegment::address));
        for (int i = 1; i < sorted.size(); i++) {
            MemorySegment p = sorted.get(i - 1);
            assertTrue(p.address() + Math.max(1, p.byteSize()) <= sorted.get(i).address(), "overlap: " + p + ", " + sorted.get(i));
        }
    }

    // ──────────────────────────── SegmentAllocator defaults ────────────────────────────

    /** allocate(layout) and allocate(layout, count): the layout's size and alignment, zeroed. */
    @EachKind
    void allocateLayoutsAndCounts(Kind kind) {
        List<MemoryLayout> layouts = List.of(JAVA_BYTE, JAVA_SHORT, JAVA_CHAR, JAVA_INT, JAVA_FLOAT, JAVA_LONG,
                JAVA_DOUBLE, ADDRESS, JAVA_INT_UNALIGNED, MemoryLayout.sequenceLayout(3, JAVA_DOUBLE),
                MemoryLayout.structLayout(JAVA_INT, MemoryLayout.paddingLayout(4), JAVA_LONG),
                MemoryLayout.structLayout(JAVA_LONG.withByteAlignment(64), MemoryLayout.paddingLayout(56)),
                MemoryLayout.structLayout(JAVA_BYTE.withByteAlignment(4096), MemoryLayout.paddingLayout(4095)));
        try (Arena arena = kind.open()) {
            for (MemoryLayout l : layouts) {
                for (long count : new long[] {-1, 0, 1, 10, 1000}) { // -1: allocate(layout)
                    MemorySegment a = count < 0 ? arena.allocate(l) : arena.allocate(l, count);
                    assertEquals(l.byteSize() * Math.abs(count), a.byteSize(), l + " x " + count);
                    assertEquals(0, a.address() % l.byteAlignment(), l + " x " + count);
                    assertZero(a, l + " x " + count);
                }
            }
        }
    }

    /** One allocateFrom call, and the alignment its segment must have. */
    record Maker(long align, Function<SegmentAllocator, MemorySegment> make) {}

    /**
     * allocateFrom(layout, value) and allocateFrom(layout, array...) for each primitive layout
     * (TestSegmentAllocators.testAllocation / testArray), at 1x to 8x the natural alignment (values)
     * and in both byte orders: the JDK arena's size and bytes, the layout's alignment, values read back.
     */
    @EachKind
    void allocateFromValuesAndArrays(Kind kind) {
        Random rnd = new Random(1);
        try (Arena arena = kind.open(); Arena twin = kind.twin()) {
            for (ByteOrder o : new ByteOrder[] {ByteOrder.LITTLE_ENDIAN, ByteOrder.BIG_ENDIAN}) {
                List<Maker> makers = new ArrayList<>();
                for (long k = 1; k <= 8; k *= 2) {
                    long f = k; // the factor over the natural alignment
                    OfLong lo = JAVA_LONG.withOrder(o).withByteAlignment(8 * f);
                    makers.addAll(List.of(new Maker(f, a -> a.allocateFrom(JAVA_BYTE.withByteAlignment(f), (byte) 42)),
                            new Maker(2 * f, a -> a.allocateFrom(JAVA_SHORT.withOrder(o).withByteAlignment(2 * f), (short) -4242)),
                            new Maker(2 * f, a -> a.allocateFrom(JAVA_CHAR.withOrder(o).withByteAlignment(2 * f), 'z')),
                            new Maker(4 * f, a -> a.allocateFrom(JAVA_INT.withOrder(o).withByteAlignment(4 * f), 0x12345678)),
                            new Maker(4 * f, a -> a.allocateFrom(JAVA_FLOAT.withOrder(o).withByteAlignment(4 * f), 4.5f)),
                            new Maker(8 * f, a -> a.allocateFrom(lo, 0x1122334455667788L)),
                            new Maker(8 * f, a -> a.allocateFrom(JAVA_DOUBLE.withOrder(o).withByteAlignment(8 * f), -0.25))));
                    assertEquals(0x1122334455667788L, arena.allocateFrom(lo, 0x1122334455667788L).get(lo, 0));
                }
                for (int n : new int[] {0, 1, 100, 70_000}) {
                    byte[] bs = new byte[n];
                    rnd.nextBytes(bs);
                    int[] is = rnd.ints(n).toArray();
                    long[] ls = rnd.longs(n).toArray();
                    double[] ds = rnd.doubles(n).toArray();
                    char[] cs = new String(bs, StandardCharsets.ISO_8859_1).toCharArray();
                    short[] ss = new short[n];
                    float[] fs = new float[n];
                    for (int j = 0; j < n; j++) {
                        ss[j] = (short) is[j];
                        fs[j] = (float) ds[j];
                    }
                    makers.addAll(List.of(new Maker(1, a -> a.allocateFrom(JAVA_BYTE, bs)),
                            new Maker(2, a -> a.allocateFrom(JAVA_CHAR.withOrder(o), cs)), new Maker(2, a -> a.allocateFrom(JAVA_SHORT.withOrder(o), ss)),
                            new Maker(4, a -> a.allocateFrom(JAVA_INT.withOrder(o), is)), new Maker(4, a -> a.allocateFrom(JAVA_FLOAT.withOrder(o), fs)),
                            new Maker(8, a -> a.allocateFrom(JAVA_LONG.withOrder(o), ls)), new Maker(8, a -> a.allocateFrom(JAVA_DOUBLE.withOrder(o), ds))));
                    assertArrayEquals(is, arena.allocateFrom(JAVA_INT.withOrder(o), is).toArray(JAVA_INT.withOrder(o)));
                    assertArrayEquals(ds, arena.allocateFrom(JAVA_DOUBLE.withOrder(o), ds).toArray(JAVA_DOUBLE.withOrder(o)));
                }
                for (int rep = 0; rep < 8; rep++) { // many per arena: bumped from the same chunks
                    for (Maker m : makers) {
                        MemorySegment g = m.make().apply(arena);
                        MemorySegment j = m.make().apply(twin);
                        assertEquals(j.byteSize(), g.byteSize());
                        assertEquals(-1, g.mismatch(j), o + ": bytes differ from the JDK's");
                        assertEquals(0, g.address() % m.align(), "misaligned");
                    }
                }
            }
            MemorySegment target = arena.allocate(8);
            assertEquals(target.address(), arena.allocateFrom(ADDRESS, target).get(ADDRESS, 0).address());
            Consumer<Arena> heapAddress = a -> a.allocateFrom(ADDRESS, MemorySegment.ofArray(new int[] {1})); // no address to store
            assertEquals("IllegalArgumentException", outcome(() -> heapAddress.accept(twin)));
            assertEquals(outcome(() -> heapAddress.accept(twin)), outcome(() -> heapAddress.accept(arena)));
        }
    }

    /** allocateFrom(String[, charset]): the JDK arena's bytes (terminator included), read back by getString. */
    @EachKind
    void allocateFromStrings(Kind kind) {
        List<Charset> charsets = List.of(StandardCharsets.UTF_8, StandardCharsets.US_ASCII, StandardCharsets.ISO_8859_1,
                StandardCharsets.UTF_16, StandardCharsets.UTF_16LE, StandardCharsets.UTF_16BE, Charset.forName("UTF-32"));
        List<String> strings = List.of("", "a", "hello, arena", "é ü ß", "日本語 \uD83D\uDE00", "x".repeat(100_000));
        try (Arena arena = kind.open(); Arena twin = kind.twin()) {
            for (String str : strings) {
                MemorySegment s = arena.allocateFrom(str);
                assertEquals(-1, s.mismatch(twin.allocateFrom(str)), "default charset, " + str.length() + " chars");
                assertEquals(str, s.getString(0));
                for (Charset cs : charsets) {
                    MemorySegment g = arena.allocateFrom(str, cs);
                    assertEquals(-1, g.mismatch(twin.allocateFrom(str, cs)), cs + ", " + str.length() + " chars");
                    assertTrue(!cs.newEncoder().canEncode(str) || str.equals(g.getString(0, cs)), cs + ", " + str.length());
                }
            }
        }
    }

    /** allocateFrom(layout, segment, layout, offset, count): copy with conversion, and each failure as the JDK's. */
    @EachKind
    void allocateFromSegment(Kind kind) throws Exception {
        int[] ints = {1, -2, 0x01020304, Integer.MIN_VALUE};
        MemorySegment src = MemorySegment.ofArray(ints);
        Arena gone = Arena.ofConfined();
        MemorySegment closedSrc = gone.allocate(16, 8);
        gone.close();
        // a segment confined to another thread (its 16 bytes are left to the end of the JVM, as in TestSegmentAllocators)
        MemorySegment otherThreadsSrc = CompletableFuture.supplyAsync(() -> Arena.ofConfined().allocate(16, 8)).get();
        try (Arena arena = kind.open(); Arena twin = kind.twin()) {
            OfInt big = JAVA_INT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
            MemorySegment swapped = arena.allocateFrom(big, src, JAVA_INT, 0, 4);
            assertEquals(-1, swapped.mismatch(twin.allocateFrom(big, src, JAVA_INT, 0, 4)));
            assertArrayEquals(ints, swapped.toArray(big));
            assertArrayEquals(new int[] {-2, 0x01020304}, arena.allocateFrom(JAVA_INT, src, JAVA_INT, 4, 2).toArray(JAVA_INT));
            MemorySegment nat = Arena.ofAuto().allocate(JAVA_LONG, 2);
            Map<String, Consumer<Arena>> bad = Map.ofEntries(
                    entry("element sizes differ", a -> a.allocateFrom(JAVA_INT, src, JAVA_BYTE, 0, 1)),
                    entry("source misaligned", a -> a.allocateFrom(JAVA_INT, nat.asSlice(1), JAVA_INT, 0, 1)),
                    entry("offset misaligned", a -> a.allocateFrom(JAVA_INT, nat, JAVA_INT, 1, 1)),
                    entry("alignment over size", a -> a.allocateFrom(JAVA_INT.withByteAlignment(8), src, JAVA_INT, 0, 1)),
                    entry("count overflows", a -> a.allocateFrom(JAVA_INT, src, JAVA_INT, 0, Long.MAX_VALUE)),
                    entry("past the end", a -> a.allocateFrom(JAVA_INT, src, JAVA_INT, 16, 1)),
                    entry("negative offset", a -> a.allocateFrom(JAVA_INT, src, JAVA_INT, -4, 1)),
                    entry("negative count", a -> a.allocateFrom(JAVA_INT, src, JAVA_INT, 0, -1)),
                    entry("closed source", a -> a.allocateFrom(JAVA_INT, closedSrc, JAVA_INT, 0, 1)),
                    entry("source of another thread", a -> a.allocateFrom(JAVA_INT, otherThreadsSrc, JAVA_INT, 0, 1)),
                    entry("null source", a -> a.allocateFrom(JAVA_INT, null, JAVA_INT, 0, 1)));
            Map<String, String> expected = outcomes(bad, twin);
            assertFalse(expected.containsValue("none"), expected.toString());
            assertEquals(expected, outcomes(bad, arena));
        }
    }

    // ──────────────────────────── bad requests ────────────────────────────

    /** Negative sizes, non-power-of-two alignments, overflowing layouts: IllegalArgumentException as the JDK's, arena unharmed. */
    @EachKind
    void badSizeAndAlignmentAreRejected(Kind kind) {
        Map<String, Consumer<Arena>> bad = Map.ofEntries(
                entry("size -1", a -> a.allocate(-1, 8)), entry("size MIN_VALUE", a -> a.allocate(Long.MIN_VALUE, 1)),
                entry("allocate(-1)", a -> a.allocate(-1)), entry("align 0", a -> a.allocate(1, 0)),
                entry("align -1", a -> a.allocate(1, -1)), entry("align 3", a -> a.allocate(1, 3)),
                entry("align 15", a -> a.allocate(1, 15)), entry("align -15", a -> a.allocate(1, -15)),
                entry("align MIN_VALUE", a -> a.allocate(1, Long.MIN_VALUE)), entry("size -1, align 3", a -> a.allocate(-1, 3)),
                entry("count -1", a -> a.allocate(JAVA_BYTE, -1)),
                entry("JAVA_LONG x MAX_VALUE", a -> a.allocate(JAVA_LONG, Long.MAX_VALUE)),
                entry("struct x MAX_VALUE/8", a -> a.allocate(MemoryLayout.structLayout(JAVA_LONG, JAVA_LONG), Long.MAX_VALUE / 8)));
        try (Arena arena = kind.open(); Arena twin = kind.twin()) {
            arena.allocate(24); // with a chunk in use
            Map<String, String> expected = outcomes(bad, twin);
            assertEquals(Set.of("IllegalArgumentException"), new HashSet<>(expected.values()));
            assertEquals(expected, outcomes(bad, arena));
            MemorySegment s = arena.allocate(64, 8);
            assertEquals(64, s.byteSize());
            assertZero(s, "after the bad requests");
            assertEquals(assertThrows(IllegalArgumentException.class, () -> twin.allocate(-1)).getMessage(),
                    assertThrows(IllegalArgumentException.class, () -> arena.allocate(-1)).getMessage());
        }
    }

    /**
     * Requests no memory can satisfy: OutOfMemoryError as the JDK's (TestSegmentAllocators
     * .testBadArenaNullReturn), on a fresh arena and on one with memory in use; after it the arena
     * still allocates zeroed memory, and so does a new arena (which may get this one's chunks).
     */
    @EachKind
    void tooLargeRequestsThrowOutOfMemoryError(Kind kind) {
        long[][] requests = {{Long.MAX_VALUE, 1}, {Long.MAX_VALUE, 2}, {Long.MAX_VALUE - 7, 8},
                {Long.MAX_VALUE - MIB, 1}, {1L << 50, 8}, {1, 1L << 62}, {Long.MAX_VALUE / 2, 1L << 40}};
        Map<String, String> expected = new TreeMap<>();
        Map<String, String> got = new TreeMap<>();
        for (long[] r : requests) {
            for (boolean warm : new boolean[] {false, true}) {
                String what = "allocate(" + r[0] + ", " + r[1] + ")" + (warm ? " after 100 B" : " first");
                for (Supplier<Arena> opener : List.<Supplier<Arena>>of(kind::twin, kind::open)) {
                    Map<String, String> into = expected.containsKey(what) ? got : expected;
                    try (Arena a = opener.get()) {
                        if (warm) {
                            a.allocate(100, 8).fill((byte) 7);
                        }
                        into.put(what, outcome(() -> a.allocate(r[0], r[1])));
                        into.put(what + ", then 256 B", outcome(() -> assertZero(a.allocate(256, 16), "")));
                    }
                    try (Arena next = opener.get()) {
                        into.put(what + ", then a new arena", outcome(() -> assertZero(next.allocate(4096, 8), "")));
                    }
                }
            }
        }
        assertTrue(expected.entrySet().stream().allMatch(e -> e.getValue().equals(
                e.getKey().contains("then") ? "none" : "OutOfMemoryError")), expected.toString());
        assertEquals(expected, got);
    }

    // ──────────────────────────── scopes, confinement, close ────────────────────────────

    /** TestScope / TestSegments: one scope per arena, shared by its segments and all derived from them; equality; isAccessibleBy. */
    @EachKind
    @SuppressWarnings("restricted")
    void scopesAndAccessibility(Kind kind) {
        try (Arena arena = kind.open(); Arena other = kind.open()) {
            MemorySegment s1 = arena.allocate(100);
            MemorySegment s2 = arena.allocate(10, 8);
            assertEquals(arena.scope(), s1.scope());
            assertEquals(s1.scope(), s2.scope());
            assertEquals(s1.scope().hashCode(), s2.scope().hashCode());
            assertNotEquals(arena.scope(), other.scope());
            assertNotEquals(s1.scope(), other.allocate(100).scope());
            for (MemorySegment d : List.of(s1.asSlice(10), s1.asReadOnly().asSlice(0), MemorySegment.ofBuffer(s1.asByteBuffer()),
                    MemorySegment.ofBuffer(s1.asByteBuffer().slice(0, 2)), MemorySegment.ofBuffer(s1.asByteBuffer().asIntBuffer()))) {
                assertEquals(s1.scope(), d.scope());
            }
            // equality is by address and size (TestSegments.testEqualsOffHeap / testHashCodeOffHeap)
            assertEquals(s1, s1.asReadOnly());
            assertEquals(s1, s1.asSlice(0, 100));
            assertNotEquals(s1, s1.asSlice(10, 90));
            assertEquals(s1, MemorySegment.ofAddress(s1.address()));
            assertEquals(s1.hashCode(), MemorySegment.ofAddress(s1.address()).hashCode());
            assertNotEquals(s1, s2);
            // isAccessibleBy: the owner always, another thread only for a shared arena (TestSegments.testIsAccessibleBy)
            for (MemorySegment s : List.of(s1, s1.asReadOnly(), MemorySegment.NULL.reinterpret(arena, null))) {
                assertTrue(s.isAccessibleBy(Thread.currentThread()));
                assertEquals(!kind.confined(), s.isAccessibleBy(new Thread(() -> {})));
                assertEquals(!kind.confined(), s.isAccessibleBy(Thread.ofVirtual().unstarted(() -> {})));
            }
        }
    }

    /**
     * From another thread, every op and close(): WrongThreadException for a confined arena (which stays
     * open for its owner), done for a shared one (closed by it); as the JDK's (TestScopedOperations).
     */
    @EachKind
    void operationsAndCloseFromAnotherThread(Kind kind) throws Exception {
        Arena arena = kind.open();
        Arena twin = kind.twin();
        MemorySegment s = arena.allocate(64, 8);
        MemorySegment t = twin.allocate(64, 8);
        List<Map<String, String>> ops = new ArrayList<>();
        String[] closes = new String[2];
        Thread.ofPlatform().start(() -> {
            ops.add(opOutcomes(twin, t));
            ops.add(opOutcomes(arena, s));
            closes[0] = outcome(twin::close);
            try {
                arena.close();
                closes[1] = "none";
            } catch (WrongThreadException e) { // TestScopedOperations: the message says "outside"
                closes[1] = e.getClass().getSimpleName() + (e.getMessage().contains("outside") ? "" : ": " + e.getMessage());
            }
        }).join();
        assertEquals(ops.get(0), ops.get(1));
        assertEquals(closes[0], closes[1]);
        String expected = kind.confined() ? "WrongThreadException" : "none";
        assertEquals(List.of(expected, expected, expected), List.of(ops.get(1).get("allocate(100, 1)"), ops.get(1).get("get"), closes[1]));
        assertEquals("IllegalArgumentException", ops.get(1).get("allocate(-1)")); // arguments are checked first
        assertEquals(kind.confined(), arena.scope().isAlive());
        if (kind.confined()) {
            s.set(JAVA_INT, 60, 9); // still the owner's
            arena.close();
            twin.close();
        } else {
            assertEquals(List.of("IllegalStateException", "IllegalStateException", "IllegalStateException"),
                    List.of(outcome(() -> s.get(JAVA_INT, 0)), outcome(() -> arena.allocate(8)), outcome(arena::close)));
        }
    }

    /** After close: allocation and every access throw IllegalStateException, isAlive false, close again throws; as the JDK's. */
    @EachKind
    void closedArenaOperations(Kind kind) throws Exception {
        Arena arena = kind.open();
        Arena twin = kind.twin();
        MemorySegment s = arena.allocate(64, 8);
        MemorySegment t = twin.allocate(64, 8);
        MemorySegment big = arena.allocate(3 * MIB, 64); // gomem: a span of its own
        arena.close();
        twin.close();
        assertFalse(arena.scope().isAlive() || s.scope().isAlive() || big.scope().isAlive());
        Map<String, String> expected = opOutcomes(twin, t);
        assertEquals(expected, opOutcomes(arena, s));
        for (String op : List.of("allocate(100, 1)", "allocateFrom(int[])", "get", "set", "fill", "copyFrom", "asSlice then get")) {
            assertEquals("IllegalStateException", expected.get(op), op);
        }
        assertTrue(assertThrows(IllegalStateException.class, () -> arena.allocate(8)).getMessage().contains("closed"));
        assertTrue(assertThrows(IllegalStateException.class, () -> s.get(JAVA_INT, 0)).getMessage().contains("closed"));
        assertThrows(IllegalStateException.class, () -> big.get(JAVA_BYTE, 3 * MIB - 1));
        assertEquals("IllegalStateException", outcome(twin::close));
        assertEquals("IllegalStateException", outcome(arena::close), "close twice");
        // from another thread (a confined arena reports the thread first)
        assertEquals(onOtherThread(() -> t.get(JAVA_INT, 0)), onOtherThread(() -> s.get(JAVA_INT, 0)));
        assertEquals(onOtherThread(() -> twin.allocate(8)), onOtherThread(() -> arena.allocate(8)));
        assertEquals(onOtherThread(twin::close), onOtherThread(arena::close));
    }

    /**
     * Many threads at once (TestSharedAccess, TestHandshake): on a shared arena they allocate disjoint
     * zeroed segments and access them while another thread closes the arena, after which each sees
     * IllegalStateException; on a confined arena each gets WrongThreadException.
     */
    @EachKind
    void manyThreadsThenCloseWhileAccessing(Kind kind) throws Exception {
        Arena arena = kind.open();
        int threads = 4;
        List<MemorySegment> made = Collections.synchronizedList(new ArrayList<>());
        List<String> events = Collections.synchronizedList(new ArrayList<>());
        CountDownLatch allocated = new CountDownLatch(threads);
        AtomicInteger accesses = new AtomicInteger();
        List<Thread> ts = new ArrayList<>();
        for (int id = 0; id < threads; id++) {
            final byte me = (byte) id;
            ts.add(Thread.ofPlatform().start(() -> {
                List<MemorySegment> mine = new ArrayList<>();
                Random rnd = new Random(me);
                try {
                    try {
                        for (int i = 0; i < 400; i++) {
                            MemorySegment s = arena.allocate(2 + rnd.nextInt(5000), 1L << rnd.nextInt(8));
                            if (s.get(JAVA_BYTE, s.byteSize() - 1) != 0) {
                                events.add("not zeroed");
                            }
                            mine.add(s.fill(me));
                        }
                    } finally {
                        made.addAll(mine);
                        allocated.countDown();
                    }
                    for (long n = 0; ; n++) { // until the close
                        MemorySegment s = mine.get((int) (n % mine.size()));
                        if (s.get(JAVA_BYTE, 0) != me || s.get(JAVA_BYTE, s.byteSize() - 1) != me) {
                            events.add("overwritten");
                        }
                        s.set(JAVA_BYTE, 1, me);
                        accesses.incrementAndGet();
                    }
                } catch (Throwable t) {
                    events.add(t.getClass().getSimpleName());
                }
            }));
        }
        allocated.await();
        while (!kind.confined() && accesses.get() < 10_000 && ts.stream().allMatch(Thread::isAlive)) {
            Thread.onSpinWait();
        }
        // shared: closed by another thread while they access (a handshake: no thread is inside an access after it)
        assertEquals(kind.confined() ? "WrongThreadException" : "none", onOtherThread(arena::close));
        for (Thread t : ts) {
            t.join();
        }
        if (kind.confined()) {
            arena.close();
        }
        assertEquals(Collections.nCopies(threads, kind.confined() ? "WrongThreadException" : "IllegalStateException"), events);
        assertEquals(kind.confined() ? 0 : threads * 400, made.size());
        assertDisjoint(made);
    }

    // ──────────────────────────── cleanup actions ────────────────────────────

    /** reinterpret(size, arena, cleanup) and reinterpret(arena, cleanup): the arena's scope; each cleanup once, at close. */
    @EachKind
    void reinterpretCleanupRunsAtClose(Kind kind) {
        List<String> jdk = cleanupScenario(kind.twin(), true);
        List<String> tested = cleanupScenario(kind.open(), true);
        assertTrue(jdk.containsAll(List.of("A 42/100", "B 43/0", "C 16", "after close: 4950, alive false, r1 alive false")));
        Collections.sort(jdk);
        Collections.sort(tested);
        assertEquals(jdk, tested);
    }

    /**
     * The order the cleanup actions run in is the JDK's, when the arena allocated before they were
     * added (the usual case) and when not. Not specified by the javadoc, but observable: the JDK's
     * confined session runs the first action it was given first (in its arena, usually the free of the
     * first segment), then the others last-in-first-out; its shared session, all last-in-first-out.
     */
    @EachKind
    void cleanupOrderAsJdk(Kind kind) {
        assertAll(() -> assertEquals(cleanupScenario(kind.twin(), true), cleanupScenario(kind.open(), true), "allocation first"),
                () -> assertEquals(cleanupScenario(kind.twin(), false), cleanupScenario(kind.open(), false), "cleanups first"));
    }

    @SuppressWarnings("restricted")
    static List<String> cleanupScenario(Arena arena, boolean allocateFirst) {
        List<String> log = new ArrayList<>();
        AtomicInteger sum = new AtomicInteger();
        MemorySegment own = allocateFirst ? arena.allocate(16, 8) : MemorySegment.ofAddress(44);
        MemorySegment r1 = MemorySegment.ofAddress(42).reinterpret(100, arena, s -> log.add("A " + s.address() + "/" + s.byteSize()));
        MemorySegment r2 = MemorySegment.ofAddress(43).reinterpret(arena, s -> log.add("B " + s.address() + "/" + s.byteSize()));
        MemorySegment r3 = own.reinterpret(16, arena, s -> log.add("C " + s.byteSize()));
        for (int i = 0; i < 100; i++) { // TestMemorySession: many actions, each once
            final int delta = i;
            MemorySegment.NULL.reinterpret(arena, s -> sum.addAndGet(delta));
        }
        log.add("scopes " + (r1.scope().equals(arena.scope()) && r2.scope().equals(arena.scope())
                && r3.scope().equals(arena.scope())) + ", sizes " + r1.byteSize() + " " + r2.byteSize());
        log.add("before close: " + sum.get() + " " + log.size());
        arena.allocate(8);
        arena.close();
        log.add("after close: " + sum.get() + ", alive " + arena.scope().isAlive() + ", r1 alive " + r1.scope().isAlive());
        return log;
    }

    /**
     * A cleanup action that throws: close() throws it after running the others, and the arena is
     * closed all the same (isAlive false; allocation, access and close throw IllegalStateException).
     * Run on a thread of its own that then ends, so that an arena left open cannot block the heap's close.
     */
    @EachKind
    void throwingCleanupStillClosesArena(Kind kind) throws Exception {
        List<List<String>> logs = new ArrayList<>();
        Thread.ofPlatform().start(() -> {
            logs.add(throwingCleanupScenario(kind.twin()));
            logs.add(throwingCleanupScenario(kind.open()));
        }).join();
        assertEquals(logs.get(0), logs.get(1));
    }

    @SuppressWarnings("restricted")
    static List<String> throwingCleanupScenario(Arena arena) {
        List<String> ran = new ArrayList<>();
        MemorySegment s = arena.allocate(32, 8);
        MemorySegment.NULL.reinterpret(arena, x -> ran.add("first"));
        MemorySegment.NULL.reinterpret(arena, x -> { throw new IllegalStateException("boom"); });
        MemorySegment.NULL.reinterpret(arena, x -> ran.add("last"));
        String close = "returned";
        try {
            arena.close();
        } catch (RuntimeException e) {
            close = e.getClass().getSimpleName() + ": " + e.getMessage(); // the action's own exception
        }
        Collections.sort(ran);
        return List.of("close: " + close, "other cleanups ran: " + ran, "alive " + arena.scope().isAlive(),
                "allocate after: " + outcome(() -> arena.allocate(8)), "allocate 3 MiB after: " + outcome(() -> arena.allocate(3 * MIB)),
                "access after: " + outcome(() -> s.get(JAVA_INT, 0)), "close again: " + outcome(arena::close));
    }

    /**
     * TestDowncallScope: while a native call holds a segment of the arena (qsort, whose comparator
     * upcall tries it), close() throws IllegalStateException and the arena stays usable; after the
     * call returns, close works.
     */
    @EachKind
    void closeRefusedWhileNativeCallHoldsArena(Kind kind) throws Throwable {
        List<String> jdk = qsortScenario(kind.twin());
        assertEquals("close in call: IllegalStateException", jdk.get(0));
        assertEquals(jdk, qsortScenario(kind.open()));
    }

    static final ThreadLocal<Arena> IN_QSORT = new ThreadLocal<>();
    static final ThreadLocal<List<String>> QSORT_LOG = new ThreadLocal<>();

    /** The comparator qsort calls back; on the first call tries the arena qsort holds. Must not throw. */
    static int compareInts(MemorySegment a, MemorySegment b) {
        Arena arena = IN_QSORT.get();
        if (QSORT_LOG.get().isEmpty()) {
            QSORT_LOG.get().addAll(List.of("close in call: " + outcome(arena::close),
                    "allocate in call: " + outcome(() -> arena.allocate(8)), "alive in call: " + arena.scope().isAlive()));
        }
        return Integer.compare(a.get(JAVA_INT, 0), b.get(JAVA_INT, 0));
    }

    @SuppressWarnings("restricted")
    static List<String> qsortScenario(Arena arena) throws Throwable {
        Linker linker = Linker.nativeLinker();
        MethodHandle qsort = linker.downcallHandle(linker.defaultLookup().find("qsort").orElseThrow(),
                FunctionDescriptor.ofVoid(ADDRESS, JAVA_LONG, JAVA_LONG, ADDRESS));
        MethodHandle cmp = MethodHandles.lookup().findStatic(ArenaContractTest.class, "compareInts",
                MethodType.methodType(int.class, MemorySegment.class, MemorySegment.class));
        List<String> log = new ArrayList<>();
        try (Arena stubs = Arena.ofConfined()) {
            AddressLayout intPtr = ADDRESS.withTargetLayout(JAVA_INT);
            MemorySegment stub = linker.upcallStub(cmp, FunctionDescriptor.of(JAVA_INT, intPtr, intPtr), stubs);
            MemorySegment array = arena.allocateFrom(JAVA_INT, 5, 3, 9, 1, 7);
            IN_QSORT.set(arena);
            QSORT_LOG.set(log);
            try {
                qsort.invokeExact(array, 5L, 4L, stub);
            } finally {
                IN_QSORT.remove();
                QSORT_LOG.remove();
            }
            log.addAll(List.of("sorted: " + Arrays.toString(array.toArray(JAVA_INT)),
                    "close after call: " + outcome(arena::close), "alive after: " + arena.scope().isAlive()));
        }
        return log;
    }

    // ──────────────────────────── virtual threads ────────────────────────────

    /** An arena opened by a virtual thread: it owns it; another thread's access, allocation and close as the JDK's. */
    @EachKind
    void virtualThreadAsOwner(Kind kind) throws Exception {
        List<String> jdk = virtualThreadScenario(kind::twin);
        assertEquals("from main: get " + (kind.confined() ? "WrongThreadException" : "none"), jdk.get(1));
        assertEquals(jdk, virtualThreadScenario(kind::open));
    }

    static List<String> virtualThreadScenario(Supplier<Arena> opener) throws Exception {
        List<String> log = Collections.synchronizedList(new ArrayList<>());
        CompletableFuture<Object[]> handed = new CompletableFuture<>();
        CountDownLatch mainDone = new CountDownLatch(1);
        Thread vt = Thread.ofVirtual().start(() -> {
            Arena arena;
            MemorySegment s;
            try {
                arena = opener.get();
                s = arena.allocate(MIB, MIB);
                log.add("owner: allocated " + (s.address() % MIB == 0 && s.mismatch(ZEROS.asSlice(0, MIB)) == -1));
                s.set(JAVA_INT, 0, 77);
                handed.complete(new Object[] {arena, s});
                mainDone.await();
            } catch (Throwable t) {
                handed.completeExceptionally(t);
                return;
            }
            log.addAll(List.of("owner: get " + outcome(() -> s.get(JAVA_INT, 0)), "owner: close " + outcome(arena::close),
                    "owner: alive " + arena.scope().isAlive()));
        });
        Arena arena = (Arena) handed.get()[0];
        MemorySegment s = (MemorySegment) handed.get()[1];
        log.addAll(List.of("from main: get " + outcome(() -> s.get(JAVA_INT, 0)),
                "from main: allocate " + outcome(() -> arena.allocate(64)), "from main: close " + outcome(arena::close)));
        mainDone.countDown();
        vt.join();
        return log;
    }
}
