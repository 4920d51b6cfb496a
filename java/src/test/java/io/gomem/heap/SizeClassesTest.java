package io.gomem.heap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Table-driven tests of {@link SizeClasses} against the Go runtime's linux/amd64 table. */
class SizeClassesTest {

    /** Rows of Go's generated table: class, bytes/obj, bytes/span, objects, tail waste. */
    static Stream<Arguments> goTableRows() {
        return Stream.of(
                row(1, 8, 8192, 1024, 0),
                row(2, 16, 8192, 512, 0),
                row(3, 24, 8192, 341, 8),
                row(5, 48, 8192, 170, 32),
                row(18, 256, 8192, 32, 0),
                row(23, 416, 8192, 19, 288),
                row(32, 1024, 8192, 8, 0),
                row(35, 1408, 16384, 11, 896),
                row(44, 4096, 8192, 2, 0),
                row(50, 6912, 49152, 7, 768),
                row(52, 9472, 57344, 6, 512),
                row(60, 18432, 73728, 4, 0),
                row(65, 27264, 81920, 3, 128),
                row(67, 32768, 32768, 1, 0));
    }

    private static Arguments row(int sizeClass, int size, int spanBytes, int objects, int tailWaste) {
        return Arguments.of(sizeClass, size, spanBytes, objects, tailWaste);
    }

    @ParameterizedTest(name = "Go row: class {0} = {1} B, {2} B/span, {3} objects, {4} B tail")
    @MethodSource("goTableRows")
    void matchesGoTableRow(int sizeClass, int size, int spanBytes, int objects, int tailWaste) {
        assertEquals(size, SizeClasses.classSize(sizeClass), "size");
        assertEquals(spanBytes / SizeClasses.PAGE_SIZE, SizeClasses.classPages(sizeClass), "pages");
        assertEquals(spanBytes, SizeClasses.classSpanBytes(sizeClass), "span bytes");
        assertEquals(objects, SizeClasses.classObjects(sizeClass), "objects");
        assertEquals(tailWaste, spanBytes - objects * size, "tail waste");
    }

    /** Go's whole {@code SizeClassToSize} and {@code SizeClassToNPages}, as one check. */
    @Test
    void wholeTableMatchesGo() {
        int[] goSizes = {0, 8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256,
            288, 320, 352, 384, 416, 448, 480, 512, 576, 640, 704, 768, 896, 1024, 1152, 1280, 1408, 1536, 1792,
            2048, 2304, 2688, 3072, 3200, 3456, 4096, 4864, 5376, 6144, 6528, 6784, 6912, 8192, 9472, 9728,
            10240, 10880, 12288, 13568, 14336, 16384, 18432, 19072, 20480, 21760, 24576, 27264, 28672, 32768};
        int[] goPages = {0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
            1, 1, 1, 1, 1, 1, 2, 1, 2, 1, 2, 1, 3, 2, 3, 1, 3, 2, 3, 4, 5, 6, 1, 7, 6, 5, 4, 3, 5, 7, 2, 9, 7, 5,
            8, 3, 10, 7, 4};
        assertEquals(SizeClasses.NUM_SIZE_CLASSES, goSizes.length);
        assertEquals(SizeClasses.NUM_SIZE_CLASSES, goPages.length);
        for (int c = 0; c < SizeClasses.NUM_SIZE_CLASSES; c++) {
            assertEquals(goSizes[c], SizeClasses.classSize(c), "size of class " + c);
            assertEquals(goPages[c], SizeClasses.classPages(c), "pages of class " + c);
        }
    }

    @Test
    void constants() {
        assertEquals(13, SizeClasses.PAGE_SHIFT);
        assertEquals(8192, SizeClasses.PAGE_SIZE);
        assertEquals(68, SizeClasses.NUM_SIZE_CLASSES);
        assertEquals(32768, SizeClasses.MAX_SMALL_SIZE);
        assertEquals(8, SizeClasses.SMALL_SIZE_DIV);
        assertEquals(1024, SizeClasses.SMALL_SIZE_MAX);
        assertEquals(128, SizeClasses.LARGE_SIZE_DIV);
        assertEquals(16, SizeClasses.TINY_SIZE);
        assertEquals(136, SizeClasses.NUM_SPAN_CLASSES);
    }

    /** Named boundary sizes and the class each must get. */
    static Stream<Arguments> namedSizes() {
        return Stream.of(
                Arguments.of("zero bytes takes the smallest class", 0L, 1),
                Arguments.of("one byte", 1L, 1),
                Arguments.of("exactly 8", 8L, 1),
                Arguments.of("9 rounds up to 16", 9L, 2),
                Arguments.of("tiny block size", 16L, 2),
                Arguments.of("17 rounds up to 24", 17L, 3),
                Arguments.of("last size of the 8-byte table", 1024L, 32),
                Arguments.of("first size of the 128-byte table", 1025L, 33),
                Arguments.of("1017 (Go sends it via the 128 table)", 1017L, 32),
                Arguments.of("3073 skips to 3200", 3073L, 42),
                Arguments.of("largest small size", 32768L, 67),
                Arguments.of("one below the largest", 32767L, 67));
    }

    @ParameterizedTest(name = "{0}: sizeToClass({1}) = {2}")
    @MethodSource("namedSizes")
    void namedSizeMapsToClass(String name, long size, int expectedClass) {
        assertEquals(expectedClass, SizeClasses.sizeToClass(size));
    }

    /** Every class size maps to its own class; one byte more maps to the next class. */
    @TestFactory
    Stream<DynamicTest> everyClassSizeAndOneMore() {
        return IntStream.range(1, SizeClasses.NUM_SIZE_CLASSES).boxed().flatMap(c -> {
            int size = SizeClasses.classSize(c);
            List<DynamicTest> tests = new ArrayList<>();
            tests.add(DynamicTest.dynamicTest("class " + c + ": size " + size + " -> " + c,
                    () -> assertEquals(c, SizeClasses.sizeToClass(size))));
            if (c + 1 < SizeClasses.NUM_SIZE_CLASSES) {
                tests.add(DynamicTest.dynamicTest("class " + c + ": size " + (size + 1) + " -> " + (c + 1),
                        () -> assertEquals(c + 1, SizeClasses.sizeToClass(size + 1))));
            }
            return tests.stream();
        });
    }

    /** Brute force over every size: the answer is the smallest class that fits. */
    @Test
    void everySizeGetsSmallestFittingClass() {
        int c = 1;
        for (int size = 1; size <= SizeClasses.MAX_SMALL_SIZE; size++) {
            while (SizeClasses.classSize(c) < size) {
                c++;
            }
            assertEquals(c, SizeClasses.sizeToClass(size), "size " + size);
        }
    }

    static Stream<Arguments> rejectedSizes() {
        return Stream.of(
                Arguments.of("one over the largest small size", 32769L, "over MAX_SMALL_SIZE"),
                Arguments.of("a 64 KiB object", 65536L, "over MAX_SMALL_SIZE"),
                Arguments.of("Long.MAX_VALUE", Long.MAX_VALUE, "over MAX_SMALL_SIZE"),
                Arguments.of("minus one", -1L, "negative"),
                Arguments.of("Long.MIN_VALUE", Long.MIN_VALUE, "negative"));
    }

    @ParameterizedTest(name = "{0}: sizeToClass({1}) is rejected")
    @MethodSource("rejectedSizes")
    void rejectsSizesWithoutAClass(String name, long size, String rule) {
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> SizeClasses.sizeToClass(size));
        assertTrue(e.getMessage().contains(Long.toString(size)), "message names the value: " + e.getMessage());
        assertTrue(e.getMessage().contains(rule), "message names the rule: " + e.getMessage());
    }

    /** objectIndex equals offset / size for every offset 0..span bytes, in every class. */
    @TestFactory
    Stream<DynamicTest> objectIndexExactForEveryOffset() {
        return IntStream.range(1, SizeClasses.NUM_SIZE_CLASSES).mapToObj(c -> DynamicTest.dynamicTest(
                "class " + c + " (" + SizeClasses.classSize(c) + " B): offsets 0.." + SizeClasses.classSpanBytes(c),
                () -> {
                    int size = SizeClasses.classSize(c);
                    int span = SizeClasses.classSpanBytes(c);
                    assertEquals((int) (0xFFFF_FFFFL / size + 1), SizeClasses.divMagic(c), "divMagic");
                    for (int off = 0; off <= span; off++) {
                        int got = SizeClasses.objectIndex(off, c);
                        if (got != off / size) {
                            fail("objectIndex(" + off + ", " + c + ") = " + got + ", want " + off / size);
                        }
                    }
                    assertEquals(SizeClasses.classObjects(c), SizeClasses.objectIndex(span, c),
                            "the span's end is one past its last object");
                }));
    }

    static Stream<Arguments> spanClasses() {
        return Stream.of(
                Arguments.of(0, false, 0),
                Arguments.of(0, true, 1),
                Arguments.of(1, false, 2),
                Arguments.of(1, true, 3),
                Arguments.of(SizeClasses.TINY_SIZE_CLASS, true, 5),
                Arguments.of(67, false, 134),
                Arguments.of(67, true, 135));
    }

    @ParameterizedTest(name = "spanClass({0}, noscan={1}) = {2}")
    @MethodSource("spanClasses")
    void spanClassRoundTrips(int sizeClass, boolean noscan, int spanClass) {
        assertEquals(spanClass, SizeClasses.spanClass(sizeClass, noscan));
        assertEquals(sizeClass, SizeClasses.sizeClassOf(spanClass));
        assertEquals(noscan, SizeClasses.noscan(spanClass));
        assertTrue(spanClass < SizeClasses.NUM_SPAN_CLASSES);
    }

    @Test
    void everySpanClassRoundTrips() {
        for (int sc = 0; sc < SizeClasses.NUM_SPAN_CLASSES; sc++) {
            int c = SizeClasses.sizeClassOf(sc);
            assertTrue(c < SizeClasses.NUM_SIZE_CLASSES);
            assertEquals(sc, SizeClasses.spanClass(c, SizeClasses.noscan(sc)));
        }
        assertFalse(SizeClasses.noscan(SizeClasses.spanClass(5, false)));
    }

    @Test
    void checkInvariantsPasses() {
        SizeClasses.checkInvariants();
    }

    @Test
    void theRawFastPathsTableAgreesWithTheTwoLevelLookupUpTo1KiB() {
        for (long size = 0; size <= SizeClasses.SMALL_SIZE_MAX; size++) {
            assertEquals(SizeClasses.spanClass(SizeClasses.sizeToClass(size), true), SizeClasses.noscanSpanClass8(size),
                    "size " + size);
        }
    }
}
